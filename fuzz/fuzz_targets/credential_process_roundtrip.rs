//! The credential_process JSON, `aws env --json` and shell exports the CLI prints read back
//! to exactly the credentials and expiry that went in, whatever the strings hold.
#![no_main]

use fly_oidc_aws::credential_process::{self as format, AwsCredentials};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, UNIX_EPOCH};

/// Read one POSIX single-quoted word (`'...'`, with `'\''` for a quote) from the start of
/// `text`, as a shell would; returns the word and the rest.
fn shell_word(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let inner = rest.strip_prefix('\'')?;
        let end = inner.find('\'')?;
        out.push_str(&inner[..end]);
        rest = &inner[end + 1..];
        match rest.strip_prefix("\\'") {
            Some(after) => {
                out.push('\'');
                rest = after;
            }
            None => return Some((out, rest)),
        }
    }
}

fuzz_target!(|input: (String, String, String, Option<String>, u32)| {
    let (access_key_id, secret_access_key, session_token, account_id, secs) = input;
    let creds = AwsCredentials {
        access_key_id,
        secret_access_key,
        session_token,
        account_id,
    };
    let expires_at = UNIX_EPOCH + Duration::from_secs(u64::from(secs));
    let expiration = fly_oidc::time::format_rfc3339(expires_at);
    assert_eq!(
        fly_oidc::time::parse_rfc3339(&expiration),
        Some(expires_at),
        "{expiration}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&format::credential_process_json(&creds, expires_at)).unwrap();
    assert_eq!(json["Version"], 1);
    assert_eq!(json["AccessKeyId"], creds.access_key_id.as_str());
    assert_eq!(json["SecretAccessKey"], creds.secret_access_key.as_str());
    assert_eq!(json["SessionToken"], creds.session_token.as_str());
    assert_eq!(json["Expiration"], expiration.as_str());
    match &creds.account_id {
        Some(id) => assert_eq!(json["AccountId"], id.as_str()),
        None => assert!(json.get("AccountId").is_none()),
    }

    let env: serde_json::Value =
        serde_json::from_str(&format::env_json(&creds, expires_at, None)).unwrap();
    assert_eq!(
        env["AWS_SECRET_ACCESS_KEY"],
        creds.secret_access_key.as_str()
    );
    assert_eq!(env["AWS_CREDENTIAL_EXPIRATION"], expiration.as_str());

    // `export NAME='value'` lines, read back the way a shell reads them.
    let exports = format::shell_exports(&creds, expires_at, None);
    let mut rest = exports.as_str();
    for (name, expected) in [
        ("AWS_ACCESS_KEY_ID", creds.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.as_str()),
        ("AWS_SESSION_TOKEN", creds.session_token.as_str()),
        ("AWS_CREDENTIAL_EXPIRATION", expiration.as_str()),
    ] {
        let after = rest.strip_prefix(&format!("export {name}=")).unwrap();
        let (value, after) = shell_word(after).unwrap();
        assert_eq!(value, expected);
        rest = after.strip_prefix('\n').unwrap();
    }
    assert!(rest.is_empty());

    // Debug shows the key id and account, never the secrets.
    assert_eq!(
        format!("{creds:?}"),
        format!(
            "AwsCredentials {{ access_key_id: {:?}, secret_access_key: \"** redacted **\", session_token: \"** redacted **\", account_id: {:?} }}",
            creds.access_key_id, creds.account_id
        )
    );
});
