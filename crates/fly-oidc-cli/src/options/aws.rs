//! [`CredentialProcessOptions`]: the flags of `fly-oidc aws credential-process` and
//! `fly-oidc aws env`, mapped onto the provider's and the credential process's builders.

use crate::options::SetIf;
use fly_oidc::{BuildError, ProviderConfig};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_aws::credential_process::{self, CredentialProcess};
use std::time::Duration;

/// The settings of a credential process, one field per builder setting: each field left
/// empty is read by [`build`](Self::build)'s builders from the environment (so a field beats
/// every variable), else the default. Each field is a flag (`--role-arn`, ...), its doc line
/// the flag's help.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CredentialProcessOptions {
    /// The IAM role to assume (required: this flag or its variable) [env: AWS_ROLE_ARN]
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
    /// Ask Fly for AWS session tags (`aws:PrincipalTag/<key>`); the trust policy must allow
    /// sts:TagSession [env: FLY_OIDC_AWS_PRINCIPAL_TAGS=1]
    #[arg(long)]
    pub principal_tags: bool,
    /// Then assume this role with the first one's credentials [env: FLY_OIDC_AWS_CHAIN_ROLE_ARN]
    #[arg(long, value_name = "ARN")]
    pub chain_role_arn: Option<String>,
    /// The chained role's external id [env: FLY_OIDC_AWS_CHAIN_EXTERNAL_ID]
    #[arg(long, value_name = "ID")]
    pub chain_external_id: Option<String>,
    /// The chained role's session name [default: the first role's]
    #[arg(long, value_name = "NAME")]
    pub chain_session_name: Option<String>,
    /// The chained session's duration, 900..3600 [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub chain_duration_seconds: Option<u32>,
    /// The STS region [env: AWS_REGION, AWS_DEFAULT_REGION, the profile's region; default: us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The STS endpoint URL [env: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile's endpoint_url]
    #[arg(long, value_name = "URL")]
    pub sts_endpoint: Option<String>,
    /// Neither read nor write the disk cache [env: FLY_OIDC_NO_CACHE=1]
    #[arg(long)]
    pub no_cache: bool,
    /// Reuse cached credentials while at least this much of their life remains: 900, 900s,
    /// 15m, 1h [env: FLY_OIDC_AWS_MIN_TTL; default: 15m]
    #[arg(long, value_name = "DURATION", value_parser = credential_process::parse_min_ttl)]
    pub min_ttl: Option<Duration>,
}

impl CredentialProcessOptions {
    /// The credential process these settings describe, built with `config` (its environment
    /// for the rest, its Fly token client): each field onto its builder method
    /// (`role_arn`, `audience`, `session_name`, `duration` in seconds, `policy`, `policy_arns`
    /// (none: the variable), `principal_tags` when set, `region`, `endpoint_url`, the chain's
    /// `chain_role_arn`, `chain_external_id`, `chain_session_name`, `chain_duration`; `no_cache`
    /// when set, `min_ttl`).
    /// The provider keeps no memory cache (the disk cache is the process's).
    ///
    /// # Errors
    /// A [`BuildError`] naming the invalid setting (by builder method, or by variable when it
    /// came from `env`), or the missing role.
    pub fn build(self, config: &ProviderConfig) -> Result<CredentialProcess, BuildError> {
        let duration = self.duration_seconds.map(|s| Duration::from_secs(s.into()));
        let policy_arns = Some(self.policy_arns).filter(|arns| !arns.is_empty());
        let provider = FlyOidcCredentialsProvider::builder()
            .configure(config)
            .disable_cache()
            .set_if(self.role_arn, |b, arn| b.role_arn(arn))
            .set_if(self.audience, |b, audience| b.audience(audience))
            .set_if(self.session_name, |b, name| b.session_name(name))
            .set_if(duration, |b, duration| b.duration(duration))
            .set_if(self.policy, |b, policy| b.policy(policy))
            .set_if(policy_arns, |b, arns| b.policy_arns(arns))
            .set_if(self.principal_tags.then_some(true), |b, yes| {
                b.principal_tags(yes)
            })
            .set_if(self.region, |b, region| b.region(region))
            .set_if(self.sts_endpoint, |b, url| b.endpoint_url(url))
            .set_if(self.chain_role_arn, |b, arn| b.chain_role_arn(arn))
            .set_if(self.chain_external_id, |b, id| b.chain_external_id(id))
            .set_if(self.chain_session_name, |b, name| {
                b.chain_session_name(name)
            })
            .set_if(self.chain_duration_seconds, |b, secs| {
                b.chain_duration(Duration::from_secs(secs.into()))
            });
        CredentialProcess::builder()
            .set_if(self.no_cache.then_some(true), |p, no_cache| {
                p.no_cache(no_cache)
            })
            .set_if(self.min_ttl, |p, min_ttl| p.min_ttl(min_ttl))
            .build(provider.build()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::config;
    use fly_oidc::Env;

    fn build(
        options: CredentialProcessOptions,
        env: &Env,
    ) -> Result<CredentialProcess, BuildError> {
        options.build(&config(env))
    }

    #[test]
    fn each_field_beats_its_variable() {
        let env = Env::from_slice(&[
            ("AWS_ROLE_ARN", "arn:aws:iam::111111111111:role/from-env"),
            ("FLY_OIDC_AUDIENCE", "env-aud"),
            ("AWS_ROLE_SESSION_NAME", "env-session"),
            ("FLY_OIDC_AWS_DURATION_SECONDS", "7200"),
            (
                "FLY_OIDC_AWS_POLICY_ARNS",
                "arn:aws:iam::aws:policy/FromEnv",
            ),
            ("AWS_REGION", "eu-west-1"),
            ("FLY_OIDC_AWS_MIN_TTL", "30m"),
            ("HOME", "/home/app"),
        ]);
        let options = CredentialProcessOptions {
            role_arn: Some("arn:aws:iam::123456789012:role/app".into()),
            audience: Some("flag-aud".into()),
            session_name: Some("flag-session".into()),
            duration_seconds: Some(900),
            policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            principal_tags: true,
            chain_role_arn: Some("arn:aws:iam::210987654321:role/data".into()),
            chain_external_id: Some("ext-1".into()),
            chain_session_name: Some("chained".into()),
            chain_duration_seconds: Some(1800),
            region: Some("ap-south-1".into()),
            sts_endpoint: Some("http://127.0.0.1:9".into()),
            no_cache: true,
            min_ttl: Some(Duration::from_secs(60)),
        };
        let process = build(options, &env).unwrap();
        let s = process.provider().settings();
        assert_eq!(s.role_arn(), Some("arn:aws:iam::123456789012:role/app"));
        assert_eq!(s.audience(), "flag-aud");
        assert_eq!(s.session_name(), Some("flag-session"));
        assert_eq!(s.duration(), Duration::from_secs(900));
        assert_eq!(
            s.policy(),
            Some(r#"{"Version":"2012-10-17","Statement":[]}"#)
        );
        assert_eq!(s.policy_arns(), ["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
        assert!(s.principal_tags());
        let chain = s.chain().expect("a chained role");
        assert_eq!(chain.role_arn, "arn:aws:iam::210987654321:role/data");
        assert_eq!(chain.external_id.as_deref(), Some("ext-1"));
        assert_eq!(chain.session_name.as_deref(), Some("chained"));
        assert_eq!(chain.duration, Duration::from_secs(1800));
        assert_eq!(s.region(), "ap-south-1");
        assert_eq!(s.endpoint_url(), Some("http://127.0.0.1:9"));
        assert!(process.cache_settings().no_cache);
        assert_eq!(process.cache_settings().min_ttl, Duration::from_secs(60));
    }

    #[test]
    fn empty_fields_leave_the_settings_to_the_environment() {
        let env = Env::from_slice(&[
            ("AWS_ROLE_ARN", "arn:aws:iam::111111111111:role/from-env"),
            ("FLY_OIDC_AWS_DURATION_SECONDS", "7200"),
            (
                "FLY_OIDC_AWS_POLICY_ARNS",
                "arn:aws:iam::aws:policy/A,arn:aws:iam::aws:policy/B",
            ),
            ("AWS_REGION", "eu-west-1"),
            ("FLY_OIDC_AWS_PRINCIPAL_TAGS", "yes"),
            ("FLY_OIDC_NO_CACHE", "1"),
            ("FLY_OIDC_AWS_MIN_TTL", "30m"),
        ]);
        let process = build(CredentialProcessOptions::default(), &env).unwrap();
        let s = process.provider().settings();
        assert_eq!(
            s.role_arn(),
            Some("arn:aws:iam::111111111111:role/from-env")
        );
        assert_eq!(s.audience(), "sts.amazonaws.com");
        assert_eq!(s.duration(), Duration::from_secs(7200));
        assert_eq!(s.policy_arns().len(), 2);
        assert_eq!(s.region(), "eu-west-1");
        assert!(s.principal_tags(), "FLY_OIDC_AWS_PRINCIPAL_TAGS=yes");
        assert!(process.cache_settings().no_cache, "FLY_OIDC_NO_CACHE=1");
        assert_eq!(process.cache_settings().min_ttl, Duration::from_secs(1800));
    }

    #[test]
    fn an_invalid_field_is_a_build_error_naming_its_builder_method() {
        let env = Env::from_slice(&[]);
        let options = CredentialProcessOptions {
            role_arn: Some("arn:aws:iam::123456789012:role/app".into()),
            duration_seconds: Some(60),
            ..Default::default()
        };
        let err = build(options, &env).unwrap_err();
        assert_eq!(err.setting().builder_method(), "duration", "{err}");
        let err = build(CredentialProcessOptions::default(), &env).unwrap_err();
        assert_eq!(err.setting().builder_method(), "role_arn", "{err}");
    }
}
