//! Google's executable-sourced credentials: the response an executable prints, and the
//! `external_account` credential configuration that runs one.
//!
//! Google's client libraries and `gcloud` run the command of a credential configuration's
//! `credential_source.executable` and read a JSON response from its stdout:
//!
//! - success: `{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt","id_token":"<JWT>","expiration_time":<exp, Unix seconds>}`
//! - failure: `{"version":1,"success":false,"code":"<CODE>","message":"<what to do>"}`
//!
//! They describe the request in `GOOGLE_EXTERNAL_ACCOUNT_*` variables. [`respond`] does the
//! whole run for a Fly token (check the request, fetch the token, write
//! `GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE` atomically with mode 0600); the caller prints the
//! answer. [`credential_config`] builds the configuration that runs such a command.

use crate::TOKEN_TYPE_JWT;
use crate::resource::WorkloadIdentityProvider;
use crate::resource::fly_audience_from_google;
use crate::settings::{ENV_PROVIDER, LIFETIME, Settings};
use fly_oidc::{
    BuildError, Env, Error, ErrorKind, FlyOidcClient, FlyToken, Message, Naming, Origin, Setting,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// Set by Google's libraries when they run an executable: the STS audience.
const ENV_GOOGLE_AUDIENCE: &str = "GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE";
/// Set by Google's libraries: where the executable should also write its response.
const ENV_GOOGLE_OUTPUT_FILE: &str = "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE";
/// Set by Google's libraries: the subject token type they expect.
const ENV_GOOGLE_TOKEN_TYPE: &str = "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE";
/// Set by Google's libraries: `1` in interactive mode (not supported).
const ENV_GOOGLE_INTERACTIVE: &str = "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE";
/// The `timeout_millis` written into credential configurations (Google allows 5000..=120000).
pub(crate) const TIMEOUT_MILLIS: u64 = 30_000;

/// A failed executable run: Google's failure `code` and a message that says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// An upper-case code such as `NOT_ON_FLY` or `INVALID_CONFIGURATION`.
    pub code: &'static str,
    /// What failed and what to do (the settings it names as data); never a token.
    pub message: Message,
    /// The token client's own message, when getting the Fly token failed ([`Failure::fly`]).
    fly_token_message: Option<Message>,
}

impl Failure {
    /// The code of a configuration that cannot work (also what a front end reports for a
    /// failure of its own, such as a Fly token client it cannot make).
    pub const INVALID_CONFIGURATION: &'static str = "INVALID_CONFIGURATION";
    /// The code when no audience was given, set by Google or found in `FLY_OIDC_GCP_PROVIDER`.
    pub const MISSING_AUDIENCE: &'static str = "MISSING_AUDIENCE";

    /// A failure with `code` and `message` (its text passed through
    /// [`fly_oidc::redact_jwts`]).
    pub fn new(code: &'static str, message: impl Into<Message>) -> Self {
        Self {
            code,
            message: message.into(),
            fly_token_message: None,
        }
    }

    /// A failure to get the Fly token, with a code for each [`ErrorKind`].
    pub fn fly(err: &Error) -> Self {
        let code = match err.kind() {
            ErrorKind::NotOnFly => "NOT_ON_FLY",
            ErrorKind::InvalidConfiguration => Self::INVALID_CONFIGURATION,
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::FlyApi => "FLY_API_REJECTED",
            ErrorKind::Transient => "FLY_API_UNAVAILABLE",
            ErrorKind::MalformedToken => "MALFORMED_TOKEN",
            ErrorKind::StaleToken => "STALE_TOKEN",
            _ => "FLY_TOKEN_FAILED",
        };
        let own = err.named_message().clone();
        Self {
            fly_token_message: Some(own.clone()),
            ..Self::new(
                code,
                Message::from("getting a Fly OIDC token failed: ").append(own),
            )
        }
    }

    /// When getting the Fly token failed ([`Failure::fly`]): the token client's message,
    /// without `getting a Fly OIDC token failed: `, for a front end that names the step
    /// itself. `None` for every other failure.
    pub fn fly_token_message(&self) -> Option<&Message> {
        self.fly_token_message.as_ref()
    }

    /// The failure response, `{"version":1,"success":false,"code":..,"message":..}`, the
    /// settings in the message named as `naming` says.
    pub fn to_json(&self, naming: Naming) -> String {
        json!({
            "version": 1,
            "success": false,
            "code": self.code,
            "message": self.message.render(naming),
        })
        .to_string()
    }
}

/// The success response for `token`: `{"version":1,"success":true,"token_type":..,"id_token":..,"expiration_time":..}`
/// (`expiration_time` only when the token has an `exp`).
pub(crate) fn success_json(token: &FlyToken) -> String {
    let mut response = json!({
        "version": 1,
        "success": true,
        "token_type": TOKEN_TYPE_JWT,
        "id_token": token.expose_jwt(),
    });
    if let Some(exp) = token.claims().exp {
        response["expiration_time"] = json!(exp);
    }
    response.to_string()
}

/// The Fly token audience for this run: `audience` when given, else
/// `GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE` (`//iam.googleapis.com/...` as
/// `https://iam.googleapis.com/...`), else the default audience of `FLY_OIDC_GCP_PROVIDER`.
/// Fails when Google asks for a token type or mode a Fly token cannot serve.
pub(crate) fn request_audience(audience: Option<&str>, env: &Env) -> Result<String, Failure> {
    if let Some(kind) = env.get(ENV_GOOGLE_TOKEN_TYPE)
        && kind != TOKEN_TYPE_JWT
        && kind != "urn:ietf:params:oauth:token-type:id_token"
    {
        return Err(Failure::new(
            "UNSUPPORTED_TOKEN_TYPE",
            format!(
                "the credential configuration asks for subject_token_type {:?}; Fly tokens are {TOKEN_TYPE_JWT}",
                fly_oidc::truncate(&kind, 100)
            ),
        ));
    }
    if env.get(ENV_GOOGLE_INTERACTIVE).as_deref() == Some("1") {
        return Err(Failure::new(
            "INTERACTIVE_UNSUPPORTED",
            "interactive mode is not supported; Fly tokens need no user interaction",
        ));
    }
    // The audience rule of every setting (a control character inside is refused).
    let checked = |aud: &str, from: &str| {
        fly_oidc::check_audience(crate::settings::AUDIENCE, aud, &Origin::Builder)
            .map(|()| aud.trim().to_owned())
            .map_err(|e| {
                Failure::new(
                    Failure::INVALID_CONFIGURATION,
                    format!("{} (from {from})", e.reason()),
                )
            })
    };
    if let Some(aud) = audience.filter(|a| !a.trim().is_empty()) {
        return checked(aud, "the audience given");
    }
    if let Some(aud) = env.get(ENV_GOOGLE_AUDIENCE) {
        return checked(&aud, ENV_GOOGLE_AUDIENCE).map(|aud| fly_audience_from_google(&aud));
    }
    if let Some(provider) = env.get(ENV_PROVIDER) {
        return WorkloadIdentityProvider::parse_from(&provider, Origin::Env(ENV_PROVIDER.into()))
            .map(|p| p.token_audience())
            .map_err(|e| Failure::new(Failure::INVALID_CONFIGURATION, e.to_string()));
    }
    Err(Failure::new(
        Failure::MISSING_AUDIENCE,
        format!(
            "no audience: run this through a Google credential configuration (which sets {ENV_GOOGLE_AUDIENCE}), \
             set {ENV_PROVIDER}, or give the audience explicitly"
        ),
    ))
}

/// One executable run: check the request (its audience), make the Fly token client
/// with `fly` (its failure is the run's failure), fetch a token, and answer with the success response, also written to
/// `GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE` (atomically, mode 0600) when that is set. The
/// caller prints the answer, or [`Failure::to_json`].
pub async fn respond(
    fly: impl FnOnce() -> Result<FlyOidcClient, Failure>,
    audience: Option<&str>,
    env: &Env,
) -> Result<String, Failure> {
    let audience = request_audience(audience, env)?;
    let token = fly()?
        .fetch_token(Some(&audience))
        .await
        .map_err(|e| Failure::fly(&e))?;
    let text = success_json(&token);
    if let Some(path) = env.get(ENV_GOOGLE_OUTPUT_FILE) {
        // The error names the file given (`<path>: <reason>`), not the temporary file.
        write_file(Path::new(&path), &text, 0o600).map_err(|e| {
            Failure::new(
                "OUTPUT_FILE_UNWRITABLE",
                format!(
                    "could not write {ENV_GOOGLE_OUTPUT_FILE} {e}; fix the credential configuration's output_file (or remove it)"
                ),
            )
        })?;
    }
    Ok(text)
}

/// `scheme://host[:port]` of `url`.
fn url_base(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (host_end > 0).then(|| &url[..scheme_end + host_end])
}

/// An `external_account` credential configuration for `settings` whose executable is
/// `command` (run with a timeout of 30 s):
///
/// - `audience` `//iam.googleapis.com/<provider>`, `subject_token_type` JWT, `token_url` the
///   STS URL and `token_info_url` `<STS base>/v1/introspect` (gcloud asks it for the account);
/// - with a service account, `service_account_impersonation_url`, and
///   `service_account_impersonation.token_lifetime_seconds` when a lifetime is set (600 s to
///   12 h here, Google's range for configurations);
/// - `credential_source.executable.output_file` when `output_file` is given: the libraries
///   reuse the response stored there until it expires.
pub fn credential_config(
    settings: &Settings,
    command: &str,
    output_file: Option<&str>,
) -> Result<Value, BuildError> {
    let sts_base = url_base(settings.sts_url()).ok_or_else(|| {
        BuildError::invalid(
            crate::settings::STS_URL,
            Origin::Builder,
            "the STS URL has no host",
        )
    })?;
    let mut config = json!({
        "type": "external_account",
        "audience": settings.provider().sts_audience(),
        "subject_token_type": TOKEN_TYPE_JWT,
        "token_url": settings.sts_url(),
        "token_info_url": format!("{sts_base}/v1/introspect"),
        "credential_source": {
            "executable": {
                "command": command,
                "timeout_millis": TIMEOUT_MILLIS,
            }
        },
    });
    if let Some(path) = output_file {
        config["credential_source"]["executable"]["output_file"] = json!(path);
    }
    if let Some(lifetime) = settings.lifetime()
        && lifetime < Duration::from_secs(600)
    {
        return Err(BuildError::invalid(
            LIFETIME,
            Origin::Builder,
            format!(
                "a credential configuration's token lifetime must be between 600 s and 12 h, not {} s",
                lifetime.as_secs()
            ),
        ));
    }
    if let Some(sa) = settings.service_account() {
        config["service_account_impersonation_url"] =
            json!(settings.iam_method_url(sa, "generateAccessToken"));
        if let Some(lifetime) = settings.lifetime() {
            config["service_account_impersonation"] =
                json!({ "token_lifetime_seconds": lifetime.as_secs() });
        }
    }
    Ok(config)
}

/// The token source a credential configuration's command passes on to `fly-oidc gcp
/// executable`: the values given for the binary's `--token-file`, `--socket` and `--api-url`
/// (variables are not copied: the consumer's environment supplies them when it runs).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenSourceFlags<'a> {
    /// `--token-file`, made absolute in the command.
    pub token_file: Option<&'a Path>,
    /// `--socket`, made absolute in the command.
    pub socket: Option<&'a Path>,
    /// `--api-url`, as given.
    pub api_url: Option<&'a str>,
}

/// Why [`this_binary_config`] could not make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An invalid setting: a token-source setting, a lifetime below 600 s, a path no
    /// consumer can run in a command line (the setting `command`), or a token cache file
    /// that can never be written ([`TOKEN_CACHE_FILE`]).
    #[error(transparent)]
    Setting(#[from] BuildError),
    /// This binary's path could not be found, or is not UTF-8.
    #[error("cannot find this binary's path: {0}")]
    ThisBinary(std::io::Error),
    /// A path given (`source`'s, the output file) could not be made absolute, or is not UTF-8.
    #[error("cannot resolve a path: {0}")]
    Path(std::io::Error),
}

/// The configuration ([`credential_config`]) whose command runs this binary as
/// `<this binary> gcp executable`, with `source`'s flags (paths made absolute, each part
/// quoted for Google's command-line rules) and `output_file` made absolute.
///
/// `fly` is the token client's builder with the same token source as `source`: it is built
/// first, with a stand-in API token (the consumer's environment supplies the real one), so a
/// bad token-source setting is a [`BuildError`] here rather than a failure inside Google's
/// library later. For the same reason an `output_file` that is a directory, or whose
/// directory does not exist, is an invalid [`TOKEN_CACHE_FILE`] setting: every run of the
/// executable would fail to write it.
pub fn this_binary_config(
    settings: &Settings,
    fly: fly_oidc::Builder,
    source: TokenSourceFlags<'_>,
    output_file: Option<&Path>,
) -> Result<Value, ConfigError> {
    fly.api_token("unused: only the URL is checked").build()?;
    let command = ExecutableCommand::this_binary(["gcp", "executable"])
        .map_err(ConfigError::ThisBinary)?
        .path_flag("--token-file", source.token_file)
        .and_then(|c| c.path_flag("--socket", source.socket))
        .map_err(ConfigError::Path)?
        .flag("--api-url", source.api_url)
        .to_line()?;
    if let Some(path) = output_file {
        check_token_cache_file(path)?;
    }
    let output_file = output_file.map(absolute).transpose();
    let output_file = output_file.map_err(ConfigError::Path)?;
    Ok(credential_config(
        settings,
        &command,
        output_file.as_deref(),
    )?)
}

/// The command a credential configuration runs: `program` (this binary, absolute and UTF-8)
/// and its arguments (such as `gcp executable` and the token-source flags the binary was
/// given, so that the executable finds the token the same way).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExecutableCommand {
    program: String,
    args: Vec<String>,
}

impl ExecutableCommand {
    /// `program` with `args`.
    pub(crate) fn new<'a>(program: &str, args: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            program: program.to_owned(),
            args: args.into_iter().map(str::to_owned).collect(),
        }
    }

    /// This binary (its canonical path, which must be UTF-8) with `args`.
    pub(crate) fn this_binary<'a>(
        args: impl IntoIterator<Item = &'a str>,
    ) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?.canonicalize()?;
        let exe = exe.to_str().ok_or_else(|| not_utf8(&exe))?;
        Ok(Self::new(exe, args))
    }

    /// Add `flag` and `value` when a value is given.
    pub(crate) fn flag(mut self, flag: &str, value: Option<&str>) -> Self {
        if let Some(value) = value {
            self.args.extend([flag.to_owned(), value.to_owned()]);
        }
        self
    }

    /// Add `flag` and `path` made [`absolute`] when a path is given (the libraries run the
    /// command from their own working directory).
    pub(crate) fn path_flag(self, flag: &str, path: Option<&Path>) -> std::io::Result<Self> {
        let path = path.map(absolute).transpose()?;
        Ok(self.flag(flag, path.as_deref()))
    }

    /// The one-line command, each part quoted so that Python google-auth (shell rules) and
    /// Node's google-auth-library (whitespace outside double quotes) both run it (the rules
    /// are in this crate's `command_line.rs`). A part neither can carry is an invalid setting
    /// (`command`) that says to move the binary (or file) to a plain path.
    pub(crate) fn to_line(&self) -> Result<String, BuildError> {
        let parts = std::iter::once(&self.program).chain(&self.args);
        crate::command_line::join(parts.map(String::as_str)).map_err(|e| {
            let what = if e.part == self.program {
                "this binary's path"
            } else {
                "a path in the command"
            };
            // Where the binary lives is the setting at fault, though no flag sets it.
            BuildError::invalid(
                fly_oidc::Setting::new("command", None),
                Origin::Builder,
                format!(
                    "cannot write a command line that runs this binary: {what} {e}; move or copy the binary (and any file the command names) to a plain path such as /usr/local/bin/fly-oidc and run it from there"
                ),
            )
        })
    }
}

/// `path` made absolute (against the working directory, without resolving links), as UTF-8;
/// an error when it is not UTF-8.
pub(crate) fn absolute(path: &Path) -> std::io::Result<String> {
    let abs = std::path::absolute(path)?;
    abs.to_str()
        .map(str::to_owned)
        .ok_or_else(|| not_utf8(&abs))
}

fn not_utf8(path: &Path) -> std::io::Error {
    let message = format!("the path {path:?} is not UTF-8");
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// The setting of [`write_config`]'s path (the binary's `--output`; no variable).
pub(crate) const OUTPUT: Setting = Setting::new("output", None).flag("output");

/// The setting of [`this_binary_config`]'s `output_file`, the file the executable also writes
/// its response to (the binary's `--token-cache-file`; no variable).
pub const TOKEN_CACHE_FILE: Setting =
    Setting::new("token_cache_file", None).flag("token-cache-file");

/// A token cache file the executable can create: not a directory, in a directory that exists.
/// Whether that directory is writable is left to run time (the consumer may run as another
/// user).
fn check_token_cache_file(path: &Path) -> Result<(), BuildError> {
    let shown = path.display();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let why = if path.is_dir() {
        format!(
            "the token cache file {shown} is a directory; give a file path in it, such as {}",
            path.join("gcp-token.json").display()
        )
    } else if let Some(why) = fly_oidc::fs::not_replaceable(path, false) {
        format!("the token cache file {shown} {why}")
    } else if !dir.is_dir() {
        let what = match dir.exists() {
            true => "is not a directory",
            false => "does not exist",
        };
        format!(
            "the token cache file {shown} cannot be created: {} {what}; create that directory \
             first or give a file path in an existing directory",
            dir.display()
        )
    } else {
        return Ok(());
    };
    Err(BuildError::invalid(TOKEN_CACHE_FILE, Origin::Builder, why))
}

/// Write a configuration's `text` (its JSON, pretty, with a final newline) to `path` atomically (a temporary file
/// renamed over it, mode 0644: the configuration holds no secret); a symlink, device, pipe or
/// directory at `path` is refused, never replaced nor written through. Returns the path to show (absolute when it can be). A
/// path that cannot be written is an invalid `--output` setting that names the path and the
/// system's reason.
pub fn write_config(path: &Path, text: &str) -> Result<String, BuildError> {
    write_file(path, text, 0o644).map_err(|e| {
        let why =
            format!("cannot write the credential configuration: {e}; give a writable file path");
        BuildError::invalid(OUTPUT, Origin::Builder, why)
    })?;
    Ok(absolute(path).unwrap_or_else(|_| path.display().to_string()))
}

/// Write `text` to `path` atomically with `mode` ([`fly_oidc::fs::write_private`]); the error
/// says `<path>: <the system's reason>`, naming the file given, never the temporary file the
/// write went through.
fn write_file(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let shown = path.display();
    if let Some(why) = fly_oidc::fs::not_replaceable(path, false) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{shown} {why}"),
        ));
    }
    fly_oidc::fs::write_private(path, text.as_bytes(), mode).map_err(|e| {
        // The system's reason, without the temporary file's name the write went through
        // (which the error's own text carries).
        use std::io::ErrorKind as K;
        let reason = match e.kind() {
            K::NotFound => "No such file or directory".to_owned(),
            K::PermissionDenied => "Permission denied".to_owned(),
            K::ReadOnlyFilesystem => "Read-only file system".to_owned(),
            K::NotADirectory => "Not a directory".to_owned(),
            K::StorageFull => "No space left on device".to_owned(),
            kind => kind.to_string(),
        };
        std::io::Error::new(e.kind(), format!("{shown}: {reason}"))
    })
}

/// How to use a credential configuration written to `written` (the path [`write_config`]
/// returns, quoted here for the shell) or, with `None`, printed (`<this file>`): the variables
/// and the gcloud command, as lines for stderr.
pub fn usage_hint(written: Option<&str>) -> String {
    let shown = written.map_or_else(|| "<this file>".to_owned(), shell_word);
    format!(
        "fly-oidc: to use it (on a Fly Machine):\n  \
         export GOOGLE_APPLICATION_CREDENTIALS={shown}\n  \
         export GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1   # Google's libraries refuse to run executables without it\n  \
         gcloud auth login --cred-file={shown}              # for gcloud (also needs the variable above)"
    )
}

/// `path` quoted for the shell lines of [`usage_hint`].
fn shell_word(path: &str) -> String {
    crate::command_line::quote(path).unwrap_or_else(|_| fly_oidc::shell_quote(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_base_keeps_scheme_host_and_port() {
        assert_eq!(
            url_base("https://sts.googleapis.com/v1/token"),
            Some("https://sts.googleapis.com")
        );
        assert_eq!(
            url_base("http://127.0.0.1:8080/v1/token?x=1"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(url_base("http://h"), Some("http://h"));
        assert_eq!(url_base("nope"), None);
        assert_eq!(url_base("http:///x"), None);
    }

    #[test]
    fn the_command_line_quotes_paths_made_absolute_and_refuses_what_no_consumer_can_run() {
        let line = ExecutableCommand::new("/opt/my tools/fly-oidc", ["gcp", "executable"])
            .path_flag("--token-file", Some(Path::new("token")))
            .unwrap()
            .flag("--socket", None)
            .flag("--api-url", Some("http://h"))
            .to_line()
            .unwrap();
        let cwd = std::env::current_dir().unwrap();
        let token = cwd.join("token");
        assert_eq!(
            line,
            format!(
                "\"/opt/my tools/fly-oidc\" gcp executable --token-file {} --api-url http://h",
                crate::command_line::quote(token.to_str().unwrap()).unwrap()
            )
        );
        let err = ExecutableCommand::new("/opt/$x/fly-oidc", [])
            .to_line()
            .unwrap_err();
        assert!(err.to_string().contains("this binary's path"), "{err}");
        let err = ExecutableCommand::new("/bin/f", [])
            .flag("--token-file", Some("/a`b"))
            .to_line()
            .unwrap_err();
        assert!(err.to_string().contains("a path in the command"), "{err}");
        assert_eq!(shell_word("/a b"), "\"/a b\"");
        assert_eq!(shell_word("/a$b"), "'/a$b'");
    }

    #[test]
    fn the_request_is_checked_before_any_token_is_fetched() {
        let env = |pairs: &[(&str, &str)]| Env::from_slice(pairs);
        let err = request_audience(None, &env(&[(ENV_GOOGLE_TOKEN_TYPE, "saml2")])).unwrap_err();
        assert_eq!(err.code, "UNSUPPORTED_TOKEN_TYPE");
        let err = request_audience(None, &env(&[(ENV_GOOGLE_INTERACTIVE, "1")])).unwrap_err();
        assert_eq!(err.code, "INTERACTIVE_UNSUPPORTED");
        assert_eq!(
            request_audience(None, &env(&[])).unwrap_err().code,
            "MISSING_AUDIENCE"
        );
        assert_eq!(
            request_audience(
                Some(" aud "),
                &env(&[(ENV_GOOGLE_AUDIENCE, "//iam.googleapis.com/x")])
            )
            .unwrap(),
            "aud"
        );
        assert_eq!(
            request_audience(
                None,
                &env(&[(ENV_GOOGLE_AUDIENCE, "//iam.googleapis.com/x")])
            )
            .unwrap(),
            "https://iam.googleapis.com/x"
        );
        // A control character in the audience, given or from Google's variable, is refused.
        for (given, google) in [(Some("a\nb"), "//iam.googleapis.com/x"), (None, "a\u{1b}b")] {
            let err = request_audience(given, &env(&[(ENV_GOOGLE_AUDIENCE, google)])).unwrap_err();
            assert_eq!(err.code, "INVALID_CONFIGURATION");
            assert!(
                err.message.to_string().contains("control character"),
                "{err:?}"
            );
        }
        let bad = request_audience(None, &env(&[(ENV_PROVIDER, "projects/x")])).unwrap_err();
        assert_eq!(bad.code, "INVALID_CONFIGURATION");
        assert!(
            bad.message
                .to_string()
                .contains("(from FLY_OIDC_GCP_PROVIDER)"),
            "{bad:?}"
        );
        let json: Value = serde_json::from_str(&bad.to_json(Naming::Builder)).unwrap();
        assert_eq!(json["success"], false);
        assert_eq!(json["code"], "INVALID_CONFIGURATION");
        assert_eq!(bad.fly_token_message(), None);
    }

    /// The configuration runs this binary with the token source given, paths made absolute;
    /// a bad token-source setting is refused before anything is assembled.
    #[test]
    fn this_binarys_configuration_passes_the_token_source_on() {
        let env = || Env::from_slice(&[]);
        let settings = crate::GcpTokenProvider::builder()
            .configure(&fly_oidc::ProviderConfig::default().with_env(env()))
            .provider("projects/1/locations/global/workloadIdentityPools/p/providers/x")
            .settings()
            .unwrap();
        let fly = || {
            FlyOidcClient::builder().configure(&fly_oidc::ProviderConfig::default().with_env(env()))
        };
        let source = TokenSourceFlags {
            token_file: Some(Path::new("token")),
            api_url: Some("https://api.machines.dev"),
            ..TokenSourceFlags::default()
        };
        let fly_with_source = fly()
            .token_file("token")
            .api_url("https://api.machines.dev");
        let config = this_binary_config(
            &settings,
            fly_with_source,
            source,
            Some(Path::new("out.json")),
        )
        .unwrap();
        let executable = &config["credential_source"]["executable"];
        let command = executable["command"].as_str().unwrap();
        let token = absolute(Path::new("token")).unwrap();
        assert!(
            command.ends_with(&format!(
                " gcp executable --token-file {} --api-url https://api.machines.dev",
                crate::command_line::quote(&token).unwrap()
            )),
            "{command}"
        );
        assert_eq!(
            executable["output_file"],
            absolute(Path::new("out.json")).unwrap()
        );
        let bad = this_binary_config(&settings, fly().api_url("ftp://x"), source, None);
        let Err(ConfigError::Setting(bad)) = bad else {
            panic!("{bad:?}")
        };
        assert_eq!(bad.setting().builder_method(), "api_url");
    }

    #[test]
    fn an_unwritable_output_is_an_invalid_output_setting() {
        let dir = std::env::temp_dir();
        let err = write_config(&dir, "{}").unwrap_err();
        assert_eq!(err.setting(), OUTPUT);
        let shown = err.render(Naming::Flags);
        assert!(
            shown.starts_with("cannot write the credential configuration: "),
            "{shown}"
        );
        assert!(
            shown.ends_with("is a directory; give a writable file path (from --output)"),
            "{shown}"
        );
    }

    #[test]
    fn a_fly_token_failure_keeps_the_token_clients_message_apart() {
        let err = Error::new(ErrorKind::NotOnFly, "no Machines API socket at /.fly/api");
        let failure = Failure::fly(&err);
        assert_eq!(failure.code, "NOT_ON_FLY");
        assert_eq!(
            failure.message.to_string(),
            "getting a Fly OIDC token failed: no Machines API socket at /.fly/api"
        );
        let own = failure.fly_token_message().map(ToString::to_string);
        assert_eq!(own.as_deref(), Some("no Machines API socket at /.fly/api"));
    }
}
