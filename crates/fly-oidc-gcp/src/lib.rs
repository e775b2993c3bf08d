//! # fly-oidc-gcp
//!
//! Google Cloud access tokens for apps on [Fly.io](https://fly.io) Machines, through
//! [Workload Identity Federation](https://cloud.google.com/iam/docs/workload-identity-federation):
//! no service-account key ever leaves Google.
//!
//! [`GcpTokenProvider`] fetches a Fly OIDC token (audience
//! `https://iam.googleapis.com/<provider>`), exchanges it at Google's Security Token Service
//! (RFC 8693) for a federated access token and, when a service account is configured,
//! impersonates it through the IAM Credentials API (`generateAccessToken`). Tokens are kept
//! in the shared [`fly_oidc::cache::RefreshingCache`]: one caller refreshes while the others
//! wait, refreshes start minutes before expiry, and a failed refresh keeps serving a token
//! that is still valid.
//!
//! ```no_run
//! use fly_oidc_gcp::GcpTokenProvider;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = GcpTokenProvider::builder()
//!     .provider("projects/123456789/locations/global/workloadIdentityPools/fly/providers/acme")
//!     .service_account("storage-reader@my-project.iam.gserviceaccount.com")
//!     .build()?;
//! let token = provider.access_token().await?;
//! // `token` prints as "** redacted **"; send it with `token.expose_secret()`.
//! println!("valid until {:?}", token.expires_at());
//! # Ok(()) }
//! ```
//!
//! Or configure it from the environment with [`GcpTokenProvider::from_env`]. Every setting,
//! with its variable, its `fly-oidc` flag and its default, is in [the one Google Cloud settings
//! table](https://github.com/fly-oidc/fly-oidc/blob/HEAD/docs/gcp.md#settings). [`Builder::settings`] resolves and checks them without
//! building a client.
//!
//! ## Errors
//!
//! The error pattern of every fly-oidc crate (re-exported here): construction fails with a
//! [`BuildError`] that names the setting (builder method and environment variable) and
//! where its value came from. At run time an [`Error`] says what Google answered and which
//! setting to check; its [`ErrorKind`] says what to do next:
//!
//! - [`ErrorKind::TrustRejected`]: Google's STS rejected the Fly token (`invalid_grant`,
//!   `unauthorized_client`, `invalid_target`), or IAM Credentials refused the impersonation
//!   (401/403). The message names what must match: the provider's issuer
//!   `https://oidc.fly.io/<org slug>` (taken from the token's `iss`), its allowed audience and
//!   its attribute condition, or the `roles/iam.workloadIdentityUser` binding.
//! - [`ErrorKind::Rejected`]: any other refusal (`invalid_request`, a service account that
//!   does not exist, a lifetime above the org policy's limit).
//! - [`ErrorKind::Transient`]: connection errors, timeouts, 429 and 5xx on every attempt
//!   (they are already retried with jittered backoff).
//! - [`ErrorKind::InvalidResponse`]: Google answered something that is not a token response.
//! - The token client's kinds, for a failure to get the Fly token ([`ErrorKind::NotOnFly`],
//!   [`ErrorKind::FlyApi`], ...), with the message prefixed by "getting a Fly OIDC token
//!   failed".
//!
//! [`Error::code`] carries Google's error code (`invalid_grant`, `PERMISSION_DENIED`, ...),
//! [`Error::is_transient`] tells whether trying again may help.
//!
//! ## The official Google Cloud client libraries
//!
//! With the `google-cloud-auth` feature, [`GcpTokenProvider`] implements
//! `google_cloud_auth::credentials::CredentialsProvider` (see
//! `GcpTokenProvider::credentials`), and `google_cloud::FlySubjectTokenProvider`
//! plugs into `google_cloud_auth::credentials::external_account::ProgrammaticBuilder`.
//!
//! ## Other languages
//!
//! The `fly-oidc` binary implements Google's executable-sourced credentials:
//! `fly-oidc gcp credential-config --provider ...` writes a credential configuration that
//! every Google SDK and `gcloud` can load. The responses and the configuration are built by
//! [`executable`], for any other front end that wants to serve them.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `google-cloud-auth` | off | `google_cloud`: `CredentialsProvider` and `SubjectTokenProvider` adapters for the official Google Cloud Rust client libraries (adds `google-cloud-auth`, `http`) |
#![warn(missing_docs)]

mod command_line;
mod exchange;
pub mod executable;
#[cfg(feature = "google-cloud-auth")]
pub mod google_cloud;
mod id_token;
mod provider;
mod resource;
mod settings;

pub use exchange::GoogleCall;
#[doc(hidden)]
pub use exchange::fuzzing;
pub use fly_oidc::{BuildError, Error, ErrorKind, Origin, Setting};
pub use id_token::IdToken;
pub use provider::{AccessToken, Builder, GcpTokenProvider};
pub use resource::{WorkloadIdentityProvider, is_project_number};
pub use settings::{PROVIDER, Settings, is_service_account};

/// The Google universe domain (that of the default endpoints), as the `google_cloud`
/// credentials and `fly-oidc serve`'s metadata server report it.
pub const UNIVERSE_DOMAIN: &str = "googleapis.com";
/// Google's Security Token Service endpoint.
pub(crate) const DEFAULT_STS_URL: &str = "https://sts.googleapis.com/v1/token";
/// The IAM Service Account Credentials API.
pub(crate) const DEFAULT_IAM_URL: &str = "https://iamcredentials.googleapis.com";
/// The scope requested when none is configured.
pub(crate) const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The RFC 8693 token-exchange grant type.
pub(crate) const GRANT_TYPE_TOKEN_EXCHANGE: &str =
    "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of a Fly OIDC token (a JWT).
pub(crate) const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The token type Google's STS issues.
pub(crate) const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
