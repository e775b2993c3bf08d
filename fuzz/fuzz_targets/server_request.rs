//! The credential server's request handling (routing, query parsing, the Host, token,
//! Metadata-Flavor, X-Forwarded-For and Forwarded checks) on any method, target and headers: it never
//! panics, never hands out a secret without the exact checks passing, and every answer under
//! `/computeMetadata/` carries `Metadata-Flavor: Google`.
#![no_main]

use fly_oidc_server::fuzzing::Harness;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const SECRET_KEY: &str = "fuzz-secret-access-key";
const ACCESS_TOKEN: &str = "ya29.fuzz-access-token";
const AUTH_TOKEN: &str = "fuzz-auth-token-0123456789abcdef";

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::new)
}

/// The method, the request target, the headers, and whether to add the right authorization token.
type Request = (Vec<u8>, String, Vec<(String, Vec<u8>)>, bool);

fuzz_target!(|input: Request| {
    let (method, target, mut headers, add_good_token) = input;
    if add_good_token {
        headers.push(("authorization".into(), AUTH_TOKEN.as_bytes().to_vec()));
    }
    let Some(answer) = harness().answer(&method, &target, &headers) else {
        return;
    };
    let body = String::from_utf8_lossy(&answer.body);
    let has = |name: &str, value: &[u8]| {
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.as_slice() == value)
    };
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
    };
    // Whatever hands out a secret named this server, once, in Host and in an absolute URL.
    let allowed = |host: &str| {
        ["127.0.0.1:8675", "127.0.0.1", "localhost:8675", "localhost"]
            .iter()
            .any(|h| host.trim().eq_ignore_ascii_case(h))
    };
    let names_this_server = || {
        let mut hosts = named("host");
        let one = match (hosts.next(), hosts.next()) {
            (Some((_, v)), None) => allowed(&String::from_utf8_lossy(v)),
            _ => false,
        };
        let authority = target
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.as_str().to_owned()));
        one && authority.is_none_or(|a| allowed(&a))
    };
    if body.contains(SECRET_KEY) {
        assert_eq!(answer.status, 200);
        assert!(
            has("authorization", AUTH_TOKEN.as_bytes()),
            "secret key without the token"
        );
        assert!(names_this_server(), "secret key without an allowed Host");
    }
    if body.contains(ACCESS_TOKEN) {
        assert_eq!(answer.status, 200);
        assert!(
            named("metadata-flavor")
                .next()
                .is_some_and(|(_, v)| v == b"Google"),
            "access token without Metadata-Flavor: Google"
        );
        assert!(
            named("x-forwarded-for").next().is_none() && named("forwarded").next().is_none(),
            "access token despite X-Forwarded-For or Forwarded"
        );
        assert!(names_this_server(), "access token without an allowed Host");
    }
    assert!(!body.contains(AUTH_TOKEN), "the auth token in a body");
    let path = target.split('?').next().unwrap_or_default();
    if path.starts_with("/computeMetadata/") {
        assert_eq!(answer.flavor.as_deref(), Some("Google"));
    }
});
