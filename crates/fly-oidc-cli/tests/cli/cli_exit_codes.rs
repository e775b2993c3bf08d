//! Issue 10, class 6: every invalid setting, from a flag or from the environment, is a usage
//! error in every command that reports on stderr: exit 2 and one line
//! `fly-oidc: error: invalid setting: <why> (from <flag or variable>)`, wherever the setting is
//! checked (while parsing, building a provider, or at run time). `gcp executable` keeps its
//! consumer's form: a failure response on stdout and a non-zero exit.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::ROLE;
use crate::support::run_in;
use std::path::Path;

const PROVIDER: &str = "projects/123/locations/global/workloadIdentityPools/fly/providers/acme";
/// A pool, not a provider (the input).
const POOL: &str = "projects/123/locations/global/workloadIdentityPools/fly";

/// Each command with the flags it needs to get as far as its settings.
fn commands() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("token", vec!["token"]),
        (
            "aws credential-process",
            vec![
                "aws",
                "credential-process",
                "--role-arn",
                ROLE,
                "--no-cache",
            ],
        ),
        (
            "aws env",
            vec!["aws", "env", "--role-arn", ROLE, "--no-cache"],
        ),
        (
            "gcp credential-config",
            vec!["gcp", "credential-config", "--provider", PROVIDER],
        ),
        (
            "gcp access-token",
            vec!["gcp", "access-token", "--provider", PROVIDER],
        ),
    ]
}

/// An invalid setting: extra flags, environment, and the source the message must name.
struct Bad {
    flags: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
    names: String,
}

/// A bad value of flag `name`, named `(from <name>)`.
fn flag(name: &'static str, value: &'static str) -> Bad {
    Bad {
        flags: vec![name, value],
        env: vec![],
        names: format!("(from {name})"),
    }
}

/// A bad value of variable `name`, named `(from <name>)`.
fn var(name: &'static str, value: &'static str) -> Bad {
    Bad {
        flags: vec![],
        env: vec![(name, value)],
        names: format!("(from {name})"),
    }
}

impl Bad {
    /// With one more (valid) variable.
    fn and(mut self, name: &'static str, value: &'static str) -> Self {
        self.env.push((name, value));
        self
    }
}

/// The invalid settings every command shares (token source, log file, plain http).
fn shared(home: &Path) -> Vec<Bad> {
    let missing = Box::leak(
        home.join("no-such-token")
            .to_str()
            .unwrap()
            .to_owned()
            .into_boxed_str(),
    );
    let not_a_socket = home.join("not-a-socket");
    std::fs::write(&not_a_socket, "").unwrap();
    let leak = |p: &Path| &*Box::leak(p.to_str().unwrap().to_owned().into_boxed_str());
    let api = "ftp://api.example.com";
    let log = "/nonexistent/dir/fly-oidc.log";
    vec![
        flag("--api-url", api).and("FLY_API_TOKEN", "x"),
        var("FLY_API_HOSTNAME", api).and("FLY_API_TOKEN", "x"),
        // A path is not a host (it once became https://relative).
        flag("--api-url", "/relative").and("FLY_API_TOKEN", "x"),
        var("FLY_API_HOSTNAME", "/relative").and("FLY_API_TOKEN", "x"),
        var("FLY_OIDC_ALLOW_INSECURE_HTTP", "perhaps"),
        flag("--log-file", log),
        var("FLY_OIDC_LOG_FILE", log),
        // Checked at run time: a token file that does not exist, named by the flag that set it.
        flag("--token-file", missing),
        var("FLY_OIDC_TOKEN_FILE", missing),
        // Checked at run time: a socket path that is a regular file or a directory.
        Bad {
            names: "is a regular file, not the Machines API's Unix socket".into(),
            ..flag("--socket", leak(&not_a_socket))
        },
        Bad {
            names: "is a directory, not the Machines API's Unix socket".into(),
            ..flag("--socket", leak(home))
        },
    ]
}

/// The invalid settings of one command's own flags and variables.
fn own(command: &str) -> Vec<Bad> {
    match command {
        "aws credential-process" | "aws env" => vec![
            flag("--role-arn", "not-a-role"),
            flag("--duration-seconds", "5"),
            var("FLY_OIDC_AWS_DURATION_SECONDS", "5"),
        ],
        "gcp credential-config" | "gcp access-token" => vec![
            flag("--provider", POOL),
            flag("--sts-url", "http://sts.example.com/v1/token"),
            var("FLY_OIDC_GCP_SCOPES", "a b"),
        ],
        _ => vec![],
    }
}

#[test]
fn every_invalid_setting_exits_2_with_one_line_naming_it() {
    let home = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, base) in commands() {
        let mut cases = shared(home.path());
        cases.extend(own(name));
        for bad in cases {
            if name == "gcp credential-config"
                && (bad.names.contains("TOKEN_FILE")
                    || bad.flags.contains(&"--token-file")
                    || bad.flags.contains(&"--socket"))
            {
                continue; // writes the path into the command; reads no token
            }
            // A flag the command already has: its value replaced.
            let mut args = base.clone();
            match (bad.flags.first(), bad.flags.get(1)) {
                (Some(flag), Some(value)) if args.contains(flag) => {
                    let at = args.iter().position(|a| a == flag).unwrap();
                    args[at + 1] = value;
                }
                _ => args.extend(bad.flags.iter().copied()),
            }
            let out = run_in(&args, &bad.env, home.path());
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let one_line = stderr.lines().count() == 1;
            let shaped = stderr.starts_with("fly-oidc: error: invalid setting: ");
            if out.status.code() != Some(2)
                || !one_line
                || !shaped
                || !stderr.contains(&bad.names)
                || !out.stdout.is_empty()
            {
                failures.push(format!(
                    "{name} {:?} {:?}: exit {:?}, stderr {stderr:?}",
                    bad.flags,
                    bad.env,
                    out.status.code()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The input: a pool where a provider belongs.
#[test]
fn access_token_with_a_pool_for_a_provider_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let out = run_in(
        &["gcp", "access-token", "--provider", POOL],
        &[],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "fly-oidc: error: invalid setting: invalid workload identity pool provider"
        ),
        "{stderr}"
    );
    assert!(stderr.trim_end().ends_with("(from --provider)"), "{stderr}");
}

/// `gcp executable` reports an invalid setting in its failure response, on stdout only.
#[test]
fn executable_reports_invalid_settings_in_its_failure_response() {
    let home = tempfile::tempdir().unwrap();
    let google = ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", "//iam.googleapis.com/x");
    for bad in [
        flag("--api-url", "ftp://api.example.com")
            .and("FLY_API_TOKEN", "x")
            .and(google.0, google.1),
        var("FLY_OIDC_GCP_PROVIDER", POOL),
        flag("--log-file", "/nonexistent/dir/x.log"),
    ] {
        let mut args = vec!["gcp", "executable"];
        args.extend(bad.flags);
        let out = run_in(&args, &bad.env, home.path());
        assert!(!out.status.success());
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(response["success"], false);
        assert_eq!(response["code"], "INVALID_CONFIGURATION", "{response}");
        assert!(
            response["message"].as_str().unwrap().contains(&bad.names),
            "{response}"
        );
    }
}

/// Issue: `gcp executable --bogus` printed clap's usage on stderr; Google's libraries read
/// stdout, so a usage error is the protocol's failure response there, exit 2.
#[test]
fn gcp_executable_usage_errors_are_a_failure_response_on_stdout() {
    let home = tempfile::tempdir().unwrap();
    let out = run_in(&["gcp", "executable", "--bogus"], &[], home.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["success"], false, "{json}");
    assert_eq!(json["code"], "INVALID_CONFIGURATION", "{json}");
    let message = json["message"].as_str().unwrap();
    assert!(message.contains("'--bogus'"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    // Other commands keep clap's usage on stderr.
    let out = run_in(&["gcp", "access-token", "--bogus"], &[], home.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage:"));
}
