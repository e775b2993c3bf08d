//! `fly-oidc aws ...` (placeholder until the AWS commands land).

use crate::common::{CliError, Globals};
use clap::Subcommand;

/// AWS subcommands.
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Print credential_process JSON (not yet implemented).
    CredentialProcess,
}

pub async fn run(_globals: &Globals, _cmd: AwsCommand) -> Result<(), CliError> {
    Err(CliError::usage("`fly-oidc aws` is not implemented yet"))
}
