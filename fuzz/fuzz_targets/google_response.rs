//! Google STS and IAM Credentials answers (any status, any body) become a lifetime or expiry,
//! or a clear error, never a panic, and error messages stay short and never carry anything
//! shaped like a JWT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, u16, Vec<u8>)| {
    let (iam, status, body) = input;
    let answer = if iam {
        fly_oidc_gcp::fuzzing::iam_response(status, &body).map(drop)
    } else {
        fly_oidc_gcp::fuzzing::sts_response(status, &body).map(drop)
    };
    if let Err(err) = answer {
        let message = err.to_string();
        assert_eq!(fly_oidc::redact_jwts(&message), message);
        assert!(message.len() < 4096, "{} bytes", message.len());
    }
});
