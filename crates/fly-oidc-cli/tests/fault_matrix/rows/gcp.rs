//! Google STS and IAM Credentials faults, through the GCP provider and
//! `fly-oidc gcp access-token`.

use super::{EXIT_1, run};
use crate::SLOW;
use crate::row::{Inject, Row, Source, Via, row};
use fly_oidc::ErrorKind::*;
use fly_oidc_testkit::Fault;
use fly_oidc_testkit::google;

use crate::row::Counter::{GoogleIam, GoogleSts};
use Source::Socket;
use Via::{CliGcpToken, Gcp};

/// STS's answer to an audience that is not a provider's full resource name.
fn invalid_request() -> Inject {
    let body = serde_json::json!({
        "error": "invalid_request",
        "error_description": "Invalid value for \"audience\". This value should be the full resource name of the Identity Provider.",
    });
    Inject::GoogleSts(1, Fault::Status(400, body.to_string()))
}

/// Google's 503.
fn unavailable() -> Fault {
    Fault::Status(503, google::unavailable_body())
}

/// What a refused impersonation says.
const GRANT_HINT: &[&str] = &[
    "PERMISSION_DENIED",
    "roles/iam.workloadIdentityUser",
    "gcloud iam service-accounts add-iam-policy-binding reader@my-project.iam.gserviceaccount.com",
];

/// What a provider that trusts another issuer says.
const ISSUER_HINT: &[&str] = &[
    "invalid_grant",
    "its issuer (--issuer-uri) must be https://oidc.fly.io/acme",
    "not the word \"personal\"",
];

#[rustfmt::skip]
pub fn rows() -> Vec<Row> {
    let other_issuer = || Inject::GoogleIssuer("https://oidc.fly.io/personal");
    let sts = |n, fault| Inject::GoogleSts(n, fault);
    vec![
        row(Socket, Gcp, "STS invalid_grant (provider trusts another issuer)", other_issuer())
            .fails(run(TrustRejected), ISSUER_HINT).attempts(GoogleSts, 1).attempts(GoogleIam, 0),
        row(Socket, Gcp, "STS invalid_request", invalid_request())
            .fails(run(Rejected), &["invalid_request", "must be projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>"]).attempts(GoogleSts, 1),
        row(Socket, Gcp, "STS 503 once, then OK", sts(1, unavailable())).ok().attempts(GoogleSts, 2).attempts(GoogleIam, 1),
        row(Socket, Gcp, "STS 503 on every attempt", sts(3, unavailable()))
            .fails(run(Transient), &["Google STS answered 503", "try again later"]).attempts(GoogleSts, 3),
        row(Socket, Gcp, "STS malformed JSON", sts(1, Fault::Malformed))
            .fails(run(InvalidResponse), &["not a JSON object", "is the endpoint URL right?"]).attempts(GoogleSts, 1),
        row(Socket, Gcp, "STS slower than the timeout once, then OK", sts(1, Fault::Delay(SLOW))).ok().attempts(GoogleSts, 2),
        row(Socket, Gcp, "STS slower than the timeout on every attempt", sts(3, Fault::Delay(SLOW)))
            .fails(run(Transient), &["Google STS", "timed out", "try again"]).attempts(GoogleSts, 3).within(4),
        row(Socket, Gcp, "STS unreachable (connection refused)", Inject::GoogleStsUnreachable)
            .fails(run(Transient), &["Google STS", "could not connect", "try again", "its URL: Builder::sts_url or FLY_OIDC_GCP_STS_URL"]),
        row(Socket, CliGcpToken, "STS unreachable (connection refused)", Inject::GoogleStsUnreachable)
            .fails(EXIT_1, &["Google STS", "could not connect", "try again", "its URL: --sts-url or FLY_OIDC_GCP_STS_URL"]),
        row(Socket, Gcp, "IAM Credentials 403 (no workloadIdentityUser grant)", Inject::GoogleNoGrant).fails(run(TrustRejected), GRANT_HINT).attempts(GoogleIam, 1),
        row(Socket, Gcp, "IAM Credentials 503 once, then OK", Inject::GoogleIam(1, unavailable())).ok().attempts(GoogleIam, 2),
        row(Socket, Gcp, "STS error that echoes the request", sts(1, Fault::Echo(400)))
            .fails(run(Rejected), &["Google STS rejected the Fly token (HTTP 400"]).attempts(GoogleSts, 1),
        row(Socket, Gcp, "IAM Credentials 403 that echoes the request", Inject::GoogleIam(1, Fault::Echo(403)))
            .fails(run(TrustRejected), &["PERMISSION_DENIED", "roles/iam.workloadIdentityUser"]).attempts(GoogleIam, 1),
        row(Socket, CliGcpToken, "IAM Credentials 403 that echoes the request", Inject::GoogleIam(1, Fault::Echo(403)))
            .fails(EXIT_1, &["service account impersonation failed", "PERMISSION_DENIED"]).attempts(GoogleIam, 1),
        row(Socket, CliGcpToken, "STS invalid_grant (provider trusts another issuer)", other_issuer())
            .fails(EXIT_1, &["Google STS token exchange failed", "invalid_grant", "must be https://oidc.fly.io/acme"]).attempts(GoogleSts, 1),
        row(Socket, CliGcpToken, "STS invalid_request", invalid_request())
            .fails(EXIT_1, &["Google STS token exchange failed", "invalid_request"]).attempts(GoogleSts, 1),
        row(Socket, CliGcpToken, "STS 503 once, then OK", sts(1, unavailable())).ok().attempts(GoogleSts, 2),
        row(Socket, CliGcpToken, "STS malformed JSON", sts(1, Fault::Malformed)).fails(EXIT_1, &["not a JSON object"]).attempts(GoogleSts, 1),
        row(Socket, CliGcpToken, "IAM Credentials 403 (no workloadIdentityUser grant)", Inject::GoogleNoGrant)
            .fails(EXIT_1, &["service account impersonation failed", "roles/iam.workloadIdentityUser"]).attempts(GoogleIam, 1),
    ]
}
