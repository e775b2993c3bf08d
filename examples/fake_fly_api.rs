//! Run the testkit's fake Fly Machines API until Ctrl-C, for trying `fly-oidc` off Fly.
//!
//! ```sh
//! cargo run -p fly-oidc-examples --example fake_fly_api
//! # prints FLY_OIDC_SOCKET=..., FLY_API_HOSTNAME=... / FLY_API_TOKEN=..., and the
//! # FLY_OIDC_GCP_* / GOOGLE_*_URL settings of a fake Google STS that trusts it
//! ```
//!
//! The tokens it mints are signed by a throwaway key: no cloud accepts them, but local
//! emulators (moto) and the testkit's fake STS servers (the fake Google started here) do.

use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::google::FakeGoogle;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let fly = FakeFlyApi::builder()
        .org("acme")
        .app("demo-app")
        .start()
        .await?;
    println!("FLY_OIDC_SOCKET={}", fly.socket_path().display());
    println!("FLY_API_HOSTNAME={}", fly.url());
    println!("FLY_API_TOKEN={}", fly.api_token());
    // A fake Google STS + IAM Credentials that trusts this fake Fly issuer.
    let service_account = "reader@demo-project.iam.gserviceaccount.com";
    let google = FakeGoogle::builder(&fly)
        .service_account(service_account)
        .start()
        .await?;
    println!("FLY_OIDC_GCP_PROVIDER={}", google.provider());
    println!("FLY_OIDC_GCP_SERVICE_ACCOUNT={service_account}");
    println!("GOOGLE_STS_URL={}", google.sts_url());
    println!("GOOGLE_IAM_URL={}", google.iam_url());
    println!("JWKS_URL={}", fly.jwks_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
