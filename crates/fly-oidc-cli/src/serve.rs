//! `fly-oidc serve`, and the flags and child environment it shares with `fly-oidc exec`.

use crate::common::{CliError, Globals};
use clap::Args;
use fly_oidc::Env;
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_server::child_env::{self, EnvPlan, ResolvedUser};
use fly_oidc_server::{FileOwner, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The flags of `serve` and `exec`: what to serve and where.
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// Listen on this loopback address (127.0.0.1:PORT or [::1]:PORT) [default: a free port
    /// on 127.0.0.1 for exec, 127.0.0.1:8675 for serve]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Serve this role's credentials (repeatable; the first is the default role) [env: AWS_ROLE_ARN]
    #[arg(long = "aws-role-arn", value_name = "ARN")]
    pub aws_role_arns: Vec<String>,
    /// Audience of the Fly token for AWS [env: FLY_OIDC_AUDIENCE] [default: sts.amazonaws.com]
    #[arg(long, value_name = "AUD")]
    pub aws_audience: Option<String>,
    /// Role session name [env: AWS_ROLE_SESSION_NAME] [default: fly-<app>-<machine>]
    #[arg(long, value_name = "NAME")]
    pub aws_session_name: Option<String>,
    /// Session duration in seconds, 900..43200 [default: 3600]
    #[arg(long, value_name = "SECONDS")]
    pub aws_duration_seconds: Option<u64>,
    /// STS region; also given to the child when it has none [env: AWS_REGION, AWS_DEFAULT_REGION]
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,
    /// STS endpoint URL [env: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub aws_sts_endpoint: Option<String>,
    /// Workload identity pool provider: serve Google tokens on the GCE metadata protocol
    /// [env: FLY_OIDC_GCP_PROVIDER]
    #[arg(long, value_name = "PROVIDER")]
    pub gcp_provider: Option<String>,
    /// Service account to impersonate [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    #[arg(long, value_name = "EMAIL")]
    pub gcp_service_account: Option<String>,
    /// OAuth scope (repeatable) [default: https://www.googleapis.com/auth/cloud-platform]
    #[arg(long = "gcp-scope", value_name = "SCOPE")]
    pub gcp_scopes: Vec<String>,
    /// Audience of the Fly token for Google [default: https://iam.googleapis.com/<provider>]
    #[arg(long, value_name = "AUD")]
    pub gcp_audience: Option<String>,
    /// Google STS token endpoint [default: https://sts.googleapis.com/v1/token]
    #[arg(long, value_name = "URL")]
    pub gcp_sts_url: Option<String>,
    /// IAM Credentials base URL [default: https://iamcredentials.googleapis.com]
    #[arg(long, value_name = "URL")]
    pub gcp_iam_url: Option<String>,
    /// Project id served at project/project-id and given as GOOGLE_CLOUD_PROJECT
    #[arg(long, value_name = "PROJECT_ID")]
    pub gcp_project: Option<String>,
    /// Keep a Fly token for AUDIENCE in PATH, rewritten at half its life (repeatable)
    #[arg(long = "write-token", value_name = "PATH=AUDIENCE")]
    pub write_tokens: Vec<String>,
    /// Owner of the files written (token files, env file, authorization token file)
    #[arg(long, value_name = "USER[:GROUP]")]
    pub file_owner: Option<String>,
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

/// The default listen address of `serve` (exec picks a free port).
pub const SERVE_DEFAULT_LISTEN: &str = "127.0.0.1:8675";

/// Resolve a `USER[:GROUP]` flag through the library, naming `flag` in the error (exit 2).
pub fn resolve_owner(spec: &str, flag: &str) -> Result<ResolvedUser, CliError> {
    child_env::resolve_owner(spec).map_err(|e| invalid("serve", format!("{flag} {spec}: {e}")))
}

impl ServeArgs {
    fn aws_roles(&self, env: &Env) -> Vec<Option<String>> {
        if !self.aws_role_arns.is_empty() {
            self.aws_role_arns.iter().cloned().map(Some).collect()
        } else if env
            .get(fly_oidc_aws::ENV_ROLE_ARN)
            .is_some_and(|v| !v.trim().is_empty())
        {
            // The builder reads AWS_ROLE_ARN itself.
            vec![None]
        } else {
            Vec::new()
        }
    }

    fn gcp_configured(&self, env: &Env) -> bool {
        self.gcp_provider.is_some()
            || env
                .get(fly_oidc_gcp::ENV_PROVIDER)
                .is_some_and(|v| !v.trim().is_empty())
    }

    fn gcp_builder(&self, globals: &Globals, env: &Env) -> Result<fly_oidc_gcp::Builder, CliError> {
        let mut builder = GcpTokenProvider::builder()
            .env(env.clone())
            .fly_client(globals.fly_client()?);
        if let Some(p) = &self.gcp_provider {
            builder = builder.provider(p);
        }
        if let Some(sa) = &self.gcp_service_account {
            builder = builder.service_account(sa);
        }
        if !self.gcp_scopes.is_empty() {
            builder = builder.scopes(self.gcp_scopes.clone());
        }
        if let Some(a) = &self.gcp_audience {
            builder = builder.audience(a);
        }
        if let Some(u) = &self.gcp_sts_url {
            builder = builder.sts_url(u);
        }
        if let Some(u) = &self.gcp_iam_url {
            builder = builder.iam_url(u);
        }
        Ok(builder)
    }

    /// Build and start the server: flags -> builders; every credential fetched once.
    pub async fn start(
        &self,
        globals: &Globals,
        default_listen: SocketAddr,
    ) -> Result<Server, CliError> {
        let env = globals.env();
        let roles = self.aws_roles(&env);
        let gcp = self.gcp_configured(&env);
        if roles.is_empty() && !gcp && self.write_tokens.is_empty() {
            return Err(invalid(
                "serve",
                "nothing to serve: pass --aws-role-arn (or set AWS_ROLE_ARN), --gcp-provider (or set FLY_OIDC_GCP_PROVIDER) or --write-token PATH=AUDIENCE",
            ));
        }
        let listen = self.listen.unwrap_or(default_listen);
        if !listen.ip().is_loopback() {
            return Err(invalid(
                "serve",
                format!(
                    "--listen {listen}: the credential server listens on loopback only (127.0.0.1:PORT or [::1]:PORT), so only processes on this Machine can reach it"
                ),
            ));
        }
        let fly = globals.fly_client()?;
        let mut server = Server::builder().listen(listen);
        for role in roles {
            let mut builder = FlyOidcCredentialsProvider::builder()
                .env(env.clone())
                .fly_client(fly.clone())
                .disable_cache();
            if let Some(arn) = role {
                builder = builder.role_arn(arn);
            }
            if let Some(a) = &self.aws_audience {
                builder = builder.audience(a);
            }
            if let Some(s) = &self.aws_session_name {
                builder = builder.session_name(s);
            }
            if let Some(d) = self.aws_duration_seconds {
                builder = builder.duration(Duration::from_secs(d));
            }
            if let Some(r) = &self.aws_region {
                builder = builder.region(r);
            }
            if let Some(u) = &self.aws_sts_endpoint {
                builder = builder.endpoint_url(u);
            }
            let provider = builder
                .build()
                .map_err(|e| setting_error(e, "--aws-audience"))?;
            server = server.aws_role(provider);
        }
        if gcp {
            let builder = self.gcp_builder(globals, &env)?;
            let provider = builder
                .clone()
                .build()
                .map_err(|e| setting_error(e, "--gcp-audience"))?;
            server = server.gcp(provider).gcp_scoped(move |scopes| {
                builder
                    .clone()
                    .scopes(scopes.to_vec())
                    .build()
                    .map_err(|e| e.to_string())
            });
            if let Some(project) = &self.gcp_project {
                server = server.gcp_project(project);
            }
        }
        for spec in &self.write_tokens {
            let (path, audience) = spec
                .split_once('=')
                .filter(|(p, a)| !p.is_empty() && !a.is_empty())
                .ok_or_else(|| {
                    invalid("serve", format!(
                        "--write-token {spec:?}: expected PATH=AUDIENCE, e.g. /run/fly/azure-token=api://AzureADTokenExchange"
                    ))
                })?;
            server = server.write_token(path, audience, fly.clone());
        }
        if let Some(spec) = &self.file_owner {
            server = server.file_owner(resolve_owner(spec, "--file-owner")?.owner);
        }
        server.start().await.map_err(|e| match e.kind() {
            fly_oidc_server::ErrorKind::InvalidSetting => invalid("listen", e.to_string()),
            _ => CliError::new("credential server", e),
        })
    }

    /// What a process using this server needs in its environment, given its current one.
    pub fn env_plan(&self, server: &Server, token_file: Option<&Path>, current: &Env) -> EnvPlan {
        EnvPlan::for_server(
            server,
            token_file,
            self.aws_region.as_deref(),
            self.gcp_project.as_deref(),
            current,
        )
    }
}

/// Builder methods and the serve flags that set them.
const SERVE_FLAGS: &[(&str, &str)] = &[
    ("token_file", "--token-file"),
    ("socket", "--socket"),
    ("api_url", "--api-url"),
    ("role_arn", "--aws-role-arn"),
    ("session_name", "--aws-session-name"),
    ("duration", "--aws-duration-seconds"),
    ("region", "--aws-region"),
    ("endpoint_url", "--aws-sts-endpoint"),
    ("provider", "--gcp-provider"),
    ("service_account", "--gcp-service-account"),
    ("scopes", "--gcp-scope"),
    ("sts_url", "--gcp-sts-url"),
    ("iam_url", "--gcp-iam-url"),
];

/// An invalid setting of a provider (exit 2), named by its serve flag (`audience` is per
/// cloud), with the library's error as the cause.
fn setting_error(err: fly_oidc::BuildError, audience_flag: &'static str) -> CliError {
    let method = err.setting().builder_method();
    let flag = match method {
        "audience" => Some(audience_flag),
        _ => SERVE_FLAGS
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, f)| *f),
    };
    let shown = err.display_with_flag(flag);
    CliError::setting(
        fly_oidc::BuildError::invalid(err.setting(), fly_oidc::Origin::Builder, shown)
            .with_source(err),
    )
}

/// An invalid flag of `serve`/`exec` itself (exit 2); `reason` names the flag.
pub fn invalid(flag: &'static str, reason: impl Into<String>) -> CliError {
    CliError::setting(fly_oidc::BuildError::invalid(
        fly_oidc::Setting::new(flag, None),
        fly_oidc::Origin::Builder,
        reason,
    ))
}

/// Write the authorization token file, as a CLI error.
pub fn write_auth_token_file(
    server: &Server,
    path: &Path,
    owner: Option<FileOwner>,
) -> Result<(), CliError> {
    child_env::write_auth_token_file(server, path, owner)
        .map_err(|e| CliError::new("authorization token file", e))
}

/// Run `fly-oidc serve` until SIGTERM or SIGINT.
pub async fn run(globals: &Globals, cmd: ServeCommand) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| CliError::new("signals", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| CliError::new("signals", e))?;
    let default_listen: SocketAddr = SERVE_DEFAULT_LISTEN
        .parse()
        .map_err(|e| CliError::new("listen", format!("{e}")))?;
    let server = cmd.serve.start(globals, default_listen).await?;
    let owner = match &cmd.serve.file_owner {
        Some(spec) => Some(resolve_owner(spec, "--file-owner")?.owner),
        None => None,
    };
    let mut written = Vec::new();
    if let Some(env_file) = &cmd.env_file {
        let token_file = server
            .aws_credentials_uri()
            .map(|_| child_env::auth_token_file_beside(env_file));
        if let Some(path) = &token_file {
            write_auth_token_file(&server, path, owner)?;
            written.push(path.clone());
        }
        let plan = cmd
            .serve
            .env_plan(&server, token_file.as_deref(), &Env::from_slice(&[]));
        fly_oidc_server::write_secret_file(env_file, plan.env_file_text().as_bytes(), owner)
            .map_err(|e| CliError::new("env file", e))?;
        written.push(env_file.clone());
    }
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
