//! No secret of the AWS provider (the Fly JWT, the secret key, the session token) appears in
//! `Debug` output, error messages or logs, with tracing captured at trace level for every
//! crate (ours, the AWS SDK's, hyper's).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

mod aws_support;

use aws_credential_types::provider::ProvideCredentials;
use aws_support::provider;
use fly_oidc::REDACTED;
use fly_oidc::time::{ManualTimeSource, SharedTimeSource, TimeSource};
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::{FakeSts, StsFault};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_debug_errors_or_trace_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    // This test binary has only this test: capture everything, on every thread.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let (fly_clock, sts_clock) = (clock.clone(), clock.clone());
    let fly = FakeFlyApi::builder()
        .org("acme")
        .app("web")
        .clock(move || fly_clock.now())
        .start()
        .await
        .unwrap();
    let sts = FakeSts::builder()
        .trust(fly.issuer(), fly.jwks())
        .clock(move || sts_clock.now())
        .start()
        .await
        .unwrap();
    let provider = provider(&fly, &sts.url())
        .time_source(SharedTimeSource::new(clock.clone()))
        .build()
        .unwrap();

    let mut shown = Vec::new();
    // Success, then a refresh that fails transiently (static stability warning), then
    // trust-policy, expired-token and not-loaded failures.
    let creds = provider.provide_credentials().await.unwrap();
    shown.push(format!("{creds:?}"));
    shown.push(format!("{provider:?}"));
    shown.push(format!("{:?}", provider.assume_role().await.unwrap()));
    clock.advance(Duration::from_secs(58 * 60));
    sts.fail_next(3, StsFault::idp_communication_error());
    let stale = provider.provide_credentials().await.unwrap();
    shown.push(format!("{stale:?}"));
    sts.fail_next(1, StsFault::access_denied());
    let err = provider.assume_role().await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    let creds_err = fly_oidc_aws::credentials_error(err);
    shown.push(format!(
        "{creds_err} {creds_err:?} {}",
        aws_sdk_sts::error::DisplayErrorContext(&creds_err)
    ));
    sts.fail_next(2, StsFault::expired_token());
    let err = provider.assume_role().await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    sts.fail_next(1, StsFault::Garbage);
    let err = provider.assume_role().await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    shown.push(format!("{:?}", sts.requests()));

    let logs = capture.text();
    // The capture really holds trace-level output of the SDK, including its request dump.
    assert!(logs.contains("TRACE"), "no trace output captured");
    assert!(
        logs.contains("transmitting request"),
        "no SDK request trace"
    );
    assert!(logs.contains("assumed role with a Fly OIDC token"));
    assert!(
        logs.contains("serving the cached ones"),
        "no static-stability warning"
    );

    let mut secrets: Vec<String> = fly.issued_tokens();
    assert!(secrets.len() >= 5, "{} tokens", secrets.len());
    for c in sts.issued_credentials() {
        secrets.push(c.secret_access_key);
        secrets.push(c.session_token);
    }
    assert!(secrets.len() >= 9);
    let haystacks = [("logs", logs.clone()), ("debug/errors", shown.join("\n"))];
    for (name, text) in &haystacks {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret ({} chars) appears in the {name}",
                secret.len()
            );
            // Nor a recognizable part of it (the JWT's signature, a token's tail).
            let tail = &secret[secret.len() - 24..];
            assert!(
                !text.contains(tail),
                "part of a secret appears in the {name}"
            );
        }
        assert!(
            !text.contains("eyJ"),
            "something JWT-like appears in the {name}"
        );
    }
    assert!(shown.join("\n").contains(REDACTED));
}
