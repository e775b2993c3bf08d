//! The fault matrix: every fault of every Fly token source and of both clouds, as a table of
//! cases, each with its expected outcome (retried and succeeded, with the attempt count; or a
//! clear error that names the fix; or "not loaded"), an upper bound on its time, no panic
//! anywhere in the process, and no secret in any output.
//!
//! Each row runs on its own thread and current-thread runtime with a tracing subscriber at
//! TRACE level (every crate: ours, the AWS SDK, hyper, reqwest) writing into the row's own
//! buffer. The leak scan covers that buffer, the `Display` and `Debug` of every error and
//! success value, and the stdout and stderr of every run of the `fly-oidc` binary (on success,
//! stdout carries the credentials by design and is not scanned). The secrets are the ones the
//! fakes issued: every Fly JWT, the Fly API bearer token, STS secret keys and session tokens,
//! Google access tokens.
//!
//! The table is published in `docs/FAULTS.md`; `faults_doc_lists_every_row` keeps the
//! generated part of that page equal to the table (`FAULT_MATRIX_BLESS=1` rewrites it).
//!
//! The binary must be built (`cargo build -p fly-oidc-cli`; `cargo test --workspace` does).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

mod fault_matrix_support;

use fault_matrix_support::{Capture, CliRun, Secrets, chmod, is_root, panics, watch_panics};
use fly_oidc::{Env, FlyOidcClient, RetryConfig};
use fly_oidc_aws::{CredentialsError, FlyOidcCredentialsProvider};
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_testkit::aws_sts::{FakeSts, StsFault};
use fly_oidc_testkit::google::{self, FakeGoogle, GoogleFault};
use fly_oidc_testkit::{FakeFlyApi, Fault};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Connect and request timeouts of the in-process rows.
const TIMEOUT: Duration = Duration::from_millis(500);
/// How long a "slow" fake waits before answering: well past `TIMEOUT`.
const SLOW: Duration = Duration::from_secs(3);
/// The role the AWS rows assume.
const ROLE: &str = "arn:aws:iam::123456789012:role/fly-app";
/// The service account the Google rows impersonate.
const SA: &str = "reader@my-project.iam.gserviceaccount.com";
/// The AWS audience.
const AWS_AUDIENCE: &str = "sts.amazonaws.com";
/// Rows running at once.
const WORKERS: usize = 6;

/// Where the Fly token comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The Machines API over an explicit Unix socket (`FLY_OIDC_SOCKET`).
    Socket,
    /// The Machines API over HTTP with a bearer token (`FLY_API_HOSTNAME` + `FLY_API_TOKEN`).
    Http,
    /// A token file (`FLY_OIDC_TOKEN_FILE`).
    File,
    /// Nothing configured: the default socket (`/.fly/api`, moved for the tests).
    Default,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Socket => "socket",
            Source::Http => "HTTP + bearer",
            Source::File => "token file",
            Source::Default => "default socket",
        }
    }
}

/// What is under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// `fly_oidc::FlyOidcClient::fetch_token`.
    Client,
    /// `fly_oidc_aws::FlyOidcCredentialsProvider` (`provide_credentials`).
    Aws,
    /// `fly_oidc_gcp::GcpTokenProvider::access_token` (with impersonation).
    Gcp,
    /// `fly-oidc token`.
    CliToken,
    /// `fly-oidc aws credential-process`.
    CliAws,
    /// `fly-oidc gcp executable`.
    CliGcpExec,
    /// `fly-oidc gcp access-token` (with impersonation).
    CliGcpToken,
    /// `fly-oidc gcp credential-config`.
    CliGcpConfig,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Via::Client => "`FlyOidcClient`",
            Via::Aws => "AWS provider",
            Via::Gcp => "GCP provider",
            Via::CliToken => "`fly-oidc token`",
            Via::CliAws => "`fly-oidc aws credential-process`",
            Via::CliGcpExec => "`fly-oidc gcp executable`",
            Via::CliGcpToken => "`fly-oidc gcp access-token`",
            Via::CliGcpConfig => "`fly-oidc gcp credential-config`",
        }
    }

    fn is_cli(self) -> bool {
        matches!(
            self,
            Via::CliToken | Via::CliAws | Via::CliGcpExec | Via::CliGcpToken | Via::CliGcpConfig
        )
    }

    fn needs_sts(self) -> bool {
        matches!(self, Via::Aws | Via::CliAws)
    }

    fn needs_google(self) -> bool {
        matches!(self, Via::Gcp | Via::CliGcpToken | Via::CliGcpConfig)
    }
}

/// How a row gets a real "permission denied": the binary runs as uid/gid 65534.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Denial {
    /// The default socket sits in a root-owned 0700 directory (stat fails with EACCES).
    SocketDir,
    /// A symlink in an open directory points at that socket (connect fails with EACCES).
    SocketConnect,
    /// The token file is root's, mode 0600 (open fails with EACCES).
    TokenFile,
}

/// The fault.
#[derive(Clone, Debug)]
enum Inject {
    /// The next `n` Machines API token requests fail so.
    Fly(usize, Fault),
    /// The socket does not exist.
    NoSocket,
    /// Nothing listens at the Machines API URL.
    Refused,
    /// `FLY_API_TOKEN` is not set.
    NoApiToken,
    /// `FLY_API_TOKEN` is not the API's token.
    WrongApiToken,
    /// The next Machines API answer is a 401 whose body echoes the request's bearer token,
    /// as a server that is not the Machines API (a wrong `FLY_API_HOSTNAME`) might.
    FlyEchoesBearer,
    /// The token file does not exist.
    FileMissing,
    /// The token file holds HTML.
    FileGarbage,
    /// The token file holds 100,000 bytes.
    FileOversized,
    /// The token file holds a token that expired a minute ago.
    FileExpired,
    /// Run the binary as an unprivileged user against a root-only resource.
    AsNobody(Denial),
    /// The next `n` STS requests fail so.
    Sts(usize, StsFault),
    /// The role's trust policy allows only this `sub` pattern.
    StsSubject(&'static str),
    /// Nothing listens at the STS endpoint.
    StsUnreachable,
    /// Nothing listens at the Google STS endpoint.
    GoogleStsUnreachable,
    /// The next `n` Google STS requests fail so.
    GoogleSts(usize, GoogleFault),
    /// The next `n` IAM Credentials requests fail so.
    GoogleIam(usize, GoogleFault),
    /// The workload identity provider trusts this issuer instead of Fly's.
    GoogleIssuer(&'static str),
    /// The service account does not grant the pool `roles/iam.workloadIdentityUser`.
    GoogleNoGrant,
    /// A configuration or usage error of the binary: run it with these arguments (after
    /// `--verbose`) and these extra variables. `{sts}`, `{google_sts}`, `{google_iam}` and
    /// `{provider}` stand for the fakes' endpoints and provider.
    Cli {
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    },
}

impl Inject {
    fn cloud(&self) -> &'static str {
        match self {
            Inject::Sts(..) | Inject::StsSubject(_) | Inject::StsUnreachable => "AWS STS",
            Inject::GoogleSts(..) | Inject::GoogleIssuer(_) | Inject::GoogleStsUnreachable => {
                "Google STS"
            }
            Inject::GoogleIam(..) | Inject::GoogleNoGrant => "Google IAM Credentials",
            Inject::Cli { .. } => "configuration",
            _ => "Fly API",
        }
    }
}

/// A request counter of one of the fakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    Fly,
    Sts,
    GoogleSts,
    GoogleIam,
}

impl Counter {
    fn label(self) -> &'static str {
        match self {
            Counter::Fly => "Fly API",
            Counter::Sts => "STS",
            Counter::GoogleSts => "Google STS",
            Counter::GoogleIam => "IAM",
        }
    }
}

#[derive(Clone, Debug)]
enum Expect {
    /// Credentials (or a token) come back.
    Ok,
    /// An error of this kind whose message contains every one of `says`.
    ///
    /// Kinds: `fly_oidc::ErrorKind` for the client and the GCP provider (`BuildError` when
    /// building fails); `<CredentialsError variant>/<fly_oidc_aws::ErrorKind>` for the AWS
    /// provider; `exit <code>` (plus Google's failure `code`) for the binary.
    Err {
        kind: &'static str,
        says: Vec<&'static str>,
    },
}

#[derive(Clone, Debug)]
struct Case {
    source: Source,
    via: Via,
    fault: &'static str,
    inject: Inject,
    expect: Expect,
    attempts: Vec<(Counter, RangeInclusive<usize>)>,
    within: Duration,
}

fn case(source: Source, via: Via, fault: &'static str, inject: Inject) -> Case {
    Case {
        source,
        via,
        fault,
        inject,
        expect: Expect::Ok,
        attempts: Vec::new(),
        within: if via.is_cli() { secs(10) } else { secs(3) },
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl Case {
    fn ok(mut self) -> Self {
        self.expect = Expect::Ok;
        self
    }

    fn fails(mut self, kind: &'static str, says: &[&'static str]) -> Self {
        self.expect = Expect::Err {
            kind,
            says: says.to_vec(),
        };
        self
    }

    fn attempts(mut self, counter: Counter, n: usize) -> Self {
        self.attempts.push((counter, n..=n));
        self
    }

    fn attempts_between(mut self, counter: Counter, lo: usize, hi: usize) -> Self {
        self.attempts.push((counter, lo..=hi));
        self
    }

    fn within(mut self, bound: Duration) -> Self {
        self.within = bound;
        self
    }

    fn id(&self) -> String {
        format!(
            "{} | {} | {} | {}",
            self.inject.cloud(),
            self.source.label(),
            self.via.label(),
            self.fault
        )
    }
}

fn json_error(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

fn google_oauth_error(code: &str, description: &str) -> String {
    serde_json::json!({ "error": code, "error_description": description }).to_string()
}

/// The matrix.
fn matrix() -> Vec<Case> {
    use Counter::*;
    use Source::*;
    use Via::*;
    let not_on_fly = &[
        "not on a Fly Machine?",
        "FLY_API_HOSTNAME and FLY_API_TOKEN",
        "FLY_OIDC_TOKEN_FILE",
    ];
    // A timed-out attempt takes TIMEOUT; retries back off for at most 20 ms.
    let timed_out_thrice = secs(4);
    let mut rows = vec![
        // --- Fly API, through the token client -------------------------------------------
        case(
            Default,
            Client,
            "socket missing (not on Fly)",
            Inject::NoSocket,
        )
        .fails("NotOnFly", not_on_fly)
        .attempts(Fly, 0),
        case(Socket, Client, "socket missing", Inject::NoSocket)
            .fails(
                "InvalidConfiguration",
                &["does not exist", "FLY_OIDC_SOCKET"],
            )
            .attempts(Fly, 0),
        case(
            Http,
            Client,
            "API unreachable (connection refused)",
            Inject::Refused,
        )
        .fails(
            "Transient",
            &[
                "could not connect to the Machines API at",
                "usually transient",
            ],
        ),
        case(Http, Client, "FLY_API_TOKEN not set", Inject::NoApiToken).fails(
            "BuildError",
            &[
                "no Fly API token",
                "fly tokens create deploy",
                "set Builder::api_token or FLY_API_TOKEN",
            ],
        ),
        case(Http, Client, "401 (wrong API token)", Inject::WrongApiToken)
            .fails(
                "FlyApi",
                &[
                    "HTTP 401",
                    "check that FLY_API_TOKEN is a valid Fly API token",
                ],
            )
            .attempts(Fly, 1),
        case(
            Http,
            Client,
            "401 whose body echoes the API token",
            Inject::FlyEchoesBearer,
        )
        .fails("FlyApi", &["HTTP 401", "FLY_API_TOKEN"])
        .attempts(Fly, 1),
        case(
            Http,
            CliToken,
            "401 whose body echoes the API token",
            Inject::FlyEchoesBearer,
        )
        .fails("exit 1", &["HTTP 401", "FLY_API_TOKEN"])
        .attempts(Fly, 1),
        case(File, Client, "token file missing", Inject::FileMissing).fails(
            "InvalidConfiguration",
            &["does not exist", "FLY_OIDC_TOKEN_FILE"],
        ),
        case(
            File,
            Client,
            "garbage in the token file",
            Inject::FileGarbage,
        )
        .fails(
            "MalformedToken",
            &["not a valid JWT", "returns a raw OIDC token"],
        ),
        case(File, Client, "oversized token file", Inject::FileOversized)
            .fails("MalformedToken", &["more than the 65536-byte limit"]),
    ];
    for source in [Socket, Http] {
        rows.extend([
            case(
                source,
                Client,
                "400",
                Inject::Fly(1, Fault::Status(400, json_error("invalid audience"))),
            )
            .fails(
                "FlyApi",
                &["HTTP 400: invalid audience", "check the requested audience"],
            )
            .attempts(Fly, 1),
            case(
                source,
                Client,
                "429 on every attempt",
                Inject::Fly(3, Fault::Status(429, json_error("rate limited"))),
            )
            .fails(
                "Transient",
                &["HTTP 429", "rate limited by the Machines API; cache tokens"],
            )
            .attempts(Fly, 3),
            case(
                source,
                Client,
                "429 once, then OK",
                Inject::Fly(1, Fault::Status(429, json_error("rate limited"))),
            )
            .ok()
            .attempts(Fly, 2),
            case(
                source,
                Client,
                "500 once, then OK",
                Inject::Fly(1, Fault::Status(500, json_error("internal error"))),
            )
            .ok()
            .attempts(Fly, 2),
            case(
                source,
                Client,
                "500 on every attempt",
                Inject::Fly(3, Fault::Status(500, json_error("internal error"))),
            )
            .fails(
                "Transient",
                &["HTTP 500", "the Machines API failed; try again shortly"],
            )
            .attempts(Fly, 3),
            case(
                source,
                Client,
                "slower than the timeout once, then OK",
                Inject::Fly(1, Fault::Delay(SLOW)),
            )
            .ok()
            .attempts(Fly, 2),
            case(
                source,
                Client,
                "slower than the timeout on every attempt",
                Inject::Fly(3, Fault::Delay(SLOW)),
            )
            .fails("Transient", &["timed out after 500ms", "usually transient"])
            .attempts(Fly, 3)
            .within(timed_out_thrice),
            case(
                source,
                Client,
                "garbage body",
                Inject::Fly(1, Fault::Garbage),
            )
            .fails(
                "MalformedToken",
                &["answered 200 but not a valid JWT", "raw OIDC token"],
            )
            .attempts(Fly, 1),
            case(
                source,
                Client,
                "oversized body",
                Inject::Fly(1, Fault::Oversized),
            )
            .fails(
                "MalformedToken",
                &["more than 65536 bytes; that is not an OIDC token"],
            )
            .attempts(Fly, 1),
            case(
                source,
                Client,
                "connection reset mid-response once, then OK",
                Inject::Fly(1, Fault::Reset),
            )
            .ok()
            .attempts(Fly, 2),
            case(
                source,
                Client,
                "connection reset mid-response on every attempt",
                Inject::Fly(3, Fault::Reset),
            )
            .fails("Transient", &["failed; this is usually transient"])
            .attempts(Fly, 3),
        ]);
    }
    rows.extend([
        // --- Permission denied: the binary as an unprivileged user ---------------------
        case(
            Default,
            CliToken,
            "permission denied (socket's directory)",
            Inject::AsNobody(Denial::SocketDir),
        )
        .fails(
            "exit 1",
            &[
                "Fly token failed: permission denied on the Machines API socket",
                "fetch the token before dropping root",
            ],
        )
        .attempts(Fly, 0),
        case(
            Socket,
            CliToken,
            "permission denied (connect)",
            Inject::AsNobody(Denial::SocketConnect),
        )
        .fails(
            "exit 1",
            &["permission denied connecting to", "run as root"],
        )
        .attempts(Fly, 0),
        case(
            File,
            CliToken,
            "permission denied (token file)",
            Inject::AsNobody(Denial::TokenFile),
        )
        .fails(
            "exit 1",
            &["permission denied; make it readable by this user"],
        ),
        case(
            Default,
            CliGcpExec,
            "permission denied (socket's directory)",
            Inject::AsNobody(Denial::SocketDir),
        )
        .fails("exit 1 PERMISSION_DENIED", &["permission denied"]),
        case(
            Default,
            CliAws,
            "permission denied (socket's directory)",
            Inject::AsNobody(Denial::SocketDir),
        )
        .fails("exit 1", &["Fly token failed", "permission denied"])
        .attempts(Sts, 0),
        // --- Fly API faults through the providers and the binary -----------------------
        case(
            Default,
            Aws,
            "socket missing (not on Fly)",
            Inject::NoSocket,
        )
        .fails("CredentialsNotLoaded/NotOnFly", not_on_fly)
        .attempts(Sts, 0),
        case(
            Socket,
            Aws,
            "400",
            Inject::Fly(1, Fault::Status(400, json_error("invalid audience"))),
        )
        .fails(
            "ProviderError/FlyApi",
            &["could not get a Fly OIDC token", "HTTP 400"],
        )
        .attempts(Sts, 0),
        case(
            Socket,
            Aws,
            "500 on every attempt",
            Inject::Fly(3, Fault::Status(500, json_error("internal error"))),
        )
        .fails(
            "ProviderError/Transient",
            &["could not get a Fly OIDC token", "HTTP 500"],
        )
        .attempts(Fly, 3)
        .attempts(Sts, 0),
        case(
            Http,
            Aws,
            "429 once, then OK",
            Inject::Fly(1, Fault::Status(429, json_error("rate limited"))),
        )
        .ok()
        .attempts(Fly, 2)
        .attempts(Sts, 1),
        case(
            File,
            Aws,
            "expired token in the token file",
            Inject::FileExpired,
        )
        .fails(
            "ProviderError/TrustRejected",
            &[
                "ExpiredTokenException",
                "check this machine's clock",
                "a token file must be rewritten before its tokens expire",
            ],
        )
        .attempts(Sts, 2),
        case(
            Default,
            Gcp,
            "socket missing (not on Fly)",
            Inject::NoSocket,
        )
        .fails("NotOnFly", not_on_fly)
        .attempts(GoogleSts, 0),
        case(
            Socket,
            Gcp,
            "429 on every attempt",
            Inject::Fly(3, Fault::Status(429, json_error("rate limited"))),
        )
        .fails(
            "Transient",
            &["getting a Fly OIDC token failed", "HTTP 429"],
        )
        .attempts(Fly, 3)
        .attempts(GoogleSts, 0),
        case(
            Default,
            CliToken,
            "socket missing (not on Fly)",
            Inject::NoSocket,
        )
        .fails("exit 1", not_on_fly),
        case(
            Socket,
            CliToken,
            "400",
            Inject::Fly(1, Fault::Status(400, json_error("invalid audience"))),
        )
        .fails(
            "exit 1",
            &[
                "Fly token failed",
                "HTTP 400",
                "check the requested audience",
            ],
        )
        .attempts(Fly, 1),
        case(
            Http,
            CliToken,
            "500 once, then OK",
            Inject::Fly(1, Fault::Status(500, json_error("internal error"))),
        )
        .ok()
        .attempts(Fly, 2),
        case(
            Http,
            CliToken,
            "401 (wrong API token)",
            Inject::WrongApiToken,
        )
        .fails("exit 1", &["HTTP 401", "FLY_API_TOKEN"]),
        case(Http, CliToken, "FLY_API_TOKEN not set", Inject::NoApiToken).fails(
            "exit 2",
            &["invalid setting: no Fly API token", "set FLY_API_TOKEN"],
        ),
        case(
            Socket,
            CliToken,
            "connection reset mid-response once, then OK",
            Inject::Fly(1, Fault::Reset),
        )
        .ok()
        .attempts(Fly, 2),
        case(
            Socket,
            CliToken,
            "oversized body",
            Inject::Fly(1, Fault::Oversized),
        )
        .fails("exit 1", &["more than 65536 bytes"]),
        case(
            File,
            CliToken,
            "garbage in the token file",
            Inject::FileGarbage,
        )
        .fails("exit 1", &["not a valid JWT"]),
        case(
            Default,
            CliAws,
            "socket missing (not on Fly)",
            Inject::NoSocket,
        )
        .fails("exit 1", not_on_fly)
        .attempts(Sts, 0),
        case(
            Default,
            CliGcpExec,
            "socket missing (not on Fly)",
            Inject::NoSocket,
        )
        .fails("exit 1 NOT_ON_FLY", not_on_fly),
        case(
            Socket,
            CliGcpExec,
            "400",
            Inject::Fly(1, Fault::Status(400, json_error("invalid audience"))),
        )
        .fails("exit 1 FLY_API_REJECTED", &["HTTP 400"]),
        case(
            Socket,
            CliGcpExec,
            "500 once, then OK",
            Inject::Fly(1, Fault::Status(500, json_error("internal error"))),
        )
        .ok()
        .attempts(Fly, 2),
        case(
            Socket,
            CliGcpExec,
            "garbage body",
            Inject::Fly(1, Fault::Garbage),
        )
        .fails("exit 1 MALFORMED_TOKEN", &["not a valid JWT"]),
    ]);

    // --- AWS STS --------------------------------------------------------------------------
    let trust_hint = &[
        "https://oidc.fly.io/acme",
        "audience sts.amazonaws.com",
        "\"acme:my-app:quiet-sun-4242\"",
        "fly-oidc token --claims",
    ];
    let trust = |code: &'static str| {
        let mut says = vec![code];
        says.extend_from_slice(trust_hint);
        says
    };
    let (invalid_token, rejected_claim, access_denied) = (
        trust("InvalidIdentityToken"),
        trust("IDPRejectedClaim"),
        trust("AccessDenied"),
    );
    let sts_timed_out_thrice = secs(5);
    rows.extend([
        case(
            Socket,
            Aws,
            "IDPCommunicationError once, then OK",
            Inject::Sts(1, StsFault::idp_communication_error()),
        )
        .ok()
        .attempts(Sts, 2)
        .attempts(Fly, 1),
        case(
            Socket,
            Aws,
            "Throttling once, then OK",
            Inject::Sts(1, StsFault::throttling()),
        )
        .ok()
        .attempts(Sts, 2),
        case(
            Socket,
            Aws,
            "Throttling on every attempt",
            Inject::Sts(3, StsFault::throttling()),
        )
        .fails(
            "ProviderError/Transient",
            &["after 3 attempts", "Throttling", "usually transient"],
        )
        .attempts(Sts, 3),
        case(
            Socket,
            Aws,
            "InvalidIdentityToken",
            Inject::Sts(1, StsFault::invalid_identity_token()),
        )
        .fails("ProviderError/TrustRejected", &invalid_token)
        .attempts(Sts, 1),
        case(
            Socket,
            Aws,
            "IDPRejectedClaim",
            Inject::Sts(1, StsFault::idp_rejected_claim()),
        )
        .fails("ProviderError/TrustRejected", &rejected_claim)
        .attempts(Sts, 1),
        case(
            Socket,
            Aws,
            "AccessDenied (trust policy's sub does not match)",
            Inject::StsSubject("acme:other-app:*"),
        )
        .fails("ProviderError/TrustRejected", &access_denied)
        .attempts(Sts, 1),
        case(
            Socket,
            Aws,
            "InvalidIdentityToken whose message echoes the token",
            Inject::Sts(1, StsFault::EchoToken),
        )
        .fails("ProviderError/TrustRejected", &invalid_token)
        .attempts(Sts, 1),
        case(
            Socket,
            Aws,
            "ExpiredTokenException once, then OK",
            Inject::Sts(1, StsFault::expired_token()),
        )
        .ok()
        .attempts(Sts, 2)
        .attempts(Fly, 2),
        case(
            Socket,
            Aws,
            "ExpiredTokenException twice",
            Inject::Sts(2, StsFault::expired_token()),
        )
        .fails(
            "ProviderError/TrustRejected",
            &["ExpiredTokenException", "check this machine's clock"],
        )
        .attempts(Sts, 2)
        .attempts(Fly, 2),
        case(
            Socket,
            Aws,
            "RegionDisabledException",
            Inject::Sts(1, StsFault::region_disabled()),
        )
        .fails(
            "ProviderError/Rejected",
            &[
                "RegionDisabledException",
                "not activated in region us-east-1",
                "activate it in IAM account settings or use another region",
            ],
        )
        .attempts(Sts, 1),
        case(
            Socket,
            Aws,
            "500 once, then OK",
            Inject::Sts(1, StsFault::internal_failure()),
        )
        .ok()
        .attempts(Sts, 2),
        case(
            Socket,
            Aws,
            "500 on every attempt",
            Inject::Sts(3, StsFault::internal_failure()),
        )
        .fails(
            "ProviderError/Transient",
            &["InternalFailure", "usually transient"],
        )
        .attempts(Sts, 3),
        case(
            Socket,
            Aws,
            "malformed XML",
            Inject::Sts(1, StsFault::Garbage),
        )
        .fails(
            "Unhandled/InvalidResponse",
            &[
                "answered HTTP 200 with something that is not an STS answer",
                "check the endpoint URL",
            ],
        )
        .attempts(Sts, 1),
        case(
            Socket,
            Aws,
            "slower than the timeout once, then OK",
            Inject::Sts(1, StsFault::Delay(SLOW)),
        )
        .ok()
        .attempts(Sts, 2),
        case(
            Socket,
            Aws,
            "slower than the timeout on every attempt",
            Inject::Sts(3, StsFault::Delay(SLOW)),
        )
        .fails(
            "ProviderError/Transient",
            &["timed out calling STS", "usually transient"],
        )
        .attempts_between(Sts, 2, 3)
        .within(sts_timed_out_thrice),
        case(
            Socket,
            Aws,
            "STS unreachable (connection refused)",
            Inject::StsUnreachable,
        )
        .fails(
            "ProviderError/Transient",
            &[
                "could not reach STS",
                "check network access and the region/endpoint",
            ],
        ),
        case(
            Socket,
            CliAws,
            "STS unreachable (connection refused)",
            Inject::StsUnreachable,
        )
        .fails(
            "exit 1",
            &["STS failed", "could not reach STS", "check network access"],
        ),
        case(
            Socket,
            Aws,
            "connection reset mid-response once, then OK",
            Inject::Sts(1, StsFault::Reset),
        )
        .ok()
        .attempts(Sts, 2),
        case(
            Socket,
            CliAws,
            "IDPCommunicationError once, then OK",
            Inject::Sts(1, StsFault::idp_communication_error()),
        )
        .ok()
        .attempts(Sts, 2),
        case(
            Socket,
            CliAws,
            "Throttling on every attempt",
            Inject::Sts(3, StsFault::throttling()),
        )
        .fails("exit 1", &["STS failed", "Throttling", "usually transient"])
        .attempts(Sts, 3),
        case(
            Socket,
            CliAws,
            "InvalidIdentityToken",
            Inject::Sts(1, StsFault::invalid_identity_token()),
        )
        .fails(
            "exit 1",
            &[
                "STS failed",
                "InvalidIdentityToken",
                "trust policy of arn:aws:iam::123456789012:role/fly-app",
                "fly-oidc token --claims",
            ],
        )
        .attempts(Sts, 1),
        case(
            Socket,
            CliAws,
            "ExpiredTokenException once, then OK",
            Inject::Sts(1, StsFault::expired_token()),
        )
        .ok()
        .attempts(Sts, 2)
        .attempts(Fly, 2),
        case(
            Socket,
            CliAws,
            "RegionDisabledException",
            Inject::Sts(1, StsFault::region_disabled()),
        )
        .fails(
            "exit 1",
            &["STS failed", "activate it in IAM account settings"],
        )
        .attempts(Sts, 1),
        case(
            Socket,
            CliAws,
            "malformed XML",
            Inject::Sts(1, StsFault::Garbage),
        )
        .fails("exit 1", &["STS failed", "check the endpoint URL"])
        .attempts(Sts, 1),
    ]);

    // --- Google ---------------------------------------------------------------------------
    let invalid_request = || {
        GoogleFault::Status(
            400,
            google_oauth_error(
                "invalid_request",
                "Invalid value for \"audience\". This value should be the full resource name of the Identity Provider.",
            ),
        )
    };
    let unavailable = || GoogleFault::Status(503, google::unavailable_body());
    let grant_hint = &[
        "PERMISSION_DENIED",
        "roles/iam.workloadIdentityUser",
        "gcloud iam service-accounts add-iam-policy-binding reader@my-project.iam.gserviceaccount.com",
    ];
    let issuer_hint = &[
        "invalid_grant",
        "its issuer (--issuer-uri) must be https://oidc.fly.io/acme",
        "not the word \"personal\"",
        "allowed audiences must include https://iam.googleapis.com/projects/123456789012/",
    ];
    rows.extend([
        case(
            Socket,
            Gcp,
            "STS invalid_grant (provider trusts another issuer)",
            Inject::GoogleIssuer("https://oidc.fly.io/personal"),
        )
        .fails("TrustRejected", issuer_hint)
        .attempts(GoogleSts, 1)
        .attempts(GoogleIam, 0),
        case(
            Socket,
            Gcp,
            "STS invalid_request",
            Inject::GoogleSts(1, invalid_request()),
        )
        .fails(
            "Rejected",
            &[
                "invalid_request",
                "check the workload identity pool provider",
            ],
        )
        .attempts(GoogleSts, 1),
        case(
            Socket,
            Gcp,
            "STS 503 once, then OK",
            Inject::GoogleSts(1, unavailable()),
        )
        .ok()
        .attempts(GoogleSts, 2)
        .attempts(GoogleIam, 1),
        case(
            Socket,
            Gcp,
            "STS 503 on every attempt",
            Inject::GoogleSts(3, unavailable()),
        )
        .fails("Transient", &["Google STS answered 503", "try again later"])
        .attempts(GoogleSts, 3),
        case(
            Socket,
            Gcp,
            "STS malformed JSON",
            Inject::GoogleSts(1, GoogleFault::Malformed),
        )
        .fails(
            "InvalidResponse",
            &["not a JSON object", "is the endpoint URL right?"],
        )
        .attempts(GoogleSts, 1),
        case(
            Socket,
            Gcp,
            "STS slower than the timeout once, then OK",
            Inject::GoogleSts(1, GoogleFault::Delay(SLOW)),
        )
        .ok()
        .attempts(GoogleSts, 2),
        case(
            Socket,
            Gcp,
            "STS slower than the timeout on every attempt",
            Inject::GoogleSts(3, GoogleFault::Delay(SLOW)),
        )
        .fails("Transient", &["Google STS", "timed out", "try again"])
        .attempts(GoogleSts, 3)
        .within(timed_out_thrice),
        case(
            Socket,
            Gcp,
            "STS unreachable (connection refused)",
            Inject::GoogleStsUnreachable,
        )
        .fails(
            "Transient",
            &["Google STS", "could not connect", "try again"],
        ),
        case(
            Socket,
            CliGcpToken,
            "STS unreachable (connection refused)",
            Inject::GoogleStsUnreachable,
        )
        .fails("exit 1", &["Google STS", "could not connect", "try again"]),
        case(
            Socket,
            Gcp,
            "IAM Credentials 403 (no workloadIdentityUser grant)",
            Inject::GoogleNoGrant,
        )
        .fails("TrustRejected", grant_hint)
        .attempts(GoogleIam, 1),
        case(
            Socket,
            Gcp,
            "IAM Credentials 503 once, then OK",
            Inject::GoogleIam(1, unavailable()),
        )
        .ok()
        .attempts(GoogleIam, 2),
        case(
            Socket,
            Gcp,
            "STS error that echoes the request",
            Inject::GoogleSts(1, GoogleFault::Echo(400)),
        )
        .fails("Rejected", &["Google STS rejected the Fly token (HTTP 400"])
        .attempts(GoogleSts, 1),
        case(
            Socket,
            Gcp,
            "IAM Credentials 403 that echoes the request",
            Inject::GoogleIam(1, GoogleFault::Echo(403)),
        )
        .fails(
            "TrustRejected",
            &["PERMISSION_DENIED", "roles/iam.workloadIdentityUser"],
        )
        .attempts(GoogleIam, 1),
        case(
            Socket,
            CliGcpToken,
            "IAM Credentials 403 that echoes the request",
            Inject::GoogleIam(1, GoogleFault::Echo(403)),
        )
        .fails(
            "exit 1",
            &["service account impersonation failed", "PERMISSION_DENIED"],
        )
        .attempts(GoogleIam, 1),
        case(
            Socket,
            CliGcpToken,
            "STS invalid_grant (provider trusts another issuer)",
            Inject::GoogleIssuer("https://oidc.fly.io/personal"),
        )
        .fails(
            "exit 1",
            &[
                "Google STS token exchange failed",
                "invalid_grant",
                "must be https://oidc.fly.io/acme",
            ],
        )
        .attempts(GoogleSts, 1),
        case(
            Socket,
            CliGcpToken,
            "STS invalid_request",
            Inject::GoogleSts(1, invalid_request()),
        )
        .fails(
            "exit 1",
            &["Google STS token exchange failed", "invalid_request"],
        )
        .attempts(GoogleSts, 1),
        case(
            Socket,
            CliGcpToken,
            "STS 503 once, then OK",
            Inject::GoogleSts(1, unavailable()),
        )
        .ok()
        .attempts(GoogleSts, 2),
        case(
            Socket,
            CliGcpToken,
            "STS malformed JSON",
            Inject::GoogleSts(1, GoogleFault::Malformed),
        )
        .fails("exit 1", &["not a JSON object"])
        .attempts(GoogleSts, 1),
        case(
            Socket,
            CliGcpToken,
            "IAM Credentials 403 (no workloadIdentityUser grant)",
            Inject::GoogleNoGrant,
        )
        .fails(
            "exit 1",
            &[
                "service account impersonation failed",
                "roles/iam.workloadIdentityUser",
            ],
        )
        .attempts(GoogleIam, 1),
    ]);

    // --- Configuration and usage errors of the binary (every other error path) ----------
    // Over HTTP, so the Fly API token is in every child's environment (and in the scan).
    let cli = |via: Via, fault: &'static str, args, env| {
        case(Http, via, fault, Inject::Cli { args, env })
    };
    let aws = |extra: &'static [&'static str]| extra;
    rows.extend([
        cli(CliToken, "unknown flag", &["token", "--bogus"], &[])
            .fails("exit 2", &["unexpected argument '--bogus'"]),
        cli(
            CliAws,
            "no role",
            aws(&["aws", "credential-process", "--sts-endpoint", "{sts}"]),
            &[],
        )
        .fails(
            "exit 2",
            &["no role to assume", "--role-arn", "AWS_ROLE_ARN"],
        )
        .attempts(Fly, 0),
        cli(
            CliAws,
            "invalid role ARN",
            &[
                "aws",
                "credential-process",
                "--role-arn",
                "my-role",
                "--sts-endpoint",
                "{sts}",
            ],
            &[],
        )
        .fails(
            "exit 2",
            &[
                "invalid role ARN \"my-role\"",
                "arn:aws:iam::<12-digit account id>:role/<name>",
            ],
        )
        .attempts(Fly, 0),
        cli(
            CliAws,
            "duration out of range",
            &[
                "aws",
                "credential-process",
                "--role-arn",
                ROLE,
                "--sts-endpoint",
                "{sts}",
                "--duration-seconds",
                "100",
            ],
            &[],
        )
        .fails("exit 2", &["from 900 to 43200"])
        .attempts(Fly, 0),
        cli(
            CliAws,
            "FLY_OIDC_AWS_DURATION_SECONDS not a number",
            &[
                "aws",
                "credential-process",
                "--role-arn",
                ROLE,
                "--sts-endpoint",
                "{sts}",
            ],
            &[("FLY_OIDC_AWS_DURATION_SECONDS", "1h")],
        )
        .fails(
            "exit 2",
            &["\"1h\" is not a whole number of seconds (from FLY_OIDC_AWS_DURATION_SECONDS)"],
        ),
        cli(
            CliAws,
            "policy file missing",
            &[
                "aws",
                "credential-process",
                "--role-arn",
                ROLE,
                "--sts-endpoint",
                "{sts}",
                "--policy",
                "@/nonexistent/policy.json",
            ],
            &[],
        )
        .fails(
            "exit 2",
            &[
                "cannot read the session policy file /nonexistent/policy.json",
                "(from --policy)",
            ],
        ),
        cli(
            CliAws,
            "policy not JSON",
            &[
                "aws",
                "credential-process",
                "--role-arn",
                ROLE,
                "--sts-endpoint",
                "{sts}",
                "--policy",
                "{not json",
            ],
            &[],
        )
        .fails(
            "exit 2",
            &[
                "the session policy is not valid JSON",
                "give an IAM policy document",
            ],
        )
        .attempts(Sts, 0),
        cli(
            CliAws,
            "plain-HTTP STS endpoint that is not loopback",
            &[
                "aws",
                "credential-process",
                "--role-arn",
                ROLE,
                "--sts-endpoint",
                "http://sts.example.com",
            ],
            &[],
        )
        .fails("exit 2", &["FLY_OIDC_ALLOW_INSECURE_HTTP"]),
        cli(
            CliAws,
            "FLY_OIDC_AWS_MIN_TTL invalid",
            &[
                "aws",
                "credential-process",
                "--role-arn",
                ROLE,
                "--sts-endpoint",
                "{sts}",
            ],
            &[("FLY_OIDC_AWS_MIN_TTL", "soon")],
        )
        .fails(
            "exit 2",
            &[
                "FLY_OIDC_AWS_MIN_TTL",
                "expected seconds, or a number followed by s, m or h",
            ],
        ),
        cli(
            CliGcpExec,
            "unsupported subject token type",
            &[
                "gcp",
                "executable",
                "--audience",
                "https://iam.googleapis.com/x",
            ],
            &[(
                "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
                "urn:ietf:params:oauth:token-type:saml2",
            )],
        )
        .fails("exit 1 UNSUPPORTED_TOKEN_TYPE", &["saml2"])
        .attempts(Fly, 0),
        cli(
            CliGcpExec,
            "interactive mode",
            &[
                "gcp",
                "executable",
                "--audience",
                "https://iam.googleapis.com/x",
            ],
            &[("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "1")],
        )
        .fails(
            "exit 1 INTERACTIVE_UNSUPPORTED",
            &["interactive mode is not supported"],
        ),
        cli(CliGcpExec, "no audience", &["gcp", "executable"], &[])
            .fails(
                "exit 1 MISSING_AUDIENCE",
                &[
                    "GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE",
                    "--audience",
                    "FLY_OIDC_GCP_PROVIDER",
                ],
            )
            .attempts(Fly, 0),
        cli(
            CliGcpExec,
            "invalid FLY_OIDC_GCP_PROVIDER",
            &["gcp", "executable"],
            &[("FLY_OIDC_GCP_PROVIDER", "my-pool/my-provider")],
        )
        .fails("exit 1 INVALID_CONFIGURATION", &["workloadIdentityPools"]),
        cli(
            CliGcpExec,
            "output file not writable (after a token was minted)",
            &[
                "gcp",
                "executable",
                "--audience",
                "https://iam.googleapis.com/x",
            ],
            &[(
                "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE",
                "/nonexistent/dir/out.json",
            )],
        )
        .fails(
            "exit 1 OUTPUT_FILE_UNWRITABLE",
            &[
                "could not write GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE",
                "output_file",
            ],
        )
        .attempts(Fly, 1),
        cli(
            CliGcpToken,
            "no provider",
            &[
                "gcp",
                "access-token",
                "--sts-url",
                "{google_sts}",
                "--iam-url",
                "{google_iam}",
            ],
            &[],
        )
        .fails(
            "exit 2",
            &["invalid setting", "set --provider or FLY_OIDC_GCP_PROVIDER"],
        )
        .attempts(Fly, 0),
        cli(
            CliGcpToken,
            "invalid service account",
            &[
                "gcp",
                "access-token",
                "--provider",
                "{provider}",
                "--service-account",
                "not-an-email",
                "--sts-url",
                "{google_sts}",
                "--iam-url",
                "{google_iam}",
            ],
            &[],
        )
        .fails(
            "exit 2",
            &[
                "invalid service account",
                "name@project.iam.gserviceaccount.com",
                "(from --service-account)",
            ],
        ),
        cli(
            CliGcpToken,
            "plain-HTTP STS URL that is not loopback",
            &[
                "gcp",
                "access-token",
                "--provider",
                "{provider}",
                "--sts-url",
                "http://sts.example.com/v1/token",
            ],
            &[],
        )
        .fails(
            "exit 2",
            &["FLY_OIDC_ALLOW_INSECURE_HTTP", "(from --sts-url)"],
        ),
        cli(
            CliGcpConfig,
            "no provider",
            &["gcp", "credential-config"],
            &[],
        )
        .fails("exit 2", &["FLY_OIDC_GCP_PROVIDER"]),
        cli(
            CliGcpConfig,
            "output file not writable",
            &[
                "gcp",
                "credential-config",
                "--provider",
                "{provider}",
                "--output",
                "/nonexistent/dir/credentials.json",
            ],
            &[],
        )
        .fails("exit 1", &["writing the configuration failed"]),
    ]);
    rows
}

// ---------------------------------------------------------------------------------------
// Running a row

/// The fakes and files of one row.
struct World {
    fly: FakeFlyApi,
    sts: Option<FakeSts>,
    google: Option<FakeGoogle>,
    dir: tempfile::TempDir,
    socket: PathBuf,
    api_url: String,
    api_token: Option<String>,
    token_file: PathBuf,
    /// The STS endpoint, and Google's STS URL, when not the fakes'.
    sts_url: Option<String>,
    google_sts_url: Option<String>,
    nobody: bool,
    /// Secrets the row made up (a wrong API token).
    extra_secrets: Vec<(&'static str, String)>,
}

impl World {
    async fn new(case: &Case) -> World {
        let fly = FakeFlyApi::builder()
            .org("acme")
            .app("my-app")
            .start()
            .await
            .unwrap();
        let sts = if case.via.needs_sts() {
            let mut b = FakeSts::builder()
                .trust(fly.issuer(), fly.jwks())
                .audience(AWS_AUDIENCE);
            if let Inject::StsSubject(pattern) = &case.inject {
                b = b.subject(*pattern);
            }
            Some(b.start().await.unwrap())
        } else {
            None
        };
        let google = if case.via.needs_google() {
            let mut b = FakeGoogle::builder(&fly);
            if !matches!(case.inject, Inject::GoogleNoGrant) {
                b = b.service_account(SA);
            }
            if let Inject::GoogleIssuer(issuer) = &case.inject {
                b = b.issuer(*issuer);
            }
            Some(b.start().await.unwrap())
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("fault-matrix-")
            .tempdir()
            .unwrap();
        let mut world = World {
            socket: fly.socket_path().to_owned(),
            api_url: fly.url(),
            api_token: Some(fly.api_token().to_owned()),
            token_file: dir.path().join("oidc_token"),
            sts_url: None,
            google_sts_url: None,
            fly,
            sts,
            google,
            dir,
            nobody: false,
            extra_secrets: Vec::new(),
        };
        world.apply(case);
        world
    }

    /// The audience the row's consumer asks for.
    fn audience(&self, via: Via) -> Option<String> {
        match via {
            Via::Aws | Via::CliAws => Some(AWS_AUDIENCE.to_owned()),
            Via::Gcp | Via::CliGcpToken | Via::CliGcpExec | Via::CliGcpConfig => Some(format!(
                "https://iam.googleapis.com/{}",
                google::default_provider("acme")
            )),
            Via::Client | Via::CliToken => None,
        }
    }

    fn apply(&mut self, case: &Case) {
        let audience = self.audience(case.via);
        if case.source == Source::File {
            let content = match &case.inject {
                Inject::FileMissing => None,
                Inject::FileGarbage => Some("<html>not a token</html>\n".to_owned()),
                Inject::FileOversized => Some("a".repeat(100_000)),
                Inject::FileExpired => {
                    #[allow(clippy::disallowed_methods)] // the fake's clock is the system's
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    Some(self.fly.mint_with(audience.as_deref(), |claims| {
                        claims.insert("iat".into(), (now - 660).into());
                        claims.insert("nbf".into(), (now - 660).into());
                        claims.insert("exp".into(), (now - 60).into());
                    }))
                }
                _ => Some(self.fly.mint(audience.as_deref())),
            };
            if let Some(content) = content {
                std::fs::write(&self.token_file, content).unwrap();
            }
        }
        match &case.inject {
            Inject::Fly(n, fault) => self.fly.fail_next(*n, fault.clone()),
            Inject::NoSocket => self.socket = self.dir.path().join("missing/api.sock"),
            Inject::Refused => self.api_url = closed_port_url(),
            Inject::StsUnreachable => self.sts_url = Some(closed_port_url()),
            Inject::GoogleStsUnreachable => {
                self.google_sts_url = Some(format!("{}/v1/token", closed_port_url()))
            }
            Inject::NoApiToken => self.api_token = None,
            Inject::FlyEchoesBearer => {
                let body = json_error(&format!(
                    "unauthorized request: Authorization: Bearer {}",
                    self.fly.api_token()
                ));
                self.fly.fail_next(1, Fault::Status(401, body));
            }
            Inject::WrongApiToken => {
                let wrong = "fm2_wrong-token-0123456789abcdef0123456789abcdef";
                self.extra_secrets
                    .push(("the wrong Fly API token", wrong.to_owned()));
                self.api_token = Some(wrong.to_owned());
            }
            Inject::AsNobody(denial) => {
                self.nobody = true;
                // The fake's socket directory: root's, 0700.
                chmod(self.fly.socket_path().parent().unwrap(), 0o700);
                // Our directory: open to everyone, holding a symlink and the token file.
                chmod(self.dir.path(), 0o755);
                match denial {
                    Denial::SocketDir => {}
                    Denial::SocketConnect => {
                        let link = self.dir.path().join("api.sock");
                        std::os::unix::fs::symlink(self.fly.socket_path(), &link).unwrap();
                        self.socket = link;
                    }
                    Denial::TokenFile => chmod(&self.token_file, 0o600),
                }
            }
            Inject::Sts(n, fault) => self.sts.as_ref().unwrap().fail_next(*n, fault.clone()),
            Inject::GoogleSts(n, fault) => self
                .google
                .as_ref()
                .unwrap()
                .fail_next_sts(*n, fault.clone()),
            Inject::GoogleIam(n, fault) => self
                .google
                .as_ref()
                .unwrap()
                .fail_next_iam(*n, fault.clone()),
            Inject::FileMissing
            | Inject::FileGarbage
            | Inject::FileOversized
            | Inject::FileExpired
            | Inject::StsSubject(_)
            | Inject::GoogleIssuer(_)
            | Inject::GoogleNoGrant
            | Inject::Cli { .. } => {}
        }
    }

    fn count(&self, counter: Counter) -> usize {
        match counter {
            Counter::Fly => self.fly.token_requests(),
            Counter::Sts => self.sts.as_ref().map_or(0, FakeSts::request_count),
            Counter::GoogleSts => self.google.as_ref().map_or(0, FakeGoogle::sts_requests),
            Counter::GoogleIam => self.google.as_ref().map_or(0, FakeGoogle::iam_requests),
        }
    }

    /// Every secret the fakes issued or were given, after the row ran.
    fn secrets(&self) -> Secrets {
        let mut s = Secrets::default();
        for (what, value) in &self.extra_secrets {
            s.add(what, value.clone());
        }
        for jwt in self.fly.issued_tokens() {
            s.add("Fly OIDC token", jwt);
        }
        s.add("Fly API token", self.fly.api_token());
        if let Some(sts) = &self.sts {
            for c in sts.issued_credentials() {
                s.add("AWS secret access key", c.secret_access_key);
                s.add("AWS session token", c.session_token);
            }
        }
        if let Some(google) = &self.google {
            for t in google.issued_tokens() {
                s.add("Google access token", t);
            }
        }
        s
    }

    fn fly_client(&self, source: Source) -> Result<FlyOidcClient, fly_oidc::BuildError> {
        let b = FlyOidcClient::builder()
            .env(Env::from_slice(&[]))
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .retry(fast_retry());
        let b = match source {
            Source::Socket => b.socket(&self.socket),
            Source::Http => {
                let b = b.api_url(&self.api_url);
                match &self.api_token {
                    Some(t) => b.api_token(t.as_str()),
                    None => b,
                }
            }
            Source::File => b.token_file(&self.token_file),
            Source::Default => b.default_socket(&self.socket),
        };
        b.build()
    }
}

/// `http://127.0.0.1:<a port nothing listens on>`.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn fast_retry() -> RetryConfig {
    RetryConfig::default()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(20))
}

/// What a row produced.
struct Observed {
    ok: bool,
    kind: String,
    message: String,
    /// Text to scan for secrets, labelled.
    outputs: Vec<(&'static str, String)>,
    /// A problem found on the way (a success that returned the wrong thing, a panic line).
    problem: Option<String>,
}

impl Observed {
    fn success(outputs: Vec<(&'static str, String)>, problem: Option<String>) -> Self {
        Observed {
            ok: true,
            kind: "ok".into(),
            message: String::new(),
            outputs,
            problem,
        }
    }

    fn failure(kind: String, message: String, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = String::new();
        let mut source = Some(err);
        while let Some(e) = source {
            let _ = writeln!(chain, "{e}");
            source = e.source();
        }
        Observed {
            ok: false,
            kind,
            message,
            outputs: vec![
                ("the error's Display", err.to_string()),
                ("the error's Debug", format!("{err:?}")),
                ("the error's pretty Debug", format!("{err:#?}")),
                ("the error's cause chain", chain),
            ],
            problem: None,
        }
    }
}

async fn run_client(w: &World, case: &Case) -> Observed {
    let client = match w.fly_client(case.source) {
        Ok(c) => c,
        Err(e) => return Observed::failure("BuildError".into(), e.to_string(), &e),
    };
    match client.fetch_token(w.audience(case.via).as_deref()).await {
        Ok(token) => {
            let problem = (!w
                .fly
                .issued_tokens()
                .iter()
                .any(|t| t == token.expose_jwt())
                && case.source != Source::File)
                .then(|| "the token is not one the fake minted".to_owned());
            Observed::success(
                vec![
                    ("the token's Debug", format!("{token:?}")),
                    ("the token's Display", format!("{token}")),
                    ("the client's Debug", format!("{client:?}")),
                ],
                problem,
            )
        }
        Err(e) => Observed::failure(format!("{:?}", e.kind()), e.to_string(), &e),
    }
}

fn credentials_error_kind(err: &CredentialsError) -> String {
    let variant = match err {
        CredentialsError::CredentialsNotLoaded(_) => "CredentialsNotLoaded",
        CredentialsError::ProviderTimedOut(_) => "ProviderTimedOut",
        CredentialsError::InvalidConfiguration(_) => "InvalidConfiguration",
        CredentialsError::ProviderError(_) => "ProviderError",
        CredentialsError::Unhandled(_) => "Unhandled",
        _ => "Other",
    };
    match std::error::Error::source(err).and_then(|s| s.downcast_ref::<fly_oidc_aws::Error>()) {
        Some(ours) => format!("{variant}/{:?}", ours.kind()),
        None => variant.to_owned(),
    }
}

async fn run_aws(w: &World, case: &Case) -> Observed {
    use aws_credential_types::provider::ProvideCredentials;
    let sts = w.sts.as_ref().unwrap();
    let fly = match w.fly_client(case.source) {
        Ok(c) => c,
        Err(e) => return Observed::failure("BuildError".into(), e.to_string(), &e),
    };
    let provider = match FlyOidcCredentialsProvider::builder()
        .env(Env::from_slice(&[]))
        .role_arn(ROLE)
        .endpoint_url(w.sts_url.clone().unwrap_or_else(|| sts.url()))
        .fly_client(fly)
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .retry(fast_retry())
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
    {
        Ok(p) => p,
        Err(e) => return Observed::failure("BuildError".into(), e.to_string(), &e),
    };
    match provider.provide_credentials().await {
        Ok(creds) => {
            let problem = (sts
                .issued_credentials()
                .last()
                .map(|c| c.access_key_id.as_str())
                != Some(creds.access_key_id()))
            .then(|| "the credentials are not the ones STS issued".to_owned());
            Observed::success(
                vec![
                    ("the credentials' Debug", format!("{creds:?}")),
                    ("the provider's Debug", format!("{provider:?}")),
                ],
                problem,
            )
        }
        Err(e) => {
            let message = match std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<fly_oidc_aws::Error>())
            {
                Some(ours) => ours.to_string(),
                None => aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
            };
            let mut observed = Observed::failure(credentials_error_kind(&e), message, &e);
            observed.outputs.push((
                "the error's DisplayErrorContext",
                aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
            ));
            observed
        }
    }
}

async fn run_gcp(w: &World, case: &Case) -> Observed {
    let google = w.google.as_ref().unwrap();
    let gcp_kind = |e: &fly_oidc_gcp::Error| format!("{:?}", e.kind());
    let fly = match w.fly_client(case.source) {
        Ok(c) => c,
        Err(e) => return Observed::failure("BuildError".into(), e.to_string(), &e),
    };
    let provider = match GcpTokenProvider::builder()
        .env(Env::from_slice(&[]))
        .fly_client(fly)
        .provider(google.provider())
        .service_account(SA)
        .sts_url(w.google_sts_url.clone().unwrap_or_else(|| google.sts_url()))
        .iam_url(google.iam_url())
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .retry(fast_retry())
        .build()
    {
        Ok(p) => p,
        Err(e) => return Observed::failure("BuildError".into(), e.to_string(), &e),
    };
    match provider.access_token().await {
        Ok(token) => {
            let problem = (!google
                .issued_tokens()
                .iter()
                .any(|t| t == token.expose_secret()))
            .then(|| "the access token is not one the fake issued".to_owned());
            Observed::success(
                vec![
                    ("the access token's Debug", format!("{token:?}")),
                    ("the access token's Display", format!("{token}")),
                    ("the provider's Debug", format!("{provider:?}")),
                ],
                problem,
            )
        }
        Err(e) => Observed::failure(gcp_kind(&e), e.to_string(), &e),
    }
}

async fn run_cli(w: &World, case: &Case) -> Observed {
    let home = w.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut envs: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| envs.push((k.to_owned(), v));
    if w.nobody {
        set("HOME", "/nonexistent".into());
        set("FLY_OIDC_NO_CACHE", "1".into());
    } else {
        set("HOME", home.display().to_string());
        set(
            "XDG_CACHE_HOME",
            w.dir.path().join("cache").display().to_string(),
        );
    }
    match case.source {
        Source::Socket => set("FLY_OIDC_SOCKET", w.socket.display().to_string()),
        Source::Http => {
            set("FLY_API_HOSTNAME", w.api_url.clone());
            if let Some(t) = &w.api_token {
                set("FLY_API_TOKEN", t.clone());
            }
        }
        Source::File => set("FLY_OIDC_TOKEN_FILE", w.token_file.display().to_string()),
        Source::Default => set("FLY_OIDC_DEFAULT_SOCKET", w.socket.display().to_string()),
    }
    let mut args: Vec<String> = vec!["--verbose".into()];
    if let Inject::Cli {
        args: row_args,
        env: row_env,
    } = &case.inject
    {
        let fill = |text: &str| {
            let mut text = text.to_owned();
            if let Some(sts) = &w.sts {
                text = text.replace("{sts}", &sts.url());
            }
            if let Some(g) = &w.google {
                text = text
                    .replace("{google_sts}", &g.sts_url())
                    .replace("{google_iam}", &g.iam_url())
                    .replace("{provider}", g.provider());
            }
            text
        };
        args.extend(row_args.iter().map(|a| fill(a)));
        envs.extend(row_env.iter().map(|(k, v)| ((*k).to_owned(), fill(v))));
        let run = fault_matrix_support::run_cli(&args, &envs, w.nobody, case.within).await;
        return observe_cli(w, case, run);
    }
    match case.via {
        Via::CliToken => args.push("token".into()),
        Via::CliAws => {
            let sts = w.sts.as_ref().unwrap();
            args.extend(
                [
                    "aws",
                    "credential-process",
                    "--role-arn",
                    ROLE,
                    "--region",
                    "us-east-1",
                    "--sts-endpoint",
                ]
                .map(String::from),
            );
            args.push(w.sts_url.clone().unwrap_or_else(|| sts.url()));
        }
        Via::CliGcpExec => {
            args.extend(["gcp", "executable"].map(String::from));
            set(
                "GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE",
                format!("//iam.googleapis.com/{}", google::default_provider("acme")),
            );
        }
        Via::CliGcpToken => {
            let g = w.google.as_ref().unwrap();
            args.extend(["gcp", "access-token", "--provider"].map(String::from));
            args.extend([
                g.provider().to_owned(),
                "--service-account".into(),
                SA.into(),
                "--sts-url".into(),
                w.google_sts_url.clone().unwrap_or_else(|| g.sts_url()),
                "--iam-url".into(),
                g.iam_url(),
            ]);
        }
        Via::CliGcpConfig => {
            let g = w.google.as_ref().unwrap();
            args.extend(["gcp", "credential-config", "--provider"].map(String::from));
            args.extend([g.provider().to_owned(), "--sts-url".into(), g.sts_url()]);
        }
        Via::Client | Via::Aws | Via::Gcp => unreachable!("not a CLI row"),
    }
    let run = fault_matrix_support::run_cli(&args, &envs, w.nobody, case.within).await;
    observe_cli(w, case, run)
}

fn observe_cli(w: &World, case: &Case, run: CliRun) -> Observed {
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
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    if run.code == Some(0) {
        let stdout = run.stdout.trim();
        let wrong = match case.via {
            Via::CliToken => !w.fly.issued_tokens().iter().any(|t| t == stdout),
            Via::CliAws => {
                let v: serde_json::Value = serde_json::from_str(stdout).unwrap_or_default();
                let issued = w.sts.as_ref().unwrap().issued_credentials();
                v["Version"] != 1
                    || !issued
                        .iter()
                        .any(|c| v["AccessKeyId"] == c.access_key_id.as_str())
            }
            Via::CliGcpExec => {
                let v: serde_json::Value = serde_json::from_str(stdout).unwrap_or_default();
                v["success"] != true
                    || !w
                        .fly
                        .issued_tokens()
                        .iter()
                        .any(|t| v["id_token"] == t.as_str())
            }
            Via::CliGcpConfig => serde_json::from_str::<serde_json::Value>(stdout)
                .map_or(true, |v| v["type"] != "external_account"),
            Via::CliGcpToken => !w
                .google
                .as_ref()
                .unwrap()
                .issued_tokens()
                .iter()
                .any(|t| t == stdout),
            _ => unreachable!(),
        };
        let problem = match (problem, wrong) {
            (p, false) => p,
            (p, true) => Some(format!(
                "{}stdout is not what the fakes issued",
                p.map(|p| p + "; ").unwrap_or_default()
            )),
        };
        // On success stdout carries the secret by design: scan stderr only.
        return Observed::success(vec![("stderr", run.stderr)], problem);
    }
    let mut kind = match run.code {
        Some(code) => format!("exit {code}"),
        None => "killed".to_owned(),
    };
    if case.via == Via::CliGcpExec {
        let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap_or_default();
        if v["version"] == 1 && v["success"] == false {
            let _ = write!(kind, " {}", v["code"].as_str().unwrap_or("?"));
        } else {
            kind.push_str(" (no failure JSON)");
        }
    }
    let error_lines = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("fly-oidc: error: ") || l.starts_with("error: "))
        .count();
    let problem = match (problem, error_lines) {
        (p, 1) => p,
        (p, n) => Some(format!(
            "{}expected one `fly-oidc: error:` (or clap's `error:`) line on stderr, found {n}",
            p.map(|p| p + "; ").unwrap_or_default()
        )),
    };
    Observed {
        ok: false,
        kind,
        message: run.stderr.clone(),
        outputs: vec![("stderr", run.stderr), ("stdout", run.stdout)],
        problem,
    }
}

/// How a row ended.
enum Verdict {
    Passed {
        elapsed: Duration,
        counts: String,
        /// Bytes of output scanned (logs, errors, Debug, stdout/stderr).
        scanned: usize,
    },
    Skipped(String),
    Failed(String),
}

/// Run one row on this thread: a current-thread runtime, a TRACE subscriber into a buffer.
fn run_row(case: &Case) -> Verdict {
    if let Inject::AsNobody(_) = case.inject {
        if !is_root() {
            return Verdict::Skipped(
                "not running as root, so the binary cannot be run as another user".into(),
            );
        }
        let has_setpriv = std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !has_setpriv {
            if fly_oidc_tests::in_ci() {
                return Verdict::Failed("setpriv (util-linux) is required in CI".into());
            }
            return Verdict::Skipped("setpriv (util-linux) is not installed".into());
        }
    }
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let world = World::new(case).await;
        let started = Instant::now();
        let observed = match case.via {
            Via::Client => run_client(&world, case).await,
            Via::Aws => run_aws(&world, case).await,
            Via::Gcp => run_gcp(&world, case).await,
            _ => run_cli(&world, case).await,
        };
        let elapsed = started.elapsed();
        judge(case, &world, observed, elapsed, &capture.text())
    })
}

fn judge(case: &Case, w: &World, obs: Observed, elapsed: Duration, logs: &str) -> Verdict {
    let mut failures = Vec::new();
    if let Some(problem) = &obs.problem {
        failures.push(problem.clone());
    }
    match &case.expect {
        Expect::Ok if !obs.ok => failures.push(format!(
            "expected success, got {}: {}",
            obs.kind, obs.message
        )),
        Expect::Ok => {}
        Expect::Err { .. } if obs.ok => failures.push("expected an error, got success".into()),
        Expect::Err { kind, says } => {
            if obs.kind != *kind {
                failures.push(format!(
                    "expected kind {kind}, got {}: {}",
                    obs.kind, obs.message
                ));
            }
            for s in says {
                if !obs.message.contains(s) {
                    failures.push(format!("the error does not say {s:?}: {}", obs.message));
                }
            }
        }
    }
    let mut counts = Vec::new();
    for (counter, range) in &case.attempts {
        let n = w.count(*counter);
        counts.push(format!("{} ×{n}", counter.label()));
        if !range.contains(&n) {
            failures.push(format!(
                "expected {range:?} {} requests, got {n}",
                counter.label()
            ));
        }
    }
    if elapsed > case.within {
        failures.push(format!(
            "took {elapsed:?}, more than the bound {:?}",
            case.within
        ));
    }
    let secrets = w.secrets();
    if secrets.is_empty() {
        failures.push("no secret to scan for (the fake Fly API has an API token)".into());
    }
    // Rows that reach no server may log nothing; the others must show the capture works.
    let requests: usize = [
        Counter::Fly,
        Counter::Sts,
        Counter::GoogleSts,
        Counter::GoogleIam,
    ]
    .into_iter()
    .map(|c| w.count(c))
    .sum();
    if !case.via.is_cli() && requests > 0 && !logs.contains("TRACE") {
        failures.push("no TRACE-level log was captured".into());
    }
    if let Err(leak) = secrets.scan("the trace-level logs", logs) {
        failures.push(leak);
    }
    for (label, text) in &obs.outputs {
        if let Err(leak) = secrets.scan(label, text) {
            failures.push(leak);
        }
    }
    if failures.is_empty() {
        Verdict::Passed {
            elapsed,
            counts: counts.join(", "),
            scanned: logs.len() + obs.outputs.iter().map(|(_, t)| t.len()).sum::<usize>(),
        }
    } else {
        Verdict::Failed(failures.join("\n    "))
    }
}

/// Run every row, `WORKERS` at a time, each on its own thread with a hard time limit.
fn run_all(cases: &[Case]) -> Vec<Verdict> {
    let queue: Arc<Mutex<VecDeque<usize>>> = Arc::new(Mutex::new((0..cases.len()).collect()));
    let results: Arc<Mutex<Vec<Option<Verdict>>>> =
        Arc::new(Mutex::new((0..cases.len()).map(|_| None).collect()));
    let cases: Arc<Vec<Case>> = Arc::new(cases.to_vec());
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (queue, results, cases) = (queue.clone(), results.clone(), cases.clone());
            std::thread::spawn(move || {
                loop {
                    let Some(i) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let (tx, rx) = mpsc::channel();
                    let row_cases = cases.clone();
                    std::thread::Builder::new()
                        .name(format!("row-{i}"))
                        .spawn(move || {
                            let _ = tx.send(run_row(&row_cases[i]));
                        })
                        .unwrap();
                    let limit = cases[i].within + Duration::from_secs(30);
                    let verdict = match rx.recv_timeout(limit) {
                        Ok(v) => v,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            Verdict::Failed(format!("did not finish within {limit:?}"))
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            Verdict::Failed("the row panicked (see the panic above)".into())
                        }
                    };
                    results.lock().unwrap()[i] = Some(verdict);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut results = results.lock().unwrap();
    results.iter_mut().map(|r| r.take().unwrap()).collect()
}

#[test]
fn fault_matrix() {
    watch_panics();
    let _ = fly_oidc_tests::fly_oidc_bin(); // fails early with a hint when it is not built
    let cases = matrix();
    let started = Instant::now();
    let verdicts = run_all(&cases);
    let (mut passed, mut skipped, mut failed) = (0, 0, Vec::new());
    let mut scanned_total = 0;
    for (case, verdict) in cases.iter().zip(&verdicts) {
        match verdict {
            Verdict::Passed {
                elapsed,
                counts,
                scanned,
            } => {
                passed += 1;
                scanned_total += scanned;
                println!(
                    "ok      {} ({elapsed:.2?}; {counts}; {} KiB scanned)",
                    case.id(),
                    scanned / 1024
                );
            }
            Verdict::Skipped(why) => {
                skipped += 1;
                println!("SKIPPED {}: {why}", case.id());
            }
            Verdict::Failed(why) => {
                println!("FAILED  {}\n    {why}", case.id());
                failed.push(case.id());
            }
        }
    }
    let panics = panics();
    assert!(panics.is_empty(), "panics during the matrix: {panics:#?}");
    assert!(
        failed.is_empty(),
        "{} of {} fault matrix rows failed: {failed:#?}",
        failed.len(),
        cases.len()
    );
    println!(
        "fault matrix: {passed} rows passed, {skipped} skipped, of {} ({:.1?}; {} KiB of logs and output scanned for secrets)",
        cases.len(),
        started.elapsed(),
        scanned_total / 1024
    );
}

/// The scan itself: a token logged by a spawned task at TRACE level, a JWT's signature alone,
/// the tail of a secret, and a JWT the fakes never issued are all caught.
#[test]
fn the_leak_scan_catches_leaks() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fly = FakeFlyApi::start().await.unwrap();
        let client = FlyOidcClient::builder()
            .env(Env::from_slice(&[]))
            .socket(fly.socket_path())
            .build()
            .unwrap();
        let token = client.fetch_token(None).await.unwrap();
        let mut secrets = Secrets::default();
        for jwt in fly.issued_tokens() {
            secrets.add("Fly OIDC token", jwt);
        }
        secrets.add("Fly API token", fly.api_token());
        let clean = capture.text();
        assert!(clean.contains("TRACE"), "nothing captured at TRACE level");
        secrets.scan("the logs", &clean).unwrap();

        let jwt = token.expose_jwt().to_owned();
        tokio::spawn(async move { tracing::trace!(target: "some_dependency", "body: {jwt}") })
            .await
            .unwrap();
        let err = secrets.scan("the logs", &capture.text()).unwrap_err();
        assert!(err.contains("Fly OIDC token"), "{err}");

        let signature = token.expose_jwt().rsplit('.').next().unwrap();
        let err = secrets.scan("x", &format!("sig={signature}")).unwrap_err();
        assert!(err.contains("signature"), "{err}");
        let api_token = fly.api_token();
        let tail = &api_token[api_token.len() - 24..];
        let err = secrets.scan("x", &format!("...{tail}")).unwrap_err();
        assert!(err.contains("tail"), "{err}");
        let err = secrets
            .scan("x", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln")
            .unwrap_err();
        assert!(err.contains("JWT-shaped"), "{err}");
    });
}

const DOC_BEGIN: &str = "<!-- fault-matrix:begin: generated from tests/tests/fault_matrix.rs; FAULT_MATRIX_BLESS=1 cargo test -p fly-oidc-tests --test fault_matrix rewrites it -->";
const DOC_END: &str = "<!-- fault-matrix:end -->";

/// The rows as a Markdown table, for `docs/FAULTS.md`.
fn doc_table(cases: &[Case]) -> String {
    let mut out = String::from(
        "| cloud | token source | through | fault | expected | requests | bound in the test |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for c in cases {
        let expected = match &c.expect {
            Expect::Ok => "succeeds".to_owned(),
            Expect::Err { kind, says } => format!(
                "`{kind}`: {}",
                says.iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let requests = c
            .attempts
            .iter()
            .map(|(counter, range)| {
                if range.start() == range.end() {
                    format!("{} {}", counter.label(), range.start())
                } else {
                    format!("{} {}–{}", counter.label(), range.start(), range.end())
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {expected} | {requests} | {} s |",
            c.inject.cloud(),
            c.source.label(),
            c.via.label(),
            c.fault,
            c.within.as_secs()
        );
    }
    out
}

/// `docs/FAULTS.md` lists exactly the rows of the matrix.
#[test]
fn faults_doc_lists_every_row() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/FAULTS.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let table = doc_table(&matrix());
    let generated = format!("{DOC_BEGIN}\n\n{table}\n{DOC_END}");
    let current = doc
        .find(DOC_BEGIN)
        .zip(doc.find(DOC_END))
        .map(|(b, e)| &doc[b..e + DOC_END.len()]);
    #[allow(clippy::disallowed_methods)] // the harness's own switch, not config under test
    let bless = std::env::var_os("FAULT_MATRIX_BLESS").is_some_and(|v| v == "1");
    if bless {
        let updated = match current {
            Some(old) => doc.replace(old, &generated),
            None => format!("{}\n{generated}\n", doc.trim_end()),
        };
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        current,
        Some(generated.as_str()),
        "docs/FAULTS.md does not list the matrix's rows; run \
         FAULT_MATRIX_BLESS=1 cargo test -p fly-oidc-tests --test fault_matrix faults_doc"
    );
}
