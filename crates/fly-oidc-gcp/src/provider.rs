//! The access-token provider and its builder.

use crate::error::{Error, ErrorKind};
use crate::exchange::{Http, TrustContext};
use crate::resource::{WorkloadIdentityProvider, quote};
use crate::{DEFAULT_IAM_URL, DEFAULT_SCOPE, DEFAULT_STS_URL, ENV_PROVIDER, ENV_SERVICE_ACCOUNT};
use fly_oidc::cache::{CacheConfig, RefreshingCache};
use fly_oidc::endpoint::{self, PlainHttp};
use fly_oidc::time::SharedTimeSource;
use fly_oidc::{Env, FlyOidcClient, FlyToken, REDACTED, RetryConfig, SecretString};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A Google access token and when it expires.
///
/// `Debug` and `Display` never show the token.
///
/// ```
/// # use std::time::{Duration, UNIX_EPOCH};
/// let token = fly_oidc_gcp::AccessToken::new("ya29.secret", UNIX_EPOCH + Duration::from_secs(60));
/// assert!(!format!("{token:?} {token}").contains("ya29"));
/// assert_eq!(token.expose_secret(), "ya29.secret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: SecretString,
    expires_at: SystemTime,
}

impl AccessToken {
    /// A token that expires at `expires_at`.
    pub fn new(token: impl Into<SecretString>, expires_at: SystemTime) -> Self {
        Self {
            token: token.into(),
            expires_at,
        }
    }

    /// The token, for an `Authorization: Bearer` header. Never log it.
    pub fn expose_secret(&self) -> &str {
        self.token.expose_secret()
    }

    /// When the token expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The token type: always `Bearer`.
    pub fn token_type(&self) -> &'static str {
        "Bearer"
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Configures a [`GcpTokenProvider`].
///
/// Settings beat the environment: the provider comes from [`Builder::provider`], else
/// `FLY_OIDC_GCP_PROVIDER`; the service account from [`Builder::service_account`], else
/// `FLY_OIDC_GCP_SERVICE_ACCOUNT` (none: use the federated token directly).
#[derive(Clone, Debug, Default)]
pub struct Builder {
    env: Option<Env>,
    fly: Option<FlyOidcClient>,
    provider: Option<String>,
    audience: Option<String>,
    service_account: Option<String>,
    scopes: Vec<String>,
    sts_url: Option<String>,
    iam_url: Option<String>,
    lifetime: Option<Duration>,
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
    retry: Option<RetryConfig>,
    time: Option<SharedTimeSource>,
    cache: Option<CacheConfig>,
    allow_insecure_http: Option<bool>,
}

impl Builder {
    /// The environment to read `FLY_OIDC_GCP_*` (and, for the default Fly client,
    /// `FLY_*`) variables from (default: the real one).
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// The Fly token client (default: one configured from the same environment).
    pub fn fly_client(mut self, client: FlyOidcClient) -> Self {
        self.fly = Some(client);
        self
    }

    /// The workload identity pool provider,
    /// `projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>`
    /// (a `//iam.googleapis.com/` or `https://iam.googleapis.com/` prefix is accepted).
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// The audience of the Fly token (default `https://iam.googleapis.com/<provider>`);
    /// it must be one of the provider's allowed audiences.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Impersonate this service account (an email) with the federated token.
    pub fn service_account(mut self, email: impl Into<String>) -> Self {
        self.service_account = Some(email.into());
        self
    }

    /// Add an OAuth scope (default: `https://www.googleapis.com/auth/cloud-platform`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Set the OAuth scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The STS token endpoint (default `https://sts.googleapis.com/v1/token`).
    pub fn sts_url(mut self, url: impl Into<String>) -> Self {
        self.sts_url = Some(url.into());
        self
    }

    /// The IAM Credentials base URL (default `https://iamcredentials.googleapis.com`).
    pub fn iam_url(mut self, url: impl Into<String>) -> Self {
        self.iam_url = Some(url.into());
        self
    }

    /// The lifetime requested for impersonated tokens (default 1 hour; Google allows up
    /// to 12 hours when the org policy permits more than 1).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// How long to wait for a connection to Google (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long one request to Google may take (default 15 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How transient failures of Google calls are retried (default: 3 attempts).
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The clock (default: the system clock).
    pub fn time_source(mut self, time: SharedTimeSource) -> Self {
        self.time = Some(time);
        self
    }

    /// When cached tokens are refreshed (default: 5 minutes before expiry, with jitter).
    pub fn cache_config(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Allow plain `http://` endpoints on hosts other than loopback (default:
    /// `FLY_OIDC_ALLOW_INSECURE_HTTP`, else no).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = Some(allow);
        self
    }

    /// Check the configuration and build the provider. No network call is made.
    pub fn build(self) -> Result<GcpTokenProvider, Error> {
        let env = self.env.clone().unwrap_or_else(Env::real);
        let raw_provider = self
            .provider
            .clone()
            .or_else(|| env.get(ENV_PROVIDER))
            .ok_or_else(|| {
                Error::config(format!(
                    "no workload identity pool provider configured: set {ENV_PROVIDER} (or --provider) to \
                     projects/<project-number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
                ))
            })?;
        let provider = WorkloadIdentityProvider::parse(&raw_provider)?;
        let service_account = match self
            .service_account
            .clone()
            .or_else(|| env.get(ENV_SERVICE_ACCOUNT))
        {
            Some(sa) => Some(check_service_account(sa.trim())?),
            None => None,
        };
        let allow_insecure = self
            .allow_insecure_http
            .unwrap_or_else(|| endpoint::allow_insecure_http(&env));
        let sts_url = check_url(
            "STS",
            self.sts_url.as_deref().unwrap_or(DEFAULT_STS_URL),
            allow_insecure,
        )?;
        let iam_url = check_url(
            "IAM Credentials",
            self.iam_url.as_deref().unwrap_or(DEFAULT_IAM_URL),
            allow_insecure,
        )?
        .trim_end_matches('/')
        .to_owned();
        let lifetime = self.lifetime.unwrap_or(Duration::from_secs(3600));
        if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(43_200) {
            return Err(Error::config(format!(
                "the token lifetime must be between 60 s and 12 h, not {} s",
                lifetime.as_secs()
            )));
        }
        let scopes: Vec<String> = if self.scopes.is_empty() {
            vec![DEFAULT_SCOPE.to_owned()]
        } else {
            self.scopes.iter().map(|s| s.trim().to_owned()).collect()
        };
        if scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return Err(Error::config(
                "scopes must be non-empty and contain no spaces (pass each scope separately)",
            ));
        }
        let audience = self
            .audience
            .clone()
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| provider.token_audience());
        let fly = match self.fly.clone() {
            Some(client) => client,
            None => FlyOidcClient::builder()
                .env(env.clone())
                .build()
                .map_err(Error::fly)?,
        };
        let connect_timeout = self.connect_timeout.unwrap_or(Duration::from_secs(5));
        let timeout = self.timeout.unwrap_or(Duration::from_secs(15));
        let http = fly_oidc::http_client_builder(connect_timeout, timeout)
            .build()
            .map_err(|e| {
                Error::config(format!("could not set up the HTTP client: {e}")).with_source(e)
            })?;
        let time = self.time.clone().unwrap_or_default();
        Ok(GcpTokenProvider {
            inner: Arc::new(Inner {
                cache: RefreshingCache::new(self.cache.clone().unwrap_or_default(), time.clone()),
                fly,
                http,
                provider,
                audience,
                service_account,
                scopes,
                sts_url,
                iam_url,
                lifetime,
                retry: self.retry.clone().unwrap_or_default(),
                time,
                #[cfg(feature = "google-cloud-auth")]
                entity_tag: std::sync::Mutex::new(None),
            }),
        })
    }
}

fn check_service_account(email: &str) -> Result<String, Error> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && email
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'-' | b'_'));
    if ok {
        Ok(email.to_owned())
    } else {
        Err(Error::config(format!(
            "invalid service account {:?}: expected an email such as name@project.iam.gserviceaccount.com",
            quote(email)
        )))
    }
}

fn check_url(what: &str, raw: &str, allow_insecure: bool) -> Result<String, Error> {
    endpoint::check_endpoint_url(raw, allow_insecure, PlainHttp::Loopback).map_err(|why| {
        Error::config(format!(
            "invalid Google {what} URL {:?}: {why}",
            endpoint::display_url(raw)
        ))
    })
}

struct Inner {
    cache: RefreshingCache<AccessToken>,
    fly: FlyOidcClient,
    http: reqwest::Client,
    provider: WorkloadIdentityProvider,
    audience: String,
    service_account: Option<String>,
    scopes: Vec<String>,
    sts_url: String,
    iam_url: String,
    lifetime: Duration,
    retry: RetryConfig,
    time: SharedTimeSource,
    #[cfg(feature = "google-cloud-auth")]
    entity_tag: std::sync::Mutex<Option<(SecretString, google_cloud_auth::credentials::EntityTag)>>,
}

/// Google access tokens from Fly OIDC tokens, cached. Cheap to clone; clones share the
/// cache and the HTTP connection pool. See the [crate docs](crate).
#[derive(Clone)]
pub struct GcpTokenProvider {
    inner: Arc<Inner>,
}

impl fmt::Debug for GcpTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("GcpTokenProvider")
            .field("provider", &i.provider.name())
            .field("audience", &i.audience)
            .field("service_account", &i.service_account)
            .field("scopes", &i.scopes)
            .field("sts_url", &i.sts_url)
            .field("iam_url", &i.iam_url)
            .field("fly", &i.fly)
            .field("cache", &i.cache)
            .finish_non_exhaustive()
    }
}

impl GcpTokenProvider {
    /// A builder.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A provider configured from the real environment alone (`FLY_OIDC_GCP_PROVIDER`,
    /// optional `FLY_OIDC_GCP_SERVICE_ACCOUNT`, and the `FLY_*` variables of the token
    /// client). Use [`Builder::env`] to inject another environment.
    pub fn from_env() -> Result<Self, Error> {
        Builder::default().build()
    }

    /// The workload identity pool provider.
    pub fn provider(&self) -> &WorkloadIdentityProvider {
        &self.inner.provider
    }

    /// The audience requested for Fly tokens.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The service account impersonated, if any.
    pub fn service_account(&self) -> Option<&str> {
        self.inner.service_account.as_deref()
    }

    /// The scopes of the tokens.
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// The Fly token client.
    pub fn fly_client(&self) -> &FlyOidcClient {
        &self.inner.fly
    }

    /// A Google access token, from the cache when one is fresh.
    ///
    /// One caller refreshes while concurrent callers wait for its result; a refresh
    /// starts about 5 minutes before expiry, and if it fails while the cached token is
    /// still valid, the cached token is served (and a warning logged).
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        self.inner
            .cache
            .get_or_refresh(|| async {
                let token = self.fetch_access_token().await?;
                let expires_at = token.expires_at();
                Ok::<_, Error>((token, expires_at))
            })
            .await
    }

    /// A fresh access token, bypassing (and not filling) the cache: a new Fly token, an
    /// STS exchange and, with a service account, an impersonation.
    pub async fn fetch_access_token(&self) -> Result<AccessToken, Error> {
        let fly_token = self
            .inner
            .fly
            .fetch_token(Some(&self.inner.audience))
            .await
            .map_err(Error::fly)?;
        self.exchange(&fly_token).await
    }

    /// Exchange a Fly token (whose audience must be one the provider allows) for a
    /// Google access token, impersonating the service account if one is configured.
    pub async fn exchange(&self, fly_token: &FlyToken) -> Result<AccessToken, Error> {
        let i = &self.inner;
        let ctx = TrustContext {
            provider: &i.provider,
            audience: &i.audience,
            claims: fly_token.claims(),
        };
        let http = Http {
            client: &i.http,
            retry: &i.retry,
        };
        // With impersonation, the federated token only needs to call IAM Credentials.
        let sts_scopes = if i.service_account.is_some() {
            vec![DEFAULT_SCOPE.to_owned()]
        } else {
            i.scopes.clone()
        };
        let started = i.time.now();
        let federated = http
            .sts_exchange(&i.sts_url, fly_token.expose_jwt(), &sts_scopes, &ctx)
            .await?;
        let token = match &i.service_account {
            None => AccessToken::new(federated.access_token, started + federated.expires_in),
            Some(sa) => {
                let imp = http
                    .generate_access_token(
                        &i.iam_url,
                        sa,
                        &federated.access_token,
                        &i.scopes,
                        i.lifetime,
                        &ctx,
                    )
                    .await?;
                // IAM never grants more than the requested lifetime: a later expireTime
                // means Google's clock is ahead of ours; trust the lifetime instead.
                AccessToken::new(imp.access_token, imp.expires_at.min(started + i.lifetime))
            }
        };
        if token.expires_at() <= i.time.now() {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                "Google answered with an access token that has already expired; check this machine's clock",
            ));
        }
        tracing::debug!(
            provider = %i.provider,
            service_account = ?i.service_account,
            expires_at = ?token.expires_at(),
            "got a Google access token"
        );
        Ok(token)
    }

    /// Drop the cached token, so the next [`access_token`](Self::access_token) fetches a new one.
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
    }

    #[cfg(feature = "google-cloud-auth")]
    pub(crate) fn entity_tag_for(
        &self,
        token: &AccessToken,
    ) -> google_cloud_auth::credentials::EntityTag {
        let mut guard = self
            .inner
            .entity_tag
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match &*guard {
            Some((last, tag)) if last.expose_secret() == token.expose_secret() => tag.clone(),
            _ => {
                let tag = google_cloud_auth::credentials::EntityTag::new();
                *guard = Some((SecretString::new(token.expose_secret()), tag.clone()));
                tag
            }
        }
    }
}

/// Make sure a process-wide rustls crypto provider (ring) is installed, for libraries
/// such as `google-cloud-auth` that build their own HTTP clients without one.
#[cfg(feature = "google-cloud-auth")]
pub(crate) fn install_crypto_provider() {
    // Building a client builder installs ring as the default provider if none is set.
    let _ = fly_oidc::http_client_builder(Duration::from_secs(1), Duration::from_secs(1));
}
