//! One credential the server holds: its last good value, its refresh loop and its status.

use bytes::Bytes;
use fly_oidc::SecretString;
use fly_oidc::time::SharedTimeSource;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// Refresh when less than this remains (or half the lifetime, whichever is less).
pub(crate) const REFRESH_BEFORE: Duration = Duration::from_secs(20 * 60);
/// The longest wait between two attempts after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a slot holds. Never printed.
#[derive(Clone)]
pub(crate) enum Secret {
    /// The ECS container-credentials JSON, rendered once per refresh.
    AwsJson(Bytes),
    /// A Google access token.
    Gcp(SecretString),
    /// A token file was written; nothing to serve.
    Written,
}

/// A value and its lifetime.
pub(crate) struct Held {
    pub(crate) value: Secret,
    pub(crate) expires_at: SystemTime,
    pub(crate) fetched_at: SystemTime,
}

impl Held {
    /// When the refresh loop renews it: once less than min(20 minutes, half its lifetime)
    /// remains.
    pub(crate) fn refresh_at(&self) -> SystemTime {
        let lifetime = self
            .expires_at
            .duration_since(self.fetched_at)
            .unwrap_or_default();
        self.expires_at - REFRESH_BEFORE.min(lifetime / 2)
    }
}

/// A failed fetch: the provider's message (never a secret), whether trying again may help, and
/// whether a setting is invalid (a provider error of kind `InvalidConfiguration`, such as a
/// duration above the role's maximum).
#[derive(Clone, Debug)]
pub(crate) struct FetchError {
    pub(crate) message: String,
    pub(crate) transient: bool,
    pub(crate) invalid_setting: bool,
}

impl FetchError {
    /// A failure of our own making (not a provider's error): never an invalid setting.
    pub(crate) fn new(message: impl Into<String>, transient: bool) -> Self {
        Self {
            message: message.into(),
            transient,
            invalid_setting: false,
        }
    }
}

/// A provider's error, classified by its kind.
impl From<fly_oidc::Error> for FetchError {
    fn from(err: fly_oidc::Error) -> Self {
        Self {
            message: err.to_string(),
            transient: err.is_transient(),
            invalid_setting: err.kind() == fly_oidc::ErrorKind::InvalidConfiguration,
        }
    }
}

pub(crate) type FetchFuture =
    Pin<Box<dyn Future<Output = Result<(Secret, SystemTime), FetchError>> + Send>>;
pub(crate) type Fetcher = Arc<dyn Fn() -> FetchFuture + Send + Sync>;

#[derive(Default)]
struct Status {
    last_error: Option<String>,
    last_success: Option<SystemTime>,
    failures_in_row: u32,
}

/// One credential: the last good value, served while valid, renewed in the background.
pub(crate) struct Slot {
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    held: RwLock<Option<Arc<Held>>>,
    status: Mutex<Status>,
    fetcher: Fetcher,
    time: SharedTimeSource,
    fetches: AtomicU64,
}

impl Slot {
    pub(crate) fn new(
        kind: &'static str,
        name: String,
        fetcher: Fetcher,
        time: SharedTimeSource,
    ) -> Self {
        Self {
            kind,
            name,
            held: RwLock::new(None),
            status: Mutex::new(Status::default()),
            fetcher,
            time,
            fetches: AtomicU64::new(0),
        }
    }

    /// The held value if it has not expired.
    pub(crate) fn current(&self) -> Option<Arc<Held>> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        let held = held.as_ref()?;
        (held.expires_at > self.time.now()).then(|| held.clone())
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.time.now()
    }

    /// How many fetches (successful or not) this slot has made.
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The message of the last failure, if the last fetch failed.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_error
            .clone()
    }

    pub(crate) fn last_success(&self) -> Option<SystemTime> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_success
    }

    /// Fetch once and keep the result (or record the failure, logged as a warning).
    pub(crate) async fn fetch(&self) -> Result<(), FetchError> {
        self.fetch_logging(true).await
    }

    /// The first fetch, at start: like [`fetch`](Self::fetch), but a failure is logged at
    /// debug only, since the caller reports it (as the start's error, or as a warning that
    /// it retries).
    pub(crate) async fn fetch_first(&self) -> Result<(), FetchError> {
        self.fetch_logging(false).await
    }

    /// Fetch once and keep the result (or record the failure, logged as a warning when
    /// `warn`, else at debug).
    async fn fetch_logging(&self, warn: bool) -> Result<(), FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let started = self.time.now();
        let result = (self.fetcher)().await;
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok((value, expires_at)) if expires_at > self.time.now() => {
                *self.held.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Held {
                    value,
                    expires_at,
                    fetched_at: started,
                }));
                status.last_error = None;
                status.last_success = Some(self.time.now());
                status.failures_in_row = 0;
                tracing::debug!(kind = self.kind, name = %self.name, expires_at = %fly_oidc::time::format_rfc3339(expires_at), "credential renewed");
                Ok(())
            }
            Ok(_) => {
                let error = FetchError::new(
                    "the credential was already expired when it arrived; check this machine's clock",
                    true,
                );
                status.last_error = Some(error.message.clone());
                status.failures_in_row = status.failures_in_row.saturating_add(1);
                Err(error)
            }
            Err(error) => {
                let message = fly_oidc::redact_jwts(&error.message);
                let valid = self.current().is_some();
                if valid {
                    tracing::warn!(kind = self.kind, name = %self.name, error = %message, "refresh failed; serving the cached credential while it is valid");
                } else if warn {
                    tracing::warn!(kind = self.kind, name = %self.name, error = %message, "could not get the credential");
                } else {
                    tracing::debug!(kind = self.kind, name = %self.name, error = %message, "could not get the credential");
                }
                status.last_error = Some(message.clone());
                status.failures_in_row = status.failures_in_row.saturating_add(1);
                Err(FetchError { message, ..error })
            }
        }
    }

    /// How long the refresh loop waits before its next fetch.
    fn next_delay(&self) -> Duration {
        let failures = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failures_in_row;
        let now = self.time.now();
        let held = self.held.read().unwrap_or_else(|e| e.into_inner()).clone();
        let until_refresh = match held {
            Some(held) => held.refresh_at().duration_since(now).unwrap_or_default(),
            None => Duration::ZERO,
        };
        if failures == 0 {
            return until_refresh;
        }
        // Jittered exponential backoff: 1 s, 2 s, 4 s ... up to 30 s, a random part of it.
        let ceiling =
            Duration::from_secs(1u64 << failures.min(5).saturating_sub(1)).min(MAX_BACKOFF);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
    }

    /// Renew the value ahead of expiry forever (the task is aborted at shutdown).
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.next_delay()).await;
            let _ = self.fetch().await;
        }
    }
}

/// Google ID tokens of the service account, one per audience (`.../identity?audience=A`),
/// each fetched on first request and kept until less than [`ID_TOKEN_REFRESH_BEFORE`] remains
/// (Google's live an hour). One fetch at a time: concurrent requests wait for it and share it.
pub(crate) struct IdTokens {
    provider: fly_oidc_gcp::GcpTokenProvider,
    time: SharedTimeSource,
    cache: tokio::sync::Mutex<std::collections::HashMap<String, fly_oidc_gcp::IdToken>>,
}

/// Fetch a new ID token when less than this remains of the cached one.
pub(crate) const ID_TOKEN_REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How many audiences get ID tokens of their own (a bound on what clients can make us hold).
pub(crate) const MAX_ID_TOKEN_AUDIENCES: usize = 64;

impl IdTokens {
    /// ID tokens from `provider` (which must have a service account), judged by `time`.
    pub(crate) fn new(provider: fly_oidc_gcp::GcpTokenProvider, time: SharedTimeSource) -> Self {
        Self {
            provider,
            time,
            cache: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The ID token for `audience`: the cached one while more than
    /// [`ID_TOKEN_REFRESH_BEFORE`] remains, else a new one. The error is the provider's
    /// message (never a secret), or the audience limit.
    pub(crate) async fn get(&self, audience: &str) -> Result<SecretString, String> {
        let mut cache = self.cache.lock().await;
        let now = self.time.now();
        if let Some(token) = cache.get(audience)
            && token.expires_at() > now + ID_TOKEN_REFRESH_BEFORE
        {
            return Ok(SecretString::new(token.expose_secret()));
        }
        cache.retain(|_, token| token.expires_at() > now);
        if !cache.contains_key(audience) && cache.len() >= MAX_ID_TOKEN_AUDIENCES {
            return Err(format!(
                "ID tokens for more than {MAX_ID_TOKEN_AUDIENCES} audiences are held already; try again when one has expired"
            ));
        }
        let token = self
            .provider
            .id_token(audience)
            .await
            .map_err(|e| e.to_string())?;
        let secret = SecretString::new(token.expose_secret());
        cache.insert(audience.to_owned(), token);
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn refresh_rule_is_min_of_twenty_minutes_and_half_the_lifetime() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Held {
            value: Secret::Written,
            fetched_at: t0,
            expires_at: t0 + Duration::from_secs(3600),
        };
        assert_eq!(hour.refresh_at(), t0 + Duration::from_secs(2400));
        let short = Held {
            value: Secret::Written,
            fetched_at: t0,
            expires_at: t0 + Duration::from_secs(900),
        };
        assert_eq!(short.refresh_at(), t0 + Duration::from_secs(450));
    }
}
