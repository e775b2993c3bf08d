//! An injectable view of the process environment.

use crate::error::{BuildError, Origin, Setting};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Where configuration read from environment variables comes from.
///
/// Production code uses [`Env::real`]; tests inject a fixed map with [`Env::from_slice`]
/// so they never read or modify the real process environment.
///
/// Empty values are treated as unset, as most shells and SDKs do. A value that is not valid
/// UTF-8 is not unset: it is read with each invalid byte sequence replaced by `U+FFFD` (`�`),
/// so the setting's validation fails naming the variable (a yes/no flag says it is "not
/// valid UTF-8"). `Debug` shows the variable names only, never their values (`FLY_API_TOKEN`
/// is a secret).
///
/// ```
/// use fly_oidc::Env;
/// let env = Env::from_slice(&[("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app"), ("EMPTY", "")]);
/// assert_eq!(env.get("AWS_ROLE_ARN").as_deref(), Some("arn:aws:iam::123456789012:role/app"));
/// assert_eq!(env.get("EMPTY"), None);
/// assert_eq!(env.get("MISSING"), None);
/// let secret = Env::from_slice(&[("FLY_API_TOKEN", "FlyV1 s3cr3t")]);
/// assert!(!format!("{secret:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, Default)]
pub struct Env {
    fake: Option<Arc<HashMap<String, String>>>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fake {
            None => f.write_str("Env::real"),
            Some(map) => {
                let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
                names.sort_unstable();
                f.debug_struct("Env")
                    .field("names", &names)
                    .finish_non_exhaustive()
            }
        }
    }
}

impl Env {
    /// The real process environment.
    pub fn real() -> Self {
        Self { fake: None }
    }

    /// A fixed environment made of `(name, value)` pairs.
    pub fn from_slice(vars: &[(&str, &str)]) -> Self {
        Self::from_map(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// A fixed environment made of `(name, value)` pairs whose values need not be UTF-8,
    /// read as [`Env::real`] reads the process environment (invalid UTF-8 replaced by `U+FFFD`).
    ///
    /// ```
    /// use std::os::unix::ffi::OsStrExt;
    /// let value = std::ffi::OsStr::from_bytes(b"/tmp/\xff");
    /// let env = fly_oidc::Env::from_os_pairs(&[("FLY_OIDC_TOKEN_FILE", value)]);
    /// assert_eq!(env.get("FLY_OIDC_TOKEN_FILE").as_deref(), Some("/tmp/\u{fffd}"));
    /// ```
    pub fn from_os_pairs(vars: &[(&str, &std::ffi::OsStr)]) -> Self {
        Self::from_map(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), os_value(v)))
                .collect(),
        )
    }

    /// A fixed environment made of owned pairs.
    pub(crate) fn from_map(vars: HashMap<String, String>) -> Self {
        Self {
            fake: Some(Arc::new(vars)),
        }
    }

    /// The value of `name`, or `None` when unset or empty (only spaces). A value that is not
    /// valid UTF-8 comes back with `U+FFFD` for each invalid sequence, never as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.fake {
            Some(map) => map.get(name).cloned(),
            #[allow(clippy::disallowed_methods)] // the one place the real environment is read
            None => std::env::var_os(name).map(|v| os_value(&v)),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// The value of `setting`'s environment variable with where it came from, or `None`
    /// when the setting has no variable or it is unset.
    pub fn setting(&self, setting: Setting) -> Option<(String, Origin)> {
        let var = setting.env_var()?;
        self.get(var)
            .map(|value| (value, Origin::Env(var.to_owned())))
    }

    /// `setting`'s environment variable read as a comma-separated list (items trimmed, empty
    /// items dropped) with where it came from; `None` when unset. The one reader of list
    /// variables (`FLY_OIDC_AWS_POLICY_ARNS`, `FLY_OIDC_GCP_SCOPES`).
    ///
    /// ```
    /// use fly_oidc::{Env, Setting};
    /// const SCOPES: Setting = Setting::new("scopes", Some("FLY_OIDC_GCP_SCOPES"));
    /// let env = Env::from_slice(&[("FLY_OIDC_GCP_SCOPES", " a, ,b ")]);
    /// assert_eq!(env.list(SCOPES).unwrap().0, ["a", "b"]);
    /// assert!(Env::from_slice(&[]).list(SCOPES).is_none());
    /// ```
    pub fn list(&self, setting: Setting) -> Option<(Vec<String>, Origin)> {
        self.setting(setting).map(|(value, origin)| {
            let items = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            (items, origin)
        })
    }

    /// `setting`'s environment variable read as a yes/no flag: `1`, `true`, `yes`, `on` and
    /// `0`, `false`, `no`, `off` (any case, surrounding spaces ignored); `None` when unset.
    /// Anything else is a [`BuildError`] naming the variable. The one parser of boolean
    /// variables in every fly-oidc crate.
    ///
    /// ```
    /// use fly_oidc::{Env, Setting};
    /// const NO_CACHE: Setting = Setting::new("no_cache", Some("FLY_OIDC_NO_CACHE"));
    /// let env = |v| Env::from_slice(&[("FLY_OIDC_NO_CACHE", v)]);
    /// assert_eq!(env(" Yes ").flag(NO_CACHE).unwrap(), Some(true));
    /// assert_eq!(env("OFF").flag(NO_CACHE).unwrap(), Some(false));
    /// assert_eq!(Env::from_slice(&[]).flag(NO_CACHE).unwrap(), None);
    /// let err = env("maybe").flag(NO_CACHE).unwrap_err();
    /// assert!(err.to_string().contains("(from FLY_OIDC_NO_CACHE)"), "{err}");
    /// ```
    pub fn flag(&self, setting: Setting) -> Result<Option<bool>, BuildError> {
        let Some((value, origin)) = self.setting(setting) else {
            return Ok(None);
        };
        match Self::parse_flag(&value) {
            Some(flag) => Ok(Some(flag)),
            None => Err(BuildError::invalid(
                setting,
                origin,
                Self::not_a_flag(&value),
            )),
        }
    }

    /// Why `value` is not a yes/no value of [`parse_flag`](Self::parse_flag), with the words
    /// that are: the reason of a [`BuildError`] for a variable, or a key of a config file.
    ///
    /// ```
    /// let why = fly_oidc::Env::not_a_flag("maybe");
    /// assert_eq!(why, "\"maybe\" is not a yes/no value; use 1, true, yes or on (or 0, false, no, off)");
    /// ```
    pub fn not_a_flag(value: &str) -> String {
        let what = match value.contains(char::REPLACEMENT_CHARACTER) {
            true => "the value is not valid UTF-8".to_owned(),
            false => format!(
                "{:?} is not a yes/no value",
                crate::truncate(value.trim(), 40)
            ),
        };
        format!("{what}; use 1, true, yes or on (or 0, false, no, off)")
    }

    /// The words of [`flag`](Self::flag), for a yes/no value read from elsewhere (a profile
    /// of the AWS config file): `Some(true)` for `1`, `true`, `yes`, `on`, `Some(false)` for
    /// `0`, `false`, `no`, `off` (any case, surrounding spaces ignored), else `None`.
    ///
    /// ```
    /// assert_eq!(fly_oidc::Env::parse_flag(" ON "), Some(true));
    /// assert_eq!(fly_oidc::Env::parse_flag("maybe"), None);
    /// ```
    pub fn parse_flag(text: &str) -> Option<bool> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" => Some(false),
            _ => None,
        }
    }
}

/// A variable's value as text: invalid UTF-8 replaced by `U+FFFD`, so it is never unset.
fn os_value(value: &std::ffi::OsStr) -> String {
    value.to_string_lossy().into_owned()
}
