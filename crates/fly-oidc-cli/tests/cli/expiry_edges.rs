//! Expiry edge cases with an injected clock, for the AWS provider (against the testkit's
//! fake STS), the GCP provider (against the fake Google STS + IAM Credentials) and the CLI's
//! disk cache (the built binary against the fake Fly API and fake STS):
//!
//! - a refresh failing while the credentials are valid: served, with one warning;
//! - an outage outlasting the credentials: an error at expiry, never expired credentials;
//! - clock skew between us and STS (its `Expiration` already past, near, or far ahead of our
//!   clock): never cached or served past expiry, and no refresh storm;
//! - short (900 s) sessions against the refresh window: refreshed before expiry, not on
//!   every call; and the CLI's `--min-ttl` against a 900 s session.
//!
//! The fakes' clocks are our clock plus a skew: Fly and STS agree with each other (they are
//! "the platform"), we are the ones who are off.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{ROLE_A, Sandbox, assert_success, failed};
use aws_credential_types::provider::ProvideCredentials;
use fly_oidc::RetryConfig;
use fly_oidc::cache::CacheConfig;
use fly_oidc::time::{ManualTimeSource, SharedTimeSource, SystemTimeSource, TimeSource};
use fly_oidc_aws::{ErrorKind, FlyOidcCredentialsProvider};
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::unavailable_body;
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::aws::{config as aws_config, our_error, provider};
use fly_oidc_tests::gcp::{Fakes, SA};
use fly_oidc_tests::{LogCapture, join_all};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T0: u64 = 1_800_000_000;

/// `WARN` lines from our crates in `logs` (not the SDK's own retry chatter).
fn warnings(logs: &LogCapture) -> Vec<String> {
    logs.text()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("fly_oidc"))
        .map(str::to_owned)
        .collect()
}

/// A clock `skew_secs` ahead of `clock` (behind when negative).
fn skewed(
    clock: &ManualTimeSource,
    skew_secs: i64,
) -> impl Fn() -> SystemTime + Send + Sync + use<> {
    let clock = clock.clone();
    move || {
        let now = clock.now();
        if skew_secs >= 0 {
            now + Duration::from_secs(skew_secs.unsigned_abs())
        } else {
            now - Duration::from_secs(skew_secs.unsigned_abs())
        }
    }
}

/// A fake Fly API (app `web`) whose clock is `skew_secs` off `clock`.
async fn skewed_fly(clock: &ManualTimeSource, skew_secs: i64) -> FakeFlyApi {
    let fly = FakeFlyApi::builder().app("web");
    fly.clock(skewed(clock, skew_secs)).start().await.unwrap()
}

struct Aws {
    clock: ManualTimeSource,
    fly: FakeFlyApi,
    sts: FakeSts,
}

impl Aws {
    /// The fakes, their clocks `skew_secs` off ours (which starts at `T0`).
    async fn start(skew_secs: i64) -> Self {
        let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(T0));
        let fly = skewed_fly(&clock, skew_secs).await;
        let sts = FakeSts::builder()
            .trust(fly.issuer(), fly.jwks())
            .clock(skewed(&clock, skew_secs))
            .start()
            .await
            .unwrap();
        Self { clock, fly, sts }
    }

    fn builder(&self) -> fly_oidc_aws::Builder {
        let config =
            aws_config(&self.fly).with_time_source(SharedTimeSource::new(self.clock.clone()));
        provider(&self.fly, &self.sts.url()).configure(&config)
    }

    fn provider(&self, config: CacheConfig) -> FlyOidcCredentialsProvider {
        self.builder().cache_config(config).build().unwrap()
    }

    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    fn at(&self, secs_after_t0: u64) {
        self.clock
            .set(UNIX_EPOCH + Duration::from_secs(T0 + secs_after_t0));
    }
}

fn no_jitter() -> CacheConfig {
    CacheConfig::default().with_jitter(Duration::ZERO)
}

fn secs_left(expiry: Option<SystemTime>, now: SystemTime) -> i64 {
    let e = expiry
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let n = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    e - n
}

#[tokio::test]
async fn aws_a_failed_refresh_while_valid_serves_the_cached_credentials_with_one_warning() {
    let f = Aws::start(0).await;
    let provider = f.provider(no_jitter());
    let first = provider.provide_credentials().await.unwrap();
    assert_eq!(f.sts.request_count(), 1);

    let logs = LogCapture::default();
    let _guard = logs.install();
    // 56 minutes in (inside the 5-minute window), STS is down for the whole refresh.
    f.at(56 * 60);
    f.sts.fail_next(3, Fault::service_unavailable());
    for _ in 0..20 {
        let served = provider.provide_credentials().await.unwrap();
        assert_eq!(served.access_key_id(), first.access_key_id());
        assert_eq!(served.expiry(), first.expiry());
        assert!(secs_left(served.expiry(), f.now()) > 0);
    }
    // One refresh (3 attempts), not one per call: the failure backoff holds the others.
    assert_eq!(f.sts.request_count(), 1 + 3);
    let stale_warnings: Vec<_> = warnings(&logs)
        .into_iter()
        .filter(|l| l.contains("serving the cached ones"))
        .collect();
    assert_eq!(stale_warnings.len(), 1, "{}", logs.text());
    assert!(
        stale_warnings[0].contains("expires_in_secs=240"),
        "{}",
        stale_warnings[0]
    );
    // The failed refresh logs at most two warnings in all: the STS failure and the fallback.
    assert!(warnings(&logs).len() <= 2, "{:#?}", warnings(&logs));
    fly_oidc_tests::Secrets::of_fly(&f.fly)
        .sts(&f.sts)
        .assert_absent("the logs", &logs.text());

    // After the 10 s backoff the next call tries again; STS is back: new credentials, no warning.
    logs.clear();
    f.at(56 * 60 + 11);
    let second = provider.provide_credentials().await.unwrap();
    assert_ne!(second.access_key_id(), first.access_key_id());
    assert_eq!(f.sts.request_count(), 5);
    assert!(warnings(&logs).is_empty(), "{:#?}", warnings(&logs));
}

#[tokio::test]
async fn aws_an_outage_outlasting_the_credentials_is_an_error_never_expired_credentials() {
    let f = Aws::start(0).await;
    let provider = f.provider(no_jitter());
    let first = provider.provide_credentials().await.unwrap();
    let expiry = first.expiry().unwrap();
    assert_eq!(expiry, UNIX_EPOCH + Duration::from_secs(T0 + 3600));
    f.sts.fail_next(10_000, Fault::service_unavailable());

    // From the refresh window to a minute past expiry, five callers every 10 s.
    let mut served = 0;
    let mut failed = 0;
    let mut t = 55 * 60;
    while t <= 61 * 60 {
        f.at(t);
        let before = f.sts.request_count();
        for _ in 0..5 {
            match provider.provide_credentials().await {
                Ok(creds) => {
                    assert!(f.now() < expiry, "served at {t}s, after expiry");
                    assert_eq!(creds.access_key_id(), first.access_key_id());
                    served += 1;
                }
                Err(err) => {
                    assert!(f.now() >= expiry, "failed at {t}s, before expiry: {err}");
                    assert_eq!(our_error(&err).kind(), ErrorKind::Transient);
                    assert!(provider.fallback_on_interrupt().is_none());
                    failed += 1;
                }
            }
        }
        let requests = f.sts.request_count() - before;
        if f.now() < expiry {
            // One refresh attempt (up to 3 tries; fewer once the SDK's retry quota is
            // spent) per 10 s backoff, not one per caller.
            assert!((1..=3).contains(&requests), "{requests} requests at {t}s");
        } else {
            // Nothing valid to serve: every caller tries, each at most 3 times.
            assert!((5..=15).contains(&requests), "{requests} requests at {t}s");
        }
        t += 10;
    }
    assert_eq!(served, 5 * 30);
    assert_eq!(failed, 5 * 7);
    f.sts.clear_faults();
    let fresh = provider.provide_credentials().await.unwrap();
    assert_ne!(fresh.access_key_id(), first.access_key_id());
    assert!(secs_left(fresh.expiry(), f.now()) > 3000);
}

#[tokio::test]
async fn aws_the_exact_expiry_boundary_with_sts_down() {
    let f = Aws::start(0).await;
    let provider = f.provider(no_jitter());
    let first = provider.provide_credentials().await.unwrap();
    f.sts.fail_next(10_000, Fault::service_unavailable());
    f.at(3599);
    let last = provider.provide_credentials().await.unwrap();
    assert_eq!(last.access_key_id(), first.access_key_id());
    f.at(3600);
    assert!(provider.provide_credentials().await.is_err());
    assert!(provider.cached_credentials().is_none());
    assert!(provider.fallback_on_interrupt().is_none());
}

#[tokio::test]
async fn aws_skew_sts_behind_us_by_more_than_the_session_is_an_error_not_expired_credentials() {
    // STS's clock is 61 minutes behind ours: its 1-hour credentials expired a minute ago by
    // our clock.
    let f = Aws::start(-(61 * 60)).await;
    let provider = f.provider(no_jitter());
    for call in 1..=5 {
        let err = provider.provide_credentials().await.unwrap_err();
        let ours = our_error(&err);
        assert_eq!(ours.kind(), ErrorKind::InvalidResponse, "{ours}");
        assert!(ours.message().contains("clock"), "{ours}");
        assert!(provider.cached_credentials().is_none());
        // One STS call per caller, no loop.
        assert_eq!(f.sts.request_count(), call);
    }
    // assume_role (the CLI's path) refuses them too.
    let err = provider.assume_role().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
}

#[tokio::test]
async fn aws_skew_sts_behind_us_near_expiry_refreshes_at_half_life_not_per_call() {
    // STS is 59 minutes behind: its credentials have one minute left by our clock.
    let f = Aws::start(-(59 * 60)).await;
    let provider = f.provider(no_jitter());
    let first = provider.provide_credentials().await.unwrap();
    assert_eq!(secs_left(first.expiry(), f.now()), 60);
    let calls = (0..50).map(|_| provider.provide_credentials());
    for creds in join_all(calls.collect()).await {
        assert_eq!(creds.unwrap().access_key_id(), first.access_key_id());
    }
    assert_eq!(f.sts.request_count(), 1);
    // Shorter than the refresh window: refreshed at half its remaining life (30 s).
    f.at(29);
    let same = provider.provide_credentials().await.unwrap();
    assert_eq!(same.access_key_id(), first.access_key_id());
    assert_eq!(f.sts.request_count(), 1);
    f.at(31);
    let calls = (0..50).map(|_| provider.provide_credentials());
    let mut keys: Vec<_> = join_all(calls.collect())
        .await
        .into_iter()
        .map(|c| c.unwrap().access_key_id().to_owned())
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0], first.access_key_id());
    assert_eq!(f.sts.request_count(), 2, "one refresh for 50 callers");
}

#[tokio::test]
async fn aws_skew_sts_ahead_of_us_never_trusts_more_than_the_requested_duration() {
    // STS is two hours ahead: its 1-hour credentials say they expire three hours from now
    // by our clock, but really expire in one (STS never grants more than DurationSeconds).
    let f = Aws::start(2 * 3600).await;
    let provider = f.provider(no_jitter());
    let first = provider.provide_credentials().await.unwrap();
    let left = secs_left(first.expiry(), f.now());
    assert!(left <= 3600, "credentials claimed to live {left} s");
    // So they are refreshed inside the last 5 minutes of that hour, not 2 hours later.
    f.at(54 * 60);
    let same = provider.provide_credentials().await.unwrap();
    assert_eq!(same.access_key_id(), first.access_key_id());
    f.at(56 * 60);
    let next = provider.provide_credentials().await.unwrap();
    assert_ne!(next.access_key_id(), first.access_key_id());
    assert_eq!(f.sts.request_count(), 2);
    // And never served after that hour, even with STS down.
    f.sts.fail_next(10_000, Fault::service_unavailable());
    f.at(56 * 60 + 3600);
    assert!(provider.provide_credentials().await.is_err());
}

#[tokio::test]
async fn aws_900_second_sessions_refresh_before_expiry_not_on_every_call() {
    let f = Aws::start(0).await;
    // The default cache: a 5-minute window with up to 30 s of jitter.
    let provider = f
        .builder()
        .duration(Duration::from_secs(900))
        .build()
        .unwrap();
    let mut t = 0;
    let mut min_left = i64::MAX;
    let mut calls = 0;
    while t <= 3600 {
        f.at(t);
        for _ in 0..10 {
            let creds = provider.provide_credentials().await.unwrap();
            min_left = min_left.min(secs_left(creds.expiry(), f.now()));
            calls += 1;
        }
        t += 10;
    }
    let refreshes = f.sts.request_count();
    // Each session is refreshed between 570 and 600 s into its 900 s: 6 or 7 in an hour
    // (the first included), for 3610 calls.
    assert!((6..=7).contains(&refreshes), "{refreshes} STS calls");
    assert_eq!(f.fly.request_count(), refreshes);
    // Always refreshed with more than the 5-minute window left: never served near expiry.
    assert!(min_left > 290, "served credentials with {min_left} s left");
    assert_eq!(calls, 3610);
    // Each session asked STS for 900 s.
    assert!(f.sts.requests().iter().all(|r| r.duration() == Some(900)));
}

// ---------------------------------------------------------------- GCP

struct Gcp {
    clock: ManualTimeSource,
    fakes: Fakes,
}

impl Gcp {
    async fn start(skew_secs: i64, sts_lifetime: Duration) -> Self {
        let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(T0));
        let fly = skewed_fly(&clock, skew_secs).await;
        let fakes = Fakes::with_fly(fly, |g| {
            g.token_lifetime(sts_lifetime)
                .clock(skewed(&clock, skew_secs))
        })
        .await;
        Self { clock, fakes }
    }

    fn builder(&self) -> fly_oidc_gcp::Builder {
        let config = self
            .fakes
            .config()
            .with_retry(RetryConfig::disabled())
            .with_time_source(SharedTimeSource::new(self.clock.clone()));
        self.fakes.builder().configure(&config)
    }

    /// A provider impersonating [`SA`], without refresh jitter.
    fn impersonating(&self) -> fly_oidc_gcp::GcpTokenProvider {
        let builder = self.builder().service_account(SA);
        builder.cache_config(no_jitter()).build().unwrap()
    }

    fn at(&self, secs_after_t0: u64) {
        self.clock
            .set(UNIX_EPOCH + Duration::from_secs(T0 + secs_after_t0));
    }
}

#[tokio::test]
async fn gcp_a_failed_refresh_warns_once_and_an_outage_past_expiry_is_an_error() {
    let f = Gcp::start(0, Duration::from_secs(3600)).await;
    let provider = f.builder().cache_config(no_jitter()).build().unwrap();
    let first = provider.access_token().await.unwrap();
    // Google's STS says expires_in 3599.
    assert_eq!(
        first.expires_at(),
        UNIX_EPOCH + Duration::from_secs(T0 + 3599)
    );
    let logs = LogCapture::default();
    let _guard = logs.install();
    f.fakes
        .google
        .fail_next(10_000, Fault::Status(503, unavailable_body()));
    f.at(57 * 60);
    for _ in 0..10 {
        assert_eq!(provider.access_token().await.unwrap(), first);
    }
    assert_eq!(
        f.fakes.google.request_count(),
        2,
        "one failed refresh, then backoff"
    );
    let stale: Vec<_> = warnings(&logs)
        .into_iter()
        .filter(|l| l.contains("serving the cached ones"))
        .collect();
    assert_eq!(stale.len(), 1, "{}", logs.text());
    for secret in f.fakes.google.issued_tokens() {
        assert!(!logs.text().contains(&secret));
    }
    f.at(3598);
    assert_eq!(provider.access_token().await.unwrap(), first);
    f.at(3599);
    let err = provider.access_token().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn gcp_skew_google_behind_us_is_an_error_not_an_expired_token() {
    // IAM Credentials' clock is 61 minutes behind: its 1-hour expireTime is in our past.
    let f = Gcp::start(-(61 * 60), Duration::from_secs(3600)).await;
    let provider = f.impersonating();
    for call in 1..=3 {
        let err = provider.access_token().await.unwrap_err();
        assert_eq!(
            err.kind(),
            fly_oidc_gcp::ErrorKind::InvalidResponse,
            "{err}"
        );
        assert!(err.message().contains("clock"), "{err}");
        assert_eq!(
            f.fakes.google.iam_request_count(),
            call,
            "one exchange per call"
        );
    }
}

#[tokio::test]
async fn gcp_skew_google_ahead_of_us_never_trusts_more_than_the_requested_lifetime() {
    // IAM Credentials is two hours ahead: expireTime says three hours from now by our clock.
    let f = Gcp::start(2 * 3600, Duration::from_secs(3600)).await;
    let provider = f.impersonating();
    let token = provider.access_token().await.unwrap();
    let left = secs_left(Some(token.expires_at()), f.clock.now());
    assert!(left <= 3600, "a 1-hour token claimed to live {left} s");
    f.at(56 * 60);
    assert_ne!(provider.access_token().await.unwrap(), token);
    assert_eq!(f.fakes.google.iam_request_count(), 2);
}

#[tokio::test]
async fn gcp_short_tokens_refresh_before_expiry_not_on_every_call() {
    // 15-minute federated tokens, the default cache (5-minute window, 30 s jitter).
    let f = Gcp::start(0, Duration::from_secs(900)).await;
    let provider = f.builder().build().unwrap();
    let mut t = 0;
    let mut min_left = i64::MAX;
    while t <= 3600 {
        f.at(t);
        for _ in 0..10 {
            let token = provider.access_token().await.unwrap();
            min_left = min_left.min(secs_left(Some(token.expires_at()), f.clock.now()));
        }
        t += 10;
    }
    let refreshes = f.fakes.google.request_count();
    assert!((6..=7).contains(&refreshes), "{refreshes} STS exchanges");
    assert!(min_left > 290, "served a token with {min_left} s left");
}

// ---------------------------------------------------------------- CLI

/// The cache entry's `expires_at` set to `secs` from the real clock (what the child reads).
fn set_entry_expiry(sandbox: &Sandbox, secs_from_now: u64) {
    let path = &sandbox.entries()[0];
    let mut entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let now = SystemTimeSource
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    entry["expires_at"] = (now + secs_from_now).into();
    std::fs::write(path, entry.to_string()).unwrap();
}

#[test]
fn cli_a_900_second_session_is_reused_for_half_its_life_whatever_min_ttl_says() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sts = FakeSts::builder().start_blocking().unwrap();
    let sandbox = Sandbox::new(&fly, &sts.url());
    let short = ["--duration-seconds", "900"];
    let first = sandbox.credential_process(ROLE_A, &short);
    // 900 s is less than the default 15-minute --min-ttl: without a cap every run would
    // call STS. Reused while more than half the session (450 s) remains.
    assert_eq!(sandbox.credential_process(ROLE_A, &short), first);
    assert_eq!(sts.request_count(), 1);
    let with_min_ttl = ["--duration-seconds", "900", "--min-ttl", "20m"];
    set_entry_expiry(&sandbox, 460);
    assert_eq!(
        sandbox.credential_process(ROLE_A, &with_min_ttl)["AccessKeyId"],
        first["AccessKeyId"]
    );
    assert_eq!(sts.request_count(), 1);
    set_entry_expiry(&sandbox, 440);
    let second = sandbox.credential_process(ROLE_A, &short);
    assert_ne!(second["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(sts.request_count(), 2);
    // An explicit smaller --min-ttl is honoured.
    set_entry_expiry(&sandbox, 200);
    let min_ttl_60 = ["--duration-seconds", "900", "--min-ttl", "60"];
    assert_eq!(
        sandbox.credential_process(ROLE_A, &min_ttl_60)["AccessKeyId"],
        second["AccessKeyId"]
    );
    assert_eq!(sts.request_count(), 2);
}

#[test]
fn cli_never_prints_or_caches_credentials_that_sts_says_have_expired() {
    // STS's clock is 20 minutes behind the real one: its 900 s credentials are already past.
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    let sts = FakeSts::builder()
        .clock(|| SystemTimeSource.now() - Duration::from_secs(20 * 60))
        .start_blocking()
        .unwrap();
    let sandbox = Sandbox::new(&fly, &sts.url());
    for run in 1..=2 {
        let out = sandbox.fly_oidc(&[
            "aws",
            "credential-process",
            "--role-arn",
            ROLE_A,
            "--duration-seconds",
            "900",
        ]);
        let err = failed(&out, 1);
        assert!(err.contains("clock"), "{err}");
        assert_eq!(sts.request_count(), run);
    }
    assert!(sandbox.entries().is_empty());
    // With the real clock STS's answer is good again.
    let ok = FakeSts::builder().start_blocking().unwrap();
    let sandbox = Sandbox::new(&fly, &ok.url());
    let out = sandbox.fly_oidc(&["aws", "credential-process", "--role-arn", ROLE_A]);
    assert_success(&out, "credential-process with a sane STS");
}
