//! `fly-oidc aws credential-process` and `fly-oidc aws env`: temporary AWS credentials for
//! the AWS CLI, every AWS SDK and shells, through STS `AssumeRoleWithWebIdentity` with a Fly
//! token, cached on disk across runs (see [`crate::disk_cache`]).

mod format;

use crate::common::{CliError, Globals};
use crate::disk_cache::{self, CacheKey, DiskCache, Entry, Outcome, Policy};
use clap::{Args, Subcommand};
use fly_oidc::time::SharedTimeSource;
use fly_oidc::{Env, FlyOidcClient, TokenSource};
use format::AwsCredentials;
use std::io::{Read, Write};
use std::time::Duration;

/// `AWS_ROLE_ARN`: the role to assume (also what Fly's built-in integration reads).
pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
/// `AWS_ROLE_SESSION_NAME`: the role session name.
pub const ENV_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
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

/// The audience when none is configured.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// The session duration when none is configured.
pub const DEFAULT_DURATION_SECONDS: u32 = 3600;
/// The default `--min-ttl`: botocore refreshes credentials that have less than 15 minutes
/// left, so anything shorter would make Python SDKs run us on every call.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(15 * 60);
/// Largest accepted `--policy @file`.
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

/// Every setting, resolved from flags then the environment, and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The role to assume.
    pub role_arn: String,
    /// The Fly token audience.
    pub audience: String,
    /// The session name; `None` lets the provider derive `fly-<app>-<machine>`.
    pub session_name: Option<String>,
    /// Session duration in seconds.
    pub duration_seconds: u32,
    /// Inline session policy (JSON text).
    pub policy: Option<String>,
    /// Managed session policies.
    pub policy_arns: Vec<String>,
    /// STS region, when configured.
    pub region: Option<String>,
    /// STS endpoint, when configured.
    pub sts_endpoint: Option<String>,
    /// Skip the disk cache.
    pub no_cache: bool,
    /// Reuse cached credentials while at least this much remains.
    pub min_ttl: Duration,
}

fn truthy(value: Option<String>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

impl Settings {
    /// Flags first, then `env`. Errors are usage errors (exit 2).
    pub fn resolve(args: AwsArgs, env: &Env) -> Result<Self, CliError> {
        let role_arn = args
            .role_arn
            .or_else(|| env.get(ENV_ROLE_ARN))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "no role to assume: pass --role-arn or set {ENV_ROLE_ARN}"
                ))
            })?;
        let role_arn = role_arn.trim().to_owned();
        if !role_arn.starts_with("arn:") || !role_arn.contains(":role/") {
            return Err(CliError::usage(format!(
                "--role-arn {role_arn:?} is not a role ARN (arn:aws:iam::<account>:role/<name>)"
            )));
        }
        let audience = args
            .audience
            .or_else(|| env.get(fly_oidc::ENV_AUDIENCE))
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        let session_name = args.session_name.or_else(|| env.get(ENV_SESSION_NAME));
        if let Some(name) = &session_name {
            let valid = (2..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
            if !valid {
                return Err(CliError::usage(format!(
                    "session name {name:?} must be 2 to 64 characters of [A-Za-z0-9_+=,.@-]"
                )));
            }
        }
        let duration_seconds = match args.duration_seconds {
            Some(d) => d,
            None => match env.get(ENV_DURATION) {
                Some(text) => text.trim().parse().map_err(|_| {
                    CliError::usage(format!(
                        "{ENV_DURATION}={text:?} is not a number of seconds"
                    ))
                })?,
                None => DEFAULT_DURATION_SECONDS,
            },
        };
        if !(900..=43_200).contains(&duration_seconds) {
            return Err(CliError::usage(format!(
                "--duration-seconds {duration_seconds}: STS accepts 900 to 43200"
            )));
        }
        let policy = match args.policy.or_else(|| env.get(ENV_POLICY)) {
            Some(text) => Some(load_policy(&text)?),
            None => None,
        };
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
        if let Some(bad) = policy_arns.iter().find(|a| !a.starts_with("arn:")) {
            return Err(CliError::usage(format!(
                "--policy-arn {bad:?} is not an ARN"
            )));
        }
        if policy_arns.len() > 10 {
            return Err(CliError::usage("STS accepts at most 10 --policy-arn"));
        }
        let region = args
            .region
            .or_else(|| env.get("AWS_REGION"))
            .or_else(|| env.get("AWS_DEFAULT_REGION"));
        let sts_endpoint = args
            .sts_endpoint
            .or_else(|| env.get("AWS_ENDPOINT_URL_STS"))
            .or_else(|| env.get("AWS_ENDPOINT_URL"));
        if let Some(url) = &sts_endpoint
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(CliError::usage(format!(
                "--sts-endpoint {url:?} must be an http(s) URL"
            )));
        }
        let no_cache = args.no_cache || truthy(env.get(ENV_NO_CACHE));
        let min_ttl = match args.min_ttl {
            Some(d) => d,
            None => match env.get(ENV_MIN_TTL) {
                Some(text) => parse_duration(&text)
                    .map_err(|e| CliError::usage(format!("{ENV_MIN_TTL}: {e}")))?,
                None => DEFAULT_MIN_TTL,
            },
        };
        Ok(Self {
            role_arn,
            audience,
            session_name,
            duration_seconds,
            policy,
            policy_arns,
            region,
            sts_endpoint,
            no_cache,
            min_ttl,
        })
    }

    /// The reuse threshold actually applied: `min_ttl`, but at most half the session, so
    /// that short sessions (`--duration-seconds 900`) are still reused at all.
    pub fn effective_min_ttl(&self) -> Duration {
        self.min_ttl
            .min(Duration::from_secs(u64::from(self.duration_seconds) / 2))
    }

    /// The cache key: everything that changes the answer, including where the Fly token
    /// comes from (another socket or API may be another app or org).
    pub fn cache_key(&self, source: &TokenSource, env: &Env) -> CacheKey {
        use sha2::Digest;
        let source_text = match source {
            // Another API token may be another org; key on its hash, never the token.
            TokenSource::Http {
                base_url,
                api_token,
            } => {
                let digest = sha2::Sha256::digest(api_token.expose_secret().as_bytes());
                let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!("http {base_url} {hex}")
            }
            other => format!("{other}"),
        };
        let duration = self.duration_seconds.to_string();
        let policy_arns = self.policy_arns.join("\n");
        // Without a session name the provider derives one from these (or the token).
        let (app, machine) = match self.session_name {
            Some(_) => (None, None),
            None => (env.get("FLY_APP_NAME"), env.get("FLY_MACHINE_ID")),
        };
        CacheKey::new(
            "aws",
            &[
                ("role_arn", Some(&self.role_arn)),
                ("audience", Some(&self.audience)),
                ("session_name", self.session_name.as_deref()),
                ("fly_app_name", app.as_deref()),
                ("fly_machine_id", machine.as_deref()),
                ("duration_seconds", Some(&duration)),
                ("policy", self.policy.as_deref()),
                ("policy_arns", Some(&policy_arns)),
                ("region", self.region.as_deref()),
                ("sts_endpoint", self.sts_endpoint.as_deref()),
                ("token_source", Some(&source_text)),
            ],
        )
    }
}

/// `--policy` text, or the content of `@file`; must be a JSON object.
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
    match serde_json::from_str::<serde_json::Value>(&policy) {
        Ok(serde_json::Value::Object(_)) => Ok(policy),
        Ok(_) => Err(CliError::usage(
            "--policy must be a JSON object (an IAM policy document)",
        )),
        Err(e) => Err(CliError::usage(format!("--policy is not valid JSON: {e}"))),
    }
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
    let settings = Settings::resolve(args, &env)?;
    let client = globals.fly_client()?;
    let key = settings.cache_key(client.source(), &env);
    let cache = if settings.no_cache {
        None
    } else {
        open_cache(&env)
    };
    let policy = Policy {
        min_ttl: settings.effective_min_ttl(),
        lock_timeout: disk_cache::DEFAULT_LOCK_TIMEOUT,
    };
    let time = SharedTimeSource::default();
    let (entry, outcome) = disk_cache::get_or_fetch(cache.as_ref(), &key, &policy, &time, || {
        assume_role(&settings, client, env.clone(), time.clone())
    })
    .await?;
    tracing::debug!("credentials for {}: {outcome:?}", settings.role_arn);
    if outcome == Outcome::Hit {
        tracing::debug!("served from {:?}", key);
    }
    let text = match output {
        Output::CredentialProcess => {
            format::credential_process_json(&entry.value, entry.expires_at) + "\n"
        }
        Output::Shell => format::shell_exports(&entry.value, entry.expires_at),
        Output::EnvJson => format::env_json(&entry.value, entry.expires_at) + "\n",
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::new("writing to stdout", e))
}

#[derive(Debug, Clone, Copy)]
enum Output {
    CredentialProcess,
    Shell,
    EnvJson,
}

/// One `AssumeRoleWithWebIdentity` with a fresh Fly token (no in-process cache: the disk
/// cache is ours).
async fn assume_role(
    _settings: &Settings,
    _client: FlyOidcClient,
    _env: Env,
    _time: SharedTimeSource,
) -> Result<Entry<AwsCredentials>, CliError> {
    Err(CliError::new(
        "STS",
        "the AWS provider is not wired in yet (waiting for fly-oidc-aws)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const ROLE: &str = "arn:aws:iam::123456789012:role/app";

    fn resolve(args: AwsArgs, env: &[(&str, &str)]) -> Result<Settings, CliError> {
        Settings::resolve(args, &Env::from_slice(env))
    }

    fn with_role() -> AwsArgs {
        AwsArgs {
            role_arn: Some(ROLE.into()),
            ..AwsArgs::default()
        }
    }

    fn socket() -> TokenSource {
        TokenSource::Socket {
            path: PathBuf::from("/.fly/api"),
            is_default: true,
        }
    }

    #[test]
    fn defaults() {
        let s = resolve(with_role(), &[]).unwrap();
        assert_eq!(s.role_arn, ROLE);
        assert_eq!(s.audience, "sts.amazonaws.com");
        assert_eq!(s.session_name, None);
        assert_eq!(s.duration_seconds, 3600);
        assert_eq!(s.min_ttl, Duration::from_secs(900));
        assert_eq!(s.effective_min_ttl(), Duration::from_secs(900));
        assert!(!s.no_cache);
        assert_eq!((s.region, s.sts_endpoint, s.policy), (None, None, None));
    }

    #[test]
    fn environment_fallbacks() {
        let s = resolve(
            AwsArgs::default(),
            &[
                ("AWS_ROLE_ARN", ROLE),
                ("FLY_OIDC_AUDIENCE", "custom"),
                ("AWS_ROLE_SESSION_NAME", "sess"),
                ("FLY_OIDC_AWS_DURATION_SECONDS", "1800"),
                ("FLY_OIDC_AWS_POLICY", r#"{"Version":"2012-10-17"}"#),
                (
                    "FLY_OIDC_AWS_POLICY_ARNS",
                    "arn:aws:iam::aws:policy/A, arn:aws:iam::aws:policy/B",
                ),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("FLY_OIDC_NO_CACHE", "true"),
                ("FLY_OIDC_AWS_MIN_TTL", "20m"),
            ],
        )
        .unwrap();
        assert_eq!(s.audience, "custom");
        assert_eq!(s.session_name.as_deref(), Some("sess"));
        assert_eq!(s.duration_seconds, 1800);
        assert!(s.policy.is_some());
        assert_eq!(s.policy_arns.len(), 2);
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.sts_endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(s.no_cache);
        assert_eq!(s.min_ttl, Duration::from_secs(1200));
        // At most half of a 1800 s session.
        assert_eq!(s.effective_min_ttl(), Duration::from_secs(900));
    }

    #[test]
    fn flags_beat_environment() {
        let args = AwsArgs {
            role_arn: Some(ROLE.into()),
            audience: Some("flag-aud".into()),
            region: Some("ap-south-1".into()),
            sts_endpoint: Some("https://sts.example".into()),
            duration_seconds: Some(900),
            policy_arns: vec!["arn:aws:iam::aws:policy/C".into()],
            min_ttl: Some(Duration::from_secs(60)),
            ..AwsArgs::default()
        };
        let s = resolve(
            args,
            &[
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/other"),
                ("FLY_OIDC_AUDIENCE", "env-aud"),
                ("AWS_REGION", "us-west-2"),
                ("AWS_ENDPOINT_URL_STS", "http://x"),
                ("FLY_OIDC_AWS_POLICY_ARNS", "arn:aws:iam::aws:policy/A"),
                ("FLY_OIDC_AWS_DURATION_SECONDS", "7200"),
                ("FLY_OIDC_AWS_MIN_TTL", "20m"),
            ],
        )
        .unwrap();
        assert_eq!(s.role_arn, ROLE);
        assert_eq!(s.audience, "flag-aud");
        assert_eq!(s.region.as_deref(), Some("ap-south-1"));
        assert_eq!(s.sts_endpoint.as_deref(), Some("https://sts.example"));
        assert_eq!(s.policy_arns, vec!["arn:aws:iam::aws:policy/C".to_owned()]);
        assert_eq!(s.duration_seconds, 900);
        assert_eq!(s.effective_min_ttl(), Duration::from_secs(60));
        // AWS_REGION beats AWS_DEFAULT_REGION; AWS_ENDPOINT_URL_STS beats AWS_ENDPOINT_URL.
        let s = resolve(
            with_role(),
            &[
                ("AWS_REGION", "a"),
                ("AWS_DEFAULT_REGION", "b"),
                ("AWS_ENDPOINT_URL_STS", "http://sts"),
                ("AWS_ENDPOINT_URL", "http://all"),
            ],
        )
        .unwrap();
        assert_eq!(s.region.as_deref(), Some("a"));
        assert_eq!(s.sts_endpoint.as_deref(), Some("http://sts"));
    }

    fn usage_line(args: AwsArgs, env: &[(&str, &str)]) -> String {
        resolve(args, env).unwrap_err().line()
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_the_fix() {
        assert!(usage_line(AwsArgs::default(), &[]).contains("--role-arn or set AWS_ROLE_ARN"));
        let bad_role = AwsArgs {
            role_arn: Some("my-role".into()),
            ..AwsArgs::default()
        };
        assert!(usage_line(bad_role, &[]).contains("not a role ARN"));
        for d in [0, 899, 43_201] {
            let args = AwsArgs {
                duration_seconds: Some(d),
                ..with_role()
            };
            assert!(usage_line(args, &[]).contains("900 to 43200"));
        }
        assert!(
            usage_line(with_role(), &[("FLY_OIDC_AWS_DURATION_SECONDS", "soon")])
                .contains("not a number")
        );
        for policy in ["{", "[1]", "@/nonexistent/policy.json"] {
            let args = AwsArgs {
                policy: Some(policy.into()),
                ..with_role()
            };
            assert!(usage_line(args, &[]).contains("--policy"), "{policy}");
        }
        let args = AwsArgs {
            policy_arns: vec!["ReadOnly".into()],
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("not an ARN"));
        let args = AwsArgs {
            session_name: Some("has space".into()),
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("session name"));
        let args = AwsArgs {
            sts_endpoint: Some("sts.amazonaws.com".into()),
            ..with_role()
        };
        assert!(usage_line(args, &[]).contains("http(s) URL"));
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
        let s = resolve(args, &[]).unwrap();
        assert_eq!(
            s.policy.as_deref(),
            Some(r#"{"Version":"2012-10-17","Statement":[]}"#)
        );
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
        let env = Env::from_slice(&[]);
        let base = resolve(with_role(), &[]).unwrap();
        let key = base.cache_key(&socket(), &env);
        assert_eq!(key, base.cache_key(&socket(), &env));
        let variants: Vec<fn(&mut Settings)> = vec![
            |s| s.role_arn.push('2'),
            |s| s.audience.push('2'),
            |s| s.session_name = Some("x".into()),
            |s| s.duration_seconds += 1,
            |s| s.policy = Some("{}".into()),
            |s| s.policy_arns.push("arn:x".into()),
            |s| s.region = Some("eu-west-1".into()),
            |s| s.sts_endpoint = Some("http://127.0.0.1:1".into()),
        ];
        for change in &variants {
            let mut s = base.clone();
            change(&mut s);
            assert_ne!(key, s.cache_key(&socket(), &env), "{s:?}");
        }
        // Cache settings themselves do not change the answer.
        let mut s = base.clone();
        s.min_ttl = Duration::from_secs(1);
        s.no_cache = true;
        assert_eq!(key, s.cache_key(&socket(), &env));
        // Nor does an unrelated variable; the Fly app/machine do when they name the session.
        let fly_env = Env::from_slice(&[("FLY_APP_NAME", "a"), ("FLY_MACHINE_ID", "m")]);
        assert_ne!(key, base.cache_key(&socket(), &fly_env));
        assert_eq!(
            key,
            base.cache_key(&socket(), &Env::from_slice(&[("X", "1")]))
        );
        // The token source.
        let other = TokenSource::File(PathBuf::from("/.fly/oidc_token"));
        assert_ne!(key, base.cache_key(&other, &env));
        let http = |token: &str| TokenSource::Http {
            base_url: "http://127.0.0.1:1".into(),
            api_token: token.into(),
        };
        assert_ne!(
            base.cache_key(&http("a"), &env),
            base.cache_key(&http("b"), &env)
        );
        assert!(!format!("{:?}", base.cache_key(&http("secret-token"), &env)).contains("secret"));
    }
}
