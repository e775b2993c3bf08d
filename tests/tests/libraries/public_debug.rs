//! `Debug` (`{:?}` and `{:#?}`) and, where implemented, `Display` of every public type of
//! `fly-oidc`, `fly-oidc-aws` and `fly-oidc-gcp` that can hold a secret (tokens,
//! credentials, clients, providers and builders configured with secrets, errors), built
//! for real against the fakes, contain none of the secrets the fakes issued: the Fly JWTs,
//! the Fly API token (and a wrong one we sent), the STS secret keys and session tokens,
//! and Google's access tokens.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use aws_credential_types::provider::ProvideCredentials;
use fly_oidc::cache::{CacheConfig, RefreshingCache};
use fly_oidc::time::{SharedTimeSource, SystemTimeSource, TimeSource};
use fly_oidc::{Env, FlyOidcClient, FlyToken, REDACTED, SecretString};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_gcp::google_cloud::FlySubjectTokenProvider;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::FakeGoogle;
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::aws::ROLE;
use fly_oidc_tests::fast_retry;
use fly_oidc_tests::gcp::SA;
use google_cloud_auth::credentials::subject_token::SubjectTokenProvider;
use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::time::Duration;

const WRONG_API_TOKEN: &str = "FlyV1 wrong-api-token-0123456789abcdefghijklmnopqrstuvwxyz";

/// Renderings of each public type, by type name.
#[derive(Default)]
struct Shown(BTreeMap<&'static str, Vec<String>>);

impl Shown {
    fn debug(&mut self, ty: &'static str, value: &impl Debug) {
        let list = self.0.entry(ty).or_default();
        list.push(format!("{value:?}"));
        list.push(format!("{value:#?}"));
    }

    fn both(&mut self, ty: &'static str, value: &(impl Debug + Display)) {
        self.debug(ty, value);
        self.0.get_mut(ty).unwrap().push(value.to_string());
    }

    /// An error: Debug, Display, and the Display of its whole source chain.
    fn error(&mut self, ty: &'static str, err: &(dyn std::error::Error + 'static)) {
        let list = self.0.entry(ty).or_default();
        list.push(format!("{err:?}"));
        list.push(format!("{err:#?}"));
        let mut chain = err.to_string();
        let mut cause = err.source();
        while let Some(c) = cause {
            chain.push_str(&format!(": {c} / {c:?}"));
            cause = c.source();
        }
        list.push(chain);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_public_type_shows_a_secret_in_debug_or_display() {
    let fly = FakeFlyApi::builder().app("web").start().await.unwrap();
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .start()
        .await
        .unwrap();
    let google = FakeGoogle::builder(&fly)
        .service_account(SA)
        .start()
        .await
        .unwrap();
    let mut shown = Shown::default();
    let api_token = fly.api_token().to_owned();
    // Everything goes through the HTTP source, so the API token is inside every client.
    let env = Env::from_slice(&[
        ("FLY_API_HOSTNAME", &fly.url()),
        ("FLY_API_TOKEN", &api_token),
        ("AWS_ROLE_ARN", ROLE),
    ]);
    let config = || {
        fly_oidc::ProviderConfig::default()
            .with_env(env.clone())
            .with_retry(fast_retry())
    };
    let fly_builder = || {
        FlyOidcClient::builder()
            .configure(&config())
            .api_url(fly.url())
            .api_token(api_token.as_str())
    };
    // What the providers are built with: the above, and a Fly client over HTTP.
    let provider_config = || config().with_fly_client(fly_builder().build().unwrap());

    // ---- fly-oidc
    shown.debug("fly_oidc::Env", &env);
    shown.debug("fly_oidc::Builder", &fly_builder());
    let client = fly_builder().build().unwrap();
    shown.debug("fly_oidc::FlyOidcClient", &client);
    shown.both("fly_oidc::TokenSource", client.source());
    let token: FlyToken = client.fetch_token(Some("sts.amazonaws.com")).await.unwrap();
    shown.both("fly_oidc::FlyToken", &token);
    shown.debug("fly_oidc::FlyClaims", token.claims());
    shown.debug("fly_oidc::JwtHeader", token.header());
    shown.debug("fly_oidc::Audience", &token.claims().aud);
    let secret = SecretString::new(api_token.as_str());
    shown.both("fly_oidc::SecretString", &secret);
    let cache: RefreshingCache<SecretString, String> =
        RefreshingCache::new(CacheConfig::default(), SharedTimeSource::default());
    let cached = cache
        .get_or_refresh(|| async {
            Ok((
                secret.clone(),
                SystemTimeSource.now() + Duration::from_secs(3600),
            ))
        })
        .await;
    cached.unwrap();
    shown.debug("fly_oidc::cache::RefreshingCache", &cache);
    // Errors: the API echoing a token in its error body, a wrong bearer, garbage, oversized.
    let echoed = fly.mint(Some("echoed"));
    fly.fail_next(
        1,
        Fault::Status(400, format!("{{\"error\":\"bad audience in {echoed}\"}}")),
    );
    for fault in [None, Some(Fault::Malformed), Some(Fault::Oversized)] {
        if let Some(fault) = fault {
            fly.fail_next(3, fault);
        }
        let err = client.fetch_token(Some("x")).await.unwrap_err();
        fly.clear_faults();
        shown.error("fly_oidc::Error", &err);
        shown.debug("fly_oidc::ErrorKind", &err.kind());
    }
    let wrong = FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
        .api_url(fly.url())
        .api_token(WRONG_API_TOKEN)
        .build()
        .unwrap();
    shown.debug("fly_oidc::FlyOidcClient", &wrong);
    shown.error(
        "fly_oidc::Error",
        &wrong.fetch_token(None).await.unwrap_err(),
    );
    let bad = FlyToken::parse(format!("{}.not-base64!", &echoed[..echoed.len() - 20]));
    shown.error("fly_oidc::Error", &bad.unwrap_err());

    // ---- fly-oidc-aws
    let aws_builder = || {
        FlyOidcCredentialsProvider::builder()
            .configure(&provider_config())
            .endpoint_url(sts.url())
            .policy(r#"{"Version":"2012-10-17","Statement":[]}"#)
    };
    shown.debug("fly_oidc_aws::Builder", &aws_builder());
    let provider = aws_builder().build().unwrap();
    let creds = provider.provide_credentials().await.unwrap();
    shown.debug("fly_oidc_aws::FlyOidcCredentialsProvider", &provider);
    shown.debug("fly_oidc_aws::Credentials", &creds);
    shown.debug("fly_oidc_aws::Settings", provider.settings());
    let assumed = provider.assume_role().await.unwrap();
    shown.debug("fly_oidc_aws::AssumedRole", &assumed);
    let process = fly_oidc_aws::credential_process::CredentialProcess::builder()
        .no_cache(true)
        .build(aws_builder().disable_cache().build().unwrap())
        .unwrap();
    shown.debug(
        "fly_oidc_aws::credential_process::CredentialProcess",
        &process,
    );
    let (entry, _) = process.credentials().await.unwrap();
    shown.debug(
        "fly_oidc_aws::credential_process::Entry<AwsCredentials>",
        &entry,
    );
    for fault in [
        Fault::access_denied(),
        Fault::Malformed,
        Fault::error(
            400,
            "ValidationError",
            format!("echoing {}", fly.mint(Some("sts.amazonaws.com"))),
        ),
    ] {
        sts.fail_next(1, fault);
        let err = provider.assume_role().await.unwrap_err();
        shown.error("fly_oidc_aws::Error", &err);
        shown.debug("fly_oidc_aws::ErrorKind", &err.kind());
        let creds_err = fly_oidc_aws::credentials_error(err);
        shown.error("fly_oidc_aws::CredentialsError", &creds_err);
    }
    sts.fail_next(2, Fault::expired_token());
    shown.error(
        "fly_oidc_aws::Error",
        &provider.assume_role().await.unwrap_err(),
    );
    fly.fail_next(3, Fault::Status(500, "{\"error\":\"boom\"}".into()));
    shown.error(
        "fly_oidc_aws::Error",
        &provider.assume_role().await.unwrap_err(),
    );
    // A build error with the API token in the environment (plain http to a remote host).
    let build_err = FlyOidcCredentialsProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[
                ("FLY_API_HOSTNAME", "http://fly.example.com"),
                ("FLY_API_TOKEN", &api_token),
                ("AWS_ROLE_ARN", ROLE),
            ])),
        )
        .build()
        .unwrap_err();
    shown.error("fly_oidc_aws::BuildError", &build_err);

    // ---- fly-oidc-gcp
    let gcp_builder = || {
        GcpTokenProvider::builder()
            .configure(&provider_config())
            .provider(google.provider())
            .sts_url(google.sts_url())
            .iam_url(google.iam_url())
    };
    shown.debug("fly_oidc_gcp::Builder", &gcp_builder());
    shown.debug(
        "fly_oidc_gcp::Builder",
        &GcpTokenProvider::builder()
            .configure(&fly_oidc::ProviderConfig::default().with_env(env.clone())),
    );
    let federated = gcp_builder().build().unwrap();
    let impersonating = gcp_builder().service_account(SA).build().unwrap();
    for p in [&federated, &impersonating] {
        let token = p.access_token().await.unwrap();
        shown.both("fly_oidc_gcp::AccessToken", &token);
        shown.debug("fly_oidc_gcp::GcpTokenProvider", p);
        shown.both(
            "fly_oidc_gcp::WorkloadIdentityProvider",
            p.settings().provider(),
        );
    }
    // A Google-signed ID token (a JWT: caught as JWT-like, and by its signature's tail).
    let id_token = impersonating
        .id_token("https://svc.example.com")
        .await
        .unwrap();
    shown.both("fly_oidc_gcp::IdToken", &id_token);
    let echo = fly.mint(None);
    for (sts_fault, iam_fault) in [
        (
            Some(Fault::Status(
                400,
                format!(
                    "{{\"error\":\"invalid_grant\",\"error_description\":\"bad token {echo}\"}}"
                ),
            )),
            None,
        ),
        (Some(Fault::Malformed), None),
        (
            None,
            Some(Fault::Status(
                403,
                "{\"error\":{\"code\":403,\"message\":\"Permission 'iam.serviceAccounts.getAccessToken' denied\",\"status\":\"PERMISSION_DENIED\"}}".into(),
            )),
        ),
    ] {
        if let Some(f) = sts_fault {
            google.fail_next(1, f);
        }
        if let Some(f) = iam_fault {
            google.fail_next_iam(1, f);
        }
        // Each case from a new Fly token and exchange (the federated token is reused while valid).
        impersonating.clear_cache();
        let err = impersonating.fetch_access_token().await.unwrap_err();
        shown.error("fly_oidc_gcp::Error", &err);
        shown.debug("fly_oidc_gcp::ErrorKind", &err.kind());
        shown.debug("fly_oidc_gcp::GoogleCall", &fly_oidc_gcp::GoogleCall::refused(&err));
    }
    fly.fail_next(3, Fault::Status(503, "{\"error\":\"down\"}".into()));
    federated.clear_cache(); // the Fly token is reused while valid
    shown.error(
        "fly_oidc_gcp::Error",
        &federated.fetch_access_token().await.unwrap_err(),
    );
    let subject =
        FlySubjectTokenProvider::for_provider(fly_builder().build().unwrap(), google.provider())
            .unwrap();
    shown.debug(
        "fly_oidc_gcp::google_cloud::FlySubjectTokenProvider",
        &subject,
    );
    // (google-cloud-auth's own SubjectToken derives Debug with the token in it: not ours, and
    // we never format it; only that we can fetch one is checked here.)
    assert!(subject.subject_token().await.is_ok());
    fly.fail_next(3, Fault::Status(401, "{\"error\":\"unauthorized\"}".into()));
    let err = subject.subject_token().await.unwrap_err();
    fly.clear_faults();
    shown.error("fly_oidc_gcp::google_cloud::SubjectTokenError", &err);
    shown.debug(
        "fly_oidc_gcp::executable::Failure",
        &fly_oidc_gcp::executable::Failure::fly(err.fly_error()),
    );
    // Construction errors and resolved settings.
    let build_err = FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
        .api_url(format!(
            "https://me:{}@example.com",
            api_token.replace(' ', "")
        ))
        .api_token(api_token.as_str())
        .build()
        .unwrap_err();
    shown.error("fly_oidc::BuildError", &build_err);
    // The credential configuration's command, with a token source whose URL holds the token.
    let source = fly_oidc_gcp::executable::TokenSourceFlags {
        api_url: Some("https://api.machines.dev"),
        ..Default::default()
    };
    shown.debug("fly_oidc_gcp::executable::TokenSourceFlags", &source);
    let leaky_url = format!("https://me:{}@example.com", api_token.replace(' ', ""));
    let config_err = fly_oidc_gcp::executable::this_binary_config(
        impersonating.settings(),
        fly_builder().api_url(leaky_url),
        source,
        None,
    )
    .unwrap_err();
    shown.error("fly_oidc_gcp::executable::ConfigError", &config_err);
    shown.debug("fly_oidc::Setting", &build_err.setting());
    shown.debug("fly_oidc::Origin", &build_err.origin());
    shown.debug("fly_oidc_gcp::Settings", impersonating.settings());
    let credentials = impersonating.credentials();
    // Used once, so whatever it caches is in place when formatted.
    credentials.headers(http::Extensions::new()).await.unwrap();
    shown.debug(
        "google_cloud_auth Credentials (from GcpTokenProvider::credentials)",
        &credentials,
    );

    // ---- the scan
    // The Fly API token is `fly.api_token()`.
    let secrets = fly_oidc_tests::Secrets::of_fly(&fly)
        .with("a wrong Fly API token", WRONG_API_TOKEN)
        .sts(&sts)
        .google(&google)
        .with("a Google ID token", id_token.expose_secret());
    assert!(secrets.len() > 20, "{} secrets", secrets.len());
    let mut renderings = 0;
    for (ty, texts) in &shown.0 {
        for text in texts {
            renderings += 1;
            secrets.assert_absent(ty, text);
        }
    }
    // The redaction marker is really there where secrets were held.
    for ty in [
        "fly_oidc::FlyToken",
        "fly_oidc::SecretString",
        "fly_oidc_gcp::AccessToken",
        "fly_oidc_gcp::IdToken",
    ] {
        assert!(
            shown.0[ty].iter().all(|t| t.contains(REDACTED)),
            "{ty}: {:?}",
            shown.0[ty]
        );
    }
    let ours = shown.0.keys().filter(|t| t.starts_with("fly_oidc")).count();
    eprintln!(
        "checked {} public types ({ours} of fly-oidc, fly-oidc-aws, fly-oidc-gcp; {} google-cloud-auth types built by them), {renderings} renderings, against {} secrets",
        shown.0.len(),
        shown.0.len() - ours,
        secrets.len()
    );
    for ty in shown.0.keys() {
        eprintln!("  {ty}");
    }
}
