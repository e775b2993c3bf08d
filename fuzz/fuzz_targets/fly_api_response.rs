//! Machines API answers (any status, any body) become a token or a clear error, never a panic,
//! and error messages never carry anything shaped like a JWT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, Vec<u8>)| {
    let (status, body) = input;
    let source = fly_oidc::TokenSource::Socket {
        path: "/.fly/api".into(),
        is_default: true,
    };
    if let Err(err) = fly_oidc::token_from_response(&source, status, body) {
        let message = err.to_string();
        assert_eq!(fly_oidc::redact_jwts(&message), message);
        assert!(message.len() < 2048, "messages stay short");
    }
});
