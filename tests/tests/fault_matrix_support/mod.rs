//! Support for the fault matrix: per-row capture of trace-level logs, a process-wide panic
//! watch, the secret scan, and running the `fly-oidc` binary (also as an unprivileged user).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// A shared buffer that a tracing `fmt` layer writes into.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
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

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// A subscriber logging every event of every crate at TRACE level into this buffer.
    /// Install it with `tracing::subscriber::set_default` on the thread that runs the row
    /// (a current-thread runtime, so every task of the row is polled there).
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish()
    }
}

static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

/// Record every panic in the process (any thread: rows, fakes, runtimes' tasks), so a panic
/// swallowed by a spawned task still fails the matrix. Idempotent.
pub fn watch_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_owned();
            PANICS
                .get_or_init(Mutex::default)
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("thread {thread}: {info}"));
            previous(info);
        }));
    });
}

/// The panics recorded so far.
pub fn panics() -> Vec<String> {
    PANICS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Secrets a row's fakes issued or were configured with.
#[derive(Default)]
pub struct Secrets(Vec<(&'static str, String)>);

impl Secrets {
    /// Add one (empty values are ignored).
    pub fn add(&mut self, what: &'static str, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.0.push((what, value));
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Fail when any secret, a recognizable part of one (a JWT's signature, the last 24
    /// characters of a long secret), or anything JWT-shaped appears in `text`.
    pub fn scan(&self, label: &str, text: &str) -> Result<(), String> {
        for (what, secret) in &self.0 {
            if text.contains(secret.as_str()) {
                return Err(format!(
                    "{what} ({} chars) leaked into {label}",
                    secret.len()
                ));
            }
            if let Some(sig) = secret.rsplit('.').next().filter(|s| s.len() >= 24)
                && text.contains(sig)
            {
                return Err(format!("the signature of a {what} leaked into {label}"));
            }
            if secret.len() >= 32 {
                let tail = &secret[secret.len() - 24..];
                if text.contains(tail) {
                    return Err(format!("the tail of a {what} leaked into {label}"));
                }
            }
        }
        if fly_oidc::redact_jwts(text) != text {
            return Err(format!("something JWT-shaped appears in {label}"));
        }
        Ok(())
    }
}

/// Whether this process runs as root (uid 0), needed to drop to `nobody` for real EACCES.
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The test runner's PATH, to find `setpriv`.
pub fn host_path() -> String {
    #[allow(clippy::disallowed_methods)] // the harness's own PATH, not config under test
    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned())
}

/// What a run of the binary printed.
pub struct CliRun {
    /// The exit code (`None`: killed by a signal or by the time limit).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Whether the time limit killed it.
    pub timed_out: bool,
}

/// Run `fly-oidc args` with exactly `envs` (plus PATH), optionally as uid/gid 65534 through
/// `setpriv`, killed after `limit`.
pub async fn run_cli(
    args: &[String],
    envs: &[(String, String)],
    as_nobody: bool,
    limit: Duration,
) -> CliRun {
    let bin = fly_oidc_tests::fly_oidc_bin();
    let mut cmd = if as_nobody {
        let mut c = tokio::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin);
        c
    } else {
        tokio::process::Command::new(&bin)
    };
    cmd.args(args)
        .env_clear()
        .env("PATH", host_path())
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn fly-oidc");
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => CliRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            timed_out: false,
        },
        Ok(Err(e)) => panic!("waiting for fly-oidc failed: {e}"),
        Err(_) => CliRun {
            code: None,
            stdout: String::new(),
            stderr: format!("killed after {:?}", started.elapsed()),
            timed_out: true,
        },
    }
}

/// Set a path's permission bits.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
