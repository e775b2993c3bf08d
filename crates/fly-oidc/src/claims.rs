//! The claims of a Fly OIDC token.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The issuer prefix of every Fly OIDC token: `https://oidc.fly.io/<org-slug>`.
pub const FLY_ISSUER_PREFIX: &str = "https://oidc.fly.io/";

/// The issuer of org `org`'s tokens: `https://oidc.fly.io/<org>`.
///
/// ```
/// assert_eq!(fly_oidc::issuer_url("acme"), "https://oidc.fly.io/acme");
/// ```
pub fn issuer_url(org: &str) -> String {
    format!("{FLY_ISSUER_PREFIX}{org}")
}

/// An issuer as AWS IAM names it: its OpenID Connect provider's name, and the prefix of its
/// condition keys (`<key>:aud`, `<key>:sub`): the issuer URL without `https://` and without
/// a trailing `/`.
///
/// ```
/// assert_eq!(fly_oidc::issuer_key("https://oidc.fly.io/acme/"), "oidc.fly.io/acme");
/// ```
pub fn issuer_key(iss: &str) -> &str {
    iss.strip_prefix("https://")
        .unwrap_or(iss)
        .trim_end_matches('/')
}

/// The claim AWS STS reads session tags from in `AssumeRoleWithWebIdentity`:
/// `{"principal_tags": {"<key>": ["<value>"]}, "transitive_tag_keys": ["<key>"]}`. A Fly token
/// carries it when the request asked for `"aws_principal_tags": true`
/// ([`TokenOptions::aws_principal_tags`](crate::TokenOptions::aws_principal_tags)).
pub const AWS_TAGS_CLAIM: &str = "https://aws.amazon.com/tags";

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
    /// Any other claim, AWS's session tags claim ([`AWS_TAGS_CLAIM`]) included, as sent (read
    /// it with [`FlyClaims::aws_session_tags`]).
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

    /// The AWS session tags the token carries ([`AWS_TAGS_CLAIM`]), as data: whatever keys
    /// the issuer chose (Fly does not document its keys; never assume them). `None` when the
    /// token has no such claim, or one of a shape AWS does not document (the raw claim stays
    /// in [`other`](Self::other)).
    ///
    /// AWS's shape is an object; an array of such objects (what some issuers send) is read
    /// as one, and a tag value given as a string rather than a list as a list of one.
    ///
    /// ```
    /// use fly_oidc::FlyClaims;
    /// let claims: FlyClaims = serde_json::from_value(serde_json::json!({
    ///     "https://aws.amazon.com/tags": {
    ///         "principal_tags": {"team": ["web"], "env": ["prod"]},
    ///         "transitive_tag_keys": ["team"]
    ///     }
    /// })).unwrap();
    /// let tags = claims.aws_session_tags().unwrap();
    /// assert_eq!(tags.principal_tags["team"], ["web"]);
    /// assert_eq!(tags.transitive_tag_keys, ["team"]);
    /// assert_eq!(tags.to_string(), "env=prod, team=web (transitive: team)");
    /// ```
    pub fn aws_session_tags(&self) -> Option<AwsSessionTags> {
        AwsSessionTags::from_claim(self.other.get(AWS_TAGS_CLAIM)?)
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

/// The AWS session tags of a token ([`FlyClaims::aws_session_tags`]): STS makes each
/// principal tag a session tag (`aws:PrincipalTag/<key>` in policies).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwsSessionTags {
    /// Each tag's key and its values (AWS takes one value per key).
    #[serde(default)]
    pub principal_tags: BTreeMap<String, Vec<String>>,
    /// The keys of the tags that pass on to a chained role's session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
}

impl AwsSessionTags {
    /// Read the claim's value: an object, or an array of objects merged in order.
    fn from_claim(value: &Value) -> Option<Self> {
        let parts: Vec<&serde_json::Map<String, Value>> = match value {
            Value::Object(object) => vec![object],
            Value::Array(items) => items.iter().map(Value::as_object).collect::<Option<_>>()?,
            _ => return None,
        };
        let mut tags = Self::default();
        for part in parts {
            match part.get("principal_tags") {
                None => {}
                Some(Value::Object(map)) => {
                    for (key, values) in map {
                        let values = match values {
                            Value::String(one) => vec![one.clone()],
                            Value::Array(list) => list
                                .iter()
                                .map(|v| v.as_str().map(str::to_owned))
                                .collect::<Option<_>>()?,
                            _ => return None,
                        };
                        tags.principal_tags.insert(key.clone(), values);
                    }
                }
                Some(_) => return None,
            }
            match part.get("transitive_tag_keys") {
                None => {}
                Some(Value::Array(keys)) => {
                    for key in keys {
                        tags.transitive_tag_keys.push(key.as_str()?.to_owned());
                    }
                }
                Some(_) => return None,
            }
        }
        Some(tags)
    }
}

/// `key=value, ...` in key order (several values joined by `|`), then the transitive keys.
impl std::fmt::Display for AwsSessionTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.principal_tags.is_empty() {
            f.write_str("(no principal tags)")?;
        }
        for (i, (key, values)) in self.principal_tags.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{key}={}", values.join("|"))?;
        }
        if !self.transitive_tag_keys.is_empty() {
            write!(f, " (transitive: {})", self.transitive_tag_keys.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(tags: Value) -> FlyClaims {
        serde_json::from_value(serde_json::json!({ AWS_TAGS_CLAIM: tags })).unwrap()
    }

    #[test]
    fn session_tags_are_read_as_data_whatever_their_keys() {
        let none: FlyClaims = serde_json::from_value(serde_json::json!({"sub": "x"})).unwrap();
        assert_eq!(none.aws_session_tags(), None);
        let tags = claims(serde_json::json!({
            "principal_tags": {"any key": ["v1"], "other": ["a", "b"]},
            "transitive_tag_keys": ["other"]
        }))
        .aws_session_tags()
        .unwrap();
        assert_eq!(tags.principal_tags.len(), 2);
        assert_eq!(tags.principal_tags["any key"], ["v1"]);
        assert_eq!(
            tags.to_string(),
            "any key=v1, other=a|b (transitive: other)"
        );
        // An array of objects, and a string value.
        let tags = claims(serde_json::json!([
            {"principal_tags": {"a": "1"}},
            {"principal_tags": {"b": ["2"]}, "transitive_tag_keys": ["b"]}
        ]))
        .aws_session_tags()
        .unwrap();
        assert_eq!(tags.to_string(), "a=1, b=2 (transitive: b)");
        assert_eq!(
            claims(serde_json::json!({}))
                .aws_session_tags()
                .unwrap()
                .to_string(),
            "(no principal tags)"
        );
        // Shapes AWS does not document: none, and the raw claim is still there (and printed).
        for odd in [
            serde_json::json!("text"),
            serde_json::json!({"principal_tags": ["a"]}),
            serde_json::json!({"principal_tags": {"a": 1}}),
            serde_json::json!({"transitive_tag_keys": "a"}),
            serde_json::json!([1]),
        ] {
            let c = claims(odd.clone());
            assert_eq!(c.aws_session_tags(), None, "{odd}");
            assert_eq!(c.other[AWS_TAGS_CLAIM], odd);
            let shown = serde_json::to_value(&c).unwrap();
            assert_eq!(shown[AWS_TAGS_CLAIM], odd);
        }
    }
}
