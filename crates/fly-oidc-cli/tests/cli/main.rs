//! The `fly-oidc` binary run as a process (`CARGO_BIN_EXE_fly-oidc`, which Cargo sets for this
//! package's integration tests), against the testkit's fakes, moto_server and the real
//! consumers (the AWS CLI, boto3, Python google-auth): one test binary with a module per
//! area. Filter by module: `cargo test -p fly-oidc-cli --test cli gcp_cli::`.
//!
//! Shared helpers: [`cli_aws_support`] here, and the `fly_oidc_tests` library
//! (`tests/lib.rs`: moto_server, fast retries, log capture).

mod cache_safety;
mod cli_aws_cache;
mod cli_aws_consumers;
mod cli_aws_support;
mod cli_ergonomics;
mod cli_exit_codes;
mod cli_hardening;
mod cli_token;
mod exec_consumers;
mod exec_init;
mod expiry_edges;
mod gcp_cli;
mod gcp_google_auth;
mod node_consumers;
mod readme_commands;
mod serve_env;
mod server_exec;
mod server_flood;
mod setup_doctor;
mod threat_model;

/// The `fly-oidc` binary Cargo built for these tests.
fn fly_oidc_bin() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_fly-oidc").into()
}

/// Put the binary at `dest` (to run it from another path, one with a space, say): a hard link
/// where the file system allows it, else a copy. A link opens no file for writing, so another
/// test thread's fork cannot hold a write handle to it when it is executed (the copy's
/// "Text file busy" race under parallel tests).
fn install_binary_at(dest: &std::path::Path) {
    if std::fs::hard_link(fly_oidc_bin(), dest).is_err() {
        std::fs::copy(fly_oidc_bin(), dest).expect("copy the fly-oidc binary");
    }
}

/// The fake Fly API of org `acme`, app `web`.
fn acme_web() -> fly_oidc_testkit::FakeFlyApi {
    fly_oidc_testkit::FakeFlyApi::builder()
        .org("acme")
        .app("web")
        .start_blocking()
        .expect("start the fake Fly API")
}

/// `aws credential-process --no-cache --role-arn <role> --sts-endpoint <sts>`.
fn credential_process_no_cache<'a>(role: &'a str, sts: &'a str) -> Vec<&'a str> {
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

/// Run `fly-oidc` with a clean environment: only `env`, a PATH and `home` as HOME.
fn run_in(args: &[&str], env: &[(&str, &str)], home: &std::path::Path) -> std::process::Output {
    std::process::Command::new(fly_oidc_bin())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .envs(env.iter().copied())
        .output()
        .expect("run fly-oidc")
}

/// [`run_in`] with a fresh temporary HOME.
fn run_clean(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let home = tempfile::tempdir().expect("temporary HOME");
    run_in(args, env, home.path())
}
