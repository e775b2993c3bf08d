//! What every subcommand shares: global flags, the token client, errors and logging.

use clap::Args;
use fly_oidc::{BuildError, Env, FlyOidcClient, Origin, Setting};
use std::error::Error as StdError;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags accepted by every command, before or after the subcommand (listed after each
/// command's own flags, under their own heading).
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Global options")]
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
    /// Print the cause chain of errors and debug logs on stderr (never under `gcp executable`,
    /// whose consumers read stderr with stdout: use --log-file there)
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Append debug logs to this file (mode 0600) instead of stderr: the way to debug a command
    /// whose output belongs to a protocol (`gcp executable`) [env: FLY_OIDC_LOG_FILE]
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
}

/// The log file: `--log-file`, else `FLY_OIDC_LOG_FILE`.
const LOG_FILE: Setting = Setting::new("log_file", Some("FLY_OIDC_LOG_FILE"));

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
    ("log_file", "--log-file"),
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
    ///
    /// A run-time error that is an invalid setting (a [`fly_oidc::Error`] of kind
    /// [`InvalidConfiguration`](fly_oidc::ErrorKind::InvalidConfiguration) anywhere in its
    /// cause chain: a token file or socket that does not exist, a setting checked only when
    /// used) is reported like one found while parsing: `invalid setting: ...`, exit 2.
    pub fn new(
        step: &'static str,
        error: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        let error = error.into();
        let invalid_setting = is_invalid_setting(error.as_ref());
        Self {
            step: if invalid_setting { "setting" } else { step },
            error,
            shown: None,
            exit_code: if invalid_setting { 2 } else { 1 },
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

    /// A usage error (exit status 2), such as a malformed policy or expression.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            step: "usage",
            error: message.into().into(),
            shown: None,
            exit_code: 2,
        }
    }

    /// The invalid setting this error reports, if it is one.
    pub fn as_build_error(&self) -> Option<&BuildError> {
        self.error.downcast_ref::<BuildError>()
    }

    /// The same error with another exit status (the `check-*` commands use 3 for "no token").
    pub fn with_exit_code(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }

    /// The one-line message (without the cause chain).
    pub fn line(&self) -> String {
        let message = match &self.shown {
            Some(shown) => fly_oidc::redact_jwts(shown),
            None => fly_oidc::redact_jwts(&self.error.to_string()),
        };
        if self.step == "setting" {
            format!("invalid setting: {message}")
        } else if self.step == "usage" {
            format!("invalid arguments: {message}")
        } else {
            format!("{} failed: {message}", self.step)
        }
    }

    /// The causes of the error, outermost first, without tokens.
    pub fn causes(&self) -> Vec<String> {
        let mut causes = Vec::new();
        let mut source = self.error.source();
        while let Some(cause) = source {
            causes.push(fly_oidc::redact_jwts(&cause.to_string()));
            source = cause.source();
        }
        causes
    }

    /// Write the error and its cause chain to the log file, when there is one.
    pub fn log(&self) {
        if LOGS_TO_FILE.get().copied().unwrap_or(false) {
            tracing::error!(causes = ?self.causes(), "{}", self.line());
        }
    }

    /// Print the error on stderr and return the exit code.
    pub fn report(&self, verbose: bool) -> ExitCode {
        self.log();
        stderr_line(format_args!("fly-oidc: error: {}", self.line()));
        if verbose {
            for cause in self.causes() {
                stderr_line(format_args!("  caused by: {cause}"));
            }
        }
        ExitCode::from(self.exit_code)
    }
}

/// Whether `err` (or a cause of it) says a setting is invalid.
fn is_invalid_setting(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<BuildError>()
            || e.downcast_ref::<fly_oidc::Error>()
                .is_some_and(|e| e.kind() == fly_oidc::ErrorKind::InvalidConfiguration)
        {
            return true;
        }
        current = e.source();
    }
    false
}

impl From<BuildError> for CliError {
    fn from(err: BuildError) -> Self {
        Self::setting(err)
    }
}

/// Where logs go and how much.
///
/// - A log file (`--log-file` / `FLY_OIDC_LOG_FILE`): debug logs of our crates (and warnings
///   of every other), appended to it; nothing on stderr.
/// - Else, unless `quiet`: stderr, debug for our crates with `--verbose`, warnings otherwise.
/// - `quiet` (`gcp executable`: Google's libraries read stderr together with stdout) and no
///   log file: nothing at all, whatever `--verbose` says.
///
/// `RUST_LOG` is not read: a variable left set in the environment must not add lines to a
/// protocol's output, nor dependencies' trace logs (request bodies) to a file.
///
/// Fails when the log file cannot be opened (an invalid setting).
pub fn init_logging(globals: &Globals, quiet: bool) -> Result<(), BuildError> {
    const DEBUG: &str = "warn,fly_oidc=debug,fly_oidc_aws=debug,fly_oidc_gcp=debug,fly_oidc_cli=debug,fly_oidc_server=debug";
    let file = match &globals.log_file {
        Some(path) => Some((path.clone(), Origin::Builder)),
        None => globals
            .env()
            .setting(LOG_FILE)
            .map(|(path, origin)| (PathBuf::from(path), origin)),
    };
    if let Some((path, origin)) = file {
        let file = open_log_file(&path).map_err(|e| {
            BuildError::invalid(
                LOG_FILE,
                origin,
                format!(
                    "cannot open the log file {}: {e}; give a writable path",
                    path.display()
                ),
            )
            .with_source(e)
        })?;
        // Timestamps (RFC 3339 UTC) in the file: its lines outlive the run.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(DEBUG))
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .with_target(false)
            .try_init();
        let _ = LOGS_TO_FILE.set(true);
    } else if !quiet {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(if globals.verbose {
                DEBUG
            } else {
                "warn"
            }))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .without_time()
            .try_init();
    }
    Ok(())
}

/// Whether logs go to a log file (so a failure's cause chain is written there too).
static LOGS_TO_FILE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn open_log_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Write one line to stderr, ignoring a failed write: a closed or full stderr (`2>/dev/full`, a
/// reader that went away) must not turn a result into a panic (`eprintln!` panics there).
pub fn stderr_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
