//! `fly-oidc aws credential-process` as a process, against the fake Fly API and moto_server:
//! the disk cache (hits, min-ttl, --no-cache, 20 concurrent cold runs, unsafe directories,
//! corrupt entries, unwritable locations) and its error lines.
//!
//! Needs `moto_server` (PyPI `moto[server]`), or `MOTO_ENDPOINT` pointing at a running one.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{
    ROLE_A, ROLE_B, Sandbox, assert_success, aws_secrets, describe, failed, moto_sandbox, stderr,
};
use fly_oidc_testkit::aws_sts::{FakeSts, RecordedStsRequest};
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::aws::Moto;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn a_cache_hit_makes_no_fly_request_and_no_cache_skips_it() {
    let Some((fly, moto, sandbox)) = moto_sandbox(&[], false) else {
        return;
    };
    let first = sandbox.credential_process(ROLE_A, &[]);
    assert_eq!(first["Version"], 1);
    assert!(first["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(first["AccountId"], "123456789012");
    let exp = first["Expiration"].as_str().unwrap();
    assert!(exp.ends_with('Z') && exp.len() == 20, "{exp}");
    assert_eq!(fly.request_count(), 1);
    assert_eq!(
        fly.requests()[0].audience.as_deref(),
        Some("sts.amazonaws.com")
    );

    // The entry: 0600 in a 0700 directory.
    let entries = sandbox.entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&entries[0]), 0o600);
    assert_eq!(mode(&sandbox.cache_dir()), 0o700);

    // Hits: same answer, no Fly request (so no STS call either).
    for _ in 0..3 {
        assert_eq!(sandbox.credential_process(ROLE_A, &[]), first);
    }
    assert_eq!(fly.request_count(), 1);

    // Another role is another entry.
    let b = sandbox.credential_process(ROLE_B, &[]);
    assert_ne!(b["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(fly.request_count(), 2);
    assert_eq!(sandbox.entries().len(), 2);
    // So is another audience, or another session duration.
    sandbox.credential_process(ROLE_A, &["--audience", "custom-aud"]);
    assert_eq!(
        fly.requests().last().unwrap().audience.as_deref(),
        Some("custom-aud")
    );
    sandbox.credential_process(ROLE_A, &["--duration-seconds", "1800"]);
    assert_eq!(fly.request_count(), 4);
    assert_eq!(sandbox.entries().len(), 4);

    // --no-cache neither reads nor writes the cache.
    let before: Vec<_> = sandbox
        .entries()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let fresh = sandbox.credential_process(ROLE_A, &["--no-cache"]);
    assert_ne!(fresh["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(fly.request_count(), 5);
    let after: Vec<_> = sandbox
        .entries()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after);
    // FLY_OIDC_NO_CACHE=1 does the same.
    let mut no_cache = Sandbox::new(&fly, moto.endpoint());
    no_cache.set("FLY_OIDC_NO_CACHE", "1");
    no_cache.credential_process(ROLE_A, &[]);
    assert!(!no_cache.cache_dir().exists());
    assert_eq!(fly.request_count(), 6);
}

/// Rewrite the expiry of the (only) entry to `secs_from_now`.
pub(crate) fn age_entry(sandbox: &Sandbox, secs_from_now: u64) {
    let path = &sandbox.entries()[0];
    let mut entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    // The wall clock, as the child process reads it.
    let now = UNIX_EPOCH.elapsed().unwrap().as_secs();
    entry["expires_at"] = (now + secs_from_now).into();
    std::fs::write(path, entry.to_string()).unwrap();
}

#[test]
fn entries_are_reused_only_while_min_ttl_remains() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&[], false) else {
        return;
    };
    let first = sandbox.credential_process(ROLE_A, &[]);
    // 20 minutes left: still a hit with the default --min-ttl of 15 minutes...
    age_entry(&sandbox, 20 * 60);
    assert_eq!(
        sandbox.credential_process(ROLE_A, &[])["AccessKeyId"],
        first["AccessKeyId"]
    );
    assert_eq!(fly.request_count(), 1);
    // ...but not with --min-ttl 25m (FLY_OIDC_AWS_MIN_TTL works the same).
    let second = sandbox.credential_process(ROLE_A, &["--min-ttl", "25m"]);
    assert_ne!(second["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(fly.request_count(), 2);
    // 10 minutes left: refreshed with the default, and the new entry replaces the old one.
    age_entry(&sandbox, 10 * 60);
    let third = sandbox.credential_process(ROLE_A, &[]);
    assert_ne!(third["AccessKeyId"], second["AccessKeyId"]);
    assert_eq!(fly.request_count(), 3);
    assert_eq!(sandbox.entries().len(), 1);
    assert_eq!(sandbox.credential_process(ROLE_A, &[]), third);
    assert_eq!(fly.request_count(), 3);
}

#[test]
fn twenty_concurrent_cold_processes_make_one_sts_call() {
    let Some(moto) = Moto::start() else {
        return;
    };
    // First against the testkit's recording STS (slowed down to widen the race), which
    // counts the calls itself; then against moto, counting Fly tokens (one per STS call).
    let fly = FakeFlyApi::builder().app("web").start_blocking().unwrap();
    let sts = FakeSts::builder()
        .account_id("123456789012")
        .latency(Duration::from_millis(200))
        .start_blocking()
        .unwrap();
    for (endpoint, counted) in [(sts.url(), true), (moto.endpoint().to_owned(), false)] {
        let sandbox = Sandbox::new(&fly, &endpoint);
        let before = fly.request_count();
        let children: Vec<_> = (0..20)
            .map(|_| {
                sandbox
                    .command(crate::support::fly_oidc_bin())
                    .args(["aws", "credential-process", "--role-arn", ROLE_A])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let mut keys = Vec::new();
        for out in &outputs {
            assert_success(out, "a concurrent credential-process");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            keys.push(v["AccessKeyId"].as_str().unwrap().to_owned());
        }
        keys.dedup();
        assert_eq!(keys.len(), 1, "all 20 print the same credentials: {keys:?}");
        // One Fly token, so one STS call, between the 20 of them.
        assert_eq!(fly.request_count() - before, 1, "endpoint {endpoint}");
        if counted {
            assert_eq!(sts.request_count(), 1);
        }
    }
}

#[test]
fn unsafe_cache_directories_are_refused_with_a_warning_and_runs_stay_uncached() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&[], false) else {
        return;
    };
    let dir = sandbox.cache_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // credential-process with the cache directory as set up: it works, without the cache,
    // and says why.
    let run_without_cache = |what: &str, needles: &[&str]| {
        let out = sandbox.fly_oidc(&["aws", "credential-process", "--role-arn", ROLE_A]);
        assert_success(&out, &format!("credential-process with {what}"));
        for needle in needles {
            assert!(stderr(&out).contains(needle), "{}", describe(&out));
        }
    };

    // World-writable.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    for n in 1..=2 {
        let needles = ["group- or world-writable", "running without the cache"];
        run_without_cache("a 0777 cache dir", &needles);
        assert_eq!(fly.request_count(), n);
    }
    assert!(sandbox.entries().is_empty());

    // Group-writable.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    run_without_cache("a 0770 cache dir", &["group- or world-writable"]);
    assert!(sandbox.entries().is_empty());

    // A symlink to a private directory.
    std::fs::remove_dir(&dir).unwrap();
    let elsewhere = sandbox.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
    let before = fly.request_count();
    for _ in 0..2 {
        run_without_cache("a symlinked cache dir", &["is a symlink"]);
    }
    assert_eq!(fly.request_count() - before, 2);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // Owned by another user (only root can set that up).
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    if std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).is_ok() {
        let before = fly.request_count();
        for _ in 0..2 {
            run_without_cache("a foreign cache dir", &["is owned by uid 65534"]);
        }
        assert_eq!(fly.request_count() - before, 2);
        assert!(sandbox.entries().is_empty());
    } else {
        eprintln!("not root: skipping the foreign-owner case (the unit tests cover it)");
    }
}

#[test]
fn a_corrupt_entry_is_ignored_and_replaced() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&[], false) else {
        return;
    };
    let first = sandbox.credential_process(ROLE_A, &[]);
    let entry = sandbox.entries()[0].clone();
    for garbage in [&b"{\"version\":1,"[..], b"", b"\x00\xff", b"[]"] {
        std::fs::write(&entry, garbage).unwrap();
        let before = fly.request_count();
        let out = sandbox.fly_oidc(&["aws", "credential-process", "--role-arn", ROLE_A]);
        assert_success(&out, "credential-process over a corrupt entry");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_ne!(v["AccessKeyId"], first["AccessKeyId"]);
        assert_eq!(fly.request_count() - before, 1);
        // Replaced by a good entry, which the next run uses.
        assert_eq!(sandbox.entries(), vec![entry.clone()]);
        assert_eq!(sandbox.credential_process(ROLE_A, &[]), v);
        assert_eq!(fly.request_count() - before, 1);
    }
}

#[test]
fn an_unusable_cache_location_costs_only_the_cache() {
    let Some((fly, moto, mut sandbox)) = moto_sandbox(&[], false) else {
        return;
    };
    // XDG_CACHE_HOME is a file: the directory cannot be created.
    let file = sandbox.dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    sandbox.set("XDG_CACHE_HOME", &file.display().to_string());
    let mut cmd = sandbox.command(crate::support::fly_oidc_bin());
    cmd.env("XDG_CACHE_HOME", &file)
        .args(["aws", "credential-process", "--role-arn", ROLE_A]);
    let out = cmd.output().unwrap();
    assert_success(&out, "credential-process with an uncreatable cache dir");
    assert!(
        stderr(&out).contains("running without the cache"),
        "{}",
        describe(&out)
    );
    // No HOME and no XDG_CACHE_HOME at all.
    let out = sandbox
        .command(crate::support::fly_oidc_bin())
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .args(["aws", "credential-process", "--role-arn", ROLE_A])
        .output()
        .unwrap();
    assert_success(&out, "credential-process without HOME");
    assert!(
        stderr(&out).contains("running without the cache"),
        "{}",
        describe(&out)
    );
    assert_eq!(fly.request_count(), 2);
    // An entry we cannot read (a directory in its place) is a miss, and the write then
    // fails: still a success.
    let good = Sandbox::new(&fly, moto.endpoint());
    good.credential_process(ROLE_A, &[]);
    let entry = good.entries()[0].clone();
    std::fs::remove_file(&entry).unwrap();
    std::fs::create_dir(&entry).unwrap();
    let out = good.fly_oidc(&["aws", "credential-process", "--role-arn", ROLE_A]);
    assert_success(&out, "credential-process with a directory as the entry");
    assert!(stderr(&out).contains("cannot write"), "{}", describe(&out));
}

#[test]
fn errors_are_one_line_naming_the_step_without_secrets() {
    let Some((fly, moto, sandbox)) = moto_sandbox(&[], false) else {
        return;
    };
    let printed = vec![sandbox.credential_process(ROLE_A, &["--no-cache"])];

    // Fly token: the API fails.
    fly.fail_next(10, Fault::Status(500, r#"{"error":"boom"}"#.into()));
    let out = sandbox.fly_oidc(&["aws", "credential-process", "--role-arn", ROLE_B]);
    fly.clear_faults();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("fly-oidc: error: Fly token failed: "),
        "{err}"
    );
    aws_secrets(&fly, &printed).assert_absent("stderr", &stderr(&out));

    // Fly token: a --socket that does not exist is an invalid setting found at run time
    // (exit 2, issue 10 class 6).
    let mut off_fly = Sandbox::new(&fly, moto.endpoint());
    off_fly.unset("FLY_OIDC_SOCKET");
    let out = off_fly
        .command(crate::support::fly_oidc_bin())
        .args([
            "aws",
            "credential-process",
            "--role-arn",
            ROLE_A,
            "--socket",
            "/nonexistent/fly/api",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).starts_with("fly-oidc: error: invalid setting: ")
            && stderr(&out).contains("/nonexistent/fly/api does not exist"),
        "{}",
        describe(&out)
    );

    // STS: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // `aws credential-process --role-arn ROLE_A --no-cache` and then these flags.
    let uncached = |flags: &[&str]| {
        let base = [
            "aws",
            "credential-process",
            "--role-arn",
            ROLE_A,
            "--no-cache",
        ];
        sandbox.fly_oidc(&[&base[..], flags].concat())
    };
    let out = uncached(&["--sts-endpoint", &format!("http://127.0.0.1:{closed}")]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).starts_with("fly-oidc: error: STS failed: "),
        "{}",
        describe(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", describe(&out));
    aws_secrets(&fly, &printed).assert_absent("stderr", &stderr(&out));

    // STS: the role's trust policy rejects the token; the line says what to check.
    let sts = FakeSts::builder().start_blocking().unwrap();
    for fault in [Fault::invalid_identity_token(), Fault::access_denied()] {
        sts.fail_next(1, fault);
        let out = sandbox.fly_oidc(&[
            "aws",
            "credential-process",
            "--role-arn",
            ROLE_A,
            "--sts-endpoint",
            &sts.url(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let err = stderr(&out);
        assert!(err.starts_with("fly-oidc: error: STS failed: "), "{err}");
        assert!(
            err.contains("https://oidc.fly.io/acme"),
            "names the issuer: {err}"
        );
        assert!(
            err.contains("sts.amazonaws.com"),
            "names the audience: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        aws_secrets(&fly, &printed).assert_absent("stderr", &stderr(&out));
    }
    // Nothing was cached by the failures.
    assert!(
        sandbox.entries().iter().all(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["value"]["access_key_id"] != printed[0]["AccessKeyId"]
        }),
        "--no-cache never writes"
    );

    // --verbose adds causes but still no secret.
    fly.fail_next(10, Fault::Malformed);
    let out = uncached(&["--verbose"]);
    fly.clear_faults();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    aws_secrets(&fly, &printed).assert_absent("stderr", &stderr(&out));
}

#[test]
fn bad_input_is_a_usage_error_with_exit_2_and_never_a_panic() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&[], false) else {
        return;
    };
    let policy_file = sandbox.dir.path().join("policy.json");
    std::fs::write(&policy_file, "not json").unwrap();
    let policy_arg = format!("@{}", policy_file.display());
    // `aws credential-process --role-arn ROLE_A` and then these flags.
    let with_role: &[(&[&str], &str)] = &[
        (&["--duration-seconds", "60"], "900"),
        (&["--duration-seconds", "x"], "invalid value"),
        (&["--policy", "{oops"], "session policy"),
        (&["--policy", &policy_arg], "session policy"),
        (
            &["--policy", "@/nonexistent"],
            "cannot read the session policy file /nonexistent",
        ),
        (&["--policy-arn", "ReadOnly"], "ReadOnly"),
        (&["--min-ttl", "forever"], "min-ttl"),
        (&["--sts-endpoint", "ftp://x"], "STS endpoint"),
    ];
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["aws", "credential-process"],
            "set --role-arn or AWS_ROLE_ARN",
        ),
        (
            vec!["aws", "credential-process", "--role-arn", "nope"],
            "invalid role ARN",
        ),
        (
            vec!["aws", "env", "--role-arn", ROLE_A, "--bogus"],
            "--bogus",
        ),
    ];
    let role = ["aws", "credential-process", "--role-arn", ROLE_A];
    cases.extend(
        with_role
            .iter()
            .map(|(flags, needle)| ([&role[..], flags].concat(), *needle)),
    );
    for (args, needle) in cases {
        let out = sandbox.fly_oidc(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(fly.request_count(), 0, "usage errors never fetch a token");
}

/// The last request STS received, checked for the role, the role session name and the
/// duration (seconds), with the audience of the last Fly token request.
fn last_request(
    fly: &FakeFlyApi,
    sts: &FakeSts,
    role: &str,
    session: &str,
    duration: u64,
    audience: &str,
) -> RecordedStsRequest {
    let req = sts.requests().pop().unwrap();
    assert_eq!(req.role_arn.as_deref(), Some(role));
    assert_eq!(req.role_session_name.as_deref(), Some(session));
    assert_eq!(req.duration(), Some(duration));
    let fly_request = fly.requests().pop().unwrap();
    assert_eq!(fly_request.audience.as_deref(), Some(audience));
    req
}

#[test]
fn flags_and_their_environment_fallbacks_reach_sts() {
    let fly = FakeFlyApi::builder().app("web").start_blocking().unwrap();
    let sts = FakeSts::builder().start_blocking().unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;
    let policy_arns = [
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    ];

    // Flags.
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9"); // overridden by --sts-endpoint
    let policy_file = sandbox.dir.path().join("policy.json");
    std::fs::write(&policy_file, policy).unwrap();
    let printed = sandbox.credential_process(
        ROLE_A,
        &[
            "--sts-endpoint",
            &sts.url(),
            "--audience",
            "my-aud",
            "--session-name",
            "nightly-job",
            "--duration-seconds",
            "7200",
            "--policy",
            &format!("@{}", policy_file.display()),
            "--policy-arn",
            policy_arns[0],
            "--policy-arn",
            policy_arns[1],
        ],
    );
    let req = last_request(&fly, &sts, ROLE_A, "nightly-job", 7200, "my-aud");
    assert_eq!(req.action.as_deref(), Some("AssumeRoleWithWebIdentity"));
    assert!(!req.signed, "AssumeRoleWithWebIdentity is unsigned");
    assert_eq!(req.policy.as_deref(), Some(policy));
    assert_eq!(req.policy_arns, policy_arns);
    let jwt = req.web_identity_token.unwrap();
    assert!(fly.issued_tokens().contains(&jwt));
    let issued = sts.issued_credentials().pop().unwrap();
    assert_eq!(printed["AccessKeyId"], issued.access_key_id.as_str());
    assert_eq!(
        printed["SecretAccessKey"],
        issued.secret_access_key.as_str()
    );
    assert_eq!(printed["SessionToken"], issued.session_token.as_str());

    // The same through the environment alone.
    let mut sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    sandbox.set("AWS_ENDPOINT_URL_STS", &sts.url()); // beats AWS_ENDPOINT_URL
    sandbox.set("AWS_ROLE_ARN", ROLE_B);
    sandbox.set("FLY_OIDC_AUDIENCE", "env-aud");
    sandbox.set("AWS_ROLE_SESSION_NAME", "env-session");
    sandbox.set("FLY_OIDC_AWS_DURATION_SECONDS", "900");
    sandbox.set("FLY_OIDC_AWS_POLICY", policy);
    sandbox.set("FLY_OIDC_AWS_POLICY_ARNS", &policy_arns.join(","));
    sandbox.credential_process_no_role();
    let req = last_request(&fly, &sts, ROLE_B, "env-session", 900, "env-aud");
    assert_eq!(req.policy.as_deref(), Some(policy));
    assert_eq!(req.policy_arns, policy_arns);

    // Defaults: audience sts.amazonaws.com, 3600 s, session fly-<app>-<machine id>.
    let mut sandbox = Sandbox::new(&fly, &sts.url());
    sandbox.set("FLY_APP_NAME", "web");
    sandbox.set("FLY_MACHINE_ID", "3d8d9e1ab2c7e8");
    sandbox.credential_process(ROLE_A, &[]);
    let session = "fly-web-3d8d9e1ab2c7e8";
    let req = last_request(&fly, &sts, ROLE_A, session, 3600, "sts.amazonaws.com");
    assert_eq!((req.policy, req.policy_arns.len()), (None, 0));
    assert_eq!(sts.request_count(), 3);
}

#[test]
fn other_fly_token_sources_work_and_key_the_cache_apart() {
    let fly = FakeFlyApi::builder().app("web").start_blocking().unwrap();
    let sts = FakeSts::builder().start_blocking().unwrap();
    let mut sandbox = Sandbox::new(&fly, &sts.url());
    sandbox.unset("FLY_OIDC_SOCKET");
    // The Machines API over HTTP with a bearer token.
    sandbox.set("FLY_API_HOSTNAME", &fly.url());
    sandbox.set("FLY_API_TOKEN", fly.api_token());
    let over_http = sandbox.credential_process(ROLE_A, &[]);
    let last = fly.requests().pop().unwrap();
    assert!(last.authorized && !last.unix, "{last:?}");
    // A token file (what Fly writes to /.fly/oidc_token) via the global flag.
    let file = sandbox.dir.path().join("oidc_token");
    std::fs::write(&file, fly.mint(Some("sts.amazonaws.com"))).unwrap();
    let from_file =
        sandbox.credential_process(ROLE_A, &["--token-file", &file.display().to_string()]);
    assert_ne!(from_file["AccessKeyId"], over_http["AccessKeyId"]);
    assert_eq!(sts.request_count(), 2);
    assert_eq!(sandbox.entries().len(), 2);
    // Both are cached.
    sandbox.credential_process(ROLE_A, &[]);
    sandbox.credential_process(ROLE_A, &["--token-file", &file.display().to_string()]);
    assert_eq!(sts.request_count(), 2);
    // The API token never appears in the cache directory.
    for entry in std::fs::read_dir(sandbox.cache_dir()).unwrap() {
        let path = entry.unwrap().path();
        assert!(!path.display().to_string().contains(fly.api_token()));
        let content = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(!content.contains(fly.api_token()), "{}", path.display());
    }
}

#[test]
fn a_failed_refresh_serves_a_still_valid_entry_but_never_an_expiring_one() {
    let fly = FakeFlyApi::builder().app("web").start_blocking().unwrap();
    let sts = FakeSts::builder().start_blocking().unwrap();
    let sandbox = Sandbox::new(&fly, &sts.url());
    let first = sandbox.credential_process(ROLE_A, &[]);
    // Five minutes left (inside --min-ttl), and STS is down: the cached answer, with a warning.
    age_entry(&sandbox, 5 * 60);
    sts.fail_next(100, Fault::service_unavailable());
    let out = sandbox.fly_oidc(&["aws", "credential-process", "--role-arn", ROLE_A]);
    assert_success(&out, "credential-process with STS down and a valid entry");
    let served: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(served["AccessKeyId"], first["AccessKeyId"]);
    let err = stderr(&out);
    assert!(err.contains("ServiceUnavailable"), "{err}");
    assert!(
        err.contains("using cached credentials that expire in"),
        "{err}"
    );
    aws_secrets(&fly, std::slice::from_ref(&first)).assert_absent("stderr", &stderr(&out));
    // Thirty seconds left: too close to expiry to hand out; the failure is reported.
    age_entry(&sandbox, 30);
    let out = sandbox.fly_oidc(&["aws", "credential-process", "--role-arn", ROLE_A]);
    assert!(
        failed(&out, 1).starts_with("fly-oidc: error: STS failed: "),
        "{}",
        describe(&out)
    );
    // STS back: a fresh answer replaces the entry.
    sts.clear_faults();
    let fresh = sandbox.credential_process(ROLE_A, &[]);
    assert_ne!(fresh["AccessKeyId"], first["AccessKeyId"]);
}

/// Issue 10, class 2: under `--verbose` and `RUST_LOG=trace`, `credential_process`'s stdout
/// is the JSON alone (the diagnostics go to stderr).
#[test]
fn credential_process_stdout_is_the_json_alone_under_verbose_and_rust_log() {
    let Some((_fly, _moto, mut sandbox)) = moto_sandbox(&[], false) else {
        return;
    };
    sandbox.set("RUST_LOG", "trace");
    let out = sandbox.fly_oidc(&[
        "aws",
        "credential-process",
        "--role-arn",
        ROLE_A,
        "--no-cache",
        "--verbose",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["Version"], 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("assuming role with a Fly OIDC token"),
        "--verbose logs go to stderr: {}",
        describe(&out)
    );
}
