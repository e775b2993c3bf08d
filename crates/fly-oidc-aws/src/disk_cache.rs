//! An on-disk cache of short-lived credentials, shared by concurrent processes (feature
//! `disk-cache`).
//!
//! The AWS CLI and the SDKs run `fly-oidc aws credential-process` again and again (Python
//! SDKs on every call once less than 15 minutes remain), often many at once. The cache keeps
//! each answer under `$XDG_CACHE_HOME/fly-oidc` (else `~/.cache/fly-oidc`) so that most runs
//! cost a file read instead of a Fly token request and an STS call. The
//! [`credential_process`](crate::credential_process) module builds on it; [`get_or_fetch`] is the entry point, and
//! [`Policy::min_ttl`] and [`STALE_FLOOR`] say when an entry is reused.
//!
//! Safety rules:
//! - the directory is created `0700`; one that is a symlink, is owned by another user, or is
//!   group- or world-writable is refused (the caller warns and runs uncached);
//! - entries are `0600`, written to a temporary file in the same directory, fsynced and
//!   renamed over the old entry ([`fly_oidc::fs::write_private`]), so a reader sees the old or
//!   the new entry, never half of one, and a crash does not leave a torn one;
//! - entries are opened without following symlinks, must be regular files owned by us, and
//!   are at most 64 KiB; a corrupt, foreign or unreadable entry is a miss, never an error;
//! - a per-key lock file (`flock` through `File::lock`) lets one process refresh while the
//!   others wait, then read what it wrote: 20 cold processes make one STS call;
//! - every failure to write (full disk, read-only directory) only costs the cache.
//!
//! An entry that is torn anyway (a disk full mid-write on a file system that does not honour
//! fsync) is ignored and replaced by the next run.

use fly_oidc::Env;
use fly_oidc::time::SharedTimeSource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The name of our directory under the user's cache directory.
pub(crate) const DIR_NAME: &str = "fly-oidc";
/// Entries larger than this are ignored.
pub(crate) const MAX_ENTRY_BYTES: u64 = 64 * 1024;
/// Bump when the entry layout changes; older entries then read as misses.
const FORMAT_VERSION: u32 = 1;
/// How long a process waits for another one that is refreshing the same entry.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// A failed refresh may fall back to a cached entry that still has at least this long to live.
pub(crate) const STALE_FLOOR: Duration = Duration::from_secs(60);

/// `$XDG_CACHE_HOME/fly-oidc`, else `$HOME/.cache/fly-oidc`; `None` when neither is an
/// absolute path (the XDG spec says to ignore relative ones).
pub(crate) fn default_dir(env: &Env) -> Option<PathBuf> {
    if let Some(xdg) = env.get("XDG_CACHE_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Some(xdg.join(DIR_NAME));
    }
    let home = env.get("HOME").map(PathBuf::from)?;
    home.is_absolute()
        .then(|| home.join(".cache").join(DIR_NAME))
}

/// The name of an entry: the SHA-256 of everything that changes the answer.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct CacheKey {
    kind: &'static str,
    hex: String,
}

impl CacheKey {
    /// A key for an entry of `kind` (a file name prefix such as `aws`) made of named parts.
    /// Parts are encoded as JSON before hashing, so no two different lists share a key.
    pub(crate) fn new(kind: &'static str, parts: &[(&str, Option<&str>)]) -> Self {
        let encoded = serde_json::json!({
            "format": FORMAT_VERSION,
            "kind": kind,
            "parts": parts,
        });
        let digest = Sha256::digest(encoded.to_string().as_bytes());
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self { kind, hex }
    }

    fn file_name(&self, ext: &str) -> String {
        format!("{}-{}.{ext}", self.kind, self.hex)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file_name("json"))
    }
}

/// Why the cache directory cannot be used. Its message says what to do.
#[derive(Debug)]
pub(crate) enum Unusable {
    /// Neither `XDG_CACHE_HOME` nor `HOME` is set to an absolute path.
    NoLocation,
    /// The directory is a symlink.
    Symlink(PathBuf),
    /// The path exists and is not a directory.
    NotADirectory(PathBuf),
    /// The directory belongs to another user.
    OtherOwner {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        ours: u32,
    },
    /// The directory is group- or world-writable.
    Writable {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It could not be created or inspected.
    Io(PathBuf, io::Error),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::NoLocation => {
                f.write_str("neither XDG_CACHE_HOME nor HOME is set to an absolute path")
            }
            Unusable::Symlink(dir) => write!(
                f,
                "{} is a symlink; replace it with a directory of mode 0700",
                dir.display()
            ),
            Unusable::NotADirectory(dir) => write!(f, "{} is not a directory", dir.display()),
            Unusable::OtherOwner { dir, owner, ours } => write!(
                f,
                "{} is owned by uid {owner}, not by us (uid {ours}); remove it or set XDG_CACHE_HOME",
                dir.display()
            ),
            Unusable::Writable { dir, mode } => write!(
                f,
                "{} is group- or world-writable (mode {:04o}); run `chmod 700 {}`",
                dir.display(),
                mode & 0o7777,
                dir.display()
            ),
            Unusable::Io(dir, err) => write!(f, "{}: {err}", dir.display()),
        }
    }
}

impl std::error::Error for Unusable {}

/// A cached value and when it expires.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<T> {
    /// The value.
    pub value: T,
    /// When it stops being valid.
    pub expires_at: SystemTime,
}

impl<T> Entry<T> {
    /// Whether at least `min_ttl` remains at `now`.
    pub(crate) fn fresh_for(&self, now: SystemTime, min_ttl: Duration) -> bool {
        self.expires_at
            .duration_since(now)
            .is_ok_and(|left| left >= min_ttl)
    }
}

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    version: u32,
    expires_at: u64,
    value: T,
}

/// The bytes of a cache entry holding `value` until `expires_at` (zeroed on drop).
pub fn encode_entry<T: Serialize>(
    value: &T,
    expires_at: SystemTime,
) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
    let stored = Stored {
        version: FORMAT_VERSION,
        expires_at: expires_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        value,
    };
    Ok(zeroize::Zeroizing::new(
        serde_json::to_vec(&stored).map_err(io::Error::other)?,
    ))
}

/// Decode a cache entry's bytes: an error when too large, not our JSON, of another format
/// version, or with an out-of-range expiry. Never panics (fuzzed: `fuzz/`).
pub fn parse_entry<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<Entry<T>> {
    if bytes.len() as u64 > MAX_ENTRY_BYTES {
        return Err(io::Error::other("larger than 64 KiB"));
    }
    let stored: Stored<T> = serde_json::from_slice(bytes).map_err(io::Error::other)?;
    if stored.version != FORMAT_VERSION {
        return Err(io::Error::other("written by another version"));
    }
    // checked: a hostile `expires_at` must not overflow SystemTime (a panic).
    let expires_at = UNIX_EPOCH
        .checked_add(Duration::from_secs(stored.expires_at))
        .ok_or_else(|| io::Error::other("expiry out of range"))?;
    Ok(Entry {
        value: stored.value,
        expires_at,
    })
}

/// A checked cache directory.
#[derive(Debug, Clone)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    uid: u32,
}

/// Held while refreshing one entry; dropping it (closing the file) releases the lock.
#[derive(Debug)]
pub(crate) struct EntryLock {
    _file: File,
}

impl DiskCache {
    /// Create (`0700`) or check `dir` for the current user.
    pub(crate) fn open(dir: impl Into<PathBuf>) -> Result<Self, Unusable> {
        Self::open_for_uid(dir.into(), rustix::process::geteuid().as_raw())
    }

    /// Like [`open`](Self::open), as if we were `uid` (tests use it to see another owner).
    pub(crate) fn open_for_uid(dir: PathBuf, uid: u32) -> Result<Self, Unusable> {
        let meta = match fs::symlink_metadata(&dir) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = dir.parent() {
                    // Missing parents (XDG_CACHE_HOME itself) are created 0700 as the XDG
                    // spec says, not 0777 minus a umask that may be 000.
                    DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)
                        .map_err(|e| Unusable::Io(parent.to_owned(), e))?;
                }
                match DirBuilder::new().mode(0o700).create(&dir) {
                    Ok(()) => {}
                    // Another process created it between our stat and mkdir: check theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Unusable::Io(dir, e)),
                }
                fs::symlink_metadata(&dir).map_err(|e| Unusable::Io(dir.clone(), e))?
            }
            Err(err) => return Err(Unusable::Io(dir, err)),
        };
        if meta.file_type().is_symlink() {
            return Err(Unusable::Symlink(dir));
        }
        if !meta.is_dir() {
            return Err(Unusable::NotADirectory(dir));
        }
        if meta.uid() != uid {
            return Err(Unusable::OtherOwner {
                dir,
                owner: meta.uid(),
                ours: uid,
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(Unusable::Writable {
                dir,
                mode: meta.mode(),
            });
        }
        Ok(Self { dir, uid })
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the entry for `key`.
    pub(crate) fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.file_name("json"))
    }

    fn open_no_follow(&self, path: &Path, create: bool) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options.read(true);
        if create {
            options.write(true).create(true).mode(0o600);
        }
        // The flag's bits are small positive values on every Unix.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        options.open(path)
    }

    /// The entry for `key`, or `None` when it is missing, corrupt, too large, not a regular
    /// file of ours, or unreadable.
    pub(crate) fn read<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<Entry<T>> {
        let path = self.entry_path(key);
        match self.try_read(&path) {
            Ok(entry) => entry,
            Err(err) => {
                tracing::debug!("ignoring the cache entry {}: {err}", path.display());
                None
            }
        }
    }

    fn try_read<T: DeserializeOwned>(&self, path: &Path) -> io::Result<Option<Entry<T>>> {
        let file = match self.open_no_follow(path, false) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let meta = file.metadata()?;
        if !meta.is_file() || meta.uid() != self.uid {
            return Err(io::Error::other("not a regular file owned by us"));
        }
        // The entry holds secrets: wipe the buffer when done.
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        file.take(MAX_ENTRY_BYTES + 1).read_to_end(&mut bytes)?;
        parse_entry(&bytes).map(Some)
    }

    /// Store `value` for `key`, atomically and durably ([`fly_oidc::fs::write_private`]: a
    /// temporary `0600` file, fsync, rename, fsync of the directory).
    pub(crate) fn write<T: Serialize>(
        &self,
        key: &CacheKey,
        value: &T,
        expires_at: SystemTime,
    ) -> io::Result<()> {
        let bytes = encode_entry(value, expires_at)?;
        fly_oidc::fs::write_private(&self.entry_path(key), &bytes, 0o600)
    }

    /// Wait (up to `timeout`) for the refresh lock of `key`. `Ok(None)` on timeout.
    pub(crate) fn lock(&self, key: &CacheKey, timeout: Duration) -> io::Result<Option<EntryLock>> {
        let file = self.open_no_follow(&self.dir.join(key.file_name("lock")), true)?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(EntryLock { _file: file })),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(err)) => return Err(err),
            }
            if started.elapsed() >= timeout {
                return Ok(None);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A fresh cache entry; nothing was fetched.
    Hit,
    /// Fetched, and stored in the cache (or tried to).
    Fetched,
    /// Fetched without a cache.
    Uncached,
    /// The fetch failed; served a cached entry that is still valid but short of `min_ttl`.
    Stale,
}

/// How [`get_or_fetch`] uses the cache.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Reuse an entry while at least this much of its lifetime remains.
    pub min_ttl: Duration,
    /// How long to wait for another process that is refreshing the same entry.
    pub lock_timeout: Duration,
}

/// The cached value of `key` if at least `policy.min_ttl` remains, else the result of `fetch`
/// (stored for the next run). With `cache` `None`, only `fetch`. One process fetches while
/// the others wait on the entry's lock. Cache trouble is logged and never fails the call.
pub(crate) async fn get_or_fetch<T, E, F, Fut>(
    cache: Option<&DiskCache>,
    key: &CacheKey,
    policy: &Policy,
    time: &SharedTimeSource,
    fetch: F,
) -> Result<(Entry<T>, Outcome), E>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Entry<T>, E>>,
    E: fmt::Display,
{
    let Some(cache) = cache else {
        return fetch().await.map(|entry| (entry, Outcome::Uncached));
    };
    let fresh = |entry: &Entry<T>| entry.fresh_for(time.now(), policy.min_ttl);
    if let Some(entry) = cache.read::<T>(key).filter(fresh) {
        return Ok((entry, Outcome::Hit));
    }
    let _lock = match cache.lock(key, policy.lock_timeout) {
        Ok(Some(lock)) => {
            // Another process may have refreshed the entry while we waited.
            if let Some(entry) = cache.read::<T>(key).filter(fresh) {
                return Ok((entry, Outcome::Hit));
            }
            Some(lock)
        }
        Ok(None) => {
            tracing::warn!(
                "cache: another fly-oidc process held the lock on {} for more than {}s; refreshing anyway",
                cache.entry_path(key).display(),
                policy.lock_timeout.as_secs()
            );
            None
        }
        Err(err) => {
            tracing::warn!(
                "cache: cannot lock {}: {err}; refreshing without the lock",
                cache.dir().display()
            );
            None
        }
    };
    match fetch().await {
        Ok(entry) => {
            if let Err(err) = cache.write(key, &entry.value, entry.expires_at) {
                tracing::warn!(
                    "cache: cannot write to {}: {err}; the next run will fetch again",
                    cache.dir().display()
                );
            }
            Ok((entry, Outcome::Fetched))
        }
        Err(err) => {
            // Static stability: an entry short of min_ttl but still valid beats a failure.
            match cache
                .read::<T>(key)
                .filter(|e| e.fresh_for(time.now(), STALE_FLOOR))
            {
                Some(entry) => {
                    tracing::warn!(
                        "{err}; using cached credentials that expire in {}s",
                        entry
                            .expires_at
                            .duration_since(time.now())
                            .map(|d| d.as_secs())
                            .unwrap_or(0)
                    );
                    Ok((entry, Outcome::Stale))
                }
                None => Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fly_oidc::time::ManualTimeSource;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn clock(secs: u64) -> (ManualTimeSource, SharedTimeSource) {
        let manual = ManualTimeSource::new(t(secs));
        (manual.clone(), SharedTimeSource::new(manual))
    }

    fn policy(min_ttl_secs: u64) -> Policy {
        Policy {
            min_ttl: Duration::from_secs(min_ttl_secs),
            lock_timeout: Duration::from_secs(10),
        }
    }

    /// A cache in a new temporary directory (removed when the first value drops), and its
    /// directory.
    fn temp_cache() -> (tempfile::TempDir, PathBuf, DiskCache) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR_NAME);
        let cache = DiskCache::open(&dir).unwrap();
        (tmp, dir, cache)
    }

    fn key(role: &str) -> CacheKey {
        CacheKey::new("aws", &[("role", Some(role)), ("audience", None)])
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// `get_or_fetch` of key `r` at t=1000 with a 900 s min TTL, fetching `v` (expiring at
    /// t=9000) on a miss.
    fn fetch_v_at_1000(cache: &DiskCache) -> (Entry<String>, Outcome) {
        let (_, time) = clock(1000);
        let fetch = || async {
            Ok::<_, &str>(Entry {
                value: "v".to_owned(),
                expires_at: t(9000),
            })
        };
        let (key, policy) = (key("r"), policy(900));
        rt().block_on(get_or_fetch(Some(cache), &key, &policy, &time, fetch))
            .unwrap()
    }

    fn our_uid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    #[test]
    fn default_dir_prefers_absolute_xdg_then_home() {
        let env = Env::from_slice(&[("XDG_CACHE_HOME", "/x/cache"), ("HOME", "/home/u")]);
        assert_eq!(default_dir(&env), Some(PathBuf::from("/x/cache/fly-oidc")));
        let env = Env::from_slice(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/home/u")]);
        assert_eq!(
            default_dir(&env),
            Some(PathBuf::from("/home/u/.cache/fly-oidc"))
        );
        let env = Env::from_slice(&[("HOME", "rel")]);
        assert_eq!(default_dir(&env), None);
        assert_eq!(default_dir(&Env::from_slice(&[])), None);
    }

    #[test]
    fn keys_differ_for_every_part_and_are_stable() {
        let a = CacheKey::new("aws", &[("role", Some("r")), ("policy", None)]);
        assert_eq!(
            a,
            CacheKey::new("aws", &[("role", Some("r")), ("policy", None)])
        );
        assert_ne!(
            a,
            CacheKey::new("aws", &[("role", Some("r2")), ("policy", None)])
        );
        assert_ne!(
            a,
            CacheKey::new("aws", &[("role", Some("r")), ("policy", Some(""))])
        );
        assert_ne!(
            a,
            CacheKey::new("gcp", &[("role", Some("r")), ("policy", None)])
        );
        // No ambiguity from concatenation.
        assert_ne!(
            CacheKey::new("aws", &[("a", Some("bc")), ("d", Some(""))]),
            CacheKey::new("aws", &[("a", Some("b")), ("d", Some("c"))])
        );
        let name = a.file_name("json");
        assert!(name.starts_with("aws-") && name.ends_with(".json"));
        assert_eq!(name.len(), "aws-".len() + 64 + ".json".len());
    }

    #[test]
    fn creates_private_dir_and_private_atomic_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache").join(DIR_NAME);
        let cache = DiskCache::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let k = key("r");
        assert_eq!(cache.read::<String>(&k), None);
        cache.write(&k, &"v1".to_owned(), t(2000)).unwrap();
        assert_eq!(mode(&cache.entry_path(&k)), 0o600);
        let got = cache.read::<String>(&k).unwrap();
        assert_eq!(got.value, "v1");
        assert_eq!(got.expires_at, t(2000));
        cache.write(&k, &"v2".to_owned(), t(3000)).unwrap();
        assert_eq!(cache.read::<String>(&k).unwrap().value, "v2");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![k.file_name("json")], "{names:?}");
        // Reopening an existing good directory works.
        DiskCache::open(&dir).unwrap();
    }

    #[test]
    fn refuses_symlinked_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join(DIR_NAME);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = DiskCache::open(&link).unwrap_err();
        assert!(matches!(err, Unusable::Symlink(_)), "{err:?}");
        assert!(err.to_string().contains("is a symlink"), "{err}");
    }

    #[test]
    fn refuses_group_or_world_writable_dir() {
        for bad in [0o777, 0o770, 0o702] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join(DIR_NAME);
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(bad)).unwrap();
            let err = DiskCache::open(&dir).unwrap_err();
            assert!(matches!(err, Unusable::Writable { .. }), "{bad:o}: {err:?}");
            assert!(err.to_string().contains("chmod 700"), "{err}");
        }
        // Readable by others but not writable is accepted (entries are 0600 anyway).
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR_NAME);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        DiskCache::open(&dir).unwrap();
    }

    #[test]
    fn refuses_dir_of_another_user() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR_NAME);
        DiskCache::open(&dir).unwrap();
        let other = our_uid().wrapping_add(1);
        let err = DiskCache::open_for_uid(dir.clone(), other).unwrap_err();
        assert!(
            matches!(err, Unusable::OtherOwner { owner, ours, .. } if owner == our_uid() && ours == other),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_a_file_where_the_dir_should_be_and_an_uncreatable_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(DIR_NAME);
        fs::write(&file, b"x").unwrap();
        assert!(matches!(
            DiskCache::open(&file).unwrap_err(),
            Unusable::NotADirectory(_)
        ));
        let below_file = file.join("sub");
        assert!(matches!(
            DiskCache::open(below_file).unwrap_err(),
            Unusable::Io(..)
        ));
    }

    #[test]
    fn corrupt_foreign_and_oversized_entries_are_misses() {
        let (tmp, _, cache) = temp_cache();
        let k = key("r");
        let path = cache.entry_path(&k);
        for garbage in [
            &b""[..],
            b"{",
            b"null",
            b"{\"version\":1,\"expires_at\":\"soon\",\"value\":\"v\"}",
            b"{\"version\":99,\"expires_at\":5000,\"value\":\"v\"}",
            b"{\"version\":1,\"expires_at\":18446744073709551615,\"value\":\"v\"}",
            b"{\"version\":1,\"expires_at\":-1,\"value\":\"v\"}",
            b"{\"version\":1,\"expires_at\":1e400,\"value\":\"v\"}",
            b"\xff\xfe\x00",
        ] {
            fs::write(&path, garbage).unwrap();
            assert_eq!(cache.read::<String>(&k), None, "{garbage:?}");
        }
        let mut big = b"{\"version\":1,\"expires_at\":5000,\"value\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_ENTRY_BYTES as usize));
        big.extend(b"\"}");
        fs::write(&path, &big).unwrap();
        assert_eq!(cache.read::<String>(&k), None);
        // A symlink planted as the entry is not followed.
        let target = tmp.path().join("target.json");
        fs::write(
            &target,
            b"{\"version\":1,\"expires_at\":5000,\"value\":\"evil\"}",
        )
        .unwrap();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert_eq!(cache.read::<String>(&k), None);
        // A directory in its place is a miss too.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert_eq!(cache.read::<String>(&k), None);
    }

    #[test]
    fn corrupt_entry_is_replaced_by_a_fetch() {
        let (_tmp, _, cache) = temp_cache();
        let k = key("r");
        fs::write(cache.entry_path(&k), b"{garbage").unwrap();
        let (_, time) = clock(1000);
        let (entry, outcome) = rt()
            .block_on(get_or_fetch(
                Some(&cache),
                &k,
                &policy(900),
                &time,
                || async {
                    Ok::<_, &str>(Entry {
                        value: "new".to_owned(),
                        expires_at: t(1000 + 3600),
                    })
                },
            ))
            .unwrap();
        assert_eq!((entry.value.as_str(), outcome), ("new", Outcome::Fetched));
        assert_eq!(cache.read::<String>(&k).unwrap().value, "new");
    }

    #[test]
    fn reuses_while_min_ttl_remains_then_refetches() {
        let (_tmp, _, cache) = temp_cache();
        let k = key("r");
        let (manual, time) = clock(1000);
        let fetches = AtomicUsize::new(0);
        let run = |time: &SharedTimeSource| {
            rt().block_on(get_or_fetch(
                Some(&cache),
                &k,
                &policy(900),
                time,
                || async {
                    let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                    Ok::<_, &str>(Entry {
                        value: format!("creds-{n}"),
                        expires_at: time.now() + Duration::from_secs(3600),
                    })
                },
            ))
            .unwrap()
        };
        assert_eq!(run(&time).1, Outcome::Fetched);
        manual.advance(Duration::from_secs(3600 - 900));
        let (entry, outcome) = run(&time);
        assert_eq!((entry.value.as_str(), outcome), ("creds-1", Outcome::Hit));
        manual.advance(Duration::from_secs(1));
        let (entry, outcome) = run(&time);
        assert_eq!(
            (entry.value.as_str(), outcome),
            ("creds-2", Outcome::Fetched)
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // Different key: its own entry.
        let other = key("other");
        let (_, outcome) = rt()
            .block_on(get_or_fetch(
                Some(&cache),
                &other,
                &policy(900),
                &time,
                || async {
                    Ok::<_, &str>(Entry {
                        value: "o".to_owned(),
                        expires_at: t(100_000),
                    })
                },
            ))
            .unwrap();
        assert_eq!(outcome, Outcome::Fetched);
        assert_eq!(cache.read::<String>(&k).unwrap().value, "creds-2");
    }

    #[test]
    fn no_cache_always_fetches() {
        let (_, time) = clock(1000);
        for _ in 0..2 {
            let (_, outcome) = rt()
                .block_on(get_or_fetch(
                    None,
                    &key("r"),
                    &policy(900),
                    &time,
                    || async {
                        Ok::<_, &str>(Entry {
                            value: 1u8,
                            expires_at: t(5000),
                        })
                    },
                ))
                .unwrap();
            assert_eq!(outcome, Outcome::Uncached);
        }
    }

    #[test]
    fn failed_refresh_serves_still_valid_entry_but_never_expired_ones() {
        let (_tmp, _, cache) = temp_cache();
        let k = key("r");
        cache.write(&k, &"old".to_owned(), t(1000 + 600)).unwrap();
        let (manual, time) = clock(1000);
        let fail = || async { Err::<Entry<String>, _>("sts down") };
        let (entry, outcome) = rt()
            .block_on(get_or_fetch(Some(&cache), &k, &policy(900), &time, fail))
            .unwrap();
        assert_eq!((entry.value.as_str(), outcome), ("old", Outcome::Stale));
        manual.advance(Duration::from_secs(600 - 30));
        let err = rt()
            .block_on(get_or_fetch(Some(&cache), &k, &policy(900), &time, fail))
            .unwrap_err();
        assert_eq!(err, "sts down");
    }

    #[test]
    fn unwritable_dir_still_answers() {
        let (_tmp, dir, cache) = temp_cache();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();
        // root ignores permission bits; the check below then proves only that nothing broke.
        let (entry, outcome) = fetch_v_at_1000(&cache);
        assert_eq!((entry.value.as_str(), outcome), ("v", Outcome::Fetched));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn write_to_a_vanished_dir_is_an_error_not_a_panic() {
        let (_tmp, dir, cache) = temp_cache();
        fs::remove_dir(&dir).unwrap();
        assert!(cache.write(&key("r"), &"v".to_owned(), t(9000)).is_err());
        assert!(cache.lock(&key("r"), Duration::from_millis(10)).is_err());
        let (_, outcome) = fetch_v_at_1000(&cache);
        assert_eq!(outcome, Outcome::Fetched);
    }

    #[test]
    fn lock_times_out_while_held_and_is_released_on_drop() {
        let (_tmp, _, cache) = temp_cache();
        let k = key("r");
        let held = cache.lock(&k, Duration::from_secs(1)).unwrap().unwrap();
        let started = Instant::now();
        assert!(
            cache
                .lock(&k, Duration::from_millis(100))
                .unwrap()
                .is_none()
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Another key is independent.
        assert!(cache.lock(&key("o"), Duration::ZERO).unwrap().is_some());
        drop(held);
        assert!(cache.lock(&k, Duration::ZERO).unwrap().is_some());
    }

    #[test]
    fn twenty_concurrent_cold_callers_fetch_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR_NAME);
        let fetches = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(20));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (dir, fetches, barrier) = (dir.clone(), fetches.clone(), barrier.clone());
                std::thread::spawn(move || {
                    // Each thread opens its own files, as separate processes would.
                    let cache = DiskCache::open(&dir).unwrap();
                    let (_, time) = clock(1000);
                    barrier.wait();
                    rt().block_on(get_or_fetch(
                        Some(&cache),
                        &key("r"),
                        &policy(900),
                        &time,
                        || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            Ok::<_, &str>(Entry {
                                value: "shared".to_owned(),
                                expires_at: t(1000 + 3600),
                            })
                        },
                    ))
                    .unwrap()
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|(e, _)| e.value == "shared"));
        assert_eq!(
            results
                .iter()
                .filter(|(_, o)| *o == Outcome::Fetched)
                .count(),
            1
        );
    }
}
