//! The AWS provider end to end against moto_server (a real STS and S3 emulator): provider →
//! credentials → aws-sdk-s3 creates and lists a bucket; aws-sdk-sts sees the assumed role.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use fly_oidc_aws::https_client;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_tests::aws::{Moto, bucket_name, moto_caller, provider, web_machine};

/// An S3 client of `moto` (path-style) signing with `credentials`.
pub(crate) fn s3_client(
    moto: &Moto,
    credentials: impl ProvideCredentials + 'static,
) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .force_path_style(true)
        .credentials_provider(credentials)
        .http_client(https_client())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test]
async fn provider_credentials_create_and_list_a_bucket_in_moto_s3() {
    let Some(moto) = Moto::start() else { return };
    let fly = web_machine().await;
    let provider = provider(&fly, moto.endpoint()).build().unwrap();
    let s3 = s3_client(&moto, provider.clone());
    let bucket = bucket_name("fly-oidc-e2e");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("hello.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"hi from fly",
        ))
        .send()
        .await
        .unwrap();
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(
        buckets
            .buckets()
            .iter()
            .any(|b| b.name() == Some(bucket.as_str())),
        "{bucket} not listed"
    );
    let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(objects.contents()[0].key(), Some("hello.txt"));
    // One Fly token and one STS call, whatever the number of S3 calls (both caches).
    assert_eq!(fly.request_count(), 1);

    // STS itself (signed with the assumed-role credentials) says who we are.
    assert_eq!(
        moto_caller(&moto, provider.clone()).await,
        "arn:aws:sts::123456789012:assumed-role/fly-app/fly-web-148e2150b5e089"
    );
    let assumed = provider.assume_role_cached().await.unwrap();
    assert_eq!(assumed.account_id.as_deref(), Some("123456789012"));
    assert!(assumed.credentials.access_key_id().starts_with("ASIA"));
}

#[tokio::test]
async fn moto_receives_the_configured_duration() {
    let Some(moto) = Moto::start() else { return };
    let fly = FakeFlyApi::start().await.unwrap();
    let provider = provider(&fly, moto.endpoint())
        .duration(std::time::Duration::from_secs(900))
        .disable_cache()
        .build()
        .unwrap();
    let assumed = provider.assume_role().await.unwrap();
    let left = assumed
        .expires_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_sub(
            std::time::UNIX_EPOCH
                .elapsed()
                .unwrap_or_default()
                .as_secs(),
        );
    assert!((850..=905).contains(&left), "expires in {left} s");
}
