//! AWS session tags from Fly's `aws_principal_tags`: the token client asks for them, the
//! provider sends the tagged token to STS, and a trust policy without `sts:TagSession` is
//! diagnosed. Against the testkit's fakes: the fake Fly API invents its own tag keys, and the
//! fake STS refuses tags without `sts:TagSession` and records them on the session, as AWS does.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc::{Env, ProviderConfig, TokenOptions};
use fly_oidc_aws::{ErrorKind, FlyOidcCredentialsProvider, Rejection};
use fly_oidc_testkit::FAKE_TAG_KEYS;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::{FakeSts, FakeStsBuilder};
use fly_oidc_tests::aws::{ROLE, our_error, provider};
use fly_oidc_tests::{fast_retry, fly_client};
use std::collections::BTreeMap;

/// The fake Fly API of app `web` in org `acme`, region `ord`.
async fn fly() -> FakeFlyApi {
    FakeFlyApi::builder().app("web").start().await.unwrap()
}

/// A fake STS that checks tokens like STS for `fly`'s issuer.
fn sts_for(fly: &FakeFlyApi) -> FakeStsBuilder {
    FakeSts::builder()
        .account_id("123456789012")
        .trust(fly.issuer(), fly.jwks())
        .audience("sts.amazonaws.com")
}

/// A provider asking `fly` for session tags, sending them to `sts`.
fn tagged(fly: &FakeFlyApi, sts: &FakeSts) -> FlyOidcCredentialsProvider {
    provider(fly, &sts.url())
        .principal_tags(true)
        .build()
        .unwrap()
}

/// The session tags the fake Fly API gives app `web` of org `acme` in region `ord`.
fn web_tags() -> BTreeMap<String, String> {
    FAKE_TAG_KEYS
        .iter()
        .zip(["web", "acme", "ord"])
        .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn the_token_client_asks_for_session_tags_and_reads_them_as_data() {
    let fly = fly().await;
    let client = fly_client(&fly);
    let tagged = client
        .fetch_token_with(
            Some("sts.amazonaws.com"),
            TokenOptions::default().aws_principal_tags(true),
        )
        .await
        .unwrap();
    let plain = client.fetch_token(Some("sts.amazonaws.com")).await.unwrap();
    let asked: Vec<bool> = fly
        .requests()
        .iter()
        .map(|r| r.aws_principal_tags)
        .collect();
    assert_eq!(asked, [true, false]);
    assert!(
        fly.requests()
            .iter()
            .all(|r| r.audience.as_deref() == Some("sts.amazonaws.com"))
    );
    // Whatever keys the issuer chose, read as data.
    let tags = tagged.claims().aws_session_tags().unwrap();
    let keys: Vec<&str> = tags.principal_tags.keys().map(String::as_str).collect();
    assert_eq!(keys, ["fake_app", "fake_org", "fake_region"]);
    assert_eq!(tags.principal_tags["fake_app"], ["web"]);
    assert_eq!(tags.transitive_tag_keys, ["fake_org"]);
    assert_eq!(plain.claims().aws_session_tags(), None);
    // The client's default options: FLY_OIDC_AWS_PRINCIPAL_TAGS, for fetch_default_token.
    let config = ProviderConfig::default()
        .with_env(Env::from_slice(&[("FLY_OIDC_AWS_PRINCIPAL_TAGS", "1")]))
        .with_retry(fast_retry());
    let from_env = fly_oidc::FlyOidcClient::builder()
        .configure(&config)
        .socket(fly.socket_path())
        .build()
        .unwrap();
    let token = from_env.fetch_default_token().await.unwrap();
    assert!(token.claims().aws_session_tags().is_some());
    assert_eq!(fly.requests().last().unwrap().audience, None);
    assert!(fly.requests().last().unwrap().aws_principal_tags);
}

#[tokio::test]
async fn session_tags_reach_sts_when_the_trust_policy_allows_tag_session() {
    let fly = fly().await;
    let sts = sts_for(&fly).tag_session(true).start().await.unwrap();
    let assumed = tagged(&fly, &sts).assume_role().await.unwrap();
    assert!(fly.requests()[0].aws_principal_tags);
    let sessions = sts.sessions();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert_eq!(session.session_tags, web_tags());
    assert_eq!(session.transitive_tag_keys, ["fake_org"]);
    assert_eq!(
        session.access_key_id,
        assumed.credentials.access_key_id(),
        "the tagged session is the one handed out"
    );
    // The variable asks as the builder does.
    let from_env = FlyOidcCredentialsProvider::builder()
        .configure(
            &ProviderConfig::default()
                .with_env(Env::from_slice(&[
                    ("AWS_ROLE_ARN", ROLE),
                    ("AWS_ENDPOINT_URL_STS", &sts.url()),
                    ("FLY_OIDC_AWS_PRINCIPAL_TAGS", "true"),
                ]))
                .with_fly_client(fly_client(&fly))
                .with_retry(fast_retry()),
        )
        .build()
        .unwrap();
    assert!(from_env.settings().principal_tags());
    from_env.assume_role().await.unwrap();
    assert_eq!(sts.sessions()[1].session_tags, web_tags());
}

#[tokio::test]
async fn without_the_setting_no_tags_are_asked_for_or_sent() {
    let fly = fly().await;
    // A role whose trust policy does not allow sts:TagSession accepts an untagged token.
    let sts = sts_for(&fly).start().await.unwrap();
    provider(&fly, &sts.url())
        .build()
        .unwrap()
        .assume_role()
        .await
        .unwrap();
    assert!(!fly.requests()[0].aws_principal_tags);
    assert!(sts.sessions()[0].session_tags.is_empty());
}

#[tokio::test]
async fn a_trust_policy_without_tag_session_is_diagnosed_naming_it() {
    let fly = fly().await;
    let sts = sts_for(&fly).start().await.unwrap();
    let err = tagged(&fly, &sts).credentials().await.unwrap_err();
    let ours = our_error(&err);
    assert_eq!(ours.kind(), ErrorKind::TrustRejected);
    assert_eq!(ours.code(), Some("AccessDenied"));
    assert_eq!(Rejection::of(ours), Some(Rejection::TrustPolicy));
    let m = ours.message();
    for needle in [
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        ROLE,
        "session tags were asked for (Builder::principal_tags or FLY_OIDC_AWS_PRINCIPAL_TAGS",
        "fake_app=web, fake_org=acme, fake_region=ord (transitive: fake_org)",
        "must also allow sts:TagSession",
        "\"sts:TagSession\"",
        // The rest of the trust policy's facts are still there.
        "\"oidc.fly.io/acme:sub\" the sub acme:web:",
    ] {
        assert!(m.contains(needle), "{m:?} lacks {needle:?}");
    }
    assert!(!m.contains("eyJ"), "a token leaked into {m:?}");
    // Not retried: one token, one STS call, no session.
    assert_eq!((fly.request_count(), sts.request_count()), (1, 1));
    assert!(sts.sessions().is_empty());
    // Without tags asked for, an AccessDenied does not mention sts:TagSession.
    let sts = sts_for(&fly).subject("acme:api:*").start().await.unwrap();
    let err = provider(&fly, &sts.url())
        .build()
        .unwrap()
        .credentials()
        .await
        .unwrap_err();
    let m = our_error(&err).message();
    assert!(
        m.contains("AccessDenied") && !m.contains("TagSession"),
        "{m}"
    );
}
