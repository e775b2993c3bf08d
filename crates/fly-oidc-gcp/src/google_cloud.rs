//! Adapters for the official Google Cloud Rust client libraries (`google-cloud-auth`).
//!
//! Two ways in:
//!
//! 1. [`GcpTokenProvider`] implements `google_cloud_auth::credentials::CredentialsProvider`;
//!    [`GcpTokenProvider::credentials`] turns it into `Credentials` that any
//!    google-cloud-rust client accepts (`.with_credentials(..)`). Our cache, endpoints,
//!    retries and impersonation apply.
//! 2. [`FlySubjectTokenProvider`] implements
//!    `google_cloud_auth::credentials::subject_token::SubjectTokenProvider`, so
//!    `external_account::ProgrammaticBuilder` does the STS exchange itself;
//!    [`programmatic_builder`] sets the audience, token type and token URL.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fly_oidc_gcp::GcpTokenProvider;
//! let credentials = GcpTokenProvider::builder()
//!     .provider("projects/123456789/locations/global/workloadIdentityPools/fly/providers/acme")
//!     .build()?
//!     .credentials();
//! // e.g. google_cloud_storage::client::Storage::builder().with_credentials(credentials)
//! let headers = credentials.headers(http::Extensions::new()).await?;
//! # let _ = headers; Ok(()) }
//! ```
//!
//! Note: without its `default-rustls-provider` feature (which would pull in `aws-lc-rs`),
//! `google-cloud-auth` uses the process's default rustls crypto provider. Building a
//! [`GcpTokenProvider`] or a [`FlySubjectTokenProvider`] installs `ring` as that default
//! when none is installed yet.

use crate::provider::GcpTokenProvider;
use crate::resource::WorkloadIdentityProvider;
use crate::{DEFAULT_STS_URL, TOKEN_TYPE_JWT};
use fly_oidc::{BuildError, Error, FlyOidcClient};
use google_cloud_auth::credentials::external_account::ProgrammaticBuilder;
use google_cloud_auth::credentials::subject_token::{
    Builder as SubjectTokenBuilder, SubjectToken, SubjectTokenProvider,
};
use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::{CredentialsError, SubjectTokenProviderError};
use http::{Extensions, HeaderMap, HeaderValue};
use std::sync::Arc;

impl GcpTokenProvider {
    /// `google-cloud-auth` credentials backed by this provider (sharing its cache).
    pub fn credentials(&self) -> Credentials {
        Credentials::from(self.clone())
    }
}

fn credentials_error(err: Error) -> CredentialsError {
    CredentialsError::from_source(err.is_transient(), err)
}

impl CredentialsProvider for GcpTokenProvider {
    async fn headers(
        &self,
        extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        let token = self.access_token().await.map_err(credentials_error)?;
        let tag = self.entity_tag_for(&token);
        if extensions.get::<EntityTag>() == Some(&tag) {
            return Ok(CacheableResource::NotModified);
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                CredentialsError::from_msg(
                    false,
                    "Google returned an access token that is not a valid header value",
                )
            })?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        Ok(CacheableResource::New {
            entity_tag: tag,
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        Some(crate::UNIVERSE_DOMAIN.to_owned())
    }
}

/// A `SubjectTokenProvider` that answers with a fresh Fly OIDC token.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use fly_oidc_gcp::google_cloud::{FlySubjectTokenProvider, programmatic_builder};
/// let provider = "projects/123456789/locations/global/workloadIdentityPools/fly/providers/acme";
/// let subject = FlySubjectTokenProvider::for_provider(fly_oidc::FlyOidcClient::from_env()?, provider)?;
/// let credentials = programmatic_builder(subject, provider)?
///     .with_scopes(["https://www.googleapis.com/auth/devstorage.read_only"])
///     .build()?;
/// # let _ = credentials; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct FlySubjectTokenProvider {
    fly: FlyOidcClient,
    audience: String,
}

impl FlySubjectTokenProvider {
    /// Fly tokens for `audience`.
    pub fn new(fly: FlyOidcClient, audience: impl Into<String>) -> Self {
        fly_oidc::install_crypto_provider();
        Self {
            fly,
            audience: audience.into(),
        }
    }

    /// Fly tokens for the provider's default audience, `https://iam.googleapis.com/<provider>`.
    pub fn for_provider(fly: FlyOidcClient, provider: &str) -> Result<Self, BuildError> {
        let provider = WorkloadIdentityProvider::parse(provider)?;
        Ok(Self::new(fly, provider.token_audience()))
    }

    /// The audience of the Fly tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }
}

/// The error of [`FlySubjectTokenProvider`]: a failure to get a Fly token.
#[derive(Debug, thiserror::Error)]
#[error("getting a Fly OIDC token failed: {0}")]
pub struct SubjectTokenError(#[source] Error);

impl SubjectTokenError {
    /// The Fly token client's error.
    pub fn fly_error(&self) -> &Error {
        &self.0
    }
}

impl SubjectTokenProviderError for SubjectTokenError {
    fn is_transient(&self) -> bool {
        self.0.is_transient()
    }
}

impl SubjectTokenProvider for FlySubjectTokenProvider {
    type Error = SubjectTokenError;

    async fn subject_token(&self) -> Result<SubjectToken, Self::Error> {
        let token = self
            .fly
            .fetch_token(Some(&self.audience))
            .await
            .map_err(SubjectTokenError)?;
        Ok(SubjectTokenBuilder::new(token.expose_jwt()).build())
    }
}

/// An `external_account::ProgrammaticBuilder` that exchanges Fly tokens from `subject`
/// at Google's STS for `provider` (audience, subject token type and the default token
/// URL set; override with `.with_token_url(..)`, add `.with_scopes(..)`,
/// `.with_target_principal(..)` and so on).
pub fn programmatic_builder(
    subject: FlySubjectTokenProvider,
    provider: &str,
) -> Result<ProgrammaticBuilder, BuildError> {
    let provider = WorkloadIdentityProvider::parse(provider)?;
    Ok(ProgrammaticBuilder::new(Arc::new(subject))
        .with_audience(provider.sts_audience())
        .with_subject_token_type(TOKEN_TYPE_JWT)
        .with_token_url(DEFAULT_STS_URL))
}
