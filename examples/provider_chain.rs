//! FlyOidc first, then the SDK's default chain: the same binary gets role credentials on a
//! Fly Machine and uses the usual AWS credentials (environment, `~/.aws`, SSO, ...) elsewhere.
//! Prints which provider answered and the identity AWS sees.
//!
//! The chain moves on only when FlyOidc does not apply (no Fly token source, or no
//! `AWS_ROLE_ARN`); when it applies but fails (say, the role's trust policy does not match the
//! token) the error is reported instead of silently using other credentials.
//!
//! ```text
//! cargo run -p fly-oidc-examples --example provider_chain
//! ```

use aws_config::BehaviorVersion;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::ProvideCredentials;
use fly_oidc_aws::FlyOidcCredentialsProvider;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    fly_oidc_examples::exit_code("provider_chain", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let http = fly_oidc_aws::https_client();
    let region = fly_oidc_examples::region();
    let region = region.region().await;
    let fly = FlyOidcCredentialsProvider::builder()
        .http_client(http.clone())
        .build()?;
    let default_chain = DefaultCredentialsChain::builder()
        .configure(
            ProviderConfig::default()
                .with_http_client(http.clone())
                .with_region(region.clone()),
        )
        .build()
        .await;
    let chain =
        CredentialsProviderChain::first_try("FlyOidc", fly).or_else("Default", default_chain);
    let creds = chain.provide_credentials().await?;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(creds.clone())
        .http_client(http)
        .region(region)
        .load()
        .await;
    let me = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await?;
    let source = if format!("{creds:?}").contains("provider_name: \"FlyOidc\"") {
        "FlyOidc"
    } else {
        "the default chain"
    };
    println!("credentials from {source}");
    println!("{}", me.arn().unwrap_or_default());
    Ok(())
}
