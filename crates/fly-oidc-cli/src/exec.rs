//! `fly-oidc exec`: serve credentials on loopback and run a command that uses them.

use crate::common::{CliError, Globals};
use crate::serve::{ServeArgs, invalid, setting_error, start};
use clap::Args;
use fly_oidc_server::ServeOptions;
use fly_oidc_server::child_env::{self, ChildFiles, ResolvedUser};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use tokio::signal::unix::{SignalKind, signal};

/// `fly-oidc exec`.
#[derive(Debug, Args)]
pub struct ExecCommand {
    #[command(flatten)]
    pub serve: ServeArgs,
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

/// Exit status 127, as shells use, when the command cannot be started.
const CANNOT_RUN: u8 = 127;

/// Run `exec`; the result is the exit status to use (the child's).
pub async fn run(globals: &Globals, cmd: ExecCommand) -> Result<u8, CliError> {
    let user = cmd.user.as_deref().map(resolve_user).transpose()?;
    // Register the handlers before the child exists, so no signal is lost in between.
    let mut signals = Vec::new();
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ] {
        signals.push(signal(kind).map_err(|e| CliError::new("signals", e))?);
    }
    let mut options = ServeOptions::from(cmd.serve);
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
    let mut child = match &user {
        None => {
            let mut command = tokio::process::Command::new(program);
            command.args(args);
            command
        }
        Some(user) => {
            let exe = std::env::current_exe()
                .map_err(|e| CliError::new("--user", format!("cannot find this program: {e}")))?;
            let mut command = tokio::process::Command::new(exe);
            command
                .arg("__run-as")
                .arg(&user.name)
                .arg(user.owner.gid.to_string())
                .arg("--")
                .arg(program)
                .args(args);
            command
                .env("HOME", &user.home)
                .env("USER", &user.name)
                .env("LOGNAME", &user.name);
            command
        }
    };
    for name in &plan.remove {
        child.env_remove(name);
    }
    for (name, value) in &plan.set {
        child.env(name, value);
    }
    let mut child = match child.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "fly-oidc: error: could not run {}: {e}",
                program.to_string_lossy()
            );
            return Ok(CANNOT_RUN);
        }
    };
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let [int, term, hup] = &mut signals[..] else {
        return Err(CliError::new("signals", "signal handlers missing"));
    };
    let status = loop {
        let forward = tokio::select! {
            status = child.wait() => break status,
            _ = int.recv() => Signal::SIGINT,
            _ = term.recv() => Signal::SIGTERM,
            _ = hup.recv() => Signal::SIGHUP,
        };
        if let Some(pid) = pid {
            let _ = kill(pid, forward);
        }
    };
    drop(server);
    drop(files);
    let status = status.map_err(|e| CliError::new("command", e))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    })
}

/// Become `user` (its groups, then its group, then its uid) and exec the command. Only
/// returns on failure.
pub fn run_as(cmd: RunAsCommand) -> Result<u8, CliError> {
    use nix::unistd::{Gid, User, initgroups, setgid, setuid};
    use std::os::unix::process::CommandExt;
    let user = User::from_name(&cmd.user)
        .ok()
        .flatten()
        .ok_or_else(|| invalid(format!("--user {}: no such user", cmd.user)))?;
    let gid = Gid::from_raw(cmd.gid);
    let name = std::ffi::CString::new(cmd.user.clone())
        .map_err(|_| invalid("--user: the name holds a NUL byte"))?;
    initgroups(&name, gid).map_err(|e| CliError::new("--user", format!("initgroups: {e}")))?;
    setgid(gid).map_err(|e| CliError::new("--user", format!("setgid: {e}")))?;
    setuid(user.uid).map_err(|e| CliError::new("--user", format!("setuid: {e}")))?;
    let (program, args) = cmd
        .command
        .split_first()
        .ok_or_else(|| invalid("no command given after --"))?;
    let error = std::process::Command::new(program).args(args).exec();
    eprintln!(
        "fly-oidc: error: could not run {}: {error}",
        program.to_string_lossy()
    );
    Ok(CANNOT_RUN)
}
