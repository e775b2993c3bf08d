//! A fake Fly Machines API that mints real RS256 OIDC tokens.

use crate::fault::FaultQueue;
use crate::jwt::{KeyMaterial, random_hex};
use crate::server::{self, Bound, Clock, Handler, RequestLog, TestBody, Wire, lock, respond};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// How the fake Machines API writes the faults every fake answers alike.
const WIRE: Wire = Wire {
    error_type: "application/json",
    body_type: "text/plain",
    malformed: ("text/plain", "<html>definitely not a token</html>"),
    reset_prefix: b"eyJhbGciOi",
};

/// A token request the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The requested audience (`None` for `{}`).
    pub audience: Option<String>,
    /// Whether the request carried the right bearer token (always true over the socket).
    pub authorized: bool,
    /// Whether it came over the Unix socket (else TCP).
    pub unix: bool,
    /// Whether it asked for AWS's session tags claim (`"aws_principal_tags": true`).
    pub aws_principal_tags: bool,
}

/// The AWS session tags of a token the fake mints when the request asks for
/// `"aws_principal_tags": true`: keys of the fake's own invention, **not Fly's** (Fly does not
/// document which keys it sets; read them from a real token with
/// `fly-oidc token --claims --aws-principal-tags`). Each key maps to a list of one value,
/// AWS's shape; `fake_org` is also transitive:
///
/// | key | value |
/// |---|---|
/// | `fake_app` | the app name |
/// | `fake_org` | the org slug |
/// | `fake_region` | the region |
pub const FAKE_TAG_KEYS: [&str; 3] = ["fake_app", "fake_org", "fake_region"];

/// Configures a [`FakeFlyApi`].
#[derive(Clone)]
pub struct FakeFlyApiBuilder {
    org: String,
    app: String,
    machine_id: String,
    machine_name: String,
    region: String,
    token_lifetime: Duration,
    api_token: Option<String>,
    clock: Clock,
}

server::builder_methods! {
    /// The clock used for `iat`/`nbf`/`exp` (default: the system clock).
    FakeFlyApiBuilder => FakeFlyApi, thread "fake-fly-api", unix socket true, setup
}

server::debug_fields! {
    FakeFlyApiBuilder, |b| org, app, machine_id, machine_name, region, lifetime: b.token_lifetime
}

impl Default for FakeFlyApiBuilder {
    fn default() -> Self {
        Self {
            org: "acme".into(),
            app: "my-app".into(),
            machine_id: "3d8d9e1ab2c7e8".into(),
            machine_name: "quiet-sun-4242".into(),
            region: "ord".into(),
            token_lifetime: Duration::from_secs(600),
            api_token: None,
            clock: Clock::default(),
        }
    }
}

impl FakeFlyApiBuilder {
    server::setters! {
        /// The organization slug (default `acme`): `iss` is `https://oidc.fly.io/<org>`.
        org: (String),
        /// The app name (default `my-app`).
        app: (String),
        /// The Machine id (default `3d8d9e1ab2c7e8`).
        machine_id: (String),
        /// The Machine name (default `quiet-sun-4242`).
        machine_name: (String),
        /// The region (default `ord`).
        region: (String),
        /// How long minted tokens live (default 600 s, like Fly's).
        token_lifetime: (Duration),
        /// The bearer token required over TCP (default: random).
        api_token: Some(String),
    }
}

/// A fake Machines API with the settings `config`, listening where `bound` says: its handle and
/// its request handler.
fn setup(config: FakeFlyApiBuilder, bound: Bound) -> (FakeFlyApi, Handler) {
    let state = Arc::new(State {
        key: KeyMaterial::shared(),
        api_token: config.api_token.clone().unwrap_or_else(|| random_hex(24)),
        url: bound.url(),
        config,
        faults: FaultQueue::default(),
        requests: RequestLog::default(),
        issued: Mutex::new(Vec::new()),
    });
    let handler = server::handler(state.clone(), handle);
    (FakeFlyApi { state, bound }, handler)
}

struct State {
    config: FakeFlyApiBuilder,
    key: Arc<KeyMaterial>,
    api_token: String,
    url: String,
    faults: FaultQueue,
    requests: RequestLog<RecordedRequest>,
    issued: Mutex<Vec<String>>,
}

impl State {
    fn issuer(&self) -> String {
        format!("https://oidc.fly.io/{}", self.config.org)
    }

    /// AWS's session tags claim, with the fake's own keys ([`FAKE_TAG_KEYS`]).
    fn aws_tags(&self) -> Value {
        let c = &self.config;
        let [app, org, region] = FAKE_TAG_KEYS;
        json!({
            "principal_tags": {
                app: [c.app],
                org: [c.org],
                region: [c.region],
            },
            "transitive_tag_keys": [org],
        })
    }

    fn mint(&self, audience: Option<&str>, edit: &dyn Fn(&mut Map<String, Value>)) -> String {
        let c = &self.config;
        let now = self
            .config
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let aud = audience
            .map(str::to_owned)
            .unwrap_or_else(|| format!("https://fly.io/{}", c.org));
        let mut claims = json!({
            "iss": self.issuer(),
            "sub": format!("{}:{}:{}", c.org, c.app, c.machine_name),
            "aud": aud,
            "exp": now + c.token_lifetime.as_secs(),
            "iat": now,
            "nbf": now,
            "jti": format!("{}-{}-{}-{}", random_hex(4), random_hex(2), random_hex(2), random_hex(6)),
            "app_id": format!("{}-id", c.app),
            "app_name": c.app,
            "machine_id": c.machine_id,
            "machine_name": c.machine_name,
            "machine_version": "01JFAKEVERSION0000000000",
            "image": format!("registry.fly.io/{}:deployment-01JFAKE", c.app),
            "image_digest": format!("sha256:{}", "ab".repeat(32)),
            "org_id": format!("{}-org-id", c.org),
            "org_name": c.org,
            "region": c.region,
        });
        if let Value::Object(map) = &mut claims {
            edit(map);
        }
        let jwt = match claims {
            Value::Object(map) => self.key.sign(&map),
            _ => unreachable!("claims is an object"),
        };
        lock(&self.issued).push(jwt.clone());
        jwt
    }
}

/// A running fake Fly Machines API. See the [crate docs](crate).
#[derive(Clone)]
pub struct FakeFlyApi {
    state: Arc<State>,
    bound: Bound,
}

server::debug_fields! {
    FakeFlyApi, |a| socket_path: a.socket_path(), url: a.url(), issuer: a.issuer()
}

impl FakeFlyApi {
    /// A builder with Fly-like defaults (org `acme`, app `my-app`).
    pub fn builder() -> FakeFlyApiBuilder {
        FakeFlyApiBuilder::default()
    }

    /// Start one with the defaults.
    pub async fn start() -> std::io::Result<FakeFlyApi> {
        Self::builder().start().await
    }

    /// The Unix socket it serves on (use as `FLY_OIDC_SOCKET`).
    pub fn socket_path(&self) -> &Path {
        self.bound.socket_path.as_deref().unwrap_or(Path::new(""))
    }

    /// The TCP base URL, `http://127.0.0.1:PORT` (use as `FLY_API_HOSTNAME`).
    pub fn url(&self) -> String {
        self.state.url.clone()
    }

    /// The TCP address.
    pub fn addr(&self) -> SocketAddr {
        self.bound.addr
    }

    /// The bearer token required over TCP (use as `FLY_API_TOKEN`).
    pub fn api_token(&self) -> &str {
        &self.state.api_token
    }

    /// The `iss` of minted tokens, `https://oidc.fly.io/<org>`.
    pub fn issuer(&self) -> String {
        self.state.issuer()
    }

    /// The key id in minted tokens' headers.
    pub fn kid(&self) -> &str {
        &self.state.key.kid
    }

    /// The JWKS, `{"keys": [<the public key>]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.state.key.jwk.clone()] })
    }

    /// Where the JWKS is served over TCP.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.state.url)
    }

    /// Mint a signed token without an HTTP request (not counted in [`request_count`](Self::request_count)).
    pub fn mint(&self, audience: Option<&str>) -> String {
        self.state.mint(audience, &|_| {})
    }

    /// Mint a signed token carrying AWS's session tags claim, as the Machines API does for a
    /// request with `"aws_principal_tags": true` (keys: [`FAKE_TAG_KEYS`]).
    pub fn mint_with_aws_tags(&self, audience: Option<&str>) -> String {
        let tags = self.state.aws_tags();
        self.state.mint(audience, &|claims| {
            claims.insert(fly_oidc::AWS_TAGS_CLAIM.into(), tags.clone());
        })
    }

    /// Mint a token after editing its claims (to fake a wrong issuer, an old `exp`, ...).
    pub fn mint_with(
        &self,
        audience: Option<&str>,
        edit: impl Fn(&mut Map<String, Value>),
    ) -> String {
        self.state.mint(audience, &edit)
    }

    /// Every token minted so far (for scanning outputs for leaks).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    server::request_methods!(
        RecordedRequest,
        "[`Fault::Error`](crate::Fault::Error) and [`Fault::Echo`](crate::Fault::Echo) answer Fly's `{\"error\": message}` (the echo \
         quotes the request's `Authorization` header and body); the requests are the \
         `POST /v1/tokens/oidc` ones."
    );
}

fn json_error(status: u16, message: &str) -> Response<TestBody> {
    respond(
        status,
        "application/json",
        json!({ "error": message }).to_string(),
    )
}

async fn handle(req: Request<Incoming>, unix: bool, state: Arc<State>) -> Response<TestBody> {
    let state = &*state;
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let org_jwks = format!("/{}/.well-known/jwks.json", state.config.org);
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/tokens/oidc") => token(req, state, unix).await,
        ("GET", "/.well-known/openid-configuration") => respond(
            200,
            "application/json",
            json!({
                "issuer": state.issuer(),
                "jwks_uri": format!("{}/.well-known/jwks.json", state.url),
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf",
                    "app_id", "app_name", "machine_id", "machine_name", "machine_version",
                    "image", "image_digest", "org_id", "org_name", "region"],
            })
            .to_string(),
        ),
        ("GET", p) if p == "/.well-known/jwks.json" || p == org_jwks => respond(
            200,
            "application/json",
            json!({ "keys": [state.key.jwk.clone()] }).to_string(),
        ),
        (_, "/v1/tokens/oidc") => json_error(405, "method not allowed"),
        _ => json_error(404, "not found"),
    }
}

async fn token(req: Request<Incoming>, state: &State, unix: bool) -> Response<TestBody> {
    state.requests.arrive();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authorized = unix
        || authorization
            .as_deref()
            .is_some_and(|v| v == format!("Bearer {}", state.api_token));
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return json_error(400, "could not read the request body"),
    };
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let audience = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("aud"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let wants_tags = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("aws_principal_tags"))
        == Some(&Value::Bool(true));
    state.requests.record(RecordedRequest {
        audience: audience.clone(),
        authorized,
        unix,
        aws_principal_tags: wants_tags,
    });
    let fault = WIRE.answer_fault(
        state.faults.pop(),
        |status, _code, message| json_error(status, message),
        |status| {
            let message = format!(
                "rejected request with authorization {:?} and body {}",
                authorization.as_deref().unwrap_or_default(),
                String::from_utf8_lossy(&body)
            );
            json_error(status, &message)
        },
    );
    if let Some(answer) = fault.await {
        return answer;
    }
    if !authorized {
        return json_error(401, "unauthorized");
    }
    match parsed {
        Ok(Value::Object(map)) => {
            if map.get("aud").is_some_and(|a| !a.is_string()) {
                return json_error(400, "aud must be a string");
            }
            if map
                .get("aws_principal_tags")
                .is_some_and(|t| !t.is_boolean())
            {
                return json_error(400, "aws_principal_tags must be a boolean");
            }
        }
        _ => return json_error(400, "invalid JSON body"),
    }
    let tags = wants_tags.then(|| state.aws_tags());
    let jwt = state.mint(audience.as_deref(), &|claims| {
        if let Some(tags) = &tags {
            claims.insert(fly_oidc::AWS_TAGS_CLAIM.into(), tags.clone());
        }
    });
    respond(200, "text/plain; charset=utf-8", jwt)
}

#[cfg(test)]
mod tests {
    use super::FakeFlyApi;

    /// The socket's temporary directory is gone once the last handle is dropped, before the
    /// drop returns (not later, on the server's thread, which the end of a process can cut
    /// short).
    #[test]
    fn dropping_the_last_handle_removes_the_socket_directory() {
        let fly = FakeFlyApi::builder().start_blocking().unwrap();
        let dir = fly.socket_path().parent().unwrap().to_owned();
        assert!(fly.socket_path().exists());
        let clone = fly.clone();
        drop(fly);
        assert!(dir.exists(), "a clone still serves");
        drop(clone);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
