//! Load: 10,000 calls from 256 tokio tasks on a cold cache, a warm one, and as each expiry
//! window opens, for the AWS provider (`provide_credentials`, against the fake Fly API and
//! the fake STS) and the GCP provider (`access_token`, against the fake Google): exactly one
//! refresh per window (counted at the fakes) and no errors.
//!
//! Throughput and tail latency come from a release build of the same scenarios:
//! `cargo run --release -p fly-oidc-examples --example load` (figures in the README, "Load").
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use aws_credential_types::provider::ProvideCredentials;
use fly_oidc::RetryConfig;
use fly_oidc::time::{ManualTimeSource, SharedTimeSource, TimeSource};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_tests::gcp::Fakes;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CALLS: usize = 10_000;
const TASKS: usize = 256;
const T0: u64 = 1_800_000_000;

struct Run {
    errors: Vec<String>,
    /// Distinct answers (access key ids or token expiries).
    distinct: HashSet<String>,
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Run {
    fn summary(&self, name: &str) -> String {
        let mut l = self.latencies.clone();
        l.sort();
        let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
        format!(
            "{name}: {} calls in {:?} ({:.0}/s, debug build), p50 {:?} p99 {:?} max {:?}, {} errors",
            l.len(),
            self.wall,
            l.len() as f64 / self.wall.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            l[l.len() - 1],
            self.errors.len()
        )
    }
}

/// `CALLS` calls of `call` spread over `TASKS` spawned tasks, all started together.
async fn hammer<F, Fut>(call: F) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send,
{
    let call = Arc::new(call);
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let began = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (call, start) = (call.clone(), start.clone());
            let share = CALLS / TASKS + usize::from(i < CALLS % TASKS);
            tokio::spawn(async move {
                start.wait().await;
                let mut out = Vec::with_capacity(share);
                for _ in 0..share {
                    let t = Instant::now();
                    let result = call().await;
                    out.push((t.elapsed(), result));
                }
                out
            })
        })
        .collect();
    let mut run = Run {
        errors: Vec::new(),
        distinct: HashSet::new(),
        latencies: Vec::with_capacity(CALLS),
        wall: Duration::ZERO,
    };
    for task in tasks {
        for (latency, result) in task.await.unwrap() {
            run.latencies.push(latency);
            match result {
                Ok(answer) => {
                    run.distinct.insert(answer);
                }
                Err(e) => run.errors.push(e),
            }
        }
    }
    run.wall = began.elapsed();
    assert_eq!(run.latencies.len(), CALLS);
    run
}

fn clock_fn(clock: &ManualTimeSource) -> impl Fn() -> SystemTime + Send + Sync + use<> {
    let clock = clock.clone();
    move || clock.now()
}

/// The fake Fly API reading `clock`.
async fn fly_at(clock: &ManualTimeSource) -> FakeFlyApi {
    let fly = FakeFlyApi::builder().clock(clock_fn(clock));
    fly.start().await.unwrap()
}

/// A [`hammer`] run that must end without errors, with everyone getting the same answer,
/// and with `refreshes` Fly token and STS requests so far (`requests` counts them).
async fn hammered<F, Fut>(
    name: &str,
    call: F,
    requests: impl Fn() -> (usize, usize),
    refreshes: usize,
) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send,
{
    let run = hammer(call).await;
    eprintln!("{}", run.summary(name));
    assert!(run.errors.is_empty(), "{name}: {:?}", &run.errors[..1]);
    assert_eq!(
        run.distinct.len(),
        1,
        "{name}: everyone got the same answer"
    );
    assert_eq!(
        requests(),
        (refreshes, refreshes),
        "{name}: exactly {refreshes} refreshes so far"
    );
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_one_refresh_per_window_and_no_errors_under_load() {
    let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(T0));
    let fly = fly_at(&clock).await;
    // 20 ms per STS answer, so the callers pile up behind the refresh.
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .clock(clock_fn(&clock))
        .latency(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    // The default cache: 5-minute window with up to 30 s of jitter.
    let config = fly_oidc_tests::aws::config(&fly);
    let provider = fly_oidc_tests::aws::provider(&fly, &sts.url())
        .configure(&config.with_time_source(SharedTimeSource::new(clock.clone())))
        .build()
        .unwrap();
    let call = {
        let provider = provider.clone();
        move || {
            let provider = provider.clone();
            async move {
                provider
                    .provide_credentials()
                    .await
                    .map(|c| c.access_key_id().to_owned())
                    .map_err(|e| e.to_string())
            }
        }
    };
    let requests = || (fly.request_count(), sts.request_count());

    let cold = hammered("aws cold", call.clone(), requests, 1).await;
    let warm = hammered("aws warm", call.clone(), requests, 1).await;
    assert_eq!(warm.distinct, cold.distinct);

    // Three more expiry windows: move into each refresh window (290 s before expiry, past
    // any jitter), then 10,000 calls: one refresh each.
    let mut seen = cold.distinct.clone();
    for window in 2..=4 {
        let expiry = provider.cached_credentials().unwrap().expiry().unwrap();
        clock.set(expiry - Duration::from_secs(290));
        let name = format!("aws window {window}");
        let run = hammered(&name, call.clone(), requests, window).await;
        assert!(seen.insert(run.distinct.into_iter().next().unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_one_refresh_per_window_and_no_errors_under_load() {
    let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(T0));
    let fly = fly_at(&clock).await;
    let fakes = Fakes::with_fly(fly, |g| g.clock(clock_fn(&clock))).await;
    let config = fakes
        .config()
        .with_retry(RetryConfig::disabled())
        .with_time_source(SharedTimeSource::new(clock.clone()));
    let provider = fakes.builder().configure(&config).build().unwrap();
    let call = move || {
        let provider = provider.clone();
        async move {
            provider
                .access_token()
                .await
                // Two tokens differ in their expiry here (the clock is frozen per window).
                .map(|t| format!("{:?}", t.expires_at()))
                .map_err(|e| e.to_string())
        }
    };
    let requests = || (fakes.fly.request_count(), fakes.google.request_count());
    let cold = hammered("gcp cold", call.clone(), requests, 1).await;
    let warm = hammered("gcp warm", call.clone(), requests, 1).await;
    assert_eq!(warm.distinct, cold.distinct);
    for window in 2..=3 {
        // Google's STS tokens live 3599 s; move 290 s before that.
        let now = clock.now();
        clock.set(now + Duration::from_secs(3599 - 290));
        let name = format!("gcp window {window}");
        hammered(&name, call.clone(), requests, window).await;
    }
}
