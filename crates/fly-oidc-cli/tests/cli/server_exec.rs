//! `fly-oidc exec` and `fly-oidc serve` with real consumers: the AWS CLI, boto3 (container
//! provider) and the Rust AWS SDK's default chain against moto; python google-auth's
//! `google.auth.default()` against the fake Google behind our metadata server; exit status,
//! signal forwarding, fail-fast at start, loopback only, the env file, and no secret on stderr.
//!
//! Needs the built binary and examples (`cargo build -p fly-oidc-cli -p fly-oidc-examples
//! --examples`), and `moto_server`, `aws`, boto3 and google-auth (a missing tool skips the test
//! locally and fails it in CI).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{
    ROLE, SA, Sandbox, assert_success, describe, fake_sts, free_listen, last_json, serve_aws_flags,
    stderr, stdout, terminate, wait_for,
};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::google::FakeGoogle;
use fly_oidc_tests::Secrets;
use fly_oidc_tests::aws::Moto;
use fly_oidc_tests::gcp::service_account_of;
use fly_oidc_tests::{assert_contains_all, assert_contains_none};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/server")
        .join(name)
}

pub(crate) fn example(name: &str) -> PathBuf {
    crate::support::fly_oidc_bin()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

/// [`fly`] and a sandbox whose STS (unused, or overridden by `--aws-sts-endpoint`) is closed.
fn fly_sandbox() -> (FakeFlyApi, Sandbox) {
    let fly = crate::support::acme_web();
    let sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    (fly, sandbox)
}

/// `fly-oidc --verbose exec --aws-role-arn ROLE -- <command>` in the sandbox.
pub(crate) fn exec_aws(sandbox: &Sandbox, command: &[&str]) -> Output {
    let mut args = vec!["--verbose", "exec", "--aws-role-arn", ROLE, "--"];
    args.extend_from_slice(command);
    sandbox.fly_oidc(&args)
}

/// `fly-oidc exec <extra> --aws-role-arn ROLE --aws-sts-endpoint <sts> -- sh -c <script>` in
/// the sandbox.
fn exec_sts_sh(
    sandbox: &Sandbox,
    sts: &fly_oidc_testkit::aws_sts::FakeSts,
    extra: &[&str],
    script: &str,
) -> Output {
    let endpoint = sts.url();
    let mut flags = extra.to_vec();
    flags.extend_from_slice(&["--aws-role-arn", ROLE, "--aws-sts-endpoint", &endpoint]);
    sandbox.exec_sh(&flags, script)
}

#[test]
fn aws_cli_boto3_and_the_rust_sdk_use_the_container_endpoint() {
    if !fly_oidc_tests::require_tool("aws")
        || fly_oidc_tests::python_with(&["boto3"], "boto3").is_none()
    {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let fly = crate::support::acme_web();
    let mut sandbox = Sandbox::new(&fly, moto.endpoint());
    // What Fly's built-in integration sets: exec must take it over.
    sandbox.set("AWS_ROLE_ARN", ROLE);
    sandbox.set("AWS_WEB_IDENTITY_TOKEN_FILE", "/.fly/oidc_token");

    let cli = exec_aws(
        &sandbox,
        &["aws", "sts", "get-caller-identity", "--output", "json"],
    );
    assert_success(&cli, "aws under exec");
    let identity: Value = serde_json::from_slice(&cli.stdout).unwrap();
    let arn = identity["Arn"].as_str().unwrap().to_owned();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/fly-app/"),
        "{arn}"
    );
    Secrets::of_fly(&fly).assert_absent("stderr", &stderr(&cli));

    let boto = exec_aws(
        &sandbox,
        &["python3", script("boto3_container.py").to_str().unwrap()],
    );
    assert_success(&boto, "boto3 under exec");
    let boto = last_json(&boto);
    assert_eq!(boto["method"], "container-role", "{boto}");
    assert!(
        boto["arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/fly-app/")
    );

    // The Rust SDK: FlyOidc does not apply (AWS_ROLE_ARN removed), the default chain's ECS
    // provider answers.
    let rust = exec_aws(&sandbox, &[example("provider_chain").to_str().unwrap()]);
    assert_success(&rust, "the provider_chain example under exec");
    let stdout = String::from_utf8_lossy(&rust.stdout);
    assert!(
        stdout.contains("credentials from the default chain"),
        "{stdout}"
    );
    assert!(stdout.contains(":assumed-role/fly-app/"), "{stdout}");

    // What the child sees: the container variables, and not what would win over them.
    let env = exec_aws(&sandbox, &["sh", "-c", "env"]);
    let env = String::from_utf8_lossy(&env.stdout);
    assert!(
        env.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:"),
        "{env}"
    );
    assert!(!env.contains("AWS_ROLE_ARN="), "{env}");
    assert!(!env.contains("AWS_WEB_IDENTITY_TOKEN_FILE="), "{env}");
    let token_file = env
        .lines()
        .find_map(|l| l.strip_prefix("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="))
        .unwrap();
    // The file only, as the EKS Pod Identity agent: some SDKs warn or fail with both.
    assert!(!env.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN="), "{env}");
    assert!(!Path::new(token_file).exists(), "removed when exec ends");
}

#[test]
fn the_token_file_holds_the_token_without_a_newline_and_is_private() {
    let (_fly, sandbox) = fly_sandbox();
    let sts = fake_sts();
    let out = exec_sts_sh(
        &sandbox,
        &sts,
        &["--aws-auth-token-env"],
        "stat -c %a \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"; [ \"$(cat \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\")\" = \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" ] && echo same; wc -c < \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"",
    );
    assert_success(&out, "exec sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "600");
    assert_eq!(lines[1], "same");
    assert_eq!(lines[2].trim(), "43", "the token alone, no newline");
}

pub(crate) fn google_setup(service_account: Option<&str>) -> (FakeFlyApi, FakeGoogle) {
    let fly = crate::support::acme_web();
    let mut google = FakeGoogle::builder(&fly);
    if let Some(sa) = service_account {
        google = google.service_account(sa);
    }
    let google = google.start_blocking().unwrap();
    (fly, google)
}

/// `--gcp-provider`, `--gcp-sts-url` and `--gcp-iam-url` for the fake Google (`sts` and `iam`
/// are its URLs).
pub(crate) fn gcp_flags<'a>(google: &'a FakeGoogle, sts: &'a str, iam: &'a str) -> [&'a str; 6] {
    [
        "--gcp-provider",
        google.provider(),
        "--gcp-sts-url",
        sts,
        "--gcp-iam-url",
        iam,
    ]
}

pub(crate) fn exec_google(
    fly: &FakeFlyApi,
    google: &FakeGoogle,
    extra: &[&str],
    command: &[&str],
) -> Output {
    let home = tempfile::tempdir().unwrap();
    let (sts, iam) = (google.sts_url(), google.iam_url());
    let mut args = vec!["--verbose", "exec"];
    args.extend(gcp_flags(google, &sts, &iam));
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    Command::new(crate::support::fly_oidc_bin())
        .args(&args)
        .env_clear()
        .env("PATH", fly_oidc_tests::host_path())
        .env("HOME", home.path())
        .env("FLY_OIDC_SOCKET", fly.socket_path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn python_google_auth_default_finds_the_metadata_server() {
    if fly_oidc_tests::python_with(&["google.auth", "requests"], "google-auth requests").is_none() {
        return;
    }
    for service_account in [Some(SA), None] {
        let (fly, google) = google_setup(service_account);
        let mut extra = vec!["--gcp-project", "my-project"];
        if let Some(sa) = service_account {
            extra.extend(["--gcp-service-account", sa]);
        }
        let script = script("google_auth_default.py");
        let out = exec_google(
            &fly,
            &google,
            &extra,
            &["python3", script.to_str().unwrap()],
        );
        assert_success(&out, "google-auth under exec");
        let value = last_json(&out);
        assert_eq!(
            value["class"],
            "google.auth.compute_engine.credentials.Credentials"
        );
        assert_eq!(value["project"], "my-project");
        // Without a service account, the federated principal's name of its own.
        let email = service_account.unwrap_or(FEDERATED_ACCOUNT);
        assert_eq!(value["email"], email);
        let token = value["token"].as_str().unwrap();
        assert_eq!(
            service_account_of(&google, token).as_deref(),
            service_account
        );
        // Two refreshes, one exchange.
        assert_eq!(google.request_count(), 1);
        Secrets::of_fly(&fly)
            .with("the token it served", token)
            .assert_absent("stderr", &stderr(&out));
    }
}

/// Found by a black-box attack: `--gcp-project` took anything (a newline, quotes, control
/// characters) into the child's `GOOGLE_CLOUD_PROJECT` and the metadata server's
/// `project-id`. It takes a project ID by Google's rule, or a legacy domain-scoped one; any
/// other value is an invalid setting naming the flag, in one line (exit 2), for exec and
/// serve, before anything is fetched.
#[test]
fn gcp_project_takes_a_project_id_only() {
    let (fly, google) = google_setup(None);
    let rule = "a project ID is 6 to 30 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen (my-project), or a legacy domain-scoped one (example.com:my-project)";
    for (bad, why) in [
        ("a\nb", rule),
        ("my-project\nEVIL=1", rule),
        ("\"my-project\"", rule),
        ("my project", rule),
        ("My-Project", rule),
        ("proj\u{1b}[31m", rule),
        ("", rule),
        (
            "123456789012",
            "this is a project number; give the project ID",
        ),
    ] {
        let exec = exec_google(&fly, &google, &["--gcp-project", bad], &["true"]);
        let serve = crate::support::run(&["serve", "--gcp-project", bad], &[]);
        for (command, out) in [("exec", exec), ("serve", serve)] {
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command} {bad:?}: {}",
                describe(&out)
            );
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{command}: {err}");
            let starts = format!("fly-oidc: error: invalid setting: invalid value {bad:?}: {why}");
            assert!(err.starts_with(&starts), "{command}: {err}");
            assert!(err.trim_end().ends_with("(from --gcp-project)"), "{err}");
        }
    }
    assert_eq!(google.request_count(), 0, "refused before any fetch");
    for good in ["my-project", "example.com:my-project"] {
        let show = ["sh", "-c", "printf %s \"$GOOGLE_CLOUD_PROJECT\""];
        let out = exec_google(&fly, &google, &["--gcp-project", good], &show);
        assert_success(&out, good);
        assert_eq!(String::from_utf8_lossy(&out.stdout), good);
    }
}

/// A Google audience the provider refuses stops exec before the command runs, and the message
/// names `--gcp-audience` (not AWS's `--aws-audience`, the flag of the same builder method).
#[test]
fn a_refused_google_audience_is_named_by_its_gcp_flag() {
    let (fly, google) = google_setup(None);
    let out = exec_google(
        &fly,
        &google,
        &["--gcp-audience", "https://example.com/other"],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    let line = err.lines().find(|l| l.starts_with("fly-oidc: error:"));
    let line = line.unwrap_or_else(|| panic!("no error line: {err}"));
    assert_contains_all(line, &["set by --gcp-audience"]);
    assert_contains_none(line, &["--aws-audience", "Builder::"]);
}

/// Google STS not answering at start: exec runs the command (the server retries in the
/// background), and both the warning and what the metadata server answers the command name
/// `--gcp-sts-url`, never the library's `Builder::sts_url`.
#[test]
fn an_unreachable_google_sts_is_named_by_its_gcp_flag_in_the_warning_and_the_answer() {
    let (fly, google) = google_setup(None);
    let probe = "curl -s -H 'Metadata-Flavor: Google' \
        \"http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token\"";
    let out = Command::new(crate::support::fly_oidc_bin())
        .args(["exec", "--gcp-provider", google.provider()])
        .args([
            "--gcp-sts-url",
            "http://127.0.0.1:9/v1/token",
            "--",
            "sh",
            "-c",
            probe,
        ])
        .env_clear()
        .env("PATH", fly_oidc_tests::host_path())
        .env("FLY_OIDC_SOCKET", fly.socket_path())
        .output()
        .unwrap();
    let (answer, err) = (stdout(&out), stderr(&out));
    assert_contains_all(&err, &["WARN", "--gcp-sts-url"]);
    assert_contains_all(&answer, &["--gcp-sts-url"]);
    assert_contains_none(&format!("{err}{answer}"), &["Builder::"]);
}

#[test]
fn gcloud_prints_the_served_token_under_exec() {
    if !fly_oidc_tests::require_tool("gcloud") {
        return;
    }
    let (fly, google) = google_setup(Some(SA));
    let out = exec_google(
        &fly,
        &google,
        &["--gcp-service-account", SA],
        &[
            "sh",
            "-c",
            "echo \"$GCE_METADATA_ROOT\"; CLOUDSDK_CONFIG=\"$HOME/gcloud\" CLOUDSDK_CORE_DISABLE_PROMPTS=1 gcloud auth print-access-token",
        ],
    );
    assert_success(&out, "gcloud under exec");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let root = lines.next().unwrap();
    assert!(root.starts_with("127.0.0.1:"), "{stdout}");
    let token = lines.last().unwrap().trim();
    assert_eq!(service_account_of(&google, token).as_deref(), Some(SA));
    Secrets::of_fly(&fly)
        .with("the token it served", token)
        .assert_absent("stderr", &stderr(&out));
}

/// The name the metadata server gives the federated principal of the fake's provider
/// (`projects/123456789012/.../workloadIdentityPools/fly-pool/providers/acme`).
const FEDERATED_ACCOUNT: &str = "acme.fly-pool@123456789012.fly-oidc.invalid";

/// Without a service account, gcloud finds an account in the metadata listing (it skips
/// `default`): the federated principal under its own name, whose token is the federated one.
#[test]
fn gcloud_works_without_a_service_account_under_exec() {
    if !fly_oidc_tests::require_tool("gcloud") {
        return;
    }
    let (fly, google) = google_setup(None);
    let out = exec_google(
        &fly,
        &google,
        &[],
        &[
            "sh",
            "-c",
            "export CLOUDSDK_CONFIG=\"$HOME/gcloud\" CLOUDSDK_CORE_DISABLE_PROMPTS=1; \
             gcloud config list account --format='value(core.account)' && \
             gcloud auth list --format='value(account)' && \
             gcloud auth print-access-token",
        ],
    );
    assert_success(&out, "gcloud under exec without a service account");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines.first().copied(), Some(FEDERATED_ACCOUNT), "{stdout}");
    assert!(
        lines.iter().skip(1).any(|l| *l == FEDERATED_ACCOUNT),
        "{stdout}"
    );
    let token = lines.last().copied().unwrap_or_default();
    assert!(
        google.token_info(token).is_some(),
        "not a token it issued: {stdout}"
    );
    assert_eq!(
        service_account_of(&google, token),
        None,
        "the federated token"
    );
    Secrets::of_fly(&fly)
        .with("the token it served", token)
        .assert_absent("stderr", &stderr(&out));
}

#[test]
fn other_scopes_get_their_own_token_under_exec() {
    const DRIVE: &str = "https://www.googleapis.com/auth/drive";
    for service_account in [None, Some(SA)] {
        let (fly, google) = google_setup(service_account);
        let extra = match service_account {
            Some(sa) => vec!["--gcp-service-account", sa],
            None => Vec::new(),
        };
        let fetch = format!(
            "python3 -c 'import os,urllib.request as u; r=u.Request(\"http://\"+os.environ[\"GCE_METADATA_HOST\"]+\"/computeMetadata/v1/instance/service-accounts/default/token?scopes={DRIVE}\", headers={{\"Metadata-Flavor\": \"Google\"}}); print(u.urlopen(r).read().decode())'"
        );
        let out = exec_google(&fly, &google, &extra, &["sh", "-c", &fetch]);
        assert_success(&out, "a scoped token under exec");
        let token = last_json(&out)["access_token"].as_str().unwrap().to_owned();
        let issued = google.token_info(&token).unwrap();
        assert_eq!(issued.scopes, vec![DRIVE.to_owned()], "{service_account:?}");
    }
}

#[test]
fn exit_status_is_the_childs_and_128_plus_the_signal() {
    let (fly, google) = google_setup(None);
    let out = exec_google(&fly, &google, &[], &["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let out = exec_google(&fly, &google, &[], &["sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.status.code(), Some(128 + 9), "{}", describe(&out));
    let out = exec_google(&fly, &google, &[], &["/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
}

#[test]
fn signals_are_forwarded_to_the_child() {
    let (fly, google) = google_setup(None);
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let (sts, iam) = (google.sts_url(), google.iam_url());
    let script = format!(
        "trap 'echo got-term; exit 42' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let child = Command::new(crate::support::fly_oidc_bin())
        .arg("exec")
        .args(gcp_flags(&google, &sts, &iam))
        .args(["--", "sh", "-c", &script])
        .env_clear()
        .env("PATH", fly_oidc_tests::host_path())
        .env("FLY_OIDC_SOCKET", fly.socket_path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&ready);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(42));
    assert!(String::from_utf8_lossy(&out.stdout).contains("got-term"));
}

#[test]
fn invalid_settings_exit_2_and_permanent_failures_exit_1_before_the_child() {
    let (_fly, sandbox) = fly_sandbox();
    let marker = sandbox.dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    // Each invalid setting is named by its flag (the library names its ServeOptions field).
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["--listen", "0.0.0.0:0", "--aws-role-arn", ROLE],
            &[
                "invalid setting: invalid value \"0.0.0.0:0\"",
                "127.0.0.1 only",
                "(from --listen)",
            ],
        ),
        (
            &[],
            &[
                "nothing to serve: configure an AWS role (--aws-role-arn or AWS_ROLE_ARN) or a Google provider (--gcp-provider or FLY_OIDC_GCP_PROVIDER), or a token file to write (--write-token PATH=AUDIENCE)",
            ],
        ),
        (
            &["--write-token", "/tmp/no-audience"],
            &["--write-token \"/tmp/no-audience\": expected PATH=AUDIENCE"],
        ),
        (
            &["--aws-role-arn", ROLE, "--aws-audience", ""],
            &[
                "the audience must not be empty: give one, or leave it out for the default (from --aws-audience)",
            ],
        ),
        (
            &["--gcp-provider", "not-a-provider"],
            &[
                "invalid workload identity pool provider",
                "(from --gcp-provider)",
            ],
        ),
    ];
    for (flags, expected) in cases {
        let out = sandbox.exec_sh(flags, &touch);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", describe(&out));
        let err = stderr(&out);
        fly_oidc_tests::assert_contains_all(&err, expected);
        // No library name.
        let fields = [
            "`listen`",
            "aws_role_arns",
            "write_tokens",
            "aws_audience",
            "gcp_provider",
        ];
        fly_oidc_tests::assert_contains_none(&err, &fields);
    }

    let sts = fake_sts();
    sts.fail_next(10, fly_oidc_testkit::Fault::access_denied());
    let out = exec_sts_sh(&sandbox, &sts, &[], &touch);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("role/fly-app"), "{stderr}");
    assert!(!marker.exists(), "the child must not start");
    // The diagnosis is printed once: as the error, not also as a warning before it.
    assert_eq!(stderr.matches("AccessDenied").count(), 1, "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");

    // A setting STS finds invalid at the first fetch (a duration above the role's maximum) is
    // an invalid setting too: exit 2, named by exec's own flag, before the child starts.
    let sts = fly_oidc_testkit::aws_sts::FakeSts::builder()
        .max_session_duration(std::time::Duration::from_secs(3600))
        .start_blocking()
        .unwrap();
    let out = exec_sts_sh(&sandbox, &sts, &["--aws-duration-seconds", "7200"], &touch);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid setting: "), "{stderr}");
    assert!(stderr.contains("7200 s"), "{stderr}");
    assert!(stderr.contains("--aws-duration-seconds"), "{stderr}");
    assert!(!stderr.contains("Builder::"), "{stderr}");
    assert!(!marker.exists(), "the child must not start");
}

#[test]
fn serve_writes_a_private_env_file_and_stops_within_a_second_on_sigterm() {
    let (fly, google) = google_setup(None);
    let sts = fake_sts();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("creds.env");
    let listen = free_listen();
    let (gsts, iam) = (google.sts_url(), google.iam_url());
    let endpoint = sts.url();
    // A relative --env-file: the file names its token file by an absolute path, so a shell
    // in any directory (here, the test's) can source it.
    let mut child = Command::new(crate::support::fly_oidc_bin())
        .arg("serve")
        .args(serve_aws_flags(&listen, Path::new("creds.env"), &endpoint))
        .args(["--aws-region", "eu-west-1"])
        .args(gcp_flags(&google, &gsts, &iam))
        .current_dir(dir.path())
        .env_clear()
        .env("FLY_OIDC_SOCKET", fly.socket_path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&env_file);
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A shell that sources it reaches both servers.
    let probe = format!(
        ". {}; echo \"$AWS_DEFAULT_REGION $GCE_METADATA_HOST $GCE_METADATA_ROOT\"; python3 -c 'import os,urllib.request as u; r=u.Request(os.environ[\"AWS_CONTAINER_CREDENTIALS_FULL_URI\"], headers={{\"Authorization\": open(os.environ[\"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"]).read()}}); print(u.urlopen(r).status)'",
        env_file.display()
    );
    let out = Command::new("sh").args(["-c", &probe]).output().unwrap();
    assert_success(&out, "sourcing the env file");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("eu-west-1 {listen} {listen}")),
        "{stdout}"
    );
    assert!(stdout.contains("200"), "{stdout}");

    let stopping = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "{:?}",
        stopping.elapsed()
    );
    assert!(status.success(), "{status:?}");
    assert!(!env_file.exists(), "the env file is removed at exit");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    for creds in sts.issued_credentials() {
        assert!(!stderr.contains(&creds.secret_access_key), "{stderr}");
    }
}

#[test]
fn user_runs_the_child_as_that_user_with_its_token_file() {
    if !fly_oidc_tests::require_root("--user") {
        return;
    }
    let (_fly, sandbox) = fly_sandbox();
    let sts = fake_sts();
    // A directory the user can enter, holding a token file (0600) only its owner can read.
    let shared = sandbox.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(sandbox.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let token = shared.join("vault-token");
    let spec = format!("{}=vault", token.display());
    let out = exec_sts_sh(
        &sandbox,
        &sts,
        &["--user", "nobody", "--write-token", &spec],
        &format!(
            "id -u; id -g; echo \"$HOME $USER $LOGNAME\"; cat \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\" >/dev/null && echo readable; cat {} >/dev/null && echo token-readable",
            token.display()
        ),
    );
    assert_success(&out, "exec --user nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "65534", "{stdout}");
    assert_eq!(lines[1], "65534", "{stdout}");
    assert_eq!(lines[2], "/nonexistent nobody nobody");
    assert_eq!(lines[3], "readable");
    assert_eq!(
        lines[4], "token-readable",
        "the --write-token file is the user's"
    );
    let out = sandbox.fly_oidc(&[
        "exec",
        "--user",
        "no-such-user-here",
        "--aws-role-arn",
        ROLE,
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

#[test]
fn the_child_gets_both_region_variables_when_it_has_one() {
    let (_fly, mut sandbox) = fly_sandbox();
    let sts = fake_sts();
    let show = "echo \"${AWS_REGION-none} ${AWS_DEFAULT_REGION-none}\"";
    // The sandbox has AWS_DEFAULT_REGION only.
    let out = exec_sts_sh(&sandbox, &sts, &[], show);
    assert_success(&out, "exec with AWS_DEFAULT_REGION");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "us-east-1 us-east-1"
    );
    sandbox.unset("AWS_DEFAULT_REGION");
    sandbox.set("AWS_REGION", "eu-central-1");
    let out = exec_sts_sh(&sandbox, &sts, &[], show);
    assert_success(&out, "exec with AWS_REGION");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "eu-central-1 eu-central-1"
    );
}

#[test]
fn write_token_keeps_a_fly_token_in_a_private_file() {
    let (fly, sandbox) = fly_sandbox();
    let path = sandbox.dir.path().join("azure-token");
    let spec = format!("{}=api://AzureADTokenExchange", path.display());
    let out = sandbox.exec_sh(
        &["--write-token", &spec],
        &format!("stat -c %a {0}; cat {0}", path.display()),
    );
    assert_success(&out, "exec --write-token");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (mode, jwt) = stdout.split_once('\n').unwrap();
    assert_eq!(mode, "600");
    assert!(
        fly.issued_tokens().iter().any(|t| t == jwt),
        "a token the fake minted, no newline"
    );
    assert!(
        fly.requests()
            .iter()
            .any(|r| r.audience.as_deref() == Some("api://AzureADTokenExchange")),
        "asked with the audience"
    );
    Secrets::of_fly(&fly).assert_absent("stderr", &stderr(&out));
    assert!(!path.exists(), "exec removes the token file when it exits");
    let bad = sandbox.fly_oidc(&["exec", "--write-token", "no-audience", "--", "true"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}

#[test]
fn write_token_paths_twice_equal_to_the_env_file_or_in_no_directory_exit_2() {
    let (fly, sandbox) = fly_sandbox();
    let path = sandbox.dir.path().join("vault-token");
    let spec = format!("{}=vault", path.display());
    let env_file = sandbox.dir.path().join("creds.env");
    let env_spec = format!("{}=vault", env_file.display());
    let missing = "/nonexistent-fly-oidc/token=vault";
    let runs: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["exec", "--write-token", &spec, "--write-token", &spec, "--", "true"],
            format!("--write-token {}: this path is given twice", path.display()),
        ),
        (
            vec!["exec", "--write-token", missing, "--", "true"],
            "--write-token /nonexistent-fly-oidc/token: the directory /nonexistent-fly-oidc does not exist; create it (mkdir -p /nonexistent-fly-oidc)".into(),
        ),
        (
            vec!["serve", "--write-token", missing],
            "--write-token /nonexistent-fly-oidc/token: the directory".into(),
        ),
        (
            vec![
                "serve",
                "--env-file",
                env_file.to_str().unwrap(),
                "--write-token",
                &env_spec,
            ],
            format!(
                "--write-token {}: this path is also the --env-file",
                env_file.display()
            ),
        ),
    ];
    for (args, expected) in runs {
        let out = sandbox.fly_oidc(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }
    assert!(fly.requests().is_empty(), "refused before any fetch");
    assert!(!path.exists() && !env_file.exists());
}

#[test]
fn serve_removes_its_token_files_on_sigterm() {
    let (fly, sandbox) = fly_sandbox();
    let path = sandbox.dir.path().join("vault-token");
    let spec = format!("{}=vault", path.display());
    let listen = free_listen();
    // No AWS role: no env file needed.
    let child = sandbox.spawn_serve(&["--listen", &listen, "--write-token", &spec]);
    wait_for(&path);
    let jwt = std::fs::read_to_string(&path).unwrap();
    assert!(fly.issued_tokens().contains(&jwt));
    terminate(child);
    assert!(!path.exists(), "serve removes the token file on SIGTERM");
}

#[test]
fn exec_and_the_env_file_keep_the_fly_api_token_from_the_app() {
    let fly = crate::support::acme_web();
    let sts = fake_sts();
    let mut sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    // The Machines API over HTTP: the server needs FLY_API_TOKEN, the app must not get it.
    sandbox.unset("FLY_OIDC_SOCKET");
    sandbox.set("FLY_API_HOSTNAME", &fly.url());
    sandbox.set("FLY_API_TOKEN", fly.api_token());
    let mut runs: Vec<&[&str]> = vec![&[]];
    if fly_oidc_tests::is_root() {
        runs.push(&["--user", "nobody"]);
    }
    for extra in runs {
        let out = exec_sts_sh(&sandbox, &sts, extra, "env | grep ^FLY_; echo done");
        assert_success(&out, "exec env");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("FLY_API_HOSTNAME="), "{extra:?}: {stdout}");
        assert!(!stdout.contains("FLY_API_TOKEN"), "{extra:?}: {stdout}");
        assert!(!stdout.contains(fly.api_token()), "{extra:?}: {stdout}");
        let last = fly.requests().pop().unwrap();
        assert!(
            last.authorized && !last.unix,
            "the server used it: {last:?}"
        );
    }

    // serve's env file unsets it in the shell that sources it.
    let env_file = sandbox.dir.path().join("creds.env");
    let listen = free_listen();
    let endpoint = sts.url();
    let child = sandbox.spawn_serve(&serve_aws_flags(&listen, &env_file, &endpoint));
    wait_for(&env_file);
    let text = std::fs::read_to_string(&env_file).unwrap();
    let unset = text.lines().find(|l| l.starts_with("unset ")).unwrap();
    assert!(unset.split(' ').any(|v| v == "FLY_API_TOKEN"), "{text}");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(". {}; echo \"${{FLY_API_TOKEN-gone}}\"", env_file.display()),
        ])
        .env("FLY_API_TOKEN", fly.api_token())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "gone");
    terminate(child);
}

#[test]
fn serve_refuses_aws_without_an_env_file_a_missing_directory_and_a_busy_port() {
    let (_fly, mut sandbox) = fly_sandbox();
    let sts = fake_sts();
    let endpoint = sts.url();
    let aws: [&str; 4] = ["--aws-role-arn", ROLE, "--aws-sts-endpoint", &endpoint];
    // Under `timeout 20`: a serve that starts instead of refusing exits 124, not hangs.
    let bin = crate::support::fly_oidc_bin();
    let serve = |sandbox: &Sandbox, args: &[&str]| {
        let out = sandbox
            .command("timeout")
            .arg("20")
            .arg(&bin)
            .arg("serve")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // An AWS role, by flag or by AWS_ROLE_ARN, and no env file: nobody could get the token.
    let listen = free_listen();
    let mut args = vec!["--listen", &listen];
    args.extend(aws);
    let stderr = serve(&sandbox, &args);
    assert!(
        stderr.contains("--env-file is required to serve an AWS role"),
        "{stderr}"
    );
    assert!(stderr.contains("pass --env-file"), "{stderr}");
    sandbox.set("AWS_ROLE_ARN", ROLE);
    let stderr = serve(&sandbox, &["--listen", &listen]);
    assert!(stderr.contains("--env-file is required"), "{stderr}");
    sandbox.unset("AWS_ROLE_ARN");
    assert_eq!(sts.request_count(), 0, "refused before any STS call");

    // An env file in a directory that does not exist: named, no temporary path.
    let mut args = vec!["--env-file", "/nonexistent-fly-oidc/x.env"];
    args.extend(aws);
    let stderr = serve(&sandbox, &args);
    assert!(
        stderr.contains("--env-file /nonexistent-fly-oidc/x.env: the directory /nonexistent-fly-oidc does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains(".fly-oidc-"), "{stderr}");

    // An env file that is a directory: refused before any fetch, no token file left beside it.
    let dir_env = sandbox.dir.path().join("env-dir");
    std::fs::create_dir(&dir_env).unwrap();
    let mut args = vec!["--env-file", dir_env.to_str().unwrap()];
    args.extend(aws);
    let stderr = serve(&sandbox, &args);
    assert!(
        stderr.contains(&format!("--env-file {}: is a directory", dir_env.display())),
        "{stderr}"
    );
    assert!(!sandbox.dir.path().join("env-dir.aws-token").exists());
    assert_eq!(sts.request_count(), 0, "refused before any STS call");

    // A port already in use, for serve and exec.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let env_file = sandbox.dir.path().join("creds.env");
    let mut args = vec!["--listen", &busy, "--env-file", env_file.to_str().unwrap()];
    args.extend(aws);
    let stderr = serve(&sandbox, &args);
    assert!(stderr.contains(&format!("--listen {busy}: ")), "{stderr}");
    assert!(stderr.contains("free port"), "{stderr}");
    let mut flags = vec!["--listen", &busy];
    flags.extend(aws);
    let out = sandbox.exec_sh(&flags, "true");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("--listen {busy}: ")));
    assert!(!env_file.exists());
}

/// Google's libraries read `GOOGLE_APPLICATION_CREDENTIALS` before the metadata server: `exec`
/// serving Google leaves it (it may be what the app wants) with a warning naming it.
#[test]
fn exec_serving_google_leaves_google_application_credentials_with_a_warning() {
    let (fly, google) = google_setup(None);
    let mut sandbox = Sandbox::new(&fly, "http://127.0.0.1:9");
    sandbox.set("GOOGLE_APPLICATION_CREDENTIALS", "/app/key.json");
    let (sts, iam) = (google.sts_url(), google.iam_url());
    let out = sandbox
        .command(crate::support::fly_oidc_bin())
        .arg("exec")
        .args(gcp_flags(&google, &sts, &iam))
        .args([
            "--",
            "sh",
            "-c",
            "echo \"GAC=$GOOGLE_APPLICATION_CREDENTIALS\"",
        ])
        .output()
        .unwrap();
    assert_success(&out, "exec with GOOGLE_APPLICATION_CREDENTIALS set");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "GAC=/app/key.json\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GOOGLE_APPLICATION_CREDENTIALS is set: Google's libraries use that file before the metadata server served here"),
        "{stderr}"
    );
}
