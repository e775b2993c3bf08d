//! The `fly-oidc` command. See the README for usage.

mod aws;
mod common;
mod doctor;
mod exec;
mod gcp;
mod options;
mod serve;
mod setup;
mod supervise;
mod token;

use clap::{CommandFactory, Parser, Subcommand};
use common::{CliError, Globals};
use fly_oidc::Naming;
use std::process::ExitCode;

/// Fly.io OIDC tokens for AWS and Google Cloud, without long-lived keys.
#[derive(Debug, Parser)]
#[command(
    name = "fly-oidc",
    version,
    about,
    propagate_version = true,
    after_help = TOKEN_SOURCE_HELP
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

/// Where the Fly token comes from, for the top-level help.
const TOKEN_SOURCE_HELP: &str = "\
Where the Fly token comes from (flags beat variables; the first one set wins):
  --token-file / FLY_OIDC_TOKEN_FILE    a file holding the token, re-read on every run
  --socket / FLY_OIDC_SOCKET            the Machines API over this Unix socket
  --api-url / FLY_API_HOSTNAME          the Machines API over HTTP(S), with FLY_API_TOKEN
  otherwise                             the Machines API socket /.fly/api (on a Fly Machine;
                                        it answers root only)";

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
    /// Walk the whole chain (token source, token, signature, clock, AWS roles, Google), one line per step, with fixes.
    Doctor(doctor::DoctorArgs),
    /// Run COMMAND with zero-config credentials: an ECS credentials endpoint and a GCE
    /// metadata server on loopback, and the variables every SDK reads.
    Exec(exec::ExecCommand),
    /// Serve credentials on loopback until SIGTERM (ECS endpoint, GCE metadata, token files).
    Serve(serve::ServeCommand),
    #[command(name = "__run-as", hide = true)]
    RunAs(exec::RunAsCommand),
}

/// Whether the command line asks for `gcp executable` (the words `gcp executable` in a row).
fn is_gcp_executable(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<_> = args.collect();
    args.windows(2)
        .any(|w| w[0] == "gcp" && w[1] == "executable")
}

/// A flag's value that does not parse (`--listen 0.0.0.0:80`, `--aws-duration-seconds abc`) is
/// an invalid setting, reported in the one-line form of every other:
/// `fly-oidc: error: invalid setting: invalid value "VALUE": WHY (from --FLAG)`, not in clap's.
fn invalid_value_line(err: &clap::Error) -> Option<CliError> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return None;
    }
    let text = |kind| match err.get(kind) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    // "--listen <ADDR:PORT>": the flag is the first word.
    let flag = text(ContextKind::InvalidArg)?.split_whitespace().next()?;
    let raw = text(ContextKind::InvalidValue)?;
    let value = common::shown_value(raw);
    let why = match (
        std::error::Error::source(err),
        err.get(ContextKind::ValidValue),
    ) {
        (Some(source), _) if source.is::<std::num::ParseIntError>() => {
            "expected a whole number".to_owned()
        }
        (Some(source), _) => source.to_string(),
        (None, Some(ContextValue::Strings(valid))) if !valid.is_empty() => {
            format!("use one of {}", valid.join(", "))
        }
        // clap's refusal of an empty path names no valid value.
        (None, _) if raw.is_empty() => "it is empty; give a value or leave the flag out".to_owned(),
        (None, _) => "not a valid value".to_owned(),
    };
    Some(CliError::invalid_setting(format!(
        "invalid value {value}: {why} (from {flag})"
    )))
}

/// A flag's value that is not valid UTF-8 is an invalid setting naming the flag, in the
/// one-line form of every other: `fly-oidc: error: invalid setting: --listen: the value is
/// not valid UTF-8`. clap says only that some argument is not, so the flag is found in the
/// raw `args` (`--flag VALUE`, `--flag=VALUE`, `-f VALUE`, `-fVALUE`), as `command` reads
/// them: the values of flags that take any bytes (paths) are passed over, and what follows
/// `--` is exec's command. Any other argument that is not UTF-8 (a command's name) is named
/// by itself, as invalid arguments.
fn invalid_utf8_line(
    err: &clap::Error,
    command: &clap::Command,
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Option<CliError> {
    use std::os::unix::ffi::OsStrExt;
    if err.kind() != clap::error::ErrorKind::InvalidUtf8 {
        return None;
    }
    let args: Vec<_> = args.skip(1).collect();
    let mut at = 0;
    while let Some(arg) = args.get(at) {
        at += 1;
        if arg == "--" {
            break;
        }
        let bytes = arg.as_bytes();
        let Some((flag, attached)) = value_flag(command, bytes) else {
            if arg.to_str().is_none() {
                let shown = common::shown_value(&arg.to_string_lossy());
                return Some(CliError::usage(format!(
                    "the argument {shown} is not valid UTF-8"
                )));
            }
            continue;
        };
        let value = match attached {
            Some(value) => value,
            None => {
                at += 1;
                args.get(at - 1).map_or(&[][..], |v| v.as_bytes())
            }
        };
        if !flag.any_bytes && std::str::from_utf8(value).is_err() {
            return Some(CliError::invalid_setting(format!(
                "--{}: the value is not valid UTF-8",
                flag.long
            )));
        }
    }
    None
}

/// A flag that takes a value, as [`value_flag`] finds it.
struct ValueFlag {
    /// Its long name, without `--`.
    long: String,
    /// Whether it takes any bytes (a path), not only UTF-8.
    any_bytes: bool,
}

/// The flag that takes a value that `arg` names (`--flag`, `--flag=VALUE`, `-f`, `-fVALUE`),
/// in `command` or any of its subcommands, with the value when attached; `None` for anything
/// else (a flag without a value, a word).
fn value_flag<'a>(command: &clap::Command, arg: &'a [u8]) -> Option<(ValueFlag, Option<&'a [u8]>)> {
    let (found, attached) = if let Some(long) = arg.strip_prefix(b"--") {
        let (name, value) = match long.iter().position(|&b| b == b'=') {
            Some(at) => (&long[..at], Some(&long[at + 1..])),
            None => (long, None),
        };
        let name = std::str::from_utf8(name).ok()?;
        (find_arg(command, &|a| a.get_long() == Some(name))?, value)
    } else {
        let short = arg.strip_prefix(b"-")?;
        let (&first, rest) = short.split_first()?;
        let first = char::from(first);
        let value = (!rest.is_empty()).then_some(rest);
        (find_arg(command, &|a| a.get_short() == Some(first))?, value)
    };
    let takes_value =
        found.get_num_args().is_none_or(|n| n.takes_values()) && found.get_action().takes_values();
    if !takes_value {
        return None;
    }
    let parser = found.get_value_parser().type_id();
    let any_bytes = [
        std::any::TypeId::of::<std::path::PathBuf>(),
        std::any::TypeId::of::<std::ffi::OsString>(),
    ]
    .into_iter()
    .any(|id| parser == id);
    let flag = ValueFlag {
        long: found.get_long()?.to_owned(),
        any_bytes,
    };
    Some((flag, attached))
}

/// The first flag of `command` or its subcommands (depth first) that `matches`.
fn find_arg<'c>(
    command: &'c clap::Command,
    matches: &dyn Fn(&clap::Arg) -> bool,
) -> Option<&'c clap::Arg> {
    command.get_arguments().find(|a| matches(a)).or_else(|| {
        command
            .get_subcommands()
            .find_map(|sub| find_arg(sub, matches))
    })
}

fn main() -> ExitCode {
    // First of all, before the arguments are read: no core file, and no /proc/PID/environ or
    // mem for another process of this user (exec's child included). Every command holds a
    // secret at some point (FLY_API_TOKEN, a Fly token, credentials).
    let not_dumpable = nix::sys::prctl::set_dumpable(false);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            if err.use_stderr() && is_gcp_executable(std::env::args_os()) {
                // Google's libraries read the executable's stdout: the protocol's failure
                // response there, nothing on stderr.
                let text = err.to_string();
                let line = text.lines().next().unwrap_or_default();
                let usage = CliError::usage(line.strip_prefix("error: ").unwrap_or(line));
                let _ = gcp::report_failure(&usage);
                return ExitCode::from(2);
            }
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let utf8 = || invalid_utf8_line(&err, &Cli::command(), std::env::args_os());
            if let Some(err) = invalid_value_line(&err).or_else(utf8) {
                return err.report(false, Naming::Flags);
            }
            match exec::unknown_flag_before_double_dash(&err, std::env::args_os()) {
                // clap's tip there ("use '-- --flag'") would make the flag exec's COMMAND.
                Some(text) => crate::common::stderr_line(format_args!("{text}")),
                None => {
                    let _ = err.print();
                }
            }
            if let Some(tip) = exec::missing_double_dash(&err, std::env::args_os()) {
                crate::common::stderr_line(format_args!("{tip}"));
            }
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    let cli = match cli.command {
        // The launcher of exec's child: nothing to set up, the command replaces this process.
        Command::RunAs(cmd) => {
            return match exec::run_as(cmd) {
                Ok(code) => ExitCode::from(code),
                Err(err) => err.report(false, Naming::Flags),
            };
        }
        command => Cli { command, ..cli },
    };
    // `gcp executable` keeps stderr silent: Google's libraries read it together with stdout.
    let quiet = matches!(&cli.command, Command::Gcp(gcp::GcpCommand::Executable(_)));
    // Commands that configure both clouds at once name settings by their per-cloud flags
    // (`--aws-audience`, `--gcp-provider`).
    let naming = match cli.command {
        Command::Exec(_) | Command::Serve(_) | Command::Doctor(_) => Naming::PerCloudFlags,
        _ => Naming::Flags,
    };
    if let Err(err) = common::init_logging(&cli.globals, quiet) {
        let err = CliError::setting(err);
        if quiet {
            // The executable protocol's consumer reads the failure from stdout.
            return gcp::report_failure(&err);
        }
        return err.report(cli.globals.verbose, naming);
    }
    if let Err(e) = not_dumpable {
        tracing::warn!(error = %e, "could not make the process non-dumpable");
    }
    // One thread for every command, the servers included: requests are answered from memory
    // (never waiting on STS), so one thread serves over 100,000 requests/s on 2 cores, and
    // fewer threads mean a lower peak RSS (19.2 MiB instead of 20.8 MiB at 256 connections in
    // scripts/bench-server.sh: thread stacks and per-thread allocator arenas).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(err) => {
            common::error_line(format_args!("could not start the async runtime: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let globals = cli.globals.clone();
    let result: Result<u8, CliError> = runtime.block_on(async move {
        match cli.command {
            Command::Token(args) => token::run(&globals, args).await.map(|()| 0),
            Command::Aws(cmd) => aws::run(&globals, cmd).await.map(|()| 0),
            Command::Gcp(cmd) => gcp::run(&globals, cmd).await.map(|()| 0),
            Command::Doctor(args) => doctor::run(&globals, args).await.map(|()| 0),
            Command::Exec(cmd) => exec::run(&globals, cmd).await,
            Command::Serve(cmd) => serve::run(&globals, cmd).await.map(|()| 0),
            Command::RunAs(_) => Ok(2),
        }
    });
    // Do not wait for blocked tasks (a child's stdin, say) once the answer is known.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        // `gcp executable` has written its failure response on stdout: nothing on stderr,
        // which Google's libraries read together with stdout.
        Err(err) if quiet => err.report_quietly(),
        Err(err) => err.report(cli.globals.verbose, naming),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    /// The line for `args` (after `fly-oidc`) when clap finds invalid UTF-8 in them.
    fn utf8_line(args: Vec<Vec<u8>>) -> Option<String> {
        let err = clap::Error::new(clap::error::ErrorKind::InvalidUtf8);
        let args = std::iter::once(OsString::from("fly-oidc"))
            .chain(args.into_iter().map(OsString::from_vec));
        let err = invalid_utf8_line(&err, &Cli::command(), args)?;
        Some(format!("fly-oidc: error: {}", err.line(Naming::Flags)))
    }

    fn words(args: &[&[u8]]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.to_vec()).collect()
    }

    #[test]
    fn a_value_that_is_not_utf8_names_its_flag() {
        let listen = "fly-oidc: error: invalid setting: --listen: the value is not valid UTF-8";
        for args in [
            words(&[b"exec", b"--listen", b"127.0.0.1:80\xff", b"--", b"true"]),
            words(&[b"exec", b"--listen=127.0.0.1:80\xff", b"--", b"true"]),
            // A path flag takes any bytes: the next flag is the one.
            words(&[b"--token-file", b"/t\xff", b"exec", b"--listen", b"\xff"]),
            words(&[
                b"serve",
                b"--gcp-project",
                b"--listen",
                b"--listen",
                b"\xfe",
            ]),
        ] {
            assert_eq!(utf8_line(args).as_deref(), Some(listen));
        }
        let line = utf8_line(words(&[
            b"gcp",
            b"credential-config",
            b"--provider",
            b"p\xff",
        ]));
        assert_eq!(
            line.as_deref(),
            Some("fly-oidc: error: invalid setting: --provider: the value is not valid UTF-8")
        );
        // Not a flag's value: the argument itself is named.
        let line = utf8_line(words(&[b"exec\xff"]));
        assert_eq!(
            line.as_deref(),
            Some(
                "fly-oidc: error: invalid arguments: the argument \"exec\u{fffd}\" is not valid UTF-8"
            )
        );
        // exec's command takes any bytes; nothing else to name.
        assert_eq!(utf8_line(words(&[b"exec", b"--", b"\xff"])), None);
        let other = clap::Error::new(clap::error::ErrorKind::InvalidValue);
        let args = ["fly-oidc", "exec", "--listen", "x"].map(OsString::from);
        assert!(invalid_utf8_line(&other, &Cli::command(), args.into_iter()).is_none());
    }
}
