//! The process-wide panic watch, and running the `fly-oidc` binary (also as an
//! unprivileged user).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Panics recorded in the process: (thread name, message).
static PANICS: OnceLock<Mutex<Vec<(String, String)>>> = OnceLock::new();

/// Record every panic in the process (any thread: rows, fakes, runtimes' tasks) with its
/// thread's name, so a panic swallowed by a spawned task still fails its row. Idempotent.
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
                .push((thread, info.to_string()));
            previous(info);
        }));
    });
}

/// The panics recorded on the thread named `thread`, or on any thread that is not a row's
/// (`row:` names): those belong to no row, so every row reports them.
pub fn panics_on(thread: &str) -> Vec<String> {
    PANICS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(t, _)| t == thread || !t.starts_with("row:"))
        .map(|(t, m)| format!("thread {t}: {m}"))
        .collect()
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

/// Run `fly-oidc args` (`CARGO_BIN_EXE_fly-oidc`) with exactly `envs` (plus PATH),
/// optionally as uid/gid 65534 through `setpriv`, killed after `limit`.
pub async fn run_binary(
    args: &[String],
    envs: &[(String, String)],
    as_nobody: bool,
    limit: Duration,
) -> CliRun {
    let bin = env!("CARGO_BIN_EXE_fly-oidc");
    let mut cmd = if as_nobody {
        let mut c = tokio::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin);
        c
    } else {
        tokio::process::Command::new(bin)
    };
    cmd.args(args)
        .env_clear()
        .env("PATH", fly_oidc_tests::host_path())
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
