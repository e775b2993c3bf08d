//! Retry policy with jittered exponential backoff.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How transient failures are retried.
///
/// Delays follow "full jitter": before attempt `n + 1` the client sleeps a random time
/// between zero and `min(max_backoff, initial_backoff * 2^(n-1))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryConfig {
    /// 3 attempts, backoff from 100 ms up to 2 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryConfig {
    /// No retries: one attempt.
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Total attempts, including the first (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff ceiling before the second attempt.
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The largest backoff.
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Total attempts, including the first.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff ceiling before the second attempt.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The largest backoff.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// Run `op` until it succeeds, fails in a way `is_transient` says is final, or the
    /// attempts run out, sleeping a jittered [`backoff`](Self::backoff) between attempts.
    /// `what` names the call in the debug log of each retry.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use fly_oidc::RetryConfig;
    /// use std::time::Duration;
    /// let retry = RetryConfig::default().with_initial_backoff(Duration::from_millis(1));
    /// let mut calls = 0;
    /// let result: Result<u32, String> = retry
    ///     .run("a flaky call", |_err: &String| true, || {
    ///         calls += 1;
    ///         let n = calls;
    ///         async move { if n < 3 { Err(format!("try {n} failed")) } else { Ok(n) } }
    ///     })
    ///     .await;
    /// assert_eq!(result, Ok(3));
    /// # }
    /// ```
    pub async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        is_transient: impl Fn(&E) -> bool,
        mut op: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(err) if is_transient(&err) && attempt < self.max_attempts => {
                    let delay = self.backoff(attempt);
                    tracing::debug!(attempt, ?delay, error = %err, "transient failure {what}; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The jittered delay before attempt `attempt + 1` (`attempt` counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

/// Run `op`, a provider's whole chain that starts with a Fly token from `fly`, within
/// `budget`; `op` is given a flag to set once the Fly token is in hand. Past the budget, `op`
/// is dropped and the result is an [`ErrorKind::Transient`](crate::ErrorKind::Transient)
/// error: "`{hung}` within this provider's `N` s budget
/// (ProviderConfig::with_total_timeout); this is usually transient, try again", where the
/// call that did not answer, `hung`, is the Machines API ("the Machines API did not answer:
/// no Fly token from `<source>`") while the flag is unset, else `cloud()` (such as "STS
/// `<url>` did not answer").
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fly_oidc::BuildError> {
/// use std::time::Duration;
/// let fly = fly_oidc::FlyOidcClient::builder().token_file("/run/fly-token").build()?;
/// let never = async |_: &_| std::future::pending::<Result<(), fly_oidc::Error>>().await;
/// let err = fly_oidc::within_provider_budget(Duration::from_millis(10), &fly, never, || {
///     "STS did not answer".into()
/// })
/// .await
/// .unwrap_err();
/// assert!(err.is_transient());
/// assert!(err.to_string().starts_with(
///     "the Machines API did not answer: no Fly token from the token file /run/fly-token \
///      within this provider's 0.01 s budget"
/// ));
/// # Ok(()) }
/// ```
pub async fn within_provider_budget<T>(
    budget: Duration,
    fly: &crate::FlyOidcClient,
    op: impl AsyncFnOnce(&AtomicBool) -> Result<T, crate::Error>,
    cloud: impl FnOnce() -> String,
) -> Result<T, crate::Error> {
    let past_fly = AtomicBool::new(false);
    let Ok(result) = tokio::time::timeout(budget, op(&past_fly)).await else {
        let hung = match past_fly.load(Ordering::Relaxed) {
            true => cloud(),
            false => format!(
                "the Machines API did not answer: no Fly token from {}",
                fly.source()
            ),
        };
        let budget = budget.as_secs_f64();
        let message = format!(
            "{hung} within this provider's {budget} s budget \
             (ProviderConfig::with_total_timeout); this is usually transient, try again"
        );
        return Err(crate::Error::new(crate::ErrorKind::Transient, message));
    };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let cfg = RetryConfig::default()
            .with_initial_backoff(Duration::from_millis(10))
            .with_max_backoff(Duration::from_millis(35));
        for _ in 0..200 {
            assert!(cfg.backoff(1) <= Duration::from_millis(10));
            assert!(cfg.backoff(2) <= Duration::from_millis(20));
            assert!(cfg.backoff(3) <= Duration::from_millis(35));
            assert!(cfg.backoff(60) <= Duration::from_millis(35));
        }
        // jitter: not always the same value
        let samples: std::collections::HashSet<_> = (0..50).map(|_| cfg.backoff(3)).collect();
        assert!(samples.len() > 1);
        assert_eq!(RetryConfig::disabled().max_attempts(), 1);
        assert_eq!(
            RetryConfig::default().with_max_attempts(0).max_attempts(),
            1
        );
    }
}
