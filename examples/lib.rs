//! Runnable examples of federated cloud access from Fly.io Machines; see `examples/*.rs`
//! and run one with `cargo run -p fly-oidc-examples --example <name>`.

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, SdkConfig};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use std::error::Error;
use std::fmt;
use std::process::ExitCode;

/// An example's exit code for what its `run` returned: success, or the error chain printed
/// as `<example>: error: ...` on stderr and a failure.
pub fn exit_code<E: AsRef<dyn Error + 'static>>(example: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{example}: error: {}", ErrorChain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The region as the AWS CLI finds it without instance metadata: `AWS_REGION` /
/// `AWS_DEFAULT_REGION`, then the shared config's profile, then
/// [`fly_oidc_aws::DEFAULT_REGION`].
pub fn region() -> RegionProviderChain {
    RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::ProfileFileRegionProvider::new())
    .or_else(fly_oidc_aws::DEFAULT_REGION)
}

/// The SDK configuration of the AWS examples: credentials from
/// [`FlyOidcCredentialsProvider::from_env`], [`region`], and fly-oidc's HTTPS client (the
/// SDK's own defaults for the rest, such as `AWS_ENDPOINT_URL`).
///
/// # Errors
/// The provider's configuration error (for example `AWS_ROLE_ARN` unset).
pub async fn aws_sdk_config() -> Result<SdkConfig, fly_oidc_aws::BuildError> {
    Ok(sdk_config_with(FlyOidcCredentialsProvider::from_env()?).await)
}

/// [`aws_sdk_config`] with credentials from `provider`.
pub async fn sdk_config_with(provider: FlyOidcCredentialsProvider) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(provider)
        .http_client(fly_oidc_aws::https_client())
        .region(region())
        .load()
        .await
}

/// Shows an error and its causes on one line, `error: cause: cause` (its `Display` chain,
/// not a `Debug` dump), as the examples print a failure.
#[derive(Debug)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            // Some errors repeat their cause in their own message: show it once.
            let text = cause.to_string();
            if !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&shown)
    }
}
