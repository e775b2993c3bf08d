//! # fly-oidc-aws
//!
//! AWS credentials for apps on [Fly.io](https://fly.io) Machines, without a long-lived key:
//! [`FlyOidcCredentialsProvider`] fetches a fresh OpenID Connect token from the Machines API
//! (through [`fly_oidc::FlyOidcClient`]), trades it for role credentials with STS
//! `AssumeRoleWithWebIdentity` (through `aws-sdk-sts`, unsigned), and caches them. It
//! implements [`ProvideCredentials`](aws_credential_types::provider::ProvideCredentials), so
//! every AWS SDK client built from `aws-config` can use it.
//!
//! ```no_run
//! use fly_oidc_aws::FlyOidcCredentialsProvider;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Role from AWS_ROLE_ARN, token from the Machine's /.fly/api socket.
//! let provider = FlyOidcCredentialsProvider::builder()
//!     .role_arn("arn:aws:iam::123456789012:role/my-fly-app")
//!     .build()?;
//! let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
//!     .credentials_provider(provider)
//!     // One TLS stack for everything: rustls with the ring provider.
//!     .http_client(fly_oidc_aws::https_client())
//!     .region(aws_config::Region::new("us-east-1"))
//!     .load()
//!     .await;
//! let sts = aws_sdk_sts::Client::new(&config);
//! let me = sts.get_caller_identity().send().await?;
//! println!("{}", me.arn().unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! ## Configuration
//!
//! One [`Settings`] is resolved when [`Builder::build`] runs: a builder value beats every
//! variable; unset ones come from the injected environment, then the defaults. Every setting,
//! with its variable, its `fly-oidc` flag and its default, is in [the one AWS settings
//! table](https://github.com/fly-oidc/fly-oidc/blob/HEAD/docs/aws.md#settings).
//!
//! Region, STS endpoint, FIPS and dual-stack are read the way the AWS CLI reads them, by the
//! AWS SDK's own code (`aws_runtime::env_config`, which `aws-config` uses): `AWS_REGION`,
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`,
//! `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`, `AWS_USE_FIPS_ENDPOINT`,
//! `AWS_USE_DUALSTACK_ENDPOINT`, and the profile `AWS_PROFILE` names (default `default`) in
//! `AWS_CONFIG_FILE` (default `$HOME/.aws/config`): its `region`, `endpoint_url`, `services`
//! section (`sts = endpoint_url = ...`), `use_fips_endpoint` and `use_dualstack_endpoint`. A
//! profile pointing at a local emulator is honoured. The credentials file is never read, and
//! the EC2 instance metadata service is never asked (a Fly Machine has none). Default region:
//! `us-east-1`, with its regional endpoint. [`Settings::sts_endpoint`] says where calls go, as
//! the SDK's endpoint resolver picks it.
//!
//! Invalid settings fail at [`Builder::build`] with a [`BuildError`].
//!
//! ## Role chaining
//!
//! To reach another account, chain a second role: [`Builder::chain_role_arn`] (or
//! `FLY_OIDC_AWS_CHAIN_ROLE_ARN`). The provider assumes its role with the Fly token, then the
//! chained role with `sts:AssumeRole` signed with those credentials, and hands out the chained
//! role's ([`Settings::chain`], [`ChainedRole`]). AWS caps a chained session at one hour, so
//! [`Builder::chain_duration`] above 3600 s is a [`BuildError`]. The chained role's trust policy
//! must allow `sts:AssumeRole` for the first role (plus `sts:TagSession` when
//! [`Builder::principal_tags`] is on: the transitive tags pass along the chain, and the
//! `sts:ExternalId` condition when [`Builder::chain_external_id`] is set); a refusal says so.
//! [`FlyOidcCredentialsProvider::assume_web_identity_role`] and
//! [`FlyOidcCredentialsProvider::assume_chained_role`] take one hop at a time.
//!
//! ```no_run
//! # fn demo() -> Result<(), fly_oidc_aws::BuildError> {
//! let provider = fly_oidc_aws::FlyOidcCredentialsProvider::builder()
//!     .role_arn("arn:aws:iam::111111111111:role/my-fly-app")
//!     .chain_role_arn("arn:aws:iam::222222222222:role/data-reader")
//!     .chain_external_id("my-fly-app")
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! ## Errors
//!
//! The crate uses the error pattern of every fly-oidc crate (re-exported here): a
//! [`BuildError`] names the invalid [`Setting`] and where its value came from ([`Origin`]);
//! a run-time [`Error`] has an [`ErrorKind`] and [`Error::is_transient`].
//! [`credentials_error`] maps it onto the SDK's `CredentialsError` so that a
//! `CredentialsProviderChain` does the right thing:
//!
//! | situation | [`ErrorKind`] | `CredentialsError` |
//! |---|---|---|
//! | not on a Fly Machine / no role configured | `NotOnFly` / `NotConfigured` | `CredentialsNotLoaded` (the chain moves on) |
//! | bad Fly token source | `InvalidConfiguration` | `InvalidConfiguration` |
//! | `InvalidIdentityToken`, `IDPRejectedClaim`, `AccessDenied` | `TrustRejected` | `ProviderError`; the message says what the role's trust policy must match, quoting the token's `iss`, `aud` and `sub` (and, when session tags were asked for, that it must allow `sts:TagSession`) |
//! | `IDPCommunicationError`, throttling, 5xx, timeouts, `InvalidIdentityToken` "Couldn't retrieve verification key from your identity provider" (STS could not fetch the issuer's JWKS) | `Transient` | `ProviderError` after 3 attempts with jittered backoff |
//! | the whole chain outlasts [`ProviderConfig::with_total_timeout`](fly_oidc::ProviderConfig::with_total_timeout) ([`DEFAULT_TOTAL_TIMEOUT`](fly_oidc::DEFAULT_TOTAL_TIMEOUT), 15 s, inside the SDK identity cache's default 21.6 s) | `Transient` | `ProviderError` naming the call that did not answer |
//! | a token file with less than 30 s left | `StaleToken` | `ProviderError` naming the file and when its token expired |
//! | `ExpiredTokenException` | | retried once with a fresh Fly token |
//! | other STS errors (policy, region) | `Rejected` | `ProviderError` |
//! | the Fly token could not be fetched | the token client's (`FlyApi`, `PermissionDenied`, `Transient`, ...) | `ProviderError` |
//!
//! No error, log line or `Debug` output contains the Fly token, the secret key or the
//! session token (tests capture trace-level logs of this crate and the SDK and scan them).
//!
//! ## Caching
//!
//! The provider caches the credentials in a [`fly_oidc::cache::RefreshingCache`]: a fresh
//! copy is served without any I/O; within 5 minutes (plus jitter) of expiry the next caller
//! refreshes while the others wait for its result (single flight); if a refresh fails while
//! the cached credentials are still valid they keep being served and a warning is logged
//! (static stability); expired credentials are never served. Tune it with
//! [`Builder::cache_config`] or turn it off with [`Builder::disable_cache`].
//!
//! The SDK keeps its own identity cache in front of every credentials provider. It asks the
//! provider again only shortly before the credentials it holds expire; the provider's cache
//! then refreshes (the copy is inside its refresh window), so the two compose without extra
//! STS calls. The provider's cache matters when the provider is shared by several SDK
//! clients, used outside the SDK, or when STS is down at refresh time
//! ([`fallback_on_interrupt`](aws_credential_types::provider::ProvideCredentials::fallback_on_interrupt)
//! returns the cached credentials while valid).
//!
//! ## Assume the role once (for tools)
//!
//! [`FlyOidcCredentialsProvider::assume_role`] skips the cache and returns an
//! [`AssumedRole`]: the credentials, their expiry, the account id and the assumed-role ARN.
//! The [`credential_process`] module prints them for other programs (`credential_process`
//! JSON, shell exports) and, with the feature `disk-cache`, serves them from a disk cache
//! shared by concurrent processes: what `fly-oidc aws credential-process` is built on.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let provider = fly_oidc_aws::FlyOidcCredentialsProvider::builder()
//!     .role_arn("arn:aws:iam::123456789012:role/my-fly-app")
//!     .session_name("nightly-backup")
//!     .duration(Duration::from_secs(900))
//!     .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
//!     .disable_cache()
//!     .build()?;
//! let assumed = provider.assume_role().await?;
//! println!("{:?} expires at {:?}", assumed.account_id, assumed.expires_at);
//! # Ok(()) }
//! ```
//!
//! ## Testing
//!
//! Inject the environment ([`ProviderConfig::with_env`](fly_oidc::ProviderConfig::with_env)
//! with [`fly_oidc::Env::from_slice`]), the clock
//! ([`with_time_source`](fly_oidc::ProviderConfig::with_time_source) with
//! [`fly_oidc::time::ManualTimeSource`]) and the Fly token source
//! ([`with_fly_client`](fly_oidc::ProviderConfig::with_fly_client)) through
//! [`Builder::configure`], and the STS endpoint ([`Builder::endpoint_url`]). The
//! `fly-oidc-testkit` crate has a fake Machines API and a fault-injecting fake STS.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `disk-cache` | off | `credential_process::CredentialProcess`: the disk-cached `credential_process` front end the `fly-oidc` binary uses, over an on-disk cache shared by concurrent processes (adds `rustix`, `sha2`) |
//!
//! The examples above also use `aws-config` (default features off, `rt-tokio`,
//! `behavior-version-latest`) and the service crate they call (`aws-sdk-sts`, `aws-sdk-s3`).
#![warn(missing_docs)]

pub mod credential_process;
#[cfg(feature = "disk-cache")]
mod disk_cache;
mod error;
mod http;
mod provider;
mod settings;
mod shared_config;
mod sts;

/// The disk cache's entry codec, for the fuzz targets only (feature `fuzzing`): not a stable
/// API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::disk_cache::{encode_entry, parse_entry};
}

pub use error::credentials_error;
pub use fly_oidc::{BuildError, Error, ErrorKind, Origin, Setting};
pub use http::https_client;
pub use provider::{Builder, FlyOidcCredentialsProvider};
pub use settings::{
    CHAIN_EXTERNAL_ID, CHAIN_ROLE_ARN, ChainedRole, DEFAULT_AUDIENCE, DEFAULT_REGION, ENV_ROLE_ARN,
    ROLE_ARN, Settings, arn_account_id, check_external_id, check_role_arn, is_account_id,
    is_role_name, resolve_audience, role_name_of,
};
pub use shared_config::{REGION_VARIABLES, profile_uses_container_credentials};
pub use sts::{AssumedRole, Rejection, chain_trust_fix, trust_policy_fix};

/// Re-exported so callers can name the SDK types without adding the crates themselves.
pub use aws_credential_types::{Credentials, provider::error::CredentialsError};
