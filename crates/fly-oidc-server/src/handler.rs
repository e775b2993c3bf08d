//! Answering one request.

use crate::routes::{Meta, Route, route};
use crate::slot::{FetchError, Fetcher, Held, OnDemand, Secret, Slot, Spawn};
use bytes::Bytes;
use fly_oidc::SecretString;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

pub(crate) type Body = Full<Bytes>;

/// How many distinct `?scopes=` sets get tokens of their own at once (the least recently
/// used and the failing make room for a new one).
pub(crate) const MAX_SCOPE_SETS: usize = 16;
/// How many ID-token audiences are held at once (the same rule).
pub(crate) const MAX_ID_TOKEN_AUDIENCES: usize = 64;

const FLAVOR: &str = "Metadata-Flavor";

/// Makes the slot for a `?scopes=` set other than the configured one (the sorted scopes);
/// its error is the client's 400.
pub(crate) type ScopedFactory = Arc<dyn Fn(&[String]) -> Result<Arc<Slot>, String> + Send + Sync>;
/// Makes the fetcher of the ID token for an audience.
pub(crate) type IdTokenFactory = Arc<dyn Fn(&str) -> Fetcher + Send + Sync>;

pub(crate) struct Gcp {
    pub(crate) slot: Arc<Slot>,
    pub(crate) scopes: Vec<String>,
    /// The account served: the service account's email, or without one the name given to
    /// the federated principal ([`federated_account`]).
    pub(crate) email: String,
    pub(crate) project_number: String,
    pub(crate) project_id: Option<String>,
    pub(crate) factory: Option<ScopedFactory>,
    pub(crate) scoped: OnDemand,
    /// ID tokens per audience, with a service account.
    pub(crate) id_tokens: Option<(IdTokenFactory, OnDemand)>,
}

/// The account name under which the federated principal (no service account) is served:
/// gcloud lists accounts from `instance/service-accounts/` and skips `default`, so the
/// principal needs a name of its own there. It looks like an email (gcloud shows it as the
/// active account) under the reserved `.invalid` domain, since no such mailbox exists:
/// `<provider-id>.<pool>@<project-number>.fly-oidc.invalid`.
pub(crate) fn federated_account(provider: &fly_oidc_gcp::WorkloadIdentityProvider) -> String {
    format!(
        "{}.{}@{}.fly-oidc.invalid",
        provider.provider_id(),
        provider.pool(),
        provider.project_number()
    )
}

pub(crate) struct State {
    pub(crate) auth_token: SecretString,
    pub(crate) aws_default: Option<Arc<Slot>>,
    pub(crate) aws_roles: HashMap<String, Arc<Slot>>,
    pub(crate) gcp: Option<Gcp>,
    pub(crate) token_files: Vec<Arc<Slot>>,
    pub(crate) allowed_hosts: Vec<String>,
    /// Spawns the loops of slots made on demand (scope sets, ID-token audiences).
    pub(crate) spawn: Spawn,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::to_vec(&ErrorBody { code, message }).unwrap_or_default();
    respond(status, "application/json", body)
}

fn not_found(message: &str) -> Response<Body> {
    json_error(StatusCode::NOT_FOUND, "NotFound", message)
}

fn with_flavor(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(FLAVOR, HeaderValue::from_static("Google"));
    response
}

fn text(body: impl Into<Bytes>) -> Response<Body> {
    respond(StatusCode::OK, "application/text", body)
}

impl State {
    /// Whether the request names this server: its `Host` is the listen address or
    /// `localhost`, and so is the authority of an absolute-form target
    /// (`GET http://host/path`), when there is one. (More than one `Host` is refused before.)
    fn host_allowed(&self, uri: &http::Uri, headers: &HeaderMap) -> bool {
        let allowed = |host: &str| {
            self.allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host.trim()))
        };
        let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        allowed(host) && uri.authority().is_none_or(|a| allowed(a.as_str()))
    }

    fn token_matches(&self, presented: &[u8]) -> bool {
        let expected = self.auth_token.expose_secret().as_bytes();
        presented.len() == expected.len() && bool::from(presented.ct_eq(expected))
    }

    /// Answer one request, and log its method, path, query and status at debug level: which
    /// client asked for what (scopes, an audience), never a secret: the query's parameters
    /// by name, with the values of the known harmless ones only ([`loggable_query`]).
    pub(crate) async fn handle(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let response = self.answer(method, uri, headers).await;
        tracing::debug!(
            %method,
            path = %fly_oidc::truncate(&fly_oidc::redact_jwts(uri.path()), 256),
            query = %loggable_query(uri.query()),
            status = response.status().as_u16(),
            "answered"
        );
        response
    }

    async fn answer(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            // Google's metadata server marks every answer, refusals included, with its flavor.
            let mut response = with_flavor(json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "only GET is supported",
            ));
            response
                .headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        // RFC 9112 3.2: a request with more than one Host gets a 400, whatever it asks for.
        if headers.get_all(HOST).iter().nth(1).is_some() {
            return with_flavor(json_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "more than one Host header: a request names one host",
            ));
        }
        let route = route(uri.path(), uri.query());
        match route {
            Route::Root => with_flavor(text("computeMetadata/\n")),
            Route::Healthz => {
                let mut health = self.health();
                if !self.host_allowed(uri, headers) {
                    // Another host (a DNS-rebinding page) gets the states, not what is served.
                    health.without_names();
                }
                respond(
                    StatusCode::OK,
                    "application/json",
                    serde_json::to_vec(&health).unwrap_or_default(),
                )
            }
            Route::NotFound => with_flavor(not_found("no such endpoint on this fly-oidc server")),
            Route::Aws { role } => {
                if !self.host_allowed(uri, headers) {
                    return bad_host();
                }
                self.aws(role.as_deref(), headers)
            }
            Route::Metadata(meta) => {
                // A request relayed by a proxy: GCE refuses X-Forwarded-For; Forwarded
                // (RFC 7239) says the same.
                if headers.contains_key("x-forwarded-for")
                    || headers.contains_key(http::header::FORWARDED)
                {
                    return with_flavor(json_error(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        "requests carrying X-Forwarded-For or Forwarded are refused: the metadata server answers local clients only",
                    ));
                }
                // Exactly `Google`, as GCE compares it.
                let flavor_ok = headers
                    .get(FLAVOR)
                    .is_some_and(|v| v.as_bytes() == b"Google");
                if !flavor_ok {
                    return with_flavor(json_error(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        "missing required header: Metadata-Flavor: Google",
                    ));
                }
                if !self.host_allowed(uri, headers) {
                    return with_flavor(bad_host());
                }
                with_flavor(self.metadata(meta).await)
            }
        }
    }

    fn aws(&self, role: Option<&str>, headers: &HeaderMap) -> Response<Body> {
        let Some(presented) = headers.get(http::header::AUTHORIZATION) else {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "missing Authorization header: send the token of AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)",
            );
        };
        if !self.token_matches(presented.as_bytes()) {
            return json_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "wrong authorization token: send the token of AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) as it is",
            );
        }
        let slot = match role {
            None => self.aws_default.as_ref(),
            Some(name) => self.aws_roles.get(name),
        };
        let Some(slot) = slot else {
            let message = match role {
                None => "no AWS role is configured on this server: pass --aws-role-arn".to_owned(),
                Some(name) => format!(
                    "no role named {name:?} is served here: pass its ARN with --aws-role-arn"
                ),
            };
            return not_found(&message);
        };
        match slot.current().as_deref() {
            Some(Held {
                value: Secret::AwsJson(json),
                ..
            }) => respond(StatusCode::OK, "application/json", json.clone()),
            _ => unavailable(slot),
        }
    }

    async fn metadata(&self, meta: Meta) -> Response<Body> {
        let Some(gcp) = &self.gcp else {
            return not_found(
                "no Google workload identity pool provider is configured on this server: pass --gcp-provider",
            );
        };
        let email = gcp.email.as_str();
        let known = |account: &str| account == "default" || account == email;
        match meta {
            Meta::Listing(listing) => text(listing),
            Meta::ProjectId => match &gcp.project_id {
                Some(id) => text(id.clone()),
                None => not_found("no project id configured: pass --gcp-project"),
            },
            Meta::NumericProjectId => text(gcp.project_number.clone()),
            Meta::UniverseDomain => text(fly_oidc_gcp::UNIVERSE_DOMAIN),
            Meta::Accounts { recursive: false } => text(format!("default/\n{email}/\n")),
            Meta::Accounts { recursive: true } => {
                let info = account_info(email, &gcp.scopes);
                let mut map = serde_json::Map::new();
                map.insert("default".into(), info.clone());
                map.insert(email.to_owned(), info);
                json(&serde_json::Value::Object(map))
            }
            Meta::Account { account, .. }
            | Meta::Email { account }
            | Meta::Scopes { account }
            | Meta::Aliases { account }
            | Meta::Token { account, .. }
            | Meta::Identity { account, .. }
                if !known(&account) =>
            {
                not_found("no such service account on this server")
            }
            Meta::Account {
                recursive: true, ..
            } => json(&account_info(email, &gcp.scopes)),
            Meta::Account {
                recursive: false, ..
            } => text("aliases\nemail\nidentity\nscopes\ntoken\n"),
            Meta::Email { .. } => text(email.to_owned()),
            Meta::Scopes { .. } => text(gcp.scopes.join("\n") + "\n"),
            Meta::Aliases { .. } => text("default\n"),
            Meta::Identity { audience, .. } => match (&gcp.id_tokens, audience) {
                (None, _) => not_found(
                    "identity tokens need a service account (Google signs ID tokens for service accounts only): pass --gcp-service-account; for a Fly OIDC token use `fly-oidc token --audience A`",
                ),
                (Some(_), None) => json_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidAudience",
                    "missing or empty ?audience=: the audience of the ID token, e.g. ?audience=https://example.com",
                ),
                (Some((make, cache)), Some(audience)) => {
                    let make = || {
                        Ok(Arc::new(Slot::new(
                            "gcp-identity",
                            format!("{email} audience {audience}"),
                            make(&audience),
                            gcp.slot.time().clone(),
                        )))
                    };
                    match cache.get(&audience, make, &self.spawn).await {
                        Ok(slot) => match slot.current().as_deref() {
                            Some(Held {
                                value: Secret::Gcp(token),
                                ..
                            }) => text(token.expose_secret().to_owned()),
                            _ => unavailable(&slot),
                        },
                        Err(error) => refused(&error, "gcp identity token"),
                    }
                }
            },
            Meta::Token { scopes, .. } => {
                let slot = match scopes {
                    Some(requested) if !requested.iter().all(|s| gcp.scopes.contains(s)) => {
                        match self.scoped_slot(gcp, requested).await {
                            Ok(slot) => slot,
                            Err(response) => return response,
                        }
                    }
                    _ => gcp.slot.clone(),
                };
                match slot.current().as_deref() {
                    Some(Held {
                        value: Secret::Gcp(token),
                        expires_at,
                        ..
                    }) => {
                        let left = expires_at.duration_since(slot.now());
                        json(&serde_json::json!({
                            "access_token": token.expose_secret(),
                            "expires_in": left.unwrap_or_default().as_secs(),
                            "token_type": "Bearer",
                        }))
                    }
                    _ => unavailable(&slot),
                }
            }
            Meta::Unknown => not_found("this metadata path is not served by fly-oidc"),
        }
    }

    /// The slot for a scope set other than the configured one: made on first use (that
    /// request waits for the first token), renewed in the background while clients ask for
    /// it, in a bounded cache ([`OnDemand`]).
    async fn scoped_slot(
        &self,
        gcp: &Gcp,
        mut requested: Vec<String>,
    ) -> Result<Arc<Slot>, Response<Body>> {
        requested.sort();
        requested.dedup();
        let Some(factory) = &gcp.factory else {
            return Err(json_error(
                StatusCode::BAD_REQUEST,
                "InvalidScopes",
                "this server serves tokens for its configured scopes only: add the scopes with --gcp-scope",
            ));
        };
        let key = requested.join(" ");
        let make = || factory(&requested).map_err(|message| FetchError::new(message, false));
        gcp.scoped
            .get(&key, make, &self.spawn)
            .await
            .map_err(|error| json_error(StatusCode::BAD_REQUEST, "InvalidScopes", &error.message))
    }

    pub(crate) fn health(&self) -> Health {
        let mut credentials = Vec::new();
        // `configured`: the server's own credentials, which make the status; scope sets that
        // clients chose are listed, but neither their refusals nor their expiry once no
        // client asks for them (`idle`) degrade it.
        let mut ok = true;
        let mut push = |slot: &Arc<Slot>, configured: bool| {
            let held = slot.current();
            let last_error = slot.last_error();
            let state = match (&held, &last_error) {
                (Some(_), None) => "ok",
                (Some(_), Some(_)) => "stale",
                (None, None) if !configured => "idle",
                (None, _) => "unavailable",
            };
            ok &= !configured || state == "ok";
            credentials.push(CredentialHealth {
                kind: slot.kind,
                name: slot.name.clone(),
                state,
                expires_at: held
                    .as_ref()
                    .map(|h| fly_oidc::time::format_rfc3339(h.expires_at)),
                last_success: slot.last_success().map(fly_oidc::time::format_rfc3339),
                last_error,
                fetches: slot.fetch_count(),
            });
        };
        if let Some(slot) = &self.aws_default {
            push(slot, true);
        }
        let mut roles: Vec<_> = self
            .aws_roles
            .values()
            .filter(|s| !self.aws_default.as_ref().is_some_and(|d| Arc::ptr_eq(d, s)))
            .collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        for slot in roles {
            push(slot, true);
        }
        if let Some(gcp) = &self.gcp {
            push(&gcp.slot, true);
            for slot in gcp.scoped.slots() {
                push(&slot, false);
            }
        }
        for slot in &self.token_files {
            push(slot, true);
        }
        Health {
            status: if ok { "ok" } else { "degraded" },
            credentials,
        }
    }
}

fn bad_host() -> Response<Body> {
    json_error(
        StatusCode::FORBIDDEN,
        "InvalidHost",
        "the Host header must name this server's listen address or localhost",
    )
}

/// No valid value in `slot`: its last failure, answered with the status that fits it
/// ([`FetchError::answer`]: 503 only for what is transient), or a 503 while none has arrived.
fn unavailable(slot: &Slot) -> Response<Body> {
    match slot.last_failure() {
        Some(error) => refused(&error, &format!("{} {}", slot.kind, slot.name)),
        None => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "CredentialsUnavailable",
            &format!("{} {}: no valid credentials yet", slot.kind, slot.name),
        ),
    }
}

/// `error` for the credential `what`, with the status and code that fit it.
fn refused(error: &FetchError, what: &str) -> Response<Body> {
    let (status, code) = error.answer();
    let message = format!("{what}: no valid credentials: {}", error.message);
    json_error(status, &code, &message)
}

/// The query parameters of a request as the log shows them: the names, and the values of the
/// harmless ones (`scopes`, `audience`, `recursive`, `format`, `licenses`, `alt`); any other
/// value (a `token=` a client put there by mistake) is never logged. Capped at 512 bytes.
pub(crate) fn loggable_query(query: Option<&str>) -> String {
    const SHOWN: &[&str] = &[
        "scopes",
        "audience",
        "recursive",
        "format",
        "licenses",
        "alt",
    ];
    let Some(query) = query else {
        return String::new();
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if SHOWN.contains(&&*name) {
            out.append_pair(&name, &value);
        } else {
            out.append_key_only(&name);
        }
    }
    fly_oidc::truncate(&fly_oidc::redact_jwts(&out.finish()), 512)
}

fn json(value: &serde_json::Value) -> Response<Body> {
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

fn account_info(email: &str, scopes: &[String]) -> serde_json::Value {
    serde_json::json!({
        "aliases": ["default"],
        "email": email,
        "scopes": scopes,
    })
}

/// What `/healthz` answers: the state of each credential, never a secret. To a request that
/// names another host (DNS rebinding), each credential's `name` and `last_error` are left out.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Health {
    /// `ok` when every configured credential is valid and its last refresh worked, else
    /// `degraded` (the scope sets clients asked for are listed but do not count).
    pub status: &'static str,
    /// One entry per credential (AWS roles, the Google token, token files).
    pub credentials: Vec<CredentialHealth>,
}

impl Health {
    /// Leave out what names the credentials (names, and errors that quote them).
    fn without_names(&mut self) {
        for credential in &mut self.credentials {
            credential.name.clear();
            credential.last_error = None;
        }
    }
}

/// The state of one credential in [`Health`].
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CredentialHealth {
    /// `aws`, `gcp` or `token-file`.
    pub kind: &'static str,
    /// The role ARN, the provider name (and scopes), or the token file's path. Empty, and left
    /// out of `/healthz`, for a request that names another host.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `ok` (valid), `stale` (valid, the last refresh failed), `unavailable` (nothing valid),
    /// or, for a scope set a client asked for, `idle` (expired after no client asked for it
    /// again, so it was not renewed).
    pub state: &'static str,
    /// When the held credential expires (RFC 3339 UTC).
    pub expires_at: Option<String>,
    /// When the last fetch succeeded (RFC 3339 UTC).
    pub last_success: Option<String>,
    /// The last failure's message, while the last fetch failed.
    pub last_error: Option<String>,
    /// Fetches made so far (STS / Google exchanges, or token writes).
    pub fetches: u64,
}

/// The hosts a request may name (DNS rebinding defence).
pub(crate) fn allowed_hosts(addr: std::net::SocketAddr) -> Vec<String> {
    let port = addr.port();
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let mut hosts = vec![
        format!("{ip}:{port}"),
        ip.clone(),
        format!("localhost:{port}"),
        "localhost".to_owned(),
    ];
    hosts.dedup();
    hosts
}

/// A server state with fixed credentials, to fuzz request handling without sockets.
pub(crate) mod fuzz_harness {
    use super::*;
    use crate::slot::{Fetcher, fetcher};
    use fly_oidc::time::SharedTimeSource;

    /// What the harness's credentials hold, to check answers against.
    pub(crate) const AUTH_TOKEN: &str = "fuzz-auth-token-0123456789abcdef";
    /// The secret access key served.
    pub(crate) const SECRET_KEY: &str = "fuzz-secret-access-key";
    /// The Google access token served.
    pub(crate) const ACCESS_TOKEN: &str = "ya29.fuzz-access-token";

    /// One answer: status, headers and body.
    #[derive(Debug)]
    pub struct Answer {
        /// The status code.
        pub status: u16,
        /// The `Metadata-Flavor` header, if any.
        pub flavor: Option<String>,
        /// The body.
        pub body: Vec<u8>,
    }

    /// A state on 127.0.0.1:8675 serving one role and a Google token, and a runtime.
    #[derive(Debug)]
    pub struct Harness {
        state: Arc<StateBox>,
        runtime: tokio::runtime::Runtime,
    }

    struct StateBox(State);

    impl std::fmt::Debug for StateBox {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("State")
        }
    }

    fn constant(secret: Secret) -> Fetcher {
        fetcher(secret, |secret| async move {
            let expires = SharedTimeSource::default().now() + Duration::from_secs(3600);
            Ok((secret, expires))
        })
    }

    impl Harness {
        /// Build it, with both credentials fetched.
        pub fn new() -> Self {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"));
            let time = SharedTimeSource::default();
            let json = format!(
                r#"{{"AccessKeyId":"ASIAFUZZ","SecretAccessKey":"{SECRET_KEY}","Token":"t","Expiration":"2030-01-01T00:00:00Z"}}"#
            );
            let aws = Arc::new(Slot::new(
                "aws",
                "arn:aws:iam::123456789012:role/fuzz".into(),
                constant(Secret::AwsJson(Bytes::from(json))),
                time.clone(),
            ));
            let gcp = Arc::new(Slot::new(
                "gcp",
                "projects/1/locations/global/workloadIdentityPools/p/providers/f".into(),
                constant(Secret::Gcp(SecretString::new(ACCESS_TOKEN))),
                time,
            ));
            runtime.block_on(async {
                let _ = aws.fetch().await;
                let _ = gcp.fetch().await;
            });
            let addr: std::net::SocketAddr = ([127, 0, 0, 1], 8675).into();
            let state = State {
                auth_token: SecretString::new(AUTH_TOKEN),
                aws_default: Some(aws.clone()),
                aws_roles: HashMap::from([("fuzz".to_owned(), aws)]),
                gcp: Some(Gcp {
                    slot: gcp,
                    scopes: vec!["https://www.googleapis.com/auth/cloud-platform".into()],
                    email: "f.p@1.fly-oidc.invalid".into(),
                    project_number: "1".into(),
                    project_id: Some("fuzz-project".into()),
                    factory: None,
                    scoped: OnDemand::new(MAX_SCOPE_SETS, fly_oidc::budget::RateLimit::none()),
                    id_tokens: None,
                }),
                token_files: Vec::new(),
                allowed_hosts: allowed_hosts(addr),
                spawn: Box::new(|_| {}),
            };
            Self {
                state: Arc::new(StateBox(state)),
                runtime,
            }
        }

        /// Answer a request given as method, request target and headers. `None` when they
        /// are not a valid HTTP request (hyper would have refused it before us).
        pub fn answer(
            &self,
            method: &[u8],
            target: &str,
            headers: &[(String, Vec<u8>)],
        ) -> Option<Answer> {
            let method = Method::from_bytes(method).ok()?;
            let uri: http::Uri = target.parse().ok()?;
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                let name = http::header::HeaderName::from_bytes(name.as_bytes()).ok()?;
                let value = HeaderValue::from_bytes(value).ok()?;
                map.append(name, value);
            }
            let response = self
                .runtime
                .block_on(self.state.0.handle(&method, &uri, &map));
            let status = response.status().as_u16();
            let flavor = response
                .headers()
                .get(FLAVOR)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let body = self.runtime.block_on(async {
                use http_body_util::BodyExt;
                response
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes().to_vec())
                    .unwrap_or_default()
            });
            Some(Answer {
                status,
                flavor,
                body,
            })
        }
    }

    impl Default for Harness {
        fn default() -> Self {
            Self::new()
        }
    }
}
