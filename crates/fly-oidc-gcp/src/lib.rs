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
//! # async fn demo() -> Result<(), fly_oidc_gcp::Error> {
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
//! Or configure it from the environment (`FLY_OIDC_GCP_PROVIDER`,
//! `FLY_OIDC_GCP_SERVICE_ACCOUNT`) with [`GcpTokenProvider::from_env`].
//!
//! ## Errors
//!
//! Construction fails with [`ErrorKind::InvalidConfiguration`]; runtime failures say what
//! Google answered and which setting to check. When Google's STS rejects the Fly token
//! (`invalid_grant`, `unauthorized_client`, ...), the message names the three things that
//! must match: the provider's issuer `https://oidc.fly.io/<org slug>` (taken from the
//! token's `iss`), its allowed audience, and its attribute condition.
//! [`Error::is_transient`] tells whether trying again may help; transient failures
//! (connection errors, timeouts, 429, 5xx) are already retried with jittered backoff.
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
//! every Google SDK and `gcloud` can load.
#![warn(missing_docs)]

mod error;
mod exchange;
#[cfg(feature = "google-cloud-auth")]
pub mod google_cloud;
mod provider;
mod resource;

pub use error::{Error, ErrorKind};
#[doc(hidden)]
pub use exchange::fuzzing;
pub use fly_oidc::time::{format_rfc3339, parse_rfc3339};
pub use provider::{AccessToken, Builder, GcpTokenProvider};
pub use resource::{WorkloadIdentityProvider, fly_audience_from_google};

/// Google's Security Token Service endpoint.
pub const DEFAULT_STS_URL: &str = "https://sts.googleapis.com/v1/token";
/// The IAM Service Account Credentials API.
pub const DEFAULT_IAM_URL: &str = "https://iamcredentials.googleapis.com";
/// The scope requested when none is configured.
pub const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The RFC 8693 token-exchange grant type.
pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of a Fly OIDC token (a JWT).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The token type Google's STS issues.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The workload identity pool provider (`projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>`).
pub const ENV_PROVIDER: &str = "FLY_OIDC_GCP_PROVIDER";
/// The service account to impersonate (optional).
pub const ENV_SERVICE_ACCOUNT: &str = "FLY_OIDC_GCP_SERVICE_ACCOUNT";
