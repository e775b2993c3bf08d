//! The Fly token client against the fake Machines API: sources, precedence, errors, faults.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc::{Env, ErrorKind, FlyOidcClient, FlyToken, ProviderConfig};
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::fast_retry;
use fly_oidc_tests::fly_client as socket_client;
use std::path::Path;
use std::time::{Duration, Instant};

/// A Fly token client builder reading only `vars`.
fn client_with_env(vars: &[(&str, &str)]) -> fly_oidc::Builder {
    FlyOidcClient::builder().configure(&config_with_env(vars))
}

/// A config with only `vars` in its environment.
fn config_with_env(vars: &[(&str, &str)]) -> ProviderConfig {
    ProviderConfig::default().with_env(Env::from_slice(vars))
}

/// Build the client and fetch a token (no audience), which must fail.
async fn fetch_error(builder: fly_oidc::Builder) -> fly_oidc::Error {
    builder
        .build()
        .unwrap()
        .fetch_token(None)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn socket_source_sends_the_audience_and_returns_a_verified_token() {
    let fly = FakeFlyApi::builder().app("web").start().await.unwrap();
    let token = socket_client(&fly)
        .fetch_token(Some("sts.amazonaws.com"))
        .await
        .unwrap();
    let claims = token.claims();
    assert_eq!(claims.iss.as_deref(), Some("https://oidc.fly.io/acme"));
    assert_eq!(claims.org_slug(), Some("acme"));
    assert_eq!(claims.app_name.as_deref(), Some("web"));
    assert!(claims.aud.as_ref().unwrap().contains("sts.amazonaws.com"));
    assert_eq!(token.header().alg, "RS256");
    assert_eq!(token.header().kid.as_deref(), Some(fly.kid()));
    // The signature is real.
    fly_oidc_testkit::verify_rs256(token.expose_jwt(), &fly.jwks()).unwrap();
    let reqs = fly.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].audience.as_deref(), Some("sts.amazonaws.com"));
    assert!(reqs[0].unix);
    let exp = token.expires_at().unwrap();
    let left = exp
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    assert_eq!(left.as_secs(), claims.exp.unwrap());
}

#[tokio::test]
async fn no_audience_sends_an_empty_object_and_gets_flys_default() {
    let fly = FakeFlyApi::start().await.unwrap();
    let token = socket_client(&fly).fetch_token(None).await.unwrap();
    assert!(
        token
            .claims()
            .aud
            .as_ref()
            .unwrap()
            .contains("https://fly.io/acme")
    );
    assert_eq!(fly.requests()[0].audience, None);
}

#[tokio::test]
async fn http_source_with_the_right_and_a_wrong_bearer() {
    let fly = FakeFlyApi::start().await.unwrap();
    let env = Env::from_slice(&[
        ("FLY_API_HOSTNAME", &fly.url()),
        ("FLY_API_TOKEN", fly.api_token()),
    ]);
    let client = FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(env))
        .build()
        .unwrap();
    assert!(matches!(
        client.source(),
        fly_oidc::TokenSource::Http { .. }
    ));
    client.fetch_token(Some("a")).await.unwrap();
    assert!(fly.requests()[0].authorized);
    assert!(!fly.requests()[0].unix);

    let wrong = FlyOidcClient::builder()
        .configure(&config_with_env(&[]).with_retry(fast_retry()))
        .api_url(fly.url())
        .api_token("not-the-token")
        .build()
        .unwrap();
    let err = wrong.fetch_token(Some("a")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FlyApi);
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_transient());
    assert!(err.to_string().contains("FLY_API_TOKEN"), "{err}");
    assert!(!format!("{err:?}").contains("not-the-token"));
    assert_eq!(fly.request_count(), 2, "a 401 is not retried");
}

#[tokio::test]
async fn http_source_requires_an_api_token() {
    let err = client_with_env(&[("FLY_API_HOSTNAME", "http://127.0.0.1:9")])
        .build()
        .unwrap_err();
    assert_eq!(err.setting().env_var(), Some("FLY_API_TOKEN"));
    assert_eq!(err.origin(), None);
    assert!(
        err.to_string()
            .ends_with("; set Builder::api_token or FLY_API_TOKEN"),
        "{err}"
    );
    assert!(err.to_string().contains("no Fly API token"), "{err}");
}

/// A token file holding `contents`, in a temporary directory that lives as long as the guard.
fn token_file(contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oidc_token");
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

#[tokio::test]
async fn token_file_is_reread_on_every_fetch() {
    let fly = FakeFlyApi::start().await.unwrap();
    let first = fly.mint(Some("sts.amazonaws.com"));
    let (_dir, path) = token_file(&format!("{first}\n"));
    let client = client_with_env(&[("FLY_OIDC_TOKEN_FILE", path.to_str().unwrap())])
        .build()
        .unwrap();
    assert_eq!(client.fetch_token(None).await.unwrap().expose_jwt(), first);
    let second = fly.mint(Some("sts.amazonaws.com"));
    std::fs::write(&path, &second).unwrap();
    assert_eq!(client.fetch_token(None).await.unwrap().expose_jwt(), second);
    assert_eq!(fly.request_count(), 0);
}

#[tokio::test]
async fn token_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = fetch_error(FlyOidcClient::builder().token_file(&missing)).await;
    assert_eq!(err.kind(), ErrorKind::InvalidConfiguration);
    assert!(err.to_string().contains("does not exist"), "{err}");

    let big = dir.path().join("big");
    std::fs::write(&big, "a".repeat(70 * 1024)).unwrap();
    let err = fetch_error(FlyOidcClient::builder().token_file(&big)).await;
    assert_eq!(err.kind(), ErrorKind::MalformedToken);

    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not.a-jwt").unwrap();
    let err = fetch_error(FlyOidcClient::builder().token_file(&junk)).await;
    assert_eq!(err.kind(), ErrorKind::MalformedToken);
    assert!(err.to_string().contains("3 dot-separated parts"), "{err}");
}

#[tokio::test]
async fn precedence_builder_beats_env_and_file_beats_socket_beats_http() {
    let fly = FakeFlyApi::start().await.unwrap();
    let (_dir, file) = token_file(&fly.mint(None));
    let sock = fly.socket_path().to_str().unwrap().to_owned();
    let url = fly.url();
    let all = [
        ("FLY_OIDC_TOKEN_FILE", file.to_str().unwrap()),
        ("FLY_OIDC_SOCKET", sock.as_str()),
        ("FLY_API_HOSTNAME", url.as_str()),
        ("FLY_API_TOKEN", fly.api_token()),
    ];
    let source = |env: &[(&str, &str)], f: &dyn Fn(fly_oidc::Builder) -> fly_oidc::Builder| {
        f(FlyOidcClient::builder()
            .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(env))))
        .build()
        .unwrap()
        .source()
        .clone()
    };
    use fly_oidc::TokenSource;
    assert!(matches!(source(&all, &|b| b), TokenSource::File(_)));
    assert!(matches!(
        source(&all[1..], &|b| b),
        TokenSource::Socket {
            is_default: false,
            ..
        }
    ));
    assert!(matches!(
        source(&all[2..], &|b| b),
        TokenSource::Http { .. }
    ));
    assert!(matches!(
        source(&[], &|b| b),
        TokenSource::Socket {
            is_default: true,
            ..
        }
    ));
    // A builder setting beats every env var, even one higher in the env order.
    let by_flag = source(&all, &|b| b.socket(fly.socket_path()));
    assert!(matches!(
        by_flag,
        TokenSource::Socket {
            is_default: false,
            ..
        }
    ));
    let by_flag = source(&all, &|b| b.api_url(fly.url()));
    assert!(matches!(by_flag, TokenSource::Http { .. }));
    // Within the builder: file beats socket.
    let both = source(&[], &|b| b.socket("/nope").token_file(&file));
    assert!(matches!(both, TokenSource::File(_)));
    // And the socket chosen by flag really is used.
    let client = FlyOidcClient::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(&all)))
        .socket(fly.socket_path())
        .build()
        .unwrap();
    client.fetch_token(Some("x")).await.unwrap();
    assert_eq!(fly.request_count(), 1);
}

#[tokio::test]
async fn missing_default_socket_means_not_on_fly() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_with_env(&[])
        .default_socket(dir.path().join("api"))
        .build()
        .unwrap();
    let err = client.fetch_token(None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotOnFly);
    assert!(err.is_not_on_fly());
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains(
            "not on a Fly Machine? set the Machines API's URL (Builder::api_url or FLY_API_HOSTNAME) and its token (Builder::api_token or FLY_API_TOKEN), or a token file (Builder::token_file or FLY_OIDC_TOKEN_FILE)"
        ),
        "{err}"
    );

    // An explicit socket is named by what set it: the builder method, or the variable.
    let explicit = dir.path().join("explicit");
    let err = fetch_error(client_with_env(&[]).socket(&explicit)).await;
    assert_eq!(err.kind(), ErrorKind::InvalidConfiguration);
    assert!(err.to_string().contains("(from Builder::socket)"), "{err}");
    let err = fetch_error(client_with_env(&[(
        "FLY_OIDC_SOCKET",
        explicit.to_str().unwrap(),
    )]))
    .await;
    assert!(err.to_string().contains("(from FLY_OIDC_SOCKET)"), "{err}");
}

/// A socket setting that names a regular file or a directory is an invalid setting (connecting
/// would fail every time), not a transient error; nothing is retried.
#[tokio::test]
async fn a_socket_path_that_is_not_a_socket_is_an_invalid_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api");
    std::fs::write(&file, "not a socket").unwrap();
    for (path, what) in [
        (file, "a regular file"),
        (dir.path().to_owned(), "a directory"),
    ] {
        let config = config_with_env(&[]).with_retry(fast_retry());
        let err = fetch_error(FlyOidcClient::builder().configure(&config).socket(&path)).await;
        assert_eq!(err.kind(), ErrorKind::InvalidConfiguration, "{err}");
        assert!(!err.is_transient());
        let m = err.to_string();
        assert!(m.contains(&format!("{} is {what}", path.display())), "{m}");
        assert!(m.contains("(from Builder::socket)"), "{m}");
    }
}

#[tokio::test]
async fn a_socket_nobody_listens_on_is_a_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = fetch_error(
        FlyOidcClient::builder()
            .socket(&path)
            .configure(&fly_oidc::ProviderConfig::default().with_retry(fast_retry())),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.is_transient());
    assert!(err.to_string().contains("could not connect"), "{err}");
}

#[tokio::test]
async fn retries_after_a_500_and_succeeds() {
    let fly = FakeFlyApi::start().await.unwrap();
    fly.fail_next(1, Fault::Status(500, r#"{"error":"internal"}"#.into()));
    socket_client(&fly).fetch_token(Some("a")).await.unwrap();
    assert_eq!(fly.request_count(), 2);
}

#[tokio::test]
async fn gives_up_after_three_attempts_on_429_and_5xx() {
    for status in [429, 500, 503] {
        let fly = FakeFlyApi::start().await.unwrap();
        fly.fail_next(5, Fault::Status(status, r#"{"error":"slow down"}"#.into()));
        let err = socket_client(&fly)
            .fetch_token(Some("a"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient);
        assert_eq!(err.status(), Some(status));
        assert!(err.is_transient());
        assert!(err.to_string().contains("slow down"), "{err}");
        assert_eq!(fly.request_count(), 3, "status {status}");
    }
}

#[tokio::test]
async fn client_errors_fail_at_once_with_the_api_message() {
    let fly = FakeFlyApi::start().await.unwrap();
    fly.fail_next(
        1,
        Fault::Status(400, r#"{"error":"invalid audience"}"#.into()),
    );
    let err = socket_client(&fly)
        .fetch_token(Some("a"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(
        err.to_string().contains("HTTP 400: invalid audience"),
        "{err}"
    );
    assert_eq!(fly.request_count(), 1);
}

#[tokio::test]
async fn garbage_and_oversized_answers_are_malformed_tokens() {
    let fly = FakeFlyApi::start().await.unwrap();
    fly.fail_next(1, Fault::Malformed);
    let err = socket_client(&fly).fetch_token(None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedToken);
    assert!(
        err.to_string().contains("answered 200 but not a valid JWT"),
        "{err}"
    );

    fly.fail_next(1, Fault::Oversized);
    let err = socket_client(&fly).fetch_token(None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedToken);
    assert!(err.to_string().contains("more than 65536 bytes"), "{err}");
}

#[tokio::test]
async fn a_connection_reset_mid_response_is_retried() {
    let fly = FakeFlyApi::start().await.unwrap();
    fly.fail_next(1, Fault::Reset);
    socket_client(&fly).fetch_token(None).await.unwrap();
    assert_eq!(fly.request_count(), 2);

    fly.fail_next(3, Fault::Reset);
    let err = socket_client(&fly).fetch_token(None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
}

#[tokio::test]
async fn a_slow_api_times_out() {
    let fly = FakeFlyApi::start().await.unwrap();
    fly.fail_next(2, Fault::Delay(Duration::from_secs(3)));
    let client = FlyOidcClient::builder()
        .socket(fly.socket_path())
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_timeout(Duration::from_millis(200))
                .with_retry(fast_retry().with_max_attempts(2)),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.fetch_token(None).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout"
    );
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(fly.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_fetches_over_the_socket() {
    let fly = FakeFlyApi::start().await.unwrap();
    // The transport under concurrency, not the Machines API budget (1/s: 100 s here), which
    // `budget`'s and the server's tests cover.
    let client = FlyOidcClient::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(Env::from_slice(&[]))
                .with_retry(fast_retry()),
        )
        .socket(fly.socket_path())
        .rate_limit(fly_oidc::budget::RateLimit::none())
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.fetch_token(Some("sts.amazonaws.com")).await })
        })
        .collect();
    let mut jtis = std::collections::HashSet::new();
    for task in tasks {
        let token = task.await.unwrap().unwrap();
        jtis.insert(token.claims().jti.clone().unwrap());
    }
    assert_eq!(jtis.len(), 100, "every request mints a new token");
    assert_eq!(fly.request_count(), 100);
}

#[tokio::test]
async fn secrets_never_appear_in_debug_display_or_errors() {
    let fly = FakeFlyApi::start().await.unwrap();
    let client = client_with_env(&[])
        .api_url(fly.url())
        .api_token(fly.api_token())
        .build()
        .unwrap();
    let token = client.fetch_token(Some("a")).await.unwrap();
    let jwt = token.expose_jwt().to_owned();
    let signature = jwt.rsplit('.').next().unwrap().to_owned();
    let outputs = [
        format!("{token}"),
        format!("{token:?}"),
        format!("{token:#?}"),
        format!("{client:?}"),
        format!("{:?}", client.source()),
    ];
    for out in &outputs {
        assert!(!out.contains(&jwt), "{out}");
        assert!(!out.contains(&signature), "{out}");
        assert!(!out.contains(fly.api_token()), "{out}");
    }
    assert!(outputs[1].contains("** redacted **"));
    // An error about a token never quotes it.
    let bad = format!("{jwt}.extra");
    let err = FlyToken::parse(bad.clone()).unwrap_err();
    for out in [err.to_string(), format!("{err:?}")] {
        assert!(!out.contains(&signature), "{out}");
    }
}

#[test]
fn shape_validation_rejects_what_is_not_a_jwt_and_never_panics() {
    let cases = [
        ("", "3 dot-separated parts"),
        ("a.b", "3 dot-separated parts"),
        ("a.b.c.d", "3 dot-separated parts"),
        (".eyJ9.c2ln", "header part is empty"),
        ("eyJhbGciOiJSUzI1NiJ9..c2ln", "payload part is empty"),
        ("eyJhbGciOiJSUzI1NiJ9.e30.", "signature part is empty"),
        (
            "eyJhbGciOiJSUzI1NiJ9.e30.c2ln+",
            "signature part is not base64url",
        ),
        ("bm90IGpzb24.e30.c2ln", "header is not a JSON object"),
        ("e30.e30.c2ln", "header is not a JSON object"),
        ("eyJhbGciOiIifQ.e30.c2ln", "\"alg\" is empty"),
        (
            "eyJhbGciOiJSUzI1NiJ9.WzFd.c2ln",
            "payload is not a JSON object",
        ),
        (
            "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJzb29uIn0.c2ln",
            "payload is not a JSON object",
        ),
    ];
    for (input, expected) in cases {
        let err = FlyToken::parse(input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedToken, "{input}");
        assert!(err.to_string().contains(expected), "{input}: {err}");
    }
    // A minimal valid token: {"alg":"RS256"} . {} . sig
    assert!(FlyToken::parse("eyJhbGciOiJSUzI1NiJ9.e30.c2ln").is_ok());
    // exp/iat beyond what SystemTime holds: no time, no panic.
    // payload {"exp":18446744073709551615,"iat":18446744073709551615}
    let huge = FlyToken::parse(
        "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE4NDQ2NzQ0MDczNzA5NTUxNjE1LCJpYXQiOjE4NDQ2NzQ0MDczNzA5NTUxNjE1fQ.c2ln",
    )
    .unwrap();
    assert_eq!(huge.claims().exp, Some(u64::MAX));
    assert_eq!(huge.expires_at(), None);
    assert_eq!(huge.claims().issued_at(), None);
    // Random input never panics.
    let mut seed = 0x1234_5678_u64;
    let alphabet = b"eyJ.-_abcXYZ0129+/=\n {}\"";
    for _ in 0..20_000 {
        let len = (seed % 64) as usize;
        let s: String = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                alphabet[(seed >> 33) as usize % alphabet.len()] as char
            })
            .collect();
        let _ = FlyToken::parse(s);
    }
}

#[test]
fn the_fake_serves_from_a_blocking_context() {
    let fly = FakeFlyApi::builder().start_blocking().unwrap();
    assert!(Path::new(fly.socket_path()).exists());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = rt.block_on(socket_client(&fly).fetch_token(None)).unwrap();
    assert!(
        token
            .claims()
            .sub
            .as_deref()
            .unwrap()
            .starts_with("acme:my-app:")
    );
}

#[tokio::test]
async fn the_default_audience_comes_from_the_builder_then_fly_oidc_audience() {
    let fly = FakeFlyApi::start().await.unwrap();
    let client = |env: &[(&str, &str)], audience: Option<&str>| {
        let b = FlyOidcClient::builder()
            .configure(&fly_oidc::ProviderConfig::default().with_env(Env::from_slice(env)))
            .socket(fly.socket_path());
        match audience {
            Some(a) => b.audience(a),
            None => b,
        }
        .build()
        .unwrap()
    };
    let env = [("FLY_OIDC_AUDIENCE", "from-env")];
    for (c, expected) in [
        (client(&[], None), None),
        (client(&env, None), Some("from-env")),
        (client(&env, Some("from-builder")), Some("from-builder")),
    ] {
        assert_eq!(c.audience(), expected);
        c.fetch_default_token().await.unwrap();
        let sent = fly.requests().last().unwrap().audience.clone();
        assert_eq!(sent.as_deref(), expected);
    }
}

/// Issue 10, class 1: a token file's token is checked against the injected clock; with less
/// than 30 s left, or past its `exp`, it is a `StaleToken` error naming the file and the
/// expiry (RFC 3339 UTC) and what keeps the file fresh, never a token.
#[tokio::test]
async fn a_stale_token_file_is_an_error_naming_the_file_and_the_expiry() {
    use fly_oidc::time::{ManualTimeSource, SharedTimeSource};
    use std::time::UNIX_EPOCH;
    let fly = FakeFlyApi::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oidc_token");
    let exp = 1_800_000_600_u64;
    let jwt = fly.mint_with(Some("sts.amazonaws.com"), |claims| {
        claims.insert("exp".into(), exp.into());
    });
    std::fs::write(&path, &jwt).unwrap();
    let exp_at = UNIX_EPOCH + Duration::from_secs(exp);
    let clock = ManualTimeSource::new(exp_at - Duration::from_secs(31));
    let client = FlyOidcClient::builder()
        .configure(
            &fly_oidc::ProviderConfig::default()
                .with_env(Env::from_slice(&[]))
                .with_time_source(SharedTimeSource::new(clock.clone())),
        )
        .token_file(&path)
        .build()
        .unwrap();
    // 31 s left: handed on.
    assert_eq!(client.fetch_token(None).await.unwrap().expose_jwt(), jwt);
    // 29 s left, then 5 minutes past: refused.
    for (at, says) in [
        (
            exp_at - Duration::from_secs(29),
            "that expires at 2027-01-15T08:10:00Z, in 29 s, less than the 30 s",
        ),
        (
            exp_at + Duration::from_secs(300),
            "that expired at 2027-01-15T08:10:00Z (300 s ago)",
        ),
    ] {
        clock.set(at);
        let err = client.fetch_token(None).await.unwrap_err();
        let msg = assert_stale_token_file(&err, &path, says);
        assert!(msg.starts_with("the token file "), "{msg}");
        assert!(
            msg.contains("Fly's init rewrites /.fly/oidc_token (about every 9 minutes) only when AWS_ROLE_ARN is set"),
            "{msg}"
        );
        assert!(!msg.contains(&jwt) && !msg.contains("eyJ"), "{msg}");
    }
}

/// `err` refuses the token in `file` as stale, saying `says` about it (such as "that expired
/// at ..."); returns the message.
pub(crate) fn assert_stale_token_file(err: &fly_oidc::Error, file: &Path, says: &str) -> String {
    assert_eq!(err.kind(), ErrorKind::StaleToken);
    assert!(!err.is_transient());
    let msg = err.to_string();
    let expected = format!("the token file {} holds a Fly token {says}", file.display());
    assert!(msg.contains(&expected), "{msg}");
    msg
}

/// A variable whose value is not UTF-8 is not unset: the token file it names is an invalid
/// setting naming the variable, not a silent fall back to the socket.
#[tokio::test]
async fn a_non_utf8_variable_is_an_invalid_setting_not_unset() {
    use std::os::unix::ffi::OsStrExt;
    let fly = FakeFlyApi::start().await.unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"/tmp/\xff");
    let socket = fly.socket_path().as_os_str().to_owned();
    let env = Env::from_os_pairs(&[("FLY_OIDC_TOKEN_FILE", bad), ("FLY_OIDC_SOCKET", &socket)]);
    let err = fetch_error(
        FlyOidcClient::builder().configure(&fly_oidc::ProviderConfig::default().with_env(env)),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::InvalidConfiguration, "{err}");
    assert!(err.to_string().contains("FLY_OIDC_TOKEN_FILE"), "{err}");
    assert_eq!(fly.request_count(), 0, "no fall back to the socket");
    const NO_CACHE: fly_oidc::Setting =
        fly_oidc::Setting::new("no_cache", Some("FLY_OIDC_NO_CACHE"));
    let env = Env::from_os_pairs(&[("FLY_OIDC_NO_CACHE", std::ffi::OsStr::from_bytes(b"\xff"))]);
    let err = env.flag(NO_CACHE).unwrap_err().to_string();
    assert_eq!(
        err,
        "the value is not valid UTF-8; use 1, true, yes or on (or 0, false, no, off) (from FLY_OIDC_NO_CACHE)"
    );
}
