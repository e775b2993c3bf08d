//! Benchmarks of the GCP provider against the testkit's fake Fly API and fake Google STS/IAM.
//!
//! - `access_token/cached`: a cached `access_token()` (the hot path of an app);
//! - `access_token/cold_federated`: Fly token over the Unix socket + STS exchange;
//! - `access_token/cold_impersonated`: the same plus `generateAccessToken`;
//! - `gcp_executable/wall_time`: one run of `fly-oidc gcp executable` as Google's libraries
//!   run it (process start, Fly token over the socket, JSON on stdout). Needs the binary:
//!   `cargo build --release -p fly-oidc-cli` first (or set `FLY_OIDC_BIN`); skipped otherwise.
//!
//! ```text
//! cargo build --release -p fly-oidc-cli && cargo bench -p fly-oidc-gcp --bench access_token
//! ```

#![allow(clippy::unwrap_used, missing_docs)] // a benchmark: a panic is a failed run

use criterion::{Criterion, criterion_group, criterion_main};
use fly_oidc::{Env, FlyOidcClient};
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::google::FakeGoogle;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const SA: &str = "bench@my-project.iam.gserviceaccount.com";

fn binary() -> Option<PathBuf> {
    if let Some(path) = Env::real().get("FLY_OIDC_BIN") {
        return Some(PathBuf::from(path));
    }
    // target/<profile>/deps/<bench> -> target/<profile>/fly-oidc
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("fly-oidc");
    bin.exists().then_some(bin)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (fly, google) = rt.block_on(async {
        let fly = FakeFlyApi::builder().start().await.unwrap();
        let google = FakeGoogle::builder(&fly)
            .service_account(SA)
            .start()
            .await
            .unwrap();
        (fly, google)
    });
    let fly_client = FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
        .socket(fly.socket_path())
        .build()
        .unwrap();
    let builder = GcpTokenProvider::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_fly_client(fly_client))
        .provider(google.provider())
        .sts_url(google.sts_url())
        .iam_url(google.iam_url());
    let federated = builder.clone().build().unwrap();
    let impersonated = builder.service_account(SA).build().unwrap();

    let mut group = c.benchmark_group("access_token");
    rt.block_on(federated.access_token()).unwrap();
    group.bench_function("cached", |b| {
        b.to_async(&rt)
            .iter(|| async { federated.access_token().await.unwrap() })
    });
    group.sample_size(50);
    for (name, provider) in [
        ("cold_federated", &federated),
        ("cold_impersonated", &impersonated),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { provider.fetch_access_token().await.unwrap() })
        });
    }
    group.finish();

    let Some(bin) = binary() else {
        eprintln!(
            "SKIPPED gcp_executable/wall_time: no fly-oidc binary next to the bench; run `cargo build --release -p fly-oidc-cli` or set FLY_OIDC_BIN"
        );
        return;
    };
    let socket = fly.socket_path().to_owned();
    let audience = google.sts_audience();
    let mut group = c.benchmark_group("gcp_executable");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("wall_time", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let out = Command::new(&bin)
                    .args(["gcp", "executable"])
                    .env_clear()
                    .env("FLY_OIDC_SOCKET", &socket)
                    .env("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &audience)
                    .output()
                    .unwrap();
                assert!(out.status.success() && out.stderr.is_empty());
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(gcp, benches);
criterion_main!(gcp);
