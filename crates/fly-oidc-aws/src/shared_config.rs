//! The AWS shared configuration (`AWS_*` variables and the profile in `~/.aws/config`), read
//! by the AWS SDK's own code (`aws_runtime::env_config`, the parser and value lookup that
//! `aws-config` uses) from the injected [`fly_oidc::Env`].
//!
//! Only the config file is read, never the credentials file, and nothing else of the SDK's
//! default chain runs: no EC2 instance metadata (a Fly Machine has none).

use aws_runtime::env_config::EnvConfigValue;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_runtime::env_config::section::EnvConfigSections;
use aws_types::origin::Origin;
use aws_types::os_shim_internal;
use fly_oidc::{BuildError, Env, Origin as SettingOrigin, Setting};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The two region variables, `AWS_REGION` then `AWS_DEFAULT_REGION` (read when `AWS_REGION` is
/// unset). The AWS SDKs read `AWS_REGION`, the AWS CLI v1 and botocore `AWS_DEFAULT_REGION`
/// only: a process given a region gets both.
pub const REGION_VARIABLES: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];
/// `AWS_REGION`: the region of the STS endpoint.
pub(crate) const ENV_REGION: &str = REGION_VARIABLES[0];
/// `AWS_DEFAULT_REGION`: the region when `AWS_REGION` is unset.
const ENV_DEFAULT_REGION: &str = REGION_VARIABLES[1];
/// `AWS_PROFILE`: the profile of the shared config file to read (default `default`).
const ENV_PROFILE: &str = "AWS_PROFILE";
/// `AWS_CONFIG_FILE`: the shared config file (default `~/.aws/config`).
const ENV_CONFIG_FILE: &str = "AWS_CONFIG_FILE";
/// `AWS_ENDPOINT_URL_STS`: the STS endpoint URL.
pub(crate) const ENV_ENDPOINT_URL_STS: &str = "AWS_ENDPOINT_URL_STS";
/// `AWS_ENDPOINT_URL`: the endpoint URL of every AWS service (when no service-specific one is set).
const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`: `true` ignores the endpoint URLs of the variables and
/// the profile (not one given to the builder).
const ENV_IGNORE_CONFIGURED_ENDPOINT_URLS: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";
/// `AWS_USE_FIPS_ENDPOINT`: `true` selects the FIPS STS endpoint.
pub(crate) const ENV_USE_FIPS_ENDPOINT: &str = "AWS_USE_FIPS_ENDPOINT";
/// `AWS_USE_DUALSTACK_ENDPOINT`: `true` selects the dual-stack (IPv4 + IPv6) STS endpoint.
pub(crate) const ENV_USE_DUALSTACK_ENDPOINT: &str = "AWS_USE_DUALSTACK_ENDPOINT";

/// The SDK's service id of STS: `AWS_ENDPOINT_URL_STS`, and `sts =` in a `services` section.
const SERVICE_ID: &str = "sts";

/// The shared config file, named by the variable only (it has no builder method).
const CONFIG_FILE: Setting = Setting::new("config_file", Some(ENV_CONFIG_FILE));

/// The largest config file read (1 MiB): a config file is a few kilobytes.
const MAX_CONFIG_FILE_BYTES: usize = 1 << 20;

/// Every variable the SDK's shared-config code reads here. Only these are handed to it.
const SDK_VARIABLES: &[&str] = &[
    "HOME",
    ENV_CONFIG_FILE,
    ENV_PROFILE,
    ENV_REGION,
    ENV_DEFAULT_REGION,
    ENV_ENDPOINT_URL,
    ENV_ENDPOINT_URL_STS,
    ENV_IGNORE_CONFIGURED_ENDPOINT_URLS,
    ENV_USE_FIPS_ENDPOINT,
    ENV_USE_DUALSTACK_ENDPOINT,
];

/// Where a value of the shared configuration was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// An environment variable.
    Variable(&'static str),
    /// The active profile of the shared config file, possibly in its `services` section.
    Profile {
        profile: String,
        key: &'static str,
        services: Option<String>,
    },
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Variable(name) => f.write_str(name),
            Found::Profile {
                profile,
                key,
                services: None,
            } => write!(f, "`{key}` of profile `{profile}`"),
            Found::Profile {
                profile,
                key,
                services: Some(section),
            } => write!(
                f,
                "`{SERVICE_ID} = {key}` of services section `{section}` (profile `{profile}`)"
            ),
        }
    }
}

/// The `AWS_*` variables and the active profile.
pub(crate) struct SharedConfig {
    env: os_shim_internal::Env,
    profiles: Option<EnvConfigSections>,
}

impl fmt::Debug for SharedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedConfig")
            .field(
                "profile",
                &self.profiles.as_ref().map(|p| p.selected_profile()),
            )
            .finish_non_exhaustive()
    }
}

impl SharedConfig {
    /// Read the variables from `env` and the active profile of the config file
    /// (`AWS_CONFIG_FILE`, else `$HOME/.aws/config`). A missing file means no profile, an
    /// unparsable one is logged and read as empty, as the SDK does.
    ///
    /// The file is read here, once, and handed to the SDK's parser from memory, so the SDK
    /// never reads the file system nor logs what it read. A file that is a directory, is
    /// larger than 1 MiB or is not UTF-8 is a [`BuildError`] naming `AWS_CONFIG_FILE`
    /// (its contents, which may hold secret keys, are never quoted).
    pub(crate) fn load(env: &Env) -> Result<Self, BuildError> {
        let mut vars = SDK_VARIABLES
            .iter()
            .filter_map(|name| env.get(name).map(|value| ((*name).to_owned(), value)))
            .collect::<std::collections::HashMap<_, _>>();
        let mut profiles = None;
        // Without HOME the SDK would look for `~/.aws/config` relative to the working
        // directory: read no file at all instead. A missing AWS_CONFIG_FILE means no profile,
        // as to the AWS CLI.
        if let Some((path, origin)) = config_path(&vars)
            && let Some(bytes) = read_config_file(&path, origin)?
        {
            // The SDK finds the file at the path AWS_CONFIG_FILE names, in memory.
            let text_path = path.to_string_lossy().into_owned();
            vars.insert(ENV_CONFIG_FILE.to_owned(), text_path);
            let files = std::collections::HashMap::from([(path.into_os_string(), bytes)]);
            let sdk_env = os_shim_internal::Env::from(vars.clone());
            profiles = load_profiles(&sdk_env, &os_shim_internal::Fs::from_raw_map(files));
        }
        let env = os_shim_internal::Env::from(vars);
        Ok(Self { env, profiles })
    }

    /// A value from `variable`, else from `profile_key` of the active profile (with
    /// `service`, STS's own variable and `services` section first), and where it was found.
    fn lookup(
        &self,
        variable: &'static str,
        profile_key: Option<&'static str>,
        service: bool,
    ) -> Option<(String, Found)> {
        let mut value = EnvConfigValue::new().env(variable);
        if let Some(key) = profile_key {
            value = value.profile(key);
        }
        if service {
            value = value.service_id(SERVICE_ID);
        }
        let (found, origin) = value
            .validate_and_return_origin(&self.env, self.profiles.as_ref(), |v| {
                Ok::<_, std::convert::Infallible>(v.trim().to_owned())
            })
            .unwrap_or_else(|never| match *never.err() {});
        let found = found.filter(|v| !v.is_empty())?;
        Some((
            found,
            self.found(origin, variable, profile_key.unwrap_or_default()),
        ))
    }

    fn found(&self, origin: Origin, variable: &'static str, profile_key: &'static str) -> Found {
        if origin == Origin::service_environment_variable() {
            Found::Variable(ENV_ENDPOINT_URL_STS)
        } else if origin == Origin::shared_environment_variable() {
            Found::Variable(variable)
        } else {
            let profiles = self.profiles.as_ref();
            Found::Profile {
                profile: profiles
                    .map(|p| p.selected_profile().to_owned())
                    .unwrap_or_default(),
                key: profile_key,
                services: self
                    .services_section()
                    .filter(|_| origin == Origin::service_profile_file()),
            }
        }
    }

    /// The name of the `services` section the active profile points at.
    fn services_section(&self) -> Option<String> {
        self.profiles.as_ref()?.get("services").map(str::to_owned)
    }

    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's `region`.
    pub(crate) fn region(&self) -> Option<(String, Found)> {
        self.lookup(ENV_REGION, None, false)
            .or_else(|| self.lookup(ENV_DEFAULT_REGION, Some("region"), false))
    }

    /// The configured STS endpoint URL, in the SDK's order: `AWS_ENDPOINT_URL_STS`,
    /// `AWS_ENDPOINT_URL`, `sts = endpoint_url` in the profile's `services` section, the
    /// profile's `endpoint_url`. `None` when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` (or the
    /// profile's `ignore_configured_endpoint_urls`) is true; an invalid flag is an error.
    pub(crate) fn endpoint_url(&self) -> Result<Option<(String, Found)>, FlagError> {
        if self
            .flag(
                ENV_IGNORE_CONFIGURED_ENDPOINT_URLS,
                "ignore_configured_endpoint_urls",
            )?
            .is_some_and(|(ignore, _)| ignore)
        {
            return Ok(None);
        }
        Ok(self.lookup(ENV_ENDPOINT_URL, Some("endpoint_url"), true))
    }

    /// `AWS_USE_FIPS_ENDPOINT`, else the profile's `use_fips_endpoint`.
    pub(crate) fn use_fips(&self) -> Result<Option<(bool, Found)>, FlagError> {
        self.flag(ENV_USE_FIPS_ENDPOINT, "use_fips_endpoint")
    }

    /// `AWS_USE_DUALSTACK_ENDPOINT`, else the profile's `use_dualstack_endpoint`.
    pub(crate) fn use_dual_stack(&self) -> Result<Option<(bool, Found)>, FlagError> {
        self.flag(ENV_USE_DUALSTACK_ENDPOINT, "use_dualstack_endpoint")
    }

    fn flag(
        &self,
        variable: &'static str,
        profile_key: &'static str,
    ) -> Result<Option<(bool, Found)>, FlagError> {
        let Some((text, found)) = self.lookup(variable, Some(profile_key), false) else {
            return Ok(None);
        };
        match Env::parse_flag(&text) {
            Some(value) => Ok(Some((value, found))),
            None => Err(FlagError { text, found }),
        }
    }
}

/// Whether the active profile of the AWS shared config file (`AWS_PROFILE` of `env`, else
/// `default`; the file `AWS_CONFIG_FILE`, else `$HOME/.aws/config`) gets its credentials from
/// the container credentials endpoint: the SDKs' own role chaining from it,
/// `credential_source = EcsContainer`, in the profile or at the end of its `source_profile`
/// chain. `false` when that cannot be said: no such profile or file, static keys on the way,
/// another source, a file that cannot be read (the credentials file is never read).
///
/// `fly-oidc exec` and `serve` warn about a child's `AWS_PROFILE` unless this is `true`.
pub fn profile_uses_container_credentials(env: &Env) -> bool {
    SharedConfig::load(env).is_ok_and(|config| config.uses_container_credentials())
}

impl SharedConfig {
    /// See [`profile_uses_container_credentials`]. A `source_profile` chain is followed at
    /// most 8 profiles deep (the SDKs refuse a cycle).
    fn uses_container_credentials(&self) -> bool {
        let Some(profiles) = &self.profiles else {
            return false;
        };
        let mut name = profiles.selected_profile();
        for _ in 0..8 {
            let Some(profile) = profiles.get_profile(name) else {
                return false;
            };
            if profile.get("aws_access_key_id").is_some() {
                return false;
            }
            if let Some(source) = profile.get("credential_source") {
                // Both a source and a source profile: the SDKs refuse the profile.
                return source == "EcsContainer" && profile.get("source_profile").is_none();
            }
            match profile.get("source_profile") {
                Some(next) if next != name => name = next,
                _ => return false,
            }
        }
        false
    }
}

/// A boolean setting of the shared configuration that is neither true nor false.
#[derive(Debug)]
pub(crate) struct FlagError {
    pub(crate) text: String,
    pub(crate) found: Found,
}

/// The config file to read and the variable that located it: `AWS_CONFIG_FILE` (a leading
/// `~/` is `$HOME/`), else `$HOME/.aws/config`; `None` without either.
fn config_path(
    vars: &std::collections::HashMap<String, String>,
) -> Option<(PathBuf, &'static str)> {
    let home = vars.get("HOME").map(PathBuf::from);
    match vars.get(ENV_CONFIG_FILE) {
        Some(path) => {
            let path = match path.strip_prefix("~/") {
                Some(rest) => home?.join(rest),
                None if path == "~" => home?,
                None => PathBuf::from(path),
            };
            Some((path, ENV_CONFIG_FILE))
        }
        None => Some((home?.join(".aws/config"), "HOME")),
    }
}

/// The bytes of the config file at `path` (located by the variable `origin`), `None` when it
/// does not exist. Errors say why the file cannot be used, never what it holds.
fn read_config_file(path: &Path, origin: &'static str) -> Result<Option<Vec<u8>>, BuildError> {
    let invalid = |why: String| {
        let fix = if why.starts_with("is not UTF-8") {
            "save it as UTF-8, or point"
        } else {
            "point"
        };
        BuildError::invalid(
            CONFIG_FILE,
            SettingOrigin::Env(origin.to_owned()),
            format!(
                "the AWS config file {} {why}; {fix} {ENV_CONFIG_FILE} at an AWS config file",
                path.display()
            ),
        )
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid(format!("cannot be read: {e}"))),
        Ok(meta) if meta.is_dir() => return Err(invalid("is a directory".to_owned())),
        Ok(_) => {}
    }
    let bytes = match fly_oidc::fs::read_file_capped(path, MAX_CONFIG_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(fly_oidc::fs::ReadError::TooLarge { .. }) => {
            return Err(invalid("is larger than 1 MiB".to_owned()));
        }
        Err(e) => return Err(invalid(format!("cannot be read: {e}"))),
    };
    match std::str::from_utf8(&bytes) {
        Ok(_) => Ok(Some(bytes)),
        Err(e) => Err(invalid(format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))),
    }
}

/// The active profile of the config file, parsed by the SDK from `fs` (the file read in
/// memory), `None` when it does not parse (logged without its text).
fn load_profiles(
    env: &os_shim_internal::Env,
    fs: &os_shim_internal::Fs,
) -> Option<EnvConfigSections> {
    let files = EnvConfigFiles::builder()
        .include_default_config_file(true)
        .build();
    // The SDK reads the file synchronously behind an async signature: the future is ready at
    // once, so no runtime is needed to build a provider.
    let Some(source) = ready(aws_runtime::env_config::source::load(env, fs, &files)) else {
        tracing::warn!("the AWS config file could not be read synchronously; ignoring it");
        return None;
    };
    let parsed = source
        .map_err(|e| e.to_string())
        .and_then(|source| EnvConfigSections::parse(source).map_err(|e| e.to_string()));
    match parsed {
        Ok(profiles) => {
            if !profiles.is_empty() && profiles.get_profile(profiles.selected_profile()).is_none() {
                tracing::debug!(
                    profile = profiles.selected_profile(),
                    "the AWS config file has no such profile"
                );
            }
            Some(profiles)
        }
        Err(err) => {
            tracing::warn!("ignoring the AWS config file: {err}");
            None
        }
    }
}

/// The output of `future` if it is ready when first polled.
pub(crate) fn ready<F: Future>(future: F) -> Option<F::Output> {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str, extra: &[(&str, &str)]) -> (tempfile::TempDir, SharedConfig) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, text).unwrap();
        let mut vars = vec![(ENV_CONFIG_FILE, file.to_str().unwrap())];
        vars.extend_from_slice(extra);
        let shared = SharedConfig::load(&Env::from_slice(&vars)).unwrap();
        (dir, shared)
    }

    /// The value `text` and `env` give, and where it was found, as the messages say it.
    fn found(found: Option<(String, Found)>) -> Option<(String, String)> {
        found.map(|(value, found)| (value, found.to_string()))
    }

    /// `Some((value, where))`, for comparing with [`found`].
    fn at(value: &str, place: &str) -> Option<(String, String)> {
        Some((value.into(), place.into()))
    }

    #[test]
    fn region_order_is_the_sdks() {
        let text = "[default]\nregion = eu-central-1\n\n[profile dev]\n# c\nregion=us-west-1\n";
        let region = |env: &[(&str, &str)]| found(config(text, env).1.region());
        let (default, dev) = ("`region` of profile `default`", "`region` of profile `dev`");
        assert_eq!(region(&[]), at("eu-central-1", default));
        assert_eq!(region(&[(ENV_PROFILE, "dev")]), at("us-west-1", dev));
        assert_eq!(region(&[(ENV_PROFILE, "other")]), None);
        let variable = [(ENV_DEFAULT_REGION, "ap-south-1")];
        assert_eq!(region(&variable), at("ap-south-1", ENV_DEFAULT_REGION));
        let both = [
            (ENV_DEFAULT_REGION, "ap-south-1"),
            (ENV_REGION, "sa-east-1"),
        ];
        assert_eq!(region(&both), at("sa-east-1", ENV_REGION));
    }

    #[test]
    fn endpoint_url_from_profile_services_and_variables() {
        let text = "[default]\nendpoint_url = http://127.0.0.1:1\n\n[profile svc]\nservices = local\nendpoint_url = http://127.0.0.1:2\n\n[services local]\nsts =\n  endpoint_url = http://127.0.0.1:3\ns3 =\n  endpoint_url = http://127.0.0.1:4\n";
        let url =
            |text: &str, env: &[(&str, &str)]| found(config(text, env).1.endpoint_url().unwrap());
        let default = "`endpoint_url` of profile `default`";
        assert_eq!(url(text, &[]), at("http://127.0.0.1:1", default));
        let services = "`sts = endpoint_url` of services section `local` (profile `svc`)";
        assert_eq!(
            url(text, &[(ENV_PROFILE, "svc")]),
            at("http://127.0.0.1:3", services)
        );
        let svc_and_all = [(ENV_PROFILE, "svc"), (ENV_ENDPOINT_URL, "http://a")];
        assert_eq!(url(text, &svc_and_all), at("http://a", ENV_ENDPOINT_URL));
        let all_and_sts = [
            (ENV_ENDPOINT_URL, "http://a"),
            (ENV_ENDPOINT_URL_STS, "http://b"),
        ];
        assert_eq!(
            url(text, &all_and_sts),
            at("http://b", ENV_ENDPOINT_URL_STS)
        );
        let ignored = [
            (ENV_ENDPOINT_URL_STS, "http://b"),
            (ENV_IGNORE_CONFIGURED_ENDPOINT_URLS, "true"),
        ];
        assert_eq!(url(text, &ignored), None);
        let ignored_in_profile =
            "[default]\nendpoint_url = http://x\nignore_configured_endpoint_urls = true\n";
        assert_eq!(url(ignored_in_profile, &[]), None);
    }

    #[test]
    fn flags_from_variables_and_profile() {
        let text = "[default]\nuse_fips_endpoint = true\nuse_dualstack_endpoint = maybe\n";
        let (_d, c) = config(text, &[]);
        assert!(c.use_fips().unwrap().unwrap().0);
        let err = c.use_dual_stack().unwrap_err();
        assert_eq!(err.text, "maybe");
        assert_eq!(
            err.found.to_string(),
            "`use_dualstack_endpoint` of profile `default`"
        );
        let (_d, c) = config(text, &[(ENV_USE_FIPS_ENDPOINT, "0")]);
        assert_eq!(
            c.use_fips().unwrap(),
            Some((false, Found::Variable(ENV_USE_FIPS_ENDPOINT)))
        );
    }

    #[test]
    fn no_file_without_home_or_config_file_and_bad_files_are_ignored() {
        let c = SharedConfig::load(&Env::from_slice(&[(ENV_REGION, "eu-west-3")])).unwrap();
        assert!(c.profiles.is_none());
        assert_eq!(c.region().unwrap().0, "eu-west-3");
        let c = SharedConfig::load(&Env::from_slice(&[(
            ENV_CONFIG_FILE,
            "/nonexistent/fly-oidc/config",
        )]))
        .unwrap();
        assert_eq!(c.region(), None);
        let (_d, c) = config("[default\nregion = x\n", &[]);
        assert_eq!(c.region(), None);
        // HOME locates ~/.aws/config.
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/config"),
            "[default]\nregion = ca-central-1\n",
        )
        .unwrap();
        let c = SharedConfig::load(&Env::from_slice(&[("HOME", home.path().to_str().unwrap())]))
            .unwrap();
        assert_eq!(c.region().unwrap().0, "ca-central-1");
    }

    #[test]
    fn container_credentials_directly_or_through_source_profiles() {
        let text = "[profile chained]\nrole_arn = arn:aws:iam::210987654321:role/data\ncredential_source = EcsContainer\n\n\
                    [profile via]\nrole_arn = arn:aws:iam::210987654321:role/other\nsource_profile = chained\n\n\
                    [profile instance]\nrole_arn = arn:aws:iam::210987654321:role/data\ncredential_source = Ec2InstanceMetadata\n\n\
                    [profile keys]\naws_access_key_id = AKIAEXAMPLE\n\n\
                    [profile via-keys]\nrole_arn = arn:aws:iam::210987654321:role/data\nsource_profile = keys\n\n\
                    [profile loop]\nrole_arn = arn:aws:iam::210987654321:role/data\nsource_profile = loop\n\n\
                    [profile plain]\nregion = us-east-1\n\n\
                    [profile both]\nrole_arn = arn:aws:iam::210987654321:role/data\ncredential_source = EcsContainer\nsource_profile = chained\n";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, text).unwrap();
        let uses = |profile: &str| {
            profile_uses_container_credentials(&Env::from_slice(&[
                (ENV_CONFIG_FILE, file.to_str().unwrap()),
                (ENV_PROFILE, profile),
            ]))
        };
        assert!(uses("chained"));
        assert!(uses("via"));
        for other in [
            "instance", "keys", "via-keys", "loop", "plain", "missing", "both",
        ] {
            assert!(!uses(other), "{other}");
        }
        assert!(!profile_uses_container_credentials(&Env::from_slice(&[(
            ENV_CONFIG_FILE,
            dir.path().to_str().unwrap()
        )])));
    }

    #[test]
    fn directories_and_non_utf8_files_are_errors_that_never_quote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let load = |path: &Path| {
            SharedConfig::load(&Env::from_slice(&[(
                ENV_CONFIG_FILE,
                path.to_str().unwrap(),
            )]))
            .unwrap_err()
            .to_string()
        };
        let err = load(dir.path());
        assert!(err.contains("is a directory"), "{err}");
        assert!(err.contains("(from AWS_CONFIG_FILE)"), "{err}");
        let file = dir.path().join("config");
        std::fs::write(
            &file,
            b"[profile p]\naws_secret_access_key = SUPERSECRET\n# caf\xe9\n",
        )
        .unwrap();
        let err = load(&file);
        assert!(err.contains("is not UTF-8"), "{err}");
        assert!(err.contains("point AWS_CONFIG_FILE at"), "{err}");
        assert!(
            !err.contains("SUPERSECRET") && !err.contains("83, 85"),
            "{err}"
        );
        // The default file under HOME too, named by HOME.
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws/config")).unwrap();
        let err = SharedConfig::load(&Env::from_slice(&[("HOME", home.path().to_str().unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is a directory") && err.contains("(from HOME)"),
            "{err}"
        );
    }
}
