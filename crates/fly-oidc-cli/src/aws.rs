//! `fly-oidc aws credential-process` and `fly-oidc aws env`: the flags are
//! [`CredentialProcessOptions`], the credentials printed here.

use crate::common::{CliError, Globals};
use crate::options::aws::CredentialProcessOptions;
use clap::{Args, Subcommand};
use fly_oidc_aws::credential_process;

/// AWS subcommands.
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Print credentials as `credential_process` JSON (for ~/.aws/config and every AWS SDK).
    CredentialProcess(CredentialProcessOptions),
    /// Print `export AWS_...=...` lines for a shell: eval "$(fly-oidc aws env)".
    Env(EnvArgs),
    /// Print what to create on AWS: the IAM OIDC provider and a role trusting this app's tokens.
    Setup(crate::setup::AwsSetupArgs),
    /// Would this trust policy accept this app's token? One line per condition.
    CheckTrustPolicy(crate::setup::CheckTrustPolicyArgs),
}

/// Flags of `fly-oidc aws env`.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    aws: CredentialProcessOptions,
    /// Print the variables as one JSON object instead of shell exports
    #[arg(long)]
    json: bool,
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
    // Invalid settings exit 2, named by their flag or variable.
    let process = args.build(&globals.provider_config()?)?;
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
