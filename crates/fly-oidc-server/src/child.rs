//! Running a command as the child of a credential server (`fly-oidc exec`): started with the
//! environment of an [`EnvPlan`], optionally as another user, with SIGINT, SIGTERM and SIGHUP
//! forwarded to it, and its end turned into an exit status for the parent, as shells do.

use crate::child_env::{EnvPlan, ResolvedUser};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use tokio::signal::unix::{SignalKind, signal};

/// The exit status, as shells use, of a command that could not be started.
pub const CANNOT_RUN: u8 = 127;

/// SIGINT, SIGTERM and SIGHUP, caught from [`catch`](Self::catch) on, to forward to the child
/// in [`ChildCommand::run`]. Catch them before starting the server and the child, so none sent
/// in between is lost (or kills the parent alone).
#[derive(Debug)]
pub struct ForwardedSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl ForwardedSignals {
    /// Catch the three signals from now on (needs a Tokio runtime with its I/O driver).
    ///
    /// # Errors
    /// The system's error when a handler cannot be installed.
    pub fn catch() -> io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal caught.
    async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::SIGINT,
            _ = self.term.recv() => Signal::SIGTERM,
            _ = self.hup.recv() => Signal::SIGHUP,
        }
    }
}

/// How to run the child as another user: `helper` (the running program itself, say) started
/// as `helper helper_args... USER GID -- PROGRAM ARGS...`, with the user's `HOME`, `USER` and
/// `LOGNAME`; the helper hands the words after `helper_args` to [`run_as`], which drops to
/// the user and executes the program. The parent keeps its own rights (to the Machines API
/// socket, say).
#[derive(Clone, Debug)]
pub struct RunAs {
    /// The user (and group) to become.
    pub user: ResolvedUser,
    /// The helper program.
    pub helper: PathBuf,
    /// The helper's first arguments (its subcommand), before `USER GID -- PROGRAM ARGS...`.
    pub helper_args: Vec<OsString>,
}

/// A command to run as the child of a server: a program and its arguments.
#[derive(Clone, Debug)]
pub struct ChildCommand {
    program: OsString,
    args: Vec<OsString>,
    run_as: Option<RunAs>,
}

/// How a child ended.
#[derive(Debug)]
pub enum ChildExit {
    /// It ran: how it exited (a code, or the signal that killed it).
    Exited(ExitStatus),
    /// It could not be started.
    NotStarted(SpawnError),
}

impl ChildExit {
    /// The exit status for the parent: the child's exit code; 128 + the signal that killed it;
    /// [`CANNOT_RUN`] (127) when it could not be started.
    pub fn code(&self) -> u8 {
        match self {
            ChildExit::Exited(status) => match (status.code(), status.signal()) {
                (Some(code), _) => u8::try_from(code).unwrap_or(1),
                (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
                (None, None) => 1,
            },
            ChildExit::NotStarted(_) => CANNOT_RUN,
        }
    }
}

/// A program that could not be started. `Display`: `could not run PROGRAM: REASON`.
#[derive(Debug)]
pub struct SpawnError {
    program: String,
    source: io::Error,
}

impl SpawnError {
    fn new(program: &OsStr, source: io::Error) -> Self {
        Self {
            program: program.to_string_lossy().into_owned(),
            source,
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not run {}: {}", self.program, self.source)
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl ChildCommand {
    /// `program` with `args`, run as this process's user.
    pub fn new(program: impl Into<OsString>, args: &[OsString]) -> Self {
        Self {
            program: program.into(),
            args: args.to_vec(),
            run_as: None,
        }
    }

    /// Run it as another user, through a helper (see [`RunAs`]).
    pub fn run_as(mut self, run_as: RunAs) -> Self {
        self.run_as = Some(run_as);
        self
    }

    /// Start the command with `plan`'s environment (this process's, less
    /// [`remove`](EnvPlan::remove), plus [`set`](EnvPlan::set)), forward every signal
    /// `signals` catches to it until it ends, and say how it ended.
    ///
    /// # Errors
    /// The system's error when waiting for the child fails; a child that cannot be started is
    /// [`ChildExit::NotStarted`].
    pub async fn run(
        &self,
        plan: &EnvPlan,
        signals: &mut ForwardedSignals,
    ) -> io::Result<ChildExit> {
        let mut command = match &self.run_as {
            None => tokio::process::Command::new(&self.program),
            Some(run_as) => {
                let user = &run_as.user;
                let mut command = tokio::process::Command::new(&run_as.helper);
                command
                    .args(&run_as.helper_args)
                    .arg(&user.name)
                    .arg(user.owner.gid.to_string())
                    .arg("--")
                    .arg(&self.program)
                    .env("HOME", &user.home)
                    .env("USER", &user.name)
                    .env("LOGNAME", &user.name);
                command
            }
        };
        command.args(&self.args);
        for name in &plan.remove {
            command.env_remove(name);
        }
        for (name, value) in &plan.set {
            command.env(name, value);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Ok(ChildExit::NotStarted(SpawnError::new(&self.program, e))),
        };
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        loop {
            let forward = tokio::select! {
                status = child.wait() => return status.map(ChildExit::Exited),
                signal = signals.recv() => signal,
            };
            if let Some(pid) = pid {
                let _ = kill(pid, forward);
            }
        }
    }
}

/// Why [`run_as`] returned.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunAsError {
    /// No user has this name (an invalid setting).
    UnknownUser(String),
    /// A step of becoming the user failed: `initgroups`, `setgid` or `setuid`, and why.
    Drop(&'static str, nix::errno::Errno),
    /// The program could not be executed.
    NotStarted(SpawnError),
}

impl fmt::Display for RunAsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunAsError::UnknownUser(name) => write!(f, "{name}: no such user"),
            RunAsError::Drop(step, errno) => write!(f, "{step}: {errno}"),
            RunAsError::NotStarted(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RunAsError {}

/// The helper side of [`RunAs`]: become `user` (its supplementary groups, then group `gid`,
/// then its uid) and execute `program` with `args` in this process. Only returns on failure.
pub fn run_as(user: &str, gid: u32, program: &OsStr, args: &[OsString]) -> RunAsError {
    use nix::unistd::{Gid, User, initgroups, setgid, setuid};
    use std::os::unix::process::CommandExt;
    let Some(found) = User::from_name(user).ok().flatten() else {
        return RunAsError::UnknownUser(user.to_owned());
    };
    // A name from the user database holds no NUL byte.
    let Ok(name) = std::ffi::CString::new(found.name) else {
        return RunAsError::UnknownUser(user.to_owned());
    };
    let gid = Gid::from_raw(gid);
    let dropped = initgroups(&name, gid)
        .map_err(|e| ("initgroups", e))
        .and_then(|()| setgid(gid).map_err(|e| ("setgid", e)))
        .and_then(|()| setuid(found.uid).map_err(|e| ("setuid", e)));
    if let Err((step, errno)) = dropped {
        return RunAsError::Drop(step, errno);
    }
    let error = std::process::Command::new(program).args(args).exec();
    RunAsError::NotStarted(SpawnError::new(program, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ChildCommand {
        ChildCommand::new("sh", &["-c".into(), script.into()])
    }

    async fn run(command: &ChildCommand, plan: &EnvPlan) -> ChildExit {
        let mut signals = ForwardedSignals::catch().expect("signal handlers");
        command.run(plan, &mut signals).await.expect("waited")
    }

    #[tokio::test]
    async fn the_exit_code_is_the_childs_and_a_signal_is_128_plus_its_number() {
        let plan = EnvPlan::default();
        assert_eq!(run(&sh("exit 7"), &plan).await.code(), 7);
        assert_eq!(run(&sh("exit 0"), &plan).await.code(), 0);
        let killed = run(&sh("kill -TERM $$"), &plan).await;
        assert!(matches!(killed, ChildExit::Exited(_)), "{killed:?}");
        assert_eq!(killed.code(), 128 + 15);
    }

    #[tokio::test]
    async fn a_missing_program_is_127_naming_it() {
        let missing = ChildCommand::new("/nonexistent/fly-oidc-no-such-program", &[]);
        let exit = run(&missing, &EnvPlan::default()).await;
        assert_eq!(exit.code(), CANNOT_RUN);
        let ChildExit::NotStarted(err) = exit else {
            panic!("started: {exit:?}");
        };
        let shown = err.to_string();
        assert!(
            shown.starts_with("could not run /nonexistent/fly-oidc-no-such-program: "),
            "{shown}"
        );
        assert!(shown.contains("No such file or directory"), "{shown}");
    }

    #[tokio::test]
    async fn the_child_gets_the_plans_environment() {
        let plan = EnvPlan {
            set: vec![("CHILD_PLAN_TEST".into(), "7".into())],
            remove: vec!["PATH".into()],
            warnings: Vec::new(),
        };
        // awk, not a shell: a shell sets a PATH of its own when it has none.
        let script = r#"BEGIN { exit ("PATH" in ENVIRON) ? 1 : ENVIRON["CHILD_PLAN_TEST"] }"#;
        let command = ChildCommand::new("/usr/bin/awk", &[script.into()]);
        assert_eq!(run(&command, &plan).await.code(), 7);
    }

    #[tokio::test]
    async fn run_as_an_unknown_user_is_named() {
        let err = run_as("no-such-user-fly-oidc", 0, OsStr::new("true"), &[]);
        assert!(
            matches!(&err, RunAsError::UnknownUser(name) if name == "no-such-user-fly-oidc"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "no-such-user-fly-oidc: no such user");
    }
}
