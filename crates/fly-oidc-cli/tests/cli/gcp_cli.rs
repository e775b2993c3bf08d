//! `fly-oidc gcp executable | credential-config | access-token`, run as a child process
//! against the fake Fly API and the fake Google STS + IAM Credentials.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use crate::support::{assert_json_contains, fly_oidc_bin, run_in, stdout_json};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::google::FakeGoogle;
use fly_oidc_tests::gcp::{Fakes, SA};
use fly_oidc_tests::{assert_contains_all, assert_contains_none};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// The failure response `gcp executable` printed (exit 1, version 1, not a success, `code`).
fn failure_response(out: &Output, code: &str) -> Value {
    assert_eq!(out.status.code(), Some(1));
    let response = stdout_json(out);
    assert_eq!(response["version"], 1);
    assert_eq!(response["success"], false);
    assert_eq!(response["code"], code);
    response
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn executable_prints_a_google_response_and_nothing_on_stderr() {
    let fly = FakeFlyApi::builder().org("acme").start().await.unwrap();
    let google = FakeGoogle::builder(&fly).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let output_file = home.path().join("cache").join("gcp-response.json");
    std::fs::create_dir_all(output_file.parent().unwrap()).unwrap();
    let socket = fly.socket_path().to_str().unwrap().to_owned();
    let audience = google.sts_audience();
    // `fly-oidc gcp executable ARGS` as Google's libraries run it: our socket, the
    // audience, and `extra` variables.
    let executable = |args: &[&str], extra: &[(&str, &str)]| {
        let mut envs = vec![
            ("FLY_OIDC_SOCKET", socket.as_str()),
            ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", audience.as_str()),
        ];
        envs.extend_from_slice(extra);
        run_in(
            &[&["gcp", "executable"][..], args].concat(),
            &envs,
            home.path(),
        )
    };
    let out = executable(
        &[],
        &[
            (
                "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
                "urn:ietf:params:oauth:token-type:jwt",
            ),
            ("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0"),
            (
                "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE",
                output_file.to_str().unwrap(),
            ),
        ],
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        out.stderr.is_empty(),
        "stderr must stay empty: {}",
        text(&out.stderr)
    );
    let response = stdout_json(&out);
    assert_eq!(response["version"], 1);
    assert_eq!(response["success"], true);
    assert_eq!(
        response["token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    let jwt = response["id_token"].as_str().unwrap();
    let claims = fly_oidc_testkit::verify_rs256(jwt, &fly.jwks()).unwrap();
    // `//iam.googleapis.com/...` became `https://iam.googleapis.com/...`.
    assert_eq!(claims["aud"], google.token_audience());
    assert_eq!(response["expiration_time"], claims["exp"]);

    let written = std::fs::read_to_string(&output_file).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&written).unwrap(), response);
    let mode = std::fs::metadata(&output_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the output file holds a token");
    // No stray temporary files next to it.
    assert_eq!(
        std::fs::read_dir(output_file.parent().unwrap())
            .unwrap()
            .count(),
        1
    );

    // An output file that cannot be written is a failure response, not a silent success.
    let unwritable = "/nonexistent-dir/gcp-response.json";
    let out = executable(&[], &[("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", unwritable)]);
    let failure = failure_response(&out, "OUTPUT_FILE_UNWRITABLE");
    let message = failure["message"].as_str().unwrap();
    // The file given and the system's reason, not the temporary file the write went through.
    assert!(
        message.starts_with(
            "could not write GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE \
             /nonexistent-dir/gcp-response.json: No such file or directory; "
        ),
        "{message}"
    );
    assert!(!message.contains(".fly-oidc-"), "{message}");
    assert!(!text(&out.stdout).contains("eyJ"), "no token in a failure");
    // A directory in its place.
    let dir = output_file.parent().unwrap().to_str().unwrap();
    let out = executable(&[], &[("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", dir)]);
    let failure = failure_response(&out, "OUTPUT_FILE_UNWRITABLE");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("OUTPUT_FILE {dir} is a directory; ")),
        "{message}"
    );

    // --audience beats the environment.
    let out = executable(&["--audience", "custom-aud"], &[]);
    assert!(out.status.success());
    let jwt = stdout_json(&out)["id_token"].as_str().unwrap().to_owned();
    assert_eq!(
        fly_oidc_testkit::verify_rs256(&jwt, &fly.jwks()).unwrap()["aud"],
        "custom-aud"
    );
}

#[tokio::test]
async fn executable_failures_are_google_failure_responses() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("no-socket");
    let out = run_in(
        &["gcp", "executable"],
        &[
            ("FLY_OIDC_DEFAULT_SOCKET", missing.to_str().unwrap()),
            (
                "GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE",
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
            ),
        ],
        home.path(),
    );
    let response = failure_response(&out, "NOT_ON_FLY");
    assert_json_contains(&response["message"], "FLY_API_HOSTNAME", &response);
    // Google's libraries read stderr with stdout: only the response is written.
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // With --log-file, the cause is written there, as `fly-oidc token` says it: the step,
    // then the token client's message once.
    let log = home.path().join("executable.log");
    let out = run_in(
        &["gcp", "executable", "--log-file", log.to_str().unwrap()],
        &[
            ("FLY_OIDC_DEFAULT_SOCKET", missing.to_str().unwrap()),
            (
                "GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE",
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
            ),
        ],
        home.path(),
    );
    failure_response(&out, "NOT_ON_FLY");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("Fly token failed: no Machines API socket at"),
        "{logged}"
    );

    // No audience at all.
    let out = run_in(&["gcp", "executable"], &[], home.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["code"], "MISSING_AUDIENCE");

    // A SAML configuration is not ours.
    let out = run_in(
        &["gcp", "executable", "--audience", "x"],
        &[(
            "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
            "urn:ietf:params:oauth:token-type:saml2",
        )],
        home.path(),
    );
    assert_eq!(stdout_json(&out)["code"], "UNSUPPORTED_TOKEN_TYPE");

    // A Fly API error: the status and message, never a token.
    let fly = FakeFlyApi::builder().start().await.unwrap();
    fly.fail_next(
        10,
        fly_oidc_testkit::Fault::Status(403, r#"{"error":"not allowed"}"#.into()),
    );
    let out = run_in(
        &["gcp", "executable", "--audience", "x"],
        &[("FLY_OIDC_SOCKET", fly.socket_path().to_str().unwrap())],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let response = stdout_json(&out);
    assert_eq!(response["code"], "FLY_API_REJECTED");
    assert_json_contains(&response["message"], "not allowed", &response);
}

#[tokio::test]
async fn credential_config_runs_this_binary() {
    let home = tempfile::tempdir().unwrap();
    let provider = "projects/123/locations/global/workloadIdentityPools/fly-pool/providers/acme";
    let out = run_in(
        &[
            "gcp",
            "credential-config",
            "--provider",
            &format!("//iam.googleapis.com/{provider}"),
            "--service-account",
            SA,
        ],
        &[],
        home.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = stdout_json(&out);
    assert_eq!(config["type"], "external_account");
    assert_eq!(
        config["audience"],
        format!("//iam.googleapis.com/{provider}")
    );
    assert_eq!(
        config["subject_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(config["token_url"], "https://sts.googleapis.com/v1/token");
    assert_eq!(
        config["token_info_url"],
        "https://sts.googleapis.com/v1/introspect"
    );
    assert_eq!(
        config["service_account_impersonation_url"],
        format!(
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{SA}:generateAccessToken"
        )
    );
    let exe = fly_oidc_bin().canonicalize().unwrap();
    assert_eq!(
        config["credential_source"]["executable"]["command"],
        format!("{} gcp executable", exe.display())
    );
    assert_eq!(
        config["credential_source"]["executable"]["timeout_millis"],
        30000
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("gcloud auth login --cred-file="),
        "{stderr}"
    );

    // --output, custom endpoints, token source flags carried into the command; no impersonation.
    let file = home.path().join("gcp.json");
    let token_file = home.path().join("token");
    let out = run_in(
        &[
            "gcp",
            "credential-config",
            "--provider",
            provider,
            "--sts-url",
            "http://127.0.0.1:1234/v1/token",
            "--output",
            file.to_str().unwrap(),
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
        home.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(config["token_url"], "http://127.0.0.1:1234/v1/token");
    assert_eq!(
        config["token_info_url"],
        "http://127.0.0.1:1234/v1/introspect"
    );
    assert!(config.get("service_account_impersonation_url").is_none());
    assert_eq!(
        config["credential_source"]["executable"]["command"],
        format!(
            "{} gcp executable --token-file {}",
            exe.display(),
            token_file.display()
        )
    );
    assert!(text(&out.stderr).contains(&format!(
        "GOOGLE_APPLICATION_CREDENTIALS={}",
        file.display()
    )));

    // The provider from the environment; a missing or malformed one is an error.
    let out = run_in(
        &["gcp", "credential-config"],
        &[("FLY_OIDC_GCP_PROVIDER", provider)],
        home.path(),
    );
    assert!(out.status.success());
    let usage_error = |args: &[&str], envs: &[(&str, &str)], needles: &[&str]| {
        let out = run_in(args, envs, home.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        for needle in needles {
            assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
        }
    };
    usage_error(
        &["gcp", "credential-config"],
        &[],
        &["set --provider or FLY_OIDC_GCP_PROVIDER"],
    );
    let bad_provider = [
        "gcp",
        "credential-config",
        "--provider",
        "projects/my-proj/x",
    ];
    usage_error(
        &bad_provider,
        &[],
        &[
            "invalid workload identity pool provider",
            "(from --provider)",
        ],
    );
    // Plain http to a remote host is refused.
    let sts_url = "http://sts.example.com/v1/token";
    let remote_sts = [
        "gcp",
        "credential-config",
        "--provider",
        provider,
        "--sts-url",
        sts_url,
    ];
    usage_error(&remote_sts, &[], &["plain http", "(from --sts-url)"]);
    // The same from the environment names the variable.
    usage_error(
        &["gcp", "credential-config", "--provider", provider],
        &[("FLY_OIDC_GCP_STS_URL", sts_url)],
        &["(from FLY_OIDC_GCP_STS_URL)"],
    );
}

#[tokio::test]
async fn access_token_prints_a_google_token() {
    let Fakes { fly, google } = Fakes::start().await;
    let home = tempfile::tempdir().unwrap();
    let socket = fly.socket_path().to_str().unwrap().to_owned();
    let (sts, iam) = (google.sts_url(), google.iam_url());
    let base = ["gcp", "access-token", "--sts-url", &sts, "--iam-url", &iam];

    let out = run_in(
        &base,
        &[
            ("FLY_OIDC_SOCKET", &socket),
            ("FLY_OIDC_GCP_PROVIDER", google.provider()),
        ],
        home.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert_eq!(google.token_info(&token).unwrap().service_account, None);

    let mut args = base.to_vec();
    args.extend([
        "--provider",
        google.provider(),
        "--service-account",
        SA,
        "--json",
    ]);
    let out = run_in(&args, &[("FLY_OIDC_SOCKET", &socket)], home.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = stdout_json(&out);
    let token = json["access_token"].as_str().unwrap();
    assert_eq!(
        google.token_info(token).unwrap().service_account.as_deref(),
        Some(SA)
    );
    assert_eq!(json["token_type"], "Bearer");
    let expires_in = json["expires_in"].as_u64().unwrap();
    assert!((3590..=3600).contains(&expires_in), "{json}");

    // Denied impersonation: one line saying what to grant, no secret anywhere.
    let mut args = base.to_vec();
    args.extend([
        "--provider",
        google.provider(),
        "--service-account",
        "other@p.iam.gserviceaccount.com",
    ]);
    let out = run_in(&args, &[("FLY_OIDC_SOCKET", &socket)], home.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("fly-oidc: error: service account impersonation failed:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("roles/iam.workloadIdentityUser"),
        "{stderr}"
    );
    let mut secrets = fly.issued_tokens();
    secrets.extend(google.issued_tokens());
    for secret in secrets {
        assert!(!stderr.contains(&secret));
    }

    // --verbose adds the cause chain but still no secrets.
    let mut args = base.to_vec();
    args.extend([
        "--provider",
        google.provider(),
        "--audience",
        "wrong",
        "--verbose",
    ]);
    let out = run_in(&args, &[("FLY_OIDC_SOCKET", &socket)], home.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Google STS token exchange failed"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid_grant"), "{stderr}");
    assert!(!stderr.contains("eyJ"), "{stderr}");
    // The audience is named by this command's flag, never by the variable of the Fly token's
    // and AWS's audience (which does not set Google's).
    assert!(
        stderr.contains("the audience sent, wrong (the token's aud; set by --audience, default "),
        "{stderr}"
    );
    assert!(!stderr.contains("FLY_OIDC_AUDIENCE"), "{stderr}");

    // Google STS unreachable: its URL setting, named by the flag and the variable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sts = format!("http://{}/v1/token", closed.local_addr().unwrap());
    drop(closed);
    let args = ["gcp", "access-token", "--sts-url", &sts];
    let envs = [
        ("FLY_OIDC_SOCKET", socket.as_str()),
        ("FLY_OIDC_GCP_PROVIDER", google.provider()),
    ];
    let out = run_in(&args, &envs, home.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_contains_all(
        &stderr,
        &[
            &format!("calling Google STS at {sts} failed: could not connect"),
            "and its URL: --sts-url or FLY_OIDC_GCP_STS_URL)",
        ],
    );
    assert_contains_none(&stderr, &["sts_url"]);
}

/// A token cache file no run of the executable could write (a directory, or in a directory
/// that does not exist) is an invalid --token-cache-file (exit 2), and nothing is written.
#[test]
fn credential_config_refuses_a_token_cache_file_it_could_never_write() {
    let provider = "projects/123/locations/global/workloadIdentityPools/fly-pool/providers/acme";
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("gcp.json");
    let missing_dir = home.path().join("nodir").join("cache.json");
    let a_file = home.path().join("a-file");
    std::fs::write(&a_file, "x").unwrap();
    let under_a_file = a_file.join("cache.json");
    let home_dir = home.path().display().to_string();
    let link = home.path().join("link.json");
    std::os::unix::fs::symlink(&a_file, &link).unwrap();
    let config_again = format!("{home_dir}/./gcp.json");
    let cases = [
        (
            config.to_str().unwrap(),
            "the token cache file is also the configuration's output file".to_owned(),
        ),
        (
            config_again.as_str(),
            "the token cache file is also the configuration's output file".to_owned(),
        ),
        (
            link.to_str().unwrap(),
            format!(
                "{} is a symbolic link, which would be replaced",
                link.display()
            ),
        ),
        (
            missing_dir.to_str().unwrap(),
            format!(
                "the token cache file {} cannot be created: {home_dir}/nodir does not exist; \
                 create that directory first or give a file path in an existing directory \
                 (from --token-cache-file)",
                missing_dir.display()
            ),
        ),
        (
            under_a_file.to_str().unwrap(),
            format!(
                "{} cannot be created: {} is not a directory; ",
                under_a_file.display(),
                a_file.display()
            ),
        ),
        (
            home_dir.as_str(),
            format!(
                "the token cache file {home_dir} is a directory; give a file path in it, such \
                 as {home_dir}/gcp-token.json (from --token-cache-file)"
            ),
        ),
    ];
    // `gcp credential-config --token-cache-file CACHE` with `more` arguments.
    let with_cache = |cache: &str, more: &[&str]| {
        let args = ["gcp", "credential-config", "--provider", provider];
        let args = [&args[..], &["--token-cache-file", cache], more].concat();
        run_in(&args, &[], home.path())
    };
    for (cache, says) in cases {
        let out = with_cache(cache, &["-o", config.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cache}: {stderr}");
        assert!(
            stderr.starts_with("fly-oidc: error: invalid setting: "),
            "{stderr}"
        );
        assert!(stderr.contains(&says), "{stderr}");
        assert!(!config.exists(), "{cache}: no configuration is written");
    }
    // `--output` to a symbolic link: refused, the link left as it is (never replaced).
    let args = ["gcp", "credential-config", "--provider", provider, "-o"];
    let out = run_in(
        &[&args[..], &[link.to_str().unwrap()]].concat(),
        &[],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is a symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&a_file).unwrap(), "x");
    // A file in an existing directory (made absolute in the configuration) is accepted.
    let cache = home.path().join("cache.json");
    let out = with_cache(cache.to_str().unwrap(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        stdout_json(&out)["credential_source"]["executable"]["output_file"],
        cache.to_str().unwrap()
    );
}

/// The library's resolve step and the binary read one environment table the same way: the
/// same provider, endpoints and service account, or the same invalid setting (exit 2).
#[test]
fn the_library_and_the_binary_resolve_the_same_settings() {
    let provider = "projects/42/locations/global/workloadIdentityPools/fly/providers/acme";
    let table: &[&[(&str, &str)]] = &[
        &[("FLY_OIDC_GCP_PROVIDER", provider)],
        &[
            ("FLY_OIDC_GCP_PROVIDER", provider),
            ("FLY_OIDC_GCP_SERVICE_ACCOUNT", SA),
            ("FLY_OIDC_GCP_STS_URL", "http://127.0.0.1:9/v1/token"),
            ("FLY_OIDC_GCP_IAM_URL", "https://iam.example.com/"),
        ],
        &[
            ("FLY_OIDC_GCP_PROVIDER", provider),
            ("FLY_OIDC_GCP_STS_URL", "http://sts.example.com/v1/token"),
            ("FLY_OIDC_ALLOW_INSECURE_HTTP", "yes"),
        ],
        &[],
        &[("FLY_OIDC_GCP_PROVIDER", "projects/my-project")],
        &[
            ("FLY_OIDC_GCP_PROVIDER", provider),
            ("FLY_OIDC_GCP_SERVICE_ACCOUNT", "me"),
        ],
        &[
            ("FLY_OIDC_GCP_PROVIDER", provider),
            ("FLY_OIDC_GCP_IAM_URL", "http://iam.example.com"),
        ],
        &[
            ("FLY_OIDC_GCP_PROVIDER", provider),
            ("FLY_OIDC_ALLOW_INSECURE_HTTP", "maybe"),
        ],
    ];
    let home = tempfile::tempdir().unwrap();
    for env in table {
        let library = fly_oidc_gcp::GcpTokenProvider::builder()
            .configure(
                &fly_oidc::ProviderConfig::default().with_env(fly_oidc::Env::from_slice(env)),
            )
            .settings();
        let out = run_in(&["gcp", "credential-config"], env, home.path());
        match library {
            Ok(settings) => {
                assert!(out.status.success(), "{env:?}: {}", text(&out.stderr));
                let config = stdout_json(&out);
                assert_eq!(
                    config["audience"],
                    settings.provider().sts_audience(),
                    "{env:?}"
                );
                assert_eq!(config["token_url"], settings.sts_url(), "{env:?}");
                let impersonation = config["service_account_impersonation_url"].as_str();
                match settings.service_account() {
                    Some(sa) => assert_eq!(
                        impersonation,
                        Some(
                            format!(
                                "{}/v1/projects/-/serviceAccounts/{sa}:generateAccessToken",
                                settings.iam_url()
                            )
                            .as_str()
                        ),
                        "{env:?}"
                    ),
                    None => assert_eq!(impersonation, None, "{env:?}"),
                }
            }
            Err(err) => {
                assert_eq!(out.status.code(), Some(2), "{env:?}");
                let stderr = text(&out.stderr);
                assert!(stderr.contains(&err.reason()), "{env:?}: {stderr}");
                match err.origin() {
                    Some(fly_oidc::Origin::Env(var)) => {
                        assert!(stderr.contains(&format!("(from {var})")), "{stderr}")
                    }
                    _ => assert!(
                        stderr.contains("set --provider or FLY_OIDC_GCP_PROVIDER"),
                        "{stderr}"
                    ),
                }
            }
        }
    }
}

/// A token file holding a token minted for `audience` that expires `exp_offset` seconds from
/// now (negative: in the past), and the RFC 3339 time of its `exp`.
fn token_file_expiring(
    fly: &FakeFlyApi,
    audience: &str,
    exp_offset: i64,
    dir: &Path,
) -> (std::path::PathBuf, String) {
    #[allow(clippy::disallowed_methods)] // the fake's clock and the binary's are the system's
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = now + exp_offset;
    let jwt = fly.mint_with(Some(audience), |claims| {
        claims.insert("iat".into(), (exp - 600).into());
        claims.insert("nbf".into(), (exp - 600).into());
        claims.insert("exp".into(), exp.into());
    });
    let path = dir.join("oidc_token");
    std::fs::write(&path, jwt).unwrap();
    let at = fly_oidc::time::format_rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp as u64),
    );
    (path, at)
}

/// Issue 10, class 1: a token file whose token expired 5 minutes ago (or has less than 30 s
/// left) is a failure response naming the file and the expiry, never `"success":true`.
#[tokio::test]
async fn executable_refuses_a_stale_token_file() {
    let fly = FakeFlyApi::builder().start().await.unwrap();
    let google = FakeGoogle::builder(&fly).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    for (offset, says) in [(-300, "that expired at"), (20, "less than the 30 s")] {
        let (file, at) = token_file_expiring(&fly, &google.token_audience(), offset, home.path());
        let out = run_in(
            &["gcp", "executable", "--token-file", file.to_str().unwrap()],
            &[("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &google.sts_audience())],
            home.path(),
        );
        assert!(!out.status.success(), "offset {offset}");
        let response = stdout_json(&out);
        assert_eq!(response["success"], false, "{response}");
        assert_eq!(response["code"], "STALE_TOKEN", "{response}");
        let message = response["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("the token file {}", file.display())),
            "{message}"
        );
        assert!(message.contains(&at), "{message}");
        assert!(message.contains(says), "{message}");
        assert!(
            message.contains("only when AWS_ROLE_ARN is set"),
            "{message}"
        );
        // The token file's setting as it was given: the flag here.
        assert!(
            message.contains("drop the token file setting (--token-file)"),
            "{message}"
        );
        assert!(!message.contains("eyJ"), "{message}");
    }
    // Given by the variable, the variable is named.
    let (file, _) = token_file_expiring(&fly, &google.token_audience(), -300, home.path());
    let out = run_in(
        &["gcp", "executable"],
        &[
            ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &google.sts_audience()),
            ("FLY_OIDC_TOKEN_FILE", file.to_str().unwrap()),
        ],
        home.path(),
    );
    let message = stdout_json(&out)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("drop the token file setting (FLY_OIDC_TOKEN_FILE)"),
        "{message}"
    );
    // A token with time left is handed on.
    let (file, _) = token_file_expiring(&fly, &google.token_audience(), 120, home.path());
    let out = run_in(
        &["gcp", "executable", "--token-file", file.to_str().unwrap()],
        &[("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &google.sts_audience())],
        home.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(stdout_json(&out)["success"], true);
}

/// Issue 10, class 2: `--verbose` and `RUST_LOG=trace` add nothing to stdout or stderr of
/// `gcp executable` on success; `--log-file` gets the diagnostics; an unwritable log file is
/// a failure response.
#[tokio::test]
async fn executable_output_is_the_response_alone_under_verbose_and_rust_log() {
    let fly = FakeFlyApi::builder().start().await.unwrap();
    let google = FakeGoogle::builder(&fly).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let socket = fly.socket_path().to_str().unwrap().to_owned();
    let envs = [
        ("FLY_OIDC_SOCKET", socket.as_str()),
        ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &google.sts_audience()),
        ("RUST_LOG", "trace"),
    ];
    let out = run_in(&["gcp", "executable", "--verbose"], &envs, home.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "{}",
        text(&out.stdout)
    );
    assert_eq!(stdout_json(&out)["success"], true);

    let log = home.path().join("debug.log");
    let out = run_in(
        &[
            "gcp",
            "executable",
            "--verbose",
            "--log-file",
            log.to_str().unwrap(),
        ],
        &envs,
        home.path(),
    );
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    assert_eq!(stdout_json(&out)["success"], true);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("requesting a Fly OIDC token"), "{logged}");
    assert!(!logged.contains("eyJ"), "{logged}");

    // A failure's diagnosis is in the response and, with its causes, in the log file.
    let out = run_in(
        &["gcp", "executable", "--log-file", log.to_str().unwrap()],
        &[
            ("FLY_OIDC_SOCKET", "/nonexistent/fly.sock"),
            ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &google.sts_audience()),
        ],
        home.path(),
    );
    assert!(!out.status.success());
    let message = stdout_json(&out)["message"].as_str().unwrap().to_owned();
    assert!(message.contains("/nonexistent/fly.sock"), "{message}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("/nonexistent/fly.sock"), "{logged}");

    // A log file that cannot be opened: the protocol's failure response.
    let out = run_in(
        &["gcp", "executable"],
        &[
            ("FLY_OIDC_SOCKET", socket.as_str()),
            ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &google.sts_audience()),
            ("FLY_OIDC_LOG_FILE", "/nonexistent/dir/debug.log"),
        ],
        home.path(),
    );
    assert!(!out.status.success());
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    let response = stdout_json(&out);
    assert_eq!(response["code"], "INVALID_CONFIGURATION");
    let message = response["message"].as_str().unwrap();
    assert!(message.contains("(from FLY_OIDC_LOG_FILE)"), "{message}");
}

/// Issue 10, class 3: the binary's path is quoted when it holds a space, and refused (exit 2,
/// with what to do) when it holds a character no consumer reads back the same.
#[test]
fn credential_config_quotes_a_spaced_path_and_refuses_an_unquotable_one() {
    let home = tempfile::tempdir().unwrap();
    let provider = "projects/123/locations/global/workloadIdentityPools/fly/providers/acme";
    let copy_to = |dir: &str| {
        let dir = home.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("fly-oidc");
        crate::support::install_binary_at(&copy);
        copy
    };
    let spaced = copy_to("my tools");
    let out = Command::new(&spaced)
        .args(["gcp", "credential-config", "--provider", provider])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = stdout_json(&out);
    assert_eq!(
        config["credential_source"]["executable"]["command"],
        format!(
            "\"{}\" gcp executable",
            spaced.canonicalize().unwrap().display()
        )
    );
    for dir in ["a$b", "a\"b", "a\\b", "a`b", "a\nb"] {
        let odd = copy_to(dir);
        let out = Command::new(&odd)
            .args(["gcp", "credential-config", "--provider", provider])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{dir:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty());
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("fly-oidc: error: invalid setting: cannot write a command line"),
            "{stderr}"
        );
        assert!(stderr.contains("move or copy the binary"), "{stderr}");
    }
}
