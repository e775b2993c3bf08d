//! A refreshing cache for expiring credentials, shared by the AWS and GCP providers.
//!
//! [`RefreshingCache`] serves a cached value until a refresh window before it expires, then
//! lets exactly one caller refresh while the others wait for that result (single flight).
//! If a refresh fails while the cached value is still valid, it keeps serving the cached
//! value and logs a warning (static stability), and retries no more often than
//! [`CacheConfig::with_failure_backoff`]. It never serves an expired value from the cache;
//! a value that a refresh returns already expired is passed back uncached, with a warning, so
//! refresh functions should reject such values themselves (the AWS and GCP providers do). A failed refresh is
//! shared too: callers that waited for it get its error instead of each trying again in turn.
//!
//! ```
//! use fly_oidc::cache::{CacheConfig, RefreshingCache};
//! use fly_oidc::time::{ManualTimeSource, SharedTimeSource};
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
//! let cache = RefreshingCache::new(CacheConfig::default(), SharedTimeSource::new(clock.clone()));
//! let expires = UNIX_EPOCH + Duration::from_secs(1_000_000 + 3600);
//! let first: Result<_, String> = cache.get_or_refresh(|| async { Ok(("a", expires)) }).await;
//! assert_eq!(first.unwrap(), "a");
//! // Served from the cache: the refresh function is not called.
//! let again: Result<_, String> = cache.get_or_refresh(|| async { Ok(("b", expires)) }).await;
//! assert_eq!(again.unwrap(), "a");
//! # }
//! ```

use crate::time::SharedTimeSource;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// When a [`RefreshingCache`] refreshes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    refresh_before: Duration,
    jitter: Duration,
    failure_backoff: Duration,
}

impl Default for CacheConfig {
    /// Refresh 5 minutes (plus up to 30 s of jitter) before expiry; after a failed refresh,
    /// wait 10 s before trying again while the cached value is still valid.
    fn default() -> Self {
        Self {
            refresh_before: Duration::from_secs(300),
            jitter: Duration::from_secs(30),
            failure_backoff: Duration::from_secs(10),
        }
    }
}

impl CacheConfig {
    /// Refresh when less than this remains before expiry.
    ///
    /// If a value lives shorter than this, it is refreshed at half its remaining life.
    pub fn with_refresh_before(mut self, before: Duration) -> Self {
        self.refresh_before = before;
        self
    }

    /// Up to this much earlier, chosen at random per value, so a fleet does not refresh
    /// in lockstep.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// After a failed refresh, serve the still-valid value this long before trying again.
    pub fn with_failure_backoff(mut self, backoff: Duration) -> Self {
        self.failure_backoff = backoff;
        self
    }

    /// The refresh window.
    pub fn refresh_before(&self) -> Duration {
        self.refresh_before
    }

    fn refresh_at(&self, now: SystemTime, expires_at: SystemTime) -> SystemTime {
        let remaining = expires_at.duration_since(now).unwrap_or_default();
        let jitter_nanos = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(fastrand::u64(0..=jitter_nanos));
        let window_start = expires_at
            .checked_sub(self.refresh_before + jitter)
            .unwrap_or(now);
        window_start.max(now + remaining / 2)
    }
}

struct Entry<T> {
    value: T,
    expires_at: SystemTime,
    refresh_at: SystemTime,
}

/// A cache of one expiring value with single-flight refresh. See the [module docs](self).
pub struct RefreshingCache<T> {
    current: RwLock<Option<Arc<Entry<T>>>>,
    refresh_lock: tokio::sync::Mutex<()>,
    /// How many refreshes have completed (counted under `refresh_lock`).
    attempts: AtomicU64,
    /// The error of the last refresh, if it failed with nothing valid cached, by attempt.
    last_failure: Mutex<Option<(u64, Box<dyn Any + Send + Sync>)>>,
    config: CacheConfig,
    time: SharedTimeSource,
}

impl<T: Clone> fmt::Debug for RefreshingCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = self.entry();
        f.debug_struct("RefreshingCache")
            .field("config", &self.config)
            .field("cached", &entry.is_some())
            .field("expires_at", &entry.as_ref().map(|e| e.expires_at))
            .field("refresh_at", &entry.as_ref().map(|e| e.refresh_at))
            .finish()
    }
}

impl<T: Clone> RefreshingCache<T> {
    /// An empty cache.
    pub fn new(config: CacheConfig, time: SharedTimeSource) -> Self {
        Self {
            current: RwLock::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            config,
            time,
        }
    }

    fn entry(&self) -> Option<Arc<Entry<T>>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn store(&self, entry: Entry<T>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(entry));
    }

    fn fresh(&self, now: SystemTime) -> Option<T> {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_deref() {
            Some(entry) if now < entry.refresh_at && now < entry.expires_at => {
                Some(entry.value.clone())
            }
            _ => None,
        }
    }

    /// The cached value if it is fresh (before its refresh time): the lock-free fast path that
    /// [`get_or_refresh`](Self::get_or_refresh) takes first. `None` means "call
    /// `get_or_refresh`".
    pub fn get_fresh(&self) -> Option<T> {
        self.fresh(self.time.now())
    }

    /// The cached value if it has not expired, whether or not it is due for refresh.
    pub fn get_valid(&self) -> Option<T> {
        let now = self.time.now();
        self.entry()
            .filter(|e| now < e.expires_at)
            .map(|e| e.value.clone())
    }

    /// When the cached value expires, if there is one.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.entry().map(|e| e.expires_at)
    }

    /// Drop the cached value.
    pub fn clear(&self) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The cached value, or the result of `refresh` (a value and its expiry) when none is
    /// fresh. Only one caller runs `refresh` at a time; the others wait and reuse its
    /// result, a success or (when nothing valid is cached) its error. A failed refresh while
    /// the cached value is still valid returns the cached value and logs a warning.
    pub async fn get_or_refresh<F, Fut, E>(&self, refresh: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, SystemTime), E>>,
        E: fmt::Display + Clone + Send + Sync + 'static,
    {
        if let Some(value) = self.fresh(self.time.now()) {
            return Ok(value);
        }
        let seen = self.attempts.load(Ordering::SeqCst);
        let _guard = self.refresh_lock.lock().await;
        // Another caller may have refreshed while we waited for the lock.
        if let Some(value) = self.fresh(self.time.now()) {
            return Ok(value);
        }
        let attempts = self.attempts.load(Ordering::SeqCst);
        if attempts != seen {
            // A refresh finished while we waited; if it failed, share its error.
            let failure = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
            let shared = failure
                .as_ref()
                .filter(|(at, _)| *at == attempts)
                .and_then(|(_, err)| err.downcast_ref::<E>());
            if let Some(err) = shared {
                return Err(err.clone());
            }
        }
        let result = refresh().await;
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match result {
            Ok((value, expires_at)) => {
                let now = self.time.now();
                if expires_at <= now {
                    tracing::warn!("refreshed credentials are already expired; not caching them");
                } else {
                    self.store(Entry {
                        value: value.clone(),
                        expires_at,
                        refresh_at: self.config.refresh_at(now, expires_at),
                    });
                }
                Ok(value)
            }
            Err(err) => {
                let now = self.time.now();
                match self.entry().filter(|e| now < e.expires_at) {
                    Some(entry) => {
                        let left = entry.expires_at.duration_since(now).unwrap_or_default();
                        tracing::warn!(
                            error = %err,
                            expires_in_secs = left.as_secs(),
                            "refreshing credentials failed; serving the cached ones until they expire"
                        );
                        self.store(Entry {
                            value: entry.value.clone(),
                            expires_at: entry.expires_at,
                            refresh_at: (now + self.config.failure_backoff).min(entry.expires_at),
                        });
                        Ok(entry.value.clone())
                    }
                    None => {
                        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some((attempt, Box::new(err.clone())));
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    fn setup() -> (ManualTimeSource, RefreshingCache<u32>, SystemTime) {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = ManualTimeSource::new(start);
        let cache = RefreshingCache::new(
            CacheConfig::default().with_jitter(Duration::ZERO),
            SharedTimeSource::new(clock.clone()),
        );
        (clock, cache, start)
    }

    #[tokio::test]
    async fn refreshes_in_the_window_and_keeps_serving_on_failure() {
        let (clock, cache, start) = setup();
        let exp = start + Duration::from_secs(3600);
        let v: Result<u32, String> = cache.get_or_refresh(|| async { Ok((1, exp)) }).await;
        assert_eq!(v.unwrap(), 1);
        // 54 minutes in: still fresh, refresh not called.
        clock.advance(Duration::from_secs(54 * 60));
        let v: Result<u32, String> = cache
            .get_or_refresh(|| async { panic!("must not refresh") })
            .await;
        assert_eq!(v.unwrap(), 1);
        // 56 minutes in: inside the 5-minute window; a failing refresh serves the old value.
        clock.advance(Duration::from_secs(120));
        let v: Result<u32, String> = cache
            .get_or_refresh(|| async { Err("sts down".to_string()) })
            .await;
        assert_eq!(v.unwrap(), 1);
        // During the failure backoff, no new refresh attempt.
        let v: Result<u32, String> = cache
            .get_or_refresh(|| async { panic!("must back off") })
            .await;
        assert_eq!(v.unwrap(), 1);
        // After the backoff a successful refresh replaces it.
        clock.advance(Duration::from_secs(11));
        let exp2 = clock.now() + Duration::from_secs(3600);
        let v: Result<u32, String> = cache.get_or_refresh(|| async { Ok((2, exp2)) }).await;
        assert_eq!(v.unwrap(), 2);
    }

    #[tokio::test]
    async fn never_serves_expired_values() {
        let (clock, cache, start) = setup();
        let exp = start + Duration::from_secs(900);
        let _: Result<u32, String> = cache.get_or_refresh(|| async { Ok((1, exp)) }).await;
        clock.advance(Duration::from_secs(900));
        assert_eq!(cache.get_valid(), None);
        let v: Result<u32, String> = cache
            .get_or_refresh(|| async { Err("outage".to_string()) })
            .await;
        assert_eq!(v.unwrap_err(), "outage");
    }

    #[tokio::test]
    async fn short_lived_values_refresh_at_half_life() {
        let (clock, cache, start) = setup();
        // 4 minutes of life is less than the 5-minute window: refresh after 2 minutes.
        let exp = start + Duration::from_secs(240);
        let _: Result<u32, String> = cache.get_or_refresh(|| async { Ok((1, exp)) }).await;
        clock.advance(Duration::from_secs(119));
        let v: Result<u32, String> = cache.get_or_refresh(|| async { Ok((2, exp)) }).await;
        assert_eq!(v.unwrap(), 1);
        clock.advance(Duration::from_secs(2));
        let v: Result<u32, String> = cache.get_or_refresh(|| async { Ok((3, exp)) }).await;
        assert_eq!(v.unwrap(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_refresh_is_shared_with_the_callers_that_waited_for_it() {
        let (_clock, cache, _start) = setup();
        let cache = Arc::new(cache);
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let cache = cache.clone();
                let calls = calls.clone();
                tokio::spawn(async move {
                    let r: Result<u32, String> = cache
                        .get_or_refresh(|| async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Err("sts down".to_string())
                        })
                        .await;
                    r
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap_err(), "sts down");
        }
        // Callers that arrived while an attempt ran got its error; a handful of attempts at
        // most (callers that arrived between attempts start a new one), not one per caller.
        let n = calls.load(Ordering::SeqCst);
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
        let calls = Arc::new(AtomicUsize::new(0));
        let exp = start + Duration::from_secs(3600);
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let cache = cache.clone();
                let calls = calls.clone();
                tokio::spawn(async move {
                    let r: Result<u32, String> = cache
                        .get_or_refresh(|| async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok((7, exp))
                        })
                        .await;
                    r
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
