//! The claims of a Fly OIDC token.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The issuer prefix of every Fly OIDC token: `https://oidc.fly.io/<org-slug>`.
pub const FLY_ISSUER_PREFIX: &str = "https://oidc.fly.io/";

/// The `aud` claim: one audience or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience (what Fly issues).
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Every audience in the claim.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }

    /// Whether `aud` is one of the audiences.
    pub fn contains(&self, aud: &str) -> bool {
        self.iter().any(|a| a == aud)
    }
}

/// The claims Fly puts in its OIDC tokens.
///
/// **Decoded without verifying the signature.** Use them for display, defaults (such as
/// the AWS session name) and error hints only; never for an authorization decision.
/// The cloud's STS verifies the token against Fly's published keys.
///
/// Every field is optional so that a token missing one still decodes; unknown claims are
/// kept in [`FlyClaims::other`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FlyClaims {
    /// Issuer: `https://oidc.fly.io/<org-slug>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject: `<org-slug>:<app-name>:<machine-name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Unique token id (every request mints a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The app's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The app's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// The Machine's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// The Machine's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_name: Option<String>,
    /// The Machine's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_version: Option<String>,
    /// The image the Machine runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The image's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The organization's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The organization's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// The region the Machine runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Any other claim.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl FlyClaims {
    /// `exp` as a time (`None` when absent or beyond what the platform's time can hold).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.exp
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    }

    /// `iat` as a time (`None` when absent or beyond what the platform's time can hold).
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.iat
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    }

    /// The org slug from `iss` (`https://oidc.fly.io/<slug>`), if the issuer is Fly's.
    ///
    /// This is what the cloud side's OIDC provider URL must end with. For a personal
    /// organization it is the org's slug, not the word `personal`.
    pub fn org_slug(&self) -> Option<&str> {
        self.iss
            .as_deref()?
            .strip_prefix(FLY_ISSUER_PREFIX)
            .map(|s| s.trim_end_matches('/'))
            .filter(|s| !s.is_empty())
    }

    /// A one-line summary for error hints: issuer, audience and subject.
    pub fn trust_summary(&self) -> String {
        let aud = self
            .aud
            .as_ref()
            .map(|a| a.iter().collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "(none)".into());
        format!(
            "iss={} aud={} sub={}",
            self.iss.as_deref().unwrap_or("(none)"),
            aud,
            self.sub.as_deref().unwrap_or("(none)")
        )
    }
}
