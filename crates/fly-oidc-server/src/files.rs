//! Secret files: written atomically, 0600, optionally handed to another owner.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The numeric owner of a written file (`--file-owner`, `--user`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileOwner {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

/// Write `contents` to `path` atomically (a temporary file in the same directory, then a
/// rename), mode 0600, owned by `owner` when given (which needs the rights to `chown`).
///
/// Errors name the path and the failing step; they never carry `contents`.
pub fn write_secret_file(
    path: &Path,
    contents: &[u8],
    owner: Option<FileOwner>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let context = |step: &str, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{step} {}: {e}", path.display()))
    };
    let mut file = tempfile::Builder::new()
        .prefix(".fly-oidc-")
        .tempfile_in(dir)
        .map_err(|e| context("could not create a temporary file next to", e))?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| context("could not set the mode of", e))?;
    if let Some(owner) = owner {
        std::os::unix::fs::fchown(file.as_file(), Some(owner.uid), Some(owner.gid))
            .map_err(|e| context("could not change the owner of", e))?;
    }
    file.write_all(contents)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| context("could not write", e))?;
    file.persist(path)
        .map_err(|e| context("could not rename into", e.error))?;
    Ok(())
}
