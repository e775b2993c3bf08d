//! A fresh tester's findings (2026-11-30): bad files and environment values are invalid
//! settings (exit 2, one line naming the setting) that never quote a secret, deep expressions
//! are refused instead of overflowing the stack, and protocol commands keep to their output.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::ROLE;
use crate::support::{run_in, run_in_os, run_os_args_in, stderr, write_in};
use fly_oidc_tests::{assert_contains_all, assert_contains_none};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

/// The one error line on stderr, after checking the exit status is `code`.
fn error_line(out: &Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// The one error line (exit `code`), which holds every one of `says` and none of `never`.
fn error_saying(out: &Output, code: i32, says: &[&str], never: &[&str]) {
    let line = error_line(out, code);
    assert_contains_all(&line, says);
    assert_contains_none(&line, never);
}

/// Issue: a non-UTF-8 AWS config file came back in a WARN of the SDK's loader as the
/// decimal bytes of the whole file, secret key included; a directory as a raw `Os { .. }`.
#[test]
fn a_bad_aws_config_file_is_an_invalid_setting_that_quotes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let config = write_in(
        home.path(),
        "badcfg",
        b"[profile p]\naws_secret_access_key = SUPERSECRET\n# caf\xe9\n",
    );
    let log = home.path().join("log");
    // "SUP" as the decimal bytes the SDK's Debug of a FromUtf8Error printed.
    let leaks = |text: &str| text.contains("SUPERSECRET") || text.contains("83, 85, 80");
    let args = [
        "aws",
        "credential-process",
        "--no-cache",
        "--role-arn",
        ROLE,
    ];
    for with_log in [false, true] {
        let mut args = args.to_vec();
        if with_log {
            args.extend(["--log-file", log.to_str().unwrap()]);
        }
        let envs = [
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_PROFILE", "p"),
        ];
        let out = run_in(&args, &envs, home.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(!leaks(&err), "{err}");
        assert!(!leaks(&String::from_utf8_lossy(&out.stdout)));
        if with_log {
            let logged = std::fs::read_to_string(&log).unwrap();
            assert!(!leaks(&logged), "{logged}");
            assert!(logged.contains("not UTF-8"), "{logged}");
        }
        error_saying(
            &out,
            2,
            &[
                "invalid setting: the AWS config file",
                "is not UTF-8 text",
                "save it as UTF-8, or point AWS_CONFIG_FILE at",
                "(from AWS_CONFIG_FILE)",
            ],
            &[],
        );
    }
    let out = run_in(&args, &[("AWS_CONFIG_FILE", "/tmp")], home.path());
    error_saying(
        &out,
        2,
        &["/tmp is a directory", "(from AWS_CONFIG_FILE)"],
        &["Os {"],
    );
}

/// Issue: a short CEL expression (100 parentheses) overflowed the stack (exit 134).
#[test]
fn deeply_nested_cel_is_refused_with_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let parens = format!("{}true{}", "(".repeat(100), ")".repeat(100));
    let lists = format!("{}{}== []", "[".repeat(1000), "]".repeat(1000));
    let mapping = format!("google.subject={}x{}", "(".repeat(200), ")".repeat(200));
    let base = ["gcp", "check-condition"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&parens], "depth 100, at most 32"),
        (vec![&lists], "depth 1000, at most 32"),
        (
            vec!["true", "--attribute-mapping", &mapping],
            "google.subject: expression too deeply nested (depth 200, at most 32)",
        ),
    ];
    for (extra, says) in cases {
        let mut args = base.to_vec();
        args.extend(extra);
        args.extend(["--org", "acme", "--app", "a"]);
        let out = run_in(&args, &[], home.path());
        error_saying(&out, 2, &[says, "expression too deeply nested"], &[]);
    }
    // Depth 30 is parsed and evaluated.
    let ok = format!(
        "{}assertion.app_name == 'a'{}",
        "(".repeat(30),
        ")".repeat(30)
    );
    let out = run_in(
        &[&base[..], &[&ok, "--org", "acme", "--app", "a"]].concat(),
        &[],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Issue: a policy with an explicit `Deny` for everyone next to an `Allow` was "accepted".
#[test]
fn check_trust_policy_rejects_a_policy_with_a_deny_that_may_apply() {
    let home = tempfile::tempdir().unwrap();
    let allow = r#"{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.fly.io/acme"},
        "Condition": {"StringEquals": {"oidc.fly.io/acme:aud": "sts.amazonaws.com"}}}"#;
    let deny = r#"{"Effect": "Deny", "Principal": "*", "Action": "*"}"#;
    let check = |statements: &str| {
        let statements = format!(r#"{{"Statement": [{statements}]}}"#);
        let file = write_in(home.path(), "policy.json", statements);
        let args = [
            "aws",
            "check-trust-policy",
            file.to_str().unwrap(),
            "--org",
            "acme",
            "--app",
            "web",
        ];
        run_in(&args, &[], home.path())
    };
    let out = check(allow);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", stderr(&out));
    assert!(
        stdout.contains(
            "warn no condition on oidc.fly.io/acme:sub: every app of the org is admitted"
        ),
        "{stdout}"
    );
    let out = check(&format!("{allow}, {deny}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = error_line(&out, 1);
    assert!(line.contains("has a Deny statement"), "{line}");
    assert_contains_all(&stdout, &["rejected: the policy has a Deny statement (#2)"]);
    assert_contains_none(&stdout, &["accepted"]);
}

/// Issue: a variable whose value is not UTF-8 read as unset (the cache used, the socket used,
/// "no role to assume"). The variables are set on the child process only.
#[test]
fn non_utf8_variables_are_invalid_settings_naming_the_variable() {
    use std::os::unix::ffi::OsStrExt;
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str, &[u8], &str); 3] = [
        (
            &["aws", "credential-process", "--role-arn", ROLE],
            "FLY_OIDC_NO_CACHE",
            b"\xff",
            "the value is not valid UTF-8",
        ),
        (
            &["token"],
            "FLY_OIDC_TOKEN_FILE",
            b"/tmp/\xff",
            "FLY_OIDC_TOKEN_FILE",
        ),
        (
            &["aws", "credential-process", "--no-cache"],
            "AWS_ROLE_ARN",
            b"\xff",
            "invalid role ARN",
        ),
    ];
    for (args, var, value, says) in cases {
        let out = run_in_os(args, &[(var, OsStr::from_bytes(value))], home.path());
        error_saying(
            &out,
            2,
            &["invalid setting:", says, &format!("(from {var})")],
            &[],
        );
    }
}

/// Issues: `--socket` and `--token-file` were named by their variables, and a token file that
/// is a directory "could not be read" with no reason.
#[test]
fn token_source_errors_name_the_flag_or_variable_that_set_it() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().to_str().unwrap();
    // A named pipe hung the read forever (found by a black-box attack).
    let fifo = home.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo = fifo.to_str().unwrap();
    // Each source set by its flag, then by its variable.
    let by_flag = [
        (
            "--socket",
            "/nonexistent.sock",
            "the Machines API socket /nonexistent.sock does not exist (from --socket); check the path",
        ),
        (
            "--token-file",
            "/nonexistent",
            "cannot read the token file /nonexistent: it does not exist (from --token-file); check the path",
        ),
        (
            "--token-file",
            dir,
            "it is a directory (from --token-file); give the path of a file holding the token",
        ),
        (
            "--token-file",
            fifo,
            "it is not a regular file but a named pipe, a device or a socket (from --token-file); give the path of a file holding the token",
        ),
    ];
    let by_variable = [
        (
            "FLY_OIDC_SOCKET",
            "/nonexistent.sock",
            "does not exist (from FLY_OIDC_SOCKET)",
        ),
        (
            "FLY_OIDC_TOKEN_FILE",
            "/nonexistent",
            "it does not exist (from FLY_OIDC_TOKEN_FILE)",
        ),
    ];
    let cases = by_flag
        .map(|(flag, value, says)| (vec!["token", flag, value], vec![], says))
        .into_iter()
        .chain(by_variable.map(|(var, value, says)| (vec!["token"], vec![(var, value)], says)));
    for (args, envs, says) in cases {
        let out = run_in(&args, &envs, home.path());
        let line = error_line(&out, 2);
        assert!(line.contains(says), "{args:?} {envs:?}: {line}");
        assert!(
            line.starts_with("fly-oidc: error: invalid setting: "),
            "{line}"
        );
    }
    // gcp executable names the flag in its failure response too.
    let out = run_in(
        &[
            "gcp",
            "executable",
            "--audience",
            "//iam.googleapis.com/x",
            "--token-file",
            dir,
        ],
        &[],
        home.path(),
    );
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = response["message"].as_str().unwrap();
    assert!(
        message.contains("is a directory (from --token-file)"),
        "{message}"
    );
}

/// Issues: `token --verify` pointed at doctor's `--offline`; a malformed `--jwks-url` or
/// `--discovery-url` failed with exit 1 without naming the flag.
#[test]
fn key_url_flags_are_invalid_settings_and_token_verify_names_its_own_flags() {
    let home = tempfile::tempdir().unwrap();
    let fly = crate::support::acme_web();
    let sock = fly.socket_path().to_str().unwrap().to_owned();
    for command in [&["token", "--verify"][..], &["doctor"][..]] {
        for (flag, value, says) in [
            ("--jwks-url", "notaurl", "invalid JWKS URL"),
            (
                "--discovery-url",
                "ftp://x",
                "invalid discovery document URL",
            ),
        ] {
            let mut args = command.to_vec();
            args.extend(["--socket", &sock, flag, value]);
            let out = run_in(&args, &[], home.path());
            error_saying(&out, 2, &[says, &format!("(from {flag})")], &[]);
        }
    }
    assert_eq!(
        fly.request_count(),
        0,
        "the flags are checked before a token is fetched"
    );
    // Keys that cannot be fetched: the fix names token's flags, not doctor's --offline.
    let out = run_in(
        &[
            "token",
            "--verify",
            "--socket",
            &sock,
            "--jwks-url",
            "http://127.0.0.1:9/jwks",
        ],
        &[],
        home.path(),
    );
    error_saying(
        &out,
        1,
        &["could not fetch the issuer's keys", "--jwks-url"],
        &["--offline"],
    );
}

/// Issues: `gcp credential-config --output link.json` wrote through a symlink, then replaced
/// it (and `/dev/null` with it, as root); its errors did not name `--output`. A symlink, device
/// or directory is refused (exit 2) and left as it is.
#[test]
fn credential_config_output_refuses_a_symlink_and_names_the_flag() {
    let home = tempfile::tempdir().unwrap();
    let provider = "projects/123/locations/global/workloadIdentityPools/fly/providers/acme";
    let target = write_in(home.path(), "target.txt", "keep");
    let link = home.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let config = |output: &Path| {
        let args = [
            "gcp",
            "credential-config",
            "--provider",
            provider,
            "--output",
            output.to_str().unwrap(),
        ];
        run_in(&args, &[], home.path())
    };
    let line = error_line(&config(&link), 2);
    assert!(
        line.contains("is a symbolic link") && line.contains("(from --output)"),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    for (output, says) in [
        (home.path().to_path_buf(), "is a directory"),
        (
            home.path().join("no/such/dir/c.json"),
            "No such file or directory",
        ),
    ] {
        error_saying(
            &config(&output),
            2,
            &[
                "cannot write the credential configuration",
                says,
                "(from --output)",
            ],
            &[],
        );
    }
}

/// Issue: `fly-oidc token --claims | head -3` printed `error: writing to stdout failed:
/// Broken pipe`. A closed stdout ends the command quietly with 141, as `SIGPIPE` would.
#[test]
fn a_closed_stdout_exits_141_without_a_message() {
    use std::io::Read as _;
    let home = tempfile::tempdir().unwrap();
    let fly = crate::support::acme_web();
    // The reader went away before anything was written: the read end is closed before the
    // command starts (closed after the spawn, a process forked meanwhile by a parallel test
    // could hold it while the command writes).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = std::process::Command::new(crate::support::fly_oidc_bin())
        .args(["token", "--claims", "--socket"])
        .arg(fly.socket_path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141), "{err}");
    assert!(err.is_empty(), "{err}");
}

/// Issue: `aws setup --help` did not mark `--role-name` as required, as the README says
/// required flags are marked.
#[test]
fn aws_setup_help_marks_role_name_as_required() {
    let home = tempfile::tempdir().unwrap();
    let out = run_in(&["aws", "setup", "--help"], &[], home.path());
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    let at = help.rfind("--role-name <NAME>").unwrap();
    let described = help[at..].lines().take(3).collect::<Vec<_>>().join(" ");
    assert!(described.contains("(required)"), "{help}");
    let optional = help.find("--account-id <ID>").unwrap();
    let described = help[optional..]
        .lines()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!described.contains("(required"), "{help}");
}

/// Issue: a FLY_API_TOKEN with a control character was reported as a transient network
/// error; it is an invalid setting naming the variable, never quoting the token.
#[test]
fn a_fly_api_token_with_a_control_character_is_an_invalid_setting() {
    let home = tempfile::tempdir().unwrap();
    let out = run_in(
        &["token"],
        &[
            ("FLY_API_HOSTNAME", "https://127.0.0.1:9"),
            ("FLY_API_TOKEN", "FlyV1 fm2_se\u{1}cret\n"),
        ],
        home.path(),
    );
    error_saying(
        &out,
        2,
        &[
            "invalid setting",
            "contains a control character",
            "FLY_API_TOKEN",
        ],
        &["fm2_se"],
    );
    assert!(out.stdout.is_empty());
}

/// Issue: `FLY_OIDC_AUDIENCE=$'\xff\xfe' fly-oidc token --claims` asked for the lossy "��"
/// audience; it is an invalid setting naming the variable.
#[test]
fn an_audience_variable_that_is_not_utf8_is_an_invalid_setting() {
    use std::os::unix::ffi::OsStrExt;
    let home = tempfile::tempdir().unwrap();
    let token_file = write_in(home.path(), "token", "x.y.z");
    let role = [
        "aws",
        "credential-process",
        "--no-cache",
        "--role-arn",
        ROLE,
    ];
    for args in [&["token", "--claims"][..], &role[..]] {
        let env = [
            ("FLY_OIDC_TOKEN_FILE", token_file.as_os_str()),
            ("FLY_OIDC_AUDIENCE", OsStr::from_bytes(b"\xff\xfe")),
        ];
        let out = run_in_os(args, &env, home.path());
        let err = error_line(&out, 2);
        assert!(
            err.contains("the audience is not valid UTF-8 (from FLY_OIDC_AUDIENCE)"),
            "{args:?}: {err}"
        );
        assert!(!err.contains('\u{FFFD}'), "{err}");
    }
}

/// Issue: a `--log-file` that is a named pipe blocked the command forever (no reader); a
/// pipe, socket or directory is an invalid setting (exit 2) before anything runs.
#[test]
fn a_log_file_that_is_a_pipe_is_refused_not_waited_on() {
    let home = tempfile::tempdir().unwrap();
    let fifo = home.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let args = ["token", "--log-file", fifo.to_str().unwrap()];
    error_saying(
        &run_in(&args, &[], home.path()),
        2,
        &["is not a regular file", "--log-file"],
        &[],
    );
}

/// Found by a black-box attack: a flag's value that is not UTF-8 got clap's generic "invalid
/// UTF-8 was detected in one or more arguments" and its usage, naming no flag. It is an
/// invalid setting naming the flag, in one line (exit 2), however the value is given; a path
/// flag takes any bytes.
#[test]
fn a_flag_value_that_is_not_utf8_is_an_invalid_setting_naming_the_flag() {
    fn os(args: &[&'static str]) -> Vec<&'static OsStr> {
        args.iter().map(|a| OsStr::new(*a)).collect()
    }
    use std::os::unix::ffi::OsStrExt;
    let home = tempfile::tempdir().unwrap();
    let bad = OsStr::from_bytes(b"127.0.0.1:80\xff");
    let attached = OsStr::from_bytes(b"--listen=127.0.0.1:80\xff");
    let path = OsStr::from_bytes(b"/nonexistent/\xff");
    let cases: [(Vec<&OsStr>, &str); 5] = [
        (
            [&os(&["exec", "--listen"])[..], &[bad], &os(&["--", "true"])].concat(),
            "--listen",
        ),
        (
            [&os(&["exec"])[..], &[attached], &os(&["--", "true"])].concat(),
            "--listen",
        ),
        (
            [&os(&["serve", "--gcp-project"])[..], &[bad]].concat(),
            "--gcp-project",
        ),
        (
            [
                &os(&["aws", "credential-process", "--role-arn"])[..],
                &[bad],
            ]
            .concat(),
            "--role-arn",
        ),
        // The path is taken as it is; the value after it is the one.
        (
            [
                &os(&["--token-file"])[..],
                &[path],
                &os(&["token", "--audience"]),
                &[bad],
            ]
            .concat(),
            "--audience",
        ),
    ];
    for (args, flag) in cases {
        let out = run_os_args_in(&args, &[], home.path());
        assert_eq!(
            error_line(&out, 2).trim_end(),
            format!("fly-oidc: error: invalid setting: {flag}: the value is not valid UTF-8"),
            "{args:?}"
        );
    }
}

/// Found by a black-box attack: a 100,000-character `--listen` value was quoted whole, twice,
/// in the error line. A quoted value is cut after 200 characters, with its length.
#[test]
fn a_long_value_is_quoted_cut_with_its_length() {
    let home = tempfile::tempdir().unwrap();
    let long = "a".repeat(100_000);
    for (listen, length) in [
        (format!("{long}:80"), "(100003 characters)"),
        (format!("127.0.0.1:{long}"), "(100010 characters)"),
    ] {
        let args = ["exec", "--listen", &listen, "--", "true"];
        let line = error_line(&run_in(&args, &[], home.path()), 2);
        let cut = format!("\"{}…\" {length}", &listen[..200]);
        assert!(
            line.starts_with(&format!(
                "fly-oidc: error: invalid setting: invalid value {cut}: "
            )),
            "{line}"
        );
        assert!(line.contains("…\" (100000 characters)"), "{line}");
        assert!(line.trim_end().ends_with("(from --listen)"), "{line}");
        assert!(line.len() < 1000, "{} characters: {line}", line.len());
    }
}

/// An empty path (`--token-file ""`) was refused with clap's "use one of" and no value after
/// it: it is empty, and the line says so.
#[test]
fn an_empty_path_flag_says_it_is_empty() {
    let home = tempfile::tempdir().unwrap();
    for flag in ["--token-file", "--socket", "--log-file"] {
        let line = error_line(&run_in(&[flag, "", "token"], &[], home.path()), 2);
        assert_eq!(
            line.trim_end(),
            format!(
                "fly-oidc: error: invalid setting: invalid value \"\": it is empty; give a value or leave the flag out (from {flag})"
            )
        );
    }
}

/// A blank `--audience` was taken by `token` as no audience (a token for Fly's default one),
/// where every other command refused it: it is an invalid setting everywhere.
#[test]
fn a_blank_audience_is_refused_not_taken_for_the_default() {
    let home = tempfile::tempdir().unwrap();
    let role = ["--role-arn", "arn:aws:iam::123456789012:role/app"];
    for blank in ["", "   "] {
        for args in [
            vec!["token", "--audience", blank],
            [
                &["aws", "credential-process"],
                &role[..],
                &["--audience", blank],
            ]
            .concat(),
        ] {
            error_saying(
                &run_in(&args, &[], home.path()),
                2,
                &[
                    "invalid setting: the audience must not be empty",
                    "(from --audience)",
                ],
                &[],
            );
        }
    }
}

/// An env file whose path is not UTF-8 was accepted, and the authorization token file's path
/// written into it came out with U+FFFD: a file an app could not find. It is refused.
#[test]
fn an_env_file_path_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt as _;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(OsStr::from_bytes(b"bad\xffdir"));
    std::fs::create_dir(&dir).unwrap();
    let env_file = dir.join("app.env");
    let args: Vec<&OsStr> = ["serve", "--aws-role-arn", ROLE, "--env-file"]
        .iter()
        .map(OsStr::new)
        .chain([env_file.as_os_str()])
        .collect();
    let out = run_os_args_in(&args, &[], home.path());
    error_saying(
        &out,
        2,
        &["invalid setting: --env-file ", "is not valid UTF-8"],
        &[],
    );
    assert!(!env_file.exists());
}

/// A path with a newline and an escape sequence came out raw in the error line: it could
/// forge a second `fly-oidc:` line or drive the terminal. Control characters are escaped.
#[test]
fn a_control_character_in_a_path_cannot_forge_an_error_line() {
    let home = tempfile::tempdir().unwrap();
    let path = "a\u{1b}[31mRED\nfly-oidc: fake line";
    let args = ["aws", "env", "--role-arn", ROLE, "--token-file", path];
    let out = run_in(&args, &[], home.path());
    let line = error_line(&out, 2);
    assert!(
        line.contains("a\\u{1b}[31mRED\\nfly-oidc: fake line"),
        "{line}"
    );
    assert!(!line.trim_end().contains(char::is_control), "{line:?}");
}

/// doctor's step lines and fixes escape control characters as the error line does: a path
/// cannot forge a `PASS` step or colour the report.
#[test]
fn a_control_character_in_a_path_cannot_forge_a_doctor_step() {
    let home = tempfile::tempdir().unwrap();
    let path = "a\u{1b}[31mRED\nok   token: forged";
    let args = ["doctor", "--offline", "--token-file", path];
    let out = run_in(&args, &[], home.path());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("a\\u{1b}[31mRED\\nok   token: forged"),
        "{report}"
    );
    assert!(
        !report.lines().any(|l| l.starts_with("ok   token:")),
        "{report}"
    );
    assert!(!report.contains('\u{1b}'), "{report:?}");
}

/// A socket path too long for the file system, or through a file, was retried as if the
/// network had failed (and `exec` started its app without credentials): no retry can make it
/// a socket, so it is an invalid setting.
#[test]
fn a_socket_path_that_cannot_name_a_socket_is_an_invalid_setting() {
    let home = tempfile::tempdir().unwrap();
    let long = "s".repeat(5000);
    let over_sun_path = format!("/tmp/{}", "s".repeat(120));
    for (path, says) in [
        (long.as_str(), "longer than the 107 bytes"),
        (over_sun_path.as_str(), "longer than the 107 bytes"),
        ("/etc/passwd/sock", "Not a directory"),
    ] {
        let out = run_in(&["token", "--socket", path], &[], home.path());
        error_saying(
            &out,
            2,
            &["cannot name a socket", says, "(from --socket)"],
            &[],
        );
    }
    let out = run_in(
        &[
            "exec",
            "--aws-role-arn",
            ROLE,
            "--socket",
            "/etc/passwd/sock",
            "--",
            "true",
        ],
        &[],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
