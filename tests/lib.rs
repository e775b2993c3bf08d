//! Shared helpers for the end-to-end tests: the library tests (`tests/tests/libraries/`), and
//! the tests that run the `fly-oidc` binary as a process (`crates/fly-oidc-cli/tests/cli/` and
//! the fault matrix, `crates/fly-oidc-cli/tests/fault_matrix/`; that package depends on this one).
#![warn(missing_docs)]
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

pub mod aws;
pub mod gcp;

use fly_oidc::{Env, FlyOidcClient, RetryConfig};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::FakeGoogle;
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

/// A default Machines API socket that does not exist: the tests' stand-in for `/.fly/api`
/// (which no test may reach), given to the binary as `FLY_OIDC_DEFAULT_SOCKET`.
pub const NO_FLY_API: &str = "/nonexistent/fly-oidc-test/.fly/api";

/// A Fly client for "not on a Fly Machine": nothing configured and no default socket.
pub fn not_on_fly_client() -> FlyOidcClient {
    FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
        .default_socket(NO_FLY_API)
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

/// One HTTP/1.1 request over a plain socket, for the tests that need exact bytes on the wire:
/// `METHOD PATH` of `url` (`http://HOST:PORT`, then the path, `/` when none), `Host`, the
/// `headers` (`Name: value` each), `Content-Length`, `Connection: close`, then `body`. The
/// answer as far as it came (until the server closes, or 10 s pass).
pub fn http_request(method: &str, url: &str, headers: &[&str], body: &[u8]) -> String {
    use std::io::Read as _;
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The status code of an HTTP answer (`HTTP/1.1 200 OK...`); `None` when it has none.
pub fn http_status(answer: &str) -> Option<u16> {
    answer.split_whitespace().nth(1)?.parse().ok()
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

/// The secrets a test saw, each with what it is, and the one scan for them in outputs, logs,
/// `Debug` and errors: every test that checks for a leak uses this.
///
/// Build it after the code under test ran (the fakes list what they issued so far), then
/// [`assert_absent`](Self::assert_absent) or [`scan`](Self::scan). The scan's messages name the
/// secret's kind and the place, never the text (which would leak the secret into the panic).
#[derive(Clone, Debug, Default)]
pub struct Secrets(Vec<(String, String)>);

impl Secrets {
    /// No secret yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every Fly OIDC token `fly` minted so far, and its Fly API bearer token.
    pub fn of_fly(fly: &FakeFlyApi) -> Self {
        Self::new().fly(fly)
    }

    /// Add one secret (`what` it is, for the message); empty values are ignored.
    pub fn add(&mut self, what: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        if !value.is_empty() {
            self.0.push((what.to_owned(), value));
        }
        self
    }

    /// With one more secret (see [`add`](Self::add)).
    pub fn with(mut self, what: &str, value: impl Into<String>) -> Self {
        self.add(what, value);
        self
    }

    /// With every Fly OIDC token `fly` minted so far, and its Fly API bearer token.
    pub fn fly(mut self, fly: &FakeFlyApi) -> Self {
        for jwt in fly.issued_tokens() {
            self.add("a Fly OIDC token", jwt);
        }
        self.with("the Fly API token", fly.api_token())
    }

    /// With every secret access key and session token `sts` issued so far.
    pub fn sts(mut self, sts: &FakeSts) -> Self {
        for c in sts.issued_credentials() {
            self.add("an AWS secret access key", c.secret_access_key);
            self.add("an AWS session token", c.session_token);
        }
        self
    }

    /// With every access token `google` issued so far.
    pub fn google(mut self, google: &FakeGoogle) -> Self {
        for token in google.issued_tokens() {
            self.add("a Google access token", token);
        }
        self
    }

    /// How many secrets there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Err` (naming the secret's kind and `place`) when `text` holds a secret, a recognizable
    /// part of one (a JWT's signature, its last 20 characters), one in an encoded form
    /// (percent-encoded, JSON-escaped or base64, as `fly_oidc::redact_secret` finds them), or
    /// anything JWT-shaped (`eyJ`, or a JWT as `fly_oidc::redact_jwts` finds one).
    pub fn scan(&self, place: &str, text: &str) -> Result<(), String> {
        for (what, secret) in &self.0 {
            if text.contains(secret.as_str()) {
                return Err(format!(
                    "{what} ({} chars) appears in {place}",
                    secret.len()
                ));
            }
            if let Some(sig) = secret.rsplit('.').next().filter(|s| s.len() >= 24)
                && text.contains(sig)
            {
                return Err(format!("the signature of {what} appears in {place}"));
            }
            let tail = secret
                .get(secret.len().saturating_sub(20)..)
                .unwrap_or(secret);
            if text.contains(tail) {
                return Err(format!("the tail of {what} appears in {place}"));
            }
            if fly_oidc::redact_secret(text, secret) != text {
                return Err(format!("an encoded form of {what} appears in {place}"));
            }
        }
        if text.contains("eyJ") || fly_oidc::redact_jwts(text) != text {
            return Err(format!("something JWT-shaped appears in {place}"));
        }
        Ok(())
    }

    /// Panic (with [`scan`](Self::scan)'s message) if `text`, found in `place`, holds a
    /// secret.
    #[track_caller]
    pub fn assert_absent(&self, place: &str, text: &str) {
        if let Err(leak) = self.scan(place, text) {
            panic!("{leak}");
        }
    }

    /// [`assert_absent`](Self::assert_absent) from a process's stdout and its stderr (for a
    /// run whose stdout carries no secret by design).
    #[track_caller]
    pub fn assert_absent_from_output(&self, out: &std::process::Output) {
        self.assert_absent("stdout", &String::from_utf8_lossy(&out.stdout));
        self.assert_absent("stderr", &String::from_utf8_lossy(&out.stderr));
    }
}

/// Panic unless `text` holds every one of `needles` (naming the first missing one).
#[track_caller]
pub fn assert_contains_all(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
}

/// Panic if `text` holds any of `unwanted` (naming it).
#[track_caller]
pub fn assert_contains_none(text: &str, unwanted: &[&str]) {
    for other in unwanted {
        assert!(!text.contains(other), "{other:?} in {text}");
    }
}

/// A fault in words as the fault matrix names its row (the name THREAT_MODEL.md cites):
/// lowercase, each run of anything but ASCII letters and digits one `-`.
pub fn fault_slug(fault: &str) -> String {
    fault
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
}

/// Whether this process runs as root (effective uid 0): the tests that drop privileges
/// (`--user`, `setpriv`) or need a real permission error run (or skip) by it.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether this process runs as root, for a test that needs it (`what`: to run as another
/// user, `unshare --pid`...); when not, prints why the test is skipped (locally and in CI
/// alike: such a test cannot run unprivileged).
pub fn require_root(what: &str) -> bool {
    let root = is_root();
    if !root {
        eprintln!("SKIPPED: {what} needs root");
    }
    root
}

/// The test runner's PATH (to find aws, python3, node, bash, setpriv), or a usual default:
/// children get it in place of their cleared environment's.
pub fn host_path() -> String {
    #[allow(clippy::disallowed_methods)] // the harness's own PATH, not config under test
    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned())
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
    ///
    /// tracing caches each callsite's interest for the whole process, computed the first time
    /// any thread reaches it: on a thread with no subscriber that is "never", and the capture
    /// would miss that line for good. So the first capture also installs a global subscriber
    /// that takes every event and keeps nothing (a bare registry), and each capture rebuilds the cache.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        static EVERY_THREAD_INTERESTED: std::sync::Once = std::sync::Once::new();
        EVERY_THREAD_INTERESTED.call_once(|| {
            // Fails only if the binary set one already, which then plays the same part.
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        guard
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
