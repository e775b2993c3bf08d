//! Shared helpers for the end-to-end tests: the library tests (`tests/tests/libraries/`), and
//! the tests that run the `fly-oidc` binary as a process (`crates/fly-oidc-cli/tests/cli/` and
//! the fault matrix, `crates/fly-oidc-cli/tests/fault_matrix/`; that package depends on this one).
#![warn(missing_docs)]
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

pub mod aws;
pub mod gcp;

use fly_oidc::{Env, FlyOidcClient, RetryConfig};
use fly_oidc_testkit::FakeFlyApi;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// The default retry policy with 5 ms / 20 ms backoff, so retried faults stay fast.
pub fn fast_retry() -> RetryConfig {
    RetryConfig::default()
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(20))
}

/// A Fly token client on the fake's Unix socket, with an empty environment and
/// [`fast_retry`].
pub fn fly_client(fly: &FakeFlyApi) -> FlyOidcClient {
    FlyOidcClient::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(Env::from_slice(&[]))
                .with_retry(fast_retry()),
        )
        .socket(fly.socket_path())
        .build()
        .unwrap()
}

/// A Fly client for "not on a Fly Machine": nothing configured and no default socket.
pub fn not_on_fly_client() -> FlyOidcClient {
    FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
        .default_socket("/nonexistent/fly-oidc-test/.fly/api")
        .build()
        .unwrap()
}

/// The built example `name` (`target/<profile>/examples/<name>`), for tests that run an
/// example as a user would.
///
/// Cargo builds examples for `--all-targets` only in test mode (under hashed names), so
/// build them first: `cargo build -p fly-oidc-examples --examples` (`scripts/test.sh` does).
pub fn example_bin(name: &str) -> PathBuf {
    let bin = target_profile_dir().join("examples").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p fly-oidc-examples --examples` first",
        bin.display()
    );
    bin
}

/// The path of the built `fly-oidc` binary in this target directory, for the tests of this
/// package that run it.
///
/// The tests of `crates/fly-oidc-cli` (the CLI tests and the fault matrix) use `env!("CARGO_BIN_EXE_fly-oidc")` instead, which
/// Cargo sets only for that package's integration tests. `cargo test --workspace` builds the
/// binary; when running this package alone, build it first with `cargo build -p fly-oidc-cli`.
pub fn fly_oidc_bin() -> PathBuf {
    let bin = target_profile_dir().join("fly-oidc");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p fly-oidc-cli` (or `cargo test --workspace`) first",
        bin.display()
    );
    bin
}

/// `target/<profile>`, from the running test binary's path (`target/<profile>/deps/<test>`).
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("a target/<profile>/deps layout")
        .to_path_buf()
}

/// Poll all futures concurrently on this task (a small `join_all`, without a futures
/// dependency); the outputs come in the futures' order.
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, fut) in futures.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// Whether the suite runs in CI, where a missing tool is a failure rather than a skip.
pub fn in_ci() -> bool {
    #[allow(clippy::disallowed_methods)] // reads the test harness's own setting, not config
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skip a test (with a printed reason) when a tool is missing locally; fail in CI.
pub fn require_tool(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(!in_ci(), "{tool} is required in CI but is not installed");
        eprintln!("SKIPPED: {tool} is not installed (CI installs it)");
    }
    found
}

/// The absolute path of a `python3` that can import all of `modules`, or `None` (with a
/// printed reason) when there is none locally; in CI a missing one fails the test, naming the
/// PyPI packages to install (`pip_packages`).
pub fn python_with(modules: &[&str], pip_packages: &str) -> Option<PathBuf> {
    let imports = modules.join(", ");
    let probe = std::process::Command::new("python3")
        .args([
            "-c",
            &format!("import sys, {imports}; print(sys.executable)"),
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => {
            Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        }
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                !in_ci(),
                "python3 with {imports} is required in CI (pip install {pip_packages}): {why}"
            );
            eprintln!("SKIPPED: python3 with {imports} is not available ({why})");
            None
        }
    }
}

/// Panic if `text` (found in `place`) holds one of `secrets` (each `(what it is, secret)`),
/// the last 20 characters of one (a JWT's signature, a token's tail), or anything JWT-like.
/// The messages name the secret and the place, never the text.
pub fn assert_no_secrets(place: &str, text: &str, secrets: &[(String, String)]) {
    for (what, secret) in secrets {
        assert!(!text.contains(secret.as_str()), "{what} appears in {place}");
        let tail = &secret[secret.len().saturating_sub(20)..];
        assert!(!text.contains(tail), "the end of {what} appears in {place}");
    }
    assert!(
        !text.contains("eyJ"),
        "something JWT-like appears in {place}"
    );
}

/// A buffer that a tracing `fmt` subscriber writes log lines into, for scanning logs for
/// secrets and warnings.
///
/// [`install`](Self::install) captures the current thread only (tests share a process), so
/// run the code under test on a current-thread runtime (`#[tokio::test]`): then every task it
/// spawns logs on the test's thread.
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogCapture {
    /// Capture this thread's logs of every crate at TRACE level until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Forget what was captured so far.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
