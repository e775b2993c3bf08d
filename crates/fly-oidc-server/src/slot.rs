//! One credential the server holds: its last good value, its refresh loop and its status.

use bytes::Bytes;
use fly_oidc::SecretString;
use fly_oidc::budget::RateLimit;
use fly_oidc::time::SharedTimeSource;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, watch};

/// Refresh when less than this remains (or half the lifetime, whichever is less).
pub(crate) const REFRESH_BEFORE: Duration = Duration::from_secs(20 * 60);
/// The longest wait between two attempts after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The backoff after `failures` in a row: 1 s, 2 s, 4 s ... up to [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(5).saturating_sub(1)).min(MAX_BACKOFF)
}

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

/// A failed fetch: the provider's message (never a secret), whether trying again may help,
/// whether a setting is invalid (a provider error of kind `InvalidConfiguration`, such as a
/// duration above the role's maximum), and what the refusing service answered (its HTTP
/// status and error code), so a client is answered with the status that fits.
#[derive(Clone, Debug)]
pub(crate) struct FetchError {
    pub(crate) message: String,
    /// The provider's message with its settings as data, to name them as a front end does.
    named: Option<fly_oidc::Message>,
    pub(crate) transient: bool,
    pub(crate) invalid_setting: bool,
    /// The upstream's HTTP status and error code, when a service refused the request.
    pub(crate) refused: Option<(u16, Option<String>)>,
    /// The kind of the provider's error, when there was one.
    pub(crate) kind: Option<fly_oidc::ErrorKind>,
}

impl FetchError {
    /// The same error, the settings in its message named as `naming` says.
    pub(crate) fn named(mut self, naming: fly_oidc::Naming) -> Self {
        if let Some(message) = &self.named {
            self.message = message.render(naming);
        }
        self
    }

    /// A failure of our own making (not a provider's error): never an invalid setting.
    pub(crate) fn new(message: impl Into<String>, transient: bool) -> Self {
        Self {
            message: message.into(),
            named: None,
            transient,
            invalid_setting: false,
            refused: None,
            kind: None,
        }
    }

    /// The HTTP status a client asking for this credential is answered with, and the `code`
    /// of the JSON body: 503 only for what is transient; for a refusal, the upstream's own
    /// 4xx (Google's 403 for a denied IAM permission, 400 for an invalid scope or audience,
    /// 404 for a service account that does not exist; its 401 becomes a 403); 502 for an
    /// answer that was not one; 403 for any other permanent failure (a trust configuration
    /// that refuses the token).
    pub(crate) fn answer(&self) -> (http::StatusCode, String) {
        use http::StatusCode;
        if self.transient {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "CredentialsUnavailable".into(),
            );
        }
        let code = |fallback: &str| {
            self.refused
                .as_ref()
                .and_then(|(_, code)| code.clone())
                .filter(|c| !c.is_empty() && c.len() <= 64 && !c.contains(char::is_whitespace))
                .unwrap_or_else(|| fallback.to_owned())
        };
        // Google's 401 (the federated token not accepted) is this server's failure to
        // authenticate, not the client's: a 403, so no client takes it as a request to log in.
        if let Some((status, _)) = &self.refused
            && (400..500).contains(status)
            && !matches!(status, 401 | 408 | 429)
            && let Ok(status) = StatusCode::from_u16(*status)
        {
            return (status, code("CredentialsRefused"));
        }
        if self.kind == Some(fly_oidc::ErrorKind::InvalidResponse) {
            return (StatusCode::BAD_GATEWAY, "InvalidUpstreamResponse".into());
        }
        (StatusCode::FORBIDDEN, code("CredentialsRefused"))
    }
}

/// A provider's error, classified by its kind.
impl From<fly_oidc::Error> for FetchError {
    fn from(err: fly_oidc::Error) -> Self {
        let refused = err
            .refused_by()
            .and(err.status())
            .map(|status| (status, err.code().map(str::to_owned)));
        Self {
            message: err.to_string(),
            named: Some(err.named_message().clone()),
            transient: err.is_transient(),
            invalid_setting: err.kind() == fly_oidc::ErrorKind::InvalidConfiguration,
            refused,
            kind: Some(err.kind()),
        }
    }
}

pub(crate) type FetchFuture =
    Pin<Box<dyn Future<Output = Result<(Secret, SystemTime), FetchError>> + Send>>;
pub(crate) type Fetcher = Arc<dyn Fn() -> FetchFuture + Send + Sync>;

/// A [`Fetcher`] that runs `fetch` with its own clone of `with` each time.
pub(crate) fn fetcher<T, F, Fut>(with: T, fetch: F) -> Fetcher
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Secret, SystemTime), FetchError>> + Send + 'static,
{
    Arc::new(move || Box::pin(fetch(with.clone())))
}

#[derive(Default)]
struct Status {
    /// The last failure and when it happened, while the last fetch failed.
    last_failure: Option<(FetchError, SystemTime)>,
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
    /// A fetch is under way.
    in_flight: AtomicBool,
    /// Bumped when a fetch ends: requests waiting for a new key's first value watch it.
    done: watch::Sender<u64>,
    /// On-demand slots: a client asked for it since its last fetch started.
    used: AtomicBool,
    /// On-demand slots: its loop runs.
    running: AtomicBool,
    /// On-demand slots: dropped from its cache, so its loop ends.
    evicted: AtomicBool,
    /// Wakes the slot's loop, wherever it waits, when the slot is evicted.
    on_eviction: Notify,
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
            in_flight: AtomicBool::new(false),
            done: watch::channel(0).0,
            used: AtomicBool::new(false),
            running: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            on_eviction: Notify::new(),
        }
    }

    /// The last failure, while the last fetch failed.
    pub(crate) fn last_failure(&self) -> Option<FetchError> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_failure
            .as_ref()
            .map(|(error, _)| error.clone())
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

    /// The clock that judges this slot's values.
    pub(crate) fn time(&self) -> &SharedTimeSource {
        &self.time
    }

    /// How many fetches (successful or not) this slot has made.
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The message of the last failure, if the last fetch failed.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_failure().map(|error| error.message)
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
        /// Marks the fetch done however it ends (an aborted task included).
        struct Done<'a>(&'a Slot);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.in_flight.store(false, Ordering::SeqCst);
                self.0.done.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.in_flight.store(true, Ordering::SeqCst);
        let _done = Done(self);
        let started = self.time.now();
        let result = (self.fetcher)().await;
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let error = match result {
            Ok((value, expires_at)) if expires_at > self.time.now() => {
                *self.held.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Held {
                    value,
                    expires_at,
                    fetched_at: started,
                }));
                status.last_failure = None;
                status.last_success = Some(self.time.now());
                status.failures_in_row = 0;
                tracing::debug!(kind = self.kind, name = %self.name, expires_at = %fly_oidc::time::format_rfc3339(expires_at), "credential renewed");
                return Ok(());
            }
            Ok(_) => FetchError::new(
                "the credential was already expired when it arrived; check this machine's clock",
                true,
            ),
            Err(error) => {
                let message = fly_oidc::redact_jwts(&error.message);
                if self.current().is_some() {
                    tracing::warn!(kind = self.kind, name = %self.name, error = %message, "refresh failed; serving the cached credential while it is valid");
                } else if warn {
                    tracing::warn!(kind = self.kind, name = %self.name, error = %message, "could not get the credential");
                } else {
                    tracing::debug!(kind = self.kind, name = %self.name, error = %message, "could not get the credential");
                }
                FetchError { message, ..error }
            }
        };
        status.last_failure = Some((error.clone(), self.time.now()));
        status.failures_in_row = status.failures_in_row.saturating_add(1);
        Err(error)
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
        // Jittered: a random part of the backoff.
        let millis = u64::try_from(backoff(failures).as_millis()).unwrap_or(u64::MAX);
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

/// How long a permanent refusal of an on-demand key is kept as its answer, before a client's
/// request may try it again.
pub(crate) const REFUSAL_TTL: Duration = Duration::from_secs(5 * 60);

/// Starts an on-demand slot's loop on the server's task set.
pub(crate) type Spawn = Box<dyn Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync>;

/// Clears [`Slot::running`] when the loop ends, however it ends.
struct Running<'a>(&'a Slot);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
    }
}

impl Slot {
    /// Whether the last fetch failed for good less than [`REFUSAL_TTL`] ago, with no valid
    /// value held: the refusal is the answer.
    /// Transient failures in a row back off as the refresh loop does (1 s, 2 s ... 30 s,
    /// without jitter), so a client asking again and again does not make a call each time.
    fn refused_recently(&self) -> bool {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.last_failure.as_ref().is_some_and(|(error, at)| {
            let keep = match error.transient {
                true => backoff(status.failures_in_row),
                false => REFUSAL_TTL,
            };
            *at + keep > self.time.now()
        })
    }

    /// Whether a request for this on-demand slot should (re)start its loop: nothing valid
    /// held (unless refused recently), or the value held is due for renewal.
    fn wants_start(&self) -> bool {
        if self.running.load(Ordering::SeqCst) {
            return false;
        }
        match self.held.read().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(held) if held.expires_at > self.time.now() => {
                held.refresh_at() <= self.time.now() && !self.refused_recently()
            }
            _ => !self.refused_recently(),
        }
    }

    /// Mark the slot dropped from its cache: its loop ends, waiting or not.
    fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        self.on_eviction.notify_waiters();
    }

    /// Until [`evict`](Self::evict) is called (at once if it was).
    async fn until_evicted(&self) {
        let notified = self.on_eviction.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.evicted.load(Ordering::SeqCst) {
            notified.await;
        }
    }

    /// The loop of a slot made for a client's key (a scope set, an ID-token audience):
    /// fetch now (on demand: after renewals in the Machines API budget), then renew ahead of
    /// expiry, or retry a transient failure with backoff, only while clients still ask for
    /// it (a request since the last fetch started). A permanent refusal ends the loop: it is
    /// kept as the answer for [`REFUSAL_TTL`], never retried in the background. So is an
    /// eviction from the cache.
    pub(crate) async fn run_on_demand(self: Arc<Self>, new_keys: RateLimit) {
        let _running = Running(&self);
        self.used.store(false, Ordering::SeqCst);
        // A new key (nothing valid held) first waits for a turn in the budget of new keys,
        // then behind renewals in the Machines API budget; a served one due for renewal waits
        // for neither. Its failure is the client's
        // answer, so it is logged at debug only (junk keys must not flood the log).
        let first = if self.current().is_some() {
            self.fetch().await
        } else {
            // No turn within the wait of the request that started it: give up, so that keys
            // nobody waits for any more do not queue for turns (the next request starts anew).
            tokio::select! {
                () = new_keys.acquire() => {}
                () = self.until_evicted() => return,
                () = tokio::time::sleep(FIRST_VALUE_WAIT) => return,
            }
            fly_oidc::budget::on_demand(self.fetch_first()).await
        };
        if first.as_ref().is_err_and(|e| !e.transient) {
            return;
        }
        loop {
            // An eviction ends the loop at once, not at its next renewal: an evicted key's
            // task and token do not linger.
            tokio::select! {
                () = tokio::time::sleep(self.next_delay()) => {}
                () = self.until_evicted() => return,
            }
            if !self.used.swap(false, Ordering::SeqCst) {
                tracing::debug!(kind = self.kind, name = %self.name, "no client asked since the last fetch; not renewing");
                return;
            }
            if self.fetch().await.is_err_and(|e| !e.transient) {
                return;
            }
        }
    }
}

/// One key's slot in an [`OnDemand`] cache.
struct Entry {
    slot: Arc<Slot>,
    /// When it was last asked for (a tick of the cache's counter): the least recent goes first.
    last_used: u64,
}

/// Slots made on demand for keys that clients choose (`?scopes=` sets, `identity?audience=`
/// values), at most `capacity` of them. A new key always gets a place: when the cache is
/// full, an entry with no valid value (failing, or waiting for its first) goes first, else
/// the least recently used: keys waiting for a turn never push out one in use. The map's lock
/// is never held across an await (a slow fetch for one key delays no other), and each key has one
/// loop at a time (single flight).
///
/// A small map with a linear scan at eviction, rather than an LRU crate: there are at most
/// 64 entries, and the eviction order (failing first, then least recent) is not what those
/// crates offer.
pub(crate) struct OnDemand {
    capacity: usize,
    entries: Mutex<(u64, HashMap<String, Entry>)>,
    /// Turns for a new key's first fetch, shared by the server's caches.
    new_keys: RateLimit,
}

/// A client-chosen key's value with less than this (or half its lifetime) left is renewed
/// before it is handed out
/// (the request waits for the renewal, up to [`FIRST_VALUE_WAIT`]); Google's clients treat a
/// token this close to expiry as expired.
pub(crate) const MIN_HANDOUT: Duration = Duration::from_secs(5 * 60);

/// How long a request for a new key waits for its first value.
pub(crate) const FIRST_VALUE_WAIT: Duration = Duration::from_secs(10);

impl OnDemand {
    pub(crate) fn new(capacity: usize, new_keys: RateLimit) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new((0, HashMap::new())),
            new_keys,
        }
    }

    /// The slots held, for `/healthz`.
    pub(crate) fn slots(&self) -> Vec<Arc<Slot>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut slots: Vec<_> = entries.1.values().map(|e| e.slot.clone()).collect();
        slots.sort_by(|a, b| a.name.cmp(&b.name));
        slots
    }

    /// The slot for `key` (made by `make` when new, evicting another when full), its loop
    /// started if due; waits up to [`FIRST_VALUE_WAIT`] for a fetch under way when nothing
    /// valid is held. The caller answers from [`Slot::current`], else from the slot's last
    /// failure.
    pub(crate) async fn get(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<Arc<Slot>, FetchError>,
        spawn: &Spawn,
    ) -> Result<Arc<Slot>, FetchError> {
        let (slot, start) = {
            let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let (tick, entries) = &mut *guard;
            *tick += 1;
            let now = *tick;
            let slot = match entries.get_mut(key) {
                Some(entry) => {
                    entry.last_used = now;
                    entry.slot.clone()
                }
                None => {
                    let slot = make()?;
                    if entries.len() >= self.capacity {
                        let victim = entries
                            .iter()
                            .min_by_key(|(_, e)| (e.slot.current().is_some(), e.last_used))
                            .map(|(k, _)| k.clone());
                        if let Some(victim) = victim.and_then(|k| entries.remove(&k)) {
                            victim.slot.evict();
                            tracing::debug!(kind = victim.slot.kind, name = %victim.slot.name, "evicted from the cache of client-chosen keys");
                        }
                    }
                    entries.insert(
                        key.to_owned(),
                        Entry {
                            slot: slot.clone(),
                            last_used: now,
                        },
                    );
                    slot
                }
            };
            slot.used.store(true, Ordering::SeqCst);
            let start = slot.wants_start()
                && slot
                    .running
                    .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
            (slot, start)
        };
        let mut done = slot.done.subscribe();
        if start {
            spawn(Box::pin(slot.clone().run_on_demand(self.new_keys.clone())));
        }
        // Nothing valid, or too little left to hand out (a key nobody asked for lately was
        // not renewed): wait for the fetch under way, then answer what is held.
        let short = slot.current().is_none_or(|held| {
            let lifetime = held
                .expires_at
                .duration_since(held.fetched_at)
                .unwrap_or_default();
            held.expires_at < slot.now() + MIN_HANDOUT.min(lifetime / 2)
        });
        if short && (start || slot.in_flight.load(Ordering::SeqCst)) {
            let _ = tokio::time::timeout(FIRST_VALUE_WAIT, done.changed()).await;
        }
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// 503 only for what is transient; a refusal gets the upstream's 4xx and code (a 401
    /// becomes a 403); an answer that was none, a 502; another permanent failure, a 403.
    #[test]
    fn a_failure_is_answered_with_the_status_that_fits() {
        use fly_oidc::{Error, ErrorKind};
        let google = |status: u16, code: &str| {
            FetchError::from(
                Error::new(ErrorKind::TrustRejected, "refused")
                    .with_status(status)
                    .with_code(code)
                    .with_refused_by("Google IAM Credentials"),
            )
            .answer()
        };
        let answer = |status: http::StatusCode, code: &str| (status, code.to_owned());
        assert_eq!(
            google(403, "PERMISSION_DENIED"),
            answer(http::StatusCode::FORBIDDEN, "PERMISSION_DENIED")
        );
        assert_eq!(
            google(400, "INVALID_ARGUMENT"),
            answer(http::StatusCode::BAD_REQUEST, "INVALID_ARGUMENT")
        );
        assert_eq!(
            google(401, "UNAUTHENTICATED"),
            answer(http::StatusCode::FORBIDDEN, "UNAUTHENTICATED")
        );
        let busy = Error::new(ErrorKind::Transient, "busy").with_status(503);
        assert_eq!(
            FetchError::from(busy).answer().0,
            http::StatusCode::SERVICE_UNAVAILABLE
        );
        let garbage = Error::new(ErrorKind::InvalidResponse, "not JSON");
        assert_eq!(
            FetchError::from(garbage).answer().0,
            http::StatusCode::BAD_GATEWAY
        );
        let fly = Error::new(ErrorKind::FlyApi, "the Machines API refused").with_status(401);
        assert_eq!(
            FetchError::from(fly).answer(),
            answer(http::StatusCode::FORBIDDEN, "CredentialsRefused")
        );
    }

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
