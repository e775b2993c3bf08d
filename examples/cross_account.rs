//! Cross-account access by role chaining: the Fly token assumes the app's role (account A),
//! whose credentials then assume a role in account B (`sts:AssumeRole`, with an external id
//! when B's trust policy asks for one). Prints the identity AWS sees: B's assumed-role ARN.
//!
//! The chained role is set on the builder here; `FLY_OIDC_AWS_CHAIN_ROLE_ARN` does the same
//! without code. Configured otherwise by the environment: `AWS_ROLE_ARN` (the first role),
//! optionally `AWS_REGION`, `AWS_ENDPOINT_URL` and `FLY_OIDC_AWS_CHAIN_EXTERNAL_ID`, and the
//! Fly token source (on a Fly Machine: nothing).
//!
//! ```text
//! AWS_ROLE_ARN=arn:aws:iam::111111111111:role/my-fly-app \
//!   cargo run -p fly-oidc-examples --example cross_account -- arn:aws:iam::222222222222:role/data-reader
//! ```

use fly_oidc_aws::FlyOidcCredentialsProvider;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    fly_oidc_examples::exit_code("cross_account", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Some(chained_role) = std::env::args().nth(1) else {
        return Err("usage: cross_account CHAINED_ROLE_ARN (the role in the other account)".into());
    };
    let provider = FlyOidcCredentialsProvider::builder()
        .chain_role_arn(chained_role)
        .build()?;
    let config = fly_oidc_examples::sdk_config_with(provider).await;
    let me = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await?;
    println!("{}", me.arn().unwrap_or_default());
    Ok(())
}
