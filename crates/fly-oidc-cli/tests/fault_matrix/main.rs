//! The fault matrix: every fault of every Fly token source and of both clouds, as rows of
//! data, each with its typed expected outcome (success, with the request count at each fake;
//! or an error of a given `fly_oidc::ErrorKind`, `CredentialsError` variant, exit code or
//! Google failure `code`, whose message names the fix), an upper bound on its time, no panic
//! anywhere in the process, and no secret in any output.
//!
//! Each row is its own test (libtest-mimic, so the summary is libtest's), named
//! `<group>::<token source>::<front end>::<fault>`. Groups: `fly_api` (rows/fly_api.rs),
//! `aws_sts` (rows/aws.rs), `gcp_sts` and `gcp_iam` (rows/gcp.rs), `cli_config`
//! (rows/cli.rs). Select by name as with any test binary:
//!
//! ```text
//! cargo test -p fly-oidc-cli --test fault_matrix -- aws_          # AWS STS rows
//! cargo test -p fly-oidc-cli --test fault_matrix -- gcp_          # Google rows
//! cargo test -p fly-oidc-cli --test fault_matrix -- cli-token     # rows through `fly-oidc token`
//! cargo test -p fly-oidc-cli --test fault_matrix -- --nocapture   # print counts and times
//! ```
//!
//! Each row runs on its own thread and current-thread runtime with a tracing subscriber at
//! TRACE level (every crate: ours, the AWS SDK, hyper, reqwest) writing into the row's own
//! buffer. The leak scan covers that buffer, the `Display`, `Debug` and cause chain of every
//! error and the `Debug` of every success value, and the stdout and stderr of every run of
//! the binary (`CARGO_BIN_EXE_fly-oidc`; on success, stdout carries the credentials by design
//! and is not scanned). The secrets are the ones the fakes issued: every Fly JWT, the Fly API
//! bearer token, STS secret keys and session tokens, Google access tokens.
//!
//! The table is published in `docs/FAULTS.md`; the `faults_doc_lists_every_row` test keeps
//! its generated part equal to the rows (`FAULT_MATRIX_BLESS=1` rewrites it).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

mod doc;
mod row;
mod rows;
mod run;
mod support;
mod world;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::time::Duration;

/// Connect and request timeouts of the in-process rows.
const TIMEOUT: Duration = Duration::from_millis(500);
/// How long a "slow" fake waits before answering: well past `TIMEOUT`.
const SLOW: Duration = Duration::from_secs(3);
/// The AWS audience.
const AWS_AUDIENCE: &str = "sts.amazonaws.com";
/// Rows running at once unless `--test-threads` says otherwise: rows mostly wait (on
/// timeouts, backoff, child processes), so more than the cores.
const THREADS: usize = 6;

fn main() {
    support::watch_panics();
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert(THREADS);
    let rows = rows::all();
    let mut names = std::collections::HashSet::new();
    for r in &rows {
        assert!(names.insert(r.name()), "two rows named {}", r.name());
    }
    let verbose = args.nocapture;
    let mut trials: Vec<Trial> = rows
        .iter()
        .map(|r| {
            let row = r.clone();
            Trial::ignorable_test(r.name(), move || match run::run_row(&row) {
                Ok(None) => Ok(Completion::Completed),
                Ok(Some(skip)) => Ok(Completion::ignored_with(skip)),
                Err(why) => Err(Failed::from(why)),
            })
        })
        .collect();
    trials.push(Trial::test("faults_doc_lists_every_row", move || {
        doc::check(&rows).map_err(Failed::from)
    }));
    trials.push(Trial::test("the_leak_scan_catches_leaks", || {
        leak_scan_catches_leaks().map_err(Failed::from)
    }));
    run::set_verbose(verbose);
    libtest_mimic::run(&args, trials).exit();
}

/// The scan itself: a token logged by a spawned task at TRACE level, a JWT's signature alone,
/// the tail of a secret, and a JWT the fakes never issued are all caught.
fn leak_scan_catches_leaks() -> Result<(), String> {
    use fly_oidc_testkit::FakeFlyApi;
    let capture = fly_oidc_tests::LogCapture::default();
    let _guard = capture.install();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let fly = FakeFlyApi::start().await.map_err(|e| e.to_string())?;
        let client = fly_oidc_tests::fly_client(&fly);
        let token = client.fetch_token(None).await.map_err(|e| e.to_string())?;
        let secrets = fly_oidc_tests::Secrets::of_fly(&fly);
        let clean = capture.text();
        if !clean.contains("TRACE") {
            return Err("nothing captured at TRACE level".into());
        }
        secrets.scan("the logs", &clean)?;

        let jwt = token.expose_jwt().to_owned();
        tokio::spawn(async move { tracing::trace!(target: "some_dependency", "body: {jwt}") })
            .await
            .map_err(|e| e.to_string())?;
        let signature = token.expose_jwt().rsplit('.').next().unwrap_or_default();
        let api_token = fly.api_token();
        let tail = &api_token[api_token.len() - 24..];
        let cases = [
            ("Fly OIDC token", capture.text()),
            ("signature", format!("sig={signature}")),
            ("tail", format!("...{tail}")),
            (
                "JWT-shaped",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln".to_owned(),
            ),
        ];
        for (expected, text) in cases {
            match secrets.scan("x", &text) {
                Err(e) if e.contains(expected) => {}
                other => return Err(format!("the scan missed a {expected}: {other:?}")),
            }
        }
        Ok(())
    })
}
