//! [`ProviderConfig`]: what the Fly token client and every cloud provider are configured with
//! alike.

use crate::client::FlyOidcClient;
use crate::env::Env;
use crate::error::BuildError;
use crate::retry::RetryConfig;
use crate::time::SharedTimeSource;
use std::time::Duration;

/// The settings every fly-oidc client shares: the environment, the Fly token client, the
/// clock, retries, timeouts (a provider's total budget too) and whether plain `http://` is
/// allowed. Each builder takes it with `configure`
/// ([`fly_oidc::Builder::configure`](crate::Builder::configure),
/// `fly_oidc_aws::Builder::configure`, `fly_oidc_gcp::Builder::configure`), and reads what it
/// uses; whatever is left unset is that builder's default.
///
/// ```
/// use fly_oidc::{Env, FlyOidcClient, ProviderConfig, RetryConfig};
/// use std::time::Duration;
/// let config = ProviderConfig::default()
///     .with_env(Env::from_slice(&[("FLY_OIDC_TOKEN_FILE", "/run/fly-token")]))
///     .with_retry(RetryConfig::default().with_max_attempts(5))
///     .with_timeout(Duration::from_secs(3));
/// let client = FlyOidcClient::builder().configure(&config).build()?;
/// assert_eq!(client.source().to_string(), "the token file /run/fly-token");
/// // The same config, with that client, for a provider:
/// let config = config.with_fly_client(client);
/// assert!(config.fly_client().is_some());
/// # Ok::<(), fly_oidc::BuildError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ProviderConfig {
    env: Option<Env>,
    fly_client: Option<FlyOidcClient>,
    time: Option<SharedTimeSource>,
    retry: Option<RetryConfig>,
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
    allow_insecure_http: Option<bool>,
    total_timeout: Option<Duration>,
}

/// The default time budget of one whole credential fetch of a cloud provider
/// ([`ProviderConfig::with_total_timeout`]): 15 s. It ends, with the provider's own error,
/// inside the deadlines of the consumers: the AWS SDK's identity cache gives a credentials
/// provider (unless the client sets `IdentityCache::lazy().load_timeout`) the sum of the
/// worst-case retry backoffs plus `attempts × max(2 × connect timeout, attempt timeout)` of
/// the client's own settings: with the SDK defaults (3 attempts, backoff 1 s then 2 s, 3.1 s
/// connect timeout), 3 s + 3 × 6.2 s = 21.6 s (`pessimistic_load_timeout` in
/// aws-smithy-runtime's `client/identity/cache/lazy.rs`); Google's credential configuration
/// and client libraries give a token request 30 s. Past those deadlines the consumer reports
/// only that it timed out; inside them the user sees which call hung.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(15);

impl ProviderConfig {
    /// The environment every setting's variable is read from (default: the process's own).
    /// Tests inject one with [`Env::from_slice`].
    pub fn with_env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// Where a provider gets its Fly tokens (default: a [`FlyOidcClient`] the provider builds
    /// with this config and its own timeout defaults). The token client's builder ignores it.
    pub fn with_fly_client(mut self, client: FlyOidcClient) -> Self {
        self.fly_client = Some(client);
        self
    }

    /// The clock of expiry and refresh decisions, and of a token file's freshness (default:
    /// the system clock).
    pub fn with_time_source(mut self, time: SharedTimeSource) -> Self {
        self.time = Some(time);
        self
    }

    /// How transient failures are retried: the attempts and the backoff of every call
    /// (default: [`RetryConfig::default`], except AWS STS's backoff: 200 ms up to 5 s).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(retry);
        self
    }

    /// How long to wait for a connection (default: the Machines API 1 s, AWS STS and the Fly
    /// client the AWS provider builds 2 s, Google 5 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long one request (one attempt) may take (default: the Machines API 5 s, AWS STS
    /// and the Fly client the AWS provider builds 10 s, Google 15 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Allow plain `http://` endpoints on hosts other than loopback (and `_api.internal` for
    /// the Machines API) (default: `FLY_OIDC_ALLOW_INSECURE_HTTP`, else no).
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = Some(allow);
        self
    }

    /// The time budget of one whole credential fetch of a cloud provider: the Fly token, the
    /// cloud's token service (and Google's impersonation, AWS's chained role), each with its
    /// retries (default [`DEFAULT_TOTAL_TIMEOUT`], 15 s). When it runs out, the error is
    /// transient and names the call that did not answer. Keep it below the deadline of the
    /// SDK client the provider plugs into. The Fly token client ignores it.
    pub fn with_total_timeout(mut self, budget: Duration) -> Self {
        self.total_timeout = Some(budget);
        self
    }

    /// The environment: the one given, else the process's.
    pub fn env(&self) -> Env {
        self.env.clone().unwrap_or_else(Env::real)
    }

    /// The Fly token client given, if any.
    pub fn fly_client(&self) -> Option<&FlyOidcClient> {
        self.fly_client.as_ref()
    }

    /// The Fly token client given, else one built with this config (for a provider that was
    /// given none).
    ///
    /// # Errors
    /// The [`BuildError`] of [`Builder::build`](crate::Builder::build) when none was given.
    pub fn fly_client_or_build(&self) -> Result<FlyOidcClient, BuildError> {
        match &self.fly_client {
            Some(client) => Ok(client.clone()),
            None => FlyOidcClient::builder().configure(self).build(),
        }
    }

    /// The clock: the one given, else the system clock.
    pub fn time_source(&self) -> SharedTimeSource {
        self.time.clone().unwrap_or_default()
    }

    /// The retry policy given, if any.
    pub fn retry(&self) -> Option<&RetryConfig> {
        self.retry.as_ref()
    }

    /// The connect timeout given, if any.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The per-request timeout given, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// A provider's total time budget: the one given, else [`DEFAULT_TOTAL_TIMEOUT`].
    pub fn total_timeout(&self) -> Duration {
        self.total_timeout.unwrap_or(DEFAULT_TOTAL_TIMEOUT)
    }

    /// Whether plain `http://` is allowed beyond loopback: the value given, else
    /// `FLY_OIDC_ALLOW_INSECURE_HTTP` in [`env`](Self::env), else no.
    ///
    /// # Errors
    /// A [`BuildError`] naming `FLY_OIDC_ALLOW_INSECURE_HTTP` when it is not a yes/no value.
    pub fn allow_insecure_http(&self) -> Result<bool, BuildError> {
        crate::endpoint::allow_insecure_http(self.allow_insecure_http, &self.env())
    }
}
