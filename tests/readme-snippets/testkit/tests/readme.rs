//! docs/development.md, "Test your own code without a Fly Machine", and
//! crates/fly-oidc-testkit/README.md (run, not only compiled).

#[tokio::test]
#[rustfmt::skip]
async fn readme_snippet() -> Result<(), Box<dyn std::error::Error>> {
    use fly_oidc_testkit::{FakeFlyApi, Fault};
    let fly = FakeFlyApi::builder().org("acme").app("web").start().await?;
    // FLY_OIDC_SOCKET=fly.socket_path(), or FLY_API_HOSTNAME=fly.url() + FLY_API_TOKEN=fly.api_token()
    fly.fail_next(1, Fault::Status(503, r#"{"error":"try later"}"#.into()));
    assert_eq!(fly.request_count(), 0);
    Ok(())
}
