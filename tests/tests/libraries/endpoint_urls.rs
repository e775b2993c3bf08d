//! One rule for every endpoint URL (the Machines API, AWS STS, Google STS and IAM): what
//! plain HTTP is allowed, how FLY_OIDC_ALLOW_INSECURE_HTTP is read, and that an error about a
//! URL never repeats the credentials in it.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc::{Env, FlyOidcClient};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_tests::aws::ROLE;

const PROVIDER: &str =
    "projects/123456789/locations/global/workloadIdentityPools/fly/providers/acme";

fn fly(env: &Env) -> FlyOidcClient {
    FlyOidcClient::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(env.clone())
                .with_allow_insecure_http(false),
        )
        .token_file("/nonexistent/token")
        .build()
        .unwrap()
}

/// The error (as text) of building each client with `url`, or `None` when it builds.
fn errors(url: &str, env: &Env) -> [Option<String>; 4] {
    let fly_api = FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(env.clone()))
        .api_url(url)
        .api_token("t")
        .build()
        .err()
        .map(|e| e.to_string());
    let aws = FlyOidcCredentialsProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(env.clone())
                .with_fly_client(fly(env)),
        )
        .role_arn(ROLE)
        .endpoint_url(url)
        .build()
        .err()
        .map(|e| e.to_string());
    let gcp = |sts: bool| {
        let b = GcpTokenProvider::builder()
            .configure(
                &fly_oidc::ProviderConfig::default()
                    .with_env(env.clone())
                    .with_fly_client(fly(env)),
            )
            .provider(PROVIDER);
        let b = if sts { b.sts_url(url) } else { b.iam_url(url) };
        b.build().err().map(|e| e.to_string())
    };
    [fly_api, aws, gcp(true), gcp(false)]
}

#[test]
fn credentials_in_a_url_are_refused_and_never_repeated() {
    let env = Env::from_slice(&[]);
    for err in errors("https://me:hunter2secret@example.com/v1/token", &env) {
        let err = err.expect("refused");
        assert!(
            err.contains("credentials in the URL are not allowed"),
            "{err}"
        );
        assert!(
            !err.contains("hunter2secret") && !err.contains("me:"),
            "{err}"
        );
        assert!(err.contains("https://example.com/v1/token"), "{err}");
    }
}

#[test]
fn plain_http_only_to_loopback_and_the_fly_api_also_to_api_internal() {
    let env = Env::from_slice(&[]);
    for url in [
        "http://127.0.0.1:9/v1/token",
        "http://localhost:9",
        "http://[::1]:9",
    ] {
        assert_eq!(errors(url, &env), [None, None, None, None], "{url}");
    }
    let [fly_api, aws, sts, iam] = errors("http://_api.internal:4280", &env);
    assert_eq!(fly_api, None, "the Machines API on Fly's private network");
    for err in [aws, sts, iam] {
        let err = err.expect("an STS endpoint is never _api.internal over plain http");
        assert!(
            err.contains("plain http is only used for loopback"),
            "{err}"
        );
    }
    for err in errors("http://sts.example.com", &env) {
        let err = err.expect("refused");
        assert!(err.contains("FLY_OIDC_ALLOW_INSECURE_HTTP=1"), "{err}");
    }
    for err in errors("ftp://example.com", &env) {
        assert!(err.expect("refused").contains("unsupported scheme"));
    }
}

#[test]
fn every_client_reads_the_insecure_http_opt_in_the_same_way() {
    for (value, allowed) in [
        ("1", true),
        ("true", true),
        ("True", true),
        ("YES", true),
        (" on ", true),
        ("0", false),
        ("false", false),
        ("Off", false),
        ("no", false),
    ] {
        let env = Env::from_slice(&[("FLY_OIDC_ALLOW_INSECURE_HTTP", value)]);
        let results = errors("http://sts.example.com", &env);
        for (i, err) in results.iter().enumerate() {
            assert_eq!(err.is_none(), allowed, "client {i} with {value:?}: {err:?}");
        }
    }
    // Anything else is an error naming the variable, from every client, even for an https
    // URL (the value is wrong whatever the URL).
    let env = Env::from_slice(&[("FLY_OIDC_ALLOW_INSECURE_HTTP", "nope")]);
    for (i, err) in errors("https://sts.example.com", &env).iter().enumerate() {
        let err = err.as_deref().unwrap_or_default();
        assert!(
            err.contains("\"nope\" is not a yes/no value")
                && err.contains("FLY_OIDC_ALLOW_INSECURE_HTTP"),
            "client {i}: {err:?}"
        );
    }
}
