//! List the S3 buckets the Fly app's role can see, one name per line.
//!
//! Configured by the environment only: `AWS_ROLE_ARN` (the role that trusts Fly's OIDC
//! provider), optionally `AWS_REGION` and `AWS_ENDPOINT_URL` (for example a moto_server), and
//! the Fly token source (on a Fly Machine: nothing; elsewhere `FLY_API_HOSTNAME` +
//! `FLY_API_TOKEN`, or `FLY_OIDC_TOKEN_FILE`).
//!
//! ```text
//! AWS_ROLE_ARN=arn:aws:iam::123456789012:role/my-fly-app \
//!   cargo run -p fly-oidc-examples --example s3_list_buckets
//! ```

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    fly_oidc_examples::exit_code("s3_list_buckets", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = fly_oidc_examples::aws_sdk_config().await?;
    let s3_config = aws_sdk_s3::config::Builder::from(&config)
        // Emulators on loopback (AWS_ENDPOINT_URL=http://127.0.0.1:...) need path-style URLs.
        .force_path_style(config.endpoint_url().is_some())
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(s3_config);
    let answer = s3.list_buckets().send().await?;
    for bucket in answer.buckets() {
        println!("{}", bucket.name().unwrap_or_default());
    }
    Ok(())
}
