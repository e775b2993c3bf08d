//! The credential server's request handling (routing, query parsing, the Host, token,
//! Metadata-Flavor and X-Forwarded-For checks) on any method, target and headers: it never
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

fuzz_target!(|input: (Vec<u8>, String, Vec<(String, Vec<u8>)>, bool)| {
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
    if body.contains(SECRET_KEY) {
        assert_eq!(answer.status, 200);
        assert!(
            has("authorization", AUTH_TOKEN.as_bytes()),
            "secret key without the token"
        );
        assert!(
            ["127.0.0.1:8675", "127.0.0.1", "localhost:8675", "localhost"]
                .iter()
                .any(
                    |host| headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("host")
                        && String::from_utf8_lossy(v).trim().eq_ignore_ascii_case(host))
                ),
            "secret key without an allowed Host"
        );
    }
    if body.contains(ACCESS_TOKEN) {
        assert_eq!(answer.status, 200);
        assert!(
            headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("metadata-flavor")
                    && v.eq_ignore_ascii_case(b"google")),
            "access token without Metadata-Flavor"
        );
        assert!(
            !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for")),
            "access token despite X-Forwarded-For"
        );
    }
    assert!(!body.contains(AUTH_TOKEN), "the auth token in a body");
    let path = target.split('?').next().unwrap_or_default();
    if path.starts_with("/computeMetadata/") {
        assert_eq!(answer.flavor.as_deref(), Some("Google"));
    }
});
