//! `fly-oidc exec` as an init, with real processes and real signals: every signal forwarded
//! and none ending exec, job control, orphans reaped as PID 1 (`unshare --pid`), the child
//! killed with exec (parent-death signal), 126 and 127, the private directory (0700 whatever
//! the umask, removed on every way out, and after a crash at the next start), SIGTERM during a
//! hung start, `serve`'s signals, `--user` in a session of its own (a pty), and the process
//! not dumpable (no core file; `/proc/PID/environ` and `mem` closed to the same user, for a
//! non-root `exec` too).
//!
//! The root-only tests (`unshare`, `--user`, `setpriv`) skip when not run as root.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::ROLE;
use crate::support::{
    Running, Sandbox, assert_success, describe, free_listen, run, stderr, wait_until,
};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The fakes, a sandbox, and the runtime directory exec keeps its private directories in.
struct Init {
    fly: FakeFlyApi,
    sts: FakeSts,
    sandbox: Sandbox,
    /// `FLY_OIDC_RUNTIME_DIR`.
    runtime: PathBuf,
}

impl Init {
    fn new() -> Self {
        let fly = crate::support::acme_web();
        let sts = FakeSts::builder().start_blocking().unwrap();
        let mut sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
        // Reachable by a --user child (the runtime directory is 0711, its own 0700).
        std::fs::set_permissions(sandbox.dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let runtime = sandbox.dir.path().join("run");
        sandbox.set("FLY_OIDC_RUNTIME_DIR", runtime.to_str().unwrap());
        Self {
            fly,
            sts,
            sandbox,
            runtime,
        }
    }

    /// `fly-oidc exec --aws-role-arn ROLE --aws-sts-endpoint STS <extra> -- <command>`.
    fn exec(&self, extra: &[&str], command: &[&str]) -> Command {
        let mut cmd = self.sandbox.command(crate::support::fly_oidc_bin());
        cmd.args(["exec", "--aws-role-arn", ROLE, "--aws-sts-endpoint"])
            .arg(self.sts.url())
            .args(extra)
            .arg("--")
            .args(command);
        cmd
    }

    /// A path in the sandbox.
    fn path(&self, name: &str) -> PathBuf {
        self.sandbox.dir.path().join(name)
    }

    /// SIGTERM `child`, which must exit 0 (within 10 s) and leave nothing in the runtime
    /// directory.
    fn stop_cleanly(&self, child: Running) {
        sigterm_exits_0(child);
        assert_eq!(self.leftovers(), Vec::<String>::new());
    }

    /// The private directories left in the runtime directory.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.runtime)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `child`'s exit status, waiting up to 10 s.
fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("exec did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).unwrap())
}

/// The state letter of process `pid` (`/proc/PID/stat`), `None` when it is gone.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn read_pid(path: &Path) -> i32 {
    wait_until("the child wrote its pid", || {
        std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n'))
    });
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A Python child that records every signal of `numbers` it receives in `log` (one number a
/// line), touches `log.ready` once its handlers are in place, and exits 3 once `log.stop`
/// exists.
const RECORDER: &str = r#"
import os, signal, sys, time
log = sys.argv[1]
def record(number, frame):
    with open(log, "a") as f:
        f.write("%d\n" % number)
for number in sys.argv[2].split(","):
    signal.signal(int(number), record)
open(log + ".ready", "w").close()
while not os.path.exists(log + ".stop"):
    time.sleep(0.01)
sys.exit(3)
"#;

/// Every signal but the synchronous ones, KILL, STOP, PIPE and CHLD: as bash's `kill -s` names
/// them, with their numbers (glibc's SIGRTMIN is 34, SIGRTMAX 64).
const EVERY_FORWARDED_SIGNAL: [(&str, i32); 22] = [
    ("QUIT", 3),
    ("USR1", 10),
    ("USR2", 12),
    ("HUP", 1),
    ("INT", 2),
    ("TERM", 15),
    ("WINCH", 28),
    ("CONT", 18),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("ALRM", 14),
    ("PWR", 30),
    ("IO", 29),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("STKFLT", 16),
    ("RTMIN+3", 37),
    ("RTMAX", 64),
];

#[test]
fn every_signal_is_forwarded_and_none_ends_exec() {
    let init = Init::new();
    let log = init.path("signals.log");
    let numbers: Vec<String> = EVERY_FORWARDED_SIGNAL
        .iter()
        .map(|(_, n)| n.to_string())
        .collect();
    let mut exec = init
        .exec(
            &[],
            &[
                "python3",
                "-c",
                RECORDER,
                log.to_str().unwrap(),
                &numbers.join(","),
            ],
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = init.path("signals.log.ready");
    wait_until("the child is ready", || ready.exists());
    for (name, number) in EVERY_FORWARDED_SIGNAL {
        // bash's kill: it names the real-time signals, as `docker stop` and systemd send them.
        let sent = Command::new("bash")
            .args(["-c", &format!("kill -s {name} {}", exec.id())])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {name}");
        wait_until(&format!("SIG{name} reached the child"), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.lines().any(|l| l == number.to_string()))
        });
        assert!(
            exec.try_wait().unwrap().is_none(),
            "SIG{name} ended exec while the child runs"
        );
    }
    std::fs::write(init.path("signals.log.stop"), "").unwrap();
    let status = wait_exit(&mut exec);
    assert_eq!(status.code(), Some(3), "the child's status");
    let got = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        got.lines().count(),
        EVERY_FORWARDED_SIGNAL.len(),
        "each once: {got}"
    );
}

#[test]
fn exec_stops_with_its_child_on_job_control_and_continues_with_it() {
    let init = Init::new();
    let pid_file = init.path("child.pid");
    let script = format!(
        "echo $$ > {}; while :; do sleep 0.02; done",
        pid_file.display()
    );
    // A process group of its own, whose parent (this test) is in another group of the same
    // session: not orphaned, so a stop signal with its default action does stop.
    let mut exec = init
        .exec(&[], &["sh", "-c", &script])
        .process_group(0)
        .spawn()
        .unwrap();
    let child = read_pid(&pid_file);
    let exec_pid = pid_of(&exec).as_raw();
    kill(pid_of(&exec), Signal::SIGTSTP).unwrap();
    wait_until("the child and exec stopped", || {
        state(child) == Some('T') && state(exec_pid) == Some('T')
    });
    kill(pid_of(&exec), Signal::SIGCONT).unwrap();
    wait_until("both continued", || {
        state(child) != Some('T') && state(exec_pid) != Some('T')
    });
    kill(pid_of(&exec), Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit(&mut exec).code(), Some(128 + 15));
}

#[test]
fn as_pid_1_orphans_are_reaped_and_the_childs_status_kept() {
    if !fly_oidc_tests::require_root("unshare --pid") {
        return;
    }
    if !fly_oidc_tests::require_tool("unshare") {
        return;
    }
    let init = Init::new();
    // Five orphans (their parent shell exits at once), then count the zombies in the
    // namespace once they have ended.
    let script = "for i in 1 2 3 4 5; do sh -c 'sleep 0.1 &'; done; sleep 0.8; \
                  echo \"pid1=$(cat /proc/1/comm) zombies=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == \"Z\"' | wc -l)\"; exit 7";
    let cmd = init.exec(&[], &["sh", "-c", script]);
    let exec = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let out = init
        .sandbox
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(exec)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "pid1=fly-oidc zombies=0",
        "{}",
        describe(&out)
    );
}

#[test]
fn sigkill_of_exec_kills_the_child() {
    let init = Init::new();
    let pid_file = init.path("child.pid");
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let mut exec = init.exec(&[], &["sh", "-c", &script]).spawn().unwrap();
    let child = read_pid(&pid_file);
    exec.kill().unwrap();
    exec.wait().unwrap();
    wait_until("the child died with exec", || {
        matches!(state(child), None | Some('Z'))
    });
    // And the next start removes what the killed exec left.
    let out = init.exec(&[], &["true"]).output().unwrap();
    assert_success(&out, "exec true");
    assert_eq!(init.leftovers(), Vec::<String>::new());
}

#[test]
fn not_found_is_127_and_cannot_execute_is_126() {
    let init = Init::new();
    let plain = init.path("not-executable");
    std::fs::write(&plain, "#!/bin/sh\necho ran\n").unwrap();
    let cases = [
        ("/nonexistent/program", 127, "No such file or directory"),
        ("no-such-program-fly-oidc", 127, "No such file or directory"),
        (plain.to_str().unwrap(), 126, "Permission denied"),
        ("/tmp", 126, "Permission denied"),
    ];
    for (program, code, reason) in cases {
        let out = init.exec(&[], &[program]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{program}: {}",
            describe(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("could not run {program}: {reason}")),
            "{stderr}"
        );
        assert_eq!(init.leftovers(), Vec::<String>::new(), "{program}");
    }
}

#[test]
fn every_way_out_removes_the_private_directory_and_token_files() {
    let init = Init::new();
    let ways = [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ];
    for signal in ways {
        let out_file = init.path("token-file-path");
        let _ = std::fs::remove_file(&out_file);
        let vault = init.path("vault-token");
        let spec = format!("{}=vault", vault.display());
        let script = format!(
            "echo \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\" > {0}.tmp; mv {0}.tmp {0}; ulimit -c 0; exec sleep 30",
            out_file.display()
        );
        let mut exec = init
            .exec(&["--write-token", &spec], &["sh", "-c", &script])
            .spawn()
            .unwrap();
        wait_until("the child started", || out_file.exists());
        let token_file = std::fs::read_to_string(&out_file).unwrap();
        let token_file = Path::new(token_file.trim());
        assert!(token_file.exists() && vault.exists());
        assert!(token_file.starts_with(&init.runtime), "{token_file:?}");
        kill(pid_of(&exec), signal).unwrap();
        let status = wait_exit(&mut exec);
        assert_eq!(status.code(), Some(128 + signal as i32), "{signal}");
        assert!(!token_file.exists(), "{signal}: the token file is left");
        assert!(!vault.exists(), "{signal}: the --write-token file is left");
        assert_eq!(init.leftovers(), Vec::<String>::new(), "{signal}");
    }
    // The child's end, and a failure (a command not found).
    assert_success(&init.exec(&[], &["true"]).output().unwrap(), "exec true");
    assert_eq!(init.leftovers(), Vec::<String>::new());
}

#[test]
fn a_crashed_execs_directory_is_removed_at_the_next_start_and_a_live_ones_kept() {
    let init = Init::new();
    let started = |name: &str| {
        let marker = init.path(name);
        let script = format!("touch {}; exec sleep 30", marker.display());
        let exec = init.exec(&[], &["sh", "-c", &script]).spawn().unwrap();
        wait_until("the child started", || marker.exists());
        exec
    };
    let mut crashed = started("crashed");
    crashed.kill().unwrap();
    crashed.wait().unwrap();
    let left = init.leftovers();
    assert_eq!(left.len(), 1, "SIGKILL leaves the directory: {left:?}");
    let mut live = started("live");
    let now = init.leftovers();
    assert!(
        !now.contains(&left[0]),
        "the crashed one's is removed: {now:?}"
    );
    assert_eq!(now.len(), 1, "{now:?}");
    // Another start keeps the live one's.
    assert_success(&init.exec(&[], &["true"]).output().unwrap(), "exec true");
    assert_eq!(init.leftovers(), now);
    kill(pid_of(&live), Signal::SIGTERM).unwrap();
    wait_exit(&mut live);
    assert_eq!(init.leftovers(), Vec::<String>::new());
}

#[test]
fn the_private_directory_is_0700_whatever_the_umask() {
    let init = Init::new();
    let cmd = init.exec(
        &[],
        &[
            "sh",
            "-c",
            "d=$(dirname \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"); stat -c %a \"$d\" \"$(dirname \"$d\")\" \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"",
        ],
    );
    let out = init
        .sandbox
        .command("sh")
        .args(["-c", "umask 000; exec \"$@\"", "sh"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .output()
        .unwrap();
    assert_success(&out, "exec under umask 000");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["700", "711", "600"], "{stdout}");
}

impl Init {
    /// Start `cmd` (stderr piped) while the Machines API hangs for 30 s, and SIGTERM it once it
    /// asked: its exit status, and how long it took to exit.
    fn sigterm_during_a_hung_start(&self, cmd: &mut Command) -> (ExitStatus, Duration) {
        self.fly
            .fail_next(1, fly_oidc_testkit::Fault::Delay(Duration::from_secs(30)));
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        wait_until("it asked the Machines API", || {
            self.fly.request_count() >= 1
        });
        let stopping = Instant::now();
        kill(pid_of(&child), Signal::SIGTERM).unwrap();
        let status = wait_exit(&mut child);
        (status, stopping.elapsed())
    }
}

#[test]
fn sigterm_during_a_hung_start_exits_143_at_once_and_cleaned_up() {
    let init = Init::new();
    let marker = init.path("ran");
    let touch = format!("touch {}", marker.display());
    let (status, took) =
        init.sigterm_during_a_hung_start(&mut init.exec(&[], &["sh", "-c", &touch]));
    eprintln!("SIGTERM during a hung start: exited in {took:?}");
    assert_eq!(status.code(), Some(143));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(!marker.exists(), "the command must not start");
    assert_eq!(init.leftovers(), Vec::<String>::new());
}

#[test]
fn serve_stops_during_a_hung_start_with_exit_0() {
    let init = Init::new();
    let vault = init.path("vault-token");
    let spec = format!("{}=vault", vault.display());
    let mut serve = init.sandbox.command(crate::support::fly_oidc_bin());
    serve.args(["serve", "--listen", "127.0.0.1:0", "--write-token", &spec]);
    let (status, took) = init.sigterm_during_a_hung_start(&mut serve);
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(!vault.exists());
}

#[test]
fn serve_stops_with_exit_0_on_int_term_quit_hup_and_ignores_usr1_usr2() {
    let init = Init::new();
    let listen = free_listen();
    let env_file = init.path("creds.env");
    let token_file = init.path("creds.env.aws-token");
    let vault = init.path("vault-token");
    let spec = format!("{}=vault", vault.display());
    for stop in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGQUIT,
        Signal::SIGHUP,
    ] {
        let mut serve = init
            .sandbox
            .command(crate::support::fly_oidc_bin())
            .args(["serve", "--listen", &listen, "--env-file"])
            .arg(&env_file)
            .args(["--aws-role-arn", ROLE, "--aws-sts-endpoint"])
            .arg(init.sts.url())
            .args(["--write-token", &spec])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("serve wrote its files", || {
            env_file.exists() && token_file.exists() && vault.exists()
        });
        for ignored in [Signal::SIGUSR1, Signal::SIGUSR2] {
            kill(pid_of(&serve), ignored).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(serve.try_wait().unwrap().is_none(), "USR1/USR2 ended serve");
        assert!(env_file.exists() && token_file.exists() && vault.exists());
        kill(pid_of(&serve), stop).unwrap();
        let status = wait_exit(&mut serve);
        assert_eq!(status.code(), Some(0), "{stop}");
        for path in [&env_file, &token_file, &vault] {
            assert!(!path.exists(), "{stop}: {} is left", path.display());
        }
        let mut stderr = String::new();
        std::io::Read::read_to_string(serve.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(stderr.contains("SIGUSR1 ignored"), "{stderr}");
        assert!(stderr.contains("SIGUSR2 ignored"), "{stderr}");
    }
}

/// What [`in_pty`] does at the terminal, in order, while `argv` runs.
enum Step<'a> {
    /// Wait (up to 20 s) until the terminal has shown this text.
    Shown(&'a str),
    /// Wait (up to 20 s) until this file exists.
    File(&'a Path),
    /// Type these bytes.
    Type(&'a str),
    /// Resize the terminal (rows, columns).
    Resize(u16, u16),
    /// Send this signal to `argv`'s process (from a process, not the terminal).
    Kill(Signal),
    /// Let this long pass, showing what comes meanwhile.
    Pause(Duration),
    /// Create this file.
    Touch(&'a Path),
}

/// Run `argv` in a new pty (python's `pty.fork`: a session whose controlling terminal is the
/// pty), take `steps` at the terminal, and return what it showed until `argv` ended and its
/// exit code.
fn in_pty(argv: &[&str], steps: &[Step<'_>], env: &Sandbox) -> (String, Option<i32>) {
    const HARNESS: &str = r#"
import fcntl, json, os, pty, select, struct, sys, termios, time
steps = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
out = b""
def read(seconds):
    global out
    if select.select([fd], [], [], seconds)[0]:
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        out += data
        return bool(data)
    return True
def until(done):
    end = time.time() + 20
    while not done() and time.time() < end:
        read(0.05)
for kind, arg in steps:
    if kind == "shown":
        until(lambda: arg.encode() in out)
    elif kind == "file":
        until(lambda: os.path.exists(arg))
    elif kind == "type":
        os.write(fd, arg.encode())
    elif kind == "resize":
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", arg[0], arg[1], 0, 0))
    elif kind == "kill":
        os.kill(pid, arg)
    elif kind == "pause":
        end = time.time() + arg
        while time.time() < end:
            read(0.05)
    elif kind == "touch":
        open(arg, "w").close()
while read(1):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|step| match step {
            Step::Shown(text) => serde_json::json!(["shown", text]),
            Step::File(path) => serde_json::json!(["file", path]),
            Step::Type(text) => serde_json::json!(["type", text]),
            Step::Resize(rows, columns) => serde_json::json!(["resize", [rows, columns]]),
            Step::Kill(signal) => serde_json::json!(["kill", *signal as i32]),
            Step::Pause(time) => serde_json::json!(["pause", time.as_secs_f64()]),
            Step::Touch(path) => serde_json::json!(["touch", path]),
        })
        .collect();
    let out = env
        .command("python3")
        .args(["-c", HARNESS, &serde_json::Value::from(steps).to_string()])
        .args(argv)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

/// A bash command line that runs `exec` as `cmd` says (its arguments quoted for the shell),
/// then `after`: the starter's shell, for the pty tests.
fn starter_shell(cmd: &Command, after: &str) -> String {
    let line = std::iter::once(crate::support::fly_oidc_bin().into_os_string())
        .chain(cmd.get_args().map(|a| a.to_owned()))
        .map(|a| format!("'{}'", a.to_str().unwrap().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    format!("{line}; {after}")
}

#[test]
fn user_child_has_a_terminal_of_its_own_and_cannot_push_keystrokes_into_the_starters() {
    if !fly_oidc_tests::require_root("--user") {
        return;
    }
    let init = Init::new();
    // As nobody: open the controlling terminal, push a command line into fd 0.
    let probe = r#"
import errno, fcntl, os, termios
result = []
try:
    os.open("/dev/tty", os.O_RDWR)
    result.append("devtty=opened")
except OSError as e:
    result.append("devtty=" + errno.errorcode[e.errno])
try:
    for byte in b"echo pwned\n":
        fcntl.ioctl(0, termios.TIOCSTI, bytes([byte]))
    result.append("tiocsti=pushed")
except OSError as e:
    result.append("tiocsti=" + errno.errorcode[e.errno])
result.append("session-leader=%s" % (os.getsid(0) == os.getpid()))
print(" ".join(result))
"#;
    // The starter's shell reads its next line after exec: what was pushed, if it reached it.
    let run = |extra: &[&str]| {
        let cmd = init.exec(extra, &["/usr/bin/python3", "-c", probe]);
        let script = starter_shell(
            &cmd,
            "echo exec-rc=$?; read -t 1 line; echo \"starter-read=[$line]\"",
        );
        let bash = ["/bin/bash", "--norc", "--noprofile", "-c", &script];
        in_pty(&bash, &[], &init.sandbox).0
    };
    // With --user: a session of its own on a terminal of its own (a pseudo-terminal exec
    // relays): what it pushes stays in its own terminal.
    let shown = run(&["--user", "nobody"]);
    assert!(
        shown.contains("devtty=opened tiocsti=pushed session-leader=True"),
        "{shown}"
    );
    assert!(shown.contains("exec-rc=0"), "{shown}");
    assert!(shown.contains("starter-read=[]"), "{shown}");
    // Without --user, the child keeps the starter's terminal (job control, Ctrl-C).
    let shown = run(&[]);
    assert!(shown.contains("devtty=opened"), "{shown}");
}

/// `setpriv` to run as nobody (uid and gid 65534, no supplementary groups).
fn as_nobody(sandbox: &Sandbox) -> Command {
    let mut cmd = sandbox.command("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    cmd
}

/// Whether this test can run processes as nobody: as root, with `setpriv`.
fn can_run_as_nobody() -> bool {
    fly_oidc_tests::require_root("running as another user")
        && fly_oidc_tests::require_tool("setpriv")
}

/// For a test of processes run as nobody: `None` (skip the test) when they cannot run, else an
/// `Init` over HTTP ([`Init::over_http`]) and [`Init::binary_for_nobody`]'s directory and binary.
fn init_for_nobody() -> Option<(Init, PathBuf, PathBuf)> {
    if !can_run_as_nobody() {
        return None;
    }
    let mut init = Init::new();
    init.over_http();
    let (shared, bin) = init.binary_for_nobody();
    Some((init, shared, bin))
}

impl Init {
    /// For processes run as nobody, who cannot reach the fake's socket: the Fly token from the
    /// Machines API over HTTP, with `FLY_API_TOKEN` in the environment.
    fn over_http(&mut self) {
        self.sandbox.unset("FLY_OIDC_SOCKET");
        self.sandbox.set("FLY_API_HOSTNAME", &self.fly.url());
        self.sandbox.set("FLY_API_TOKEN", self.fly.api_token());
    }

    /// `shared` in the sandbox, a directory anyone may write (0777).
    fn shared_dir(&self) -> PathBuf {
        let shared = self.path("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        shared
    }

    /// [`shared_dir`](Self::shared_dir), and a copy of the binary in it that nobody can run:
    /// (the directory, the binary).
    fn binary_for_nobody(&self) -> (PathBuf, PathBuf) {
        let shared = self.shared_dir();
        let bin = shared.join("fly-oidc");
        crate::support::install_binary_at(&bin);
        (shared, bin)
    }
}

#[test]
fn serve_and_exec_are_not_dumpable_and_the_child_never_sees_fly_api_token() {
    // A copy of the binary, and a token directory of nobody's own that no other user can
    // change (serve refuses one others could: `shared` is 0777).
    let Some((init, shared, bin)) = init_for_nobody() else {
        return;
    };
    let api_token = init.fly.api_token().to_owned();
    let reachable = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .unwrap();
    let own = reachable.path().join("nobody");
    std::fs::create_dir(&own).unwrap();
    std::os::unix::fs::chown(&own, Some(65534), Some(65534)).unwrap();
    let vault = own.join("vault-token");
    let spec = format!("{}=vault", vault.display());

    // serve, as nobody, with FLY_API_TOKEN in its environment.
    let mut serve = as_nobody(&init.sandbox)
        .arg(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--write-token", &spec])
        .env("HOME", &shared)
        // A runtime directory nobody can make (the sandbox's is root's).
        .env("FLY_OIDC_RUNTIME_DIR", shared.join("run"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("serve wrote its token file", || vault.exists());
    let pid = serve.id();
    // Another process of the same user.
    for file in ["environ", "mem"] {
        let out = as_nobody(&init.sandbox)
            .args(["/usr/bin/python3", "-c"])
            .arg(format!(
                "import sys; print(open('/proc/{pid}/{file}', 'rb').read(4096))"
            ))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{file} readable: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("PermissionError"), "{file}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(&api_token));
    }
    kill(pid_of(&serve), Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit(&mut serve).code(), Some(0));

    // exec as root, its child as nobody: it cannot read exec's environment, and its own (what
    // the __run-as launcher passed on) has no FLY_API_TOKEN.
    let probe = "import os\n\
                 try:\n    open('/proc/%d/environ' % os.getppid(), 'rb').read(); print('parent=readable')\n\
                 except PermissionError:\n    print('parent=denied')\n\
                 own = open('/proc/self/environ', 'rb').read()\n\
                 print('own-token=%s' % (b'FLY_API_TOKEN' in own))";
    for extra in [&["--user", "nobody"][..], &[][..]] {
        let out = init
            .exec(extra, &["/usr/bin/python3", "-c", probe])
            .output()
            .unwrap();
        assert_success(&out, "exec probe");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if extra.is_empty() {
            // A child running as root, like the server, can read anything: out of scope.
            assert!(stdout.contains("own-token=False"), "{stdout}");
        } else {
            assert!(
                stdout.contains("parent=denied\nown-token=False"),
                "{stdout}"
            );
        }
        assert!(!stdout.contains(&api_token), "{stdout}");
    }
}

#[test]
fn the_launcher_does_not_start_the_command_when_its_parent_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    // This test is its parent, not process 1: as if exec died before the launcher ran.
    let touch = marker.to_str().unwrap();
    let out = run(&["__run-as", "--parent", "1", "--", "touch", touch], &[]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the parent process is gone"),
        "{}",
        describe(&out)
    );
    assert!(!marker.exists());
}

#[test]
fn exec_without_double_dash_says_where_it_goes() {
    let out = run(&["exec", "env"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    fly_oidc_tests::assert_contains_all(
        &stderr(&out),
        &[
            "unexpected argument 'env'",
            "tip: put the command after `--`",
            "fly-oidc exec [OPTIONS] -- COMMAND",
        ],
    );
}

/// An unknown flag before `--` is refused without clap's tip to pass it after `--`, which for
/// `exec` would run the flag as the command.
#[test]
fn an_unknown_exec_flag_gets_no_tip_to_run_it_as_the_command() {
    let out = run(&["exec", "--bogus", "--", "true"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unexpected argument '--bogus'"), "{stderr}");
    assert!(stderr.contains("Usage: fly-oidc exec"), "{stderr}");
    assert!(!stderr.contains("-- --bogus"), "{stderr}");
    assert!(!stderr.contains("\n\n\n"), "{stderr}");
}

/// The core files in `dir`.
fn cores(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("core"))
        .collect()
}

/// `command` run by `sh` with `ulimit -c unlimited`, in `dir`.
fn dumping_cores(sandbox: &Sandbox, dir: &Path, command: &[&str]) -> Command {
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = sandbox.command("sh");
    cmd.current_dir(dir)
        .args(["-c", "ulimit -c unlimited && exec \"$@\"", "sh"])
        .args(command);
    cmd
}

/// SIGABRT (whose default action dumps core) with `ulimit -c unlimited`: a dumpable process
/// leaves a core file, `serve` and `exec` leave none (they hold every secret in memory).
#[test]
fn serve_and_exec_leave_no_core_file_where_a_dumpable_process_does() {
    use std::os::unix::process::ExitStatusExt;
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.starts_with('|') || pattern.contains('/') {
        eprintln!("SKIPPED: core files go to {pattern:?}, not the working directory");
        return;
    }
    let init = Init::new();
    let abort = |child: &mut Child| {
        kill(pid_of(child), Signal::SIGABRT).unwrap();
        wait_exit(child)
    };
    // The control: a process that can dump does.
    let dir = init.path("control");
    let mut sleep = dumping_cores(&init.sandbox, &dir, &["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let status = abort(&mut sleep);
    assert!(status.core_dumped(), "{status:?}");
    wait_until("the control's core file", || !cores(&dir).is_empty());

    // `fly-oidc <args>` in `dir`, aborted once it wrote `ready`: killed by SIGABRT, no core.
    let bin = crate::support::fly_oidc_bin();
    let aborts_without_core = |dir: &Path, args: &[&str], ready: &Path| {
        let command = [&[bin.to_str().unwrap()], args].concat();
        let mut child = dumping_cores(&init.sandbox, dir, &command)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(&format!("{args:?} wrote {}", ready.display()), || {
            ready.exists()
        });
        let status = abort(&mut child);
        assert_eq!(status.signal(), Some(Signal::SIGABRT as i32), "{status:?}");
        assert!(!status.core_dumped(), "{status:?}");
    };
    let token = init.path("token");
    let spec = format!("{}=vault", token.display());
    let serve = ["serve", "--listen", "127.0.0.1:0", "--write-token", &spec];
    aborts_without_core(&init.path("serve"), &serve, &token);
    let dir = init.path("exec");
    let ready = init.path("ready");
    let script = format!("touch {}; exec sleep 30", ready.display());
    let sts = init.sts.url();
    let exec = [
        "exec",
        "--aws-role-arn",
        ROLE,
        "--aws-sts-endpoint",
        &sts,
        "--",
    ];
    aborts_without_core(&dir, &[&exec[..], &["sh", "-c", &script]].concat(), &ready);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(cores(&init.path("serve")), Vec::<String>::new());
    assert_eq!(cores(&dir), Vec::<String>::new());
}

/// `exec` run as a user other than root: its child, of the same user, cannot read exec's
/// `/proc/PID/environ` (FLY_API_TOKEN) or `mem`, where it can read another process's of that
/// user.
#[test]
fn a_non_root_execs_environment_and_memory_are_closed_to_its_child() {
    let Some((mut init, shared, bin)) = init_for_nobody() else {
        return;
    };
    init.sandbox
        .set("FLY_OIDC_RUNTIME_DIR", shared.join("run").to_str().unwrap());
    let probe = "import os, sys\n\
                 for pid, name in ((os.getppid(), 'exec'), (int(sys.argv[1]), 'other')):\n    \
                 for f in ('environ', 'mem'):\n        \
                 try:\n            open('/proc/%d/%s' % (pid, f), 'rb').read(1)\n            \
                 print('%s-%s=readable' % (name, f))\n        \
                 except PermissionError:\n            print('%s-%s=denied' % (name, f))\n        \
                 except OSError:\n            print('%s-%s=opened' % (name, f))";
    // The control: another process of the same user, holding the token in its environment.
    let mut other = as_nobody(&init.sandbox)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let other_pid = other.id().to_string();
    let out = as_nobody(&init.sandbox)
        .arg(&bin)
        .args(["exec", "--aws-role-arn", ROLE, "--aws-sts-endpoint"])
        .arg(init.sts.url())
        .args(["--", "/usr/bin/python3", "-c", probe, &other_pid])
        .env("HOME", &shared)
        .output()
        .unwrap();
    let _ = other.kill();
    let _ = other.wait();
    assert_success(&out, "exec as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("exec-environ=denied\nexec-mem=denied\n"),
        "{stdout}"
    );
    // /proc/PID/mem opens for its own user, and reading at offset 0 (unmapped) fails.
    assert!(
        stdout.contains("other-environ=readable\nother-mem=opened\n"),
        "{stdout}"
    );
}

/// The parent-death signal is set after the uid change (which clears it): a `--user` child
/// dies with a killed exec too.
#[test]
fn sigkill_of_exec_kills_a_user_child() {
    if !fly_oidc_tests::require_root("--user") {
        return;
    }
    let init = Init::new();
    let shared = init.shared_dir();
    let pid_file = shared.join("child.pid");
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let mut exec = init
        .exec(&["--user", "nobody"], &["sh", "-c", &script])
        .spawn()
        .unwrap();
    let child = read_pid(&pid_file);
    let uid = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
    assert!(uid.contains("\nUid:\t65534\t"), "{uid}");
    exec.kill().unwrap();
    exec.wait().unwrap();
    wait_until("the child died with exec", || {
        matches!(state(child), None | Some('Z'))
    });
}

/// What would win over the served credentials: web identity and a relative container URI are
/// removed; static keys and `AWS_PROFILE` are left, each with a warning naming it.
#[test]
fn exec_removes_what_would_win_over_its_credentials_and_warns_of_what_it_leaves() {
    let mut init = Init::new();
    for (name, value) in [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/.fly/oidc_token"),
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        ),
        ("AWS_ACCESS_KEY_ID", "AKIASTATICKEY"),
        ("AWS_SECRET_ACCESS_KEY", "static-secret"),
        ("AWS_PROFILE", "other"),
    ] {
        init.sandbox.set(name, value);
    }
    let out = init.exec(&[], &["env"]).output().unwrap();
    assert_success(&out, "exec env");
    let env = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!env.contains("AWS_WEB_IDENTITY_TOKEN_FILE="), "{env}");
    assert!(
        !env.contains("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="),
        "{env}"
    );
    assert!(env.contains("AWS_ACCESS_KEY_ID=AKIASTATICKEY"), "{env}");
    assert!(env.contains("AWS_PROFILE=other"), "{env}");
    assert!(
        stderr.contains("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set"),
        "{stderr}"
    );
    assert!(stderr.contains("AWS_PROFILE is set"), "{stderr}");
    assert!(!stderr.contains("static-secret"), "{stderr}");
}

impl Init {
    /// `fly-oidc serve --listen 127.0.0.1:0 --aws-role-arn ROLE ... --env-file ENV
    /// --write-token TOKEN=vault`.
    fn serve(&self, env_file: &Path, token: &Path) -> Command {
        let mut cmd = self.sandbox.command(crate::support::fly_oidc_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--env-file"])
            .arg(env_file)
            .args(["--aws-role-arn", ROLE, "--aws-sts-endpoint"])
            .arg(self.sts.url())
            .arg("--write-token")
            .arg(format!("{}=vault", token.display()))
            .stderr(Stdio::null());
        cmd
    }

    /// `exec --write-token` for each of `tokens`, its child `sleep`ing once they are written.
    fn exec_writing(&self, tokens: &[&Path]) -> Running {
        let marker = self.path("started");
        let _ = std::fs::remove_file(&marker);
        let mut extra = Vec::new();
        for token in tokens {
            extra.push("--write-token".to_owned());
            extra.push(format!("{}=vault", token.display()));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let script = format!("touch {}; exec sleep 30", marker.display());
        let exec = Running::new(self.exec(&extra, &["sh", "-c", &script]).spawn().unwrap());
        wait_until("the child started", || marker.exists());
        exec
    }
}

impl Init {
    /// [`serve`](Self::serve) started, once `files` (what it writes) exist.
    fn serve_until(&self, env_file: &Path, token: &Path, files: &[impl AsRef<Path>]) -> Running {
        let serve = self
            .serve(env_file, token)
            .spawn()
            .map(Running::new)
            .unwrap();
        wait_until("serve wrote its files", || {
            files.iter().all(|f| f.as_ref().exists())
        });
        serve
    }
}

/// SIGTERM `child`, which must exit 0 (within 10 s).
fn sigterm_exits_0(mut child: Running) {
    kill(pid_of(&child), Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}

/// SIGKILL `child`, and wait for it.
fn sigkill(mut child: Running) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_execs_write_token_files_are_removed_at_the_next_start() {
    let init = Init::new();
    let vault = init.path("vault-token");
    sigkill(init.exec_writing(&[&vault]));
    assert!(
        vault.exists(),
        "SIGKILL leaves the token file until the next start"
    );
    assert!(!init.leftovers().is_empty());
    assert_success(&init.exec(&[], &["true"]).output().unwrap(), "exec true");
    assert!(!vault.exists(), "the next exec removes the token file");
    assert_eq!(init.leftovers(), Vec::<String>::new());
    // A serve's start cleans up after an exec too.
    sigkill(init.exec_writing(&[&vault]));
    assert!(vault.exists());
    let (env_file, other) = (init.path("app.env"), init.path("other-token"));
    let serve = init.serve_until(&env_file, &other, &[&env_file, &other]);
    assert!(!vault.exists(), "the next serve removes exec's token file");
    init.stop_cleanly(serve);
}

#[test]
fn a_killed_serves_env_file_token_files_and_lock_are_removed_at_the_next_start() {
    let init = Init::new();
    let env_file = init.path("app.env");
    let auth_token = init.path("app.env.aws-token");
    let lock = init.path("app.env.lock");
    let vault = init.path("vault-token");
    let files = [&env_file, &auth_token, &lock, &vault];
    let serve = init.serve_until(&env_file, &vault, &files);
    sigkill(serve);
    for file in files {
        assert!(file.exists(), "SIGKILL leaves {}", file.display());
    }
    // Another serve with other files: it removes the killed one's.
    let (env_2, vault_2) = (init.path("two.env"), init.path("vault-2"));
    let serve = init.serve_until(&env_2, &vault_2, &[&env_2, &vault_2]);
    for file in files {
        assert!(!file.exists(), "{} is left", file.display());
    }
    init.stop_cleanly(serve);
    // The same env file again: killed, then taken by the next serve.
    let serve = init.serve_until(&env_file, &vault, &files);
    let old_token = std::fs::read_to_string(&auth_token).unwrap();
    sigkill(serve);
    let serve = init
        .serve(&env_file, &vault)
        .spawn()
        .map(Running::new)
        .unwrap();
    wait_until("the next serve wrote its files", || {
        files.iter().all(|f| f.exists())
            && std::fs::read_to_string(&auth_token).is_ok_and(|t| t != old_token)
    });
    let pid = std::fs::read_to_string(&lock).unwrap();
    assert_eq!(
        pid,
        serve.id().to_string(),
        "the lock file is the new serve's"
    );
    sigterm_exits_0(serve);
    for file in files {
        assert!(!file.exists(), "{} is left", file.display());
    }
    assert_eq!(init.leftovers(), Vec::<String>::new());
}

#[test]
fn a_left_file_replaced_since_is_kept_and_a_live_serves_files_never_touched() {
    let init = Init::new();
    // A live serve: no start after it touches its files.
    let env_file = init.path("live.env");
    let vault = init.path("live-token");
    let live_files = [
        env_file.clone(),
        init.path("live.env.aws-token"),
        init.path("live.env.lock"),
        vault.clone(),
    ];
    let live = init.serve_until(&env_file, &vault, &live_files);
    let before: Vec<String> = live_files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    // A killed exec whose token files were replaced since: by a link, by another file.
    let (linked, replaced) = (init.path("linked-token"), init.path("replaced-token"));
    sigkill(init.exec_writing(&[&linked, &replaced]));
    let target = init.path("not-ours");
    std::fs::write(&target, "keep me").unwrap();
    std::fs::remove_file(&linked).unwrap();
    std::os::unix::fs::symlink(&target, &linked).unwrap();
    std::fs::write(init.path("replacement"), "someone else's").unwrap();
    std::fs::rename(init.path("replacement"), &replaced).unwrap();
    assert_success(&init.exec(&[], &["true"]).output().unwrap(), "exec true");
    assert!(std::fs::symlink_metadata(&linked).unwrap().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert_eq!(
        std::fs::read_to_string(&replaced).unwrap(),
        "someone else's"
    );
    // A second serve and an exec started meanwhile left the live one's files alone.
    let (env_2, vault_2) = (init.path("two.env"), init.path("two-token"));
    let second = init.serve_until(&env_2, &vault_2, &[&env_2, &vault_2]);
    sigterm_exits_0(second);
    let after: Vec<String> = live_files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(after, before, "the live serve's files are untouched");
    assert_eq!(
        init.leftovers().len(),
        2,
        "the live serve's directory and record: {:?}",
        init.leftovers()
    );
    init.stop_cleanly(live);
}

#[test]
fn a_terminals_ctrl_c_and_resize_reach_the_child_once_and_a_kill_is_forwarded() {
    let init = Init::new();
    let mark = init.path("terminal");
    // The child counts SIGINT and SIGWINCH until told to stop.
    let child = r#"
import os, signal, sys, time
counts = {"SIGINT": 0, "SIGWINCH": 0}
def seen(number, frame):
    counts[signal.Signals(number).name] += 1
signal.signal(signal.SIGINT, seen)
signal.signal(signal.SIGWINCH, seen)
open(sys.argv[1] + ".ready", "w").close()
while not os.path.exists(sys.argv[1] + ".stop"):
    time.sleep(0.01)
print("SIGINT=%(SIGINT)d SIGWINCH=%(SIGWINCH)d" % counts, flush=True)
"#;
    // In a pty whose foreground group is exec's (and the child's): a Ctrl-C typed there and a
    // resize come from the terminal, then a `kill -INT` of exec from a process.
    let cmd = init.exec(&[], &["python3", "-c", child, mark.to_str().unwrap()]);
    let mut argv = vec![crate::support::fly_oidc_bin()];
    argv.extend(cmd.get_args().map(PathBuf::from));
    let argv: Vec<&str> = argv.iter().map(|a| a.to_str().unwrap()).collect();
    let (ready, stop) = (init.path("terminal.ready"), init.path("terminal.stop"));
    let pause = || Step::Pause(Duration::from_millis(500));
    let steps = [
        Step::File(&ready),
        Step::Type("\x03"),
        pause(),
        Step::Resize(40, 100),
        pause(),
        Step::Kill(Signal::SIGINT),
        pause(),
        Step::Touch(&stop),
    ];
    let (shown, code) = in_pty(&argv, &steps, &init.sandbox);
    assert_eq!(code, Some(0), "{shown}");
    // Once from the terminal (not again from exec), once forwarded from the kill.
    assert!(shown.contains("SIGINT=2 SIGWINCH=1"), "{shown}");
}

/// `FLY_OIDC_RUNTIME_DIR` names the one directory to use: a link, a file, or a directory of
/// another user is an invalid setting (exit 2, naming the variable and the fix) for `exec` and
/// `serve`, before anything is fetched or started.
#[test]
fn an_unusable_fly_oidc_runtime_dir_is_an_invalid_setting() {
    let mut init = Init::new();
    let real = init.path("real");
    std::fs::create_dir(&real).unwrap();
    let link = init.path("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let file = init.path("file");
    std::fs::write(&file, "").unwrap();
    // A shared directory (as /tmp is) is refused, and left as it was: never made private.
    let shared = init.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let group = init.path("group");
    std::fs::create_dir(&group).unwrap();
    std::fs::set_permissions(&group, std::fs::Permissions::from_mode(0o775)).unwrap();
    let mut cases = vec![
        (link, "not a directory"),
        (file, "not a directory"),
        (shared.clone(), "writable by others (mode 1777)"),
        (group.clone(), "writable by others (mode 775)"),
        (PathBuf::from("relative/run"), "not an absolute path"),
    ];
    if fly_oidc_tests::is_root() {
        let other = init.path("other");
        std::fs::create_dir(&other).unwrap();
        nix::unistd::chown(&other, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        cases.push((other, "owned by uid 65534, not this user"));
    }
    let env_file = init.path("app.env");
    for (dir, why) in cases {
        init.sandbox
            .set("FLY_OIDC_RUNTIME_DIR", dir.to_str().unwrap());
        let exec = init.exec(&[], &["true"]).output().unwrap();
        let mut serve = init.sandbox.command(crate::support::fly_oidc_bin());
        serve
            .args(["serve", "--aws-role-arn", ROLE, "--env-file"])
            .arg(&env_file);
        let serve = serve.output().unwrap();
        for (command, out) in [("exec", exec), ("serve", serve)] {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
            assert_eq!(
                stderr.trim_end(),
                format!(
                    "fly-oidc: error: invalid setting: {}: {why}; name a directory of this user's that no one else can write (not a symbolic link), or unset it (from FLY_OIDC_RUNTIME_DIR)",
                    dir.display()
                ),
                "{command}"
            );
        }
        assert!(!env_file.exists(), "serve wrote its env file");
    }
    let mode = |dir: &Path| std::fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(mode(&group), 0o775);
    assert!(!init.path("relative").exists());
    assert!(init.fly.issued_tokens().is_empty(), "nothing fetched");
}

/// `setpriv` to run as the user `uid` (its group the same number, no supplementary groups).
fn as_uid(sandbox: &Sandbox, uid: u32) -> Command {
    let mut cmd = sandbox.command("setpriv");
    cmd.args([
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".to_owned(),
    ]);
    cmd
}

/// What exec as nobody, in `init`'s sandbox, prints of its child's private directory: the
/// runtime directory (the parent of the one holding the token file), its mode and owner.
const SHOW_RUNTIME_DIR: &str = r#"dir=$(dirname "$(dirname "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")"); echo "$dir"; stat -c '%a %u' "$dir""#;

impl Init {
    /// `fly-oidc exec` run as nobody (the binary `bin`) with `env`, its command
    /// [`SHOW_RUNTIME_DIR`], without `FLY_OIDC_RUNTIME_DIR` (and any other given in `env`).
    fn exec_as_nobody(&self, bin: &Path, home: &Path, env: &[(&str, &OsStr)]) -> Output {
        let mut cmd = as_nobody(&self.sandbox);
        cmd.arg(bin)
            .args(["exec", "--aws-role-arn", ROLE, "--aws-sts-endpoint"])
            .arg(self.sts.url())
            .args(["--", "sh", "-c", SHOW_RUNTIME_DIR])
            .env("HOME", home)
            .env_remove("FLY_OIDC_RUNTIME_DIR")
            .envs(env.iter().copied());
        cmd.output().unwrap()
    }
}

/// Found by a black-box attack: the default runtime directory of a user without
/// `XDG_RUNTIME_DIR`, `fly-oidc-<uid>` in the temp directory, has a name any other user can
/// take first (a directory, a link or a file of theirs), and that stopped exec from starting.
/// It is refused as before, with a warning naming it, and a fresh directory of exec's own
/// (`fly-oidc-<uid>-XXXXXX`, 0711) is used instead, removed at exit; the one taken is left as
/// it is. When no fresh one can be made either, the refusal is an invalid setting naming
/// `FLY_OIDC_RUNTIME_DIR` (exit 2).
#[test]
fn a_runtime_dir_taken_by_another_user_is_passed_over_for_a_fresh_one() {
    const EVIL: u32 = 65533;
    let Some((init, shared, bin)) = init_for_nobody() else {
        return;
    };
    // A temp directory like /tmp: everyone may write, sticky.
    let tmp = init.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let taken = tmp.join("fly-oidc-65534");
    let squat = |args: &[&str]| {
        let out = as_uid(&init.sandbox, EVIL)
            .args(args)
            .arg(&taken)
            .output()
            .unwrap();
        assert_success(&out, "the other user's squat");
    };
    let cases: [(&[&str], String); 3] = [
        (
            &["mkdir", "-m", "755"],
            format!("owned by uid {EVIL}, not this user"),
        ),
        (&["ln", "-s", "/"], "not a directory".to_owned()),
        (&["touch"], "not a directory".to_owned()),
    ];
    for (args, why) in cases {
        squat(args);
        let out = init.exec_as_nobody(&bin, &shared, &[("TMPDIR", tmp.as_os_str())]);
        assert_success(&out, "exec beside a squatted runtime directory");
        let err = stderr(&out);
        for says in [
            format!("cannot use {}: {why}", taken.display()),
            "another user may have made it to stop fly-oidc".to_owned(),
            "if this process is killed, the next start cannot find what it leaves there".to_owned(),
            "Set FLY_OIDC_RUNTIME_DIR".to_owned(),
        ] {
            assert!(err.contains(&says), "{says:?} not in: {err}");
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (dir, mode) = stdout.trim_end().split_once('\n').unwrap();
        let fresh = Path::new(dir);
        assert_eq!(fresh.parent(), Some(tmp.as_path()), "{stdout}");
        let name = fresh.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("fly-oidc-65534-"), "{stdout}");
        assert_eq!(mode, "711 65534", "{stdout}");
        assert!(err.contains(dir), "the warning names {dir}: {err}");
        // The fresh one is gone; the taken one is left as it was.
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, std::slice::from_ref(&taken));
        let meta = std::fs::symlink_metadata(&taken).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), EVIL);
        let _ = std::fs::remove_dir(&taken).or_else(|_| std::fs::remove_file(&taken));
    }
    // Where no fresh one can be made either (a temp directory nobody cannot write): an
    // invalid setting naming the variable, before anything is fetched.
    let closed = init.path("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(closed.join("fly-oidc-65534")).unwrap();
    let issued = init.fly.issued_tokens().len();
    let out = init.exec_as_nobody(&bin, &shared, &[("TMPDIR", closed.as_os_str())]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    let line = err.trim_end();
    let starts = format!(
        "fly-oidc: error: invalid setting: no usable directory for the private files of exec and serve ({0}/fly-oidc-65534: owned by uid 0, not this user; a fresh directory in {0}: ",
        closed.display()
    );
    assert!(line.starts_with(&starts), "{line}");
    assert!(line.contains("Permission denied"), "{line}");
    assert!(
        line.ends_with(
            "); set FLY_OIDC_RUNTIME_DIR to a directory of this user's that no one else can write"
        ),
        "{line}"
    );
    assert_eq!(std::fs::read_dir(&closed).unwrap().count(), 1);
    assert_eq!(init.fly.issued_tokens().len(), issued, "nothing fetched");
}

/// An empty `FLY_OIDC_RUNTIME_DIR` (or only spaces) is unset, as every empty variable is
/// (`fly_oidc::Env`): the default runtime directory is used, here `$XDG_RUNTIME_DIR/fly-oidc`.
#[test]
fn an_empty_fly_oidc_runtime_dir_is_unset() {
    let Some((init, shared, bin)) = init_for_nobody() else {
        return;
    };
    let xdg = shared.join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
    let nobody = Some(nix::unistd::Uid::from_raw(65534));
    nix::unistd::chown(&xdg, nobody, None).unwrap();
    for empty in ["", "  "] {
        let env = [
            ("FLY_OIDC_RUNTIME_DIR", OsStr::new(empty)),
            ("XDG_RUNTIME_DIR", xdg.as_os_str()),
        ];
        let out = init.exec_as_nobody(&bin, &shared, &env);
        assert_success(&out, "exec with an empty FLY_OIDC_RUNTIME_DIR");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout,
            format!("{}/fly-oidc\n711 65534\n", xdg.display()),
            "{empty:?}"
        );
        assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    }
}

/// Issue 18's attack: a process that an `exec --user` child leaves behind, ignoring SIGHUP,
/// must not read what is typed in the starter's terminal after `exec` returned (a password at
/// the starter's next prompt). The child gets a pseudo-terminal of its own, relayed by `exec`
/// and closed with it (sudo's `use_pty`), while the command still works interactively.
#[test]
fn a_user_childs_leftover_cannot_read_the_starters_terminal() {
    if !fly_oidc_tests::require_root("--user") {
        return;
    }
    let init = Init::new();
    let shared = init.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stolen = shared.join("stolen");
    // The app: answers a prompt through its terminal, then leaves a reader behind and exits.
    let app = r#"
import os, select, signal, sys, time
name = input("name? ")
print("hello " + name, flush=True)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
if os.fork() == 0:
    os.setsid()
    data = b""
    end = time.time() + 3
    while time.time() < end:
        try:
            if select.select([0], [], [], 0.1)[0]:
                chunk = os.read(0, 100)
                if not chunk:
                    break
                data += chunk
        except OSError:
            break
    open(sys.argv[1], "wb").write(data)
    os._exit(0)
print("app-exiting", flush=True)
"#;
    let cmd = init.exec(
        &["--user", "nobody"],
        &["/usr/bin/python3", "-c", app, stolen.to_str().unwrap()],
    );
    // The starter's shell: runs exec, then reads its next line only later, so that the
    // leftover is the only reader when the "password" is typed.
    let script = starter_shell(
        &cmd,
        "echo exec-rc=$?; sleep 2; read -t 3 line; echo shell-got=$line",
    );
    let steps = [
        Step::Shown("name? "),
        Step::Type("alice\n"),
        Step::Shown("exec-rc="),
        Step::Pause(Duration::from_millis(500)),
        Step::Type("hunter2\n"),
        Step::Shown("shell-got="),
    ];
    let bash = ["/bin/bash", "--norc", "--noprofile", "-c", &script];
    let (shown, _) = in_pty(&bash, &steps, &init.sandbox);
    // Interactive through its own terminal: the prompt, the answer, the reply.
    assert!(shown.contains("name? alice"), "{shown}");
    assert!(shown.contains("hello alice"), "{shown}");
    assert!(shown.contains("exec-rc=0"), "{shown}");
    // The typed line reached the starter's shell, not the leftover.
    assert!(shown.contains("shell-got=hunter2"), "{shown}");
    wait_until("the leftover gave up", || stolen.exists());
    let taken = std::fs::read_to_string(&stolen).unwrap();
    assert!(!taken.contains("hunter2"), "the leftover read: {taken:?}");
}

/// A token file written while another credential is still being fetched is removed when a
/// signal stops the start: the start is abandoned before a server exists to remove it (this
/// once raced in `serve_removes_its_token_files_on_sigterm`).
#[test]
fn a_token_file_written_during_an_abandoned_start_is_removed() {
    let init = Init::new();
    // An STS that accepts connections and never answers: the role's fetch hangs.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_sts = format!("http://{}", hung.local_addr().unwrap());
    let vault = init.path("vault-token");
    let spec = format!("{}=vault", vault.display());
    let env_file = init.path("app.env");
    for command in ["serve", "exec"] {
        let mut cmd = init.sandbox.command(crate::support::fly_oidc_bin());
        cmd.args([command, "--listen", "127.0.0.1:0", "--write-token", &spec])
            .args(["--aws-role-arn", ROLE, "--aws-sts-endpoint", &hung_sts]);
        if command == "serve" {
            cmd.arg("--env-file").arg(&env_file);
        } else {
            cmd.args(["--", "true"]);
        }
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        wait_until("the token file is written", || vault.exists());
        kill(pid_of(&child), Signal::SIGTERM).unwrap();
        let want = if command == "serve" { 0 } else { 143 };
        assert_eq!(wait_exit(&mut child).code(), Some(want), "{command}");
        assert!(!vault.exists(), "{command} left its token file");
        assert!(!env_file.exists(), "{command} wrote an env file");
        assert_eq!(init.leftovers(), Vec::<String>::new(), "{command}");
    }
}
