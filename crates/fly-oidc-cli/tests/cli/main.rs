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
mod cli_token;
mod expiry_edges;
mod gcp_cli;
mod gcp_google_auth;
mod node_consumers;
mod server_exec;
mod setup_doctor;

/// The `fly-oidc` binary Cargo built for these tests.
fn fly_oidc_bin() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_fly-oidc").into()
}
