//! What `fly-oidc exec` gives its command and `fly-oidc serve --env-file` writes, and what they
//! refuse (issue 18, "the child's environment" and "secrets stay in"):
//! - the authorization token as a file only (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), the
//!   plain variable on request (`--aws-auth-token-env`), checked with the Node AWS SDK's default
//!   chain given a logger (3.879, which throws with both, and the current one, which warns);
//! - `--listen` as `127.0.0.1:PORT` or `localhost:PORT` only, handed out as `127.0.0.1`;
//! - a region in serve's env file from `AWS_REGION` (the AWS CLI v1 reads the other name);
//! - one `serve` per env file;
//! - no expired Fly token written by `--write-token`;
//! - `FLY_API_TOKEN` echoed by the Machines API in any encoding stays off stderr.
//!
//! Needs the built binary; the Node test `node` and `tests/node/node_modules`, the AWS CLI
//! test `aws` and `moto_server` (a missing tool skips the test locally and fails it in CI).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::node_consumers::{answer, node_dir};
use crate::support::ROLE;
use crate::support::{
    Running, Sandbox, assert_json_contains, assert_success, describe, fake_sts, terminate, wait_for,
};
use fly_oidc::time::TimeSource as _;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_tests::host_path;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// `fly-oidc exec <flags> --aws-role-arn ROLE --aws-sts-endpoint STS -- <command>`.
fn exec_aws(sandbox: &Sandbox, sts: &FakeSts, flags: &[&str], command: &[&str]) -> Output {
    let endpoint = sts.url();
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[
        "--aws-role-arn",
        ROLE,
        "--aws-sts-endpoint",
        &endpoint,
        "--",
    ]);
    args.extend_from_slice(command);
    sandbox.fly_oidc(&args)
}

/// `fly-oidc serve --listen 127.0.0.1:0 --env-file ENV --aws-role-arn ROLE --aws-sts-endpoint
/// STS <extra>`, waited for until the env file exists.
fn serve_aws(sandbox: &Sandbox, env_file: &Path, sts: &str, extra: &[&str]) -> Running {
    let env = env_file.to_str().unwrap();
    let mut args = vec!["--listen", "127.0.0.1:0", "--env-file", env];
    args.extend_from_slice(&["--aws-role-arn", ROLE, "--aws-sts-endpoint", sts]);
    args.extend_from_slice(extra);
    let child = sandbox.spawn_serve(&args);
    wait_for(env_file);
    child
}

/// `sh -c <script>` with exactly `env` (and PATH).
fn sh(script: &str, env: &[(&str, &str)]) -> Output {
    Command::new("sh")
        .args(["-c", script])
        .env_clear()
        .env("PATH", host_path())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_authorization_token_is_a_file_unless_the_variable_is_asked_for() {
    let fly = crate::support::acme_web();
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    let sts = fake_sts();
    let show = "echo \"${AWS_CONTAINER_AUTHORIZATION_TOKEN-unset}\"; cat \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"";
    let out = exec_aws(&sandbox, &sts, &[], &["sh", "-c", show]);
    assert_success(&out, "exec");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "unset", "{text}");
    assert_eq!(lines[1].len(), 43, "the token in the file: {text}");
    let out = exec_aws(
        &sandbox,
        &sts,
        &["--aws-auth-token-env"],
        &["sh", "-c", show],
    );
    assert_success(&out, "exec --aws-auth-token-env");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], lines[1], "the same token twice: {text}");
    // A stale variable in exec's own environment (an outer exec's, a leftover) is not passed on
    // beside the file (found by a black-box attack).
    let endpoint = sts.url();
    let out = sandbox
        .command(crate::support::fly_oidc_bin())
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale-token")
        .args([
            "exec",
            "--aws-role-arn",
            ROLE,
            "--aws-sts-endpoint",
            &endpoint,
        ])
        .args(["--", "sh", "-c", show])
        .output()
        .unwrap();
    assert_success(&out, "exec with a stale token variable");
    assert_eq!(
        stdout(&out).lines().next(),
        Some("unset"),
        "{}",
        stdout(&out)
    );

    // serve's env file: the same, file only unless asked.
    let endpoint = sts.url();
    for (extra, with_variable) in [(&[][..], false), (&["--aws-auth-token-env"][..], true)] {
        let env_file = sandbox.dir.path().join("creds.env");
        let child = serve_aws(&sandbox, &env_file, &endpoint, extra);
        let text = std::fs::read_to_string(&env_file).unwrap();
        assert!(
            text.contains("export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="),
            "{text}"
        );
        assert_eq!(
            text.contains("export AWS_CONTAINER_AUTHORIZATION_TOKEN="),
            with_variable,
            "{extra:?}: {text}"
        );
        let unset = text
            .lines()
            .find(|l| l.starts_with("unset "))
            .unwrap_or_default();
        assert_eq!(
            unset
                .split(' ')
                .any(|name| name == "AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            !with_variable,
            "{extra:?}: a sourcing shell's stale one goes: {text}"
        );
        terminate(child);
    }
}

/// Issue 18: with both token variables set, the Node SDK 3.879's default chain given a logger
/// throws, and the current one warns twice on every credential load. Under exec's default
/// environment neither happens; with `--aws-auth-token-env` both do (so the check can fail).
#[test]
fn node_sdk_default_chain_with_a_logger_neither_throws_nor_warns() {
    let Some(dir) = node_dir() else { return };
    let fly = crate::support::acme_web();
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    let sts = fake_sts();
    let script = dir.join("aws_container_logger.mjs");
    let node = ["node", script.to_str().unwrap()];
    let out = exec_aws(&sandbox, &sts, &[], &node);
    let result = answer(&out);
    assert!(out.status.success(), "{result}: {}", describe(&out));
    let results = result["results"].as_array().unwrap();
    let versions: Vec<&str> = results
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions[0], "3.879.0", "{result}");
    assert_ne!(versions[1], "3.879.0", "{result}");
    let issued: Vec<String> = sts
        .issued_credentials()
        .iter()
        .map(|c| c.access_key_id.clone())
        .collect();
    for r in results {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["warnings"].as_array().unwrap().len(), 0, "{r}");
        assert!(
            issued.contains(&r["accessKeyId"].as_str().unwrap().to_owned()),
            "served by our endpoint: {r}"
        );
    }

    let both = exec_aws(&sandbox, &sts, &["--aws-auth-token-env"], &node);
    let result = answer(&both);
    assert!(!both.status.success(), "{result}");
    let old = &result["results"][0];
    assert!(
        old["error"].as_str().unwrap().contains("reading 'lines'"),
        "{old}"
    );
    let current = &result["results"][1];
    assert_json_contains(&current["warnings"][0], "you have set both", current);
}

#[test]
fn listen_takes_127_0_0_1_or_localhost_and_hands_out_127_0_0_1() {
    let fly = crate::support::acme_web();
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    let sts = fake_sts();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (listen, why) in [
        (format!("[::1]:{port}"), "not every AWS SDK accepts [::1]"),
        (
            format!("127.0.0.2:{port}"),
            "not every AWS SDK accepts 127.0.0.2",
        ),
        (format!("0.0.0.0:{port}"), "listens on 127.0.0.1 only"),
        (
            format!("ip6-localhost:{port}"),
            "is not 127.0.0.1 or localhost",
        ),
    ] {
        for command in [&["exec"][..], &["serve"][..]] {
            let mut args = command.to_vec();
            args.extend_from_slice(&["--listen", &listen, "--aws-role-arn", ROLE]);
            if command == ["exec"] {
                args.extend_from_slice(&["--", "true"]);
            }
            let out = sandbox.fly_oidc(&args);
            assert_eq!(out.status.code(), Some(2), "{listen}: {}", describe(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            // One line, in the form of every invalid setting (not clap's usage block).
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.starts_with(&format!(
                    "fly-oidc: error: invalid setting: invalid value \"{listen}\": "
                )),
                "{stderr}"
            );
            assert!(stderr.trim_end().ends_with("(from --listen)"), "{stderr}");
            assert!(stderr.contains(why), "{stderr}");
            assert!(stderr.contains("use 127.0.0.1:PORT"), "{stderr}");
        }
    }
    // A number that is not one: the same form, naming the flag and what it takes.
    let out = sandbox.fly_oidc(&["exec", "--aws-duration-seconds", "1h", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "fly-oidc: error: invalid setting: invalid value \"1h\": expected a whole number (from --aws-duration-seconds)"
    );
    assert_eq!(sts.request_count(), 0, "refused before any fetch");

    // localhost:PORT is 127.0.0.1:PORT, and the child is given 127.0.0.1.
    let listen = format!("localhost:{port}");
    let out = exec_aws(
        &sandbox,
        &sts,
        &["--listen", &listen],
        &[
            "sh",
            "-c",
            "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"; curl -s -o /dev/null -w '%{http_code}' -H \"Authorization: $(cat \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\")\" \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"",
        ],
    );
    assert_success(&out, "exec --listen localhost:PORT");
    assert_eq!(
        stdout(&out),
        format!("http://127.0.0.1:{port}/v1/aws/credentials\n200")
    );
}

/// Issue 19: serve's env file had no region when only `AWS_REGION` was set, and the AWS CLI v1
/// (which reads `AWS_DEFAULT_REGION` only) said "You must specify a region".
#[test]
fn serve_env_file_gives_the_aws_cli_v1_the_region_of_aws_region() {
    if !fly_oidc_tests::require_tool("aws") {
        return;
    }
    let Some(moto) = fly_oidc_tests::aws::Moto::start() else {
        return;
    };
    let fly = crate::support::acme_web();
    let mut sandbox = Sandbox::new(&fly, moto.endpoint());
    sandbox.unset("AWS_DEFAULT_REGION");
    sandbox.set("AWS_REGION", "eu-west-1");
    let env_file = sandbox.dir.path().join("creds.env");
    let child = serve_aws(&sandbox, &env_file, moto.endpoint(), &[]);
    let home = sandbox.home.to_str().unwrap();
    let script = format!(
        ". {}; aws sts get-caller-identity --output json && aws configure list",
        env_file.display()
    );
    let env = [
        ("HOME", home),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ];
    let out = sh(&script, &env);
    assert_success(&out, "the AWS CLI v1 sourcing the env file");
    let text = stdout(&out);
    assert!(text.contains(":assumed-role/fly-app/"), "{text}");
    let region = text.lines().find(|l| l.trim_start().starts_with("region"));
    assert!(
        region.is_some_and(|l| l.contains("eu-west-1") && l.contains("env")),
        "{text}"
    );
    // A shell with a region of its own keeps it, and gains the other name.
    let show = format!(
        ". {}; echo \"$AWS_REGION $AWS_DEFAULT_REGION\"",
        env_file.display()
    );
    for (env, expected) in [
        (
            &[("AWS_DEFAULT_REGION", "ap-south-1")][..],
            "ap-south-1 ap-south-1",
        ),
        (&[("AWS_REGION", "us-west-2")][..], "us-west-2 us-west-2"),
        (&[][..], "eu-west-1 eu-west-1"),
    ] {
        assert_eq!(stdout(&sh(&show, env)), expected, "{env:?}");
    }
    terminate(child);
}

/// A region configured only in the AWS profile reaches the app too, under both names, from
/// `exec` and from serve's env file (`--aws-region` and the variables are tested above and in
/// `server_exec`).
#[test]
fn a_profile_region_reaches_the_app_under_both_names() {
    let fly = crate::support::acme_web();
    let mut sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    sandbox.unset("AWS_DEFAULT_REGION");
    sandbox.write_aws_config_text("[default]\nregion = ap-northeast-1\n");
    let sts = fake_sts();
    let show = "echo \"${AWS_REGION-none} ${AWS_DEFAULT_REGION-none}\"";
    let out = exec_aws(&sandbox, &sts, &[], &["sh", "-c", show]);
    assert_success(&out, "exec");
    assert_eq!(stdout(&out), "ap-northeast-1 ap-northeast-1");
    let env_file = sandbox.dir.path().join("creds.env");
    let child = serve_aws(&sandbox, &env_file, &sts.url(), &[]);
    let sourced = sh(&format!(". {}; {show}", env_file.display()), &[]);
    assert_eq!(stdout(&sourced), "ap-northeast-1 ap-northeast-1");
    terminate(child);
}

#[test]
fn a_second_serve_with_the_same_env_file_is_refused() {
    let fly = crate::support::acme_web();
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    let sts = fake_sts();
    let endpoint = sts.url();
    let env_file = sandbox.dir.path().join("creds.env");
    let lock_file = sandbox.dir.path().join("creds.env.lock");
    let first = serve_aws(&sandbox, &env_file, &endpoint, &[]);
    let written = std::fs::read_to_string(&env_file).unwrap();
    // Under `timeout`: a second serve that starts instead of refusing exits 124.
    let out = sandbox
        .command("timeout")
        .arg("20")
        .arg(crate::support::fly_oidc_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--env-file"])
        .arg(&env_file)
        .args(["--aws-role-arn", ROLE, "--aws-sts-endpoint", &endpoint])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "--env-file {}: another fly-oidc serve (pid {}) holds it",
            env_file.display(),
            first.id()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        written,
        "the first serve's env file is untouched"
    );
    assert_eq!(sts.request_count(), 1, "the second fetched nothing");
    terminate(first);
    assert!(!env_file.exists() && !lock_file.exists());
    // Once the first is gone, the env file is free again; a lock file left by a serve that
    // was killed holds no lock.
    drop(serve_aws(&sandbox, &env_file, &endpoint, &[])); // SIGKILL
    assert!(lock_file.exists(), "left by the killed serve");
    std::fs::remove_file(&env_file).unwrap();
    let third = serve_aws(&sandbox, &env_file, &endpoint, &[]);
    terminate(third);
}

/// Issue 18: `--write-token` wrote a Fly token that had already expired (here the Machines
/// API's clock is two hours behind) and started the app with it.
#[test]
fn write_token_never_writes_an_expired_token() {
    let fly = FakeFlyApi::builder()
        .org("acme")
        .app("web")
        .clock(|| fly_oidc::time::SystemTimeSource.now() - Duration::from_secs(2 * 3600))
        .start_blocking()
        .unwrap();
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    let token = sandbox.dir.path().join("vault-token");
    let marker = sandbox.dir.path().join("ran");
    let spec = format!("{}=vault", token.display());
    let out = sandbox.fly_oidc(&[
        "exec",
        "--write-token",
        &spec,
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("holds a Fly token that expired at"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} is not written", token.display())),
        "{stderr}"
    );
    assert!(!marker.exists(), "the command must not start");
    assert!(!token.exists(), "no expired token on disk");
    let out = sandbox
        .command("timeout")
        .arg("20")
        .arg(crate::support::fly_oidc_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--write-token", &spec])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!token.exists(), "no expired token on disk");
}

/// A Fly API token as Fly writes them: a space, `+`, `/`, `=` and a comma.
const API_TOKEN: &str =
    "FlyV1 fm2_lJPECAAAAAAAAMSr+BBEV6Ks/3g==,fm2_lJPETmFtZSBhbmQ+c2lnbmF0dXJl/w==";

/// Each encoded form an echoing upstream may write the token in (encoded here independently of
/// the redaction code).
fn encoded_api_token() -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    // The token (ASCII) with each byte that `keep` refuses written by `escape`.
    let escaped = |keep: &dyn Fn(u8) -> bool, escape: &dyn Fn(u8) -> String| -> String {
        let each = |b: u8| {
            if keep(b) {
                (b as char).to_string()
            } else {
                escape(b)
            }
        };
        API_TOKEN.bytes().map(each).collect()
    };
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    let percent = |space: &str| {
        escaped(&unreserved, &|b| match b {
            b' ' => space.to_owned(),
            b => format!("%{b:02X}"),
        })
    };
    let json_u = escaped(&|b| b.is_ascii_alphanumeric(), &|b| format!("\\u{b:04x}"));
    vec![
        ("raw", API_TOKEN.to_owned()),
        ("percent-encoded", percent("%20")),
        ("form-encoded", percent("+")),
        ("JSON-escaped", API_TOKEN.replace('/', "\\/")),
        ("JSON \\u-escaped", json_u),
        ("base64", engine.encode(API_TOKEN)),
        (
            "base64url",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(API_TOKEN),
        ),
        (
            "base64 of the header",
            engine.encode(format!("Authorization: Bearer {API_TOKEN}")),
        ),
        // Forms redacted by leaving the whole answer out (a trace of the token).
        ("double percent-encoded", percent("%20").replace('%', "%25")),
        ("upper-cased", API_TOKEN.to_uppercase()),
        ("hex", escaped(&|_| false, &|b| format!("{b:02x}"))),
        (
            "its first half",
            API_TOKEN[..API_TOKEN.len() / 2].to_owned(),
        ),
    ]
}

/// Issue 18: an upstream that echoed `FLY_API_TOKEN` URL-encoded got it past the redaction onto
/// stderr. The fake Machines API answers 401 with the token in each form, as a JSON string
/// (so the JSON escapes are the body's own) and as a plain-text body.
#[test]
fn an_echoed_fly_api_token_is_redacted_in_every_encoding() {
    let fly = FakeFlyApi::builder()
        .api_token(API_TOKEN)
        .start_blocking()
        .unwrap();
    for (form, encoded) in encoded_api_token() {
        for json in [true, false] {
            let body = match json {
                // serde_json would write the escapes itself: put the text in as it is.
                true => format!(r#"{{"error":"bad token {encoded} here"}}"#),
                false => format!("bad token {encoded} here"),
            };
            fly.fail_next(1, fly_oidc_testkit::Fault::Status(401, body));
            let home = tempfile::tempdir().unwrap();
            let out = crate::support::run_in(
                &["token", "--audience", "vault"],
                &[
                    ("FLY_API_HOSTNAME", &fly.url()),
                    ("FLY_API_TOKEN", API_TOKEN),
                ],
                home.path(),
            );
            assert_eq!(out.status.code(), Some(1), "{form}: {}", describe(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("HTTP 401"), "{form}: {stderr}");
            assert!(stderr.contains("** redacted **"), "{form}: {stderr}");
            // No run of 12 characters of the encoded token is left (past the first 32, which
            // may encode the header's name instead).
            for piece in encoded.as_bytes()[32..].windows(12) {
                let piece = String::from_utf8_lossy(piece);
                assert!(
                    !stderr.contains(&*piece),
                    "{form} ({json}): {piece:?} in {stderr}"
                );
            }
        }
    }
}

/// `serve --file-owner app`, as the deploy kit's entrypoint runs it: the app's user owns the
/// authorization token file, and may read the env file (its group, 0640) but never write it:
/// root sources that file, so a line the app added would run as root.
#[test]
fn file_owner_reads_the_env_file_but_cannot_write_what_root_sources() {
    use std::os::unix::fs::MetadataExt;
    if !fly_oidc_tests::require_root("--file-owner") {
        return;
    }
    let fly = crate::support::acme_web();
    let sts = fake_sts();
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    std::fs::set_permissions(
        sandbox.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let env_file = sandbox.dir.path().join("app.env");
    let listen = crate::support::free_listen();
    let sts_url = sts.url();
    let mut args = crate::support::serve_aws_flags(&listen, &env_file, &sts_url).to_vec();
    args.extend(["--file-owner", "nobody:nogroup"]);
    let serve = sandbox.spawn_serve(&args);
    wait_for(&env_file);
    let token_file = sandbox.dir.path().join("app.env.aws-token");
    let (env, token) = (
        std::fs::metadata(&env_file).unwrap(),
        std::fs::metadata(&token_file).unwrap(),
    );
    assert_eq!(
        (env.uid(), env.gid(), env.mode() & 0o777),
        (0, 65534, 0o640)
    );
    assert_eq!((token.uid(), token.mode() & 0o777), (65534, 0o600));
    // As nobody: the env file reads, and cannot be appended to.
    let probe = sandbox
        .command("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!(
            "cat {env} >/dev/null && echo read; echo 'touch /tmp/pwned' >> {env} || echo refused",
            env = env_file.display()
        ))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&probe.stdout);
    assert!(
        shown.contains("read") && shown.contains("refused"),
        "{shown}"
    );
    terminate(serve);
}

/// Files written in a directory another user could change are refused before anything is
/// fetched: that user could rename a directory on the way and put a link in its place, and
/// root's `serve` or `exec` would write, rewrite and remove its files where the link points
/// (found by a black-box attack: a `--file-owner` user's directory swapped for a link made a
/// root `serve` remove root's files at exit). A sticky parent higher up (`/tmp`) is fine.
#[test]
fn files_in_a_directory_another_user_could_change_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let fly = crate::support::acme_web();
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    let shared = sandbox.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cases = vec![(
        shared.clone(),
        "is writable by others (mode 777)".to_owned(),
    )];
    if fly_oidc_tests::is_root() {
        let theirs = sandbox.dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        // A link of theirs, or a link in a directory of theirs, to a directory of root's: they
        // could point it elsewhere (found by a second black-box attack).
        let safe = sandbox.dir.path().join("safe");
        std::fs::create_dir(&safe).unwrap();
        let their_link = sandbox.dir.path().join("their-link");
        std::os::unix::fs::symlink(&safe, &their_link).unwrap();
        std::os::unix::fs::lchown(&their_link, Some(65534), Some(65534)).unwrap();
        let says = format!("the link {} is owned by uid 65534", their_link.display());
        cases.push((their_link, says));
        let in_theirs = theirs.join("link");
        std::os::unix::fs::symlink(&safe, &in_theirs).unwrap();
        std::os::unix::fs::lchown(&in_theirs, Some(65534), Some(65534)).unwrap();
        cases.push((
            in_theirs,
            format!("{} is owned by uid 65534", theirs.display()),
        ));
        // Through a directory of theirs and back out (`..`): they could move it meanwhile.
        let through = theirs.join("..").join("safe");
        cases.push((
            through,
            format!("{} is owned by uid 65534", theirs.display()),
        ));
        cases.push((theirs, "is owned by uid 65534".to_owned()));
    }
    for (dir, says) in cases {
        let env_file = dir.join("app.env");
        let token = format!("{}=aud", dir.join("token").display());
        let runs = [
            vec![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--env-file",
                env_file.to_str().unwrap(),
            ],
            vec!["exec", "--write-token", &token, "--", "true"],
        ];
        for args in runs {
            let out = sandbox.fly_oidc(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(says.as_str()), "{args:?}: {stderr}");
            assert!(
                stderr.contains("another user could put a link in its place"),
                "{stderr}"
            );
        }
        let written = std::fs::read_dir(&dir).unwrap().flatten();
        let written = written.filter(|e| e.file_name() != "link").count();
        assert_eq!(written, 0, "nothing written in {}", dir.display());
    }
}
