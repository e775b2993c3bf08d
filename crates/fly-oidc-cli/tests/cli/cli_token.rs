//! `fly-oidc token` run as a process against the fake Machines API.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::run;
use fly_oidc_testkit::{FakeFlyApi, Fault};

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn prints_a_verifiable_token_for_the_audience() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap();
    let out = run(
        &["token", "--socket", sock, "--audience", "sts.amazonaws.com"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "nothing on stderr on success");
    let jwt = text(&out.stdout);
    assert!(jwt.ends_with('\n'));
    let claims = fly_oidc_testkit::verify_rs256(jwt.trim(), &fly.jwks()).unwrap();
    assert_eq!(claims["aud"], "sts.amazonaws.com");
    assert_eq!(
        fly.requests()[0].audience.as_deref(),
        Some("sts.amazonaws.com")
    );
}

#[test]
fn global_flags_go_before_or_after_the_subcommand_and_env_gives_the_audience() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap();
    let out = run(
        &["--socket", sock, "token"],
        &[("FLY_OIDC_AUDIENCE", "from-env")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fly.requests()[0].audience.as_deref(), Some("from-env"));
    let out = run(&["token"], &[("FLY_OIDC_SOCKET", sock)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fly.requests()[1].audience,
        None,
        "no audience: Fly's default"
    );
}

#[test]
fn claims_prints_pretty_json_with_expires_in_seconds() {
    let fly = FakeFlyApi::builder()
        .app("web")
        .machine_name("quiet-sun-4242")
        .start_blocking()
        .unwrap();
    let out = run(
        &["token", "--claims"],
        &[
            ("FLY_API_HOSTNAME", &fly.url()),
            ("FLY_API_TOKEN", fly.api_token()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("\n  \"iss\""), "pretty-printed: {stdout}");
    let claims: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(claims["iss"], "https://oidc.fly.io/acme");
    assert_eq!(claims["sub"], "acme:web:quiet-sun-4242");
    assert_eq!(claims["aud"], "https://fly.io/acme");
    assert_eq!(claims["app_name"], "web");
    let left = claims["expires_in_seconds"].as_i64().unwrap();
    assert!((590..=600).contains(&left), "{left}");
    for token in fly.issued_tokens() {
        assert!(!stdout.contains(&token));
    }
}

#[test]
fn missing_default_socket_says_not_on_fly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("api");
    let out = run(
        &["token"],
        &[("FLY_OIDC_DEFAULT_SOCKET", missing.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("fly-oidc: error: Fly token failed: no Machines API socket at"));
    assert!(stderr.contains(
        "not on a Fly Machine? set the Machines API's URL (--api-url or FLY_API_HOSTNAME) and its token (FLY_API_TOKEN), or a token file (--token-file or FLY_OIDC_TOKEN_FILE)"
    ));
}

#[test]
fn errors_are_one_line_without_secrets_and_verbose_adds_causes() {
    let fly = FakeFlyApi::builder()
        .api_token("s3cr3t-api-token")
        .start_blocking()
        .unwrap();
    let env = [
        ("FLY_API_HOSTNAME", fly.url()),
        ("FLY_API_TOKEN", "wrong-token".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run(&["token"], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(!stderr.contains("wrong-token") && !stderr.contains("s3cr3t-api-token"));

    // A transport failure with --verbose shows the cause chain.
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let out = run(
        &["token", "--verbose", "--socket", dead.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("could not connect"), "{stderr}");
    assert!(stderr.contains("caused by:"), "{stderr}");

    // A token file holding something that is not a JWT: the error never echoes it.
    let file = dir.path().join("tok");
    let jwt = fly.mint(None);
    std::fs::write(&file, format!("{jwt}.{jwt}")).unwrap();
    let out = run(&["token", "--token-file", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a valid JWT"), "{stderr}");
    assert!(!stderr.contains(jwt.split('.').nth(2).unwrap()));
}

#[test]
fn claims_with_an_absurd_exp_print_without_expires_in_seconds() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let jwt = fly.mint_with(None, |claims| {
        claims.insert("exp".into(), serde_json::json!(u64::MAX));
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tok");
    std::fs::write(&file, jwt).unwrap();
    let out = run(
        &["token", "--claims", "--token-file", file.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["exp"], serde_json::json!(u64::MAX));
    assert!(claims.get("expires_in_seconds").is_none());
}

#[test]
fn fault_answers_become_clear_errors() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sock = fly.socket_path().to_str().unwrap();
    fly.fail_next(1, Fault::Malformed);
    let out = run(&["token", "--socket", sock], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a valid JWT"));
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["token", "--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("token"));
}
