//! `fly-oidc token --verify`, `aws setup`, `aws check-trust-policy`, `gcp setup`,
//! `gcp check-condition` and `doctor`, run as processes against the testkit's fakes, moto_server
//! with the real AWS CLI, gcloud (argument parsing only) and python-hcl2.
//!
//! Needs `moto_server` and `aws` for the AWS set-up test, `gcloud` and Python's `hcl2` for the
//! set-up output tests; each test skips (locally) or fails (CI) when its tool is missing.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{ROLE, SA};
use crate::support::{assert_json_contains, code, expect, run, stderr, stdout, write_in};
use base64::Engine;
use fly_oidc::time::{SystemTimeSource, TimeSource};
use fly_oidc_testkit::aws_sts::{ChainTrust, FakeSts};
use fly_oidc_testkit::google::FakeGoogle;
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::aws::Moto;
use fly_oidc_tests::{Secrets, assert_contains_all, assert_contains_none};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const ACCOUNT: &str = "123456789012";

/// `fly-oidc` with the words of `command`, then `args`, and no more environment.
fn cmd(command: &str, args: &[&str]) -> Output {
    let mut all: Vec<&str> = command.split_whitespace().collect();
    all.extend_from_slice(args);
    run(&all, &[])
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    write_in(dir, name, text).to_str().unwrap().to_owned()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}{}", nanos % 1_000_000_000)
}

// ---------------------------------------------------------------- token --verify

/// The same JWT with its payload edited and the signature kept.
fn tampered(jwt: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "acme:other-app:m1".into();
    format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    )
}

/// `fly-oidc <command> --token-file <a tampered token of the fake's> --jwks-url <the fake's>`.
fn run_on_tampered_token(fly: &FakeFlyApi, command: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "token",
        &tampered(&fly.mint(Some("sts.amazonaws.com"))),
    );
    let jwks_url = fly.jwks_url();
    let mut args = command.to_vec();
    args.extend_from_slice(&["--token-file", &file, "--jwks-url", &jwks_url]);
    run(&args, &[])
}

#[test]
fn token_verify_checks_the_signature_by_discovery_or_jwks_url_and_refuses_a_tampered_token() {
    let fly = FakeFlyApi::builder().org("acme").start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap();
    let discovery = format!("{}/.well-known/openid-configuration", fly.url());
    let out = cmd(
        "token --verify --socket",
        &[sock, "--discovery-url", &discovery],
    );
    expect(&out, 0, stderr, "verified: RS256 signature");
    assert!(stderr(&out).contains("iss=https://oidc.fly.io/acme"));

    let out = cmd(
        "token --verify --claims --socket",
        &[sock, "--jwks-url", &fly.jwks_url()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let claims: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(claims["iss"], "https://oidc.fly.io/acme");

    let out = run_on_tampered_token(&fly, &["token", "--verify"]);
    expect(&out, 1, stderr, "signature does not verify");
    assert_eq!(stdout(&out), "", "a refused token is not printed");
    Secrets::of_fly(&fly).assert_absent_from_output(&out);

    // Discovery that names another issuer: refused, naming both.
    let out = cmd(
        "token --verify --socket",
        &[sock, "--discovery-url", &format!("{}/nope", fly.url())],
    );
    expect(&out, 1, stderr, "could not fetch the issuer's keys");
}

// ---------------------------------------------------------------- aws setup + check-trust-policy

/// The AWS CLI against moto_server, with a HOME of its own.
struct AwsCli {
    moto: Moto,
    home: tempfile::TempDir,
}

impl AwsCli {
    /// `None` when `aws` or moto_server is missing (the test skips locally, fails in CI).
    fn start() -> Option<Self> {
        if !fly_oidc_tests::require_tool("aws") {
            return None;
        }
        let moto = Moto::start()?;
        let home = tempfile::tempdir().unwrap();
        Some(Self { moto, home })
    }

    /// A command with only PATH and the variables that point the AWS CLI at moto.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", fly_oidc_tests::host_path())
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("HOME", self.home.path());
        command
    }

    /// `aws <args> --output json`, which must succeed; its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let out = self
            .command("aws")
            .args(args)
            .args(["--output", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Run `script` with bash against moto.
    fn bash(&self, script: &str) -> Output {
        self.command("bash").arg("-c").arg(script).output().unwrap()
    }

    /// Run the printed commands with bash against moto, which must succeed; what they print.
    fn run_script(&self, script: &str) -> String {
        let out = self.bash(script);
        assert!(
            out.status.success(),
            "the printed commands failed: {}\n{script}",
            stderr(&out)
        );
        stdout(&out)
    }
}

#[test]
fn aws_setup_commands_create_provider_and_role_again_and_for_a_second_app() {
    let Some(aws) = AwsCli::start() else { return };
    let org = unique("org");
    let (role_a, role_b, role_c) = (unique("fly-web-"), unique("fly-api-"), unique("fly-job-"));
    let setup = |role: &str, app: &str, extra: &[&str]| {
        let mut args = vec![
            "aws",
            "setup",
            "--role-name",
            role,
            "--org",
            &org,
            "--app",
            app,
        ];
        args.extend_from_slice(extra);
        let out = run(&args, &[]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
    };
    let first = setup(
        &role_a,
        "web",
        &["--account-id", ACCOUNT, "--max-session-duration", "7200"],
    );
    aws.run_script(&first);
    aws.run_script(&first); // again: no EntityAlreadyExists
    // A second app of the same org, the account looked up. (moto 5.2.1 does not implement
    // AddClientIDToOpenIDConnectProvider, so a second audience is checked in the script only.)
    let second = setup(&role_b, "api", &[]);
    let other_audience = setup(&role_b, "api", &["--audience", "api-audience"]);
    assert!(other_audience.contains("contains(ClientIDList, 'api-audience')"));
    assert!(other_audience.contains("add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn \"arn:aws:iam::${ACCOUNT_ID}:oidc-provider/oidc.fly.io/"));
    assert!(second.contains("get-caller-identity"));
    // The next step names the role's ARN with the account the script looked up (issue 19: a
    // comment held a literal ${ACCOUNT_ID}).
    let printed = aws.run_script(&second);
    assert!(
        printed.contains(&format!(
            "fly secrets set AWS_ROLE_ARN=arn:aws:iam::{ACCOUNT}:role/{role_b} "
        )),
        "{printed}"
    );
    aws.run_script(&setup(&role_c, "job", &[]));

    let provider_arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.fly.io/{org}");
    let provider = aws.json(&[
        "iam",
        "get-open-id-connect-provider",
        "--open-id-connect-provider-arn",
        &provider_arn,
    ]);
    let mut ids: Vec<&str> = provider["ClientIDList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["sts.amazonaws.com"],
        "one client id, not one per run: {provider}"
    );

    let role = aws.json(&["iam", "get-role", "--role-name", &role_a]);
    assert_eq!(role["Role"]["MaxSessionDuration"], 7200);
    let doc = &role["Role"]["AssumeRolePolicyDocument"];
    let statement = &doc["Statement"][0];
    assert_eq!(statement["Principal"]["Federated"], provider_arn.as_str());
    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        statement["Condition"]["StringLike"][format!("oidc.fly.io/{org}:sub")],
        format!("{org}:web:*")
    );
    assert_eq!(
        statement["Condition"]["StringEquals"][format!("oidc.fly.io/{org}:aud")],
        "sts.amazonaws.com"
    );
    let role_b_doc = aws.json(&["iam", "get-role", "--role-name", &role_b]);
    assert_eq!(
        role_b_doc["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Federated"],
        provider_arn.as_str(),
        "the looked-up account is moto's"
    );

    // The policy as IAM stores it passes check-trust-policy for its app, not for another.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "policy.json", &doc.to_string());
    let out = cmd(
        "aws check-trust-policy",
        &[&file, "--org", &org, "--app", "web"],
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = cmd(
        "aws check-trust-policy",
        &[&file, "--org", &org, "--app", "api"],
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
}

/// `aws setup` for role `fly-web` trusted by app `web` of org `acme`.
const AWS_SETUP: &[&str] = &[
    "aws",
    "setup",
    "--role-name",
    "fly-web",
    "--org",
    "acme",
    "--app",
    "web",
];

fn setup_policy() -> (tempfile::TempDir, String) {
    let mut args = AWS_SETUP.to_vec();
    args.extend(["--account-id", ACCOUNT, "--format", "json"]);
    let out = run(&args, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let policy: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "policy.json", &policy.to_string());
    (dir, path)
}

#[test]
fn check_trust_policy_accepts_its_own_app_and_names_the_failing_condition_otherwise() {
    let (dir, policy) = setup_policy();
    let check = |extra: &[&str]| {
        let mut args = vec!["aws", "check-trust-policy", &policy];
        args.extend_from_slice(extra);
        run(&args, &[])
    };
    let ok = check(&["--org", "acme", "--app", "web"]);
    expect(
        &ok,
        0,
        stdout,
        "ok   StringLike oidc.fly.io/acme:sub [\"acme:web:*\"]: token sub = acme:web:example-machine",
    );
    assert!(stdout(&ok).contains("accepted"));

    // Rejected (exit 1), the report holding each of `lines`: the failing condition, and an
    // `ok` line for the condition that still passes.
    let rejected = |flags: &[&str], lines: &[&str]| {
        let out = check(flags);
        let text = stdout(&out);
        assert_eq!(code(&out), 1, "{text}");
        for line in lines {
            assert!(text.contains(line), "{line:?} not in: {text}");
        }
    };
    rejected(
        &["--org", "acme", "--app", "api"],
        &[
            "FAIL StringLike oidc.fly.io/acme:sub [\"acme:web:*\"]: token sub = acme:api:example-machine",
            "ok   StringEquals oidc.fly.io/acme:aud",
        ],
    );
    rejected(
        &["--org", "evil", "--app", "web"],
        &[
            "FAIL Principal.Federated",
            "iss = https://oidc.fly.io/evil",
            "FAIL StringEquals oidc.fly.io/acme:aud [\"sts.amazonaws.com\"]: token aud = absent (the key is for issuer https://oidc.fly.io/acme",
        ],
    );
    let wrong_aud = ["--audience", "https://fly.io/acme"];
    rejected(
        &[&["--org", "acme", "--app", "web"][..], &wrong_aud].concat(),
        &[
            "FAIL StringEquals oidc.fly.io/acme:aud [\"sts.amazonaws.com\"]: token aud = https://fly.io/acme",
            "ok   StringLike oidc.fly.io/acme:sub",
        ],
    );

    // Several statements: one that accepts is enough.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    let mut second = doc["Statement"][0].clone();
    second["Condition"]["StringLike"]["oidc.fly.io/acme:sub"] = "acme:api:*".into();
    second["Sid"] = "Api".into();
    doc["Statement"].as_array_mut().unwrap().push(second);
    let two = write(dir.path(), "two.json", &doc.to_string());
    let out = cmd(
        "aws check-trust-policy",
        &[&two, "--org", "acme", "--app", "api"],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("statement #1: rejects")
            && stdout(&out).contains("statement \"Api\": accepts")
    );
}

#[test]
fn check_trust_policy_reads_a_live_token_or_saved_claims_and_uses_exit_2_and_3() {
    let fly = crate::support::acme_web();
    let sock = fly.socket_path().to_str().unwrap();
    let (dir, policy) = setup_policy();
    let live = cmd("aws check-trust-policy", &[&policy, "--socket", sock]);
    assert_eq!(code(&live), 0, "{}{}", stdout(&live), stderr(&live));
    assert_eq!(
        fly.requests()[0].audience.as_deref(),
        Some("sts.amazonaws.com")
    );
    Secrets::of_fly(&fly).assert_absent_from_output(&live);

    let claims = cmd(
        "token --claims --socket",
        &[sock, "--audience", "sts.amazonaws.com"],
    );
    let claims_file = write(dir.path(), "claims.json", &stdout(&claims));
    let saved = cmd(
        "aws check-trust-policy",
        &[&policy, "--claims", &claims_file],
    );
    assert_eq!(code(&saved), 0, "{}{}", stdout(&saved), stderr(&saved));

    let bad = write(dir.path(), "bad.json", "{\"Version\": \"2012-10-17\"");
    let out = cmd(
        "aws check-trust-policy",
        &[&bad, "--org", "acme", "--app", "web"],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("not JSON"));

    let out = cmd(
        "aws check-trust-policy",
        &[&policy, "--socket", "/nonexistent/sock"],
    );
    assert_eq!(code(&out), 3, "no token: {}", stderr(&out));

    // A claims file holds its audience: --audience beside it would be ignored, so it is refused.
    let out = cmd(
        "aws check-trust-policy",
        &[&policy, "--claims", &policy, "--audience", "other"],
    );
    expect(&out, 2, stderr, "cannot be used with '--audience <AUD>'");
    // The stand-in's Machine name follows Fly's rule, as its org and app do.
    let out = cmd(
        "aws check-trust-policy",
        &[
            &policy,
            "--org",
            "acme",
            "--app",
            "web",
            "--machine",
            "a\nb",
        ],
    );
    expect(&out, 2, stderr, "--machine");
}

/// The one statement of the trust policy that `out` (exit 0, `--format json`) printed.
fn only_statement(out: &Output) -> Value {
    assert_eq!(code(out), 0, "{}", stderr(out));
    let policy: Value = serde_json::from_str(&stdout(out)).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{policy}");
    statements[0].clone()
}

/// `aws setup --principal-tags`: the trust policy's one statement allows `sts:TagSession`
/// (as IAM stores it, the printed commands run against moto), and the example permission
/// policy names the first tag key of a live Fly token asked with session tags (the fake's
/// own `fake_app`), else the placeholder `TAG_KEY`, said on stderr.
#[test]
fn aws_setup_with_principal_tags_allows_tag_session_and_names_a_tag_key() {
    let fly = crate::support::acme_web();
    let sock = fly.socket_path().to_str().unwrap();
    // The command the docs show, on a Machine of the app (here the fake's socket).
    let command = "aws setup --role-name my-fly-app --principal-tags";
    let json = cmd(
        command,
        &[
            "--socket",
            sock,
            "--account-id",
            ACCOUNT,
            "--format",
            "json",
        ],
    );
    let statement = only_statement(&json);
    assert_eq!(
        statement["Action"],
        serde_json::json!(["sts:AssumeRoleWithWebIdentity", "sts:TagSession"])
    );
    assert_eq!(
        statement["Condition"]["StringLike"]["oidc.fly.io/acme:sub"],
        "acme:web:*"
    );
    let err = stderr(&json);
    assert!(
        err.contains("example permission policy granting by session tag")
            && err.contains("${aws:PrincipalTag/fake_app}"),
        "{err}"
    );
    assert!(!err.contains("TAG_KEY"), "{err}");
    // The org and app from a token, then the key from a token asked with session tags.
    let requests = fly.requests();
    let tagged = requests.last().unwrap();
    assert!(tagged.aws_principal_tags);
    assert_eq!(tagged.audience.as_deref(), Some("sts.amazonaws.com"));

    // No token to read a key from: the placeholder, said plainly.
    let out = cmd(
        command,
        &[
            "--org",
            "acme",
            "--app",
            "web",
            "--socket",
            "/nonexistent/sock",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_contains_all(
        &stderr(&out),
        &[
            "fly-oidc: warning: the example permission policy names TAG_KEY, a placeholder (no Fly token: ",
            "replace it with a tag key that `fly-oidc token --claims --aws-principal-tags` lists on a Machine of the app",
        ],
    );
    assert_contains_all(
        &stdout(&out),
        &[
            "# TAG_KEY is a placeholder (no Fly token: ",
            "${aws:PrincipalTag/TAG_KEY}",
        ],
    );

    // The commands, run against moto: the role's trust policy allows sts:TagSession, and
    // IAM takes the example permission policy.
    let Some(aws) = AwsCli::start() else { return };
    let out = cmd(command, &["--socket", sock]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let script = stdout(&out);
    assert!(
        script.contains("# The tag key fake_app was read from a live Fly token"),
        "{script}"
    );
    aws.run_script(&script);
    let role = aws.json(&["iam", "get-role", "--role-name", "my-fly-app"]);
    let doc = &role["Role"]["AssumeRolePolicyDocument"];
    assert_eq!(
        doc["Statement"][0]["Action"],
        serde_json::json!(["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]),
        "{doc}"
    );
    // The example, from the script's comments.
    let example: String = script
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .collect::<Vec<_>>()
        .join("\n");
    let example: Value = serde_json::from_str(&example).unwrap();
    assert_eq!(
        example["Statement"][0]["Resource"],
        "arn:aws:s3:::my-bucket/${aws:PrincipalTag/fake_app}/*"
    );
    let put = format!(
        "aws iam put-role-policy --role-name my-fly-app --policy-name by-tag --policy-document '{example}'"
    );
    aws.run_script(&put);
    let stored = aws.json(&[
        "iam",
        "get-role-policy",
        "--role-name",
        "my-fly-app",
        "--policy-name",
        "by-tag",
    ]);
    assert_eq!(stored["PolicyDocument"], example, "{stored}");
}

/// `aws check-trust-policy --principal-tags`: a live token is fetched with session tags, and
/// the statement that accepts it must allow `sts:TagSession`; a missing one fails, naming it
/// and the fix.
#[test]
fn check_trust_policy_with_principal_tags_requires_tag_session() {
    let fly = crate::support::acme_web();
    let sock = fly.socket_path().to_str().unwrap();
    let (dir, untagged) = setup_policy();
    let check = |policy: &str| {
        run(
            &[
                "aws",
                "check-trust-policy",
                policy,
                "--principal-tags",
                "--socket",
                sock,
            ],
            &[],
        )
    };
    let out = check(&untagged);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert_contains_all(
        &stdout(&out),
        &[
            "FAIL Action [\"sts:AssumeRoleWithWebIdentity\"] includes sts:TagSession (session tags asked for, --principal-tags; the token carries fake_app=web, fake_org=acme, fake_region=ord (transitive: fake_org))",
            "add it to this statement: \"Action\": [\"sts:AssumeRoleWithWebIdentity\", \"sts:TagSession\"] (fly-oidc aws setup --principal-tags prints it)",
            "ok   StringLike oidc.fly.io/acme:sub",
        ],
    );
    assert!(
        stderr(&out).contains("fix the FAIL lines above"),
        "{}",
        stderr(&out)
    );
    let asked = fly.requests().pop().unwrap();
    assert!(asked.aws_principal_tags);
    assert_eq!(asked.audience.as_deref(), Some("sts.amazonaws.com"));
    // The same policy without tags is fine.
    let out = run(
        &["aws", "check-trust-policy", &untagged, "--socket", sock],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(!fly.requests().pop().unwrap().aws_principal_tags);

    // What `aws setup --principal-tags` prints passes.
    let mut args = AWS_SETUP.to_vec();
    args.extend([
        "--principal-tags",
        "--account-id",
        ACCOUNT,
        "--format",
        "json",
    ]);
    args.extend(["--socket", sock]);
    let out = run(&args, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let trust = write(dir.path(), "trust.json", &stdout(&out));
    // The command the docs show, on the fake's socket.
    let documented = "aws check-trust-policy trust.json --principal-tags";
    let mut args: Vec<&str> = documented
        .split(' ')
        .map(|w| if w == "trust.json" { trust.as_str() } else { w })
        .collect();
    args.extend(["--socket", sock]);
    expect(
        &run(&args, &[]),
        0,
        stdout,
        "ok   Action [\"sts:AssumeRoleWithWebIdentity\", \"sts:TagSession\"] includes sts:TagSession",
    );
}

#[test]
fn aws_setup_refuses_personal_and_needs_an_org() {
    let out = cmd("aws setup --role-name r --org personal --app web", &[]);
    expect(
        &out,
        2,
        stderr,
        "personal org's issuer is https://oidc.fly.io/<",
    );
    let out = cmd("aws setup --role-name r", &[]);
    expect(&out, 2, stderr, "--org");
    // On a Machine: org and app from the token.
    let fly = crate::support::acme_web();
    let out = cmd(
        "aws setup --role-name r --format json --account-id",
        &[ACCOUNT, "--socket", fly.socket_path().to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let policy: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        policy["Statement"][0]["Condition"]["StringLike"]["oidc.fly.io/acme:sub"],
        "acme:web:*"
    );
}

// ---------------------------------------------------------------- gcp setup

/// Run `script` with a `gcloud` that records each invocation's exit status and stderr, then
/// return them. gcloud without an account fails with 1 at authentication after parsing; an
/// argument error is exit 2. Each `describe` then "finds nothing" (so the create runs), every
/// other command "succeeds".
fn gcloud_statuses(script: &str) -> Vec<(String, i32, String)> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let wrapper = dir.path().join("bin");
    std::fs::create_dir(&wrapper).unwrap();
    let gcloud = wrapper.join("gcloud");
    std::fs::write(
        &gcloud,
        format!(
            "#!/bin/sh\nerr=$(/usr/bin/gcloud \"$@\" 2>&1 >/dev/null); rc=$?\nprintf '%s\\t%s\\t%s\\n' \"$*\" \"$rc\" \"$(printf '%s' \"$err\" | tr '\\n' ' ')\" >> {}\ncase \"$*\" in *' describe '*) exit 1;; esac\nexit 0\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gcloud, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("gcloud-config");
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", wrapper.display()))
        .env("HOME", dir.path())
        .env("CLOUDSDK_CONFIG", &config)
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_CORE_CHECK_GCE_METADATA", "false")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            let args = parts.next().unwrap_or_default().to_owned();
            let rc = parts.next().unwrap_or_default().parse().unwrap();
            (args, rc, parts.next().unwrap_or_default().to_owned())
        })
        .collect()
}

fn hcl_parses(text: &str) -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import sys, hcl2; hcl2.loads(sys.stdin.read())"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(stderr(&out))
    }
}

fn have_hcl2() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import hcl2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(!fly_oidc_tests::in_ci(), "python-hcl2 is required in CI");
        eprintln!("SKIPPED: python-hcl2 is not installed (scripts/python-tools.sh installs it)");
    }
    ok
}

const GCP_SETUP: &[&str] = &[
    "gcp",
    "setup",
    "--project-number",
    "123456789012",
    "--project",
    "my-proj-1",
    "--pool",
    "fly-pool",
    "--provider",
    "acme-web",
    "--org",
    "acme",
    "--app",
    "web",
    "--service-account",
    "reader@my-proj-1.iam.gserviceaccount.com",
];

#[test]
fn gcp_setup_commands_parse_in_gcloud_without_credentials() {
    if !fly_oidc_tests::require_tool("/usr/bin/gcloud") {
        return;
    }
    let out = run(GCP_SETUP, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let script = stdout(&out);
    assert!(script.contains("--issuer-uri=https://oidc.fly.io/acme"));
    assert!(script.contains("principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/fly-pool/attribute.app/web"));
    assert!(script.contains("gcp credential-config --provider projects/123456789012/locations/global/workloadIdentityPools/fly-pool/providers/acme-web"));
    let statuses = gcloud_statuses(&script);
    // describe + create for the pool and the provider, and the binding.
    assert_eq!(statuses.len(), 5, "{statuses:#?}");
    for (args, rc, err) in &statuses {
        assert_eq!(*rc, 1, "gcloud {args}: {err}");
        assert!(
            err.contains("You do not currently have an active account selected"),
            "gcloud {args} failed at parsing, not at auth: {err}"
        );
    }
    // A broken flag is caught the same way (the check can fail).
    let broken = script.replace("--issuer-uri=", "--issuer-url=");
    let statuses = gcloud_statuses(&broken);
    assert!(
        statuses
            .iter()
            .any(|(_, rc, err)| *rc == 2 && err.contains("unrecognized arguments")),
        "{statuses:#?}"
    );
}

#[test]
fn gcp_and_aws_terraform_parse_as_hcl() {
    if !have_hcl2() {
        return;
    }
    let mut args = GCP_SETUP.to_vec();
    args.extend(["--format", "terraform"]);
    let out = run(&args, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tf = stdout(&out);
    hcl_parses(&tf).unwrap();
    assert!(tf.contains("issuer_uri = \"https://oidc.fly.io/acme\""));
    assert!(tf.contains("roles/iam.workloadIdentityUser"));
    let mut args = AWS_SETUP.to_vec();
    args.extend(["--format", "terraform", "--max-session-duration", "7200"]);
    let out = run(&args, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    hcl_parses(&stdout(&out)).unwrap();
    assert!(
        hcl_parses("resource \"x\" {").is_err(),
        "the parser can fail"
    );
}

// ---------------------------------------------------------------- gcp check-condition

fn condition_of_gcp_setup() -> String {
    let script = stdout(&run(GCP_SETUP, &[]));
    let line = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("--attribute-condition='"))
        .unwrap();
    line.trim_end_matches('\'').to_owned()
}

#[test]
fn check_condition_accepts_and_rejects_as_cel_does() {
    let condition = condition_of_gcp_setup();
    assert_eq!(condition, "assertion.sub.startsWith(\"acme:web:\")");
    let check = |expr: &str, extra: &[&str]| {
        let mut args = vec!["gcp", "check-condition", expr];
        args.extend_from_slice(extra);
        run(&args, &[])
    };
    let web = ["--org", "acme", "--app", "web", "--machine", "m1"];
    let out = check(&condition, &web);
    expect(&out, 0, stdout, "assertion.sub = \"acme:web:m1\"");
    let out = check(&condition, &["--org", "acme", "--app", "api"]);
    expect(&out, 1, stdout, "rejected: the condition is false");

    // The mapping feeds attribute.* and google.*.
    assert_eq!(
        code(&check(
            "attribute.app == 'web' && attribute.org == 'acme'",
            &web
        )),
        0
    );
    assert_eq!(code(&check("google.subject == 'acme:web:m1'", &web)), 0);
    assert_eq!(code(&check("attribute.app in ['api', 'jobs']", &web)), 1);
    let custom = check(
        "attribute.repo == 'web'",
        &[
            &web[..],
            &[
                "--attribute-mapping",
                "google.subject=assertion.sub,attribute.repo=assertion.app_name",
            ],
        ]
        .concat(),
    );
    assert_eq!(code(&custom), 0, "{}", stderr(&custom));
    // An attribute the mapping does not define: CEL reports no such key, Google rejects.
    let out = check("attribute.team == 'x'", &web);
    expect(&out, 1, stdout, "attribute.team = null (absent");
    // Not a bool: rejected.
    assert_eq!(code(&check("assertion.sub", &web)), 1);

    // Malformed expression or mapping: 2. No token: 3.
    let out = check("assertion.sub ==", &web);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = check(
        "true",
        &[
            &web[..],
            &["--attribute-mapping", "attribute.app=assertion.app_name"],
        ]
        .concat(),
    );
    expect(&out, 2, stderr, "google.subject");
    let out = check("true", &["--socket", "/nonexistent/sock"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
}

// ---------------------------------------------------------------- doctor

struct World {
    fly: FakeFlyApi,
    sts: FakeSts,
    google: FakeGoogle,
}

fn world(
    sts: impl FnOnce(
        fly_oidc_testkit::aws_sts::FakeStsBuilder,
        &FakeFlyApi,
    ) -> fly_oidc_testkit::aws_sts::FakeStsBuilder,
    google: impl FnOnce(
        fly_oidc_testkit::google::FakeGoogleBuilder,
    ) -> fly_oidc_testkit::google::FakeGoogleBuilder,
) -> World {
    let fly = crate::support::acme_web();
    let sts_builder = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .audience("sts.amazonaws.com")
        .subject("acme:web:*");
    let sts = sts(sts_builder, &fly).start_blocking().unwrap();
    let google = google(FakeGoogle::builder(&fly).service_account(SA))
        .start_blocking()
        .unwrap();
    World { fly, sts, google }
}

impl World {
    /// Each doctor setting of this world: its flag, its variable and its value.
    fn settings(&self) -> [(&'static str, &'static str, String); 6] {
        let provider = self.google.provider().to_owned();
        [
            ("--aws-role-arn", "AWS_ROLE_ARN", ROLE.to_owned()),
            ("--aws-sts-endpoint", "AWS_ENDPOINT_URL_STS", self.sts.url()),
            ("--gcp-provider", "FLY_OIDC_GCP_PROVIDER", provider),
            (
                "--gcp-service-account",
                "FLY_OIDC_GCP_SERVICE_ACCOUNT",
                SA.into(),
            ),
            (
                "--gcp-sts-url",
                "FLY_OIDC_GCP_STS_URL",
                self.google.sts_url(),
            ),
            (
                "--gcp-iam-url",
                "FLY_OIDC_GCP_IAM_URL",
                self.google.iam_url(),
            ),
        ]
    }

    fn doctor(&self, extra: &[&str]) -> (Output, Value) {
        let discovery = format!("{}/.well-known/openid-configuration", self.fly.url());
        let settings = self.settings();
        let defaults = std::iter::once(("--discovery-url", discovery.as_str())).chain(
            settings
                .iter()
                .map(|(flag, _, value)| (*flag, value.as_str())),
        );
        let mut args = vec![
            "doctor",
            "--json",
            "--socket",
            self.fly.socket_path().to_str().unwrap(),
        ];
        // A flag in `extra` replaces its default.
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let out = run(&args, &[]);
        let json: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}): {}", stdout(&out)));
        Secrets::of_fly(&self.fly)
            .google(&self.google)
            .assert_absent_from_output(&out);
        (out, json)
    }
}

/// The names of the failing steps; every step has every key.
fn failing(json: &Value) -> Vec<String> {
    let steps = json["steps"].as_array().unwrap();
    for step in steps {
        for key in ["name", "ok", "detail", "fix"] {
            assert!(step.get(key).is_some(), "step without {key}: {step}");
        }
        assert_eq!(step["fix"].is_null(), step["ok"] == true, "{step}");
    }
    steps
        .iter()
        .filter(|s| s["ok"] == false)
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The names of the steps, in order.
fn step_names(json: &Value) -> Vec<&str> {
    let steps = json["steps"].as_array().unwrap();
    steps.iter().map(|s| s["name"].as_str().unwrap()).collect()
}

/// The steps of a doctor run in a world with both clouds: the token's, `aws` (the AWS
/// ones), then Google's.
fn world_steps(aws: &[String]) -> Vec<String> {
    let mut names: Vec<String> = ["token source", "token", "signature", "clock skew"]
        .map(String::from)
        .to_vec();
    names.extend_from_slice(aws);
    names.extend(["google exchange", "google impersonation"].map(String::from));
    names
}

fn step<'a>(json: &'a Value, prefix: &str) -> &'a Value {
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no step {prefix}: {json}"))
}

#[test]
fn doctor_passes_every_step_when_all_is_right() {
    let w = world(|b, _| b, |b| b);
    let (out, json) = w.doctor(&[]);
    assert_eq!(code(&out), 0, "{json:#}");
    assert_eq!(json["ok"], true);
    assert_eq!(
        step_names(&json),
        world_steps(&[format!("aws role {ROLE}")])
    );
    assert!(failing(&json).is_empty());
    // The text form: one line per step.
    let text = cmd(
        "doctor --socket",
        &[w.fly.socket_path().to_str().unwrap(), "--offline"],
    );
    expect(&text, 0, stdout, "ok   signature: skipped (--offline)");
    // No role and no provider: the summary says no cloud was checked, and how to name one.
    expect(
        &text,
        0,
        stdout,
        "all 4 steps passed, but no cloud was checked: configure an AWS role (--aws-role-arn or AWS_ROLE_ARN) or a Google provider (--gcp-provider or FLY_OIDC_GCP_PROVIDER)",
    );
    let full = cmd(
        "doctor --socket",
        &[
            w.fly.socket_path().to_str().unwrap(),
            "--offline",
            "--aws-role-arn",
            ROLE,
            "--aws-sts-endpoint",
            &w.sts.url(),
        ],
    );
    expect(&full, 0, stdout, "all 5 steps passed\n");
}

/// `doctor --aws-principal-tags`: the role's step asks for session tags; a trust policy
/// without `sts:TagSession` fails it, the detail and the fix naming sts:TagSession.
#[test]
fn doctor_with_aws_principal_tags_names_a_missing_tag_session() {
    let refused = world(|b, _| b, |b| b);
    let (out, json) = refused.doctor(&["--aws-principal-tags"]);
    assert_eq!(code(&out), 1, "{json:#}");
    assert_eq!(failing(&json), [format!("aws role {ROLE}")]);
    let role = step(&json, "aws role");
    assert_contains_all(
        role["detail"].as_str().unwrap(),
        &[
            "AccessDenied",
            "session tags were asked for (--aws-principal-tags",
            "fake_app=web",
            "must also allow sts:TagSession",
        ],
    );
    assert_contains_all(
        role["fix"].as_str().unwrap(),
        &[
            "must also allow sts:TagSession",
            "fly-oidc aws check-trust-policy trust.json --principal-tags",
            "fly-oidc aws setup --principal-tags",
        ],
    );
    assert!(refused.sts.sessions().is_empty());
    // Without the flag, the same role passes: the tags were the cause.
    let (out, json) = refused.doctor(&[]);
    assert_eq!(code(&out), 0, "{json:#}");

    let allowed = world(|b, _| b.tag_session(true), |b| b);
    // The command the docs show (the role and endpoints as the world gives them).
    let command = "doctor --aws-principal-tags";
    let (out, json) = allowed.doctor(&command.split(' ').collect::<Vec<_>>()[1..]);
    assert_eq!(code(&out), 0, "{json:#}");
    let detail = step(&json, "aws role")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("(audience sts.amazonaws.com, with session tags)"),
        "{detail}"
    );
    let sessions = allowed.sts.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session_tags["fake_app"], "web");
}

/// Doctor takes the cloud flags of `exec`/`serve` (one `CloudOptions`): a valid session name,
/// scope and Google audience reach the providers and every step passes; a session name the
/// AWS provider refuses fails the role's step, named by its flag.
#[test]
fn doctor_takes_the_session_name_scope_and_audience_flags_of_exec() {
    let w = world(|b, _| b, |b| b);
    let audience = format!("https://iam.googleapis.com/{}", w.google.provider());
    let (out, json) = w.doctor(&[
        "--aws-session-name",
        "doctor-check",
        "--gcp-scope",
        "https://www.googleapis.com/auth/cloud-platform",
        "--gcp-audience",
        &audience,
    ]);
    assert_eq!(code(&out), 0, "{json:#}");
    assert!(failing(&json).is_empty(), "{json:#}");
    // An invalid setting of either cloud fails its step, named by its own flag (the Google
    // audience by --gcp-audience, not by AWS's flag of the same builder method).
    for (flags, failing_step, named, not_named) in [
        (
            ["--aws-session-name", "not a session name"],
            "aws role",
            "--aws-session-name",
            "--gcp-",
        ),
        (
            ["--gcp-audience", ""],
            "google exchange",
            "--gcp-audience",
            "--aws-audience",
        ),
    ] {
        let (out, json) = w.doctor(&flags);
        assert_eq!(code(&out), 2, "an invalid setting exits 2: {json:#}");
        let detail = step(&json, failing_step)["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains("invalid setting"), "{detail}");
        assert!(detail.contains(named), "{detail}");
        assert!(!detail.contains(not_named), "{detail}");
    }
    // Google STS not answering: a transient failure, whose fix is to try again, not the
    // provider's trust settings.
    let (out, json) = w.doctor(&["--gcp-sts-url", "http://127.0.0.1:9/v1/token"]);
    assert_eq!(code(&out), 1, "{json:#}");
    let fix = step(&json, "google exchange")["fix"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fix.starts_with("run doctor again shortly"), "{fix}");
    assert!(!fix.contains("compare the provider"), "{fix}");
    // Another server at the STS URL (its 404 is no OAuth error): the fix is the URL.
    let not_google = format!("{}/v1/token", w.fly.url());
    let (out, json) = w.doctor(&["--gcp-sts-url", &not_google]);
    assert_eq!(code(&out), 1, "{json:#}");
    let exchange = step(&json, "google exchange");
    let (detail, fix) = (
        exchange["detail"].as_str().unwrap(),
        exchange["fix"].as_str().unwrap(),
    );
    assert!(
        detail.contains("--gcp-sts-url") && fix.starts_with("check the URL setting"),
        "{json:#}"
    );
    // An audience Google's provider does not accept fails the exchange: the flag is used.
    let (out, json) = w.doctor(&["--gcp-audience", "https://example.com/other"]);
    assert_ne!(code(&out), 0, "{json:#}");
    assert!(
        failing(&json).contains(&"google exchange".to_owned()),
        "{json:#}"
    );
}

/// No role or provider flag: doctor diagnoses the role and the Google provider of the
/// environment (`AWS_ROLE_ARN`, `FLY_OIDC_GCP_PROVIDER`, ...), as the providers read them; and
/// without them, AWS and Google are not configured (no step), not failing.
#[test]
fn doctor_diagnoses_the_role_and_provider_the_environment_names() {
    let w = world(|b, _| b, |b| b);
    let settings = w.settings();
    let env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(_, var, v)| (*var, v.as_str()))
        .collect();
    let sock = w.fly.socket_path().to_str().unwrap();
    let args = ["doctor", "--json", "--offline", "--socket", sock];
    let out = run(&args, &env);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(code(&out), 0, "{json:#}");
    let role = step(&json, "aws role");
    assert_eq!(role["name"], format!("aws role {ROLE}"), "{json:#}");
    assert_eq!(role["ok"], true, "{json:#}");
    let exchange = step(&json, "google exchange")["detail"].as_str().unwrap();
    assert!(exchange.contains(w.google.provider()), "{exchange}");
    assert_eq!(step(&json, "google impersonation")["ok"], true);
    assert_eq!(
        w.sts.request_count(),
        1,
        "the role of AWS_ROLE_ARN was assumed"
    );

    // An invalid service account from the variable is named as the variable (it was once
    // named as the flag, which the command line did not hold).
    let mut bad_sa = env.clone();
    bad_sa.retain(|(var, _)| *var != "FLY_OIDC_GCP_SERVICE_ACCOUNT");
    bad_sa.push(("FLY_OIDC_GCP_SERVICE_ACCOUNT", "bad"));
    let out = run(&args, &bad_sa);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(code(&out), 2, "{json:#}");
    let detail = step(&json, "google impersonation")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_contains_all(&detail, &["\"bad\"", "(from FLY_OIDC_GCP_SERVICE_ACCOUNT)"]);
    assert_contains_none(&detail, &["--gcp-service-account"]);

    let out = run(&args, &[]);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(code(&out), 0, "{json:#}");
    assert_eq!(json["steps"].as_array().unwrap().len(), 4, "{json:#}");
}

/// Each misconfiguration the fakes can produce, and the step doctor must name.
#[test]
fn doctor_names_the_broken_step_for_each_misconfiguration() {
    type StsEdit = fn(
        fly_oidc_testkit::aws_sts::FakeStsBuilder,
        &FakeFlyApi,
    ) -> fly_oidc_testkit::aws_sts::FakeStsBuilder;
    type GoogleEdit = fn(
        fly_oidc_testkit::google::FakeGoogleBuilder,
    ) -> fly_oidc_testkit::google::FakeGoogleBuilder;
    let keep_sts: StsEdit = |b, _| b;
    let keep_google: GoogleEdit = |b| b;
    /// What is wrong, how the fakes are set up, faults queued on the fake STS, extra flags,
    /// the failing step, facts it names, and what its fix says ("": not checked).
    type Case<'a> = (
        &'a str,
        StsEdit,
        GoogleEdit,
        Vec<Fault>,
        Vec<&'a str>,
        &'a str,
        &'a [&'a str],
        &'a str,
    );
    let key = Fault::verification_key_unavailable();
    let cases: Vec<Case> = vec![
        (
            "STS trusts another issuer",
            |b, fly| b.trust("https://oidc.fly.io/other", fly.jwks()),
            keep_google,
            vec![],
            vec![],
            "aws role",
            &["InvalidIdentityToken"],
            "create the IAM OpenID Connect provider for the token's issuer",
        ),
        (
            "STS OIDC provider lacks the audience",
            |b, _| b.audience("other-audience"),
            keep_google,
            vec![],
            vec![],
            "aws role",
            &[
                "sts.amazonaws.com",
                "set by --aws-audience or FLY_OIDC_AUDIENCE",
            ],
            "add the audience sts.amazonaws.com to the IAM OpenID Connect provider's client IDs",
        ),
        (
            "trust policy sub for another app",
            |b, _| b.subject("acme:api:*"),
            keep_google,
            vec![],
            vec![],
            "aws role",
            &["acme:web:"],
            "fly-oidc aws check-trust-policy",
        ),
        (
            "duration above the role's MaxSessionDuration",
            |b, _| b.max_session_duration(std::time::Duration::from_secs(3600)),
            keep_google,
            vec![],
            vec!["--aws-duration-seconds", "7200"],
            "aws role",
            &[
                "invalid setting",
                "ValidationError",
                "session duration 7200 s",
                "MaxSessionDuration",
                "(from --aws-duration-seconds)",
            ],
            "fix the setting named above",
        ),
        (
            "STS cannot fetch the issuer's keys",
            keep_sts,
            keep_google,
            vec![key.clone(), key.clone(), key],
            vec![],
            "aws role",
            &[
                "Couldn't retrieve verification key",
                "after 3 attempts",
                "probably transient",
            ],
            "run doctor again shortly",
        ),
        (
            "malformed role ARN",
            keep_sts,
            keep_google,
            vec![],
            vec!["--aws-role-arn", "not-an-arn"],
            "aws role not-an-arn",
            &["invalid setting", "not-an-arn"],
            "",
        ),
        (
            "Google provider for another issuer",
            keep_sts,
            |b| b.issuer("https://oidc.fly.io/other"),
            vec![],
            vec![],
            "google exchange",
            &["invalid_grant"],
            "",
        ),
        (
            "Google allowed audiences",
            keep_sts,
            |b| b.allowed_audiences(["https://example.com/other"]),
            vec![],
            vec![],
            "google exchange",
            &["audience"],
            "",
        ),
        (
            "Google attribute condition",
            keep_sts,
            |b| b.attribute_condition(|_| false),
            vec![],
            vec![],
            "google exchange",
            &["attribute condition"],
            "",
        ),
        (
            "Fly token expired by Google's clock",
            keep_sts,
            |b| b.clock(|| SystemTimeSource.now() + std::time::Duration::from_secs(4 * 3600)),
            vec![],
            vec![],
            "google exchange",
            &["ID Token has expired", "had expired by Google's clock"],
            "",
        ),
        (
            "Google provider missing",
            keep_sts,
            keep_google,
            vec![],
            vec![
                "--gcp-provider",
                "projects/1/locations/global/workloadIdentityPools/p/providers/missing",
            ],
            "google exchange",
            // Named by doctor's own flag, not `gcp`'s `--provider`.
            &[
                "invalid_target",
                "providers/missing",
                "(--gcp-provider or FLY_OIDC_GCP_PROVIDER)",
            ],
            "check the project number, pool and provider ids",
        ),
        (
            "service account without workloadIdentityUser",
            keep_sts,
            keep_google,
            vec![],
            vec![
                "--gcp-service-account",
                "other@my-proj-1.iam.gserviceaccount.com",
            ],
            "google impersonation",
            &["getAccessToken", "other@my-proj-1.iam.gserviceaccount.com"],
            "",
        ),
        (
            "malformed Google provider",
            keep_sts,
            keep_google,
            vec![],
            vec!["--gcp-provider", "fly-pool"],
            "google exchange",
            &["invalid setting", "--gcp-provider"],
            "",
        ),
        (
            "keys unreachable",
            keep_sts,
            keep_google,
            vec![],
            vec![
                "--discovery-url",
                "http://127.0.0.1:9/.well-known/openid-configuration",
            ],
            "signature",
            &["could not fetch the issuer's keys"],
            "",
        ),
    ];
    let mut named = 0;
    for (what, sts, google, faults, extra, expected, facts, fix) in cases {
        let w = world(sts, google);
        w.sts.script(faults);
        let (out, json) = w.doctor(&extra);
        // An invalid setting (a duration STS refused) exits 2, as in every command.
        let invalid = json["steps"].as_array().unwrap().iter().any(|s| {
            s["ok"] == false && s["detail"].as_str().unwrap().starts_with("invalid setting")
        });
        assert_eq!(code(&out), if invalid { 2 } else { 1 }, "{what}: {json:#}");
        assert_eq!(json["ok"], false, "{what}");
        let failed = failing(&json);
        assert!(
            failed.len() == 1 && failed[0].starts_with(expected),
            "{what}: {json:#}"
        );
        let s = step(&json, expected);
        let text = format!("{} {}", s["detail"], s["fix"]);
        for fact in facts {
            assert!(text.contains(fact), "{what}: {fact:?} not in {text}");
        }
        // Each AWS step names its own fix; the trust policy's only for AccessDenied.
        let shown_fix = s["fix"].as_str().unwrap();
        assert!(
            shown_fix.contains(fix),
            "{what}: {fix:?} not in {shown_fix}"
        );
        let trust = fix.contains("check-trust-policy");
        if !trust {
            assert!(!shown_fix.contains("trust policy"), "{what}: {shown_fix}");
            assert!(
                !shown_fix.contains("check-trust-policy"),
                "{what}: {shown_fix}"
            );
        }
        named += 1;
    }

    // Token problems stop the chain at the token step.
    let fly = crate::support::acme_web();
    let out = cmd(
        "doctor --json --socket /nonexistent/fly-oidc-test/sock",
        &[],
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        code(&out),
        2,
        "a socket named by --socket: an invalid setting"
    );
    // A socket that does not exist fails the token-source step, with the fix.
    assert_eq!(failing(&json), ["token source"], "{json:#}");
    let source = step(&json, "token source");
    let detail = source["detail"].as_str().unwrap();
    assert!(
        detail.contains("/nonexistent/fly-oidc-test/sock does not exist"),
        "{json:#}"
    );
    assert!(
        source["fix"].as_str().unwrap().contains("check the path"),
        "{json:#}"
    );
    named += 1;
    // A token file that is a directory: an invalid setting named by its flag (exit 2).
    let dir = tempfile::tempdir().unwrap();
    let args = format!(
        "doctor --json --offline --token-file {}",
        dir.path().display()
    );
    let out = cmd(&args, &[]);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(code(&out), 2, "{json:#}");
    assert_eq!(failing(&json), ["token"], "{json:#}");
    let detail = json["steps"][1]["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("(from --token-file)"), "{detail}");
    named += 1;
    let out = run_on_tampered_token(&fly, &["doctor", "--json"]);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(failing(&json), ["signature"], "{json:#}");
    named += 1;
    let out = cmd("doctor --json --api-url ftp://x", &[]);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(code(&out), 2, "an invalid setting");
    assert_eq!(failing(&json), ["token source"], "{json:#}");
    assert!(
        step(&json, "token source")["detail"]
            .as_str()
            .unwrap()
            .contains("--api-url"),
        "{json:#}"
    );
    named += 1;
    println!("{named} misconfigurations named by doctor");
}

// ---------------------------------------------------------------- docs/ERRORS.md rows

/// `aws credential-process` against a misconfigured fake STS: the error line.
fn aws_error(sts: StsEditFn) -> String {
    aws_error_with(sts, &[], &[], &[], 1)
}

/// [`aws_error`] with `faults` queued on the fake STS, `extra` flags and `env`, exiting `exit`.
fn aws_error_with(
    sts: StsEditFn,
    faults: &[Fault],
    extra: &[&str],
    env: &[(&str, &str)],
    exit: i32,
) -> String {
    let w = world(sts, |b| b);
    w.sts.script(faults.iter().cloned());
    let endpoint = w.sts.url();
    let mut args = crate::support::credential_process_no_cache(ROLE, &endpoint);
    args.extend(["--socket", w.fly.socket_path().to_str().unwrap()]);
    args.extend_from_slice(extra);
    let out = run(&args, env);
    assert_eq!(code(&out), exit, "{}", stderr(&out));
    Secrets::of_fly(&w.fly).assert_absent_from_output(&out);
    stderr(&out)
}

/// `gcp access-token` against a misconfigured fake Google: the error line.
fn gcp_error(google: GoogleEditFn, provider: Option<&str>, service_account: &str) -> String {
    gcp_error_in(world(|b, _| b, google), provider, service_account)
}

fn gcp_error_in(w: World, provider: Option<&str>, service_account: &str) -> String {
    let (sts_url, iam_url) = (w.google.sts_url(), w.google.iam_url());
    let provider = provider.unwrap_or(w.google.provider()).to_owned();
    let out = cmd(
        "gcp access-token --provider",
        &[
            &provider,
            "--service-account",
            service_account,
            "--sts-url",
            &sts_url,
            "--iam-url",
            &iam_url,
            "--socket",
            w.fly.socket_path().to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    Secrets::of_fly(&w.fly)
        .google(&w.google)
        .assert_absent_from_output(&out);
    stderr(&out)
}

type StsEditFn = fn(
    fly_oidc_testkit::aws_sts::FakeStsBuilder,
    &FakeFlyApi,
) -> fly_oidc_testkit::aws_sts::FakeStsBuilder;
type GoogleEditFn =
    fn(fly_oidc_testkit::google::FakeGoogleBuilder) -> fly_oidc_testkit::google::FakeGoogleBuilder;

/// Settings no AWS trust rejection is about.
const NOT_TRUST: &[&str] = &[
    "duration",
    "DURATION",
    "--policy",
    "FLY_OIDC_AWS_POLICY",
    "region",
    "REGION",
    "--sts-endpoint",
];

/// The token facts every AWS trust row names (the fake Fly API mints for acme:web).
const TOKEN_FACTS: &[&str] = &[
    ROLE,
    "iss https://oidc.fly.io/acme",
    "aud sts.amazonaws.com",
    "sub acme:web:",
];

/// An AWS trust row: the message names the token facts and `says`, and neither a setting
/// unrelated to trust nor `not` (the other causes').
fn assert_aws_row(m: &str, says: &[&str], not: &[&str]) {
    assert_contains_all(m, TOKEN_FACTS);
    assert_contains_all(m, says);
    assert_contains_none(m, NOT_TRUST);
    assert_contains_none(m, not);
}

#[test]
fn errors_table_aws_no_oidc_provider_names_the_tokens_issuer() {
    let m = aws_error(|b, fly| b.trust("https://oidc.fly.io/other", fly.jwks()));
    assert_aws_row(
        &m,
        &[
            "InvalidIdentityToken: No OpenIDConnect provider found in your account for https://oidc.fly.io/acme",
            "no IAM OpenID Connect provider for the token's issuer https://oidc.fly.io/acme",
            "fly-oidc aws setup",
        ],
        &["trust policy", "FLY_OIDC_AUDIENCE"],
    );
}

#[test]
fn errors_table_aws_incorrect_audience_names_the_audience_and_its_setting() {
    let m = aws_error(|b, _| b.audience("other-audience"));
    assert_aws_row(
        &m,
        &[
            "InvalidIdentityToken: Incorrect token audience",
            "does not list the audience sts.amazonaws.com",
            // Named by its flag in the binary, not as a library user sets it.
            "set by --audience or FLY_OIDC_AUDIENCE",
            "add-client-id-to-open-id-connect-provider",
        ],
        &["trust policy", "Builder::"],
    );
}

/// The commands the refusal suggests carry the audience sent, shell-quoted, so they run as
/// pasted whatever it holds.
#[test]
fn errors_table_aws_incorrect_audience_quotes_the_audience_in_its_commands() {
    let m = aws_error_with(
        |b, _| b.audience("other-audience"),
        &[],
        &["--audience", "it's $HOME"],
        &[],
        1,
    );
    assert_contains_all(
        &m,
        &[
            "add-client-id-to-open-id-connect-provider --client-id 'it'\\''s $HOME' ...",
            "fly-oidc aws setup --audience 'it'\\''s $HOME'",
        ],
    );
}

#[test]
fn exec_and_doctor_name_settings_by_their_own_per_cloud_flags() {
    // `exec` has --aws-audience, not `aws`'s --audience.
    let w = world(|b, _| b.audience("other-audience"), |b| b);
    let endpoint = w.sts.url();
    let socket = w.fly.socket_path().to_str().unwrap().to_owned();
    let out = run(
        &[
            "exec",
            "--aws-role-arn",
            ROLE,
            "--aws-sts-endpoint",
            &endpoint,
            "--socket",
            &socket,
            "--",
            "true",
        ],
        &[],
    );
    let all = stderr(&out);
    assert_eq!(code(&out), 1, "{all}");
    let err = all
        .lines()
        .find(|l| l.starts_with("fly-oidc: error:"))
        .unwrap_or_else(|| panic!("no error line in {all}"))
        .to_owned();
    assert_contains_all(
        &err,
        &[
            "Incorrect token audience",
            "set by --aws-audience or FLY_OIDC_AUDIENCE",
        ],
    );
    assert_contains_none(&err, &["set by --audience", "Builder::"]);
    Secrets::of_fly(&w.fly).assert_absent_from_output(&out);
}

#[test]
fn errors_table_aws_access_denied_names_the_trust_policy_keys_and_the_next_step() {
    let m = aws_error(|b, _| b.subject("acme:api:*"));
    assert_aws_row(
        &m,
        &[
            "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity",
            "\"oidc.fly.io/acme:aud\" the aud sts.amazonaws.com",
            "\"oidc.fly.io/acme:sub\" the sub acme:web:",
            "fly-oidc aws check-trust-policy",
        ],
        &["OpenID Connect provider", "FLY_OIDC_AUDIENCE"],
    );
}

#[test]
fn errors_table_aws_verification_key_is_retried_then_called_transient() {
    let key = Fault::verification_key_unavailable();
    let m = aws_error_with(|b, _| b, &[key.clone(), key.clone(), key], &[], &[], 1);
    assert_aws_row(
        &m,
        &[
            "InvalidIdentityToken: Couldn't retrieve verification key from your identity provider",
            "after 3 attempts",
            "probably transient",
            "https://oidc.fly.io/acme/.well-known/openid-configuration",
            "fly-oidc token --verify",
        ],
        &["trust policy", "FLY_OIDC_AUDIENCE"],
    );
}

#[test]
fn errors_table_aws_duration_above_the_roles_maximum_names_the_duration_and_its_flag() {
    let max = |b: fly_oidc_testkit::aws_sts::FakeStsBuilder, _: &FakeFlyApi| {
        b.max_session_duration(std::time::Duration::from_secs(3600))
    };
    let flag = aws_error_with(max, &[], &["--duration-seconds", "7200"], &[], 2);
    let var = aws_error_with(
        max,
        &[],
        &[],
        &[("FLY_OIDC_AWS_DURATION_SECONDS", "7200")],
        2,
    );
    for (m, setting) in [
        (&flag, "(from --duration-seconds)"),
        (&var, "(from FLY_OIDC_AWS_DURATION_SECONDS)"),
    ] {
        assert_contains_all(
            m,
            &[
                "invalid setting",
                "session duration 7200 s",
                ROLE,
                "ValidationError: The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                "ask for less, or raise the role's MaxSessionDuration",
                "--max-session-duration 7200",
                setting,
            ],
        );
        assert_contains_none(
            m,
            &[
                "trust policy",
                "FLY_OIDC_AUDIENCE",
                "region",
                "--policy",
                "Builder::",
            ],
        );
    }
}

#[test]
fn errors_table_google_rows_name_the_value_the_setting_and_the_token_fact() {
    let missing = "projects/1/locations/global/workloadIdentityPools/p/providers/missing";
    let m = gcp_error(|b| b, Some(missing), SA);
    assert_contains_all(&m, &["invalid_target", missing, "--provider"]);
    assert_contains_none(
        &m,
        &["--issuer-uri", "allowed audiences", "attribute condition"],
    );
    let m = gcp_error(|b| b.issuer("https://oidc.fly.io/other"), None, SA);
    assert_contains_all(
        &m,
        &[
            "invalid_grant",
            "does not match the expected ones",
            "https://oidc.fly.io/acme",
            "--issuer-uri",
        ],
    );
    let m = gcp_error(
        |b| b.allowed_audiences(["https://example.com/other"]),
        None,
        SA,
    );
    assert_contains_all(
        &m,
        &[
            "invalid_grant",
            "audience",
            "https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/fly-pool/providers/acme",
        ],
    );
    let m = gcp_error(|b| b.attribute_condition(|_| false), None, SA);
    assert_contains_all(
        &m,
        &[
            "unauthorized_client",
            "attribute condition",
            "sub=acme:web:",
        ],
    );
    // Google's clock is past the token's exp (the token was fresh by ours).
    let w = world(
        |b, _| b,
        |b| b.clock(|| SystemTimeSource.now() + std::time::Duration::from_secs(4 * 3600)),
    );
    let m = gcp_error_in(w, None, SA);
    assert_contains_all(
        &m,
        &[
            "invalid_grant: ID Token has expired.",
            "had expired by Google's clock",
            "iss https://oidc.fly.io/acme",
            "sub acme:web:",
            "FLY_OIDC_TOKEN_FILE",
        ],
    );
    assert_contains_none(
        &m,
        &[
            "--issuer-uri",
            "allowed audiences",
            "attribute condition",
            "--provider",
        ],
    );
    let other = "other@my-proj-1.iam.gserviceaccount.com";
    let m = gcp_error(|b| b, None, other);
    assert_contains_all(
        &m,
        &[
            "PERMISSION_DENIED",
            "getAccessToken",
            other,
            "roles/iam.workloadIdentityUser",
        ],
    );
}

// ---------------------------------------------------------------- role chaining: setup + doctor

/// The chained role of these tests, in another account than [`ROLE`] (the first role).
const CHAINED: &str = "arn:aws:iam::210987654321:role/data";

/// `aws setup --role-name data --trusted-role-arn ROLE`, then `extra`.
fn chain_setup(extra: &[&str]) -> Output {
    let mut args = vec![
        "aws",
        "setup",
        "--role-name",
        "data",
        "--trusted-role-arn",
        ROLE,
    ];
    args.extend_from_slice(extra);
    run(&args, &[])
}

/// The JSON object that a warning line of `out`'s stderr holding `marker` ends with.
fn json_in_warning(out: &Output, marker: &str) -> Value {
    let err = stderr(out);
    let line = err
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no warning with {marker:?}: {err}"));
    let at = line
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in: {line}"));
    serde_json::from_str(&line[at..]).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// `aws setup --trusted-role-arn A [--external-id X] [--principal-tags]`: the chained role's
/// trust policy (parsed) allows sts:AssumeRole, and sts:TagSession with --principal-tags, for
/// the principal {"AWS": A} alone, with a StringEquals sts:ExternalId condition only when an
/// external id is given; the first role's permission policy (a note on stderr) allows the same
/// actions on the chained role; no Fly token is read (no token source here).
#[test]
fn aws_setup_trusted_role_arn_prints_the_chained_roles_trust_policy() {
    let plain = chain_setup(&["--account-id", "210987654321", "--format", "json"]);
    assert_eq!(code(&plain), 0, "{}", stderr(&plain));
    let policy: Value = serde_json::from_str(&stdout(&plain)).unwrap();
    assert_eq!(
        policy,
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": "sts:AssumeRole",
            }]
        })
    );
    let permission = json_in_warning(&plain, "needs a permission policy");
    assert_eq!(
        permission["Statement"],
        serde_json::json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": CHAINED}])
    );
    assert!(
        stderr(&plain).contains(&format!("FLY_OIDC_AWS_CHAIN_ROLE_ARN = \"{CHAINED}\"")),
        "{}",
        stderr(&plain)
    );
    assert!(!stderr(&plain).contains("<ACCOUNT_ID>"));

    let full = chain_setup(&[
        "--external-id",
        "ext-123:/=",
        "--principal-tags",
        "--format",
        "json",
    ]);
    let statement = only_statement(&full);
    assert_eq!(statement["Principal"], serde_json::json!({"AWS": ROLE}));
    assert_eq!(
        statement["Action"],
        serde_json::json!(["sts:AssumeRole", "sts:TagSession"])
    );
    assert_eq!(
        statement["Condition"],
        serde_json::json!({"StringEquals": {"sts:ExternalId": "ext-123:/="}})
    );
    // Without --account-id, the permission policy's Resource is a placeholder, said plainly.
    let permission = json_in_warning(&full, "needs a permission policy");
    assert_eq!(
        permission["Statement"][0]["Resource"],
        "arn:aws:iam::<ACCOUNT_ID>:role/data"
    );
    assert_eq!(
        permission["Statement"][0]["Action"],
        serde_json::json!(["sts:AssumeRole", "sts:TagSession"])
    );
    assert!(
        stderr(&full)
            .contains("no --account-id: that permission policy's Resource holds <ACCOUNT_ID>"),
        "{}",
        stderr(&full)
    );
    assert!(stderr(&full).contains("FLY_OIDC_AWS_CHAIN_EXTERNAL_ID = \"ext-123:/=\""));

    // The commands: the trust policy in one quoted word, no comment with an expansion.
    let commands = chain_setup(&["--external-id", "ext-123"]);
    assert_eq!(code(&commands), 0, "{}", stderr(&commands));
    let script = stdout(&commands);
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("TRUST_POLICY='"))
        .unwrap_or_else(|| panic!("no TRUST_POLICY: {script}"));
    let policy: Value = serde_json::from_str(line.trim_end_matches('\'')).unwrap();
    assert_eq!(
        policy["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
        "ext-123"
    );
    assert!(
        script.contains("aws iam create-role --role-name 'data'"),
        "{script}"
    );
    for line in script.lines().filter(|l| l.starts_with('#')) {
        assert!(!line.contains('$'), "a comment with an expansion: {line}");
    }
    assert!(!script.contains("TagSession"), "{script}");
}

/// What `aws setup --trusted-role-arn` refuses, exit 2 naming the flag: a value that is not a
/// role ARN or an external id STS takes, an external id without a chained role, and the
/// web-identity flags, which say whose Fly tokens a role trusts (a chained role trusts the
/// first role instead).
#[test]
fn aws_setup_trusted_role_arn_refuses_bad_values_and_web_identity_flags() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--trusted-role-arn", "arn:aws:iam::1234:role/x"],
            &["--trusted-role-arn", "the account id is not 12 digits"],
        ),
        (
            &["--trusted-role-arn", "arn:aws:iam::123456789012:user/x"],
            &["--trusted-role-arn", "it is not a role"],
        ),
        (
            &["--trusted-role-arn", ROLE, "--external-id", "x"],
            &["--external-id", "2 to 1224 characters"],
        ),
        (
            &["--trusted-role-arn", ROLE, "--external-id", "has space"],
            &["--external-id", "2 to 1224 characters"],
        ),
        (
            &["--trusted-role-arn", ROLE, "--role-name", "no spaces"],
            &["--role-name"],
        ),
        (
            &["--external-id", "ext-123", "--org", "acme", "--app", "web"],
            &["--trusted-role-arn"],
        ),
        (
            &["--trusted-role-arn", ROLE, "--org", "acme"],
            &["--trusted-role-arn", "--org"],
        ),
        (
            &["--trusted-role-arn", ROLE, "--app", "web"],
            &["--trusted-role-arn", "--app"],
        ),
        (
            &["--trusted-role-arn", ROLE, "--sub", "acme:*"],
            &["--trusted-role-arn", "--sub"],
        ),
        (
            &[
                "--trusted-role-arn",
                ROLE,
                "--audience",
                "sts.amazonaws.com",
            ],
            &["--trusted-role-arn", "--audience"],
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["aws", "setup", "--role-name", "data"];
        all.extend_from_slice(args);
        // The case with a role name of its own gives it alone (clap refuses a repeated flag).
        if args.contains(&"--role-name") {
            all.drain(2..4);
        }
        let out = run(&all, &[]);
        assert_eq!(code(&out), 2, "{all:?}: {}{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).is_empty(), "{all:?}: {}", stdout(&out));
        assert_contains_all(&stderr(&out), says);
    }
}

/// The chained role's commands, run against moto with the AWS CLI: the role IAM stores has the
/// printed trust policy (principal, actions, external id); the printed next step (the first
/// role's permission policy) runs as printed, with the account the script looked up; and
/// `doctor` with the chain passes both hops against moto's STS (which implements AssumeRole).
#[test]
fn aws_setup_trusted_role_arn_commands_run_and_doctor_passes_the_chain_on_moto() {
    let Some(aws) = AwsCli::start() else { return };
    let (first, chained) = (unique("fly-first-"), unique("data-"));
    let first_arn = format!("arn:aws:iam::{ACCOUNT}:role/{first}");
    // The first role, for Fly tokens of acme/web.
    let out = cmd(
        "aws setup --org acme --app web --account-id",
        &[ACCOUNT, "--role-name", &first],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    aws.run_script(&stdout(&out));
    // The command the docs show, the names this test's.
    let out = cmd(
        "aws setup --role-name",
        &[
            &chained,
            "--trusted-role-arn",
            &first_arn,
            "--external-id",
            "my-external-id",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let script = stdout(&out);
    aws.run_script(&script);
    let printed = aws.run_script(&script); // again: the role exists
    let trusted_statement = || {
        let role = aws.json(&["iam", "get-role", "--role-name", &chained]);
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0].clone()
    };
    let statement = trusted_statement();
    assert_eq!(statement["Principal"]["AWS"], first_arn.as_str());
    assert_eq!(statement["Action"], "sts:AssumeRole");
    assert_eq!(
        statement["Condition"]["StringEquals"]["sts:ExternalId"],
        "my-external-id"
    );
    // Set up again for another first role: an existing chained role's trust policy is left as
    // it is (it may trust other roles), and the commands say what to add.
    let other = format!("arn:aws:iam::{ACCOUNT}:role/{}", unique("fly-other-"));
    let max_before =
        aws.json(&["iam", "get-role", "--role-name", &chained])["Role"]["MaxSessionDuration"]
            .clone();
    let out = cmd(
        "aws setup --role-name",
        &[
            &chained,
            "--trusted-role-arn",
            &other,
            "--max-session-duration",
            "7200",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ran = aws.bash(&stdout(&out));
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert!(
        stderr(&ran).contains(&format!("Role {chained} exists: it is left as it is")),
        "{}",
        stderr(&ran)
    );
    assert_eq!(trusted_statement(), statement, "unchanged");
    let max_after =
        aws.json(&["iam", "get-role", "--role-name", &chained])["Role"]["MaxSessionDuration"]
            .clone();
    assert_eq!(max_after, max_before, "its maximum session duration too");
    // The first role itself as the chained one: refused when the account is known, and by the
    // commands once they have looked it up; its trust policy (Fly's OIDC provider) is kept.
    let itself = [
        "--role-name",
        first.as_str(),
        "--trusted-role-arn",
        first_arn.as_str(),
    ];
    let out = cmd(
        "aws setup --account-id",
        &[&[ACCOUNT][..], &itself].concat(),
    );
    expect(&out, 2, stderr, "is the first role itself");
    // IAM role names are unique whatever their case.
    let upper = first.to_uppercase();
    let out = cmd(
        "aws setup --account-id",
        &[
            ACCOUNT,
            "--role-name",
            &upper,
            "--trusted-role-arn",
            &first_arn,
        ],
    );
    expect(&out, 2, stderr, "is the first role itself");
    let out = cmd("aws setup", &itself);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ran = aws.bash(&stdout(&out));
    assert_eq!(ran.status.code(), Some(1), "{}", stderr(&ran));
    assert!(
        stderr(&ran).contains("is the first role"),
        "{}",
        stderr(&ran)
    );
    let first_role = aws.json(&["iam", "get-role", "--role-name", &first]);
    let principal = &first_role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"];
    assert!(principal.get("Federated").is_some(), "{principal}");
    // The next step, as printed (the account looked up), run in the first role's account.
    let put = printed
        .lines()
        .find(|l| l.trim_start().starts_with("aws iam put-role-policy"))
        .unwrap_or_else(|| panic!("no put-role-policy step: {printed}"));
    assert!(!put.contains("ACCOUNT_ID"), "{put}");
    aws.run_script(put);
    let granted = aws.json(&[
        "iam",
        "get-role-policy",
        "--role-name",
        &first,
        "--policy-name",
        &format!("fly-oidc-assume-{chained}"),
    ]);
    let chained_arn = format!("arn:aws:iam::{ACCOUNT}:role/{chained}");
    assert_eq!(
        granted["PolicyDocument"]["Statement"][0]["Resource"],
        chained_arn.as_str()
    );
    assert_eq!(
        granted["PolicyDocument"]["Statement"][0]["Action"],
        "sts:AssumeRole"
    );
    assert!(
        printed.contains(&format!("FLY_OIDC_AWS_CHAIN_ROLE_ARN = \"{chained_arn}\"")),
        "{printed}"
    );

    // doctor walks both hops against moto.
    let fly = crate::support::acme_web();
    let out = run(
        &[
            "doctor",
            "--json",
            "--offline",
            "--socket",
            fly.socket_path().to_str().unwrap(),
            "--aws-role-arn",
            &first_arn,
            "--aws-sts-endpoint",
            aws.moto.endpoint(),
            "--aws-chain-role-arn",
            &chained_arn,
            "--aws-chain-external-id",
            "my-external-id",
        ],
        &[],
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(code(&out), 0, "{json:#}{}", stderr(&out));
    assert!(failing(&json).is_empty());
    let detail = step(&json, "aws chained role")["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(":assumed-role/{chained}/")),
        "{detail}"
    );
}

/// The chained role's Terraform parses as HCL, with the principal and the external id.
#[test]
fn aws_setup_trusted_role_arn_terraform_parses_as_hcl() {
    let out = chain_setup(&[
        "--external-id",
        "ext-123",
        "--principal-tags",
        "--max-session-duration",
        "7200",
        "--format",
        "terraform",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tf = stdout(&out);
    assert_contains_all(
        &tf,
        &[
            &format!("Principal = {{ AWS = \"{ROLE}\" }}"),
            "Action    = [\"sts:AssumeRole\", \"sts:TagSession\"]",
            "StringEquals = { \"sts:ExternalId\" = \"ext-123\" }",
            "max_session_duration = 7200",
        ],
    );
    if !have_hcl2() {
        return;
    }
    hcl_parses(&tf).unwrap();
}

/// A doctor world whose fake STS trusts the chained roles as `trust` says.
fn chain_world(first_tags: bool, trust: ChainTrust) -> World {
    world(|b, _| b.tag_session(first_tags).chain_trust(trust), |b| b)
}

/// `doctor --aws-chain-role-arn B [--aws-chain-external-id X]`: one step per hop, the chained
/// one after the first role's; all pass when the chained role trusts the first (with its
/// external id), the chained step showing the chained assumed-role ARN.
#[test]
fn doctor_with_a_chain_checks_each_hop() {
    let w = chain_world(
        false,
        ChainTrust::default().principal(ROLE).external_id("ext-1"),
    );
    // The command the docs show (the roles and endpoints as the world gives them).
    let command = "doctor --aws-chain-role-arn";
    let mut args: Vec<&str> = command.split(' ').skip(1).collect();
    args.extend([CHAINED, "--aws-chain-external-id", "ext-1"]);
    let (out, json) = w.doctor(&args);
    assert_eq!(code(&out), 0, "{json:#}");
    assert_eq!(
        step_names(&json),
        world_steps(&[
            format!("aws role {ROLE}"),
            format!("aws chained role {CHAINED}")
        ])
    );
    let first = step(&json, "aws role")["detail"].as_str().unwrap();
    assert!(
        first.contains("AssumeRoleWithWebIdentity succeeded")
            && first.contains("assumed-role/fly-app/"),
        "{first}"
    );
    let chained = step(&json, "aws chained role")["detail"].as_str().unwrap();
    assert_contains_all(
        chained,
        &[
            &format!("AssumeRole with the credentials of {ROLE} succeeded (external id ext-1)"),
            "as arn:aws:sts::210987654321:assumed-role/data/",
        ],
    );
    // A second role is tried as it is (the chain is the first role's, as exec serves it).
    let (out, json) = w.doctor(&[
        "--aws-role-arn",
        ROLE,
        "--aws-role-arn",
        crate::support::ROLE_A,
        "--aws-chain-role-arn",
        CHAINED,
        "--aws-chain-external-id",
        "ext-1",
    ]);
    assert_eq!(code(&out), 0, "{json:#}");
    let chained_steps = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap().starts_with("aws chained role"))
        .count();
    assert_eq!(chained_steps, 1, "{json:#}");
    // The text form: a line per hop.
    let text = cmd(
        "doctor --offline --socket",
        &[
            w.fly.socket_path().to_str().unwrap(),
            "--aws-role-arn",
            ROLE,
            "--aws-sts-endpoint",
            &w.sts.url(),
            "--aws-chain-role-arn",
            CHAINED,
            "--aws-chain-external-id",
            "ext-1",
        ],
    );
    expect(
        &text,
        0,
        stdout,
        &format!("ok   aws chained role {CHAINED}: AssumeRole"),
    );
    expect(&text, 0, stdout, "all 6 steps passed\n");
}

/// Each way the chained role refuses the first fails the chained step (exit 1, the first
/// role's step passing), its detail STS's AccessDenied and its fix the trust policy to have
/// (principal, external id, sts:TagSession), the first role's permission and the set-up
/// command; when the first hop fails, the chained one is not tried.
#[test]
fn doctor_names_the_fix_of_each_chained_refusal() {
    let chained_name = format!("aws chained role {CHAINED}");
    let setup = format!("fly-oidc aws setup --role-name data --trusted-role-arn {ROLE}");
    let principal = format!("for the principal {{\"AWS\": \"{ROLE}\"}}");
    let permission =
        format!("the first role's permissions policy must allow sts:AssumeRole on {CHAINED}");
    // (world, extra flags, what the fix says)
    let cases: Vec<(World, Vec<&str>, Vec<String>)> = vec![
        // Another principal.
        (
            chain_world(
                false,
                ChainTrust::default().principal(crate::support::ROLE_A),
            ),
            vec![],
            vec![
                format!("`{setup}` prints both"),
                format!("must allow \"Action\": \"sts:AssumeRole\" {principal}"),
                permission.clone(),
            ],
        ),
        // Another external id.
        (
            chain_world(
                false,
                ChainTrust::default().principal(ROLE).external_id("ext-1"),
            ),
            vec!["--aws-chain-external-id", "ext-2"],
            vec![
                format!("`{setup} --external-id ext-2` prints both"),
                "{\"StringEquals\": {\"sts:ExternalId\": \"ext-2\"}}".to_owned(),
                principal.clone(),
                permission.clone(),
            ],
        ),
        // Session tags (transitive ones pass along) without sts:TagSession.
        (
            chain_world(true, ChainTrust::default().principal(ROLE)),
            vec!["--aws-principal-tags"],
            vec![
                format!("`{setup} --principal-tags` prints both"),
                "must allow \"Action\": [\"sts:AssumeRole\", \"sts:TagSession\"]".to_owned(),
                "the first role's permissions policy must allow sts:AssumeRole and sts:TagSession on"
                    .to_owned(),
                principal.clone(),
            ],
        ),
    ];
    for (w, extra, fix_says) in cases {
        let mut args = vec!["--aws-chain-role-arn", CHAINED];
        args.extend(extra);
        let (out, json) = w.doctor(&args);
        assert_eq!(code(&out), 1, "{args:?}: {json:#}");
        assert_eq!(
            failing(&json),
            std::slice::from_ref(&chained_name),
            "{args:?}: {json:#}"
        );
        let chained = step(&json, "aws chained role");
        let detail = chained["detail"].as_str().unwrap();
        assert_contains_all(
            detail,
            &["AccessDenied", "is not authorized to perform", CHAINED],
        );
        let fix = chained["fix"].as_str().unwrap();
        let says: Vec<&str> = fix_says.iter().map(String::as_str).collect();
        assert_contains_all(fix, &says);
        if args.contains(&"--aws-principal-tags") {
            assert!(detail.contains("sts:TagSession"), "{detail}");
        }
    }
    // The first hop refused (another app's subject): its step fails, no chained step.
    let w = world(
        |b, _| b.subject("acme:other:*").chain_trust(ChainTrust::default()),
        |b| b,
    );
    let (out, json) = w.doctor(&["--aws-chain-role-arn", CHAINED]);
    assert_eq!(code(&out), 1, "{json:#}");
    assert_eq!(failing(&json), [format!("aws role {ROLE}")]);
    assert!(!json.to_string().contains("aws chained role"), "{json:#}");
    // A chained duration above AWS's hour is an invalid setting: exit 2, no STS call.
    let w = chain_world(false, ChainTrust::default());
    let (out, json) = w.doctor(&[
        "--aws-chain-role-arn",
        CHAINED,
        "--aws-chain-duration-seconds",
        "3601",
    ]);
    assert_eq!(code(&out), 2, "{json:#}");
    let role = step(&json, "aws role");
    assert_json_contains(&role["detail"], "--aws-chain-duration-seconds", role);
}

/// Doctor's Google steps for each service-account source (none, the variable, the
/// flag; valid or not): an invalid one is its own step naming where it came from, and the
/// exchange step still runs and passes.
#[test]
fn doctor_google_steps_for_each_service_account_source() {
    let w = world(|b, _| b, |b| b);
    let provider = w.google.provider().to_owned();
    let (sts_url, iam_url) = (w.google.sts_url(), w.google.iam_url());
    let sock = w.fly.socket_path().to_str().unwrap().to_owned();
    let base = [
        ("FLY_OIDC_GCP_PROVIDER", provider.as_str()),
        ("FLY_OIDC_GCP_STS_URL", sts_url.as_str()),
        ("FLY_OIDC_GCP_IAM_URL", iam_url.as_str()),
    ];
    // (variable, flag, exit code, impersonation step: None = absent, Some((ok, facts))).
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        i32,
        Option<(bool, &'a [&'a str])>,
    );
    let cases: Vec<Case> = vec![
        (None, None, 0, None),
        (Some("   "), None, 0, None),
        (Some(SA), None, 0, Some((true, &[SA]))),
        (None, Some(SA), 0, Some((true, &[SA]))),
        (
            Some("bad"),
            None,
            2,
            Some((false, &["\"bad\"", "(from FLY_OIDC_GCP_SERVICE_ACCOUNT)"])),
        ),
        (
            None,
            Some("bad"),
            2,
            Some((false, &["\"bad\"", "--gcp-service-account"])),
        ),
        (Some("bad"), Some(SA), 0, Some((true, &[SA]))),
        (
            Some(SA),
            Some("bad"),
            2,
            Some((false, &["\"bad\"", "--gcp-service-account"])),
        ),
    ];
    for (var, flag, want, impersonation) in cases {
        let what = format!("variable {var:?}, flag {flag:?}");
        let mut env = base.to_vec();
        if let Some(v) = var {
            env.push(("FLY_OIDC_GCP_SERVICE_ACCOUNT", v));
        }
        let mut args = vec!["doctor", "--json", "--offline", "--socket", sock.as_str()];
        if let Some(f) = flag {
            args.extend(["--gcp-service-account", f]);
        }
        let out = run(&args, &env);
        let json: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", stdout(&out)));
        assert_eq!(code(&out), want, "{what}: {json:#}");
        let exchange = step(&json, "google exchange");
        assert_eq!(
            exchange["ok"], true,
            "{what}: the exchange runs and passes: {json:#}"
        );
        let names = step_names(&json);
        match impersonation {
            None => assert!(!names.contains(&"google impersonation"), "{what}: {json:#}"),
            Some((ok, facts)) => {
                let s = step(&json, "google impersonation");
                assert_eq!(s["ok"], ok, "{what}: {json:#}");
                let detail = s["detail"].as_str().unwrap();
                assert_contains_all(detail, facts);
                if !ok {
                    assert!(detail.starts_with("invalid setting"), "{what}: {detail}");
                }
            }
        }
        Secrets::of_fly(&w.fly)
            .google(&w.google)
            .assert_absent_from_output(&out);
    }
}
