//! docs/server.md, "Embedding the server", and crates/fly-oidc-server/README.md, "Quick start".
#![allow(unused)]

#[tokio::main]
#[rustfmt::skip]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use fly_oidc_aws::FlyOidcCredentialsProvider;
    use fly_oidc_gcp::GcpTokenProvider;

    let role = "arn:aws:iam::123456789012:role/my-fly-app";
    let pool = "projects/123456789012/locations/global/workloadIdentityPools/fly-pool/providers/acme";
    let server = fly_oidc_server::Server::builder()
        .aws_role(FlyOidcCredentialsProvider::builder().role_arn(role).build()?)
        .gcp(GcpTokenProvider::builder().provider(pool).build()?)
        .start()
        .await?;
    println!("{:?} {:?}", server.aws_credentials_uri(), server.metadata_host());
    Ok(())
}
