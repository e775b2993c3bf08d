//! The credential server's upstream budget and its caches of client-chosen keys, counted at
//! the fakes: what each client request costs in Fly tokens, Google STS exchanges and IAM
//! calls; junk `?scopes=` and `identity?audience=` floods; permanent refusals answered as
//! such and not retried; one slow fetch delaying no other key; the Machines API rate; and
//! query strings logged without their secrets.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc::time::{ManualTimeSource, SharedTimeSource};
use fly_oidc_server::Server;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::Fault;
use fly_oidc_testkit::google::FakeGoogle;
use fly_oidc_tests::LogCapture;
use fly_oidc_tests::gcp::{Fakes, SA, provider_builder};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::server::metadata;

const BASE: &str = "/computeMetadata/v1/instance/service-accounts/default";

struct Setup {
    fly: FakeFlyApi,
    google: FakeGoogle,
    server: Server,
}

impl Setup {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// (Fly tokens, STS exchanges, IAM calls) so far.
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.fly.request_count(),
            self.google.request_count(),
            self.google.iam_request_count(),
        )
    }
}

/// A server for Google alone, other scopes allowed, impersonating `service_account` if any.
async fn setup(service_account: Option<&str>) -> Setup {
    setup_with(service_account, |builder| builder).await
}

/// [`setup`], the server's builder changed by `configure`.
async fn setup_with(
    service_account: Option<&str>,
    configure: impl FnOnce(fly_oidc_server::Builder) -> fly_oidc_server::Builder,
) -> Setup {
    let (fly, google, server) = crate::server::gcp_server_with(service_account, configure).await;
    Setup {
        fly,
        google,
        server,
    }
}

fn scope(n: usize) -> String {
    format!("https://www.googleapis.com/auth/junk.{n}")
}

/// With a service account, start-up costs one Fly token, one STS exchange and one IAM call;
/// then each new audience and each new scope set costs one IAM call and nothing else: the
/// federated token (and its Fly token) from start-up serves them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_audiences_and_scope_sets_cost_one_iam_call_each_and_no_fly_token_or_exchange() {
    let s = setup(Some(SA)).await;
    assert_eq!(s.counts(), (1, 1, 1), "start-up");
    for n in 0..4 {
        let path = format!("{BASE}/identity?audience=https://app{n}.example.com");
        let answer = metadata(s.addr(), &path).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    for n in 0..3 {
        let answer = metadata(s.addr(), &format!("{BASE}/token?scopes={}", scope(n))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let token = answer.json()["access_token"].as_str().unwrap().to_owned();
        let issued = s.google.token_info(&token).unwrap();
        assert_eq!(issued.scopes, vec![scope(n)]);
        assert_eq!(issued.service_account.as_deref(), Some(SA));
    }
    assert_eq!(s.counts(), (1, 1, 8), "4 audiences and 3 scope sets");
    // Asked again: all cached.
    let again = format!("{BASE}/identity?audience=https://app0.example.com");
    assert_eq!(metadata(s.addr(), &again).await.status, 200);
    assert_eq!(s.counts(), (1, 1, 8));
}

/// Without a service account, a new scope set is one STS exchange with the Fly token from
/// start-up: no new Fly token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_service_account_a_new_scope_set_reuses_the_fly_token() {
    let s = setup(None).await;
    assert_eq!(s.counts(), (1, 1, 0), "start-up");
    for n in 0..3 {
        let answer = metadata(s.addr(), &format!("{BASE}/token?scopes={}", scope(n))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(s.counts(), (1, 4, 0));
}

/// IAM refusing an ID token (403 PERMISSION_DENIED) or a scope set (400 INVALID_ARGUMENT)
/// is answered with Google's status and code and the diagnosis, kept as the answer (asked
/// again: no new call), and not retried in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_answered_as_one_kept_and_not_retried() {
    let s = setup(Some(SA)).await;
    s.google.fail_next_iam(
        1,
        Fault::error(
            403,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).",
        ),
    );
    let path = format!("{BASE}/identity?audience=https://denied.example.com");
    let answer = metadata(s.addr(), &path).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["code"], "PERMISSION_DENIED", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("roles/iam.workloadIdentityUser") && message.contains(SA),
        "{message}"
    );
    s.google.fail_next_iam(
        1,
        Fault::error(
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
        ),
    );
    let scoped = metadata(s.addr(), &format!("{BASE}/token?scopes=not-a-scope")).await;
    assert_eq!(scoped.status, 400, "{}", scoped.body);
    assert_eq!(scoped.json()["code"], "INVALID_ARGUMENT");
    let counts = s.counts();
    assert_eq!(counts, (1, 1, 3));
    // Asked again: the same answers, no new call, no Fly token, no exchange.
    for _ in 0..5 {
        assert_eq!(metadata(s.addr(), &path).await.status, 403);
        let again = metadata(s.addr(), &format!("{BASE}/token?scopes=not-a-scope")).await;
        assert_eq!(again.status, 400);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.counts(), counts, "no retry in the background");
    // A transient failure is still a 503.
    s.google.fail_next_iam(
        4,
        Fault::Status(503, fly_oidc_testkit::google::unavailable_body()),
    );
    let busy = metadata(s.addr(), &format!("{BASE}/identity?audience=https://busy")).await;
    assert_eq!(busy.status, 503, "{}", busy.body);
}

/// A refusal is the answer for 5 minutes, then a client's request may try the key again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_kept_for_five_minutes_then_tried_again_on_request() {
    let Fakes { fly, google } = Fakes::start().await;
    let clock = ManualTimeSource::new(SharedTimeSource::default().now());
    let provider = provider_builder(&fly, &google)
        .service_account(SA)
        .build()
        .unwrap();
    let server = Server::builder()
        .gcp(provider)
        .time_source(SharedTimeSource::new(clock.clone()))
        .start()
        .await
        .unwrap();
    google.fail_next_iam(1, Fault::error(403, "PERMISSION_DENIED", "denied"));
    let path = format!("{BASE}/identity?audience=https://later.example.com");
    assert_eq!(metadata(server.local_addr(), &path).await.status, 403);
    clock.advance(Duration::from_secs(4 * 60));
    assert_eq!(metadata(server.local_addr(), &path).await.status, 403);
    assert_eq!(google.iam_request_count(), 2, "kept: no new call");
    clock.advance(Duration::from_secs(2 * 60));
    let answer = metadata(server.local_addr(), &path).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(google.iam_request_count(), 3);
}

/// More junk scope sets and audiences than the caches hold, some refused by Google: the
/// configured token is still served, a new legitimate key still gets its token, the junk
/// costs no Fly token, and the refused junk is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_floods_neither_evict_the_default_nor_lock_out_a_new_key() {
    // More new keys than the default budget's burst (80): room for all 142 at once here, so
    // that this test is about the caches (the budget has its own test, below).
    let s = setup_with(Some(SA), |b| b.new_key_rate(200, Duration::from_secs(1))).await;
    let default = metadata(s.addr(), &format!("{BASE}/token")).await.json();
    // 40 junk scope sets (the cache holds 16), every other one refused.
    for n in 0..40 {
        if n % 2 == 0 {
            s.google.fail_next_iam(
                1,
                Fault::error(
                    400,
                    "INVALID_ARGUMENT",
                    "Request contains an invalid argument.",
                ),
            );
        }
        let answer = metadata(s.addr(), &format!("{BASE}/token?scopes={}", scope(n))).await;
        assert_eq!(
            answer.status,
            if n % 2 == 0 { 400 } else { 200 },
            "{n}: {}",
            answer.body
        );
    }
    // 100 junk audiences (the cache holds 64).
    for n in 0..100 {
        let path = format!("{BASE}/identity?audience=junk-{n}");
        assert_eq!(metadata(s.addr(), &path).await.status, 200);
    }
    let legit = metadata(
        s.addr(),
        &format!("{BASE}/token?scopes=https://www.googleapis.com/auth/drive"),
    )
    .await;
    assert_eq!(legit.status, 200, "{}", legit.body);
    let legit = metadata(
        s.addr(),
        &format!("{BASE}/identity?audience=https://legit.example.com"),
    )
    .await;
    assert_eq!(legit.status, 200, "{}", legit.body);
    let still = metadata(s.addr(), &format!("{BASE}/token")).await.json();
    assert_eq!(
        still["access_token"], default["access_token"],
        "the default token is kept"
    );
    let counts = s.counts();
    assert_eq!(
        (counts.0, counts.1),
        (1, 1),
        "no Fly token or exchange for the junk"
    );
    assert_eq!(counts.2, 1 + 40 + 100 + 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.counts(), counts, "nothing retried in the background");
}

/// A client cycling more junk audiences and scope sets than the caches hold, many at a time,
/// costs Google no more than the budget of new keys: its burst, then one call per interval
/// (here 4, then one per 250 ms), where without it every request was a call. The configured
/// token is still served at once, and once the flood stops a new key gets its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycling_junk_keys_costs_google_no_more_than_the_budget_of_new_keys() {
    let every = Duration::from_millis(250);
    let s = setup_with(Some(SA), |b| b.new_key_rate(4, every)).await;
    let before = s.counts().2;
    let started = tokio::time::Instant::now();
    let flood = Duration::from_secs(2);
    let mut clients = Vec::new();
    for client in 0..8usize {
        let addr = s.addr();
        clients.push(tokio::spawn(async move {
            let mut sent = 0usize;
            while started.elapsed() < flood {
                let n = (client * 1000 + sent) % 100;
                let path = if n.is_multiple_of(5) {
                    format!("{BASE}/token?scopes={}", scope(n))
                } else {
                    format!("{BASE}/identity?audience=cycle-{n}")
                };
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), metadata(addr, &path)).await;
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for client in clients {
        sent += client.await.unwrap();
    }
    let default = metadata(s.addr(), &format!("{BASE}/token")).await;
    assert_eq!(default.status, 200, "{}", default.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = started.elapsed();
    let calls = s.counts().2 - before;
    let allowed = 4 + (elapsed.as_millis() / every.as_millis()) as usize + 1;
    assert!(sent > 2 * allowed, "the flood sent {sent} requests");
    assert!(
        calls <= allowed,
        "{calls} IAM calls for {sent} junk requests in {elapsed:?}; at most {allowed}"
    );
    assert_eq!(
        (s.counts().0, s.counts().1),
        (1, 1),
        "no Fly token or exchange for the junk"
    );
    // Keys nobody waits for any more give up their place in the queue within 10 s.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let legit = metadata(
        s.addr(),
        &format!("{BASE}/identity?audience=https://legit.example.com"),
    )
    .await;
    assert_eq!(legit.status, 200, "{}", legit.body);
}

/// With the budget of new keys spent, junk keys waiting for a turn fill the audience cache
/// again and again: they push out one another, never an audience already served, which is
/// still answered from the cache without a new call (found by a second black-box attack).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_use_is_not_evicted_by_keys_waiting_for_their_turn() {
    let s = setup_with(Some(SA), |b| b.new_key_rate(1, Duration::from_secs(3600))).await;
    let in_use = format!("{BASE}/identity?audience=https://in-use.example.com");
    let first = metadata(s.addr(), &in_use).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let calls = s.counts();
    for n in 0..100 {
        let path = format!("{BASE}/identity?audience=junk-{n}");
        let _ = tokio::time::timeout(Duration::from_millis(20), metadata(s.addr(), &path)).await;
    }
    let again = metadata(s.addr(), &in_use).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, first.body, "the same token, from the cache");
    assert_eq!(
        s.counts(),
        calls,
        "no call for the junk (no turn left) nor the key in use"
    );
}

/// Without a service account, Google STS refusing junk scope sets (`invalid_scope`): each is
/// answered 400 with Google's code, none is retried (no Fly token, no exchange while no client
/// asks), `/healthz` stays `ok`, and a legitimate scope set still gets its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_sets_refused_by_google_sts_are_not_retried() {
    let s = setup(None).await;
    for n in 0..20 {
        s.google
            .fail_next(1, Fault::error(400, "invalid_scope", "Invalid scope."));
        let answer = metadata(s.addr(), &format!("{BASE}/token?scopes={}", scope(n))).await;
        assert_eq!(answer.status, 400, "{n}: {}", answer.body);
        assert_eq!(answer.json()["code"], "invalid_scope");
        let message = answer.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains("check the scopes requested"), "{message}");
    }
    let counts = s.counts();
    assert_eq!(counts, (1, 21, 0));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(s.counts(), counts, "nothing retried in the background");
    let health = metadata(s.addr(), "/healthz").await.json();
    assert_eq!(health["status"], "ok", "{health}");
    let legit = metadata(
        s.addr(),
        &format!("{BASE}/token?scopes=https://www.googleapis.com/auth/drive"),
    )
    .await;
    assert_eq!(legit.status, 200, "{}", legit.body);
    assert_eq!(s.counts(), (1, 22, 0));
}

/// An ID token being fetched slowly for one audience does not delay the cached token of
/// another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fetch_for_one_audience_does_not_delay_a_cached_one() {
    let s = setup(Some(SA)).await;
    let cached = format!("{BASE}/identity?audience=https://cached.example.com");
    assert_eq!(metadata(s.addr(), &cached).await.status, 200);
    s.google
        .fail_next_iam(3, Fault::Delay(Duration::from_secs(4)));
    let addr = s.addr();
    let mut slow = Vec::new();
    for n in 0..3 {
        slow.push(tokio::spawn(async move {
            metadata(addr, &format!("{BASE}/identity?audience=https://slow{n}")).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let answer = metadata(s.addr(), &cached).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        took < Duration::from_millis(500),
        "the cached audience waited {took:?}"
    );
    for task in slow {
        assert_eq!(task.await.unwrap().status, 200);
    }
}

/// However many fetches are asked for at once, the Machines API sees a burst of 3, then
/// about one request a second: the budget every clone of the Fly client shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_machines_api_is_asked_about_once_a_second_at_most() {
    let fly = FakeFlyApi::builder().org("acme").start().await.unwrap();
    let client = fly_oidc_tests::fly_client(&fly);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..7 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .fetch_token(Some(&format!("https://aud{n}")))
                .await
                .map(|_| Instant::now())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let early = fly.request_count();
    assert!(early <= 4, "{early} requests in the first 1.5 s");
    let mut ends = Vec::new();
    for task in tasks {
        ends.push(task.await.unwrap().unwrap());
    }
    let last = ends.into_iter().max().unwrap() - started;
    assert!(last >= Duration::from_millis(3900), "7 tokens in {last:?}");
    assert!(last < Duration::from_secs(6), "7 tokens in {last:?}");
    assert_eq!(fly.request_count(), 7);
}

/// A server whose fetchers together want more than the Machines API allows (eight token files,
/// each needing a Fly token at start) asks it about once a second after a burst of 3: the
/// budget is shared by every fetcher of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_s_fetchers_share_one_machines_api_budget() {
    // Tokens that live long enough to be written (a --write-token file refuses one with less
    // than 30 s left): the budget shows at start, where each file needs a token at once.
    let fly = FakeFlyApi::builder()
        .org("acme")
        .token_lifetime(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = fly_oidc_tests::fly_client(&fly);
    let mut builder = Server::builder();
    for n in 0..8 {
        builder = builder.write_token(
            dir.path().join(format!("token{n}")),
            format!("https://aud{n}"),
            client.clone(),
        );
    }
    let started = Instant::now();
    let server = builder.start().await.unwrap();
    let window = started.elapsed().as_secs_f64();
    let requests = fly.request_count();
    eprintln!("{requests} Machines API requests in {window:.1} s");
    assert_eq!(requests, 8, "one token per file");
    // A burst of 3, then one a second: the eighth waited about 5 s. Fetchers with a budget
    // each would have asked for all eight at once.
    assert!(
        window >= 4.0,
        "{requests} Machines API requests in {window:.1} s"
    );
    for n in 0..8 {
        assert!(dir.path().join(format!("token{n}")).exists(), "token{n}");
    }
    drop(server);
}

/// Query strings reach the debug log by parameter name; only harmless values (scopes, an
/// audience) are shown, never a `token=` or `access_token=` value.
#[tokio::test]
async fn query_strings_are_logged_without_their_secrets() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let s = setup(Some(SA)).await;
    let secret = "s3cr3t-value-0123456789";
    let jwt = s.fly.mint(Some("https://x"));
    for query in [
        format!("token={secret}"),
        format!("access_token={secret}&scopes=https://www.googleapis.com/auth/drive"),
        format!("audience=https://seen.example.com&id_token={jwt}"),
        format!("{jwt}=x"),
    ] {
        let _ = metadata(s.addr(), &format!("{BASE}/identity?{query}")).await;
        let _ = metadata(s.addr(), &format!("/healthz?{query}")).await;
    }
    let text = logs.text();
    assert!(text.contains("answered"), "{text}");
    assert!(
        text.contains("token") && text.contains("access_token"),
        "{text}"
    );
    assert!(text.contains("seen.example.com"), "{text}");
    assert!(!text.contains(secret), "{text}");
    let signature = jwt.rsplit('.').next().unwrap();
    assert!(!text.contains(signature), "{text}");
}
