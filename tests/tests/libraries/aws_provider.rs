//! The AWS credentials provider against the fake Fly API and the recording, fault-injecting
//! fake STS: what reaches STS, error mapping and retries, chains, single flight, caching.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use aws_config::meta::credentials::CredentialsProviderChain;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use fly_oidc::Env;
use fly_oidc::cache::CacheConfig;
use fly_oidc::time::{ManualTimeSource, SharedTimeSource};
use fly_oidc_aws::{ErrorKind, FlyOidcCredentialsProvider, Rejection};
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::aws::{
    ROLE, config, fakes_on, not_on_fly_client, our_error, provider, web_machine,
};
use std::time::{Duration, UNIX_EPOCH};

async fn fakes() -> (FakeFlyApi, FakeSts) {
    let fly = FakeFlyApi::builder()
        .app("web")
        .machine_id("148e2150b5e089")
        .machine_name("quiet-dawn-42")
        .start()
        .await
        .unwrap();
    let sts = FakeSts::builder()
        .account_id("123456789012")
        .trust(fly.issuer(), fly.jwks())
        .audience("sts.amazonaws.com")
        .subject("acme:web:*")
        .start()
        .await
        .unwrap();
    (fly, sts)
}

#[tokio::test]
async fn session_name_duration_and_policies_reach_sts() {
    let (fly, sts) = fakes().await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let provider = provider(&fly, &sts.url())
        .session_name("nightly-job")
        .duration(Duration::from_secs(900))
        .policy(policy)
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .policy_arn("arn:aws:iam::123456789012:policy/extra")
        .build()
        .unwrap();
    let before = SharedTimeSource::default().now();
    let assumed = provider.assume_role().await.unwrap();
    let reqs = sts.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.action.as_deref(), Some("AssumeRoleWithWebIdentity"));
    assert_eq!(r.version.as_deref(), Some("2011-06-15"));
    assert_eq!(r.role_arn.as_deref(), Some(ROLE));
    assert_eq!(r.role_session_name.as_deref(), Some("nightly-job"));
    assert_eq!(r.duration(), Some(900));
    assert_eq!(r.policy.as_deref(), Some(policy));
    assert_eq!(
        r.policy_arns,
        vec![
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:iam::123456789012:policy/extra"
        ]
    );
    assert!(!r.signed, "AssumeRoleWithWebIdentity must be sent unsigned");
    // The token sent is the one the fake Fly API minted, for the STS audience.
    let issued = fly.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(r.web_identity_token.as_deref(), Some(issued[0].as_str()));
    assert_eq!(
        fly.requests()[0].audience.as_deref(),
        Some("sts.amazonaws.com")
    );
    // The answer.
    let issued_creds = &sts.issued_credentials()[0];
    let creds = &assumed.credentials;
    assert_eq!(creds.access_key_id(), issued_creds.access_key_id);
    assert_eq!(creds.secret_access_key(), issued_creds.secret_access_key);
    assert_eq!(
        creds.session_token(),
        Some(issued_creds.session_token.as_str())
    );
    assert_eq!(creds.expiry(), Some(assumed.expires_at));
    // STS's Expiration (whole seconds), unless it lies past what the requested 900 s allow from
    // when the request started by our clock: then that (STS answered in a later second).
    let sent_secs = issued_creds
        .expiration
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let issued_at = UNIX_EPOCH + Duration::from_secs(sent_secs);
    let capped =
        before + Duration::from_secs(900) <= assumed.expires_at && assumed.expires_at < issued_at;
    assert!(
        assumed.expires_at == issued_at || capped,
        "{:?} is neither STS's {issued_at:?} nor the cap",
        assumed.expires_at
    );
    assert_eq!(assumed.account_id.as_deref(), Some("123456789012"));
    assert_eq!(creds.account_id().map(|a| a.as_str()), Some("123456789012"));
    assert_eq!(
        assumed.assumed_role_arn.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/fly-app/nightly-job")
    );
    assert_eq!(assumed.subject.as_deref(), Some("acme:web:quiet-dawn-42"));
    assert!(format!("{creds:?}").contains("FlyOidc"));
}

#[tokio::test]
async fn defaults_come_from_the_environment_and_the_token() {
    let (fly, sts) = fakes().await;
    // Session name from the token's claims when the environment has no FLY_APP_NAME.
    let p = FlyOidcCredentialsProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(Env::from_slice(&[
                    ("AWS_ROLE_ARN", ROLE),
                    ("AWS_ENDPOINT_URL_STS", &sts.url()),
                    ("AWS_REGION", "eu-west-1"),
                ]))
                .with_fly_client(fly_oidc_tests::fly_client(&fly)),
        )
        .build()
        .unwrap();
    assert_eq!(p.settings().region(), "eu-west-1");
    p.assume_role().await.unwrap();
    let r = &sts.requests()[0];
    assert_eq!(
        r.role_session_name.as_deref(),
        Some("fly-web-148e2150b5e089")
    );
    assert_eq!(r.duration(), Some(3600));
    assert_eq!(r.policy, None);
    assert!(r.policy_arns.is_empty());
    // AWS_ROLE_SESSION_NAME and FLY_OIDC_AUDIENCE from the environment; the fake Fly
    // API over HTTP from FLY_API_HOSTNAME + FLY_API_TOKEN.
    let p = FlyOidcCredentialsProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[
                ("AWS_ROLE_ARN", ROLE),
                ("AWS_ROLE_SESSION_NAME", "from-env"),
                ("FLY_OIDC_AUDIENCE", "sts.amazonaws.com"),
                ("AWS_ENDPOINT_URL", &sts.url()),
                ("FLY_API_HOSTNAME", &fly.url()),
                ("FLY_API_TOKEN", fly.api_token()),
            ])),
        )
        .build()
        .unwrap();
    p.assume_role().await.unwrap();
    assert_eq!(
        sts.requests()[1].role_session_name.as_deref(),
        Some("from-env")
    );
    assert!(!fly.requests()[1].unix);
}

struct Outcome {
    result: Result<Credentials, CredentialsError>,
    fly: FakeFlyApi,
    sts: FakeSts,
}

async fn with_faults(faults: Vec<Fault>) -> Outcome {
    let (fly, sts) = fakes().await;
    sts.script(faults);
    let provider = provider(&fly, &sts.url()).build().unwrap();
    let result = provider.provide_credentials().await;
    Outcome { result, fly, sts }
}

impl Outcome {
    /// Our error inside the failed result, which must be a `ProviderError`.
    fn provider_error(&self) -> &fly_oidc_aws::Error {
        let err = self.result.as_ref().unwrap_err();
        assert!(matches!(err, CredentialsError::ProviderError(_)), "{err:?}");
        our_error(err)
    }
}

/// Build the provider and load credentials, which must fail.
async fn credentials_error(builder: fly_oidc_aws::Builder) -> CredentialsError {
    builder.build().unwrap().credentials().await.unwrap_err()
}

/// A trust rejection names the role, the token's `iss`, `aud` and `sub`, the one cause STS
/// reported (`cause`, and not `not_cause`), and no setting unrelated to trust.
fn assert_trust_message(message: &str, code: &str, cause: &[&str], not_cause: &[&str]) {
    let facts = [
        code,
        ROLE,
        "https://oidc.fly.io/acme",
        "sts.amazonaws.com",
        "acme:web:quiet-dawn-42",
    ];
    for needle in facts.iter().chain(cause) {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    let unrelated = [
        "duration",
        "DURATION",
        "FLY_OIDC_AWS_POLICY",
        "region",
        "REGION",
    ];
    for needle in unrelated.iter().chain(not_cause) {
        assert!(!message.contains(needle), "{message:?} names {needle:?}");
    }
    assert!(!message.contains("eyJ"), "a token leaked into {message:?}");
}

/// What an `AccessDenied` message names: the trust policy's keys for this issuer and the
/// next step; not the OIDC provider.
fn assert_access_denied(message: &str) {
    assert_trust_message(
        message,
        "AccessDenied",
        &[
            "trust policy",
            "\"oidc.fly.io/acme:aud\" the aud sts.amazonaws.com",
            "\"oidc.fly.io/acme:sub\" the sub acme:web:quiet-dawn-42",
            "arn:aws:iam::123456789012:oidc-provider/oidc.fly.io/acme",
            "fly-oidc aws check-trust-policy",
        ],
        &["OpenID Connect provider"],
    );
}

async fn trust_failure(fault: Fault, code: &str, check: impl Fn(&str)) {
    let out = with_faults(vec![fault]).await;
    let ours = out.provider_error();
    assert_eq!(ours.kind(), ErrorKind::TrustRejected);
    assert_eq!(ours.code(), Some(code));
    assert!(!ours.is_transient());
    check(ours.message());
    // Not retried.
    assert_eq!(out.sts.request_count(), 1);
    assert_eq!(out.fly.request_count(), 1);
}

/// The next step of a refused token names the audience when it is not the default: without
/// it, both commands would check and print a policy for `sts.amazonaws.com`.
#[tokio::test]
async fn a_refused_tokens_next_step_carries_a_non_default_audience() {
    let fly = FakeFlyApi::builder().app("web").start().await.unwrap();
    let trusting = |aud: &str| {
        FakeSts::builder()
            .trust(fly.issuer(), fly.jwks())
            .audience(aud)
            .subject("acme:api:*")
    };
    let sts = trusting("sts.amazonaws.com").start().await.unwrap();
    let m = our_error(&credentials_error(provider(&fly, &sts.url())).await)
        .message()
        .to_owned();
    assert!(m.contains("check-trust-policy trust.json` names"), "{m}");
    assert!(!m.contains("--audience"), "{m}");
    let sts = trusting("my app").start().await.unwrap();
    let err = credentials_error(provider(&fly, &sts.url()).audience("my app")).await;
    let m = our_error(&err).message().to_owned();
    assert_eq!(
        Rejection::of(our_error(&err)),
        Some(Rejection::TrustPolicy),
        "{m}"
    );
    assert!(
        m.contains("check-trust-policy trust.json --audience 'my app'` names"),
        "{m}"
    );
    assert!(
        m.contains("`fly-oidc aws setup --audience 'my app'` prints"),
        "{m}"
    );
}

#[tokio::test]
async fn a_real_trust_mismatch_is_reported_with_the_tokens_claims() {
    // No scripted fault: the fake STS checks the token like STS does, and the trust
    // policy's subject pattern does not match this app.
    let fly = FakeFlyApi::builder()
        .app("web")
        .machine_name("quiet-dawn-42");
    let fly = fly.start().await.unwrap();
    let trusting = || FakeSts::builder().trust(fly.issuer(), fly.jwks());
    let sts = trusting().subject("acme:api:*").start().await.unwrap();
    let err = credentials_error(provider(&fly, &sts.url())).await;
    let ours = our_error(&err);
    assert_eq!(ours.kind(), ErrorKind::TrustRejected);
    assert_access_denied(ours.message());
    assert_eq!(Rejection::of(ours), Some(Rejection::TrustPolicy));
    // Wrong audience: InvalidIdentityToken from the fake's OIDC-provider check.
    let sts = trusting()
        .audience("sts.amazonaws.com")
        .start()
        .await
        .unwrap();
    let err = credentials_error(provider(&fly, &sts.url()).audience("something-else")).await;
    let ours = our_error(&err);
    assert_eq!(ours.code(), Some("InvalidIdentityToken"));
    assert_eq!(Rejection::of(ours), Some(Rejection::IncorrectAudience));
    let m = ours.message();
    assert!(m.contains("Incorrect token audience"), "{m}");
    assert!(m.contains("audience something-else"), "{m}");
    assert!(m.contains("Builder::audience or FLY_OIDC_AUDIENCE"), "{m}");
    assert!(
        m.contains("OpenID Connect provider for https://oidc.fly.io/acme"),
        "{m}"
    );
    assert!(
        m.contains(ROLE) && m.contains("acme:web:quiet-dawn-42"),
        "{m}"
    );
    for unrelated in ["trust policy", "duration", "region", "FLY_OIDC_AWS_POLICY"] {
        assert!(!m.contains(unrelated), "{unrelated:?} in {m}");
    }
}

/// STS's `ValidationError` for a duration above the role's `MaxSessionDuration` is an invalid
/// setting: the message names the duration sent, its setting (as it was set) and the fix.
#[tokio::test]
async fn a_duration_above_the_roles_maximum_names_the_duration_and_its_setting() {
    let fly = web_machine().await;
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .max_session_duration(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let from_env = Env::from_slice(&[("FLY_OIDC_AWS_DURATION_SECONDS", "7200")]);
    for (builder, setting) in [
        (
            provider(&fly, &sts.url()).duration(Duration::from_secs(7200)),
            "(from Builder::duration)",
        ),
        (
            provider(&fly, &sts.url()).configure(&config(&fly).with_env(from_env)),
            "(from FLY_OIDC_AWS_DURATION_SECONDS)",
        ),
    ] {
        let err = credentials_error(builder).await;
        assert!(
            matches!(err, CredentialsError::InvalidConfiguration(_)),
            "{err:?}"
        );
        let ours = our_error(&err);
        assert_eq!(ours.kind(), ErrorKind::InvalidConfiguration);
        assert_eq!(ours.code(), Some("ValidationError"));
        assert!(!ours.is_transient());
        let m = ours.message();
        fly_oidc_tests::assert_contains_all(
            m,
            &[
                "session duration 7200 s",
                ROLE,
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                "ask for less, or raise the role's MaxSessionDuration",
                "aws iam update-role --role-name fly-app --max-session-duration 7200",
                setting,
            ],
        );
        let unrelated = [
            "trust policy",
            "FLY_OIDC_AUDIENCE",
            "region",
            "FLY_OIDC_AWS_POLICY",
        ];
        fly_oidc_tests::assert_contains_none(m, &unrelated);
    }
    assert_eq!(sts.request_count(), 2, "not retried");
}

#[tokio::test]
async fn expired_token_is_retried_once_with_a_fresh_fly_token() {
    let out = with_faults(vec![Fault::expired_token()]).await;
    let creds = out.result.unwrap();
    assert!(!creds.access_key_id().is_empty());
    assert_eq!(out.sts.request_count(), 2);
    assert_eq!(out.fly.request_count(), 2);
    let reqs = out.sts.requests();
    assert_ne!(
        reqs[0].web_identity_token, reqs[1].web_identity_token,
        "the second try must use a fresh token"
    );
}

#[tokio::test]
async fn expired_token_twice_fails_after_one_retry() {
    let out = with_faults(vec![Fault::expired_token(), Fault::expired_token()]).await;
    let ours = out.provider_error();
    assert_eq!(ours.code(), Some("ExpiredTokenException"));
    assert!(
        ours.message().contains("expired twice"),
        "{}",
        ours.message()
    );
    assert!(ours.message().contains("clock"));
    assert_eq!(out.sts.request_count(), 2);
    assert_eq!(out.fly.request_count(), 2);
}

async fn transient_failure(fault: Fault, code: &str) {
    // Three attempts (the default), all failing.
    let out = with_faults(vec![fault.clone(), fault.clone(), fault.clone()]).await;
    let ours = out.provider_error();
    assert_eq!(ours.kind(), ErrorKind::Transient);
    assert!(ours.is_transient());
    assert_eq!(ours.code(), Some(code));
    assert!(
        ours.message().contains("after 3 attempts"),
        "{}",
        ours.message()
    );
    assert!(ours.message().contains("try again"), "{}", ours.message());
    assert_eq!(out.sts.request_count(), 3);
    // The SDK retries with the same token: one Fly token for all three attempts.
    assert_eq!(out.fly.request_count(), 1);
    // Two failures, then success on the third attempt.
    let out = with_faults(vec![fault.clone(), fault]).await;
    out.result.unwrap();
    assert_eq!(out.sts.request_count(), 3);
}

#[tokio::test]
async fn timeouts_and_resets_are_retried() {
    let (fly, sts) = fakes().await;
    sts.script(vec![
        Fault::Delay(Duration::from_secs(2)),
        Fault::Reset,
        Fault::Delay(Duration::from_secs(2)),
    ]);
    let provider = provider(&fly, &sts.url())
        .configure(&config(&fly).with_timeout(Duration::from_millis(300)))
        .build()
        .unwrap();
    let err = provider.credentials().await.unwrap_err();
    let ours = our_error(&err);
    assert_eq!(ours.kind(), ErrorKind::Transient, "{ours:?}");
    assert!(
        ours.message().contains("after 3 attempts"),
        "{}",
        ours.message()
    );
    assert_eq!(sts.request_count(), 3);
    // Recovers once STS answers.
    provider.credentials().await.unwrap();
    assert_eq!(sts.request_count(), 4);
}

#[tokio::test]
async fn malformed_policy_fails_at_once() {
    let cases = [
        (Fault::malformed_policy(), "FLY_OIDC_AWS_POLICY"),
        (Fault::region_disabled(), "region us-east-1"),
    ];
    for (fault, says) in cases {
        let out = with_faults(vec![fault]).await;
        let ours = our_error(out.result.as_ref().unwrap_err());
        assert_eq!(ours.kind(), ErrorKind::Rejected);
        assert!(ours.message().contains(says), "{}", ours.message());
        assert_eq!(out.sts.request_count(), 1);
    }
}

#[tokio::test]
async fn garbage_answers_are_invalid_responses() {
    let out = with_faults(vec![Fault::Malformed]).await;
    let err = out.result.unwrap_err();
    assert!(matches!(err, CredentialsError::Unhandled(_)), "{err:?}");
    assert_eq!(our_error(&err).kind(), ErrorKind::InvalidResponse);
}

#[tokio::test]
async fn not_on_fly_and_no_role_are_not_loaded() {
    let sts = FakeSts::start().await.unwrap();
    let p = FlyOidcCredentialsProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(Env::from_slice(&[("AWS_ROLE_ARN", ROLE)]))
                .with_fly_client(not_on_fly_client()),
        )
        .endpoint_url(sts.url())
        .build()
        .unwrap();
    let err = p.credentials().await.unwrap_err();
    assert!(
        matches!(err, CredentialsError::CredentialsNotLoaded(_)),
        "{err:?}"
    );
    let ours = our_error(&err);
    assert_eq!(ours.kind(), ErrorKind::NotOnFly);
    assert!(
        ours.message().contains("FLY_API_HOSTNAME"),
        "{}",
        ours.message()
    );
    // No role: not loaded, and no Fly token is requested.
    let fly = FakeFlyApi::start().await.unwrap();
    let p = FlyOidcCredentialsProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(Env::from_slice(&[]))
                .with_fly_client(fly_oidc_tests::fly_client(&fly)),
        )
        .endpoint_url(sts.url())
        .build()
        .unwrap();
    let err = p.credentials().await.unwrap_err();
    assert!(matches!(err, CredentialsError::CredentialsNotLoaded(_)));
    assert!(our_error(&err).message().contains("AWS_ROLE_ARN"));
    assert_eq!(fly.request_count(), 0);
    assert_eq!(sts.request_count(), 0);
}

#[tokio::test]
async fn invalid_settings_fail_at_build() {
    let cases = [
        (("AWS_ROLE_ARN", "arn:aws:iam::1:role/x"), "12 digits"),
        (
            ("FLY_API_HOSTNAME", "https://api.machines.dev"),
            "FLY_API_TOKEN",
        ),
    ];
    for (var, needle) in cases {
        let err = FlyOidcCredentialsProvider::builder()
            .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[var])))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{var:?}: {err}");
    }
    let too_long = Duration::from_secs(50_000);
    let builder = FlyOidcCredentialsProvider::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])));
    let err = builder.duration(too_long).build().unwrap_err();
    assert!(err.to_string().contains("43200"), "{err}");
}

#[tokio::test]
async fn the_chain_falls_back_when_not_on_fly() {
    let fly_provider = FlyOidcCredentialsProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(Env::from_slice(&[("AWS_ROLE_ARN", ROLE)]))
                .with_fly_client(not_on_fly_client()),
        )
        .build()
        .unwrap();
    let chain = CredentialsProviderChain::first_try("FlyOidc", fly_provider).or_else(
        "Static",
        Credentials::new("AKIDSTATIC", "static-secret", None, None, "Static"),
    );
    let creds = chain.provide_credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "AKIDSTATIC");

    // On Fly, the chain takes FlyOidc's credentials...
    let (fly, sts) = fakes().await;
    let chain =
        CredentialsProviderChain::first_try("FlyOidc", provider(&fly, &sts.url()).build().unwrap())
            .or_else(
                "Static",
                Credentials::new("AKIDSTATIC", "static-secret", None, None, "Static"),
            );
    let creds = chain.provide_credentials().await.unwrap();
    assert_eq!(
        creds.access_key_id(),
        sts.issued_credentials()[0].access_key_id
    );
    // ...and a trust-policy failure stops the chain instead of silently falling back.
    sts.fail_next(1, Fault::access_denied());
    let chain =
        CredentialsProviderChain::first_try("FlyOidc", provider(&fly, &sts.url()).build().unwrap())
            .or_else(
                "Static",
                Credentials::new("AKIDSTATIC", "static-secret", None, None, "Static"),
            );
    assert!(chain.provide_credentials().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_on_a_cold_provider_make_one_request_each() {
    let fly = FakeFlyApi::start().await.unwrap();
    let sts = FakeSts::builder()
        .latency(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let provider = provider(&fly, &sts.url()).build().unwrap();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.provide_credentials().await })
        })
        .collect();
    let mut keys = std::collections::HashSet::new();
    for t in tasks {
        keys.insert(t.await.unwrap().unwrap().access_key_id().to_owned());
    }
    assert_eq!(keys.len(), 1);
    assert_eq!(fly.request_count(), 1);
    assert_eq!(sts.request_count(), 1);
}

#[tokio::test]
async fn refreshes_ahead_of_expiry_and_serves_cached_credentials_through_an_outage() {
    let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let (fly, sts) = fakes_on(&clock).await;
    let provider = provider(&fly, &sts.url())
        .configure(&config(&fly).with_time_source(SharedTimeSource::new(clock.clone())))
        .cache_config(CacheConfig::default().with_jitter(Duration::ZERO))
        .build()
        .unwrap();
    let first = provider.provide_credentials().await.unwrap();
    assert_eq!(
        first.expiry(),
        Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000 + 3600))
    );
    // 54 minutes in: served from the cache.
    clock.advance(Duration::from_secs(54 * 60));
    let again = provider.provide_credentials().await.unwrap();
    assert_eq!(again.access_key_id(), first.access_key_id());
    assert_eq!(sts.request_count(), 1);
    // 56 minutes in: inside the 5-minute window, so refreshed ahead of expiry.
    clock.advance(Duration::from_secs(2 * 60));
    let second = provider.provide_credentials().await.unwrap();
    assert_ne!(second.access_key_id(), first.access_key_id());
    assert_eq!(sts.request_count(), 2);
    assert_eq!(fly.request_count(), 2);

    // Static stability: 56 minutes into the second credentials STS is down; the cached
    // (still valid) credentials keep being served.
    clock.advance(Duration::from_secs(56 * 60));
    sts.fail_next(3, Fault::service_unavailable());
    let during = provider.provide_credentials().await.unwrap();
    assert_eq!(during.access_key_id(), second.access_key_id());
    assert_eq!(sts.request_count(), 5);
    // Within the failure backoff, no new attempt.
    let during = provider.provide_credentials().await.unwrap();
    assert_eq!(during.access_key_id(), second.access_key_id());
    assert_eq!(sts.request_count(), 5);
    assert_eq!(
        provider
            .fallback_on_interrupt()
            .map(|c| c.access_key_id().to_owned()),
        Some(second.access_key_id().to_owned())
    );
    // Past expiry with STS still down: never the expired credentials, an error.
    clock.advance(Duration::from_secs(5 * 60));
    sts.fail_next(3, Fault::service_unavailable());
    let err = provider.provide_credentials().await.unwrap_err();
    assert_eq!(our_error(&err).kind(), ErrorKind::Transient);
    assert!(provider.fallback_on_interrupt().is_none());
    // STS is back.
    let third = provider.provide_credentials().await.unwrap();
    assert_ne!(third.access_key_id(), second.access_key_id());
}

#[tokio::test]
async fn the_cache_can_be_turned_off_and_assume_role_bypasses_it() {
    let (fly, sts) = fakes().await;
    let cached = provider(&fly, &sts.url()).build().unwrap();
    cached.credentials().await.unwrap();
    cached.credentials().await.unwrap();
    assert_eq!(sts.request_count(), 1);
    cached.assume_role().await.unwrap();
    assert_eq!(sts.request_count(), 2);
    let uncached = provider(&fly, &sts.url()).disable_cache().build().unwrap();
    uncached.credentials().await.unwrap();
    uncached.credentials().await.unwrap();
    assert_eq!(sts.request_count(), 4);
    assert!(uncached.fallback_on_interrupt().is_none());
}

mod endpoints {
    //! Which STS endpoint the SDK calls for each region/FIPS/dual-stack/endpoint setting:
    //! a recording HTTP client notes the URL and forwards the request to the fake STS.
    use super::*;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone)]
    struct Recording {
        inner: SharedHttpClient,
        base: String,
        seen: Arc<Mutex<Vec<String>>>,
    }

    #[derive(Debug)]
    struct RecordingConnector {
        inner: SharedHttpConnector,
        base: String,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl HttpClient for Recording {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(RecordingConnector {
                inner: self.inner.http_connector(settings, components),
                base: self.base.clone(),
                seen: self.seen.clone(),
            })
        }
    }

    impl HttpConnector for RecordingConnector {
        fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
            let uri = request.uri().to_owned();
            self.seen.lock().unwrap().push(uri);
            request.set_uri(format!("{}/", self.base)).unwrap();
            self.inner.call(request)
        }
    }

    async fn endpoint_for(env: &[(&str, &str)]) -> String {
        let fly = FakeFlyApi::start().await.unwrap();
        let sts = FakeSts::start().await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let http = Recording {
            inner: fly_oidc_aws::https_client(),
            base: sts.url(),
            seen: seen.clone(),
        };
        let mut vars = vec![("AWS_ROLE_ARN", ROLE)];
        vars.extend_from_slice(env);
        let provider = FlyOidcCredentialsProvider::builder()
            .configure(
                &fly_oidc::ProviderConfig::default()
                    .with_env(Env::from_slice(&vars))
                    .with_fly_client(fly_oidc_tests::fly_client(&fly)),
            )
            .http_client(SharedHttpClient::new(http))
            .build()
            .unwrap();
        provider.assume_role().await.unwrap();
        assert_eq!(sts.request_count(), 1);
        let seen = seen.lock().unwrap();
        seen[0].clone()
    }

    #[tokio::test]
    async fn regional_fips_and_dual_stack_endpoints() {
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[], "https://sts.us-east-1.amazonaws.com/"),
            (
                &[("AWS_REGION", "eu-west-1")],
                "https://sts.eu-west-1.amazonaws.com/",
            ),
            (
                &[("AWS_DEFAULT_REGION", "ap-southeast-2")],
                "https://sts.ap-southeast-2.amazonaws.com/",
            ),
            (
                &[("AWS_USE_FIPS_ENDPOINT", "true")],
                "https://sts-fips.us-east-1.amazonaws.com/",
            ),
            (
                &[("AWS_USE_DUALSTACK_ENDPOINT", "true")],
                "https://sts.us-east-1.api.aws/",
            ),
            (
                &[
                    ("AWS_USE_FIPS_ENDPOINT", "true"),
                    ("AWS_USE_DUALSTACK_ENDPOINT", "true"),
                ],
                "https://sts-fips.us-east-1.api.aws/",
            ),
            (
                &[("AWS_ENDPOINT_URL_STS", "https://sts.example.test:8443")],
                "https://sts.example.test:8443/",
            ),
            (
                &[
                    ("AWS_ENDPOINT_URL", "https://all.example.test"),
                    ("AWS_ENDPOINT_URL_STS", "https://sts.example.test"),
                ],
                "https://sts.example.test/",
            ),
        ];
        for (env, want) in cases {
            assert_eq!(endpoint_for(env).await, want, "{env:?}");
        }
    }
}

/// What the provider sent to STS, in the terms of the settings table.
#[derive(Debug, PartialEq)]
struct Sent {
    role_arn: Option<String>,
    session_name: Option<String>,
    duration: Option<u64>,
    policy: Option<String>,
    policy_arns: Vec<String>,
    audience: Vec<String>,
}

fn sent(request: &fly_oidc_testkit::aws_sts::RecordedStsRequest) -> Sent {
    let jwt = request.web_identity_token.clone().unwrap();
    let token = fly_oidc::FlyToken::parse(jwt).unwrap();
    Sent {
        role_arn: request.role_arn.clone(),
        session_name: request.role_session_name.clone(),
        duration: request.duration(),
        policy: request.policy.clone(),
        policy_arns: request.policy_arns.clone(),
        audience: token
            .claims()
            .aud
            .as_ref()
            .map(|a| a.iter().map(str::to_owned).collect())
            .unwrap_or_default(),
    }
}

/// The library provider and the `fly-oidc` binary, given the same environment table (and,
/// in the last case, the same values as builder settings and flags), send STS the same
/// request: one settings resolution, in the library.
#[test]
fn library_and_binary_resolve_the_same_settings_from_one_environment() {
    let fly = FakeFlyApi::builder()
        .app("web")
        .machine_id("148e2150b5e089")
        .start_blocking()
        .unwrap();
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .audience("custom-aud")
        .start_blocking()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let policy_file = dir.path().join("policy.json");
    std::fs::write(&policy_file, policy).unwrap();
    let config_file = dir.path().join("config");
    std::fs::write(
        &config_file,
        format!(
            "[profile fake]\nregion = ap-south-1\nendpoint_url = {}\n",
            sts.url()
        ),
    )
    .unwrap();
    let socket = fly.socket_path().display().to_string();
    let home = dir.path().display().to_string();
    let at_policy = format!("@{}", policy_file.display());
    let sts_url = sts.url();
    let common: Vec<(&str, &str)> = vec![
        ("HOME", &home),
        ("FLY_OIDC_SOCKET", &socket),
        ("FLY_OIDC_NO_CACHE", "1"),
        ("AWS_ROLE_ARN", ROLE),
        ("FLY_OIDC_AUDIENCE", "custom-aud"),
        ("AWS_ROLE_SESSION_NAME", "env-session"),
        ("FLY_OIDC_AWS_DURATION_SECONDS", "1800"),
        ("FLY_OIDC_AWS_POLICY", &at_policy),
        (
            "FLY_OIDC_AWS_POLICY_ARNS",
            "arn:aws:iam::aws:policy/ReadOnlyAccess,arn:aws:iam::123456789012:policy/extra",
        ),
    ];
    let config_path = config_file.display().to_string();
    let by_variable = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_STS", sts_url.as_str()),
    ];
    let by_profile = [
        ("AWS_CONFIG_FILE", config_path.as_str()),
        ("AWS_PROFILE", "fake"),
    ];
    let flag_session = "flag-session";
    let flag_arn = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (case, endpoint, flags) in [
        ("endpoint by variable", &by_variable[..], false),
        ("endpoint by profile", &by_profile[..], false),
        ("flags beat variables", &by_variable[..], true),
    ] {
        let env: Vec<(&str, &str)> = common.iter().chain(endpoint).copied().collect();
        // The library, configured by the environment alone (plus builder settings).
        let mut builder = FlyOidcCredentialsProvider::builder()
            .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&env)))
            .disable_cache();
        if flags {
            builder = builder
                .session_name(flag_session)
                .duration(Duration::from_secs(900))
                .policy_arn(flag_arn);
        }
        let provider = builder.build().unwrap();
        runtime.block_on(provider.assume_role()).unwrap();
        // The binary, with the same environment (plus the same values as flags).
        let mut cmd = std::process::Command::new(fly_oidc_tests::fly_oidc_bin());
        cmd.env_clear()
            .envs(env.iter().copied())
            .args(["aws", "credential-process"]);
        if flags {
            cmd.args(["--session-name", flag_session, "--duration-seconds", "900"])
                .args(["--policy-arn", flag_arn]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let requests = sts.requests();
        let [.., library, binary] = &requests[..] else {
            panic!("{case}: {} STS requests", requests.len());
        };
        let (library, binary) = (sent(library), sent(binary));
        assert_eq!(library, binary, "{case}");
        let expected = Sent {
            role_arn: Some(ROLE.to_owned()),
            session_name: Some(if flags { flag_session } else { "env-session" }.to_owned()),
            duration: Some(if flags { 900 } else { 1800 }),
            policy: Some(policy.to_owned()),
            policy_arns: if flags {
                vec![flag_arn.to_owned()]
            } else {
                vec![
                    "arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned(),
                    "arn:aws:iam::123456789012:policy/extra".to_owned(),
                ]
            },
            audience: vec!["custom-aud".to_owned()],
        };
        assert_eq!(library, expected, "{case}");
        let region = if endpoint == &by_profile[..] {
            "ap-south-1"
        } else {
            "eu-west-1"
        };
        assert_eq!(provider.settings().region(), region, "{case}");
        assert_eq!(provider.settings().endpoint_url(), Some(sts_url.as_str()));
    }
    assert_eq!(sts.requests().len(), 6);
}

/// Issue 10, class 4: STS `InvalidIdentityToken` "Couldn't retrieve verification key from your
/// identity provider" is STS failing to fetch the issuer's JWKS: retried like every transient
/// STS error (same attempts and jittered backoff), and when every attempt fails, an error that
/// says so, names the issuer and is transient, not trust-policy advice.
#[tokio::test]
async fn sts_failing_to_fetch_the_issuers_keys_is_retried_then_reported_as_transient() {
    // Once, then success: two STS requests, one Fly token.
    let out = with_faults(vec![Fault::verification_key_unavailable()]).await;
    out.result.unwrap();
    assert_eq!(out.sts.request_count(), 2);
    assert_eq!(out.fly.request_count(), 1);

    // Every attempt.
    let fault = Fault::verification_key_unavailable();
    let out = with_faults(vec![fault.clone(), fault.clone(), fault]).await;
    let err = out.result.unwrap_err();
    assert!(matches!(err, CredentialsError::ProviderError(_)), "{err:?}");
    let ours = our_error(&err);
    assert_eq!(ours.kind(), ErrorKind::Transient);
    assert!(ours.is_transient());
    assert_eq!(ours.code(), Some("InvalidIdentityToken"));
    let msg = ours.message();
    assert!(
        msg.contains(&format!(
            "could not fetch the signing keys of the token's issuer {} after 3 attempts",
            out.fly.issuer()
        )),
        "{msg}"
    );
    assert!(msg.contains("probably transient"), "{msg}");
    assert!(!msg.contains("trust policy"), "{msg}");
    assert_eq!(Rejection::of(ours), Some(Rejection::VerificationKey));
    assert_eq!(out.sts.request_count(), 3);

    // Any other InvalidIdentityToken still fails at once.
    let out = with_faults(vec![Fault::invalid_identity_token()]).await;
    assert!(out.result.is_err());
    assert_eq!(out.sts.request_count(), 1);
}

/// Issue 10, class 5: inside an AWS SDK client, a Machines API that accepts the connection and
/// never answers ends with this provider's own message, not the SDK's "identity resolver timed
/// out" (the budget is set low here to keep the test short; the default is checked below);
/// `CredentialProcess` keeps the same budget.
#[tokio::test]
async fn a_hung_machines_api_ends_with_the_providers_message_inside_an_sdk_client() {
    let (fly, sts) = fakes().await;
    fly.fail_next(5, Fault::Delay(Duration::from_secs(120)));
    let provider = provider(&fly, &sts.url())
        .configure(&config(&fly).with_total_timeout(Duration::from_millis(1500)))
        .build()
        .unwrap();
    let process = fly_oidc_aws::credential_process::CredentialProcess::builder()
        .no_cache(true)
        .build(provider.clone())
        .unwrap();
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(sts.url())
        .credentials_provider(provider)
        .build();
    let client = aws_sdk_sts::Client::from_conf(config);
    let started = std::time::Instant::now();
    let err = client.get_caller_identity().send().await.unwrap_err();
    let elapsed = started.elapsed();
    let mut chain = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        chain.push_str(&format!("{e}: "));
        source = e.source();
    }
    assert!(
        chain
            .contains("the Machines API did not answer: no Fly token from the Machines API socket"),
        "{chain}"
    );
    assert!(
        chain.contains("1.5 s budget (ProviderConfig::with_total_timeout)"),
        "{chain}"
    );
    assert!(!chain.contains("identity resolver timed out"), "{chain}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    // `credential_process` (`CredentialProcess`) keeps the same budget.
    let err = process.credentials().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("1.5 s budget"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(sts.request_count(), 0);
}

/// The default budget ends well inside the AWS SDK identity cache's default load timeout,
/// computed as aws-smithy-runtime does (`pessimistic_load_timeout` in
/// `client/identity/cache/lazy.rs`): the worst-case backoffs of the client's retry config plus
/// `attempts × max(2 × connect timeout, attempt timeout)`, with the SDK's default retry config
/// (read from the SDK) and its default connect timeout, 3.1 s
/// (`aws_smithy_runtime::client::defaults::DEFAULT_CONNECT_TIMEOUT`, crate-private).
#[test]
fn the_default_budget_is_well_inside_the_sdks_default_load_timeout() {
    let retry = aws_sdk_sts::config::retry::RetryConfig::standard();
    let connect = Duration::from_millis(3100);
    let attempts = retry.max_attempts();
    let backoffs: Duration = (0..attempts.saturating_sub(1))
        .map(|i| (retry.initial_backoff() * 2u32.pow(i)).min(retry.max_backoff()))
        .sum();
    let load_timeout = backoffs + (connect * 2) * attempts;
    assert!(
        load_timeout > Duration::from_secs(21) && load_timeout < Duration::from_secs(22),
        "the SDK's defaults changed: {load_timeout:?}; revisit DEFAULT_TOTAL_TIMEOUT"
    );
    // "Well inside": room for the SDK's own work and a slow scheduler.
    assert!(
        fly_oidc::DEFAULT_TOTAL_TIMEOUT + Duration::from_secs(5) <= load_timeout,
        "{:?} vs {load_timeout:?}",
        fly_oidc::DEFAULT_TOTAL_TIMEOUT
    );
}

/// One test per row, `name => check(fault, code);`, each running `check(fault, code)`.
macro_rules! fault_tests {
    ($($name:ident => $check:ident($fault:expr, $code:literal);)+) => {
        $(
            #[tokio::test]
            async fn $name() {
                $check($fault, $code).await;
            }
        )+
    };
}

// STS trust rejections fail at once, each naming the one cause STS reported.
#[tokio::test]
async fn no_oidc_provider_fails_at_once_naming_the_tokens_issuer() {
    trust_failure(
        Fault::invalid_identity_token(),
        "InvalidIdentityToken",
        |message| {
            assert_trust_message(
                message,
                "InvalidIdentityToken",
                &["no IAM OpenID Connect provider for the token's issuer https://oidc.fly.io/acme"],
                &["trust policy", "check-trust-policy", "FLY_OIDC_AUDIENCE"],
            )
        },
    )
    .await;
}

#[tokio::test]
async fn idp_rejected_claim_fails_at_once_pointing_at_doctor() {
    trust_failure(Fault::idp_rejected_claim(), "IDPRejectedClaim", |message| {
        assert_trust_message(
            message,
            "IDPRejectedClaim",
            &["fly-oidc doctor"],
            &["trust policy", "OpenID Connect provider"],
        )
    })
    .await;
}

#[tokio::test]
async fn access_denied_fails_at_once_naming_the_trust_policy_keys() {
    trust_failure(Fault::access_denied(), "AccessDenied", assert_access_denied).await;
}

// STS faults: transient ones are retried.
fault_tests! {
    idp_communication_error_is_retried_three_times =>
        transient_failure(Fault::idp_communication_error(), "IDPCommunicationError");
    throttling_is_retried_three_times =>
        transient_failure(Fault::throttling(), "Throttling");
    service_unavailable_is_retried_three_times =>
        transient_failure(Fault::service_unavailable(), "ServiceUnavailable");
    internal_failure_is_retried_three_times =>
        transient_failure(Fault::internal_failure(), "InternalFailure");
}
