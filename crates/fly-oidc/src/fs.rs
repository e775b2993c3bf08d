//! Bounded reads and atomic private writes: the one place fly-oidc crates read outside input
//! of unknown size (files, HTTP bodies) and write files that hold secrets.
//!
//! - [`read_capped`], [`read_file_capped`] and [`read_body_capped`] read at most a limit and
//!   fail with [`ReadError::TooLarge`] above it: input is never cut silently.
//! - [`write_private`] writes a file atomically: a temporary file in the same directory
//!   (mode `0600` or the one given), the bytes, `fsync` of the file, a rename over the target,
//!   then `fsync` of the directory, so a reader sees the old file or the new one, whole, even
//!   after a crash. [`write_private_owned`] also hands the file to another [`FileOwner`].

use std::io::{self, Read, Write};
use std::path::Path;

/// A bounded read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The input is larger than the limit.
    #[error("more than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Reading a file failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Reading an HTTP body failed (the connection broke or timed out).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// Collects chunks up to a limit.
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
}

impl Capped {
    fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), ReadError> {
        if self.bytes.len() + chunk.len() > self.limit {
            return Err(ReadError::TooLarge { limit: self.limit });
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }
}

/// Read `reader` to its end, failing above `limit` bytes.
///
/// ```
/// use fly_oidc::fs::{ReadError, read_capped};
/// assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), b"abc");
/// assert!(matches!(read_capped(&b"abcd"[..], 3), Err(ReadError::TooLarge { limit: 3 })));
/// ```
pub fn read_capped(reader: impl Read, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    reader
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)?;
    let mut capped = Capped::new(limit);
    capped.push(&bytes)?;
    Ok(capped.bytes)
}

/// Read the file at `path`, failing above `limit` bytes. One open, a blocking read: meant
/// for small files (tokens, cache entries, policies).
pub fn read_file_capped(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    read_capped(std::fs::File::open(path)?, limit)
}

/// Read an HTTP response body, failing above `limit` bytes (checked against
/// `Content-Length` first, then as chunks arrive).
pub async fn read_body_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(ReadError::TooLarge { limit });
    }
    let mut capped = Capped::new(limit);
    while let Some(chunk) = response.chunk().await? {
        capped.push(&chunk)?;
    }
    Ok(capped.bytes)
}

/// Why `path` must not be replaced by a file written there, or `None`: it exists and is a
/// directory, a device (such as `/dev/null`), a named pipe or a socket, or, unless
/// `symlink_ok`, a symbolic link (which an atomic write would replace rather than write
/// through). A missing path, or a regular file, is `None`.
pub fn not_replaceable(path: &Path, symlink_ok: bool) -> Option<&'static str> {
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    match () {
        _ if kind.is_file() || (kind.is_symlink() && symlink_ok) => None,
        _ if kind.is_dir() => Some("is a directory"),
        _ if kind.is_symlink() => {
            Some("is a symbolic link, which would be replaced by a file; name its target")
        }
        _ => {
            Some("is not a regular file (a device, pipe or socket), which a file must not replace")
        }
    }
}

/// Write `bytes` to `path` atomically, readable only as `mode` allows (`0o600` for secrets):
/// a temporary file in the same directory, `fsync`, rename over `path`, `fsync` of the
/// directory. A symlink at `path` is replaced, not followed; a directory, device, pipe or
/// socket there is an error ([`not_replaceable`]), never replaced.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::os::unix::fs::PermissionsExt;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("answer.json");
/// fly_oidc::fs::write_private(&path, b"{}", 0o600)?;
/// assert_eq!(std::fs::read(&path)?, b"{}");
/// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// # Ok(()) }
/// ```
pub fn write_private(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_private_owned(path, bytes, mode, None, |_| ())
}

/// The numeric owner of a written file (a user and a group, as `chown` takes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileOwner {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

/// [`write_private`], the file owned by `owner` when given: the owner is set on the temporary
/// file before any byte is written and before the rename, so the file never appears at `path`
/// with another owner. Changing the owner needs the right to (`CAP_CHOWN`, usually root).
///
/// `before_rename` is called with the temporary file's metadata once its bytes are
/// durable and before it appears at `path`: its device, inode, owner and modification time are
/// those of the file at `path` after the rename, so a caller can record what it wrote with no
/// moment in which the file is there unrecorded.
///
/// Errors are the file system's, naming neither `path` nor `bytes` (the caller adds the path).
pub fn write_private_owned(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<FileOwner>,
    before_rename: impl FnOnce(&std::fs::Metadata),
) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(why) = not_replaceable(path, true) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // `.NAME.fly-oidc-XXXXXX`: a kill during the write leaves a file that names its target
    // (the credential server's start removes those of its records).
    let prefix = format!(
        ".{}.fly-oidc-",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    if let Some(owner) = owner {
        std::os::unix::fs::fchown(file.as_file(), Some(owner.uid), Some(owner.gid))?;
    }
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    before_rename(&file.as_file().metadata()?);
    file.persist(path).map_err(|e| e.error)?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    /// What a written file must never replace: a directory, a socket (as a device or a pipe
    /// would be), a symbolic link where the caller names the file itself; a regular file or a
    /// missing path passes. `write_private` refuses them rather than renaming over them.
    #[test]
    fn a_directory_socket_or_device_is_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("socket");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("file");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert_eq!(
            super::not_replaceable(&dir.path().join("missing"), false),
            None
        );
        assert_eq!(super::not_replaceable(&file, false), None);
        assert_eq!(
            super::not_replaceable(dir.path(), true),
            Some("is a directory")
        );
        assert!(super::not_replaceable(Path::new("/dev/null"), true).is_some());
        assert!(super::not_replaceable(&socket, true).is_some());
        assert!(super::not_replaceable(&link, false).is_some());
        assert_eq!(super::not_replaceable(&link, true), None);
        let err = super::write_private(&socket, b"secret", 0o600).expect_err("a socket");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(&socket)
                .expect("kept")
                .file_type()
                .is_socket()
        );
    }

    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_fails_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        assert_eq!(read_file_capped(&path, 100).unwrap().len(), 100);
        let err = read_file_capped(&path, 99).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 99 }), "{err}");
        assert_eq!(err.to_string(), "more than 99 bytes");
        let missing = read_file_capped(&dir.path().join("nope"), 10).unwrap_err();
        assert!(
            matches!(&missing, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound),
            "{missing}"
        );
    }

    #[test]
    fn writes_replace_atomically_with_the_mode_given() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        write_private(&path, b"one", 0o600).unwrap();
        write_private(&path, b"two", 0o640).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A symlink at the path is replaced, its target untouched.
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_private(&link, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn owned_writes_set_the_owner_or_fail_without_writing() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("owned");
        let meta = std::fs::metadata(dir.path()).unwrap();
        // Our own uid and gid: allowed without privileges.
        let mine = FileOwner {
            uid: meta.uid(),
            gid: meta.gid(),
        };
        let mut before = None;
        write_private_owned(&path, b"x", 0o600, Some(mine), |meta| {
            assert!(!path.exists(), "not there before the rename");
            before = Some((meta.dev(), meta.ino(), meta.uid(), meta.mtime_nsec()));
        })
        .unwrap();
        let written = std::fs::metadata(&path).unwrap();
        assert_eq!((written.uid(), written.gid()), (mine.uid, mine.gid));
        // What the caller is shown before the rename identifies the file at the path after it.
        assert_eq!(
            before,
            Some((
                written.dev(),
                written.ino(),
                written.uid(),
                written.mtime_nsec()
            ))
        );
        // Another user's: refused unless root; nothing is left at the path or beside it.
        let other = dir.path().join("other");
        let nobody = FileOwner {
            uid: 65534,
            gid: 65534,
        };
        match write_private_owned(&other, b"y", 0o600, Some(nobody), |meta| {
            assert_eq!(meta.uid(), 65534)
        }) {
            Ok(()) => {
                assert_eq!(std::fs::metadata(&other).unwrap().uid(), 65534);
            }
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
                assert!(!other.exists());
                assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
            }
        }
    }
}
