//! `fly-oidc` run as a process: what a newcomer meets first. CA certificates missing from
//! the image, "did you mean" suggestions, help layout, URL errors, `aws env`'s region.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::FakeGoogle;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::ROLE;
const NO_CA_WARNING: &str = "no CA certificates could be loaded";

/// Run `fly-oidc` with only `env`, a PATH and a temporary HOME.
fn fly_oidc(args: &[&str], env: &[(&str, &str)]) -> Output {
    crate::support::run(args, env)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `SSL_CERT_FILE` (an empty file) and `SSL_CERT_DIR` (an empty directory): an image
/// without the `ca-certificates` package, as far as the process can tell.
struct NoCaCerts {
    _dir: tempfile::TempDir,
    file: String,
    certs: String,
}

impl NoCaCerts {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty.pem");
        std::fs::write(&file, "").unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        Self {
            file: file.display().to_string(),
            certs: certs.display().to_string(),
            _dir: dir,
        }
    }

    fn env(&self) -> [(&'static str, &str); 2] {
        [("SSL_CERT_FILE", &self.file), ("SSL_CERT_DIR", &self.certs)]
    }
}

/// The Fly API over HTTP (a client that may speak TLS, so it loads root certificates).
fn fly_over_http(fly: &FakeFlyApi) -> [(&'static str, String); 2] {
    [
        ("FLY_API_HOSTNAME", fly.url()),
        ("FLY_API_TOKEN", fly.api_token().to_owned()),
    ]
}

/// [`fly_oidc`] against `fly` over HTTP ([`fly_over_http`]) with `more` variables, in an
/// image without CA certificates ([`NoCaCerts`]); it must succeed. The output and its stderr.
fn succeeds_without_ca(
    args: &[&str],
    fly: &FakeFlyApi,
    more: &[(&'static str, String)],
) -> (Output, String) {
    let vars = [&fly_over_http(fly)[..], more].concat();
    let no_ca = NoCaCerts::new();
    let out = fly_oidc(args, &with(&vars, &no_ca.env()));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    (out, stderr)
}

/// A fake Fly API of org `acme` and a fake Google trusting it.
fn acme_and_google() -> (FakeFlyApi, FakeGoogle) {
    let fly = FakeFlyApi::builder().org("acme").start_blocking().unwrap();
    let google = FakeGoogle::builder(&fly).start_blocking().unwrap();
    (fly, google)
}

fn with<'a>(
    a: &'a [(&'static str, String)],
    b: &[(&'static str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    a.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(b.iter().copied())
        .collect()
}

#[test]
fn without_ca_certificates_google_commands_work_with_one_warning() {
    let (fly, google) = acme_and_google();
    let more = [
        ("FLY_OIDC_GCP_PROVIDER", google.provider().to_owned()),
        ("FLY_OIDC_GCP_STS_URL", google.sts_url()),
        ("FLY_OIDC_GCP_IAM_URL", google.iam_url()),
    ];
    let (out, stderr) = succeeds_without_ca(&["gcp", "access-token"], &fly, &more);
    assert!(!text(&out.stdout).trim().is_empty());
    // Two HTTP clients (Fly API, Google STS) were built: the roots were loaded once.
    assert_eq!(stderr.matches(NO_CA_WARNING).count(), 1, "{stderr}");
    assert!(
        stderr.contains("ca-certificates"),
        "says how to fix it: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn without_ca_certificates_gcp_executable_stays_silent_on_stderr() {
    let (fly, google) = acme_and_google();
    let jwt = "urn:ietf:params:oauth:token-type:jwt";
    let more = [
        ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", google.sts_audience()),
        ("GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE", jwt.to_owned()),
        ("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0".to_owned()),
    ];
    let (out, stderr) = succeeds_without_ca(&["gcp", "executable"], &fly, &more);
    assert_eq!(stderr, "", "Google's libraries read stderr with stdout");
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["success"], true);
    assert_eq!(fly.requests().len(), 1);
}

#[test]
fn without_ca_certificates_aws_commands_work_with_one_warning() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sts = FakeSts::builder().start_blocking().unwrap();
    let url = sts.url();
    let args = crate::support::credential_process_no_cache(ROLE, &url);
    let (out, stderr) = succeeds_without_ca(&args, &fly, &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["Version"], 1);
    // The Fly client and the AWS SDK's client share one load of the roots.
    assert_eq!(stderr.matches(NO_CA_WARNING).count(), 1, "{stderr}");
    assert_eq!(sts.request_count(), 1);
}

/// [`fly_oidc`] with `vars` in an image without CA certificates ([`NoCaCerts`]), where the
/// Fly token comes over the socket, whose client loads no roots: it must succeed, with the
/// one warning of the one client that loaded them. Its stdout and stderr.
fn one_client_without_ca(args: &[&str], vars: &[(&str, &str)]) -> (String, String) {
    let no_ca = NoCaCerts::new();
    let out = fly_oidc(args, &[vars, &no_ca.env()].concat());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stderr.matches(NO_CA_WARNING).count(), 1, "{stderr}");
    (stdout, stderr)
}

/// `token --verify` fetches the issuer's keys with the roots every client trusts, from
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`: in an image without CA certificates it works.
#[test]
fn without_ca_certificates_the_key_fetch_takes_the_same_roots() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap().to_owned();
    let jwks_url = fly.jwks_url();
    let args = [
        "token",
        "--verify",
        "--socket",
        &sock,
        "--jwks-url",
        &jwks_url,
    ];
    let (_, stderr) = one_client_without_ca(&args, &[]);
    assert!(stderr.contains("verified: RS256 signature"), "{stderr}");
}

/// doctor's Google exchange step builds its client with the roots of `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`, as every client does (the environment it once rebuilt for the step lacked
/// them: two warnings, one about the system's store).
#[test]
fn without_ca_certificates_doctors_google_exchange_takes_the_same_roots() {
    let (fly, google) = acme_and_google();
    let sock = fly.socket_path().to_str().unwrap().to_owned();
    let (sts, iam) = (google.sts_url(), google.iam_url());
    let vars = [
        ("FLY_OIDC_GCP_PROVIDER", google.provider()),
        ("FLY_OIDC_GCP_STS_URL", sts.as_str()),
        ("FLY_OIDC_GCP_IAM_URL", iam.as_str()),
    ];
    let args = ["doctor", "--offline", "--socket", &sock];
    let (stdout, _) = one_client_without_ca(&args, &vars);
    assert!(stdout.contains("google exchange"), "{stdout}");
}

/// A key fetch that fails says why, from the transport error's causes (reqwest's own text is
/// "error sending request"), and where a private CA's roots go.
#[test]
fn a_failed_key_fetch_names_its_cause_and_the_roots_variables() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap().to_owned();
    // Nothing listens on port 9 of this machine's loopback.
    let jwks = "https://127.0.0.1:9/jwks.json";
    let out = fly_oidc(
        &["token", "--verify", "--socket", &sock, "--jwks-url", jwks],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    fly_oidc_tests::assert_contains_all(
        &stderr,
        &[
            "could not fetch the issuer's keys from https://127.0.0.1:9/jwks.json",
            "Connection refused",
            "SSL_CERT_FILE or SSL_CERT_DIR",
        ],
    );
}

/// With the system's certificates (the test machine has `ca-certificates`), no warning.
#[test]
fn with_ca_certificates_there_is_no_warning() {
    if !Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        eprintln!("skipped: this machine has no /etc/ssl/certs/ca-certificates.crt");
        return;
    }
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let vars = fly_over_http(&fly);
    let out = fly_oidc(
        &["token"],
        &with(
            &vars,
            &[("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")],
        ),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn typos_get_a_did_you_mean() {
    let out = fly_oidc(&["aws", "credential-process", "--role-am", ROLE], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("similar argument exists: '--role-arn'"),
        "{stderr}"
    );

    let out = fly_oidc(&["aws", "credentials-process"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("similar subcommand exists: 'credential-process'"),
        "{stderr}"
    );
}

/// The text of `help` that documents `flag`: its line, and the next one when clap puts the
/// description there (it does for every flag once one flag's name and help would not fit on
/// one line).
fn help_line<'a>(help: &'a str, flag: &str) -> &'a str {
    // Each line with its offset in `help`.
    let mut offset = 0;
    let lines: Vec<(usize, &str)> = help
        .split_inclusive('\n')
        .map(|l| {
            let at = offset;
            offset += l.len();
            (at, l.trim_end_matches('\n'))
        })
        .collect();
    let at = lines
        .iter()
        .position(|(_, l)| l.trim_start().starts_with(flag) || l.contains(&format!(", {flag}")))
        .unwrap_or_else(|| panic!("no {flag} in:\n{help}"));
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (start, line) = lines[at];
    let end = match lines.get(at + 1) {
        Some((next_at, next))
            if indent(next) > indent(line) && !next.trim_start().starts_with('-') =>
        {
            next_at + next.len()
        }
        _ => start + line.len(),
    };
    &help[start..end]
}

#[test]
fn subcommand_help_lists_its_own_flags_first_and_marks_required_ones() {
    for (args, own, required) in [
        (
            &["aws", "credential-process", "--help"][..],
            "--session-name",
            "--role-arn",
        ),
        (&["aws", "env", "--help"][..], "--json", "--role-arn"),
        (
            &["gcp", "access-token", "--help"][..],
            "--scope",
            "--provider",
        ),
        (
            &["gcp", "credential-config", "--help"][..],
            "--output",
            "--provider",
        ),
        (&["token", "--help"][..], "--claims", ""),
    ] {
        let out = fly_oidc(args, &[]);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        let own_at = help.find(help_line(&help, own)).unwrap();
        let globals_at = help
            .find("Global options:")
            .unwrap_or_else(|| panic!("{help}"));
        let socket_at = help.find(help_line(&help, "--socket")).unwrap();
        assert!(
            own_at < globals_at && globals_at < socket_at,
            "{args:?}:\n{help}"
        );
        if !required.is_empty() {
            assert!(
                help_line(&help, required).contains("(required"),
                "{args:?}:\n{help}"
            );
        }
        // Optional flags are not marked.
        assert!(
            !help_line(&help, own).contains("(required"),
            "{args:?}:\n{help}"
        );
    }
}

#[test]
fn top_level_help_says_where_the_token_comes_from() {
    let out = fly_oidc(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "/.fly/api",
        "FLY_OIDC_TOKEN_FILE",
        "FLY_OIDC_SOCKET",
        "FLY_API_HOSTNAME",
        "FLY_API_TOKEN",
    ] {
        assert!(help.contains(needle), "{needle} missing:\n{help}");
    }
    // The defaults' order, as the library applies it.
    let order: Vec<usize> = ["--token-file /", "--socket /", "--api-url /", "/.fly/api"]
        .iter()
        .map(|n| help.find(n).unwrap_or_else(|| panic!("{n}:\n{help}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{help}");
}

#[test]
fn a_bad_url_says_what_a_valid_one_looks_like() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap().to_owned();
    let provider = fly_oidc_testkit::google::default_provider("acme");
    let access_token = ["gcp", "access-token", "--provider", &provider];
    // (arguments, environment, the example URL the message must show)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 7] = [
        (
            crate::support::credential_process_no_cache(ROLE, "sts.amazonaws.com"),
            vec![],
            "https://sts.us-east-1.amazonaws.com",
        ),
        (
            vec!["aws", "env", "--no-cache", "--role-arn", ROLE],
            vec![("AWS_ENDPOINT_URL_STS", "localhost:4566")],
            "https://sts.us-east-1.amazonaws.com",
        ),
        (
            [&access_token[..], &["--sts-url", "sts.googleapis.com"]].concat(),
            vec![],
            "https://sts.googleapis.com/v1/token",
        ),
        (
            access_token.to_vec(),
            vec![("FLY_OIDC_GCP_IAM_URL", "iamcredentials.googleapis.com")],
            "https://iamcredentials.googleapis.com",
        ),
        (
            [&access_token[..], &["--sts-url", "https://"]].concat(),
            vec![],
            "https://sts.googleapis.com/v1/token",
        ),
        (
            vec!["token", "--api-url", "https://"],
            vec![],
            "https://api.machines.dev",
        ),
        (
            vec!["token", "--api-url", "/relative"],
            vec![("FLY_API_TOKEN", "x")],
            "https://api.machines.dev",
        ),
    ];
    for (args, env, example) in cases {
        let mut env = env;
        env.push(("FLY_OIDC_SOCKET", &sock));
        let out = fly_oidc(&args, &env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("relative URL"), "{args:?}: {stderr}");
        assert!(stderr.contains("scheme://host"), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("such as {example}")),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    assert_eq!(fly.requests().len(), 0, "nothing was sent");
}

/// `aws env` sourced by bash: with a configured region, both region variables, so the AWS
/// CLI v1 (which reads AWS_DEFAULT_REGION only) and Python see it.
#[test]
fn aws_env_exports_the_configured_region_under_both_names() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sts = FakeSts::builder().start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap().to_owned();
    let url = sts.url();
    let bin = env!("CARGO_BIN_EXE_fly-oidc");
    let home = tempfile::tempdir().unwrap();
    let run = |flags: &str, env: &[(&str, &str)]| {
        let script = format!(
            r#"set -eu
eval "$('{bin}' aws env --no-cache --role-arn '{ROLE}' --sts-endpoint '{url}' --socket '{sock}' {flags})"
python3 -c 'import os; print(os.environ.get("AWS_REGION", "-"), os.environ.get("AWS_DEFAULT_REGION", "-"))'
if command -v aws >/dev/null; then aws configure list | grep -w region || true; fi"#
        );
        let out = Command::new("bash")
            .args(["-c", &script])
            .env_clear()
            .env("PATH", fly_oidc_tests::host_path())
            .env("HOME", home.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };

    let stdout = run("--region eu-west-3", &[]);
    assert!(stdout.starts_with("eu-west-3 eu-west-3\n"), "{stdout}");
    if stdout.lines().count() > 1 {
        // The AWS CLI found the region where v1 looks.
        assert!(
            stdout.contains("eu-west-3") && stdout.contains("AWS_DEFAULT_REGION"),
            "{stdout}"
        );
    }

    // AWS_REGION alone (which v1 ignores) is exported as AWS_DEFAULT_REGION too.
    let stdout = run("", &[("AWS_REGION", "ap-south-1")]);
    assert!(stdout.starts_with("ap-south-1 ap-south-1\n"), "{stdout}");

    // No region configured: none exported (the default us-east-1 is not forced on others).
    let stdout = run("", &[]);
    assert!(stdout.starts_with("- -\n"), "{stdout}");

    // --json carries the same variables.
    let out = fly_oidc(
        &[
            "aws",
            "env",
            "--json",
            "--no-cache",
            "--role-arn",
            ROLE,
            "--sts-endpoint",
            &url,
            "--socket",
            &sock,
            "--region",
            "eu-west-3",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["AWS_REGION"], "eu-west-3");
    assert_eq!(json["AWS_DEFAULT_REGION"], "eu-west-3");
    assert_eq!(sts.request_count(), 4);
}

/// A failing Fly token reads the same in `token`, `aws` and `gcp`: the step, then the token
/// client's message once (not "Fly token failed: could not get a Fly OIDC token: ...").
#[test]
fn a_failing_fly_token_is_said_once_in_every_command() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sts = FakeSts::builder().start_blocking().unwrap();
    let google = FakeGoogle::builder(&fly).start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap().to_owned();
    let (sts_url, google_sts) = (sts.url(), google.sts_url());
    let provider = google.provider().to_owned();
    let commands: [Vec<&str>; 3] = [
        vec!["token"],
        vec![
            "aws",
            "credential-process",
            "--no-cache",
            "--role-arn",
            ROLE,
            "--sts-endpoint",
            &sts_url,
        ],
        vec![
            "gcp",
            "access-token",
            "--provider",
            &provider,
            "--sts-url",
            &google_sts,
        ],
    ];
    let dir = tempfile::tempdir().unwrap();
    let not_a_socket = dir.path().to_str().unwrap();
    for command in commands {
        // The Machines API answers 500 on every attempt: a transient failure, exit 1.
        fly.fail_next(10, fly_oidc_testkit::Fault::Status(500, "{}".into()));
        let out = fly_oidc(&[&command[..], &["--socket", &sock]].concat(), &[]);
        fly.clear_faults();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.starts_with("fly-oidc: error: Fly token failed: the Machines API"),
            "{command:?}: {stderr}"
        );
        assert!(stderr.contains("HTTP 500"), "{command:?}: {stderr}");
        // A socket setting that names a directory: an invalid setting, exit 2.
        let out = fly_oidc(&[&command[..], &["--socket", not_a_socket]].concat(), &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "fly-oidc: error: invalid setting: {not_a_socket} is a directory, not the Machines API's Unix socket (from --socket); give the path of the socket"
            ),
            "{command:?}"
        );
        for repeated in ["could not get a Fly OIDC token", "getting a Fly OIDC token"] {
            assert!(!stderr.contains(repeated), "{command:?}: {stderr}");
        }
    }
    assert_eq!(sts.request_count(), 0);
}

/// The local stand-ins (`examples/fake_fly_api`, which `scripts/demo.sh` prints) never print
/// the fake Machines API's token: the HTTP line reads it from a 0600 file, which works, and
/// SIGTERM removes the socket's directory with it.
/// Needs the examples built (`cargo build -p fly-oidc-examples --examples`).
#[test]
fn the_fake_fly_api_runner_never_prints_its_api_token() {
    use std::io::BufRead as _;
    use std::os::unix::fs::PermissionsExt as _;
    let runner = crate::support::fly_oidc_bin()
        .parent()
        .unwrap()
        .join("examples/fake_fly_api");
    assert!(
        runner.exists(),
        "build the examples first: cargo build -p fly-oidc-examples --examples"
    );
    let mut child = Command::new(&runner)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("# ready") {
            break;
        }
    }
    let http = printed
        .lines()
        .find(|l| l.starts_with("# Or over HTTP: "))
        .unwrap_or_else(|| panic!("no HTTP line in {printed}"));
    let url = http.split("FLY_API_HOSTNAME=").nth(1).unwrap();
    let url = url.split_whitespace().next().unwrap();
    let file = http.split("$(cat ").nth(1).unwrap().trim_end_matches(")\"");
    let token = std::fs::read_to_string(file).unwrap();
    let mode = std::fs::metadata(file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{file}");
    assert!(token.len() >= 16, "{token:?}");
    assert!(
        !printed.contains(&token),
        "the token is printed:\n{printed}"
    );
    // The token from the file opens the fake over HTTP.
    let out = fly_oidc(
        &["token", "--claims", "--api-url", url],
        &[("FLY_API_TOKEN", &token)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // SIGTERM: the socket's directory (and the token file in it) is removed.
    let dir = Path::new(file).parent().unwrap().to_owned();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Every `FLY_OIDC_*` variable the crates' sources name is in the docs (README.md,
/// docs/*.md, the crates' READMEs; the testing hook `FLY_OIDC_DEFAULT_SOCKET` too, marked as
/// one), and the hook moves the default socket.
#[test]
fn every_variable_read_is_documented_in_the_docs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs: Vec<String> = crate::readme_commands::doc_texts()
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    let readme = docs.join("\n");
    let mut named = std::collections::BTreeSet::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        let Ok(files) = std::fs::read_dir(&src) else {
            continue;
        };
        for file in files {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap_or_default();
            for part in text.split("\"FLY_OIDC_").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                if part[name.len()..].starts_with('"') {
                    named.insert(format!("FLY_OIDC_{name}"));
                }
            }
        }
    }
    assert!(named.contains("FLY_OIDC_DEFAULT_SOCKET"), "{named:?}");
    for var in &named {
        assert!(readme.contains(var), "{var} is not in the docs");
    }
    let hook = readme
        .lines()
        .find(|l| l.contains("`FLY_OIDC_DEFAULT_SOCKET`"))
        .unwrap();
    assert!(hook.contains("testing hook"), "{hook}");
    // The hook: no source set, the default socket is the fake's.
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap();
    let out = fly_oidc(&["token"], &[("FLY_OIDC_DEFAULT_SOCKET", sock)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fly.requests().len(), 1);
}
