//! Shared helpers for the `fly-oidc aws` CLI tests: a sandbox (temp HOME and cache, an
//! explicit environment) for running the built binary and the real AWS CLI / boto3.
//!
//! The binary is the one Cargo built for these tests ([`crate::fly_oidc_bin`]).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc_testkit::FakeFlyApi;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Two roles, for two profiles.
pub const ROLE_A: &str = "arn:aws:iam::123456789012:role/fly-reader";
/// The second role.
pub const ROLE_B: &str = "arn:aws:iam::123456789012:role/fly-writer";

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
            .env("PATH", host_path())
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
        self.command(crate::fly_oidc_bin())
            .args(args)
            .output()
            .unwrap()
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
        let bin = crate::fly_oidc_bin();
        let mut text = String::new();
        for (name, role) in profiles {
            text.push_str(&format!(
                "[profile {name}]\nregion = us-east-1\ncredential_process = {} aws credential-process --role-arn {role}\n\n",
                bin.display()
            ));
        }
        std::fs::create_dir_all(self.home.join(".aws")).unwrap();
        std::fs::write(self.home.join(".aws/config"), text).unwrap();
    }
}

/// The test runner's PATH (to find aws, python3, bash), or a usual default.
pub fn host_path() -> String {
    #[allow(clippy::disallowed_methods)] // the harness's own PATH, not config under test
    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned())
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

/// Panic with the output unless the command succeeded.
pub fn assert_success(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", describe(out));
}

/// Whether `python3 -c "import <module>"` works; like `require_tool`, a failure in CI.
pub fn require_python_module(module: &str) -> bool {
    if !fly_oidc_tests::require_tool("python3") {
        return false;
    }
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !fly_oidc_tests::in_ci(),
            "the Python module {module} is required in CI but is not installed"
        );
        eprintln!("SKIPPED: the Python module {module} is not installed (CI installs it)");
    }
    found
}

/// Whether a consumer's JSON report lists `bucket` in its `buckets` array.
pub fn lists_bucket(report: &serde_json::Value, bucket: &str) -> bool {
    let buckets = report["buckets"].as_array().expect("a buckets array");
    buckets.iter().any(|b| b == bucket)
}

/// Every secret a test saw: the Fly tokens the fake minted, and the secret keys and session
/// tokens printed on stdout. None may appear on stderr.
pub fn assert_no_secret_in(stderr: &[u8], fly: &FakeFlyApi, printed: &[serde_json::Value]) {
    let stderr = String::from_utf8_lossy(stderr);
    for jwt in fly.issued_tokens() {
        assert!(
            !stderr.contains(&jwt),
            "a Fly token leaked to stderr: {stderr}"
        );
        // Not even its signature part.
        if let Some(sig) = jwt.rsplit('.').next() {
            assert!(!stderr.contains(sig), "a token signature leaked: {stderr}");
        }
    }
    for creds in printed {
        for field in ["SecretAccessKey", "SessionToken"] {
            if let Some(secret) = creds[field].as_str() {
                assert!(
                    !stderr.contains(secret),
                    "{field} leaked to stderr: {stderr}"
                );
            }
        }
    }
}
