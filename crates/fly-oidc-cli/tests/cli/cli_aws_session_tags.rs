//! AWS session tags from Fly's `aws_principal_tags` through the binary: `token --claims
//! --aws-principal-tags` shows them, `aws credential-process --principal-tags` (and
//! `FLY_OIDC_AWS_PRINCIPAL_TAGS=1`) sends them to STS, in a cache entry of their own, with the
//! AWS CLI as the consumer; a trust policy without `sts:TagSession` is diagnosed by flag.
//! Against the testkit's fakes: the fake Fly API's tag keys (`fake_app`, `fake_org`,
//! `fake_region`) are its own invention, not Fly's.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{
    ROLE, Sandbox, acme_web, assert_success, credential_process_profile, describe, expect, failed,
    run, stderr, stdout_json,
};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_tests::assert_contains_all;
use std::collections::BTreeMap;

/// The session tags the fake Fly API gives app `web` of org `acme` in region `ord`.
fn web_tags() -> BTreeMap<String, String> {
    [
        ("fake_app", "web"),
        ("fake_org", "acme"),
        ("fake_region", "ord"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn token_claims_with_aws_principal_tags_shows_the_fakes_tags() {
    let fly = acme_web();
    let sock = fly.socket_path().to_str().unwrap();
    // The command the docs show, on the fake's socket.
    let command = "token --claims --aws-principal-tags";
    let args: Vec<&str> = command.split(' ').collect();
    let out = run(&args, &[("FLY_OIDC_SOCKET", sock)]);
    assert_success(&out, "token --claims --aws-principal-tags");
    let claims = stdout_json(&out);
    let tags = &claims["https://aws.amazon.com/tags"];
    assert_eq!(tags["principal_tags"]["fake_app"][0], "web", "{claims}");
    assert_eq!(tags["principal_tags"]["fake_org"][0], "acme");
    assert_eq!(tags["transitive_tag_keys"][0], "fake_org");
    assert_eq!(
        stderr(&out),
        "fly-oidc: AWS session tags (aws:PrincipalTag/<key> in policies): \
         fake_app=web, fake_org=acme, fake_region=ord (transitive: fake_org)\n"
    );
    assert!(fly.requests()[0].aws_principal_tags);
    // The variable asks as the flag does; without either, no tags and nothing on stderr.
    let out = run(
        &["token", "--socket", sock, "--claims"],
        &[("FLY_OIDC_AWS_PRINCIPAL_TAGS", "1")],
    );
    assert_success(&out, "token --claims with FLY_OIDC_AWS_PRINCIPAL_TAGS=1");
    assert!(stdout_json(&out)["https://aws.amazon.com/tags"].is_object());
    let out = run(&["token", "--socket", sock, "--claims"], &[]);
    assert_success(&out, "token --claims");
    assert!(
        stdout_json(&out)
            .get("https://aws.amazon.com/tags")
            .is_none()
    );
    assert_eq!(stderr(&out), "");
    let asked: Vec<bool> = fly
        .requests()
        .iter()
        .map(|r| r.aws_principal_tags)
        .collect();
    assert_eq!(asked, [true, true, false]);
    // A bad value is an invalid setting, named.
    let out = run(
        &["token", "--socket", sock],
        &[("FLY_OIDC_AWS_PRINCIPAL_TAGS", "perhaps")],
    );
    expect(&out, 2, stderr, "FLY_OIDC_AWS_PRINCIPAL_TAGS");
}

#[test]
fn credential_process_sends_the_tags_to_sts_in_a_cache_entry_of_their_own() {
    let fly = acme_web();
    let sts = sts_for(&fly, true);
    let mut sandbox = Sandbox::new(&fly, &sts.url());
    let plain = sandbox.credential_process(ROLE, &[]);
    let tagged = sandbox.credential_process(ROLE, &["--principal-tags"]);
    assert_ne!(
        plain["AccessKeyId"], tagged["AccessKeyId"],
        "not the untagged entry"
    );
    assert_eq!(sandbox.entries().len(), 2);
    let sessions = sts.sessions();
    assert_eq!(sessions.len(), 2);
    assert!(sessions[0].session_tags.is_empty());
    assert_eq!(sessions[1].session_tags, web_tags());
    assert_eq!(tagged["AccessKeyId"], sessions[1].access_key_id.as_str());
    // The variable is the same setting: the tagged entry is hit, as it is by `aws env`.
    sandbox.set("FLY_OIDC_AWS_PRINCIPAL_TAGS", "1");
    assert_eq!(sandbox.credential_process(ROLE, &[]), tagged);
    let out = sandbox.fly_oidc(&["aws", "env", "--json", "--role-arn", ROLE]);
    assert_success(&out, "aws env with FLY_OIDC_AWS_PRINCIPAL_TAGS=1");
    assert_eq!(
        stdout_json(&out)["AWS_ACCESS_KEY_ID"],
        tagged["AccessKeyId"]
    );
    assert_eq!((fly.request_count(), sts.request_count()), (2, 2));

    // The AWS CLI, through a credential_process profile with --principal-tags, signs with the
    // tagged session.
    if !fly_oidc_tests::require_tool("aws") {
        return;
    }
    sandbox.unset("FLY_OIDC_AWS_PRINCIPAL_TAGS");
    sandbox.write_aws_config_text(&credential_process_profile(
        "tagged",
        &format!("--no-cache --principal-tags --role-arn {ROLE}"),
    ));
    let arn = sandbox.caller_arn(&["--profile", "tagged"]);
    let last = sts.sessions().pop().unwrap();
    assert_eq!(last.session_tags, web_tags());
    assert_eq!(arn, last.assumed_role_arn);

    // boto3, through the same profile, signs with a tagged session too.
    if fly_oidc_tests::python_with(&["boto3"], "boto3").is_none() {
        return;
    }
    let script = "import boto3, json; \
        sts = boto3.Session(profile_name='tagged').client('sts'); \
        print(json.dumps(sts.get_caller_identity()))";
    let out = sandbox
        .command("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert_success(&out, "boto3 get_caller_identity --profile tagged");
    let last = sts.sessions().pop().unwrap();
    assert_eq!(last.session_tags, web_tags());
    assert_eq!(stdout_json(&out)["Arn"], last.assumed_role_arn.as_str());
    assert_eq!(sts.sessions().len(), 4, "boto3 ran the credential process");
}

#[test]
fn a_trust_policy_without_tag_session_is_diagnosed_by_flag() {
    let fly = acme_web();
    // A role whose trust policy allows only sts:AssumeRoleWithWebIdentity.
    let sts = sts_for(&fly, false);
    let sandbox = Sandbox::new(&fly, &sts.url());
    let out = sandbox.fly_oidc(&[
        "aws",
        "credential-process",
        "--no-cache",
        "--principal-tags",
        "--role-arn",
        ROLE,
    ]);
    let err = failed(&out, 1);
    assert_contains_all(
        &err,
        &[
            "AccessDenied",
            "session tags were asked for (--principal-tags or FLY_OIDC_AWS_PRINCIPAL_TAGS",
            "fake_app=web",
            "must also allow sts:TagSession",
        ],
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(sts.sessions().is_empty());
    // Without the flag the same role accepts the untagged token.
    sandbox.credential_process(ROLE, &["--no-cache"]);
    assert!(sts.sessions()[0].session_tags.is_empty());
}

/// `exec --aws-principal-tags` (and `FLY_OIDC_AWS_PRINCIPAL_TAGS=1` through the provider): the
/// served role's session carries the tags, and the AWS CLI under exec signs with it. A trust
/// policy without `sts:TagSession` stops exec before the child, naming both.
#[test]
fn exec_with_aws_principal_tags_serves_a_tagged_session_to_the_aws_cli() {
    let fly = acme_web();
    // Refused first: a trust policy without sts:TagSession.
    let strict = sts_for(&fly, false);
    let mut sandbox = Sandbox::new(&fly, &strict.url());
    sandbox.set("AWS_ROLE_ARN", ROLE);
    let marker = sandbox.dir.path().join("child-ran");
    let touch = format!("touch {}", marker.display());
    let out = sandbox.fly_oidc(&["exec", "--aws-principal-tags", "--", "sh", "-c", &touch]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert_contains_all(
        &err,
        &[
            "AccessDenied",
            "--aws-principal-tags",
            "fake_app=web",
            "must also allow sts:TagSession",
        ],
    );
    assert!(!marker.exists(), "the child must not start");
    assert!(strict.sessions().is_empty());

    let sts = sts_for(&fly, true);
    sandbox.set("AWS_ENDPOINT_URL", &sts.url());
    if !fly_oidc_tests::require_tool("aws") {
        return;
    }
    // The command the docs show (the role from AWS_ROLE_ARN, as in fly.toml).
    let command = "exec --aws-principal-tags -- aws sts get-caller-identity";
    let mut args: Vec<&str> = command.split(' ').collect();
    args.extend(["--output", "json"]);
    let out = sandbox.fly_oidc(&args);
    assert_success(&out, command);
    let sessions = sts.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session_tags, web_tags());
    assert_eq!(
        stdout_json(&out)["Arn"],
        sessions[0].assumed_role_arn.as_str()
    );
    assert!(fly.requests().iter().all(|r| r.aws_principal_tags));
    // The variable is the same setting; without either, the session has no tags.
    sandbox.set("FLY_OIDC_AWS_PRINCIPAL_TAGS", "1");
    let get_caller_identity = ["exec", "--", "aws", "sts", "get-caller-identity"];
    let out = sandbox.fly_oidc(&get_caller_identity);
    assert_success(&out, "exec with FLY_OIDC_AWS_PRINCIPAL_TAGS=1");
    sandbox.unset("FLY_OIDC_AWS_PRINCIPAL_TAGS");
    let out = sandbox.fly_oidc(&get_caller_identity);
    assert_success(&out, "exec without tags");
    let tags: Vec<_> = sts.sessions().into_iter().map(|s| s.session_tags).collect();
    assert_eq!(tags, [web_tags(), web_tags(), BTreeMap::new()]);
}

/// A fake STS trusting `fly`'s tokens, its role's trust policy allowing `sts:TagSession` or not.
fn sts_for(fly: &FakeFlyApi, tag_session: bool) -> FakeSts {
    FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .tag_session(tag_session)
        .start_blocking()
        .unwrap()
}
