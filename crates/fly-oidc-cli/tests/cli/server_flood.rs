//! `fly-oidc serve` under a flood of hostile local connections (`tests/server/flood.py`: idle
//! keep-alives sending a request every 3 s, request heads sent a byte a second, pipelined
//! requests whose answers are never read, each reopened when the server closes it): boto3's
//! container provider still gets credentials in under 2 s, the server's memory stays bounded,
//! and with `ulimit -n 1024` accept neither spins nor floods the log.
//!
//! Bounded: loopback only, a fixed number of connections, the flood ends by itself.
//!
//! Ignored in the parallel test run: a flood shares 2 cores with the flood's own client and
//! boto3, and a parallel test suite would measure the suite, not the server. `scripts/test.sh`
//! runs them alone, right after the other tests, on the release binary it builds first
//! ([`release_bin`]): `cargo test -p fly-oidc-cli --all-features --test cli -- --ignored
//! server_flood`.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{Sandbox, describe, fake_sts, free_listen, serve_aws_flags, wait_for};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The bound on the server's peak RSS under the flood: 12,000 connections held, about 18 KiB
/// each in the release build (185 MiB measured: a task, its timers, and hyper's buffers while
/// a request is in flight).
const RSS_BOUND_KIB: u64 = 256 * 1024;

/// boto3's container provider (what `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` select): prints the provider and the seconds taken.
const BOTO3: &str = r#"
import json, time, boto3
t = time.monotonic()
c = boto3.Session().get_credentials()
frozen = c.get_frozen_credentials()
print(json.dumps({"method": c.method, "seconds": time.monotonic() - t, "key": bool(frozen.access_key)}))
"#;

struct Served {
    child: Child,
    uri: String,
    token_file: String,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fly-oidc serve` for ROLE through a fake STS, under `bash -c 'ulimit -n LIMIT; exec ...'`
/// when a limit is given.
fn serve(sandbox: &Sandbox, sts: &str, nofile: Option<u32>) -> Served {
    let env_file = sandbox.dir.path().join("serve.env");
    let listen = free_listen();
    let port = listen.rsplit(':').next().unwrap().parse().unwrap();
    let mut command = match nofile {
        Some(limit) => {
            let mut c = sandbox.command("bash");
            c.arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                .arg(release_bin());
            c
        }
        None => sandbox.command(release_bin()),
    };
    let child = command
        .arg("serve")
        .args(serve_aws_flags(&listen, &env_file, sts))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&env_file);
    std::thread::sleep(Duration::from_millis(50));
    let env = std::fs::read_to_string(&env_file).unwrap();
    let var = |name: &str| {
        env.lines()
            .find_map(|l| {
                l.trim_start_matches("export ")
                    .strip_prefix(&format!("{name}="))
            })
            .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_owned())
            .unwrap_or_else(|| panic!("{name} not in the env file: {env}"))
    };
    Served {
        uri: var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        token_file: var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        child,
        port,
    }
}

/// The release build of the binary, beside the debug one the other tests run: the server a
/// Machine runs, and the one whose behaviour under a flood is worth measuring (a debug build
/// spends several times the CPU per request, so on 2 cores the measure would be its own).
/// `scripts/test.sh` builds it (`cargo build --release --locked -p fly-oidc-cli`) just before.
fn release_bin() -> std::path::PathBuf {
    let debug = crate::support::fly_oidc_bin();
    let release = debug
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("release/fly-oidc"))
        .unwrap();
    assert!(
        release.exists(),
        "{} is missing: build it first with `cargo build --release --locked -p fly-oidc-cli` (scripts/test.sh does)",
        release.display()
    );
    release
}

/// Start `flood.py` and wait until it holds `at_least` connections.
fn flood(port: u16, connections: usize, seconds: u32, kinds: &str, at_least: usize) -> Flood {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/server/flood.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            port.to_string(),
            connections.to_string(),
            seconds.to_string(),
            kinds.to_owned(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap());
    let mut flood = Flood {
        child,
        lines,
        open: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while flood.open < at_least {
        assert!(
            Instant::now() < deadline,
            "the flood reached {} connections of {at_least}",
            flood.open
        );
        assert!(flood.next_report(), "the flood ended early");
    }
    flood
}

struct Flood {
    child: Child,
    lines: BufReader<ChildStdout>,
    open: usize,
}

impl Flood {
    /// Read the next `open N reopened M` line; false at the end.
    fn next_report(&mut self) -> bool {
        let mut line = String::new();
        if self.lines.read_line(&mut line).unwrap() == 0 || line.starts_with("done") {
            return false;
        }
        if let Some(n) = line
            .strip_prefix("open ")
            .and_then(|r| r.split_whitespace().next())
        {
            self.open = n.parse().unwrap();
        }
        true
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// boto3 with the container provider against `served`: its report.
fn boto3(sandbox: &Sandbox, served: &Served) -> serde_json::Value {
    let out = sandbox
        .command("python3")
        .args(["-c", BOTO3])
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &served.uri)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &served.token_file)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "boto3: {}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&out)))
}

/// `(VmRSS, VmHWM)` of `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Check boto3 three times under the flood: each under 2 s, from the container provider.
fn assert_boto3_served(sandbox: &Sandbox, served: &Served, flood: &mut Flood, at_least: usize) {
    for _ in 0..3 {
        let report = boto3(sandbox, served);
        assert_eq!(report["method"], "container-role", "{report}");
        assert_eq!(report["key"], true, "{report}");
        let seconds = report["seconds"].as_f64().unwrap();
        assert!(
            seconds < 2.0,
            "boto3 took {seconds:.2} s under the flood: {report}"
        );
        eprintln!(
            "boto3 got credentials in {:.0} ms with {} hostile connections open",
            seconds * 1000.0,
            flood.open
        );
        assert!(flood.next_report(), "the flood ended early");
        assert!(
            flood.open >= at_least,
            "the flood holds only {}",
            flood.open
        );
    }
}

#[test]
#[ignore = "a flood needs the machine to itself: scripts/test.sh runs it alone after the other tests"]
fn ten_thousand_hostile_connections_lock_no_client_out_and_memory_stays_bounded() {
    if fly_oidc_tests::python_with(&["boto3"], "boto3").is_none() {
        return;
    }
    let fly = crate::support::acme_web();
    let sts = fake_sts();
    let sandbox = Sandbox::new(&fly, &sts.url());
    let served = serve(&sandbox, &sts.url(), None);
    let (rss_before, _) = rss_kib(served.child.id());
    // 10,000 keep-alive connections, each sending a request every 3 s (the server keeps
    // them: they are clients), while 2,000 more attack it with slow heads and pipelines it
    // never reads, reopening at once what the server closes (its header and write limits).
    let mut idle = flood(served.port, 10_000, 40, "idle", 10_000);
    let mut hostile = flood(served.port, 2_000, 40, "slow,pipeline", 1_000);
    // Let every kind reach its state: idle ones parked, slow heads begun, pipelines full.
    std::thread::sleep(Duration::from_secs(3));
    assert_boto3_served(&sandbox, &served, &mut idle, 10_000);
    assert!(
        hostile.next_report(),
        "the slow and pipelining flood ended early"
    );
    let (rss, hwm) = rss_kib(served.child.id());
    eprintln!(
        "server RSS: {rss_before} KiB before, {rss} KiB under 10,000 connections, peak {hwm} KiB"
    );
    assert!(
        hwm < RSS_BOUND_KIB,
        "peak RSS {hwm} KiB under the flood (bound {RSS_BOUND_KIB} KiB)"
    );
}

#[test]
#[ignore = "a flood needs the machine to itself: scripts/test.sh runs it alone after the other tests"]
fn with_ulimit_n_1024_a_flood_of_1100_neither_locks_out_nor_floods_the_log() {
    if fly_oidc_tests::python_with(&["boto3"], "boto3").is_none()
        || !fly_oidc_tests::require_tool("bash")
    {
        return;
    }
    let fly = crate::support::acme_web();
    let sts = fake_sts();
    let sandbox = Sandbox::new(&fly, &sts.url());
    let mut served = serve(&sandbox, &sts.url(), Some(1024));
    let mut flood = flood(served.port, 1_100, 20, "idle", 900);
    std::thread::sleep(Duration::from_secs(2));
    assert_boto3_served(&sandbox, &served, &mut flood, 900);
    drop(flood);
    let _ = served.child.kill();
    let _ = served.child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(served.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let lines = stderr
        .lines()
        .filter(|l| l.contains("open files") || l.contains("accept failed"))
        .count();
    assert!(
        lines <= 3,
        "{lines} log lines about accept in a 10 s flood:\n{stderr}"
    );
}
