//! The Fly OIDC token client.

use crate::budget::RateLimit;
use crate::config::ProviderConfig;
use crate::endpoint::{PlainHttp, check_endpoint_url, display_url, is_trusted_plain_http_host};
use crate::env::Env;
use crate::error::{BuildError, Error, ErrorKind, Message, Origin, Setting, redact_jwts, truncate};
use crate::fs::{ReadError, read_body_capped, read_capped};
use crate::retry::RetryConfig;
use crate::time::SharedTimeSource;
use crate::token::{FlyToken, MAX_TOKEN_BYTES, SecretString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The Machines API socket inside every Fly Machine.
const DEFAULT_SOCKET: &str = "/.fly/api";
/// Read the token from this file (re-read on every fetch).
const ENV_TOKEN_FILE: &str = "FLY_OIDC_TOKEN_FILE";
/// Use the Machines API over this Unix socket.
const ENV_SOCKET: &str = "FLY_OIDC_SOCKET";
/// Use the Machines API over HTTP(S) at this URL (for example `https://api.machines.dev`).
const ENV_API_HOSTNAME: &str = "FLY_API_HOSTNAME";
/// The bearer token for [`ENV_API_HOSTNAME`].
const ENV_API_TOKEN: &str = "FLY_API_TOKEN";
/// The audience of the Fly token (the client's [`Builder::audience`]; the AWS provider's
/// default audience too).
pub const ENV_AUDIENCE: &str = "FLY_OIDC_AUDIENCE";
/// Ask for AWS's session tags claim in the tokens [`FlyOidcClient::fetch_default_token`]
/// fetches (the client's [`Builder::aws_principal_tags`]; the AWS provider's
/// `principal_tags` too): `1`/`true`/`yes`/`on`.
pub const ENV_AWS_PRINCIPAL_TAGS: &str = "FLY_OIDC_AWS_PRINCIPAL_TAGS";
/// The path of the OIDC token endpoint.
const TOKEN_PATH: &str = "/v1/tokens/oidc";

/// The token file setting ([`Builder::token_file`], `FLY_OIDC_TOKEN_FILE`, `--token-file`).
pub const TOKEN_FILE: Setting = Setting::new("token_file", Some(ENV_TOKEN_FILE)).flag("token-file");
/// The Machines API socket setting ([`Builder::socket`], `FLY_OIDC_SOCKET`, `--socket`).
pub const SOCKET: Setting = Setting::new("socket", Some(ENV_SOCKET)).flag("socket");
/// The Machines API URL setting ([`Builder::api_url`], `FLY_API_HOSTNAME`, `--api-url`).
pub const API_URL: Setting = Setting::new("api_url", Some(ENV_API_HOSTNAME)).flag("api-url");
/// The Machines API token setting ([`Builder::api_token`], `FLY_API_TOKEN`).
pub const API_TOKEN: Setting = Setting::new("api_token", Some(ENV_API_TOKEN));
const AUDIENCE: Setting = Setting::new("audience", Some(ENV_AUDIENCE)).flag("audience");
const AWS_PRINCIPAL_TAGS: Setting =
    Setting::new("aws_principal_tags", Some(ENV_AWS_PRINCIPAL_TAGS)).flag("aws-principal-tags");

/// What keeps a token file fresh, for the error about a stale one; `set_by` names the token
/// file's setting as it was given.
fn token_file_freshness(set_by: &Message) -> Message {
    Message::from("whatever writes it is not keeping it fresh. Fly's init rewrites /.fly/oidc_token (about every 9 minutes) only when AWS_ROLE_ARN is set on the app: set it, or drop the token file setting (")
        .append(set_by.clone())
        .text(") so the Machines API mints a fresh token for every request")
}

/// The rules of every audience setting (`setting`, from `origin`): not empty (a blank value),
/// not a variable that is not valid UTF-8 (read with `U+FFFD`: never send that audience), and
/// no control character inside (no audience has one; surrounding white space is trimmed).
///
/// ```
/// use fly_oidc::{Origin, Setting};
/// const AUDIENCE: Setting = Setting::new("audience", None);
/// assert!(fly_oidc::check_audience(AUDIENCE, "sts.amazonaws.com", &Origin::Builder).is_ok());
/// let err = fly_oidc::check_audience(AUDIENCE, " ", &Origin::Builder).unwrap_err();
/// assert!(err.reason().starts_with("the audience must not be empty"), "{err}");
/// assert!(fly_oidc::check_audience(AUDIENCE, "a\nb", &Origin::Builder).is_err());
/// ```
///
/// # Errors
/// A [`BuildError`] naming `setting`.
pub fn check_audience(setting: Setting, audience: &str, origin: &Origin) -> Result<(), BuildError> {
    let why = if audience.trim().is_empty() {
        "the audience must not be empty: give one, or leave it out for the default"
    } else if audience.contains(char::REPLACEMENT_CHARACTER) {
        "the audience is not valid UTF-8"
    } else if audience.trim().contains(char::is_control) {
        "the audience holds a control character (a newline, say), which no audience has"
    } else {
        return Ok(());
    };
    Err(BuildError::invalid(setting, origin.clone(), why))
}

/// What to set off a Fly Machine, the settings named by the front end: the Machines API's URL
/// and its token, or a token file (the error of a missing default socket; `fly-oidc doctor`'s
/// fix).
pub fn not_on_fly_hint() -> Message {
    Message::from("set the Machines API's URL (")
        .setting(API_URL)
        .text(") and its token (")
        .setting(API_TOKEN)
        .text("), or a token file (")
        .setting(TOKEN_FILE)
        .text(")")
}

/// The end of the message of a socket refused to this process: the token file instead.
fn use_a_token_file() -> Message {
    Message::from("; fetch the token before dropping root, or use a token file (")
        .setting(TOKEN_FILE)
        .text(")")
}

/// What a token request asks of the Machines API besides its audience
/// ([`FlyOidcClient::fetch_token_with`]). A token minted with other options is another token:
/// a cache of Fly tokens keys on the options as on the audience.
///
/// ```
/// use fly_oidc::TokenOptions;
/// let tagged = TokenOptions::default().aws_principal_tags(true);
/// assert!(tagged.wants_aws_principal_tags());
/// assert_ne!(tagged, TokenOptions::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TokenOptions {
    aws_principal_tags: bool,
}

impl TokenOptions {
    /// Ask for AWS's session tags claim ([`AWS_TAGS_CLAIM`](crate::AWS_TAGS_CLAIM)): the
    /// request then carries `"aws_principal_tags": true` next to `aud`, as Fly's own clients
    /// send it (fly-go's `GetOIDCToken(ctx, aud, aws)`). STS makes the claim's tags session
    /// tags, if the role's trust policy allows `sts:TagSession`.
    pub const fn aws_principal_tags(mut self, yes: bool) -> Self {
        self.aws_principal_tags = yes;
        self
    }

    /// Whether AWS's session tags claim is asked for.
    pub const fn wants_aws_principal_tags(&self) -> bool {
        self.aws_principal_tags
    }

    /// The JSON body of a request for `audience` with these options.
    fn body(&self, audience: Option<&str>) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        if let Some(aud) = audience {
            body.insert("aud".into(), aud.into());
        }
        if self.aws_principal_tags {
            body.insert("aws_principal_tags".into(), true.into());
        }
        serde_json::Value::Object(body)
    }
}

/// Where tokens come from. See [`Builder`] for how it is chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// A file holding a JWT, re-read on every fetch.
    File(PathBuf),
    /// The Machines API over a Unix socket.
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// Whether this is the default `/.fly/api` (chosen because nothing else was set).
        is_default: bool,
    },
    /// The Machines API over HTTP(S), with a bearer token.
    Http {
        /// The API's base URL, without a trailing slash.
        base_url: String,
        /// The bearer token (redacted in `Debug`).
        api_token: SecretString,
    },
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::File(p) => write!(f, "the token file {}", p.display()),
            TokenSource::Socket { path, .. } => {
                write!(f, "the Machines API socket {}", path.display())
            }
            TokenSource::Http { base_url, .. } => write!(f, "the Machines API at {base_url}"),
        }
    }
}

/// Configures a [`FlyOidcClient`].
///
/// The token source is chosen in this order; settings made on the builder beat every
/// environment variable, and the first match wins within each group:
///
/// 1. [`token_file`](Builder::token_file) / `FLY_OIDC_TOKEN_FILE`
/// 2. [`socket`](Builder::socket) / `FLY_OIDC_SOCKET`
/// 3. [`api_url`](Builder::api_url) / `FLY_API_HOSTNAME`, with
///    [`api_token`](Builder::api_token) / `FLY_API_TOKEN` (required)
/// 4. the Unix socket `/.fly/api`
#[derive(Clone, Debug, Default)]
pub struct Builder {
    config: ProviderConfig,
    token_file: Option<PathBuf>,
    socket: Option<PathBuf>,
    api_url: Option<String>,
    api_token: Option<SecretString>,
    audience: Option<String>,
    aws_principal_tags: Option<bool>,
    default_socket: Option<PathBuf>,
    rate_limit: Option<RateLimit>,
}

impl Builder {
    /// What this client shares with every provider (replacing any config given before): the
    /// environment its `FLY_*` variables are read from, the clock a token file's freshness is
    /// checked against ([`FlyOidcClient::fetch_token`]), retries, timeouts and
    /// `allow_insecure_http`, each default as [`ProviderConfig`] says. Its Fly client is not
    /// used here.
    pub fn configure(mut self, config: &ProviderConfig) -> Self {
        self.config = config.clone();
        self
    }

    /// Read the token from this file on every fetch.
    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_file = Some(path.into());
        self
    }

    /// Use the Machines API over this Unix socket.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Use the Machines API over HTTP(S) at this base URL.
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// The bearer token for [`api_url`](Builder::api_url) (default: `FLY_API_TOKEN`).
    pub fn api_token(mut self, token: impl Into<SecretString>) -> Self {
        self.api_token = Some(token.into());
        self
    }

    /// The audience [`FlyOidcClient::fetch_default_token`] asks for (default:
    /// `FLY_OIDC_AUDIENCE`, else none: Fly then uses `https://fly.io/<org>`). A blank value is
    /// an invalid setting ([`check_audience`]), not the default.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Whether [`FlyOidcClient::fetch_default_token`] asks for AWS's session tags claim
    /// ([`TokenOptions::aws_principal_tags`]; default: `FLY_OIDC_AWS_PRINCIPAL_TAGS`, else no).
    pub fn aws_principal_tags(mut self, yes: bool) -> Self {
        self.aws_principal_tags = Some(yes);
        self
    }

    /// The socket used when nothing else is configured (default `/.fly/api`).
    /// Tests point this at a socket that does not exist to simulate "not on Fly".
    pub fn default_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.default_socket = Some(path.into());
        self
    }

    /// How often the Machines API (socket or HTTP) may be asked, across every clone of the
    /// client and every attempt of its retries (default [`RateLimit::default`]: a burst of 3,
    /// then one request per second, Fly's documented limit). A request over the limit waits
    /// for its turn; see [`crate::budget`]. A token file is never limited.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Resolve the token source and build the client.
    ///
    /// Fails with a [`BuildError`] when the HTTP mode has no API token or a bad URL, or
    /// `FLY_OIDC_ALLOW_INSECURE_HTTP` is not a yes/no value. A missing socket or token file
    /// is reported when a token is fetched.
    pub fn build(self) -> Result<FlyOidcClient, BuildError> {
        let config = &self.config;
        let env = config.env();
        let allow_insecure = config.allow_insecure_http()?;
        let api_token = || {
            let given = match &self.api_token {
                Some(token) => Some((token.clone(), Origin::Builder)),
                None => env
                    .get(ENV_API_TOKEN)
                    .map(|t| (SecretString::new(t), Origin::Env(ENV_API_TOKEN.into()))),
            };
            let missing = || {
                BuildError::missing(
                    API_TOKEN,
                    "no Fly API token: the Machines API over HTTP needs one (for example \
                     from `fly tokens create deploy`; on a Fly Machine, use its socket instead)",
                )
            };
            let (token, origin) = given.ok_or_else(missing)?;
            clean_api_token(&token)
                .map_err(|why| BuildError::invalid(API_TOKEN, origin, why))?
                .ok_or_else(missing)
        };
        let http = |url: &str, origin: Origin| -> Result<TokenSource, BuildError> {
            Ok(TokenSource::Http {
                base_url: normalize_base_url(url, allow_insecure)
                    .map_err(|why| BuildError::invalid(API_URL, origin, why))?,
                api_token: api_token()?,
            })
        };
        let named = |setting| Message::default().name(setting);
        let socket = |path| TokenSource::Socket {
            path,
            is_default: false,
        };
        let (source, set_by) = if let Some(path) = &self.token_file {
            (TokenSource::File(path.clone()), named(TOKEN_FILE))
        } else if let Some(path) = &self.socket {
            (socket(path.clone()), named(SOCKET))
        } else if let Some(url) = &self.api_url {
            (http(url, Origin::Builder)?, named(API_URL))
        } else if let Some(path) = env.get(ENV_TOKEN_FILE) {
            (TokenSource::File(path.into()), ENV_TOKEN_FILE.into())
        } else if let Some(path) = env.get(ENV_SOCKET) {
            (socket(path.into()), ENV_SOCKET.into())
        } else if let Some((url, origin)) = env.setting(API_URL) {
            (http(&url, origin)?, ENV_API_HOSTNAME.into())
        } else {
            let source = TokenSource::Socket {
                path: self
                    .default_socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
                is_default: true,
            };
            (source, "the default socket".into())
        };
        let connect_timeout = config.connect_timeout().unwrap_or(Duration::from_secs(1));
        let timeout = config.timeout().unwrap_or(Duration::from_secs(5));
        let audience = match self.audience.clone() {
            Some(a) => Some((a, Origin::Builder)),
            None => env
                .get(ENV_AUDIENCE)
                .map(|a| (a, Origin::Env(ENV_AUDIENCE.into()))),
        };
        if let Some((audience, origin)) = &audience {
            check_audience(AUDIENCE, audience, origin)?;
        }
        let audience = audience.map(|(a, _)| a.trim().to_owned());
        let aws_principal_tags = match self.aws_principal_tags {
            Some(yes) => yes,
            None => env.flag(AWS_PRINCIPAL_TAGS)?.unwrap_or(false),
        };
        Ok(FlyOidcClient {
            inner: Arc::new(Inner {
                source,
                set_by,
                audience,
                options: TokenOptions::default().aws_principal_tags(aws_principal_tags),
                http: tokio::sync::OnceCell::new(),
                retry: config.retry().cloned().unwrap_or_default(),
                connect_timeout,
                timeout,
                env,
                time: config.time_source(),
                rate_limit: self.rate_limit.unwrap_or_default(),
            }),
        })
    }
}

/// Install `ring` as the process's rustls crypto provider if none is installed yet, for
/// libraries (`google-cloud-auth`) that build their own HTTP clients without one.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A `reqwest` client builder with our timeouts and rustls on `ring`.
///
/// For HTTPS, [`https_client`] gives it the roots every fly-oidc client trusts; without them
/// `reqwest` fails to build where the system has no CA certificates.
///
/// Installs `ring` as the process's rustls crypto provider if none is installed yet.
pub(crate) fn http_client_builder(
    connect_timeout: Duration,
    timeout: Duration,
) -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("fly-oidc/", env!("CARGO_PKG_VERSION")))
}

/// The HTTPS client of every fly-oidc client: our timeouts and user agent, rustls on `ring`,
/// trusting the system's root certificates (`SSL_CERT_FILE`/`SSL_CERT_DIR` from `env`), else
/// the bundled ones ([`crate::tls`]).
///
/// # Errors
/// [`ErrorKind::InvalidConfiguration`] when the client cannot be set up.
pub fn https_client(
    env: &Env,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, Error> {
    let builder = http_client_builder(connect_timeout, timeout)
        .tls_backend_preconfigured(crate::tls::RootCertificates::load(env).client_config()?);
    build_client(builder)
}

/// `builder`'s client; a failure is [`ErrorKind::InvalidConfiguration`].
fn build_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, Error> {
    builder.build().map_err(|e| {
        Error::new(
            ErrorKind::InvalidConfiguration,
            format!("could not set up the HTTP client: {e}"),
        )
        .with_source(e)
    })
}

/// A TLS configuration that trusts nothing, for clients that only speak plain HTTP.
fn no_roots_tls_config() -> Result<rustls::ClientConfig, Error> {
    crate::tls::config_trusting(rustls::RootCertStore::empty())
}

/// The Machines API base URL with a scheme (`http` for loopback and `_api.internal`, else
/// `https`) and no trailing slash; the error is the reason it is refused.
fn normalize_base_url(raw: &str, allow_insecure: bool) -> Result<String, String> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        let host = raw.split([':', '/']).next().unwrap_or_default();
        let scheme = if is_trusted_plain_http_host(host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{raw}")
    };
    check_endpoint_url(
        &with_scheme,
        allow_insecure,
        PlainHttp::LoopbackAndFlyPrivate,
    )
    .map_err(|why| {
        format!(
            "invalid Machines API URL {:?}: {why}; use a URL such as https://api.machines.dev",
            display_url(raw)
        )
    })
}

struct Inner {
    source: TokenSource,
    /// What set the source, as errors name it: the setting `token_file` (a front end names
    /// it by its flag) or `FLY_OIDC_TOKEN_FILE`, say.
    set_by: Message,
    audience: Option<String>,
    /// What [`FlyOidcClient::fetch_default_token`] asks for besides the audience.
    options: TokenOptions,
    /// Built on first use, so a caller that never fetches (a warm cache) never pays for it.
    http: tokio::sync::OnceCell<reqwest::Client>,
    connect_timeout: Duration,
    retry: RetryConfig,
    timeout: Duration,
    /// Where `SSL_CERT_FILE`/`SSL_CERT_DIR` are read when the HTTP client is built.
    env: Env,
    time: SharedTimeSource,
    /// The Machines API budget, shared by every clone.
    rate_limit: RateLimit,
}

/// Fetches Fly OIDC tokens. Cheap to clone; clones share one HTTP connection pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// // On a Fly Machine: the /.fly/api socket. Elsewhere: FLY_API_HOSTNAME + FLY_API_TOKEN,
/// // or FLY_OIDC_TOKEN_FILE.
/// let client = fly_oidc::FlyOidcClient::from_env()?;
/// let token = client.fetch_token(Some("sts.amazonaws.com")).await?;
/// println!("subject: {:?}", token.claims().sub);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FlyOidcClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for FlyOidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlyOidcClient")
            .field("source", &self.inner.source)
            .field("audience", &self.inner.audience)
            .field("options", &self.inner.options)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl FlyOidcClient {
    /// A builder.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A client configured from the real environment alone.
    pub fn from_env() -> Result<Self, BuildError> {
        Builder::default().build()
    }

    /// Where tokens come from.
    pub fn source(&self) -> &TokenSource {
        &self.inner.source
    }

    /// The configured audience ([`Builder::audience`], else `FLY_OIDC_AUDIENCE`), if any.
    pub fn audience(&self) -> Option<&str> {
        self.inner.audience.as_deref()
    }

    /// What [`fetch_default_token`](Self::fetch_default_token) asks for besides the audience
    /// ([`Builder::aws_principal_tags`], else `FLY_OIDC_AWS_PRINCIPAL_TAGS`).
    pub fn default_options(&self) -> TokenOptions {
        self.inner.options
    }

    /// Fetch a fresh token for the configured [`audience`](Self::audience) (none configured:
    /// Fly's default, `https://fly.io/<org>`) with the configured
    /// [`default_options`](Self::default_options). The cloud providers ask for their own
    /// audience and options with [`fetch_token_with`](Self::fetch_token_with) instead.
    pub async fn fetch_default_token(&self) -> Result<FlyToken, Error> {
        self.fetch_token_with(self.audience(), self.inner.options)
            .await
    }

    /// Fetch a fresh token for `audience` (`None`: Fly's default, `https://fly.io/<org>`).
    ///
    /// Every call to the Machines API mints a new token, and waits for its turn in the
    /// budget every clone of this client shares ([`Builder::rate_limit`]: by default a burst
    /// of 3, then one a second). Transient failures (connection errors, timeouts, 429, 5xx)
    /// are retried with jittered backoff, each attempt taking its turn. A token file is
    /// re-read and its audience is whatever was written there; a token file whose token has
    /// expired or has less than 30 s left is an [`ErrorKind::StaleToken`] error naming the
    /// file and when the token expired.
    pub async fn fetch_token(&self, audience: Option<&str>) -> Result<FlyToken, Error> {
        self.fetch_token_with(audience, TokenOptions::default())
            .await
    }

    /// Fetch a fresh token for `audience` with `options` (such as AWS's session tags claim,
    /// [`TokenOptions::aws_principal_tags`]), as [`fetch_token`](Self::fetch_token) does. A
    /// token file cannot mint one: its token is used as it is, with a warning when it lacks
    /// the session tags asked for.
    pub async fn fetch_token_with(
        &self,
        audience: Option<&str>,
        options: TokenOptions,
    ) -> Result<FlyToken, Error> {
        self.inner
            .retry
            .run("fetching a Fly OIDC token", Error::is_transient, || {
                self.fetch_once(audience, options)
            })
            .await
    }

    async fn fetch_once(
        &self,
        audience: Option<&str>,
        options: TokenOptions,
    ) -> Result<FlyToken, Error> {
        match &self.inner.source {
            TokenSource::File(path) => {
                let token = read_token_file(path, audience, &self.inner.set_by)?;
                if options.aws_principal_tags && token.claims().aws_session_tags().is_none() {
                    tracing::warn!(
                        file = %path.display(),
                        "AWS session tags were asked for, but the token file's token has no {} claim; a token file cannot mint a new token",
                        crate::AWS_TAGS_CLAIM
                    );
                }
                token.ensure_fresh(
                    self.inner.time.now(),
                    &format!("the token file {}", path.display()),
                    token_file_freshness(&self.inner.set_by),
                )?;
                Ok(token)
            }
            source => self.fetch_from_api(source, audience, options).await,
        }
    }

    async fn fetch_from_api(
        &self,
        source: &TokenSource,
        audience: Option<&str>,
        options: TokenOptions,
    ) -> Result<FlyToken, Error> {
        let (url, bearer) = match source {
            TokenSource::Socket { path, is_default } => {
                check_socket(path, *is_default, &self.inner.set_by)?;
                (format!("http://localhost{TOKEN_PATH}"), None)
            }
            TokenSource::Http {
                base_url,
                api_token,
            } => (format!("{base_url}{TOKEN_PATH}"), Some(api_token)),
            TokenSource::File(_) => unreachable!("handled by fetch_once"),
        };
        let http = self
            .inner
            .http
            .get_or_try_init(|| async { self.build_http_client() })
            .await?;
        // Every attempt, retries included, waits for its turn in the shared budget.
        self.inner.rate_limit.acquire().await;
        let body = options.body(audience);
        tracing::debug!(%source, audience = ?audience, aws_principal_tags = options.aws_principal_tags, "requesting a Fly OIDC token");
        let mut request = http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(source, e))?;
        let status = response.status().as_u16();
        let body = read_body_capped(response, MAX_TOKEN_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::Http(e) => self.transport_error(source, e),
                other => too_large(source, other),
            })?;
        let token = token_from_response(source, status, body)?;
        tracing::debug!(claims = %token.claims().trust_summary(), "received a Fly OIDC token");
        Ok(token)
    }

    fn build_http_client(&self) -> Result<reqwest::Client, Error> {
        let (connect_timeout, timeout) = (self.inner.connect_timeout, self.inner.timeout);
        match &self.inner.source {
            // Plain HTTP over the socket: skip loading the system's root certificates.
            TokenSource::Socket { path, .. } => build_client(
                http_client_builder(connect_timeout, timeout)
                    .tls_backend_preconfigured(no_roots_tls_config()?)
                    .unix_socket(path.as_path()),
            ),
            _ => https_client(&self.inner.env, connect_timeout, timeout),
        }
    }

    fn transport_error(&self, source: &TokenSource, err: reqwest::Error) -> Error {
        if find_io_error(&err).is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied) {
            return Error::new(
                ErrorKind::PermissionDenied,
                Message::from(format!(
                    "permission denied connecting to {source}: Fly serves the Machines API socket \
                     only to privileged processes; run as root"
                ))
                .append(use_a_token_file()),
            )
            .with_source(err);
        }
        let what = if err.is_timeout() {
            format!(
                "timed out after {:?} waiting for {source}",
                self.inner.timeout
            )
        } else if err.is_connect() {
            format!("could not connect to {source}")
        } else {
            format!("the connection to {source} failed")
        };
        Error::new(
            ErrorKind::Transient,
            format!("{what}; this is usually transient, try again"),
        )
        .with_source(err)
    }
}

fn find_io_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    std::iter::successors(Some(err), |e| e.source()).find_map(|e| e.downcast_ref())
}

/// `token` without surrounding whitespace (a newline from `$(cat file)` or a secret store);
/// `None` when nothing is left. A token with a control character inside, or one that was
/// not valid UTF-8 (read with `U+FFFD`), is refused; the reason never quotes the token.
fn clean_api_token(token: &SecretString) -> Result<Option<SecretString>, &'static str> {
    let trimmed = token.expose_secret().trim();
    if trimmed.contains('\u{FFFD}') {
        return Err(
            "the Fly API token is not valid UTF-8; set it to the token `fly tokens create` printed",
        );
    }
    if trimmed.chars().any(char::is_control) {
        return Err(
            "the Fly API token contains a control character; set it to the token `fly tokens create` printed, on one line",
        );
    }
    Ok((!trimmed.is_empty()).then(|| SecretString::new(trimmed)))
}

/// The longest path a Unix socket address holds (`sun_path`'s 108 bytes, less the NUL).
const SOCKET_PATH_MAX: usize = 107;

/// Check that `path` (set by `set_by`) is a Unix socket before connecting to it.
fn check_socket(path: &Path, is_default: bool, set_by: &Message) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt as _;
    // A path no retry can make a socket: the setting is wrong, not the network.
    let cannot_name = |why: String| {
        Error::new(
            ErrorKind::InvalidConfiguration,
            Message::from(format!(
                "the Machines API socket path {} cannot name a socket ({why}) (from ",
                truncate(&path.display().to_string(), 200)
            ))
            .append(set_by.clone())
            .text("); check the path"),
        )
    };
    if path.as_os_str().len() > SOCKET_PATH_MAX {
        return Err(cannot_name(format!(
            "it is longer than the {SOCKET_PATH_MAX} bytes a Unix socket's path holds"
        )));
    }
    match std::fs::symlink_metadata(path) {
        Ok(_) => match std::fs::metadata(path).map(|m| m.file_type()) {
            // Something else at that path (a file, a directory): connecting would fail
            // every time, so it is the setting that is wrong, not the network.
            Ok(t) if !t.is_socket() => {
                let what = if t.is_dir() {
                    "a directory"
                } else if t.is_file() {
                    "a regular file"
                } else {
                    "not a socket"
                };
                let shown = path.display();
                Err(Error::new(
                    ErrorKind::InvalidConfiguration,
                    Message::from(format!(
                        "{shown} is {what}, not the Machines API's Unix socket (from "
                    ))
                    .append(set_by.clone())
                    .text("); give the path of the socket"),
                ))
            }
            _ => Ok(()), // a socket, or let the connection attempt report it
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(if is_default {
            Error::new(
                ErrorKind::NotOnFly,
                Message::from(format!(
                    "no Machines API socket at {}: not on a Fly Machine? ",
                    path.display()
                ))
                .append(not_on_fly_hint()),
            )
        } else {
            Error::new(
                ErrorKind::InvalidConfiguration,
                Message::from(format!(
                    "the Machines API socket {} does not exist (from ",
                    path.display()
                ))
                .append(set_by.clone())
                .text("); check the path"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Error::new(
            ErrorKind::PermissionDenied,
            Message::from(format!(
                "permission denied on the Machines API socket {}: Fly serves it only to privileged processes",
                path.display()
            ))
            .append(use_a_token_file()),
        )),
        // A path too long, or through a file: no retry can make it a socket.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::InvalidFilename | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Err(cannot_name(e.to_string()))
        }
        Err(_) => Ok(()), // let the connection attempt report it
    }
}

/// Read the token file at `path` (set by `set_by`, which errors name).
fn read_token_file(
    path: &Path,
    audience: Option<&str>,
    set_by: &Message,
) -> Result<FlyToken, Error> {
    let source = TokenSource::File(path.to_owned());
    let file_error = |e: std::io::Error| {
        let from = |before: String, after: &str| {
            Message::from(before)
                .text(" (from ")
                .append(set_by.clone())
                .text(format!("){after}"))
        };
        let (kind, hint) = match e.kind() {
            std::io::ErrorKind::NotFound => (
                ErrorKind::InvalidConfiguration,
                from(
                    "it does not exist".into(),
                    "; check the path (Fly writes /.fly/oidc_token only when AWS_ROLE_ARN is set on the app)",
                ),
            ),
            std::io::ErrorKind::PermissionDenied => (
                ErrorKind::PermissionDenied,
                "permission denied; make it readable by this user".into(),
            ),
            std::io::ErrorKind::IsADirectory => (
                ErrorKind::InvalidConfiguration,
                from(
                    "it is a directory".into(),
                    "; give the path of a file holding the token",
                ),
            ),
            _ => (
                ErrorKind::InvalidConfiguration,
                from(format!("it could not be read: {e}"), ""),
            ),
        };
        let message = Message::from(format!("cannot read {source}: ")).append(hint);
        Error::new(kind, message).with_source(e)
    };
    // A named pipe would block the open until a writer came, a device could be endless:
    // only a regular file holds a token (a directory gets its own reason below).
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
        && !meta.is_dir()
    {
        let message = Message::from(format!(
            "cannot read {source}: it is not a regular file but a named pipe, a device or a socket (from "
        ))
        .append(set_by.clone())
        .text("); give the path of a file holding the token");
        return Err(Error::new(ErrorKind::InvalidConfiguration, message));
    }
    // One open and a bounded read: the file is tiny, so a blocking read is cheaper than a
    // trip to a blocking-pool thread.
    let bytes = std::fs::File::open(path)
        .map_err(file_error)
        .and_then(|file| {
            read_capped(file, MAX_TOKEN_BYTES).map_err(|e| match e {
                ReadError::Io(e) => file_error(e),
                _ => Error::new(
                    ErrorKind::MalformedToken,
                    format!(
                        "{source} holds more than the {MAX_TOKEN_BYTES}-byte limit; that is not an OIDC token"
                    ),
                ),
            })
        })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::MalformedToken,
            format!("{source} does not hold UTF-8 text"),
        )
    })?;
    let token = FlyToken::parse(text).map_err(|e| {
        Error::new(
            ErrorKind::MalformedToken,
            format!("{source}: {}", e.message()),
        )
    })?;
    if let (Some(wanted), Some(aud)) = (audience, &token.claims().aud)
        && !aud.contains(wanted)
    {
        tracing::warn!(
            wanted,
            found = ?aud,
            "the token file's audience differs from the one requested; a token file cannot mint a new audience"
        );
    }
    Ok(token)
}

fn too_large(source: &TokenSource, err: ReadError) -> Error {
    Error::new(
        ErrorKind::MalformedToken,
        format!("{source} answered with {err}; that is not an OIDC token"),
    )
}

/// Turn a Machines API answer (status and body, already capped) into a token or an error.
///
/// Public for the fuzz targets; not part of the stable API.
#[doc(hidden)]
pub fn token_from_response(
    source: &TokenSource,
    status: u16,
    body: Vec<u8>,
) -> Result<FlyToken, Error> {
    if body.len() > MAX_TOKEN_BYTES {
        return Err(too_large(
            source,
            ReadError::TooLarge {
                limit: MAX_TOKEN_BYTES,
            },
        ));
    }
    if status != 200 {
        return Err(rejected(source, status, &body));
    }
    let text = String::from_utf8(body).map_err(|_| {
        Error::new(
            ErrorKind::MalformedToken,
            format!("{source} answered 200 with a body that is not UTF-8 text"),
        )
    })?;
    FlyToken::parse(text).map_err(|e| {
        Error::new(
            ErrorKind::MalformedToken,
            format!("{source} answered 200 but {}", e.message()),
        )
    })
}

/// `text` with every occurrence of `token`, and of each of its parts of 16 or more characters
/// (a Fly token may be several comma-separated macaroons), replaced by `** redacted **`, in
/// every encoded form [`redact_secret`](crate::redact_secret) knows (percent-encoded, JSON-escaped,
/// base64).
fn redact_bearer(text: &str, token: &SecretString) -> String {
    let token = token.expose_secret().trim();
    let parts: Vec<&str> = std::iter::once(token)
        .chain(token.split([',', ' ']).map(str::trim))
        .filter(|p| p.len() >= 16)
        .collect();
    crate::error::redact_secrets(text, &parts)
}

fn rejected(source: &TokenSource, status: u16, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body);
    let api_message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| match v.get("error") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) if !other.is_null() => Some(other.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| text.trim().to_owned());
    // A server that is not the Machines API (a wrong FLY_API_HOSTNAME) may echo the request,
    // bearer token included: hide it (and each of its comma-separated parts) before cutting.
    let api_message = match source {
        TokenSource::Http { api_token, .. } => redact_bearer(&api_message, api_token),
        _ => api_message,
    };
    // One line: an HTML error page's lines (and any other whitespace run) become one space.
    let api_message = api_message.split_whitespace().collect::<Vec<_>>().join(" ");
    let api_message = redact_jwts(&truncate(&api_message, 300));
    let hint = match status {
        400 => "check the requested audience",
        401 | 403 if matches!(source, TokenSource::Http { .. }) => {
            "check that FLY_API_TOKEN is a valid Fly API token for this org"
        }
        401 | 403 => "this process may not be allowed to use the Machines API",
        404 => "this Machines API has no OIDC token endpoint; check FLY_API_HOSTNAME",
        429 => "rate limited by the Machines API; cache tokens and try again shortly",
        500..=599 => "the Machines API failed; try again shortly",
        _ => "see the message above",
    };
    let shown = if api_message.is_empty() {
        String::new()
    } else {
        format!(": {api_message}")
    };
    let kind = match status {
        429 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::FlyApi,
    };
    Error::new(
        kind,
        format!("{source} answered HTTP {status}{shown}; {hint}"),
    )
    .with_status(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_tokens_are_trimmed_and_control_characters_refused() {
        let build = |token: &str| {
            let env = Env::from_slice(&[
                (ENV_API_HOSTNAME, "https://api.machines.dev"),
                (ENV_API_TOKEN, token),
            ]);
            FlyOidcClient::builder()
                .configure(&ProviderConfig::default().with_env(env))
                .build()
        };
        let client = build("FlyV1 fm2_secret\n").unwrap();
        match &client.inner.source {
            TokenSource::Http { api_token, .. } => {
                assert_eq!(api_token.expose_secret(), "FlyV1 fm2_secret")
            }
            _ => panic!("not the HTTP source"),
        }
        for (bad, why) in [
            ("FlyV1 fm2_se\u{1}cret", "contains a control character"),
            ("FlyV1 fm2_se\ncret", "contains a control character"),
            ("FlyV1 fm2_se\u{FFFD}cret", "is not valid UTF-8"),
        ] {
            let err = build(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
            assert!(err.ends_with("(from FLY_API_TOKEN)"), "{err}");
            assert!(!err.contains("fm2_se"), "{err}");
        }
        let err = build(" \n").unwrap_err().to_string();
        assert!(err.contains("no Fly API token"), "{err}");
    }

    #[test]
    fn an_audience_that_was_not_utf8_is_an_invalid_setting() {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe");
        let env = Env::from_os_pairs(&[(ENV_AUDIENCE, bad)]);
        let err = FlyOidcClient::builder()
            .configure(&ProviderConfig::default().with_env(env))
            .build()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the audience is not valid UTF-8 (from FLY_OIDC_AUDIENCE)"
        );
        let env = Env::from_slice(&[(ENV_AUDIENCE, " aud ")]);
        let ok = FlyOidcClient::builder()
            .configure(&ProviderConfig::default().with_env(env))
            .build()
            .unwrap();
        assert_eq!(ok.inner.audience.as_deref(), Some("aud"));
    }

    #[test]
    fn the_request_body_asks_for_session_tags_only_when_told() {
        let plain = TokenOptions::default();
        assert_eq!(plain.body(None).to_string(), "{}");
        assert_eq!(plain.body(Some("a")).to_string(), r#"{"aud":"a"}"#);
        let tagged = plain.aws_principal_tags(true);
        assert_eq!(
            tagged.body(Some("sts.amazonaws.com")).to_string(),
            r#"{"aud":"sts.amazonaws.com","aws_principal_tags":true}"#
        );
        assert_eq!(
            tagged.body(None).to_string(),
            r#"{"aws_principal_tags":true}"#
        );
        let build = |env: &[(&str, &str)], set: Option<bool>| {
            let config = ProviderConfig::default().with_env(Env::from_slice(env));
            let builder = FlyOidcClient::builder().configure(&config);
            match set {
                Some(yes) => builder.aws_principal_tags(yes),
                None => builder,
            }
            .build()
        };
        let wants = |c: FlyOidcClient| c.default_options().wants_aws_principal_tags();
        assert!(!wants(build(&[], None).unwrap()));
        let on = [(ENV_AWS_PRINCIPAL_TAGS, "1")];
        assert!(wants(build(&on, None).unwrap()));
        assert!(!wants(build(&on, Some(false)).unwrap()), "the builder wins");
        let err = build(&[(ENV_AWS_PRINCIPAL_TAGS, "maybe")], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a yes/no value") && err.contains(ENV_AWS_PRINCIPAL_TAGS),
            "{err}"
        );
    }

    #[test]
    fn base_urls_are_normalized_and_checked() {
        assert_eq!(
            normalize_base_url("https://api.machines.dev/", false).unwrap(),
            "https://api.machines.dev"
        );
        assert_eq!(
            normalize_base_url("api.machines.dev", false).unwrap(),
            "https://api.machines.dev"
        );
        assert_eq!(
            normalize_base_url("_api.internal:4280", false).unwrap(),
            "http://_api.internal:4280"
        );
        assert_eq!(
            normalize_base_url("http://127.0.0.1:9/", false).unwrap(),
            "http://127.0.0.1:9"
        );
        let err = normalize_base_url("http://example.com", false).unwrap_err();
        assert!(err.contains("FLY_OIDC_ALLOW_INSECURE_HTTP"), "{err}");
        assert!(normalize_base_url("http://example.com", true).is_ok());
        assert!(normalize_base_url("ftp://example.com", true).is_err());
        assert!(normalize_base_url("https://user:pw@example.com", true).is_err());
        assert!(normalize_base_url("https://", true).is_err());
    }

    #[test]
    fn api_error_bodies_are_summarized_without_tokens() {
        let src = TokenSource::Socket {
            path: "/x".into(),
            is_default: false,
        };
        let err = rejected(
            &src,
            400,
            br#"{"error":"bad aud eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln"}"#,
        );
        assert_eq!(err.status(), Some(400));
        assert!(!err.is_transient());
        let msg = err.to_string();
        assert!(msg.contains("HTTP 400: bad aud ** redacted **"), "{msg}");
        assert!(!msg.contains("eyJ"));
        assert!(rejected(&src, 503, b"oops").is_transient());
        let page = rejected(&src, 404, b"<html>\n  <body>Not Found</body>\n</html>\n");
        let page = page.to_string();
        assert!(
            page.contains(": <html> <body>Not Found</body> </html>; "),
            "{page}"
        );
        assert!(!page.contains('\n'), "one line: {page}");
        assert!(rejected(&src, 429, b"").is_transient());
        let http = TokenSource::Http {
            base_url: "http://127.0.0.1:9".into(),
            api_token: SecretString::new("FlyV1 fm2_aaaaaaaaaaaaaaaaaaaa,fm2_bbbbbbbbbbbbbbbbbbbb"),
        };
        let echoed = format!(
            r#"{{"error":"bad token {} and fm2_bbbbbbbbbbbbbbbbbbbb {}"}}"#,
            "FlyV1 fm2_aaaaaaaaaaaaaaaaaaaa,fm2_bbbbbbbbbbbbbbbbbbbb",
            "x".repeat(400)
        );
        let msg = rejected(&http, 401, echoed.as_bytes()).to_string();
        assert!(!msg.contains("fm2_"), "{msg}");
        assert!(
            msg.contains("bad token ** redacted ** and ** redacted **"),
            "{msg}"
        );
        // A part of the token in another form (upper-cased) is a trace: the text goes whole.
        let upper = rejected(&http, 401, b"bad token FM2_BBBBBBBBBBBBBBBBBBBB").to_string();
        assert!(!upper.to_ascii_lowercase().contains("fm2_"), "{upper}");
        assert!(upper.contains("left out whole"), "{upper}");
        let long = "x".repeat(10_000);
        assert!(rejected(&src, 500, long.as_bytes()).to_string().len() < 600);
    }
}
