//! Resolving and checking the assume-role settings (builder values beat the environment).

use crate::error::BuildError;
use fly_oidc::endpoint::{self, PlainHttp};
use fly_oidc::{Env, FlyClaims};
use std::path::PathBuf;
use std::time::Duration;

/// `AWS_ROLE_ARN`: the role to assume.
pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
/// `AWS_ROLE_SESSION_NAME`: the role session name.
pub const ENV_ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
/// `AWS_REGION`: the region of the STS endpoint.
pub const ENV_REGION: &str = "AWS_REGION";
/// `AWS_DEFAULT_REGION`: the region when `AWS_REGION` is unset.
pub const ENV_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
/// `AWS_ENDPOINT_URL_STS`: the STS endpoint URL.
pub const ENV_ENDPOINT_URL_STS: &str = "AWS_ENDPOINT_URL_STS";
/// `AWS_ENDPOINT_URL`: the endpoint URL of every AWS service (when no service-specific one is set).
pub const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`: `true` ignores the two endpoint variables above.
pub const ENV_IGNORE_CONFIGURED_ENDPOINT_URLS: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";
/// `AWS_USE_FIPS_ENDPOINT`: `true` selects the FIPS STS endpoint.
pub const ENV_USE_FIPS_ENDPOINT: &str = "AWS_USE_FIPS_ENDPOINT";
/// `AWS_USE_DUALSTACK_ENDPOINT`: `true` selects the dual-stack (IPv4 + IPv6) STS endpoint.
pub const ENV_USE_DUALSTACK_ENDPOINT: &str = "AWS_USE_DUALSTACK_ENDPOINT";
/// `FLY_OIDC_AUDIENCE`: the audience of the Fly token (default `sts.amazonaws.com`).
pub const ENV_AUDIENCE: &str = fly_oidc::ENV_AUDIENCE;

/// The audience used when none is configured.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// The region used when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The session duration used when none is configured (1 hour).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// The shortest session STS grants (15 minutes).
pub const MIN_DURATION: Duration = Duration::from_secs(900);
/// The longest session STS grants (12 hours; the role's maximum session duration must allow it).
pub const MAX_DURATION: Duration = Duration::from_secs(43200);
/// The most managed session policies STS accepts.
pub const MAX_POLICY_ARNS: usize = 10;
/// The longest inline session policy STS accepts, in characters.
pub const MAX_POLICY_CHARS: usize = 2048;

/// The resolved settings of a provider: what it sends to STS and where.
///
/// Read them with [`FlyOidcCredentialsProvider::settings`](crate::FlyOidcCredentialsProvider::settings),
/// for example to key a cache of credentials. Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub(crate) role_arn: Option<String>,
    pub(crate) audience: String,
    pub(crate) session_name: Option<String>,
    pub(crate) duration: Duration,
    pub(crate) policy: Option<String>,
    pub(crate) policy_arns: Vec<String>,
    pub(crate) region: String,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) use_fips: bool,
    pub(crate) use_dual_stack: bool,
}

impl Settings {
    /// The role to assume (`None`: not configured; assuming fails with
    /// [`ErrorKind::NotLoaded`](crate::ErrorKind::NotLoaded)).
    pub fn role_arn(&self) -> Option<&str> {
        self.role_arn.as_deref()
    }

    /// The audience requested for the Fly token.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The session name, when set explicitly or derivable from `FLY_APP_NAME` and
    /// `FLY_MACHINE_ID`; `None` means it is derived from each token's claims.
    pub fn session_name(&self) -> Option<&str> {
        self.session_name.as_deref()
    }

    /// The requested session duration.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The inline session policy (JSON).
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// The managed session policy ARNs.
    pub fn policy_arns(&self) -> &[String] {
        &self.policy_arns
    }

    /// The STS region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The STS endpoint URL override, if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// Whether the FIPS endpoint is used.
    pub fn use_fips(&self) -> bool {
        self.use_fips
    }

    /// Whether the dual-stack endpoint is used.
    pub fn use_dual_stack(&self) -> bool {
        self.use_dual_stack
    }

    /// A stable string made of every setting that changes the credentials STS returns
    /// (role, audience, session name, duration, policy, policy ARNs, region, endpoint, FIPS,
    /// dual-stack): hash it to key a cache. Holds no secret.
    pub fn cache_key(&self) -> String {
        let fields: [(&str, String); 10] = [
            ("role_arn", self.role_arn.clone().unwrap_or_default()),
            ("audience", self.audience.clone()),
            (
                "session_name",
                self.session_name.clone().unwrap_or_default(),
            ),
            ("duration", self.duration.as_secs().to_string()),
            ("policy", self.policy.clone().unwrap_or_default()),
            ("policy_arns", self.policy_arns.join(",")),
            ("region", self.region.clone()),
            (
                "endpoint_url",
                self.endpoint_url.clone().unwrap_or_default(),
            ),
            ("use_fips", self.use_fips.to_string()),
            ("use_dual_stack", self.use_dual_stack.to_string()),
        ];
        let mut out = String::from("fly-oidc-aws/v1");
        for (name, value) in fields {
            // Length-prefixed so that no two different settings give the same key.
            out.push_str(&format!("\n{name}:{}:{value}", value.len()));
        }
        out
    }

    /// Where STS calls go, for messages.
    pub(crate) fn endpoint_description(&self) -> String {
        match &self.endpoint_url {
            Some(url) => url.clone(),
            None => {
                let fips = if self.use_fips { "-fips" } else { "" };
                let china = self.region.starts_with("cn-");
                let domain = match (self.use_dual_stack, china) {
                    (true, false) => "api.aws",
                    (false, false) => "amazonaws.com",
                    (true, true) => "api.amazonwebservices.com.cn",
                    (false, true) => "amazonaws.com.cn",
                };
                format!("https://sts{fips}.{}.{domain}", self.region)
            }
        }
    }
}

/// Values set on the builder, before resolution.
#[derive(Clone, Debug, Default)]
pub(crate) struct Requested {
    pub role_arn: Option<String>,
    pub audience: Option<String>,
    pub session_name: Option<String>,
    pub duration: Option<Duration>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub use_fips: Option<bool>,
    pub use_dual_stack: Option<bool>,
    pub allow_insecure_http: Option<bool>,
}

fn env_flag(env: &Env, name: &str) -> Result<Option<bool>, BuildError> {
    match env.get(name) {
        None => Ok(None),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(BuildError::new(format!(
                "{name}={v:?} is not a boolean; set it to true or false"
            ))),
        },
    }
}

impl Requested {
    pub(crate) fn resolve(self, env: &Env) -> Result<Settings, BuildError> {
        let role_arn = self.role_arn.or_else(|| env.get(ENV_ROLE_ARN));
        if let Some(arn) = &role_arn {
            check_role_arn(arn)?;
        }
        let audience = self
            .audience
            .or_else(|| env.get(ENV_AUDIENCE))
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        if audience.trim().is_empty() {
            return Err(BuildError::new("the audience must not be empty"));
        }
        let session_name = match self.session_name {
            Some(name) => Some(check_session_name(&name, "the session name")?),
            None => match env.get(ENV_ROLE_SESSION_NAME) {
                Some(name) => Some(check_session_name(&name, ENV_ROLE_SESSION_NAME)?),
                None => match (env.get("FLY_APP_NAME"), env.get("FLY_MACHINE_ID")) {
                    (Some(app), Some(machine)) => {
                        Some(sanitize_session_name(&format!("fly-{app}-{machine}")))
                    }
                    _ => None,
                },
            },
        };
        let duration = self.duration.unwrap_or(DEFAULT_DURATION);
        if duration < MIN_DURATION || duration > MAX_DURATION || duration.subsec_nanos() != 0 {
            return Err(BuildError::new(format!(
                "the session duration {} s is out of range: STS accepts whole seconds from {} to {} (and the role's maximum session duration must allow it)",
                duration.as_secs_f64(),
                MIN_DURATION.as_secs(),
                MAX_DURATION.as_secs()
            )));
        }
        if let Some(policy) = &self.policy {
            check_policy(policy)?;
        }
        if self.policy_arns.len() > MAX_POLICY_ARNS {
            return Err(BuildError::new(format!(
                "{} session policy ARNs given; STS accepts at most {MAX_POLICY_ARNS}",
                self.policy_arns.len()
            )));
        }
        for arn in &self.policy_arns {
            check_policy_arn(arn)?;
        }
        let region = self
            .region
            .or_else(|| env.get(ENV_REGION))
            .or_else(|| env.get(ENV_DEFAULT_REGION))
            .or_else(|| profile_region(env))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let region = region.trim().to_owned();
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(BuildError::new(format!(
                "invalid AWS region {region:?}; use a region name such as us-east-1"
            )));
        }
        let ignore_env_endpoints =
            env_flag(env, ENV_IGNORE_CONFIGURED_ENDPOINT_URLS)?.unwrap_or(false);
        let endpoint_url = self.endpoint_url.or_else(|| {
            if ignore_env_endpoints {
                None
            } else {
                env.get(ENV_ENDPOINT_URL_STS)
                    .or_else(|| env.get(ENV_ENDPOINT_URL))
            }
        });
        let allow_insecure = endpoint::allow_insecure_http(self.allow_insecure_http, env)
            .map_err(|e| BuildError::new(e.to_string()))?;
        let endpoint_url = endpoint_url
            .map(|url| check_endpoint_url(&url, allow_insecure))
            .transpose()?;
        let use_fips = match self.use_fips {
            Some(v) => v,
            None => env_flag(env, ENV_USE_FIPS_ENDPOINT)?.unwrap_or(false),
        };
        let use_dual_stack = match self.use_dual_stack {
            Some(v) => v,
            None => env_flag(env, ENV_USE_DUALSTACK_ENDPOINT)?.unwrap_or(false),
        };
        Ok(Settings {
            role_arn,
            audience,
            session_name,
            duration,
            policy: self.policy,
            policy_arns: self.policy_arns,
            region,
            endpoint_url,
            use_fips,
            use_dual_stack,
        })
    }
}

/// `arn:<partition>:iam::<12-digit account>:role/<path/name>`.
pub(crate) fn check_role_arn(arn: &str) -> Result<(), BuildError> {
    let bad = |why: &str| {
        BuildError::new(format!(
            "invalid role ARN {:?}: {why}; expected arn:aws:iam::<12-digit account id>:role/<name> (check AWS_ROLE_ARN / --role-arn)",
            truncate(arn, 200)
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(bad(
            "it does not have the six `:`-separated parts of an ARN",
        ));
    }
    if parts[1].is_empty() || !parts[1].starts_with("aws") {
        return Err(bad("unknown partition"));
    }
    if parts[2] != "iam" {
        return Err(bad("the service is not iam"));
    }
    if parts[4].len() != 12 || !parts[4].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the account id is not 12 digits"));
    }
    let Some(name) = parts[5].strip_prefix("role/") else {
        return Err(bad("it is not a role"));
    };
    if name.is_empty() || arn.len() > 2048 {
        return Err(bad("the role name is empty or too long"));
    }
    Ok(())
}

/// The account id of an ARN (`arn:aws:sts::123456789012:assumed-role/r/s` → `123456789012`).
pub(crate) fn arn_account_id(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
}

fn is_session_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

fn check_session_name(name: &str, what: &str) -> Result<String, BuildError> {
    let name = name.trim();
    if name.len() < 2 || name.len() > 64 || !name.chars().all(is_session_char) {
        return Err(BuildError::new(format!(
            "{what} {:?} is invalid: STS accepts 2 to 64 characters of letters, digits and _+=,.@-",
            truncate(name, 100)
        )));
    }
    Ok(name.to_owned())
}

/// Replace characters STS does not accept with `-` and cut to 64 characters.
pub fn sanitize_session_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| if is_session_char(c) { c } else { '-' })
        .take(64)
        .collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

/// The default session name derived from a token's claims: `fly-<app_name>-<machine_id>`.
pub(crate) fn session_name_from_claims(claims: &FlyClaims) -> Option<String> {
    match (&claims.app_name, &claims.machine_id) {
        (Some(app), Some(machine)) => Some(sanitize_session_name(&format!("fly-{app}-{machine}"))),
        (Some(app), None) => Some(sanitize_session_name(&format!("fly-{app}"))),
        _ => None,
    }
}

fn check_policy(policy: &str) -> Result<(), BuildError> {
    if policy.chars().count() > MAX_POLICY_CHARS {
        return Err(BuildError::new(format!(
            "the session policy has {} characters; STS accepts at most {MAX_POLICY_CHARS}",
            policy.chars().count()
        )));
    }
    match serde_json::from_str::<serde_json::Value>(policy) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(BuildError::new(
            "the session policy is JSON but not an object; give an IAM policy document such as {\"Version\":\"2012-10-17\",\"Statement\":[...]}",
        )),
        Err(e) => Err(BuildError::new(format!(
            "the session policy is not valid JSON (line {}, column {}); give an IAM policy document",
            e.line(),
            e.column()
        ))
        .with_source(e)),
    }
}

fn check_policy_arn(arn: &str) -> Result<(), BuildError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if arn.len() < 20
        || arn.len() > 2048
        || parts.len() != 6
        || parts[0] != "arn"
        || parts[2] != "iam"
        || !parts[5].starts_with("policy/")
    {
        return Err(BuildError::new(format!(
            "invalid policy ARN {:?}: expected arn:aws:iam::<account id or aws>:policy/<name>",
            truncate(arn, 200)
        )));
    }
    Ok(())
}

fn check_endpoint_url(raw: &str, allow_insecure: bool) -> Result<String, BuildError> {
    endpoint::check_endpoint_url(raw, allow_insecure, PlainHttp::Loopback).map_err(|why| {
        BuildError::new(format!(
            "invalid STS endpoint URL {:?}: {why} (check --sts-endpoint, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL)",
            endpoint::display_url(raw)
        ))
    })
}

/// The region of the active profile in the shared AWS config file, if any.
fn profile_region(env: &Env) -> Option<String> {
    let path = env.get("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| {
        env.get("HOME")
            .map(|home| PathBuf::from(home).join(".aws").join("config"))
    })?;
    // A shared config file is a few KB; ignore anything absurdly large.
    if std::fs::metadata(&path).ok()?.len() > 1024 * 1024 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let profile = env.get("AWS_PROFILE").unwrap_or_else(|| "default".into());
    parse_profile_region(&text, &profile)
}

fn parse_profile_region(text: &str, profile: &str) -> Option<String> {
    let mut in_profile = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            let name = section
                .strip_prefix("profile ")
                .map(str::trim)
                .unwrap_or(section);
            in_profile = name == profile;
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && in_profile
            && key.trim() == "region"
        {
            let value = value.trim();
            return (!value.is_empty()).then(|| value.to_owned());
        }
    }
    None
}

pub(crate) use fly_oidc::truncate;

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/app";

    fn resolve(req: Requested, env: &[(&str, &str)]) -> Result<Settings, BuildError> {
        req.resolve(&Env::from_slice(env))
    }

    #[test]
    fn defaults_and_environment() {
        let s = resolve(Requested::default(), &[]).unwrap();
        assert_eq!(s.role_arn(), None);
        assert_eq!(s.audience(), "sts.amazonaws.com");
        assert_eq!(s.region(), "us-east-1");
        assert_eq!(s.duration(), Duration::from_secs(3600));
        assert_eq!(s.session_name(), None);
        assert_eq!(
            s.endpoint_description(),
            "https://sts.us-east-1.amazonaws.com"
        );
        let s = resolve(
            Requested::default(),
            &[
                ("AWS_ROLE_ARN", ROLE),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
                ("FLY_OIDC_AUDIENCE", "aud-x"),
                ("FLY_APP_NAME", "my app"),
                ("FLY_MACHINE_ID", "m1"),
                ("AWS_USE_FIPS_ENDPOINT", "true"),
            ],
        )
        .unwrap();
        assert_eq!(s.role_arn(), Some(ROLE));
        assert_eq!(s.region(), "eu-west-1");
        assert_eq!(s.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert_eq!(s.audience(), "aud-x");
        assert_eq!(s.session_name(), Some("fly-my-app-m1"));
        assert!(s.use_fips());
        // AWS_REGION beats AWS_DEFAULT_REGION; AWS_ENDPOINT_URL_STS beats AWS_ENDPOINT_URL;
        // builder values beat both.
        let s = resolve(
            Requested::default(),
            &[
                ("AWS_REGION", "ap-south-1"),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL_STS", "https://sts.example"),
                ("AWS_ENDPOINT_URL", "https://all.example"),
            ],
        )
        .unwrap();
        assert_eq!(s.region(), "ap-south-1");
        assert_eq!(s.endpoint_url(), Some("https://sts.example"));
        let s = resolve(
            Requested {
                region: Some("us-west-2".into()),
                endpoint_url: Some("https://mine.example".into()),
                ..Default::default()
            },
            &[
                ("AWS_REGION", "ap-south-1"),
                ("AWS_ENDPOINT_URL_STS", "https://sts.example"),
            ],
        )
        .unwrap();
        assert_eq!(s.region(), "us-west-2");
        assert_eq!(s.endpoint_url(), Some("https://mine.example"));
        let s = resolve(
            Requested::default(),
            &[
                ("AWS_ENDPOINT_URL", "https://all.example"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
                ("AWS_USE_DUALSTACK_ENDPOINT", "true"),
            ],
        )
        .unwrap();
        assert_eq!(s.endpoint_url(), None);
        assert_eq!(s.endpoint_description(), "https://sts.us-east-1.api.aws");
    }

    #[test]
    fn invalid_settings_fail_at_build() {
        let cases: Vec<(Requested, &str)> = vec![
            (
                Requested {
                    role_arn: Some("arn:aws:iam::12:role/x".into()),
                    ..Default::default()
                },
                "12 digits",
            ),
            (
                Requested {
                    role_arn: Some("arn:aws:iam::123456789012:user/x".into()),
                    ..Default::default()
                },
                "not a role",
            ),
            (
                Requested {
                    duration: Some(Duration::from_secs(899)),
                    ..Default::default()
                },
                "out of range",
            ),
            (
                Requested {
                    duration: Some(Duration::from_secs(43201)),
                    ..Default::default()
                },
                "out of range",
            ),
            (
                Requested {
                    policy: Some("{not json".into()),
                    ..Default::default()
                },
                "not valid JSON",
            ),
            (
                Requested {
                    policy: Some("[1]".into()),
                    ..Default::default()
                },
                "not an object",
            ),
            (
                Requested {
                    policy_arns: vec!["nope".into()],
                    ..Default::default()
                },
                "invalid policy ARN",
            ),
            (
                Requested {
                    session_name: Some("has space".into()),
                    ..Default::default()
                },
                "session name",
            ),
            (
                Requested {
                    endpoint_url: Some("http://sts.example.com".into()),
                    ..Default::default()
                },
                "plain http",
            ),
            (
                Requested {
                    region: Some("us east".into()),
                    ..Default::default()
                },
                "invalid AWS region",
            ),
        ];
        for (req, want) in cases {
            let err = resolve(req, &[]).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        assert!(resolve(Requested::default(), &[("AWS_USE_FIPS_ENDPOINT", "maybe")]).is_err());
        assert!(resolve(Requested::default(), &[("AWS_ROLE_SESSION_NAME", "a b")]).is_err());
        let ok = resolve(
            Requested {
                role_arn: Some("arn:aws-us-gov:iam::123456789012:role/path/app".into()),
                duration: Some(Duration::from_secs(900)),
                policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
                policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
                endpoint_url: Some("http://[::1]:5000".into()),
                ..Default::default()
            },
            &[],
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn session_names_are_sanitized() {
        assert_eq!(sanitize_session_name("fly-my app/x"), "fly-my-app-x");
        assert_eq!(sanitize_session_name(&"a".repeat(100)).len(), 64);
        assert_eq!(sanitize_session_name("x"), "x-");
        let claims: FlyClaims = serde_json::from_value(serde_json::json!({
            "app_name": "web", "machine_id": "148e21"
        }))
        .unwrap();
        assert_eq!(
            session_name_from_claims(&claims).as_deref(),
            Some("fly-web-148e21")
        );
    }

    #[test]
    fn profile_region_is_read() {
        let text = "[default]\nregion = eu-central-1\n\n[profile dev]\n# c\nregion=us-west-1\n";
        assert_eq!(
            parse_profile_region(text, "default").as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            parse_profile_region(text, "dev").as_deref(),
            Some("us-west-1")
        );
        assert_eq!(parse_profile_region(text, "other"), None);
        let dir = std::env::temp_dir().join(format!("fly-oidc-aws-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config");
        std::fs::write(&file, text).unwrap();
        let s = resolve(
            Requested::default(),
            &[
                ("AWS_CONFIG_FILE", file.to_str().unwrap()),
                ("AWS_PROFILE", "dev"),
            ],
        )
        .unwrap();
        assert_eq!(s.region(), "us-west-1");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn cache_keys_differ_when_settings_differ() {
        let a = resolve(Requested::default(), &[("AWS_ROLE_ARN", ROLE)]).unwrap();
        let b = resolve(
            Requested {
                duration: Some(Duration::from_secs(900)),
                ..Default::default()
            },
            &[("AWS_ROLE_ARN", ROLE)],
        )
        .unwrap();
        assert_ne!(a.cache_key(), b.cache_key());
        assert_eq!(a.cache_key(), a.clone().cache_key());
        assert_eq!(
            arn_account_id("arn:aws:sts::123456789012:assumed-role/r/s"),
            Some("123456789012")
        );
    }
}
