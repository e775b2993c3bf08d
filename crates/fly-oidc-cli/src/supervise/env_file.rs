//! The files of `fly-oidc serve --env-file PATH`: the env file, the authorization token file
//! beside it, and the lock ([`EnvFileLock`]) that keeps a second `serve` off the same path.

use super::env_plan::EnvPlan;
use fly_oidc::Env;
use fly_oidc_server::{FileOwner, FileRecord, Server};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The authorization token file of `serve --env-file PATH`: `PATH` with `.aws-token` appended.
pub(crate) fn auth_token_file_beside(env_file: &Path) -> PathBuf {
    let mut name = env_file.as_os_str().to_owned();
    name.push(".aws-token");
    PathBuf::from(name)
}

/// Write the file for `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: the token alone, no trailing
/// newline (botocore rejects a token with `\n`), mode 0600, owned by `owner` when given.
/// Entered in `record` (when given) before it appears at `path`.
///
/// # Errors
/// The file system's error, naming the path and no secret.
pub(crate) fn write_auth_token_file(
    server: &Server,
    path: &Path,
    owner: Option<FileOwner>,
    record: Option<&FileRecord>,
) -> io::Result<()> {
    let token = server.expose_auth_token();
    write_file(path, token.as_bytes(), 0o600, owner, record)
}

/// `bytes` into `path` ([`fly_oidc::fs::write_private_owned`]), entered in `record` (when
/// given) before it appears there; the error names the path.
fn write_file(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<FileOwner>,
    record: Option<&FileRecord>,
) -> io::Result<()> {
    if let Some(record) = record {
        record.add_planned(path);
    }
    fly_oidc::fs::write_private_owned(path, bytes, mode, owner, |written| {
        if let Some(record) = record {
            record.add_or_warn(path, written);
        }
    })
    .map_err(|e| io::Error::new(e.kind(), format!("could not write {}: {e}", path.display())))
}

/// The files of `serve --env-file ENV_FILE`: the authorization token file beside it
/// ([`auth_token_file_beside`], when AWS is served), then the env file
/// ([`EnvPlan::env_file_text`], planned for an empty environment: the shell that sources it
/// keeps its own region), both mode 0600; with an `owner`, the token file is the owner's and
/// the env file stays this user's, readable by the owner's group (0640): the app may read it,
/// never add commands to what its starter sources. `auth_token_env`
/// and `gcp_project` are [`EnvPlan::for_server`]'s. Each file is entered in `record` (when
/// given) before it appears, so that the next start removes it if this process is killed. Returns the paths
/// written, to remove at exit. When the env file cannot be written, the token file is removed
/// again.
///
/// # Errors
/// The file system's error, naming the path and no secret.
pub(crate) fn write_env_file(
    server: &Server,
    env_file: &Path,
    auth_token_env: bool,
    gcp_project: Option<&str>,
    owner: Option<FileOwner>,
    record: Option<&FileRecord>,
) -> io::Result<Vec<PathBuf>> {
    // Absolute, as the env file names it: the app may be started from another directory.
    let env_file = &std::path::absolute(env_file)?;
    let token_file = server
        .aws_credentials_uri()
        .map(|_| auth_token_file_beside(env_file));
    let mut written = Vec::new();
    if let Some(path) = &token_file {
        write_auth_token_file(server, path, owner, record)?;
        written.push(path.clone());
    }
    let empty = Env::from_slice(&[]);
    let plan = EnvPlan::for_server(
        server,
        token_file.as_deref(),
        auth_token_env,
        gcp_project,
        &empty,
    );
    // The env file is sourced by the starter (root, in the deploy kit's entrypoint): the app's
    // user may read it (its group), never write it, or it could add commands for root to run.
    let readable_by = owner.map(|owner| FileOwner {
        uid: nix::unistd::geteuid().as_raw(),
        gid: owner.gid,
    });
    let mode = if readable_by.is_some() { 0o640 } else { 0o600 };
    let text = plan.env_file_text();
    if let Err(e) = write_file(env_file, text.as_bytes(), mode, readable_by, record) {
        // The token file alone would leave the authorization token behind for nothing.
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    written.push(env_file.to_owned());
    Ok(written)
}

/// The lock file of `serve --env-file PATH`: `PATH` with `.lock` appended.
pub(crate) fn lock_file_beside(env_file: &Path) -> PathBuf {
    let mut name = env_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// One `serve` at a time per env file: an advisory lock (`flock`) on the lock file beside it
/// ([`lock_file_beside`]), which holds the holder's process id. The env file itself cannot be
/// the lock: it is replaced by a rename at every write, so a second process would lock
/// another inode. Dropping it removes the lock file and releases the lock; a holder that died
/// released it with its last file descriptor, so its stale lock file is taken over.
#[derive(Debug)]
pub(crate) struct EnvFileLock {
    path: PathBuf,
    file: std::fs::File,
}

/// Why [`EnvFileLock::acquire`] failed.
#[derive(Debug)]
pub(crate) enum EnvFileLockError {
    /// Another process holds the lock.
    Held {
        /// The lock file.
        lock_file: PathBuf,
        /// The holder's process id, when the lock file names one.
        holder: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    Io(io::Error),
}

impl fmt::Display for EnvFileLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvFileLockError::Held { lock_file, holder } => {
                let holder = match holder {
                    Some(pid) => format!("another fly-oidc serve (pid {pid})"),
                    None => "another fly-oidc serve".to_owned(),
                };
                write!(
                    f,
                    "{holder} holds it (lock file {}); stop that one, or give this one an env file of its own",
                    lock_file.display()
                )
            }
            EnvFileLockError::Io(e) => write!(f, "cannot lock it: {e}"),
        }
    }
}

impl std::error::Error for EnvFileLockError {}

impl EnvFileLock {
    /// Take the lock of `env_file`, without waiting.
    ///
    /// # Errors
    /// [`EnvFileLockError::Held`] when another process holds it (naming its pid when the lock
    /// file says), [`EnvFileLockError::Io`] when the lock file cannot be opened (a symbolic
    /// link is refused) or locked.
    pub(crate) fn acquire(env_file: &Path) -> Result<Self, EnvFileLockError> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let env_file = std::path::absolute(env_file).map_err(EnvFileLockError::Io)?;
        let path = lock_file_beside(&env_file);
        let held = |holder| EnvFileLockError::Held {
            lock_file: path.clone(),
            holder,
        };
        // A holder that lets go removes the file: the lock just taken may be on that removed
        // inode, which nobody else will open. Then open the path again.
        for _ in 0..3 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .map_err(EnvFileLockError::Io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = Read::by_ref(&mut file).take(32).read_to_string(&mut text);
                    return Err(held(text.trim().parse().ok()));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(EnvFileLockError::Io(e)),
            }
            let same = match (file.metadata(), std::fs::symlink_metadata(&path)) {
                (Ok(locked), Ok(named)) => {
                    (locked.dev(), locked.ino()) == (named.dev(), named.ino())
                }
                _ => false,
            };
            if !same {
                continue;
            }
            let pid = std::process::id().to_string();
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(pid.as_bytes()))
                .map_err(EnvFileLockError::Io)?;
            return Ok(Self { path, file });
        }
        Err(held(None))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file's metadata, from the open file (for a [`FileRecord`]).
    pub(crate) fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }
}

impl Drop for EnvFileLock {
    fn drop(&mut self) {
        // Removed while still locked; the lock goes with the file descriptor, after this.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fly_oidc_testkit::FakeFlyApi;
    use fly_oidc_testkit::aws_sts::FakeSts;

    #[test]
    fn a_held_env_file_names_its_holder_and_is_free_once_dropped() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let env_file = dir.path().join("app.env");
        let lock = EnvFileLock::acquire(&env_file).expect("free");
        assert_eq!(lock.path(), lock_file_beside(&env_file));
        let pid = std::fs::read_to_string(lock.path()).expect("the pid");
        assert_eq!(pid, std::process::id().to_string());
        match EnvFileLock::acquire(&env_file) {
            Err(EnvFileLockError::Held { holder, lock_file }) => {
                assert_eq!(holder, Some(std::process::id()));
                assert_eq!(lock_file, lock_file_beside(&env_file));
            }
            other => panic!("not refused: {other:?}"),
        }
        drop(lock);
        assert!(!lock_file_beside(&env_file).exists());
        let again = EnvFileLock::acquire(&env_file).expect("free again");
        drop(again);
        // A symbolic link as the lock file is refused, not followed.
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, lock_file_beside(&env_file)).expect("symlink");
        assert!(matches!(
            EnvFileLock::acquire(&env_file),
            Err(EnvFileLockError::Io(_))
        ));
        assert!(!target.exists());
    }

    #[test]
    fn token_file_sits_beside_the_env_file() {
        assert_eq!(
            auth_token_file_beside(Path::new("/run/app.env")),
            PathBuf::from("/run/app.env.aws-token")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_env_file_that_cannot_be_written_leaves_no_token_file() {
        let fly = FakeFlyApi::builder()
            .org("acme")
            .app("web")
            .start()
            .await
            .expect("the fake Machines API");
        let sts = FakeSts::builder()
            .trust(fly.issuer(), fly.jwks())
            .start()
            .await
            .expect("the fake STS");
        let reader = fly_oidc_tests::aws::provider(&fly, &sts.url())
            .role_arn("arn:aws:iam::123456789012:role/reader")
            .duration(std::time::Duration::from_secs(900))
            .build()
            .expect("the provider");
        let server = Server::builder()
            .aws_role(reader)
            .start()
            .await
            .expect("started");
        let dir = tempfile::tempdir().expect("a temporary directory");
        // The env file's path is a directory: the token file beside it is written first.
        let env_file = dir.path().join("app.env");
        std::fs::create_dir(&env_file).expect("a directory");
        let err =
            write_env_file(&server, &env_file, false, None, None, None).expect_err("not writable");
        assert!(err.to_string().contains("app.env"), "{err}");
        assert!(
            !err.to_string().contains(server.expose_auth_token()),
            "{err}"
        );
        let token_file = auth_token_file_beside(&env_file);
        assert!(!token_file.exists(), "the token file is removed again");
        // A writable path gets both files.
        let env_file = dir.path().join("ok.env");
        let written = write_env_file(&server, &env_file, false, None, None, None).expect("written");
        assert_eq!(written.len(), 2);
        assert!(written.iter().all(|p| p.exists()));
    }
}
