//! Real consumers of `fly-oidc gcp credential-config`: python `google-auth` (pluggable
//! auth) and `gcloud` (required in CI), refreshing through `fly-oidc gcp executable`
//! against the fake Fly API and the fake Google STS + IAM Credentials.
//!
//! Needs `python3` with the PyPI packages `google-auth` and `requests` (CI installs them;
//! locally the tests are skipped with a printed reason when they are missing).

#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use crate::support::assert_json_contains;
use fly_oidc_testkit::google::FakeGoogleBuilder;
use fly_oidc_testkit::google::{Endpoint, FakeGoogle};
use fly_oidc_tests::gcp::{Fakes, SA, write_credential_config};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The absolute path of a python3 that has google-auth and requests, or `None` (skip;
/// a failure in CI).
fn python_with_google_auth() -> Option<PathBuf> {
    fly_oidc_tests::python_with(
        &["google.auth", "google.auth.transport.requests", "requests"],
        "google-auth requests",
    )
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/gcp_google_auth.py")
}

/// Write a credential configuration with `fly-oidc gcp credential-config`.
fn credential_config(google: &FakeGoogle, service_account: Option<&str>, dir: &Path) -> PathBuf {
    credential_config_with(google, service_account, dir, &[])
}

/// The same, with extra flags.
fn credential_config_with(
    google: &FakeGoogle,
    service_account: Option<&str>,
    dir: &Path,
    extra: &[&str],
) -> PathBuf {
    write_credential_config(
        &crate::support::fly_oidc_bin(),
        google,
        service_account,
        dir,
        extra,
    )
}

/// Run the python script with a clean environment plus `envs`; parse its JSON line.
fn run_python(python: &Path, home: &Path, envs: &[(&str, &str)]) -> (Output, Value) {
    let out = Command::new(python)
        .arg(script())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .envs(envs.iter().copied())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "the script printed no JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, value)
}

struct Setup {
    python: PathBuf,
    fakes: Fakes,
    home: tempfile::TempDir,
}

/// The fakes (Google edited by `edit`) and a HOME; `None` (the test skips) without Python's
/// google-auth.
async fn setup(edit: impl FnOnce(FakeGoogleBuilder) -> FakeGoogleBuilder) -> Option<Setup> {
    Some(Setup {
        python: python_with_google_auth()?,
        fakes: Fakes::start_with(edit).await,
        home: tempfile::tempdir().unwrap(),
    })
}

impl Setup {
    fn refresh(&self, config: &Path) -> (Output, Value) {
        run_python(
            &self.python,
            self.home.path(),
            &[
                ("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap()),
                ("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1"),
                (
                    "FLY_OIDC_SOCKET",
                    self.fakes.fly.socket_path().to_str().unwrap(),
                ),
            ],
        )
    }
}

#[tokio::test]
async fn python_google_auth_refreshes_through_the_executable() {
    let Some(s) = setup(|g| g).await else {
        return;
    };
    let config = credential_config(&s.fakes.google, None, s.home.path());
    let (out, result) = s.refresh(&config);
    assert_eq!(result["ok"], true, "{result}");
    assert!(out.status.success());
    assert_eq!(result["type"], "google.auth.pluggable.Credentials");
    assert_eq!(result["valid"], true);
    let token = result["token"].as_str().unwrap();
    let info = s.fakes.issued(token);
    assert_eq!(info.service_account, None);
    assert_eq!(info.subject, "acme:my-app:quiet-sun-4242");

    // google-auth ran our executable: one Fly token, for the provider's https:// audience,
    // which the fake STS verified.
    assert_eq!(s.fakes.fly.request_count(), 1);
    assert_eq!(
        s.fakes.fly.requests()[0].audience.as_deref(),
        Some(s.fakes.google.token_audience().as_str())
    );
    let sts = &s.fakes.google.requests()[0];
    assert_eq!((sts.endpoint, sts.status), (Endpoint::Sts, 200));
    assert_eq!(
        sts.field("subject_token"),
        Some(s.fakes.fly.issued_tokens()[0].as_str())
    );
    assert_eq!(
        sts.field("audience"),
        Some(s.fakes.google.sts_audience().as_str())
    );
}

#[tokio::test]
async fn python_google_auth_impersonates_the_service_account() {
    let Some(s) = setup(|g| g).await else {
        return;
    };
    let config = credential_config(&s.fakes.google, Some(SA), s.home.path());
    let (_, result) = s.refresh(&config);
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["service_account_email"], SA);
    let token = result["token"].as_str().unwrap();
    let info = s.fakes.issued(token);
    assert_eq!(info.service_account.as_deref(), Some(SA));
    assert_eq!(
        info.scopes,
        vec!["https://www.googleapis.com/auth/cloud-platform".to_owned()]
    );
    assert_eq!(s.fakes.google.request_count(), 1);
    assert_eq!(s.fakes.google.iam_request_count(), 1);
}

#[tokio::test]
async fn python_google_auth_reports_rejections_and_executable_failures() {
    // The provider's attribute condition rejects this app.
    let Some(s) = setup(|g| g.attribute_condition(|claims| claims["app_name"] == "billing")).await
    else {
        return;
    };
    let config = credential_config(&s.fakes.google, None, s.home.path());
    let (out, result) = s.refresh(&config);
    assert_eq!(result["ok"], false);
    assert!(!out.status.success());
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("unauthorized_client"), "{error}");
    assert!(error.contains("attribute condition"), "{error}");

    // Our executable fails (no Fly API): google-auth shows its failure.
    let missing = s.home.path().join("no-socket");
    let (_, result) = run_python(
        &s.python,
        s.home.path(),
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap()),
            ("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1"),
            ("FLY_OIDC_SOCKET", missing.to_str().unwrap()),
        ],
    );
    assert_eq!(result["ok"], false);
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("Executable exited with non-zero return code 1"),
        "{error}"
    );
    assert!(error.contains("getting a Fly OIDC token failed"), "{error}");
    assert!(!error.contains("eyJ"), "{error}");
    // google-auth reads stdout and stderr together: it shows our JSON response alone.
    assert!(!error.contains("fly-oidc: error"), "{error}");
    assert!(error.contains(r#""success":false"#), "{error}");

    // Without the opt-in, google-auth refuses to run executables (what our instructions say).
    let (_, result) = run_python(
        &s.python,
        s.home.path(),
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap()),
            (
                "FLY_OIDC_SOCKET",
                s.fakes.fly.socket_path().to_str().unwrap(),
            ),
        ],
    );
    assert_eq!(result["ok"], false);
    assert_json_contains(
        &result["error"],
        "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES",
        &result,
    );
}

/// Run gcloud with a private configuration directory; `None` when gcloud is missing.
fn gcloud(home: &Path, socket: &Path, args: &[&str]) -> Option<Output> {
    let gcloud = ["/usr/bin/gcloud", "/usr/local/bin/gcloud"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    Command::new(gcloud)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("CLOUDSDK_CONFIG", home.join("gcloud"))
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
        .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
        .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
        .env("FLY_OIDC_SOCKET", socket)
        .output()
        .ok()
}

/// gcloud is required under CI=true (google-cloud-cli is on the machine image); skipped with a
/// printed reason elsewhere.
#[tokio::test]
async fn gcloud_logs_in_with_the_credential_config() {
    let (fakes, home) = (Fakes::start_with(|g| g).await, tempfile::tempdir().unwrap());
    let socket = fakes.fly.socket_path();
    for service_account in [None, Some(SA)] {
        let config = credential_config(&fakes.google, service_account, home.path());
        let login_flag = format!("--cred-file={}", config.display());
        let Some(login) = gcloud(home.path(), socket, &["auth", "login", &login_flag]) else {
            assert!(
                !fly_oidc_tests::in_ci(),
                "gcloud is required in CI but is not installed (google-cloud-cli)"
            );
            eprintln!("SKIPPED: gcloud is not installed (CI requires it)");
            return;
        };
        let stderr = String::from_utf8_lossy(&login.stderr).into_owned();
        assert!(login.status.success(), "gcloud auth login failed: {stderr}");
        // gcloud refreshed through our executable and asked token_info_url for the account.
        let account = match service_account {
            Some(sa) => sa.to_owned(),
            None => "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/fly-pool/subject/acme:my-app:quiet-sun-4242".to_owned(),
        };
        assert!(
            stderr.contains(&format!(
                "Authenticated with external account credentials for: [{account}]"
            )),
            "{stderr}"
        );
        assert!(
            fakes
                .google
                .requests()
                .iter()
                .any(|r| r.endpoint == Endpoint::Introspect && r.status == 200)
        );

        let out = gcloud(home.path(), socket, &["auth", "print-access-token"]).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "gcloud auth print-access-token failed: {stderr}"
        );
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let info = fakes.issued(&token);
        assert_eq!(info.service_account.as_deref(), service_account);
        assert!(!stderr.contains("eyJ"), "{stderr}");
    }
}

#[tokio::test]
async fn python_google_auth_reuses_the_token_cache_file() {
    use std::os::unix::fs::PermissionsExt;
    let Some(s) = setup(|g| g).await else {
        return;
    };
    let cache = s.home.path().join("fly-token.json");
    let config = credential_config_with(
        &s.fakes.google,
        None,
        s.home.path(),
        &["--token-cache-file", cache.to_str().unwrap()],
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(
        written["credential_source"]["executable"]["output_file"],
        cache.to_str().unwrap()
    );
    let (_, first) = s.refresh(&config);
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(s.fakes.fly.request_count(), 1);
    let cached: Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(cached["success"], true);
    assert_eq!(cached["id_token"], s.fakes.fly.issued_tokens()[0].as_str());
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A second process: google-auth reads the cached Fly token instead of running us again.
    let (_, second) = s.refresh(&config);
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(
        s.fakes.fly.request_count(),
        1,
        "the cached Fly token was reused"
    );
    assert_eq!(s.fakes.google.request_count(), 2);
    let subjects: Vec<_> = s
        .fakes
        .google
        .requests()
        .iter()
        .filter_map(|r| r.field("subject_token").map(str::to_owned))
        .collect();
    assert_eq!(subjects.len(), 2);
    assert_eq!(subjects[0], subjects[1]);
}

/// Issue 10, class 3: a binary under `<dir>/my tools/` writes a command google-auth runs.
#[tokio::test]
async fn python_google_auth_runs_a_binary_whose_path_holds_a_space() {
    let Some(s) = setup(|g| g).await else {
        return;
    };
    let tools = s.home.path().join("my tools");
    std::fs::create_dir(&tools).unwrap();
    let bin = tools.join("fly-oidc");
    crate::support::install_binary_at(&bin);
    let config = write_credential_config(&bin, &s.fakes.google, None, s.home.path(), &[]);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let bin = bin.canonicalize().unwrap();
    assert_eq!(
        written["credential_source"]["executable"]["command"],
        format!("\"{}\" gcp executable", bin.display())
    );
    let (out, result) = s.refresh(&config);
    assert_eq!(result["ok"], true, "{result}");
    assert!(out.status.success());
    assert_eq!(s.fakes.fly.request_count(), 1);
}

/// Issue 10, class 2: ` --verbose` appended to the command by a user who is debugging, and
/// `RUST_LOG=trace` in the environment, add nothing to what google-auth reads (stdout and
/// stderr together); the diagnostics go to `FLY_OIDC_LOG_FILE`.
#[tokio::test]
async fn python_google_auth_refreshes_with_verbose_and_rust_log_set() {
    let Some(s) = setup(|g| g).await else {
        return;
    };
    let config = credential_config(&s.fakes.google, None, s.home.path());
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let command = value["credential_source"]["executable"]["command"]
        .as_str()
        .unwrap()
        .to_owned();
    value["credential_source"]["executable"]["command"] = format!("{command} --verbose").into();
    std::fs::write(&config, value.to_string()).unwrap();
    let log = s.home.path().join("fly-oidc.log");
    let socket = s.fakes.fly.socket_path().to_str().unwrap().to_owned();
    let base = [
        ("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap()),
        ("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1"),
        ("FLY_OIDC_SOCKET", socket.as_str()),
        ("RUST_LOG", "trace"),
    ];
    let (out, result) = run_python(&s.python, s.home.path(), &base);
    assert_eq!(result["ok"], true, "{result}");
    assert!(out.status.success());

    let mut with_log = base.to_vec();
    with_log.push(("FLY_OIDC_LOG_FILE", log.to_str().unwrap()));
    let (_, result) = run_python(&s.python, s.home.path(), &with_log);
    assert_eq!(result["ok"], true, "{result}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("requesting a Fly OIDC token"), "{logged}");
    for token in s.fakes.fly.issued_tokens() {
        assert!(!logged.contains(&token), "the log holds a token");
    }
    assert!(!logged.contains("eyJ"), "{logged}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
