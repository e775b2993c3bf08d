//! # fly-oidc
//!
//! Fetch OpenID Connect tokens from the [Fly.io](https://fly.io) Machines API, so an app on a
//! Fly Machine can trade them for short-lived cloud credentials (see the `fly-oidc-aws` and
//! `fly-oidc-gcp` crates) instead of holding long-lived keys.
//!
//! A Fly Machine asks for a token with `POST /v1/tokens/oidc` and a body `{"aud": "..."}`
//! (plus `"aws_principal_tags": true` for AWS's session tags claim, [`TokenOptions`]);
//! the answer is the raw JWT. [`FlyOidcClient`] does that over the Machine's Unix socket
//! (`/.fly/api`), over HTTP(S) with a Fly API token, or reads the token from a file, with
//! timeouts, retries of transient failures, a 64 KiB cap on answers (see [`fs`]), and a check that the
//! answer is a well-formed JWT.
//!
//! ```no_run
//! use fly_oidc::FlyOidcClient;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = FlyOidcClient::builder().build()?;
//! let token = client.fetch_token(Some("sts.amazonaws.com")).await?;
//! // The claims are decoded without verification: for display and defaults only.
//! println!("issuer {:?}, subject {:?}", token.claims().iss, token.claims().sub);
//! // `token` prints as "** redacted **"; send the JWT on with `token.expose_jwt()`.
//! # Ok(()) }
//! ```
//!
//! ## Where the token comes from
//!
//! A file ([`Builder::token_file`]), a Unix socket ([`Builder::socket`]), or the Machines API
//! over HTTP(S) ([`Builder::api_url`] + [`Builder::api_token`]); else the Machine's socket
//! `/.fly/api`. Builder settings beat the environment; within each, the first that is set
//! wins. Each setting's variable is in [the one settings table](https://github.com/fly-oidc/fly-oidc/blob/HEAD/docs/cli.md#configuration).
//!
//! ## Errors
//!
//! Every fly-oidc crate (this one, `fly-oidc-aws`, `fly-oidc-gcp`) uses the same two types:
//!
//! - [`BuildError`] from builders: an invalid or missing setting. It names the [`Setting`]
//!   (builder method and environment variable), where the bad value came from ([`Origin`])
//!   and why; nothing was sent anywhere.
//! - [`Error`] at run time, with an [`ErrorKind`] that says what to do next (each kind's
//!   doc says when it happens and what to do); [`Error::is_transient`] tells whether a retry
//!   may help.
//!
//! No error message ever contains a token: every message goes through [`redact_jwts`] when
//! the error is made (and again when a context is added).
//!
//! ## Testing without a Fly Machine
//!
//! The `fly-oidc-testkit` crate runs a fake Machines API on a real Unix socket and on TCP,
//! minting real RS256 tokens with Fly's claims. Inject the environment with [`Env::from_slice`]
//! and time with [`time::ManualTimeSource`].
#![warn(missing_docs)]

pub mod budget;
pub mod cache;
mod claims;
mod client;
mod config;
pub mod endpoint;
mod env;
mod error;
pub mod fs;
mod retry;
mod shell;
pub mod time;
pub mod tls;
mod token;

pub use claims::{
    AWS_TAGS_CLAIM, Audience, AwsSessionTags, FLY_ISSUER_PREFIX, FlyClaims, issuer_key, issuer_url,
};
pub use client::{
    API_TOKEN, API_URL, Builder, ENV_AUDIENCE, ENV_AWS_PRINCIPAL_TAGS, FlyOidcClient, SOCKET,
    TOKEN_FILE, TokenOptions, TokenSource, check_audience, https_client, install_crypto_provider,
    not_on_fly_hint, token_from_response,
};
pub use config::{DEFAULT_TOTAL_TIMEOUT, ProviderConfig};
pub use env::Env;
pub use error::{
    BuildError, Cloud, Error, ErrorKind, Message, Naming, Origin, Setting, redact_jwts,
    redact_secret, truncate,
};
pub use retry::{RetryConfig, within_provider_budget};
pub use shell::{shell_export, shell_quote};
pub use token::{FlyToken, JwtHeader, REDACTED, SecretString};
