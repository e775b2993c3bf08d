//! Shared helpers for the GCP tests: the fake Fly API and a fake Google that trusts it, and
//! providers wired to them.

use crate::{Secrets, fast_retry};
use fly_oidc::cache::CacheConfig;
use fly_oidc::time::{ManualTimeSource, SharedTimeSource};
use fly_oidc::{Env, ProviderConfig};
use fly_oidc_gcp::{Builder, GcpTokenProvider};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::google::{FakeGoogle, FakeGoogleBuilder, IssuedToken};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The service account the tests impersonate (the fakes allow it).
pub const SA: &str = "reader@my-project.iam.gserviceaccount.com";

/// A fake Fly API (org `acme`, app `my-app`) and a fake Google STS + IAM Credentials API
/// trusting it, whose pool's principals may impersonate [`SA`].
#[derive(Debug)]
pub struct Fakes {
    /// The fake Machines API.
    pub fly: FakeFlyApi,
    /// The fake Google.
    pub google: FakeGoogle,
}

impl Fakes {
    /// Start both fakes with the defaults.
    pub async fn start() -> Fakes {
        Self::start_with(|g| g).await
    }

    /// Start both fakes; `edit` adjusts fake Google's builder (issuer, audiences, condition...).
    pub async fn start_with(edit: impl FnOnce(FakeGoogleBuilder) -> FakeGoogleBuilder) -> Fakes {
        Self::with_fly(FakeFlyApi::builder().start().await.unwrap(), edit).await
    }

    /// Start a fake Google trusting `fly`; `edit` adjusts its builder.
    pub async fn with_fly(
        fly: FakeFlyApi,
        edit: impl FnOnce(FakeGoogleBuilder) -> FakeGoogleBuilder,
    ) -> Fakes {
        let google = edit(FakeGoogle::builder(&fly).service_account(SA))
            .start()
            .await
            .unwrap();
        Fakes { fly, google }
    }

    /// An environment with only `FLY_OIDC_SOCKET` set to the fake's socket.
    pub fn env(&self) -> Env {
        Env::from_slice(&[("FLY_OIDC_SOCKET", self.fly.socket_path().to_str().unwrap())])
    }

    /// The config of [`builder`](Self::builder): [`env`](Self::env) and fast retries.
    pub fn config(&self) -> ProviderConfig {
        ProviderConfig::default()
            .with_env(self.env())
            .with_retry(fast_retry())
    }

    /// A provider builder for the fakes' provider and endpoints, with
    /// [`config`](Self::config) (federated: no service account).
    pub fn builder(&self) -> Builder {
        GcpTokenProvider::builder()
            .configure(&self.config())
            .provider(self.google.provider())
            .sts_url(self.google.sts_url())
            .iam_url(self.google.iam_url())
    }

    /// [`builder`](Self::builder) reading `clock`, with no refresh jitter.
    pub fn builder_at(&self, clock: &ManualTimeSource) -> Builder {
        let config = self
            .config()
            .with_time_source(SharedTimeSource::new(clock.clone()));
        self.builder()
            .configure(&config)
            .cache_config(CacheConfig::default().with_jitter(Duration::ZERO))
    }

    /// What fake Google knows of `token`, an access token it issued.
    pub fn issued(&self, token: &str) -> IssuedToken {
        let info = self.google.token_info(token);
        info.expect("an access token fake Google issued")
    }

    /// The service account fake Google issued `token` for (`None`: a federated token).
    pub fn service_account_of(&self, token: &str) -> Option<String> {
        service_account_of(&self.google, token)
    }

    /// Every secret either fake handed out (and the Fly API token).
    pub fn secrets(&self) -> Secrets {
        Secrets::of_fly(&self.fly).google(&self.google)
    }
}

/// The service account `google` issued the access token `token` for (`None`: a federated
/// token); panics if it did not issue it.
pub fn service_account_of(google: &FakeGoogle, token: &str) -> Option<String> {
    let issued = google.token_info(token);
    issued
        .expect("an access token the fake Google issued")
        .service_account
}

/// A provider builder for `google`'s provider and endpoints that fetches Fly tokens with
/// [`fly_client`](crate::fly_client) from `fly`, with an empty environment and fast retries
/// (federated: no service account).
pub fn provider_builder(fly: &FakeFlyApi, google: &FakeGoogle) -> Builder {
    GcpTokenProvider::builder()
        .configure(
            &ProviderConfig::default()
                .with_env(Env::from_slice(&[]))
                .with_fly_client(crate::fly_client(fly))
                .with_retry(fast_retry()),
        )
        .provider(google.provider())
        .sts_url(google.sts_url())
        .iam_url(google.iam_url())
}

/// Write a credential configuration for `google`'s provider and endpoints into
/// `dir/gcp-credentials.json` by running `bin gcp credential-config` (with a clean
/// environment, `HOME=dir`, and `extra` flags); panics with its stderr if it fails.
pub fn write_credential_config(
    bin: &Path,
    google: &FakeGoogle,
    service_account: Option<&str>,
    dir: &Path,
    extra: &[&str],
) -> PathBuf {
    let file = dir.join("gcp-credentials.json");
    let (sts, iam) = (google.sts_url(), google.iam_url());
    let mut args = vec![
        "gcp",
        "credential-config",
        "--provider",
        google.provider(),
        "--sts-url",
        &sts,
        "--iam-url",
        &iam,
        "--output",
        file.to_str().unwrap(),
    ];
    if let Some(sa) = service_account {
        args.extend(["--service-account", sa]);
    }
    args.extend(extra);
    let out = Command::new(bin)
        .args(&args)
        .env_clear()
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "credential-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

/// A `gcp-storage-emulator` (PyPI) on a free loopback port, in memory, with one bucket, run by
/// `tests/gcs_emulator.py` (which adds the `ETag` and `Last-Modified` headers of its XML API
/// answers, as object_store requires); killed (by its own handle) when dropped. It has no list
/// route and ignores `Authorization`.
#[derive(Debug)]
pub struct StorageEmulator {
    child: std::process::Child,
    port: u16,
}

impl StorageEmulator {
    /// Start it with `bucket` created, its working directory and `HOME` in `home`; `None`
    /// (with a printed reason) when the package is missing locally, a failure in CI.
    pub fn start(home: &Path, bucket: &str) -> Option<Self> {
        let python = crate::python_with(&["gcp_storage_emulator"], "gcp-storage-emulator")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("gcs_emulator.py");
        let child = Command::new(python)
            .arg(launcher)
            .args(["start", "--host=127.0.0.1"])
            .args(["--in-memory", "-q"])
            .arg(format!("--port={port}"))
            .arg(format!("--default-bucket={bucket}"))
            .env_clear()
            .env("HOME", home)
            .env("PATH", "/usr/bin:/bin")
            .current_dir(home)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start gcp-storage-emulator");
        let emulator = Self { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "gcp-storage-emulator did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(emulator)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>` (what `STORAGE_EMULATOR_HOST` takes).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for StorageEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
