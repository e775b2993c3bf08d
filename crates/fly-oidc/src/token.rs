//! The token type: a JWT that never prints itself.

use crate::claims::FlyClaims;
use crate::error::{Error, ErrorKind, Message};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;
use std::time::{Duration, SystemTime};
use zeroize::Zeroizing;

/// The text printed instead of a secret.
pub const REDACTED: &str = "** redacted **";

/// The largest token accepted, in bytes (Fly's are about 1 KB).
pub(crate) const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The least time a Fly token must have left to be handed on to a cloud: 30 seconds. A
/// token closer to its `exp` (or past it) is refused with [`ErrorKind::StaleToken`], since
/// it would expire in flight or in the consumer's hands (see [`FlyToken::ensure_fresh`]).
pub(crate) const MIN_SUBJECT_TOKEN_TTL: Duration = Duration::from_secs(30);

/// The JOSE header of a token.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[non_exhaustive]
pub struct JwtHeader {
    /// Signing algorithm, such as `RS256`.
    pub alg: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Type, usually `JWT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// A Fly OIDC token (a JWT).
///
/// `Debug` and `Display` print `** redacted **` instead of the token; the memory holding it
/// is zeroed on drop. Use [`FlyToken::expose_jwt`] to get the raw string when sending it on.
///
/// ```
/// # fn main() -> Result<(), fly_oidc::Error> {
/// use fly_oidc::FlyToken;
/// // header {"alg":"RS256","kid":"k"}, payload {"iss":"https://oidc.fly.io/acme","exp":2000000000}
/// let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwczovL29pZGMuZmx5LmlvL2FjbWUiLCJleHAiOjIwMDAwMDAwMDB9.c2ln";
/// let token = FlyToken::parse(jwt)?;
/// assert_eq!(token.claims().org_slug(), Some("acme"));
/// assert_eq!(format!("{token}"), "** redacted **");
/// assert!(!format!("{token:?}").contains(jwt));
/// assert_eq!(token.expose_jwt(), jwt);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FlyToken {
    jwt: Zeroizing<String>,
    header: JwtHeader,
    claims: FlyClaims,
}

impl FlyToken {
    /// Check that `jwt` is three base64url parts with a JSON header carrying `alg` and a
    /// JSON object payload, and decode its claims (**without** verifying the signature).
    pub fn parse(jwt: impl Into<String>) -> Result<Self, Error> {
        let jwt = Zeroizing::new(jwt.into());
        let trimmed = jwt.trim();
        if trimmed.len() > MAX_TOKEN_BYTES {
            return Err(malformed(format!(
                "the token is {} bytes, more than the {MAX_TOKEN_BYTES}-byte limit",
                trimmed.len()
            )));
        }
        let (header, claims) = decode_parts(trimmed)?;
        let jwt = if trimmed.len() == jwt.len() {
            jwt
        } else {
            Zeroizing::new(trimmed.to_owned())
        };
        Ok(Self {
            jwt,
            header,
            claims,
        })
    }

    /// The raw JWT, to send to an STS. Never log it.
    pub fn expose_jwt(&self) -> &str {
        &self.jwt
    }

    /// The decoded (unverified) claims.
    pub fn claims(&self) -> &FlyClaims {
        &self.claims
    }

    /// The decoded header.
    pub fn header(&self) -> &JwtHeader {
        &self.header
    }

    /// When the token expires (`exp`), if it says.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.claims.expires_at()
    }

    /// Check that the token has at least 30 s left at `now`.
    ///
    /// Otherwise an [`ErrorKind::StaleToken`] error: "`{holder}` holds a Fly token that
    /// expired at `<RFC 3339 UTC>` (`N` s ago)" (or "that expires at ..., in `N` s, less
    /// than the 30 s ..."), then `; {what_keeps_it_fresh}`. A token without `exp` passes.
    ///
    /// ```
    /// use fly_oidc::{ErrorKind, FlyToken};
    /// use std::time::{Duration, UNIX_EPOCH};
    /// // payload {"exp":2000000000}
    /// let token = FlyToken::parse("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjIwMDAwMDAwMDB9.c2ln")?;
    /// let exp = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
    /// assert!(token.ensure_fresh(exp - Duration::from_secs(31), "x", "y").is_ok());
    /// let err = token.ensure_fresh(exp + Duration::from_secs(300), "the token file /t", "rewrite it").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::StaleToken);
    /// assert_eq!(
    ///     err.to_string(),
    ///     "the token file /t holds a Fly token that expired at 2033-05-18T03:33:20Z (300 s ago); rewrite it"
    /// );
    /// let err = token.ensure_fresh(exp - Duration::from_secs(20), "the token file /t", "rewrite it").unwrap_err();
    /// assert!(err.to_string().contains("expires at 2033-05-18T03:33:20Z, in 20 s"), "{err}");
    /// # Ok::<(), fly_oidc::Error>(())
    /// ```
    pub fn ensure_fresh(
        &self,
        now: SystemTime,
        holder: &str,
        what_keeps_it_fresh: impl Into<Message>,
    ) -> Result<(), Error> {
        let Some(exp) = self.expires_at() else {
            return Ok(());
        };
        let at = crate::time::format_rfc3339(exp);
        let state = match exp.duration_since(now) {
            Ok(left) if left >= MIN_SUBJECT_TOKEN_TTL => return Ok(()),
            Ok(left) if !left.is_zero() => format!(
                "that expires at {at}, in {} s, less than the {} s a cloud needs to accept it",
                left.as_secs(),
                MIN_SUBJECT_TOKEN_TTL.as_secs()
            ),
            _ => format!(
                "that expired at {at} ({} s ago)",
                now.duration_since(exp).unwrap_or_default().as_secs()
            ),
        };
        Err(Error::new(
            ErrorKind::StaleToken,
            Message::from(format!("{holder} holds a Fly token {state}; "))
                .append(what_keeps_it_fresh.into()),
        ))
    }
}

fn malformed(why: String) -> Error {
    Error::new(
        ErrorKind::MalformedToken,
        format!("not a valid JWT: {why}; check that the token source returns a raw OIDC token"),
    )
}

fn decode_parts(jwt: &str) -> Result<(JwtHeader, FlyClaims), Error> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed(format!(
            "expected 3 dot-separated parts, found {}",
            parts.len()
        )));
    }
    let mut decoded = Vec::with_capacity(3);
    for (name, part) in ["header", "payload", "signature"].iter().zip(&parts) {
        if part.is_empty() {
            return Err(malformed(format!("the {name} part is empty")));
        }
        let bytes = URL_SAFE_NO_PAD.decode(part);
        decoded.push(bytes.map_err(|_| malformed(format!("the {name} part is not base64url")))?);
    }
    let header: JwtHeader = serde_json::from_slice(&decoded[0]).map_err(|e| {
        malformed(format!(
            "the header is not a JSON object with a string \"alg\" ({})",
            e.classify_name()
        ))
    })?;
    if header.alg.is_empty() {
        return Err(malformed("the header's \"alg\" is empty".into()));
    }
    let claims: FlyClaims = serde_json::from_slice(&decoded[1]).map_err(|e| {
        malformed(format!(
            "the payload is not a JSON object of claims ({})",
            e.classify_name()
        ))
    })?;
    Ok((header, claims))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected JSON type",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

impl fmt::Debug for FlyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlyToken")
            .field("jwt", &REDACTED)
            .field("header", &self.header)
            .field("claims", &self.claims)
            .finish()
    }
}

impl fmt::Display for FlyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A secret string (an API token, an access token): redacted in `Debug`/`Display`,
/// zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret itself. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}
