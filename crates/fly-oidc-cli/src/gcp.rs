//! `fly-oidc gcp ...` (placeholder until the GCP commands land).

use crate::common::{CliError, Globals};
use clap::Subcommand;

/// Google Cloud subcommands.
#[derive(Debug, Subcommand)]
pub enum GcpCommand {
    /// Print a Google executable-sourced response (not yet implemented).
    Executable,
}

impl GcpCommand {
    /// Whether the command must keep stderr silent on success.
    pub fn is_quiet(&self) -> bool {
        matches!(self, GcpCommand::Executable)
    }
}

pub async fn run(_globals: &Globals, _cmd: GcpCommand) -> Result<(), CliError> {
    Err(CliError::usage("`fly-oidc gcp` is not implemented yet"))
}
