//! [`ServeOptions`]: what a credential server serves, the flags of `fly-oidc serve` and
//! `fly-oidc exec`, mapped one-to-one onto the provider builders and the server's builder.

use crate::common::shown_value;
use crate::options::SetIf;
use crate::supervise::env_file::{auth_token_file_beside, lock_file_beside};
use crate::supervise::env_plan::EnvPlan;
use crate::supervise::user::resolve_owner;
use fly_oidc::{BuildError, Env, FlyOidcClient, Message, Naming, Origin, ProviderConfig, Setting};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_server::{Builder, FileOwner, Server};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to serve and where. Every field left empty is the provider builder's default (which
/// reads the environment: `AWS_ROLE_ARN`, `FLY_OIDC_GCP_PROVIDER`, ...).
///
/// Errors of [`server`](Self::server) and [`file_owner`](Self::file_owner) are
/// [`BuildError`]s: a provider's (its setting named by the per-cloud flag when shown), or one of
/// these options', whose reason starts with its flag (`--write-token ...`).
///
/// Each field is a flag of `fly-oidc serve` and `fly-oidc exec` (`aws_role_arns`:
/// `--aws-role-arn`), its help the first paragraph of its documentation.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServeOptions {
    /// Listen on 127.0.0.1:PORT (or localhost:PORT, the same) [default: a free port for exec, 127.0.0.1:8675 for serve]
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    pub listen: Option<ListenAddr>,
    /// The AWS and Google provider settings.
    #[command(flatten)]
    pub cloud: CloudOptions,
    /// Project id served at project/project-id and given as GOOGLE_CLOUD_PROJECT
    ///
    /// Served at `/computeMetadata/v1/project/project-id` and in [`env_plan`](Self::env_plan);
    /// `None`: that path answers 404.
    #[arg(long = "gcp-project", value_name = "PROJECT_ID", value_parser = project_id, long_help = None)]
    pub gcp_project: Option<String>,
    /// Keep a Fly token for AUDIENCE in PATH, rewritten at half its life (repeatable)
    #[arg(long = "write-token", value_name = "PATH=AUDIENCE")]
    pub write_tokens: Vec<String>,
    /// Also give the authorization token itself as AWS_CONTAINER_AUTHORIZATION_TOKEN
    ///
    /// For consumers that read nothing else; by default only
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` is set, as the EKS Pod Identity agent does:
    /// every current AWS SDK reads the file, and some warn on every credential load, or fail
    /// (the JavaScript SDK v3 3.879 with a logger), when both variables are set.
    #[arg(long = "aws-auth-token-env", long_help = None)]
    pub aws_auth_token_env: bool,
    /// Owner of the files written: the `--write-token` files, the authorization token file, and
    /// `serve`'s env file
    ///
    /// `USER[:GROUP]`, names or numeric ids; `None`: the server's user.
    #[arg(long = "file-owner", value_name = "USER[:GROUP]", long_help = None)]
    pub file_owner: Option<String>,
}

/// Where a credential server listens, as [`ServeOptions::listen`] (`--listen`) takes it:
/// `127.0.0.1:PORT`, or `localhost:PORT`, which means the same.
///
/// Nothing else: the server hands out `http://127.0.0.1:PORT/...` as
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, the one loopback address every AWS SDK's allow-list
/// takes without a DNS lookup (botocore before its loopback check accepted only `127.0.0.1`
/// and `localhost` by name; the Rust SDK needs a DNS resolver to accept `localhost`; not
/// every SDK accepts `[::1]` or another `127.x`). So `localhost:PORT` is bound and handed out
/// as `127.0.0.1:PORT` too: it is a spelling, not a lookup (a `localhost` that resolves to
/// `::1` first would need a second listener).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr {
    port: u16,
    localhost: bool,
}

impl ListenAddr {
    /// The address to bind: `127.0.0.1:PORT`, whichever spelling was given.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, self.port))
    }
}

impl fmt::Display for ListenAddr {
    /// As given: `127.0.0.1:PORT` or `localhost:PORT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.localhost {
            "localhost"
        } else {
            "127.0.0.1"
        };
        write!(f, "{host}:{}", self.port)
    }
}

impl std::str::FromStr for ListenAddr {
    /// Why the address is refused, and what to give instead (without the address).
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        const USE: &str = "use 127.0.0.1:PORT (or localhost:PORT)";
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!("expected ADDR:PORT; {USE}"));
        };
        let port = port.parse::<u16>().map_err(|_| {
            format!(
                "the port {} is not a number from 0 to 65535; {USE}",
                shown_value(port)
            )
        })?;
        if host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost") {
            return Ok(Self {
                port,
                localhost: host != "127.0.0.1",
            });
        }
        let ip = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<std::net::IpAddr>();
        Err(match ip {
            // Not 127.0.0.1 (taken above): the server's rule says why.
            Ok(ip) => match fly_oidc_server::check_listen(ip, host) {
                Err(why) => format!("{why}; {USE}"),
                Ok(()) => format!("write it 127.0.0.1; {USE}"),
            },
            Err(_) => format!(
                "{} is not 127.0.0.1 or localhost (names are not looked up: the server listens on 127.0.0.1 only); {USE}",
                shown_value(host)
            ),
        })
    }
}

/// A Google Cloud project ID as [`ServeOptions::gcp_project`] (`--gcp-project`) takes it,
/// by Google's rule: 6 to 30 lowercase ASCII letters, digits or hyphens, starting with a
/// letter and not ending with a hyphen (`my-project`); or a legacy domain-scoped one,
/// `DOMAIN:ID` (`example.com:my-project`), its domain a DNS name of lowercase labels and its
/// ID lowercase letters, digits and inner hyphens (up to 63), as Google's API clients accept.
/// Nothing else reaches `GOOGLE_CLOUD_PROJECT` and the metadata server's `project-id`: no
/// quote, space, newline or control character.
///
/// # Errors
/// Why the value is not one, and what one looks like (without the value).
pub(crate) fn project_id(text: &str) -> Result<String, String> {
    const RULE: &str = "a project ID is 6 to 30 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen (my-project), or a legacy domain-scoped one (example.com:my-project); see `gcloud projects list`";
    let lower_digit = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    // Letters, digits and hyphens, neither first nor last a hyphen.
    let label = |text: &str, max: usize| {
        (1..=max).contains(&text.len())
            && text.chars().all(|c| lower_digit(c) || c == '-')
            && !text.starts_with('-')
            && !text.ends_with('-')
    };
    let valid = match text.split_once(':') {
        None => {
            (6..=30).contains(&text.len())
                && label(text, 30)
                && text.starts_with(|c: char| c.is_ascii_lowercase())
        }
        Some((domain, id)) => {
            domain.len() <= 253
                && domain.contains('.')
                && domain.split('.').all(|l| label(l, 63))
                && label(id, 63)
        }
    };
    if valid {
        return Ok(text.to_owned());
    }
    if (1..=19).contains(&text.len()) && text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "this is a project number; give the project ID (gcloud projects describe {text} --format='value(projectId)')"
        ));
    }
    Err(RULE.to_owned())
}

/// The provider settings per cloud, shared by every front end that configures both clouds at
/// once (`fly-oidc serve`, `exec` and `doctor`): [`aws_builder`](Self::aws_builder) and
/// [`gcp_builder`](Self::gcp_builder) set them on the provider builders. Each field is a flag,
/// as in [`ServeOptions`]; its `[env]` and `[default]` say what an empty one means.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct CloudOptions {
    /// Serve this role's credentials (repeatable; the first is the default role) [env: AWS_ROLE_ARN]
    ///
    /// Role ARNs to serve, the first as the default role; none: `AWS_ROLE_ARN`, else no AWS.
    #[arg(long = "aws-role-arn", value_name = "ARN", long_help = None)]
    pub aws_role_arns: Vec<String>,
    /// Audience of the Fly token for AWS [env: FLY_OIDC_AUDIENCE] [default: sts.amazonaws.com]
    #[arg(long = "aws-audience", value_name = "AUD")]
    pub aws_audience: Option<String>,
    /// Role session name [env: AWS_ROLE_SESSION_NAME] [default: fly-<app>-<machine>]
    #[arg(long = "aws-session-name", value_name = "NAME")]
    pub aws_session_name: Option<String>,
    /// Session duration in seconds, 900..43200 [env: FLY_OIDC_AWS_DURATION_SECONDS] [default: 3600]
    #[arg(long = "aws-duration-seconds", value_name = "SECONDS")]
    pub aws_duration_seconds: Option<u64>,
    /// Ask Fly for AWS session tags (aws:PrincipalTag/<key>) for every role served; the trust policy must allow sts:TagSession [env: FLY_OIDC_AWS_PRINCIPAL_TAGS=1]
    #[arg(long = "aws-principal-tags")]
    pub aws_principal_tags: bool,
    /// Chain the default role: with its credentials assume this role (sts:AssumeRole) and serve that role's [env: FLY_OIDC_AWS_CHAIN_ROLE_ARN]
    #[arg(long = "aws-chain-role-arn", value_name = "ARN")]
    pub aws_chain_role_arn: Option<String>,
    /// The external id the chained role's trust policy requires [env: FLY_OIDC_AWS_CHAIN_EXTERNAL_ID]
    #[arg(long = "aws-chain-external-id", value_name = "ID")]
    pub aws_chain_external_id: Option<String>,
    /// The chained role's session name [default: the first role's]
    #[arg(long = "aws-chain-session-name", value_name = "NAME")]
    pub aws_chain_session_name: Option<String>,
    /// The chained session's duration in seconds, 900..3600 (AWS caps chained sessions at one hour) [default: 3600]
    #[arg(long = "aws-chain-duration-seconds", value_name = "SECS")]
    pub aws_chain_duration_seconds: Option<u64>,
    /// STS region; also exported to the app (exec's command, serve's env file) when it has none [env: AWS_REGION, AWS_DEFAULT_REGION]
    ///
    /// The region of STS; a configured one (this, `AWS_REGION`, `AWS_DEFAULT_REGION` or the
    /// profile's region) is also in [`ServeOptions::env_plan`] and the env file, for a
    /// process that has neither variable. `None`: `AWS_REGION`, `AWS_DEFAULT_REGION`, the
    /// profile's region, else `us-east-1`.
    #[arg(long = "aws-region", value_name = "REGION", long_help = None)]
    pub aws_region: Option<String>,
    /// STS endpoint URL [env: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL]
    #[arg(long = "aws-sts-endpoint", value_name = "URL")]
    pub aws_sts_endpoint: Option<String>,
    /// Workload identity pool provider: serve Google tokens on the GCE metadata protocol
    /// [env: FLY_OIDC_GCP_PROVIDER]
    ///
    /// `None`: `FLY_OIDC_GCP_PROVIDER`, else no Google.
    #[arg(long = "gcp-provider", value_name = "PROVIDER", long_help = None)]
    pub gcp_provider: Option<String>,
    /// Service account to impersonate [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    ///
    /// `None`: `FLY_OIDC_GCP_SERVICE_ACCOUNT`, else none: the federated token itself is served.
    #[arg(long = "gcp-service-account", value_name = "EMAIL", long_help = None)]
    pub gcp_service_account: Option<String>,
    /// OAuth scope (repeatable) [env: FLY_OIDC_GCP_SCOPES, comma-separated] [default: https://www.googleapis.com/auth/cloud-platform]
    #[arg(long = "gcp-scope", value_name = "SCOPE")]
    pub gcp_scopes: Vec<String>,
    /// Audience of the Fly token for Google [default: https://iam.googleapis.com/<provider>]
    #[arg(long = "gcp-audience", value_name = "AUD")]
    pub gcp_audience: Option<String>,
    /// Google STS token endpoint [env: FLY_OIDC_GCP_STS_URL] [default: https://sts.googleapis.com/v1/token]
    #[arg(long = "gcp-sts-url", value_name = "URL")]
    pub gcp_sts_url: Option<String>,
    /// IAM Credentials base URL [env: FLY_OIDC_GCP_IAM_URL] [default: https://iamcredentials.googleapis.com]
    #[arg(long = "gcp-iam-url", value_name = "URL")]
    pub gcp_iam_url: Option<String>,
}

/// The settings that configure a cloud, for the messages that say none is (`serve`, `exec`,
/// `doctor`).
pub fn a_cloud() -> Message {
    Message::from("an AWS role (")
        .setting(fly_oidc_aws::ROLE_ARN)
        .text(") or a Google provider (")
        .setting(fly_oidc_gcp::PROVIDER)
        .text(")")
}

/// The settings of `serve`'s and `exec`'s own flags (the providers' are the providers').
const ENV_FILE: Setting = Setting::new("env_file", None).flag("env-file");
const WRITE_TOKENS: Setting = Setting::new("write_tokens", None).flag("write-token");
const FILE_OWNER: Setting = Setting::new("file_owner", None).flag("file-owner");

/// A token file spec of [`ServeOptions::write_tokens`], `PATH=AUDIENCE` (neither empty), split
/// into the path and the audience.
fn token_file(spec: &str) -> Result<(&Path, &str), BuildError> {
    let (path, audience) = spec
        .split_once('=')
        .filter(|(path, audience)| !path.is_empty() && !audience.is_empty())
        .ok_or_else(|| {
            invalid(
                WRITE_TOKENS,
                format!(
                    "{spec:?}: expected PATH=AUDIENCE, e.g. /run/fly/azure-token=api://AzureADTokenExchange"
                ),
            )
        })?;
    fly_oidc::check_audience(WRITE_TOKENS, audience, &Origin::Builder)?;
    Ok((Path::new(path), audience.trim()))
}

/// Refuse, naming `setting`, a file path that cannot be written: a directory, or a path whose
/// directory does not exist (or is no directory, or cannot be read), or one that another user
/// could redirect ([`redirectable`]).
fn check_file_path(setting: Setting, path: &Path) -> Result<(), BuildError> {
    let shown = path.display();
    // The env file names the authorization token file beside it, and a line of text cannot
    // hold a path that is not UTF-8.
    if setting == ENV_FILE && path.to_str().is_none() {
        return Err(invalid(
            setting,
            format!(
                "{shown}: is not valid UTF-8, and the env file names the token file beside it; choose a UTF-8 path"
            ),
        ));
    }
    if path.is_dir() {
        let example = path.join(match setting == ENV_FILE {
            true => "fly-oidc.env",
            false => "fly-token",
        });
        return Err(invalid(
            setting,
            format!(
                "{shown}: is a directory; name a file in it (e.g. {})",
                example.display()
            ),
        ));
    }
    if let Some(why) = fly_oidc::fs::not_replaceable(path, false) {
        return Err(invalid(setting, format!("{shown}: {why}")));
    }
    let dir = directory_of(path);
    let why = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => match redirectable(dir) {
            None => return Ok(()),
            Some(why) => format!(
                "{why}: another user could put a link in its place and have fly-oidc write or remove files elsewhere; choose a directory that only this user or root can change (e.g. /run/fly-oidc)"
            ),
        },
        Ok(_) => format!(
            "{} is not a directory; choose a path in an existing directory",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
            "the directory {0} does not exist; create it (mkdir -p {0}) or choose a path in an existing directory",
            dir.display()
        ),
        Err(e) => format!("cannot use the directory {}: {e}", dir.display()),
    };
    Err(invalid(setting, format!("{shown}: {why}")))
}

/// Why another user could have the files written in `dir` land elsewhere, or `None`. `dir` is
/// followed from `/` one name at a time, each link where it stands: every directory on the
/// way must be this user's or root's and not writable by others (a sticky one aside, except
/// `dir` itself), and every link this user's or root's. Else that user could rename a
/// directory on the way, or point a link elsewhere, and this process (root, in the deploy
/// kit) would write, rewrite and remove its files where it chose.
fn redirectable(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    use std::path::Component;
    let me = nix::unistd::geteuid().as_raw();
    let theirs = |meta: &std::fs::Metadata| meta.uid() != me && meta.uid() != 0;
    let mut left: Vec<std::ffi::OsString> = Vec::new();
    let push = |left: &mut Vec<std::ffi::OsString>, path: &Path| {
        for part in path.components().rev() {
            match part {
                Component::Normal(name) => left.push(name.to_owned()),
                Component::ParentDir => left.push("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    push(&mut left, &std::path::absolute(dir).ok()?);
    let mut at = PathBuf::from("/");
    let mut links = 0;
    loop {
        let meta = std::fs::metadata(&at).ok()?;
        if theirs(&meta) {
            return Some(format!("{} is owned by uid {}", at.display(), meta.uid()));
        }
        let (writable, sticky) = (meta.mode() & 0o022 != 0, meta.mode() & 0o1000 != 0);
        if writable && (left.is_empty() || !sticky) {
            let mode = meta.mode() & 0o7777;
            return Some(format!(
                "{} is writable by others (mode {mode:o})",
                at.display()
            ));
        }
        let name = left.pop()?;
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        let link = std::fs::symlink_metadata(&next).ok()?;
        if !link.file_type().is_symlink() {
            at = next;
            continue;
        }
        if theirs(&link) {
            return Some(format!(
                "the link {} is owned by uid {}",
                next.display(),
                link.uid()
            ));
        }
        links += 1;
        let target = std::fs::read_link(&next).ok().filter(|_| links <= 40)?;
        if target.is_absolute() {
            at = PathBuf::from("/");
        }
        push(&mut left, &target);
    }
}

/// The directory a file `path` is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The file `path` names: its directory with the links resolved, and its name (`path` as it
/// is when the directory cannot be resolved: the existence check says why).
fn resolved(path: &Path) -> PathBuf {
    let dir = directory_of(path);
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// An invalid value of `setting`, its reason starting with the setting's flag (and so shown
/// as it is, without a flag of its own).
fn invalid(setting: Setting, reason: String) -> BuildError {
    let reason = format!("{} {reason}", setting.name(Naming::Flags));
    let unflagged = Setting::new(setting.builder_method(), None);
    BuildError::invalid(unflagged, Origin::Builder, reason)
}

impl ServeOptions {
    /// A [`Builder`] serving what these options name, each provider built with `config` (its
    /// environment and Fly token client, which also keeps the `--write-token` files), listening on [`listen`](Self::listen) or else `default_listen`.
    ///
    /// # Errors
    /// A [`BuildError`] naming the field: nothing to serve (no role, no Google provider, no
    /// token file), a token file that is not `PATH=AUDIENCE`, an unknown file owner, or a
    /// provider's invalid setting. A `default_listen` other than `127.0.0.1` is refused by
    /// [`Builder::start`].
    pub fn server(
        &self,
        config: &ProviderConfig,
        default_listen: SocketAddr,
    ) -> Result<Builder, BuildError> {
        let fly = match config.fly_client() {
            Some(fly) => fly.clone(),
            None => FlyOidcClient::builder().configure(config).build()?,
        };
        let roles = aws_role_builders(&self.cloud.aws_role_arns, || {
            self.cloud.aws_builder().configure(config).disable_cache()
        });
        let gcp = self.gcp_builder(config).is_configured();
        if roles.is_empty() && !gcp && self.write_tokens.is_empty() {
            return Err(BuildError::invalid(
                Setting::new("aws_role_arns", None),
                Origin::Builder,
                Message::from("nothing to serve: configure ")
                    .append(a_cloud())
                    .text(", or a token file to write (")
                    .name(WRITE_TOKENS)
                    .text(" PATH=AUDIENCE)"),
            ));
        }
        let listen = self.listen.map_or(default_listen, |l| l.socket_addr());
        let mut server = Server::builder().listen(listen);
        for (_, builder) in roles {
            server = server.aws_role(builder.build()?);
        }
        if gcp {
            let builder = self.gcp_builder(config);
            let provider = builder.clone().build()?;
            server = server.gcp(provider).gcp_scoped(move |scopes| {
                let scoped = builder.clone().scopes(scopes.to_vec());
                scoped.build().map_err(|e| e.render(Naming::PerCloudFlags))
            });
            if let Some(project) = &self.gcp_project {
                server = server.gcp_project(project);
            }
        }
        for spec in &self.write_tokens {
            let (path, audience) = token_file(spec)?;
            server = server.write_token(path, audience, fly.clone());
        }
        Ok(server.file_owner(self.file_owner()?))
    }

    /// Refuse, before anything is fetched, files that would make serving fail late or serve no
    /// one, for a server whose variables are written to `env_file` for a shell to source
    /// (`fly-oidc serve --env-file`): an AWS role served without an env file (the AWS endpoint's
    /// authorization token would reach no one), an env file that cannot be written, and the
    /// token files [`check_token_files`](Self::check_token_files) refuses.
    ///
    /// # Errors
    /// A [`BuildError`] naming `--env-file` or `--write-token`.
    pub fn check_files(&self, env_file: Option<&Path>, env: &Env) -> Result<(), BuildError> {
        match env_file {
            Some(path) => check_file_path(ENV_FILE, path)?,
            None if self.serves_aws(env) => {
                return Err(invalid(
                    ENV_FILE,
                    "is required to serve an AWS role: the AWS endpoint needs its authorization token, which serve hands out only in the env file; pass --env-file /run/fly-oidc.env and source it before starting the app (or use `fly-oidc exec`)".into(),
                ));
            }
            None => {}
        }
        self.check_token_files(env_file)
    }

    /// Refuse, before anything is fetched, [`write_tokens`](Self::write_tokens) that cannot
    /// work: a spec that is not `PATH=AUDIENCE`, a path given twice, equal to `env_file` or to
    /// the authorization token file or the lock file beside it, a directory, or a path whose
    /// directory does not exist.
    ///
    /// # Errors
    /// A [`BuildError`] naming `--write-token`.
    pub fn check_token_files(&self, env_file: Option<&Path>) -> Result<(), BuildError> {
        // Compared as the files they name: `run/x` and `link-to-run/x` are one file.
        let env_file = env_file.map(resolved);
        let mut seen: Vec<PathBuf> = Vec::new();
        for spec in &self.write_tokens {
            let (path, _) = token_file(spec)?;
            let shown = path.display();
            let file = resolved(path);
            if seen.contains(&file) {
                return Err(invalid(
                    WRITE_TOKENS,
                    format!("{shown}: this path is given twice; give each token file its own path"),
                ));
            }
            if env_file.as_ref() == Some(&file) {
                return Err(invalid(
                    WRITE_TOKENS,
                    format!(
                        "{shown}: this path is also the --env-file; give the token file its own path"
                    ),
                ));
            }
            // The AWS endpoint's authorization token file and the lock file, beside the env file.
            let beside = [
                (
                    auth_token_file_beside as fn(&Path) -> PathBuf,
                    "the authorization token file",
                ),
                (lock_file_beside, "the lock file"),
            ];
            for (file_beside, what) in beside {
                if env_file.as_deref().map(file_beside).as_ref() == Some(&file) {
                    return Err(invalid(
                        WRITE_TOKENS,
                        format!(
                            "{shown}: this path is {what} written beside the --env-file; give the token file its own path"
                        ),
                    ));
                }
            }
            check_file_path(WRITE_TOKENS, path)?;
            seen.push(file);
        }
        Ok(())
    }

    /// Whether an AWS role is served under `env`: one of [`aws_role_builders`], as
    /// [`server`](Self::server) serves them.
    fn serves_aws(&self, env: &Env) -> bool {
        let config = ProviderConfig::default().with_env(env.clone());
        let builder = || self.cloud.aws_builder().configure(&config);
        !aws_role_builders(&self.cloud.aws_role_arns, builder).is_empty()
    }

    /// The Google provider's builder, with `config`, [`CloudOptions::gcp_builder`]'s settings
    /// and the service account.
    fn gcp_builder(&self, config: &ProviderConfig) -> fly_oidc_gcp::Builder {
        let service_account = self.cloud.gcp_service_account.as_ref();
        self.cloud
            .gcp_builder()
            .configure(config)
            .set_if(service_account, |b, sa| b.service_account(sa))
    }

    /// [`file_owner`](Self::file_owner) resolved in this machine's user and group databases.
    ///
    /// # Errors
    /// A [`BuildError`] naming `file_owner` when the user or group does not exist.
    pub fn file_owner(&self) -> Result<Option<FileOwner>, BuildError> {
        let Some(spec) = &self.file_owner else {
            return Ok(None);
        };
        resolve_owner(spec)
            .map(|user| Some(user.owner))
            .map_err(|e| invalid(FILE_OWNER, format!("{spec}: {e}")))
    }

    /// What a process using `server` needs in its environment, given its `current` one
    /// ([`EnvPlan::for_server`] with [`aws_auth_token_env`](Self::aws_auth_token_env) and
    /// [`gcp_project`](Self::gcp_project)).
    pub fn env_plan(&self, server: &Server, token_file: Option<&Path>, current: &Env) -> EnvPlan {
        EnvPlan::for_server(
            server,
            token_file,
            self.aws_auth_token_env,
            self.gcp_project.as_deref(),
            current,
        )
    }
}

/// The AWS providers of a front end that serves or tries several roles (`serve`, `exec`,
/// `doctor`): a builder from `builder` for each of `roles`, or, with none given, one for
/// `AWS_ROLE_ARN` when that is configured (else none); each with its role (`None`: the
/// variable's). A chain makes the first, the default role, a chain; the others stay as they are.
pub fn aws_role_builders(
    roles: &[String],
    builder: impl Fn() -> fly_oidc_aws::Builder,
) -> Vec<(Option<&String>, fly_oidc_aws::Builder)> {
    let roles: Vec<Option<&String>> = match roles.is_empty() {
        false => roles.iter().map(Some).collect(),
        true if builder().is_configured() => vec![None],
        true => Vec::new(),
    };
    let builders = roles.into_iter().enumerate().map(|(i, role)| {
        let b = builder().set_if(role, |b, arn| b.role_arn(arn));
        (role, if i == 0 { b } else { b.no_chain() })
    });
    builders.collect()
}

impl CloudOptions {
    /// An AWS provider builder with the AWS settings given (audience, role session name,
    /// duration, session tags when asked for, region, STS endpoint), without a role, an
    /// environment or a Fly token client: the caller adds those
    /// ([`aws_role_arns`](Self::aws_role_arns) one role per provider).
    pub fn aws_builder(&self) -> fly_oidc_aws::Builder {
        let seconds = self.aws_duration_seconds.map(Duration::from_secs);
        let tags = self.aws_principal_tags.then_some(true);
        FlyOidcCredentialsProvider::builder()
            .set_if(self.aws_audience.as_ref(), |b, aud| b.audience(aud))
            .set_if(self.aws_session_name.as_ref(), |b, n| b.session_name(n))
            .set_if(seconds, |b, duration| b.duration(duration))
            .set_if(tags, |b, yes| b.principal_tags(yes))
            .set_if(self.aws_region.as_ref(), |b, region| b.region(region))
            .set_if(self.aws_sts_endpoint.as_ref(), |b, u| b.endpoint_url(u))
            .set_if(self.aws_chain_role_arn.as_ref(), |b, arn| {
                b.chain_role_arn(arn)
            })
            .set_if(self.aws_chain_external_id.as_ref(), |b, id| {
                b.chain_external_id(id)
            })
            .set_if(self.aws_chain_session_name.as_ref(), |b, name| {
                b.chain_session_name(name)
            })
            .set_if(self.aws_chain_duration_seconds, |b, secs| {
                b.chain_duration(Duration::from_secs(secs))
            })
    }

    /// A Google provider builder with the Google settings given (provider, scopes, audience,
    /// STS URL, IAM URL), without the service account, an environment or a Fly token client:
    /// the caller adds those ([`gcp_service_account`](Self::gcp_service_account) when it
    /// impersonates).
    pub fn gcp_builder(&self) -> fly_oidc_gcp::Builder {
        let scopes = (!self.gcp_scopes.is_empty()).then(|| self.gcp_scopes.clone());
        GcpTokenProvider::builder()
            .set_if(self.gcp_provider.as_ref(), |b, p| b.provider(p))
            .set_if(scopes, |b, scopes| b.scopes(scopes))
            .set_if(self.gcp_audience.as_ref(), |b, aud| b.audience(aud))
            .set_if(self.gcp_sts_url.as_ref(), |b, url| b.sts_url(url))
            .set_if(self.gcp_iam_url.as_ref(), |b, url| b.iam_url(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `env`, and a Fly token client reading a token file.
    fn config(env: &[(&str, &str)]) -> ProviderConfig {
        let fly = FlyOidcClient::builder()
            .configure(&ProviderConfig::default().with_env(Env::from_slice(&[])))
            .token_file("/nonexistent/fly-token")
            .build()
            .expect("a token file is a valid setting");
        let config = ProviderConfig::default().with_env(Env::from_slice(env));
        config.with_fly_client(fly)
    }

    fn error(options: &ServeOptions, env: &[(&str, &str)]) -> BuildError {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        options
            .server(&config(env), loopback)
            .expect_err("invalid options")
    }

    #[test]
    fn nothing_to_serve_names_every_field_that_would_serve() {
        let err = error(&ServeOptions::default(), &[]);
        assert_eq!(err.setting().builder_method(), "aws_role_arns");
        // Named as exec and serve name them.
        let shown = err.render(Naming::PerCloudFlags);
        for field in ["--aws-role-arn", "--gcp-provider", "--write-token"] {
            assert!(shown.contains(field), "{shown}");
        }
        // AWS_ROLE_ARN alone is something to serve.
        let fine = ServeOptions::default().server(
            &config(&[("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r")]),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        assert!(fine.is_ok(), "{fine:?}");
    }

    #[test]
    fn listen_is_127_0_0_1_or_localhost_only() {
        let parse = |text: &str| text.parse::<ListenAddr>();
        let ok = parse("127.0.0.1:8675").expect("127.0.0.1");
        assert_eq!(ok.socket_addr(), SocketAddr::from(([127, 0, 0, 1], 8675)));
        assert_eq!(ok.to_string(), "127.0.0.1:8675");
        for localhost in ["localhost:0", "LOCALHOST:0"] {
            let addr = parse(localhost).expect("localhost");
            assert_eq!(addr.socket_addr(), SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        let refused = |text: &str, why: &str| {
            let err = parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains("use 127.0.0.1:PORT"), "{text}: {err}");
        };
        refused("[::1]:8675", "not every AWS SDK accepts [::1]");
        refused("127.0.0.2:8675", "not every AWS SDK accepts 127.0.0.2");
        refused("0.0.0.0:8675", "listens on 127.0.0.1 only");
        refused("10.0.0.1:8675", "listens on 127.0.0.1 only");
        refused(
            "example.com:80",
            "\"example.com\" is not 127.0.0.1 or localhost",
        );
        refused("127.0.0.1", "expected ADDR:PORT");
        refused("127.0.0.1:http", "is not a number");
        refused("127.0.0.1:70000", "is not a number");
        // A long value is quoted cut, with its length.
        let long = "a".repeat(100_000);
        for text in [format!("{long}:80"), format!("127.0.0.1:{long}")] {
            let err = parse(&text).expect_err("refused");
            assert!(err.contains("…\" (100000 characters)"), "{err}");
            assert!(err.len() < 500, "{err}");
        }
    }

    /// Google's rule for project IDs, and the legacy domain-scoped ones; nothing that could
    /// carry a quote, a space, a newline or a control character into GOOGLE_CLOUD_PROJECT.
    #[test]
    fn a_gcp_project_is_a_project_id() {
        let thirty = format!("a{}", "b".repeat(29));
        for id in [
            "my-project",
            "abcdef",
            "a-1-b-2-c",
            "project-123456",
            thirty.as_str(),
            "example.com:my-project",
            "google.com:a",
            "sub.example.co.uk:legacy-1",
        ] {
            assert_eq!(project_id(id).as_deref(), Ok(id), "{id}");
        }
        let thirty_one = format!("{thirty}c");
        for bad in [
            "",
            "abcde",
            thirty_one.as_str(),
            "1project",
            "-project",
            "project-",
            "My-Project",
            "my_project",
            "my project",
            "a\nb",
            "my-project\n",
            "\"my-project\"",
            "my-project\u{7}",
            "proj\u{e9}ct",
            ":my-project",
            "example:my-project",
            "example.com:",
            "example.com:My-Project",
            "example.com:a:b",
            "-example.com:my-project",
            "example..com:my-project",
        ] {
            let err = project_id(bad).expect_err(bad);
            assert!(err.starts_with("a project ID is 6 to 30"), "{bad:?}: {err}");
        }
        let err = project_id("123456789012").expect_err("a number");
        assert!(
            err.starts_with("this is a project number; give the project ID"),
            "{err}"
        );
    }

    #[test]
    fn token_files_must_be_path_equals_audience() {
        for spec in ["/run/token", "=aud", "/run/token="] {
            let options = ServeOptions {
                write_tokens: vec![spec.into()],
                ..ServeOptions::default()
            };
            let err = error(&options, &[]);
            assert_eq!(err.setting().builder_method(), "write_tokens");
            assert!(err.reason().contains("expected PATH=AUDIENCE"), "{err}");
        }
        // The audience follows every audience setting's rule: not blank, no control character.
        for (spec, says) in [
            ("/run/token=   ", "must not be empty"),
            ("/run/token=a\nb", "control character"),
        ] {
            let options = ServeOptions {
                write_tokens: vec![spec.into()],
                ..ServeOptions::default()
            };
            let err = error(&options, &[]);
            assert_eq!(err.setting().builder_method(), "write_tokens");
            assert!(err.reason().contains(says), "{err}");
        }
    }

    #[test]
    fn an_aws_role_needs_an_env_file_that_can_be_written() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let role = ServeOptions {
            cloud: CloudOptions {
                aws_role_arns: vec!["arn:aws:iam::123456789012:role/r".into()],
                ..CloudOptions::default()
            },
            ..ServeOptions::default()
        };
        let empty = Env::from_slice(&[]);
        let err = role.check_files(None, &empty).expect_err("no env file");
        assert_eq!(err.setting().builder_method(), "env_file");
        assert!(
            err.reason()
                .starts_with("--env-file is required to serve an AWS role")
        );
        // AWS_ROLE_ARN serves a role too; without one, no env file is needed.
        let from_env = Env::from_slice(&[("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")]);
        assert!(
            ServeOptions::default()
                .check_files(None, &from_env)
                .is_err()
        );
        ServeOptions::default()
            .check_files(None, &empty)
            .expect("nothing needs an env file");

        let err = role.check_files(Some(dir.path()), &empty).unwrap_err();
        let expected = format!(
            "--env-file {}: is a directory; name a file in it (e.g. {}/fly-oidc.env)",
            dir.path().display(),
            dir.path().display()
        );
        assert_eq!(err.reason(), expected);
        let in_file = dir.path().join("file");
        std::fs::write(&in_file, "").expect("a file");
        let err = role
            .check_files(Some(&in_file.join("app.env")), &empty)
            .unwrap_err();
        assert!(err.reason().contains("is not a directory"), "{err}");
        role.check_files(Some(&dir.path().join("app.env")), &empty)
            .expect("a file in an existing directory");
    }

    #[test]
    fn token_files_are_refused_before_any_fetch() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let token = dir.path().join("token");
        let env_file = dir.path().join("app.env");
        let refused = |specs: &[String], env_file: Option<&Path>| {
            let options = ServeOptions {
                write_tokens: specs.to_vec(),
                ..ServeOptions::default()
            };
            let err = options.check_token_files(env_file).expect_err("refused");
            assert_eq!(err.setting().builder_method(), "write_tokens");
            err.reason().to_owned()
        };
        let spec = format!("{}=vault", token.display());
        let twice = refused(&[spec.clone(), spec.clone()], None);
        assert!(twice.ends_with("this path is given twice; give each token file its own path"));
        let env_spec = format!("{}=vault", env_file.display());
        let shared = refused(&[env_spec], Some(&env_file));
        assert!(
            shared.contains("this path is also the --env-file"),
            "{shared}"
        );
        let beside = auth_token_file_beside(&env_file);
        let beside = refused(&[format!("{}=vault", beside.display())], Some(&env_file));
        assert!(
            beside.contains("the authorization token file written beside the --env-file"),
            "{beside}"
        );
        let lock = lock_file_beside(&env_file);
        let lock = refused(&[format!("{}=vault", lock.display())], Some(&env_file));
        assert!(
            lock.contains("the lock file written beside the --env-file"),
            "{lock}"
        );
        // The same file through a linked directory (found by a black-box attack).
        let linked_dir = dir.path().join("linked-dir");
        std::os::unix::fs::symlink(dir.path(), &linked_dir).expect("symlink");
        let via_link = format!("{}=vault", linked_dir.join("app.env").display());
        let shared = refused(&[via_link], Some(&env_file));
        assert!(
            shared.contains("this path is also the --env-file"),
            "{shared}"
        );
        let twice = refused(
            &[
                spec.clone(),
                format!("{}=x", linked_dir.join("token").display()),
            ],
            None,
        );
        assert!(twice.ends_with("this path is given twice; give each token file its own path"));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&env_file, &link).expect("symlink");
        let a_link = refused(&[format!("{}=vault", link.display())], None);
        assert!(a_link.contains("is a symbolic link"), "{a_link}");
        let a_dir = refused(&[format!("{}=vault", dir.path().display())], None);
        assert!(a_dir.ends_with("/fly-token)"), "{a_dir}");
        let missing = refused(&["/nonexistent-fly-oidc/t=aud".into()], None);
        assert_eq!(
            missing,
            "--write-token /nonexistent-fly-oidc/t: the directory /nonexistent-fly-oidc does not exist; create it (mkdir -p /nonexistent-fly-oidc) or choose a path in an existing directory"
        );
        let malformed = refused(&["no-audience".into()], None);
        assert!(malformed.contains("expected PATH=AUDIENCE"), "{malformed}");
        let options = ServeOptions {
            write_tokens: vec![spec],
            ..ServeOptions::default()
        };
        options
            .check_token_files(Some(&env_file))
            .expect("one file");
    }

    /// `--aws-principal-tags` asks for session tags for the roles served; without it, the
    /// provider reads `FLY_OIDC_AWS_PRINCIPAL_TAGS`.
    #[test]
    fn aws_principal_tags_is_the_providers_setting() {
        let tags = |cloud: &CloudOptions, env: &[(&str, &str)]| {
            let provider = cloud
                .aws_builder()
                .configure(&config(env))
                .role_arn("arn:aws:iam::123456789012:role/r")
                .build()
                .expect("valid settings");
            provider.settings().principal_tags()
        };
        let asked = CloudOptions {
            aws_principal_tags: true,
            ..CloudOptions::default()
        };
        assert!(tags(&asked, &[]));
        assert!(
            tags(&asked, &[("FLY_OIDC_AWS_PRINCIPAL_TAGS", "0")]),
            "the flag wins"
        );
        let unset = CloudOptions::default();
        assert!(!tags(&unset, &[]));
        assert!(tags(&unset, &[("FLY_OIDC_AWS_PRINCIPAL_TAGS", "1")]));
    }

    #[test]
    fn provider_errors_are_named_by_their_per_cloud_flag() {
        let aws = ServeOptions {
            cloud: CloudOptions {
                aws_role_arns: vec!["arn:aws:iam::123456789012:role/r".into()],
                aws_audience: Some(String::new()),
                ..CloudOptions::default()
            },
            ..ServeOptions::default()
        };
        let err = error(&aws, &[]);
        assert_eq!(err.setting().builder_method(), "audience");
        assert_eq!(err.origin(), Some(&Origin::Builder));
        let shown = err.render(Naming::PerCloudFlags);
        assert!(shown.ends_with("(from --aws-audience)"), "{shown}");
        let gcp = ServeOptions {
            cloud: CloudOptions {
                gcp_provider: Some("not a provider".into()),
                ..CloudOptions::default()
            },
            ..ServeOptions::default()
        };
        let err = error(&gcp, &[]);
        assert_eq!(err.setting().builder_method(), "provider");
        let shown = err.render(Naming::PerCloudFlags);
        assert!(shown.ends_with("(from --gcp-provider)"), "{shown}");
    }

    /// A chained role with no first role is refused, even when something else is served (it
    /// was silently not served): the flag or the variable, per-cloud flag in the message.
    #[test]
    fn a_chained_role_without_a_first_role_is_refused() {
        let chained = "arn:aws:iam::210987654321:role/data";
        let google = [(
            "FLY_OIDC_GCP_PROVIDER",
            "projects/123/locations/global/workloadIdentityPools/p/providers/fly",
        )];
        let by_flag = ServeOptions {
            cloud: CloudOptions {
                aws_chain_role_arn: Some(chained.into()),
                ..CloudOptions::default()
            },
            ..ServeOptions::default()
        };
        let err = error(&by_flag, &google);
        assert_eq!(err.setting().builder_method(), "chain_role_arn");
        assert!(err.reason().contains("set the first role too"), "{err}");
        let shown = err.render(Naming::PerCloudFlags);
        assert!(shown.ends_with("(from --aws-chain-role-arn)"), "{shown}");
        assert!(
            shown.contains("set the first role too (--aws-role-arn or AWS_ROLE_ARN)"),
            "{shown}"
        );
        let mut env = google.to_vec();
        env.push(("FLY_OIDC_AWS_CHAIN_ROLE_ARN", chained));
        let err = error(&ServeOptions::default(), &env);
        assert_eq!(err.setting().builder_method(), "chain_role_arn");
        assert_eq!(
            err.origin(),
            Some(&Origin::Env("FLY_OIDC_AWS_CHAIN_ROLE_ARN".into()))
        );
    }

    #[test]
    fn an_unknown_file_owner_is_named() {
        let options = ServeOptions {
            file_owner: Some("no-such-user-fly-oidc".into()),
            ..ServeOptions::default()
        };
        let err = options.file_owner().expect_err("no such user");
        assert_eq!(err.setting().builder_method(), "file_owner");
        assert!(
            err.reason()
                .starts_with("--file-owner no-such-user-fly-oidc: no user"),
            "{err}"
        );
    }
}
