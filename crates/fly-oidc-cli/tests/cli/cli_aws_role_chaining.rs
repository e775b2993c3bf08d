//! AWS role chaining through the binary: the role the Fly token assumes (account
//! `123456789012`) assumes a role in another account (`210987654321`) with `sts:AssumeRole`,
//! and what is handed out is the second role's.
//!
//! - `aws credential-process --chain-role-arn` consumed by the AWS CLI and boto3, and `exec
//!   --aws-chain-role-arn` serving the chained role to both (against moto_server, which
//!   implements `AssumeRole`);
//! - the calls across processes, counted by the testkit's STS: one `AssumeRoleWithWebIdentity`
//!   plus one `AssumeRole` per chain per credential lifetime;
//! - the refusals: a chained duration above AWS's one hour (exit 2, before any call) and the
//!   chained role's trust policy refusing (wrong principal, external id, `sts:TagSession`),
//!   each naming the hop and the fix, without secrets;
//! - the alternative with no fly-oidc setting: a profile with `role_arn` and
//!   `credential_source = EcsContainer` under `exec`, with the AWS CLI and boto3, and `exec`
//!   warning about `AWS_PROFILE` only when the profile would not use what it serves.
//!
//! Needs `moto_server`, `aws` and boto3 for the consumer tests (a missing tool skips them
//! locally and fails them in CI).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::cli_aws_cache::age_entry;
use crate::server_exec::script;
use crate::support::{
    ROLE, ROLE_B, Sandbox, acme_web, assert_success, credential_process_profile, describe, failed,
    fly_oidc_bin, moto_sandbox, stderr, stdout, stdout_json,
};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::{ChainTrust, FakeSts};
use fly_oidc_tests::aws::bucket_name;
use fly_oidc_tests::{Secrets, assert_contains_all};
use std::process::{Output, Stdio};

/// The chained role, in the second account.
const CHAINED: &str = "arn:aws:iam::210987654321:role/data";
/// The ARN prefix of a session of [`CHAINED`].
const CHAINED_SESSION: &str = "arn:aws:sts::210987654321:assumed-role/data/";

/// A fake STS trusting `fly`'s tokens (its role allowing `sts:TagSession`), whose chained
/// roles trust `chain`.
fn sts_chaining(fly: &FakeFlyApi, chain: ChainTrust) -> FakeSts {
    FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .tag_session(true)
        .chain_trust(chain)
        .start_blocking()
        .unwrap()
}

/// The actions the fake STS was asked for, in order.
fn actions(sts: &FakeSts) -> Vec<String> {
    sts.requests()
        .into_iter()
        .map(|r| r.action.unwrap_or_default())
        .collect()
}

/// `n` calls: one `AssumeRoleWithWebIdentity` then one `AssumeRole`, `n` times.
fn hops(n: usize) -> Vec<String> {
    ["AssumeRoleWithWebIdentity", "AssumeRole"]
        .repeat(n)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The `sh -c` script that runs the AWS CLI then boto3 (`tests/server/boto3_container.py`):
/// two lines, the AWS CLI's caller ARN then boto3's JSON (the caller ARN and how botocore got
/// the credentials).
fn aws_cli_then_boto3() -> String {
    format!(
        "aws sts get-caller-identity --query Arn --output text && python3 '{}'",
        script("boto3_container.py").display()
    )
}

/// The two lines [`aws_cli_then_boto3`] printed: the AWS CLI's ARN and boto3's report.
fn two_consumers(out: &Output) -> (String, serde_json::Value) {
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", describe(out));
    let report = serde_json::from_str(lines[1]).unwrap();
    (lines[0].to_owned(), report)
}

/// `fly-oidc exec --aws-role-arn ROLE --aws-chain-role-arn CHAINED -- sh -c <script>`.
fn exec_chained(sandbox: &Sandbox, script: &str) -> Output {
    sandbox.exec_sh(
        &["--aws-role-arn", ROLE, "--aws-chain-role-arn", CHAINED],
        script,
    )
}

#[test]
fn credential_process_with_a_chain_feeds_the_aws_cli_and_boto3() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&["aws", "python3"], true) else {
        return;
    };
    sandbox.write_aws_config_text(&credential_process_profile(
        "chained",
        &format!("--role-arn {ROLE} --chain-role-arn {CHAINED} --chain-external-id ext-1"),
    ));
    // The AWS CLI signs as the chained role, in the other account.
    let arn = sandbox.caller_arn(&["--profile", "chained"]);
    // The chained session's name defaults to the first hop's, fly-<app>-<machine id>.
    assert!(
        arn.starts_with(&format!("{CHAINED_SESSION}fly-web-")),
        "{arn}"
    );
    assert_eq!(fly.request_count(), 1);

    // boto3 through the same profile: the cached chained credentials, with their hour.
    let report = sandbox.boto3_profiles(&bucket_name("fly-oidc-chain"), &["chained"]);
    assert_eq!(report["arns"]["chained"], arn, "{report}");
    assert_eq!(report["methods"]["chained"], "custom-process", "{report}");
    let left = report["expiry_seconds"]["chained"].as_i64().unwrap();
    assert!((3000..=3600).contains(&left), "{report}");
    assert_eq!(fly.request_count(), 1, "boto3 got the cached entry");

    // The JSON itself: the chained role's account, from the same entry.
    let printed = sandbox.credential_process(
        ROLE,
        &["--chain-role-arn", CHAINED, "--chain-external-id", "ext-1"],
    );
    assert_eq!(printed["AccountId"], "210987654321", "{printed}");
    assert_eq!(sandbox.entries().len(), 1);
    assert_eq!(fly.request_count(), 1);
}

#[test]
fn exec_with_a_chained_role_serves_it_to_the_aws_cli_and_boto3() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&["aws", "python3"], true) else {
        return;
    };
    let script = aws_cli_then_boto3();
    let out = exec_chained(&sandbox, &script);
    assert_success(&out, "exec --aws-chain-role-arn");
    let (aws_cli, boto3) = two_consumers(&out);
    assert!(
        aws_cli.starts_with(&format!("{CHAINED_SESSION}fly-web-")),
        "{aws_cli}"
    );
    assert_eq!(boto3["arn"], aws_cli.as_str(), "one served session");
    assert_eq!(boto3["method"], "container-role", "{boto3}");
    assert_eq!(fly.request_count(), 1, "one chain, fetched once at start");
    Secrets::of_fly(&fly).assert_absent("stderr", &stderr(&out));

    // The command the docs show (the first role from AWS_ROLE_ARN, as a Fly secret sets it).
    let mut sandbox = sandbox;
    sandbox.set("AWS_ROLE_ARN", ROLE);
    let command = "exec --aws-chain-role-arn arn:aws:iam::210987654321:role/data -- aws sts get-caller-identity";
    let mut args: Vec<&str> = command.split(' ').collect();
    args.extend(["--output", "json"]);
    let out = sandbox.fly_oidc(&args);
    assert_success(&out, command);
    let arn = stdout_json(&out)["Arn"].as_str().unwrap().to_owned();
    assert!(
        arn.starts_with(&format!("{CHAINED_SESSION}fly-web-")),
        "{arn}"
    );
    assert_eq!(fly.request_count(), 2);
}

/// Several `credential-process` runs, concurrent and one after another, share one disk
/// cache entry per chain: one `AssumeRoleWithWebIdentity` and one `AssumeRole` per credential
/// lifetime; another external id is another chain, so another entry.
#[test]
fn one_web_identity_and_one_assume_role_per_chain_per_lifetime_across_processes() {
    let fly = acme_web();
    let sts = sts_chaining(&fly, ChainTrust::default().principal(ROLE));
    let mut sandbox = Sandbox::new(&fly, &sts.url());
    let args = [
        "aws",
        "credential-process",
        "--role-arn",
        ROLE,
        "--chain-role-arn",
        CHAINED,
    ];
    // Eight cold processes at once: one chain of calls between them.
    let children: Vec<_> = (0..8)
        .map(|_| {
            sandbox
                .command(fly_oidc_bin())
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut printed = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_success(&out, "a concurrent chained credential-process");
        printed.push(stdout_json(&out));
    }
    printed.dedup();
    assert_eq!(printed.len(), 1, "all print the same credentials");
    let first = printed.remove(0);
    assert_eq!(actions(&sts), hops(1));
    assert_eq!(fly.request_count(), 1);
    // What was handed out is the second hop's session, asked for as documented: the first
    // hop's session name, an hour, no external id, signed with the first hop's credentials.
    let sessions = sts.sessions();
    assert_eq!(first["AccessKeyId"], sessions[1].access_key_id.as_str());
    assert!(sessions[1].assumed_role_arn.starts_with(CHAINED_SESSION));
    assert_eq!(sessions[1].session_name, sessions[0].session_name);
    let second_hop = &sts.requests()[1];
    assert_eq!(second_hop.role_arn.as_deref(), Some(CHAINED));
    assert_eq!(second_hop.duration(), Some(3600));
    assert_eq!(second_hop.external_id, None);
    assert!(second_hop.signed, "AssumeRole is signed");
    assert!(
        !sts.requests()[0].signed,
        "AssumeRoleWithWebIdentity is not"
    );

    // Later runs are hits; so are `aws env` and the variable, the same setting.
    for _ in 0..3 {
        assert_eq!(
            sandbox.credential_process(ROLE, &["--chain-role-arn", CHAINED]),
            first
        );
    }
    sandbox.set("FLY_OIDC_AWS_CHAIN_ROLE_ARN", CHAINED);
    assert_eq!(sandbox.credential_process(ROLE, &[]), first);
    let out = sandbox.fly_oidc(&["aws", "env", "--json", "--role-arn", ROLE]);
    assert_success(&out, "aws env with FLY_OIDC_AWS_CHAIN_ROLE_ARN");
    assert_eq!(stdout_json(&out)["AWS_ACCESS_KEY_ID"], first["AccessKeyId"]);
    sandbox.unset("FLY_OIDC_AWS_CHAIN_ROLE_ARN");
    assert_eq!(actions(&sts), hops(1));
    assert_eq!(sandbox.entries().len(), 1);

    // The end of the lifetime (10 minutes left, inside the 15-minute minimum): exactly one
    // more pair of calls, then hits again.
    age_entry(&sandbox, 10 * 60);
    let renewed = sandbox.credential_process(ROLE, &["--chain-role-arn", CHAINED]);
    assert_ne!(renewed["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(
        sandbox.credential_process(ROLE, &["--chain-role-arn", CHAINED]),
        renewed
    );
    assert_eq!(actions(&sts), hops(2));
    assert_eq!(sandbox.entries().len(), 1);

    // Another external id is another chain: its own entry and its own pair of calls.
    let other = [
        "--chain-role-arn",
        CHAINED,
        "--chain-external-id",
        "other-id",
    ];
    let with_id = sandbox.credential_process(ROLE, &other);
    assert_ne!(with_id["AccessKeyId"], renewed["AccessKeyId"]);
    assert_eq!(sandbox.credential_process(ROLE, &other), with_id);
    assert_eq!(sandbox.entries().len(), 2);
    assert_eq!(actions(&sts), hops(3));
    assert_eq!(
        sts.requests().last().unwrap().external_id.as_deref(),
        Some("other-id")
    );
    // The unchained role is a third entry, with one call.
    let unchained = sandbox.credential_process(ROLE, &[]);
    assert_ne!(unchained["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(sandbox.entries().len(), 3);
    assert_eq!(sts.request_count(), 7);
    assert_eq!(fly.request_count(), 4, "one Fly token per first hop");
}

/// Above AWS's one hour for a chained session is an invalid setting, exit 2, named by the
/// flag of each front end, before any Fly or STS call; so is a chain setting without the
/// chained role.
#[test]
fn a_chained_duration_above_one_hour_is_refused_before_any_call() {
    let fly = acme_web();
    let sts = sts_chaining(&fly, ChainTrust::default());
    let sandbox = Sandbox::new(&fly, &sts.url());
    let marker = sandbox.dir.path().join("child-ran");
    let touch = format!("touch {}", marker.display());
    let chain = [
        "--chain-role-arn",
        CHAINED,
        "--chain-duration-seconds",
        "3601",
    ];
    let mut credential_process = vec!["aws", "credential-process", "--role-arn", ROLE];
    credential_process.extend(chain);
    let mut env = vec!["aws", "env", "--role-arn", ROLE];
    env.extend(chain);
    let exec = [
        "exec",
        "--aws-role-arn",
        ROLE,
        "--aws-chain-role-arn",
        CHAINED,
        "--aws-chain-duration-seconds",
        "3601",
        "--",
        "sh",
        "-c",
        &touch,
    ];
    let cases: [(&[&str], &str); 3] = [
        (&credential_process, "--chain-duration-seconds"),
        (&env, "--chain-duration-seconds"),
        (&exec, "--aws-chain-duration-seconds"),
    ];
    for (args, flag) in cases {
        let out = sandbox.fly_oidc(args);
        let err = failed(&out, 2);
        assert_contains_all(
            &err,
            &[
                "fly-oidc: error: invalid setting",
                "3601 s",
                "(role chaining) at 3600 s",
                &format!("(from {flag})"),
            ],
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert!(!marker.exists(), "the child must not start");
    // A chain setting without a chained role would be ignored: refused, named.
    let out = sandbox.fly_oidc(&[
        "aws",
        "credential-process",
        "--role-arn",
        ROLE,
        "--chain-external-id",
        "ext-1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_contains_all(
        &stderr(&out),
        &["applies only to a chained role", "--chain-external-id"],
    );
    assert_eq!((fly.request_count(), sts.request_count()), (0, 0));
}

/// The chained role's trust policy refusing: exit 1 with one line naming the chained role,
/// the first role as the principal to trust, what is missing (the external id condition,
/// `sts:TagSession` when tags were asked for) and the `aws setup` command that prints the
/// policy; never a secret of the first hop's.
#[test]
fn the_chained_roles_trust_refusals_name_the_hop_and_the_fix() {
    let fly = acme_web();
    let refused = |sts: &FakeSts, extra: &[&str], needles: &[&str]| {
        let sandbox = Sandbox::new(&fly, &sts.url());
        let mut args = vec![
            "aws",
            "credential-process",
            "--no-cache",
            "--role-arn",
            ROLE,
        ];
        args.extend(["--chain-role-arn", CHAINED]);
        args.extend_from_slice(extra);
        let out = sandbox.fly_oidc(&args);
        let err = failed(&out, 1);
        assert_contains_all(
            &err,
            &[
                "AccessDenied",
                &format!(
                    "STS refused to assume the chained role {CHAINED} with the credentials of the first role {ROLE}"
                ),
                &format!("for the principal {{\"AWS\": \"{ROLE}\"}}"),
                &format!("`fly-oidc aws setup --role-name data --trusted-role-arn {ROLE}"),
            ],
        );
        assert_contains_all(&err, needles);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        // The first hop succeeded: its credentials exist, and appear nowhere.
        Secrets::of_fly(&fly)
            .sts(sts)
            .assert_absent_from_output(&out);
        err
    };

    // The chained role trusts another role.
    let sts = sts_chaining(&fly, ChainTrust::default().principal(ROLE_B));
    let err = refused(
        &sts,
        &[],
        &[
            &format!("is not authorized to perform: sts:AssumeRole on resource: {CHAINED}"),
            "must allow \"Action\": \"sts:AssumeRole\"",
            "no external id was sent",
            "set --chain-external-id or FLY_OIDC_AWS_CHAIN_EXTERNAL_ID",
        ],
    );
    assert!(!err.contains("TagSession"), "{err}");
    assert_eq!(sts.sessions().len(), 1, "only the first hop");

    // It requires an external id: none sent, then the wrong one.
    let sts = sts_chaining(
        &fly,
        ChainTrust::default().principal(ROLE).external_id("ext-1"),
    );
    refused(
        &sts,
        &[],
        &[
            "no external id was sent: if that policy has an sts:ExternalId condition, set --chain-external-id",
        ],
    );
    refused(
        &sts,
        &["--chain-external-id", "ext-2"],
        &[
            "with the condition {\"StringEquals\": {\"sts:ExternalId\": \"ext-2\"}} (the external id sent, set by --chain-external-id",
            "--trusted-role-arn arn:aws:iam::123456789012:role/fly-app --external-id ext-2`",
        ],
    );
    let sandbox = Sandbox::new(&fly, &sts.url());
    let ok = sandbox.credential_process(
        ROLE,
        &[
            "--no-cache",
            "--chain-role-arn",
            CHAINED,
            "--chain-external-id",
            "ext-1",
        ],
    );
    assert_eq!(
        ok["AccessKeyId"],
        sts.sessions().last().unwrap().access_key_id.as_str()
    );

    // Session tags along the chain (the fake's transitive key `fake_org`) without
    // sts:TagSession in the chained role's trust policy.
    let sts = sts_chaining(&fly, ChainTrust::default().principal(ROLE));
    refused(
        &sts,
        &["--principal-tags"],
        &[
            "sts:TagSession on resource",
            "must allow \"Action\": [\"sts:AssumeRole\", \"sts:TagSession\"]",
            "(session tags were asked for, by --principal-tags or FLY_OIDC_AWS_PRINCIPAL_TAGS, and the transitive ones pass along the chain)",
            " --principal-tags` prints both",
        ],
    );
    // Allowed, the chained session carries the transitive tag only.
    let sts = sts_chaining(
        &fly,
        ChainTrust::default().principal(ROLE).tag_session(true),
    );
    let sandbox = Sandbox::new(&fly, &sts.url());
    sandbox.credential_process(
        ROLE,
        &[
            "--no-cache",
            "--principal-tags",
            "--chain-role-arn",
            CHAINED,
        ],
    );
    let chained = sts.sessions().pop().unwrap();
    assert!(chained.assumed_role_arn.starts_with(CHAINED_SESSION));
    let tags: Vec<(&str, &str)> = chained
        .session_tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(tags, [("fake_org", "acme")]);

    // Under exec, the refusal stops it before the child, named by exec's flags.
    let sts = sts_chaining(&fly, ChainTrust::default().principal(ROLE_B));
    let sandbox = Sandbox::new(&fly, &sts.url());
    let marker = sandbox.dir.path().join("child-ran");
    let touch = format!("touch {}", marker.display());
    let out = exec_chained(&sandbox, &touch);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_contains_all(
        &stderr(&out),
        &[
            &format!("the chained role {CHAINED}"),
            "set --aws-chain-external-id",
            "--trusted-role-arn arn:aws:iam::123456789012:role/fly-app`",
        ],
    );
    assert!(!marker.exists(), "the child must not start");
    Secrets::of_fly(&fly)
        .sts(&sts)
        .assert_absent_from_output(&out);
}

/// The alternative that needs no fly-oidc setting: `exec` serves the first role, and the
/// child's profile assumes the chained role from the container endpoint
/// (`credential_source = EcsContainer`), with the AWS CLI and with boto3. The profile's
/// `endpoint_url` is the only place that names moto, for `exec` and the child alike.
#[test]
fn an_ecs_container_profile_chains_from_what_exec_serves() {
    let Some((fly, moto, mut sandbox)) = moto_sandbox(&["aws", "python3"], true) else {
        return;
    };
    sandbox.unset("AWS_ENDPOINT_URL");
    sandbox.write_aws_config_text(&format!(
        "[profile chained]\nregion = us-east-1\nendpoint_url = {}\nrole_arn = {CHAINED}\ncredential_source = EcsContainer\n",
        moto.endpoint()
    ));
    sandbox.set("AWS_PROFILE", "chained");
    let script = aws_cli_then_boto3();
    let out = sandbox.fly_oidc(&["exec", "--aws-role-arn", ROLE, "--", "sh", "-c", &script]);
    assert_success(&out, "exec with an EcsContainer profile");
    let (aws_cli, boto3) = two_consumers(&out);
    assert!(aws_cli.starts_with(CHAINED_SESSION), "{aws_cli}");
    let boto3_arn = boto3["arn"].as_str().unwrap();
    assert!(boto3_arn.starts_with(CHAINED_SESSION), "{boto3}");
    assert_eq!(boto3["method"], "assume-role", "{boto3}");
    // No warning: the profile uses what exec serves.
    let err = stderr(&out);
    assert!(!err.contains("AWS_PROFILE"), "{err}");
    assert_eq!(fly.request_count(), 1);
    Secrets::of_fly(&fly).assert_absent("stderr", &err);
}

/// `exec` warns about `AWS_PROFILE` only when its profile would not use the served
/// credentials: none for `credential_source = EcsContainer`, directly or through
/// `source_profile`; one for static keys, another source, or a profile it cannot find.
#[test]
fn exec_warns_about_aws_profile_only_when_it_would_not_use_the_served_credentials() {
    let fly = acme_web();
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .start_blocking()
        .unwrap();
    let mut sandbox = Sandbox::new(&fly, &sts.url());
    sandbox.write_aws_config_text(&format!(
        "[profile chained]\nrole_arn = {CHAINED}\ncredential_source = EcsContainer\n\n\
         [profile via]\nrole_arn = {CHAINED}\nsource_profile = chained\n\n\
         [profile keys]\naws_access_key_id = AKIAEXAMPLEKEY\naws_secret_access_key = static-profile-secret\n\n\
         [profile instance]\nrole_arn = {CHAINED}\ncredential_source = Ec2InstanceMetadata\n"
    ));
    let warning = "AWS_PROFILE is set: the AWS SDKs use that profile before the credentials served here; unset it to use the role, or give the profile credential_source = EcsContainer (and no source_profile) to assume its role with them";
    // Only the profiles that assume their role with the served credentials (directly or
    // through another profile) are not warned about.
    let unwarned = ["chained", "via"];
    for profile in ["chained", "via", "keys", "instance", "missing"] {
        let warned = !unwarned.contains(&profile);
        sandbox.set("AWS_PROFILE", profile);
        let out = sandbox.fly_oidc(&["exec", "--aws-role-arn", ROLE, "--", "true"]);
        assert_success(&out, &format!("exec with AWS_PROFILE={profile}"));
        let err = stderr(&out);
        assert_eq!(err.contains(warning), warned, "{profile}: {err}");
        assert!(!err.contains("static-profile-secret"), "{err}");
    }
}
