//! crates/fly-oidc/README.md, "Quick start".
#![allow(unused)]

#[tokio::main]
#[rustfmt::skip]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = fly_oidc::FlyOidcClient::builder().build()?;   // flags → builder, env → Env
    let token = client.fetch_token(Some("sts.amazonaws.com")).await?;
    println!("{}", token.claims().trust_summary());            // iss=... aud=... sub=...
    let jwt: &str = token.expose_jwt();                        // `token` itself prints as ** redacted **
    Ok(())
}
