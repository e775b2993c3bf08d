//! The environment of a process that uses a running [`Server`]: which variables it gets,
//! which it loses, what to warn about, and the files that carry them (`fly-oidc exec` gives
//! them to its child, `fly-oidc serve --env-file` writes them for a shell to source).

use crate::{FileOwner, Server};
use fly_oidc::Env;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Variables that would win over the container provider in the AWS SDKs' credential chains
/// (web identity, and a relative container URI), removed whenever AWS is served.
pub const AWS_REMOVED: [&str; 4] = [
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// Variables removed from every process that uses a [`Server`], whatever it serves: the Fly API
/// token (`FLY_API_TOKEN`), with which the app could mint Fly tokens for any audience itself;
/// the server holds it, the app never gets it. The token source's paths (`FLY_OIDC_TOKEN_FILE`,
/// `FLY_OIDC_SOCKET`) and `FLY_API_HOSTNAME` are no secret and stay: the file's and the
/// socket's permissions decide who can read them.
pub const ALWAYS_REMOVED: [&str; 1] = ["FLY_API_TOKEN"];

/// What a process's environment gains and loses to use a [`Server`].
///
/// `set` may hold the authorization token (`AWS_CONTAINER_AUTHORIZATION_TOKEN`, on request),
/// so `Debug` shows variable names only, never values.
#[derive(Default)]
pub struct EnvPlan {
    /// Variables to set, `(name, value)`, in the order they are written.
    pub set: Vec<(String, String)>,
    /// Variables to remove.
    pub remove: Vec<String>,
    /// Warnings about variables left in place that take precedence over what is served
    /// (static AWS keys, `AWS_PROFILE`, `GOOGLE_APPLICATION_CREDENTIALS`).
    pub warnings: Vec<String>,
}

impl fmt::Debug for EnvPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvPlan")
            .field(
                "set",
                &self.set.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            )
            .field("remove", &self.remove)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// The two region variables: the AWS SDKs read `AWS_REGION`, the AWS CLI v1 and botocore
/// `AWS_DEFAULT_REGION` only.
const REGION_VARS: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];

impl EnvPlan {
    /// What a process using `server` needs, given its `current` environment.
    ///
    /// Always: [`ALWAYS_REMOVED`] removed (the Fly API token). When AWS is served:
    /// - `AWS_CONTAINER_CREDENTIALS_FULL_URI`;
    /// - `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (to `token_file`), as the EKS Pod Identity
    ///   agent does: every current AWS SDK reads it. The plain
    ///   `AWS_CONTAINER_AUTHORIZATION_TOKEN` only when `auth_token_env` is true (for consumers
    ///   that read nothing else) or no `token_file` is given: with both set, the JavaScript SDK
    ///   v3 warns on every credential load, and its 3.879 default chain given a logger throws;
    /// - `AWS_REGION` and `AWS_DEFAULT_REGION` to the server's
    ///   [configured region](Server::aws_region) when `current` has neither; the one missing
    ///   to the other's value when `current` has one;
    /// - [`AWS_REMOVED`] removed.
    ///
    /// When Google is served: `GCE_METADATA_HOST`, `GCE_METADATA_IP`, `GCE_METADATA_ROOT`
    /// (gcloud's) and `GOOGLE_CLOUD_PROJECT` (to `gcp_project`, when given).
    pub fn for_server(
        server: &Server,
        token_file: Option<&Path>,
        auth_token_env: bool,
        gcp_project: Option<&str>,
        current: &Env,
    ) -> EnvPlan {
        let mut plan = EnvPlan::default();
        let has = |name: &str| current.get(name).is_some();
        plan.remove
            .extend(ALWAYS_REMOVED.iter().map(|s| (*s).to_owned()));
        if let Some(uri) = server.aws_credentials_uri() {
            plan.set
                .push(("AWS_CONTAINER_CREDENTIALS_FULL_URI".into(), uri));
            if let Some(path) = token_file {
                plan.set.push((
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                    path.display().to_string(),
                ));
            }
            if auth_token_env || token_file.is_none() {
                plan.set.push((
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN".into(),
                    server.expose_auth_token().to_owned(),
                ));
            }
            let [region_var, default_var] = REGION_VARS;
            match (current.get(region_var), current.get(default_var)) {
                (None, None) => {
                    if let Some(region) = server.aws_region() {
                        for name in REGION_VARS {
                            plan.set.push((name.into(), region.to_owned()));
                        }
                    }
                }
                (Some(region), None) => plan.set.push((default_var.into(), region)),
                (None, Some(region)) => plan.set.push((region_var.into(), region)),
                (Some(_), Some(_)) => {}
            }
            plan.remove
                .extend(AWS_REMOVED.iter().map(|s| (*s).to_owned()));
            if has("AWS_ACCESS_KEY_ID") || has("AWS_SECRET_ACCESS_KEY") {
                plan.warnings.push("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set: the AWS SDKs use these static keys before the credentials served here; unset them to use the role".into());
            }
            if has("AWS_PROFILE") {
                plan.warnings.push("AWS_PROFILE is set: the AWS SDKs use that profile before the credentials served here; unset it to use the role".into());
            }
        }
        if let Some(host) = server.metadata_host() {
            plan.set.push(("GCE_METADATA_HOST".into(), host.clone()));
            plan.set.push(("GCE_METADATA_IP".into(), host.clone()));
            // gcloud reads GCE_METADATA_ROOT, not GCE_METADATA_HOST.
            plan.set.push(("GCE_METADATA_ROOT".into(), host));
            if let Some(project) = gcp_project {
                plan.set
                    .push(("GOOGLE_CLOUD_PROJECT".into(), project.to_owned()));
            }
            if has("GOOGLE_APPLICATION_CREDENTIALS") {
                plan.warnings.push("GOOGLE_APPLICATION_CREDENTIALS is set: Google's libraries use that file before the metadata server served here; unset it to use the workload identity pool".into());
            }
        }
        plan
    }

    /// The env file's text: a comment, `export NAME='value'` lines (POSIX shell quoting),
    /// then one `unset` line for what must go. `AWS_REGION` and `AWS_DEFAULT_REGION` are
    /// written as defaults, `export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-REGION}}"`
    /// (and the same the other way round): a shell that sources the file keeps a region it
    /// has and gains the other variable, as [`for_server`](Self::for_server) plans for a
    /// process it is given.
    pub fn env_file_text(&self) -> String {
        let mut text =
            String::from("# Written by `fly-oidc serve`; source it before starting the app.\n");
        for (name, value) in &self.set {
            // A region name is letters, digits and dashes: safe inside double quotes.
            let plain =
                !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            match REGION_VARS.iter().position(|v| v == name) {
                Some(at) if plain => {
                    let other = REGION_VARS[1 - at];
                    text.push_str(&format!(
                        "export {name}=\"${{{name}:-${{{other}:-{value}}}}}\"\n"
                    ));
                }
                _ => text.push_str(&format!("export {name}={}\n", fly_oidc::shell_quote(value))),
            }
        }
        if !self.remove.is_empty() {
            text.push_str(&format!("unset {}\n", self.remove.join(" ")));
        }
        text
    }
}

/// The authorization token file of `serve --env-file PATH`: `PATH` with `.aws-token` appended.
pub fn auth_token_file_beside(env_file: &Path) -> PathBuf {
    let mut name = env_file.as_os_str().to_owned();
    name.push(".aws-token");
    PathBuf::from(name)
}

/// Write the file for `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: the token alone, no trailing
/// newline (botocore rejects a token with `\n`), mode 0600, owned by `owner` when given.
/// Returns the written file's metadata (for a [`FileRecord`]).
///
/// # Errors
/// The file system's error, naming the path and no secret.
pub fn write_auth_token_file(
    server: &Server,
    path: &Path,
    owner: Option<FileOwner>,
) -> io::Result<std::fs::Metadata> {
    write_file(path, server.expose_auth_token().as_bytes(), owner)
}

/// `bytes` into `path` ([`fly_oidc::fs::write_private_owned`], mode 0600); the error names
/// the path.
fn write_file(
    path: &Path,
    bytes: &[u8],
    owner: Option<FileOwner>,
) -> io::Result<std::fs::Metadata> {
    fly_oidc::fs::write_private_owned(path, bytes, 0o600, owner)
        .map_err(|e| io::Error::new(e.kind(), format!("could not write {}: {e}", path.display())))
}

/// The files of `serve --env-file ENV_FILE`: the authorization token file beside it
/// ([`auth_token_file_beside`], when AWS is served), then the env file
/// ([`EnvPlan::env_file_text`], planned for an empty environment: the shell that sources it
/// keeps its own region), both mode 0600; with an `owner`, the token file is the owner's and
/// the env file stays this user's, readable by the owner's group (0640): the app may read it,
/// never add commands to what its starter sources. `auth_token_env`
/// and `gcp_project` are [`EnvPlan::for_server`]'s. Each file is entered in `record` (when
/// given) once written, so that the next start removes it if this process is killed. Returns the paths
/// written, to remove at exit. When the env file cannot be written, the token file is removed
/// again.
///
/// # Errors
/// The file system's error, naming the path and no secret.
pub fn write_env_file(
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
        let meta = write_auth_token_file(server, path, owner)?;
        written.push(path.clone());
        if let Some(record) = record {
            record.add_or_warn(path, &meta);
        }
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
    let written_env = fly_oidc::fs::write_private_owned(
        env_file,
        plan.env_file_text().as_bytes(),
        mode,
        readable_by,
    )
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("could not write {}: {e}", env_file.display()),
        )
    });
    match written_env {
        Ok(meta) => {
            if let Some(record) = record {
                record.add_or_warn(env_file, &meta);
            }
        }
        Err(e) => {
            // The token file alone would leave the authorization token behind for nothing.
            for path in &written {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    }
    written.push(env_file.to_owned());
    Ok(written)
}

/// The lock file of `serve --env-file PATH`: `PATH` with `.lock` appended.
pub fn lock_file_beside(env_file: &Path) -> PathBuf {
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
pub struct EnvFileLock {
    path: PathBuf,
    file: std::fs::File,
}

/// Why [`EnvFileLock::acquire`] failed.
#[derive(Debug)]
pub enum EnvFileLockError {
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
    pub fn acquire(env_file: &Path) -> Result<Self, EnvFileLockError> {
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

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file's metadata, from the open file (for a [`FileRecord`]).
    ///
    /// # Errors
    /// The file system's error.
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }
}

/// The variable that names the directory holding `exec`'s private directories (see
/// [`runtime_parent`]).
const RUNTIME_DIR_VARIABLE: &str = "FLY_OIDC_RUNTIME_DIR";

/// The one well-known directory that holds `exec`'s private directories, so a later start finds
/// what a crashed one left: `$FLY_OIDC_RUNTIME_DIR` when set; for root `/run/fly-oidc`;
/// `$XDG_RUNTIME_DIR/fly-oidc`; else `fly-oidc-<uid>` in `$TMPDIR` (or `/tmp`). The first
/// that is, or can be made, a directory of this user that no one else can write (mode 0711:
/// a `--user` child reaches its own directory inside by name, without listing the others) is
/// taken.
///
/// # Errors
/// When none of them can be used, naming them and the variable that chooses another; when
/// `FLY_OIDC_RUNTIME_DIR` names one that cannot be used, an [`InvalidInput`] error holding a
/// [`fly_oidc::BuildError`] ([`invalid_runtime_dir`]).
///
/// [`InvalidInput`]: io::ErrorKind::InvalidInput
pub fn runtime_parent(env: &Env) -> io::Result<PathBuf> {
    let uid = nix::unistd::geteuid();
    let mut candidates = Vec::new();
    if let Some(dir) = env.get(RUNTIME_DIR_VARIABLE).filter(|d| !d.is_empty()) {
        // Chosen by the operator: that one only, and an unusable one is an invalid setting.
        let usable = match dir.starts_with('/') {
            true => usable_parent(Path::new(&dir)),
            false => Err(io::Error::other("not an absolute path")),
        };
        return match usable {
            Ok(()) => Ok(PathBuf::from(dir)),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                fly_oidc::BuildError::invalid(
                    fly_oidc::Setting::new("runtime_dir", Some(RUNTIME_DIR_VARIABLE)),
                    fly_oidc::Origin::Env(RUNTIME_DIR_VARIABLE.to_owned()),
                    format!(
                        "{dir}: {e}; name a directory of this user's that no one else can write (not a symbolic link), or unset it"
                    ),
                ),
            )),
        };
    }
    if uid.is_root() {
        candidates.push(PathBuf::from("/run/fly-oidc"));
    }
    if let Some(dir) = env.get("XDG_RUNTIME_DIR").filter(|d| d.starts_with('/')) {
        candidates.push(Path::new(&dir).join("fly-oidc"));
    }
    let tmp = env
        .get("TMPDIR")
        .filter(|d| d.starts_with('/'))
        .unwrap_or_else(|| "/tmp".to_owned());
    candidates.push(Path::new(&tmp).join(format!("fly-oidc-{uid}")));
    let mut refused = Vec::new();
    for dir in candidates {
        match usable_parent(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => refused.push(format!("{}: {e}", dir.display())),
        }
    }
    Err(io::Error::other(format!(
        "no directory for exec's private files ({}); set {RUNTIME_DIR_VARIABLE} to a directory only this user can write",
        refused.join("; ")
    )))
}

/// The invalid setting inside an error of [`runtime_parent`] (or of a [`PrivateDir`] made in
/// it), when `FLY_OIDC_RUNTIME_DIR` named a directory that cannot be used.
pub fn invalid_runtime_dir(err: &io::Error) -> Option<&fly_oidc::BuildError> {
    err.get_ref()?.downcast_ref()
}

/// Make `dir` (mode 0711) unless it exists; it must be a directory (not a link) of this user
/// that no one else can write. One made here is set to exactly 0711 (whatever the umask); an
/// existing one is never changed (a shared directory such as `/tmp` is refused, not made
/// private), so it must let a `--user` child through (`o+x`) on its own.
fn usable_parent(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let made = match std::fs::DirBuilder::new().mode(0o711).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(e),
    };
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(io::Error::other(format!(
            "owned by uid {}, not this user",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "writable by others (mode {mode:o})"
        )));
    }
    if made && mode != 0o711 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    }
    Ok(())
}

/// Which command a [`PrivateDir`] belongs to: the first word of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivateDirKind {
    /// `fly-oidc exec`: the directory holds the child's authorization token file.
    Exec,
    /// `fly-oidc serve`: the directory only carries the lock (its record sits beside it).
    Serve,
}

impl PrivateDirKind {
    const ALL: [PrivateDirKind; 2] = [PrivateDirKind::Exec, PrivateDirKind::Serve];

    /// The first word of the directory's name.
    fn word(self) -> &'static str {
        match self {
            PrivateDirKind::Exec => "exec",
            PrivateDirKind::Serve => "serve",
        }
    }
}

/// The prefix of a private directory being made (not yet locked), before the kind's word.
const NEW_PREFIX: &str = ".new-";
/// What the record of a private directory's files adds to the directory's name.
const RECORD_SUFFIX: &str = ".files";
/// The most a record is read of (a few lines a file written).
const RECORD_LIMIT: usize = 1 << 20;

/// A private directory of `fly-oidc exec` or `serve`: mode 0700 whatever the umask, in
/// [`runtime_parent`], named `<exec|serve>-<pid>-<random>`, and locked (`flock`) for the
/// life of the process that made it, so that [`remove_stale`](Self::remove_stale) at a later
/// start can tell a crashed owner's directory (lock free) from a live one's. Removed when
/// dropped.
///
/// Beside it, in the runtime parent that only this user can write (not inside: `exec --user`
/// hands the directory to the child's user), its [`FileRecord`] names the files the process
/// wrote elsewhere (`--write-token` files, `serve`'s env file, its token file and its lock
/// file), so that the start that removes a stale directory removes them too.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    record: FileRecord,
    /// Holds the lock; closed after the directory is removed.
    _lock: std::fs::File,
}

impl PrivateDir {
    /// Make a private directory of `kind` in `parent` (owned by `owner` when given) and lock
    /// it.
    ///
    /// # Errors
    /// The file system's error.
    pub fn create(
        parent: &Path,
        kind: PrivateDirKind,
        owner: Option<FileOwner>,
    ) -> io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o700);
        let new = tempfile::Builder::new()
            .prefix(&format!(
                "{NEW_PREFIX}{}-{}-",
                kind.word(),
                std::process::id()
            ))
            .permissions(private.clone())
            .tempdir_in(parent)?
            .keep();
        let made = Self::lock_and_name(&new, private, owner);
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&new);
        }
        made
    }

    fn lock_and_name(
        new: &Path,
        private: std::fs::Permissions,
        owner: Option<FileOwner>,
    ) -> io::Result<Self> {
        // mkdir's mode passes through the umask: set it exactly.
        std::fs::set_permissions(new, private)?;
        let lock = std::fs::File::open(new)?;
        lock.try_lock().map_err(io::Error::other)?;
        let name = new
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(NEW_PREFIX))
            .ok_or_else(|| io::Error::other("unexpected directory name"))?;
        let path = new.with_file_name(name);
        std::fs::rename(new, &path)?;
        let dir = Self {
            record: FileRecord::new(record_of(&path)),
            path,
            _lock: lock,
        };
        if let Some(owner) = owner {
            std::os::unix::fs::chown(&dir.path, Some(owner.uid), Some(owner.gid))?;
        }
        Ok(dir)
    }

    /// Make one in the well-known [`runtime_parent`] (owned by `owner` when given), after
    /// removing what an `exec` or `serve` that was killed or crashed left there
    /// ([`remove_stale`](Self::remove_stale)): how both commands start.
    ///
    /// # Errors
    /// No usable runtime directory (naming the candidates and `FLY_OIDC_RUNTIME_DIR`), or the
    /// file system's error.
    pub fn create_in_runtime_dir(
        env: &Env,
        kind: PrivateDirKind,
        owner: Option<FileOwner>,
    ) -> io::Result<Self> {
        let parent = runtime_parent(env)?;
        Self::remove_stale(&parent);
        Self::create(&parent, kind, owner)
    }

    /// Remove the private directories in `parent` whose owner process is gone (their lock is
    /// free), with the files their record names that are still what the owner wrote (see
    /// [`FileRecord`]), and the half-made ones older than a minute. Returns how many
    /// directories were removed; what cannot be read or removed is left (a warning).
    pub fn remove_stale(parent: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let half_made = name.starts_with(NEW_PREFIX);
            let kind = name.strip_prefix(NEW_PREFIX).unwrap_or(name);
            if !PrivateDirKind::ALL
                .iter()
                .any(|k| kind.starts_with(&format!("{}-", k.word())))
            {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            // (Its owner may be a `--user` child's; what it names to remove is trusted only
            // from a record of this user's own, see `remove_recorded`.)
            if !meta.is_dir() {
                continue;
            }
            let young = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_none_or(|age| age < std::time::Duration::from_secs(60));
            if half_made && young {
                continue;
            }
            // A live owner holds the lock; a crashed one's was released by the kernel. Held
            // until the directory is gone: one start cleans it up, not two.
            let Ok(dir) = std::fs::File::open(&path) else {
                continue;
            };
            if dir.try_lock().is_err() {
                continue;
            }
            FileRecord::remove_recorded(&record_of(&path));
            remove_record_temporaries(parent, &record_of(&path));
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed the private directory of a fly-oidc process that is gone");
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove the private directory of a fly-oidc process that is gone");
                }
            }
        }
        removed
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record of the files this process writes outside the directory.
    pub fn record(&self) -> &FileRecord {
        &self.record
    }
}

/// Whether `meta` is of a file or directory of this user that no one else can write.
fn owned_by_this_user(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

/// Remove the temporary files of `record` in `parent` that a kill during its rewrite left
/// (`.<record name>.fly-oidc-XXXXXX`, see [`fly_oidc::fs::write_private`]).
fn remove_record_temporaries(parent: &Path, record: &Path) {
    let Some(name) = record.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.fly-oidc-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let is_temporary = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix));
        if is_temporary && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The record beside the private directory `dir`: `<dir>.files`.
fn record_of(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(RECORD_SUFFIX);
    PathBuf::from(name)
}

/// What identifies a file this process wrote: its device, inode, owner and change time (the
/// last one changes on every write, rename, `chmod` or `chown`, so a file written over since,
/// or a new file that reuses the inode number, is another file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    uid: u32,
    ctime: i64,
    ctime_nsec: i64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            uid: meta.uid(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }

    /// The identity of what `stat` describes, when it is a regular file.
    #[allow(clippy::unnecessary_cast)] // libc's types differ between targets
    fn of_regular(stat: &nix::sys::stat::FileStat) -> Option<Self> {
        let kind = nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode);
        (kind & nix::sys::stat::SFlag::S_IFMT == nix::sys::stat::SFlag::S_IFREG).then_some(Self {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            uid: stat.st_uid as u32,
            ctime: stat.st_ctime as i64,
            ctime_nsec: stat.st_ctime_nsec as i64,
        })
    }
}

/// The record of the files a `fly-oidc exec` or `serve` wrote outside its [`PrivateDir`]:
/// each file's absolute path and `FileId`, rewritten atomically (0600, in the runtime parent
/// only this user can write) after each write. A handle: clones share the record.
///
/// Once the process is gone (killed, crashed), the start that removes its directory removes
/// each recorded file that is still what was written: a regular file (a symbolic link is
/// never followed or removed, nor is a directory) with the same device, inode, owner and
/// change time. A file replaced or written over since is someone else's, and is left.
#[derive(Clone, Debug)]
pub struct FileRecord(std::sync::Arc<std::sync::Mutex<RecordFile>>);

#[derive(Debug)]
struct RecordFile {
    path: PathBuf,
    entries: Vec<(PathBuf, FileId)>,
}

impl FileRecord {
    fn new(path: PathBuf) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(RecordFile {
            path,
            entries: Vec::new(),
        })))
    }

    /// Record that `path` now holds the file `written` describes (its metadata, taken from the
    /// open file: [`fly_oidc::fs::write_private_owned`] returns it), replacing what was
    /// recorded for `path`.
    ///
    /// # Errors
    /// The file system's error writing the record.
    pub fn add(&self, path: &Path, written: &std::fs::Metadata) -> io::Result<()> {
        let path = std::path::absolute(path)?;
        let id = FileId::of(written);
        let mut record = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match record.entries.iter_mut().find(|(p, _)| *p == path) {
            Some(entry) => entry.1 = id,
            None => record.entries.push((path, id)),
        }
        let text = record_text(&record.entries);
        fly_oidc::fs::write_private(&record.path, text.as_bytes(), 0o600).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not write {}: {e}", record.path.display()),
            )
        })
    }

    /// [`add`](Self::add), a failure logged as a warning: the file is written and served all
    /// the same, only a kill would leave it behind.
    pub fn add_or_warn(&self, path: &Path, written: &std::fs::Metadata) {
        if let Err(e) = self.add(path, written) {
            tracing::warn!(file = %path.display(), error = %e, "a kill of this process would leave this file behind");
        }
    }

    /// Remove what the record at `path` names and is still what was written, then the
    /// record.
    fn remove_recorded(path: &Path) {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path);
        if let Ok(file) = &opened
            && !file
                .metadata()
                .is_ok_and(|m| m.is_file() && owned_by_this_user(&m))
        {
            tracing::warn!(record = %path.display(), "ignored a record of written files that is not this user's own");
            return;
        }
        let bytes = match opened
            .map_err(fly_oidc::fs::ReadError::Io)
            .and_then(|f| fly_oidc::fs::read_capped(f, RECORD_LIMIT))
        {
            Ok(bytes) => bytes,
            Err(fly_oidc::fs::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(record = %path.display(), error = %e, "could not read the record of a fly-oidc process that is gone");
                return;
            }
        };
        for (file, id) in parse_record(&String::from_utf8_lossy(&bytes)) {
            match remove_if_written(&file, id) {
                Ok(true) => {
                    tracing::info!(file = %file.display(), "removed a file left by a fly-oidc process that is gone");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "could not remove a file left by a fly-oidc process that is gone");
                }
            }
        }
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(record = %path.display(), error = %e, "could not remove the record of a fly-oidc process that is gone");
        }
    }
}

/// The record's text: a comment, then one line a file, `DEV INO UID CTIME CTIME_NSEC PATH`
/// with the path's bytes in hexadecimal (a path may hold any byte but NUL, newlines too).
fn record_text(entries: &[(PathBuf, FileId)]) -> String {
    use std::fmt::Write;
    use std::os::unix::ffi::OsStrExt;
    let mut text = String::from(
        "# Files written by a live fly-oidc exec or serve; its next start removes them once it is gone.\n",
    );
    for (path, id) in entries {
        let _ = write!(
            text,
            "{} {} {} {} {} ",
            id.dev, id.ino, id.uid, id.ctime, id.ctime_nsec
        );
        for byte in path.as_os_str().as_bytes() {
            let _ = write!(text, "{byte:02x}");
        }
        text.push('\n');
    }
    text
}

/// The entries of a record's text; a line that does not parse (a comment) is skipped.
fn parse_record(text: &str) -> Vec<(PathBuf, FileId)> {
    use std::os::unix::ffi::OsStringExt;
    let entry = |line: &str| {
        let mut words = line.split(' ');
        let id = FileId {
            dev: words.next()?.parse().ok()?,
            ino: words.next()?.parse().ok()?,
            uid: words.next()?.parse().ok()?,
            ctime: words.next()?.parse().ok()?,
            ctime_nsec: words.next()?.parse().ok()?,
        };
        let hex = words.next()?;
        if words.next().is_some() || hex.is_empty() || hex.len() % 2 != 0 {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let path = PathBuf::from(std::ffi::OsString::from_vec(bytes));
        path.is_absolute().then_some((path, id))
    };
    text.lines().filter_map(entry).collect()
}

/// Remove `path` if it is still the regular file `id` names. Looked up and removed through
/// its directory (`fstatat` without following a link, `unlinkat`), so the name checked is the
/// name removed; a file another process holds a `flock` on (a lock file a live `serve` took
/// over) is left. `Ok(false)` when it is gone or is not what was written.
fn remove_if_written(path: &Path, id: FileId) -> io::Result<bool> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::{Mode, fstatat};
    use nix::unistd::{UnlinkatFlags, unlinkat};
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    let gone = |e: nix::Error| match e {
        nix::Error::ENOENT | nix::Error::ENOTDIR => Ok(false),
        e => Err(io::Error::from(e)),
    };
    let dir = match std::fs::File::open(dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let named = match fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(e) => return gone(e),
    };
    if FileId::of_regular(&named) != Some(id) {
        return Ok(false);
    }
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let file = match openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => return gone(e),
    };
    if FileId::of_regular(&nix::sys::stat::fstat(&file)?) != Some(id) || file.try_lock().is_err() {
        return Ok(false);
    }
    match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(true),
        Err(e) => gone(e),
    }
}

impl Drop for EnvFileLock {
    fn drop(&mut self) {
        // Removed while still locked; the lock goes with the file descriptor, after this.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // The files it names were removed by their writers on the way out.
        let record = self.record.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = std::fs::remove_file(&record.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %record.path.display(), error = %e, "could not remove the record of written files");
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the private directory");
        }
    }
}

/// The private directory of `fly-oidc exec`'s child ([`PrivateDir`]): owned by `owner` when
/// given, removed when dropped, holding the authorization token file when AWS is served.
#[derive(Debug)]
pub struct ChildFiles {
    dir: PrivateDir,
    token_file: Option<PathBuf>,
}

impl ChildFiles {
    /// Write the token file into `dir` ([`PrivateDir::create`] of kind
    /// [`PrivateDirKind::Exec`], owned by `owner`), which it keeps.
    ///
    /// # Errors
    /// The file system's error, naming no secret.
    pub fn create(server: &Server, owner: Option<FileOwner>, dir: PrivateDir) -> io::Result<Self> {
        let token_file = server
            .aws_credentials_uri()
            .map(|_| dir.path().join("aws-token"));
        if let Some(path) = &token_file {
            write_auth_token_file(server, path, owner)?;
        }
        Ok(Self { dir, token_file })
    }

    /// The authorization token file (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), when AWS is
    /// served.
    pub fn token_file(&self) -> Option<&Path> {
        self.token_file.as_deref()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A user resolved from `USER[:GROUP]`: what running a process as that user needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The user's login name.
    pub name: String,
    /// The user's home directory.
    pub home: PathBuf,
    /// The user's uid, and the group's gid (the user's primary group when none is named).
    pub owner: FileOwner,
}

/// Why `USER[:GROUP]` could not be resolved. `Display` gives the reason and the fix, without
/// the spec or the setting's name (the caller adds them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerError(String);

impl fmt::Display for OwnerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OwnerError {}

/// Resolve `USER[:GROUP]` (names or numeric ids) in this machine's passwd and group databases.
/// An empty `GROUP` means the user's primary group.
///
/// # Errors
/// [`OwnerError`] when a database cannot be read or names no such user or group.
pub fn resolve_owner(spec: &str) -> Result<ResolvedUser, OwnerError> {
    use nix::unistd::{Gid, Group, Uid, User};
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = match user_part.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(user_part),
    };
    let user = lookup
        .map_err(|e| OwnerError(format!("cannot read the user database: {e}")))?
        .ok_or_else(|| {
            OwnerError(format!(
                "no user {user_part:?} on this machine (create it in the image, e.g. `useradd {user_part}`)"
            ))
        })?;
    let gid = match group_part {
        None | Some("") => user.gid,
        Some(group) => {
            let lookup = match group.parse::<u32>() {
                Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
                Err(_) => Group::from_name(group),
            };
            lookup
                .map_err(|e| OwnerError(format!("cannot read the group database: {e}")))?
                .ok_or_else(|| OwnerError(format!("no group {group:?}")))?
                .gid
        }
    };
    Ok(ResolvedUser {
        name: user.name,
        home: user.dir,
        owner: FileOwner {
            uid: user.uid.as_raw(),
            gid: gid.as_raw(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_quotes_values_and_unsets_removed() {
        let plan = EnvPlan {
            set: vec![("A".into(), "it's".into())],
            remove: vec!["B".into(), "C".into()],
            warnings: Vec::new(),
        };
        let text = plan.env_file_text();
        assert!(text.starts_with("# Written by `fly-oidc serve`"));
        assert!(text.contains("export A='it'\\''s'\n"), "{text}");
        assert!(text.ends_with("unset B C\n"), "{text}");
    }

    #[test]
    fn env_file_without_removals_has_no_unset() {
        let plan = EnvPlan {
            set: vec![("A".into(), "x".into())],
            ..EnvPlan::default()
        };
        assert!(!plan.env_file_text().contains("unset"));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let plan = EnvPlan {
            set: vec![("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), "s3cr3t".into())],
            ..EnvPlan::default()
        };
        let shown = format!("{plan:?}");
        assert!(shown.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    /// The env file's region lines, sourced by a real `sh`: a shell keeps the region it has and
    /// gains the other name; one with none gets the configured region under both.
    #[test]
    fn env_file_regions_are_defaults_for_the_sourcing_shell() {
        let plan = EnvPlan {
            set: REGION_VARS
                .iter()
                .map(|v| ((*v).to_owned(), "eu-west-1".to_owned()))
                .collect(),
            ..EnvPlan::default()
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("app.env");
        std::fs::write(&file, plan.env_file_text()).expect("write");
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[], "eu-west-1 eu-west-1"),
            (&[("AWS_REGION", "us-west-2")], "us-west-2 us-west-2"),
            (
                &[("AWS_DEFAULT_REGION", "ap-south-1")],
                "ap-south-1 ap-south-1",
            ),
            (
                &[("AWS_REGION", "a-1"), ("AWS_DEFAULT_REGION", "b-2")],
                "a-1 b-2",
            ),
        ];
        for (env, expected) in cases {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    ". {}; echo \"$AWS_REGION $AWS_DEFAULT_REGION\"",
                    file.display()
                ))
                .env_clear()
                .envs(env.iter().copied())
                .output()
                .expect("sh");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                expected,
                "{env:?}"
            );
        }
        // A value that is not a region name is quoted as any other.
        let odd = EnvPlan {
            set: vec![("AWS_REGION".into(), "it's".into())],
            ..EnvPlan::default()
        };
        assert!(
            odd.env_file_text()
                .contains("export AWS_REGION='it'\\''s'\n")
        );
    }

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

    #[test]
    fn a_private_dir_is_locked_for_its_life_and_a_gone_owners_removed() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("temp dir");
        let live =
            PrivateDir::create(parent.path(), PrivateDirKind::Exec, None).expect("private dir");
        let mode = std::fs::metadata(live.path())
            .expect("made")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let name = live.path().file_name().expect("named").to_string_lossy();
        assert!(
            name.starts_with(&format!("exec-{}-", std::process::id())),
            "{name}"
        );
        // What a crashed exec left: a directory nobody holds the lock of.
        let stale = parent.path().join("exec-1-crashed");
        std::fs::create_dir(&stale).expect("stale dir");
        std::fs::write(stale.join("aws-token"), "x").expect("stale file");
        let other = parent.path().join("not-ours");
        std::fs::create_dir(&other).expect("other dir");
        assert_eq!(PrivateDir::remove_stale(parent.path()), 1);
        assert!(!stale.exists() && other.exists() && live.path().exists());
        let path = live.path().to_owned();
        drop(live);
        assert!(!path.exists(), "removed when dropped");
    }

    /// A record's files are removed with a gone owner's directory only while they are what
    /// was written: a link, another file (another inode), a file written over since, or a
    /// directory in its place is left; a path with a newline in it is read back whole.
    /// A record another user could have written names nothing to remove: one writable by
    /// others, or (as root) one owned by another user. (A parent that others can write is
    /// refused in the first place: `runtime_parent`.)
    #[test]
    fn a_record_that_is_not_this_users_own_removes_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("temp dir");
        let files = tempfile::tempdir().expect("temp dir");
        let victim = files.path().join("victim");
        let meta =
            fly_oidc::fs::write_private_owned(&victim, b"keep", 0o600, None).expect("written");
        let mut planted = vec![("exec-1-writable", None)];
        if nix::unistd::geteuid().is_root() {
            planted.push(("exec-2-foreign", Some(65534)));
        }
        for (name, owner) in planted {
            let dir = parent.path().join(name);
            std::fs::create_dir(&dir).expect("dir");
            let record = FileRecord::new(record_of(&dir));
            record.add(&victim, &meta).expect("recorded");
            match owner {
                None => std::fs::set_permissions(
                    record_of(&dir),
                    std::fs::Permissions::from_mode(0o666),
                )
                .expect("chmod"),
                Some(uid) => {
                    std::os::unix::fs::chown(record_of(&dir), Some(uid), None).expect("chown")
                }
            }
            PrivateDir::remove_stale(parent.path());
            assert!(victim.exists(), "{name}: removed on another user's say-so");
        }
        let refused = |dir: &Path| usable_parent(dir).expect_err("refused").to_string();
        let shared = parent.path().join("shared");
        std::fs::create_dir(&shared).expect("dir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        assert_eq!(refused(&shared), "writable by others (mode 1777)");
        let mode = std::fs::metadata(&shared)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o1777, "left as it was");
        // One of this user's, not writable by others, is used as it is; one made is 0711.
        let own = parent.path().join("own");
        std::fs::create_dir(&own).expect("dir");
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        usable_parent(&own).expect("usable");
        let mode = std::fs::metadata(&own).expect("meta").permissions().mode();
        assert_eq!(mode & 0o7777, 0o755);
        let made = parent.path().join("made");
        usable_parent(&made).expect("made");
        let mode = std::fs::metadata(&made).expect("meta").permissions().mode();
        assert_eq!(mode & 0o7777, 0o711);
    }

    #[test]
    fn a_gone_owners_recorded_files_are_removed_only_while_still_what_was_written() {
        let parent = tempfile::tempdir().expect("temp dir");
        let files = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| files.path().join(name);
        let live = PrivateDir::create(parent.path(), PrivateDirKind::Serve, None).expect("dir");
        let name = live.path().file_name().expect("named").to_string_lossy();
        assert!(
            name.starts_with(&format!("serve-{}-", std::process::id())),
            "{name}"
        );
        let names = ["kept", "link", "other", "dir", "written-over", "new\nline"];
        for name in names {
            let meta = fly_oidc::fs::write_private_owned(&path(name), b"jwt", 0o600, None)
                .expect("written");
            live.record().add(&path(name), &meta).expect("recorded");
        }
        // Rewritten (a new inode): the record follows.
        let meta = fly_oidc::fs::write_private_owned(&path("kept"), b"jwt2", 0o600, None)
            .expect("written");
        live.record().add(&path("kept"), &meta).expect("recorded");
        // What a killed serve leaves: its record, beside a directory nobody holds.
        let stale = parent.path().join("serve-1-killed");
        std::fs::create_dir(&stale).expect("stale dir");
        std::fs::copy(record_of(live.path()), record_of(&stale)).expect("record");
        // And a rewrite of that record cut short by the kill: its temporary file; the live
        // one's is kept.
        let cut_short = parent.path().join(".serve-1-killed.files.fly-oidc-Ab12Cd");
        std::fs::write(&cut_short, "half a record").expect("temporary");
        let live_temporary = parent.path().join(format!(".{name}.files.fly-oidc-Ef34Gh"));
        std::fs::write(&live_temporary, "being written").expect("temporary");
        let target = path("target");
        std::fs::write(&target, "not ours to remove").expect("target");
        std::fs::remove_file(path("link")).expect("remove");
        std::os::unix::fs::symlink(&target, path("link")).expect("symlink");
        std::fs::remove_file(path("other")).expect("remove");
        std::fs::write(path("other"), "another file").expect("other");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(path("written-over"), "written over in place").expect("written over");
        std::fs::remove_file(path("dir")).expect("remove");
        std::fs::create_dir(path("dir")).expect("dir");
        assert_eq!(PrivateDir::remove_stale(parent.path()), 1);
        assert!(!stale.exists() && !record_of(&stale).exists());
        assert!(!cut_short.exists() && live_temporary.exists());
        assert!(!path("kept").exists() && !path("new\nline").exists());
        assert!(std::fs::symlink_metadata(path("link")).is_ok_and(|m| m.is_symlink()));
        assert_eq!(
            std::fs::read_to_string(&target).expect("kept"),
            "not ours to remove"
        );
        assert_eq!(
            std::fs::read_to_string(path("other")).expect("kept"),
            "another file"
        );
        assert!(path("written-over").exists() && path("dir").is_dir());
        // The live one's record and directory are kept, and removed when it is dropped.
        let record = record_of(live.path());
        assert!(record.exists() && live.path().exists());
        drop(live);
        assert!(!record.exists());
    }

    #[test]
    fn resolves_root_by_name_and_number() {
        let by_name = resolve_owner("root").expect("root exists");
        assert_eq!(by_name.owner, FileOwner { uid: 0, gid: 0 });
        assert_eq!(by_name.name, "root");
        assert_eq!(resolve_owner("0:0").expect("uid 0"), by_name);
    }

    #[test]
    fn unknown_user_and_group_are_named() {
        let err = resolve_owner("no-such-user-fly-oidc").unwrap_err();
        assert!(
            err.to_string()
                .contains("no user \"no-such-user-fly-oidc\"")
        );
        assert!(err.to_string().contains("useradd"));
        let err = resolve_owner("root:no-such-group-fly-oidc").unwrap_err();
        assert_eq!(err.to_string(), "no group \"no-such-group-fly-oidc\"");
    }
}
