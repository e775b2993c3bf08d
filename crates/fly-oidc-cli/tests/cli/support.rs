//! The helpers of the CLI tests, in one place: read this file to write a CLI test.
//!
//! - The binary: [`fly_oidc_bin`] (the one Cargo built for these tests), [`install_binary_at`].
//! - Running it: [`run`] (a clean environment and a fresh HOME) and [`run_in`] (a given
//!   HOME; [`run_in_os`] for values that are not UTF-8, [`run_os_args_in`] for arguments),
//!   for a command and its output; [`Sandbox`] (HOME, cache directory and an
//!   environment that reaches the fakes) for runs beside the real AWS CLI, boto3 and shells
//!   ([`Sandbox::caller_arn`], [`Sandbox::boto3_profiles`], [`Sandbox::exec_sh`]).
//! - Its output: [`stdout`], [`stderr`], [`stdout_json`], [`last_json`], [`describe`],
//!   [`assert_success`], [`failed`].
//! - `serve` and other long runs: [`Sandbox::spawn_serve`], [`Running`] (killed when
//!   dropped), [`terminate`], [`free_listen`], [`serve_aws_flags`], [`wait_for`],
//!   [`wait_until`].
//! - Fixtures: [`acme_web`] (the fake Fly API of org `acme`, app `web`), [`fake_sts`],
//!   [`moto_sandbox`], [`credential_process_profile`], the roles [`ROLE`],
//!   [`ROLE_A`], [`ROLE_B`] and the service account [`SA`].
//! - From the shared test library `fly_oidc_tests` (tests/lib.rs), used as they are:
//!   `require_tool` and `python_with` (a missing tool skips locally and fails under `CI=true`),
//!   `Secrets` (the one leak scan), `is_root`, `host_path`, `aws::Moto` (moto_server).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc_testkit::FakeFlyApi;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use fly_oidc_tests::aws::{ROLE, ROLE_A, ROLE_B};
pub use fly_oidc_tests::gcp::SA;

/// The `fly-oidc` binary Cargo built for these tests (`CARGO_BIN_EXE_fly-oidc`).
pub fn fly_oidc_bin() -> PathBuf {
    env!("CARGO_BIN_EXE_fly-oidc").into()
}

/// Put the binary at `dest` (to run it from another path, one with a space, say): a hard link
/// where the file system allows it, else a copy. A link opens no file for writing, so another
/// test thread's fork cannot hold a write handle to it when it is executed (the copy's
/// "Text file busy" race under parallel tests).
pub fn install_binary_at(dest: &Path) {
    if std::fs::hard_link(fly_oidc_bin(), dest).is_err() {
        std::fs::copy(fly_oidc_bin(), dest).expect("copy the fly-oidc binary");
    }
}

/// Run `fly-oidc args` with a clean environment and a fresh temporary HOME: see [`run_in`].
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().expect("temporary HOME");
    run_in(args, env, home.path())
}

/// Run `fly-oidc args` with a clean environment: a PATH (`/usr/bin:/bin`), `home` as HOME, a
/// default socket that does not exist (`FLY_OIDC_DEFAULT_SOCKET`, so that no test reaches the
/// real `/.fly/api`), then `env`, which may replace any of them.
pub fn run_in(args: &[&str], env: &[(&str, &str)], home: &Path) -> Output {
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
    run_in_os(args, &env, home)
}

/// [`run_in`] with variables whose values need not be UTF-8.
pub fn run_in_os(args: &[&str], env: &[(&str, &OsStr)], home: &Path) -> Output {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    run_os_args_in(&args, env, home)
}

/// [`run_in_os`] with arguments that need not be UTF-8 either.
pub fn run_os_args_in(args: &[&OsStr], env: &[(&str, &OsStr)], home: &Path) -> Output {
    Command::new(fly_oidc_bin())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("FLY_OIDC_DEFAULT_SOCKET", fly_oidc_tests::NO_FLY_API)
        .envs(env.iter().copied())
        .output()
        .expect("run fly-oidc")
}

/// `aws credential-process --no-cache --role-arn <role> --sts-endpoint <sts>`.
pub fn credential_process_no_cache<'a>(role: &'a str, sts: &'a str) -> Vec<&'a str> {
    vec![
        "aws",
        "credential-process",
        "--no-cache",
        "--role-arn",
        role,
        "--sts-endpoint",
        sts,
    ]
}

/// A free loopback address, `127.0.0.1:PORT`.
pub fn free_listen() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// `--listen LISTEN --env-file ENV_FILE --aws-role-arn ROLE --aws-sts-endpoint STS`.
pub fn serve_aws_flags<'a>(listen: &'a str, env_file: &'a Path, sts: &'a str) -> [&'a str; 8] {
    [
        "--listen",
        listen,
        "--env-file",
        env_file.to_str().unwrap(),
        "--aws-role-arn",
        ROLE,
        "--aws-sts-endpoint",
        sts,
    ]
}

/// A child process killed (and reaped) when dropped, so that a failed assertion leaves no
/// `serve` or `exec` running.
#[derive(Debug)]
pub struct Running(Option<Child>);

impl Running {
    /// Watch `child`.
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// The child, no longer killed when dropped.
    pub fn take(mut self) -> Child {
        self.0.take().expect("a running child")
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a running child")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running child")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM `running`, which must then exit 0; its output (stderr, when piped).
pub fn terminate(running: Running) -> Output {
    let child = running.take();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    out
}

/// Wait up to 10 s for `done`; panic with `what` if it never holds.
pub fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait_at_most(Duration::from_secs(10), what, done);
}

/// Wait up to 20 s for `path` to exist (a process starting: `serve` writing its env file).
pub fn wait_for(path: &Path) {
    let what = format!("{} never appeared", path.display());
    wait_at_most(Duration::from_secs(20), &what, || path.exists());
}

fn wait_at_most(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fake AWS STS that answers every call (it trusts any issuer).
pub fn fake_sts() -> fly_oidc_testkit::aws_sts::FakeSts {
    fly_oidc_testkit::aws_sts::FakeSts::builder()
        .start_blocking()
        .unwrap()
}

/// moto_server, the fake Fly API of app `web`, and a sandbox reaching both, when every tool
/// of `tools` is there (and Python's boto3 when `boto3`); `None`: the test skips, or fails in
/// CI, as [`fly_oidc_tests::require_tool`] and [`fly_oidc_tests::aws::Moto`] say.
pub fn moto_sandbox(
    tools: &[&str],
    boto3: bool,
) -> Option<(FakeFlyApi, fly_oidc_tests::aws::Moto, Sandbox)> {
    for tool in tools {
        if !fly_oidc_tests::require_tool(tool) {
            return None;
        }
    }
    if boto3 && fly_oidc_tests::python_with(&["boto3"], "boto3").is_none() {
        return None;
    }
    let moto = fly_oidc_tests::aws::Moto::start()?;
    let fly = FakeFlyApi::builder().app("web").start_blocking().unwrap();
    let sandbox = Sandbox::new(&fly, moto.endpoint());
    Some((fly, moto, sandbox))
}

/// The fake Fly API of org `acme`, app `web`.
pub fn acme_web() -> FakeFlyApi {
    FakeFlyApi::builder()
        .org("acme")
        .app("web")
        .start_blocking()
        .expect("start the fake Fly API")
}

/// A run's standard output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A run's standard output parsed as JSON (a panic with the output otherwise).
pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", describe(out)))
}

/// The last line of a run's standard output parsed as JSON (a consumer's report).
pub fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", describe(out)))
}

/// A run's standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temp HOME with its own cache directory, and the environment every child gets.
pub struct Sandbox {
    /// Holds the temp directory alive.
    pub dir: tempfile::TempDir,
    /// `$HOME`.
    pub home: PathBuf,
    /// `$XDG_CACHE_HOME`.
    pub cache_home: PathBuf,
    /// Extra variables for every child.
    pub env: Vec<(String, String)>,
}

impl Sandbox {
    /// A sandbox whose children reach the fake Fly API over its socket and STS at `sts`.
    pub fn new(fly: &FakeFlyApi, sts: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let cache_home = dir.path().join("cache");
        std::fs::create_dir_all(&home).unwrap();
        let env = vec![
            (
                "FLY_OIDC_SOCKET".to_owned(),
                fly.socket_path().display().to_string(),
            ),
            ("AWS_ENDPOINT_URL".to_owned(), sts.to_owned()),
            ("AWS_DEFAULT_REGION".to_owned(), "us-east-1".to_owned()),
        ];
        Self {
            dir,
            home,
            cache_home,
            env,
        }
    }

    /// Add (or replace) a variable.
    pub fn set(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// Remove a variable.
    pub fn unset(&mut self, name: &str) {
        self.env.retain(|(k, _)| k != name);
    }

    /// `$XDG_CACHE_HOME/fly-oidc`.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_home.join("fly-oidc")
    }

    /// The cache entries (`aws-*.json`).
    pub fn entries(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.cache_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("aws-") && name.ends_with(".json")
            })
            .collect();
        out.sort();
        out
    }

    /// A command with a cleared environment: PATH, HOME, XDG_CACHE_HOME and ours.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", fly_oidc_tests::host_path())
            .env("HOME", &self.home)
            .env("XDG_CACHE_HOME", &self.cache_home)
            .env("AWS_CONFIG_FILE", self.home.join(".aws/config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.join(".aws/credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        cmd
    }

    /// `fly-oidc <args>`.
    pub fn fly_oidc(&self, args: &[&str]) -> Output {
        self.command(fly_oidc_bin()).args(args).output().unwrap()
    }

    /// `fly-oidc serve <args>` started in the sandbox, stdout discarded, stderr piped.
    pub fn spawn_serve(&self, args: &[&str]) -> Running {
        let child = self
            .command(fly_oidc_bin())
            .arg("serve")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running::new(child)
    }

    /// `fly-oidc aws credential-process --role-arn <role> <extra>`, which must succeed;
    /// returns the parsed JSON.
    pub fn credential_process(&self, role: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["aws", "credential-process", "--role-arn", role];
        args.extend_from_slice(extra);
        let out = self.fly_oidc(&args);
        assert_success(&out, "fly-oidc aws credential-process");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `fly-oidc aws credential-process` without `--role-arn` (the role from `AWS_ROLE_ARN`).
    pub fn credential_process_no_role(&self) -> serde_json::Value {
        let out = self.fly_oidc(&["aws", "credential-process"]);
        assert_success(&out, "fly-oidc aws credential-process");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Write `~/.aws/config` with one `credential_process` profile per `(name, role)`.
    pub fn write_aws_config(&self, profiles: &[(&str, &str)]) {
        let mut text = String::new();
        for (name, role) in profiles {
            text.push_str(&credential_process_profile(
                name,
                &format!("--role-arn {role}"),
            ));
            text.push('\n');
        }
        self.write_aws_config_text(&text);
    }

    /// Write `text` to `~/.aws/config`.
    pub fn write_aws_config_text(&self, text: &str) {
        std::fs::create_dir_all(self.home.join(".aws")).unwrap();
        std::fs::write(self.home.join(".aws/config"), text).unwrap();
    }

    /// The caller ARN that `aws <extra> sts get-caller-identity` prints (which must succeed).
    pub fn caller_arn(&self, extra: &[&str]) -> String {
        let mut args = extra.to_vec();
        args.extend(["sts", "get-caller-identity", "--output", "json"]);
        let out = self.command("aws").args(&args).output().unwrap();
        assert_success(&out, &format!("aws {args:?}"));
        stdout_json(&out)["Arn"].as_str().unwrap().to_owned()
    }

    /// `tests/python/aws_credential_process.py <bucket> <profiles>` (boto3 through those
    /// `credential_process` profiles), which must succeed; its JSON report.
    pub fn boto3_profiles(&self, bucket: &str, profiles: &[&str]) -> serde_json::Value {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/aws_credential_process.py"
        );
        let out = self
            .command("python3")
            .arg(script)
            .arg(bucket)
            .args(profiles)
            .output()
            .unwrap();
        assert_success(&out, "boto3 script");
        stdout_json(&out)
    }

    /// `fly-oidc exec <flags> -- sh -c <script>`.
    pub fn exec_sh(&self, flags: &[&str], script: &str) -> Output {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        self.fly_oidc(&args)
    }
}

/// A profile of `~/.aws/config` (region `us-east-1`) whose `credential_process` is
/// `fly-oidc aws credential-process <flags>`.
pub fn credential_process_profile(name: &str, flags: &str) -> String {
    format!(
        "[profile {name}]\nregion = us-east-1\ncredential_process = {} aws credential-process {flags}\n",
        fly_oidc_bin().display()
    )
}

/// Write `contents` to the file `name` in `dir`; its path.
pub fn write_in(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The JSON string `value` holds `needle` (a failure shows `context`, the document it is in).
pub fn assert_json_contains(value: &serde_json::Value, needle: &str, context: &serde_json::Value) {
    let text = value.as_str().unwrap();
    assert!(text.contains(needle), "{context}");
}

/// The exit code of `out` (-1 when a signal ended it).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// `out` exited with `want` and its `stream` (stdout or stderr) holds `needle`.
pub fn expect(out: &Output, want: i32, stream: fn(&Output) -> String, needle: &str) {
    let both = format!("{}{}", stdout(out), stderr(out));
    assert_eq!(code(out), want, "{both}");
    assert!(stream(out).contains(needle), "{needle:?} not in: {both}");
}

/// stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A run that failed with exit `code` and printed nothing on stdout (a panic with the output
/// otherwise): its stderr.
#[track_caller]
pub fn failed(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
    assert!(out.stdout.is_empty(), "{}", describe(out));
    stderr(out)
}

/// Panic with the output unless the command succeeded.
pub fn assert_success(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", describe(out));
}

/// Whether a consumer's JSON report lists `bucket` in its `buckets` array.
pub fn lists_bucket(report: &serde_json::Value, bucket: &str) -> bool {
    let buckets = report["buckets"].as_array().expect("a buckets array");
    buckets.iter().any(|b| b == bucket)
}

/// The secrets of a test of AWS credentials: the Fly tokens `fly` minted (and its API token),
/// and the secret keys and session tokens of the credentials `printed` (`credential_process`
/// JSON).
pub fn aws_secrets(fly: &FakeFlyApi, printed: &[serde_json::Value]) -> fly_oidc_tests::Secrets {
    let mut secrets = fly_oidc_tests::Secrets::of_fly(fly);
    for creds in printed {
        for field in ["SecretAccessKey", "SessionToken"] {
            if let Some(secret) = creds[field].as_str() {
                secrets.add(field, secret);
            }
        }
    }
    secrets
}
