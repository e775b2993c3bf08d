//! The Machines API budget: a token bucket shared by every clone of a
//! [`FlyOidcClient`](crate::FlyOidcClient), with renewals served before on-demand requests.
//!
//! Fly rate-limits the Machines API at about one request per second per action and Machine,
//! with a burst of 3. Every clone of a client shares one [`RateLimit`], so a process that
//! hands one client to all its providers (the credential server does) stays inside that
//! limit whatever its clients ask for. A request that would exceed it waits for its turn.
//!
//! A caller marks work that a client's request started (a new scope set, a new ID-token
//! audience) with [`on_demand`]: such requests take a turn only when no renewal is waiting,
//! so a flood of new keys cannot delay the renewal of what is already served.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use fly_oidc::budget::{on_demand, RateLimit};
//! use std::time::Duration;
//! let limit = RateLimit::new(3, Duration::from_millis(10));
//! let started = tokio::time::Instant::now();
//! for _ in 0..5 {
//!     on_demand(limit.acquire()).await;
//! }
//! // A burst of 3, then one turn per 10 ms.
//! assert!(started.elapsed() >= Duration::from_millis(15));
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    static ON_DEMAND: bool;
}

/// Run `work` with its Machines API requests marked on demand: each waits while a renewal
/// (any request not so marked) is waiting for its turn.
pub async fn on_demand<F: Future>(work: F) -> F::Output {
    ON_DEMAND.scope(true, work).await
}

/// Whether the current task runs inside [`on_demand`].
fn is_on_demand() -> bool {
    ON_DEMAND.try_with(|on| *on).unwrap_or(false)
}

/// A token bucket: `burst` turns at once, then one per `every`. Cheap to clone; clones share
/// the bucket.
#[derive(Clone)]
pub struct RateLimit {
    inner: Option<Arc<Bucket>>,
}

struct Bucket {
    burst: f64,
    every: Duration,
    state: Mutex<State>,
}

struct State {
    turns: f64,
    at: Instant,
    /// Renewals waiting for a turn: on-demand requests wait while there are any.
    renewals_waiting: usize,
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Some(b) => write!(f, "RateLimit(burst {}, one per {:?})", b.burst, b.every),
            None => f.write_str("RateLimit(none)"),
        }
    }
}

impl Default for RateLimit {
    /// The Machines API's documented limit: a burst of 3, then one per second.
    fn default() -> Self {
        Self::new(3, Duration::from_secs(1))
    }
}

/// Counts a waiting renewal while it lives (a cancelled wait must not block on-demand work).
struct Waiting<'a>(&'a Bucket);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.renewals_waiting = state.renewals_waiting.saturating_sub(1);
    }
}

impl RateLimit {
    /// `burst` turns at once (at least 1), then one per `every` (1 ms to a day: a longer
    /// interval is taken as a day).
    pub fn new(burst: u32, every: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            inner: Some(Arc::new(Bucket {
                burst,
                every: every.clamp(Duration::from_millis(1), Duration::from_secs(24 * 60 * 60)),
                state: Mutex::new(State {
                    turns: burst,
                    at: Instant::now(),
                    renewals_waiting: 0,
                }),
            })),
        }
    }

    /// No limit: every request goes at once.
    pub fn none() -> Self {
        Self { inner: None }
    }

    /// Wait for a turn: at once while the bucket holds one, else until it refills. Inside
    /// [`on_demand`], also while a renewal waits.
    pub async fn acquire(&self) {
        let Some(bucket) = &self.inner else { return };
        let on_demand = is_on_demand();
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            let wait = {
                let mut state = bucket.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let earned =
                    now.duration_since(state.at).as_secs_f64() / bucket.every.as_secs_f64();
                state.turns = (state.turns + earned).min(bucket.burst);
                state.at = now;
                let blocked = on_demand && state.renewals_waiting > 0;
                if !blocked && state.turns >= 1.0 {
                    state.turns -= 1.0;
                    drop(state);
                    drop(waiting);
                    return;
                }
                if !on_demand && waiting.is_none() {
                    state.renewals_waiting += 1;
                    waiting = Some(Waiting(bucket));
                }
                let missing = (1.0 - state.turns).max(0.0);
                bucket
                    .every
                    .mul_f64(missing)
                    .max(Duration::from_millis(if blocked { 50 } else { 1 }))
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interval at the edge of its type waits (for as long as the timer holds) rather than
    /// overflowing.
    #[tokio::test]
    async fn the_longest_interval_waits_without_a_panic() {
        let limit = RateLimit::new(0, Duration::MAX);
        limit.acquire().await;
        let second = tokio::time::timeout(Duration::from_millis(50), limit.acquire()).await;
        assert!(second.is_err(), "the second turn waits");
    }

    #[tokio::test]
    async fn a_burst_then_one_per_interval() {
        let limit = RateLimit::new(3, Duration::from_millis(50));
        let start = Instant::now();
        for _ in 0..3 {
            limit.acquire().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(40),
            "the burst goes at once"
        );
        for _ in 0..3 {
            limit.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(145), "{elapsed:?}");
    }

    /// With the bucket empty, a renewal that starts waiting after on-demand requests still
    /// gets the next turn.
    #[tokio::test]
    async fn renewals_go_before_on_demand_requests() {
        let limit = RateLimit::new(1, Duration::from_millis(300));
        limit.acquire().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (limit, order) = (limit.clone(), order.clone());
            tasks.push(tokio::spawn(on_demand(async move {
                limit.acquire().await;
                order
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("client {i}"));
            })));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (l, o) = (limit.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            l.acquire().await;
            o.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push("renewal".into());
        }));
        for task in tasks {
            task.await.unwrap_or_else(|e| panic!("{e}"));
        }
        let order = order.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            order.first().map(String::as_str),
            Some("renewal"),
            "{order:?}"
        );
    }
}
