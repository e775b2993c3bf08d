//! `fly-oidc gcp ...`: Google executable-sourced credentials, credential configurations and
//! access tokens through Workload Identity Federation.

use crate::common::{CliError, Globals};
use clap::{Args, Subcommand};
use fly_oidc::{Env, FlyToken};
use fly_oidc_gcp::{
    DEFAULT_IAM_URL, DEFAULT_STS_URL, ENV_PROVIDER, ENV_SERVICE_ACCOUNT, GcpTokenProvider,
    TOKEN_TYPE_JWT, WorkloadIdentityProvider,
};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Set by Google's libraries when they run an executable: the STS audience.
const ENV_GOOGLE_AUDIENCE: &str = "GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE";
/// Set by Google's libraries: where the executable should also write its response.
const ENV_GOOGLE_OUTPUT_FILE: &str = "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE";
/// Set by Google's libraries: the subject token type they expect.
const ENV_GOOGLE_TOKEN_TYPE: &str = "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE";
/// Set by Google's libraries: `1` in interactive mode (not supported).
const ENV_GOOGLE_INTERACTIVE: &str = "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE";
/// The timeout written into credential configurations (Google allows 5000..=120000).
const EXECUTABLE_TIMEOUT_MILLIS: u64 = 30_000;

/// Google Cloud subcommands.
#[derive(Debug, Subcommand)]
pub enum GcpCommand {
    /// Print a Google executable-sourced credential response with a fresh Fly token
    /// (run by Google's client libraries and gcloud through a credential configuration).
    Executable(ExecutableArgs),
    /// Write an `external_account` credential configuration that runs `fly-oidc gcp executable`,
    /// for every Google SDK and gcloud.
    CredentialConfig(CredentialConfigArgs),
    /// Print a Google access token: Fly token, STS exchange, optional impersonation.
    AccessToken(AccessTokenArgs),
}

impl GcpCommand {
    /// Whether the command must keep stderr silent on success.
    pub fn is_quiet(&self) -> bool {
        matches!(self, GcpCommand::Executable(_))
    }
}

/// Flags of `fly-oidc gcp executable`.
#[derive(Debug, Args)]
pub struct ExecutableArgs {
    /// The Fly token audience [default: from GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE, with `//` as `https://`]
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
}

/// Flags of `fly-oidc gcp credential-config`.
#[derive(Debug, Args)]
pub struct CredentialConfigArgs {
    /// The workload identity pool provider, projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id> [env: FLY_OIDC_GCP_PROVIDER]
    #[arg(long, value_name = "PROVIDER")]
    provider: Option<String>,
    /// Impersonate this service account [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    #[arg(long, value_name = "EMAIL")]
    service_account: Option<String>,
    /// Write the configuration to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The STS token endpoint
    #[arg(long, value_name = "URL", default_value = DEFAULT_STS_URL)]
    sts_url: String,
    /// The IAM Credentials base URL
    #[arg(long, value_name = "URL", default_value = DEFAULT_IAM_URL)]
    iam_url: String,
    /// Lifetime of impersonated tokens, in seconds (600..=43200; Google's default is 3600)
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(600..=43200))]
    lifetime_seconds: Option<u32>,
    /// Let the libraries reuse a Fly token until it expires: `fly-oidc gcp executable` also
    /// writes its answer to this file (mode 0600), and the libraries read it before running
    /// the executable again (`credential_source.executable.output_file`)
    #[arg(long, value_name = "FILE")]
    token_cache_file: Option<PathBuf>,
}

/// Flags of `fly-oidc gcp access-token`.
#[derive(Debug, Args)]
pub struct AccessTokenArgs {
    /// The workload identity pool provider [env: FLY_OIDC_GCP_PROVIDER]
    #[arg(long, value_name = "PROVIDER")]
    provider: Option<String>,
    /// Impersonate this service account [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    #[arg(long, value_name = "EMAIL")]
    service_account: Option<String>,
    /// The Fly token audience [default: https://iam.googleapis.com/<provider>]
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// OAuth scope (repeatable) [default: https://www.googleapis.com/auth/cloud-platform]
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The STS token endpoint
    #[arg(long, value_name = "URL", default_value = DEFAULT_STS_URL)]
    sts_url: String,
    /// The IAM Credentials base URL
    #[arg(long, value_name = "URL", default_value = DEFAULT_IAM_URL)]
    iam_url: String,
    /// Lifetime of impersonated tokens, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(60..=43200))]
    lifetime_seconds: u64,
    /// Print JSON (`access_token`, `token_type`, `expires_in`, `expire_time`) instead of the bare token
    #[arg(long)]
    json: bool,
}

pub async fn run(globals: &Globals, cmd: GcpCommand) -> Result<(), CliError> {
    match cmd {
        GcpCommand::Executable(args) => executable(globals, args).await,
        GcpCommand::CredentialConfig(args) => credential_config(globals, args),
        GcpCommand::AccessToken(args) => access_token(globals, args).await,
    }
}

fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::new("writing to stdout", e))
}

#[allow(clippy::disallowed_methods)] // the CLI compares expiry with the real clock
fn now() -> SystemTime {
    SystemTime::now()
}

// ---------------------------------------------------------------------------------------
// gcp executable

/// A failed executable run: Google's `code` and a message.
struct ExecFailure {
    code: &'static str,
    message: String,
}

fn fly_failure(err: fly_oidc::Error) -> ExecFailure {
    use fly_oidc::ErrorKind as K;
    let code = match err.kind() {
        K::NotOnFly => "NOT_ON_FLY",
        K::InvalidConfiguration => "INVALID_CONFIGURATION",
        K::PermissionDenied => "PERMISSION_DENIED",
        K::Rejected => "FLY_API_REJECTED",
        K::Transport => "FLY_API_UNAVAILABLE",
        K::MalformedToken => "MALFORMED_TOKEN",
        _ => "FLY_TOKEN_FAILED",
    };
    ExecFailure {
        code,
        message: format!(
            "getting a Fly OIDC token failed: {}",
            fly_oidc::redact_jwts(err.message())
        ),
    }
}

fn executable_audience(args: &ExecutableArgs, env: &Env) -> Result<String, ExecFailure> {
    if let Some(aud) = args.audience.as_deref().filter(|a| !a.trim().is_empty()) {
        return Ok(aud.trim().to_owned());
    }
    if let Some(aud) = env.get(ENV_GOOGLE_AUDIENCE) {
        return Ok(fly_oidc_gcp::fly_audience_from_google(&aud));
    }
    if let Some(provider) = env.get(ENV_PROVIDER) {
        return WorkloadIdentityProvider::parse(&provider)
            .map(|p| p.token_audience())
            .map_err(|e| ExecFailure {
                code: "INVALID_CONFIGURATION",
                message: e.to_string(),
            });
    }
    Err(ExecFailure {
        code: "MISSING_AUDIENCE",
        message: format!(
            "no audience: run this through a Google credential configuration (which sets {ENV_GOOGLE_AUDIENCE}), \
             or pass --audience, or set {ENV_PROVIDER}"
        ),
    })
}

async fn executable_token(globals: &Globals, args: &ExecutableArgs) -> Result<Value, ExecFailure> {
    let env = globals.env();
    if let Some(kind) = env.get(ENV_GOOGLE_TOKEN_TYPE)
        && kind != TOKEN_TYPE_JWT
        && kind != "urn:ietf:params:oauth:token-type:id_token"
    {
        return Err(ExecFailure {
            code: "UNSUPPORTED_TOKEN_TYPE",
            message: format!(
                "the credential configuration asks for subject_token_type {kind:?}; Fly tokens are {TOKEN_TYPE_JWT}"
            ),
        });
    }
    if env.get(ENV_GOOGLE_INTERACTIVE).as_deref() == Some("1") {
        return Err(ExecFailure {
            code: "INTERACTIVE_UNSUPPORTED",
            message: "interactive mode is not supported; Fly tokens need no user interaction"
                .into(),
        });
    }
    let audience = executable_audience(args, &env)?;
    let client = globals.fly_client().map_err(|e| ExecFailure {
        code: "INVALID_CONFIGURATION",
        message: e.line(),
    })?;
    let token: FlyToken = client
        .fetch_token(Some(&audience))
        .await
        .map_err(fly_failure)?;
    let mut response = json!({
        "version": 1,
        "success": true,
        "token_type": TOKEN_TYPE_JWT,
        "id_token": token.expose_jwt(),
    });
    if let Some(exp) = token.claims().exp {
        response["expiration_time"] = json!(exp);
    }
    Ok(response)
}

async fn executable(globals: &Globals, args: ExecutableArgs) -> Result<(), CliError> {
    let env = globals.env();
    let answer = executable_token(globals, &args).await.and_then(|response| {
        let text = response.to_string();
        if let Some(path) = env.get(ENV_GOOGLE_OUTPUT_FILE) {
            write_private(Path::new(&path), &text).map_err(|e| ExecFailure {
                code: "OUTPUT_FILE_UNWRITABLE",
                message: format!(
                    "could not write GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE {path}: {e}; fix the credential configuration's output_file (or remove it)"
                ),
            })?;
        }
        Ok(text)
    });
    match answer {
        Ok(text) => print_stdout(&text),
        Err(failure) => {
            let text = json!({
                "version": 1,
                "success": false,
                "code": failure.code,
                "message": failure.message,
            })
            .to_string();
            // Google's libraries read the failure from stdout; the exit status says it failed.
            print_stdout(&text)?;
            Err(CliError::new("gcp executable", failure.message))
        }
    }
}

/// Write `text` to `path` atomically (a temporary file in the same directory, then
/// rename), readable only by the owner.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // tempfile creates files with mode 0600.
    let mut file = tempfile::Builder::new()
        .prefix(".fly-oidc-")
        .tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// gcp credential-config

fn url_base(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (host_end > 0).then(|| &url[..scheme_end + host_end])
}

fn credential_config(globals: &Globals, args: CredentialConfigArgs) -> Result<(), CliError> {
    let env = globals.env();
    let raw_provider = args
        .provider
        .clone()
        .or_else(|| env.get(ENV_PROVIDER))
        .ok_or_else(|| {
            CliError::usage(format!(
                "--provider is required (or set {ENV_PROVIDER}): projects/<project-number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
            ))
        })?;
    let provider = WorkloadIdentityProvider::parse(&raw_provider)
        .map_err(|e| CliError::new("configuration", e))?;
    let service_account = args
        .service_account
        .clone()
        .or_else(|| env.get(ENV_SERVICE_ACCOUNT));
    // Check the URLs and the service account the way the provider will.
    let mut check = GcpTokenProvider::builder()
        .env(env.clone())
        // Not used: nothing is fetched here.
        .fly_client(
            fly_oidc::FlyOidcClient::builder()
                .token_file("/dev/null")
                .build()
                .map_err(|e| CliError::new("configuration", e))?,
        )
        .provider(provider.name())
        .sts_url(&args.sts_url)
        .iam_url(&args.iam_url);
    if let Some(sa) = &service_account {
        check = check.service_account(sa);
    }
    if let Some(secs) = args.lifetime_seconds {
        check = check.lifetime(std::time::Duration::from_secs(secs.into()));
    }
    let checked = check
        .build()
        .map_err(|e| CliError::new("configuration", e))?;
    let sts_base = url_base(&args.sts_url)
        .ok_or_else(|| CliError::usage(format!("--sts-url {:?} has no host", args.sts_url)))?;

    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| CliError::new("finding this binary's path", e))?;
    let exe = exe.to_str().ok_or_else(|| {
        CliError::new(
            "finding this binary's path",
            format!("the path {exe:?} is not UTF-8"),
        )
    })?;
    let mut command = vec![exe.to_owned(), "gcp".into(), "executable".into()];
    // Keep explicit token-source flags, so the executable finds the token the same way.
    if let Some(path) = &globals.token_file {
        command.push("--token-file".into());
        command.push(absolute(path)?);
    }
    if let Some(path) = &globals.socket {
        command.push("--socket".into());
        command.push(absolute(path)?);
    }
    if let Some(url) = &globals.api_url {
        command.push("--api-url".into());
        command.push(url.clone());
    }
    if command
        .iter()
        .any(|part| part.chars().any(char::is_whitespace))
    {
        eprintln!(
            "fly-oidc: warning: the command {:?} contains whitespace; some Google libraries split the command on \
             whitespace and will fail to run it. Install fly-oidc (or link it) under a path without spaces.",
            command.join(" ")
        );
    }

    let mut config = json!({
        "type": "external_account",
        "audience": provider.sts_audience(),
        "subject_token_type": TOKEN_TYPE_JWT,
        "token_url": args.sts_url,
        "token_info_url": format!("{sts_base}/v1/introspect"),
        "credential_source": {
            "executable": {
                "command": command.join(" "),
                "timeout_millis": EXECUTABLE_TIMEOUT_MILLIS,
            }
        },
    });
    if let Some(path) = &args.token_cache_file {
        config["credential_source"]["executable"]["output_file"] = json!(absolute(path)?);
    }
    if let Some(sa) = checked.service_account() {
        config["service_account_impersonation_url"] = json!(format!(
            "{}/v1/projects/-/serviceAccounts/{sa}:generateAccessToken",
            args.iam_url.trim_end_matches('/')
        ));
        if let Some(secs) = args.lifetime_seconds {
            config["service_account_impersonation"] = json!({ "token_lifetime_seconds": secs });
        }
    }
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| CliError::new("writing the configuration", e))?;
    let shown = match &args.output {
        Some(path) => {
            std::fs::write(path, format!("{text}\n")).map_err(|e| {
                CliError::new(
                    "writing the configuration",
                    format!("{}: {e}", path.display()),
                )
            })?;
            let shown = absolute(path).unwrap_or_else(|_| path.display().to_string());
            eprintln!("fly-oidc: wrote {shown}");
            shown
        }
        None => {
            print_stdout(&text)?;
            "<this file>".to_owned()
        }
    };
    eprintln!(
        "fly-oidc: to use it (on a Fly Machine):\n  \
         export GOOGLE_APPLICATION_CREDENTIALS={shown}\n  \
         export GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1   # Google's libraries refuse to run executables without it\n  \
         gcloud auth login --cred-file={shown}              # for gcloud (also needs the variable above)"
    );
    Ok(())
}

fn absolute(path: &Path) -> Result<String, CliError> {
    let abs = std::path::absolute(path).map_err(|e| CliError::new("resolving a path", e))?;
    abs.to_str()
        .map(str::to_owned)
        .ok_or_else(|| CliError::new("resolving a path", format!("the path {abs:?} is not UTF-8")))
}

// ---------------------------------------------------------------------------------------
// gcp access-token

async fn access_token(globals: &Globals, args: AccessTokenArgs) -> Result<(), CliError> {
    let mut builder = GcpTokenProvider::builder()
        .env(globals.env())
        .fly_client(globals.fly_client()?)
        .sts_url(&args.sts_url)
        .iam_url(&args.iam_url)
        .lifetime(std::time::Duration::from_secs(args.lifetime_seconds));
    if let Some(p) = &args.provider {
        builder = builder.provider(p);
    }
    if let Some(sa) = &args.service_account {
        builder = builder.service_account(sa);
    }
    if let Some(aud) = &args.audience {
        builder = builder.audience(aud);
    }
    if !args.scopes.is_empty() {
        builder = builder.scopes(args.scopes.iter().cloned());
    }
    let provider = builder
        .build()
        .map_err(|e| CliError::new("configuration", e))?;
    let token = provider.fetch_access_token().await.map_err(|e| {
        use fly_oidc_gcp::ErrorKind as K;
        let step = match e.kind() {
            K::FlyToken => "Fly token",
            K::InvalidConfiguration => "configuration",
            K::Rejected => "Google STS token exchange",
            K::PermissionDenied => "service account impersonation",
            _ => "getting a Google access token",
        };
        CliError::new(step, e)
    })?;
    if args.json {
        let expires_in = token
            .expires_at()
            .duration_since(now())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let out = json!({
            "access_token": token.expose_secret(),
            "token_type": token.token_type(),
            "expires_in": expires_in,
            "expire_time": fly_oidc_gcp::format_rfc3339(token.expires_at()),
            "expire_time_unix": token.expires_at().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        });
        print_stdout(&out.to_string())
    } else {
        print_stdout(token.expose_secret())
    }
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
}
