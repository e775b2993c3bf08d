//! Print the identity AWS sees for the Fly app: the assumed-role ARN
//! (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
//!
//! Configured by the environment only: `AWS_ROLE_ARN`, optionally `AWS_REGION` and
//! `AWS_ENDPOINT_URL`, and the Fly token source (on a Fly Machine: nothing; elsewhere
//! `FLY_API_HOSTNAME` + `FLY_API_TOKEN`, or `FLY_OIDC_TOKEN_FILE`).
//!
//! ```text
//! AWS_ROLE_ARN=arn:aws:iam::123456789012:role/my-fly-app \
//!   cargo run -p fly-oidc-examples --example sts_get_caller_identity
//! ```

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_examples::ErrorChain;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sts_get_caller_identity: error: {}", ErrorChain(&*err));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = FlyOidcCredentialsProvider::from_env()?;
    let region = RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::ProfileFileRegionProvider::new())
    .or_else(fly_oidc_aws::DEFAULT_REGION);
    let config = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(provider)
        .http_client(fly_oidc_aws::https_client())
        .region(region)
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&config);
    let me = sts.get_caller_identity().send().await?;
    println!("{}", me.arn().unwrap_or_default());
    Ok(())
}
