//! `fly-oidc` run as a process: what a newcomer meets first. CA certificates missing from
//! the image, "did you mean" suggestions, help layout, URL errors, `aws env`'s region.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::FakeGoogle;
use std::path::Path;
use std::process::{Command, Output};

const ROLE: &str = "arn:aws:iam::123456789012:role/app";
const NO_CA_WARNING: &str = "no CA certificates could be loaded";

/// Run `fly-oidc` with only `env`, a PATH and a temporary HOME.
fn fly_oidc(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_fly-oidc"))
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `SSL_CERT_FILE` (an empty file) and `SSL_CERT_DIR` (an empty directory): an image
/// without the `ca-certificates` package, as far as the process can tell.
struct NoCaCerts {
    _dir: tempfile::TempDir,
    file: String,
    certs: String,
}

impl NoCaCerts {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty.pem");
        std::fs::write(&file, "").unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        Self {
            file: file.display().to_string(),
            certs: certs.display().to_string(),
            _dir: dir,
        }
    }

    fn env(&self) -> [(&'static str, &str); 2] {
        [("SSL_CERT_FILE", &self.file), ("SSL_CERT_DIR", &self.certs)]
    }
}

/// The Fly API over HTTP (a client that may speak TLS, so it loads root certificates).
fn fly_over_http(fly: &FakeFlyApi) -> [(&'static str, String); 2] {
    [
        ("FLY_API_HOSTNAME", fly.url()),
        ("FLY_API_TOKEN", fly.api_token().to_owned()),
    ]
}

fn with<'a>(
    a: &'a [(&'static str, String)],
    b: &[(&'static str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    a.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(b.iter().copied())
        .collect()
}

#[test]
fn without_ca_certificates_google_commands_work_with_one_warning() {
    let no_ca = NoCaCerts::new();
    let fly = FakeFlyApi::builder().org("acme").start_blocking().unwrap();
    let google = FakeGoogle::builder(&fly).start_blocking().unwrap();
    let vars = [
        fly_over_http(&fly).to_vec(),
        vec![
            ("FLY_OIDC_GCP_PROVIDER", google.provider().to_owned()),
            ("FLY_OIDC_GCP_STS_URL", google.sts_url()),
            ("FLY_OIDC_GCP_IAM_URL", google.iam_url()),
        ],
    ]
    .concat();
    let out = fly_oidc(&["gcp", "access-token"], &with(&vars, &no_ca.env()));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!text(&out.stdout).trim().is_empty());
    // Two HTTP clients (Fly API, Google STS) were built: the roots were loaded once.
    assert_eq!(stderr.matches(NO_CA_WARNING).count(), 1, "{stderr}");
    assert!(
        stderr.contains("ca-certificates"),
        "says how to fix it: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn without_ca_certificates_gcp_executable_stays_silent_on_stderr() {
    let no_ca = NoCaCerts::new();
    let fly = FakeFlyApi::builder().org("acme").start_blocking().unwrap();
    let google = FakeGoogle::builder(&fly).start_blocking().unwrap();
    let vars = [
        fly_over_http(&fly).to_vec(),
        vec![
            ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", google.sts_audience()),
            (
                "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
                "urn:ietf:params:oauth:token-type:jwt".to_owned(),
            ),
            ("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0".to_owned()),
        ],
    ]
    .concat();
    let out = fly_oidc(&["gcp", "executable"], &with(&vars, &no_ca.env()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "",
        "Google's libraries read stderr with stdout"
    );
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["success"], true);
    assert_eq!(fly.token_requests(), 1);
}

#[test]
fn without_ca_certificates_aws_commands_work_with_one_warning() {
    let no_ca = NoCaCerts::new();
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sts = FakeSts::builder().start_blocking().unwrap();
    let vars = fly_over_http(&fly);
    let url = sts.url();
    let out = fly_oidc(
        &[
            "aws",
            "credential-process",
            "--no-cache",
            "--role-arn",
            ROLE,
            "--sts-endpoint",
            &url,
        ],
        &with(&vars, &no_ca.env()),
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["Version"], 1);
    // The Fly client and the AWS SDK's client share one load of the roots.
    assert_eq!(stderr.matches(NO_CA_WARNING).count(), 1, "{stderr}");
    assert_eq!(sts.request_count(), 1);
}

/// With the system's certificates (the test machine has `ca-certificates`), no warning.
#[test]
fn with_ca_certificates_there_is_no_warning() {
    if !Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        eprintln!("skipped: this machine has no /etc/ssl/certs/ca-certificates.crt");
        return;
    }
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let vars = fly_over_http(&fly);
    let out = fly_oidc(
        &["token"],
        &with(
            &vars,
            &[("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")],
        ),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}
