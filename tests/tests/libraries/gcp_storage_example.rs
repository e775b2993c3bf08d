//! The `gcs_list_objects` example end to end: Fly token (fake Fly API) -> access token (fake
//! Google STS + IAM) -> Cloud Storage JSON API object listing on `gcp-storage-emulator`
//! (PyPI), reached through `STORAGE_EMULATOR_HOST`.
//!
//! Needs `python3` with the PyPI package `gcp-storage-emulator` (CI installs it; locally the
//! test is skipped with a printed reason when it is missing), and the example binary, which
//! `cargo test --workspace` builds (or `cargo build -p fly-oidc-examples --example gcs_list_objects`).

#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use fly_oidc_testkit::google::Endpoint;
use fly_oidc_tests::gcp::{Fakes, SA, StorageEmulator};
use std::process::Command;

const BUCKET: &str = "fly-bucket";

/// A minimal HTTP/1.1 request; returns the status code (0 when there is none).
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> u16 {
    let url = format!("http://127.0.0.1:{port}{path}");
    let answer = fly_oidc_tests::http_request(method, &url, &["Content-Type: text/plain"], body);
    fly_oidc_tests::http_status(&answer).unwrap_or(0)
}

#[tokio::test]
async fn gcs_list_objects_lists_the_emulator_bucket() {
    let home = tempfile::tempdir().unwrap();
    let Some(emulator) = StorageEmulator::start(home.path(), BUCKET) else {
        return;
    };
    for (name, body) in [
        ("hello.txt", "hello from fly"),
        ("logs/2026-11-28.log", "a log line\n"),
    ] {
        let status = http(
            emulator.port(),
            "POST",
            &format!(
                "/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={}",
                name.replace('/', "%2F")
            ),
            body.as_bytes(),
        );
        assert_eq!(status, 200, "uploading {name}");
    }

    let Fakes { fly, google } = Fakes::start().await;
    let run = |extra: &[&str], service_account: &str| {
        Command::new(fly_oidc_tests::example_bin("gcs_list_objects"))
            .arg(BUCKET)
            .args(extra)
            .env_clear()
            .env("HOME", home.path())
            .env("FLY_OIDC_SOCKET", fly.socket_path())
            .env("FLY_OIDC_GCP_PROVIDER", google.provider())
            .env("FLY_OIDC_GCP_SERVICE_ACCOUNT", service_account)
            .env("FLY_OIDC_GCP_STS_URL", google.sts_url())
            .env("FLY_OIDC_GCP_IAM_URL", google.iam_url())
            .env("STORAGE_EMULATOR_HOST", emulator.url())
            .output()
            .unwrap()
    };
    let out = run(&[], SA);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["hello.txt\t14", "logs/2026-11-28.log\t11"],
        "{stderr}"
    );

    // The token came from impersonating the service account, with the read-only scope.
    let impersonated: Vec<_> = google
        .issued_tokens()
        .into_iter()
        .filter_map(|t| google.token_info(&t))
        .filter(|i| i.service_account.is_some())
        .collect();
    assert_eq!(impersonated.len(), 1);
    assert_eq!(
        impersonated[0].scopes,
        vec!["https://www.googleapis.com/auth/devstorage.read_only".to_owned()]
    );
    assert!(
        google
            .requests()
            .iter()
            .any(|r| r.endpoint == Endpoint::GenerateAccessToken && r.status == 200)
    );

    // With a prefix; and a Google rejection is one clear error line.
    let out = run(&["logs/"], SA);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["logs/2026-11-28.log\t11"]
    );
    let out = run(&[], "someone-else@my-project.iam.gserviceaccount.com");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("roles/iam.workloadIdentityUser"),
        "{stderr}"
    );
}
