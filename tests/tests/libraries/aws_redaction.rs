//! No secret of the AWS provider (the Fly JWT, the secret key, the session token) appears in
//! `Debug` output, error messages or logs, with tracing captured at trace level for every
//! crate (ours, the AWS SDK's, hyper's).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use aws_credential_types::provider::ProvideCredentials;
use fly_oidc::REDACTED;
use fly_oidc::time::{ManualTimeSource, SharedTimeSource};
use fly_oidc_testkit::Fault;
use fly_oidc_tests::aws::{config, fakes_on, provider};
use fly_oidc_tests::{LogCapture, Secrets};
use std::time::{Duration, UNIX_EPOCH};

// A current-thread runtime: every task of the provider and the SDK runs, and logs, on this
// thread, whose logs the capture takes (other tests share the process).
#[tokio::test]
async fn no_secret_in_debug_errors_or_trace_logs() {
    let capture = LogCapture::default();
    let _logs = capture.install();

    let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let (fly, sts) = fakes_on(&clock).await;
    let provider = provider(&fly, &sts.url())
        .configure(&config(&fly).with_time_source(SharedTimeSource::new(clock.clone())))
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
    sts.fail_next(3, Fault::idp_communication_error());
    let stale = provider.provide_credentials().await.unwrap();
    shown.push(format!("{stale:?}"));
    sts.fail_next(1, Fault::access_denied());
    let err = provider.assume_role().await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    let creds_err = fly_oidc_aws::credentials_error(err);
    shown.push(format!(
        "{creds_err} {creds_err:?} {}",
        aws_sdk_sts::error::DisplayErrorContext(&creds_err)
    ));
    sts.fail_next(2, Fault::expired_token());
    let err = provider.assume_role().await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    sts.fail_next(1, Fault::Malformed);
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

    let tokens = fly.issued_tokens().len();
    assert!(tokens >= 5, "{tokens} tokens");
    assert!(tokens + 2 * sts.issued_credentials().len() >= 9);
    let secrets = Secrets::of_fly(&fly).sts(&sts);
    secrets.assert_absent("the logs", &logs);
    secrets.assert_absent("the debug/errors", &shown.join("\n"));
    assert!(shown.join("\n").contains(REDACTED));
}
