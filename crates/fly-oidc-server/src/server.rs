//! The server, its builder and its errors.

use crate::FileOwner;
use crate::conn::ConnectionLimits;
use crate::handler::{
    Gcp, IdTokenFactory, MAX_ID_TOKEN_AUDIENCES, MAX_SCOPE_SETS, ScopedFactory, State,
    allowed_hosts, federated_account,
};
use crate::routes::{AWS_DEFAULT_PATH, AWS_ROLE_PREFIX};
use crate::slot::{FetchError, Fetcher, OnDemand, Secret, Slot, Spawn, fetcher};
use base64::Engine as _;
use bytes::Bytes;
use fly_oidc::budget::RateLimit;
use fly_oidc::time::SharedTimeSource;
use fly_oidc::{FlyOidcClient, Naming, SecretString};
use fly_oidc_aws::credential_process::AwsCredentials;
use fly_oidc_aws::{AssumedRole, FlyOidcCredentialsProvider};
use fly_oidc_gcp::GcpTokenProvider;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why the server could not start.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The class of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is invalid (a listen address that is not loopback, two roles of the same name,
    /// or one a provider found invalid at the first fetch: a session duration above the
    /// role's maximum).
    InvalidSetting,
    /// A credential could not be had at start and trying again will not help (trust policy,
    /// provider, role): the message is the provider's diagnosis.
    Credential,
    /// The listen address could not be bound (in use by another process, or not an address
    /// of this machine): the message names the address and the operating system's reason.
    Listen,
    /// Writing a file (a token file) or getting random bytes failed.
    Io,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
    audience: String,
    client: FlyOidcClient,
}

/// Makes a Google provider for other scopes.
type MakeGcp = dyn Fn(&[String]) -> Result<GcpTokenProvider, String> + Send + Sync;
struct GcpFactory(Box<MakeGcp>);

impl fmt::Debug for GcpFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GcpFactory")
    }
}

/// `fetcher`, its error messages naming their settings as `naming` says.
fn named(fetcher: Fetcher, naming: Naming) -> Fetcher {
    if naming == Naming::Builder {
        return fetcher;
    }
    Arc::new(move || {
        let fetch = fetcher();
        Box::pin(async move { fetch.await.map_err(|e| e.named(naming)) })
    })
}

/// Configures a [`Server`]. See the [crate docs](crate).
#[derive(Debug, Default)]
pub struct Builder {
    naming: Naming,
    aws: Vec<FlyOidcCredentialsProvider>,
    gcp: Option<GcpTokenProvider>,
    gcp_factory: Option<GcpFactory>,
    gcp_project: Option<String>,
    token_files: Vec<TokenFile>,
    file_owner: Option<FileOwner>,
    record: Option<crate::FileRecord>,
    listen: Option<SocketAddr>,
    time: Option<SharedTimeSource>,
    limits: ConnectionLimits,
    new_keys: Option<RateLimit>,
}

impl Builder {
    /// Name the providers' settings in every message the server keeps or logs (a start
    /// error, the status a client is answered, a warning) as the front end names them, such
    /// as the per-cloud flags of `fly-oidc exec` (default: the libraries' `Builder::x`).
    pub fn naming(mut self, naming: Naming) -> Self {
        self.naming = naming;
        self
    }

    /// Serve this role's credentials. The first role added is the default role
    /// (`/v1/aws/credentials`); every role is also served at `/v1/aws/roles/<role-name>`.
    /// The provider's own cache is bypassed: the server keeps and renews the credentials.
    pub fn aws_role(mut self, provider: FlyOidcCredentialsProvider) -> Self {
        self.aws.push(provider);
        self
    }

    /// Serve Google access tokens from this provider on the GCE metadata endpoints. Its
    /// scopes are the ones served; a `?scopes=` request for others needs
    /// [`gcp_scoped`](Self::gcp_scoped).
    pub fn gcp(mut self, provider: GcpTokenProvider) -> Self {
        self.gcp = Some(provider);
        self
    }

    /// Allow `?scopes=` sets other than the configured scopes, as `factory` decides: it gets
    /// the sorted scopes, and its error message is sent to the client (400). The token is the
    /// configured provider's for those scopes ([`GcpTokenProvider::with_scopes`]: the Fly
    /// token and the federated token are shared, not fetched again); the factory's provider
    /// only says which scopes. At most 16 sets are held at once, the least recently used and
    /// the failing making room for a new one; each is renewed in the background while
    /// clients ask for it.
    pub fn gcp_scoped(
        mut self,
        factory: impl Fn(&[String]) -> Result<GcpTokenProvider, String> + Send + Sync + 'static,
    ) -> Self {
        self.gcp_factory = Some(GcpFactory(Box::new(factory)));
        self
    }

    /// The Google Cloud project id served at `project/project-id` (default: none, 404).
    pub fn gcp_project(mut self, project_id: impl Into<String>) -> Self {
        self.gcp_project = Some(project_id.into());
        self
    }

    /// Keep a Fly OIDC token for `audience` in the file `path`, rewritten (atomically, mode
    /// 0600 or owned by [`file_owner`](Self::file_owner)) when half its life is gone, and
    /// removed when the [`Server`] stops ([`Server::shutdown`] or drop): a live token is not
    /// left behind.
    pub fn write_token(
        mut self,
        path: impl Into<PathBuf>,
        audience: impl Into<String>,
        client: FlyOidcClient,
    ) -> Self {
        self.token_files.push(TokenFile {
            path: path.into(),
            audience: audience.into(),
            client,
        });
        self
    }

    /// Where to listen (default `127.0.0.1:0`, a free port). Only `127.0.0.1` is accepted
    /// ([`start`](Self::start) refuses any other address, `[::1]` and other `127.x` included):
    /// the one loopback address every AWS SDK's allow-list for
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` takes (botocore before its loopback check accepted
    /// only `127.0.0.1` and `localhost` by name; not every SDK accepts `[::1]` or another
    /// `127.x`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// The owner of the token files this server writes (default, or `None`: the server's user).
    pub fn file_owner(mut self, owner: impl Into<Option<FileOwner>>) -> Self {
        self.file_owner = owner.into();
        self
    }

    /// Enter each token file ([`write_token`](Self::write_token)) in `record` at every write,
    /// so that if this process is killed, the next start removes it
    /// ([`FileRecord::remove_left_behind`](crate::FileRecord::remove_left_behind)).
    pub fn record_files(mut self, record: crate::FileRecord) -> Self {
        self.record = Some(record);
        self
    }

    /// What client connections may take (default: [`ConnectionLimits::default`]).
    pub fn connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The clock for expiry and renewal decisions (default: the system clock; tests give a
    /// manual one).
    pub fn time_source(mut self, time: SharedTimeSource) -> Self {
        self.time = Some(time);
        self
    }

    /// How often a client-chosen key (a `?scopes=` set, an `identity?audience=`) that is not
    /// held may cost an upstream call: `burst` at once, then one per `every` (default 80, as
    /// many as the two caches hold, then one a second). The scope sets and the audiences
    /// share it; the configured credentials and the renewal of keys clients use do not. So
    /// junk keys cycled through the caches cost Google at most this rate; a new key waits for
    /// its turn (a request answers 503 after 10 s without one).
    pub fn new_key_rate(mut self, burst: u32, every: Duration) -> Self {
        self.new_keys = Some(RateLimit::new(burst, every));
        self
    }

    /// Bind, fetch every credential once, then serve in the background.
    ///
    /// Fails with [`ErrorKind::InvalidSetting`] for a listen address that is not loopback, two
    /// roles of the same name or a zero connection limit, [`ErrorKind::Listen`] when the
    /// address cannot be bound, [`ErrorKind::Io`] when a token file cannot be written, and
    /// [`ErrorKind::Credential`] when a credential fails at start for a reason that trying
    /// again will not fix (the provider's diagnosis). A transient failure is not an error:
    /// the credential is retried in the background and requests for it get a JSON 503 until
    /// it arrives.
    ///
    /// Must run inside a Tokio runtime with the time and I/O drivers enabled.
    pub async fn start(self) -> Result<Server, Error> {
        let listen = self
            .listen
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        if let Err(why) = check_listen(listen.ip(), &listen.ip().to_string()) {
            return Err(Error::new(
                ErrorKind::InvalidSetting,
                format!("listen address {listen}: {why}; use 127.0.0.1:PORT"),
            ));
        }
        if let Some(limit) = self.limits.zero_duration() {
            return Err(Error::new(
                ErrorKind::InvalidSetting,
                format!(
                    "connection limit {limit} is zero: no client could be served; give a \
                     positive duration, or leave it at its default"
                ),
            ));
        }
        let time = self.time.clone().unwrap_or_default();
        let auth_token = random_token()?;
        // AWS roles: the first is the default; each is also served by name.
        let mut aws_roles = HashMap::new();
        let mut aws_slots = Vec::new();
        let aws_region = self.aws.first().and_then(|provider| {
            let region = provider.settings().configured_region();
            region.map(str::to_owned)
        });
        for provider in self.aws {
            // A chained role's credentials are the chained role's: it names the slot.
            let settings = provider.settings();
            let arn = match settings.chain() {
                Some(chain) => chain.role_arn.as_str(),
                None => settings.role_arn().unwrap_or_default(),
            }
            .to_owned();
            let name = fly_oidc_aws::role_name_of(&arn).to_owned();
            if !fly_oidc_aws::is_role_name(&name) {
                return Err(Error::new(
                    ErrorKind::InvalidSetting,
                    format!(
                        "cannot serve role {arn:?}: expected a role ARN such as arn:aws:iam::123456789012:role/NAME"
                    ),
                ));
            }
            let fetcher = named(aws_fetcher(provider), self.naming);
            let slot = Arc::new(Slot::new("aws", arn.clone(), fetcher, time.clone()));
            if aws_roles.insert(name.clone(), slot.clone()).is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidSetting,
                    format!(
                        "two roles are named {name:?}: each role is served at /v1/aws/roles/<role-name>, so their names must differ"
                    ),
                ));
            }
            aws_slots.push((name, slot));
        }
        let new_keys = self.new_keys.clone().unwrap_or_else(|| {
            let held = u32::try_from(MAX_SCOPE_SETS + MAX_ID_TOKEN_AUDIENCES).unwrap_or(u32::MAX);
            RateLimit::new(held, Duration::from_secs(1))
        });
        let gcp = self.gcp.map(|provider| {
            let name = gcp_name(&provider, None);
            let settings = provider.settings();
            let scopes = settings.scopes().to_vec();
            let email = match settings.service_account() {
                Some(sa) => sa.to_owned(),
                None => federated_account(settings.provider()),
            };
            let project_number = settings.provider().project_number().to_owned();
            let id_tokens = settings.service_account().is_some().then(|| {
                let provider = provider.clone();
                let naming = self.naming;
                let make = Arc::new(move |audience: &str| {
                    named(id_token_fetcher(provider.clone(), audience), naming)
                }) as IdTokenFactory;
                (
                    make,
                    OnDemand::new(MAX_ID_TOKEN_AUDIENCES, new_keys.clone()),
                )
            });
            let fetcher = named(gcp_fetcher(provider.clone()), self.naming);
            let slot = Arc::new(Slot::new("gcp", name, fetcher, time.clone()));
            let factory = self.gcp_factory.map(|make| {
                let time = time.clone();
                let naming = self.naming;
                Arc::new(move |scopes: &[String]| {
                    // The factory decides which scopes; the token shares the configured
                    // provider's upstream.
                    let allowed = (make.0)(scopes)?;
                    let scoped = provider.with_scopes(allowed.settings().scopes().to_vec());
                    let name = gcp_name(&scoped, Some(scopes));
                    let fetcher = named(gcp_fetcher(scoped), naming);
                    Ok(Arc::new(Slot::new("gcp", name, fetcher, time.clone())))
                }) as ScopedFactory
            });
            Gcp {
                slot,
                scopes,
                email,
                project_number,
                project_id: self.gcp_project,
                factory,
                scoped: OnDemand::new(MAX_SCOPE_SETS, new_keys.clone()),
                id_tokens,
            }
        });
        let stopped = Arc::new(Mutex::new(false));
        let token_paths: Vec<PathBuf> = self.token_files.iter().map(|f| f.path.clone()).collect();
        // No token file outlives a server that did not start: one that failed, or whose start
        // was abandoned (a signal while a credential is still being fetched).
        let mut unstarted = Unstarted {
            stopped: stopped.clone(),
            paths: token_paths.clone(),
            started: false,
        };
        let token_files: Vec<Arc<Slot>> = self
            .token_files
            .into_iter()
            .map(|file| {
                let name = file.path.display().to_string();
                Arc::new(Slot::new(
                    "token-file",
                    name,
                    token_file_fetcher(
                        file,
                        self.file_owner,
                        self.record.clone(),
                        stopped.clone(),
                        time.clone(),
                    ),
                    time.clone(),
                ))
            })
            .collect();

        let listen_error = |e: std::io::Error| {
            Error::new(
                ErrorKind::Listen,
                format!("could not listen on {listen}: {e}"),
            )
        };
        let listener = crate::conn::bind(listen).map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;

        // Fetch everything once, concurrently; a permanent failure stops the start.
        let mut all: Vec<Arc<Slot>> = aws_slots.iter().map(|(_, s)| s.clone()).collect();
        all.extend(gcp.as_ref().map(|g| g.slot.clone()));
        all.extend(token_files.iter().cloned());
        let mut first = JoinSet::new();
        for slot in &all {
            let slot = slot.clone();
            first.spawn(async move {
                let result = slot.fetch_first().await;
                (slot, result)
            });
        }
        while let Some(joined) = first.join_next().await {
            let Ok((slot, result)) = joined else { continue };
            match result {
                Ok(()) => {}
                Err(FetchError {
                    transient: true,
                    message,
                    ..
                }) => {
                    tracing::warn!(kind = slot.kind, name = %slot.name, error = %message, "could not get the credential; retrying in the background");
                }
                Err(FetchError {
                    message,
                    invalid_setting,
                    ..
                }) => {
                    let kind = if invalid_setting {
                        ErrorKind::InvalidSetting
                    } else if slot.kind == "token-file" {
                        ErrorKind::Io
                    } else {
                        ErrorKind::Credential
                    };
                    first.abort_all();
                    return Err(Error::new(
                        kind,
                        format!("{} {}: {message}", slot.kind, slot.name),
                    ));
                }
            }
        }

        let (shutdown, shutdown_rx) = watch::channel(false);
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let spawn = {
            let tasks = Arc::downgrade(&tasks);
            Box::new(
                move |task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
                    if let Some(tasks) = tasks.upgrade() {
                        let mut tasks = tasks.lock().unwrap_or_else(|e| e.into_inner());
                        // Reap the loops that ended (idle or refused keys), so the set stays small.
                        while tasks.try_join_next().is_some() {}
                        tasks.spawn(task);
                    }
                },
            ) as Spawn
        };
        let default_role = aws_slots.first().map(|(_, s)| s.clone());
        let role_names: Vec<(String, String)> = aws_slots
            .iter()
            .map(|(name, slot)| (slot.name.clone(), name.clone()))
            .collect();
        let state = Arc::new(State {
            auth_token,
            aws_default: default_role,
            aws_roles,
            gcp,
            token_files,
            allowed_hosts: allowed_hosts(addr),
            spawn,
        });
        {
            let mut tasks = tasks.lock().unwrap_or_else(|e| e.into_inner());
            for slot in all {
                tasks.spawn(slot.run());
            }
            tasks.spawn(crate::conn::accept_loop(
                listener,
                state.clone(),
                shutdown_rx,
                self.limits,
            ));
        }
        tracing::info!(%addr, "serving credentials");
        unstarted.started = true;
        Ok(Server {
            state,
            addr,
            aws_region,
            role_names,
            shutdown,
            tasks,
            token_paths,
            stopped,
        })
    }
}

/// 256 random bits from the operating system, base64url without padding (43 characters).
fn random_token() -> Result<SecretString, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("could not get random bytes for the authorization token: {e}"),
        )
    })?;
    Ok(SecretString::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

fn gcp_name(provider: &GcpTokenProvider, scopes: Option<&[String]>) -> String {
    let settings = provider.settings();
    let mut name = settings.provider().name().to_owned();
    if let Some(sa) = settings.service_account() {
        name = format!("{name} as {sa}");
    }
    if let Some(scopes) = scopes {
        name = format!("{name} scopes {}", scopes.join(","));
    }
    name
}

/// Whether the credential server may listen on `ip` (`shown` as the user wrote it): on
/// 127.0.0.1 only, the one loopback address every AWS SDK's allow-list for
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` takes, which only processes on this Machine reach.
///
/// # Errors
/// Why not, without what to give instead.
pub fn check_listen(ip: IpAddr, shown: &str) -> Result<(), String> {
    if ip == Ipv4Addr::LOCALHOST {
        return Ok(());
    }
    Err(match ip.is_loopback() {
        true => format!(
            "the credential server listens on 127.0.0.1 only: not every AWS SDK accepts {shown} in AWS_CONTAINER_CREDENTIALS_FULL_URI (their allow-lists all take 127.0.0.1, not every other loopback address)"
        ),
        false => "the credential server listens on 127.0.0.1 only, so only processes on this Machine can reach it".to_owned(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EcsCredentials<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

fn ecs_json(assumed: &AssumedRole) -> Result<Bytes, FetchError> {
    let credentials = AwsCredentials::from_assumed_role(assumed)?;
    serde_json::to_vec(&EcsCredentials {
        access_key_id: &credentials.access_key_id,
        secret_access_key: &credentials.secret_access_key,
        token: &credentials.session_token,
        expiration: fly_oidc::time::format_rfc3339(assumed.expires_at),
        account_id: credentials.account_id.as_deref(),
    })
    .map(Bytes::from)
    .map_err(|e| FetchError::new(format!("could not render the credentials: {e}"), false))
}

fn aws_fetcher(provider: FlyOidcCredentialsProvider) -> Fetcher {
    fetcher(provider, |provider| async move {
        let assumed = provider.assume_role().await?;
        Ok((Secret::AwsJson(ecs_json(&assumed)?), assumed.expires_at))
    })
}

fn gcp_fetcher(provider: GcpTokenProvider) -> Fetcher {
    fetcher(provider, |provider| async move {
        let token = provider.fetch_access_token().await?;
        let secret = SecretString::new(token.expose_secret());
        Ok((Secret::Gcp(secret), token.expires_at()))
    })
}

/// Fetches the service account's ID token for `audience` (its federated token shared with
/// every other credential of `provider`).
fn id_token_fetcher(provider: GcpTokenProvider, audience: &str) -> Fetcher {
    let with = (provider, audience.to_owned());
    fetcher(with, |(provider, audience)| async move {
        let token = provider.id_token(&audience).await?;
        let secret = SecretString::new(token.expose_secret());
        Ok((Secret::Gcp(secret), token.expires_at()))
    })
}

/// Fetches `file`'s token and writes it, unless the server has `stopped` (then the file it
/// removed stays removed: the write holds the lock that [`remove_token_files`] takes). A token
/// that has expired by `time`, or has less than 30 s left, is
/// never written: the fetch fails ([`fly_oidc::ErrorKind::StaleToken`], not transient: at
/// start the server does not start; later the last good file stays and the fetch is retried).
/// Each write is entered in `record`, when given.
fn token_file_fetcher(
    file: TokenFile,
    owner: Option<FileOwner>,
    record: Option<crate::FileRecord>,
    stopped: Arc<Mutex<bool>>,
    time: SharedTimeSource,
) -> Fetcher {
    let with = (Arc::new(file), stopped, time, record);
    fetcher(with, move |(file, stopped, time, record)| async move {
        let token = file.client.fetch_token(Some(&file.audience)).await?;
        let expires_at = token
            .expires_at()
            .ok_or_else(|| FetchError::new("the Fly token has no exp claim", false))?;
        token.ensure_fresh(
            time.now(),
            &format!("the answer of {}", file.client.source()),
            format!(
                "{} is not written; check this machine's clock, which judged the token's exp",
                file.path.display()
            ),
        )?;
        let path = file.path.clone();
        let jwt = SecretString::new(token.expose_jwt());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let stopped = stopped.lock().unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return Ok(());
            }
            if let Some(record) = &record {
                record.add_planned(&path);
            }
            fly_oidc::fs::write_private_owned(
                &path,
                jwt.expose_secret().as_bytes(),
                0o600,
                owner,
                |written| {
                    if let Some(record) = &record {
                        record.add_or_warn(&path, written);
                    }
                },
            )
        })
        .await
        .map_err(|e| FetchError::new(format!("the token writer failed: {e}"), true))?
        .map_err(|e| FetchError::new(e.to_string(), false))?;
        Ok((Secret::Written, expires_at))
    })
}

/// A running credential server. See the [crate docs](crate).
///
/// Dropping it stops the server (the listener, open connections and refresh loops) and
/// removes the token files it wrote.
pub struct Server {
    state: Arc<State>,
    addr: SocketAddr,
    /// The default role's configured region, if any.
    aws_region: Option<String>,
    role_names: Vec<(String, String)>,
    shutdown: watch::Sender<bool>,
    tasks: Arc<Mutex<JoinSet<()>>>,
    /// The `write_token` files, removed when the server stops.
    token_paths: Vec<PathBuf>,
    /// Set when the server stops: no token file is written after that.
    stopped: Arc<Mutex<bool>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("roles", &self.role_names)
            .field("gcp", &self.state.gcp.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The region of the default role's STS when one was configured (the provider's
    /// `region`, `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile's), for the app's
    /// environment (`AWS_REGION`, `AWS_DEFAULT_REGION`); `None` without a role or when
    /// the region is the default `us-east-1`.
    pub fn aws_region(&self) -> Option<&str> {
        self.aws_region.as_deref()
    }

    /// The token clients send as `Authorization` on the AWS endpoints, 256 random bits from the
    /// operating system, base64url (what the file of `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`
    /// holds). Never log it.
    pub fn expose_auth_token(&self) -> &str {
        self.state.auth_token.expose_secret()
    }

    /// `http://<addr>/v1/aws/credentials`, the default role's endpoint
    /// (`AWS_CONTAINER_CREDENTIALS_FULL_URI`), when a role is served.
    pub fn aws_credentials_uri(&self) -> Option<String> {
        self.state
            .aws_default
            .as_ref()
            .map(|_| format!("http://{}{AWS_DEFAULT_PATH}", self.addr))
    }

    /// Each served role: its ARN and its own endpoint, `http://<addr>/v1/aws/roles/<role-name>`.
    pub fn aws_role_uris(&self) -> Vec<(String, String)> {
        self.role_names
            .iter()
            .map(|(arn, name)| {
                (
                    arn.clone(),
                    format!("http://{}{AWS_ROLE_PREFIX}{name}", self.addr),
                )
            })
            .collect()
    }

    /// `<addr>` for `GCE_METADATA_HOST` and `GCE_METADATA_IP`, when Google is served.
    pub fn metadata_host(&self) -> Option<String> {
        self.state.gcp.as_ref().map(|_| self.addr.to_string())
    }

    /// Stop accepting, close open connections, stop the refresh loops and remove the token
    /// files ([`Builder::write_token`]).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
        remove_token_files(&self.stopped, &self.token_paths);
    }
}

/// The token files of a start in progress, removed when it does not end in a [`Server`].
struct Unstarted {
    stopped: Arc<Mutex<bool>>,
    paths: Vec<PathBuf>,
    started: bool,
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if !self.started {
            remove_token_files(&self.stopped, &self.paths);
        }
    }
}

/// Mark the token files `stopped` (no write after this) and remove them (one already gone is
/// fine; another failure is a warning).
fn remove_token_files(stopped: &Mutex<bool>, paths: &[PathBuf]) {
    let mut stopped = stopped.lock().unwrap_or_else(|e| e.into_inner());
    *stopped = true;
    for path in paths {
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the token file");
        }
    }
}
