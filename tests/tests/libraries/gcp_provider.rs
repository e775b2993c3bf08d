//! The Rust GCP provider against the fake Fly API and the fake Google STS + IAM Credentials.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use fly_oidc::time::{ManualTimeSource, SharedTimeSource, SystemTimeSource, TimeSource};
use fly_oidc::{Env, FlyOidcClient, ProviderConfig, RetryConfig};
use fly_oidc_gcp::{ErrorKind, GcpTokenProvider};
use fly_oidc_testkit::google::{Endpoint, unavailable_body};
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::gcp::{Fakes, SA};
use fly_oidc_tests::join_all;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Panic (showing `msg`) unless it says every one of `needles`.
fn assert_says(msg: &str, needles: &[&str]) {
    for needle in needles {
        assert!(msg.contains(needle), "{msg}");
    }
}

fn now() -> SystemTime {
    SystemTimeSource.now()
}

fn secs_between(a: SystemTime, b: SystemTime) -> i64 {
    let a = a.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let b = b.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    b - a
}

#[tokio::test]
async fn exchanges_a_fly_token_for_a_federated_access_token() {
    let f = Fakes::start().await;
    let provider = f.builder().build().unwrap();
    assert_eq!(provider.settings().service_account(), None);
    let before = now();
    let token = provider.access_token().await.unwrap();

    let info = f.issued(token.expose_secret());
    assert_eq!(info.service_account, None);
    assert_eq!(info.subject, "acme:my-app:quiet-sun-4242");
    assert_eq!(info.scopes, vec![CLOUD_PLATFORM.to_owned()]);
    let lifetime = secs_between(before, token.expires_at());
    assert!((3590..=3600).contains(&lifetime), "expires in {lifetime}s");

    // The Fly token was minted for the provider's default audience.
    let fly_requests = f.fly.requests();
    assert_eq!(fly_requests.len(), 1);
    assert_eq!(
        fly_requests[0].audience.as_deref(),
        Some(f.google.token_audience().as_str())
    );

    // The STS request is shaped as Google wants it.
    let requests = f.google.requests();
    assert_eq!(requests.len(), 1);
    let sts = &requests[0];
    assert_eq!(sts.endpoint, Endpoint::Sts);
    assert_eq!(sts.status, 200);
    assert_eq!(
        sts.authorization, None,
        "the STS exchange is unauthenticated"
    );
    assert_eq!(
        sts.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        sts.field("grant_type"),
        Some("urn:ietf:params:oauth:grant-type:token-exchange")
    );
    assert_eq!(
        sts.field("audience"),
        Some(f.google.sts_audience().as_str())
    );
    assert_eq!(
        sts.field("requested_token_type"),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    assert_eq!(
        sts.field("subject_token_type"),
        Some("urn:ietf:params:oauth:token-type:jwt")
    );
    assert_eq!(sts.field("scope"), Some(CLOUD_PLATFORM));
    assert_eq!(
        sts.field("subject_token"),
        Some(f.fly.issued_tokens()[0].as_str())
    );

    // Served from the cache afterwards.
    let again = provider.access_token().await.unwrap();
    assert_eq!(again, token);
    assert_eq!(f.google.request_count(), 1);
    assert_eq!(f.fly.request_count(), 1);
}

#[tokio::test]
async fn impersonates_a_service_account_with_scopes_and_lifetime() {
    let f = Fakes::start().await;
    let scope = "https://www.googleapis.com/auth/devstorage.read_only";
    let provider = f
        .builder()
        .service_account(SA)
        .scope(scope)
        .lifetime(Duration::from_secs(1800))
        .build()
        .unwrap();
    let before = now();
    let token = provider.access_token().await.unwrap();
    let info = f.issued(token.expose_secret());
    assert_eq!(info.service_account.as_deref(), Some(SA));
    assert_eq!(info.scopes, vec![scope.to_owned()]);
    let lifetime = secs_between(before, token.expires_at());
    assert!((1790..=1800).contains(&lifetime), "expires in {lifetime}s");

    let requests = f.google.requests();
    assert_eq!(requests.len(), 2);
    // The federated token only needs cloud-platform, to call IAM Credentials.
    assert_eq!(requests[0].field("scope"), Some(CLOUD_PLATFORM));
    let federated = f
        .google
        .issued_tokens()
        .into_iter()
        .find(|t| f.google.token_info(t).unwrap().service_account.is_none())
        .unwrap();
    let iam = &requests[1];
    assert_eq!(iam.endpoint, Endpoint::GenerateAccessToken);
    assert_eq!(
        iam.path,
        format!("/v1/projects/-/serviceAccounts/{SA}:generateAccessToken")
    );
    assert_eq!(
        iam.authorization.as_deref(),
        Some(format!("Bearer {federated}").as_str())
    );
    let body = iam.json.as_ref().unwrap();
    assert_eq!(body["scope"], serde_json::json!([scope]));
    assert_eq!(body["lifetime"], "1800s");
}

#[tokio::test]
async fn from_env_reads_the_provider_and_the_service_account() {
    let f = Fakes::start().await;
    let socket = f.fly.socket_path().to_str().unwrap().to_owned();
    let provider_name = format!("//iam.googleapis.com/{}", f.google.provider());
    let env = Env::from_slice(&[
        ("FLY_OIDC_SOCKET", socket.as_str()),
        ("FLY_OIDC_GCP_PROVIDER", provider_name.as_str()),
        ("FLY_OIDC_GCP_SERVICE_ACCOUNT", SA),
    ]);
    let provider = GcpTokenProvider::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(env))
        .sts_url(f.google.sts_url())
        .iam_url(f.google.iam_url())
        .build()
        .unwrap();
    assert_eq!(provider.settings().provider().name(), f.google.provider());
    assert_eq!(provider.settings().service_account(), Some(SA));
    let token = provider.access_token().await.unwrap();
    assert_eq!(
        f.service_account_of(token.expose_secret()).as_deref(),
        Some(SA)
    );

    // Builder settings beat the environment.
    let other = "other@my-project.iam.gserviceaccount.com";
    let provider = GcpTokenProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[
                ("FLY_OIDC_GCP_PROVIDER", provider_name.as_str()),
                ("FLY_OIDC_GCP_SERVICE_ACCOUNT", SA),
            ])),
        )
        .service_account(other)
        .build()
        .unwrap();
    assert_eq!(provider.settings().service_account(), Some(other));

    let err = GcpTokenProvider::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
        .build()
        .unwrap_err();
    assert_eq!(err.setting().builder_method(), "provider");
    assert!(err.to_string().contains("FLY_OIDC_GCP_PROVIDER"), "{err}");
}

#[tokio::test]
async fn refreshes_ahead_of_expiry_and_shares_one_refresh() {
    let f = Fakes::start().await;
    let clock = ManualTimeSource::new(now());
    let provider = f.builder_at(&clock).build().unwrap();
    let calls: Vec<_> = (0..16).map(|_| provider.access_token()).collect();
    let tokens: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let first = tokens[0].clone();
    assert!(
        tokens.iter().all(|t| *t == first),
        "every caller gets the same token"
    );
    assert_eq!(f.google.request_count(), 1, "single flight");
    assert_eq!(f.fly.request_count(), 1);

    // 50 minutes later: still fresh.
    clock.advance(Duration::from_secs(50 * 60));
    assert_eq!(provider.access_token().await.unwrap(), first);
    assert_eq!(f.google.request_count(), 1);
    // 56 minutes: inside the 5-minute window: a new token.
    clock.advance(Duration::from_secs(6 * 60));
    let second = provider.access_token().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(f.google.request_count(), 2);
}

#[tokio::test]
async fn keeps_serving_a_valid_token_when_refresh_fails_but_never_an_expired_one() {
    let f = Fakes::start().await;
    let clock = ManualTimeSource::new(now());
    let config = f
        .config()
        .with_time_source(SharedTimeSource::new(clock.clone()))
        .with_retry(RetryConfig::disabled());
    let provider = f.builder_at(&clock).configure(&config).build().unwrap();
    let first = provider.access_token().await.unwrap();
    clock.advance(Duration::from_secs(57 * 60));
    f.google
        .fail_next(1, Fault::Status(503, unavailable_body()));
    assert_eq!(
        provider.access_token().await.unwrap(),
        first,
        "static stability"
    );
    assert_eq!(f.google.request_count(), 2);
    // Past expiry with Google still down: an error, not the expired token.
    clock.advance(Duration::from_secs(4 * 60));
    f.google
        .fail_next(1, Fault::Status(503, unavailable_body()));
    let err = provider.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.is_transient());
}

#[tokio::test]
async fn retries_transient_google_failures() {
    let f = Fakes::start().await;
    f.google
        .fail_next(1, Fault::Status(503, unavailable_body()));
    f.google
        .fail_next_iam(2, Fault::Status(500, unavailable_body()));
    let provider = f.builder().service_account(SA).build().unwrap();
    let token = provider.access_token().await.unwrap();
    assert_eq!(
        f.service_account_of(token.expose_secret()).as_deref(),
        Some(SA)
    );
    assert_eq!(f.google.request_count(), 2);
    assert_eq!(f.google.iam_request_count(), 3);

    // Still failing after the retries: a transient error with the status. (The federated
    // token is reused while valid: drop it, so the exchange is made again.)
    f.google
        .fail_next(3, Fault::Status(429, unavailable_body()));
    provider.clear_cache();
    let err = provider.fetch_access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.status(), Some(429));
    assert!(err.is_transient());
    assert_eq!(f.google.request_count(), 5);
    f.secrets()
        .assert_absent("the error", &format!("{err} {err:?}"));
}

#[tokio::test]
async fn malformed_answers_and_timeouts_are_reported() {
    let f = Fakes::start().await;
    let provider = f.builder().build().unwrap();
    f.google.fail_next(1, Fault::Malformed);
    let err = provider.fetch_access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(!err.is_transient());
    assert!(err.to_string().contains("not a JSON object"), "{err}");
    assert_eq!(f.google.request_count(), 1, "not retried");

    // An answer above the 64 KiB cap is an error, never cut into something that parses.
    let padded = format!(
        r#"{{"access_token":"ya29.padded","expires_in":3599,"token_type":"Bearer","pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    f.google.fail_next(1, Fault::Status(200, padded));
    let err = provider.fetch_access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(
        err.to_string()
            .contains("Google STS answered 200 with more than 65536 bytes"),
        "{err}"
    );
    assert_eq!(f.google.request_count(), 2, "not retried");

    let config = f
        .config()
        .with_timeout(Duration::from_millis(300))
        .with_retry(RetryConfig::disabled());
    let provider = f.builder().configure(&config).build().unwrap();
    f.google.fail_next(1, Fault::Delay(Duration::from_secs(2)));
    let err = provider.fetch_access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.is_transient());
    assert!(err.to_string().contains("timed out"), "{err}");
}

/// Run a failing exchange and return the error, checking it carries no secret.
async fn rejected(f: &Fakes, builder: fly_oidc_gcp::Builder) -> fly_oidc_gcp::Error {
    let err = builder.build().unwrap().access_token().await.unwrap_err();
    f.secrets()
        .assert_absent("the error", &format!("{err} {err:?}"));
    err
}

/// A permanent trust rejection with Google's `code` and HTTP `status`, whose message says
/// each of `says`.
fn assert_trust_rejected(err: &fly_oidc_gcp::Error, code: &str, status: u16, says: &[&str]) {
    assert_eq!(err.kind(), ErrorKind::TrustRejected);
    assert_eq!(err.code(), Some(code));
    assert_eq!(err.status(), Some(status));
    assert!(!err.is_transient());
    assert_says(&err.to_string(), says);
}

#[tokio::test]
async fn a_wrong_issuer_names_the_issuer_to_configure() {
    let f = Fakes::start_with(|g| g.issuer("https://oidc.fly.io/personal")).await;
    let err = rejected(&f, f.builder()).await;
    assert_trust_rejected(
        &err,
        "invalid_grant",
        400,
        &[
            "The issuer in ID Token https://oidc.fly.io/acme does not match",
            "its issuer (--issuer-uri) must be https://oidc.fly.io/acme",
            "not the word \"personal\"",
            f.google.provider(),
        ],
    );
    assert_eq!(f.google.request_count(), 1, "rejections are not retried");
}

#[tokio::test]
async fn a_wrong_audience_names_the_allowed_audience() {
    let f = Fakes::start().await;
    let err = rejected(&f, f.builder().audience("sts.amazonaws.com")).await;
    assert_trust_rejected(
        &err,
        "invalid_grant",
        400,
        &[
            "The audience in ID Token [sts.amazonaws.com] does not match",
            "allowed audiences must include the audience sent, sts.amazonaws.com",
            &f.google.token_audience(),
        ],
    );
}

#[tokio::test]
async fn a_failed_attribute_condition_shows_the_claims_it_saw() {
    let f = Fakes::start_with(|g| g.attribute_condition(|claims| claims["app_name"] == "billing"))
        .await;
    let err = rejected(&f, f.builder()).await;
    assert_trust_rejected(
        &err,
        "unauthorized_client",
        400,
        &[
            "rejected by the attribute condition",
            "app_name=my-app",
            "sub=acme:my-app:quiet-sun-4242",
        ],
    );
}

#[tokio::test]
async fn an_unknown_provider_says_to_check_its_name() {
    let f = Fakes::start().await;
    let other = "projects/999/locations/global/workloadIdentityPools/fly-pool/providers/nope";
    let err = rejected(&f, f.builder().provider(other)).await;
    assert_eq!(err.code(), Some("invalid_target"));
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("the provider {other} must exist and be enabled")),
        "{msg}"
    );
}

#[tokio::test]
async fn signatures_and_expiry_are_checked() {
    // A provider whose JWKS does not hold the Fly key.
    let fly = FakeFlyApi::builder().start().await.unwrap();
    let google = fly_oidc_testkit::google::FakeGoogleBuilder::new(
        serde_json::json!({"keys": []}),
        fly.issuer(),
    )
    .start()
    .await
    .unwrap();
    let f = Fakes { fly, google };
    let err = rejected(&f, f.builder()).await;
    assert_eq!(err.code(), Some("invalid_grant"));
    assert!(err.to_string().contains("signature"), "{err}");

    // An expired Fly token (from a token file).
    let f = Fakes::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oidc_token");
    let past = now().duration_since(UNIX_EPOCH).unwrap().as_secs() - 60;
    let jwt = f.fly.mint_with(Some(&f.google.token_audience()), |claims| {
        claims.insert("exp".into(), past.into());
        claims.insert("iat".into(), (past - 600).into());
    });
    std::fs::write(&file, &jwt).unwrap();
    let fly = FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
        .token_file(&file)
        .build()
        .unwrap();
    // Issue 10, class 1: never sent to Google; the error names the file and the expiry.
    let err = rejected(&f, f.builder().configure(&f.config().with_fly_client(fly))).await;
    super::token_client::assert_stale_token_file(&err, &file, "that expired at");
    assert_eq!(f.google.request_count(), 0);

    // The same token kept in memory and handed to `exchange`: refused, not sent.
    let token = fly_oidc::FlyToken::parse(jwt).unwrap();
    let err = f
        .builder()
        .build()
        .unwrap()
        .exchange(&token)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleToken);
    assert!(
        err.to_string().contains("GcpTokenProvider::exchange"),
        "{err}"
    );
    assert_eq!(f.google.request_count(), 0);
}

#[tokio::test]
async fn impersonation_denied_says_which_role_to_grant() {
    let f = Fakes::start().await;
    let stranger = "admin@other-project.iam.gserviceaccount.com";
    let err = rejected(&f, f.builder().service_account(stranger)).await;
    assert_trust_rejected(
        &err,
        "PERMISSION_DENIED",
        403,
        &[
            "iam.serviceAccounts.getAccessToken",
            "roles/iam.workloadIdentityUser",
            stranger,
            "principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/fly-pool/attribute.app/my-app",
        ],
    );
    assert_eq!(f.google.iam_request_count(), 1, "not retried");

    // A 401 from IAM: the federated token was not accepted.
    f.google.fail_next_iam(
        1,
        Fault::Status(
            401,
            r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#.into(),
        ),
    );
    let err = rejected(&f, f.builder().service_account(SA)).await;
    assert_eq!(err.kind(), ErrorKind::TrustRejected);
    assert_eq!(err.code(), Some("UNAUTHENTICATED"));
    assert!(
        err.to_string().contains("iamcredentials.googleapis.com"),
        "{err}"
    );
}

#[tokio::test]
async fn not_on_fly_is_reported_as_such() {
    let f = Fakes::start().await;
    let config = f
        .config()
        .with_fly_client(fly_oidc_tests::not_on_fly_client());
    let builder = f.builder().configure(&config);
    let err = builder.build().unwrap().access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotOnFly);
    assert!(err.is_not_on_fly());
    assert!(
        err.to_string()
            .starts_with("getting a Fly OIDC token failed: "),
        "{err}"
    );
    assert!(err.to_string().contains("FLY_API_HOSTNAME"), "{err}");
    assert_eq!(f.google.request_count(), 0);
}

#[test]
fn plain_http_only_to_loopback_unless_allowed() {
    let provider = "projects/1/locations/global/workloadIdentityPools/p/providers/x";
    let config = ProviderConfig::default()
        .with_env(Env::from_slice(&[("FLY_OIDC_TOKEN_FILE", "/nonexistent")]));
    let base = || {
        GcpTokenProvider::builder()
            .configure(&config)
            .provider(provider)
    };
    let err = base()
        .sts_url("http://sts.example.com/v1/token")
        .build()
        .unwrap_err();
    assert_eq!(err.setting().builder_method(), "sts_url");
    assert_eq!(err.origin(), Some(&fly_oidc::Origin::Builder));
    assert!(err.to_string().contains("plain http"), "{err}");
    let err = base()
        .iam_url("http://iam.example.com")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("IAM Credentials URL"), "{err}");
    assert!(
        base()
            .configure(&config.clone().with_allow_insecure_http(true))
            .sts_url("http://sts.example.com/v1/token")
            .build()
            .is_ok()
    );
    assert!(
        base()
            .sts_url("http://127.0.0.1:9/v1/token")
            .iam_url("http://[::1]:9")
            .build()
            .is_ok()
    );
    let err = base().service_account("not an email").build().unwrap_err();
    assert!(err.to_string().contains("invalid service account"), "{err}");
    let a_day = Duration::from_secs(86_400);
    let err = base().lifetime(a_day).build().unwrap_err();
    assert!(err.to_string().contains("lifetime"), "{err}");
}

#[tokio::test]
async fn secrets_never_show_in_debug_or_display() {
    let f = Fakes::start().await;
    let provider = f.builder().service_account(SA).build().unwrap();
    let token = provider.access_token().await.unwrap();
    let shown = format!("{token:?} {token} {provider:?}");
    assert!(shown.contains("** redacted **"), "{shown}");
    f.secrets().assert_absent("Debug and Display", &shown);
}

/// Issue 10, class 5: a Machines API that accepts and never answers, or a Google STS that
/// hangs, ends with this provider's own message within its budget (set low here), as does a
/// provider derived with other scopes.
#[tokio::test]
async fn a_hung_call_ends_with_the_providers_message_within_its_budget() {
    let f = Fakes::start().await;
    f.fly
        .fail_next(5, fly_oidc_testkit::Fault::Delay(Duration::from_secs(120)));
    let provider = f
        .builder()
        .configure(&f.config().with_total_timeout(Duration::from_millis(1500)))
        .build()
        .unwrap();
    let scoped = provider.with_scopes(vec![
        "https://www.googleapis.com/auth/devstorage.read_only".into(),
    ]);
    for provider in [provider, scoped] {
        let started = std::time::Instant::now();
        let err = provider.access_token().await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(err.kind(), ErrorKind::Transient);
        let msg = err.to_string();
        assert!(
            msg.starts_with("the Machines API did not answer: no Fly token from"),
            "{msg}"
        );
        assert!(
            msg.contains("1.5 s budget (ProviderConfig::with_total_timeout)"),
            "{msg}"
        );
    }
    assert_eq!(f.google.request_count(), 0);
    assert!(fly_oidc::DEFAULT_TOTAL_TIMEOUT < Duration::from_secs(30));
}

/// `GcpTokenProvider::id_token`: a Fly token, an STS exchange and IAM Credentials
/// `generateIdToken` give a Google-signed JWT for the audience, with the account's email.
#[tokio::test]
async fn id_token_is_a_signed_jwt_of_the_service_account_for_the_audience() {
    let fakes = Fakes::start().await;
    let provider = fakes.builder().service_account(SA).build().unwrap();
    let audience = "https://my-service.example.com";
    let token = provider.id_token(audience).await.unwrap();
    let claims =
        fly_oidc_testkit::verify_rs256(token.expose_secret(), &fakes.google.id_token_jwks())
            .unwrap();
    assert_eq!(claims["aud"], audience);
    assert_eq!(claims["email"], SA);
    assert_eq!(claims["iss"], "https://accounts.google.com");
    let exp = UNIX_EPOCH + Duration::from_secs(claims["exp"].as_u64().unwrap());
    assert_eq!(token.expires_at(), exp, "the expiry is the JWT's exp");
    let shown = format!("{token:?} {token}");
    assert!(
        !shown.contains(token.expose_secret()) && !shown.contains("eyJ"),
        "{shown}"
    );
    let asked: Vec<_> = fakes
        .google
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::GenerateIdToken)
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].json.as_ref().unwrap()["includeEmail"], true);

    // An account the pool may not impersonate: Google's refusal and the binding to add.
    let other = fakes
        .builder()
        .service_account("someone-else@my-project.iam.gserviceaccount.com")
        .build()
        .unwrap();
    let err = other.id_token(audience).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TrustRejected, "{err}");
    assert_says(
        &err.to_string(),
        &["PERMISSION_DENIED", "roles/iam.workloadIdentityUser"],
    );
    fakes
        .secrets()
        .assert_absent("the error", &format!("{err} {err:?}"));

    // Without a service account there is no ID token to be had.
    let federated = fakes.builder().build().unwrap();
    let err = federated.id_token(audience).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfiguration, "{err}");
    assert_says(&err.to_string(), &["FLY_OIDC_GCP_SERVICE_ACCOUNT"]);
}
