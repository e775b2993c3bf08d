//! `fly-oidc aws credential-process` and `fly-oidc aws env`: temporary AWS credentials for
//! the AWS CLI, every AWS SDK and shells, through STS `AssumeRoleWithWebIdentity` with a Fly
//! token, cached on disk across runs (see [`crate::disk_cache`]).

pub(crate) mod format;
mod lazy_http;

use crate::common::{CliError, Globals};
use crate::disk_cache::{self, CacheKey, DiskCache, Entry, Policy};
use clap::{Args, Subcommand};
use fly_oidc::time::SharedTimeSource;
use fly_oidc::{Env, FlyOidcClient, TokenSource};
use fly_oidc_aws::{ErrorKind, FlyOidcCredentialsProvider};
use format::AwsCredentials;
use std::io::{Read, Write};
use std::time::Duration;

/// `FLY_OIDC_AWS_DURATION_SECONDS`: the session duration.
pub const ENV_DURATION: &str = "FLY_OIDC_AWS_DURATION_SECONDS";
/// `FLY_OIDC_AWS_POLICY`: an inline session policy (JSON, or `@file`).
pub const ENV_POLICY: &str = "FLY_OIDC_AWS_POLICY";
/// `FLY_OIDC_AWS_POLICY_ARNS`: managed session policies, comma-separated.
pub const ENV_POLICY_ARNS: &str = "FLY_OIDC_AWS_POLICY_ARNS";
/// `FLY_OIDC_AWS_MIN_TTL`: reuse cached credentials while at least this much remains.
pub const ENV_MIN_TTL: &str = "FLY_OIDC_AWS_MIN_TTL";
/// `FLY_OIDC_NO_CACHE`: `1`/`true` disables the disk cache.
pub const ENV_NO_CACHE: &str = "FLY_OIDC_NO_CACHE";

/// The default `--min-ttl`: botocore refreshes credentials that have less than 15 minutes
/// left, so anything shorter would make Python SDKs run us on every call.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(15 * 60);
/// Largest accepted `--policy @file` (STS itself accepts 2048 characters).
const MAX_POLICY_BYTES: u64 = 64 * 1024;

/// AWS subcommands.
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Print credentials as `credential_process` JSON (for ~/.aws/config and every AWS SDK).
    CredentialProcess(AwsArgs),
    /// Print `export AWS_...=...` lines for a shell: eval "$(fly-oidc aws env)".
    Env(EnvArgs),
}

/// Flags shared by the AWS subcommands. Each falls back to an environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// The IAM role to assume [env: AWS_ROLE_ARN]
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The audience of the Fly token [env: FLY_OIDC_AUDIENCE; default: sts.amazonaws.com]
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,
    /// The role session name [env: AWS_ROLE_SESSION_NAME; default: fly-<app>-<machine id>]
    #[arg(long, value_name = "NAME")]
    pub session_name: Option<String>,
    /// The session duration, 900..43200 [env: FLY_OIDC_AWS_DURATION_SECONDS; default: 3600]
    #[arg(long, value_name = "SECONDS")]
    pub duration_seconds: Option<u32>,
    /// An inline session policy: JSON text, or @FILE [env: FLY_OIDC_AWS_POLICY]
    #[arg(long, value_name = "JSON|@FILE")]
    pub policy: Option<String>,
    /// A managed session policy ARN; repeatable [env: FLY_OIDC_AWS_POLICY_ARNS, comma-separated]
    #[arg(long = "policy-arn", value_name = "ARN")]
    pub policy_arns: Vec<String>,
    /// The STS region [env: AWS_REGION, AWS_DEFAULT_REGION; default: us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The STS endpoint URL [env: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub sts_endpoint: Option<String>,
    /// Neither read nor write the disk cache [env: FLY_OIDC_NO_CACHE=1]
    #[arg(long)]
    pub no_cache: bool,
    /// Reuse cached credentials while at least this much of their life remains: 900, 900s,
    /// 15m, 1h [env: FLY_OIDC_AWS_MIN_TTL; default: 15m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub min_ttl: Option<Duration>,
}

/// Flags of `fly-oidc aws env`.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    aws: AwsArgs,
    /// Print the variables as one JSON object instead of shell exports
    #[arg(long)]
    json: bool,
}

/// `900`, `900s`, `15m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => {
            return Err(format!(
                "{text:?}: expected seconds, or a number followed by s, m or h"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|secs| *secs <= 12 * 3600)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            format!("{text:?}: expected a duration from 0 to 12h, such as 900, 15m or 1h")
        })
}

/// The provider, configured from the flags (then the environment, which the provider reads
/// for the role, audience, session name, region and endpoint), plus the cache settings.
#[derive(Debug)]
pub struct Configured {
    /// Assumes the role once per call (its in-process cache is off: the disk cache is ours).
    pub provider: FlyOidcCredentialsProvider,
    /// Skip the disk cache.
    pub no_cache: bool,
    /// Reuse cached credentials while at least this much remains.
    pub min_ttl: Duration,
}

impl Configured {
    /// Flags first, then `env`. Invalid settings are usage errors (exit 2).
    pub fn new(args: AwsArgs, env: &Env, fly: FlyOidcClient) -> Result<Self, CliError> {
        let mut builder = FlyOidcCredentialsProvider::builder()
            .env(env.clone())
            .fly_client(fly)
            .http_client(lazy_http::LazyHttpsClient::shared())
            .disable_cache();
        if let Some(arn) = args.role_arn {
            builder = builder.role_arn(arn);
        }
        if let Some(audience) = args.audience {
            builder = builder.audience(audience);
        }
        if let Some(name) = args.session_name {
            builder = builder.session_name(name);
        }
        if let Some(region) = args.region {
            builder = builder.region(region);
        }
        if let Some(url) = args.sts_endpoint {
            builder = builder.endpoint_url(url);
        }
        let duration = match args.duration_seconds {
            Some(secs) => Some(secs),
            None => match env.get(ENV_DURATION) {
                Some(text) => Some(text.trim().parse().map_err(|_| {
                    CliError::usage(format!(
                        "{ENV_DURATION}={text:?} is not a whole number of seconds"
                    ))
                })?),
                None => None,
            },
        };
        if let Some(secs) = duration {
            builder = builder.duration(Duration::from_secs(u64::from(secs)));
        }
        if let Some(text) = args.policy.or_else(|| env.get(ENV_POLICY)) {
            builder = builder.policy(load_policy(&text)?);
        }
        let mut policy_arns = args.policy_arns;
        if policy_arns.is_empty()
            && let Some(list) = env.get(ENV_POLICY_ARNS)
        {
            policy_arns = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        builder = builder.policy_arns(policy_arns);
        let provider = builder
            .build()
            .map_err(|e| CliError::usage(e.to_string()))?;
        if provider.settings().role_arn().is_none() {
            return Err(CliError::usage(format!(
                "no role to assume: pass --role-arn or set {} to the ARN of the IAM role that trusts Fly's OIDC provider",
                fly_oidc_aws::ENV_ROLE_ARN
            )));
        }
        let no_cache = args.no_cache
            || env
                .flag(fly_oidc::Setting::new("no_cache", Some(ENV_NO_CACHE)))?
                .unwrap_or(false);
        let min_ttl = match args.min_ttl {
            Some(d) => d,
            None => match env.get(ENV_MIN_TTL) {
                Some(text) => parse_duration(&text)
                    .map_err(|e| CliError::usage(format!("{ENV_MIN_TTL}: {e}")))?,
                None => DEFAULT_MIN_TTL,
            },
        };
        Ok(Self {
            provider,
            no_cache,
            min_ttl,
        })
    }

    /// The reuse threshold actually applied: `min_ttl`, but at most half the session, so
    /// that short sessions (`--duration-seconds 900`) are reused at all.
    pub fn effective_min_ttl(&self) -> Duration {
        self.min_ttl.min(self.provider.settings().duration() / 2)
    }

    /// The disk cache key: every setting that changes the answer (the provider's
    /// [`cache_key`](fly_oidc_aws::Settings::cache_key)), plus where the Fly token comes
    /// from (another socket or API may be another app or org).
    pub fn cache_key(&self) -> CacheKey {
        let settings = self.provider.settings().cache_key();
        let source = token_source_key(self.provider.fly_client().source());
        CacheKey::new(
            "aws",
            &[
                ("settings", Some(&settings)),
                ("token_source", Some(&source)),
            ],
        )
    }
}

/// Names the Fly token source without its secret.
fn token_source_key(source: &TokenSource) -> String {
    use sha2::Digest;
    match source {
        // Another API token may be another org: key on a hash of it, never the token.
        TokenSource::Http {
            base_url,
            api_token,
        } => {
            let digest = sha2::Sha256::digest(api_token.expose_secret().as_bytes());
            let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("http {base_url} {hex}")
        }
        other => other.to_string(),
    }
}

/// `--policy` text, or the content of `@file`.
fn load_policy(text: &str) -> Result<String, CliError> {
    let policy = match text.strip_prefix('@') {
        Some(path) => {
            let mut content = String::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_POLICY_BYTES + 1).read_to_string(&mut content))
                .map_err(|e| CliError::usage(format!("--policy @{path}: cannot read it: {e}")))?;
            if content.len() as u64 > MAX_POLICY_BYTES {
                return Err(CliError::usage(format!(
                    "--policy @{path}: larger than 64 KiB"
                )));
            }
            content
        }
        None => text.to_owned(),
    };
    // The provider checks that it is a JSON object within STS's limits.
    Ok(policy)
}

/// The disk cache, or `None` (with a warning) when it cannot be used safely.
fn open_cache(env: &Env) -> Option<DiskCache> {
    let Some(dir) = disk_cache::default_dir(env) else {
        tracing::warn!(
            "cache: {}; running without the cache",
            disk_cache::Unusable::NoLocation
        );
        return None;
    };
    match DiskCache::open(dir) {
        Ok(cache) => Some(cache),
        Err(reason) => {
            tracing::warn!("cache: not using it: {reason}; running without the cache");
            None
        }
    }
}

pub async fn run(globals: &Globals, cmd: AwsCommand) -> Result<(), CliError> {
    let (args, output) = match cmd {
        AwsCommand::CredentialProcess(args) => (args, Output::CredentialProcess),
        AwsCommand::Env(EnvArgs { aws, json }) => {
            (aws, if json { Output::EnvJson } else { Output::Shell })
        }
    };
    let env = globals.env();
    let configured = Configured::new(args, &env, globals.fly_client()?)?;
    let cache = if configured.no_cache {
        None
    } else {
        open_cache(&env)
    };
    let policy = Policy {
        min_ttl: configured.effective_min_ttl(),
        lock_timeout: disk_cache::DEFAULT_LOCK_TIMEOUT,
    };
    let key = configured.cache_key();
    let time = SharedTimeSource::default();
    let (entry, outcome) =
        disk_cache::get_or_fetch(cache.as_ref(), &key, &policy, &time, || async {
            assume_role(&configured.provider).await.map_err(Failed)
        })
        .await
        .map_err(|Failed(err)| err)?;
    tracing::debug!("credentials: {outcome:?} ({key:?})");
    let text = zeroize::Zeroizing::new(match output {
        Output::CredentialProcess => {
            format::credential_process_json(&entry.value, entry.expires_at) + "\n"
        }
        Output::Shell => format::shell_exports(&entry.value, entry.expires_at),
        Output::EnvJson => format::env_json(&entry.value, entry.expires_at) + "\n",
    });
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::new("writing to stdout", e))
}

/// A failed refresh, shown (as its one line) when a still-valid cached answer is served.
struct Failed(CliError);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.line())
    }
}

#[derive(Debug, Clone, Copy)]
enum Output {
    CredentialProcess,
    Shell,
    EnvJson,
}

/// One `AssumeRoleWithWebIdentity` with a fresh Fly token.
async fn assume_role(
    provider: &FlyOidcCredentialsProvider,
) -> Result<Entry<AwsCredentials>, CliError> {
    let assumed = provider.assume_role().await.map_err(|err| {
        let step = match err.kind() {
            ErrorKind::NotLoaded | ErrorKind::InvalidConfiguration | ErrorKind::FlyToken => {
                "Fly token"
            }
            _ => "STS",
        };
        CliError::new(step, err)
    })?;
    let creds = &assumed.credentials;
    let Some(session_token) = creds.session_token() else {
        return Err(CliError::new(
            "STS",
            "STS answered without a session token; check --sts-endpoint",
        ));
    };
    Ok(Entry {
        value: AwsCredentials {
            access_key_id: creds.access_key_id().to_owned(),
            secret_access_key: creds.secret_access_key().to_owned(),
            session_token: session_token.to_owned(),
            account_id: assumed.account_id.clone(),
        },
        expires_at: assumed.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/app";

    fn fly(env: &Env) -> FlyOidcClient {
        FlyOidcClient::builder()
            .env(env.clone())
            .default_socket("/nonexistent/fly-oidc-test.sock")
            .build()
            .unwrap()
    }

    fn configure(args: AwsArgs, env: &[(&str, &str)]) -> Result<Configured, CliError> {
        let env = Env::from_slice(env);
        Configured::new(args, &env, fly(&env))
    }

    fn with_role() -> AwsArgs {
        AwsArgs {
            role_arn: Some(ROLE.into()),
            ..AwsArgs::default()
        }
    }

    #[test]
    fn defaults() {
        let c = configure(with_role(), &[]).unwrap();
        let s = c.provider.settings();
        assert_eq!(s.role_arn(), Some(ROLE));
        assert_eq!(s.audience(), "sts.amazonaws.com");
        assert_eq!(s.session_name(), None);
        assert_eq!(s.duration(), Duration::from_secs(3600));
        assert_eq!(s.region(), "us-east-1");
        assert_eq!((s.endpoint_url(), s.policy()), (None, None));
        assert_eq!(c.min_ttl, Duration::from_secs(900));
        assert_eq!(c.effective_min_ttl(), Duration::from_secs(900));
        assert!(!c.no_cache);
    }

    #[test]
    fn environment_fallbacks() {
        let c = configure(
            AwsArgs::default(),
            &[
                ("AWS_ROLE_ARN", ROLE),
                ("FLY_OIDC_AUDIENCE", "custom"),
                ("AWS_ROLE_SESSION_NAME", "sess"),
                ("FLY_OIDC_AWS_DURATION_SECONDS", "1800"),
                ("FLY_OIDC_AWS_POLICY", r#"{"Version":"2012-10-17"}"#),
                (
                    "FLY_OIDC_AWS_POLICY_ARNS",
                    "arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                ),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("FLY_OIDC_NO_CACHE", "true"),
                ("FLY_OIDC_AWS_MIN_TTL", "20m"),
            ],
        )
        .unwrap();
        let s = c.provider.settings();
        assert_eq!(s.audience(), "custom");
        assert_eq!(s.session_name(), Some("sess"));
        assert_eq!(s.duration(), Duration::from_secs(1800));
        assert_eq!(s.policy(), Some(r#"{"Version":"2012-10-17"}"#));
        assert_eq!(s.policy_arns().len(), 2);
        assert_eq!(s.region(), "eu-west-1");
        assert_eq!(s.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert!(c.no_cache);
        assert_eq!(c.min_ttl, Duration::from_secs(1200));
        // At most half of a 1800 s session.
        assert_eq!(c.effective_min_ttl(), Duration::from_secs(900));
    }

    #[test]
    fn flags_beat_environment() {
        let args = AwsArgs {
            role_arn: Some(ROLE.into()),
            audience: Some("flag-aud".into()),
            session_name: Some("flag-session".into()),
            region: Some("ap-south-1".into()),
            sts_endpoint: Some("https://sts.example.com".into()),
            duration_seconds: Some(900),
            policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            min_ttl: Some(Duration::from_secs(60)),
            ..AwsArgs::default()
        };
        let c = configure(
            args,
            &[
                ("AWS_ROLE_ARN", "arn:aws:iam::111111111111:role/other"),
                ("FLY_OIDC_AUDIENCE", "env-aud"),
                ("AWS_ROLE_SESSION_NAME", "env-session"),
                ("AWS_REGION", "us-west-2"),
                ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"),
                (
                    "FLY_OIDC_AWS_POLICY_ARNS",
                    "arn:aws:iam::aws:policy/AdministratorAccess",
                ),
                ("FLY_OIDC_AWS_DURATION_SECONDS", "7200"),
                ("FLY_OIDC_AWS_MIN_TTL", "20m"),
            ],
        )
        .unwrap();
        let s = c.provider.settings();
        assert_eq!(s.role_arn(), Some(ROLE));
        assert_eq!(s.audience(), "flag-aud");
        assert_eq!(s.session_name(), Some("flag-session"));
        assert_eq!(s.region(), "ap-south-1");
        assert_eq!(s.endpoint_url(), Some("https://sts.example.com"));
        assert_eq!(
            s.policy_arns(),
            ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()]
        );
        assert_eq!(s.duration(), Duration::from_secs(900));
        assert_eq!(c.effective_min_ttl(), Duration::from_secs(60));
    }

    fn usage_line(args: AwsArgs, env: &[(&str, &str)]) -> String {
        let err = configure(args, env).unwrap_err();
        let line = err.line();
        assert!(line.starts_with("invalid arguments: "), "{line}");
        line
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_the_fix() {
        assert!(usage_line(AwsArgs::default(), &[]).contains("--role-arn or set AWS_ROLE_ARN"));
        let bad_role = AwsArgs {
            role_arn: Some("my-role".into()),
            ..AwsArgs::default()
        };
        assert!(usage_line(bad_role, &[]).contains("invalid role ARN"));
        for d in [0, 899, 43_201] {
            let args = AwsArgs {
                duration_seconds: Some(d),
                ..with_role()
            };
            assert!(usage_line(args, &[]).contains("900"), "{d}");
        }
        assert!(
            usage_line(with_role(), &[("FLY_OIDC_AWS_DURATION_SECONDS", "soon")])
                .contains("not a whole number")
        );
        for policy in ["{", "[1]"] {
            let args = AwsArgs {
                policy: Some(policy.into()),
                ..with_role()
            };
            assert!(usage_line(args, &[]).contains("session policy"), "{policy}");
        }
        let args = AwsArgs {
            policy: Some("@/nonexistent/policy.json".into()),
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("cannot read it"));
        let args = AwsArgs {
            policy_arns: vec!["ReadOnly".into()],
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("ReadOnly"));
        let args = AwsArgs {
            policy_arns: (0..11)
                .map(|i| format!("arn:aws:iam::aws:policy/P{i}"))
                .collect(),
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("at most 10"));
        let args = AwsArgs {
            session_name: Some("has space".into()),
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("session name"));
        let args = AwsArgs {
            sts_endpoint: Some("sts.amazonaws.com".into()),
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("STS endpoint"));
        let args = AwsArgs {
            sts_endpoint: Some("http://sts.example.com".into()),
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("plain http"));
        assert!(usage_line(with_role(), &[("FLY_OIDC_AWS_MIN_TTL", "soon")]).contains("MIN_TTL"));
    }

    #[test]
    fn policy_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap();
        let args = AwsArgs {
            policy: Some(format!("@{}", path.display())),
            ..with_role()
        };
        let c = configure(args, &[]).unwrap();
        assert_eq!(
            c.provider.settings().policy(),
            Some(r#"{"Version":"2012-10-17","Statement":[]}"#)
        );
        std::fs::write(&path, vec![b' '; 70 * 1024]).unwrap();
        let args = AwsArgs {
            policy: Some(format!("@{}", path.display())),
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("larger than 64 KiB"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("900"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("900s"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "m", "15x", "-1", "13h", "99999999999999999999", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_key_changes_with_everything_that_changes_the_answer() {
        let key = |args: AwsArgs, env: &[(&str, &str)]| configure(args, env).unwrap().cache_key();
        let base = key(with_role(), &[]);
        assert_eq!(base, key(with_role(), &[]));
        let variants = [
            AwsArgs {
                role_arn: Some("arn:aws:iam::123456789012:role/other".into()),
                ..AwsArgs::default()
            },
            AwsArgs {
                audience: Some("aud".into()),
                ..with_role()
            },
            AwsArgs {
                session_name: Some("s1".into()),
                ..with_role()
            },
            AwsArgs {
                duration_seconds: Some(900),
                ..with_role()
            },
            AwsArgs {
                policy: Some("{}".into()),
                ..with_role()
            },
            AwsArgs {
                policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
                ..with_role()
            },
            AwsArgs {
                region: Some("eu-west-1".into()),
                ..with_role()
            },
            AwsArgs {
                sts_endpoint: Some("http://127.0.0.1:1".into()),
                ..with_role()
            },
        ];
        for args in variants {
            let debug = format!("{args:?}");
            assert_ne!(base, key(args, &[]), "{debug}");
        }
        // Cache settings themselves do not change the answer, nor does an unrelated variable.
        let args = AwsArgs {
            no_cache: true,
            min_ttl: Some(Duration::from_secs(1)),
            ..with_role()
        };
        assert_eq!(base, key(args, &[("UNRELATED", "1")]));
        // The Fly app and machine name the session when nothing else does.
        assert_ne!(
            base,
            key(
                with_role(),
                &[("FLY_APP_NAME", "a"), ("FLY_MACHINE_ID", "m")]
            )
        );
        // The Fly token source, including which API token (hashed, never in the key).
        assert_ne!(base, key(with_role(), &[("FLY_OIDC_TOKEN_FILE", "/tmp/t")]));
        let http = |token: &str| {
            key(
                with_role(),
                &[
                    ("FLY_API_HOSTNAME", "http://127.0.0.1:1"),
                    ("FLY_API_TOKEN", token),
                ],
            )
        };
        assert_ne!(http("a"), http("b"));
        assert!(!format!("{:?}", http("secret-token")).contains("secret"));
        assert!(
            !token_source_key(&TokenSource::Http {
                base_url: "http://x".into(),
                api_token: "secret-token".into()
            })
            .contains("secret")
        );
    }
}
