//! `fly-oidc exec`: serve credentials on loopback and run a command that uses them.

use crate::common::{CliError, Globals, stderr_line};
use crate::serve::{invalid, setting_error, start};
use clap::Args;
use fly_oidc_server::ServeOptions;
use fly_oidc_server::child::{
    self, CANNOT_RUN, ChildCommand, ChildExit, ForwardedSignals, RunAs, RunAsError,
};
use fly_oidc_server::child_env::{self, ChildFiles, ResolvedUser};
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};

/// `fly-oidc exec`.
#[derive(Debug, Args)]
pub struct ExecCommand {
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Run COMMAND as this user (and group): its groups, HOME, USER and LOGNAME; the server
    /// keeps its own rights (to /.fly/api)
    #[arg(long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The command to run, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// The hidden helper `exec --user` runs: drop to the user, then exec the command.
#[derive(Debug, Args)]
pub struct RunAsCommand {
    /// The user name.
    pub user: String,
    /// The numeric group id.
    pub gid: u32,
    /// The command.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

/// Resolve `--user USER[:GROUP]` (exit 2 when there is no such user or group).
fn resolve_user(spec: &str) -> Result<ResolvedUser, CliError> {
    child_env::resolve_owner(spec).map_err(|e| invalid(format!("--user {spec}: {e}")))
}

/// Run `exec`; the result is the exit status to use (the child's).
pub async fn run(globals: &Globals, cmd: ExecCommand) -> Result<u8, CliError> {
    let user = cmd.user.as_deref().map(resolve_user).transpose()?;
    // Catch the signals before the child exists, so no signal is lost in between.
    let mut signals = ForwardedSignals::catch().map_err(|e| CliError::new("signals", e))?;
    let mut options = cmd.serve;
    // With --user, the token files are the user's too, unless --file-owner says otherwise.
    if options.file_owner.is_none() {
        options.file_owner.clone_from(&cmd.user);
    }
    options.check_token_files(None).map_err(setting_error)?;
    let server = start(
        globals,
        &options,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .await?;
    // Files owned by the child's user, in a private directory removed at exit.
    let owner = match &user {
        Some(user) => Some(user.owner),
        None => options.file_owner().map_err(setting_error)?,
    };
    let files = ChildFiles::create(&server, owner)
        .map_err(|e| CliError::new("authorization token file", e))?;
    let plan = options.env_plan(&server, files.token_file(), &globals.env());
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }

    let (program, args) = cmd
        .command
        .split_first()
        .ok_or_else(|| invalid("no command given after --"))?;
    let mut child = ChildCommand::new(program, args);
    if let Some(user) = user {
        let helper = std::env::current_exe()
            .map_err(|e| CliError::new("--user", format!("cannot find this program: {e}")))?;
        let helper_args = vec!["__run-as".into()];
        child = child.run_as(RunAs {
            user,
            helper,
            helper_args,
        });
    }
    let exit = child.run(&plan, &mut signals).await;
    drop(server);
    drop(files);
    let exit = exit.map_err(|e| CliError::new("command", e))?;
    if let ChildExit::NotStarted(e) = &exit {
        stderr_line(format_args!("fly-oidc: error: {e}"));
    }
    Ok(exit.code())
}

/// Become `user` (its groups, then its group, then its uid) and exec the command. Only
/// returns on failure.
pub fn run_as(cmd: RunAsCommand) -> Result<u8, CliError> {
    let (program, args) = cmd
        .command
        .split_first()
        .ok_or_else(|| invalid("no command given after --"))?;
    match child::run_as(&cmd.user, cmd.gid, program, args) {
        RunAsError::UnknownUser(_) => Err(invalid(format!("--user {}: no such user", cmd.user))),
        RunAsError::NotStarted(e) => {
            stderr_line(format_args!("fly-oidc: error: {e}"));
            Ok(CANNOT_RUN)
        }
        e => Err(CliError::new("--user", e.to_string())),
    }
}
