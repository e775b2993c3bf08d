//! The access-token provider and its builder.

use crate::DEFAULT_SCOPE;
use crate::exchange::{Http, TrustContext};
use crate::id_token::IdToken;
use crate::settings::{Given, Settings};
use fly_oidc::cache::{CacheConfig, RefreshingCache};
use fly_oidc::time::SharedTimeSource;
use fly_oidc::{
    BuildError, Env, Error, ErrorKind, FlyOidcClient, FlyToken, ProviderConfig, REDACTED,
    RetryConfig, SecretString,
};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Configures a [`GcpTokenProvider`].
///
/// Builder values beat every environment variable. Every setting, with its variable, its
/// `fly-oidc` flag and its default, is in [the one Google Cloud settings
/// table](https://github.com/fly-oidc/fly-oidc/blob/HEAD/docs/gcp.md#settings); each method
/// below says its own.
///
/// The environment, the Fly token client, the clock, retries, timeouts and
/// `allow_insecure_http` come from the [`ProviderConfig`] ([`configure`](Builder::configure)).
/// [`settings`](Builder::settings) resolves and checks them without building anything.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    config: ProviderConfig,
    given: Given,
    cache: Option<CacheConfig>,
}

impl Builder {
    /// What this provider shares with the Fly token client and the other providers (replacing
    /// any config given before): the environment `FLY_OIDC_GCP_*` (and, for the default Fly
    /// client, `FLY_*`) variables are read from, the Fly token client, the clock, retries,
    /// timeouts and `allow_insecure_http`, each default as [`ProviderConfig`] says.
    pub fn configure(mut self, config: &ProviderConfig) -> Self {
        self.config = config.clone();
        self
    }

    /// The workload identity pool provider,
    /// `projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>`
    /// (a `//iam.googleapis.com/` or `https://iam.googleapis.com/` prefix is accepted).
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.given.provider = Some(provider.into());
        self
    }

    /// The audience of the Fly token (default `https://iam.googleapis.com/<provider>`);
    /// it must be one of the provider's allowed audiences.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.given.audience = Some(audience.into());
        self
    }

    /// Impersonate this service account (an email) with the federated token (default: none,
    /// the federated token is used directly).
    pub fn service_account(mut self, email: impl Into<String>) -> Self {
        self.given.service_account = Some(email.into());
        self
    }

    /// No impersonation, whatever [`service_account`](Self::service_account) or
    /// `FLY_OIDC_GCP_SERVICE_ACCOUNT` says: the federated token of the STS exchange is handed
    /// out (as `doctor` checks the exchange on its own).
    pub fn no_impersonation(mut self) -> Self {
        self.given.no_impersonation = true;
        self
    }

    /// Add an OAuth scope (default: `https://www.googleapis.com/auth/cloud-platform`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.given.scopes.push(scope.into());
        self
    }

    /// Set the OAuth scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.given.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The STS token endpoint (default `https://sts.googleapis.com/v1/token`).
    pub fn sts_url(mut self, url: impl Into<String>) -> Self {
        self.given.sts_url = Some(url.into());
        self
    }

    /// The IAM Credentials base URL (default `https://iamcredentials.googleapis.com`).
    pub fn iam_url(mut self, url: impl Into<String>) -> Self {
        self.given.iam_url = Some(url.into());
        self
    }

    /// The lifetime requested for impersonated tokens (default 1 hour; Google allows up
    /// to 12 hours when the org policy permits more than 1).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.given.lifetime = Some(lifetime);
        self
    }

    /// When cached tokens are refreshed (default: 5 minutes before expiry, with jitter).
    pub fn cache_config(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Resolve and check the settings (builder values, then the environment, then the
    /// defaults) without building an HTTP client or a Fly token client.
    pub fn settings(&self) -> Result<Settings, BuildError> {
        let config = &self.config;
        Settings::resolve(&self.given, &config.env(), config.allow_insecure_http()?)
    }

    /// Whether Google is configured: [`provider`](Self::provider) was given, or the config's
    /// environment sets `FLY_OIDC_GCP_PROVIDER` (not blank). The one answer to "is Google
    /// configured?" for every front end; without a provider, [`build`](Self::build) fails.
    pub fn is_configured(&self) -> bool {
        self.given.provider.is_some() || self.config.env().setting(crate::PROVIDER).is_some()
    }

    /// Check the configuration and build the provider. No network call is made.
    pub fn build(self) -> Result<GcpTokenProvider, BuildError> {
        let settings = self.settings()?;
        let config = &self.config;
        let time = config.time_source();
        let reuse_while = |margin| {
            CacheConfig::default()
                .with_refresh_window(margin)
                .with_jitter(Duration::ZERO)
        };
        let upstream = Upstream {
            fly_token: RefreshingCache::new(reuse_while(FLY_TOKEN_REUSE_MARGIN), time.clone()),
            federated: RefreshingCache::new(reuse_while(FEDERATED_REUSE_MARGIN), time.clone()),
            fly: config.fly_client_or_build()?,
            http: tokio::sync::OnceCell::new(),
            connect_timeout: config.connect_timeout().unwrap_or(Duration::from_secs(5)),
            timeout: config.timeout().unwrap_or(Duration::from_secs(15)),
            lifetime: settings.lifetime().unwrap_or(Duration::from_secs(3600)),
            retry: config.retry().cloned().unwrap_or_default(),
            total_timeout: config.total_timeout(),
            cache_config: self.cache.unwrap_or_default(),
            time,
            env: config.env(),
        };
        Ok(GcpTokenProvider {
            inner: Arc::new(Inner::new(settings, &upstream)),
            upstream: Arc::new(upstream),
        })
    }
}

/// A Fly token with less than this left is not reused for another exchange.
const FLY_TOKEN_REUSE_MARGIN: Duration = Duration::from_secs(120);
/// A federated token with less than this left is not reused for another IAM call.
const FEDERATED_REUSE_MARGIN: Duration = Duration::from_secs(300);

/// What a provider and every provider derived from it ([`GcpTokenProvider::with_scopes`])
/// share, so that one Fly token and one STS exchange serve every derived credential while
/// they are valid: the last Fly token for the provider's audience, and the federated token
/// (scope `cloud-platform`) that authorises the service account's IAM calls; and the Fly
/// client, the HTTP client and the settings that do not depend on the scopes.
struct Upstream {
    fly_token: RefreshingCache<FlyToken, Error>,
    federated: RefreshingCache<Federated, Error>,
    fly: FlyOidcClient,
    /// Built on first use, so a provider that never misses its cache never pays for it.
    http: tokio::sync::OnceCell<reqwest::Client>,
    connect_timeout: Duration,
    timeout: Duration,
    lifetime: Duration,
    retry: RetryConfig,
    total_timeout: Duration,
    /// Each derived provider's own cache's.
    cache_config: CacheConfig,
    time: SharedTimeSource,
    /// Where `SSL_CERT_FILE`/`SSL_CERT_DIR` are read when the HTTP client is built.
    env: Env,
}

/// A federated token and the Fly token it came from (whose claims the diagnosis quotes).
#[derive(Clone)]
struct Federated {
    token: SecretString,
    fly_token: FlyToken,
}

/// A provider's own: its settings (its scopes) and its cache.
struct Inner {
    cache: RefreshingCache<AccessToken, Error>,
    settings: Settings,
    #[cfg(feature = "google-cloud-auth")]
    entity_tag: std::sync::Mutex<Option<(SecretString, google_cloud_auth::credentials::EntityTag)>>,
}

impl Inner {
    fn new(settings: Settings, upstream: &Upstream) -> Self {
        Self {
            cache: RefreshingCache::new(upstream.cache_config.clone(), upstream.time.clone()),
            settings,
            #[cfg(feature = "google-cloud-auth")]
            entity_tag: std::sync::Mutex::new(None),
        }
    }
}

/// Google access tokens from Fly OIDC tokens, cached. Cheap to clone; clones share the
/// cache and the HTTP connection pool. See the [crate docs](crate).
#[derive(Clone)]
pub struct GcpTokenProvider {
    inner: Arc<Inner>,
    upstream: Arc<Upstream>,
}

impl fmt::Debug for GcpTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let s = &i.settings;
        f.debug_struct("GcpTokenProvider")
            .field("provider", &s.provider().name())
            .field("audience", &s.audience())
            .field("service_account", &s.service_account())
            .field("scopes", &s.scopes())
            .field("sts_url", &s.sts_url())
            .field("iam_url", &s.iam_url())
            .field("fly", &self.upstream.fly)
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
    /// client). Use [`Builder::configure`] to inject another environment.
    pub fn from_env() -> Result<Self, BuildError> {
        Builder::default().build()
    }

    /// The resolved settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The same provider for other `scopes`, with a cache of its own but sharing this one's
    /// upstream: its Fly token and, with a service account, its federated token are reused
    /// while valid, so a token for another scope set costs one `generateAccessToken` (with a
    /// service account) or one STS exchange (without), and no Fly token while the last one
    /// has more than 2 minutes left.
    pub fn with_scopes(&self, scopes: Vec<String>) -> Self {
        let settings = self.inner.settings.clone().with_scopes(scopes);
        Self {
            inner: Arc::new(Inner::new(settings, &self.upstream)),
            upstream: self.upstream.clone(),
        }
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

    /// A fresh access token, bypassing (and not filling) the cache: without a service
    /// account an STS exchange, with one an impersonation; the Fly token and the federated
    /// token they need are shared with every provider derived from this one and reused while
    /// valid (see [`with_scopes`](Self::with_scopes)), else fetched anew; all within
    /// [`ProviderConfig::with_total_timeout`] (default 15 s; past it, a transient error names
    /// the call that did not answer).
    pub async fn fetch_access_token(&self) -> Result<AccessToken, Error> {
        self.within_budget(async |at_google| self.fetch_unbounded(at_google).await)
            .await
    }

    /// Run `op` within [`ProviderConfig::with_total_timeout`]; `op` sets the flag it is given
    /// once the Fly token is in hand, after which a hang is Google's.
    async fn within_budget<T>(
        &self,
        op: impl AsyncFnOnce(&AtomicBool) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let s = &self.inner.settings;
        let up = &self.upstream;
        fly_oidc::within_provider_budget(up.total_timeout, &up.fly, op, || {
            format!("Google ({} or {}) did not answer", s.sts_url(), s.iam_url())
        })
        .await
    }

    /// A Fly token for the provider's audience, reused (across derived providers) while it
    /// has more than 2 minutes left.
    async fn cached_fly_token(&self) -> Result<FlyToken, Error> {
        let (up, audience) = (&self.upstream, self.inner.settings.audience());
        let now = up.time.now();
        up.fly_token
            .get_or_refresh(|| async {
                let fetched = up.fly.fetch_token(Some(audience)).await;
                let token =
                    fetched.map_err(|e| e.fly_token_context("getting a Fly OIDC token failed"))?;
                let expires_at = token.expires_at().unwrap_or(now);
                Ok((token, expires_at))
            })
            .await
    }

    /// The federated token for IAM calls (scope `cloud-platform`), reused (across derived
    /// providers) while it has more than 5 minutes left; `at_google` is set once the Fly
    /// token is in hand.
    async fn federated(&self, at_google: &AtomicBool) -> Result<Federated, Error> {
        self.upstream
            .federated
            .get_or_refresh(|| async {
                let fly_token = self.cached_fly_token().await?;
                at_google.store(true, Ordering::Relaxed);
                let token = self.sts(&fly_token, &[DEFAULT_SCOPE.to_owned()]).await?;
                let expires_at = token.expires_at();
                let federated = Federated {
                    token: token.token,
                    fly_token,
                };
                Ok((federated, expires_at))
            })
            .await
    }

    async fn fetch_unbounded(&self, at_google: &AtomicBool) -> Result<AccessToken, Error> {
        let token = match self.inner.settings.service_account() {
            None => {
                let fly_token = self.cached_fly_token().await?;
                at_google.store(true, Ordering::Relaxed);
                self.sts(&fly_token, self.inner.settings.scopes()).await?
            }
            Some(sa) => {
                let federated = self.federated(at_google).await?;
                at_google.store(true, Ordering::Relaxed);
                self.impersonate(sa, &federated.token, &federated.fly_token)
                    .await?
            }
        };
        self.checked(token)
    }

    /// Exchange a Fly token (whose audience must be one the provider allows) for a
    /// Google access token, impersonating the service account if one is configured.
    ///
    /// A token that has expired, or has less than 30 s left by the provider's clock, is not
    /// sent: an [`ErrorKind::StaleToken`] error says when it expired.
    pub async fn exchange(&self, fly_token: &FlyToken) -> Result<AccessToken, Error> {
        fly_token.ensure_fresh(
            self.upstream.time.now(),
            "the Fly token given to GcpTokenProvider::exchange",
            "fetch a new one just before exchanging it (Fly tokens live about 10 minutes)",
        )?;
        let s = &self.inner.settings;
        let token = match s.service_account() {
            None => self.sts(fly_token, s.scopes()).await?,
            Some(sa) => {
                // With impersonation, the federated token only needs to call IAM Credentials.
                let federated = self.sts(fly_token, &[DEFAULT_SCOPE.to_owned()]).await?;
                self.impersonate(sa, &federated.token, fly_token).await?
            }
        };
        self.checked(token)
    }

    /// The Google STS exchange of `fly_token` for a federated token of `scopes`.
    async fn sts(&self, fly_token: &FlyToken, scopes: &[String]) -> Result<AccessToken, Error> {
        let http = self.http(fly_token).await?;
        let started = self.upstream.time.now();
        let federated = http.sts_exchange(fly_token.expose_jwt(), scopes).await?;
        Ok(AccessToken::new(
            federated.access_token,
            started + federated.expires_in,
        ))
    }

    /// `generateAccessToken` for the service account `sa` with the federated token.
    async fn impersonate(
        &self,
        sa: &str,
        federated: &SecretString,
        fly_token: &FlyToken,
    ) -> Result<AccessToken, Error> {
        let lifetime = self.upstream.lifetime;
        let http = self.http(fly_token).await?;
        let started = self.upstream.time.now();
        let scopes = self.inner.settings.scopes();
        let imp = http
            .generate_access_token(sa, federated, scopes, lifetime)
            .await?;
        // IAM never grants more than the requested lifetime: a later expireTime means
        // Google's clock is ahead of ours; trust the lifetime instead.
        Ok(AccessToken::new(
            imp.access_token,
            imp.expires_at.min(started + lifetime),
        ))
    }

    /// `token`, unless it has already expired by our clock.
    fn checked(&self, token: AccessToken) -> Result<AccessToken, Error> {
        let s = &self.inner.settings;
        if token.expires_at() <= self.upstream.time.now() {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                "Google answered with an access token that has already expired; check this machine's clock",
            ));
        }
        tracing::debug!(
            provider = %s.provider(),
            service_account = ?s.service_account(),
            expires_at = ?token.expires_at(),
            "got a Google access token"
        );
        Ok(token)
    }

    /// Google's endpoints, with the HTTP client (built on first use), the retry policy, and
    /// what a rejection's diagnosis compares: the provider, the audience and `fly_token`'s
    /// claims.
    async fn http<'a>(&'a self, fly_token: &'a FlyToken) -> Result<Http<'a>, Error> {
        let up = &self.upstream;
        let client = up
            .http
            .get_or_try_init(|| async {
                fly_oidc::https_client(&up.env, up.connect_timeout, up.timeout)
            })
            .await?;
        let s = &self.inner.settings;
        Ok(Http {
            client,
            retry: &up.retry,
            settings: s,
            ctx: TrustContext {
                provider: s.provider(),
                audience: s.audience(),
                claims: fly_token.claims(),
            },
        })
    }

    /// A Google-signed ID token of the service account whose `aud` is `audience` (what the
    /// metadata server's `.../identity?audience=A` answers): IAM Credentials `generateIdToken`
    /// with the federated token, which (with its Fly token) is shared with
    /// [`access_token`](Self::access_token) and reused while it has more than 5 minutes left,
    /// within [`ProviderConfig::with_total_timeout`]. The ID token itself is not cached (one
    /// per audience; the caller keeps it until near its `exp`, an hour ahead).
    ///
    /// Errors: [`ErrorKind::InvalidConfiguration`] without a service account (Google issues
    /// ID tokens for service accounts only), else those of [`fetch_access_token`](Self::fetch_access_token).
    pub async fn id_token(&self, audience: &str) -> Result<IdToken, Error> {
        let s = &self.inner.settings;
        let Some(service_account) = s.service_account() else {
            return Err(Error::new(
                ErrorKind::InvalidConfiguration,
                fly_oidc::Message::from(
                    "Google issues ID tokens for a service account only: configure one with ",
                )
                .setting(crate::settings::SERVICE_ACCOUNT),
            ));
        };
        self.within_budget(async |at_google| {
            let federated = self.federated(at_google).await?;
            let http = self.http(&federated.fly_token).await?;
            http.generate_id_token(service_account, &federated.token, audience)
                .await
        })
        .await
    }

    /// Drop the cached token, and the Fly token and federated token shared with the providers
    /// derived from this one, so the next [`access_token`](Self::access_token) (or
    /// [`fetch_access_token`](Self::fetch_access_token)) starts from a new Fly token.
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
        self.upstream.fly_token.clear();
        self.upstream.federated.clear();
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
