//! What every subcommand shares: global flags, the token client, errors and logging.

use clap::Args;
use fly_oidc::{BuildError, Env, FlyOidcClient, Origin};
use std::error::Error as StdError;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags accepted by every command, before or after the subcommand.
#[derive(Clone, Debug, Default, Args)]
pub struct Globals {
    /// Use the Machines API over this Unix socket [env: FLY_OIDC_SOCKET]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Use the Machines API over HTTP(S) at this URL, with FLY_API_TOKEN [env: FLY_API_HOSTNAME]
    #[arg(long, global = true, value_name = "URL")]
    pub api_url: Option<String>,
    /// Read the Fly token from this file [env: FLY_OIDC_TOKEN_FILE]
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Print the cause chain of errors and debug logs on stderr
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

impl Globals {
    /// The real process environment (the binary's one place that reads it).
    pub fn env(&self) -> Env {
        Env::real()
    }

    /// A Fly token client configured from the flags, then the environment.
    pub fn fly_client(&self) -> Result<FlyOidcClient, CliError> {
        self.fly_client_with(|b| b)
    }

    /// [`fly_client`](Self::fly_client) with more settings made by `more`.
    pub fn fly_client_with(
        &self,
        more: impl FnOnce(fly_oidc::Builder) -> fly_oidc::Builder,
    ) -> Result<FlyOidcClient, CliError> {
        let mut builder = more(FlyOidcClient::builder().env(self.env()));
        if let Some(path) = &self.token_file {
            builder = builder.token_file(path);
        }
        if let Some(path) = &self.socket {
            builder = builder.socket(path);
        }
        if let Some(url) = &self.api_url {
            builder = builder.api_url(url);
        }
        // For tests only: where the default socket is, so no test touches the real /.fly/api.
        if let Some(path) = self.env().get("FLY_OIDC_DEFAULT_SOCKET") {
            builder = builder.default_socket(path);
        }
        Ok(builder.build()?)
    }
}

/// The flag of each builder setting, for messages about a value given as a flag.
const FLAGS: &[(&str, &str)] = &[
    ("token_file", "--token-file"),
    ("socket", "--socket"),
    ("api_url", "--api-url"),
    ("audience", "--audience"),
    ("role_arn", "--role-arn"),
    ("session_name", "--session-name"),
    ("duration", "--duration-seconds"),
    ("policy", "--policy"),
    ("policy_arns", "--policy-arn"),
    ("region", "--region"),
    ("endpoint_url", "--sts-endpoint"),
    ("no_cache", "--no-cache"),
    ("min_ttl", "--min-ttl"),
    ("provider", "--provider"),
    ("service_account", "--service-account"),
    ("scopes", "--scope"),
    ("sts_url", "--sts-url"),
    ("iam_url", "--iam-url"),
    ("lifetime", "--lifetime-seconds"),
];

/// `err` as the binary shows it: the flag's name where the library names its builder method.
fn describe_setting_error(err: &BuildError) -> String {
    let method = err.setting().builder_method();
    let flag = FLAGS.iter().find(|(m, _)| *m == method).map(|(_, f)| *f);
    match (flag, err.origin()) {
        // A value the binary set on a builder without a flag: say so plainly.
        (None, Some(Origin::Builder)) => err.reason().to_owned(),
        _ => err.display_with_flag(flag),
    }
}

/// A failed command: which step failed and why, printed as one line.
#[derive(Debug)]
pub struct CliError {
    step: &'static str,
    error: Box<dyn StdError + Send + Sync + 'static>,
    /// The message to show instead of the error's own (a setting named by its flag).
    shown: Option<String>,
    exit_code: u8,
}

impl CliError {
    /// `step` names what failed ("Fly token", "STS", "cache", ...).
    pub fn new(
        step: &'static str,
        error: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            step,
            error: error.into(),
            shown: None,
            exit_code: 1,
        }
    }

    /// An invalid setting (exit status 2), named by its flag or environment variable.
    pub fn setting(err: BuildError) -> Self {
        Self {
            step: "setting",
            shown: Some(describe_setting_error(&err)),
            error: Box::new(err),
            exit_code: 2,
        }
    }

    /// The one-line message (without the cause chain).
    pub fn line(&self) -> String {
        let message = match &self.shown {
            Some(shown) => fly_oidc::redact_jwts(shown),
            None => fly_oidc::redact_jwts(&self.error.to_string()),
        };
        if self.step == "setting" {
            format!("invalid setting: {message}")
        } else {
            format!("{} failed: {message}", self.step)
        }
    }

    /// Print the error on stderr and return the exit code.
    pub fn report(&self, verbose: bool) -> ExitCode {
        eprintln!("fly-oidc: error: {}", self.line());
        if verbose {
            let mut source = self.error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {}", fly_oidc::redact_jwts(&cause.to_string()));
                source = cause.source();
            }
        }
        ExitCode::from(self.exit_code)
    }
}

impl From<BuildError> for CliError {
    fn from(err: BuildError) -> Self {
        Self::setting(err)
    }
}

/// Log to stderr: debug for our crates with `--verbose`, otherwise warnings only, and nothing
/// at all when `quiet` (Google's libraries read stderr with stdout) unless `--verbose`.
pub fn init_logging(verbose: bool, quiet: bool) {
    let filter = match (verbose, quiet) {
        (true, _) => "warn,fly_oidc=debug,fly_oidc_aws=debug,fly_oidc_gcp=debug,fly_oidc_cli=debug",
        (false, true) => "off",
        (false, false) => "warn",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}
