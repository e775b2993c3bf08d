//! The credential server (`fly-oidc-server`) over real sockets, fed by the fake Fly API, the
//! fault-injecting fake STS and the fake Google: the security properties (authorization
//! token, Host, Metadata-Flavor, X-Forwarded-For, loopback only), static stability when STS
//! goes down, misbehaving clients, load, and a burst during a refresh.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc_server::{ErrorKind, Server};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::Fault;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::FakeGoogle;
use fly_oidc_tests::gcp::SA;
use fly_oidc_tests::gcp::service_account_of;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP answer (also server_upstream.rs's).
pub(crate) struct Resp {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A raw HTTP/1.1 GET. `Host` is the server's address unless `headers` names one (an empty
/// value leaves it out).
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    match headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")) {
        Some((_, "")) => {}
        Some((_, host)) => request.push_str(&format!("Host: {host}\r\n")),
        None => request.push_str(&format!("Host: {addr}\r\n")),
    }
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    send(addr, &request).await
}

/// Send `request` (a whole HTTP/1.1 request head) and read the answer.
async fn send(addr: SocketAddr, request: &str) -> Resp {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The fake Fly API of org `acme`, app `web`.
async fn acme_web() -> FakeFlyApi {
    FakeFlyApi::builder()
        .org("acme")
        .app("web")
        .start()
        .await
        .unwrap()
}

async fn fakes() -> (FakeFlyApi, FakeSts) {
    let fly = acme_web().await;
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .start()
        .await
        .unwrap();
    (fly, sts)
}

/// A FakeSts whose credentials live `lifetime` (its clock runs 900 s - lifetime behind).
async fn short_lived_sts(lifetime: Duration, latency: Duration) -> FakeSts {
    let behind = Duration::from_secs(900) - lifetime;
    #[allow(clippy::disallowed_methods)] // the fake's clock, shifted
    let clock = move || SystemTime::now() - behind;
    FakeSts::builder()
        .clock(clock)
        .latency(latency)
        .start()
        .await
        .unwrap()
}

fn role(fly: &FakeFlyApi, sts_url: &str, arn: &str) -> fly_oidc_aws::FlyOidcCredentialsProvider {
    fly_oidc_tests::aws::provider(fly, sts_url)
        .role_arn(arn)
        .duration(Duration::from_secs(900))
        .build()
        .unwrap()
}

/// The provider for `arn:aws:iam::123456789012:role/reader` through `sts`.
fn reader(fly: &FakeFlyApi, sts: &FakeSts) -> fly_oidc_aws::FlyOidcCredentialsProvider {
    role(fly, &sts.url(), "arn:aws:iam::123456789012:role/reader")
}

/// A GET with `Metadata-Flavor: Google`.
pub(crate) async fn metadata(addr: SocketAddr, path: &str) -> Resp {
    get(addr, path, &[("Metadata-Flavor", "Google")]).await
}

/// A server for [`reader`] alone.
async fn reader_server(fly: &FakeFlyApi, sts: &FakeSts) -> Result<Server, fly_oidc_server::Error> {
    Server::builder().aws_role(reader(fly, sts)).start().await
}

/// A server for Google alone (fake Google trusting [`acme_web`]), other scopes allowed,
/// impersonating `service_account` if any.
pub(crate) async fn gcp_server(service_account: Option<&str>) -> (FakeFlyApi, FakeGoogle, Server) {
    gcp_server_with(service_account, |builder| builder).await
}

/// [`gcp_server`], its builder changed by `configure` before the start.
pub(crate) async fn gcp_server_with(
    service_account: Option<&str>,
    configure: impl FnOnce(fly_oidc_server::Builder) -> fly_oidc_server::Builder,
) -> (FakeFlyApi, FakeGoogle, Server) {
    let fly = acme_web().await;
    let mut google = FakeGoogle::builder(&fly);
    if let Some(sa) = service_account {
        google = google.service_account(sa);
    }
    let google = google.start().await.unwrap();
    let mut provider = fly_oidc_tests::gcp::provider_builder(&fly, &google);
    if let Some(sa) = service_account {
        provider = provider.service_account(sa);
    }
    let scoped = provider.clone();
    let builder = Server::builder()
        .gcp(provider.build().unwrap())
        .gcp_scoped(move |scopes| {
            scoped
                .clone()
                .scopes(scopes.to_vec())
                .build()
                .map_err(|e| e.to_string())
        });
    let server = configure(builder).start().await.unwrap();
    (fly, google, server)
}

fn auth(server: &Server) -> String {
    server.expose_auth_token().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_endpoint_checks_token_and_host_and_serves_ecs_json() {
    let (fly, sts) = fakes().await;
    let server = Server::builder()
        .aws_role(reader(&fly, &sts))
        .aws_role(role(
            &fly,
            &sts.url(),
            "arn:aws:iam::123456789012:role/writer",
        ))
        .start()
        .await
        .unwrap();
    let addr = server.local_addr();
    let token = auth(&server);
    assert!(token.len() >= 22, "at least 128 bits");
    let path = "/v1/aws/credentials";

    let missing = get(addr, path, &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["code"], "Unauthorized");
    let wrong = get(addr, path, &[("Authorization", "not-the-token")]).await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.json()["message"].as_str().unwrap().contains("wrong"));
    let almost = &token[..token.len() - 1];
    assert_eq!(
        get(addr, path, &[("Authorization", almost)]).await.status,
        403
    );
    let rebinding = get(
        addr,
        path,
        &[("Authorization", &token), ("Host", "evil.example:80")],
    )
    .await;
    assert_eq!(rebinding.status, 403);
    assert_eq!(rebinding.json()["code"], "InvalidHost");
    let no_host = get(addr, path, &[("Authorization", &token), ("Host", "")]).await;
    assert_eq!(no_host.status, 403);

    let ok = get(addr, path, &[("Authorization", &token)]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let creds = ok.json();
    for key in [
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
        "AccountId",
    ] {
        assert!(creds[key].is_string(), "{key} missing: {creds}");
    }
    assert_eq!(creds["AccountId"], "123456789012");
    let localhost = get(
        addr,
        path,
        &[
            ("Authorization", &token),
            ("Host", &format!("localhost:{}", addr.port())),
        ],
    )
    .await;
    assert_eq!(localhost.status, 200);
    // Each role at its own path; the first is the default.
    let reader = get(addr, "/v1/aws/roles/reader", &[("Authorization", &token)]).await;
    assert_eq!(reader.json()["AccessKeyId"], creds["AccessKeyId"]);
    let writer = get(addr, "/v1/aws/roles/writer", &[("Authorization", &token)]).await;
    assert_eq!(writer.status, 200);
    assert_ne!(writer.json()["AccessKeyId"], creds["AccessKeyId"]);
    assert_eq!(
        get(addr, "/v1/aws/roles/nobody", &[("Authorization", &token)])
            .await
            .status,
        404
    );
    let uris = server.aws_role_uris();
    assert_eq!(uris.len(), 2);
    assert!(uris[1].1.ends_with("/v1/aws/roles/writer"));
    // Two STS calls in all (one per role), whatever the number of requests.
    assert_eq!(sts.request_count(), 2);

    // No secret in /healthz or in error bodies.
    let health = get(addr, "/healthz", &[("Host", "anything")]).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    for body in [&health.body, &missing.body, &wrong.body, &rebinding.body] {
        assert_no_secret(body, &fly, &sts, &token);
    }
}

fn assert_no_secret(text: &str, fly: &FakeFlyApi, sts: &FakeSts, auth_token: &str) {
    fly_oidc_tests::Secrets::of_fly(fly)
        .sts(sts)
        .with("the server's auth token", auth_token)
        .assert_absent("a response body", text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_endpoints_behave_like_googles() {
    let (_fly, google, server) = gcp_server(Some(SA)).await;
    let addr = server.local_addr();
    let flavor = ("Metadata-Flavor", "Google");
    let base = "/computeMetadata/v1";

    // The root answers anything, with the header (SDKs probe it).
    let root = get(addr, "/", &[("Host", "whatever")]).await;
    assert_eq!(root.status, 200);
    assert_eq!(root.header("Metadata-Flavor"), Some("Google"));

    let token_path = format!("{base}/instance/service-accounts/default/token");
    let no_flavor = get(addr, &token_path, &[]).await;
    assert_eq!(no_flavor.status, 403);
    assert_eq!(no_flavor.header("Metadata-Flavor"), Some("Google"));
    let forwarded = get(
        addr,
        &token_path,
        &[flavor, ("X-Forwarded-For", "10.0.0.1")],
    )
    .await;
    assert_eq!(forwarded.status, 403);
    let bad_host = get(addr, &token_path, &[flavor, ("Host", "attacker.example")]).await;
    assert_eq!(bad_host.status, 403);

    let token = metadata(addr, &format!("{token_path}?audience=x&foo=bar")).await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(token.header("Metadata-Flavor"), Some("Google"));
    let body = token.json();
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(expires_in > 3000 && expires_in <= 3600, "{expires_in}");
    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(
        service_account_of(&google, access_token).as_deref(),
        Some(SA)
    );
    // The same token for the same account by email.
    let by_email = metadata(
        addr,
        &format!("{base}/instance/service-accounts/{SA}/token"),
    )
    .await;
    assert_eq!(by_email.json()["access_token"], body["access_token"]);

    let info = metadata(
        addr,
        &format!("{base}/instance/service-accounts/default/?recursive=true"),
    )
    .await;
    assert_eq!(info.json()["email"], SA);
    assert_eq!(
        info.json()["scopes"][0],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    let email = metadata(
        addr,
        &format!("{base}/instance/service-accounts/default/email"),
    )
    .await;
    assert_eq!(email.body, SA);
    let project = metadata(addr, &format!("{base}/project/project-id")).await;
    assert_eq!(project.status, 404, "no --gcp-project");
    let number = metadata(addr, &format!("{base}/project/numeric-project-id")).await;
    assert_eq!(number.body, google.provider().split('/').nth(1).unwrap());
    let universe = metadata(addr, &format!("{base}/universe/universe-domain")).await;
    assert_eq!(universe.body, "googleapis.com");
    let unknown = metadata(addr, &format!("{base}/instance/zone")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.header("Metadata-Flavor"), Some("Google"));
    let other_account = metadata(
        addr,
        &format!("{base}/instance/service-accounts/x@y.com/token"),
    )
    .await;
    assert_eq!(other_account.status, 404);

    // Another scope set gets a token of its own, once.
    let scoped_path =
        format!("{token_path}?scopes=https://www.googleapis.com/auth/devstorage.read_only");
    let scoped = metadata(addr, &scoped_path).await;
    assert_eq!(scoped.status, 200, "{}", scoped.body);
    let scoped_token = scoped.json()["access_token"].as_str().unwrap().to_owned();
    assert_ne!(scoped_token, body["access_token"].as_str().unwrap());
    assert_eq!(
        google.token_info(&scoped_token).unwrap().scopes,
        vec!["https://www.googleapis.com/auth/devstorage.read_only".to_owned()]
    );
    assert_eq!(
        metadata(addr, &scoped_path).await.json()["access_token"],
        scoped_token.as_str()
    );
    // With the service account: one impersonation per scope set, on the federated token of
    // start-up (no new exchange).
    assert_eq!(google.request_count(), 1, "the federated token is reused");
    assert_eq!(
        google.iam_request_count(),
        2,
        "one impersonation per scope set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_service_account_the_federated_token_is_served_as_default() {
    let (_fly, google, server) = gcp_server(None).await;
    let addr = server.local_addr();
    let base = "/computeMetadata/v1/instance/service-accounts/default";
    let info = metadata(addr, &format!("{base}/?recursive=true")).await;
    // The federated principal's name of its own (gcloud skips `default` in the listing).
    let email = "acme.fly-pool@123456789012.fly-oidc.invalid";
    assert_eq!(info.json()["email"], email);
    let listing = metadata(addr, "/computeMetadata/v1/instance/service-accounts/").await;
    assert_eq!(listing.body, format!("default/\n{email}/\n"));
    let by_name = metadata(
        addr,
        &format!("/computeMetadata/v1/instance/service-accounts/{email}/token"),
    )
    .await;
    assert_eq!(by_name.status, 200, "{}", by_name.body);
    let token = metadata(addr, &format!("{base}/token")).await.json();
    let issued = google
        .token_info(token["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(issued.service_account, None, "the federated STS token");
    let identity = metadata(addr, &format!("{base}/identity?audience=https://x")).await;
    assert_eq!(identity.status, 404);
    assert!(identity.body.contains("--gcp-service-account"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_request_without_an_audience_is_a_local_400() {
    let (_fly, google, server) = gcp_server(Some(SA)).await;
    let addr = server.local_addr();
    let base = "/computeMetadata/v1/instance/service-accounts/default/identity";
    let before = google.request_count();
    for query in ["", "?audience=", "?audience=%20", "?format=full"] {
        let identity = metadata(addr, &format!("{base}{query}")).await;
        assert_eq!(identity.status, 400, "{query}: {}", identity.body);
        assert!(identity.body.contains("?audience="), "{}", identity.body);
    }
    assert_eq!(google.request_count(), before, "nothing sent to IAM");
    let iam_before = google.iam_request_count();
    let identity = metadata(addr, &format!("{base}?audience=https://x")).await;
    assert_eq!(identity.status, 200, "{}", identity.body);
    assert_eq!(google.iam_request_count(), iam_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_hosts_foreign_authorities_forwarded_and_a_lowercase_flavor_are_refused() {
    let (_fly, google, server) = gcp_server(Some(SA)).await;
    let addr = server.local_addr();
    let path = "/computeMetadata/v1/instance/service-accounts/default/email";
    let flavor = "Metadata-Flavor: Google\r\n";
    let ok = metadata(addr, path).await;
    assert_eq!((ok.status, ok.body.as_str()), (200, SA));

    // More than one Host, either order: 400, on every path.
    for hosts in [
        format!("Host: {addr}\r\nHost: evil.com\r\n"),
        format!("Host: evil.com\r\nHost: {addr}\r\n"),
    ] {
        for target in [path, "/healthz", "/"] {
            let request =
                format!("GET {target} HTTP/1.1\r\n{hosts}{flavor}Connection: close\r\n\r\n");
            let answer = send(addr, &request).await;
            assert_eq!(answer.status, 400, "{target} {hosts:?}: {}", answer.body);
            assert!(!answer.body.contains(SA), "{}", answer.body);
        }
    }
    // An absolute-form target names the host: another one is refused like a foreign Host.
    let request = format!(
        "GET http://evil.com{path} HTTP/1.1\r\nHost: {addr}\r\n{flavor}Connection: close\r\n\r\n"
    );
    let absolute = send(addr, &request).await;
    assert_eq!(absolute.status, 403, "{}", absolute.body);
    assert!(absolute.body.contains("InvalidHost"), "{}", absolute.body);
    let request = format!(
        "GET http://{addr}{path} HTTP/1.1\r\nHost: {addr}\r\n{flavor}Connection: close\r\n\r\n"
    );
    let own = send(addr, &request).await;
    assert_eq!((own.status, own.body.as_str()), (200, SA));

    // Forwarded is refused like X-Forwarded-For; the flavor is compared exactly.
    let forwarded = get(
        addr,
        path,
        &[("Metadata-Flavor", "Google"), ("Forwarded", "for=10.0.0.1")],
    )
    .await;
    assert_eq!(forwarded.status, 403);
    assert!(forwarded.body.contains("Forwarded"), "{}", forwarded.body);
    for wrong in ["google", "GOOGLE", "Google2"] {
        let answer = get(addr, path, &[("Metadata-Flavor", wrong)]).await;
        assert_eq!(answer.status, 403, "{wrong}");
        assert!(!answer.body.contains(SA));
    }

    // /healthz answers any Host, but names what it serves only to its own.
    let own = get(addr, "/healthz", &[]).await;
    assert!(own.body.contains(google.provider()), "{}", own.body);
    let foreign = get(addr, "/healthz", &[("Host", "evil.com")]).await;
    assert_eq!(foreign.status, 200);
    let health = foreign.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["credentials"][0]["state"], "ok");
    assert!(
        !foreign.body.contains(google.provider()),
        "{}",
        foreign.body
    );
    assert!(!foreign.body.contains(SA), "{}", foreign.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_endpoint_refuses_duplicate_hosts_and_foreign_authorities() {
    let (fly, sts) = fakes().await;
    let server = reader_server(&fly, &sts).await.unwrap();
    let addr = server.local_addr();
    let token = auth(&server);
    let path = "/v1/aws/credentials";
    let auth_line = format!("Authorization: {token}\r\n");
    let two = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nHost: evil.com\r\n{auth_line}Connection: close\r\n\r\n"
    );
    assert_eq!(send(addr, &two).await.status, 400);
    let absolute = format!(
        "GET http://evil.com{path} HTTP/1.1\r\nHost: {addr}\r\n{auth_line}Connection: close\r\n\r\n"
    );
    let answer = send(addr, &absolute).await;
    assert_eq!(answer.status, 403);
    assert_no_secret(&answer.body, &fly, &sts, &token);
    let foreign = get(addr, "/healthz", &[("Host", "evil.com")]).await;
    assert!(!foreign.body.contains("role/reader"), "{}", foreign.body);
    let own = get(addr, "/healthz", &[]).await;
    assert!(own.body.contains("role/reader"), "{}", own.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_other_than_the_configured_ones_get_a_token_for_those_scopes() {
    const DRIVE: &str = "https://www.googleapis.com/auth/drive";
    for service_account in [None, Some(SA)] {
        let (_fly, google, server) = gcp_server(service_account).await;
        let addr = server.local_addr();
        let base = "/computeMetadata/v1/instance/service-accounts/default/token";
        // Comma- and space-separated (percent-encoded) lists, as the SDKs send them.
        for query in [
            format!("scopes={DRIVE}"),
            format!("scopes={DRIVE},https://www.googleapis.com/auth/cloud-platform"),
            format!("scopes={DRIVE}%20https://www.googleapis.com/auth/cloud-platform"),
        ] {
            let answer = metadata(addr, &format!("{base}?{query}")).await;
            assert_eq!(answer.status, 200, "{query}: {}", answer.body);
            let token = answer.json()["access_token"].as_str().unwrap().to_owned();
            let issued = google.token_info(&token).unwrap();
            assert!(
                issued.scopes.iter().any(|s| s == DRIVE),
                "{service_account:?} {query}: {:?}",
                issued.scopes
            );
            assert_eq!(issued.service_account.as_deref(), service_account);
        }
        // The configured scopes (or a subset) are the configured token.
        let plain = metadata(addr, base).await.json();
        let issued = google
            .token_info(plain["access_token"].as_str().unwrap())
            .unwrap();
        assert!(
            !issued.scopes.iter().any(|s| s == DRIVE),
            "{:?}",
            issued.scopes
        );
    }
}

/// 127.0.0.1 only: not every SDK accepts [::1] or another 127.x in
/// AWS_CONTAINER_CREDENTIALS_FULL_URI.
#[tokio::test]
async fn only_127_0_0_1_is_accepted() {
    for (addr, why) in [
        ("0.0.0.0:0", "only processes on this Machine"),
        ("[::1]:0", "not every AWS SDK accepts ::1"),
        ("127.0.0.2:0", "not every AWS SDK accepts 127.0.0.2"),
    ] {
        let err = Server::builder()
            .listen(addr.parse().unwrap())
            .start()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSetting);
        assert!(err.to_string().contains("127.0.0.1 only"), "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_at_start_is_an_error_with_the_diagnosis() {
    let (fly, sts) = fakes().await;
    sts.fail_next(10, Fault::access_denied());
    let err = reader_server(&fly, &sts).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential);
    assert!(err.to_string().contains("role/reader"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_files_are_removed_when_the_server_stops_or_fails_to_start() {
    let (fly, sts) = fakes().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("azure-token");
    let with_file = |builder: fly_oidc_server::Builder| {
        builder.write_token(
            &path,
            "api://AzureADTokenExchange",
            fly_oidc_tests::fly_client(&fly),
        )
    };
    // Shutdown removes the live token it kept.
    let server = with_file(Server::builder()).start().await.unwrap();
    let jwt = std::fs::read_to_string(&path).unwrap();
    assert!(
        fly.issued_tokens().contains(&jwt),
        "a token the fake minted"
    );
    server.shutdown().await;
    assert!(!path.exists(), "shutdown removes the token file");
    // So does dropping the server.
    let server = with_file(Server::builder()).start().await.unwrap();
    assert!(path.exists());
    drop(server);
    assert!(!path.exists(), "drop removes the token file");
    // And a start that fails on another credential leaves no token behind.
    sts.fail_next(10, Fault::access_denied());
    let err = with_file(Server::builder().aws_role(reader(&fly, &sts)))
        .start()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential, "{err}");
    assert!(!path.exists(), "a failed start removes the token file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_address_in_use_is_a_listen_error_naming_it() {
    let (fly, sts) = fakes().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = Server::builder()
        .listen(addr)
        .aws_role(reader(&fly, &sts))
        .start()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Listen);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_down_after_warm_up_serves_until_expiry_then_a_json_503_at_once() {
    let fly = FakeFlyApi::builder().start().await.unwrap();
    let sts = short_lived_sts(Duration::from_secs(4), Duration::ZERO).await;
    let server = reader_server(&fly, &sts).await.unwrap();
    let started = Instant::now();
    sts.fail_next(10_000, Fault::service_unavailable());
    let (addr, token) = (server.local_addr(), auth(&server));
    let first = get(addr, "/v1/aws/credentials", &[("Authorization", &token)])
        .await
        .json();
    // Past the refresh point (2 s), before expiry (4 s): still the cached credentials.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let cached = get(addr, "/v1/aws/credentials", &[("Authorization", &token)]).await;
    assert_eq!(cached.status, 200);
    assert_eq!(cached.json()["AccessKeyId"], first["AccessKeyId"]);
    assert!(sts.request_count() >= 2, "a refresh was tried");
    let health = get(addr, "/healthz", &[]).await.json();
    assert_eq!(health["credentials"][0]["state"], "stale");
    tokio::time::sleep(
        Duration::from_secs(4).saturating_sub(started.elapsed()) + Duration::from_millis(700),
    )
    .await;
    let asked = Instant::now();
    let expired = get(addr, "/v1/aws/credentials", &[("Authorization", &token)]).await;
    assert!(
        asked.elapsed() < Duration::from_millis(200),
        "answered at once"
    );
    assert_eq!(expired.status, 503);
    assert_eq!(expired.json()["code"], "CredentialsUnavailable");
    assert!(
        expired.json()["message"]
            .as_str()
            .unwrap()
            .contains("role/reader")
    );
    assert_no_secret(&expired.body, &fly, &sts, &token);
    // STS back: the background retry restores service.
    sts.clear_faults();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = get(addr, "/v1/aws/credentials", &[("Authorization", &token)]).await;
        if again.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover: {}", again.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_during_a_refresh_makes_one_sts_call_and_waits_for_none() {
    let fly = FakeFlyApi::builder().start().await.unwrap();
    // Credentials live 6 s: the refresh starts at 3 s and takes 1.5 s.
    let sts = short_lived_sts(Duration::from_secs(6), Duration::from_millis(1500)).await;
    let server = reader_server(&fly, &sts).await.unwrap();
    assert_eq!(sts.request_count(), 1);
    let (addr, token) = (server.local_addr(), auth(&server));
    // Wait for the refresh to reach STS (at about 3 s), then burst while it is in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sts.request_count() < 2 {
        assert!(Instant::now() < deadline, "the refresh never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::builder().build().unwrap();
    let url = format!("http://{addr}/v1/aws/credentials");
    let burst_started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            let response = client
                .get(&url)
                .header("Authorization", token)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["AccessKeyId"].as_str().unwrap().to_owned(),
                started.elapsed(),
            )
        });
    }
    let mut slowest = Duration::ZERO;
    while let Some(done) = tasks.join_next().await {
        let (status, _key, took) = done.unwrap();
        assert_eq!(status, 200);
        slowest = slowest.max(took);
    }
    let burst = burst_started.elapsed();
    assert!(
        burst < Duration::from_millis(1500),
        "the burst waited on STS: {burst:?}"
    );
    assert!(
        slowest < Duration::from_millis(1500),
        "a client waited on STS: {slowest:?}"
    );
    // The refresh was in flight during the burst (it takes 1.5 s, the burst took less), and
    // it is the only call since the start: the next refresh is due 3 s after it completes.
    assert_eq!(sts.request_count(), 2, "exactly one refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_disconnects_slow_headers_and_ten_thousand_requests() {
    let (fly, sts) = fakes().await;
    let server = Server::builder()
        .aws_role(reader(&fly, &sts))
        .connection_limits({
            let mut limits = fly_oidc_server::ConnectionLimits::default();
            limits.header_read_timeout = Duration::from_millis(300);
            limits
        })
        .start()
        .await
        .unwrap();
    let (addr, token) = (server.local_addr(), auth(&server));
    // A client that goes away mid-request.
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /v1/aws/credentials HTTP/1.1\r\nHost: 127")
            .await
            .unwrap();
        drop(s);
    }
    // A client that sends its headers slowly is cut off.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /v1/aws/credentials HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut buf)).await;
    assert!(cut.is_ok(), "the server kept a slow client for 3 s");
    // A huge header is refused, not buffered.
    let huge = "x".repeat(64 * 1024);
    let mut big = TcpStream::connect(addr).await.unwrap();
    let _ = big
        .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Big: {huge}\r\n\r\n").as_bytes())
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), big.read_to_end(&mut answer)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431"));

    // 10,000 requests over 16 keep-alive connections: not one error.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    let url = format!("http://{addr}/v1/aws/credentials");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.spawn(async move {
            let mut errors = 0;
            for _ in 0..625 {
                let ok = match client
                    .get(&url)
                    .header("Authorization", &token)
                    .send()
                    .await
                {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    errors += 1;
                }
            }
            errors
        });
    }
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        errors += done.unwrap();
    }
    assert_eq!(errors, 0);
    assert_eq!(sts.request_count(), 1);
}

/// A web page on the Machine cannot have a browser send `Metadata-Flavor` cross-origin nor read
/// an answer: a CORS preflight is never approved, and no answer allows another origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cors_preflight_is_approved_and_no_answer_allows_another_origin() {
    let (_fly, _google, server) = gcp_server(None).await;
    let addr = server.local_addr();
    let origin = ("Origin", "http://rebind.example");
    let token_path = "/computeMetadata/v1/instance/service-accounts/default/token";
    for path in [token_path, "/", "/healthz"] {
        let preflight = send(
            addr,
            &format!(
                "OPTIONS {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://rebind.example\r\n\
                 Access-Control-Request-Method: GET\r\n\
                 Access-Control-Request-Headers: metadata-flavor\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(
            !(200..300).contains(&preflight.status),
            "{path}: preflight answered {}",
            preflight.status
        );
        let plain = get(addr, path, &[origin]).await;
        for resp in [&preflight, &plain] {
            assert!(
                resp.headers
                    .iter()
                    .all(|(k, _)| !k.to_ascii_lowercase().starts_with("access-control-")),
                "{path}: {:?}",
                resp.headers
            );
        }
    }
    // Without the header a browser could only send after a preflight, no token.
    let simple = get(addr, token_path, &[origin]).await;
    assert_eq!(simple.status, 403);
    assert!(!simple.body.contains("access_token"), "{}", simple.body);
}
