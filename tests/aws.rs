//! Shared helpers for the AWS tests: moto_server, and providers wired to the fakes.

use crate::{fast_retry, fly_client};
use fly_oidc::time::{ManualTimeSource, TimeSource};
use fly_oidc::{Env, ProviderConfig};
use fly_oidc_aws::{Builder, FlyOidcCredentialsProvider};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The role the tests assume.
pub const ROLE: &str = "arn:aws:iam::123456789012:role/fly-app";
/// A second role, for tests of two roles (two profiles, two cache entries).
pub const ROLE_A: &str = "arn:aws:iam::123456789012:role/fly-reader";
/// A third role, beside [`ROLE_A`].
pub const ROLE_B: &str = "arn:aws:iam::123456789012:role/fly-writer";

/// A role in another account that [`ROLE`] chains into (role chaining).
pub const CHAINED_ROLE: &str = "arn:aws:iam::210987654321:role/fly-data";

/// The config of [`provider`]: an empty environment, the fake Fly API's client and fast
/// retries.
pub fn config(fly: &FakeFlyApi) -> ProviderConfig {
    ProviderConfig::default()
        .with_env(Env::from_slice(&[]))
        .with_fly_client(fly_client(fly))
        .with_retry(fast_retry())
}

/// A provider builder wired to the fake Fly API and an STS endpoint, with [`config`] (an
/// empty environment and fast retries).
pub fn provider(fly: &FakeFlyApi, sts_url: &str) -> Builder {
    FlyOidcCredentialsProvider::builder()
        .configure(&config(fly))
        .role_arn(ROLE)
        .endpoint_url(sts_url)
}

/// The fake Fly API of app `web` on Machine `148e2150b5e089` (so the default role session
/// name is `fly-web-148e2150b5e089`).
pub async fn web_machine() -> FakeFlyApi {
    let fly = FakeFlyApi::builder().app("web");
    fly.machine_id("148e2150b5e089").start().await.unwrap()
}

/// A fake Fly API (app `web`) and a fake STS trusting it (any audience and subject), both
/// reading `clock`.
pub async fn fakes_on(clock: &ManualTimeSource) -> (FakeFlyApi, FakeSts) {
    let (fly_clock, sts_clock) = (clock.clone(), clock.clone());
    let fly = FakeFlyApi::builder().app("web");
    let fly = fly.clock(move || fly_clock.now()).start().await.unwrap();
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .clock(move || sts_clock.now())
        .start()
        .await
        .unwrap();
    (fly, sts)
}

pub use crate::not_on_fly_client;

/// A moto_server for the test: the one CI started (`MOTO_ENDPOINT`), or a child process on a
/// free loopback port, killed on drop.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    child: Option<Child>,
}

impl Moto {
    /// `None` (with a printed reason) when moto_server is not installed locally; in CI
    /// (`CI=true`) a missing moto_server fails the test.
    pub fn start() -> Option<Moto> {
        #[allow(clippy::disallowed_methods)] // the harness's own setting, not config under test
        let from_ci = std::env::var("MOTO_ENDPOINT").unwrap_or_default();
        if !from_ci.trim().is_empty() {
            return Some(Moto {
                endpoint: from_ci.trim().trim_end_matches('/').to_owned(),
                child: None,
            });
        }
        if !crate::require_tool("moto_server") {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !moto.ready(port) {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    fn ready(&self, port: u16) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream
            .write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Our error inside a `CredentialsError`.
pub fn our_error(err: &fly_oidc_aws::CredentialsError) -> &fly_oidc_aws::Error {
    std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<fly_oidc_aws::Error>())
        .unwrap_or_else(|| panic!("not a fly_oidc_aws::Error inside: {err:?}"))
}

/// A unique, valid S3 bucket name.
pub fn bucket_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Who moto's STS says `provider`'s credentials are (`GetCallerIdentity` signed with them):
/// their ARN, once the account it answers is checked to be the ARN's.
pub async fn moto_caller(moto: &Moto, provider: FlyOidcCredentialsProvider) -> String {
    use aws_sdk_sts::config::{BehaviorVersion, Region};
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(moto.endpoint())
            .credentials_provider(provider)
            .http_client(fly_oidc_aws::https_client())
            .build(),
    );
    let me = sts.get_caller_identity().send().await.unwrap();
    let arn = me.arn().unwrap_or_default();
    // arn:aws:sts::<account>:assumed-role/...
    assert_eq!(me.account(), arn.split(':').nth(4), "the account of {arn}");
    arn.to_owned()
}
