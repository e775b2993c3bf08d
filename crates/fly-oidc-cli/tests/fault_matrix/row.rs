//! What a row is: where the Fly token comes from, which front end is under test, the fault,
//! and the typed expectation (outcome, requests per fake, time bound).

use fly_oidc::ErrorKind;
use fly_oidc_testkit::Fault;
use std::ops::RangeInclusive;
use std::time::Duration;

/// Where the Fly token comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
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
    /// The label in docs/FAULTS.md.
    pub fn label(self) -> &'static str {
        match self {
            Source::Socket => "socket",
            Source::Http => "HTTP + bearer",
            Source::File => "token file",
            Source::Default => "default socket",
        }
    }

    /// The part of the test name.
    fn slug(self) -> &'static str {
        match self {
            Source::Socket => "socket",
            Source::Http => "http",
            Source::File => "token-file",
            Source::Default => "default-socket",
        }
    }
}

/// The front end under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
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
    /// The label in docs/FAULTS.md.
    pub fn label(self) -> &'static str {
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

    /// The part of the test name (hyphens, so `aws_` and `gcp_` select only the cloud
    /// groups).
    fn slug(self) -> &'static str {
        match self {
            Via::Client => "client",
            Via::Aws => "aws-provider",
            Via::Gcp => "gcp-provider",
            Via::CliToken => "cli-token",
            Via::CliAws => "cli-aws-credential-process",
            Via::CliGcpExec => "cli-gcp-executable",
            Via::CliGcpToken => "cli-gcp-access-token",
            Via::CliGcpConfig => "cli-gcp-credential-config",
        }
    }

    /// Whether the row runs the binary.
    pub fn is_cli(self) -> bool {
        !matches!(self, Via::Client | Via::Aws | Via::Gcp)
    }

    /// Whether the row needs the fake STS.
    pub fn needs_sts(self) -> bool {
        matches!(self, Via::Aws | Via::CliAws)
    }

    /// Whether the row needs the fake Google STS and IAM Credentials.
    pub fn needs_google(self) -> bool {
        matches!(self, Via::Gcp | Via::CliGcpToken | Via::CliGcpConfig)
    }
}

/// How a row gets a real "permission denied": the binary runs as uid/gid 65534.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The default socket sits in a root-owned 0700 directory (stat fails with EACCES).
    SocketDir,
    /// A symlink in an open directory points at that socket (connect fails with EACCES).
    SocketConnect,
    /// The token file is root's, mode 0600 (open fails with EACCES).
    TokenFile,
}

/// The fault.
#[derive(Clone, Debug)]
pub enum Inject {
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
    Sts(usize, Fault),
    /// The role's trust policy allows only this `sub` pattern.
    StsSubject(&'static str),
    /// Nothing listens at the STS endpoint.
    StsUnreachable,
    /// Nothing listens at the Google STS endpoint.
    GoogleStsUnreachable,
    /// The next `n` Google STS requests fail so.
    GoogleSts(usize, Fault),
    /// The next `n` IAM Credentials requests fail so.
    GoogleIam(usize, Fault),
    /// The workload identity provider trusts this issuer instead of Fly's.
    GoogleIssuer(&'static str),
    /// The service account does not grant the pool `roles/iam.workloadIdentityUser`.
    GoogleNoGrant,
    /// A configuration or usage error of the binary: run it with these arguments
    /// (whitespace-separated, after `--verbose`) and these extra variables. `{role}`,
    /// `{sts}`, `{google_sts}`, `{google_iam}` and `{provider}` stand for the role and the
    /// fakes' endpoints and provider.
    Cli {
        /// The arguments.
        args: &'static str,
        /// The extra variables.
        env: &'static [(&'static str, &'static str)],
    },
}

/// Where a row's fault is: the group (and first part of the test name) it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cloud {
    /// The Fly Machines API or the token file.
    FlyApi,
    /// AWS STS.
    AwsSts,
    /// Google STS.
    GoogleSts,
    /// Google IAM Credentials.
    GoogleIam,
    /// The binary's configuration and usage.
    Config,
}

impl Cloud {
    fn label(self) -> &'static str {
        match self {
            Cloud::FlyApi => "Fly API",
            Cloud::AwsSts => "AWS STS",
            Cloud::GoogleSts => "Google STS",
            Cloud::GoogleIam => "Google IAM Credentials",
            Cloud::Config => "configuration",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Cloud::FlyApi => "fly_api",
            Cloud::AwsSts => "aws_sts",
            Cloud::GoogleSts => "gcp_sts",
            Cloud::GoogleIam => "gcp_iam",
            Cloud::Config => "cli_config",
        }
    }
}

impl Inject {
    /// Where the fault is.
    pub fn cloud(&self) -> Cloud {
        match self {
            Inject::Sts(..) | Inject::StsSubject(_) | Inject::StsUnreachable => Cloud::AwsSts,
            Inject::GoogleSts(..) | Inject::GoogleIssuer(_) | Inject::GoogleStsUnreachable => {
                Cloud::GoogleSts
            }
            Inject::GoogleIam(..) | Inject::GoogleNoGrant => Cloud::GoogleIam,
            Inject::Cli { .. } => Cloud::Config,
            _ => Cloud::FlyApi,
        }
    }
}

/// A request counter of one of the fakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// The Machines API's token requests.
    Fly,
    /// AWS STS requests.
    Sts,
    /// Google STS requests.
    GoogleSts,
    /// IAM Credentials requests.
    GoogleIam,
}

impl Counter {
    /// Every counter.
    pub const ALL: [Counter; 4] = [
        Counter::Fly,
        Counter::Sts,
        Counter::GoogleSts,
        Counter::GoogleIam,
    ];

    /// The label in docs/FAULTS.md.
    pub fn label(self) -> &'static str {
        match self {
            Counter::Fly => "Fly API",
            Counter::Sts => "STS",
            Counter::GoogleSts => "Google STS",
            Counter::GoogleIam => "IAM",
        }
    }
}

/// The `aws_credential_types::provider::error::CredentialsError` variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sdk {
    /// `CredentialsNotLoaded`: a chain moves on.
    CredentialsNotLoaded,
    /// `ProviderError`.
    ProviderError,
    /// `Unhandled`.
    Unhandled,
    /// `ProviderTimedOut`.
    ProviderTimedOut,
    /// `InvalidConfiguration`.
    InvalidConfiguration,
}

/// What kind of failure: the typed value each front end gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A builder refused (`fly_oidc::BuildError`).
    Build,
    /// A run-time `fly_oidc::Error` of the token client or the GCP provider.
    Run(ErrorKind),
    /// The AWS provider's `CredentialsError` variant, and the kind of our error inside
    /// (`None`: not ours).
    Aws(Sdk, Option<ErrorKind>),
    /// The binary exited with this code.
    Exit(i32),
    /// `fly-oidc gcp executable` exited with this code and printed Google's failure
    /// response with this `code`.
    GoogleExit(i32, &'static str),
    /// The binary was killed (a signal or the time limit).
    Killed,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Build => f.write_str("BuildError"),
            Kind::Run(kind) => write!(f, "{kind:?}"),
            Kind::Aws(sdk, Some(kind)) => write!(f, "{sdk:?}/{kind:?}"),
            Kind::Aws(sdk, None) => write!(f, "{sdk:?}"),
            Kind::Exit(code) => write!(f, "exit {code}"),
            Kind::GoogleExit(code, google) => write!(f, "exit {code} {google}"),
            Kind::Killed => f.write_str("killed"),
        }
    }
}

/// The expected outcome.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Credentials (or a token) come back, and they are the ones the fakes issued.
    Ok,
    /// An error of this kind whose message contains every one of the strings.
    Err(Kind, Vec<&'static str>),
}

/// One row of the matrix.
#[derive(Clone, Debug)]
pub struct Row {
    /// Where the Fly token comes from.
    pub source: Source,
    /// The front end.
    pub via: Via,
    /// The fault, in words.
    pub fault: &'static str,
    /// The fault, injected.
    pub inject: Inject,
    /// The outcome.
    pub expect: Expect,
    /// Requests each fake must have received.
    pub attempts: Vec<(Counter, RangeInclusive<usize>)>,
    /// The upper bound on the row's time.
    pub within: Duration,
}

/// A row that expects success until told otherwise, with the default time bound (10 s
/// through the binary, 3 s in-process).
pub fn row(source: Source, via: Via, fault: &'static str, inject: Inject) -> Row {
    Row {
        source,
        via,
        fault,
        inject,
        expect: Expect::Ok,
        attempts: Vec::new(),
        within: Duration::from_secs(if via.is_cli() { 10 } else { 3 }),
    }
}

impl Row {
    /// Expect success.
    pub fn ok(mut self) -> Self {
        self.expect = Expect::Ok;
        self
    }

    /// Expect an error of `kind` whose message says each of `says`.
    pub fn fails(mut self, kind: Kind, says: &[&'static str]) -> Self {
        self.expect = Expect::Err(kind, says.to_vec());
        self
    }

    /// Expect exactly `n` requests at `counter`.
    pub fn attempts(self, counter: Counter, n: usize) -> Self {
        self.attempts_between(counter, n, n)
    }

    /// Expect `lo..=hi` requests at `counter`.
    pub fn attempts_between(mut self, counter: Counter, lo: usize, hi: usize) -> Self {
        self.attempts.push((counter, lo..=hi));
        self
    }

    /// Bound the row's time by `secs` seconds.
    pub fn within(mut self, secs: u64) -> Self {
        self.within = Duration::from_secs(secs);
        self
    }

    /// The test name: `<group>::<source>::<front end>::<fault>`, for example
    /// `aws_sts::socket::aws-provider::throttling-once-then-ok`.
    pub fn name(&self) -> String {
        let fault = fly_oidc_tests::fault_slug(self.fault);
        format!(
            "{}::{}::{}::{fault}",
            self.inject.cloud().slug(),
            self.source.slug(),
            self.via.slug()
        )
    }

    /// The row in words: cloud, source, front end, fault.
    pub fn id(&self) -> String {
        format!(
            "{} | {} | {} | {}",
            self.inject.cloud().label(),
            self.source.label(),
            self.via.label(),
            self.fault
        )
    }

    /// The cloud's label, for docs/FAULTS.md.
    pub fn cloud_label(&self) -> &'static str {
        self.inject.cloud().label()
    }
}

/// A Fly-style JSON error body.
pub fn json_error(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}
