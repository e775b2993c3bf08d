//! The provider's whole configuration, resolved and checked without building a client.

use crate::resource::WorkloadIdentityProvider;
use crate::{DEFAULT_IAM_URL, DEFAULT_SCOPE, DEFAULT_STS_URL};
use fly_oidc::endpoint::{self, PlainHttp};
use fly_oidc::{BuildError, Env, Origin, Setting, truncate};
use std::time::Duration;

/// The workload identity pool provider (`projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>`).
pub(crate) const ENV_PROVIDER: &str = "FLY_OIDC_GCP_PROVIDER";
/// The service account to impersonate (optional).
pub(crate) const ENV_SERVICE_ACCOUNT: &str = "FLY_OIDC_GCP_SERVICE_ACCOUNT";
/// The OAuth scopes, comma-separated (default: `cloud-platform`).
pub(crate) const ENV_SCOPES: &str = "FLY_OIDC_GCP_SCOPES";
/// Google's STS token endpoint (default `https://sts.googleapis.com/v1/token`).
pub(crate) const ENV_STS_URL: &str = "FLY_OIDC_GCP_STS_URL";
/// The IAM Credentials base URL (default `https://iamcredentials.googleapis.com`).
pub(crate) const ENV_IAM_URL: &str = "FLY_OIDC_GCP_IAM_URL";

/// A Google provider setting: builder method, variable, flag (`--gcp-` where both clouds are
/// configured at once).
const fn gcp(method: &'static str, var: Option<&'static str>, flag: &'static str) -> Setting {
    Setting::new(method, var)
        .flag(flag)
        .cloud(fly_oidc::Cloud::Gcp)
}
/// The workload identity pool provider setting ([`Builder::provider`](crate::Builder::provider),
/// `FLY_OIDC_GCP_PROVIDER`, `--provider`; `--gcp-provider` where both clouds are configured).
pub const PROVIDER: Setting = gcp("provider", Some(ENV_PROVIDER), "provider");
pub(crate) const SERVICE_ACCOUNT: Setting = gcp(
    "service_account",
    Some(ENV_SERVICE_ACCOUNT),
    "service-account",
);
pub(crate) const SCOPES: Setting = gcp("scopes", Some(ENV_SCOPES), "scope");
pub(crate) const STS_URL: Setting = gcp("sts_url", Some(ENV_STS_URL), "sts-url");
pub(crate) const IAM_URL: Setting = gcp("iam_url", Some(ENV_IAM_URL), "iam-url");
pub(crate) const LIFETIME: Setting = gcp("lifetime", None, "lifetime-seconds");
pub(crate) const AUDIENCE: Setting = gcp("audience", None, "audience");

/// The values given to a [`Builder`](crate::Builder), before the environment and defaults.
#[derive(Clone, Debug, Default)]
pub(crate) struct Given {
    pub provider: Option<String>,
    pub audience: Option<String>,
    pub service_account: Option<String>,
    /// No service account, given or from the environment
    /// ([`Builder::no_impersonation`](crate::Builder::no_impersonation)).
    pub no_impersonation: bool,
    pub scopes: Vec<String>,
    pub sts_url: Option<String>,
    pub iam_url: Option<String>,
    pub lifetime: Option<Duration>,
}

/// The GCP provider's settings, resolved and checked: builder values first, then the
/// environment (`FLY_OIDC_GCP_PROVIDER`, `FLY_OIDC_GCP_SERVICE_ACCOUNT`,
/// `FLY_OIDC_GCP_SCOPES`, `FLY_OIDC_GCP_STS_URL`, `FLY_OIDC_GCP_IAM_URL`,
/// `FLY_OIDC_ALLOW_INSECURE_HTTP`), then the defaults. Any builder value beats every variable.
///
/// Made by [`Builder::settings`](crate::Builder::settings), which builds no HTTP client and
/// no Fly token client, so a front end can check its flags without either.
///
/// ```
/// use fly_oidc::Env;
/// let env = Env::from_slice(&[
///     ("FLY_OIDC_GCP_PROVIDER", "projects/123/locations/global/workloadIdentityPools/fly/providers/acme"),
///     ("FLY_OIDC_GCP_SCOPES", "https://www.googleapis.com/auth/devstorage.read_only, openid"),
/// ]);
/// let settings = fly_oidc_gcp::GcpTokenProvider::builder().configure(&fly_oidc::ProviderConfig::default().with_env(env)).settings()?;
/// assert_eq!(settings.provider().pool(), "fly");
/// assert_eq!(settings.scopes().len(), 2);
/// assert_eq!(settings.sts_url(), "https://sts.googleapis.com/v1/token");
/// # Ok::<(), fly_oidc::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    provider: WorkloadIdentityProvider,
    audience: String,
    service_account: Option<String>,
    scopes: Vec<String>,
    sts_url: String,
    iam_url: String,
    lifetime: Option<Duration>,
}

impl Settings {
    /// The same settings with other scopes.
    pub(crate) fn with_scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }

    /// The settings, with `allow_insecure` (the config's `allow_insecure_http`, resolved).
    pub(crate) fn resolve(
        given: &Given,
        env: &Env,
        allow_insecure: bool,
    ) -> Result<Self, BuildError> {
        let (raw_provider, origin) = pick(given.provider.clone(), PROVIDER, env)?.ok_or_else(|| {
            BuildError::missing(
                PROVIDER,
                "no workload identity pool provider configured; it looks like \
                 projects/<project-number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>",
            )
        })?;
        let provider = WorkloadIdentityProvider::parse_from(&raw_provider, origin)?;
        let service_account = if given.no_impersonation {
            None
        } else {
            pick(given.service_account.clone(), SERVICE_ACCOUNT, env)?
                .map(|(sa, origin)| check_service_account(sa.trim(), origin))
                .transpose()?
        };
        let url = |setting: Setting, what: &str, given: &Option<String>, default: &str| {
            let (raw, origin) =
                pick(given.clone(), setting, env)?.unwrap_or((default.to_owned(), Origin::Builder));
            endpoint::check_endpoint_url(&raw, allow_insecure, PlainHttp::Loopback).map_err(|why| {
                BuildError::invalid(
                    setting,
                    origin,
                    format!(
                        "invalid Google {what} URL {:?}: {why}; use a URL such as {default}",
                        endpoint::display_url(&raw)
                    ),
                )
            })
        };
        let sts_url = url(STS_URL, "STS", &given.sts_url, DEFAULT_STS_URL)?;
        let iam_url = url(IAM_URL, "IAM Credentials", &given.iam_url, DEFAULT_IAM_URL)?;
        if let Some(lifetime) = given.lifetime
            && (lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(43_200))
        {
            return Err(BuildError::invalid(
                LIFETIME,
                Origin::Builder,
                format!(
                    "the token lifetime must be between 60 s and 12 h, not {} s",
                    lifetime.as_secs()
                ),
            ));
        }
        let scopes = resolve_scopes(&given.scopes, env)?;
        let audience = match &given.audience {
            Some(a) => {
                fly_oidc::check_audience(AUDIENCE, a, &Origin::Builder)?;
                a.trim().to_owned()
            }
            None => provider.token_audience(),
        };
        Ok(Self {
            provider,
            audience,
            service_account,
            scopes,
            sts_url,
            iam_url,
            lifetime: given.lifetime,
        })
    }

    /// The workload identity pool provider.
    pub fn provider(&self) -> &WorkloadIdentityProvider {
        &self.provider
    }

    /// The audience of the Fly token (default `https://iam.googleapis.com/<provider>`).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The service account to impersonate, if any.
    pub fn service_account(&self) -> Option<&str> {
        self.service_account.as_deref()
    }

    /// The OAuth scopes of the access tokens (default `cloud-platform`).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Google's STS token endpoint, without a trailing slash.
    pub fn sts_url(&self) -> &str {
        &self.sts_url
    }

    /// The IAM Credentials base URL, without a trailing slash.
    pub fn iam_url(&self) -> &str {
        &self.iam_url
    }

    /// The URL of the IAM Credentials `method` (`generateAccessToken`, `generateIdToken`) of
    /// `service_account`.
    pub(crate) fn iam_method_url(&self, service_account: &str, method: &str) -> String {
        let iam_url = &self.iam_url;
        format!("{iam_url}/v1/projects/-/serviceAccounts/{service_account}:{method}")
    }

    /// The lifetime requested for impersonated tokens, when one was set (Google's default:
    /// 1 hour).
    pub fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }
}

/// The builder's value, else the setting's variable. A value given to the builder that is
/// empty is an error, not "unset": `--service-account ""` must not quietly fall back to
/// `FLY_OIDC_GCP_SERVICE_ACCOUNT` (an empty variable does count as unset, as in every SDK).
fn pick(
    given: Option<String>,
    setting: Setting,
    env: &Env,
) -> Result<Option<(String, Origin)>, BuildError> {
    match given {
        Some(v) if v.trim().is_empty() => Err(BuildError::invalid(
            setting,
            Origin::Builder,
            "it is empty; give a value or leave the setting out",
        )),
        Some(v) => Ok(Some((v, Origin::Builder))),
        None => Ok(env.setting(setting)),
    }
}

fn resolve_scopes(given: &[String], env: &Env) -> Result<Vec<String>, BuildError> {
    let (scopes, origin): (Vec<String>, Origin) = if !given.is_empty() {
        (
            given.iter().map(|s| s.trim().to_owned()).collect(),
            Origin::Builder,
        )
    } else if let Some(list) = env.list(SCOPES) {
        list
    } else {
        return Ok(vec![DEFAULT_SCOPE.to_owned()]);
    };
    // RFC 6749 section 3.3: a scope token is printable ASCII other than space, `"` and `\`.
    let token = |s: &String| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    };
    if scopes.is_empty() || !scopes.iter().all(token) {
        return Err(BuildError::invalid(
            SCOPES,
            origin,
            "scopes must be non-empty, printable ASCII and contain no spaces (give each scope separately)",
        ));
    }
    Ok(scopes)
}

/// Whether `email` is a service account email as the service account setting takes it: at
/// most 254 ASCII letters, digits, `.`, `-` and `_`, with one `@` after a non-empty name and
/// before a domain holding a `.` (`name@project.iam.gserviceaccount.com`).
pub fn is_service_account(email: &str) -> bool {
    email.len() <= 254
        && email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && email
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'-' | b'_'))
}

fn check_service_account(email: &str, origin: Origin) -> Result<String, BuildError> {
    if is_service_account(email) {
        Ok(email.to_owned())
    } else {
        Err(BuildError::invalid(
            SERVICE_ACCOUNT,
            origin,
            format!(
                "invalid service account {:?}: expected an email such as name@project.iam.gserviceaccount.com",
                truncate(email, 200)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each Google setting is named by its flag, `--gcp-` prefixed where both clouds are
    /// configured at once: Google's audience is `--gcp-audience`, never AWS's flag.
    #[test]
    fn settings_are_named_by_their_plain_and_per_cloud_flags() {
        use fly_oidc::Naming::{Flags, PerCloudFlags};
        let cases = [
            (PROVIDER, "--provider", "--gcp-provider"),
            (SCOPES, "--scope", "--gcp-scope"),
            (AUDIENCE, "--audience", "--gcp-audience"),
            (STS_URL, "--sts-url", "--gcp-sts-url"),
        ];
        for (setting, plain, per_cloud) in cases {
            assert_eq!(setting.name(Flags), plain);
            assert_eq!(setting.name(PerCloudFlags), per_cloud);
        }
        // The token source is neither cloud's: no prefix.
        assert_eq!(fly_oidc::TOKEN_FILE.name(PerCloudFlags), "--token-file");
    }

    fn resolve(given: &Given, env: &Env) -> Result<Settings, BuildError> {
        Settings::resolve(given, env, endpoint::allow_insecure_http(None, env)?)
    }

    const NAME: &str = "projects/42/locations/global/workloadIdentityPools/fly/providers/acme";

    #[test]
    fn builder_values_beat_every_variable() {
        let env = Env::from_slice(&[
            (ENV_PROVIDER, "not a provider"),
            (ENV_SERVICE_ACCOUNT, "bad"),
            (ENV_SCOPES, "a b"),
            (ENV_STS_URL, "http://sts.example.com"),
            (ENV_IAM_URL, "https://iam.example.com/"),
        ]);
        let given = Given {
            provider: Some(NAME.into()),
            service_account: Some("app@p.iam.gserviceaccount.com".into()),
            scopes: vec!["s1".into()],
            sts_url: Some("https://sts.example.com/v1/token".into()),
            ..Given::default()
        };
        let s = resolve(&given, &env).unwrap();
        assert_eq!(s.provider().name(), NAME);
        assert_eq!(s.service_account(), Some("app@p.iam.gserviceaccount.com"));
        assert_eq!(s.scopes(), ["s1"]);
        assert_eq!(s.sts_url(), "https://sts.example.com/v1/token");
        // Not given: the variable.
        assert_eq!(s.iam_url(), "https://iam.example.com");
    }

    /// Without impersonation no service account is read, given or from the variable, so an
    /// invalid one does not stop the exchange alone (doctor's first Google step).
    #[test]
    fn no_impersonation_reads_no_service_account() {
        let env = |sa| Env::from_slice(&[(ENV_PROVIDER, NAME), (ENV_SERVICE_ACCOUNT, sa)]);
        let given = Given {
            service_account: Some("app@p.iam.gserviceaccount.com".into()),
            no_impersonation: true,
            ..Given::default()
        };
        for sa in ["other@p.iam.gserviceaccount.com", "not an email"] {
            let s = resolve(&given, &env(sa)).unwrap();
            assert_eq!(s.service_account(), None);
            let plain = resolve(&Given::default(), &env(sa));
            assert_eq!(plain.is_ok(), sa.contains('@'), "{sa}");
        }
    }

    #[test]
    fn variables_are_read_and_named_when_wrong() {
        let env = Env::from_slice(&[(ENV_PROVIDER, NAME), (ENV_SCOPES, "x, y ,")]);
        let s = resolve(&Given::default(), &env).unwrap();
        assert_eq!(s.scopes(), ["x", "y"]);
        assert_eq!(s.sts_url(), DEFAULT_STS_URL);
        assert_eq!(
            s.audience(),
            format!("https://iam.googleapis.com/{NAME}").as_str()
        );
        for (var, value, says) in [
            (
                ENV_STS_URL,
                "http://sts.example.com",
                "FLY_OIDC_ALLOW_INSECURE_HTTP",
            ),
            (ENV_IAM_URL, "ftp://x", "unsupported scheme"),
            (ENV_SERVICE_ACCOUNT, "nope", "invalid service account"),
            (ENV_SCOPES, "a b", "no spaces"),
            (ENV_SCOPES, "\u{fffd}", "printable ASCII"),
            ("FLY_OIDC_ALLOW_INSECURE_HTTP", "perhaps", "yes/no"),
        ] {
            let env = Env::from_slice(&[(ENV_PROVIDER, NAME), (var, value)]);
            let err = resolve(&Given::default(), &env).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(says), "{var}: {msg}");
            assert!(msg.ends_with(&format!("(from {var})")), "{var}: {msg}");
            assert_eq!(err.origin(), Some(&Origin::Env(var.to_owned())));
        }
        let err = resolve(&Given::default(), &Env::from_slice(&[])).unwrap_err();
        assert_eq!(err.setting(), PROVIDER);
        assert!(
            err.to_string()
                .ends_with("; set Builder::provider or FLY_OIDC_GCP_PROVIDER"),
            "{err}"
        );
        let err = resolve(
            &Given {
                provider: Some(NAME.into()),
                lifetime: Some(Duration::from_secs(5)),
                ..Given::default()
            },
            &Env::from_slice(&[]),
        )
        .unwrap_err();
        assert_eq!(err.setting(), LIFETIME);
        assert!(
            err.to_string().contains("(from Builder::lifetime)"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_builder_value_is_an_error_not_a_fallback_to_the_variable() {
        let env = Env::from_slice(&[
            (
                "FLY_OIDC_GCP_PROVIDER",
                "projects/123/locations/global/workloadIdentityPools/p/providers/x",
            ),
            (
                "FLY_OIDC_GCP_SERVICE_ACCOUNT",
                "app@p.iam.gserviceaccount.com",
            ),
        ]);
        for given in [
            Given {
                service_account: Some(String::new()),
                ..Given::default()
            },
            Given {
                provider: Some("  ".into()),
                ..Given::default()
            },
            Given {
                sts_url: Some(String::new()),
                ..Given::default()
            },
        ] {
            let err = resolve(&given, &env).unwrap_err();
            assert!(err.to_string().contains("it is empty"), "{err}");
        }
        // The audience's blank check is the shared one (fly_oidc::check_audience).
        let given = Given {
            audience: Some(String::new()),
            ..Given::default()
        };
        let err = resolve(&given, &env).unwrap_err();
        assert_eq!(err.setting(), AUDIENCE);
        assert!(
            err.to_string().contains(
                "the audience must not be empty: give one, or leave it out for the default"
            ),
            "{err}"
        );
        // An empty variable still counts as unset.
        let env = Env::from_slice(&[
            (
                "FLY_OIDC_GCP_PROVIDER",
                "projects/123/locations/global/workloadIdentityPools/p/providers/x",
            ),
            ("FLY_OIDC_GCP_SERVICE_ACCOUNT", ""),
        ]);
        let s = resolve(&Given::default(), &env).unwrap();
        assert_eq!(s.service_account(), None);
    }
}
