//! `fly-oidc exec`: serve credentials on loopback and run a command that uses them, as its init.

use crate::common::{CliError, Globals, error_line};
use crate::options::serve::ServeOptions;
use crate::serve::{invalid, start};
use crate::supervise::child::{
    self, ChildCommand, ChildExit, ForwardedSignals, LaunchError, LaunchUser, Launcher,
};
use crate::supervise::private_dir::{self, ChildFiles, PrivateDir, PrivateDirKind};
use crate::supervise::user::resolve_owner;
use clap::Args;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};

/// `fly-oidc exec`.
#[derive(Debug, Args)]
pub struct ExecCommand {
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Run COMMAND as this user (and group): its groups, HOME, USER and LOGNAME, in a session
    /// of its own (no controlling terminal); the server keeps its own rights (to /.fly/api)
    #[arg(long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The command to run, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// The hidden launcher every `exec` child goes through (see [`child::Launcher`]): for
/// `--user`, a session of its own and the user's rights; then the parent-death signal, and the
/// command executed.
#[derive(Debug, Args)]
pub struct RunAsCommand {
    /// The pid of the `exec` that started it.
    #[arg(long)]
    pub parent: u32,
    /// The user name to become.
    #[arg(long, requires = "gid")]
    pub user: Option<String>,
    /// The numeric group id to take with `--user`.
    #[arg(long, requires = "user")]
    pub gid: Option<u32>,
    /// The command.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

/// The launcher: this very program (`/proc/self/exe`, which still runs when the file was
/// replaced or removed since), subcommand `__run-as`.
fn launcher() -> Launcher {
    Launcher {
        program: "/proc/self/exe".into(),
        args: vec!["__run-as".into()],
    }
}

/// Run `exec`; the result is the exit status to use (the child's).
pub async fn run(globals: &Globals, cmd: ExecCommand) -> Result<u8, CliError> {
    // Catch the signals before anything else, so none is lost or ends us before the child
    // exists.
    let mut signals = ForwardedSignals::catch().map_err(|e| CliError::new("signals", e))?;
    // `--user USER[:GROUP]`: exit 2 when there is no such user or group.
    let resolve = |spec| resolve_owner(spec).map_err(|e| invalid(format!("--user {spec}: {e}")));
    let user = cmd.user.as_deref().map(resolve).transpose()?;
    let env = globals.env();
    let mut options = cmd.serve;
    // With --user, the token files are the user's too, unless --file-owner says otherwise.
    if options.file_owner.is_none() {
        options.file_owner.clone_from(&cmd.user);
    }
    options.check_token_files(None)?;
    // Files owned by the child's user, in a private directory removed at exit; the
    // --write-token files are entered in its record as they are written.
    let owner = match &user {
        Some(user) => Some(user.owner),
        None => options.file_owner()?,
    };
    let private =
        PrivateDir::create_in_runtime_dir(&env, PrivateDirKind::Exec, owner).map_err(|e| {
            match private_dir::runtime_dir_setting(&e) {
                Some(invalid) => CliError::setting(invalid),
                None => CliError::new("private directory", e),
            }
        })?;
    let record = private.record().clone();
    // A signal that would have ended the child ends the start-up (an unreachable Machines API
    // must not hold off a platform's stop), as the child would have ended.
    let starting = start(
        globals,
        &options,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        Some(&record),
    );
    tokio::pin!(starting);
    let server = loop {
        tokio::select! {
            server = &mut starting => break server?,
            signal = signals.recv() => {
                if child::ends_by_default(signal) {
                    tracing::info!(?signal, "stopping before the command started");
                    return Ok(child::killed_by(signal));
                }
                tracing::debug!(?signal, "ignored while starting");
            }
        }
    };
    let files = ChildFiles::create(&server, owner, private)
        .map_err(|e| CliError::new("authorization token file", e))?;
    let plan = options.env_plan(&server, files.token_file(), &env);
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }

    let (program, args) = cmd
        .command
        .split_first()
        .ok_or_else(|| invalid("no command given after --"))?;
    let mut child = ChildCommand::new(program, args).launcher(launcher());
    if let Some(user) = user {
        child = child.user(user);
    }
    // Started from this thread, the main one under the current-thread runtime: it lives as
    // long as the process, and the child's parent-death signal follows it.
    let exit = child.run(&plan, &mut signals).await;
    drop(server);
    drop(files);
    let exit = exit.map_err(|e| CliError::new("command", e))?;
    if let ChildExit::NotStarted(e) = &exit {
        error_line(e);
    }
    Ok(exit.code())
}

/// The launcher's side: a session and the user's rights for `--user`, the parent-death
/// signal, then exec the command. Only returns on failure: 127 when the command is not found,
/// 126 when it cannot be executed (the reason on stderr), as shells say.
pub fn run_as(cmd: RunAsCommand) -> Result<u8, CliError> {
    let (program, args) = cmd
        .command
        .split_first()
        .ok_or_else(|| invalid("no command given after --"))?;
    let user = match (cmd.user, cmd.gid) {
        (Some(name), Some(gid)) => Some(LaunchUser { name, gid }),
        _ => None,
    };
    match child::launch(cmd.parent, user.as_ref(), program, args) {
        LaunchError::UnknownUser(name) => Err(invalid(format!("--user {name}: no such user"))),
        LaunchError::NotStarted(e) => {
            error_line(&e);
            Ok(e.code())
        }
        e => Err(CliError::new("starting the command", e.to_string())),
    }
}

/// Whether the words after `exec` in `args` (the program's first) hold `--`; `None` when
/// there is no `exec`.
fn exec_double_dash(args: impl Iterator<Item = OsString>) -> Option<bool> {
    let args: Vec<OsString> = args.skip(1).collect();
    let exec = args.iter().position(|a| a == "exec")?;
    Some(args[exec..].iter().any(|a| a == "--"))
}

/// `exec --unknown-flag ... -- COMMAND`: clap's error without its tip to pass the flag after
/// `--`, which for `exec` would run it as the command. `None` for every other error.
pub fn unknown_flag_before_double_dash(
    err: &clap::Error,
    args: impl Iterator<Item = OsString>,
) -> Option<String> {
    if err.kind() != clap::error::ErrorKind::UnknownArgument || !exec_double_dash(args)? {
        return None;
    }
    let text = err.to_string();
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let blank_again = line.is_empty() && kept.last().is_some_and(|l| l.is_empty());
        if !line.trim_start().starts_with("tip: to pass '") && !blank_again {
            kept.push(line);
        }
    }
    Some(kept.join("\n").trim_end().to_owned())
}

/// The tip for `fly-oidc exec COMMAND` without `--` (clap refuses the command's first word as
/// an unexpected argument): where the `--` goes. `None` for any other error.
pub fn missing_double_dash(
    err: &clap::Error,
    args: impl Iterator<Item = OsString>,
) -> Option<String> {
    use clap::error::ErrorKind;
    let kinds = [
        ErrorKind::UnknownArgument,
        ErrorKind::MissingRequiredArgument,
    ];
    if !kinds.contains(&err.kind()) || exec_double_dash(args)? {
        return None;
    }
    Some(
        "tip: put the command after `--`, so that its own flags are not read as exec's: fly-oidc exec [OPTIONS] -- COMMAND [ARGS]..."
            .to_owned(),
    )
}
