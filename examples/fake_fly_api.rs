//! Run the testkit's fake Fly Machines API until Ctrl-C, for trying `fly-oidc` off Fly.
//!
//! ```sh
//! cargo run -p fly-oidc-examples --example fake_fly_api
//! # prints FLY_OIDC_SOCKET=... and FLY_API_HOSTNAME=... / FLY_API_TOKEN=... lines
//! ```
//!
//! The tokens it mints are signed by a throwaway key: no cloud accepts them, but local
//! emulators (moto) and the testkit's fake STS servers do.

use fly_oidc_testkit::FakeFlyApi;

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
    println!("JWKS_URL={}", fly.jwks_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
