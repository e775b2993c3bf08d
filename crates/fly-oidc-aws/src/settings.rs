//! The assume-role settings: one [`Settings`] resolved from the builder, then the injected
//! environment and the AWS shared config, then the defaults. Any builder value beats every
//! variable.

use crate::shared_config::{
    ENV_ENDPOINT_URL_STS, ENV_REGION, ENV_USE_DUALSTACK_ENDPOINT, ENV_USE_FIPS_ENDPOINT,
};
use crate::shared_config::{FlagError, Found, SharedConfig};
use fly_oidc::endpoint::{self, PlainHttp};
use fly_oidc::fs::ReadError;
use fly_oidc::{BuildError, Message, Origin, Setting};
use fly_oidc::{Env, FlyClaims};
use std::path::Path;
use std::time::Duration;

/// `AWS_ROLE_ARN`: the role to assume.
pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
/// `AWS_ROLE_SESSION_NAME`: the role session name.
const ENV_ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
/// `FLY_OIDC_AUDIENCE`: the audience of the Fly token (default `sts.amazonaws.com`).
const ENV_AUDIENCE: &str = fly_oidc::ENV_AUDIENCE;
/// `FLY_OIDC_AWS_DURATION_SECONDS`: the session duration in whole seconds.
const ENV_DURATION_SECONDS: &str = "FLY_OIDC_AWS_DURATION_SECONDS";
/// `FLY_OIDC_AWS_POLICY`: an inline session policy, JSON text or `@PATH` of a file holding it.
const ENV_POLICY: &str = "FLY_OIDC_AWS_POLICY";
/// `FLY_OIDC_AWS_POLICY_ARNS`: managed session policy ARNs, comma-separated.
const ENV_POLICY_ARNS: &str = "FLY_OIDC_AWS_POLICY_ARNS";
/// `FLY_OIDC_AWS_PRINCIPAL_TAGS`: ask Fly for AWS's session tags claim (yes/no).
const ENV_PRINCIPAL_TAGS: &str = fly_oidc::ENV_AWS_PRINCIPAL_TAGS;
/// `FLY_OIDC_AWS_CHAIN_ROLE_ARN`: a role to assume next with the first role's credentials.
const ENV_CHAIN_ROLE_ARN: &str = "FLY_OIDC_AWS_CHAIN_ROLE_ARN";
/// `FLY_OIDC_AWS_CHAIN_EXTERNAL_ID`: the external id the chained role's trust policy asks for.
const ENV_CHAIN_EXTERNAL_ID: &str = "FLY_OIDC_AWS_CHAIN_EXTERNAL_ID";

/// The audience used when none is configured (the client id of an IAM OpenID Connect
/// provider for STS).
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// The region used when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The session duration used when none is configured (1 hour).
const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// The shortest session STS grants (15 minutes).
const MIN_DURATION: Duration = Duration::from_secs(900);
/// The longest session STS grants (12 hours; the role's maximum session duration must allow it).
const MAX_DURATION: Duration = Duration::from_secs(43200);
/// The longest session of a chained role: AWS caps a session assumed with a role session's
/// credentials at one hour.
const MAX_CHAINED_DURATION: Duration = Duration::from_secs(3600);
/// The most managed session policies STS accepts.
const MAX_POLICY_ARNS: usize = 10;
/// The longest inline session policy STS accepts, in characters.
const MAX_POLICY_CHARS: usize = 2048;
/// The largest policy file (`@PATH`) read, in bytes.
const MAX_POLICY_FILE_BYTES: usize = 64 * 1024;

/// The resolved settings of a provider: what it sends to STS and where.
///
/// Read them with [`FlyOidcCredentialsProvider::settings`](crate::FlyOidcCredentialsProvider::settings).
/// Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub(crate) role_arn: Option<String>,
    pub(crate) audience: String,
    pub(crate) session_name: Option<String>,
    pub(crate) duration: Duration,
    /// Where `duration` came from; `None` for the default.
    pub(crate) duration_origin: Option<Origin>,
    pub(crate) policy: Option<String>,
    pub(crate) policy_arns: Vec<String>,
    pub(crate) principal_tags: bool,
    pub(crate) region: String,
    /// Whether `region` was configured (builder, variable or profile) rather than the default.
    pub(crate) region_configured: bool,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) use_fips: bool,
    pub(crate) use_dual_stack: bool,
    /// The endpoint the SDK's resolver picks for these settings, when it can say.
    pub(crate) resolved_endpoint: Option<String>,
    /// The role assumed next, with the first role's credentials.
    pub(crate) chain: Option<ChainedRole>,
}

/// The second hop of a role chain: the role assumed with `sts:AssumeRole`, signed with the
/// credentials of the role the Fly token assumed (usually in another account). What the
/// provider hands out is this role's credentials. Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainedRole {
    /// The chained role's ARN.
    pub role_arn: String,
    /// The external id sent (`sts:ExternalId` in the chained role's trust policy).
    pub external_id: Option<String>,
    /// The session name of the chained session; `None`: the first hop's.
    pub session_name: Option<String>,
    /// The requested duration of the chained session (at most 3600 s).
    pub duration: Duration,
}

impl Settings {
    /// The role to assume (`None`: not configured; assuming fails with
    /// [`ErrorKind::NotConfigured`](crate::ErrorKind::NotConfigured)).
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

    /// The requested session duration (whole seconds).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The inline session policy (JSON), after reading `@PATH`.
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// The managed session policy ARNs.
    pub fn policy_arns(&self) -> &[String] {
        &self.policy_arns
    }

    /// Whether the Fly token is asked for AWS's session tags claim (`"aws_principal_tags":
    /// true`), which STS makes session tags.
    pub fn principal_tags(&self) -> bool {
        self.principal_tags
    }

    /// The STS region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The STS region when one was configured (builder, `AWS_REGION`, `AWS_DEFAULT_REGION`
    /// or the profile's `region`); `None` when [`region`](Self::region) is the default
    /// `us-east-1`.
    pub fn configured_region(&self) -> Option<&str> {
        self.region_configured.then_some(self.region.as_str())
    }

    /// The configured STS endpoint URL (builder, `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`,
    /// or the profile's `services` section or `endpoint_url`), if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The role assumed next with the first role's credentials, when the role is chained.
    pub fn chain(&self) -> Option<&ChainedRole> {
        self.chain.as_ref()
    }

    /// Where STS calls go: the endpoint URL as the SDK's endpoint resolver picks it from the
    /// region, FIPS, dual-stack and endpoint URL settings (`https://sts.us-east-1.amazonaws.com`),
    /// or, when the resolver cannot say, "the regional STS endpoint for `REGION`".
    pub fn sts_endpoint(&self) -> String {
        match &self.resolved_endpoint {
            Some(url) => url.clone(),
            None => format!("the regional STS endpoint for {}", self.region),
        }
    }
}

/// The endpoint the SDK would call, from its own endpoint resolver.
fn resolve_endpoint(
    region: &str,
    use_fips: bool,
    use_dual_stack: bool,
    endpoint_url: Option<&str>,
) -> Option<String> {
    use aws_sdk_sts::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let params = Params::builder()
        .region(region)
        .use_fips(use_fips)
        .use_dual_stack(use_dual_stack)
        .set_endpoint(endpoint_url.map(str::to_owned))
        .build()
        .ok()?;
    let resolver = DefaultResolver::new();
    let endpoint = crate::shared_config::ready(resolver.resolve_endpoint(&params))?.ok()?;
    Some(endpoint.url().trim_end_matches('/').to_owned())
}

/// Values set on the builder, before resolution.
#[derive(Clone, Debug, Default)]
pub(crate) struct Requested {
    pub role_arn: Option<String>,
    pub audience: Option<String>,
    pub session_name: Option<String>,
    pub duration: Option<Duration>,
    pub policy: Option<String>,
    pub policy_arns: Option<Vec<String>>,
    pub principal_tags: Option<bool>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub use_fips: Option<bool>,
    pub use_dual_stack: Option<bool>,
    pub chain_role_arn: Option<String>,
    pub chain_external_id: Option<String>,
    pub chain_session_name: Option<String>,
    pub chain_duration: Option<Duration>,
    /// `Some(false)`: no chain, whatever the environment says.
    pub chained: Option<bool>,
}

/// An AWS provider setting: builder method, variable, flag (`--aws-` where both clouds are
/// configured at once).
const fn aws(method: &'static str, var: &'static str, flag: &'static str) -> Setting {
    Setting::new(method, Some(var))
        .flag(flag)
        .cloud(fly_oidc::Cloud::Aws)
}
/// The role setting ([`Builder::role_arn`](crate::Builder::role_arn), `AWS_ROLE_ARN`,
/// `--role-arn`; `--aws-role-arn` where both clouds are configured).
pub const ROLE_ARN: Setting = aws("role_arn", ENV_ROLE_ARN, "role-arn");
pub(crate) const AUDIENCE: Setting = aws("audience", ENV_AUDIENCE, "audience");
const SESSION_NAME: Setting = aws("session_name", ENV_ROLE_SESSION_NAME, "session-name");
pub(crate) const DURATION: Setting = aws("duration", ENV_DURATION_SECONDS, "duration-seconds");
pub(crate) const POLICY: Setting = aws("policy", ENV_POLICY, "policy");
pub(crate) const POLICY_ARNS: Setting = aws("policy_arns", ENV_POLICY_ARNS, "policy-arn");
pub(crate) const PRINCIPAL_TAGS: Setting =
    aws("principal_tags", ENV_PRINCIPAL_TAGS, "principal-tags");
pub(crate) const REGION: Setting = aws("region", ENV_REGION, "region");
pub(crate) const ENDPOINT_URL: Setting = aws("endpoint_url", ENV_ENDPOINT_URL_STS, "sts-endpoint");
/// The chained role setting ([`Builder::chain_role_arn`](crate::Builder::chain_role_arn),
/// `FLY_OIDC_AWS_CHAIN_ROLE_ARN`, `--chain-role-arn`).
pub const CHAIN_ROLE_ARN: Setting = aws("chain_role_arn", ENV_CHAIN_ROLE_ARN, "chain-role-arn");
/// The chained role's external id setting
/// ([`Builder::chain_external_id`](crate::Builder::chain_external_id),
/// `FLY_OIDC_AWS_CHAIN_EXTERNAL_ID`, `--chain-external-id`).
pub const CHAIN_EXTERNAL_ID: Setting = aws(
    "chain_external_id",
    ENV_CHAIN_EXTERNAL_ID,
    "chain-external-id",
);
const CHAIN_SESSION_NAME: Setting = Setting::new("chain_session_name", None)
    .flag("chain-session-name")
    .cloud(fly_oidc::Cloud::Aws);
pub(crate) const CHAIN_DURATION: Setting = Setting::new("chain_duration", None)
    .flag("chain-duration-seconds")
    .cloud(fly_oidc::Cloud::Aws);
const USE_FIPS: Setting = Setting::new("use_fips", Some(ENV_USE_FIPS_ENDPOINT));
const USE_DUAL_STACK: Setting = Setting::new("use_dual_stack", Some(ENV_USE_DUALSTACK_ENDPOINT));

/// Where a value of the shared config came from, as the error pattern names it.
fn origin_of(found: Found) -> Origin {
    match found {
        Found::Variable(name) => Origin::Env(name.to_owned()),
        Found::Profile { profile, .. } => Origin::Profile(profile),
    }
}

/// The reason, naming the key when the value came from the config file.
fn in_profile(found: &Found, reason: String) -> String {
    match found {
        Found::Variable(_) => reason,
        Found::Profile { .. } => format!("{reason} ({found} in the AWS config file)"),
    }
}

/// A builder value, else the variable.
fn pick(builder: Option<String>, env: &Env, setting: Setting) -> Option<(String, Origin)> {
    match builder {
        Some(value) => Some((value, Origin::Builder)),
        None => env.setting(setting),
    }
}

/// The audience of the Fly token sent to STS, without surrounding white space: `given` (the
/// builder's), else `FLY_OIDC_AUDIENCE` from `env`, else [`DEFAULT_AUDIENCE`].
///
/// # Errors
/// A [`BuildError`] naming the audience setting when it is blank or not valid UTF-8
/// ([`fly_oidc::check_audience`]).
pub fn resolve_audience(given: Option<String>, env: &Env) -> Result<String, BuildError> {
    match pick(given, env, AUDIENCE) {
        Some((audience, origin)) => {
            fly_oidc::check_audience(AUDIENCE, &audience, &origin)?;
            Ok(audience.trim().to_owned())
        }
        None => Ok(DEFAULT_AUDIENCE.to_owned()),
    }
}

impl Requested {
    /// The role to assume: the builder's, else `AWS_ROLE_ARN`; `None`: AWS is not configured.
    pub(crate) fn role_arn(&self, env: &Env) -> Option<(String, Origin)> {
        pick(self.role_arn.clone(), env, ROLE_ARN)
    }

    /// Whether AWS is asked for: a role to assume, or a chained role (which needs one, so that
    /// building says so rather than AWS going unserved).
    pub(crate) fn is_configured(&self, env: &Env) -> bool {
        self.role_arn(env).is_some()
            || (self.chained != Some(false)
                && pick(self.chain_role_arn.clone(), env, CHAIN_ROLE_ARN).is_some())
    }

    /// The settings, with `allow_insecure` (the config's `allow_insecure_http`, resolved).
    pub(crate) fn resolve(self, env: &Env, allow_insecure: bool) -> Result<Settings, BuildError> {
        let role_arn = self.role_arn(env);
        if let Some((arn, origin)) = &role_arn {
            check_role_arn(arn)
                .map_err(|why| BuildError::invalid(ROLE_ARN, origin.clone(), why))?;
        }
        let audience = resolve_audience(self.audience, env)?;
        let session_name = match pick(self.session_name, env, SESSION_NAME) {
            Some((name, origin)) => Some(
                check_session_name(&name)
                    .map_err(|why| BuildError::invalid(SESSION_NAME, origin, why))?,
            ),
            None => match (env.get("FLY_APP_NAME"), env.get("FLY_MACHINE_ID")) {
                (Some(app), Some(machine)) => Some(default_session_name(&app, Some(&machine))),
                _ => None,
            },
        };
        let (duration, duration_origin) = match self.duration {
            Some(duration) => (duration, Some(Origin::Builder)),
            None => match env.setting(DURATION) {
                Some((text, origin)) => match text.trim().parse::<u64>() {
                    Ok(secs) => (Duration::from_secs(secs), Some(origin)),
                    Err(_) => {
                        return Err(BuildError::invalid(
                            DURATION,
                            origin,
                            format!(
                                "{:?} is not a whole number of seconds",
                                truncate(text.trim(), 40)
                            ),
                        ));
                    }
                },
                None => (DEFAULT_DURATION, None),
            },
        };
        if duration < MIN_DURATION || duration > MAX_DURATION || duration.subsec_nanos() != 0 {
            return Err(BuildError::invalid(
                DURATION,
                duration_origin.unwrap_or(Origin::Builder),
                format!(
                    "the session duration {} s is out of range: STS accepts whole seconds from {} to {} (and the role's maximum session duration must allow it)",
                    duration.as_secs_f64(),
                    MIN_DURATION.as_secs(),
                    MAX_DURATION.as_secs()
                ),
            ));
        }
        let policy = pick(self.policy, env, POLICY)
            .map(|(text, origin)| {
                load_policy(&text)
                    .and_then(|policy| check_policy(&policy).map(|()| policy))
                    .map_err(|why| BuildError::invalid(POLICY, origin, why))
            })
            .transpose()?;
        let (policy_arns, origin) = match self.policy_arns {
            Some(arns) => (arns, Origin::Builder),
            None => env
                .list(POLICY_ARNS)
                .unwrap_or((Vec::new(), Origin::Builder)),
        };
        if policy_arns.len() > MAX_POLICY_ARNS {
            return Err(BuildError::invalid(
                POLICY_ARNS,
                origin,
                format!(
                    "{} session policy ARNs given; STS accepts at most {MAX_POLICY_ARNS}",
                    policy_arns.len()
                ),
            ));
        }
        for arn in &policy_arns {
            check_policy_arn(arn)
                .map_err(|why| BuildError::invalid(POLICY_ARNS, origin.clone(), why))?;
        }
        let principal_tags = match self.principal_tags {
            Some(yes) => yes,
            None => env.flag(PRINCIPAL_TAGS)?.unwrap_or(false),
        };
        let shared = SharedConfig::load(env)?;
        let (region, found, region_configured) = match self.region {
            Some(region) => (region, None, true),
            None => match shared.region() {
                Some((region, found)) => (region, Some(found), true),
                None => (DEFAULT_REGION.to_owned(), None, false),
            },
        };
        let region = region.trim().to_owned();
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            let why = format!(
                "invalid AWS region {:?}; use a region name such as us-east-1",
                truncate(&region, 60)
            );
            return Err(shared_invalid(REGION, found, why));
        }
        let endpoint_url = match self.endpoint_url {
            Some(url) => Some((url, None)),
            None => shared
                .endpoint_url()
                .map_err(|e| flag_error(ENDPOINT_URL, e))?
                .map(|(url, found)| (url, Some(found))),
        };
        let endpoint_url = endpoint_url
            .map(|(url, found)| {
                check_endpoint_url(&url, allow_insecure)
                    .map_err(|why| shared_invalid(ENDPOINT_URL, found, why))
            })
            .transpose()?;
        // A flag the builder left unset: the variable or the profile's key, else off.
        let shared_flag = |set: Option<bool>, setting, read: SharedFlag| match set {
            Some(v) => Ok(v),
            None => Ok(read(&shared)
                .map_err(|e| flag_error(setting, e))?
                .is_some_and(|(v, _)| v)),
        };
        let use_fips = shared_flag(self.use_fips, USE_FIPS, SharedConfig::use_fips)?;
        let use_dual_stack = shared_flag(
            self.use_dual_stack,
            USE_DUAL_STACK,
            SharedConfig::use_dual_stack,
        )?;
        let resolved_endpoint =
            resolve_endpoint(&region, use_fips, use_dual_stack, endpoint_url.as_deref());
        let chain = match self.chained {
            Some(false) => None,
            _ => resolve_chain(
                role_arn.is_some(),
                pick(self.chain_role_arn, env, CHAIN_ROLE_ARN),
                pick(self.chain_external_id, env, CHAIN_EXTERNAL_ID),
                self.chain_session_name,
                self.chain_duration,
            )?,
        };
        Ok(Settings {
            role_arn: role_arn.map(|(arn, _)| arn),
            audience,
            session_name,
            duration,
            duration_origin,
            policy,
            policy_arns,
            principal_tags,
            region,
            region_configured,
            endpoint_url,
            use_fips,
            use_dual_stack,
            resolved_endpoint,
            chain,
        })
    }
}

/// The chained role (`None` without a chained role ARN). The external id, session name and
/// duration of a chain are invalid without one: they would be silently ignored.
fn resolve_chain(
    has_first: bool,
    role_arn: Option<(String, Origin)>,
    external_id: Option<(String, Origin)>,
    session_name: Option<String>,
    duration: Option<Duration>,
) -> Result<Option<ChainedRole>, BuildError> {
    let Some((role_arn, origin)) = role_arn else {
        let without =
            "it applies only to a chained role; set the chained role's ARN too, or unset it";
        return match (external_id, session_name, duration) {
            (Some((_, origin)), _, _) => {
                Err(BuildError::invalid(CHAIN_EXTERNAL_ID, origin, without))
            }
            (_, Some(_), _) => Err(BuildError::invalid(
                CHAIN_SESSION_NAME,
                Origin::Builder,
                without,
            )),
            (_, _, Some(_)) => Err(BuildError::invalid(
                CHAIN_DURATION,
                Origin::Builder,
                without,
            )),
            _ => Ok(None),
        };
    };
    if !has_first {
        return Err(BuildError::invalid(
            CHAIN_ROLE_ARN,
            origin,
            Message::from(
                "a chained role is assumed with the credentials of the first role, and none is set; set the first role too (",
            )
            .setting(ROLE_ARN)
            .text(")"),
        ));
    }
    check_role_arn(&role_arn).map_err(|why| BuildError::invalid(CHAIN_ROLE_ARN, origin, why))?;
    if let Some((id, origin)) = &external_id {
        check_external_id(id)
            .map_err(|why| BuildError::invalid(CHAIN_EXTERNAL_ID, origin.clone(), why))?;
    }
    let session_name = session_name
        .map(|name| check_session_name(&name))
        .transpose()
        .map_err(|why| BuildError::invalid(CHAIN_SESSION_NAME, Origin::Builder, why))?;
    let duration = duration.unwrap_or(MAX_CHAINED_DURATION);
    if duration < MIN_DURATION || duration > MAX_CHAINED_DURATION || duration.subsec_nanos() != 0 {
        return Err(BuildError::invalid(
            CHAIN_DURATION,
            Origin::Builder,
            format!(
                "the chained session duration {} s is out of range: AWS caps a session assumed with another role's credentials (role chaining) at {} s, and STS accepts no less than {} s",
                duration.as_secs_f64(),
                MAX_CHAINED_DURATION.as_secs(),
                MIN_DURATION.as_secs(),
            ),
        ));
    }
    Ok(Some(ChainedRole {
        role_arn,
        external_id: external_id.map(|(id, _)| id),
        session_name,
        duration,
    }))
}

/// Check an external id (`sts:ExternalId`) by STS's rule: 2 to 1224 characters of letters,
/// digits and `_+=,.@:/-`. The error says which rule it breaks.
pub fn check_external_id(id: &str) -> Result<(), String> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| is_session_char(c) || matches!(c, ':' | '/'));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "the external id {:?} is invalid: STS accepts 2 to 1224 characters of letters, digits and _+=,.@:/-",
            truncate(id, 100)
        )),
    }
}

/// An invalid value from the builder (`found` `None`) or the shared config.
fn shared_invalid(setting: Setting, found: Option<Found>, why: String) -> BuildError {
    match found {
        None => BuildError::invalid(setting, Origin::Builder, why),
        Some(found) => {
            let why = in_profile(&found, why);
            BuildError::invalid(setting, origin_of(found), why)
        }
    }
}

/// How a shared-config flag (FIPS, dual-stack) is read: its value, and where it was found.
type SharedFlag = fn(&SharedConfig) -> Result<Option<(bool, Found)>, FlagError>;

/// A boolean of the shared config that is neither true nor false.
fn flag_error(setting: Setting, err: FlagError) -> BuildError {
    shared_invalid(setting, Some(err.found), Env::not_a_flag(&err.text))
}

/// The policy text, or the content of the file `@PATH` names (at most 64 KiB).
fn load_policy(text: &str) -> Result<String, String> {
    let Some(path) = text.strip_prefix('@') else {
        return Ok(text.to_owned());
    };
    let bytes = match fly_oidc::fs::read_file_capped(Path::new(path), MAX_POLICY_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge { .. }) => {
            return Err(format!(
                "the session policy file {path} is larger than 64 KiB"
            ));
        }
        Err(e) => return Err(format!("cannot read the session policy file {path}: {e}")),
    };
    String::from_utf8(bytes).map_err(|_| format!("the session policy file {path} is not UTF-8"))
}

/// Check an IAM role ARN as the provider does: `arn:<partition>:iam::<12-digit
/// account>:role/<path/name>`. The error says what is wrong and what a role ARN looks like
/// (for a front end that takes a role ARN for another purpose, such as the principal of a
/// chained role's trust policy).
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    let bad = |why: &str| {
        format!(
            "invalid role ARN {:?}: {why}; expected arn:aws:iam::<12-digit account id>:role/<name>",
            truncate(arn, 200)
        )
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
    if parts[2] != "iam" || !parts[3].is_empty() {
        return Err(bad("the service is not iam (with no region)"));
    }
    if !is_account_id(parts[4]) {
        return Err(bad("the account id is not 12 digits"));
    }
    let Some(path_and_name) = parts[5].strip_prefix("role/") else {
        return Err(bad("it is not a role"));
    };
    // IAM's rules: a path of printable ASCII without spaces, then a name of 1 to 64
    // characters of letters, digits and _+=,.@-.
    let (path, name) = path_and_name
        .rsplit_once('/')
        .unwrap_or(("", path_and_name));
    if !is_role_name(name) {
        return Err(bad(
            "the role name must be 1 to 64 characters of letters, digits and _+=,.@-",
        ));
    }
    if path.len() > 510 || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "the role's path must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// A role's name: the last `/`-separated part of its ARN (after its path), as IAM's
/// `--role-name` takes it.
pub fn role_name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// An IAM role name (without its path): 1 to 64 characters of letters, digits and `_+=,.@-`.
pub fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(is_session_char)
}

/// An AWS account id: 12 digits.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// The account id of an ARN (`arn:aws:sts::123456789012:assumed-role/r/s` → `123456789012`).
pub fn arn_account_id(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
}

fn is_session_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

fn check_session_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.len() < 2 || name.len() > 64 || !name.chars().all(is_session_char) {
        return Err(format!(
            "the role session name {:?} is invalid: STS accepts 2 to 64 characters of letters, digits and _+=,.@-",
            truncate(name, 100)
        ));
    }
    Ok(name.to_owned())
}

/// Replace characters STS does not accept with `-` and cut to 64 characters.
pub(crate) fn sanitize_session_name(raw: &str) -> String {
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

/// The default session name: `fly-<app>-<machine>` (`fly-<app>` without a machine), made
/// acceptable to STS.
fn default_session_name(app: &str, machine: Option<&str>) -> String {
    match machine {
        Some(machine) => sanitize_session_name(&format!("fly-{app}-{machine}")),
        None => sanitize_session_name(&format!("fly-{app}")),
    }
}

/// The default session name derived from a token's claims: `fly-<app_name>-<machine_id>`.
pub(crate) fn session_name_from_claims(claims: &FlyClaims) -> Option<String> {
    let app = claims.app_name.as_deref()?;
    Some(default_session_name(app, claims.machine_id.as_deref()))
}

fn check_policy(policy: &str) -> Result<(), String> {
    if policy.chars().count() > MAX_POLICY_CHARS {
        return Err(format!(
            "the session policy has {} characters; STS accepts at most {MAX_POLICY_CHARS}",
            policy.chars().count()
        ));
    }
    match serde_json::from_str::<serde_json::Value>(policy) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(
            "the session policy is JSON but not an object; give an IAM policy document such as {\"Version\":\"2012-10-17\",\"Statement\":[...]}".into(),
        ),
        Err(e) => Err(format!(
            "the session policy is not valid JSON ({e}); give an IAM policy document"
        )),
    }
}

fn check_policy_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if arn.len() < 20
        || arn.len() > 2048
        || parts.len() != 6
        || parts[0] != "arn"
        || parts[2] != "iam"
        || !parts[5].starts_with("policy/")
    {
        return Err(format!(
            "invalid policy ARN {:?}: expected arn:aws:iam::<account id or aws>:policy/<name>",
            truncate(arn, 200)
        ));
    }
    Ok(())
}

fn check_endpoint_url(raw: &str, allow_insecure: bool) -> Result<String, String> {
    endpoint::check_endpoint_url(raw, allow_insecure, PlainHttp::Loopback).map_err(|why| {
        format!(
            "invalid STS endpoint URL {:?}: {why}; use a URL such as https://sts.us-east-1.amazonaws.com",
            endpoint::display_url(raw)
        )
    })
}

pub(crate) use fly_oidc::truncate;

#[cfg(test)]
mod tests {
    use super::*;

    /// The audience is sent without surrounding white space (a newline from a file), as the
    /// token client and Google send it; a control character inside is refused.
    #[test]
    fn the_audience_is_trimmed_and_checked() {
        let env = Env::from_slice(&[("FLY_OIDC_AUDIENCE", " from-env\n")]);
        assert_eq!(resolve_audience(None, &env).unwrap(), "from-env");
        assert_eq!(
            resolve_audience(Some("\tgiven ".into()), &env).unwrap(),
            "given"
        );
        assert!(resolve_audience(Some("a\nb".into()), &env).is_err());
    }

    /// Each AWS setting is named by its flag, `--aws-` prefixed where both clouds are
    /// configured at once (`exec`, `serve`, `doctor`).
    #[test]
    fn settings_are_named_by_their_plain_and_per_cloud_flags() {
        use fly_oidc::Naming::{Builder, Flags, PerCloudFlags};
        let cases = [
            (ROLE_ARN, "--role-arn", "--aws-role-arn"),
            (AUDIENCE, "--audience", "--aws-audience"),
            (ENDPOINT_URL, "--sts-endpoint", "--aws-sts-endpoint"),
            (DURATION, "--duration-seconds", "--aws-duration-seconds"),
            (POLICY_ARNS, "--policy-arn", "--aws-policy-arn"),
            (PRINCIPAL_TAGS, "--principal-tags", "--aws-principal-tags"),
        ];
        for (setting, plain, per_cloud) in cases {
            assert_eq!(setting.name(Flags), plain);
            assert_eq!(setting.name(PerCloudFlags), per_cloud);
        }
        assert_eq!(
            ROLE_ARN.render(Builder),
            "Builder::role_arn or AWS_ROLE_ARN"
        );
        assert_eq!(
            USE_FIPS.render(Flags),
            "AWS_USE_FIPS_ENDPOINT",
            "no flag: its variable"
        );
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/app";

    fn resolve(req: Requested, env: &[(&str, &str)]) -> Result<Settings, BuildError> {
        let env = Env::from_slice(env);
        req.resolve(&env, endpoint::allow_insecure_http(None, &env)?)
    }

    #[test]
    fn defaults_and_environment() {
        let s = resolve(Requested::default(), &[]).unwrap();
        assert_eq!(s.role_arn(), None);
        assert_eq!(s.audience(), "sts.amazonaws.com");
        assert_eq!(s.region(), "us-east-1");
        assert_eq!(s.configured_region(), None, "the default is not configured");
        assert_eq!(s.duration(), Duration::from_secs(3600));
        assert_eq!(s.session_name(), None);
        assert!(!s.principal_tags());
        assert_eq!(s.sts_endpoint(), "https://sts.us-east-1.amazonaws.com");
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
        assert_eq!(s.configured_region(), Some("eu-west-1"));
        assert_eq!(s.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert_eq!(s.audience(), "aud-x");
        assert_eq!(s.session_name(), Some("fly-my-app-m1"));
        assert!(s.use_fips);
        // AWS_REGION beats AWS_DEFAULT_REGION; AWS_ENDPOINT_URL_STS beats AWS_ENDPOINT_URL;
        // builder values beat both.
        let mine = Requested {
            region: Some("us-west-2".into()),
            endpoint_url: Some("https://mine.example".into()),
            ..Default::default()
        };
        let env = [
            ("AWS_REGION", "ap-south-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_STS", "https://sts.example"),
            ("AWS_ENDPOINT_URL", "https://all.example"),
        ];
        for (requested, region, endpoint) in [
            (Requested::default(), "ap-south-1", "https://sts.example"),
            (mine, "us-west-2", "https://mine.example"),
        ] {
            let s = resolve(requested, &env).unwrap();
            assert_eq!((s.region(), s.endpoint_url()), (region, Some(endpoint)));
        }
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
        assert_eq!(s.sts_endpoint(), "https://sts.us-east-1.api.aws");
        // The SDK's resolver, not a copy of its rules: FIPS, and the China partition.
        let s = resolve(
            Requested {
                region: Some("cn-north-1".into()),
                ..Default::default()
            },
            &[("AWS_USE_FIPS_ENDPOINT", "true")],
        )
        .unwrap();
        assert_eq!(
            s.sts_endpoint(),
            "https://sts-fips.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn invalid_settings_fail_at_build() {
        /// Sets one invalid value on otherwise default settings.
        type Set = fn(&mut Requested);
        let cases: [(Set, &str); 10] = [
            (
                |r| r.role_arn = Some("arn:aws:iam::12:role/x".into()),
                "12 digits",
            ),
            (
                |r| r.role_arn = Some("arn:aws:iam::123456789012:user/x".into()),
                "not a role",
            ),
            (
                |r| r.duration = Some(Duration::from_secs(899)),
                "out of range",
            ),
            (
                |r| r.duration = Some(Duration::from_secs(43201)),
                "out of range",
            ),
            (|r| r.policy = Some("{not json".into()), "not valid JSON"),
            (|r| r.policy = Some("[1]".into()), "not an object"),
            (
                |r| r.policy_arns = Some(vec!["nope".into()]),
                "invalid policy ARN",
            ),
            (
                |r| r.session_name = Some("has space".into()),
                "session name",
            ),
            (
                |r| r.endpoint_url = Some("http://sts.example.com".into()),
                "plain http",
            ),
            (|r| r.region = Some("us east".into()), "invalid AWS region"),
        ];
        for (set, want) in cases {
            let mut req = Requested::default();
            set(&mut req);
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
                policy_arns: Some(vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()]),
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
    fn account_id_of_an_arn() {
        assert_eq!(
            arn_account_id("arn:aws:sts::123456789012:assumed-role/r/s"),
            Some("123456789012")
        );
        assert_eq!(arn_account_id("arn:aws:sts::x:assumed-role/r/s"), None);
    }

    #[test]
    fn session_settings_from_the_environment() {
        let s = resolve(
            Requested::default(),
            &[
                ("AWS_ROLE_ARN", ROLE),
                ("AWS_ROLE_SESSION_NAME", "sess"),
                ("FLY_OIDC_AWS_DURATION_SECONDS", "1800"),
                ("FLY_OIDC_AWS_POLICY", r#"{"Version":"2012-10-17"}"#),
                (
                    "FLY_OIDC_AWS_POLICY_ARNS",
                    "arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess,",
                ),
            ],
        )
        .unwrap();
        assert_eq!(s.session_name(), Some("sess"));
        assert_eq!(s.duration(), Duration::from_secs(1800));
        assert_eq!(s.policy(), Some(r#"{"Version":"2012-10-17"}"#));
        assert_eq!(
            s.policy_arns(),
            [
                "arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned(),
                "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_owned()
            ]
        );
        // Any builder value beats every variable, an empty list of policy ARNs included.
        let s = resolve(
            Requested {
                duration: Some(Duration::from_secs(900)),
                policy_arns: Some(vec![]),
                policy: Some("{}".into()),
                ..Default::default()
            },
            &[
                ("FLY_OIDC_AWS_DURATION_SECONDS", "soon"),
                ("FLY_OIDC_AWS_POLICY", "{"),
                ("FLY_OIDC_AWS_POLICY_ARNS", "nope"),
            ],
        )
        .unwrap();
        assert_eq!(s.duration(), Duration::from_secs(900));
        assert_eq!(s.policy(), Some("{}"));
        assert!(s.policy_arns().is_empty());
        // Bad variables name themselves.
        for (name, value, want) in [
            (
                "FLY_OIDC_AWS_DURATION_SECONDS",
                "soon",
                "not a whole number",
            ),
            ("FLY_OIDC_AWS_DURATION_SECONDS", "60", "out of range"),
            ("FLY_OIDC_AWS_POLICY", "[1]", "not an object"),
            ("FLY_OIDC_AWS_POLICY", "@/nonexistent/p.json", "cannot read"),
            ("FLY_OIDC_AWS_POLICY_ARNS", "ReadOnly", "invalid policy ARN"),
            ("AWS_REGION", "us east", "invalid AWS region"),
            ("AWS_ENDPOINT_URL", "sts.example.com", "STS endpoint URL"),
        ] {
            let err = resolve(Requested::default(), &[(name, value)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(want) && err.contains(name), "{err}");
        }
    }

    #[test]
    fn principal_tags_from_the_builder_then_the_environment() {
        let on = [("FLY_OIDC_AWS_PRINCIPAL_TAGS", "1")];
        assert!(resolve(Requested::default(), &on).unwrap().principal_tags());
        let off = Requested {
            principal_tags: Some(false),
            ..Default::default()
        };
        assert!(
            !resolve(off, &on).unwrap().principal_tags(),
            "the builder wins"
        );
        let err = resolve(
            Requested::default(),
            &[("FLY_OIDC_AWS_PRINCIPAL_TAGS", "sometimes")],
        )
        .unwrap_err();
        assert_eq!(err.setting(), PRINCIPAL_TAGS);
        assert!(err.to_string().contains("not a yes/no value"), "{err}");
    }

    /// The chained role: from the builder, then its variables; its duration is capped at
    /// AWS's one hour for chained sessions; its other settings are refused without it.
    #[test]
    fn chained_role_settings_and_their_limits() {
        const CHAINED: &str = "arn:aws:iam::210987654321:role/data";
        let with_role = || Requested {
            role_arn: Some(ROLE.into()),
            ..Default::default()
        };
        assert_eq!(resolve(with_role(), &[]).unwrap().chain(), None);
        let env = [
            ("FLY_OIDC_AWS_CHAIN_ROLE_ARN", CHAINED),
            ("FLY_OIDC_AWS_CHAIN_EXTERNAL_ID", "ext-from-env"),
        ];
        let s = resolve(with_role(), &env).unwrap();
        let chain = s.chain().expect("chained from the variables");
        assert_eq!(chain.role_arn, CHAINED);
        assert_eq!(chain.external_id.as_deref(), Some("ext-from-env"));
        assert_eq!(chain.session_name, None, "the first hop's");
        assert_eq!(chain.duration, Duration::from_secs(3600));
        // The builder beats the variables; `chained: Some(false)` drops the chain.
        let mine = Requested {
            chain_role_arn: Some("arn:aws:iam::210987654321:role/other".into()),
            chain_external_id: Some("mine".into()),
            chain_session_name: Some("second".into()),
            chain_duration: Some(Duration::from_secs(900)),
            ..with_role()
        };
        let s = resolve(mine, &env).unwrap();
        let chain = s.chain().unwrap();
        assert_eq!(
            (
                chain.role_arn.as_str(),
                chain.external_id.as_deref(),
                chain.session_name.as_deref()
            ),
            (
                "arn:aws:iam::210987654321:role/other",
                Some("mine"),
                Some("second")
            )
        );
        assert_eq!(chain.duration, Duration::from_secs(900));
        let unchained = Requested {
            chained: Some(false),
            ..with_role()
        };
        assert_eq!(resolve(unchained, &env).unwrap().chain(), None);
        // Refusals, each naming its setting: (requested, environment, setting, reason).
        type Case<'a> = (Requested, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case; 7] = [
            (
                Requested::default(),
                &env,
                "chain_role_arn",
                "set the first role too",
            ),
            (
                Requested {
                    chain_duration: Some(Duration::from_secs(3601)),
                    ..with_role()
                },
                &env,
                "chain_duration",
                "AWS caps a session assumed with another role's credentials (role chaining) at 3600 s",
            ),
            (
                Requested {
                    chain_duration: Some(Duration::from_secs(899)),
                    ..with_role()
                },
                &env,
                "chain_duration",
                "no less than 900 s",
            ),
            (
                with_role(),
                &[("FLY_OIDC_AWS_CHAIN_ROLE_ARN", "arn:aws:iam::1:role/x")],
                "chain_role_arn",
                "12 digits",
            ),
            (
                with_role(),
                &[
                    ("FLY_OIDC_AWS_CHAIN_ROLE_ARN", CHAINED),
                    ("FLY_OIDC_AWS_CHAIN_EXTERNAL_ID", "has space"),
                ],
                "chain_external_id",
                "2 to 1224 characters",
            ),
            (
                with_role(),
                &[("FLY_OIDC_AWS_CHAIN_EXTERNAL_ID", "ext")],
                "chain_external_id",
                "applies only to a chained role",
            ),
            (
                Requested {
                    chain_duration: Some(Duration::from_secs(900)),
                    ..with_role()
                },
                &[],
                "chain_duration",
                "applies only to a chained role",
            ),
        ];
        for (requested, env, method, why) in cases {
            let err = resolve(requested, env).unwrap_err();
            assert_eq!(err.setting().builder_method(), method, "{err}");
            assert!(err.reason().contains(why), "{err}");
        }
    }

    #[test]
    fn role_arns_follow_iams_rules() {
        for good in [
            ROLE,
            "arn:aws:iam::123456789012:role/path/to/app+1=x,y.z@w_v-u",
            "arn:aws-cn:iam::123456789012:role/app",
        ] {
            assert_eq!(check_role_arn(good), Ok(()), "{good}");
        }
        let long_name = format!("arn:aws:iam::123456789012:role/{}", "n".repeat(65));
        for (bad, why) in [
            (
                "arn:aws:iam::123456789012:role/my app",
                "1 to 64 characters",
            ),
            (
                "arn:aws:iam::123456789012:role/app;id",
                "1 to 64 characters",
            ),
            ("arn:aws:iam::123456789012:role/$(id)", "1 to 64 characters"),
            (
                "arn:aws:iam::123456789012:role/a\u{7}b",
                "1 to 64 characters",
            ),
            (long_name.as_str(), "1 to 64 characters"),
            (
                "arn:aws:iam::123456789012:role/pa th/app",
                "printable ASCII",
            ),
            (
                "arn:aws:iam:us-east-1:123456789012:role/app",
                "with no region",
            ),
            (
                "arn:aws:iam::123456789012:role/app\u{FFFD}",
                "1 to 64 characters",
            ),
        ] {
            let err = check_role_arn(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn policy_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let text = r#"{"Version":"2012-10-17","Statement":[]}"#;
        std::fs::write(&path, text).unwrap();
        let at = format!("@{}", path.display());
        for (req, env) in [
            (
                Requested {
                    policy: Some(at.clone()),
                    ..Default::default()
                },
                vec![],
            ),
            (
                Requested::default(),
                vec![("FLY_OIDC_AWS_POLICY", at.as_str())],
            ),
        ] {
            assert_eq!(resolve(req, &env).unwrap().policy(), Some(text));
        }
        std::fs::write(&path, vec![b' '; 70 * 1024]).unwrap();
        let err = resolve(
            Requested {
                policy: Some(at),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
    }

    #[test]
    fn profile_settings_and_their_origin_in_messages() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(
            &file,
            "[profile dev]\nregion = eu-north-1\nendpoint_url = http://127.0.0.1:4566\n[profile bad]\nendpoint_url = http://sts.example.com\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let s = resolve(
            Requested::default(),
            &[("AWS_CONFIG_FILE", file), ("AWS_PROFILE", "dev")],
        )
        .unwrap();
        assert_eq!(s.region(), "eu-north-1");
        assert_eq!(s.endpoint_url(), Some("http://127.0.0.1:4566"));
        assert_eq!(s.sts_endpoint(), "http://127.0.0.1:4566");
        let err = resolve(
            Requested::default(),
            &[("AWS_CONFIG_FILE", file), ("AWS_PROFILE", "bad")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("plain http") && err.contains("`endpoint_url` of profile `bad`"),
            "{err}"
        );
        // The builder beats the profile.
        let s = resolve(
            Requested {
                endpoint_url: Some("https://sts.example.com".into()),
                ..Default::default()
            },
            &[("AWS_CONFIG_FILE", file), ("AWS_PROFILE", "bad")],
        )
        .unwrap();
        assert_eq!(s.endpoint_url(), Some("https://sts.example.com"));
    }
}
