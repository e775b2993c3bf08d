//! A terminal of its own for a child run as another user (`exec --user`), relayed to the
//! starter's, as sudo's `use_pty` does.
//!
//! A child in a session of its own cannot push keystrokes into the starter's terminal, but it
//! would still hold it on its standard streams: a process it leaves behind could read what is
//! typed there after `exec` has returned to the starter's shell (a password at a prompt).
//! So the child gets the slave side of a new pseudo-terminal wherever this process has a
//! terminal (fd 0, 1 or 2), and this process copies between the two: what is typed to the
//! child, what it writes back. When the child ends the copying stops and the pseudo-terminal
//! is closed: a leftover process holds a hung-up terminal, never the starter's.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::termios::{OptionalActions, Termios};
use std::io;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the output copy may run on after the child ended, to show what it wrote last.
const DRAIN: Duration = Duration::from_millis(250);

/// The pseudo-terminal between a child and this process's terminal.
pub(crate) struct Relay {
    master: OwnedFd,
    /// The slave side, until the child has it.
    slave: Option<OwnedFd>,
    /// This process's terminal, the one the child's is sized after.
    terminal: BorrowedFd<'static>,
    /// Standard input's settings before raw mode, restored at the end; `None` when input is
    /// not copied (not a terminal, or this process is not in its foreground).
    restore: Option<Termios>,
    /// Told when the output copy has ended.
    output_done: Option<mpsc::Receiver<()>>,
}

/// fd `n` of this process (0, 1, 2: open for the process's life).
pub(crate) fn std_fd(n: i32) -> BorrowedFd<'static> {
    match n {
        0 => rustix::stdio::stdin(),
        1 => rustix::stdio::stdout(),
        _ => rustix::stdio::stderr(),
    }
}

impl Relay {
    /// A relay when fd 0, 1 or 2 is a terminal, else `None`.
    ///
    /// # Errors
    /// When the pseudo-terminal cannot be made.
    pub(crate) fn open() -> io::Result<Option<Self>> {
        use rustix::fs::{Mode, OFlags, open};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let Some(terminal) = (0..3).map(std_fd).find(|fd| rustix::termios::isatty(fd)) else {
            return Ok(None);
        };
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let name = ptsname(&master, Vec::new())?;
        let slave = open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // The child's terminal starts as this one is: its modes (echo, line editing) and size.
        if let Ok(modes) = rustix::termios::tcgetattr(terminal) {
            let _ = rustix::termios::tcsetattr(&slave, OptionalActions::Now, &modes);
        }
        let relay = Self {
            master,
            slave: Some(slave),
            terminal,
            restore: None,
            output_done: None,
        };
        relay.resize();
        Ok(Some(relay))
    }

    /// Give the child the slave side where this process has a terminal.
    ///
    /// # Errors
    /// When the slave cannot be duplicated.
    pub(crate) fn attach(&self, command: &mut Command) -> io::Result<()> {
        let Some(slave) = &self.slave else {
            return Ok(());
        };
        let slave = |n: i32| -> io::Result<Option<Stdio>> {
            Ok(rustix::termios::isatty(std_fd(n))
                .then(|| slave.try_clone())
                .transpose()?
                .map(Stdio::from))
        };
        if let Some(stdin) = slave(0)? {
            command.stdin(stdin);
        }
        if let Some(stdout) = slave(1)? {
            command.stdout(stdout);
        }
        if let Some(stderr) = slave(2)? {
            command.stderr(stderr);
        }
        Ok(())
    }

    /// Once the child has started: close this process's slave (so the output copy ends when
    /// the child's last copy closes), put standard input in raw mode (the child's terminal
    /// does the line editing and turns Ctrl-C into its signal) and start copying.
    pub(crate) fn start(&mut self) {
        self.slave = None;
        let stdin = std_fd(0);
        let foreground = rustix::termios::tcgetpgrp(stdin)
            .is_ok_and(|group| group == rustix::process::getpgrp());
        if foreground && let Ok(modes) = rustix::termios::tcgetattr(stdin) {
            let mut raw = modes.clone();
            raw.make_raw();
            if rustix::termios::tcsetattr(stdin, OptionalActions::Now, &raw).is_ok() {
                self.restore = Some(modes);
            }
        }
        if self.restore.is_some()
            && let Ok(master) = self.master.try_clone()
        {
            std::thread::spawn(move || copy(stdin, master.as_fd()));
        }
        let output = if rustix::termios::isatty(std_fd(1)) {
            std_fd(1)
        } else {
            std_fd(2)
        };
        if let Ok(master) = self.master.try_clone() {
            let (done, output_done) = mpsc::channel();
            self.output_done = Some(output_done);
            std::thread::spawn(move || {
                copy(master.as_fd(), output);
                let _ = done.send(());
            });
        }
    }

    /// Size the child's terminal as this one (on SIGWINCH: the kernel tells the child).
    pub(crate) fn resize(&self) {
        if let Ok(size) = rustix::termios::tcgetwinsize(self.terminal) {
            let _ = rustix::termios::tcsetwinsize(&self.master, size);
        }
    }

    /// The child has ended: let the output copy show what it wrote last (briefly: a process
    /// it left behind may hold the terminal open), then restore standard input.
    pub(crate) fn finish(mut self) {
        if let Some(done) = self.output_done.take() {
            let _ = done.recv_timeout(DRAIN);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(modes) = self.restore.take() {
            let _ = rustix::termios::tcsetattr(std_fd(0), OptionalActions::Now, &modes);
        }
    }
}

/// Copy from `from` to `to` until either ends.
fn copy(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match rustix::io::read(from, &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        };
        let mut written = &buf[..n];
        while !written.is_empty() {
            match rustix::io::write(to, written) {
                Ok(0) => return,
                Ok(n) => written = &written[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
        }
    }
}
