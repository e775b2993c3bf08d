//! `fly-oidc serve`, and what it shares with `fly-oidc exec`: their flags are
//! [`ServeOptions`]' fields, which it validates and builds the server from.

use crate::common::{CliError, Globals};
use crate::options::serve::ServeOptions;
use crate::supervise::env_file::{EnvFileLock, write_env_file};
use crate::supervise::private_dir::{self, PrivateDir, PrivateDirKind};
use clap::Args;
use fly_oidc::Naming;
use fly_oidc_server::{FileRecord, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::task::Poll;
use tokio::signal::unix::{SignalKind, signal};

/// `fly-oidc serve`.
#[derive(Debug, Args)]
pub struct ServeCommand {
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Write the variables an app needs as `export` lines to this file (0600); source it
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
}

/// Build and start the server (every credential fetched once), its token files entered in
/// `record`; invalid settings, and a listen address that cannot be bound, exit 2.
pub async fn start(
    globals: &Globals,
    options: &ServeOptions,
    default_listen: SocketAddr,
    record: Option<&FileRecord>,
) -> Result<Server, CliError> {
    let builder = options.server(&globals.provider_config()?, default_listen)?;
    // As given (`localhost:PORT` stays so), for the message naming the flag.
    let listen = options
        .listen
        .map_or(default_listen.to_string(), |l| l.to_string());
    // The providers' messages (start errors, what a client is answered, warnings) name their
    // settings by this command's per-cloud flags (a Google audience: --gcp-audience).
    let mut builder = builder.naming(Naming::PerCloudFlags);
    if let Some(record) = record {
        builder = builder.record_files(record.clone());
    }
    builder.start().await.map_err(|e| match e.kind() {
        fly_oidc_server::ErrorKind::InvalidSetting => invalid(e.to_string()),
        fly_oidc_server::ErrorKind::Listen => invalid(format!(
            "--listen {listen}: {e}; pass a free port (--listen 127.0.0.1:PORT) or stop the process that holds this one"
        )),
        _ => CliError::new("credential server", e),
    })
}

/// An invalid setting of `serve`/`exec` (exit 2), shown as `reason` says it: `reason` names
/// the flag (no flag of its own is added).
pub fn invalid(reason: impl Into<String>) -> CliError {
    let setting = fly_oidc::Setting::new("serve", None);
    let origin = fly_oidc::Origin::Builder;
    CliError::setting(fly_oidc::BuildError::invalid(
        setting,
        origin,
        reason.into(),
    ))
}

/// The signals that stop `serve` (exit 0, after removing its files) and the ones it ignores
/// (with a log line): USR1 and USR2 end a process by default, and a stray one (a log-rotation
/// habit) must not leave the files behind.
const STOPS: [SignalKind; 4] = [
    SignalKind::interrupt(),
    SignalKind::terminate(),
    SignalKind::quit(),
    SignalKind::hangup(),
];
const IGNORED: [SignalKind; 2] = [SignalKind::user_defined1(), SignalKind::user_defined2()];

/// `serve`'s signals, caught from the start.
struct ServeSignals {
    stops: Vec<tokio::signal::unix::Signal>,
    ignored: Vec<(i32, tokio::signal::unix::Signal)>,
}

impl ServeSignals {
    fn catch() -> Result<Self, CliError> {
        let catch = |kind: SignalKind| signal(kind).map_err(|e| CliError::new("signals", e));
        Ok(Self {
            stops: STOPS.into_iter().map(catch).collect::<Result<_, _>>()?,
            ignored: IGNORED
                .into_iter()
                .map(|kind| Ok((kind.as_raw_value(), catch(kind)?)))
                .collect::<Result<_, CliError>>()?,
        })
    }

    /// Until a stopping signal comes, logging (and otherwise ignoring) USR1 and USR2.
    async fn stopped(&mut self) {
        loop {
            let ignored = std::future::poll_fn(|cx| {
                for stop in &mut self.stops {
                    if stop.poll_recv(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                }
                for (number, stream) in &mut self.ignored {
                    if stream.poll_recv(cx).is_ready() {
                        return Poll::Ready(Some(*number));
                    }
                }
                Poll::Pending
            })
            .await;
            let Some(number) = ignored else { return };
            let name = nix::sys::signal::Signal::try_from(number)
                .map(|s| s.as_str())
                .unwrap_or("a signal");
            tracing::warn!("{name} ignored: serve stops on SIGTERM, SIGINT, SIGQUIT or SIGHUP");
        }
    }
}

/// The files `serve` wrote (the env file and its token file), removed when dropped: on every
/// way out.
struct Written(Vec<PathBuf>);

impl Drop for Written {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Run `fly-oidc serve` until SIGTERM, SIGINT, SIGQUIT or SIGHUP (exit 0, its files removed).
pub async fn run(globals: &Globals, cmd: ServeCommand) -> Result<(), CliError> {
    let mut signals = ServeSignals::catch()?;
    let default_listen = SocketAddr::from(([127, 0, 0, 1], 8675));
    let options = cmd.serve;
    options.check_files(cmd.env_file.as_deref(), &globals.env())?;
    // Files written outside a directory of our own are named in its record, so that the next
    // start removes them if this one is killed (and removes what a killed one left). Dropped
    // last, after the files and the lock.
    // Without a runtime directory it serves all the same (it needs none), with a warning.
    let writes_files = cmd.env_file.is_some() || !options.write_tokens.is_empty();
    let private = writes_files
        .then(|| PrivateDir::create_in_runtime_dir(&globals.env(), PrivateDirKind::Serve, None))
        .transpose();
    if let Some(invalid) = private
        .as_ref()
        .err()
        .and_then(private_dir::invalid_runtime_dir)
    {
        return Err(CliError::setting(invalid.clone()));
    }
    let private = private
        .inspect_err(|e| {
            tracing::warn!(error = %e, "no private directory: if this serve is killed, its files stay until removed by hand");
        })
        .ok()
        .flatten();
    let record = private.as_ref().map(PrivateDir::record);
    // One serve per env file: a second one would overwrite the first's token, then remove the
    // file at its exit. Held until this function returns, after the files are removed.
    let _lock = cmd
        .env_file
        .as_deref()
        .map(|path| {
            let lock = EnvFileLock::acquire(path)
                .map_err(|e| invalid(format!("--env-file {}: {e}", path.display())))?;
            if let (Some(record), Ok(meta)) = (record, lock.metadata()) {
                record.add_or_warn(lock.path(), &meta);
            }
            Ok::<_, CliError>(lock)
        })
        .transpose()?;
    let server = tokio::select! {
        server = start(globals, &options, default_listen, record) => server?,
        () = signals.stopped() => return Ok(()),
    };
    let written = Written(match &cmd.env_file {
        Some(env_file) => write_env_file(
            &server,
            env_file,
            options.aws_auth_token_env,
            options.gcp_project.as_deref(),
            options.file_owner()?,
            record,
        )
        .map_err(|e| CliError::new("env file", e))?,
        None => Vec::new(),
    });
    eprintln!(
        "fly-oidc: serving credentials on {}{}",
        server.local_addr(),
        cmd.env_file
            .as_ref()
            .map(|p| format!("; source {}", crate::common::one_line(p.display())))
            .unwrap_or_default()
    );
    signals.stopped().await;
    drop(written);
    server.shutdown().await;
    Ok(())
}
