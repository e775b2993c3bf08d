//! Real consumers of `fly-oidc aws`: the AWS CLI (v1) and boto3 with `credential_process`
//! profiles, and `fly-oidc aws env` sourced by bash, all against moto_server (STS and S3) and
//! the fake Fly API.
//!
//! Needs `moto_server`, `aws` and boto3 (PyPI `moto[server]`, `awscli`, `boto3`); a missing
//! tool skips the test locally and fails it in CI (`CI=true`).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{
    ROLE_A, ROLE_B, assert_json_contains, assert_success, aws_secrets, describe, lists_bucket,
    moto_sandbox, stderr, stdout_json,
};
use fly_oidc_tests::aws::bucket_name;

#[test]
fn aws_cli_uses_two_credential_process_profiles_with_different_roles() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&["aws"], false) else {
        return;
    };
    sandbox.write_aws_config(&[("reader", ROLE_A), ("writer", ROLE_B)]);

    let reader = sandbox.caller_arn(&["--profile", "reader"]);
    assert!(
        reader.starts_with("arn:aws:sts::123456789012:assumed-role/fly-reader/"),
        "{reader}"
    );
    let writer = sandbox.caller_arn(&["--profile", "writer"]);
    assert!(
        writer.starts_with("arn:aws:sts::123456789012:assumed-role/fly-writer/"),
        "{writer}"
    );
    // The session name defaults to fly-<app>-<machine id>.
    assert!(writer.contains("/fly-web-"), "{writer}");
    assert_eq!(fly.request_count(), 2);

    let bucket = bucket_name("fly-oidc-cli");
    let out = sandbox
        .command("aws")
        .args(["--profile", "writer", "s3", "mb", &format!("s3://{bucket}")])
        .output()
        .unwrap();
    assert_success(&out, "aws s3 mb");
    let out = sandbox
        .command("aws")
        .args(["--profile", "reader", "s3", "ls"])
        .output()
        .unwrap();
    assert_success(&out, "aws s3 ls");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&bucket),
        "{}",
        describe(&out)
    );
    // Every later run was a cache hit: still one Fly token (one STS call) per profile.
    assert_eq!(sandbox.entries().len(), 2);
    assert_eq!(fly.request_count(), 2);
}

#[test]
fn profiles_coexist_with_flys_builtin_web_identity_variables() {
    let Some((fly, _moto, mut sandbox)) = moto_sandbox(&["aws"], false) else {
        return;
    };
    sandbox.write_aws_config(&[("writer", ROLE_B)]);
    // What Fly sets when the app has an AWS_ROLE_ARN secret: the role and a token file.
    let token_file = sandbox.dir.path().join("oidc_token");
    std::fs::write(&token_file, fly.mint(Some("sts.amazonaws.com"))).unwrap();
    sandbox.set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/fly-builtin");
    sandbox.set(
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        &token_file.display().to_string(),
    );

    // No profile: the SDK's own web identity support, from the variables.
    let builtin = sandbox.caller_arn(&[]);
    assert!(builtin.contains(":assumed-role/fly-builtin/"), "{builtin}");
    assert_eq!(fly.request_count(), 0);
    // An explicit profile: its credential_process, with its own role (--role-arn beats
    // AWS_ROLE_ARN).
    let writer = sandbox.caller_arn(&["--profile", "writer"]);
    assert!(writer.contains(":assumed-role/fly-writer/"), "{writer}");
    assert_eq!(fly.request_count(), 1);
    // AWS_PROFILE alone is not explicit enough for botocore: the variables still win (as
    // the README says).
    let out = sandbox
        .command("aws")
        .args(["sts", "get-caller-identity", "--output", "json"])
        .env("AWS_PROFILE", "writer")
        .output()
        .unwrap();
    assert_success(&out, "aws with AWS_PROFILE");
    let arn = stdout_json(&out)["Arn"].as_str().unwrap().to_owned();
    assert!(arn.contains(":assumed-role/fly-builtin/"), "{arn}");
    // Without --role-arn, fly-oidc assumes the same role as Fly's integration.
    let same = sandbox.credential_process_no_role();
    let arn = {
        let out = sandbox
            .command("aws")
            .args(["sts", "get-caller-identity", "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", same["AccessKeyId"].as_str().unwrap())
            .env(
                "AWS_SECRET_ACCESS_KEY",
                same["SecretAccessKey"].as_str().unwrap(),
            )
            .env("AWS_SESSION_TOKEN", same["SessionToken"].as_str().unwrap())
            .output()
            .unwrap();
        assert_success(&out, "aws sts get-caller-identity with env credentials");
        stdout_json(&out)["Arn"].as_str().unwrap().to_owned()
    };
    assert!(arn.contains(":assumed-role/fly-builtin/"), "{arn}");
}

#[test]
fn boto3_uses_credential_process_profiles() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&["python3"], true) else {
        return;
    };
    sandbox.write_aws_config(&[("reader", ROLE_A), ("writer", ROLE_B)]);
    let bucket = bucket_name("fly-oidc-boto3");
    let v = sandbox.boto3_profiles(&bucket, &["writer", "reader"]);
    assert_json_contains(&v["arns"]["reader"], ":assumed-role/fly-reader/", &v);
    assert_json_contains(&v["arns"]["writer"], ":assumed-role/fly-writer/", &v);
    assert_eq!(v["methods"]["reader"], "custom-process", "{v}");
    // botocore sees about an hour: our Expiration parses, and is not inside its 15-minute
    // refresh window (else it would run us on every call).
    let left = v["expiry_seconds"]["reader"].as_i64().unwrap();
    assert!((3000..=3600).contains(&left), "{v}");
    assert!(lists_bucket(&v, &bucket), "{v}");
    // Each boto3 session ran credential_process; the cache answered all but the first per role.
    assert_eq!(fly.request_count(), 2);
}

#[test]
fn aws_env_sourced_by_bash_feeds_the_aws_cli() {
    let Some((fly, _moto, sandbox)) = moto_sandbox(&["aws", "bash"], false) else {
        return;
    };
    let bin = crate::support::fly_oidc_bin();
    let script = format!(
        r#"set -eu
eval "$('{}' aws env --role-arn '{ROLE_A}')"
test -n "$AWS_SESSION_TOKEN"
echo "expires $AWS_CREDENTIAL_EXPIRATION" >&2
aws sts get-caller-identity --output json"#,
        bin.display()
    );
    let out = sandbox
        .command("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_success(&out, "bash sourcing fly-oidc aws env");
    let arn = stdout_json(&out)["Arn"].as_str().unwrap().to_owned();
    assert!(arn.contains(":assumed-role/fly-reader/"), "{arn}");
    let err = stderr(&out);
    assert!(err.contains("expires 20"), "{err}");

    // `--json` prints the same variables, from the same cache entry.
    let out = sandbox.fly_oidc(&["aws", "env", "--json", "--role-arn", ROLE_A]);
    assert_success(&out, "fly-oidc aws env --json");
    let env = stdout_json(&out);
    let process = sandbox.credential_process(ROLE_A, &[]);
    assert_eq!(env["AWS_ACCESS_KEY_ID"], process["AccessKeyId"]);
    assert_eq!(env["AWS_SECRET_ACCESS_KEY"], process["SecretAccessKey"]);
    assert_eq!(env["AWS_SESSION_TOKEN"], process["SessionToken"]);
    assert_eq!(env["AWS_CREDENTIAL_EXPIRATION"], process["Expiration"]);
    assert_eq!(fly.request_count(), 1);
    aws_secrets(&fly, &[process]).assert_absent("stderr", &stderr(&out));
}

/// A profile whose STS endpoint is `profile_body`'s, read by the AWS CLI and by fly-oidc
/// (binary and library) from the same config file: all three must reach moto. Before
/// fly-oidc read the profile with the SDK's code, it ignored `endpoint_url` and tried
/// `https://sts.us-east-1.amazonaws.com`.
fn profile_endpoint_reaches_moto(profile_body: &str, extra_sections: &str) {
    let Some((fly, moto, mut sandbox)) = moto_sandbox(&["aws"], false) else {
        return;
    };
    // Only the config file says where STS is.
    sandbox.unset("AWS_ENDPOINT_URL");
    sandbox.unset("AWS_DEFAULT_REGION");
    let bin = fly_oidc_tests::fly_oidc_bin();
    let body = profile_body.replace("MOTO", moto.endpoint());
    let text = format!(
        "[profile moto]\nregion = us-east-1\n{body}credential_process = {} aws credential-process --role-arn {ROLE_A}\n\n{}",
        bin.display(),
        extra_sections.replace("MOTO", moto.endpoint())
    );
    sandbox.write_aws_config_text(&text);
    let config = sandbox.home.join(".aws/config");
    sandbox.set("AWS_PROFILE", "moto");

    // The binary alone.
    let creds = sandbox.credential_process(ROLE_A, &[]);
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    // The AWS CLI calls STS at the profile's endpoint with credentials from our
    // credential_process, which reads the same profile (through AWS_PROFILE).
    let arn = sandbox.caller_arn(&[]);
    assert!(arn.contains(":assumed-role/fly-reader/"), "{arn}");
    // The library, given the same environment.
    let provider = fly_oidc_aws::FlyOidcCredentialsProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default().with_env(fly_oidc::Env::from_slice(&[
                ("AWS_CONFIG_FILE", config.to_str().unwrap()),
                ("AWS_PROFILE", "moto"),
                ("FLY_OIDC_SOCKET", fly.socket_path().to_str().unwrap()),
            ])),
        )
        .role_arn(ROLE_A)
        .build()
        .unwrap();
    assert_eq!(provider.settings().endpoint_url(), Some(moto.endpoint()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let assumed = runtime.block_on(provider.assume_role()).unwrap();
    assert!(
        assumed
            .assumed_role_arn
            .unwrap()
            .contains(":assumed-role/fly-reader/")
    );
}

#[test]
fn a_profiles_endpoint_url_is_honoured_like_the_aws_cli_does() {
    profile_endpoint_reaches_moto("endpoint_url = MOTO\n", "");
}

#[test]
fn a_profiles_services_section_is_honoured_like_the_aws_cli_does() {
    profile_endpoint_reaches_moto(
        "services = local-moto\n",
        "[services local-moto]\nsts =\n  endpoint_url = MOTO\n",
    );
}
