//! `fly-oidc serve`, and the flags it shares with `fly-oidc exec` (copied one-to-one into
//! [`ServeOptions`], which validates them and builds the server).

use crate::common::{CliError, Globals};
use clap::Args;
use fly_oidc_server::{ServeOptions, Server, child_env};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Declares each flag of `serve` and `exec` once (its help, its name, its value name, the
/// [`ServeOptions`] field it sets): [`ServeArgs`], its one-to-one copy into [`ServeOptions`]
/// and [`SERVE_FLAGS`], which names each field's flag in error messages.
macro_rules! serve_args {
    ($($(#[doc = $doc:literal])+
      [long = $long:literal, value_name = $value:literal] $field:ident: $ty:ty,)+) => {
        /// The flags of `serve` and `exec`: what to serve and where.
        #[derive(Clone, Debug, Default, Args)]
        pub struct ServeArgs {
            $($(#[doc = $doc])+ #[arg(long = $long, value_name = $value)] pub $field: $ty,)+
        }

        impl From<ServeArgs> for ServeOptions {
            fn from(args: ServeArgs) -> Self {
                Self { $($field: args.$field,)+ }
            }
        }

        /// Each [`ServeOptions`] field and its flag, and `serve`'s env file.
        const SERVE_FLAGS: &[(&str, &str)] = &[
            $((stringify!($field), concat!("--", $long)),)+
            ("env_file", "--env-file"),
        ];
    };
}

serve_args! {
    /// Listen on this loopback address (127.0.0.1:PORT or [::1]:PORT) [default: a free port
    /// on 127.0.0.1 for exec, 127.0.0.1:8675 for serve]
    [long = "listen", value_name = "ADDR:PORT"] listen: Option<SocketAddr>,
    /// Serve this role's credentials (repeatable; the first is the default role) [env: AWS_ROLE_ARN]
    [long = "aws-role-arn", value_name = "ARN"] aws_role_arns: Vec<String>,
    /// Audience of the Fly token for AWS [env: FLY_OIDC_AUDIENCE] [default: sts.amazonaws.com]
    [long = "aws-audience", value_name = "AUD"] aws_audience: Option<String>,
    /// Role session name [env: AWS_ROLE_SESSION_NAME] [default: fly-<app>-<machine>]
    [long = "aws-session-name", value_name = "NAME"] aws_session_name: Option<String>,
    /// Session duration in seconds, 900..43200 [default: 3600]
    [long = "aws-duration-seconds", value_name = "SECONDS"] aws_duration_seconds: Option<u64>,
    /// STS region; also given to the child when it has none [env: AWS_REGION, AWS_DEFAULT_REGION]
    [long = "aws-region", value_name = "REGION"] aws_region: Option<String>,
    /// STS endpoint URL [env: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL]
    [long = "aws-sts-endpoint", value_name = "URL"] aws_sts_endpoint: Option<String>,
    /// Workload identity pool provider: serve Google tokens on the GCE metadata protocol
    /// [env: FLY_OIDC_GCP_PROVIDER]
    [long = "gcp-provider", value_name = "PROVIDER"] gcp_provider: Option<String>,
    /// Service account to impersonate [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    [long = "gcp-service-account", value_name = "EMAIL"] gcp_service_account: Option<String>,
    /// OAuth scope (repeatable) [default: https://www.googleapis.com/auth/cloud-platform]
    [long = "gcp-scope", value_name = "SCOPE"] gcp_scopes: Vec<String>,
    /// Audience of the Fly token for Google [default: https://iam.googleapis.com/<provider>]
    [long = "gcp-audience", value_name = "AUD"] gcp_audience: Option<String>,
    /// Google STS token endpoint [default: https://sts.googleapis.com/v1/token]
    [long = "gcp-sts-url", value_name = "URL"] gcp_sts_url: Option<String>,
    /// IAM Credentials base URL [default: https://iamcredentials.googleapis.com]
    [long = "gcp-iam-url", value_name = "URL"] gcp_iam_url: Option<String>,
    /// Project id served at project/project-id and given as GOOGLE_CLOUD_PROJECT
    [long = "gcp-project", value_name = "PROJECT_ID"] gcp_project: Option<String>,
    /// Keep a Fly token for AUDIENCE in PATH, rewritten at half its life (repeatable)
    [long = "write-token", value_name = "PATH=AUDIENCE"] write_tokens: Vec<String>,
    /// Owner of the files written (token files, env file, authorization token file)
    [long = "file-owner", value_name = "USER[:GROUP]"] file_owner: Option<String>,
}

/// `fly-oidc serve`.
#[derive(Debug, Args)]
pub struct ServeCommand {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Write the variables an app needs as `export` lines to this file (0600); source it
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
}

/// Build and start the server (every credential fetched once); invalid settings, and a
/// listen address that cannot be bound, exit 2.
pub async fn start(
    globals: &Globals,
    options: &ServeOptions,
    default_listen: SocketAddr,
) -> Result<Server, CliError> {
    let fly = globals.fly_client()?;
    let builder = options
        .server(&globals.env(), &fly, default_listen)
        .map_err(setting_error)?;
    let listen = options.listen.unwrap_or(default_listen);
    builder.start().await.map_err(|e| match e.kind() {
        fly_oidc_server::ErrorKind::InvalidSetting => invalid(e.to_string()),
        fly_oidc_server::ErrorKind::Listen => invalid(format!(
            "--listen {listen}: {e}; pass a free port (--listen 127.0.0.1:PORT) or stop the process that holds this one"
        )),
        _ => CliError::new("credential server", e),
    })
}

/// An invalid [`ServeOptions`] setting (exit 2), named by its flag: a reason that names
/// fields (in backticks) gets their flags in their place and is shown as it is; any other
/// gets its setting's flag. The library's error stays the cause.
pub fn setting_error(err: fly_oidc::BuildError) -> CliError {
    let method = err.setting().builder_method();
    let Some((_, flag)) = SERVE_FLAGS.iter().find(|(m, _)| *m == method) else {
        return CliError::setting(err);
    };
    let reason = SERVE_FLAGS
        .iter()
        .fold(err.reason().to_owned(), |text, (m, f)| {
            text.replace(&format!("`{m}`"), f)
        });
    let shown = match reason == err.reason() {
        true => err.display_with_flag(Some(flag)),
        false => reason,
    };
    CliError::setting(shown_as_is(shown).with_source(err))
}

/// An invalid setting of `serve`/`exec` (exit 2); `reason` names the flag.
pub fn invalid(reason: impl Into<String>) -> CliError {
    CliError::setting(shown_as_is(reason.into()))
}

/// A setting error the CLI shows as `reason` says it (no flag of its own is added).
fn shown_as_is(reason: String) -> fly_oidc::BuildError {
    let setting = fly_oidc::Setting::new("serve", None);
    fly_oidc::BuildError::invalid(setting, fly_oidc::Origin::Builder, reason)
}

/// Run `fly-oidc serve` until SIGTERM or SIGINT.
pub async fn run(globals: &Globals, cmd: ServeCommand) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| CliError::new("signals", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| CliError::new("signals", e))?;
    let default_listen = SocketAddr::from(([127, 0, 0, 1], 8675));
    let options = ServeOptions::from(cmd.serve);
    options
        .check_files(cmd.env_file.as_deref(), &globals.env())
        .map_err(setting_error)?;
    let server = start(globals, &options, default_listen).await?;
    let written = match &cmd.env_file {
        Some(env_file) => child_env::write_env_file(
            &server,
            env_file,
            options.aws_region.as_deref(),
            options.gcp_project.as_deref(),
            options.file_owner().map_err(setting_error)?,
        )
        .map_err(|e| CliError::new("env file", e))?,
        None => Vec::new(),
    };
    eprintln!(
        "fly-oidc: serving credentials on {}{}",
        server.local_addr(),
        cmd.env_file
            .as_ref()
            .map(|p| format!("; source {}", p.display()))
            .unwrap_or_default()
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    for path in written {
        let _ = std::fs::remove_file(path);
    }
    server.shutdown().await;
    Ok(())
}
