//! The `fly-oidc` command. See the README for usage.

mod aws;
mod common;
mod gcp;
mod token;

use clap::{Parser, Subcommand};
use common::{CliError, Globals};
use std::process::ExitCode;

/// Fly.io OIDC tokens for AWS and Google Cloud, without long-lived keys.
#[derive(Debug, Parser)]
#[command(name = "fly-oidc", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a Fly OIDC token (or, with --claims, its decoded claims).
    Token(token::TokenArgs),
    /// AWS: credential_process and shell exports via STS AssumeRoleWithWebIdentity.
    #[command(subcommand)]
    Aws(aws::AwsCommand),
    /// Google Cloud: executable-sourced credentials via Workload Identity Federation.
    #[command(subcommand)]
    Gcp(gcp::GcpCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    let quiet = matches!(&cli.command, Command::Gcp(cmd) if cmd.is_quiet());
    if let Err(err) = common::init_logging(&cli.globals, quiet) {
        let err = CliError::setting(err);
        if quiet {
            // The executable protocol's consumer reads the failure from stdout.
            return gcp::report_failure(&err);
        }
        return err.report(cli.globals.verbose);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("fly-oidc: error: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let globals = cli.globals.clone();
    let result: Result<(), CliError> = runtime.block_on(async move {
        match cli.command {
            Command::Token(args) => token::run(&globals, args).await,
            Command::Aws(cmd) => aws::run(&globals, cmd).await,
            Command::Gcp(cmd) => gcp::run(&globals, cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(cli.globals.verbose),
    }
}
