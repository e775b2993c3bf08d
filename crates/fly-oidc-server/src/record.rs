//! The record of the files a process wrote outside a directory of its own ([`FileRecord`]),
//! so that once it is gone (killed, crashed) a later start can remove them: `fly-oidc exec`
//! and `serve` keep one beside their private directory, and [`Builder::record_files`] enters
//! the server's token files in it.
//!
//! [`Builder::record_files`]: crate::Builder::record_files

use std::io;
use std::path::{Path, PathBuf};

/// The most a record is read of (a few lines a file written).
const RECORD_LIMIT: usize = 1 << 20;

/// The record of the files a `fly-oidc exec` or `serve` wrote outside its private directory:
/// each file's absolute path and its `FileId`, rewritten atomically (0600, in the runtime
/// parent only this user can write) before the file appears at its path. A handle: clones
/// share the record.
///
/// Once the process is gone (killed, crashed), the start that removes its directory removes
/// each recorded file that is still what was written
/// ([`remove_left_behind`](Self::remove_left_behind)): a regular file (a symbolic link is
/// never followed or removed, nor is a directory) with the same device, inode, owner and
/// modification time; and the temporary files a kill during a write left beside it. A file
/// replaced or written over since is someone else's, and is left.
#[derive(Clone, Debug)]
pub struct FileRecord(std::sync::Arc<std::sync::Mutex<RecordFile>>);

#[derive(Debug)]
struct RecordFile {
    path: PathBuf,
    entries: Vec<Entry>,
}

/// One file written: where it goes, and what it is.
#[derive(Debug, PartialEq)]
struct Entry {
    path: PathBuf,
    id: FileId,
}

impl FileRecord {
    /// An empty record, kept in the file `path` (written at the first [`add`](Self::add)).
    pub fn new(path: PathBuf) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(RecordFile {
            path,
            entries: Vec::new(),
        })))
    }

    /// Record that `path` is about to hold the file `written` describes (what
    /// [`fly_oidc::fs::write_private_owned`] shows its `before_rename`, or a file made in place
    /// such as a lock file), replacing what was recorded for `path`.
    ///
    /// # Errors
    /// The file system's error writing the record.
    pub fn add(&self, path: &Path, written: &std::fs::Metadata) -> io::Result<()> {
        let path = std::path::absolute(path)?;
        self.enter(path, FileId::of(written), true)
    }

    /// [`add`](Self::add), a failure logged as a warning: the file is written and served all
    /// the same, only a kill would leave it behind.
    pub fn add_or_warn(&self, path: &Path, written: &std::fs::Metadata) {
        if let Err(e) = self.add(path, written) {
            tracing::warn!(file = %path.display(), error = %e, "a kill of this process would leave this file behind");
        }
    }

    /// Record that `path` is about to be written for the first time (a no-op once it is
    /// recorded), so that the temporary files a kill during its first write leaves beside it
    /// (`.<name>.fly-oidc-XXXXXX`) are removed too; the file at `path` itself is removed only
    /// once [`add`](Self::add) has named it. A failure is logged as a warning.
    pub fn add_planned(&self, path: &Path) {
        let entered =
            std::path::absolute(path).and_then(|path| self.enter(path, FileId::default(), false));
        if let Err(e) = entered {
            tracing::warn!(file = %path.display(), error = %e, "a kill of this process during a first write would leave its temporary file behind");
        }
    }

    /// Enter `id` for the absolute `path` (replacing what was recorded for it, or, unless
    /// `replace`, leaving it), then rewrite the record when it changed.
    fn enter(&self, path: PathBuf, id: FileId, replace: bool) -> io::Result<()> {
        let mut record = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match record.entries.iter_mut().find(|e| e.path == path) {
            Some(recorded) if replace => recorded.id = id,
            Some(_) => return Ok(()),
            None => record.entries.push(Entry { path, id }),
        }
        let text = record_text(&record.entries);
        fly_oidc::fs::write_private(&record.path, text.as_bytes(), 0o600).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not write {}: {e}", record.path.display()),
            )
        })
    }

    /// For the record at `path` of a process that is gone: remove what it names and is still
    /// what was written, then the record, and the temporary files a kill during its rewrite
    /// left beside it. A record that is not this user's own (writable by others, or another
    /// user's) names nothing to remove; what cannot be read or removed is left (a warning).
    pub fn remove_left_behind(path: &Path) {
        Self::remove_recorded(path);
        remove_temporaries(path);
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
        let entries = parse_record(&String::from_utf8_lossy(&bytes));
        for Entry { path: file, id } in &entries {
            remove_temporaries(file);
            match remove_if_written(file, *id) {
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

/// What identifies a file this process wrote: its device, inode, owner and modification time
/// (the last one changes on every write but not on the rename into place, so a file written
/// over since, or a new file that reuses the inode number, is another file). The default, all
/// zero, is no file: what [`FileRecord::add_planned`] records before the first write (no file
/// has inode 0), so nothing at the path matches it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    uid: u32,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            uid: meta.uid(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
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
            mtime: stat.st_mtime as i64,
            mtime_nsec: stat.st_mtime_nsec as i64,
        })
    }
}

/// Whether `meta` is of a file or directory of this user that no one else can write.
fn owned_by_this_user(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

/// Remove the temporary files that a kill while writing `target` left beside it
/// (`.<name>.fly-oidc-XXXXXX`, see [`fly_oidc::fs::write_private`]): its directory is one that
/// only this user or root can write (the record's runtime parent; an output file's directory,
/// checked at start), so they are this process's.
fn remove_temporaries(target: &Path) {
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!(".{}.fly-oidc-", name.to_string_lossy());
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

/// The record's text: a comment, then one line a file, `DEV INO UID MTIME MTIME_NSEC PATH`
/// with the path's bytes in hexadecimal (a path may hold any byte but NUL, newlines too).
fn record_text(entries: &[Entry]) -> String {
    use std::fmt::Write;
    use std::os::unix::ffi::OsStrExt;
    let mut text = String::from(
        "# Files written by a live fly-oidc exec or serve; its next start removes them once it is gone.\n",
    );
    for Entry { path, id } in entries {
        let _ = write!(
            text,
            "{} {} {} {} {} ",
            id.dev, id.ino, id.uid, id.mtime, id.mtime_nsec
        );
        for byte in path.as_os_str().as_bytes() {
            let _ = write!(text, "{byte:02x}");
        }
        text.push('\n');
    }
    text
}

/// The entries of a record's text; a line that does not parse (a comment) is skipped.
fn parse_record(text: &str) -> Vec<Entry> {
    use std::os::unix::ffi::OsStringExt;
    let absolute_path = |hex: &str| {
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let path = PathBuf::from(std::ffi::OsString::from_vec(bytes));
        path.is_absolute().then_some(path)
    };
    let entry = |line: &str| {
        let mut words = line.split(' ');
        let id = FileId {
            dev: words.next()?.parse().ok()?,
            ino: words.next()?.parse().ok()?,
            uid: words.next()?.parse().ok()?,
            mtime: words.next()?.parse().ok()?,
            mtime_nsec: words.next()?.parse().ok()?,
        };
        let path = absolute_path(words.next()?)?;
        words.next().is_none().then_some(Entry { path, id })
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
