//! Running a row: one runner per front end (the token client, the AWS provider, the GCP
//! provider, the binary), each producing an [`Observed`], and the judge that checks it
//! against the row's expectation, attempt counts, time bound, panic watch and leak scan.

use crate::row::{Counter, Expect, Inject, Kind, Row, Sdk, Source, Via};
use crate::support::{CliRun, panics_on, run_binary};
use crate::world::World;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_types::error::display::DisplayErrorContext;
use fly_oidc::FlyOidcClient;
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_testkit::google;
use fly_oidc_tests::is_root;
use fly_oidc_tests::{LogCapture, aws, in_ci};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a row produced.
pub struct Observed {
    /// `None`: success.
    kind: Option<Kind>,
    message: String,
    /// Text to scan for secrets, labelled.
    outputs: Vec<(&'static str, String)>,
    /// Problems found on the way (a success that returned the wrong thing, a panic line).
    problems: Vec<String>,
}

impl Observed {
    fn success(outputs: Vec<(&'static str, String)>, wrong: Option<&str>) -> Self {
        Observed {
            kind: None,
            message: String::new(),
            outputs,
            problems: wrong.map(str::to_owned).into_iter().collect(),
        }
    }

    /// A failure: its Display, Debug, pretty Debug and cause chain are scanned.
    fn failure(kind: Kind, message: String, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = String::new();
        let mut source = Some(err);
        while let Some(e) = source {
            let _ = writeln!(chain, "{e}");
            source = e.source();
        }
        Observed {
            kind: Some(kind),
            message,
            outputs: vec![
                ("the error's Display", err.to_string()),
                ("the error's Debug", format!("{err:?}")),
                ("the error's pretty Debug", format!("{err:#?}")),
                ("the error's cause chain", chain),
            ],
            problems: Vec::new(),
        }
    }

    fn build_error(err: &fly_oidc::BuildError) -> Self {
        Self::failure(Kind::Build, err.to_string(), err)
    }

    fn run_error(err: &fly_oidc::Error) -> Self {
        Self::failure(Kind::Run(err.kind()), err.to_string(), err)
    }
}

/// The token client.
async fn run_client(w: &World, row: &Row, client: FlyOidcClient) -> Observed {
    match client.fetch_token(w.audience(row.via).as_deref()).await {
        Ok(token) => {
            let minted = w
                .fly
                .issued_tokens()
                .iter()
                .any(|t| t == token.expose_jwt());
            let wrong = !minted && row.source != Source::File;
            Observed::success(
                vec![
                    ("the token's Debug", format!("{token:?}")),
                    ("the token's Display", format!("{token}")),
                    ("the client's Debug", format!("{client:?}")),
                ],
                wrong.then_some("the token is not one the fake minted"),
            )
        }
        Err(e) => Observed::run_error(&e),
    }
}

/// The `CredentialsError` variant and the kind of our error inside it.
fn credentials_error_kind(err: &CredentialsError) -> Kind {
    let sdk = match err {
        CredentialsError::CredentialsNotLoaded(_) => Sdk::CredentialsNotLoaded,
        CredentialsError::ProviderTimedOut(_) => Sdk::ProviderTimedOut,
        CredentialsError::InvalidConfiguration(_) => Sdk::InvalidConfiguration,
        CredentialsError::ProviderError(_) => Sdk::ProviderError,
        _ => Sdk::Unhandled,
    };
    Kind::Aws(sdk, ours(err).map(fly_oidc::Error::kind))
}

fn ours(err: &CredentialsError) -> Option<&fly_oidc_aws::Error> {
    std::error::Error::source(err).and_then(|s| s.downcast_ref::<fly_oidc_aws::Error>())
}

/// The AWS provider.
async fn run_aws(w: &World, provider: FlyOidcCredentialsProvider) -> Observed {
    let sts = w.sts.as_ref().unwrap();
    match provider.provide_credentials().await {
        Ok(creds) => {
            let issued = sts.issued_credentials();
            let last = issued.last().map(|c| c.access_key_id.as_str());
            Observed::success(
                vec![
                    ("the credentials' Debug", format!("{creds:?}")),
                    ("the provider's Debug", format!("{provider:?}")),
                ],
                (last != Some(creds.access_key_id()))
                    .then_some("the credentials are not the ones STS issued"),
            )
        }
        Err(e) => {
            let context = DisplayErrorContext(&e).to_string();
            let message = ours(&e).map_or_else(|| context.clone(), ToString::to_string);
            let mut observed = Observed::failure(credentials_error_kind(&e), message, &e);
            observed
                .outputs
                .push(("the error's DisplayErrorContext", context));
            observed
        }
    }
}

/// The GCP provider, impersonating the rows' service account.
async fn run_gcp(w: &World, provider: GcpTokenProvider) -> Observed {
    let google = w.google.as_ref().unwrap();
    match provider.access_token().await {
        Ok(token) => {
            let issued = google.issued_tokens();
            Observed::success(
                vec![
                    ("the access token's Debug", format!("{token:?}")),
                    ("the access token's Display", format!("{token}")),
                    ("the provider's Debug", format!("{provider:?}")),
                ],
                (!issued.iter().any(|t| t == token.expose_secret()))
                    .then_some("the access token is not one the fake issued"),
            )
        }
        Err(e) => Observed::run_error(&e),
    }
}

/// The arguments of the binary for the row's front end (after `--verbose`), and the extra
/// variables it needs.
fn cli_args(w: &World, row: &Row) -> (Vec<String>, Vec<(String, String)>) {
    let fill = |text: &str| {
        let mut text = text.replace("{role}", aws::ROLE);
        if let Some(sts) = &w.sts {
            text = text.replace("{sts}", &w.sts_url.clone().unwrap_or_else(|| sts.url()));
        }
        if let Some(g) = &w.google {
            let sts_url = w.google_sts_url.clone().unwrap_or_else(|| g.sts_url());
            text = text
                .replace("{google_sts}", &sts_url)
                .replace("{google_iam}", &g.iam_url())
                .replace("{provider}", g.provider());
        }
        text
    };
    let exec_audience = || {
        let audience = format!("//iam.googleapis.com/{}", google::default_provider("acme"));
        vec![("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE".to_owned(), audience)]
    };
    let (args, envs) = match (&row.inject, row.via) {
        (Inject::Cli { args, env }, _) => {
            let envs = env.iter().map(|(k, v)| ((*k).to_owned(), fill(v)));
            (*args, envs.collect())
        }
        (_, Via::CliToken) => ("token", Vec::new()),
        (_, Via::CliAws) => (
            "aws credential-process --role-arn {role} --region us-east-1 --sts-endpoint {sts}",
            Vec::new(),
        ),
        (_, Via::CliGcpExec) => ("gcp executable", exec_audience()),
        (_, Via::CliGcpToken) => (
            "gcp access-token --provider {provider} --service-account reader@my-project.iam.gserviceaccount.com --sts-url {google_sts} --iam-url {google_iam}",
            Vec::new(),
        ),
        (_, Via::CliGcpConfig) => (
            "gcp credential-config --provider {provider} --sts-url {google_sts}",
            Vec::new(),
        ),
        (_, Via::Client | Via::Aws | Via::Gcp) => unreachable!("not a CLI row"),
    };
    let args = std::iter::once("--verbose".to_owned())
        .chain(args.split_whitespace().map(fill))
        .collect();
    (args, envs)
}

/// The binary, with the row's token source in its environment.
async fn run_cli(w: &World, row: &Row) -> Observed {
    let home = w.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let path = |p: &std::path::Path| p.display().to_string();
    let mut envs: Vec<(String, String)> = if w.nobody {
        vec![
            ("HOME".into(), "/nonexistent".into()),
            ("FLY_OIDC_NO_CACHE".into(), "1".into()),
        ]
    } else {
        vec![
            ("HOME".into(), path(&home)),
            ("XDG_CACHE_HOME".into(), path(&w.dir.path().join("cache"))),
        ]
    };
    match row.source {
        Source::Socket => envs.push(("FLY_OIDC_SOCKET".into(), path(&w.socket))),
        Source::Http => {
            envs.push(("FLY_API_HOSTNAME".into(), w.api_url.clone()));
            if let Some(t) = &w.api_token {
                envs.push(("FLY_API_TOKEN".into(), t.clone()));
            }
        }
        Source::File => envs.push(("FLY_OIDC_TOKEN_FILE".into(), path(&w.token_file))),
        Source::Default => envs.push(("FLY_OIDC_DEFAULT_SOCKET".into(), path(&w.socket))),
    }
    let (args, extra) = cli_args(w, row);
    envs.extend(extra);
    let run = run_binary(&args, &envs, w.nobody, row.within).await;
    observe_cli(w, row, run)
}

/// Whether a successful run printed what the fakes issued.
fn cli_stdout_is_issued(w: &World, via: Via, stdout: &str) -> bool {
    let json = || serde_json::from_str::<serde_json::Value>(stdout).unwrap_or_default();
    match via {
        Via::CliToken => w.fly.issued_tokens().iter().any(|t| t == stdout),
        Via::CliAws => {
            let v = json();
            let issued = w.sts.as_ref().unwrap().issued_credentials();
            v["Version"] == 1
                && issued
                    .iter()
                    .any(|c| v["AccessKeyId"] == c.access_key_id.as_str())
        }
        Via::CliGcpExec => {
            let v = json();
            v["success"] == true
                && w.fly
                    .issued_tokens()
                    .iter()
                    .any(|t| v["id_token"] == t.as_str())
        }
        Via::CliGcpConfig => json()["type"] == "external_account",
        Via::CliGcpToken => {
            let issued = w.google.as_ref().unwrap().issued_tokens();
            issued.iter().any(|t| t == stdout)
        }
        Via::Client | Via::Aws | Via::Gcp => unreachable!("not a CLI row"),
    }
}

fn observe_cli(w: &World, row: &Row, run: CliRun) -> Observed {
    let mut problems = Vec::new();
    if run.timed_out {
        problems.push(format!("the binary did not finish: {}", run.stderr));
    }
    if run.code.is_none() && !run.timed_out {
        problems.push("the binary was killed by a signal".to_owned());
    }
    if run.stderr.contains("panicked") {
        problems.push(format!("the binary panicked: {}", run.stderr));
    }
    if run.code == Some(0) {
        if !cli_stdout_is_issued(w, row.via, run.stdout.trim()) {
            problems.push("stdout is not what the fakes issued".to_owned());
        }
        // On success stdout carries the secret by design: scan stderr only.
        let mut observed = Observed::success(vec![("stderr", run.stderr)], None);
        observed.problems = problems;
        return observed;
    }
    let kind = match run.code {
        None => Kind::Killed,
        Some(code) if row.via == Via::CliGcpExec => {
            let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap_or_default();
            match v["code"].as_str() {
                Some(google) if v["version"] == 1 && v["success"] == false => match &row.expect {
                    Expect::Err(Kind::GoogleExit(_, want), _) if *want == google => {
                        Kind::GoogleExit(code, want)
                    }
                    _ => {
                        problems.push(format!("Google failure code {google}"));
                        Kind::Exit(code)
                    }
                },
                _ => {
                    problems.push("no Google failure response on stdout".to_owned());
                    Kind::Exit(code)
                }
            }
        }
        Some(code) => Kind::Exit(code),
    };
    // `gcp executable` says why in its failure response alone: Google's libraries read its
    // stderr together with stdout.
    let message = if row.via == Via::CliGcpExec {
        if !run.stderr.is_empty() {
            problems.push(format!("`gcp executable` wrote on stderr: {}", run.stderr));
        }
        let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap_or_default();
        v["message"].as_str().unwrap_or_default().to_owned()
    } else {
        let error_lines = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("fly-oidc: error: ") || l.starts_with("error: "))
            .count();
        if error_lines != 1 {
            problems.push(format!(
                "expected one `fly-oidc: error:` (or clap's `error:`) line on stderr, found {error_lines}"
            ));
        }
        run.stderr.clone()
    };
    Observed {
        kind: Some(kind),
        message,
        outputs: vec![("stderr", run.stderr), ("stdout", run.stdout)],
        problems,
    }
}

/// Whether to print each passed row's counts, time and scanned bytes (`--nocapture`).
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Print a line for each passed row (with `--nocapture`).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// A passed row's report line.
pub struct Passed {
    pub elapsed: Duration,
    pub counts: String,
    /// Bytes of output scanned (logs, errors, Debug, stdout/stderr).
    pub scanned: usize,
}

fn judge(
    row: &Row,
    w: &World,
    obs: Observed,
    elapsed: Duration,
    logs: &str,
) -> Result<Passed, String> {
    let mut failures = obs.problems.clone();
    match (&row.expect, obs.kind) {
        (Expect::Ok, None) => {}
        (Expect::Ok, Some(kind)) => {
            failures.push(format!("expected success, got {kind}: {}", obs.message))
        }
        (Expect::Err(..), None) => failures.push("expected an error, got success".into()),
        (Expect::Err(kind, says), Some(got)) => {
            if got != *kind {
                failures.push(format!("expected {kind}, got {got}: {}", obs.message));
            }
            for s in says {
                if !obs.message.contains(s) {
                    failures.push(format!("the error does not say {s:?}: {}", obs.message));
                }
            }
        }
    }
    let mut counts = Vec::new();
    for (counter, range) in &row.attempts {
        let n = w.count(*counter);
        counts.push(format!("{} ×{n}", counter.label()));
        if !range.contains(&n) {
            failures.push(format!(
                "expected {range:?} {} requests, got {n}",
                counter.label()
            ));
        }
    }
    if elapsed > row.within {
        failures.push(format!(
            "took {elapsed:?}, more than the bound {:?}",
            row.within
        ));
    }
    let secrets = w.secrets();
    if secrets.is_empty() {
        failures.push("no secret to scan for (the fake Fly API has an API token)".into());
    }
    // Rows that reach no server may log nothing; the others must show the capture works.
    let requests: usize = Counter::ALL.into_iter().map(|c| w.count(c)).sum();
    if !row.via.is_cli() && requests > 0 && !logs.contains("TRACE") {
        failures.push("no TRACE-level log was captured".into());
    }
    let scans = std::iter::once(("the trace-level logs", logs)).chain(
        obs.outputs
            .iter()
            .map(|(label, text)| (*label, text.as_str())),
    );
    failures.extend(scans.filter_map(|(label, text)| secrets.scan(label, text).err()));
    if failures.is_empty() {
        Ok(Passed {
            elapsed,
            counts: counts.join(", "),
            scanned: logs.len() + obs.outputs.iter().map(|(_, t)| t.len()).sum::<usize>(),
        })
    } else {
        Err(failures.join("\n    "))
    }
}

/// Why a row cannot run here (`Ok(Some)`: skip with this reason), or a failure in CI.
fn precondition(row: &Row) -> Result<Option<String>, String> {
    if !matches!(row.inject, Inject::AsNobody(_)) {
        return Ok(None);
    }
    if !is_root() {
        return Ok(Some(
            "not running as root, so the binary cannot be run as another user".into(),
        ));
    }
    let has_setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match (has_setpriv, in_ci()) {
        (true, _) => Ok(None),
        (false, true) => Err("setpriv (util-linux) is required in CI".into()),
        (false, false) => Ok(Some("setpriv (util-linux) is not installed".into())),
    }
}

/// Run one row on this thread: a current-thread runtime (so every task of the row logs on
/// this thread), and a TRACE subscriber of every crate into the row's own buffer.
fn run_here(row: &Row) -> Result<Passed, String> {
    let capture = LogCapture::default();
    let _guard = capture.install();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let world = World::new(row).await;
        let started = Instant::now();
        // A builder's refusal is the row's outcome too (`Kind::Build`).
        let observed = match row.via {
            Via::Client => match world.fly_client(row.source) {
                Ok(client) => run_client(&world, row, client).await,
                Err(e) => Observed::build_error(&e),
            },
            Via::Aws => match world.aws_provider(row.source) {
                Ok(provider) => run_aws(&world, provider).await,
                Err(e) => Observed::build_error(&e),
            },
            Via::Gcp => match world.gcp_provider(row.source) {
                Ok(provider) => run_gcp(&world, provider).await,
                Err(e) => Observed::build_error(&e),
            },
            _ => run_cli(&world, row).await,
        };
        judge(row, &world, observed, started.elapsed(), &capture.text())
    })
}

/// Run one row as a test: on its own thread (named `row:<name>`, for the panic watch) with a
/// hard time limit of its bound plus 30 s. `Ok(None)`: passed; `Ok(Some(reason))`: skipped.
pub fn run_row(row: &Row) -> Result<Option<String>, String> {
    if let Some(skip) = precondition(row)? {
        return Ok(Some(skip));
    }
    let thread = format!("row:{}", row.name());
    let (tx, rx) = mpsc::channel();
    let owned = row.clone();
    std::thread::Builder::new()
        .name(thread.clone())
        .spawn(move || {
            let _ = tx.send(run_here(&owned));
        })
        .unwrap();
    let limit = row.within + Duration::from_secs(30);
    let verdict = match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("did not finish within {limit:?}")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the row panicked".into()),
    };
    let panics = panics_on(&thread);
    match verdict {
        Ok(_) if !panics.is_empty() => Err(format!("panics during the row: {panics:#?}")),
        Ok(passed) if VERBOSE.load(Ordering::Relaxed) => {
            println!(
                "    {} ({:.2?}; {}; {} KiB scanned)",
                row.id(),
                passed.elapsed,
                passed.counts,
                passed.scanned / 1024
            );
            Ok(None)
        }
        Ok(_) => Ok(None),
        Err(why) if panics.is_empty() => Err(format!("{}\n    {why}", row.id())),
        Err(why) => Err(format!("{}\n    {why}\n    panics: {panics:#?}", row.id())),
    }
}
