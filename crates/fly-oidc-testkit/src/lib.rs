//! # fly-oidc-testkit
//!
//! Test your app's federation code without a Fly Machine.
//!
//! [`FakeFlyApi`] is an in-process fake of the Fly Machines API: it serves
//! `POST /v1/tokens/oidc` on a real Unix socket (like `/.fly/api` on a Machine) and on
//! `127.0.0.1` TCP (bearer-checked, like `FLY_API_HOSTNAME`), minting real RS256 JWTs with
//! Fly's claim layout from its own generated key. It publishes
//! `/.well-known/openid-configuration` and the JWKS, records every request, and can be told
//! to fail ([`Fault`]) for fault-injection tests. A request with `"aws_principal_tags": true`
//! gets AWS's session tags claim, with tag keys of the fake's own invention
//! ([`FAKE_TAG_KEYS`]: `fake_app`, `fake_org`, `fake_region`; Fly's real keys are
//! undocumented, so never copy these into a policy).
//!
//! [`aws_sts::FakeSts`] (AWS STS `AssumeRoleWithWebIdentity`) and [`google::FakeGoogle`]
//! (Google STS and IAM Credentials) run on the same harness and speak the same words: a
//! builder with `clock(..)`, `start()`/`start_blocking()`, `url()`, `requests()` and
//! `request_count()`, and `fail_next(n, fault)`, `script(faults)` and `clear_faults()` with
//! one [`Fault`] vocabulary that each fake writes in its service's own wire format.
//!
//! ```
//! use fly_oidc_testkit::FakeFlyApi;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! let fly = FakeFlyApi::builder().org("acme").app("web").start().await?;
//! // Point your code at fly.socket_path() (FLY_OIDC_SOCKET), or at fly.url() with
//! // fly.api_token() (FLY_API_HOSTNAME + FLY_API_TOKEN).
//! let jwt = fly.mint(Some("sts.amazonaws.com"));
//! let claims = fly_oidc_testkit::verify_rs256(&jwt, &fly.jwks()).expect("valid signature");
//! assert_eq!(claims["iss"], "https://oidc.fly.io/acme");
//! assert_eq!(claims["aud"], "sts.amazonaws.com");
//! # Ok(()) }
//! ```
//!
//! The servers run on their own thread and runtime, so they keep answering while a test
//! blocks on a child process. Each stops when its last handle is dropped.
#![warn(missing_docs)]

pub mod aws_sts;
mod fault;
pub mod fly_api;
pub mod google;
mod jwt;
mod server;

pub use fault::Fault;
pub use fly_api::{FAKE_TAG_KEYS, FakeFlyApi, FakeFlyApiBuilder, RecordedRequest};
pub use jwt::verify_rs256;
