//! A fake Google Security Token Service and IAM Service Account Credentials API.
//!
//! [`FakeGoogle`] serves, on `127.0.0.1`:
//! - `POST /v1/token`: the STS token exchange (RFC 8693). It verifies the subject token's
//!   RS256 signature against the fake Fly API's JWKS and checks `grant_type`,
//!   `requested_token_type`, `subject_token_type`, `audience` (the provider), and the token's
//!   `iss`, `aud`, `exp`/`iat` and an optional attribute condition, answering as Google
//!   does: `{"access_token", "issued_token_type", "token_type", "expires_in"}` or a 400
//!   with `{"error": "invalid_grant", "error_description": ...}`.
//! - `POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken`: impersonation, with
//!   the STS token as bearer; `{"accessToken", "expireTime"}` or a Google API error such as
//!   `{"error": {"code": 403, "message": ..., "status": "PERMISSION_DENIED"}}`.
//! - `POST /v1/introspect`: token introspection (gcloud asks it for the account name).
//! - `POST /v1/projects/-/serviceAccounts/<email>:generateIdToken`: a Google-signed ID token
//!   (an RS256 JWT, the testkit's key: [`FakeGoogle::id_token_jwks`]) for `{"audience",
//!   "includeEmail"}`, with the STS token as bearer; `{"token"}`.
//!
//! ```
//! use fly_oidc_testkit::FakeFlyApi;
//! use fly_oidc_testkit::google::FakeGoogle;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! let fly = FakeFlyApi::builder().org("acme").start().await?;
//! let google = FakeGoogle::builder(&fly)
//!     .service_account("reader@proj.iam.gserviceaccount.com")
//!     .start()
//!     .await?;
//! // Point the code under test at google.sts_url() and google.iam_url(), and
//! // mint Fly tokens for google.token_audience().
//! assert_eq!(google.sts_url(), format!("{}/v1/token", google.url()));
//! # Ok(()) }
//! ```
//!
//! Like [`FakeFlyApi`], it runs on its own thread and runtime and stops
//! when dropped.

use crate::fault::{Fault, FaultQueue};
use crate::fly_api::FakeFlyApi;
use crate::jwt::random_hex;
use crate::server::{self, Bound, Clock, Handler, RequestLog, TestBody, Wire, lock, respond};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// The default provider: `projects/123456789012/locations/global/workloadIdentityPools/fly-pool/providers/<org>`.
pub fn default_provider(org: &str) -> String {
    format!("projects/123456789012/locations/global/workloadIdentityPools/fly-pool/providers/{org}")
}

/// How the fake Google writes the faults every fake answers alike.
const WIRE: Wire = Wire {
    error_type: JSON_TYPE,
    body_type: JSON_TYPE,
    malformed: (JSON_TYPE, "{\"access_token\": <html>oops"),
    reset_prefix: b"{\"access_token\": \"ya29.",
};

const JSON_TYPE: &str = "application/json; charset=utf-8";

/// Which API a request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/token`.
    Sts,
    /// `POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken`.
    GenerateAccessToken,
    /// `POST /v1/introspect`.
    Introspect,
    /// `POST /v1/projects/-/serviceAccounts/<email>:generateIdToken`.
    GenerateIdToken,
    /// Anything else (answered 404).
    Other,
}

/// A request the fake received. Holds tokens: for tests only.
#[derive(Clone, Debug)]
pub struct GoogleRequest {
    /// Which API.
    pub endpoint: Endpoint,
    /// The request path.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// Form fields (STS, introspection) in order.
    pub form: Vec<(String, String)>,
    /// The JSON body (IAM).
    pub json: Option<Value>,
    /// The status answered.
    pub status: u16,
    /// The OAuth `error` or API `status` answered, if any.
    pub error: Option<String>,
}

impl GoogleRequest {
    /// The first form field called `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An access token the fake issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token.
    pub token: String,
    /// `None` for a federated (STS) token, else the impersonated service account.
    pub service_account: Option<String>,
    /// The Fly token's `sub`.
    pub subject: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When it expires.
    pub expires_at: SystemTime,
}

type Condition = Arc<dyn Fn(&Map<String, Value>) -> bool + Send + Sync>;

/// Configures a [`FakeGoogle`].
#[derive(Clone)]
pub struct FakeGoogleBuilder {
    jwks: Value,
    issuer: String,
    provider: String,
    allowed_audiences: Option<Vec<String>>,
    condition: Option<Condition>,
    service_accounts: Vec<String>,
    token_lifetime: Duration,
    clock: Clock,
}

server::builder_methods! {
    /// The clock (default: the system clock).
    FakeGoogleBuilder => FakeGoogle, thread "fake-google", unix socket false, setup
}

server::debug_fields! {
    FakeGoogleBuilder, |b| issuer, provider, allowed_audiences, service_accounts
}

impl FakeGoogleBuilder {
    /// A fake trusting `issuer` with keys `jwks`, for the default provider of org `org`.
    pub fn new(jwks: Value, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let org = issuer.rsplit('/').next().unwrap_or("acme").to_owned();
        Self {
            jwks,
            issuer,
            provider: default_provider(&org),
            allowed_audiences: None,
            condition: None,
            service_accounts: Vec::new(),
            token_lifetime: Duration::from_secs(3600),
            clock: Clock::default(),
        }
    }

    server::setters! {
        /// The provider name (default [`default_provider`] of the issuer's org).
        provider: (String),
        /// The issuer the provider trusts (default: the Fly API's).
        issuer: (String),
        /// The lifetime of STS tokens (default 1 hour; `expires_in` is one second less, as Google's).
        token_lifetime: (Duration),
    }

    /// The provider's allowed audiences (default, as Google: `https://iam.googleapis.com/<provider>`
    /// and `//iam.googleapis.com/<provider>`).
    pub fn allowed_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_audiences = Some(audiences.into_iter().map(Into::into).collect());
        self
    }

    /// The attribute condition: a predicate on the token's claims (default: accept all).
    pub fn attribute_condition(
        mut self,
        condition: impl Fn(&Map<String, Value>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.condition = Some(Arc::new(condition));
        self
    }

    /// Allow the pool's principals to impersonate this service account (repeatable).
    pub fn service_account(mut self, email: impl Into<String>) -> Self {
        self.service_accounts.push(email.into());
        self
    }
}

/// A fake Google with the settings `config`, listening where `bound` says: its handle and
/// its request handler.
fn setup(config: FakeGoogleBuilder, bound: Bound) -> (FakeGoogle, Handler) {
    let state = Arc::new(State {
        config,
        sts_faults: FaultQueue::default(),
        iam_faults: FaultQueue::default(),
        requests: RequestLog::default(),
        tokens: Mutex::new(HashMap::new()),
        issued: Mutex::new(Vec::new()),
        sts_count: AtomicUsize::new(0),
        iam_count: AtomicUsize::new(0),
    });
    let handler = server::handler(state.clone(), handle);
    (FakeGoogle { state, bound }, handler)
}

struct State {
    config: FakeGoogleBuilder,
    sts_faults: FaultQueue,
    iam_faults: FaultQueue,
    requests: RequestLog<GoogleRequest>,
    tokens: Mutex<HashMap<String, IssuedToken>>,
    issued: Mutex<Vec<String>>,
    sts_count: AtomicUsize,
    iam_count: AtomicUsize,
}

impl State {
    fn now(&self) -> SystemTime {
        self.config.clock.now()
    }

    fn allowed_audiences(&self) -> Vec<String> {
        self.config.allowed_audiences.clone().unwrap_or_else(|| {
            vec![
                format!("https://iam.googleapis.com/{}", self.config.provider),
                format!("//iam.googleapis.com/{}", self.config.provider),
            ]
        })
    }

    fn issue(&self, prefix: &str, token: IssuedToken) -> String {
        let value = format!("ya29.{prefix}-{}", random_hex(24));
        let token = IssuedToken {
            token: value.clone(),
            ..token
        };
        lock(&self.tokens).insert(value.clone(), token);
        lock(&self.issued).push(value.clone());
        value
    }
}

/// A running fake Google STS + IAM Credentials API. See the [module docs](self).
#[derive(Clone)]
pub struct FakeGoogle {
    state: Arc<State>,
    bound: Bound,
}

server::debug_fields! { FakeGoogle, |g| url: g.url(), provider: g.state.config.provider }

impl FakeGoogle {
    /// A builder trusting `fly`'s issuer and keys.
    pub fn builder(fly: &FakeFlyApi) -> FakeGoogleBuilder {
        FakeGoogleBuilder::new(fly.jwks(), fly.issuer())
    }

    /// The base URL, `http://127.0.0.1:PORT` (the IAM Credentials base URL too).
    pub fn url(&self) -> String {
        self.bound.url()
    }

    /// The STS token endpoint, `<url>/v1/token`.
    pub fn sts_url(&self) -> String {
        format!("{}/v1/token", self.url())
    }

    /// The IAM Credentials base URL (same as [`url`](Self::url)).
    pub fn iam_url(&self) -> String {
        self.url()
    }

    /// The introspection endpoint, `<url>/v1/introspect`.
    pub fn introspect_url(&self) -> String {
        format!("{}/v1/introspect", self.url())
    }

    /// The impersonation URL of `email`, as in a credential configuration.
    pub fn impersonation_url(&self, email: &str) -> String {
        format!(
            "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            self.url()
        )
    }

    /// The provider name, `projects/<n>/locations/global/workloadIdentityPools/<pool>/providers/<id>`.
    pub fn provider(&self) -> &str {
        &self.state.config.provider
    }

    /// The STS `audience`: `//iam.googleapis.com/<provider>`.
    pub fn sts_audience(&self) -> String {
        format!("//iam.googleapis.com/{}", self.state.config.provider)
    }

    /// The default Fly token audience: `https://iam.googleapis.com/<provider>`.
    pub fn token_audience(&self) -> String {
        format!("https://iam.googleapis.com/{}", self.state.config.provider)
    }

    /// Every request received (to every endpoint), in order of their answers.
    pub fn requests(&self) -> Vec<GoogleRequest> {
        self.state.requests.records()
    }

    /// How many STS token exchanges (`POST /v1/token`) were received, whatever the answer.
    pub fn request_count(&self) -> usize {
        self.state.sts_count.load(Ordering::SeqCst)
    }

    /// How many `generateAccessToken` calls were received, whatever the answer.
    pub fn iam_request_count(&self) -> usize {
        self.state.iam_count.load(Ordering::SeqCst)
    }

    /// Every access token issued (STS and impersonated), for leak scans.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// What the fake knows about an access token it issued.
    pub fn token_info(&self, token: &str) -> Option<IssuedToken> {
        lock(&self.state.tokens).get(token).cloned()
    }

    /// Make the next `n` STS token exchanges fail with `fault` (after any faults already
    /// queued). [`Fault::Error`] answers Google's OAuth error,
    /// `{"error": code, "error_description": message}`; [`Fault::Echo`] quotes the request's
    /// `Authorization` header and body.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.state.sts_faults.push(n, fault);
    }

    /// Script the next STS token exchanges: the i-th fault applies to the i-th next one.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.sts_faults.script(faults);
    }

    /// Make the next `n` `generateAccessToken` requests fail with `fault` (after any faults
    /// already queued). [`Fault::Error`] answers Google's API error,
    /// `{"error": {"code": status, "message": message, "status": code}}`.
    pub fn fail_next_iam(&self, n: usize, fault: Fault) {
        self.state.iam_faults.push(n, fault);
    }

    /// Drop any queued faults, of both endpoints.
    pub fn clear_faults(&self) {
        self.state.sts_faults.clear();
        self.state.iam_faults.clear();
    }
}

/// A Google-style 503 body of the IAM API (also what the STS front end sends).
pub fn unavailable_body() -> String {
    json!({"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}})
        .to_string()
}

fn oauth_error(code: &str, description: &str) -> (u16, String, Option<String>) {
    oauth_error_status(400, code, description)
}

fn oauth_error_status(status: u16, code: &str, description: &str) -> (u16, String, Option<String>) {
    (
        status,
        json!({ "error": code, "error_description": description }).to_string(),
        Some(code.to_owned()),
    )
}

fn api_error(code: u16, status: &str, message: &str) -> (u16, String, Option<String>) {
    let mut error = json!({ "code": code, "message": message, "status": status });
    if status == "PERMISSION_DENIED" {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "iam.googleapis.com",
            "metadata": { "permission": "iam.serviceAccounts.getAccessToken" }
        }]);
    }
    (
        code,
        json!({ "error": error }).to_string(),
        Some(status.to_owned()),
    )
}

async fn handle(req: Request<Incoming>, _unix: bool, state: Arc<State>) -> Response<TestBody> {
    let state = &*state;
    let path = req.uri().path().to_owned();
    let method = req.method().as_str().to_owned();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let content_type = header("content-type");
    let endpoint = if path == "/v1/token" {
        Endpoint::Sts
    } else if path == "/v1/introspect" {
        Endpoint::Introspect
    } else if path.starts_with("/v1/projects/-/serviceAccounts/")
        && path.ends_with(":generateAccessToken")
    {
        Endpoint::GenerateAccessToken
    } else if path.starts_with("/v1/projects/-/serviceAccounts/")
        && path.ends_with(":generateIdToken")
    {
        Endpoint::GenerateIdToken
    } else {
        Endpoint::Other
    };
    let body: Bytes = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let is_form = content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let is_json = content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json"));
    let form: Vec<(String, String)> = if is_form {
        form_urlencoded::parse(&body).into_owned().collect()
    } else if is_json && endpoint == Endpoint::Sts {
        // Google's STS accepts JSON bodies too.
        serde_json::from_slice::<Map<String, Value>>(&body)
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let json: Option<Value> = if is_json {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let mut record = GoogleRequest {
        endpoint,
        path: path.clone(),
        authorization,
        content_type,
        form,
        json,
        status: 0,
        error: None,
    };
    let fault = match endpoint {
        Endpoint::Sts => {
            state.sts_count.fetch_add(1, Ordering::SeqCst);
            state.sts_faults.pop()
        }
        Endpoint::GenerateAccessToken | Endpoint::GenerateIdToken => {
            state.iam_count.fetch_add(1, Ordering::SeqCst);
            state.iam_faults.pop()
        }
        _ => None,
    };
    let answered = match &fault {
        Some(Fault::Error {
            status,
            code,
            message,
        }) => Some(if endpoint == Endpoint::Sts {
            oauth_error_status(*status, code, message)
        } else {
            api_error(*status, code, message)
        }),
        Some(Fault::Echo(status)) => Some((
            *status,
            json!({
                "authorization": record.authorization,
                "body": String::from_utf8_lossy(&body),
            })
            .to_string(),
            Some(format!("fault echo {status}")),
        )),
        Some(fault) => {
            if let Some(answer) = WIRE.answer(fault).await {
                record.status = answer.status().as_u16();
                record.error = Some(format!("fault {fault:?}"));
                state.requests.record(record);
                return answer;
            }
            None
        }
        None => None,
    };
    let (status, body, error) = answered.unwrap_or_else(|| {
        if method != "POST" && endpoint != Endpoint::Other {
            api_error(405, "METHOD_NOT_ALLOWED", "Method not allowed.")
        } else {
            match endpoint {
                Endpoint::Sts => sts(&record, state),
                Endpoint::GenerateAccessToken => generate(&record, state),
                Endpoint::Introspect => introspect(&record, state),
                Endpoint::GenerateIdToken => id_token::generate(&record, state),
                Endpoint::Other => api_error(
                    404,
                    "NOT_FOUND",
                    &format!("The requested URL {path} was not found on this server."),
                ),
            }
        }
    });
    record.status = status;
    record.error = error;
    state.requests.record(record);
    respond(status, JSON_TYPE, body)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn sts(req: &GoogleRequest, state: &State) -> (u16, String, Option<String>) {
    let cfg = &state.config;
    if !req.content_type.as_deref().is_some_and(|c| {
        c.starts_with("application/x-www-form-urlencoded") || c.starts_with("application/json")
    }) {
        return oauth_error(
            "invalid_request",
            "The request must be application/x-www-form-urlencoded or application/json.",
        );
    }
    match req.field("grant_type") {
        Some(GRANT_TYPE) => {}
        Some(_) => {
            return oauth_error(
                "unsupported_grant_type",
                "Invalid value for \"grant_type\".",
            );
        }
        None => {
            return oauth_error(
                "invalid_request",
                "Missing required parameter: \"grant_type\".",
            );
        }
    }
    if req.field("requested_token_type") != Some(ACCESS_TOKEN_TYPE) {
        return oauth_error(
            "invalid_request",
            "Invalid value for \"requested_token_type\". Expected \"urn:ietf:params:oauth:token-type:access_token\".",
        );
    }
    if !matches!(
        req.field("subject_token_type"),
        Some(JWT_TYPE | ID_TOKEN_TYPE)
    ) {
        return oauth_error(
            "invalid_request",
            "Invalid value for \"subject_token_type\". Expected \"urn:ietf:params:oauth:token-type:jwt\" or \"urn:ietf:params:oauth:token-type:id_token\".",
        );
    }
    let audience = req.field("audience").unwrap_or_default();
    let shape_ok = audience
        .strip_prefix("//iam.googleapis.com/projects/")
        .is_some_and(|rest| {
            rest.contains("/locations/global/workloadIdentityPools/")
                && rest.contains("/providers/")
        });
    if !shape_ok {
        return oauth_error(
            "invalid_request",
            "Invalid value for \"audience\". This value should be the full resource name of the Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token for the list of possible formats.",
        );
    }
    if audience != format!("//iam.googleapis.com/{}", cfg.provider) {
        return oauth_error(
            "invalid_target",
            "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.",
        );
    }
    let Some(subject_token) = req.field("subject_token").filter(|t| !t.is_empty()) else {
        return oauth_error(
            "invalid_request",
            "Missing required parameter: \"subject_token\".",
        );
    };
    let claims = match crate::verify_rs256(subject_token, &cfg.jwks) {
        Ok(claims) => claims,
        Err(why) => {
            return oauth_error(
                "invalid_grant",
                &format!("Invalid ID Token: unable to verify the ID Token signature ({why})."),
            );
        }
    };
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if iss != cfg.issuer {
        return oauth_error(
            "invalid_grant",
            &format!(
                "The issuer in ID Token {iss} does not match the expected ones: {}.",
                cfg.issuer
            ),
        );
    }
    let auds: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let allowed = state.allowed_audiences();
    if !auds.iter().any(|a| allowed.contains(a)) {
        return oauth_error(
            "invalid_grant",
            &format!(
                "The audience in ID Token [{}] does not match the expected audience {}.",
                auds.join(", "),
                allowed.join(", ")
            ),
        );
    }
    let now = unix(state.now());
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    let iat = claims.get("iat").and_then(Value::as_u64).unwrap_or(0);
    if exp <= now {
        return oauth_error("invalid_grant", "ID Token has expired.");
    }
    if iat > now + 300 {
        return oauth_error(
            "invalid_grant",
            &format!("ID Token issued at {iat} is in the future."),
        );
    }
    if exp.saturating_sub(iat) > 48 * 3600 {
        return oauth_error(
            "invalid_grant",
            "The ID Token's lifetime (exp - iat) must be at most 48 hours.",
        );
    }
    if let Some(condition) = &cfg.condition
        && !condition(&claims)
    {
        return (
            400,
            json!({"error": "unauthorized_client", "error_description": "The given credential is rejected by the attribute condition."}).to_string(),
            Some("unauthorized_client".into()),
        );
    }
    let scopes: Vec<String> = req
        .field("scope")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let lifetime = cfg.token_lifetime;
    let token = state.issue(
        "fake-sts",
        IssuedToken {
            token: String::new(),
            service_account: None,
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            scopes,
            expires_at: state.now() + lifetime,
        },
    );
    (
        200,
        json!({
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs().saturating_sub(1),
        })
        .to_string(),
        None,
    )
}

fn generate(req: &GoogleRequest, state: &State) -> (u16, String, Option<String>) {
    let (email, federated) = match id_token::caller(req, state, ":generateAccessToken") {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    let now = state.now();
    let Some(body) = req.json.as_ref().and_then(Value::as_object) else {
        return api_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    let scopes: Vec<String> = body
        .get("scope")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if scopes.is_empty() {
        return api_error(400, "INVALID_ARGUMENT", "Scope required.");
    }
    let lifetime = match body.get("lifetime") {
        None | Some(Value::Null) => Duration::from_secs(3600),
        Some(Value::String(s)) => match s.strip_suffix('s').and_then(|n| n.parse::<f64>().ok()) {
            Some(secs) if secs > 0.0 => Duration::from_secs_f64(secs),
            _ => {
                return api_error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!(
                        "Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), Field 'lifetime', Illegal duration format; duration must end with 's': {s:?}"
                    ),
                );
            }
        },
        Some(_) => return api_error(400, "INVALID_ARGUMENT", "Invalid value at 'lifetime'."),
    };
    if lifetime > Duration::from_secs(3600) {
        return api_error(
            400,
            "INVALID_ARGUMENT",
            "The lifetime requested exceeds the maximum of 3600s allowed by the org policy constraints/iam.allowServiceAccountCredentialLifetimeExtension.",
        );
    }
    if !state.config.service_accounts.contains(&email) {
        return api_error(
            403,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
        );
    }
    let expires_at = now + lifetime;
    let token = state.issue(
        "fake-sa",
        IssuedToken {
            token: String::new(),
            service_account: Some(email.clone()),
            subject: federated.subject,
            scopes,
            expires_at,
        },
    );
    (
        200,
        json!({ "accessToken": token, "expireTime": fly_oidc::time::format_rfc3339(expires_at) })
            .to_string(),
        None,
    )
}

fn introspect(req: &GoogleRequest, state: &State) -> (u16, String, Option<String>) {
    let Some(token) = req.field("token") else {
        return oauth_error("invalid_request", "Missing required parameter: \"token\".");
    };
    let now = state.now();
    let info = lock(&state.tokens).get(token).cloned();
    let body = match info.filter(|t| t.expires_at > now) {
        Some(info) => {
            let provider = &state.config.provider;
            let pool = provider
                .split("/providers/")
                .next()
                .unwrap_or(provider.as_str());
            let username = match &info.service_account {
                Some(sa) => sa.clone(),
                None => format!(
                    "principal://iam.googleapis.com/{pool}/subject/{}",
                    info.subject
                ),
            };
            json!({
                "active": true,
                "scope": info.scopes.join(" "),
                "client_id": "fake-client",
                "username": username,
                "sub": info.subject,
                "token_type": "Bearer",
                "exp": unix(info.expires_at),
                "iat": unix(now),
            })
        }
        None => json!({ "active": false }),
    };
    (200, body.to_string(), None)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `generateIdToken`: Google-signed ID tokens of the configured service accounts.
mod id_token {
    use super::{GoogleRequest, IssuedToken, State, api_error, lock, percent_decode, unix};
    use crate::jwt::KeyMaterial;
    use serde_json::{Map, Value, json};
    use std::time::Duration;

    /// How long Google's ID tokens live.
    const LIFETIME: Duration = Duration::from_secs(3600);

    impl super::FakeGoogle {
        /// The JWKS that verifies the ID tokens `generateIdToken` answers (what
        /// `https://www.googleapis.com/oauth2/v3/certs` is for Google's).
        pub fn id_token_jwks(&self) -> Value {
            json!({ "keys": [KeyMaterial::shared().jwk.clone()] })
        }
    }

    /// The service account named by an IAM Credentials path ending in `method` and the live
    /// federated token the request carries as bearer, or Google's 401.
    pub(super) fn caller(
        req: &GoogleRequest,
        state: &State,
        method: &str,
    ) -> Result<(String, IssuedToken), (u16, String, Option<String>)> {
        let email = req
            .path
            .trim_start_matches("/v1/projects/-/serviceAccounts/")
            .trim_end_matches(method);
        let bearer = req
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default();
        let now = state.now();
        let federated = lock(&state.tokens)
            .get(bearer)
            .filter(|t| t.service_account.is_none() && t.expires_at > now)
            .cloned();
        match federated {
            Some(federated) => Ok((percent_decode(email), federated)),
            None => Err(api_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )),
        }
    }

    /// Answer `generateIdToken`: the bearer must be a live federated token the fake issued,
    /// the account one it serves, the body `{"audience": non-empty}`.
    pub(super) fn generate(req: &GoogleRequest, state: &State) -> (u16, String, Option<String>) {
        let (email, _) = match caller(req, state, ":generateIdToken") {
            Ok(caller) => caller,
            Err(answer) => return answer,
        };
        let now = state.now();
        let audience = req
            .json
            .as_ref()
            .and_then(|b| b.get("audience"))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty());
        let Some(audience) = audience else {
            return api_error(400, "INVALID_ARGUMENT", "Audience required.");
        };
        if !state.config.service_accounts.contains(&email) {
            return api_error(
                403,
                "PERMISSION_DENIED",
                "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).",
            );
        }
        let include_email = req
            .json
            .as_ref()
            .and_then(|b| b.get("includeEmail"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!("https://accounts.google.com"));
        claims.insert("aud".into(), json!(audience));
        // The service account's unique id, as Google's tokens carry it.
        claims.insert("azp".into(), json!("104857600000000000001"));
        claims.insert("sub".into(), json!("104857600000000000001"));
        claims.insert("iat".into(), json!(unix(now)));
        claims.insert("exp".into(), json!(unix(now + LIFETIME)));
        if include_email {
            claims.insert("email".into(), json!(email));
            claims.insert("email_verified".into(), json!(true));
        }
        let token = KeyMaterial::shared().sign(&claims);
        (200, json!({ "token": token }).to_string(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_decodes() {
        assert_eq!(
            percent_decode("sa%40p.iam.gserviceaccount.com"),
            "sa@p.iam.gserviceaccount.com"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%é%"), "%é%");
    }
}
