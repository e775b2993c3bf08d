//! Running a command as the child of a credential server (`fly-oidc exec`), as an init such as
//! tini runs it: started with the environment of an [`EnvPlan`] through a small launcher (our
//! own binary re-executed, see [`Launcher`]) that sets a parent-death signal and, for another
//! user, a session of its own; every signal a platform or a terminal sends
//! ([`FORWARDED`]) forwarded to it; orphans reaped when this process is PID 1 (or a
//! subreaper); its end turned into an exit status for the parent, as shells do.
//!
//! The reaper owns the child's wait: the child is spawned with `std` (never waited on by it or
//! by Tokio) and collected with `waitpid` on each SIGCHLD, so reaping every orphan as PID 1
//! (`waitpid(-1)`) cannot steal the child's status.

use super::env_plan::EnvPlan;
use super::user::ResolvedUser;
use futures_core::Stream;
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpgid, getpgrp};
use rustix::process::Signal;
use rustix_libc_wrappers::process::SignalExt;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;
use signal_hook_tokio::SignalsInfo;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitStatus;
use std::task::Poll;
use tokio::signal::unix::{SignalKind, signal};

/// The exit status, as shells and tini use, of a command that was not found.
pub(crate) const NOT_FOUND: u8 = 127;

/// The exit status, as shells and tini use, of a command that exists but cannot be executed
/// (no permission, not an executable format...).
pub(crate) const CANNOT_EXECUTE: u8 = 126;

/// The named signals [`ChildCommand::run`] forwards to the child; the real-time ones
/// (SIGRTMIN to SIGRTMAX: systemd images stop on SIGRTMIN+3) are forwarded too. That is every
/// signal but the synchronous ones (ILL, TRAP, ABRT, BUS, FPE, SEGV, SYS: a fault of this
/// process), those no process can catch (KILL, STOP), PIPE (this process's own write to a
/// closed pipe) and CHLD (the reaper's), as tini does: what a platform (Fly's `kill_signal` is
/// one of INT, TERM, QUIT, USR1, USR2; `docker stop` sends TERM or the image's STOPSIGNAL) or
/// a terminal (HUP, INT, QUIT, WINCH, TSTP, TTIN, TTOU, CONT) sends, and the rest. None of
/// them ends the process while the child runs: each is caught, and forwarded, except what the
/// terminal already delivered to a child in this process group (`FROM_THE_TERMINAL`).
///
/// Job control follows the child: TSTP, TTIN and TTOU are forwarded, and once the child has
/// stopped on one of them this process stops itself too (unless it is PID 1), so a shell sees
/// the job stopped and gets its terminal back; CONT (the shell's `fg`/`bg`) is forwarded. Unlike
/// dumb-init, which suspends itself as soon as it forwards one, the credential server never
/// pauses under a child that handles or ignores the signal and keeps running. (A child in a
/// session of its own, `--user`, is in an orphaned process group: the kernel discards these
/// three signals for it, so it never stops on them, and neither does this process.)
pub(crate) const FORWARDED: [Signal; 20] = [
    Signal::HUP,
    Signal::INT,
    Signal::QUIT,
    Signal::TERM,
    Signal::USR1,
    Signal::USR2,
    Signal::WINCH,
    Signal::CONT,
    Signal::TSTP,
    Signal::TTIN,
    Signal::TTOU,
    Signal::ALARM,
    Signal::POWER,
    Signal::IO,
    Signal::URG,
    Signal::XCPU,
    Signal::XFSZ,
    Signal::VTALARM,
    Signal::PROF,
    Signal::STKFLT,
];

/// Every signal forwarded: [`FORWARDED`] and the real-time ones.
fn forwarded() -> impl Iterator<Item = Signal> {
    let real_time =
        (Signal::rt_min().as_raw()..=Signal::rt_max().as_raw()).filter_map(Signal::from_raw);
    FORWARDED.into_iter().chain(real_time)
}

/// The stop signals of job control (a terminal's Ctrl-Z, a background read or write).
const JOB_CONTROL_STOPS: [nix::sys::signal::Signal; 3] = [
    nix::sys::signal::Signal::SIGTSTP,
    nix::sys::signal::Signal::SIGTTIN,
    nix::sys::signal::Signal::SIGTTOU,
];

/// Whether `signal`'s default action ends a process. Before the child exists (while the server
/// starts), [`FORWARDED`] signals for which this is true end `exec` with 128 + the signal, as
/// they would have ended the child; the others (WINCH, CONT and the job-control stops) are
/// ignored.
pub(crate) fn ends_by_default(signal: Signal) -> bool {
    ![
        Signal::WINCH,
        Signal::CONT,
        Signal::TSTP,
        Signal::TTIN,
        Signal::TTOU,
        Signal::CHILD,
        Signal::URG,
    ]
    .contains(&signal)
}

/// The exit status of a process that `signal` ended: 128 + its number, as shells report it.
pub(crate) fn killed_by(signal: Signal) -> u8 {
    u8::try_from(128 + signal.as_raw()).unwrap_or(255)
}

/// The [`FORWARDED`] signals and SIGCHLD, caught from [`catch`](Self::catch) on, for
/// [`ChildCommand::run`]. Catch them before starting the server and the child, so none sent in
/// between is lost (or ends the parent alone).
///
/// Each forwarded signal comes with its origin, so that a Ctrl-C, Ctrl-\\, Ctrl-Z or resize
/// that the terminal already delivered to the child is not delivered twice.
pub(crate) struct ForwardedSignals {
    forwarded: SignalsInfo<WithOrigin>,
    child: tokio::signal::unix::Signal,
}

impl fmt::Debug for ForwardedSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardedSignals").finish_non_exhaustive()
    }
}

/// The signals a terminal sends to its foreground process group (Ctrl-C, Ctrl-\\, Ctrl-Z, a
/// resize), from the kernel. When the child shares this process's group, it received the same
/// signal from the terminal: forwarding it again would deliver a Ctrl-C twice. tini avoids that
/// by moving the child into a foreground group of its own; the child here stays in ours, so
/// that a shell's job control (stop, `fg`) keeps working through `exec`.
const FROM_THE_TERMINAL: [Signal; 4] = [Signal::INT, Signal::QUIT, Signal::TSTP, Signal::WINCH];

/// What [`ForwardedSignals::next`] saw.
enum Event {
    /// A signal to forward, and whether the kernel sent it (a terminal), not a process.
    Signal(Signal, bool),
    /// SIGCHLD: a child changed state.
    Child,
}

impl ForwardedSignals {
    /// Catch [`FORWARDED`] and SIGCHLD from now on (needs a Tokio runtime with its I/O
    /// driver).
    ///
    /// # Errors
    /// The system's error when a handler cannot be installed.
    pub(crate) fn catch() -> io::Result<Self> {
        Ok(Self {
            forwarded: SignalsInfo::<WithOrigin>::new(forwarded().map(Signal::as_raw))?,
            child: signal(SignalKind::child())?,
        })
    }

    /// The next [`FORWARDED`] signal caught (SIGCHLD is left for [`ChildCommand::run`]).
    pub(crate) async fn recv(&mut self) -> Signal {
        loop {
            if let Event::Signal(signal, _) = self.next().await {
                return signal;
            }
        }
    }

    /// The next signal caught, or SIGCHLD.
    async fn next(&mut self) -> Event {
        std::future::poll_fn(|cx| {
            if self.child.poll_recv(cx).is_ready() {
                return Poll::Ready(Event::Child);
            }
            while let Poll::Ready(Some(origin)) = Pin::new(&mut self.forwarded).poll_next(cx) {
                if let Some(signal) = Signal::from_raw(origin.signal) {
                    return Poll::Ready(Event::Signal(signal, origin.cause == Cause::Kernel));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// The program that starts the child (see [`launch`]): `program args... --parent PID [--user
/// NAME --gid GID] -- COMMAND ARGS...`, which sets the parent-death signal (and for another
/// user, a session of its own and that user's rights) and then executes the command. `fly-oidc`
/// uses itself (`/proc/self/exe __run-as`): the workspace has no `unsafe`, so no code can run
/// between `fork` and `exec` in this process.
#[derive(Clone, Debug)]
pub(crate) struct Launcher {
    /// The launcher program.
    pub(crate) program: PathBuf,
    /// Its first arguments (its subcommand).
    pub(crate) args: Vec<OsString>,
}

/// A command to run as the child of a server: a program and its arguments.
#[derive(Clone, Debug)]
pub(crate) struct ChildCommand {
    program: OsString,
    args: Vec<OsString>,
    launcher: Option<Launcher>,
    user: Option<ResolvedUser>,
}

/// How a child ended.
#[derive(Debug)]
pub(crate) enum ChildExit {
    /// It ran: how it exited (a code, or the signal that killed it).
    Exited(ExitStatus),
    /// It could not be started.
    NotStarted(SpawnError),
}

impl ChildExit {
    /// The exit status for the parent: the child's exit code; 128 + the signal that killed it;
    /// [`NOT_FOUND`] (127) or [`CANNOT_EXECUTE`] (126) when it could not be started.
    pub(crate) fn code(&self) -> u8 {
        match self {
            ChildExit::Exited(status) => match (status.code(), status.signal()) {
                (Some(code), _) => u8::try_from(code).unwrap_or(1),
                (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
                (None, None) => 1,
            },
            ChildExit::NotStarted(e) => e.code(),
        }
    }
}

/// A program that could not be started. `Display`: `could not run PROGRAM: REASON`.
#[derive(Debug)]
pub(crate) struct SpawnError {
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

    /// [`NOT_FOUND`] (127) when the program does not exist, else [`CANNOT_EXECUTE`] (126).
    pub(crate) fn code(&self) -> u8 {
        match self.source.kind() {
            io::ErrorKind::NotFound => NOT_FOUND,
            _ => CANNOT_EXECUTE,
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
    pub(crate) fn new(program: impl Into<OsString>, args: &[OsString]) -> Self {
        Self {
            program: program.into(),
            args: args.to_vec(),
            launcher: None,
            user: None,
        }
    }

    /// Start it through `launcher` (see [`Launcher`]), which gives it a parent-death signal.
    /// Without one, the program is started directly (no parent-death signal, no other user).
    pub(crate) fn launcher(mut self, launcher: Launcher) -> Self {
        self.launcher = Some(launcher);
        self
    }

    /// Run it as `user` (its groups, `HOME`, `USER` and `LOGNAME`), in a session of its own;
    /// needs a [`launcher`](Self::launcher).
    pub(crate) fn user(mut self, user: ResolvedUser) -> Self {
        self.user = Some(user);
        self
    }

    /// Start the command with `plan`'s environment (this process's, less
    /// [`remove`](EnvPlan::remove), plus [`set`](EnvPlan::set)), forward every signal
    /// `signals` catches to it until it ends (reaping every orphan meanwhile when this process
    /// is PID 1 or a subreaper), and say how it ended.
    ///
    /// Call it from the thread that lives as long as the process (the main thread, under a
    /// current-thread runtime): the child's parent-death signal follows the thread that
    /// started it.
    ///
    /// # Errors
    /// The system's error when waiting for the child fails, or `--user` without a launcher; a
    /// child that cannot be started is [`ChildExit::NotStarted`].
    pub(crate) async fn run(
        &self,
        plan: &EnvPlan,
        signals: &mut ForwardedSignals,
    ) -> io::Result<ChildExit> {
        let mut command = match &self.launcher {
            None if self.user.is_some() => {
                return Err(io::Error::other("running as another user needs a launcher"));
            }
            None => std::process::Command::new(&self.program),
            Some(launcher) => {
                let mut command = std::process::Command::new(&launcher.program);
                command
                    .args(&launcher.args)
                    .arg("--parent")
                    .arg(std::process::id().to_string());
                if let Some(user) = &self.user {
                    command
                        .arg("--user")
                        .arg(&user.name)
                        .arg("--gid")
                        .arg(user.owner.gid.to_string())
                        .env("HOME", &user.home)
                        .env("USER", &user.name)
                        .env("LOGNAME", &user.name);
                }
                command.arg("--").arg(&self.program);
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
        // Another user's child gets a terminal of its own wherever this process has one.
        let mut terminal = match &self.user {
            Some(_) => super::pty::Relay::open().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no pseudo-terminal for the command: it shares this one");
                None
            }),
            None => None,
        };
        if let Some(terminal) = &terminal {
            terminal.attach(&mut command)?;
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Ok(ChildExit::NotStarted(SpawnError::new(&self.program, e))),
        };
        drop(command);
        if let Some(terminal) = &mut terminal {
            terminal.start();
        }
        let pid = i32::try_from(child.id())
            .map(Pid::from_raw)
            .map_err(io::Error::other)?;
        // std's Child neither waits nor kills when dropped: the reaper below owns the wait.
        drop(child);
        let reaper = Reaper::new(pid);
        loop {
            if let Some(status) = reaper.collect()? {
                if let Some(terminal) = terminal {
                    terminal.finish();
                }
                return Ok(ChildExit::Exited(status));
            }
            if let Event::Signal(forward, from_kernel) = signals.next().await {
                if let (Some(terminal), Signal::WINCH) = (&terminal, forward) {
                    // The kernel tells the child, as its terminal changes size.
                    terminal.resize();
                    continue;
                }
                if from_kernel
                    && FROM_THE_TERMINAL.contains(&forward)
                    && getpgid(Some(pid)) == Ok(getpgrp())
                {
                    tracing::debug!(signal = ?forward, "the terminal delivered it to the child too");
                    continue;
                }
                tracing::debug!(signal = ?forward, "forwarding the signal to the child");
                if let Some(child) = rustix::process::Pid::from_raw(pid.as_raw()) {
                    let _ = rustix::process::kill_process(child, forward);
                }
            }
        }
    }
}

/// Collects the child's end (and as PID 1 or a subreaper, every orphan's).
struct Reaper {
    child: Pid,
    /// Wait for any child (`waitpid(-1)`), not only ours: orphans are re-parented to this
    /// process only when it is PID 1 (of its namespace) or a subreaper. Otherwise they go to
    /// the real init, and waiting for any child could take the status of a process some other
    /// part of this program started and waits for itself.
    reap_all: bool,
    /// Stop along with the child on job control (not as PID 1: the kernel does not stop an
    /// init on a signal it sends itself, and a container's init has no shell to return to).
    follow_stops: bool,
}

impl Reaper {
    fn new(child: Pid) -> Self {
        let pid1 = std::process::id() == 1;
        let subreaper = nix::sys::prctl::get_child_subreaper().unwrap_or(false);
        Self {
            child,
            reap_all: pid1 || subreaper,
            follow_stops: !pid1,
        }
    }

    /// Collect every state change already there; the child's end status once it has ended.
    fn collect(&self) -> io::Result<Option<ExitStatus>> {
        let target = (!self.reap_all).then_some(self.child);
        let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED | WaitPidFlag::WCONTINUED;
        loop {
            let status = match waitpid(target, Some(flags)) {
                Ok(WaitStatus::StillAlive) => return Ok(None),
                Ok(status) => status,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => {
                    return Err(io::Error::other("the child was waited for elsewhere"));
                }
                Err(e) => return Err(e.into()),
            };
            if status.pid() != Some(self.child) {
                // An orphan, reaped.
                tracing::debug!(?status, "reaped an orphan");
                continue;
            }
            match status {
                WaitStatus::Exited(_, code) => {
                    return Ok(Some(ExitStatus::from_raw((code & 0xff) << 8)));
                }
                WaitStatus::Signaled(_, signal, core) => {
                    let core = if core { 0x80 } else { 0 };
                    return Ok(Some(ExitStatus::from_raw(signal as i32 | core)));
                }
                WaitStatus::Stopped(_, signal)
                    if self.follow_stops && JOB_CONTROL_STOPS.contains(&signal) =>
                {
                    // The job stopped: stop too, so the shell that started us gets its
                    // terminal back. Its SIGCONT (fg, bg) wakes us and is forwarded.
                    tracing::debug!(%signal, "the child stopped: stopping too");
                    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
                }
                _ => {}
            }
        }
    }
}

/// In a new session, make the terminal on fd 0, 1 or 2, if any, its controlling terminal: the
/// pseudo-terminal `exec` made for another user's child (see [`super::pty`]). Best effort: the
/// starter's own terminal (when no pseudo-terminal could be made) is refused, as it is another
/// session's, and the child runs without one, as before.
fn take_terminal() {
    let terminal = (0..3)
        .map(super::pty::std_fd)
        .find(|fd| rustix::termios::isatty(fd));
    if let Some(fd) = terminal {
        let _ = rustix::process::ioctl_tiocsctty(fd);
    }
}

/// Why [`launch`] returned.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum LaunchError {
    /// No user has this name (an invalid setting).
    UnknownUser(String),
    /// A step of becoming the user, or of setting up the child, failed (`setsid`,
    /// `initgroups`, `setgid`, `setuid`, `prctl`), and why.
    Step(&'static str, Errno),
    /// The parent is already gone: the command is not started.
    ParentGone,
    /// The program could not be executed.
    NotStarted(SpawnError),
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::UnknownUser(name) => write!(f, "{name}: no such user"),
            LaunchError::Step(step, errno) => write!(f, "{step}: {errno}"),
            LaunchError::ParentGone => f.write_str("the parent process is gone"),
            LaunchError::NotStarted(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LaunchError {}

/// The user a [`launch`] becomes: its name and the group to take.
#[derive(Clone, Debug)]
pub(crate) struct LaunchUser {
    /// The user's name.
    pub(crate) name: String,
    /// The numeric group id.
    pub(crate) gid: u32,
}

/// The launcher side of [`Launcher`], in the process that becomes the child: with `user`, a
/// session of its own (no controlling terminal: no way back into the starter's terminal, no
/// TIOCSTI) and then that user's rights (supplementary groups, group, uid); then the
/// parent-death signal (SIGKILL, after the uid change, which clears it), a check that
/// `parent` is still the parent, and `program` executed in this process. Only returns on
/// failure.
///
/// SIGKILL, not SIGTERM: it is only sent when the parent died without forwarding a signal and
/// waiting (SIGKILL, a crash), the child has lost its credential server, and a child that
/// catches or ignores SIGTERM would run on without it.
pub(crate) fn launch(
    parent: u32,
    user: Option<&LaunchUser>,
    program: &OsStr,
    args: &[OsString],
) -> LaunchError {
    use nix::unistd::{Gid, User, initgroups, setgid, setsid, setuid};
    use std::os::unix::process::CommandExt;
    if let Some(user) = user {
        let Some(found) = User::from_name(&user.name).ok().flatten() else {
            return LaunchError::UnknownUser(user.name.clone());
        };
        // A name from the user database holds no NUL byte.
        let Ok(name) = std::ffi::CString::new(found.name) else {
            return LaunchError::UnknownUser(user.name.clone());
        };
        let gid = Gid::from_raw(user.gid);
        let dropped = setsid()
            .map(drop)
            .map_err(|e| ("setsid", e))
            .inspect(|()| take_terminal())
            .and_then(|()| initgroups(&name, gid).map_err(|e| ("initgroups", e)))
            .and_then(|()| setgid(gid).map_err(|e| ("setgid", e)))
            .and_then(|()| setuid(found.uid).map_err(|e| ("setuid", e)));
        if let Err((step, errno)) = dropped {
            return LaunchError::Step(step, errno);
        }
    }
    if let Err(errno) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        return LaunchError::Step("prctl(PR_SET_PDEATHSIG)", errno);
    }
    // The parent may have died before the signal was set: then it never comes.
    if u32::try_from(nix::unistd::getppid().as_raw()).ok() != Some(parent) {
        return LaunchError::ParentGone;
    }
    let error = std::process::Command::new(program).args(args).exec();
    LaunchError::NotStarted(SpawnError::new(program, error))
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
        assert_eq!(exit.code(), NOT_FOUND);
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
    async fn a_program_that_cannot_be_executed_is_126() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("not-executable");
        std::fs::write(&file, "#!/bin/sh\n").expect("write");
        let exit = run(&ChildCommand::new(&file, &[]), &EnvPlan::default()).await;
        assert_eq!(exit.code(), CANNOT_EXECUTE, "{exit:?}");
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

    #[test]
    fn launching_as_an_unknown_user_is_named() {
        let user = LaunchUser {
            name: "no-such-user-fly-oidc".into(),
            gid: 0,
        };
        let err = launch(std::process::id(), Some(&user), OsStr::new("true"), &[]);
        assert!(
            matches!(&err, LaunchError::UnknownUser(name) if name == "no-such-user-fly-oidc"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "no-such-user-fly-oidc: no such user");
    }

    #[test]
    fn default_actions() {
        assert!(ends_by_default(Signal::USR1));
        assert!(ends_by_default(Signal::TERM));
        assert!(ends_by_default(Signal::rt_min()));
        assert!(!ends_by_default(Signal::WINCH));
        assert!(!ends_by_default(Signal::TSTP));
        assert!(!ends_by_default(Signal::URG));
    }

    #[test]
    fn every_asynchronous_signal_is_forwarded_the_real_time_ones_included() {
        let all: Vec<i32> = forwarded().map(Signal::as_raw).collect();
        for caught in [
            1, 2, 3, 10, 12, 14, 15, 16, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
        ] {
            assert!(all.contains(&caught), "{caught}");
        }
        // SIGRTMIN to SIGRTMAX, as the C library sets them (34 to 64 with glibc).
        for real_time in Signal::rt_min().as_raw()..=Signal::rt_max().as_raw() {
            assert!(all.contains(&real_time), "{real_time}");
        }
        // Faults of this process, what cannot be caught, its own broken pipe, the reaper's.
        for kept in [4, 5, 6, 7, 8, 9, 11, 13, 17, 19, 31] {
            assert!(!all.contains(&kept), "{kept}");
        }
    }
}
