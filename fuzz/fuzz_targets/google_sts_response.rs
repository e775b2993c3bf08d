//! Google STS answers (any status, any body) become a lifetime or a clear error, never a panic,
//! and error messages stay short and never carry anything shaped like a JWT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, Vec<u8>)| {
    let (status, body) = input;
    if let Err(err) = fly_oidc_gcp::fuzzing::sts_response(status, &body) {
        let message = err.to_string();
        assert_eq!(fly_oidc::redact_jwts(&message), message);
        assert!(message.len() < 4096, "{} bytes", message.len());
    }
});
