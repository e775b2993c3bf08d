//! The `google-cloud-auth` adapters: our provider as `CredentialsProvider`, and Fly tokens as
//! a `SubjectTokenProvider` for `external_account::ProgrammaticBuilder`.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use fly_oidc::{Env, FlyOidcClient, RetryConfig};
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_gcp::google_cloud::{FlySubjectTokenProvider, programmatic_builder};
use fly_oidc_testkit::google::{FakeGoogle, unavailable_body};
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::gcp::{Fakes, SA};
use google_cloud_auth::credentials::{CacheableResource, EntityTag};
use http::{Extensions, HeaderMap};
use std::time::Duration;

fn fly_client(fly: &FakeFlyApi) -> FlyOidcClient {
    FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&[])))
        .socket(fly.socket_path())
        .build()
        .unwrap()
}

fn bearer(headers: &HeaderMap) -> String {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .expect("an Authorization header");
    assert!(value.is_sensitive(), "the header must be marked sensitive");
    value
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .expect("a bearer token")
        .to_owned()
}

/// The provider's credentials' first `headers` call, which must fail.
async fn headers_error(
    builder: fly_oidc_gcp::Builder,
) -> google_cloud_auth::errors::CredentialsError {
    let credentials = builder.build().unwrap().credentials();
    credentials.headers(Extensions::new()).await.unwrap_err()
}

#[tokio::test]
async fn credentials_carry_the_token_from_google() {
    let Fakes { fly, google } = Fakes::start().await;
    let provider = GcpTokenProvider::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_fly_client(fly_client(&fly)))
        .provider(google.provider())
        .service_account(SA)
        .sts_url(google.sts_url())
        .iam_url(google.iam_url())
        .build()
        .unwrap();
    let credentials = provider.credentials();
    let (tag, headers) = match credentials.headers(Extensions::new()).await.unwrap() {
        CacheableResource::New { entity_tag, data } => (entity_tag, data),
        CacheableResource::NotModified => panic!("first call must return headers"),
    };
    let token = bearer(&headers);
    let info = google
        .token_info(&token)
        .expect("a token the fake IAM issued");
    assert_eq!(info.service_account.as_deref(), Some(SA));
    assert_eq!(
        credentials.universe_domain().await.as_deref(),
        Some("googleapis.com")
    );

    // Same token, same entity tag: NotModified; without the tag: the same headers again.
    let mut ext = Extensions::new();
    ext.insert(tag.clone());
    assert_eq!(
        credentials.headers(ext).await.unwrap(),
        CacheableResource::NotModified
    );
    let mut stale = Extensions::new();
    stale.insert(EntityTag::new());
    match credentials.headers(stale).await.unwrap() {
        CacheableResource::New { entity_tag, data } => {
            assert_eq!(entity_tag, tag);
            assert_eq!(bearer(&data), token);
        }
        CacheableResource::NotModified => panic!("a different tag must get the headers"),
    }
    assert_eq!(google.request_count(), 1, "served from our cache");
    assert!(!format!("{credentials:?}").contains(&token));
}

#[tokio::test]
async fn credential_errors_keep_the_transient_flag() {
    let fly = FakeFlyApi::builder().start().await.unwrap();
    let google = FakeGoogle::builder(&fly).start().await.unwrap();
    let base = GcpTokenProvider::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_fly_client(fly_client(&fly))
                .with_retry(RetryConfig::disabled()),
        )
        .provider(google.provider())
        .sts_url(google.sts_url());
    google.fail_next(1, Fault::Status(503, unavailable_body()));
    let err = headers_error(base.clone()).await;
    assert!(err.is_transient(), "{err}");

    let err = headers_error(base.audience("wrong-audience")).await;
    assert!(!err.is_transient(), "{err}");
    let text = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(text.contains("invalid_grant"), "{text}");
}

#[tokio::test]
async fn programmatic_builder_exchanges_fly_tokens_itself() {
    let fly = FakeFlyApi::builder().start().await.unwrap();
    let google = FakeGoogle::builder(&fly).start().await.unwrap();
    let subject =
        FlySubjectTokenProvider::for_provider(fly_client(&fly), google.provider()).unwrap();
    assert_eq!(subject.audience(), google.token_audience());
    let credentials = programmatic_builder(subject, google.provider())
        .unwrap()
        .with_token_url(google.sts_url())
        .with_scopes(["https://www.googleapis.com/auth/devstorage.read_only"])
        .build()
        .unwrap();
    let headers = match credentials.headers(Extensions::new()).await.unwrap() {
        CacheableResource::New { data, .. } => data,
        CacheableResource::NotModified => panic!("first call must return headers"),
    };
    let token = bearer(&headers);
    let info = google
        .token_info(&token)
        .expect("a token the fake STS issued");
    assert_eq!(info.service_account, None);
    assert_eq!(
        info.scopes,
        vec!["https://www.googleapis.com/auth/devstorage.read_only".to_owned()]
    );
    // google-cloud-auth sent our Fly token (minted for the provider's audience) to the STS.
    let sts = &google.requests()[0];
    assert_eq!(sts.status, 200);
    assert_eq!(sts.field("audience"), Some(google.sts_audience().as_str()));
    assert_eq!(
        sts.field("subject_token"),
        Some(fly.issued_tokens()[0].as_str())
    );
    assert_eq!(
        fly.requests()[0].audience.as_deref(),
        Some(google.token_audience().as_str())
    );
}

#[tokio::test]
async fn subject_token_errors_say_whether_to_retry() {
    let fly = FakeFlyApi::builder().start().await.unwrap();
    let google = FakeGoogle::builder(&fly).start().await.unwrap();
    fly.fail_next(
        10,
        fly_oidc_testkit::Fault::Status(503, r#"{"error":"unavailable"}"#.into()),
    );
    let client = FlyOidcClient::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(Env::from_slice(&[]))
                .with_retry(RetryConfig::disabled())
                .with_timeout(Duration::from_secs(2)),
        )
        .socket(fly.socket_path())
        .build()
        .unwrap();
    let subject = FlySubjectTokenProvider::for_provider(client, google.provider()).unwrap();
    let credentials = programmatic_builder(subject, google.provider())
        .unwrap()
        .with_token_url(google.sts_url())
        .build()
        .unwrap();
    let err = credentials.headers(Extensions::new()).await.unwrap_err();
    assert!(err.is_transient(), "a Fly API 503 is transient: {err}");
    assert_eq!(google.request_count(), 0);
}
