//! A fake AWS STS for `AssumeRoleWithWebIdentity`: records every request and fails on cue.
//!
//! It answers on `127.0.0.1` with AWS's real wire format (the Query protocol: a form-encoded
//! POST in, XML out): `AssumeRoleWithWebIdentityResponse` on success, and `ErrorResponse`
//! with `Type`, `Code` and `Message` and AWS's status codes on failure. Point an SDK at it
//! with `endpoint_url(sts.url())` (or `AWS_ENDPOINT_URL_STS`).
//!
//! It also answers `GetCallerIdentity` signed with credentials it issued, as AWS does for an
//! assumed role (`Arn` `arn:aws:sts::<account>:assumed-role/<role>/<session>`, `UserId`,
//! `Account`), so that `aws sts get-caller-identity` works for a program that got them from
//! fly-oidc and kept `AWS_ENDPOINT_URL_STS` (as `fly-oidc exec`'s child does). It recognises
//! the access key id of the `Authorization` header and the session token
//! (`X-Amz-Security-Token`), not the signature: other keys get `InvalidClientTokenId`,
//! expired ones `ExpiredToken`, an unsigned request `MissingAuthenticationToken`.
//!
//! Use it for what an emulator such as moto does not do: checking what reaches STS
//! (session name, duration, policies, the token) and producing every STS error on cue with
//! [`FakeSts::fail_next`] (the [`Fault`] vocabulary of every fake; the associated functions
//! such as [`Fault::access_denied`] build STS's own errors). With [`FakeStsBuilder::trust`] it also checks the token like STS
//! does (signature against a JWKS, issuer, audience, expiry, a `sub` pattern) and answers
//! with the error STS would give.
//!
//! Role chaining: `AssumeRole` signed with credentials it issued (the access key id of the
//! `Authorization` header and the session token, not the signature) is a chained hop, with
//! AWS's refusals: a `DurationSeconds` above one hour ("the 1 hour session limit for roles
//! assumed by role chaining"), and `AccessDenied` "`User: <caller> is not authorized to perform:
//! sts:AssumeRole on resource: <role>`" when the chained role's trust policy
//! ([`FakeStsBuilder::chain_trust`]) names another principal or another external id, or, for
//! "sts:TagSession", when the caller's session carries transitive session tags and the trust
//! policy does not allow `sts:TagSession`. The granted session inherits those transitive tags.
//!
//! Session tags: a token carrying AWS's session tags claim (`https://aws.amazon.com/tags`)
//! is refused with `AccessDenied` unless the role's trust policy allows `sts:TagSession`
//! ([`FakeStsBuilder::tag_session`]), as AWS does; when allowed, the tags become the
//! session's, which [`FakeSts::sessions`] reports.
//!
//! ```
//! use fly_oidc_testkit::Fault;
//! use fly_oidc_testkit::aws_sts::FakeSts;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! let sts = FakeSts::builder().account_id("123456789012").start().await?;
//! sts.fail_next(1, Fault::idp_communication_error());
//! // ... call AssumeRoleWithWebIdentity at sts.url() ...
//! assert_eq!(sts.request_count(), 0);
//! # Ok(()) }
//! ```

use crate::fault::{Fault, FaultQueue};
use crate::jwt::random_hex;
use crate::server::{self, Bound, Clock, Handler, RequestLog, TestBody, Wire, lock, respond};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The XML namespace of STS answers.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// STS's message when a chained session asks for more than one hour.
const CHAINED_DURATION_ABOVE_LIMIT: &str = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";

/// STS's message when `DurationSeconds` is more than the role's `MaxSessionDuration`.
const DURATION_ABOVE_MAXIMUM: &str =
    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.";

/// How the fake STS writes the faults every fake answers alike.
const WIRE: Wire = Wire {
    error_type: "text/xml",
    body_type: "text/xml",
    malformed: ("text/html", "<html><body>Service Unavailable"),
    reset_prefix: b"<AssumeRoleWithWebIdentityResponse xmlns=",
};

/// The errors AWS STS answers `AssumeRoleWithWebIdentity` with, as [`Fault::Error`]s (any
/// fake writes them in its own error shape; the fake STS as an `ErrorResponse`).
impl Fault {
    /// `400 InvalidIdentityToken`, as when no IAM OIDC provider matches the issuer.
    pub fn invalid_identity_token() -> Self {
        Self::error(
            400,
            "InvalidIdentityToken",
            "No OpenIDConnect provider found in your account for https://oidc.fly.io/acme",
        )
    }

    /// `400 InvalidIdentityToken` "Couldn't retrieve verification key from your identity
    /// provider": STS could not fetch the issuer's JWKS (public reports show it passing on a
    /// retry).
    pub fn verification_key_unavailable() -> Self {
        Self::error(
            400,
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements",
        )
    }

    /// `400 ValidationError`, as when `DurationSeconds` is more than the role's
    /// `MaxSessionDuration` (see also [`FakeStsBuilder::max_session_duration`]).
    pub fn duration_above_role_maximum() -> Self {
        Self::error(400, "ValidationError", DURATION_ABOVE_MAXIMUM)
    }

    /// `400 IDPRejectedClaim`.
    pub fn idp_rejected_claim() -> Self {
        Self::error(
            400,
            "IDPRejectedClaim",
            "The identity provider rejected the claims in the token",
        )
    }

    /// `403 AccessDenied`, as when the role's trust policy does not match the token.
    pub fn access_denied() -> Self {
        Self::error(
            403,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        )
    }

    /// `400 ExpiredTokenException`.
    pub fn expired_token() -> Self {
        Self::error(
            400,
            "ExpiredTokenException",
            "Token expired: current date/time 1700000600 must be before the expiration date/time 1700000000",
        )
    }

    /// `400 IDPCommunicationError` (transient: the SDK retries it).
    pub fn idp_communication_error() -> Self {
        Self::error(
            400,
            "IDPCommunicationError",
            "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements",
        )
    }

    /// `400 Throttling` (STS's throttling answer).
    pub fn throttling() -> Self {
        Self::error(400, "Throttling", "Rate exceeded")
    }

    /// `503 ServiceUnavailable`.
    pub fn service_unavailable() -> Self {
        Self::error(503, "ServiceUnavailable", "Service is unavailable")
    }

    /// `500 InternalFailure`.
    pub fn internal_failure() -> Self {
        Self::error(
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error",
        )
    }

    /// `400 MalformedPolicyDocument`.
    pub fn malformed_policy() -> Self {
        Self::error(400, "MalformedPolicyDocument", "Syntax errors in policy.")
    }

    /// `403 RegionDisabledException`.
    pub fn region_disabled() -> Self {
        Self::error(
            403,
            "RegionDisabledException",
            "STS is not activated in this region for account:123456789012.",
        )
    }
}

/// A request the fake received. `Debug` redacts the web identity token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedStsRequest {
    /// `Action`, such as `AssumeRoleWithWebIdentity`.
    pub action: Option<String>,
    /// `Version` (`2011-06-15`).
    pub version: Option<String>,
    /// `RoleArn`.
    pub role_arn: Option<String>,
    /// `RoleSessionName`.
    pub role_session_name: Option<String>,
    /// `DurationSeconds`, as sent.
    pub duration_seconds: Option<String>,
    /// `Policy`.
    pub policy: Option<String>,
    /// `PolicyArns.member.N.arn`, in order.
    pub policy_arns: Vec<String>,
    /// `WebIdentityToken`.
    pub web_identity_token: Option<String>,
    /// `ExternalId` (`AssumeRole`).
    pub external_id: Option<String>,
    /// Whether the request carried an `Authorization` header (it should not: the call is unsigned).
    pub signed: bool,
    /// Every form parameter, in order.
    pub params: Vec<(String, String)>,
}

server::debug_fields! {
    RecordedStsRequest, |r|
    action, role_arn, role_session_name, duration_seconds, policy, policy_arns,
    web_identity_token: r.web_identity_token.as_ref().map(|_| "** redacted **"),
    signed,
}

impl RecordedStsRequest {
    /// `DurationSeconds` as a number.
    pub fn duration(&self) -> Option<u64> {
        self.duration_seconds.as_deref()?.parse().ok()
    }
}

/// A session the fake granted: whose it is and its session tags.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedSession {
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub assumed_role_arn: String,
    /// The role session name.
    pub session_name: String,
    /// The session tags, from the token's `https://aws.amazon.com/tags` claim: each key of
    /// `principal_tags` with the first value of its list (AWS's shape; a tag has one value).
    pub session_tags: BTreeMap<String, String>,
    /// The claim's `transitive_tag_keys`.
    pub transitive_tag_keys: Vec<String>,
    /// The access key id of its credentials.
    pub access_key_id: String,
}

/// Credentials the fake issued (for leak scans).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCredentials {
    /// The access key id (`ASIA...`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// When they expire.
    pub expiration: SystemTime,
}

server::debug_fields! { IssuedCredentials, |c| access_key_id, expiration }

#[derive(Clone, Debug)]
struct Trust {
    issuer: String,
    jwks: Value,
    audience: Option<String>,
    subject: Option<String>,
}

/// The trust policy of the roles assumed by `AssumeRole` (the chained hop): which principal
/// it names, the external id it requires, and whether it allows `sts:TagSession`.
#[derive(Clone, Debug, Default)]
pub struct ChainTrust {
    principal: Option<String>,
    external_id: Option<String>,
    tag_session: bool,
}

impl ChainTrust {
    server::setters! {
        /// Trust the role `arn` (`arn:aws:iam::<account>:role/<name>`): another caller gets
        /// `AccessDenied` (default: any role whose credentials the fake issued).
        principal: Some(String),
        /// Require this `sts:ExternalId` (default: none required).
        external_id: Some(String),
        /// Allow `sts:TagSession` (default: no): without it, a caller whose session carries
        /// transitive session tags gets `AccessDenied` naming `sts:TagSession`.
        tag_session: (bool),
    }
}

/// Configures a [`FakeSts`].
#[derive(Clone, Debug, Default)]
pub struct FakeStsBuilder {
    account_id: Option<String>,
    trust: Option<Trust>,
    chain_trust: ChainTrust,
    max_session_duration: Option<Duration>,
    tag_session: bool,
    clock: Clock,
    latency: Duration,
}

server::builder_methods! {
    /// The clock used for expirations and token expiry (default: the system clock).
    FakeStsBuilder => FakeSts, thread "fake-sts", unix socket false, setup
}

impl FakeStsBuilder {
    server::setters! {
        /// Only accept roles in this account (default: any account; the answer's ARNs use the
        /// role's account).
        account_id: Some(String),
        /// The role's maximum session duration (IAM's `MaxSessionDuration`; default: any
        /// duration STS accepts): a longer `DurationSeconds` gives STS's `ValidationError`
        /// "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".
        max_session_duration: Some(Duration),
        /// Whether the role's trust policy allows `sts:TagSession` (default: no, as a trust
        /// policy that lists only `sts:AssumeRoleWithWebIdentity`). Without it, a token carrying
        /// AWS's session tags claim gets `AccessDenied` "Not authorized to perform
        /// sts:AssumeRoleWithWebIdentity", as AWS answers; with it, the session gets the tags
        /// ([`FakeSts::sessions`]).
        tag_session: (bool),
        /// The trust policy of the roles assumed with `AssumeRole` (default: any principal whose
        /// credentials this fake issued, no external id, no `sts:TagSession`).
        chain_trust: (ChainTrust),
        /// Wait this long before every answer (to model network latency in benchmarks).
        latency: (Duration),
    }

    /// Check tokens like STS does with an IAM OIDC provider for `issuer` whose keys are `jwks`
    /// (for example `fly.issuer()` and `fly.jwks()` of a
    /// [`FakeFlyApi`](crate::FakeFlyApi)): a bad signature or another issuer gives
    /// `InvalidIdentityToken`, an expired token `ExpiredTokenException`.
    pub fn trust(mut self, issuer: impl Into<String>, jwks: Value) -> Self {
        self.trust = Some(Trust {
            issuer: issuer.into(),
            jwks,
            audience: None,
            subject: None,
        });
        self
    }

    /// With [`trust`](Self::trust): the audience the OIDC provider lists (another gives
    /// `InvalidIdentityToken: Incorrect token audience`).
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.edit_trust(|t| t.audience = Some(audience.into()))
    }

    /// With [`trust`](Self::trust): the trust policy's `sub` condition, with `*` wildcards
    /// (`StringLike`); another subject gives `AccessDenied`.
    pub fn subject(self, pattern: impl Into<String>) -> Self {
        self.edit_trust(|t| t.subject = Some(pattern.into()))
    }

    /// Edit the [`trust`](Self::trust) settings, if set.
    fn edit_trust(mut self, edit: impl FnOnce(&mut Trust)) -> Self {
        if let Some(t) = &mut self.trust {
            edit(t);
        }
        self
    }
}

/// A fake STS with the settings `config`, listening where `bound` says: its handle and
/// its request handler.
fn setup(config: FakeStsBuilder, bound: Bound) -> (FakeSts, Handler) {
    let state = Arc::new(State {
        config,
        ..State::default()
    });
    let handler = server::handler(state.clone(), handle);
    (FakeSts { state, bound }, handler)
}

#[derive(Default)]
struct State {
    config: FakeStsBuilder,
    faults: FaultQueue,
    requests: RequestLog<RecordedStsRequest>,
    issued: Mutex<Vec<Issued>>,
}

/// Credentials the fake issued and whose they are (what `GetCallerIdentity` answers).
#[derive(Clone)]
struct Issued {
    credentials: IssuedCredentials,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    arn: String,
    /// `AROA...:<session>`.
    user_id: String,
    account: String,
    session: IssuedSession,
}

/// A running fake STS. Stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeSts {
    state: Arc<State>,
    bound: Bound,
}

server::debug_fields! { FakeSts, |s| url: s.url(), requests: s.request_count() }

impl FakeSts {
    /// A builder.
    pub fn builder() -> FakeStsBuilder {
        FakeStsBuilder::default()
    }

    /// Start with the defaults.
    pub async fn start() -> std::io::Result<FakeSts> {
        Self::builder().start().await
    }

    /// The endpoint URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.bound.url()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.bound.addr
    }

    /// Every session granted, in order, with its session tags.
    pub fn sessions(&self) -> Vec<IssuedSession> {
        lock(&self.state.issued)
            .iter()
            .map(|issued| issued.session.clone())
            .collect()
    }

    /// Every set of credentials issued, in order (for leak scans).
    pub fn issued_credentials(&self) -> Vec<IssuedCredentials> {
        lock(&self.state.issued)
            .iter()
            .map(|issued| issued.credentials.clone())
            .collect()
    }

    server::request_methods!(
        RecordedStsRequest,
        "[`Fault::Error`] answers an STS `ErrorResponse`; [`Fault::Echo`] an \
         `InvalidIdentityToken` error whose message quotes the request's `WebIdentityToken`."
    );
}

/// Escape text for an XML element.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn request_id() -> String {
    format!(
        "{}-{}-{}-{}-{}",
        random_hex(4),
        random_hex(2),
        random_hex(2),
        random_hex(2),
        random_hex(6)
    )
}

fn error_response(status: u16, code: &str, message: &str) -> Response<TestBody> {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"{STS_NAMESPACE}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        xml_escape(code),
        xml_escape(message),
        request_id()
    );
    respond(status, "text/xml", body)
}

fn validation_error(message: &str) -> Response<TestBody> {
    error_response(400, "ValidationError", message)
}

/// RFC 3339 UTC with seconds, as STS writes `Expiration` (`2026-11-28T13:00:00Z`).
pub fn format_aws_time(t: SystemTime) -> String {
    fly_oidc::time::format_rfc3339(t)
}

fn decode_claims(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Session tags and transitive keys.
type SessionTags = (BTreeMap<String, String>, Vec<String>);

/// The session tags of a token's `https://aws.amazon.com/tags` claim, in AWS's documented
/// shape (`{"principal_tags": {"<key>": ["<value>"]}, "transitive_tag_keys": ["<key>"]}`):
/// `None` without the claim, an error message for another shape. Parsed here, not by the
/// client's code, so that tests see what a separate STS makes of a token.
fn session_tags(claims: &Map<String, Value>) -> Result<Option<SessionTags>, String> {
    let Some(claim) = claims.get(fly_oidc::AWS_TAGS_CLAIM) else {
        return Ok(None);
    };
    let bad = || "The web identity token's session tags claim is not valid".to_owned();
    let claim = claim.as_object().ok_or_else(bad)?;
    let mut tags = BTreeMap::new();
    if let Some(principal) = claim.get("principal_tags") {
        for (key, values) in principal.as_object().ok_or_else(bad)? {
            let value = values
                .as_array()
                .and_then(|list| list.first())
                .and_then(Value::as_str)
                .ok_or_else(bad)?;
            tags.insert(key.clone(), value.to_owned());
        }
    }
    let transitive = match claim.get("transitive_tag_keys") {
        None => Vec::new(),
        Some(keys) => keys
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|k| k.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(bad)?,
    };
    Ok(Some((tags, transitive)))
}

fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(idx) => rest = &rest[idx + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn aud_matches(claims: &Map<String, Value>, wanted: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == wanted,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(wanted)),
        _ => false,
    }
}

fn random_upper(n: usize) -> String {
    random_hex(n.div_ceil(2))
        .to_ascii_uppercase()
        .chars()
        .take(n)
        .collect()
}

async fn handle(req: Request<Incoming>, _unix: bool, state: Arc<State>) -> Response<TestBody> {
    let state = &*state;
    state.requests.arrive();
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
    let signed = req.headers().contains_key("authorization");
    let caller = Caller::from_headers(req.headers());
    let is_post = req.method() == hyper::Method::POST;
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return validation_error("could not read the request body"),
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut policy_arns: Vec<(usize, String)> = params
        .iter()
        .filter_map(|(k, v)| {
            let n = k
                .strip_prefix("PolicyArns.member.")?
                .strip_suffix(".arn")?
                .parse()
                .ok()?;
            Some((n, v.clone()))
        })
        .collect();
    policy_arns.sort();
    let recorded = RecordedStsRequest {
        action: get("Action"),
        version: get("Version"),
        role_arn: get("RoleArn"),
        role_session_name: get("RoleSessionName"),
        duration_seconds: get("DurationSeconds"),
        policy: get("Policy"),
        policy_arns: policy_arns.into_iter().map(|(_, v)| v).collect(),
        web_identity_token: get("WebIdentityToken"),
        external_id: get("ExternalId"),
        signed,
        params: params.clone(),
    };
    state.requests.record(recorded.clone());

    let fault = WIRE.answer_fault(state.faults.pop(), error_response, |status| {
        error_response(
            status,
            "InvalidIdentityToken",
            &format!(
                "The web identity token {} could not be validated",
                recorded.web_identity_token.as_deref().unwrap_or_default()
            ),
        )
    });
    if let Some(answer) = fault.await {
        return answer;
    }
    if !is_post {
        return error_response(400, "InvalidAction", "Could not find operation for GET");
    }
    match recorded.action.as_deref() {
        Some("AssumeRoleWithWebIdentity") => assume_role(&recorded, state),
        Some("AssumeRole") => assume_chained_role(&recorded, &caller, state),
        Some("GetCallerIdentity") => caller_identity(&caller, state),
        Some(other) => error_response(
            400,
            "InvalidAction",
            &format!("Could not find operation {other} for version 2011-06-15"),
        ),
        None => error_response(400, "MissingAction", "Missing Action"),
    }
}

/// STS's error answer to a request, boxed.
type Refusal = Box<Response<TestBody>>;

fn refuse<T>(answer: Response<TestBody>) -> Result<T, Refusal> {
    Err(Box::new(answer))
}

/// The role and session of an assume-role request, checked as STS does; `max`: the longest
/// `DurationSeconds` the action accepts (`chained`: the role-chaining limit above one hour).
struct Asked<'a> {
    account: String,
    role_name: String,
    session: &'a str,
    duration: u64,
}

fn asked(req: &RecordedStsRequest, chained: bool) -> Result<Asked<'_>, Refusal> {
    let Some(role_arn) = req.role_arn.as_deref() else {
        return refuse(validation_error(
            "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null",
        ));
    };
    let Some(session) = req.role_session_name.as_deref() else {
        return refuse(validation_error(
            "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null",
        ));
    };
    if session.len() < 2
        || session.len() > 64
        || !session.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
        })
    {
        return refuse(validation_error(&format!(
            "1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    let duration = match req.duration_seconds.as_deref() {
        None => 3600,
        Some(raw) => match raw.parse::<u64>() {
            Ok(d) if (900..=43200).contains(&d) => d,
            _ => {
                return refuse(validation_error(&format!(
                    "1 validation error detected: Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200"
                )));
            }
        },
    };
    if chained && duration > 3600 {
        return refuse(validation_error(CHAINED_DURATION_ABOVE_LIMIT));
    }
    let arn_parts: Vec<&str> = role_arn.splitn(6, ':').collect();
    match arn_parts.as_slice() {
        ["arn", _, "iam", "", account, resource] if resource.starts_with("role/") => Ok(Asked {
            account: (*account).to_owned(),
            role_name: resource.rsplit('/').next().unwrap_or_default().to_owned(),
            session,
            duration,
        }),
        _ => refuse(validation_error(&format!("{role_arn} is invalid"))),
    }
}

/// `AssumeRole` signed with credentials this fake issued: the chained hop.
fn assume_chained_role(
    req: &RecordedStsRequest,
    caller: &Caller,
    state: &State,
) -> Response<TestBody> {
    let issued = match authenticate(caller, state) {
        Ok(issued) => issued,
        Err(refusal) => return *refusal,
    };
    let asked = match asked(req, true) {
        Ok(asked) => asked,
        Err(refusal) => return *refusal,
    };
    let role_arn = req.role_arn.as_deref().unwrap_or_default();
    let trust = &state.config.chain_trust;
    let denied = |action: &str| {
        error_response(
            403,
            "AccessDenied",
            &format!(
                "User: {} is not authorized to perform: {action} on resource: {role_arn}",
                issued.arn
            ),
        )
    };
    // The caller's role: arn:aws:sts::<account>:assumed-role/<role>/<session> is
    // arn:aws:iam::<account>:role/<role>.
    let caller_role = format!(
        "arn:aws:iam::{}:role/{}",
        issued.account,
        issued.arn.split('/').nth(1).unwrap_or_default()
    );
    if trust.principal.as_ref().is_some_and(|p| *p != caller_role)
        || (trust.external_id.is_some() && trust.external_id != req.external_id)
    {
        return denied("sts:AssumeRole");
    }
    let inherited = &issued.session.transitive_tag_keys;
    if !inherited.is_empty() && !trust.tag_session {
        return denied("sts:TagSession");
    }
    let tags = issued
        .session
        .session_tags
        .iter()
        .filter(|(key, _)| inherited.contains(key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let now = state.config.clock.now();
    let (creds, role_id) = issue(
        state,
        &asked,
        now + Duration::from_secs(asked.duration),
        (tags, inherited.clone()),
    );
    let result = format!(
        "    <AssumedRoleUser>
      <Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn>
      <AssumedRoleId>{role_id}:{session}</AssumedRoleId>
    </AssumedRoleUser>
{credentials}",
        account = xml_escape(&asked.account),
        role = xml_escape(&asked.role_name),
        session = xml_escape(asked.session),
        credentials = credentials_xml(&creds),
    );
    success("AssumeRole", &result)
}

/// Issue credentials for `asked` until `expiration`, recording the session with `tags`
/// (session tags, transitive keys); returns them and the role id.
fn issue(
    state: &State,
    asked: &Asked,
    expiration: SystemTime,
    tags: (BTreeMap<String, String>, Vec<String>),
) -> (IssuedCredentials, String) {
    let creds = IssuedCredentials {
        access_key_id: format!("ASIA{}", random_upper(16)),
        secret_access_key: random_hex(20),
        session_token: format!("FwoGZXIvYXdzEFAKE{}", random_hex(96)),
        expiration,
    };
    let role_id = format!("AROA{}", random_upper(17));
    let (account, session) = (&asked.account, asked.session);
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/{}/{session}",
        asked.role_name
    );
    let (session_tags, transitive_tag_keys) = tags;
    lock(&state.issued).push(Issued {
        credentials: creds.clone(),
        arn: arn.clone(),
        user_id: format!("{role_id}:{session}"),
        account: account.clone(),
        session: IssuedSession {
            assumed_role_arn: arn,
            session_name: session.to_owned(),
            session_tags,
            transitive_tag_keys,
            access_key_id: creds.access_key_id.clone(),
        },
    });
    (creds, role_id)
}

/// The `<Credentials>` element of an answer.
fn credentials_xml(creds: &IssuedCredentials) -> String {
    format!(
        "    <Credentials>
      <SessionToken>{token}</SessionToken>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <Expiration>{exp}</Expiration>
      <AccessKeyId>{akid}</AccessKeyId>
    </Credentials>
",
        token = creds.session_token,
        secret = creds.secret_access_key,
        exp = format_aws_time(creds.expiration),
        akid = creds.access_key_id,
    )
}

fn assume_role(req: &RecordedStsRequest, state: &State) -> Response<TestBody> {
    let asked = match asked(req, false) {
        Ok(asked) => asked,
        Err(refusal) => return *refusal,
    };
    let Asked {
        ref account,
        ref role_name,
        session,
        duration,
    } = asked;
    let Some(token) = req.web_identity_token.as_deref() else {
        return validation_error(
            "1 validation error detected: Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null",
        );
    };
    if let Some(wanted) = &state.config.account_id
        && wanted != account
    {
        return error_response(
            403,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    }
    if let Some(policy) = &req.policy
        && serde_json::from_str::<Map<String, Value>>(policy).is_err()
    {
        return error_response(400, "MalformedPolicyDocument", "Syntax errors in policy.");
    }
    let Some(claims) = decode_claims(token) else {
        return error_response(
            400,
            "InvalidIdentityToken",
            "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.",
        );
    };
    let now = state.config.clock.now();
    if let Some(trust) = &state.config.trust {
        if claims.get("iss").and_then(Value::as_str) != Some(trust.issuer.as_str()) {
            let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
            return error_response(
                400,
                "InvalidIdentityToken",
                &format!("No OpenIDConnect provider found in your account for {iss}"),
            );
        }
        if crate::verify_rs256(token, &trust.jwks).is_err() {
            return error_response(
                400,
                "InvalidIdentityToken",
                "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.",
            );
        }
        if let Some(aud) = &trust.audience
            && !aud_matches(&claims, aud)
        {
            return error_response(400, "InvalidIdentityToken", "Incorrect token audience");
        }
        let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        if exp <= now_secs {
            return error_response(
                400,
                "ExpiredTokenException",
                &format!(
                    "Token expired: current date/time {now_secs} must be before the expiration date/time {exp}"
                ),
            );
        }
        if let Some(pattern) = &trust.subject {
            let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
            if !wildcard_match(pattern, sub) {
                return error_response(
                    403,
                    "AccessDenied",
                    "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                );
            }
        }
    }
    let tags = match session_tags(&claims) {
        Ok(tags) => tags,
        Err(why) => return error_response(400, "InvalidIdentityToken", &why),
    };
    if tags.is_some() && !state.config.tag_session {
        // The trust policy does not allow sts:TagSession: AWS's answer names the main action.
        return error_response(
            403,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    }
    if state
        .config
        .max_session_duration
        .is_some_and(|max| duration > max.as_secs())
    {
        return validation_error(DURATION_ABOVE_MAXIMUM);
    }
    let (creds, role_id) = issue(
        state,
        &asked,
        now + Duration::from_secs(duration),
        tags.unwrap_or_default(),
    );
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => a.clone(),
        Some(Value::Array(list)) => list
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    let result = format!(
        "    <SubjectFromWebIdentityToken>{sub}</SubjectFromWebIdentityToken>
    <Audience>{aud}</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn>
      <AssumedRoleId>{role_id}:{session}</AssumedRoleId>
    </AssumedRoleUser>
{credentials}    <Provider>{iss}</Provider>
",
        sub = xml_escape(sub),
        aud = xml_escape(&aud),
        account = xml_escape(account),
        role = xml_escape(role_name),
        session = xml_escape(session),
        credentials = credentials_xml(&creds),
        iss = xml_escape(iss.strip_prefix("https://").unwrap_or(iss)),
    );
    success("AssumeRoleWithWebIdentity", &result)
}

/// STS's 200 answer to `action`: its `<{action}Result>` holding `result` (whole lines, indented
/// by four spaces), and the `ResponseMetadata`.
fn success(action: &str, result: &str) -> Response<TestBody> {
    let body = format!(
        "<{action}Response xmlns=\"{STS_NAMESPACE}\">
  <{action}Result>
{result}  </{action}Result>
  <ResponseMetadata>
    <RequestId>{request_id}</RequestId>
  </ResponseMetadata>
</{action}Response>
",
        request_id = request_id(),
    );
    respond(200, "text/xml", body)
}

/// Who signed a request: the access key id of its SigV4 `Authorization` header
/// (`AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/sts/aws4_request, ...`) and its
/// `X-Amz-Security-Token`.
#[derive(Default)]
struct Caller {
    access_key_id: Option<String>,
    session_token: Option<String>,
}

impl Caller {
    fn from_headers(headers: &hyper::HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let access_key_id = text("authorization").and_then(|auth| {
            let credential = auth.split_once("Credential=")?.1;
            let key = credential.split(['/', ',', ' ']).next()?;
            (!key.is_empty()).then(|| key.to_owned())
        });
        Caller {
            access_key_id,
            session_token: text("x-amz-security-token").map(str::to_owned),
        }
    }
}

/// The credentials this fake issued that signed a request; AWS's errors for a request not
/// signed with them, or with expired ones.
fn authenticate(caller: &Caller, state: &State) -> Result<Issued, Refusal> {
    let Some(key) = caller.access_key_id.as_deref() else {
        return refuse(error_response(
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        ));
    };
    let invalid = || {
        error_response(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    };
    let found = lock(&state.issued)
        .iter()
        .find(|issued| issued.credentials.access_key_id == key)
        .cloned();
    let Some(issued) = found else {
        return refuse(invalid());
    };
    if caller.session_token.as_deref() != Some(issued.credentials.session_token.as_str()) {
        return refuse(invalid());
    }
    if issued.credentials.expiration <= state.config.clock.now() {
        return refuse(error_response(
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        ));
    }
    Ok(issued)
}

/// `GetCallerIdentity`: the identity of credentials this fake issued, as AWS answers for an
/// assumed role; AWS's errors for a request not signed with them.
fn caller_identity(caller: &Caller, state: &State) -> Response<TestBody> {
    let issued = match authenticate(caller, state) {
        Ok(issued) => issued,
        Err(refusal) => return *refusal,
    };
    let result = format!(
        "    <Arn>{arn}</Arn>
    <UserId>{user_id}</UserId>
    <Account>{account}</Account>
",
        arn = xml_escape(&issued.arn),
        user_id = xml_escape(&issued.user_id),
        account = xml_escape(&issued.account),
    );
    success("GetCallerIdentity", &result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_like_sts() {
        assert_eq!(format_aws_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_aws_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format_aws_time(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("acme:*", "acme:web:m1"));
        assert!(wildcard_match("acme:web:*", "acme:web:m1"));
        assert!(!wildcard_match("acme:api:*", "acme:web:m1"));
        assert!(wildcard_match("acme:*:m1", "acme:web:m1"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "exactly"));
    }

    #[test]
    fn the_caller_is_the_access_key_id_of_a_sigv4_authorization() {
        let mut headers = hyper::HeaderMap::new();
        assert_eq!(Caller::from_headers(&headers).access_key_id, None);
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261206/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
                .parse()
                .expect("a header value"),
        );
        headers.insert(
            "x-amz-security-token",
            "session".parse().expect("a header value"),
        );
        let caller = Caller::from_headers(&headers);
        assert_eq!(caller.access_key_id.as_deref(), Some("ASIAEXAMPLE"));
        assert_eq!(caller.session_token.as_deref(), Some("session"));
        headers.insert("authorization", "Bearer x".parse().expect("a header value"));
        assert_eq!(Caller::from_headers(&headers).access_key_id, None);
    }

    #[test]
    fn session_tags_are_read_in_aws_shape() {
        let claims = |tags: Value| {
            let mut map = Map::new();
            map.insert(fly_oidc::AWS_TAGS_CLAIM.into(), tags);
            map
        };
        assert_eq!(session_tags(&Map::new()), Ok(None));
        let (tags, transitive) = session_tags(&claims(serde_json::json!({
            "principal_tags": {"team": ["web"], "env": ["prod", "x"]},
            "transitive_tag_keys": ["team"]
        })))
        .unwrap()
        .unwrap();
        assert_eq!(tags["team"], "web");
        assert_eq!(tags["env"], "prod");
        assert_eq!(transitive, ["team"]);
        for bad in [
            serde_json::json!("x"),
            serde_json::json!({"principal_tags": {"a": "b"}}),
            serde_json::json!({"transitive_tag_keys": [1]}),
        ] {
            assert!(session_tags(&claims(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
