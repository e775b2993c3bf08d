//! README.md, "Quick start" > "Rust: the AWS credentials provider", and
//! crates/fly-oidc-aws/README.md, "Quick start".
#![allow(unused)]

#[tokio::main]
#[rustfmt::skip]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use fly_oidc_aws::FlyOidcCredentialsProvider;

    let provider = FlyOidcCredentialsProvider::builder()
        .role_arn("arn:aws:iam::123456789012:role/my-fly-app")   // else AWS_ROLE_ARN
        .build()?;                                               // invalid settings fail here
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .credentials_provider(provider)
        .http_client(fly_oidc_aws::https_client())               // rustls + ring, no aws-lc
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::new(&config);
    Ok(())
}
