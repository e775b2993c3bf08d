//! Load report: 10,000 credential calls from 256 tokio tasks against the testkit's fakes
//! (fake Fly Machines API on a Unix socket, fake AWS STS and fake Google STS on loopback),
//! for the AWS provider's `provide_credentials` and the GCP provider's `access_token`:
//!
//! - `cold`: a new provider, so the first callers wait for the one refresh;
//! - `warm`: every answer from the cache;
//! - `window`: the clock (injected) moved into the refresh window, so the callers wait for
//!   the one refresh that replaces still-valid credentials.
//!
//! Prints a Markdown table: throughput, p50/p99/p99.9/max latency per call, and the requests
//! the fakes saw (exactly one refresh per cold/window run) and errors (none).
//!
//! ```text
//! cargo run --release -p fly-oidc-examples --example load
//! cargo run --release -p fly-oidc-examples --example load -- --latency-ms 50   # a slower STS
//! ```

use aws_credential_types::provider::ProvideCredentials;
use fly_oidc::time::{ManualTimeSource, SharedTimeSource, SystemTimeSource, TimeSource};
use fly_oidc::{Env, FlyOidcClient, ProviderConfig, RetryConfig};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::FakeGoogle;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const CALLS: usize = 10_000;
const TASKS: usize = 256;
const ROLE: &str = "arn:aws:iam::123456789012:role/fly-app";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Report {
    name: String,
    latencies: Vec<Duration>,
    wall: Duration,
    errors: usize,
    fly_requests: usize,
    sts_requests: usize,
}

impl Report {
    fn row(&mut self) -> String {
        self.latencies.sort();
        let l = &self.latencies;
        let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
        format!(
            "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            self.name,
            l.len(),
            self.wall.as_secs_f64() * 1000.0,
            l.len() as f64 / self.wall.as_secs_f64(),
            fmt(pct(0.50)),
            fmt(pct(0.99)),
            fmt(pct(0.999)),
            fmt(l[l.len() - 1]),
            self.fly_requests,
            self.sts_requests,
            self.errors,
        )
    }
}

fn fmt(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        format!("{nanos} ns")
    } else if nanos < 1_000_000 {
        format!("{:.1} µs", nanos as f64 / 1000.0)
    } else {
        format!("{:.2} ms", nanos as f64 / 1_000_000.0)
    }
}

/// `CALLS` calls over `TASKS` tasks released together; latencies and errors.
async fn hammer<F, Fut>(call: F) -> (Vec<Duration>, usize, Duration)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS + 1));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (call, barrier) = (call.clone(), barrier.clone());
            let share = CALLS / TASKS + usize::from(i < CALLS % TASKS);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(share);
                let mut errors = 0;
                barrier.wait().await;
                let started = Instant::now();
                for _ in 0..share {
                    let t = Instant::now();
                    let ok = call().await;
                    latencies.push(t.elapsed());
                    errors += usize::from(!ok);
                }
                (latencies, errors, started, Instant::now())
            })
        })
        .collect();
    barrier.wait().await;
    let mut all = Vec::with_capacity(CALLS);
    let mut errors = 0;
    // Wall time: from the first task's start to the last one's end.
    let mut first_start: Option<Instant> = None;
    let mut last_end: Option<Instant> = None;
    for t in tasks {
        if let Ok((latencies, e, started, ended)) = t.await {
            all.extend(latencies);
            errors += e;
            first_start = Some(first_start.map_or(started, |f| f.min(started)));
            last_end = Some(last_end.map_or(ended, |l| l.max(ended)));
        } else {
            errors += 1;
        }
    }
    let wall = match (first_start, last_end) {
        (Some(s), Some(e)) => e.duration_since(s),
        _ => Duration::ZERO,
    };
    (all, errors, wall)
}

fn fly_client(fly: &FakeFlyApi) -> Result<FlyOidcClient, BoxError> {
    Ok(FlyOidcClient::builder()
        .configure(&ProviderConfig::default().with_env(Env::from_slice(&[])))
        .socket(fly.socket_path())
        .build()?)
}

fn clock_fn(clock: &ManualTimeSource) -> impl Fn() -> SystemTime + Send + Sync + use<> {
    let clock = clock.clone();
    move || clock.now()
}

/// Hammer `call` and report it with the requests it cost the fakes (`requests` counts the
/// Fly API's and the STS's).
async fn measure<F, Fut>(name: &str, call: F, requests: impl Fn() -> (usize, usize)) -> Report
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let (fly0, sts0) = requests();
    let (latencies, errors, wall) = hammer(call).await;
    let (fly1, sts1) = requests();
    Report {
        name: name.to_owned(),
        latencies,
        wall,
        errors,
        fly_requests: fly1 - fly0,
        sts_requests: sts1 - sts0,
    }
}

async fn aws(name: &str, latency: Duration, window: bool) -> Result<Report, BoxError> {
    let clock = ManualTimeSource::new(SystemTimeSource.now());
    let (fly, sts) = if window {
        let fly = FakeFlyApi::builder()
            .clock(clock_fn(&clock))
            .start()
            .await?;
        let sts = FakeSts::builder()
            .clock(clock_fn(&clock))
            .latency(latency)
            .start()
            .await?;
        (fly, sts)
    } else {
        (
            FakeFlyApi::start().await?,
            FakeSts::builder().latency(latency).start().await?,
        )
    };
    let mut config = ProviderConfig::default()
        .with_env(Env::from_slice(&[]))
        .with_fly_client(fly_client(&fly)?);
    if window {
        config = config.with_time_source(SharedTimeSource::new(clock.clone()));
    }
    let provider = FlyOidcCredentialsProvider::builder()
        .configure(&config)
        .role_arn(ROLE)
        .endpoint_url(sts.url())
        .build()?;
    if name.ends_with("warm") || window {
        provider.provide_credentials().await?;
    }
    if window {
        let expiry = provider
            .cached_credentials()
            .and_then(|c| c.expiry())
            .ok_or("no cached credentials")?;
        clock.set(expiry - Duration::from_secs(290));
    }
    let call = move || {
        let provider = provider.clone();
        async move { provider.provide_credentials().await.is_ok() }
    };
    let requests = || (fly.request_count(), sts.request_count());
    Ok(measure(name, call, requests).await)
}

async fn gcp(name: &str, window: bool) -> Result<Report, BoxError> {
    let clock = ManualTimeSource::new(SystemTimeSource.now());
    let fly = FakeFlyApi::builder()
        .clock(clock_fn(&clock))
        .start()
        .await?;
    let google = FakeGoogle::builder(&fly)
        .clock(clock_fn(&clock))
        .start()
        .await?;
    let provider = GcpTokenProvider::builder()
        .configure(
            &ProviderConfig::default()
                .with_env(Env::from_slice(&[]))
                .with_fly_client(fly_client(&fly)?)
                .with_retry(RetryConfig::disabled())
                .with_time_source(SharedTimeSource::new(clock.clone())),
        )
        .provider(google.provider())
        .sts_url(google.sts_url())
        .build()?;
    if name.ends_with("warm") || window {
        provider.access_token().await?;
    }
    if window {
        // Google's STS tokens live 3599 s: 290 s before expiry.
        clock.set(clock.now() + Duration::from_secs(3599 - 290));
    }
    let call = move || {
        let provider = provider.clone();
        async move { provider.access_token().await.is_ok() }
    };
    let requests = || (fly.request_count(), google.request_count());
    Ok(measure(name, call, requests).await)
}

async fn run() -> Result<bool, BoxError> {
    let mut latency = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--latency-ms" => {
                let ms: u64 = args.next().ok_or("--latency-ms needs a value")?.parse()?;
                latency = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other:?} (try --latency-ms N)").into()),
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{CALLS} calls from {TASKS} tokio tasks, {cores} worker threads; fake AWS STS latency {} ms",
        latency.as_millis()
    );
    println!();
    println!(
        "| scenario | calls | wall ms | calls/s | p50 | p99 | p99.9 | max | Fly token requests | STS requests | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ok = true;
    for mut report in [
        aws("aws warm", latency, false).await?,
        aws("aws cold", latency, false).await?,
        aws("aws refresh window", latency, true).await?,
        gcp("gcp warm", false).await?,
        gcp("gcp cold", false).await?,
        gcp("gcp refresh window", true).await?,
    ] {
        let expected = if report.name.ends_with("warm") { 0 } else { 1 };
        ok &= report.errors == 0
            && report.fly_requests == expected
            && report.sts_requests == expected;
        println!("{}", report.row());
    }
    Ok(ok)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("load: errors, or not exactly one refresh per cold/window run");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("load: error: {}", fly_oidc_examples::ErrorChain(&*err));
            ExitCode::FAILURE
        }
    }
}
