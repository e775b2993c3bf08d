//! The tests of the libraries (`fly-oidc`, `fly-oidc-aws`, `fly-oidc-gcp`), the examples and
//! the testkit's fakes, end to end against the testkit, moto_server and real consumers: one
//! test binary (one link) with a module per area. Filter by module:
//! `cargo test -p fly-oidc-tests --test libraries aws_provider::`.
//!
//! The tests that run the `fly-oidc` binary as a process are in `crates/fly-oidc-cli/tests/cli/`;
//! the fault matrix is `crates/fly-oidc-cli/tests/fault_matrix/`; shared helpers are the `fly_oidc_tests`
//! library (`tests/lib.rs`).

mod aws_examples;
mod aws_moto;
mod aws_provider;
mod aws_redaction;
mod aws_role_chaining;
mod aws_session_tags;
mod endpoint_urls;
mod gcp_fake_google;
mod gcp_google_cloud_auth;
mod gcp_provider;
mod gcp_storage_example;
mod load;
mod public_debug;
mod server;
mod server_limits;
mod server_upstream;
mod token_client;
