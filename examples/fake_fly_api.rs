//! Local stand-ins for everything fly-oidc talks to, until Ctrl-C: try every command off Fly.
//! "Try it locally" (docs/try-it-locally.md) is the tour (`scripts/demo.sh` runs it), from the
//! repository's root:
//!
//! ```sh
//! cargo build --workspace --bins --examples --all-features
//! export PATH="$PWD/target/debug:$PATH"
//! ./target/debug/examples/fake_fly_api > target/fake-fly.env &   # prints `export` lines
//! while ! grep -qs '^# ready' target/fake-fly.env && kill -0 %1; do sleep 0.1; done
//! source target/fake-fly.env
//! fly-oidc token --claims
//! fly-oidc aws credential-process                                  # fake AWS STS: accepted
//! fly-oidc aws credential-process --sts-endpoint "$FAKE_STS_OTHER_APP_URL"   # AccessDenied
//! fly-oidc gcp access-token                                        # fake Google STS and IAM
//! fly-oidc doctor --jwks-url "$FAKE_FLY_JWKS_URL"                  # the fake issuer's keys
//! ```
//!
//! It starts, from `fly-oidc-testkit`:
//! - a fake Fly Machines API (org `acme`, app `demo-app`) on a Unix socket and on `127.0.0.1`;
//! - a fake AWS STS whose OIDC provider and role trust policy accept this app's tokens
//!   (issuer `https://oidc.fly.io/acme`, audience `sts.amazonaws.com`, `sub` `acme:demo-app:*`),
//!   and a second one whose trust policy names another app (`acme:other-app:*`), so that a
//!   trust failure and fly-oidc's diagnosis of it can be seen; both answer `GetCallerIdentity`
//!   for the credentials they issued, so `fly-oidc exec -- aws sts get-caller-identity` (whose
//!   child keeps `AWS_ENDPOINT_URL_STS`) works;
//! - a fake Google STS and IAM Credentials trusting the same issuer, with one service
//!   account to impersonate.
//!
//! It prints the variables fly-oidc reads, as `export` lines, then `# ready; Ctrl-C to stop`.
//! They include `FLY_OIDC_NO_CACHE=1`: the stand-ins' credentials are not worth a disk cache,
//! so a tour leaves nothing in `~/.cache/fly-oidc`. `FAKE_FLY_JWKS_URL` is the fake issuer's
//! keys, for `fly-oidc doctor --jwks-url` (the real issuer's keys did not sign these tokens).
//! It never prints the fake's `FLY_API_TOKEN`: the HTTP line reads it from a file (mode 0600)
//! in the socket's directory.
//! On Ctrl-C or SIGTERM it stops and removes its temporary directory (the socket's).
//!
//! The tokens it mints are signed by a throwaway key: no cloud accepts them, but local
//! emulators (moto accepts any token) and the fakes started here do.

use fly_oidc_examples::ErrorChain;
use fly_oidc_testkit::FakeFlyApi;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::FakeGoogle;
use std::path::PathBuf;
use std::process::ExitCode;

const ORG: &str = "acme";
const APP: &str = "demo-app";
const ACCOUNT: &str = "123456789012";
const SERVICE_ACCOUNT: &str = "reader@demo-project.iam.gserviceaccount.com";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut socket_dir = None;
    let result = run(&mut socket_dir).await;
    // The servers' threads remove the socket's directory as they stop, but the process may
    // exit first: remove it here too.
    if let Some(dir) = socket_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fake_fly_api: error: {}", ErrorChain(&err));
            ExitCode::FAILURE
        }
    }
}

/// A fake AWS STS trusting `fly`'s tokens for audience `sts.amazonaws.com` and `sub` like `subject`.
async fn fake_sts(fly: &FakeFlyApi, subject: &str) -> std::io::Result<FakeSts> {
    FakeSts::builder()
        .account_id(ACCOUNT)
        .trust(fly.issuer(), fly.jwks())
        .audience("sts.amazonaws.com")
        .subject(subject)
        .start()
        .await
}

async fn run(socket_dir: &mut Option<PathBuf>) -> std::io::Result<()> {
    let fly = FakeFlyApi::builder().org(ORG).app(APP).start().await?;
    *socket_dir = fly.socket_path().parent().map(PathBuf::from);
    // AWS STS as it is set up for this app: the OIDC provider for the issuer with audience
    // sts.amazonaws.com, and a role whose trust policy allows `sub` like acme:demo-app:*.
    let sts = fake_sts(&fly, &format!("{ORG}:{APP}:*")).await?;
    // The same, with a trust policy written for another app: STS answers AccessDenied.
    let other_sts = fake_sts(&fly, &format!("{ORG}:other-app:*")).await?;
    let google = FakeGoogle::builder(&fly)
        .service_account(SERVICE_ACCOUNT)
        .start()
        .await?;

    // The fake's API token goes to a file only this user reads, never to the output.
    let api_token_file = fly.socket_path().with_file_name("api-token");
    fly_oidc::fs::write_private(&api_token_file, fly.api_token().as_bytes(), 0o600)?;
    let lines = [
        "# Local stand-ins for Fly's Machines API, AWS STS and Google STS (fly-oidc-testkit)."
            .to_owned(),
        "# Paste these lines into a shell (or `source` them), then run fly-oidc as on a Machine."
            .to_owned(),
        "# The Fly token source: the Machines API on a Unix socket, as /.fly/api on a Machine."
            .to_owned(),
        format!("export FLY_OIDC_SOCKET={}", fly.socket_path().display()),
        format!(
            "# Or over HTTP: export FLY_API_HOSTNAME={} FLY_API_TOKEN=\"$(cat {})\"",
            fly.url(),
            api_token_file.display()
        ),
        format!(
            "# AWS: a fake STS trusting iss {}, aud sts.amazonaws.com, sub {ORG}:{APP}:*",
            fly.issuer()
        ),
        format!("export AWS_ENDPOINT_URL_STS={}", sts.url()),
        format!("export AWS_ROLE_ARN=arn:aws:iam::{ACCOUNT}:role/{APP}"),
        "export AWS_REGION=us-east-1".to_owned(),
        format!(
            "# A fake STS whose trust policy names another app (sub {ORG}:other-app:*): AccessDenied"
        ),
        "#   fly-oidc aws credential-process --sts-endpoint \"$FAKE_STS_OTHER_APP_URL\"".to_owned(),
        format!("export FAKE_STS_OTHER_APP_URL={}", other_sts.url()),
        "# Google: a fake STS and IAM Credentials trusting the same issuer.".to_owned(),
        format!("export FLY_OIDC_GCP_PROVIDER={}", google.provider()),
        format!("export FLY_OIDC_GCP_SERVICE_ACCOUNT={SERVICE_ACCOUNT}"),
        format!("export FLY_OIDC_GCP_STS_URL={}", google.sts_url()),
        format!("export FLY_OIDC_GCP_IAM_URL={}", google.iam_url()),
        "# The fake issuer's signing keys (what a cloud fetches to verify a token); the real"
            .to_owned(),
        "# issuer's did not sign these tokens: fly-oidc doctor --jwks-url \"$FAKE_FLY_JWKS_URL\""
            .to_owned(),
        format!("export FAKE_FLY_JWKS_URL={}", fly.jwks_url()),
        "# Credentials from stand-ins are not worth keeping: no disk cache (~/.cache/fly-oidc)."
            .to_owned(),
        "export FLY_OIDC_NO_CACHE=1".to_owned(),
        "# ready; Ctrl-C to stop".to_owned(),
    ];
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for line in lines {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = terminate.recv() => {}
        _ = hangup.recv() => {}
    }
    drop((fly, sts, other_sts, google));
    Ok(())
}
