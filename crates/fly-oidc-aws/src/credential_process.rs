//! Credentials for other programs: the AWS `credential_process` answer, `export` lines for a
//! shell and their JSON twin, and (feature `disk-cache`) [`CredentialProcess`], which serves
//! them from a disk cache shared by concurrent processes.
//!
//! `fly-oidc aws credential-process` and `fly-oidc aws env` are thin wrappers of this module.
//!
//! ```no_run
//! # #[cfg(feature = "disk-cache")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fly_oidc_aws::FlyOidcCredentialsProvider;
//! use fly_oidc_aws::credential_process::{CredentialProcess, credential_process_json};
//! let provider = FlyOidcCredentialsProvider::builder()
//!     .role_arn("arn:aws:iam::123456789012:role/my-fly-app")
//!     .disable_cache()
//!     .build()?;
//! // No cache with FLY_OIDC_NO_CACHE=1; reuse while FLY_OIDC_AWS_MIN_TTL (default 15m) remains.
//! let process = CredentialProcess::builder().build(provider)?;
//! let (entry, _outcome) = process.credentials().await?;
//! println!("{}", credential_process_json(&entry.value, entry.expires_at));
//! # Ok(()) }
//! ```

use crate::sts::AssumedRole;
use fly_oidc::{Error, ErrorKind, REDACTED};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::SystemTime;
use zeroize::Zeroize;

#[cfg(feature = "disk-cache")]
pub use crate::disk_cache::{Entry, Outcome};
#[cfg(feature = "disk-cache")]
pub use cached::{Builder, CacheSettings, CredentialProcess, parse_min_ttl};

/// Temporary AWS credentials, as cached on disk and printed. `Debug` redacts the secrets;
/// they are zeroed when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsCredentials {
    /// `ASIA...`.
    pub access_key_id: String,
    /// The secret key (never logged).
    pub secret_access_key: String,
    /// The session token (never logged).
    pub session_token: String,
    /// The account of the assumed role, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl Drop for AwsCredentials {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

impl AwsCredentials {
    /// The credentials of an assumed role (for the disk cache and the server's container
    /// credentials).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidResponse`] when STS gave no session token.
    pub fn from_assumed_role(assumed: &AssumedRole) -> Result<Self, Error> {
        let creds = &assumed.credentials;
        let session_token = creds.session_token().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                "STS answered without a session token; check the STS endpoint URL",
            )
        })?;
        Ok(Self {
            access_key_id: creds.access_key_id().to_owned(),
            secret_access_key: creds.secret_access_key().to_owned(),
            session_token: session_token.to_owned(),
            account_id: assumed.account_id.clone(),
        })
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &REDACTED)
            .field("session_token", &REDACTED)
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// The `credential_process` answer (field order as in the AWS docs).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

/// `{"Version":1,"AccessKeyId":..,"SecretAccessKey":..,"SessionToken":..,"Expiration":..}`
/// plus `AccountId` when known; `Expiration` is RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn credential_process_json(creds: &AwsCredentials, expires_at: SystemTime) -> String {
    let out = ProcessOutput {
        version: 1,
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        session_token: &creds.session_token,
        expiration: fly_oidc::time::format_rfc3339(expires_at),
        account_id: creds.account_id.as_deref(),
    };
    // Serializing plain strings into a String cannot fail.
    serde_json::to_string(&out).unwrap_or_default()
}

fn env_pairs(
    creds: &AwsCredentials,
    expires_at: SystemTime,
    region: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut pairs = vec![
        ("AWS_ACCESS_KEY_ID", creds.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.clone()),
        ("AWS_SESSION_TOKEN", creds.session_token.clone()),
        (
            "AWS_CREDENTIAL_EXPIRATION",
            fly_oidc::time::format_rfc3339(expires_at),
        ),
    ];
    if let Some(region) = region {
        for name in crate::shared_config::REGION_VARIABLES {
            pairs.push((name, region.to_owned()));
        }
    }
    pairs
}

/// `export NAME='value'` lines (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_CREDENTIAL_EXPIRATION`, and with a `region`, `AWS_REGION` and
/// `AWS_DEFAULT_REGION`) for `eval "$(fly-oidc aws env)"`. Pass the region when one is
/// configured ([`Settings::configured_region`](crate::Settings::configured_region)): the AWS
/// CLI v1 ignores `AWS_REGION` and answers "You must specify a region" without
/// `AWS_DEFAULT_REGION`.
pub fn shell_exports(
    creds: &AwsCredentials,
    expires_at: SystemTime,
    region: Option<&str>,
) -> String {
    env_pairs(creds, expires_at, region)
        .iter()
        .map(|(name, value)| fly_oidc::shell_export(name, value))
        .collect()
}

/// The same variables as [`shell_exports`], as one JSON object.
pub fn env_json(creds: &AwsCredentials, expires_at: SystemTime, region: Option<&str>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = env_pairs(creds, expires_at, region)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(feature = "disk-cache")]
mod cached {
    use super::AwsCredentials;
    use crate::disk_cache::{self, CacheKey, DiskCache, Entry, Outcome, Policy};
    use crate::provider::FlyOidcCredentialsProvider;
    use crate::settings::{ROLE_ARN, Settings};
    use fly_oidc::TokenSource;
    use fly_oidc::time::SharedTimeSource;
    use fly_oidc::{BuildError, Error, Origin, Setting};
    use std::path::PathBuf;
    use std::time::Duration;

    /// `FLY_OIDC_AWS_MIN_TTL`: reuse cached credentials while at least this much remains.
    const ENV_MIN_TTL: &str = "FLY_OIDC_AWS_MIN_TTL";
    /// `FLY_OIDC_NO_CACHE`: `1`/`true` neither reads nor writes the disk cache.
    const ENV_NO_CACHE: &str = "FLY_OIDC_NO_CACHE";
    /// The default minimum TTL: botocore refreshes credentials that have less than 15 minutes
    /// left, so anything shorter would make Python SDKs run us on every call.
    const DEFAULT_MIN_TTL: Duration = Duration::from_secs(15 * 60);

    const MIN_TTL: Setting = Setting::new("min_ttl", Some(ENV_MIN_TTL))
        .flag("min-ttl")
        .cloud(fly_oidc::Cloud::Aws);
    const NO_CACHE: Setting = Setting::new("no_cache", Some(ENV_NO_CACHE))
        .flag("no-cache")
        .cloud(fly_oidc::Cloud::Aws);

    /// `900`, `900s`, `15m`, `1h`: a duration from 0 to 12 hours (the form of
    /// `FLY_OIDC_AWS_MIN_TTL` and `--min-ttl`).
    pub fn parse_min_ttl(text: &str) -> Result<Duration, String> {
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

    /// The resolved disk cache settings.
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct CacheSettings {
        /// Whether the disk cache is skipped (neither read nor written).
        pub no_cache: bool,
        /// Reuse an entry while at least this much of its life remains (at most half the
        /// session, so that short sessions are reused at all).
        pub min_ttl: Duration,
        /// The cache directory (`$XDG_CACHE_HOME/fly-oidc`, else `$HOME/.cache/fly-oidc`);
        /// `None` when neither is an absolute path.
        pub dir: Option<PathBuf>,
    }

    /// Configures a [`CredentialProcess`]. Unset settings come from the environment of the
    /// provider's [`ProviderConfig`](fly_oidc::ProviderConfig), whose clock also decides
    /// whether an entry is fresh:
    ///
    /// | setting | environment | default |
    /// |---|---|---|
    /// | [`no_cache`](Builder::no_cache) | `FLY_OIDC_NO_CACHE` (`1`/`true`/`yes`/`on`) | use the cache |
    /// | [`min_ttl`](Builder::min_ttl) | `FLY_OIDC_AWS_MIN_TTL` (`900`, `15m`, `1h`) | 15 minutes |
    /// | the cache directory | `XDG_CACHE_HOME`, `HOME` | `~/.cache/fly-oidc` |
    #[derive(Debug, Default)]
    pub struct Builder {
        no_cache: Option<bool>,
        min_ttl: Option<Duration>,
    }

    impl Builder {
        /// Neither read nor write the disk cache (default: `FLY_OIDC_NO_CACHE`, else no).
        pub fn no_cache(mut self, no_cache: bool) -> Self {
            self.no_cache = Some(no_cache);
            self
        }

        /// Reuse cached credentials while at least this much of their life remains (default:
        /// `FLY_OIDC_AWS_MIN_TTL`, else 15 minutes). At most 12 hours.
        pub fn min_ttl(mut self, min_ttl: Duration) -> Self {
            self.min_ttl = Some(min_ttl);
            self
        }

        /// Resolve the cache settings. Fails when `provider` has no role (a credential
        /// process has nothing else to do) or a cache variable is invalid.
        pub fn build(
            self,
            provider: FlyOidcCredentialsProvider,
        ) -> Result<CredentialProcess, BuildError> {
            if provider.settings().role_arn().is_none() {
                return Err(BuildError::missing(
                    ROLE_ARN,
                    "no role to assume: give the ARN of the IAM role that trusts Fly's OIDC provider",
                ));
            }
            let (env, time) = provider.env_and_clock();
            let (env, time) = (env.clone(), time.clone());
            let min_ttl = match self.min_ttl {
                Some(d) if d > Duration::from_secs(12 * 3600) => {
                    return Err(BuildError::invalid(
                        MIN_TTL,
                        Origin::Builder,
                        "the minimum TTL is longer than 12 hours",
                    ));
                }
                Some(d) => d,
                None => match env.setting(MIN_TTL) {
                    Some((text, origin)) => parse_min_ttl(&text)
                        .map_err(|why| BuildError::invalid(MIN_TTL, origin, why))?,
                    None => DEFAULT_MIN_TTL,
                },
            };
            let no_cache = match self.no_cache {
                Some(no_cache) => no_cache,
                None => env.flag(NO_CACHE)?.unwrap_or(false),
            };
            let dir = disk_cache::default_dir(&env);
            let key = cache_key(provider.settings(), provider.fly_client().source());
            Ok(CredentialProcess {
                provider,
                settings: CacheSettings {
                    no_cache,
                    min_ttl,
                    dir,
                },
                key,
                time,
            })
        }
    }

    /// Assumes the role for another program, through a disk cache shared by concurrent
    /// processes: a fresh entry is served without any I/O but a file read; one process
    /// refreshes while the others wait; a failed refresh serves an entry that is still valid
    /// for at least a minute, never an expired one.
    #[derive(Debug)]
    pub struct CredentialProcess {
        provider: FlyOidcCredentialsProvider,
        settings: CacheSettings,
        key: CacheKey,
        time: SharedTimeSource,
    }

    impl CredentialProcess {
        /// A builder.
        pub fn builder() -> Builder {
            Builder::default()
        }

        /// The provider that assumes the role.
        pub fn provider(&self) -> &FlyOidcCredentialsProvider {
            &self.provider
        }

        /// The resolved cache settings.
        pub fn cache_settings(&self) -> &CacheSettings {
            &self.settings
        }

        /// The reuse threshold actually applied: the minimum TTL, but at most half the
        /// session, so that short sessions (900 s) are reused at all.
        pub(crate) fn effective_min_ttl(&self) -> Duration {
            self.settings
                .min_ttl
                .min(self.provider.settings().duration() / 2)
        }

        /// The credentials, from the cache when at least the minimum TTL remains, else from
        /// STS (and stored). Cache trouble is logged and never fails the call.
        pub async fn credentials(&self) -> Result<(Entry<AwsCredentials>, Outcome), Error> {
            let cache = if self.settings.no_cache {
                None
            } else {
                self.open_cache()
            };
            let policy = Policy {
                min_ttl: self.effective_min_ttl(),
                lock_timeout: disk_cache::DEFAULT_LOCK_TIMEOUT,
            };
            let result = disk_cache::get_or_fetch(
                cache.as_ref(),
                &self.key,
                &policy,
                &self.time,
                || async {
                    let assumed = self.provider.assume_role().await?;
                    Ok(Entry {
                        value: AwsCredentials::from_assumed_role(&assumed)?,
                        expires_at: assumed.expires_at,
                    })
                },
            )
            .await;
            if let Ok((_, outcome)) = &result {
                tracing::debug!("credentials: {outcome:?} ({:?})", self.key);
            }
            result
        }

        /// The disk cache, or `None` (with a warning) when it cannot be used safely.
        fn open_cache(&self) -> Option<DiskCache> {
            let Some(dir) = &self.settings.dir else {
                tracing::warn!(
                    "cache: {}; running without the cache",
                    disk_cache::Unusable::NoLocation
                );
                return None;
            };
            match DiskCache::open(dir.clone()) {
                Ok(cache) => Some(cache),
                Err(reason) => {
                    tracing::warn!("cache: not using it: {reason}; running without the cache");
                    None
                }
            }
        }
    }

    /// The one place a cache key is made: every setting that changes the answer, and where
    /// the Fly token comes from (another socket or API may be another app or org).
    fn cache_key(settings: &Settings, source: &TokenSource) -> CacheKey {
        let duration = settings.duration.as_secs().to_string();
        let policy_arns = settings.policy_arns.join(",");
        let fips = settings.use_fips.to_string();
        let dual_stack = settings.use_dual_stack.to_string();
        let source = token_source_key(source);
        let mut parts = vec![
            ("role_arn", settings.role_arn.as_deref()),
            ("audience", Some(&settings.audience)),
            ("session_name", settings.session_name.as_deref()),
            ("duration", Some(&duration)),
            ("policy", settings.policy.as_deref()),
            ("policy_arns", Some(&policy_arns)),
            ("region", Some(&settings.region)),
            ("endpoint_url", settings.endpoint_url.as_deref()),
            ("use_fips", Some(&fips)),
            ("use_dual_stack", Some(&dual_stack)),
            ("token_source", Some(&source)),
        ];
        // A token with session tags is another token, and the session another session. Only
        // when asked for, so the keys of untagged sessions stay those of earlier versions.
        if settings.principal_tags {
            parts.push(("principal_tags", Some("true")));
        }
        // The whole chain: its credentials are the chained role's. Only with a chain, as above.
        let chain_duration;
        if let Some(chain) = &settings.chain {
            chain_duration = chain.duration.as_secs().to_string();
            parts.extend([
                ("chain_role_arn", Some(chain.role_arn.as_str())),
                ("chain_external_id", chain.external_id.as_deref()),
                ("chain_session_name", chain.session_name.as_deref()),
                ("chain_duration", Some(&chain_duration)),
            ]);
        }
        CacheKey::new("aws", &parts)
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

    #[cfg(test)]
    mod tests {
        use super::*;
        use fly_oidc::FlyOidcClient;

        const ROLE: &str = "arn:aws:iam::123456789012:role/app";

        fn process(
            provider: crate::Builder,
            cache: Builder,
            env: &[(&str, &str)],
        ) -> Result<CredentialProcess, BuildError> {
            let config =
                fly_oidc::ProviderConfig::default().with_env(fly_oidc::Env::from_slice(env));
            let fly = FlyOidcClient::builder()
                .configure(&config)
                .default_socket("/nonexistent/fly-oidc-test.sock")
                .build()
                .unwrap();
            let config = config.with_fly_client(fly);
            let provider = provider.configure(&config).disable_cache().build()?;
            cache.build(provider)
        }

        const CHAINED: &str = "arn:aws:iam::210987654321:role/data";

        fn with_role() -> crate::Builder {
            crate::Builder::default().role_arn(ROLE)
        }

        #[test]
        fn min_ttl_forms() {
            assert_eq!(parse_min_ttl("900"), Ok(Duration::from_secs(900)));
            assert_eq!(parse_min_ttl("900s"), Ok(Duration::from_secs(900)));
            assert_eq!(parse_min_ttl("15m"), Ok(Duration::from_secs(900)));
            assert_eq!(parse_min_ttl("1h"), Ok(Duration::from_secs(3600)));
            assert_eq!(parse_min_ttl("0"), Ok(Duration::ZERO));
            for bad in ["", "m", "15x", "-1", "13h", "99999999999999999999", "1.5h"] {
                assert!(parse_min_ttl(bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn cache_settings_from_builder_then_environment() {
            let p = process(with_role(), Builder::default(), &[("HOME", "/home/u")]).unwrap();
            assert_eq!(
                p.cache_settings(),
                &CacheSettings {
                    no_cache: false,
                    min_ttl: DEFAULT_MIN_TTL,
                    dir: Some(PathBuf::from("/home/u/.cache/fly-oidc")),
                }
            );
            assert_eq!(p.effective_min_ttl(), DEFAULT_MIN_TTL);
            let env = [
                ("FLY_OIDC_NO_CACHE", "true"),
                ("FLY_OIDC_AWS_MIN_TTL", "20m"),
                ("FLY_OIDC_AWS_DURATION_SECONDS", "1800"),
                ("XDG_CACHE_HOME", "/x"),
            ];
            let p = process(with_role(), Builder::default(), &env).unwrap();
            assert!(p.cache_settings().no_cache);
            assert_eq!(p.cache_settings().min_ttl, Duration::from_secs(1200));
            assert_eq!(p.cache_settings().dir, Some(PathBuf::from("/x/fly-oidc")));
            // At most half of a 1800 s session.
            assert_eq!(p.effective_min_ttl(), Duration::from_secs(900));
            let p = process(
                with_role(),
                Builder::default()
                    .no_cache(false)
                    .min_ttl(Duration::from_secs(60)),
                &env,
            )
            .unwrap();
            assert!(!p.cache_settings().no_cache);
            assert_eq!(p.effective_min_ttl(), Duration::from_secs(60));
            let err = process(
                with_role(),
                Builder::default(),
                &[("FLY_OIDC_AWS_MIN_TTL", "soon")],
            )
            .unwrap_err();
            assert!(err.to_string().contains("FLY_OIDC_AWS_MIN_TTL"), "{err}");
            let err = process(crate::Builder::default(), Builder::default(), &[]).unwrap_err();
            assert!(err.to_string().contains("AWS_ROLE_ARN"), "{err}");
        }

        #[test]
        fn cache_key_changes_with_everything_that_changes_the_answer() {
            let key = |b: crate::Builder, env: &[(&str, &str)]| {
                process(b, Builder::default(), env).unwrap().key
            };
            let base = key(with_role(), &[]);
            assert_eq!(base, key(with_role(), &[]));
            let variants = [
                crate::Builder::default().role_arn("arn:aws:iam::123456789012:role/other"),
                with_role().audience("aud"),
                with_role().session_name("s1"),
                with_role().duration(Duration::from_secs(900)),
                with_role().policy("{}"),
                with_role().policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess"),
                with_role().region("eu-west-1"),
                with_role().endpoint_url("http://127.0.0.1:1"),
                with_role().use_fips(true),
                with_role().use_dual_stack(true),
                with_role().principal_tags(true),
                with_role().chain_role_arn(CHAINED),
                with_role()
                    .chain_role_arn(CHAINED)
                    .chain_external_id("ext-1"),
                with_role().chain_role_arn(CHAINED).chain_session_name("s2"),
                with_role()
                    .chain_role_arn(CHAINED)
                    .chain_duration(Duration::from_secs(900)),
            ];
            for builder in variants {
                let debug = format!("{builder:?}");
                assert_ne!(base, key(builder, &[]), "{debug}");
            }
            // Cache settings themselves do not change the answer, nor does an unrelated variable.
            let p = process(
                with_role(),
                Builder::default()
                    .no_cache(true)
                    .min_ttl(Duration::from_secs(1)),
                &[("UNRELATED", "1")],
            )
            .unwrap();
            assert_eq!(base, p.key);
            // Asking for no session tags is the default's key; the variable asks as the builder.
            assert_eq!(base, key(with_role().principal_tags(false), &[]));
            assert_eq!(
                key(with_role().principal_tags(true), &[]),
                key(with_role(), &[("FLY_OIDC_AWS_PRINCIPAL_TAGS", "1")])
            );
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds(account: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s3cr3t/key+".into(),
            session_token: "tok'en==".into(),
            account_id: account.map(str::to_owned),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn credential_process_json_has_the_documented_shape() {
        let text = credential_process_json(&creds(Some("123456789012")), at(1_700_000_000));
        assert!(
            text.starts_with(r#"{"Version":1,"AccessKeyId":"ASIAEXAMPLE","#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["SecretAccessKey"], "s3cr3t/key+");
        assert_eq!(v["SessionToken"], "tok'en==");
        assert_eq!(v["Expiration"], "2023-11-14T22:13:20Z");
        assert_eq!(v["AccountId"], "123456789012");
        let text = credential_process_json(&creds(None), at(1_700_000_000));
        assert!(!text.contains("AccountId"), "{text}");
    }

    #[test]
    fn shell_exports_survive_a_real_shell() {
        let text = shell_exports(&creds(None), at(1_700_000_000), None);
        assert_eq!(
            text.lines().count(),
            4,
            "no region configured, none exported"
        );
        assert!(
            text.contains("export AWS_SESSION_TOKEN='tok'\\''en=='\n"),
            "{text}"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{text}printf '%s|%s|%s|%s' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\" \"$AWS_SESSION_TOKEN\" \"$AWS_CREDENTIAL_EXPIRATION\""
            ))
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "ASIAEXAMPLE|s3cr3t/key+|tok'en==|2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn a_configured_region_is_exported_under_both_names() {
        let text = shell_exports(&creds(None), at(1_700_000_000), Some("eu-west-3"));
        assert_eq!(text.lines().count(), 6, "{text}");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{text}printf '%s|%s' \"$AWS_REGION\" \"$AWS_DEFAULT_REGION\""
            ))
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "eu-west-3|eu-west-3"
        );
        let v: serde_json::Value = serde_json::from_str(&env_json(
            &creds(None),
            at(1_700_000_000),
            Some("eu-west-3"),
        ))
        .unwrap();
        assert_eq!(v["AWS_REGION"], "eu-west-3");
        assert_eq!(v["AWS_DEFAULT_REGION"], "eu-west-3");
    }

    #[test]
    fn env_json_and_debug() {
        let v: serde_json::Value =
            serde_json::from_str(&env_json(&creds(None), at(1_700_000_000), None)).unwrap();
        assert_eq!(v["AWS_ACCESS_KEY_ID"], "ASIAEXAMPLE");
        assert_eq!(v["AWS_CREDENTIAL_EXPIRATION"], "2023-11-14T22:13:20Z");
        assert_eq!(v.as_object().unwrap().len(), 4);
        let debug = format!("{:?}", creds(None));
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("tok'en"),
            "{debug}"
        );
        assert!(debug.contains(REDACTED));
    }
}
