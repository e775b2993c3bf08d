//! `fly-oidc aws credential-process` and `fly-oidc aws env`: flags onto
//! [`fly_oidc_aws::credential_process`], and printing.

use crate::common::{CliError, Globals, with};
use clap::{Args, Subcommand};
use fly_oidc::{Env, FlyOidcClient};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_aws::credential_process::{self, CredentialProcess};
use std::time::Duration;

/// AWS subcommands.
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Print credentials as `credential_process` JSON (for ~/.aws/config and every AWS SDK).
    CredentialProcess(AwsArgs),
    /// Print `export AWS_...=...` lines for a shell: eval "$(fly-oidc aws env)".
    Env(EnvArgs),
    /// Print what to create on AWS: the IAM OIDC provider and a role trusting this app's tokens.
    Setup(crate::setup::AwsSetupArgs),
    /// Would this trust policy accept this app's token? One line per condition.
    CheckTrustPolicy(crate::setup::CheckTrustPolicyArgs),
}

/// Flags shared by the AWS subcommands, one per builder setting. Each falls back to its
/// environment variable (read by the library, so a flag beats every variable).
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// The IAM role to assume (required: this flag or its variable) [env: AWS_ROLE_ARN]
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The audience of the Fly token [env: FLY_OIDC_AUDIENCE; default: sts.amazonaws.com]
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,
    /// The role session name [env: AWS_ROLE_SESSION_NAME; default: fly-<app>-<machine id>]
    #[arg(long, value_name = "NAME")]
    pub session_name: Option<String>,
    /// The session duration, 900..43200 [env: FLY_OIDC_AWS_DURATION_SECONDS; default: 3600]
    #[arg(long, value_name = "SECONDS")]
    pub duration_seconds: Option<u32>,
    /// An inline session policy: JSON text, or @FILE [env: FLY_OIDC_AWS_POLICY]
    #[arg(long, value_name = "JSON|@FILE")]
    pub policy: Option<String>,
    /// A managed session policy ARN; repeatable [env: FLY_OIDC_AWS_POLICY_ARNS, comma-separated]
    #[arg(long = "policy-arn", value_name = "ARN")]
    pub policy_arns: Vec<String>,
    /// The STS region [env: AWS_REGION, AWS_DEFAULT_REGION, the profile's region; default: us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The STS endpoint URL [env: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile's endpoint_url]
    #[arg(long, value_name = "URL")]
    pub sts_endpoint: Option<String>,
    /// Neither read nor write the disk cache [env: FLY_OIDC_NO_CACHE=1]
    #[arg(long)]
    pub no_cache: bool,
    /// Reuse cached credentials while at least this much of their life remains: 900, 900s,
    /// 15m, 1h [env: FLY_OIDC_AWS_MIN_TTL; default: 15m]
    #[arg(long, value_name = "DURATION", value_parser = credential_process::parse_min_ttl)]
    pub min_ttl: Option<Duration>,
}

/// Flags of `fly-oidc aws env`.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    aws: AwsArgs,
    /// Print the variables as one JSON object instead of shell exports
    #[arg(long)]
    json: bool,
}

impl AwsArgs {
    /// Each flag onto its builder setting; the library reads `env` for the rest. Invalid
    /// settings exit 2, named by their flag or variable.
    pub fn credential_process(
        self,
        env: &Env,
        fly: FlyOidcClient,
    ) -> Result<CredentialProcess, CliError> {
        let b = FlyOidcCredentialsProvider::builder().env(env.clone());
        let b = b.fly_client(fly).disable_cache();
        let b = with(b, self.role_arn, |b, v| b.role_arn(v));
        let b = with(b, self.audience, |b, v| b.audience(v));
        let b = with(b, self.session_name, |b, v| b.session_name(v));
        let duration = self.duration_seconds.map(|s| Duration::from_secs(s.into()));
        let b = with(b, duration, |b, v| b.duration(v));
        let b = with(b, self.policy, |b, v| b.policy(v));
        let policy_arns = Some(self.policy_arns).filter(|arns| !arns.is_empty());
        let b = with(b, policy_arns, |b, v| b.policy_arns(v));
        let b = with(b, self.region, |b, v| b.region(v));
        let provider = with(b, self.sts_endpoint, |b, v| b.endpoint_url(v));
        let process = CredentialProcess::builder().env(env.clone());
        let process = with(process, self.no_cache.then_some(true), |p, v| p.no_cache(v));
        let process = with(process, self.min_ttl, |p, v| p.min_ttl(v));
        Ok(process.build(provider.build()?)?)
    }
}

pub async fn run(globals: &Globals, cmd: AwsCommand) -> Result<(), CliError> {
    let (args, json) = match cmd {
        AwsCommand::CredentialProcess(args) => (args, None),
        AwsCommand::Env(EnvArgs { aws, json }) => (aws, Some(json)),
        AwsCommand::Setup(args) => return crate::setup::aws_setup(globals, args).await,
        AwsCommand::CheckTrustPolicy(args) => {
            return crate::setup::check_trust_policy(globals, args).await;
        }
    };
    let process = args.credential_process(&globals.env(), globals.fly_client()?)?;
    let (entry, _) = process
        .credentials()
        .await
        .map_err(|e| CliError::provider("STS", e))?;
    let (creds, expires_at) = (&entry.value, entry.expires_at);
    // `aws env` also exports the region when one is configured (AWS CLI v1 needs it).
    let region = process.provider().settings().configured_region();
    let text = zeroize::Zeroizing::new(match json {
        None => credential_process::credential_process_json(creds, expires_at) + "\n",
        Some(false) => credential_process::shell_exports(creds, expires_at, region),
        Some(true) => credential_process::env_json(creds, expires_at, region) + "\n",
    });
    crate::common::print_stdout(&[&text])
}
