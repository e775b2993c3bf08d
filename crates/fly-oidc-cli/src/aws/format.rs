//! What `fly-oidc aws` prints: credential_process JSON, shell exports, and their JSON twin.

use fly_oidc::REDACTED;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::SystemTime;
use zeroize::Zeroize;

/// Temporary AWS credentials, as cached on disk and printed. `Debug` redacts the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsCredentials {
    /// `ASIA...`.
    pub access_key_id: String,
    /// The secret key (never logged).
    pub secret_access_key: String,
    /// The session token (never logged).
    pub session_token: String,
    /// The account of the assumed role, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl Drop for AwsCredentials {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &REDACTED)
            .field("session_token", &REDACTED)
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
pub fn rfc3339(time: SystemTime) -> String {
    fly_oidc::time::format_rfc3339(time)
}

/// The `credential_process` answer (field order as in the AWS docs).
#[derive(Serialize)]
struct ProcessOutput<'a> {
    #[serde(rename = "Version")]
    version: u8,
    #[serde(rename = "AccessKeyId")]
    access_key_id: &'a str,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: &'a str,
    #[serde(rename = "SessionToken")]
    session_token: &'a str,
    #[serde(rename = "Expiration")]
    expiration: String,
    #[serde(rename = "AccountId", skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

/// `{"Version":1,"AccessKeyId":..,"SecretAccessKey":..,"SessionToken":..,"Expiration":..}`
/// plus `AccountId` when known.
pub fn credential_process_json(creds: &AwsCredentials, expires_at: SystemTime) -> String {
    let out = ProcessOutput {
        version: 1,
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        session_token: &creds.session_token,
        expiration: rfc3339(expires_at),
        account_id: creds.account_id.as_deref(),
    };
    // Serializing plain strings into a String cannot fail.
    serde_json::to_string(&out).unwrap_or_default()
}

fn env_pairs(creds: &AwsCredentials, expires_at: SystemTime) -> [(&'static str, String); 4] {
    [
        ("AWS_ACCESS_KEY_ID", creds.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.clone()),
        ("AWS_SESSION_TOKEN", creds.session_token.clone()),
        ("AWS_CREDENTIAL_EXPIRATION", rfc3339(expires_at)),
    ]
}

/// Quote `value` for a POSIX shell: single quotes, with `'` written as `'\''`.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `export NAME='value'` lines for `eval "$(fly-oidc aws env)"`.
pub fn shell_exports(creds: &AwsCredentials, expires_at: SystemTime) -> String {
    env_pairs(creds, expires_at)
        .iter()
        .map(|(name, value)| format!("export {name}={}\n", shell_quote(value)))
        .collect()
}

/// The same variables as a JSON object.
pub fn env_json(creds: &AwsCredentials, expires_at: SystemTime) -> String {
    let map: serde_json::Map<String, serde_json::Value> = env_pairs(creds, expires_at)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds(account: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s3cr3t/key+".into(),
            session_token: "tok'en==".into(),
            account_id: account.map(str::to_owned),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_700_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(at(4_102_444_799)), "2099-12-31T23:59:59Z");
        assert_eq!(rfc3339(at(1_709_251_199)), "2024-02-29T23:59:59Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn credential_process_json_has_the_documented_shape() {
        let text = credential_process_json(&creds(Some("123456789012")), at(1_700_000_000));
        assert!(
            text.starts_with(r#"{"Version":1,"AccessKeyId":"ASIAEXAMPLE","#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["SecretAccessKey"], "s3cr3t/key+");
        assert_eq!(v["SessionToken"], "tok'en==");
        assert_eq!(v["Expiration"], "2023-11-14T22:13:20Z");
        assert_eq!(v["AccountId"], "123456789012");
        let text = credential_process_json(&creds(None), at(1_700_000_000));
        assert!(!text.contains("AccountId"), "{text}");
    }

    #[test]
    fn shell_exports_survive_a_real_shell() {
        let text = shell_exports(&creds(None), at(1_700_000_000));
        assert_eq!(text.lines().count(), 4);
        assert!(
            text.contains("export AWS_SESSION_TOKEN='tok'\\''en=='\n"),
            "{text}"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{text}printf '%s|%s|%s|%s' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\" \"$AWS_SESSION_TOKEN\" \"$AWS_CREDENTIAL_EXPIRATION\""
            ))
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "ASIAEXAMPLE|s3cr3t/key+|tok'en==|2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn shell_quote_neutralises_metacharacters() {
        for nasty in ["$(id)", "`id`", "a b", "x'; rm -rf /; '", "\n", "", "\\"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", shell_quote(nasty)))
                .env_clear()
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
        }
    }

    #[test]
    fn env_json_and_debug() {
        let v: serde_json::Value =
            serde_json::from_str(&env_json(&creds(None), at(1_700_000_000))).unwrap();
        assert_eq!(v["AWS_ACCESS_KEY_ID"], "ASIAEXAMPLE");
        assert_eq!(v["AWS_CREDENTIAL_EXPIRATION"], "2023-11-14T22:13:20Z");
        assert_eq!(v.as_object().unwrap().len(), 4);
        let debug = format!("{:?}", creds(None));
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("tok'en"),
            "{debug}"
        );
        assert!(debug.contains(REDACTED));
    }
}
