//! Node.js as a real consumer of the `fly-oidc` binary:
//! - the AWS SDK for JavaScript v3, `fromProcess()` running `fly-oidc aws credential-process`
//!   from a profile in `~/.aws/config`, against moto_server (STS and S3) and the testkit's
//!   fake STS (a trust failure);
//! - google-auth-library v10 running `fly-oidc gcp executable` through the configuration
//!   `fly-oidc gcp credential-config` writes, against the testkit's fake Google STS.
//!
//! The scripts are `tests/node/*.mjs`; their packages are installed by `scripts/test.sh`
//! (`npm ci --prefix tests/node`). A missing `node` or `tests/node/node_modules` skips the
//! tests locally and fails them in CI (`CI=true`).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::ROLE;
use crate::support::{credential_process_profile, lists_bucket};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::FakeGoogle;
use fly_oidc_tests::aws::Moto;
use fly_oidc_tests::gcp::service_account_of;
use fly_oidc_tests::gcp::{SA, write_credential_config};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `tests/node`, when node and its installed packages are there; `None` (with a printed
/// reason) locally when not, a failure in CI.
pub(crate) fn node_dir() -> Option<PathBuf> {
    if !fly_oidc_tests::require_tool("node") {
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node");
    if !dir.join("node_modules").is_dir() {
        assert!(
            !fly_oidc_tests::in_ci(),
            "tests/node/node_modules is missing in CI: scripts/test.sh runs `npm ci --prefix tests/node`"
        );
        eprintln!("SKIPPED: tests/node/node_modules is missing (run `npm ci --prefix tests/node`)");
        return None;
    }
    Some(dir)
}

/// Run `node <script> <args>` in `tests/node` with a cleared environment: PATH, HOME and `env`.
fn node(dir: &Path, home: &Path, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new("node")
        .current_dir(dir)
        .arg(script)
        .args(args)
        .env_clear()
        .env("PATH", fly_oidc_tests::host_path())
        .env("HOME", home)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The script's one JSON line; panics with both streams when it is not JSON.
pub(crate) fn answer(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{e}: status {}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The fake Fly Machines API of org `acme`, app `web`.
fn fake_fly() -> FakeFlyApi {
    FakeFlyApi::builder().app("web").start_blocking().unwrap()
}

/// Write `$HOME/.aws/config` with one profile, `fly`, whose `credential_process` runs
/// `fly-oidc aws credential-process --role-arn ROLE --sts-endpoint STS <flags>`.
fn write_aws_config(home: &Path, sts: &str, flags: &str) {
    let flags = format!("--role-arn {ROLE} --sts-endpoint {sts} {flags}");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/config"),
        credential_process_profile("fly", &flags),
    )
    .unwrap();
}

#[test]
fn aws_sdk_js_from_process_calls_sts_and_s3_with_fly_oidc_credentials() {
    let Some(dir) = node_dir() else { return };
    let Some(moto) = Moto::start() else { return };
    let fly = fake_fly();
    let home = tempfile::tempdir().unwrap();
    write_aws_config(home.path(), moto.endpoint(), "");
    let bucket = format!("fly-oidc-node-{}", std::process::id());
    let cache = home.path().join("cache");
    let out = node(
        &dir,
        home.path(),
        "aws_process.mjs",
        &["fly", moto.endpoint(), &bucket],
        &[
            ("FLY_OIDC_SOCKET", fly.socket_path().to_str().unwrap()),
            ("XDG_CACHE_HOME", cache.to_str().unwrap()),
        ],
    );
    let result = answer(&out);
    assert!(out.status.success(), "{result}");
    assert_eq!(result["ok"], true, "{result}");
    let arn = result["arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/fly-app/fly-web-"),
        "{arn}"
    );
    assert_eq!(result["account"], "123456789012");
    assert!(lists_bucket(&result, &bucket), "{result}");
    // The SDK read the process's Expiration (RFC 3339 UTC), about an hour ahead.
    assert!(
        result["expiration"].as_str().unwrap().ends_with('Z'),
        "{result}"
    );
    // Two clients resolved credentials, each running the process: one Fly token and one
    // cache entry; the second answer came from fly-oidc's disk cache.
    assert_eq!(fly.request_count(), 1);
    let entries = std::fs::read_dir(cache.join("fly-oidc"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".json")
        })
        .count();
    assert_eq!(entries, 1);
}

#[test]
fn aws_sdk_js_shows_fly_oidc_diagnosis_of_a_trust_failure() {
    let Some(dir) = node_dir() else { return };
    let fly = fake_fly();
    // The role's trust policy names another app.
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .audience("sts.amazonaws.com")
        .subject("acme:other-app:*")
        .start_blocking()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    write_aws_config(home.path(), &sts.url(), "--no-cache");
    let out = node(
        &dir,
        home.path(),
        "aws_process.mjs",
        &["fly", &sts.url(), "unused-bucket"],
        &[("FLY_OIDC_SOCKET", fly.socket_path().to_str().unwrap())],
    );
    let result = answer(&out);
    assert!(!out.status.success(), "{result}");
    assert_eq!(result["ok"], false, "{result}");
    let error = result["error"].as_str().unwrap();
    // The SDK passes on fly-oidc's error line: STS's answer and the token's own subject
    // to compare with the trust policy.
    assert!(error.contains("AccessDenied"), "{error}");
    assert!(error.contains("acme:web:"), "{error}");
    for token in fly.issued_tokens() {
        assert!(!error.contains(&token), "the Fly token leaked: {error}");
    }
    assert!(!error.contains("eyJ"), "{error}");
}

/// google-auth-library refreshes through `bin`'s credential configuration: the access token
/// it gets must be one the fake Google issued for the service account.
fn google_auth_library_refresh(bin: &Path) {
    let Some(dir) = node_dir() else { return };
    let fly = fake_fly();
    let google = FakeGoogle::builder(&fly)
        .service_account(SA)
        .start_blocking()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = write_credential_config(bin, &google, Some(SA), home.path(), &[]);
    let out = node(
        &dir,
        home.path(),
        "gcp_executable.mjs",
        &[],
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap()),
            ("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1"),
            // Else GoogleAuth looks the project up at Cloud Resource Manager (not faked).
            ("GOOGLE_CLOUD_PROJECT", "my-project"),
            ("FLY_OIDC_SOCKET", fly.socket_path().to_str().unwrap()),
        ],
    );
    let result = answer(&out);
    assert!(out.status.success(), "{result}");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["client"], "PluggableAuthClient", "{result}");
    let token = result["token"].as_str().unwrap();
    // Impersonated: the token is the service account's (the fake Google checked the Fly
    // token's signature, issuer and audience before issuing it).
    assert_eq!(service_account_of(&google, token).as_deref(), Some(SA));
    assert_eq!(fly.request_count(), 1);
}

#[test]
fn google_auth_library_refreshes_through_the_executable() {
    google_auth_library_refresh(&crate::support::fly_oidc_bin());
}

/// google-auth-library splits the command on whitespace outside double quotes: a binary
/// whose path holds a space works only if credential-config quotes it (issue 10, class 3).
#[test]
fn google_auth_library_runs_an_executable_whose_path_holds_a_space() {
    let dir = tempfile::tempdir().unwrap();
    let spaced = dir.path().join("with space");
    std::fs::create_dir(&spaced).unwrap();
    let bin = spaced.join("fly-oidc");
    crate::support::install_binary_at(&bin);
    google_auth_library_refresh(&bin);
}
