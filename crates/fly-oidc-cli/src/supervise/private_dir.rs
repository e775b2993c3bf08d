//! The private directory of `fly-oidc exec` or `serve` ([`PrivateDir`]), in the one
//! well-known runtime directory ([`runtime_parent`]), with the record of the files written
//! elsewhere beside it ([`FileRecord`]); and `exec`'s child's files in it ([`ChildFiles`]).

use super::env_file::write_auth_token_file;
use fly_oidc::Env;
use fly_oidc_server::{FileOwner, FileRecord, Server};
use std::io;
use std::path::{Path, PathBuf};

/// The variable that names the directory holding `exec`'s private directories (see
/// [`runtime_parent`]).
const RUNTIME_DIR_VARIABLE: &str = "FLY_OIDC_RUNTIME_DIR";

/// The setting [`RUNTIME_DIR_VARIABLE`] sets.
const RUNTIME_DIR: fly_oidc::Setting =
    fly_oidc::Setting::new("runtime_dir", Some(RUNTIME_DIR_VARIABLE));

/// Where the private directories go: what [`runtime_parent`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RuntimeParent {
    /// The well-known directory, the same at every start of this user's: a later start finds
    /// and removes what a killed or crashed one left there.
    WellKnown(PathBuf),
    /// A fresh directory of this process's own (random name, mode 0711), made because the
    /// well-known one in the shared temp directory is taken by someone else; removed with
    /// the private directory, but a later start cannot find what a killed process left in it.
    Fresh(PathBuf),
}

/// The runtime directory that holds `exec`'s and `serve`'s private directories, so a later
/// start finds what a crashed one left: `$FLY_OIDC_RUNTIME_DIR` when set (an empty value is
/// unset, as for every variable: [`Env::get`]); for root `/run/fly-oidc`;
/// `$XDG_RUNTIME_DIR/fly-oidc`; else `fly-oidc-<uid>` in `$TMPDIR` (or `/tmp`). The first
/// that is, or can be made, a directory of this user that no one else can write (mode 0711:
/// a `--user` child reaches its own directory inside by name, without listing the others) is
/// taken.
///
/// The last one's name, in a directory everyone can write, can be taken first by another
/// user (a directory, a link or a file of theirs): then a fresh directory
/// `fly-oidc-<uid>-XXXXXX` beside it is made instead (random name, 0711, this process's own),
/// with a warning naming the one taken, so that no other user can stop `exec` or `serve`
/// from starting. Not when `FLY_OIDC_RUNTIME_DIR` names the directory: that one only.
///
/// # Errors
/// When `FLY_OIDC_RUNTIME_DIR` names one that cannot be used, an [`InvalidInput`] error
/// holding a [`fly_oidc::BuildError`] ([`invalid_runtime_dir`]); when none of the others can
/// be used, nor a fresh one made, an error naming them and the variable that chooses another
/// ([`runtime_dir_setting`] makes it an invalid setting).
///
/// [`InvalidInput`]: io::ErrorKind::InvalidInput
pub(crate) fn runtime_parent(env: &Env) -> io::Result<RuntimeParent> {
    let uid = nix::unistd::geteuid();
    let mut candidates = Vec::new();
    if let Some(dir) = env.get(RUNTIME_DIR_VARIABLE) {
        // Chosen by the operator: that one only, and an unusable one is an invalid setting.
        let usable = match dir.starts_with('/') {
            true => usable_parent(Path::new(&dir)),
            false => Err(io::Error::other("not an absolute path")),
        };
        return match usable {
            Ok(()) => Ok(RuntimeParent::WellKnown(PathBuf::from(dir))),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                fly_oidc::BuildError::invalid(
                    RUNTIME_DIR,
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
    let name = format!("fly-oidc-{uid}");
    candidates.push(Path::new(&tmp).join(&name));
    let mut refused = Vec::new();
    for dir in candidates {
        match usable_parent(&dir) {
            Ok(()) => return Ok(RuntimeParent::WellKnown(dir)),
            Err(e) => refused.push((dir, e)),
        }
    }
    // The last one, in the shared temp directory, is taken: a fresh one beside it.
    let fresh = fresh_dir(Path::new(&tmp), &format!("{name}-"), 0o711);
    let mut shown: Vec<String> = refused
        .iter()
        .map(|(dir, e)| format!("{}: {e}", dir.display()))
        .collect();
    match fresh {
        Ok(fresh) => {
            let taken = shown.last().map(String::as_str).unwrap_or_default();
            tracing::warn!(
                "cannot use {taken}; another user may have made it to stop fly-oidc. Using a fresh directory of this process's own instead, {}, removed at exit: if this process is killed, the next start cannot find what it leaves there. Set {RUNTIME_DIR_VARIABLE} to a directory of this user's that no one else can write",
                fresh.display()
            );
            Ok(RuntimeParent::Fresh(fresh))
        }
        Err(e) => {
            shown.push(format!("a fresh directory in {tmp}: {e}"));
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                NoRuntimeDir(format!(
                    "no usable directory for the private files of exec and serve ({}); set {RUNTIME_DIR_VARIABLE} to a directory of this user's that no one else can write",
                    shown.join("; ")
                )),
            ))
        }
    }
}

/// A fresh directory `<prefix>XXXXXX` in `parent`: made by this process (never one that
/// existed), its mode exactly `mode`.
fn fresh_dir(parent: &Path, prefix: &str, mode: u32) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::Permissions::from_mode(mode);
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(mode.clone())
        .tempdir_in(parent)?
        .keep();
    // mkdir's mode passes through the umask: set it exactly.
    if let Err(e) = std::fs::set_permissions(&dir, mode) {
        let _ = std::fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(dir)
}

/// None of the default runtime directories can be used, nor a fresh one made: the message
/// (see [`runtime_dir_setting`]).
#[derive(Debug)]
struct NoRuntimeDir(String);

impl std::fmt::Display for NoRuntimeDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoRuntimeDir {}

/// The invalid setting inside an error of [`runtime_parent`] (or of a [`PrivateDir`] made in
/// it), when `FLY_OIDC_RUNTIME_DIR` named a directory that cannot be used.
pub(crate) fn invalid_runtime_dir(err: &io::Error) -> Option<&fly_oidc::BuildError> {
    err.get_ref()?.downcast_ref()
}

/// Any refusal of [`runtime_parent`] as an invalid setting naming `FLY_OIDC_RUNTIME_DIR`:
/// the one it names cannot be used ([`invalid_runtime_dir`]), or none of the defaults can and
/// it is not set. `None` for any other error (the file system's, making a private directory
/// in a usable runtime directory).
pub(crate) fn runtime_dir_setting(err: &io::Error) -> Option<fly_oidc::BuildError> {
    if let Some(invalid) = invalid_runtime_dir(err) {
        return Some(invalid.clone());
    }
    let none = err.get_ref()?.downcast_ref::<NoRuntimeDir>()?;
    // Shown as its reason alone: the reason names the variable and what to set it to.
    let unnamed = fly_oidc::Setting::new(RUNTIME_DIR.builder_method(), None);
    Some(fly_oidc::BuildError::invalid(
        unnamed,
        fly_oidc::Origin::Builder,
        none.0.clone(),
    ))
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
pub(crate) enum PrivateDirKind {
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
pub(crate) struct PrivateDir {
    path: PathBuf,
    record: FileRecord,
    /// Holds the lock; closed after the directory is removed.
    _lock: std::fs::File,
    /// The runtime directory when it is this process's own ([`RuntimeParent::Fresh`]):
    /// removed after the directory and its record.
    own_parent: Option<PathBuf>,
}

impl PrivateDir {
    /// Make a private directory of `kind` in `parent` (owned by `owner` when given) and lock
    /// it.
    pub(crate) fn create(
        parent: &Path,
        kind: PrivateDirKind,
        owner: Option<FileOwner>,
    ) -> io::Result<Self> {
        let prefix = format!("{NEW_PREFIX}{}-{}-", kind.word(), std::process::id());
        let new = fresh_dir(parent, &prefix, 0o700)?;
        let made = Self::lock_and_name(&new, owner);
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&new);
        }
        made
    }

    fn lock_and_name(new: &Path, owner: Option<FileOwner>) -> io::Result<Self> {
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
            own_parent: None,
        };
        if let Some(owner) = owner {
            std::os::unix::fs::chown(&dir.path, Some(owner.uid), Some(owner.gid))?;
        }
        Ok(dir)
    }

    /// Make one in the [`runtime_parent`] (owned by `owner` when given), after removing what
    /// an `exec` or `serve` that was killed or crashed left in the well-known one
    /// ([`remove_stale`](Self::remove_stale)): how both commands start. A fresh runtime
    /// directory is removed with the private directory.
    ///
    /// # Errors
    /// No usable runtime directory (naming the candidates and `FLY_OIDC_RUNTIME_DIR`:
    /// [`runtime_dir_setting`]), or the file system's error.
    pub(crate) fn create_in_runtime_dir(
        env: &Env,
        kind: PrivateDirKind,
        owner: Option<FileOwner>,
    ) -> io::Result<Self> {
        match runtime_parent(env)? {
            RuntimeParent::WellKnown(parent) => {
                Self::remove_stale(&parent);
                Self::create(&parent, kind, owner)
            }
            RuntimeParent::Fresh(parent) => match Self::create(&parent, kind, owner) {
                Ok(mut dir) => {
                    dir.own_parent = Some(parent);
                    Ok(dir)
                }
                Err(e) => {
                    let _ = std::fs::remove_dir(&parent);
                    Err(e)
                }
            },
        }
    }

    /// Remove the private directories in `parent` whose owner process is gone (their lock is
    /// free), with the files their record names that are still what the owner wrote (see
    /// [`FileRecord`]), and the half-made ones older than a minute. Returns how many
    /// directories were removed; what cannot be read or removed is left (a warning).
    pub(crate) fn remove_stale(parent: &Path) -> usize {
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
            FileRecord::remove_left_behind(&record_of(&path));
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

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The record of the files this process writes outside the directory.
    pub(crate) fn record(&self) -> &FileRecord {
        &self.record
    }
}

/// The record beside the private directory `dir`: `<dir>.files`.
fn record_of(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(RECORD_SUFFIX);
    PathBuf::from(name)
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // The files it names were removed by their writers on the way out.
        let record = record_of(&self.path);
        if let Err(e) = std::fs::remove_file(&record)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %record.display(), error = %e, "could not remove the record of written files");
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the private directory");
        }
        if let Some(parent) = &self.own_parent
            && let Err(e) = std::fs::remove_dir(parent)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %parent.display(), error = %e, "could not remove the runtime directory of this process");
        }
    }
}

/// The private directory of `fly-oidc exec`'s child ([`PrivateDir`]): owned by `owner` when
/// given, removed when dropped, holding the authorization token file when AWS is served.
#[derive(Debug)]
pub(crate) struct ChildFiles {
    /// Kept until this is dropped, then removed with the token file in it.
    _dir: PrivateDir,
    token_file: Option<PathBuf>,
}

impl ChildFiles {
    /// Write the token file into `dir` ([`PrivateDir::create`] of kind
    /// [`PrivateDirKind::Exec`], owned by `owner`), which it keeps.
    ///
    /// # Errors
    /// The file system's error, naming no secret.
    pub(crate) fn create(
        server: &Server,
        owner: Option<FileOwner>,
        dir: PrivateDir,
    ) -> io::Result<Self> {
        let token_file = server
            .aws_credentials_uri()
            .map(|_| dir.path().join("aws-token"));
        if let Some(path) = &token_file {
            write_auth_token_file(server, path, owner, None)?;
        }
        Ok(Self {
            _dir: dir,
            token_file,
        })
    }

    /// The authorization token file (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), when AWS is
    /// served.
    pub(crate) fn token_file(&self) -> Option<&Path> {
        self.token_file.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut written = None;
        fly_oidc::fs::write_private_owned(&victim, b"keep", 0o600, None, |meta| {
            written = Some(meta.clone())
        })
        .expect("written");
        let meta = written.expect("shown before the rename");
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
        let write = |name: &str, bytes: &[u8]| {
            fly_oidc::fs::write_private_owned(&path(name), bytes, 0o600, None, |meta| {
                live.record().add(&path(name), meta).expect("recorded")
            })
            .expect("written")
        };
        for name in names {
            write(name, b"jwt");
        }
        // Rewritten (a new inode): the record follows.
        write("kept", b"jwt2");
        // A kill after the record, before the rename: the file is still its temporary, beside
        // an older one at its path that this process did not write.
        let temporary = path(".cut-short.fly-oidc-Zz99Yy");
        std::fs::write(&temporary, "jwt3").expect("temporary");
        let meta = std::fs::metadata(&temporary).expect("meta");
        live.record()
            .add(&path("cut-short"), &meta)
            .expect("recorded");
        std::fs::write(path("cut-short"), "an older file").expect("older");
        // A kill during a file's first write, before its temporary was recorded: the planned
        // entry names its path, so the temporary goes; the file there is not this one's.
        live.record().add_planned(&path("first"));
        let first_temporary = path(".first.fly-oidc-Qq11Rr");
        std::fs::write(&first_temporary, "jwt4").expect("temporary");
        std::fs::write(path("first"), "not written by it").expect("first");
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
        assert!(!temporary.exists() && path("cut-short").exists());
        assert!(!first_temporary.exists() && path("first").exists());
        // The live one's record and directory are kept, and removed when it is dropped.
        let record = record_of(live.path());
        assert!(record.exists() && live.path().exists());
        drop(live);
        assert!(!record.exists());
    }
}
