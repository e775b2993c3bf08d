//! docs/gcp.md, "From Rust": both Rust blocks, in order; crates/fly-oidc-gcp/README.md,
//! "Quick start", shows the same.
#![allow(unused)]

#[tokio::main]
#[rustfmt::skip]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use fly_oidc_gcp::GcpTokenProvider;

    // FLY_OIDC_GCP_PROVIDER, FLY_OIDC_GCP_SERVICE_ACCOUNT, FLY_OIDC_GCP_SCOPES, ..., or the builder:
    let provider = GcpTokenProvider::builder()
        .provider("projects/123456789012/locations/global/workloadIdentityPools/fly-pool/providers/acme")
        .service_account("storage-reader@my-project.iam.gserviceaccount.com") // optional
        .scope("https://www.googleapis.com/auth/devstorage.read_only")        // default: cloud-platform
        .build()?;                                  // or GcpTokenProvider::from_env()?
    let token = provider.access_token().await?;    // cached; refreshed ahead of expiry
    let bearer: &str = token.expose_secret();       // `token` itself prints as ** redacted **

    let credentials = provider.credentials();      // google_cloud_auth::credentials::Credentials
    // e.g. google_cloud_storage::client::Storage::builder().with_credentials(credentials).build().await?
    Ok(())
}
