//! Benchmarks of the AWS provider.
//!
//! - `cached`: `provide_credentials` on a warm provider (no I/O), polled once with a no-op
//!   waker (the pure cost), and through criterion's tokio executor.
//! - `cold/<sts>`: one uncached fetch of credentials against the testkit's fake STS and
//!   against moto_server (`MOTO_ENDPOINT`, or a `moto_server` on PATH, else skipped), side
//!   by side with aws-config's `WebIdentityTokenCredentialsProvider` reading the same kind of
//!   token from a file against the same STS. Ours runs twice: with the same token file as
//!   aws-config (like for like), and with a fresh token from the fake Machines API over its
//!   Unix socket each time (what happens on a Fly Machine; includes the fake's RS256 signing).
//!
//! ```text
//! cargo bench -p fly-oidc-aws --bench provider
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::{StaticConfiguration, WebIdentityTokenCredentialsProvider};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::region::Region;
use criterion::{Criterion, criterion_group, criterion_main};
use fly_oidc::{Env, FlyOidcClient};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const ROLE: &str = "arn:aws:iam::123456789012:role/bench";

/// Sends every request to `base` instead of the regional STS endpoint, so aws-config's
/// provider (whose endpoint comes from the real environment) talks to the same STS as ours.
#[derive(Debug, Clone)]
struct Redirect {
    inner: SharedHttpClient,
    base: String,
}

#[derive(Debug)]
struct RedirectConnector {
    inner: SharedHttpConnector,
    base: String,
}

impl HttpClient for Redirect {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RedirectConnector {
            inner: self.inner.http_connector(settings, components),
            base: self.base.clone(),
        })
    }
}

impl HttpConnector for RedirectConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let uri = request.uri().to_owned();
        let path = uri
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_else(|| "/".to_owned());
        request
            .set_uri(format!("{}{path}", self.base))
            .expect("a valid URI");
        self.inner.call(request)
    }
}

/// Our provider, uncached, with the Fly token client `fly_client` builds (both without an
/// environment).
fn ours(fly_client: fly_oidc::Builder, sts_url: &str) -> FlyOidcCredentialsProvider {
    let config = fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[]));
    let fly = fly_client.configure(&config).build().unwrap();
    FlyOidcCredentialsProvider::builder()
        .configure(&config.with_fly_client(fly))
        .role_arn(ROLE)
        .session_name("bench")
        .endpoint_url(sts_url)
        .disable_cache()
        .build()
        .unwrap()
}

fn theirs(token_file: &Path, sts_url: &str) -> WebIdentityTokenCredentialsProvider {
    let http = Redirect {
        inner: fly_oidc_aws::https_client(),
        base: sts_url.to_owned(),
    };
    WebIdentityTokenCredentialsProvider::builder()
        .configure(
            &ProviderConfig::empty()
                .with_http_client(http)
                .with_sleep_impl(TokioSleep::new())
                .with_region(Some(Region::new("us-east-1"))),
        )
        .static_configuration(StaticConfiguration {
            web_identity_token_file: token_file.to_owned(),
            role_arn: ROLE.to_owned(),
            session_name: "bench".to_owned(),
        })
        .build()
}

struct Moto {
    endpoint: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn moto() -> Option<Moto> {
    #[allow(clippy::disallowed_methods)] // the bench harness's own setting
    let from_env = std::env::var("MOTO_ENDPOINT").unwrap_or_default();
    if !from_env.is_empty() {
        return Some(Moto {
            endpoint: from_env.trim_end_matches('/').to_owned(),
            child: None,
        });
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        child: Some(child),
    };
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(Duration::from_millis(300));
            return Some(moto);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn poll_once<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a cached provide_credentials must not wait"),
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fly = rt.block_on(FakeFlyApi::start()).unwrap();
    let sts = rt.block_on(FakeSts::start()).unwrap();
    let dir = tempfile_dir();
    let token_file = dir.join("token");
    std::fs::write(&token_file, fly.mint(Some("sts.amazonaws.com"))).unwrap();

    // Cached.
    let config = fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[]));
    let fly_client = FlyOidcClient::builder()
        .configure(&config)
        .socket(fly.socket_path())
        .build()
        .unwrap();
    let warm = FlyOidcCredentialsProvider::builder()
        .configure(&config.with_fly_client(fly_client))
        .role_arn(ROLE)
        .endpoint_url(sts.url())
        .build()
        .unwrap();
    rt.block_on(warm.provide_credentials()).unwrap();
    let mut group = c.benchmark_group("cached");
    group.bench_function("provide_credentials (poll once)", |b| {
        b.iter(|| poll_once(warm.provide_credentials()).unwrap())
    });
    group.bench_function("provide_credentials (tokio executor)", |b| {
        b.to_async(&rt)
            .iter(|| async { warm.provide_credentials().await.unwrap() })
    });
    group.finish();

    // Cold, against the testkit STS and moto.
    let moto = moto();
    if moto.is_none() {
        eprintln!(
            "moto_server not available: skipping cold/moto (set MOTO_ENDPOINT or install moto[server])"
        );
    }
    let mut targets = vec![("testkit-sts", sts.url())];
    if let Some(m) = &moto {
        targets.push(("moto", m.endpoint.clone()));
    }
    for (name, url) in targets {
        let mut group = c.benchmark_group(format!("cold/{name}"));
        group
            .sample_size(50)
            .measurement_time(Duration::from_secs(8));
        let ours_file = ours(FlyOidcClient::builder().token_file(&token_file), &url);
        let ours_socket = ours(FlyOidcClient::builder().socket(fly.socket_path()), &url);
        let theirs = theirs(&token_file, &url);
        // Warm up connections and check that all three work.
        rt.block_on(ours_file.provide_credentials()).unwrap();
        rt.block_on(ours_socket.provide_credentials()).unwrap();
        rt.block_on(theirs.provide_credentials()).unwrap();
        group.bench_function("fly-oidc-aws (token file)", |b| {
            b.to_async(&rt)
                .iter(|| async { ours_file.provide_credentials().await.unwrap() })
        });
        group.bench_function("aws-config WebIdentityToken (token file)", |b| {
            b.to_async(&rt)
                .iter(|| async { theirs.provide_credentials().await.unwrap() })
        });
        if name == "testkit-sts" {
            // Where the time goes: the Fly token client's file read alone.
            let file_client = FlyOidcClient::builder()
                .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
                .token_file(&token_file)
                .build()
                .unwrap();
            group.bench_function("part: fly-oidc token file read", |b| {
                b.to_async(&rt).iter(|| async {
                    file_client
                        .fetch_token(Some("sts.amazonaws.com"))
                        .await
                        .unwrap()
                })
            });
        }
        group.bench_function(
            "fly-oidc-aws (fresh token from the Machines API socket)",
            |b| {
                b.to_async(&rt)
                    .iter(|| async { ours_socket.provide_credentials().await.unwrap() })
            },
        );
        group.finish();
    }
    drop(moto);
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fly-oidc-aws-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

criterion_group!(provider, benches);
criterion_main!(provider);
