//! The rows, one module per group: Fly API faults (through every front end), AWS STS faults,
//! Google STS and IAM Credentials faults, and the binary's configuration and usage errors.
//! Each row is data; the runners in `run.rs` (one per front end) execute them.

mod aws;
mod cli;
mod fly_api;
mod gcp;

use crate::row::{Kind, Row, Sdk};
use fly_oidc::ErrorKind;

/// Every row, in the order of docs/FAULTS.md.
pub fn all() -> Vec<Row> {
    [fly_api::rows(), aws::rows(), gcp::rows(), cli::rows()].concat()
}

/// A run-time error of this kind from the token client or the GCP provider.
fn run(kind: ErrorKind) -> Kind {
    Kind::Run(kind)
}

/// The AWS provider's `ProviderError` around our error of this kind.
fn provider(kind: ErrorKind) -> Kind {
    Kind::Aws(Sdk::ProviderError, Some(kind))
}

/// The binary's exit code 1 (a failure at run time).
const EXIT_1: Kind = Kind::Exit(1);
/// The binary's exit code 2 (invalid settings or usage).
const EXIT_2: Kind = Kind::Exit(2);

/// `fly-oidc gcp executable` exiting 1 with Google's failure `code`.
fn google(code: &'static str) -> Kind {
    Kind::GoogleExit(1, code)
}

/// What every "not on a Fly Machine" error says.
const NOT_ON_FLY: &[&str] = &[
    "not on a Fly Machine?",
    "FLY_API_HOSTNAME) and its token (",
    "FLY_API_TOKEN),",
    "FLY_OIDC_TOKEN_FILE",
];
