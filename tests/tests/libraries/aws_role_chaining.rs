//! Role chaining through the Rust provider: the role the Fly token assumes (account A) then
//! assumes a role in account B with `sts:AssumeRole`, signed with the first role's
//! credentials, and the provider hands out B's. Against moto_server (which implements
//! `AssumeRole`) and the testkit's fake STS for what moto does not check: who signed, the
//! external id, the one-hour cap, `sts:TagSession` for the transitive tags.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc_aws::{AssumedRole, ErrorKind, Rejection};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::{ChainTrust, FakeSts, FakeStsBuilder};
use fly_oidc_tests::aws::{
    CHAINED_ROLE, Moto, ROLE, moto_caller, our_error, provider, web_machine,
};
use std::time::Duration;

/// A fake STS that checks tokens like STS for `fly`'s issuer, whose chained role trusts `trust`.
fn sts_for(fly: &FakeFlyApi, trust: ChainTrust) -> FakeStsBuilder {
    FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .chain_trust(trust)
}

/// A provider of `fly`'s token at `sts`, chained into [`CHAINED_ROLE`].
fn chained(fly: &FakeFlyApi, sts: &str) -> fly_oidc_aws::Builder {
    provider(fly, sts).chain_role_arn(CHAINED_ROLE)
}

/// The `web` Machine, and a fake STS for it whose chained role trusts any principal.
async fn web_and_sts() -> (FakeFlyApi, FakeSts) {
    let fly = web_machine().await;
    let sts = any_principal_sts(&fly).await;
    (fly, sts)
}

/// A fake STS for `fly` whose chained role trusts any principal.
async fn any_principal_sts(fly: &FakeFlyApi) -> FakeSts {
    sts_for(fly, ChainTrust::default()).start().await.unwrap()
}

/// Build the provider and assume its role, which must succeed.
async fn assume(builder: fly_oidc_aws::Builder) -> AssumedRole {
    builder.build().unwrap().assume_role().await.unwrap()
}

/// The actions the fake STS received, in order.
fn actions(sts: &FakeSts) -> Vec<String> {
    sts.requests()
        .iter()
        .map(|r| r.action.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn the_chained_roles_credentials_are_handed_out_signed_by_the_first_role() {
    let fly = web_machine().await;
    let trust = ChainTrust::default().principal(ROLE).external_id("ext-42");
    let sts = sts_for(&fly, trust).start().await.unwrap();
    let assumed = assume(chained(&fly, &sts.url()).chain_external_id("ext-42")).await;
    assert_eq!(actions(&sts), ["AssumeRoleWithWebIdentity", "AssumeRole"]);
    let requests = sts.requests();
    let (first, second) = (&requests[0], &requests[1]);
    assert!(!first.signed, "the web identity call is unsigned");
    assert!(second.signed, "AssumeRole is signed");
    assert_eq!(second.role_arn.as_deref(), Some(CHAINED_ROLE));
    assert_eq!(second.external_id.as_deref(), Some("ext-42"));
    assert_eq!(second.duration(), Some(3600), "the chained default");
    assert_eq!(
        second.role_session_name, first.role_session_name,
        "the first hop's session name by default"
    );
    // What is handed out is the second session, in account B.
    let sessions = sts.sessions();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions[1].assumed_role_arn,
        "arn:aws:sts::210987654321:assumed-role/fly-data/fly-web-148e2150b5e089"
    );
    assert_eq!(
        assumed.credentials.access_key_id(),
        sessions[1].access_key_id
    );
    assert_eq!(assumed.account_id.as_deref(), Some("210987654321"));
    assert_eq!(
        assumed.assumed_role_arn.as_deref(),
        Some(sessions[1].assumed_role_arn.as_str())
    );
    // The chained session's hour, capped at the request's start plus 3600 s by our clock.
    let issued = sts.issued_credentials()[1].expiration;
    assert!(
        assumed.expires_at <= issued,
        "never later than STS's expiry"
    );
    let early = issued.duration_since(assumed.expires_at).unwrap();
    assert!(
        early < Duration::from_secs(5),
        "{early:?} before STS's expiry"
    );
    // The session policies go to the session handed out, not the first.
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let sts = any_principal_sts(&fly).await;
    assume(
        chained(&fly, &sts.url())
            .chain_session_name("second-hop")
            .chain_duration(Duration::from_secs(900))
            .policy(policy)
            .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess"),
    )
    .await;
    let requests = sts.requests();
    assert_eq!(
        (requests[0].policy.as_deref(), requests[0].policy_arns.len()),
        (None, 0)
    );
    assert_eq!(requests[1].policy.as_deref(), Some(policy));
    assert_eq!(
        requests[1].policy_arns,
        ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    );
    assert_eq!(requests[1].role_session_name.as_deref(), Some("second-hop"));
    assert_eq!(requests[1].duration(), Some(900));
}

#[tokio::test]
async fn the_provider_cache_makes_one_call_per_hop_per_credential_lifetime() {
    let (fly, sts) = web_and_sts().await;
    let provider = chained(&fly, &sts.url()).build().unwrap();
    let first = provider.credentials().await.unwrap();
    for _ in 0..5 {
        let again = provider.credentials().await.unwrap();
        assert_eq!(again.access_key_id(), first.access_key_id());
    }
    assert_eq!(actions(&sts), ["AssumeRoleWithWebIdentity", "AssumeRole"]);
    assert_eq!(fly.request_count(), 1);
}

#[tokio::test]
async fn each_hop_can_be_assumed_on_its_own() {
    let (fly, sts) = web_and_sts().await;
    let chain = chained(&fly, &sts.url()).build().unwrap();
    let first = chain.assume_web_identity_role().await.unwrap();
    assert_eq!(
        first.assumed_role_arn.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/fly-app/fly-web-148e2150b5e089")
    );
    assert_eq!(actions(&sts), ["AssumeRoleWithWebIdentity"]);
    let second = chain.assume_chained_role(&first).await.unwrap();
    assert_eq!(second.account_id.as_deref(), Some("210987654321"));
    assert_eq!(actions(&sts), ["AssumeRoleWithWebIdentity", "AssumeRole"]);
    // Without a chain the second hop is "not configured", and no call is made.
    let plain = provider(&fly, &sts.url()).build().unwrap();
    let err = plain.assume_chained_role(&first).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConfigured);
    assert!(err.message().contains("chain_role_arn"), "{err}");
    assert_eq!(sts.request_count(), 2);
}

/// The chained role's trust refusals: each is `TrustRejected`, names the chained role, the
/// first role as principal and what the trust policy must allow, and the set-up command.
#[tokio::test]
async fn a_chained_roles_trust_refusals_name_the_hop_and_the_fix() {
    let fly = FakeFlyApi::builder().app("web").start().await.unwrap();
    let other = "arn:aws:iam::123456789012:role/someone-else";
    let cases = [
        (
            "another principal",
            ChainTrust::default().principal(other),
            None,
            false,
            vec![
                "sts:AssumeRole on resource",
                "\"Action\": \"sts:AssumeRole\"",
            ],
        ),
        (
            "a missing external id",
            ChainTrust::default().external_id("ext-1"),
            None,
            false,
            vec!["sts:AssumeRole on resource"],
        ),
        (
            "another external id",
            ChainTrust::default().external_id("ext-1"),
            Some("ext-2"),
            false,
            vec![
                "\"sts:ExternalId\": \"ext-2\"",
                "Builder::chain_external_id or FLY_OIDC_AWS_CHAIN_EXTERNAL_ID",
                "--external-id ext-2",
            ],
        ),
        (
            "transitive tags without sts:TagSession",
            ChainTrust::default(),
            None,
            true,
            vec![
                "sts:TagSession on resource",
                "[\"sts:AssumeRole\", \"sts:TagSession\"]",
                "transitive ones pass along the chain",
                "--principal-tags",
                "must allow sts:AssumeRole and sts:TagSession on arn:aws:iam::210987654321:role/fly-data",
            ],
        ),
    ];
    for (case, trust, external_id, tags, needles) in cases {
        let sts = sts_for(&fly, trust.tag_session(false))
            .tag_session(true)
            .start()
            .await
            .unwrap();
        let mut builder = chained(&fly, &sts.url()).principal_tags(tags);
        if let Some(id) = external_id {
            builder = builder.chain_external_id(id);
        }
        let err = builder.build().unwrap().credentials().await.unwrap_err();
        let ours = our_error(&err);
        assert_eq!(ours.kind(), ErrorKind::TrustRejected, "{case}: {ours}");
        assert_eq!(ours.code(), Some("AccessDenied"), "{case}");
        assert_eq!(Rejection::of(ours), Some(Rejection::TrustPolicy), "{case}");
        let m = ours.message();
        let mut all = vec![
            "STS refused to assume the chained role arn:aws:iam::210987654321:role/fly-data",
            "with the credentials of the first role arn:aws:iam::123456789012:role/fly-app",
            "for the principal {\"AWS\": \"arn:aws:iam::123456789012:role/fly-app\"}",
            "the first role's permissions policy must allow sts:AssumeRole",
            "fly-oidc aws setup --role-name fly-data --trusted-role-arn arn:aws:iam::123456789012:role/fly-app",
        ];
        all.extend(needles);
        for needle in all {
            assert!(m.contains(needle), "{case}: {needle:?} not in {m}");
        }
        assert_eq!(
            actions(&sts),
            ["AssumeRoleWithWebIdentity", "AssumeRole"],
            "{case}"
        );
    }
    // Allowed, the transitive tags are the chained session's.
    let sts = sts_for(&fly, ChainTrust::default().tag_session(true))
        .tag_session(true)
        .start()
        .await
        .unwrap();
    assume(chained(&fly, &sts.url()).principal_tags(true)).await;
    let sessions = sts.sessions();
    assert_eq!(sessions[1].transitive_tag_keys, ["fake_org"]);
    assert_eq!(
        sessions[1].session_tags.keys().collect::<Vec<_>>(),
        ["fake_org"]
    );
}

#[tokio::test]
async fn a_chained_duration_above_the_hour_is_refused_before_any_call_and_stss_limit_is_named() {
    let (fly, sts) = web_and_sts().await;
    let err = chained(&fly, &sts.url())
        .chain_duration(Duration::from_secs(7200))
        .build()
        .unwrap_err();
    assert_eq!(err.setting().builder_method(), "chain_duration");
    assert!(err.reason().contains("at 3600 s"), "{err}");
    assert_eq!((fly.request_count(), sts.request_count()), (0, 0));
    // A chained role whose own maximum is lower: STS's ValidationError names the setting.
    let sts = any_principal_sts(&fly).await;
    let provider = chained(&fly, &sts.url()).build().unwrap();
    let first = provider.assume_web_identity_role().await.unwrap();
    sts.fail_next(1, fly_oidc_testkit::Fault::duration_above_role_maximum());
    let err = provider.assume_chained_role(&first).await.unwrap_err();
    let build = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .find_map(|e| e.downcast_ref::<fly_oidc::BuildError>())
    .unwrap_or_else(|| panic!("no BuildError in {err:?}"));
    assert_eq!(build.setting().builder_method(), "chain_duration");
    assert!(
        build
            .reason()
            .contains("3600 s for arn:aws:iam::210987654321:role/fly-data"),
        "{build}"
    );
}

#[tokio::test]
async fn chained_credentials_from_moto_are_the_chained_roles() {
    let Some(moto) = Moto::start() else { return };
    let fly = web_machine().await;
    let provider = chained(&fly, moto.endpoint()).build().unwrap();
    assert_eq!(
        moto_caller(&moto, provider.clone()).await,
        "arn:aws:sts::210987654321:assumed-role/fly-data/fly-web-148e2150b5e089"
    );
    let first = provider.assume_web_identity_role().await.unwrap();
    assert_ne!(
        first.credentials.access_key_id(),
        provider
            .assume_role_cached()
            .await
            .unwrap()
            .credentials
            .access_key_id()
    );
}

/// A second hop that fails transiently is tried again from the first hop's credentials while
/// they last: no new Fly token, no second `AssumeRoleWithWebIdentity`. A refused second hop
/// drops them, so the next try starts afresh.
#[tokio::test]
async fn a_retried_second_hop_reuses_the_first_hops_credentials_until_refused() {
    let (fly, sts) = web_and_sts().await;
    let provider = chained(&fly, &sts.url()).disable_cache().build().unwrap();
    // The first hop answers; every attempt at the second is throttled (3 attempts).
    let throttled = fly_oidc_testkit::Fault::throttling();
    sts.script([
        fly_oidc_testkit::Fault::Delay(Duration::ZERO),
        throttled.clone(),
        throttled.clone(),
        throttled,
    ]);
    let err = provider.assume_role().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let chained = provider.assume_role().await.unwrap();
    assert_eq!(chained.account_id.as_deref(), Some("210987654321"));
    let web_identity = |sts: &FakeSts| {
        actions(sts)
            .iter()
            .filter(|a| *a == "AssumeRoleWithWebIdentity")
            .count()
    };
    assert_eq!((web_identity(&sts), fly.request_count()), (1, 1));
    assert_eq!(actions(&sts).len(), 5, "1 + 3 throttled + 1");
    // Refused: the kept first hop goes, and the next try fetches a fresh one.
    sts.fail_next(1, fly_oidc_testkit::Fault::access_denied());
    provider.assume_role().await.unwrap_err();
    assert_eq!(web_identity(&sts), 1, "the refused try reused it");
    provider.assume_role().await.unwrap();
    assert_eq!((web_identity(&sts), fly.request_count()), (2, 2));
}
