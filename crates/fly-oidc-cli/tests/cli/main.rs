//! The `fly-oidc` binary run as a process (`CARGO_BIN_EXE_fly-oidc`, which Cargo sets for this
//! package's integration tests), against the testkit's fakes, moto_server and the real
//! consumers (the AWS CLI, boto3, Python google-auth): one test binary with a module per
//! area. Filter by module: `cargo test -p fly-oidc-cli --test cli gcp_cli::`.
//!
//! The helpers are in one file, [`support`] (which also names what it takes from the shared
//! `fly_oidc_tests` library, `tests/lib.rs`).

mod cache_safety;
mod cli_aws_cache;
mod cli_aws_consumers;
mod cli_aws_role_chaining;
mod cli_aws_session_tags;
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
mod support;
mod threat_model;
