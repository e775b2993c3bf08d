//! AWS STS faults, through the AWS provider and `fly-oidc aws credential-process`.

use super::{EXIT_1, EXIT_2, provider};
use crate::SLOW;
use crate::row::{Inject, Kind, Row, Sdk, Source, Via, row};
use fly_oidc::ErrorKind::*;
use fly_oidc_testkit::Fault;

use crate::row::Counter::{Fly, Sts};
use Source::Socket;
use Via::{Aws, CliAws};

/// What an error for a rejected trust says: the STS code and what must match.
fn trust(code: &'static str) -> Vec<&'static str> {
    let hint = [
        "arn:aws:iam::123456789012:role/fly-app",
        "iss https://oidc.fly.io/acme",
        "aud sts.amazonaws.com",
        "sub acme:my-app:quiet-sun-4242",
    ];
    [&[code][..], &hint].concat()
}

#[rustfmt::skip]
pub fn rows() -> Vec<Row> {
    let sts = |n, fault| Inject::Sts(n, fault);
    vec![
        row(Socket, Aws, "IDPCommunicationError once, then OK", sts(1, Fault::idp_communication_error())).ok().attempts(Sts, 2).attempts(Fly, 1),
        row(Socket, Aws, "Throttling once, then OK", sts(1, Fault::throttling())).ok().attempts(Sts, 2),
        row(Socket, Aws, "Throttling on every attempt", sts(3, Fault::throttling()))
            .fails(provider(Transient), &["after 3 attempts", "Throttling", "usually transient"]).attempts(Sts, 3),
        row(Socket, Aws, "InvalidIdentityToken", sts(1, Fault::invalid_identity_token())).fails(provider(TrustRejected), &trust("InvalidIdentityToken")).attempts(Sts, 1),
        row(Socket, Aws, "IDPRejectedClaim", sts(1, Fault::idp_rejected_claim())).fails(provider(TrustRejected), &trust("IDPRejectedClaim")).attempts(Sts, 1),
        row(Socket, Aws, "AccessDenied (trust policy's sub does not match)", Inject::StsSubject("acme:other-app:*"))
            .fails(provider(TrustRejected), &trust("AccessDenied")).attempts(Sts, 1),
        row(Socket, Aws, "InvalidIdentityToken whose message echoes the token", sts(1, Fault::Echo(400)))
            .fails(provider(TrustRejected), &trust("InvalidIdentityToken")).attempts(Sts, 1),
        row(Socket, Aws, "ValidationError: duration above the role's maximum", sts(1, Fault::duration_above_role_maximum()))
            .fails(Kind::Aws(Sdk::InvalidConfiguration, Some(InvalidConfiguration)), &["ValidationError", "session duration 3600 s", "arn:aws:iam::123456789012:role/fly-app", "raise the role's MaxSessionDuration", "set Builder::duration or FLY_OIDC_AWS_DURATION_SECONDS"]).attempts(Sts, 1),
        row(Socket, Aws, "ExpiredTokenException once, then OK", sts(1, Fault::expired_token())).ok().attempts(Sts, 2).attempts(Fly, 2),
        row(Socket, Aws, "ExpiredTokenException twice", sts(2, Fault::expired_token()))
            .fails(provider(TrustRejected), &["ExpiredTokenException", "check this machine's clock"]).attempts(Sts, 2).attempts(Fly, 2),
        row(Socket, Aws, "RegionDisabledException", sts(1, Fault::region_disabled()))
            .fails(provider(Rejected), &["RegionDisabledException", "not activated in region us-east-1", "activate it in IAM account settings or use another region"])
            .attempts(Sts, 1),
        row(Socket, Aws, "500 once, then OK", sts(1, Fault::internal_failure())).ok().attempts(Sts, 2),
        row(Socket, Aws, "500 on every attempt", sts(3, Fault::internal_failure()))
            .fails(provider(Transient), &["InternalFailure", "usually transient"]).attempts(Sts, 3),
        row(Socket, Aws, "malformed XML", sts(1, Fault::Malformed))
            .fails(Kind::Aws(Sdk::Unhandled, Some(InvalidResponse)), &["answered HTTP 200 with something that is not an STS answer", "check the endpoint URL"])
            .attempts(Sts, 1),
        row(Socket, Aws, "slower than the timeout once, then OK", sts(1, Fault::Delay(SLOW))).ok().attempts(Sts, 2),
        row(Socket, Aws, "slower than the timeout on every attempt", sts(3, Fault::Delay(SLOW)))
            .fails(provider(Transient), &["timed out calling STS", "usually transient"]).attempts_between(Sts, 2, 3).within(5),
        row(Socket, Aws, "STS unreachable (connection refused)", Inject::StsUnreachable)
            .fails(provider(Transient), &["could not reach STS", "check network access and the region/endpoint"]),
        row(Socket, CliAws, "STS unreachable (connection refused)", Inject::StsUnreachable)
            .fails(EXIT_1, &["STS failed", "could not reach STS", "check network access", "--region or AWS_REGION, --sts-endpoint or AWS_ENDPOINT_URL_STS"]),
        row(Socket, Aws, "connection reset mid-response once, then OK", sts(1, Fault::Reset)).ok().attempts(Sts, 2),
        row(Socket, CliAws, "IDPCommunicationError once, then OK", sts(1, Fault::idp_communication_error())).ok().attempts(Sts, 2),
        row(Socket, CliAws, "Throttling on every attempt", sts(3, Fault::throttling()))
            .fails(EXIT_1, &["STS failed", "Throttling", "usually transient"]).attempts(Sts, 3),
        row(Socket, CliAws, "InvalidIdentityToken", sts(1, Fault::invalid_identity_token()))
            .fails(EXIT_1, &["STS failed", "InvalidIdentityToken", "arn:aws:iam::123456789012:role/fly-app", "no IAM OpenID Connect provider for the token's issuer https://oidc.fly.io/acme"])
            .attempts(Sts, 1),
        row(Socket, CliAws, "ValidationError: duration above the role's maximum", sts(1, Fault::duration_above_role_maximum()))
            .fails(EXIT_2, &["invalid setting", "session duration 3600 s", "set --duration-seconds or FLY_OIDC_AWS_DURATION_SECONDS"]).attempts(Sts, 1),
        row(Socket, CliAws, "ExpiredTokenException once, then OK", sts(1, Fault::expired_token())).ok().attempts(Sts, 2).attempts(Fly, 2),
        row(Socket, CliAws, "RegionDisabledException", sts(1, Fault::region_disabled()))
            .fails(EXIT_1, &["STS failed", "activate it in IAM account settings"]).attempts(Sts, 1),
        row(Socket, CliAws, "malformed XML", sts(1, Fault::Malformed)).fails(EXIT_1, &["STS failed", "check the endpoint URL"]).attempts(Sts, 1),
    ]
}
