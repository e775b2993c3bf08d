//! Google-signed ID tokens for a service account: IAM Credentials `generateIdToken`,
//! authorised with the federated token of a Fly token's STS exchange. What the metadata
//! server's `.../identity?audience=A` answers on Google Cloud.

use crate::exchange::{GoogleCall, Http, access_token, invalid};
use crate::provider::AccessToken;
use fly_oidc::{Error, FlyToken, REDACTED, SecretString};
use std::fmt;
use std::time::SystemTime;

/// A Google-signed OpenID Connect ID token (a JWT whose `aud` is the audience asked for, `iss`
/// `https://accounts.google.com`, `email` the service account) and when it expires (its `exp`).
///
/// `Debug` and `Display` never show the token.
///
/// ```
/// # use std::time::{Duration, UNIX_EPOCH};
/// let token = fly_oidc_gcp::IdToken::new("eyJ.secret.sig", UNIX_EPOCH + Duration::from_secs(60));
/// assert!(!format!("{token:?} {token}").contains("secret"));
/// assert_eq!(token.expose_secret(), "eyJ.secret.sig");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IdToken(AccessToken);

impl IdToken {
    /// An ID token that expires at `expires_at`.
    pub fn new(token: impl Into<SecretString>, expires_at: SystemTime) -> Self {
        Self(AccessToken::new(token, expires_at))
    }

    /// The JWT. Never log it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// When it expires (its `exp` claim).
    pub fn expires_at(&self) -> SystemTime {
        self.0.expires_at()
    }
}

impl fmt::Debug for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdToken")
            .field("token", &REDACTED)
            .field(
                "expires_at",
                &fly_oidc::time::format_rfc3339(self.expires_at()),
            )
            .finish()
    }
}

impl fmt::Display for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Http<'_> {
    /// `POST {iam_url}/v1/projects/-/serviceAccounts/{service_account}:generateIdToken` with
    /// `{"audience", "includeEmail": true}`, authorised with the federated token; Google
    /// answers `{"token": JWT}` and the expiry is the JWT's `exp`. Errors as for
    /// `generateAccessToken` (a refusal names the `roles/iam.workloadIdentityUser` binding),
    /// and [`fly_oidc::ErrorKind::InvalidResponse`] for an answer that is not a JWT with `exp`.
    pub(crate) async fn generate_id_token(
        &self,
        service_account: &str,
        federated: &SecretString,
        audience: &str,
    ) -> Result<IdToken, Error> {
        tracing::debug!(audience, "asking for an ID token of the service account");
        let body = serde_json::json!({ "audience": audience, "includeEmail": true });
        let value = self
            .iam_call(service_account, "generateIdToken", federated, body)
            .await?;
        let what = format!("{} generateIdToken", GoogleCall::Impersonation.service());
        let token = access_token(&value, &what, "token")?;
        let expires_at = FlyToken::parse(token)
            .ok()
            .and_then(|jwt| jwt.expires_at())
            .ok_or_else(|| invalid(&what, "its \"token\" is not a JWT with an \"exp\""))?;
        Ok(IdToken::new(token, expires_at))
    }
}
