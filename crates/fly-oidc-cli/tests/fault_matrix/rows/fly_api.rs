//! Faults of the Fly token sources (the Machines API over a socket or HTTP, the token file,
//! the default socket), through every front end.

use super::{EXIT_1, EXIT_2, NOT_ON_FLY, google, provider, run};
use crate::SLOW;
use crate::row::{Denial, Inject, Kind, Row, Sdk, Source, Via, json_error, row};
use fly_oidc::ErrorKind::*;
use fly_oidc_testkit::Fault;

use crate::row::Counter::{Fly, GoogleSts, Sts};
use Source::{Default, File, Http, Socket};
use Via::{Aws, CliAws, CliGcpExec, CliToken, Client, Gcp};

fn status(code: u16, message: &str) -> Inject {
    Inject::Fly(1, Fault::Status(code, json_error(message)))
}

fn every_attempt(code: u16, message: &str) -> Inject {
    Inject::Fly(3, Fault::Status(code, json_error(message)))
}

#[rustfmt::skip]
pub fn rows() -> Vec<Row> {
    let mut rows = vec![
        row(Default, Client, "socket missing (not on Fly)", Inject::NoSocket).fails(run(NotOnFly), NOT_ON_FLY).attempts(Fly, 0),
        row(Socket, Client, "socket missing", Inject::NoSocket).fails(run(InvalidConfiguration), &["does not exist", "(from Builder::socket)"]).attempts(Fly, 0),
        row(Http, Client, "API unreachable (connection refused)", Inject::Refused)
            .fails(run(Transient), &["could not connect to the Machines API at", "usually transient"]),
        row(Http, Client, "FLY_API_TOKEN not set", Inject::NoApiToken)
            .fails(Kind::Build, &["no Fly API token", "fly tokens create deploy", "set Builder::api_token or FLY_API_TOKEN"]),
        row(Http, Client, "401 (wrong API token)", Inject::WrongApiToken)
            .fails(run(FlyApi), &["HTTP 401", "check that FLY_API_TOKEN is a valid Fly API token"]).attempts(Fly, 1),
        row(Http, Client, "401 whose body echoes the API token", Inject::FlyEchoesBearer).fails(run(FlyApi), &["HTTP 401", "FLY_API_TOKEN"]).attempts(Fly, 1),
        row(Http, CliToken, "401 whose body echoes the API token", Inject::FlyEchoesBearer).fails(EXIT_1, &["HTTP 401", "FLY_API_TOKEN"]).attempts(Fly, 1),
        row(File, Client, "token file missing", Inject::FileMissing).fails(run(InvalidConfiguration), &["does not exist", "(from Builder::token_file)"]),
        row(File, Client, "garbage in the token file", Inject::FileGarbage).fails(run(MalformedToken), &["not a valid JWT", "returns a raw OIDC token"]),
        row(File, Client, "oversized token file", Inject::FileOversized).fails(run(MalformedToken), &["more than the 65536-byte limit"]),
    ];
    // The same faults over the socket and over HTTP.
    for source in [Socket, Http] {
        rows.extend([
            row(source, Client, "400", status(400, "invalid audience"))
                .fails(run(FlyApi), &["HTTP 400: invalid audience", "check the requested audience"]).attempts(Fly, 1),
            row(source, Client, "429 on every attempt", every_attempt(429, "rate limited"))
                .fails(run(Transient), &["HTTP 429", "rate limited by the Machines API; cache tokens"]).attempts(Fly, 3),
            row(source, Client, "429 once, then OK", status(429, "rate limited")).ok().attempts(Fly, 2),
            row(source, Client, "500 once, then OK", status(500, "internal error")).ok().attempts(Fly, 2),
            row(source, Client, "500 on every attempt", every_attempt(500, "internal error"))
                .fails(run(Transient), &["HTTP 500", "the Machines API failed; try again shortly"]).attempts(Fly, 3),
            row(source, Client, "slower than the timeout once, then OK", Inject::Fly(1, Fault::Delay(SLOW))).ok().attempts(Fly, 2),
            // A timed-out attempt takes the 500 ms timeout; retries back off for at most 20 ms.
            row(source, Client, "slower than the timeout on every attempt", Inject::Fly(3, Fault::Delay(SLOW)))
                .fails(run(Transient), &["timed out after 500ms", "usually transient"]).attempts(Fly, 3).within(4),
            row(source, Client, "garbage body", Inject::Fly(1, Fault::Malformed))
                .fails(run(MalformedToken), &["answered 200 but not a valid JWT", "raw OIDC token"]).attempts(Fly, 1),
            row(source, Client, "oversized body", Inject::Fly(1, Fault::Oversized))
                .fails(run(MalformedToken), &["more than 65536 bytes; that is not an OIDC token"]).attempts(Fly, 1),
            row(source, Client, "connection reset mid-response once, then OK", Inject::Fly(1, Fault::Reset)).ok().attempts(Fly, 2),
            row(source, Client, "connection reset mid-response on every attempt", Inject::Fly(3, Fault::Reset))
                .fails(run(Transient), &["failed; this is usually transient"]).attempts(Fly, 3),
        ]);
    }
    rows.extend([
        // Permission denied: the binary as an unprivileged user.
        row(Default, CliToken, "permission denied (socket's directory)", Inject::AsNobody(Denial::SocketDir))
            .fails(EXIT_1, &["Fly token failed: permission denied on the Machines API socket", "fetch the token before dropping root"]).attempts(Fly, 0),
        row(Socket, CliToken, "permission denied (connect)", Inject::AsNobody(Denial::SocketConnect))
            .fails(EXIT_1, &["permission denied connecting to", "run as root"]).attempts(Fly, 0),
        row(File, CliToken, "permission denied (token file)", Inject::AsNobody(Denial::TokenFile))
            .fails(EXIT_1, &["permission denied; make it readable by this user"]),
        row(Default, CliGcpExec, "permission denied (socket's directory)", Inject::AsNobody(Denial::SocketDir))
            .fails(google("PERMISSION_DENIED"), &["permission denied"]),
        row(Default, CliAws, "permission denied (socket's directory)", Inject::AsNobody(Denial::SocketDir))
            .fails(EXIT_1, &["Fly token failed", "permission denied"]).attempts(Sts, 0),
        // Fly API faults through the providers and the binary.
        row(Default, Aws, "socket missing (not on Fly)", Inject::NoSocket).fails(Kind::Aws(Sdk::CredentialsNotLoaded, Some(NotOnFly)), NOT_ON_FLY).attempts(Sts, 0),
        row(Socket, Aws, "400", status(400, "invalid audience"))
            .fails(provider(FlyApi), &["could not get a Fly OIDC token", "HTTP 400"]).attempts(Sts, 0),
        row(Socket, Aws, "500 on every attempt", every_attempt(500, "internal error"))
            .fails(provider(Transient), &["could not get a Fly OIDC token", "HTTP 500"]).attempts(Fly, 3).attempts(Sts, 0),
        row(Http, Aws, "429 once, then OK", status(429, "rate limited")).ok().attempts(Fly, 2).attempts(Sts, 1),
        row(File, Aws, "expired token in the token file", Inject::FileExpired)
            // Issue 10, class 1: never sent to STS.
            .fails(provider(StaleToken), &["holds a Fly token that expired at", "only when AWS_ROLE_ARN is set on the app"])
            .attempts(Sts, 0),
        row(Default, Gcp, "socket missing (not on Fly)", Inject::NoSocket).fails(run(NotOnFly), NOT_ON_FLY).attempts(GoogleSts, 0),
        row(Socket, Gcp, "429 on every attempt", every_attempt(429, "rate limited"))
            .fails(run(Transient), &["getting a Fly OIDC token failed", "HTTP 429"]).attempts(Fly, 3).attempts(GoogleSts, 0),
        row(Default, CliToken, "socket missing (not on Fly)", Inject::NoSocket).fails(EXIT_1, NOT_ON_FLY),
        row(Socket, CliToken, "400", status(400, "invalid audience"))
            .fails(EXIT_1, &["Fly token failed", "HTTP 400", "check the requested audience"]).attempts(Fly, 1),
        row(Http, CliToken, "500 once, then OK", status(500, "internal error")).ok().attempts(Fly, 2),
        row(Http, CliToken, "401 (wrong API token)", Inject::WrongApiToken).fails(EXIT_1, &["HTTP 401", "FLY_API_TOKEN"]),
        row(Http, CliToken, "FLY_API_TOKEN not set", Inject::NoApiToken)
            .fails(EXIT_2, &["invalid setting: no Fly API token", "set FLY_API_TOKEN"]),
        row(Socket, CliToken, "connection reset mid-response once, then OK", Inject::Fly(1, Fault::Reset)).ok().attempts(Fly, 2),
        row(Socket, CliToken, "oversized body", Inject::Fly(1, Fault::Oversized)).fails(EXIT_1, &["more than 65536 bytes"]),
        row(File, CliToken, "garbage in the token file", Inject::FileGarbage).fails(EXIT_1, &["not a valid JWT"]),
        row(Default, CliAws, "socket missing (not on Fly)", Inject::NoSocket).fails(EXIT_1, NOT_ON_FLY).attempts(Sts, 0),
        row(Default, CliGcpExec, "socket missing (not on Fly)", Inject::NoSocket).fails(google("NOT_ON_FLY"), NOT_ON_FLY),
        row(Socket, CliGcpExec, "400", status(400, "invalid audience")).fails(google("FLY_API_REJECTED"), &["HTTP 400"]),
        row(Socket, CliGcpExec, "500 once, then OK", status(500, "internal error")).ok().attempts(Fly, 2),
        row(Socket, CliGcpExec, "garbage body", Inject::Fly(1, Fault::Malformed)).fails(google("MALFORMED_TOKEN"), &["not a valid JWT"]),
    ]);
    rows
}
