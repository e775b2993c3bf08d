//! The JWT shape check and claims decoder never panic, and never echo the input in errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match fly_oidc::FlyToken::parse(text) {
        Ok(token) => {
            let claims = token.claims();
            let _ = claims.expires_at();
            let _ = claims.org_slug();
            let _ = claims.trust_summary();
            // Debug and Display never show the JWT itself.
            let debug = format!("{token:?}");
            assert!(!debug.contains(token.expose_jwt()));
            assert_eq!(format!("{token}"), fly_oidc::REDACTED);
        }
        Err(err) => {
            // Errors about a token never quote it (inputs that look like a secret: long, no spaces).
            if text.trim().len() >= 16 && !text.trim().contains(char::is_whitespace) {
                assert!(!err.to_string().contains(text.trim()));
            }
        }
    }
});
