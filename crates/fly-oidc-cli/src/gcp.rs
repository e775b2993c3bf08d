//! `fly-oidc gcp ...`: Google executable-sourced credentials, credential configurations and
//! access tokens through Workload Identity Federation.

use crate::common::{CliError, Globals, print_stdout, stderr_line, with};
use clap::{Args, Subcommand};
use fly_oidc::time::{SystemTimeSource, TimeSource};
use fly_oidc_gcp::executable::{self, ConfigError, Failure, TokenSourceFlags};
use fly_oidc_gcp::{GcpTokenProvider, GoogleCall};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Print what to create on Google Cloud: pool, OIDC provider, service account binding.
    Setup(crate::setup::GcpSetupArgs),
    /// Would this attribute condition (CEL) accept this app's token?
    CheckCondition(crate::setup::CheckConditionArgs),
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
    /// The workload identity pool provider, projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id> (required: this flag or its variable) [env: FLY_OIDC_GCP_PROVIDER]
    #[arg(long, value_name = "PROVIDER")]
    provider: Option<String>,
    /// Impersonate this service account [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    #[arg(long, value_name = "EMAIL")]
    service_account: Option<String>,
    /// Write the configuration to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    endpoints: Endpoints,
    /// Lifetime of impersonated tokens, in seconds (600..=43200; Google's default is 3600)
    #[arg(long, value_name = "SECONDS")]
    lifetime_seconds: Option<u64>,
    /// Let the libraries reuse a Fly token until it expires: `fly-oidc gcp executable` also
    /// writes its answer to this file (mode 0600), and the libraries read it before running
    /// the executable again (`credential_source.executable.output_file`)
    #[arg(long, value_name = "FILE")]
    token_cache_file: Option<PathBuf>,
}

/// Google's endpoints.
#[derive(Debug, Args)]
pub struct Endpoints {
    /// The STS token endpoint [env: FLY_OIDC_GCP_STS_URL; default: https://sts.googleapis.com/v1/token]
    #[arg(long, value_name = "URL")]
    sts_url: Option<String>,
    /// The IAM Credentials base URL [env: FLY_OIDC_GCP_IAM_URL; default: https://iamcredentials.googleapis.com]
    #[arg(long, value_name = "URL")]
    iam_url: Option<String>,
}

/// A GCP provider builder with the flags set (each flag onto its builder method).
fn builder(
    globals: &Globals,
    provider: &Option<String>,
    service_account: &Option<String>,
    endpoints: &Endpoints,
    lifetime_seconds: Option<u64>,
) -> fly_oidc_gcp::Builder {
    let b = GcpTokenProvider::builder().env(globals.env());
    let b = with(b, provider.as_ref(), |b, v| b.provider(v));
    let b = with(b, service_account.as_ref(), |b, v| b.service_account(v));
    let b = with(b, endpoints.sts_url.as_ref(), |b, v| b.sts_url(v));
    let b = with(b, endpoints.iam_url.as_ref(), |b, v| b.iam_url(v));
    with(b, lifetime_seconds, |b, v| {
        b.lifetime(Duration::from_secs(v))
    })
}

/// Flags of `fly-oidc gcp access-token`.
#[derive(Debug, Args)]
pub struct AccessTokenArgs {
    /// The workload identity pool provider (required: this flag or its variable) [env: FLY_OIDC_GCP_PROVIDER]
    #[arg(long, value_name = "PROVIDER")]
    provider: Option<String>,
    /// Impersonate this service account [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    #[arg(long, value_name = "EMAIL")]
    service_account: Option<String>,
    /// The Fly token audience [default: https://iam.googleapis.com/<provider>]
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// OAuth scope (repeatable) [env: FLY_OIDC_GCP_SCOPES, comma-separated; default: https://www.googleapis.com/auth/cloud-platform]
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    #[command(flatten)]
    endpoints: Endpoints,
    /// Lifetime of impersonated tokens, in seconds (60..=43200) [default: 3600]
    #[arg(long, value_name = "SECONDS")]
    lifetime_seconds: Option<u64>,
    /// Print JSON (`access_token`, `token_type`, `expires_in`, `expire_time`) instead of the bare token
    #[arg(long)]
    json: bool,
}

pub async fn run(globals: &Globals, cmd: GcpCommand) -> Result<(), CliError> {
    match cmd {
        GcpCommand::Executable(args) => executable(globals, args).await,
        GcpCommand::CredentialConfig(args) => credential_config(globals, args),
        GcpCommand::AccessToken(args) => access_token(globals, args).await,
        GcpCommand::Setup(args) => crate::setup::gcp_setup(globals, args).await,
        GcpCommand::CheckCondition(args) => crate::setup::check_condition(globals, args).await,
    }
}

async fn executable(globals: &Globals, args: ExecutableArgs) -> Result<(), CliError> {
    let fly = || {
        globals
            .fly_client()
            .map_err(|e| Failure::new("INVALID_CONFIGURATION", e.line()))
    };
    match executable::respond(fly, args.audience.as_deref(), &globals.env()).await {
        Ok(text) => print_stdout(&[&text, "\n"]),
        Err(mut failure) => {
            if failure.code == "MISSING_AUDIENCE" {
                failure.message.push_str(" with --audience");
            }
            // Settings named by their flags, as in every other command's messages.
            failure.message = fly_oidc::rename_settings(&failure.message, &|method| {
                crate::common::flag(method, false)
            });
            // Google's libraries read the failure from stdout; the exit status says it failed.
            print_stdout(&[&failure.to_json(), "\n"])?;
            Err(match failure.fly_token_message() {
                Some(message) => CliError::new("Fly token", message.to_owned()),
                None => CliError::new("gcp executable", failure.message),
            })
        }
    }
}

/// Report `err`, met before `gcp executable` could run (its log file cannot be opened), the
/// executable protocol's way: a failure response on stdout, nothing on stderr, exit 1.
pub fn report_failure(err: &CliError) -> std::process::ExitCode {
    err.log();
    let failure = Failure::new("INVALID_CONFIGURATION", err.line());
    let _ = print_stdout(&[&failure.to_json(), "\n"]);
    std::process::ExitCode::FAILURE
}

fn credential_config(globals: &Globals, args: CredentialConfigArgs) -> Result<(), CliError> {
    let settings = builder(
        globals,
        &args.provider,
        &args.service_account,
        &args.endpoints,
        args.lifetime_seconds,
    )
    .settings()?;
    let source = TokenSourceFlags {
        token_file: globals.token_file.as_deref(),
        socket: globals.socket.as_deref(),
        api_url: globals.api_url.as_deref(),
    };
    let output_file = args.token_cache_file.as_deref();
    let config =
        executable::this_binary_config(&settings, globals.fly_builder(), source, output_file)
            .map_err(|e| match e {
                ConfigError::Setting(e) => CliError::setting(e),
                ConfigError::ThisBinary(e) => CliError::new("finding this binary's path", e),
                ConfigError::Path(e) => CliError::new("resolving a path", e),
            })?;
    let text = executable::config_text(&config);
    let shown = match &args.output {
        Some(path) => {
            let shown = executable::write_config(path, &text)?;
            stderr_line(format_args!("fly-oidc: wrote {shown}"));
            executable::shell_word(&shown)
        }
        None => {
            print_stdout(&[&text])?;
            "<this file>".to_owned()
        }
    };
    stderr_line(format_args!("{}", executable::usage_hint(&shown)));
    Ok(())
}

async fn access_token(globals: &Globals, args: AccessTokenArgs) -> Result<(), CliError> {
    let builder = builder(
        globals,
        &args.provider,
        &args.service_account,
        &args.endpoints,
        args.lifetime_seconds,
    )
    .fly_client(globals.fly_client()?);
    let builder = with(builder, args.audience.as_ref(), |b, v| b.audience(v));
    let scopes = Some(args.scopes).filter(|s| !s.is_empty());
    let builder = with(builder, scopes, |b, v| b.scopes(v));
    let provider = builder.build()?;
    let token = provider.fetch_access_token().await.map_err(|e| {
        let step = match GoogleCall::refused(&e) {
            Some(GoogleCall::TokenExchange) => "Google STS token exchange",
            Some(GoogleCall::Impersonation) => "service account impersonation",
            _ => "getting a Google access token",
        };
        CliError::provider(step, e)
    })?;
    match args.json {
        true => print_stdout(&[
            &executable::access_token_json(&token, SystemTimeSource.now()),
            "\n",
        ]),
        false => print_stdout(&[token.expose_secret(), "\n"]),
    }
}
