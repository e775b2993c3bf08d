//! A refreshing cache for expiring credentials, shared by the AWS and GCP providers.
//!
//! [`RefreshingCache`] holds one value and when it expires. Its vocabulary is the one the
//! `fly-oidc` disk cache uses too:
//!
//! - **refresh window**: refresh when less than this remains before expiry
//!   ([`CacheConfig::with_refresh_window`], 5 minutes by default, minus up to
//!   [`jitter`](CacheConfig::with_jitter) so a fleet does not refresh in lockstep). A value
//!   that lives shorter than the window is refreshed at half its remaining life.
//! - **min TTL**: the disk cache's name for its refresh window, as a user sets it: reuse a
//!   cached value while at least this much remains (`FLY_OIDC_AWS_MIN_TTL`, 15 minutes).
//! - **stale floor**: after a failed refresh, a cached value is still served while more than
//!   this remains (zero here: until it expires).
//!
//! Behaviour:
//!
//! - **single flight**: one caller runs the refresh while the others wait for it, then take
//!   its value or, when nothing valid is cached, its error (a failed refresh is shared with
//!   the callers that waited for it, instead of each trying again in turn);
//! - **static stability**: when a refresh fails while the cached value is above the stale
//!   floor, the cached value is served, a warning logged, and the next refresh waits 10 s;
//! - **never expired**: an expired value is never served from the cache; a value that a refresh
//!   returns already expired is passed back uncached, with a warning, so refresh functions
//!   should reject such values themselves (the AWS and GCP providers do).
//!
//! ```
//! use fly_oidc::cache::{CacheConfig, RefreshingCache};
//! use fly_oidc::time::{ManualTimeSource, SharedTimeSource};
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
//! let cache: RefreshingCache<&str, String> =
//!     RefreshingCache::new(CacheConfig::default(), SharedTimeSource::new(clock.clone()));
//! let expires = UNIX_EPOCH + Duration::from_secs(1_000_000 + 3600);
//! let first = cache.get_or_refresh(|| async { Ok(("a", expires)) }).await;
//! assert_eq!(first.unwrap(), "a");
//! // Served from the cache: the refresh function is not called.
//! let again = cache.get_or_refresh(|| async { Ok(("b", expires)) }).await;
//! assert_eq!(again.unwrap(), "a");
//! # }
//! ```

use crate::time::SharedTimeSource;
use std::fmt;
use std::future::Future;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

/// When a [`RefreshingCache`] refreshes. See the [module docs](self) for the terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    refresh_window: Duration,
    jitter: Duration,
    failure_backoff: Duration,
    stale_floor: Duration,
}

impl Default for CacheConfig {
    /// A 5-minute refresh window (plus up to 30 s of jitter); after a failed refresh, wait
    /// 10 s before trying again while the cached value is still valid; a zero stale floor.
    fn default() -> Self {
        Self {
            refresh_window: Duration::from_secs(300),
            jitter: Duration::from_secs(30),
            failure_backoff: Duration::from_secs(10),
            stale_floor: Duration::ZERO,
        }
    }
}

impl CacheConfig {
    /// The refresh window: refresh when less than this remains before expiry.
    ///
    /// If a value lives shorter than this, it is refreshed at half its remaining life.
    pub fn with_refresh_window(mut self, window: Duration) -> Self {
        self.refresh_window = window;
        self
    }

    /// Up to this much earlier, chosen at random per value, so a fleet does not refresh
    /// in lockstep.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    fn refresh_at(&self, now: SystemTime, expires_at: SystemTime) -> SystemTime {
        let remaining = expires_at.duration_since(now).unwrap_or_default();
        let jitter_nanos = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(fastrand::u64(0..=jitter_nanos));
        let window_start = expires_at
            .checked_sub(self.refresh_window + jitter)
            .unwrap_or(now);
        window_start.max(now + remaining / 2)
    }
}

#[derive(Clone)]
struct Entry<T> {
    value: T,
    expires_at: SystemTime,
    refresh_at: SystemTime,
}

/// What the cache knows, behind one lock.
struct State<T, E> {
    entry: Option<Entry<T>>,
    /// How many refreshes have finished; a waiter compares it with the count it saw before
    /// waiting to tell whether a refresh ran meanwhile.
    refreshes: u64,
    /// The error of refresh number `.0`, when it failed with nothing valid cached.
    last_failure: Option<(u64, E)>,
}

impl<T: Clone, E> State<T, E> {
    fn fresh(&self, now: SystemTime) -> Option<T> {
        self.entry
            .as_ref()
            .filter(|e| now < e.refresh_at && now < e.expires_at)
            .map(|e| e.value.clone())
    }
}

/// A cache of one expiring value `T` with single-flight refresh; a refresh fails with `E`.
/// See the [module docs](self).
pub struct RefreshingCache<T, E> {
    state: RwLock<State<T, E>>,
    /// Held by the one caller running a refresh.
    refreshing: tokio::sync::Mutex<()>,
    config: CacheConfig,
    time: SharedTimeSource,
}

impl<T, E> fmt::Debug for RefreshingCache<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let entry = state.entry.as_ref();
        f.debug_struct("RefreshingCache")
            .field("config", &self.config)
            .field("cached", &entry.is_some())
            .field("expires_at", &entry.map(|e| e.expires_at))
            .field("refresh_at", &entry.map(|e| e.refresh_at))
            .finish()
    }
}

impl<T: Clone, E: Clone + fmt::Display> RefreshingCache<T, E> {
    /// An empty cache.
    pub fn new(config: CacheConfig, time: SharedTimeSource) -> Self {
        Self {
            state: RwLock::new(State {
                entry: None,
                refreshes: 0,
                last_failure: None,
            }),
            refreshing: tokio::sync::Mutex::new(()),
            config,
            time,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State<T, E>> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State<T, E>> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached value if it is fresh (before its refresh time): the fast path that
    /// [`get_or_refresh`](Self::get_or_refresh) takes first. `None` means "call
    /// `get_or_refresh`".
    pub fn get_fresh(&self) -> Option<T> {
        self.read().fresh(self.time.now())
    }

    /// The cached value if it has not expired, whether or not it is due for refresh.
    pub fn get_valid(&self) -> Option<T> {
        let now = self.time.now();
        let state = self.read();
        state
            .entry
            .as_ref()
            .filter(|e| now < e.expires_at)
            .map(|e| e.value.clone())
    }

    /// When the cached value expires, if there is one.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.read().entry.as_ref().map(|e| e.expires_at)
    }

    /// Drop the cached value.
    pub fn clear(&self) {
        self.write().entry = None;
    }

    /// The cached value, or the result of `refresh` (a value and its expiry) when none is
    /// fresh. Only one caller runs `refresh` at a time; the others wait and reuse its
    /// result, a success or (when nothing valid is cached) its error. A failed refresh while
    /// the cached value is above the stale floor returns the cached value and logs a warning.
    pub async fn get_or_refresh<F, Fut>(&self, refresh: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, SystemTime), E>>,
    {
        let seen = {
            let state = self.read();
            if let Some(value) = state.fresh(self.time.now()) {
                return Ok(value);
            }
            state.refreshes
        };
        let _refreshing = self.refreshing.lock().await;
        {
            // While we waited, another caller may have refreshed: take its value, or its error.
            let state = self.read();
            if let Some(value) = state.fresh(self.time.now()) {
                return Ok(value);
            }
            if state.refreshes != seen
                && let Some((at, err)) = &state.last_failure
                && *at == state.refreshes
            {
                return Err(err.clone());
            }
        }
        let result = refresh().await;
        let now = self.time.now();
        let mut state = self.write();
        state.refreshes += 1;
        state.last_failure = None;
        match result {
            Ok((value, expires_at)) => {
                if expires_at <= now {
                    tracing::warn!("refreshed credentials are already expired; not caching them");
                } else {
                    state.entry = Some(Entry {
                        value: value.clone(),
                        expires_at,
                        refresh_at: self.config.refresh_at(now, expires_at),
                    });
                }
                Ok(value)
            }
            Err(err) => {
                let floor = now + self.config.stale_floor;
                match state.entry.as_mut().filter(|e| floor < e.expires_at) {
                    Some(entry) => {
                        let left = entry.expires_at.duration_since(now).unwrap_or_default();
                        tracing::warn!(
                            error = %err,
                            expires_in_secs = left.as_secs(),
                            "refreshing credentials failed; serving the cached ones until they expire"
                        );
                        entry.refresh_at =
                            (now + self.config.failure_backoff).min(entry.expires_at);
                        Ok(entry.value.clone())
                    }
                    None => {
                        state.last_failure = Some((state.refreshes, err.clone()));
                        Err(err)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{ManualTimeSource, TimeSource};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    fn setup() -> (ManualTimeSource, RefreshingCache<u32, String>, SystemTime) {
        setup_with(Duration::ZERO)
    }

    /// A cache without jitter and with `stale_floor`, on a manual clock, and its start.
    fn setup_with(
        stale_floor: Duration,
    ) -> (ManualTimeSource, RefreshingCache<u32, String>, SystemTime) {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = ManualTimeSource::new(start);
        let config = CacheConfig {
            jitter: Duration::ZERO,
            stale_floor,
            ..CacheConfig::default()
        };
        let cache = RefreshingCache::new(config, SharedTimeSource::new(clock.clone()));
        (clock, cache, start)
    }

    #[tokio::test]
    async fn refreshes_in_the_window_and_keeps_serving_on_failure() {
        let (clock, cache, start) = setup();
        let exp = start + Duration::from_secs(3600);
        let v = cache.get_or_refresh(|| async { Ok((1, exp)) }).await;
        assert_eq!(v.unwrap(), 1);
        // 54 minutes in: still fresh, refresh not called.
        clock.advance(Duration::from_secs(54 * 60));
        let v = cache
            .get_or_refresh(|| async { panic!("must not refresh") })
            .await;
        assert_eq!(v.unwrap(), 1);
        // 56 minutes in: inside the 5-minute window; a failing refresh serves the old value.
        clock.advance(Duration::from_secs(120));
        let v = cache
            .get_or_refresh(|| async { Err("sts down".to_string()) })
            .await;
        assert_eq!(v.unwrap(), 1);
        // During the failure backoff, no new refresh attempt.
        let v = cache
            .get_or_refresh(|| async { panic!("must back off") })
            .await;
        assert_eq!(v.unwrap(), 1);
        // After the backoff a successful refresh replaces it.
        clock.advance(Duration::from_secs(11));
        let exp2 = clock.now() + Duration::from_secs(3600);
        let v = cache.get_or_refresh(|| async { Ok((2, exp2)) }).await;
        assert_eq!(v.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_serves_the_cached_value_only_above_the_stale_floor() {
        let (clock, cache, start) = setup_with(Duration::from_secs(60));
        let failing_refresh = || cache.get_or_refresh(|| async { Err("down".to_string()) });
        assert_eq!(
            cache
                .get_or_refresh(|| async { Ok((1, start + Duration::from_secs(600))) })
                .await,
            Ok(1)
        );
        // 400 s in (inside the window, 200 s left): the failure is covered by the cached value.
        clock.advance(Duration::from_secs(400));
        assert_eq!(failing_refresh().await, Ok(1));
        // 550 s in: 50 s left, below the 60 s floor: the failure is the answer.
        clock.advance(Duration::from_secs(150));
        assert_eq!(failing_refresh().await, Err("down".to_string()));
        // Still valid for a caller that only needs an unexpired value.
        assert_eq!(cache.get_valid(), Some(1));
    }

    /// A cache as [`setup`] makes it, holding 1 for `lifetime`; and when that expires.
    async fn holding_one_for(
        lifetime: Duration,
    ) -> (ManualTimeSource, RefreshingCache<u32, String>, SystemTime) {
        let (clock, cache, start) = setup();
        let exp = start + lifetime;
        let _ = cache.get_or_refresh(|| async { Ok((1, exp)) }).await;
        (clock, cache, exp)
    }

    #[tokio::test]
    async fn never_serves_expired_values() {
        let (clock, cache, _exp) = holding_one_for(Duration::from_secs(900)).await;
        clock.advance(Duration::from_secs(900));
        assert_eq!(cache.get_valid(), None);
        let v = cache
            .get_or_refresh(|| async { Err("outage".to_string()) })
            .await;
        assert_eq!(v.unwrap_err(), "outage");
    }

    #[tokio::test]
    async fn short_lived_values_refresh_at_half_life() {
        // 4 minutes of life is less than the 5-minute window: refresh after 2 minutes.
        let (clock, cache, exp) = holding_one_for(Duration::from_secs(240)).await;
        clock.advance(Duration::from_secs(119));
        let v = cache.get_or_refresh(|| async { Ok((2, exp)) }).await;
        assert_eq!(v.unwrap(), 1);
        clock.advance(Duration::from_secs(2));
        let v = cache.get_or_refresh(|| async { Ok((3, exp)) }).await;
        assert_eq!(v.unwrap(), 3);
    }

    /// `callers` concurrent `get_or_refresh` calls whose refresh takes `pause`, then answers
    /// `answer`: what each caller got, and how many refreshes ran.
    async fn concurrently(
        cache: &Arc<RefreshingCache<u32, String>>,
        callers: usize,
        pause: Duration,
        answer: Result<(u32, SystemTime), String>,
    ) -> (Vec<Result<u32, String>>, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let cache = cache.clone();
                let calls = calls.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    cache
                        .get_or_refresh(|| async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(pause).await;
                            answer
                        })
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        (results, calls.load(Ordering::SeqCst))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_refresh_is_shared_with_the_callers_that_waited_for_it() {
        let (_clock, cache, _start) = setup();
        let cache = Arc::new(cache);
        let down = Err("sts down".to_string());
        let (results, n) = concurrently(&cache, 100, Duration::from_millis(50), down).await;
        for r in results {
            assert_eq!(r.unwrap_err(), "sts down");
        }
        // Callers that arrived while an attempt ran got its error; a handful of attempts at
        // most (callers that arrived between attempts start a new one), not one per caller.
        assert!((1..=3).contains(&n), "{n} attempts for 100 callers");
        // A later caller tries again.
        let r: Result<u32, String> = cache
            .get_or_refresh(|| async {
                Ok((
                    5,
                    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                ))
            })
            .await;
        assert_eq!(r.unwrap(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_flight() {
        let (_clock, cache, start) = setup();
        let cache = Arc::new(cache);
        let fresh = Ok((7, start + Duration::from_secs(3600)));
        let (results, calls) = concurrently(&cache, 200, Duration::from_millis(20), fresh).await;
        for r in results {
            assert_eq!(r.unwrap(), 7);
        }
        assert_eq!(calls, 1);
    }
}
