//! The flags of the `fly-oidc gcp` commands, declared once: [`ExecutableOptions`],
//! [`CredentialConfigOptions`] and [`AccessTokenOptions`], with the [`Federation`] and the
//! [`Endpoints`] the last two share. Each maps itself onto [`GcpTokenProvider::builder`], one field to one builder
//! method; a field left empty is read by the builder from the environment (so a field beats
//! every variable), else the default. Each doc line is the flag's help.

use crate::options::SetIf;
use fly_oidc::{BuildError, Env, ProviderConfig};
use fly_oidc_gcp::{Builder, GcpTokenProvider, Settings};
use std::path::PathBuf;
use std::time::Duration;

/// The settings of `fly-oidc gcp executable`, the command a credential configuration runs
/// ([`executable::respond`](fly_oidc_gcp::executable::respond)'s `audience`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExecutableOptions {
    /// The Fly token audience [default: from GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE, with `//` as `https://`]
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,
}

/// The workload identity federation: [`Builder::provider`] and [`Builder::service_account`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Federation {
    /// The workload identity pool provider (required: this flag or its variable) [env: FLY_OIDC_GCP_PROVIDER]
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<String>,
    /// Impersonate this service account [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    #[arg(long, value_name = "EMAIL")]
    pub service_account: Option<String>,
}

/// Google's endpoints: [`Builder::sts_url`] and [`Builder::iam_url`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Endpoints {
    /// The STS token endpoint [env: FLY_OIDC_GCP_STS_URL; default: https://sts.googleapis.com/v1/token]
    #[arg(long, value_name = "URL")]
    pub sts_url: Option<String>,
    /// The IAM Credentials base URL [env: FLY_OIDC_GCP_IAM_URL; default: https://iamcredentials.googleapis.com]
    #[arg(long, value_name = "URL")]
    pub iam_url: Option<String>,
}

/// The settings of `fly-oidc gcp credential-config`: the provider settings the configuration
/// carries (see [`settings`](Self::settings)), where to write it, and the token cache file
/// (`credential_source.executable.output_file`, given to
/// [`executable::this_binary_config`](fly_oidc_gcp::executable::this_binary_config)).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(mut_arg("provider", |a| a.help("The workload identity pool provider, projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id> (required: this flag or its variable) [env: FLY_OIDC_GCP_PROVIDER]")))]
pub struct CredentialConfigOptions {
    /// The provider (its help names its form here) and the service account.
    #[command(flatten)]
    pub federation: Federation,
    /// Write the configuration to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Google's endpoints.
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Lifetime of impersonated tokens, in seconds (600..=43200; Google's default is 3600)
    #[arg(long, value_name = "SECONDS")]
    pub lifetime_seconds: Option<u64>,
    /// Let the libraries reuse a Fly token until it expires: `fly-oidc gcp executable` also
    /// writes its answer to this file (mode 0600), and the libraries read it before running
    /// the executable again (`credential_source.executable.output_file`)
    #[arg(long, value_name = "FILE")]
    pub token_cache_file: Option<PathBuf>,
}

impl CredentialConfigOptions {
    /// The provider settings the configuration carries, resolved with `env` for the fields
    /// left empty, without building an HTTP client: the [`Federation`], the [`Endpoints`] and
    /// [`lifetime`](Builder::lifetime) (in seconds).
    ///
    /// # Errors
    /// [`Builder::settings`]'s: a [`BuildError`] naming the invalid or missing setting; and
    /// a token cache file that is also the output (each run would overwrite the
    /// configuration with a token response).
    pub fn settings(&self, env: &Env) -> Result<Settings, BuildError> {
        let absolute = |path: &Option<PathBuf>| path.as_deref().map(std::path::absolute);
        let cache = absolute(&self.token_cache_file).and_then(Result::ok);
        if cache.is_some() && cache == absolute(&self.output).and_then(Result::ok) {
            let why = "the token cache file is also the configuration's output file, which each run would overwrite with a token; give each its own path";
            let setting = fly_oidc_gcp::executable::TOKEN_CACHE_FILE;
            return Err(BuildError::invalid(setting, fly_oidc::Origin::Builder, why));
        }
        let config = ProviderConfig::default().with_env(env.clone());
        builder(
            &config,
            &self.federation,
            &self.endpoints,
            self.lifetime_seconds,
        )
        .settings()
    }
}

/// The settings of `fly-oidc gcp access-token`: the provider that fetches the token (see
/// [`build`](Self::build)).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccessTokenOptions {
    /// The provider and the service account.
    #[command(flatten)]
    pub federation: Federation,
    /// The Fly token audience [default: https://iam.googleapis.com/<provider>]
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,
    /// OAuth scope (repeatable) [env: FLY_OIDC_GCP_SCOPES, comma-separated; default: https://www.googleapis.com/auth/cloud-platform]
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Google's endpoints.
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Lifetime of impersonated tokens, in seconds (60..=43200) [default: 3600]
    #[arg(long, value_name = "SECONDS")]
    pub lifetime_seconds: Option<u64>,
}

impl AccessTokenOptions {
    /// The provider these settings describe, built with `config` (its Fly token client, its
    /// environment for the fields left empty): the [`Federation`], [`audience`](Builder::audience),
    /// [`scopes`](Builder::scopes) (none: the variable), the [`Endpoints`] and
    /// [`lifetime`](Builder::lifetime) (in seconds).
    ///
    /// # Errors
    /// [`Builder::build`]'s: a [`BuildError`] naming the invalid or missing setting.
    pub fn build(self, config: &ProviderConfig) -> Result<GcpTokenProvider, BuildError> {
        let b = builder(
            config,
            &self.federation,
            &self.endpoints,
            self.lifetime_seconds,
        );
        let scopes = Some(self.scopes).filter(|scopes| !scopes.is_empty());
        b.set_if(self.audience, |b, audience| b.audience(audience))
            .set_if(scopes, |b, scopes| b.scopes(scopes))
            .build()
    }
}

/// A builder with `config`, and the settings both commands share: the federation, the
/// endpoints and the lifetime.
fn builder(
    config: &ProviderConfig,
    federation: &Federation,
    endpoints: &Endpoints,
    lifetime_seconds: Option<u64>,
) -> Builder {
    let email = federation.service_account.as_ref();
    GcpTokenProvider::builder()
        .configure(config)
        .set_if(federation.provider.as_ref(), |b, p| b.provider(p))
        .set_if(email, |b, email| b.service_account(email))
        .set_if(endpoints.sts_url.as_ref(), |b, url| b.sts_url(url))
        .set_if(endpoints.iam_url.as_ref(), |b, url| b.iam_url(url))
        .set_if(lifetime_seconds, |b, s| b.lifetime(Duration::from_secs(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::config;

    const PROVIDER: &str = "projects/123/locations/global/workloadIdentityPools/fly/providers/app";

    fn env() -> Env {
        Env::from_slice(&[
            (
                "FLY_OIDC_GCP_PROVIDER",
                "projects/999/locations/global/workloadIdentityPools/env/providers/env",
            ),
            (
                "FLY_OIDC_GCP_SERVICE_ACCOUNT",
                "env@p.iam.gserviceaccount.com",
            ),
            ("FLY_OIDC_GCP_STS_URL", "http://127.0.0.1:1/env-sts"),
            ("FLY_OIDC_GCP_IAM_URL", "http://127.0.0.1:1/env-iam"),
            ("FLY_OIDC_GCP_SCOPES", "env-scope"),
            ("FLY_OIDC_ALLOW_INSECURE_HTTP", "1"),
        ])
    }

    /// [`PROVIDER`], and no service account.
    fn federation() -> Federation {
        Federation {
            provider: Some(PROVIDER.into()),
            service_account: None,
        }
    }

    fn endpoints() -> Endpoints {
        Endpoints {
            sts_url: Some("http://127.0.0.1:9/sts".into()),
            iam_url: Some("http://127.0.0.1:9/iam".into()),
        }
    }

    #[test]
    fn credential_config_fields_beat_their_variables() {
        let options = CredentialConfigOptions {
            federation: Federation {
                provider: Some(PROVIDER.into()),
                service_account: Some("sa@p.iam.gserviceaccount.com".into()),
            },
            endpoints: endpoints(),
            lifetime_seconds: Some(900),
            ..Default::default()
        };
        let s = options.settings(&env()).unwrap();
        assert_eq!(s.provider().to_string(), PROVIDER);
        assert_eq!(s.service_account(), Some("sa@p.iam.gserviceaccount.com"));
        assert_eq!(s.sts_url(), "http://127.0.0.1:9/sts");
        assert_eq!(s.iam_url(), "http://127.0.0.1:9/iam");
        assert_eq!(s.lifetime(), Some(Duration::from_secs(900)));
        let s = CredentialConfigOptions::default().settings(&env()).unwrap();
        assert_eq!(s.service_account(), Some("env@p.iam.gserviceaccount.com"));
        assert_eq!(s.sts_url(), "http://127.0.0.1:1/env-sts");
    }

    #[test]
    fn access_token_fields_beat_their_variables() {
        let env = env();
        let options = AccessTokenOptions {
            federation: federation(),
            audience: Some("fly-aud".into()),
            scopes: vec!["a".into(), "b".into()],
            endpoints: endpoints(),
            ..Default::default()
        };
        let provider = options.build(&config(&env)).unwrap();
        let s = provider.settings();
        assert_eq!(s.audience(), "fly-aud");
        assert_eq!(s.scopes(), ["a", "b"]);
        assert_eq!(s.service_account(), Some("env@p.iam.gserviceaccount.com"));
        let provider = AccessTokenOptions::default().build(&config(&env)).unwrap();
        assert_eq!(provider.settings().scopes(), ["env-scope"]);
    }

    #[test]
    fn a_missing_provider_is_a_build_error_naming_its_builder_method() {
        let env = Env::from_slice(&[]);
        let err = CredentialConfigOptions::default()
            .settings(&env)
            .unwrap_err();
        assert_eq!(err.setting().builder_method(), "provider", "{err}");
        let options = AccessTokenOptions {
            federation: federation(),
            lifetime_seconds: Some(1),
            ..Default::default()
        };
        let err = options.build(&config(&env)).unwrap_err();
        assert_eq!(err.setting().builder_method(), "lifetime", "{err}");
    }
}
