//! The AWS examples as a user runs them: built binaries, configured by the environment only
//! (a cleared one), against the fake Fly Machines API over HTTP and moto_server.
//!
//! `cargo test --workspace --all-targets` builds the examples first; when running this file
//! alone, build them with `cargo build -p fly-oidc-examples --examples`.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::aws_moto::s3_client;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_tests::aws::{CHAINED_ROLE, Moto, ROLE, bucket_name, web_machine};
use std::process::Command;

/// The assumed-role ARN STS (moto) answers for [`ROLE`] and the default role session name
/// of [`web_machine`].
const ASSUMED_ROLE: &str = "arn:aws:sts::123456789012:assumed-role/fly-app/fly-web-148e2150b5e089";

/// Run example `name` with a cleared environment configured for `fly` and `moto`; it must
/// succeed. Its stdout.
fn run_ok(name: &str, fly: &FakeFlyApi, moto: &Moto) -> String {
    run_ok_with(name, &[], fly, moto)
}

/// [`run_ok`] with arguments.
fn run_ok_with(name: &str, args: &[&str], fly: &FakeFlyApi, moto: &Moto) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(fly_oidc_tests::example_bin(name))
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_ROLE_ARN", ROLE)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("FLY_API_HOSTNAME", fly.url())
        .env("FLY_API_TOKEN", fly.api_token())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{name}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn sts_get_caller_identity_prints_the_assumed_role_arn() {
    let Some(moto) = Moto::start() else { return };
    let fly = web_machine().await;
    let stdout = run_ok("sts_get_caller_identity", &fly, &moto);
    assert_eq!(stdout, format!("{ASSUMED_ROLE}\n"));
    assert_eq!(fly.request_count(), 1);
    assert_eq!(
        fly.requests()[0].audience.as_deref(),
        Some("sts.amazonaws.com")
    );
}

#[tokio::test]
async fn cross_account_prints_the_chained_roles_arn() {
    let Some(moto) = Moto::start() else { return };
    let fly = web_machine().await;
    let stdout = run_ok_with("cross_account", &[CHAINED_ROLE], &fly, &moto);
    assert_eq!(
        stdout,
        "arn:aws:sts::210987654321:assumed-role/fly-data/fly-web-148e2150b5e089\n"
    );
    assert_eq!(fly.request_count(), 1);
}

#[tokio::test]
async fn s3_list_buckets_prints_one_bucket_per_line() {
    let Some(moto) = Moto::start() else { return };
    let fly = web_machine().await;
    let bucket = bucket_name("fly-oidc-example");
    let s3 = s3_client(
        &moto,
        aws_credential_types::Credentials::new("AKIDSETUP", "setup", None, None, "test"),
    );
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let stdout = run_ok("s3_list_buckets", &fly, &moto);
    assert!(stdout.lines().any(|l| l == bucket), "{stdout}");
    assert!(stdout.ends_with('\n'));
}

#[tokio::test]
async fn provider_chain_uses_flyoidc_on_fly() {
    let Some(moto) = Moto::start() else { return };
    let fly = web_machine().await;
    let stdout = run_ok("provider_chain", &fly, &moto);
    assert_eq!(
        stdout,
        format!("credentials from FlyOidc\n{ASSUMED_ROLE}\n")
    );
}

#[tokio::test]
async fn examples_report_configuration_errors_without_secrets() {
    let Some(moto) = Moto::start() else { return };
    let fly = web_machine().await;
    let home = tempfile::tempdir().unwrap();
    // FLY_API_HOSTNAME without FLY_API_TOKEN: a configuration error, reported, exit 1.
    let out = Command::new(fly_oidc_tests::example_bin("sts_get_caller_identity"))
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_ROLE_ARN", ROLE)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("FLY_API_HOSTNAME", fly.url())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("FLY_API_TOKEN"), "{stderr}");
    assert!(!stderr.contains(fly.api_token()));
    assert!(out.stdout.is_empty());
}
