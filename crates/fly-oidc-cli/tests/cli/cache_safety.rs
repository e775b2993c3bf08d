//! Safety of the CLI's disk cache, through the built `fly-oidc` binary (a temp
//! `XDG_CACHE_HOME`, a cleared environment) against the fake Fly API and the fake STS.
//!
//! Complements `cli_aws_cache.rs` (symlinked, group/world-writable and foreign cache
//! directories, corrupt entries, uncreatable locations, 20 cold processes) and the unit
//! tests in `crates/fly-oidc-aws/src/disk_cache.rs`. Here:
//! - a symlinked entry or lock file is never followed, for reading or for writing;
//! - an entry owned by another user is ignored (as root);
//! - the directory is 0700 and entries and lock files 0600 even under `umask 000`;
//! - concurrent writers (with the refresh lock disabled, so they really race) never leave a
//!   torn entry: a reader polling the entry always parses a whole one;
//! - a full disk (a 64 KiB tmpfs when `mount` is permitted, as root in CI) and a file-size
//!   limit (`prlimit --fsize`, with SIGXFSZ ignored, always) mean running uncached.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{ROLE_A, ROLE_B, Sandbox, assert_success, describe, stderr};
use fly_oidc::time::{SystemTimeSource, TimeSource};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

fn fakes() -> (FakeFlyApi, FakeSts) {
    let fly = FakeFlyApi::builder().app("web").start_blocking().unwrap();
    let sts = FakeSts::builder()
        .account_id("123456789012")
        .start_blocking()
        .unwrap();
    (fly, sts)
}

fn run(sandbox: &Sandbox, extra: &[&str]) -> Output {
    let mut args = vec!["aws", "credential-process", "--role-arn", ROLE_A];
    args.extend_from_slice(extra);
    sandbox.fly_oidc(&args)
}

fn json(out: &Output) -> serde_json::Value {
    assert_success(out, "fly-oidc aws credential-process");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// The `.lock` file next to an entry.
fn lock_path(entry: &Path) -> PathBuf {
    entry.with_extension("lock")
}

/// Leftover temporary files in the cache directory.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// A whole cache entry: our JSON with an expiry and credentials.
fn assert_whole_entry(bytes: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("a torn entry ({} bytes): {e}", bytes.len()));
    assert_eq!(v["version"], 1);
    assert!(v["expires_at"].as_u64().unwrap() > 1_700_000_000);
    assert!(
        v["value"]["access_key_id"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
    assert_eq!(v["value"]["secret_access_key"].as_str().unwrap().len(), 40);
    assert!(
        v["value"]["session_token"]
            .as_str()
            .unwrap()
            .starts_with("FwoGZXIvYXdzEFAKE")
    );
}

#[test]
fn a_symlinked_entry_or_lock_file_is_never_followed() {
    let (fly, sts) = fakes();
    let sandbox = Sandbox::new(&fly, &sts.url());
    let first = json(&run(&sandbox, &[]));
    let entry = sandbox.entries()[0].clone();
    let outside = sandbox.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();

    // 1. The entry is a symlink to a forged entry that would be "fresh" for a day: not read.
    let forged = outside.join("forged.json");
    let day_from_now = SystemTimeSource
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    let forged_text = serde_json::json!({
        "version": 1,
        "expires_at": day_from_now,
        "value": {
            "access_key_id": "ASIAFORGEDFORGEDFORG",
            "secret_access_key": "forged-secret-forged-secret-forged-secre",
            "session_token": "FwoGZXIvYXdzEFAKEforged",
        }
    })
    .to_string();
    std::fs::write(&forged, &forged_text).unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&forged, &entry).unwrap();
    let out = run(&sandbox, &[]);
    let served = json(&out);
    assert_ne!(served["AccessKeyId"], "ASIAFORGEDFORGEDFORG");
    assert_ne!(served["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(sts.request_count(), 2, "the symlinked entry was a miss");
    // The new entry replaced the symlink itself; the forged file is untouched.
    assert!(std::fs::symlink_metadata(&entry).unwrap().is_file());
    assert_eq!(std::fs::read_to_string(&forged).unwrap(), forged_text);
    assert_eq!(json(&run(&sandbox, &[])), served, "and is used next time");
    assert_eq!(sts.request_count(), 2);

    // 2. The entry is a symlink to a victim file, and a refresh is due: the victim keeps
    // its content, and no secret lands in it.
    let victim = outside.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&victim, &entry).unwrap();
    let refreshed = json(&run(&sandbox, &[]));
    assert_eq!(sts.request_count(), 3);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&entry).unwrap().is_file());
    assert_whole_entry(&std::fs::read(&entry).unwrap());

    // 3. The lock file is a symlink to a victim, and to a path that does not exist yet:
    // neither is opened, truncated or created; the run refreshes without the lock.
    let lock = lock_path(&entry);
    for target in [victim.clone(), outside.join("created-by-us")] {
        std::fs::remove_file(&entry).unwrap();
        let _ = std::fs::remove_file(&lock);
        std::os::unix::fs::symlink(&target, &lock).unwrap();
        let out = run(&sandbox, &[]);
        let v = json(&out);
        assert_ne!(v["AccessKeyId"], refreshed["AccessKeyId"]);
        assert!(stderr(&out).contains("cannot lock"), "{}", describe(&out));
        assert!(std::fs::symlink_metadata(&lock).unwrap().is_symlink());
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!outside.join("created-by-us").exists());
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        2,
        "nothing new outside the cache"
    );
}

#[test]
fn an_entry_owned_by_another_user_is_ignored_and_replaced() {
    // (The unit tests cover it unprivileged.)
    if !fly_oidc_tests::require_root("chowning an entry to another user") {
        return;
    }
    let (fly, sts) = fakes();
    let sandbox = Sandbox::new(&fly, &sts.url());
    let first = json(&run(&sandbox, &[]));
    let entry = sandbox.entries()[0].clone();
    std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).unwrap();
    let second = json(&run(&sandbox, &[]));
    assert_ne!(second["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(sts.request_count(), 2);
    // Replaced by our own entry, which is then used.
    assert_eq!(std::fs::metadata(&entry).unwrap().uid(), 0);
    assert_eq!(json(&run(&sandbox, &[])), second);
    assert_eq!(sts.request_count(), 2);
}

/// `fly-oidc <args>` run from `sh` after `umask 000`.
fn run_with_umask_000(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox
        .command("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(crate::support::fly_oidc_bin())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn permissions_are_private_even_with_umask_000() {
    let (fly, sts) = fakes();
    let mut sandbox = Sandbox::new(&fly, &sts.url());
    // A cache home that does not exist yet, two levels deep.
    let cache_home = sandbox.dir.path().join("fresh/cache");
    sandbox.cache_home = cache_home.clone();
    let args = ["aws", "credential-process", "--role-arn", ROLE_A];
    // The umask really is 000 in the child.
    let probe = sandbox
        .command("sh")
        .arg("-c")
        .arg("umask 000; umask")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "0000");

    let out = run_with_umask_000(&sandbox, &args);
    json(&out);
    let dir = sandbox.cache_dir();
    assert_eq!(mode(&dir), 0o700, "cache directory");
    let entry = sandbox.entries()[0].clone();
    assert_eq!(mode(&entry), 0o600, "entry");
    assert_eq!(mode(&lock_path(&entry)), 0o600, "lock file");
    // Directories created on the way (XDG_CACHE_HOME itself) must not be world-writable
    // either (the XDG spec says to create them 0700).
    for parent in [cache_home.clone(), cache_home.parent().unwrap().to_owned()] {
        assert_eq!(
            mode(&parent) & 0o022,
            0,
            "{} is {:o}",
            parent.display(),
            mode(&parent)
        );
    }
    // An entry a careless tool left world-readable is replaced by a private one on refresh.
    let other = run_with_umask_000(
        &sandbox,
        &["aws", "credential-process", "--role-arn", ROLE_B],
    );
    json(&other);
    let entries = sandbox.entries();
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert_eq!(mode(e), 0o600);
        assert_eq!(mode(&lock_path(e)), 0o600);
    }
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut aged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    aged["expires_at"] = 1_700_000_000u64.into();
    std::fs::write(&entry, aged.to_string()).unwrap();
    json(&run_with_umask_000(&sandbox, &args));
    assert_eq!(mode(&entry), 0o600);
    assert!(temp_files(&dir).is_empty());
}

/// Runs `n` credential-process children at once; all must succeed with whole JSON.
fn run_many(sandbox: &Sandbox, n: usize, extra: &[&str]) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            let mut args = vec!["aws", "credential-process", "--role-arn", ROLE_A];
            args.extend_from_slice(extra);
            sandbox
                .command(crate::support::fly_oidc_bin())
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| json(&c.wait_with_output().unwrap()))
        .collect()
}

#[test]
fn concurrent_writers_never_leave_a_torn_entry() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    // STS's clock is 500 s behind: its 900 s credentials have 400 s left, less than half
    // the session, so every run refreshes and rewrites the entry.
    let sts = FakeSts::builder()
        .clock(|| SystemTimeSource.now() - Duration::from_secs(500))
        .start_blocking()
        .unwrap();
    let sandbox = Sandbox::new(&fly, &sts.url());
    let short = ["--duration-seconds", "900"];
    json(&run(&sandbox, &short));
    let entry = sandbox.entries()[0].clone();
    let dir = sandbox.cache_dir();

    // A reader polls the entry the whole time, as a concurrent run would.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, entry) = (stop.clone(), entry.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let bytes = std::fs::read(&entry).unwrap();
                assert_whole_entry(&bytes);
                reads += 1;
            }
            reads
        })
    };

    // Phase 1: with the refresh lock, 16 processes that all refresh (one after another).
    let before = sts.request_count();
    let outs = run_many(&sandbox, 16, &short);
    assert_eq!(sts.request_count() - before, 16, "each run refreshed");
    assert_eq!(outs.len(), 16);

    // Phase 2: the lock file replaced by a directory, so every run refreshes without the
    // lock and 3 x 24 writers really race on the rename.
    let lock = lock_path(&entry);
    std::fs::remove_file(&lock).unwrap();
    std::fs::create_dir(&lock).unwrap();
    let before = sts.request_count();
    for _ in 0..3 {
        run_many(&sandbox, 24, &short);
    }
    assert_eq!(sts.request_count() - before, 72);

    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    eprintln!("{reads} reads of the entry during 88 concurrent rewrites, none torn");
    assert!(reads > 100, "only {reads} reads");
    assert_whole_entry(&std::fs::read(&entry).unwrap());
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    assert_eq!(sandbox.entries(), vec![entry]);
}

/// A 64 KiB tmpfs at `path`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs(path.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Fill it: write until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            if let Err(e) = file.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC: {e}");
                break;
            }
        }
        let _ = file.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_means_running_uncached() {
    let (fly, sts) = fakes();
    let mut sandbox = Sandbox::new(&fly, &sts.url());
    let mount_point = sandbox.dir.path().join("tmpfs");
    let tmpfs = match Tmpfs::mount(&mount_point) {
        Ok(t) => t,
        Err(why) => {
            eprintln!(
                "SKIPPED the tmpfs part (mount not permitted: {why}); the prlimit part below runs"
            );
            return a_file_size_limit_means_running_uncached(&fly, &sts);
        }
    };
    sandbox.cache_home = mount_point.clone();
    let first = json(&run(&sandbox, &[]));
    let entry = sandbox.entries()[0].clone();
    let entry_text = std::fs::read(&entry).unwrap();
    tmpfs.fill();

    // A hit still works: reading needs no space.
    assert_eq!(json(&run(&sandbox, &[])), first);
    assert_eq!(sts.request_count(), 1);
    // A new entry cannot be written: answered uncached, with a warning, twice.
    for n in 1..=2 {
        let out = sandbox.fly_oidc(&["aws", "credential-process", "--role-arn", ROLE_B]);
        json(&out);
        assert!(stderr(&out).contains("cannot write"), "{}", describe(&out));
        assert_eq!(sts.request_count(), 1 + n);
    }
    // A due refresh of the existing entry: fetched and answered; the old entry is left
    // whole (not truncated), no temporary file is left behind.
    let mut aged: serde_json::Value = serde_json::from_slice(&entry_text).unwrap();
    let soon = SystemTimeSource
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    aged["expires_at"] = soon.into();
    let aged_text = aged.to_string();
    std::fs::write(&entry, &aged_text).unwrap();
    let out = run(&sandbox, &[]);
    let refreshed = json(&out);
    assert_ne!(refreshed["AccessKeyId"], first["AccessKeyId"]);
    assert!(stderr(&out).contains("cannot write"), "{}", describe(&out));
    assert_eq!(std::fs::read_to_string(&entry).unwrap(), aged_text);
    assert!(temp_files(&sandbox.cache_dir()).is_empty());
    assert_eq!(sandbox.entries(), vec![entry]);
    // A cache directory that cannot be created on the full disk: still an answer.
    sandbox.cache_home = mount_point.join("deeper/still");
    json(&run(&sandbox, &[]));
    assert_eq!(sts.request_count(), 5);
    eprintln!("full disk simulated with a 64 KiB tmpfs (mount -t tmpfs)");
    drop(tmpfs);
    a_file_size_limit_means_running_uncached(&fly, &sts);
}

/// Entry writes fail with EFBIG under `prlimit --fsize=64` (SIGXFSZ ignored, as a shell
/// `trap "" XFSZ` leaves it for the child): still answered, uncached.
fn a_file_size_limit_means_running_uncached(fly: &FakeFlyApi, sts: &FakeSts) {
    if !fly_oidc_tests::require_tool("prlimit") {
        return;
    }
    let sandbox = Sandbox::new(fly, &sts.url());
    let limited = |role: &str| {
        sandbox
            .command("sh")
            .arg("-c")
            .arg("trap '' XFSZ; exec prlimit --fsize=64 -- \"$0\" \"$@\"")
            .arg(crate::support::fly_oidc_bin())
            .args(["aws", "credential-process", "--role-arn", role])
            .output()
            .unwrap()
    };
    let before = sts.request_count();
    for n in 1..=2 {
        let out = limited(ROLE_A);
        json(&out);
        assert!(stderr(&out).contains("cannot write"), "{}", describe(&out));
        assert_eq!(sts.request_count() - before, n, "uncached");
    }
    assert!(sandbox.entries().is_empty());
    assert!(temp_files(&sandbox.cache_dir()).is_empty());
    eprintln!("file-size limit simulated with prlimit --fsize=64");
}
