//! RS256 signing and verification for the fakes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::rand_core::{OsRng, RngCore};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::sync::{Arc, OnceLock};

/// A signing key with its key id and public JWK.
pub(crate) struct KeyMaterial {
    signing: SigningKey<Sha256>,
    pub(crate) kid: String,
    pub(crate) jwk: Value,
}

impl KeyMaterial {
    /// One 2048-bit key per process (generation is slow; every fake shares it).
    pub(crate) fn shared() -> Arc<KeyMaterial> {
        static KEY: OnceLock<Arc<KeyMaterial>> = OnceLock::new();
        KEY.get_or_init(|| {
            let private = RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key generation");
            let public = RsaPublicKey::from(&private);
            let kid = format!("testkit-{}", random_hex(8));
            let jwk = json!({
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            });
            Arc::new(KeyMaterial {
                signing: SigningKey::<Sha256>::new(private),
                kid,
                jwk,
            })
        })
        .clone()
    }

    pub(crate) fn sign(&self, claims: &Map<String, Value>) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
        );
        let signature = self.signing.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Verify an RS256 JWT against a JWKS (`{"keys": [...]}`) and return its claims.
///
/// The key is chosen by the header's `kid`. Only the signature is checked here; callers
/// check `iss`, `aud` and `exp` as the service they fake would.
pub fn verify_rs256(jwt: &str, jwks: &Value) -> Result<Map<String, Value>, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
        return Err("the token is not three dot-separated parts".into());
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| format!("the {what} is not base64url"))
    };
    let header: Value = serde_json::from_slice(&decode(header_b64, "header")?)
        .map_err(|_| "the header is not JSON".to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("unsupported alg {}", header["alg"]));
    }
    let kid = header["kid"]
        .as_str()
        .ok_or("the header has no kid".to_string())?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .ok_or_else(|| format!("no key with kid {kid:?} in the JWKS"))?;
    let component = |name: &str| -> Result<BigUint, String> {
        let text = jwk[name]
            .as_str()
            .ok_or_else(|| format!("the JWK has no {name}"))?;
        Ok(BigUint::from_bytes_be(&decode(text, name)?))
    };
    let public =
        RsaPublicKey::new(component("n")?, component("e")?).map_err(|e| format!("bad JWK: {e}"))?;
    let signature = Signature::try_from(decode(signature_b64, "signature")?.as_slice())
        .map_err(|_| "malformed signature".to_string())?;
    VerifyingKey::<Sha256>::new(public)
        .verify(format!("{header_b64}.{payload_b64}").as_bytes(), &signature)
        .map_err(|_| "the signature does not verify".to_string())?;
    match serde_json::from_slice(&decode(payload_b64, "payload")?) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err("the payload is not a JSON object".into()),
    }
}
