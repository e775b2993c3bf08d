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

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    fly_oidc_examples::exit_code("sts_get_caller_identity", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = fly_oidc_examples::aws_sdk_config().await?;
    let sts = aws_sdk_sts::Client::new(&config);
    let me = sts.get_caller_identity().send().await?;
    println!("{}", me.arn().unwrap_or_default());
    Ok(())
}
