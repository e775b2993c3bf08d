//! Verify a Fly token's signature and time claims against its issuer's published keys.
//!
//! The keys come from the issuer's JWKS: `<iss>/.well-known/openid-configuration` names the
//! `jwks_uri` (OpenID Connect Discovery), or a JWKS URL given outright replaces discovery.
//! Only RS256 (what Fly signs with) is supported. Clouds verify the same way; a token that
//! fails here is refused by AWS STS and Google STS too.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fly_oidc::endpoint::{PlainHttp, check_endpoint_url, display_url};
use fly_oidc::{BuildError, FlyToken, Origin, Setting};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use serde_json::Value;
use sha2::Sha256;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest discovery document or JWKS read, in bytes.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Where the verification keys come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySource {
    /// The JWKS URL; `None`: discover it from the token's `iss`.
    pub jwks_url: Option<String>,
    /// The discovery document URL; `None`: `<iss>/.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
    /// Allow plain `http` to hosts other than loopback (`FLY_OIDC_ALLOW_INSECURE_HTTP`).
    pub allow_insecure_http: bool,
}

/// The JWKS URL setting: [`KeySource::new`]'s `jwks_url` (no variable sets it).
const JWKS_URL: Setting = Setting::new("jwks_url", None).flag("jwks-url");
/// The discovery document setting: [`KeySource::new`]'s `discovery_url` (no variable sets it).
const DISCOVERY_URL: Setting = Setting::new("discovery_url", None).flag("discovery-url");

impl KeySource {
    /// Keys from `jwks_url`, else from `discovery_url`, else discovered from `iss`; plain
    /// `http` to hosts other than loopback only when `FLY_OIDC_ALLOW_INSECURE_HTTP` in `env`
    /// says so (an unreadable value: not allowed).
    ///
    /// # Errors
    /// A [`BuildError`] naming `jwks_url` or `discovery_url` when that URL is not an endpoint
    /// URL (`https`, or plain `http` as said above).
    pub fn new(
        jwks_url: Option<String>,
        discovery_url: Option<String>,
        env: &fly_oidc::Env,
    ) -> Result<Self, BuildError> {
        let allow_insecure_http =
            fly_oidc::endpoint::allow_insecure_http(None, env).unwrap_or(false);
        let check = |setting: Setting, what: &str, url: &Option<String>| {
            let Some(url) = url else { return Ok(()) };
            check_endpoint_url(url, allow_insecure_http, PlainHttp::Loopback)
                .map(|_| ())
                .map_err(|why| {
                    let why = format!("invalid {what} URL {:?}: {why}", display_url(url));
                    BuildError::invalid(setting, Origin::Builder, why)
                })
        };
        check(JWKS_URL, "JWKS", &jwks_url)?;
        check(DISCOVERY_URL, "discovery document", &discovery_url)?;
        Ok(Self {
            jwks_url,
            discovery_url,
            allow_insecure_http,
        })
    }
}

/// What went wrong while verifying a token. `Display` says what and what to do; never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The keys could not be fetched: the URL, why, and whether it was discovery or the JWKS.
    Fetch {
        /// The URL (without credentials).
        url: String,
        /// Why.
        reason: String,
    },
    /// A URL (from a flag or from the discovery document) is not acceptable.
    BadUrl {
        /// The URL as shown.
        url: String,
        /// Why.
        reason: String,
    },
    /// The discovery document names another issuer than the token's `iss`.
    IssuerMismatch {
        /// The token's `iss`.
        token_iss: String,
        /// The discovery document's `issuer`.
        discovered: String,
    },
    /// The token's header is not verifiable (alg or kid).
    Header(String),
    /// No key in the JWKS has the token's `kid`.
    UnknownKey {
        /// The token's `kid`.
        kid: String,
        /// The key ids the JWKS holds.
        known: Vec<String>,
    },
    /// The signature does not verify with the issuer's key.
    BadSignature {
        /// The key id used.
        kid: String,
    },
    /// The token has no `iss` to discover keys from.
    NoIssuer,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Fetch { url, reason } => write!(
                f,
                "could not fetch the issuer's keys from {url}: {reason}; check the network and the URL (for a private CA, its roots in SSL_CERT_FILE or SSL_CERT_DIR), or give another JWKS URL with --jwks-url"
            ),
            VerifyError::BadUrl { url, reason } => write!(f, "the URL {url} is refused: {reason}"),
            VerifyError::IssuerMismatch {
                token_iss,
                discovered,
            } => write!(
                f,
                "the token's iss {token_iss} is not the issuer its discovery document names ({discovered}); the token was not issued by Fly for this org"
            ),
            VerifyError::Header(why) => write!(f, "the token header cannot be verified: {why}"),
            VerifyError::UnknownKey { kid, known } => write!(
                f,
                "the token's key id {kid:?} is not in the issuer's JWKS (it holds {known:?}); the token was signed by someone else or with a retired key"
            ),
            VerifyError::BadSignature { kid } => write!(
                f,
                "the signature does not verify with the issuer's key {kid:?}; the token was altered or not issued by Fly"
            ),
            VerifyError::NoIssuer => write!(
                f,
                "the token has no iss claim to discover its keys from; pass --jwks-url"
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

/// A token whose signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The key id that verified it.
    pub kid: String,
    /// The JWKS URL the key came from.
    pub jwks_url: String,
}

/// Fetch the issuer's keys and verify `token`'s RS256 signature with the key its `kid` names.
///
/// With [`KeySource::jwks_url`] unset, the JWKS URL is discovered from the token's `iss`
/// and the discovery document's `issuer` must equal `iss`. Time claims are not checked here:
/// see [`check_times`].
pub async fn verify_signature(
    token: &FlyToken,
    source: &KeySource,
    http: &reqwest::Client,
) -> Result<Verified, VerifyError> {
    let header = token.header();
    if header.alg != "RS256" {
        return Err(VerifyError::Header(format!(
            "alg {:?} is not RS256, the algorithm Fly signs with",
            header.alg
        )));
    }
    let kid = header
        .kid
        .clone()
        .ok_or_else(|| VerifyError::Header("it has no kid (Google STS requires one)".into()))?;
    let jwks_url = match &source.jwks_url {
        Some(url) => checked_url(url, source.allow_insecure_http)?,
        None => discover_jwks_url(token, source, http).await?,
    };
    let jwks = get_json(http, &jwks_url).await?;
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    let Some(jwk) = keys.iter().find(|k| k["kid"] == kid.as_str()) else {
        return Err(VerifyError::UnknownKey {
            kid,
            known: keys
                .iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect(),
        });
    };
    let public = public_key(jwk).map_err(|why| VerifyError::Fetch {
        url: display_url(&jwks_url),
        reason: format!("the key {kid:?} is not a usable RSA key: {why}"),
    })?;
    let jwt = token.expose_jwt();
    let (signing_input, signature_b64) = jwt
        .rsplit_once('.')
        .ok_or_else(|| VerifyError::Header("not three parts".into()))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| VerifyError::BadSignature { kid: kid.clone() })?;
    VerifyingKey::<Sha256>::new(public)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| VerifyError::BadSignature { kid: kid.clone() })?;
    Ok(Verified {
        kid,
        jwks_url: display_url(&jwks_url),
    })
}

fn public_key(jwk: &Value) -> Result<RsaPublicKey, String> {
    if jwk["kty"] != "RSA" {
        return Err(format!("kty {} is not RSA", jwk["kty"]));
    }
    let component = |name: &str| -> Result<BigUint, String> {
        let text = jwk[name]
            .as_str()
            .ok_or_else(|| format!("it has no {name}"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| format!("{name} is not base64url"))?;
        Ok(BigUint::from_bytes_be(&bytes))
    };
    RsaPublicKey::new(component("n")?, component("e")?).map_err(|e| e.to_string())
}

async fn discover_jwks_url(
    token: &FlyToken,
    source: &KeySource,
    http: &reqwest::Client,
) -> Result<String, VerifyError> {
    let iss = token.claims().iss.clone().ok_or(VerifyError::NoIssuer)?;
    let discovery = match &source.discovery_url {
        Some(url) => url.clone(),
        None => format!(
            "{}/.well-known/openid-configuration",
            iss.trim_end_matches('/')
        ),
    };
    let discovery = checked_url(&discovery, source.allow_insecure_http)?;
    let doc = get_json(http, &discovery).await?;
    let discovered = doc["issuer"].as_str().unwrap_or_default();
    if discovered.trim_end_matches('/') != iss.trim_end_matches('/') {
        return Err(VerifyError::IssuerMismatch {
            token_iss: iss,
            discovered: discovered.to_owned(),
        });
    }
    let jwks_uri = doc["jwks_uri"].as_str().ok_or_else(|| VerifyError::Fetch {
        url: display_url(&discovery),
        reason: "the discovery document has no jwks_uri".into(),
    })?;
    checked_url(jwks_uri, source.allow_insecure_http)
}

fn checked_url(raw: &str, allow_insecure: bool) -> Result<String, VerifyError> {
    check_endpoint_url(raw, allow_insecure, PlainHttp::Loopback).map_err(|reason| {
        VerifyError::BadUrl {
            url: display_url(raw),
            reason,
        }
    })
}

/// A transport error and its causes on one line: the last says what failed (a certificate
/// the roots do not sign, a refused connection), which reqwest's own text leaves out.
fn with_causes(err: &reqwest::Error) -> String {
    let chain: Vec<String> =
        std::iter::successors(Some(err as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect();
    fly_oidc::truncate(&chain.join(": "), 400)
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, VerifyError> {
    let fail = |reason: String| VerifyError::Fetch {
        url: display_url(url),
        reason,
    };
    let mut response = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| fail(with_causes(&e)))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(with_causes(&e)))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(fail(format!(
                "the answer is larger than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(fail(format!("HTTP {}", status.as_u16())));
    }
    serde_json::from_slice(&body).map_err(|_| fail("the answer is not JSON".into()))
}

/// `fly-oidc token --verify`: the signature against the issuer's keys from `source`, then
/// the time claims at `now`. Returns a one-line summary (key, JWKS URL, trusted claims);
/// the error says what failed and what to do.
pub async fn verify_token(
    token: &FlyToken,
    source: &KeySource,
    env: &fly_oidc::Env,
    now: SystemTime,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let verified = verify_signature(token, source, &http_client(env)?).await?;
    check_times(token, now).map_err(|e| e.to_string())?;
    Ok(format!(
        "verified: RS256 signature with key {:?} from {}; {}",
        verified.kid,
        verified.jwks_url,
        token.claims().trust_summary()
    ))
}

/// The leeway allowed on `iat`/`nbf` in the future, in seconds (clouds allow a few minutes).
pub const CLOCK_LEEWAY_SECONDS: u64 = 60;

/// A finding on the token's time claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeFinding {
    /// `exp` is in the past by this many seconds.
    Expired(u64),
    /// `iat` or `nbf` is this many seconds in the future (beyond [`CLOCK_LEEWAY_SECONDS`]).
    NotYetValid(u64),
    /// The token has no `exp`.
    NoExpiry,
}

impl fmt::Display for TimeFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeFinding::Expired(secs) => write!(
                f,
                "the token expired {secs} s ago (exp); fetch a fresh one: a copied /.fly/oidc_token is stale within ~10 minutes"
            ),
            TimeFinding::NotYetValid(secs) => write!(
                f,
                "the token is valid only {secs} s from now (iat/nbf); this machine's clock is behind: sync it (NTP)"
            ),
            TimeFinding::NoExpiry => write!(f, "the token has no exp claim; clouds refuse it"),
        }
    }
}

/// Check `exp`, `iat` and `nbf` against `now`.
pub fn check_times(token: &FlyToken, now: SystemTime) -> Result<(), TimeFinding> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let claims = token.claims();
    let exp = claims.exp.ok_or(TimeFinding::NoExpiry)?;
    if exp <= now {
        return Err(TimeFinding::Expired(now - exp));
    }
    let start = claims.nbf.into_iter().chain(claims.iat).max().unwrap_or(0);
    if start > now + CLOCK_LEEWAY_SECONDS {
        return Err(TimeFinding::NotYetValid(start - now));
    }
    Ok(())
}

/// The clock skew between this machine and the issuer, estimated from a freshly minted
/// token's `iat`: positive when `iat` is ahead of this clock, in seconds.
pub fn clock_skew_seconds(token: &FlyToken, now: SystemTime) -> Option<i64> {
    let iat = i64::try_from(token.claims().iat?).ok()?;
    let now = i64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    Some(iat - now)
}

/// An HTTP client for fetching discovery documents and keys (trusting the roots of `env`, as
/// every client does): 5 s to connect, 15 s in all.
pub fn http_client(env: &fly_oidc::Env) -> Result<reqwest::Client, VerifyError> {
    fly_oidc::https_client(env, Duration::from_secs(5), Duration::from_secs(15)).map_err(|e| {
        VerifyError::Fetch {
            url: String::new(),
            reason: format!("could not set up HTTP: {e}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fly_oidc::Env;

    #[test]
    fn key_source_urls_are_endpoint_urls_named_by_their_setting() {
        let none = Env::from_slice(&[]);
        let plain = Some("http://keys.example.com/jwks".to_owned());
        let err = KeySource::new(plain.clone(), None, &none).expect_err("plain http");
        assert_eq!(err.setting().builder_method(), "jwks_url");
        assert_eq!(err.origin(), Some(&Origin::Builder));
        assert!(
            err.reason()
                .starts_with("invalid JWKS URL \"http://keys.example.com/jwks\": "),
            "{err}"
        );
        let err = KeySource::new(None, Some("ftp://keys.example.com/".into()), &none)
            .expect_err("not http");
        assert_eq!(err.setting().builder_method(), "discovery_url");
        assert!(err.reason().starts_with("invalid discovery document URL "));

        let loopback = Some("http://127.0.0.1:8080/jwks".to_owned());
        let source = KeySource::new(loopback.clone(), None, &none).expect("loopback");
        assert_eq!(source.jwks_url, loopback);
        assert!(!source.allow_insecure_http);
        let insecure = Env::from_slice(&[("FLY_OIDC_ALLOW_INSECURE_HTTP", "1")]);
        let source = KeySource::new(plain, None, &insecure).expect("allowed");
        assert!(source.allow_insecure_http);
    }
}
