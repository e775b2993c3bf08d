//! `fly-oidc gcp ...`: Google executable-sourced credentials, credential configurations and
//! access tokens through Workload Identity Federation. The flags are
//! [`crate::options::gcp`]; the calls and the printing are here.

use crate::common::{CliError, Globals, print_stdout, stderr_line};
use crate::options::gcp::{AccessTokenOptions, CredentialConfigOptions, ExecutableOptions};
use clap::{Args, Subcommand};
use fly_oidc::Naming;
use fly_oidc::time::{SystemTimeSource, TimeSource};
use fly_oidc_gcp::executable::{self, ConfigError, Failure, TokenSourceFlags};
use fly_oidc_gcp::{AccessToken, GoogleCall};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// Google Cloud subcommands.
#[derive(Debug, Subcommand)]
pub enum GcpCommand {
    /// Print a Google executable-sourced credential response with a fresh Fly token
    /// (run by Google's client libraries and gcloud through a credential configuration).
    Executable(ExecutableOptions),
    /// Write an `external_account` credential configuration that runs `fly-oidc gcp executable`,
    /// for every Google SDK and gcloud.
    CredentialConfig(CredentialConfigOptions),
    /// Print a Google access token: Fly token, STS exchange, optional impersonation.
    AccessToken(AccessTokenArgs),
    /// Print what to create on Google Cloud: pool, OIDC provider, service account binding.
    Setup(crate::setup::GcpSetupArgs),
    /// Would this attribute condition (CEL) accept this app's token?
    CheckCondition(crate::setup::CheckConditionArgs),
}

/// Flags of `fly-oidc gcp access-token`.
#[derive(Debug, Args)]
pub struct AccessTokenArgs {
    #[command(flatten)]
    options: AccessTokenOptions,
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

async fn executable(globals: &Globals, args: ExecutableOptions) -> Result<(), CliError> {
    let fly = || {
        globals
            .fly_client()
            .map_err(|e| Failure::new(Failure::INVALID_CONFIGURATION, e.line(Naming::Flags)))
    };
    match executable::respond(fly, args.audience.as_deref(), &globals.env()).await {
        Ok(text) => print_stdout(&[&text, "\n"]),
        Err(mut failure) => {
            if failure.code == Failure::MISSING_AUDIENCE {
                failure.message = failure.message.text(" with --audience");
            }
            // Google's libraries read the failure from stdout; the exit status says it failed.
            // Settings named by their flags, as in every other command's messages.
            print_stdout(&[&failure.to_json(Naming::Flags), "\n"])?;
            Err(match failure.fly_token_message() {
                Some(message) => CliError::fly_token(message.render(Naming::Flags)),
                None => CliError::new("gcp executable", failure.message.render(Naming::Flags)),
            })
        }
    }
}

/// Report `err`, met before `gcp executable` could run (its log file cannot be opened), the
/// executable protocol's way: a failure response on stdout, nothing on stderr, exit 1.
pub fn report_failure(err: &CliError) -> std::process::ExitCode {
    err.log(Naming::Flags);
    let failure = Failure::new(Failure::INVALID_CONFIGURATION, err.line(Naming::Flags));
    let _ = print_stdout(&[&failure.to_json(Naming::Flags), "\n"]);
    std::process::ExitCode::FAILURE
}

fn credential_config(globals: &Globals, args: CredentialConfigOptions) -> Result<(), CliError> {
    let settings = args.settings(&globals.env())?;
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
    let text = config_text(&config);
    let written = match &args.output {
        Some(path) => {
            let shown = executable::write_config(path, &text)?;
            stderr_line(format_args!("fly-oidc: wrote {shown}"));
            Some(shown)
        }
        None => {
            print_stdout(&[&text])?;
            None
        }
    };
    let hint = executable::usage_hint(written.as_deref());
    stderr_line(format_args!("{hint}"));
    Ok(())
}

async fn access_token(globals: &Globals, args: AccessTokenArgs) -> Result<(), CliError> {
    let provider = args.options.build(&globals.provider_config()?)?;
    let token = provider.fetch_access_token().await.map_err(|e| {
        let step = match GoogleCall::refused(&e) {
            Some(GoogleCall::TokenExchange) => "Google STS token exchange",
            Some(GoogleCall::Impersonation) => "service account impersonation",
            _ => "getting a Google access token",
        };
        CliError::provider(step, e)
    })?;
    match args.json {
        true => print_stdout(&[&access_token_json(&token, SystemTimeSource.now()), "\n"]),
        false => print_stdout(&[token.expose_secret(), "\n"]),
    }
}

/// The credential configuration as written: pretty JSON and a final newline.
fn config_text(config: &Value) -> String {
    format!("{config:#}\n")
}

/// `token` as JSON, for `gcp access-token --json`:
/// `{"access_token":..,"token_type":"Bearer","expires_in":..,"expire_time":..,"expire_time_unix":..}`.
/// `expires_in` is the seconds left at `now` (0 once expired; pass the caller's clock),
/// `expire_time` the expiry in RFC 3339 UTC (seconds), `expire_time_unix` the same in Unix
/// seconds. The text holds the token itself: print it, never log it.
fn access_token_json(token: &AccessToken, now: SystemTime) -> String {
    let expires_at = token.expires_at();
    let secs = |since: SystemTime| expires_at.duration_since(since).map_or(0, |d| d.as_secs());
    json!({
        "access_token": token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": secs(now),
        "expire_time": fly_oidc::time::format_rfc3339(expires_at),
        "expire_time_unix": secs(UNIX_EPOCH),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_configuration_ends_with_a_newline() {
        assert!(config_text(&json!({"a": 1})).ends_with("}\n"));
    }

    #[test]
    fn an_access_token_prints_with_its_expiry_by_the_given_clock() {
        let expires = UNIX_EPOCH + Duration::from_secs(1_700_003_600);
        let token = AccessToken::new("ya29.secret", expires);
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        let json: Value =
            serde_json::from_str(&access_token_json(&token, at(1_700_000_000))).unwrap();
        assert_eq!(
            json,
            json!({
                "access_token": "ya29.secret",
                "token_type": "Bearer",
                "expires_in": 3600,
                "expire_time": "2023-11-14T23:13:20Z",
                "expire_time_unix": 1_700_003_600,
            })
        );
        let expired: Value =
            serde_json::from_str(&access_token_json(&token, at(1_800_000_000))).unwrap();
        assert_eq!(expired["expires_in"], 0);
    }
}
