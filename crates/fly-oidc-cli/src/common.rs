//! What every subcommand shares: global flags, the token client, errors and logging.

use crate::options::SetIf;
use clap::Args;
use fly_oidc::{BuildError, Env, FlyOidcClient, Naming, Origin, ProviderConfig, Setting};
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

/// A testing hook of the binary (documented as one in the README's configuration table): the
/// socket used when no token source is set, instead of `/.fly/api`, so no test touches a real
/// Machine's socket. The libraries take it as `Builder::default_socket`.
const ENV_DEFAULT_SOCKET: &str = "FLY_OIDC_DEFAULT_SOCKET";

/// The log file: `--log-file`, else `FLY_OIDC_LOG_FILE`.
const LOG_FILE: Setting = Setting::new("log_file", Some("FLY_OIDC_LOG_FILE")).flag("log-file");

impl Globals {
    /// The real process environment (the binary's one place that reads it).
    pub fn env(&self) -> Env {
        Env::real()
    }

    /// A Fly token client configured from the flags, then the environment.
    pub fn fly_client(&self) -> Result<FlyOidcClient, CliError> {
        Ok(self.fly_builder().build()?)
    }

    /// What every provider is built with: the environment, and the Fly token client of
    /// [`fly_client`](Self::fly_client).
    pub fn provider_config(&self) -> Result<ProviderConfig, CliError> {
        let config = ProviderConfig::default().with_env(self.env());
        Ok(config.with_fly_client(self.fly_client()?))
    }

    /// The builder of [`fly_client`](Self::fly_client), for more settings.
    pub fn fly_builder(&self) -> fly_oidc::Builder {
        // For tests only: where the default socket is, so no test touches the real /.fly/api.
        let default_socket = self.env().get(ENV_DEFAULT_SOCKET);
        FlyOidcClient::builder()
            .configure(&ProviderConfig::default().with_env(self.env()))
            .set_if(self.token_file.as_ref(), |b, path| b.token_file(path))
            .set_if(self.socket.as_ref(), |b, path| b.socket(path))
            .set_if(self.api_url.as_ref(), |b, url| b.api_url(url))
            .set_if(default_socket, |b, path| b.default_socket(path))
    }
}

/// A failed command: which step failed and why, printed as one line.
#[derive(Debug)]
pub struct CliError {
    step: &'static str,
    error: Box<dyn StdError + Send + Sync + 'static>,
    /// Show the token client's own message of a provider's error ([`CliError::provider`]).
    fly_token: bool,
    exit_code: u8,
}

/// The invalid setting anywhere in `err`'s cause chain: a setting a service refused at run
/// time (a duration above the role's maximum).
pub fn refused_setting<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a BuildError> {
    std::iter::successors(Some(err), |&e| e.source()).find_map(|e| e.downcast_ref::<BuildError>())
}

impl CliError {
    /// `step` names what failed ("Fly token", "STS", "cache", ...).
    ///
    /// A run-time error that is an invalid setting is reported like one found while parsing:
    /// `invalid setting: ...`, exit 2. That is a [`BuildError`] anywhere in its cause chain
    /// (a setting a service refused, such as a duration above the role's maximum: shown as
    /// that error alone, named by its flag), or a [`fly_oidc::Error`] of kind
    /// [`InvalidConfiguration`](fly_oidc::ErrorKind::InvalidConfiguration) (a token file or
    /// socket that does not exist, a setting checked only when used).
    pub fn new(
        step: &'static str,
        error: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        let error = error.into();
        let cause: &(dyn StdError + 'static) = error.as_ref();
        let chain = || std::iter::successors(Some(cause), |&e| e.source());
        // A setting refused at run time (a duration above the role's maximum): the BuildError
        // alone, named by its flag, as if found while parsing.
        if let Some(setting) = refused_setting(cause) {
            return Self {
                step: "setting",
                error: Box::new(setting.clone()),
                fly_token: false,
                exit_code: 2,
            };
        }
        let invalid = chain().any(|e| {
            e.downcast_ref::<fly_oidc::Error>()
                .is_some_and(|e| e.kind() == fly_oidc::ErrorKind::InvalidConfiguration)
        });
        Self {
            step: if invalid { "setting" } else { step },
            exit_code: if invalid { 2 } else { 1 },
            fly_token: false,
            error,
        }
    }

    /// A cloud provider's run-time error, reported as `step` failing; or, when the provider
    /// says getting the Fly token failed ([`fly_oidc::Error::fly_token_message`]), as the
    /// step `Fly token` with the token client's message, so the line says it once.
    pub fn provider(
        step: &'static str,
        err: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        let err = err.into();
        let fly = err
            .downcast_ref::<fly_oidc::Error>()
            .is_some_and(|e| e.fly_token_message().is_some());
        match fly {
            true => Self {
                fly_token: true,
                ..Self::fly_token(err)
            },
            false => Self::new(step, err),
        }
    }

    /// Getting the Fly token failed: the step `Fly token`.
    pub fn fly_token(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self::new("Fly token", err)
    }

    /// An invalid setting (exit status 2), named by its flag or environment variable.
    pub fn setting(err: BuildError) -> Self {
        Self::new("setting", err)
    }

    /// A usage error (exit status 2), such as a malformed policy or expression.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            step: "usage",
            error: message.into().into(),
            fly_token: false,
            exit_code: 2,
        }
    }

    /// An invalid setting found before any builder saw it (a flag's value clap refused),
    /// `message` naming the flag (exit status 2).
    pub fn invalid_setting(message: impl Into<String>) -> Self {
        Self {
            step: "setting",
            ..Self::usage(message)
        }
    }

    /// The same error with another exit status (the `check-*` commands use 3 for "no token").
    pub fn with_exit_code(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }

    /// The one-line message (without the cause chain), its settings named as `naming` says.
    pub fn line(&self, naming: Naming) -> String {
        let error = self.error.as_ref();
        let shown = if let Some(e) = error.downcast_ref::<BuildError>() {
            e.render(naming)
        } else if let Some(e) = error.downcast_ref::<fly_oidc::Error>() {
            let own = e.fly_token_message().filter(|_| self.fly_token);
            own.unwrap_or(e.named_message()).render(naming)
        } else {
            error.to_string()
        };
        let message = fly_oidc::redact_jwts(&shown);
        match self.step {
            "setting" => format!("invalid setting: {message}"),
            "usage" => format!("invalid arguments: {message}"),
            step => format!("{step} failed: {message}"),
        }
    }

    /// The causes of the error, outermost first, without tokens.
    pub fn causes(&self) -> Vec<String> {
        std::iter::successors(self.error.source(), |&cause| cause.source())
            .map(|cause| fly_oidc::redact_jwts(&cause.to_string()))
            .collect()
    }

    /// Write the error and its cause chain to the log file, when there is one.
    pub fn log(&self, naming: Naming) {
        if LOGS_TO_FILE.get().copied().unwrap_or(false) {
            tracing::error!(causes = ?self.causes(), "{}", self.line(naming));
        }
    }

    /// For a command whose output belongs to a protocol (`gcp executable`, which has written
    /// its failure response): write the error only to the log file, if any, and return the
    /// exit code.
    pub fn report_quietly(&self) -> ExitCode {
        self.log(Naming::Flags);
        ExitCode::from(self.exit_code)
    }

    /// Print the error on stderr, its settings named as `naming` says, and return the exit
    /// code (for a closed stdout: nothing printed, exit 141).
    pub fn report(&self, verbose: bool, naming: Naming) -> ExitCode {
        if self.step == STDOUT_CLOSED {
            return ExitCode::from(self.exit_code);
        }
        self.log(naming);
        error_line(self.line(naming));
        if verbose {
            for cause in self.causes() {
                stderr_line(format_args!("  caused by: {}", one_line(cause)));
            }
        }
        ExitCode::from(self.exit_code)
    }
}

/// Print `message` as the binary's one-line error on stderr: `fly-oidc: error: MESSAGE`.
pub fn error_line(message: impl std::fmt::Display) {
    stderr_line(format_args!("fly-oidc: error: {}", one_line(message)));
}

/// `text` with each control character escaped (`\n`, `\u{1b}`): a value quoted in an error or
/// a doctor step (a path with a newline, an escape sequence) can neither start a line of its
/// own nor drive the terminal.
pub fn one_line(text: impl std::fmt::Display) -> String {
    let mut line = String::new();
    for c in text.to_string().chars() {
        match c.is_control() {
            true => line.extend(c.escape_default()),
            false => line.push(c),
        }
    }
    line
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
/// The AWS SDK's shared-config code (`aws_runtime`, `aws_config`) is silenced at every level:
/// its lines can quote lines of the AWS config file, which may hold secret keys. fly-oidc
/// reads that file itself and names a bad file in its own error.
///
/// Fails when the log file cannot be opened (an invalid setting).
pub fn init_logging(globals: &Globals, quiet: bool) -> Result<(), BuildError> {
    const DEBUG: &str = "warn,aws_runtime=off,aws_config=off,fly_oidc=debug,fly_oidc_aws=debug,\
                         fly_oidc_gcp=debug,fly_oidc_cli=debug,fly_oidc_server=debug";
    const WARN: &str = "warn,aws_runtime=off,aws_config=off";
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
        let level = if globals.verbose { DEBUG } else { WARN };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
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
    // A named pipe would block the command until a reader comes; a socket cannot be opened.
    if let Some(why) = fly_oidc::fs::not_replaceable(path, true) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The exit status when stdout was closed under us (`| head`): a process killed by `SIGPIPE`
/// shows as 128 + 13 in a shell.
const EXIT_BROKEN_PIPE: u8 = 141;

/// The step of a write to a closed stdout: reported by the exit status alone.
const STDOUT_CLOSED: &str = "stdout closed";

/// Write `parts` to stdout and flush. A failed write is an error; a closed pipe (the reader,
/// such as `head`, went away) is one that prints nothing and exits 141, as Unix tools do.
pub fn print_stdout(parts: &[&str]) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    parts
        .iter()
        .try_for_each(|part| stdout.write_all(part.as_bytes()))
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => {
                CliError::new(STDOUT_CLOSED, e).with_exit_code(EXIT_BROKEN_PIPE)
            }
            _ => CliError::new("writing to stdout", e),
        })
}

/// The most characters of a value that an error line quotes ([`shown_value`]).
const SHOWN_VALUE_MAX: usize = 200;

/// `value` as an error line quotes it: in double quotes, escaped (a newline shows as `\n`),
/// and cut after 200 characters, with its length: `"aaa…" (100000 characters)`.
pub fn shown_value(value: &str) -> String {
    let length = value.chars().count();
    match length > SHOWN_VALUE_MAX {
        true => format!(
            "{:?} ({length} characters)",
            fly_oidc::truncate(value, SHOWN_VALUE_MAX)
        ),
        false => format!("{value:?}"),
    }
}

/// Write one line to stderr, ignoring a failed write: a closed or full stderr (`2>/dev/full`, a
/// reader that went away) must not turn a result into a panic (`eprintln!` panics there).
pub fn stderr_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::shown_value;

    #[test]
    fn an_error_line_escapes_control_characters() {
        assert_eq!(
            super::one_line("a\x1b[31mb\nfly-oidc: c\td"),
            "a\\u{1b}[31mb\\nfly-oidc: c\\td"
        );
        assert_eq!(super::one_line("é \"ok\""), "é \"ok\"");
    }

    #[test]
    fn shown_value_cuts_a_long_value_with_its_length() {
        assert_eq!(shown_value("a\nb"), "\"a\\nb\"");
        let long = "é".repeat(100_000);
        assert_eq!(
            shown_value(&long),
            format!("\"{}…\" (100000 characters)", "é".repeat(200))
        );
    }
}
