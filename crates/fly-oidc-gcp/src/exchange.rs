//! The two Google calls: the STS token exchange and IAM `generateAccessToken`.

use crate::resource::WorkloadIdentityProvider;
use crate::settings::Settings;
use crate::{GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT};
use fly_oidc::fs::{ReadError, read_body_capped};
use fly_oidc::{Error, ErrorKind, FlyClaims, Message, RetryConfig, SecretString, truncate};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// The longest federated-token lifetime accepted from Google STS (one day).
const MAX_EXPIRES_IN_SECS: u64 = 24 * 3600;

/// The largest answer read from Google (token responses are well under 4 KiB).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What the errors refer to: the provider, the Fly token's audience and claims.
pub(crate) struct TrustContext<'a> {
    pub provider: &'a WorkloadIdentityProvider,
    pub audience: &'a str,
    pub claims: &'a FlyClaims,
}

impl TrustContext<'_> {
    /// The one cause Google reported (`code` and its `description`), with the value sent,
    /// the setting that controls it and the token's own claim; only for an answer we cannot
    /// tell apart, every place to look.
    fn sts_hint(&self, code: &str, description: &str) -> Message {
        let c = self.claims;
        let issuer = fly_oidc::issuer_url(c.org_slug().unwrap_or("<org slug>"));
        let personal = " (the org *slug* from this token's iss; for a personal org it is not the word \"personal\")";
        let provider = self.provider;
        let description = description.to_ascii_lowercase();
        let setting = crate::settings::PROVIDER;
        match code {
            "invalid_target" => Message::from(format!(
                "the provider {provider} must exist and be enabled ("
            ))
            .setting(setting)
            .text(format!(
                "): check the project number, pool and provider ids \
                 (`gcloud iam workload-identity-pools providers describe {} --workload-identity-pool={} --location=global`), or create it with `fly-oidc gcp setup`",
                provider.provider_id(),
                provider.pool()
            )),
            "invalid_request" if description.contains("audience") => {
                Message::from(format!("the provider {provider} ("))
                    .setting(setting)
                    .text(") must be projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>")
            }
            "invalid_grant" if description.contains("issuer") => format!(
                "the provider {provider} must trust this token's issuer: its issuer (--issuer-uri) must be {issuer}{personal}; the token's iss is {}",
                c.iss.as_deref().unwrap_or("(none)")
            )
            .into(),
            "invalid_grant" if description.contains("audience") => Message::from(format!(
                "the provider {provider}'s allowed audiences must include the audience sent, {aud} (the token's aud; set by ",
                aud = self.audience,
            ))
            .setting(crate::settings::AUDIENCE)
            .text(format!(
                ", default {default}, which empty allowed audiences accept)",
                default = provider.token_audience(),
            )),
            // fly-oidc never sends a token with less than 30 s left by this machine's clock.
            "invalid_grant" if description.contains("expired") => Message::from(format!(
                "the Fly token sent had expired by Google's clock: its exp is {exp} (iss {iss}, sub {sub}), \
                 still valid by this machine's clock, which is probably behind (check its time sync); \
                 a token file (",
                exp = c.exp.map_or_else(
                    || "(none)".to_owned(),
                    |e| fly_oidc::time::format_rfc3339(
                        std::time::UNIX_EPOCH + Duration::from_secs(e)
                    )
                ),
                iss = c.iss.as_deref().unwrap_or("(none)"),
                sub = c.sub.as_deref().unwrap_or("(none)"),
            ))
            .setting(fly_oidc::TOKEN_FILE)
            .text(") must be one Fly's init keeps rewriting"),
            // The scopes, not the token: the trust configuration is not what is wrong.
            "invalid_scope" => Message::from("check the scopes requested (")
                .setting(crate::settings::SCOPES)
                .text(format!(
                    ", or a client's ?scopes=): each must be an OAuth scope Google knows, such as {}",
                    crate::DEFAULT_SCOPE
                )),
            "unauthorized_client" => format!(
                "the attribute condition of {provider} is false for this token's claims (sub={}, app_name={}, org_name={}); test it with `fly-oidc gcp check-condition 'EXPR'`",
                c.sub.as_deref().unwrap_or("(none)"),
                c.app_name.as_deref().unwrap_or("(none)"),
                c.org_name.as_deref().unwrap_or("(none)"),
            )
            .into(),
            _ => format!(
                "check the workload identity pool provider {provider}: its issuer (--issuer-uri) must be {issuer}{personal}; \
                 its allowed audiences must include {aud} (empty allowed audiences accept only {default}); \
                 its attribute condition must accept this token ({summary}, app_name={app}, org_name={org}); \
                 `fly-oidc doctor` walks the whole chain",
                aud = self.audience,
                default = provider.token_audience(),
                summary = c.trust_summary(),
                app = c.app_name.as_deref().unwrap_or("(none)"),
                org = c.org_name.as_deref().unwrap_or("(none)"),
            )
            .into(),
        }
    }

    fn iam_hint(&self, service_account: &str, status: &str) -> String {
        let p = self.provider;
        match status {
            "NOT_FOUND" => format!(
                "check that the service account {service_account} exists (`gcloud iam service-accounts describe {service_account}`)"
            ),
            "UNAUTHENTICATED" => {
                "Google did not accept the federated token from the STS; check the provider's settings and that \
                 the IAM Credentials API (iamcredentials.googleapis.com) is enabled in the project"
                    .to_owned()
            }
            _ => {
                let member = match (&self.claims.app_name, &self.claims.sub) {
                    (Some(app), _) => p.principal_set_for_attribute("app", app),
                    (None, Some(sub)) => p.principal_for_subject(sub),
                    (None, None) => p.principal_set_for_attribute("app", "<app>"),
                };
                format!(
                    "grant the federated identity roles/iam.workloadIdentityUser on the service account: \
                     `gcloud iam service-accounts add-iam-policy-binding {service_account} \
                     --role=roles/iam.workloadIdentityUser --member={member}` (this needs the attribute mapping \
                     attribute.app=assertion.app_name; or use principal://.../subject/<sub>), and enable the IAM \
                     Credentials API (iamcredentials.googleapis.com)"
                )
            }
        }
    }
}

/// The STS answer.
pub(crate) struct Federated {
    pub access_token: SecretString,
    pub expires_in: Duration,
}

/// The IAM answer.
pub(crate) struct Impersonated {
    pub access_token: SecretString,
    pub expires_at: SystemTime,
}

/// Google's endpoints, as one provider calls them for one Fly token.
pub(crate) struct Http<'a> {
    pub client: &'a reqwest::Client,
    pub retry: &'a RetryConfig,
    pub settings: &'a Settings,
    pub ctx: TrustContext<'a>,
}

impl Http<'_> {
    /// Send `request()` until it succeeds or fails for a reason that is not transient.
    async fn send(
        &self,
        call: GoogleCall,
        url: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
        classify: impl Fn(u16, &[u8]) -> Result<Value, Error>,
    ) -> Result<Value, Error> {
        let what = call.service();
        self.retry
            .run(&format!("calling {what}"), Error::is_transient, || async {
                match request().send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match read_body_capped(response, MAX_RESPONSE_BYTES).await {
                            Ok(body) => classify(status, &body),
                            Err(ReadError::Http(e)) => Err(transport(call, url, e)),
                            Err(e) => Err(Error::new(
                                ErrorKind::InvalidResponse,
                                format!(
                                    "{what} answered {status} with {e}; that is not a token \
                                     response, is the endpoint URL right?"
                                ),
                            )
                            .with_status(status)),
                        }
                    }
                    Err(e) => Err(transport(call, url, e)),
                }
            })
            .await
    }

    pub(crate) async fn sts_exchange(
        &self,
        subject_token: &str,
        scopes: &[String],
    ) -> Result<Federated, Error> {
        let (sts_url, ctx) = (self.settings.sts_url(), &self.ctx);
        let audience = ctx.provider.sts_audience();
        let scope = scopes.join(" ");
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", GRANT_TYPE_TOKEN_EXCHANGE)
                .append_pair("audience", &audience)
                .append_pair("requested_token_type", TOKEN_TYPE_ACCESS_TOKEN)
                .append_pair("subject_token_type", TOKEN_TYPE_JWT);
            if !scope.is_empty() {
                form.append_pair("scope", &scope);
            }
            form.append_pair("subject_token", subject_token);
            SecretString::new(form.finish())
        };
        tracing::debug!(sts_url, %audience, %scope, "exchanging the Fly token at Google STS");
        let value = self
            .send(
                GoogleCall::TokenExchange,
                sts_url,
                || {
                    self.client
                        .post(sts_url)
                        .header(
                            reqwest::header::CONTENT_TYPE,
                            "application/x-www-form-urlencoded",
                        )
                        .header(reqwest::header::ACCEPT, "application/json")
                        .body(body.expose_secret().to_owned())
                },
                |status, body| classify_sts(status, body, ctx),
            )
            .await?;
        federated_from(&value)
    }

    pub(crate) async fn generate_access_token(
        &self,
        service_account: &str,
        federated: &SecretString,
        scopes: &[String],
        lifetime: Duration,
    ) -> Result<Impersonated, Error> {
        tracing::debug!(service_account, "impersonating the service account");
        let lifetime = format!("{}s", lifetime.as_secs());
        let body = serde_json::json!({ "scope": scopes, "lifetime": lifetime });
        let value = self
            .iam_call(service_account, "generateAccessToken", federated, body)
            .await?;
        impersonated_from(&value)
    }

    /// POST the JSON `body` to the IAM Credentials `method` (`generateAccessToken`,
    /// `generateIdToken`) of `service_account`, authorised with the federated token; the 200
    /// answer's JSON, or the classified error.
    pub(crate) async fn iam_call(
        &self,
        service_account: &str,
        method: &str,
        federated: &SecretString,
        body: Value,
    ) -> Result<Value, Error> {
        let url = self.settings.iam_method_url(service_account, method);
        tracing::debug!(%url, "calling IAM Credentials");
        let body = body.to_string();
        self.send(
            GoogleCall::Impersonation,
            &url,
            || {
                self.client
                    .post(&url)
                    .bearer_auth(federated.expose_secret())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(body.clone())
            },
            |status, body| {
                // An endpoint that echoes the request would show the federated token.
                let body = match status {
                    200 => body.to_vec(),
                    _ => fly_oidc::redact_secret(
                        &String::from_utf8_lossy(body),
                        federated.expose_secret(),
                    )
                    .into_bytes(),
                };
                classify_iam(status, &body, service_account, &self.ctx)
            },
        )
        .await
    }
}

/// The token and lifetime in a 200 answer from Google STS.
fn federated_from(value: &Value) -> Result<Federated, Error> {
    let what = GoogleCall::TokenExchange.service();
    let token = access_token(value, what, "access_token")?;
    let expires_in = match value.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid(what, "it has no numeric \"expires_in\""))?;
    // Google's federated tokens live an hour; anything beyond a day is not a real answer
    // (and an absurd one must not overflow the expiry time).
    if expires_in > MAX_EXPIRES_IN_SECS {
        return Err(invalid(what, "its \"expires_in\" is more than a day"));
    }
    Ok(Federated {
        access_token: SecretString::new(token),
        expires_in: Duration::from_secs(expires_in),
    })
}

/// The token and expiry in a 200 answer from IAM Credentials `generateAccessToken`.
fn impersonated_from(value: &Value) -> Result<Impersonated, Error> {
    let what = GoogleCall::Impersonation.service();
    let token = access_token(value, what, "accessToken")?;
    let expires_at = value
        .get("expireTime")
        .and_then(Value::as_str)
        .and_then(fly_oidc::time::parse_rfc3339)
        .ok_or_else(|| invalid(what, "it has no RFC 3339 \"expireTime\""))?;
    Ok(Impersonated {
        access_token: SecretString::new(token),
        expires_at,
    })
}

/// Entry points for the fuzz targets (`fuzz/`): Google's answers, whatever their status and
/// body, become a token or an error, never a panic. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    fn with_context<R>(f: impl FnOnce(&TrustContext<'_>) -> R) -> R {
        let provider = WorkloadIdentityProvider::parse(
            "projects/123456789/locations/global/workloadIdentityPools/fly/providers/acme",
        )
        .expect("a valid provider name");
        let claims = FlyClaims::default();
        f(&TrustContext {
            provider: &provider,
            audience: "https://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/fly/providers/acme",
            claims: &claims,
        })
    }

    /// Parse a Google STS answer; `Ok` carries the token's lifetime.
    pub fn sts_response(status: u16, body: &[u8]) -> Result<Duration, Error> {
        with_context(|ctx| {
            classify_sts(status, body, ctx)
                .and_then(|v| federated_from(&v))
                .map(|f| f.expires_in)
        })
    }

    /// Parse an IAM Credentials answer; `Ok` carries the token's expiry.
    pub fn iam_response(status: u16, body: &[u8]) -> Result<SystemTime, Error> {
        with_context(|ctx| {
            classify_iam(status, body, "app@project.iam.gserviceaccount.com", ctx)
                .and_then(|v| impersonated_from(&v))
                .map(|i| i.expires_at)
        })
    }
}

/// The non-empty access token in `field` of a 200 answer from `what`.
pub(crate) fn access_token<'a>(
    value: &'a Value,
    what: &str,
    field: &str,
) -> Result<&'a str, Error> {
    value
        .get(field)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid(what, &format!("it has no \"{field}\"")))
}

pub(crate) fn invalid(what: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidResponse,
        format!("{what} answered 200 but {why}; is the endpoint URL right?"),
    )
}

/// A request to `call`'s service at `url` that got no answer: transient, naming the setting of
/// that URL.
fn transport(call: GoogleCall, url: &str, err: reqwest::Error) -> Error {
    let what = call.service();
    let setting = match call {
        GoogleCall::TokenExchange => crate::settings::STS_URL,
        GoogleCall::Impersonation => crate::settings::IAM_URL,
    };
    let why = if err.is_timeout() {
        "the request timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed".to_owned()
    };
    let url = url.split('?').next().unwrap_or_default();
    let message = Message::from(format!(
        "calling {what} at {url} failed: {why} ({err}); this is usually transient, try again \
         later (check network access to it, and its URL: "
    ));
    Error::new(ErrorKind::Transient, message.setting(setting).text(")")).with_source(err)
}

fn parse_json(what: &str, status: u16, body: &[u8]) -> Result<Value, Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Error::new(
            ErrorKind::InvalidResponse,
            format!(
                "{what} answered {status} with a body that is not a JSON object ({}); is the endpoint URL right?",
                snippet(body)
            ),
        )
        .with_status(status)),
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "empty".to_owned()
    } else {
        format!("{:?}", truncate(&fly_oidc::redact_jwts(text), 200))
    }
}

fn retryable(what: &str, status: u16, detail: &str) -> Error {
    Error::new(
        ErrorKind::Transient,
        format!("{what} answered {status} ({detail}); this is usually temporary, try again later"),
    )
    .with_status(status)
}

fn classify_sts(status: u16, body: &[u8], ctx: &TrustContext<'_>) -> Result<Value, Error> {
    let what = GoogleCall::TokenExchange.service();
    if status == 200 {
        return parse_json(what, status, body);
    }
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let code = value
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| match e {
            Value::String(s) => Some(s.clone()),
            // Some Google front ends answer in the API error format.
            Value::Object(o) => o.get("status").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        });
    let description = value
        .as_ref()
        .and_then(|v| {
            v.get("error_description")
                .or_else(|| v.get("error").and_then(|e| e.get("message")))
        })
        .and_then(Value::as_str)
        .map(|d| truncate(d.trim(), 200))
        .unwrap_or_else(|| snippet(body));
    if status == 429 || status >= 500 {
        return Err(retryable(what, status, &description));
    }
    // A 404 without an OAuth error code (RFC 6749 section 5.2, RFC 8693 section 2.2.2): not
    // Google STS's token endpoint at all, so the URL is what is wrong, not the trust settings.
    const OAUTH_CODES: &[&str] = &[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
    ];
    if status == 404 && !code.as_deref().is_some_and(|c| OAUTH_CODES.contains(&c)) {
        let why = Message::from(format!(
            "{what} answered HTTP 404 ({description}), which is not a token exchange answer; check the STS URL ("
        ))
        .setting(crate::settings::STS_URL)
        .text(format!(", default {})", crate::DEFAULT_STS_URL));
        return Err(Error::new(ErrorKind::InvalidResponse, why).with_status(status));
    }
    let code = code.unwrap_or_else(|| format!("HTTP {status}"));
    // The provider does not trust this token (or does not exist): the trust configuration
    // must change. Anything else is a request Google refused for another reason.
    let kind = match code.as_str() {
        "invalid_grant" | "unauthorized_client" | "invalid_target" => ErrorKind::TrustRejected,
        _ => ErrorKind::Rejected,
    };
    let hint = ctx.sts_hint(&code, &description);
    Err(Error::new(
        kind,
        Message::from(format!(
            "{what} rejected the Fly token ({code}: {description}); "
        ))
        .append(hint),
    )
    .with_status(status)
    .with_code(code)
    .with_refused_by(what))
}

fn classify_iam(
    status: u16,
    body: &[u8],
    service_account: &str,
    ctx: &TrustContext<'_>,
) -> Result<Value, Error> {
    let what = GoogleCall::Impersonation.service();
    if status == 200 {
        return parse_json(what, status, body);
    }
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let error = value.as_ref().and_then(|v| v.get("error"));
    let google_status = error
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| match status {
            401 => "UNAUTHENTICATED".into(),
            403 => "PERMISSION_DENIED".into(),
            404 => "NOT_FOUND".into(),
            _ => format!("HTTP {status}"),
        });
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(|m| truncate(m.trim(), 200))
        .unwrap_or_else(|| snippet(body));
    if status == 429 || status >= 500 {
        return Err(retryable(what, status, &message));
    }
    // 401/403: the federated identity may not impersonate the account (the trust
    // configuration); 404: the account does not exist.
    let kind = match status {
        401 | 403 => ErrorKind::TrustRejected,
        _ => ErrorKind::Rejected,
    };
    let hint = if matches!(status, 401 | 403 | 404) {
        ctx.iam_hint(service_account, &google_status)
    } else {
        "check the scopes and the token lifetime (at most 3600s unless the org policy \
         constraints/iam.allowServiceAccountCredentialLifetimeExtension allows more)"
            .to_owned()
    };
    Err(Error::new(
        kind,
        format!(
            "{what} refused to impersonate {service_account} ({google_status}: {message}); {hint}"
        ),
    )
    .with_status(status)
    .with_code(google_status)
    .with_refused_by(what))
}

/// The Google call that refused a request (answered with a 4xx other than throttling), for
/// a front end that names the failed step: read it from an error of this crate with
/// [`GoogleCall::refused`]. Set where the answer is classified, never read from a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GoogleCall {
    /// The RFC 8693 token exchange at Google STS (`sts.googleapis.com/v1/token`).
    TokenExchange,
    /// A call to IAM Credentials for the service account (`generateAccessToken`,
    /// `generateIdToken`): the impersonation.
    Impersonation,
}

impl GoogleCall {
    /// The call that refused the request `err` reports; `None` when no Google call refused
    /// it (a Fly token failure, a transient failure, an invalid answer).
    pub fn refused(err: &Error) -> Option<Self> {
        [Self::TokenExchange, Self::Impersonation]
            .into_iter()
            .find(|call| err.refused_by() == Some(call.service()))
    }

    /// The service that answers the call, as messages name it: `Google STS`,
    /// `Google IAM Credentials`.
    pub(crate) fn service(self) -> &'static str {
        match self {
            Self::TokenExchange => "Google STS",
            Self::Impersonation => "Google IAM Credentials",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fuzzing;

    /// Which call refused is structured: a refusal of each service says which; a
    /// transient failure of the same service names none.
    #[test]
    fn a_refusal_names_the_google_call_that_refused() {
        use super::GoogleCall;
        let sts =
            fuzzing::sts_response(400, br#"{"error":"invalid_grant","error_description":"x"}"#);
        let sts = sts.expect_err("a 400 is refused");
        assert_eq!(GoogleCall::refused(&sts), Some(GoogleCall::TokenExchange));
        let iam = fuzzing::iam_response(403, br#"{"error":{"status":"PERMISSION_DENIED"}}"#);
        let iam = iam.expect_err("a 403 is refused");
        assert_eq!(GoogleCall::refused(&iam), Some(GoogleCall::Impersonation));
        let busy = fuzzing::sts_response(503, b"{}").expect_err("a 503 fails");
        assert_eq!(GoogleCall::refused(&busy), None);
    }

    /// A 404 that is no OAuth error (another server's "not found", an HTML page) names the STS
    /// URL, not the provider's trust settings; Google's own `invalid_target` 404 stays a
    /// trust rejection.
    #[test]
    fn a_404_that_is_no_oauth_error_blames_the_sts_url() {
        for body in [&br#"{"error":"not found"}"#[..], b"<html>Not Found</html>"] {
            let err = fuzzing::sts_response(404, body).expect_err("a 404 fails");
            assert_eq!(err.kind(), fly_oidc::ErrorKind::InvalidResponse, "{err}");
            let text = err.to_string();
            assert!(
                text.contains("check the STS URL (Builder::sts_url"),
                "{text}"
            );
            assert!(!text.contains("allowed audiences"), "{text}");
        }
        let target = br#"{"error":"invalid_target","error_description":"no such provider"}"#;
        let err = fuzzing::sts_response(404, target).expect_err("no such provider");
        assert_eq!(err.kind(), fly_oidc::ErrorKind::TrustRejected, "{err}");
    }

    /// An invalid scope names the scopes, not the provider's trust settings.
    #[test]
    fn an_invalid_scope_names_the_scopes() {
        let body = br#"{"error":"invalid_scope","error_description":"Invalid scope."}"#;
        let err = fuzzing::sts_response(400, body).expect_err("a 400 is refused");
        let message = err.to_string();
        assert!(
            message.contains("check the scopes requested (Builder::scopes"),
            "{message}"
        );
        assert!(!message.contains("allowed audiences"), "{message}");
        assert_eq!(err.code(), Some("invalid_scope"));
        assert_eq!(err.status(), Some(400));
    }

    #[test]
    fn an_absurd_expires_in_is_an_error_not_an_overflow() {
        let err = fuzzing::sts_response(
            200,
            br#"{"access_token":"x","expires_in":18446744073709551615}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("more than a day"), "{err}");
        let ok = fuzzing::sts_response(200, br#"{"access_token":"x","expires_in":"3599"}"#);
        assert_eq!(ok.unwrap().as_secs(), 3599);
    }

    /// A rejected audience names the Google builder's own setting (`Builder::audience`, which
    /// a front end renames to its Google flag), never the Fly token's or AWS's variable.
    #[test]
    fn a_rejected_audience_names_the_google_audience_setting() {
        let body = br#"{"error":"invalid_grant","error_description":"The audience in ID Token [x] does not match the expected audience."}"#;
        let err = fuzzing::sts_response(400, body).expect_err("a 400 is refused");
        let message = err.to_string();
        assert!(
            message.contains("the audience sent, https://iam.googleapis.com/projects/123456789/")
                && message.contains("(the token's aud; set by Builder::audience, default "),
            "{message}"
        );
        assert!(!message.contains("FLY_OIDC_AUDIENCE"), "{message}");
        assert!(!message.contains("--audience"), "{message}");
    }

    /// Google unreachable: the message names the URL setting of the call that failed as a
    /// library user sets it, with its variable (a front end renames the method to its flag).
    #[tokio::test]
    async fn an_unreachable_google_names_its_url_setting() {
        use super::{GoogleCall, transport};
        use std::time::Duration;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!(
            "http://{}/v1/token",
            listener.local_addr().expect("its address")
        );
        drop(listener);
        let env = fly_oidc::Env::from_slice(&[]);
        let client = fly_oidc::https_client(&env, Duration::from_secs(5), Duration::from_secs(5))
            .expect("an HTTP client");
        for (call, setting, other) in [
            (
                GoogleCall::TokenExchange,
                "Builder::sts_url or FLY_OIDC_GCP_STS_URL",
                "iam_url",
            ),
            (
                GoogleCall::Impersonation,
                "Builder::iam_url or FLY_OIDC_GCP_IAM_URL",
                "sts_url",
            ),
        ] {
            let refused = client.post(&url).send().await;
            let err = transport(call, &url, refused.expect_err("nothing listens"));
            let message = err.to_string();
            assert!(err.is_transient(), "{message}");
            assert!(
                message.contains(&format!(
                    "check network access to it, and its URL: {setting})"
                )),
                "{message}"
            );
            assert!(!message.contains(other), "{message}");
            assert!(!message.contains("sts_url / iam_url"), "{message}");
        }
    }

    #[test]
    fn google_error_codes_never_carry_a_token() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let body = format!(r#"{{"error":"{jwt}","error_description":"echo {jwt}"}}"#);
        let err = fuzzing::sts_response(400, body.as_bytes()).unwrap_err();
        assert!(!format!("{err:?}").contains("c2lnbmF0dXJl"), "{err:?}");
        assert!(!err.code().unwrap_or_default().contains("eyJ"));
    }
}
