//! The credentials provider and its builder.

use crate::settings::{Requested, Settings, sanitize_session_name, session_name_from_claims};
use crate::sts::{self, AssumedRole, StsOptions};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, future};
use aws_sdk_sts::config::SharedHttpClient;
use fly_oidc::cache::{CacheConfig, RefreshingCache};
use fly_oidc::time::SharedTimeSource;
use fly_oidc::{BuildError, Error, ErrorKind};
use fly_oidc::{Env, FlyOidcClient, ProviderConfig, RetryConfig};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

/// Default time to wait for a connection to STS or the Machines API.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time one STS attempt may take.
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures a [`FlyOidcCredentialsProvider`].
///
/// Every setting is optional: unset ones come from the environment of the
/// [`ProviderConfig`] (default: the process environment) when [`build`](Builder::build) runs,
/// then from the defaults. The config also carries the Fly token client, the clock, retries,
/// timeouts and `allow_insecure_http` ([`configure`](Builder::configure)).
///
/// Every setting, with its variable, its `fly-oidc` flag and its default, is in [the one AWS
/// settings table](https://github.com/fly-oidc/fly-oidc/blob/HEAD/docs/aws.md#settings); each
/// method below says its own.
///
/// The profile is the one `AWS_PROFILE` names (default `default`) in the shared config file,
/// `AWS_CONFIG_FILE` (default `$HOME/.aws/config`), read by the AWS SDK's own parser; the
/// credentials file is never read.
#[derive(Debug, Default)]
pub struct Builder {
    requested: Requested,
    config: ProviderConfig,
    http_client: Option<SharedHttpClient>,
    cache: Option<Option<CacheConfig>>,
}

impl Builder {
    /// What this provider shares with the Fly token client and the other providers (replacing
    /// any config given before): the environment `AWS_*` and `FLY_*` variables are read from,
    /// the Fly token client (default: one built from this config, with this provider's
    /// timeouts), the clock of expiry and refresh decisions, the retry policy (the attempts
    /// of STS calls and of the Fly client built here; the backoff between STS attempts,
    /// default 200 ms up to 5 s), the connect timeout (default 2 s), the timeout of one STS
    /// attempt or Machines API request (default 10 s), and whether a plain `http://` STS
    /// endpoint that is not loopback is allowed.
    pub fn configure(mut self, config: &ProviderConfig) -> Self {
        self.config = config.clone();
        self
    }

    /// The role to assume (default: `AWS_ROLE_ARN`).
    pub fn role_arn(mut self, arn: impl Into<String>) -> Self {
        self.requested.role_arn = Some(arn.into());
        self
    }

    /// The audience of the Fly token; the IAM OIDC provider must list it
    /// (default: `FLY_OIDC_AUDIENCE`, else `sts.amazonaws.com`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.requested.audience = Some(audience.into());
        self
    }

    /// The role session name, 2 to 64 characters of `[\w+=,.@-]` (default:
    /// `AWS_ROLE_SESSION_NAME`, else `fly-<app_name>-<machine_id>`).
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.requested.session_name = Some(name.into());
        self
    }

    /// How long the credentials live, 900 to 43200 whole seconds (default:
    /// `FLY_OIDC_AWS_DURATION_SECONDS`, else 3600). The role's maximum session duration must
    /// allow it.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.requested.duration = Some(duration);
        self
    }

    /// An inline session policy that further limits the session's permissions: a JSON IAM
    /// policy document (at most 2048 characters), or `@PATH` to read it from a file (at most
    /// 64 KiB; read by [`build`](Builder::build)). Default: `FLY_OIDC_AWS_POLICY`, in the same
    /// form, else none.
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.requested.policy = Some(policy.into());
        self
    }

    /// Add a managed session policy ARN (at most 10 in all). Default: the comma-separated
    /// list in `FLY_OIDC_AWS_POLICY_ARNS`, else none.
    pub fn policy_arn(mut self, arn: impl Into<String>) -> Self {
        self.requested
            .policy_arns
            .get_or_insert_with(Vec::new)
            .push(arn.into());
        self
    }

    /// Set all managed session policy ARNs (an empty list means none, whatever
    /// `FLY_OIDC_AWS_POLICY_ARNS` says).
    pub fn policy_arns(mut self, arns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.requested.policy_arns = Some(arns.into_iter().map(Into::into).collect());
        self
    }

    /// Ask Fly for AWS's session tags claim (`"aws_principal_tags": true` next to the
    /// audience), which STS makes session tags, for policies on `aws:PrincipalTag/<key>`
    /// (default: `FLY_OIDC_AWS_PRINCIPAL_TAGS`, else no). The role's trust policy must then
    /// allow `sts:TagSession`, or STS answers `AccessDenied`. The tag keys are Fly's own:
    /// read them from a token (`fly-oidc token --claims --aws-principal-tags`).
    pub fn principal_tags(mut self, yes: bool) -> Self {
        self.requested.principal_tags = Some(yes);
        self
    }

    /// Chain a second role (role chaining, usually into another account): with the first
    /// role's credentials, assume this role with `sts:AssumeRole`, and hand out its
    /// credentials (default: `FLY_OIDC_AWS_CHAIN_ROLE_ARN`, else no chain). Its trust policy
    /// must allow `sts:AssumeRole` for the first role (`fly-oidc aws setup --role-name NAME
    /// --trusted-role-arn FIRST_ROLE_ARN` prints it), and the first role's permissions must
    /// allow `sts:AssumeRole` on it. The session policies then apply to the chained session.
    pub fn chain_role_arn(mut self, arn: impl Into<String>) -> Self {
        self.requested.chain_role_arn = Some(arn.into());
        self
    }

    /// The external id the chained role's trust policy requires (`sts:ExternalId`; default:
    /// `FLY_OIDC_AWS_CHAIN_EXTERNAL_ID`, else none). Only with [`chain_role_arn`](Self::chain_role_arn).
    pub fn chain_external_id(mut self, id: impl Into<String>) -> Self {
        self.requested.chain_external_id = Some(id.into());
        self
    }

    /// The chained session's name (default: the first hop's). Only with
    /// [`chain_role_arn`](Self::chain_role_arn).
    pub fn chain_session_name(mut self, name: impl Into<String>) -> Self {
        self.requested.chain_session_name = Some(name.into());
        self
    }

    /// How long the chained credentials live, 900 to 3600 whole seconds (default 3600): AWS
    /// caps a chained session at one hour, so more is an invalid setting. Only with
    /// [`chain_role_arn`](Self::chain_role_arn).
    pub fn chain_duration(mut self, duration: Duration) -> Self {
        self.requested.chain_duration = Some(duration);
        self
    }

    /// No chained role, whatever `FLY_OIDC_AWS_CHAIN_ROLE_ARN` and the other chain settings
    /// say: the first role's credentials are handed out.
    pub fn no_chain(mut self) -> Self {
        self.requested.chained = Some(false);
        self
    }

    /// The region of the STS endpoint (default: `AWS_REGION`, `AWS_DEFAULT_REGION`, the active
    /// profile's region, else `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.requested.region = Some(region.into());
        self
    }

    /// The STS endpoint URL (default: `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else
    /// `sts = endpoint_url` in the profile's `services` section, else the profile's
    /// `endpoint_url`, else the regional endpoint). Plain `http://` only to loopback unless
    /// [`ProviderConfig::with_allow_insecure_http`].
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.requested.endpoint_url = Some(url.into());
        self
    }

    /// Use the FIPS endpoint (default: `AWS_USE_FIPS_ENDPOINT`, else the profile's
    /// `use_fips_endpoint`).
    pub fn use_fips(mut self, use_fips: bool) -> Self {
        self.requested.use_fips = Some(use_fips);
        self
    }

    /// Use the dual-stack endpoint (default: `AWS_USE_DUALSTACK_ENDPOINT`, else the profile's
    /// `use_dualstack_endpoint`).
    pub fn use_dual_stack(mut self, use_dual_stack: bool) -> Self {
        self.requested.use_dual_stack = Some(use_dual_stack);
        self
    }

    /// The HTTP client for STS (default: [`https_client`](crate::https_client), rustls on ring,
    /// built on the first request, so a call that never reaches STS does not load the roots).
    pub fn http_client(mut self, client: SharedHttpClient) -> Self {
        self.http_client = Some(client);
        self
    }

    /// When cached credentials are refreshed (default: 5 minutes before expiry, with up to
    /// 30 s of jitter). See the [crate docs](crate#caching).
    pub fn cache_config(mut self, config: CacheConfig) -> Self {
        self.cache = Some(Some(config));
        self
    }

    /// Turn the built-in cache off: every [`credentials`](FlyOidcCredentialsProvider::credentials)
    /// call then assumes the role anew.
    pub fn disable_cache(mut self) -> Self {
        self.cache = Some(None);
        self
    }

    /// Whether AWS is configured: a role ([`role_arn`](Self::role_arn) or `AWS_ROLE_ARN`, not
    /// blank) or a chained role ([`chain_role_arn`](Self::chain_role_arn) or
    /// `FLY_OIDC_AWS_CHAIN_ROLE_ARN`; without a first role, [`build`](Self::build) then says
    /// one is needed). The one answer to "is AWS configured?" for every front end; without
    /// either the provider only answers "not loaded".
    pub fn is_configured(&self) -> bool {
        self.requested.is_configured(&self.config.env())
    }

    /// Resolve and check the settings (builder values, then the environment and the shared
    /// config file, then the defaults) without building an STS client or a Fly token client.
    ///
    /// # Errors
    /// A [`BuildError`] naming the invalid setting, as [`build`](Self::build).
    pub fn settings(&self) -> Result<Settings, BuildError> {
        let config = &self.config;
        let allow_insecure = config.allow_insecure_http()?;
        self.requested
            .clone()
            .resolve(&config.env(), allow_insecure)
    }

    /// Resolve and check the settings and build the provider.
    ///
    /// Fails when a setting is invalid (role ARN, duration, policy, policy ARNs, session
    /// name, region, endpoint URL, or the Fly token source, such as `FLY_API_HOSTNAME` without
    /// `FLY_API_TOKEN`). A missing role or a missing Fly socket is not a build error: the
    /// provider then answers [`CredentialsError::CredentialsNotLoaded`](aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded)
    /// so a chain moves on.
    pub fn build(self) -> Result<FlyOidcCredentialsProvider, BuildError> {
        let settings = self.settings()?;
        let config = &self.config;
        let env = config.env();
        let connect_timeout = config.connect_timeout().unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let attempt_timeout = config.timeout().unwrap_or(DEFAULT_ATTEMPT_TIMEOUT);
        let time = config.time_source();
        // A Fly client built here takes this provider's timeout defaults.
        let fly = config
            .clone()
            .with_connect_timeout(connect_timeout)
            .with_timeout(attempt_timeout)
            .fly_client_or_build()?;
        // STS's backoff: the retry policy's when one is given, else 200 ms up to 5 s.
        let retry = config.retry().cloned().unwrap_or_else(|| {
            RetryConfig::default()
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5))
        });
        let sts = sts::build_client(
            &settings,
            StsOptions {
                http_client: self
                    .http_client
                    .unwrap_or_else(|| crate::http::LazyHttpsClient::shared_with_env(env.clone())),
                time: time.clone(),
                max_attempts: retry.max_attempts(),
                initial_backoff: retry.initial_backoff(),
                max_backoff: retry.max_backoff().max(retry.initial_backoff()),
                connect_timeout,
                attempt_timeout,
            },
        );
        let cache = self
            .cache
            .unwrap_or(Some(CacheConfig::default()))
            .map(|config| RefreshingCache::new(config, time.clone()));
        Ok(FlyOidcCredentialsProvider {
            inner: Arc::new(Inner {
                settings,
                fly,
                sts,
                env,
                time,
                max_attempts: retry.max_attempts(),
                total_timeout: config.total_timeout(),
                cache,
                first_hop: std::sync::Mutex::new(None),
            }),
        })
    }
}

struct Inner {
    settings: Settings,
    fly: FlyOidcClient,
    sts: aws_sdk_sts::Client,
    /// The config's environment and clock, for [`CredentialProcess`](crate::credential_process).
    #[cfg_attr(not(feature = "disk-cache"), allow(dead_code))]
    env: Env,
    time: SharedTimeSource,
    max_attempts: u32,
    total_timeout: Duration,
    cache: Option<RefreshingCache<Arc<AssumedRole>, Error>>,
    /// With a chain: the first hop's credentials, reused for the next chained hop while they
    /// have [`FIRST_HOP_REUSE_MARGIN`] left, so that retrying a failed second hop does not
    /// fetch a Fly token and assume the first role again.
    first_hop: std::sync::Mutex<Option<AssumedRole>>,
}

/// How much life the first hop's credentials must have left to be used for another chained
/// hop.
const FIRST_HOP_REUSE_MARGIN: Duration = Duration::from_secs(10 * 60);

/// AWS credentials for a Fly Machine: trades a fresh Fly OIDC token for role credentials
/// through STS `AssumeRoleWithWebIdentity`, and caches them. See the [crate docs](crate).
///
/// Cheap to clone; clones share the cache and connections.
#[derive(Clone)]
pub struct FlyOidcCredentialsProvider {
    inner: Arc<Inner>,
}

impl fmt::Debug for FlyOidcCredentialsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlyOidcCredentialsProvider")
            .field("settings", &self.inner.settings)
            .field("fly", &self.inner.fly)
            .field("max_attempts", &self.inner.max_attempts)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl FlyOidcCredentialsProvider {
    /// A builder.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A provider configured from the process environment alone.
    pub fn from_env() -> Result<Self, BuildError> {
        Builder::default().build()
    }

    /// The resolved settings (role, audience, session name, duration, policies, region,
    /// endpoint).
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The Fly token client in use.
    pub fn fly_client(&self) -> &FlyOidcClient {
        &self.inner.fly
    }

    /// The environment and the clock of its [`ProviderConfig`].
    #[cfg(feature = "disk-cache")]
    pub(crate) fn env_and_clock(&self) -> (&Env, &SharedTimeSource) {
        (&self.inner.env, &self.inner.time)
    }

    /// Credentials, from the cache when fresh, else by assuming the role (one caller at a
    /// time; the others wait for its result). The inherent form of
    /// [`ProvideCredentials::provide_credentials`].
    pub async fn credentials(&self) -> provider::Result {
        self.cached()
            .await
            .map(|assumed| assumed.credentials.clone())
            .map_err(crate::credentials_error)
    }

    /// Like [`credentials`](Self::credentials), with the details of the assumed role and
    /// this crate's [`Error`].
    pub async fn assume_role_cached(&self) -> Result<AssumedRole, Error> {
        self.cached().await.map(|assumed| (*assumed).clone())
    }

    async fn cached(&self) -> Result<Arc<AssumedRole>, Error> {
        match &self.inner.cache {
            Some(cache) => {
                cache
                    .get_or_refresh(|| async {
                        // Boxed: keeps the (large) refresh future out of the cached path's.
                        let assumed = Box::pin(self.assume_role()).await?;
                        let expires_at = assumed.expires_at;
                        Ok((Arc::new(assumed), expires_at))
                    })
                    .await
            }
            None => Box::pin(self.assume_role()).await.map(Arc::new),
        }
    }

    /// Assume the role once, bypassing the cache: fetch a fresh Fly token, call STS
    /// `AssumeRoleWithWebIdentity` (retrying transient failures), and on
    /// `ExpiredTokenException` fetch another fresh token and try once more. With a chained
    /// role, then assume it with those credentials (`sts:AssumeRole`) and return its
    /// credentials.
    ///
    /// This is what [`credential_process`](crate::credential_process) calls; it keeps its own
    /// disk cache.
    ///
    /// The whole call ends within [`ProviderConfig::with_total_timeout`] (default 15 s): past it, a
    /// transient error says which call did not answer.
    pub async fn assume_role(&self) -> Result<AssumedRole, Error> {
        let actions = match self.inner.settings.chain {
            Some(_) => "AssumeRoleWithWebIdentity and then AssumeRole (the chained role)",
            None => "AssumeRoleWithWebIdentity",
        };
        self.within_budget(actions, async |at_sts| {
            if self.inner.settings.chain.is_none() {
                return self.assume_web_identity_unbounded(at_sts).await;
            }
            let first = match self.reusable_first_hop() {
                Some(first) => first,
                None => {
                    let first = self.assume_web_identity_unbounded(at_sts).await?;
                    *self.first_hop_slot() = Some(first.clone());
                    first
                }
            };
            at_sts.store(true, Ordering::Relaxed);
            let chained = self.assume_chained_role(&first).await;
            if chained.as_ref().is_err_and(|e| !e.is_transient()) {
                // Refused: the next try starts from a fresh first hop.
                *self.first_hop_slot() = None;
            }
            chained
        })
        .await
    }

    /// The kept first hop, while it has [`FIRST_HOP_REUSE_MARGIN`] left by our clock.
    fn reusable_first_hop(&self) -> Option<AssumedRole> {
        let kept = self.first_hop_slot().clone()?;
        let left = kept.expires_at.duration_since(self.inner.time.now());
        left.is_ok_and(|left| left > FIRST_HOP_REUSE_MARGIN)
            .then_some(kept)
    }

    fn first_hop_slot(&self) -> std::sync::MutexGuard<'_, Option<AssumedRole>> {
        // A panic while holding it cannot leave a half-written value: take it as it is.
        self.inner
            .first_hop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first hop alone: the role the Fly token assumes with `AssumeRoleWithWebIdentity`,
    /// bypassing the cache and any chained role (within the same time budget). For a front
    /// end that checks each hop of a chain on its own (`fly-oidc doctor`).
    pub async fn assume_web_identity_role(&self) -> Result<AssumedRole, Error> {
        self.within_budget("AssumeRoleWithWebIdentity", async |at_sts| {
            self.assume_web_identity_unbounded(at_sts).await
        })
        .await
    }

    /// The second hop alone: assume the chained role with `first`'s credentials
    /// (`sts:AssumeRole`, retrying transient failures). Fails with
    /// [`ErrorKind::NotConfigured`] when no chained role is set.
    pub async fn assume_chained_role(&self, first: &AssumedRole) -> Result<AssumedRole, Error> {
        let inner = &*self.inner;
        let settings = &inner.settings;
        let (Some(chain), Some(first_role_arn)) = (&settings.chain, settings.role_arn.as_deref())
        else {
            let message = fly_oidc::Message::from("no chained role to assume: set ")
                .setting(crate::settings::CHAIN_ROLE_ARN);
            return Err(Error::new(ErrorKind::NotConfigured, message));
        };
        tracing::debug!(
            role_arn = %chain.role_arn,
            first_role_arn,
            "assuming the chained role with the first role's credentials"
        );
        let assumed = sts::assume_chained_role(
            &inner.sts,
            settings,
            chain,
            first_role_arn,
            first,
            inner.max_attempts,
            &inner.time,
        )
        .await?;
        tracing::info!(
            role_arn = %chain.role_arn,
            session_name = %assumed.session_name,
            account_id = ?assumed.account_id,
            "assumed the chained role"
        );
        Ok(assumed)
    }

    /// Runs `call` within [`ProviderConfig::with_total_timeout`]; `actions`: what STS did not
    /// answer.
    async fn within_budget(
        &self,
        actions: &str,
        call: impl AsyncFnOnce(&AtomicBool) -> Result<AssumedRole, Error>,
    ) -> Result<AssumedRole, Error> {
        fly_oidc::within_provider_budget(self.inner.total_timeout, &self.inner.fly, call, || {
            format!(
                "STS {} did not answer {actions}",
                self.inner.settings.sts_endpoint()
            )
        })
        .await
    }

    /// The first hop without the time budget; sets `at_sts` once the Fly token is in hand.
    async fn assume_web_identity_unbounded(
        &self,
        at_sts: &AtomicBool,
    ) -> Result<AssumedRole, Error> {
        let inner = &*self.inner;
        let settings = &inner.settings;
        let role_arn = settings.role_arn.as_deref().ok_or_else(|| {
            let message = fly_oidc::Message::from("no role to assume: set ")
                .setting(crate::settings::ROLE_ARN)
                .text(" to the ARN of the IAM role that trusts Fly's OIDC provider");
            Error::new(ErrorKind::NotConfigured, message)
        })?;
        let mut expired_retry_done = false;
        loop {
            let options =
                fly_oidc::TokenOptions::default().aws_principal_tags(settings.principal_tags);
            let token = inner
                .fly
                .fetch_token_with(Some(&settings.audience), options)
                .await
                .map_err(fly_error)?;
            at_sts.store(true, Ordering::Relaxed);
            let session_name = settings
                .session_name
                .clone()
                .or_else(|| session_name_from_claims(token.claims()))
                .unwrap_or_else(|| self.fallback_session_name());
            tracing::debug!(
                role_arn,
                session_name = %session_name,
                audience = %settings.audience,
                endpoint = %settings.sts_endpoint(),
                "assuming role with a Fly OIDC token"
            );
            match sts::assume_role_with_web_identity(
                &inner.sts,
                settings,
                role_arn,
                &session_name,
                &token,
                inner.max_attempts,
                &inner.time,
            )
            .await
            {
                Ok(assumed) => {
                    tracing::info!(
                        role_arn,
                        session_name = %assumed.session_name,
                        account_id = ?assumed.account_id,
                        expires_in_secs = assumed
                            .expires_at
                            .duration_since(inner.time.now())
                            .unwrap_or_default()
                            .as_secs(),
                        "assumed role with a Fly OIDC token"
                    );
                    return Ok(assumed);
                }
                Err(err)
                    if !expired_retry_done
                        && err.code().is_some_and(sts::is_expired_token_code) =>
                {
                    tracing::warn!(
                        role_arn,
                        code = ?err.code(),
                        "STS said the Fly token expired; trying once more with a fresh token"
                    );
                    expired_retry_done = true;
                    at_sts.store(false, Ordering::Relaxed);
                }
                Err(err) => {
                    // Returned to the caller, who reports it: no warning of our own.
                    tracing::debug!(role_arn, kind = ?err.kind(), code = ?err.code(), error = %err, "assuming role failed");
                    return Err(err);
                }
            }
        }
    }

    fn fallback_session_name(&self) -> String {
        let millis = self
            .inner
            .time
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        sanitize_session_name(&format!("fly-oidc-{millis}"))
    }

    /// The cached credentials while they are fresh (before the cache's jittered refresh
    /// time): served without building a future. Otherwise the cache decides (single flight).
    fn well_before_refresh(&self) -> Option<Credentials> {
        let assumed = self.inner.cache.as_ref()?.get_fresh()?;
        Some(assumed.credentials.clone())
    }

    /// The cached credentials if they have not expired (for
    /// [`ProvideCredentials::fallback_on_interrupt`]).
    pub fn cached_credentials(&self) -> Option<Credentials> {
        self.inner
            .cache
            .as_ref()
            .and_then(|c| c.get_valid())
            .map(|a| a.credentials.clone())
    }
}

/// A token client error, said to be about the Fly token (its kind, code and cause are kept).
fn fly_error(err: Error) -> Error {
    err.fly_token_context("could not get a Fly OIDC token")
}

impl ProvideCredentials for FlyOidcCredentialsProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        if let Some(credentials) = self.well_before_refresh() {
            return future::ProvideCredentials::ready(Ok(credentials));
        }
        future::ProvideCredentials::new(self.credentials())
    }

    fn fallback_on_interrupt(&self) -> Option<Credentials> {
        self.cached_credentials()
    }
}
