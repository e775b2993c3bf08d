//! The checkers and the set-up's org and app, without printing: what stands in for a live
//! token (`--claims FILE`, or `--org`/`--app`/`--machine`), the org and app a set-up trusts
//! (flags, else a live token's claims), and `aws check-trust-policy` / `gcp check-condition`
//! ([`TrustPolicyCheck`], [`ConditionCheck`]) up to their report. The front end prints the
//! report and turns a rejection into its exit status.

use crate::setup::condition::{self, AttributeMapping, ConditionReport};
use crate::setup::gcp_setup::DEFAULT_ATTRIBUTE_MAPPING;
use crate::setup::subject::{self, SubjectError};
use crate::setup::trust_policy::{self, PolicyReport};
use fly_oidc::{BuildError, Env, FlyClaims, FlyOidcClient, TokenOptions};
use std::path::PathBuf;

/// Exit status of a check that found no token (the binary's; 2 is bad arguments).
pub const EXIT_NO_TOKEN: u8 = 3;

/// The largest claims file read (bytes).
const MAX_CLAIMS_FILE: usize = 64 * 1024;
/// The largest policy file read (bytes).
const MAX_POLICY_FILE: usize = 1024 * 1024;

/// Why a check (or the set-up's org and app lookup) could not run.
#[derive(Debug)]
pub enum CheckError {
    /// Bad arguments: an unreadable or malformed file, policy, expression, org or app; the
    /// message names the flag or file and the fix.
    Usage(String),
    /// The token source's settings are invalid.
    Setting(BuildError),
    /// No live token could be fetched (exit status [`EXIT_NO_TOKEN`] in the binary).
    NoToken(fly_oidc::Error),
}

impl From<SubjectError> for CheckError {
    fn from(err: SubjectError) -> Self {
        CheckError::Usage(err.to_string())
    }
}

/// Makes the Fly token client (from the front end's token-source settings) when a live token
/// is needed; called at most twice.
pub type ClientFn<'a> = &'a dyn Fn() -> Result<FlyOidcClient, BuildError>;

/// What stands in for a live token in the checkers: a claims file, else an org and app (with
/// an optional Machine name), else nothing (a live token is fetched).
///
/// `StandIn` derives `clap::Args`: the flags `--claims`, `--org`,
/// `--app` and `--machine` of `fly-oidc aws check-trust-policy` and `gcp check-condition`,
/// their help the first paragraph of each field's documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct StandIn {
    /// Use these claims instead of a live token: the JSON of `fly-oidc token --claims --audience
    /// AUD`, AUD the cloud's audience (`sts.amazonaws.com` for AWS, the provider's
    /// `https://iam.googleapis.com/...` for Google).
    ///
    /// Its `iss`, `sub`, `aud` and Fly claims; at most 64 KiB. Not with `org` or `app`.
    #[arg(long = "claims", value_name = "FILE", conflicts_with_all = ["org", "app"], long_help = None)]
    pub claims_file: Option<PathBuf>,
    /// With --app: check a token of this org's app instead of a live token
    #[arg(long, value_name = "SLUG", requires = "app")]
    pub org: Option<String>,
    /// With --org: the app
    #[arg(long, value_name = "APP", requires = "org")]
    pub app: Option<String>,
    /// With --org and --app: the Machine name in sub [default: example-machine]
    #[arg(long, value_name = "NAME", requires = "org")]
    pub machine: Option<String>,
}

impl StandIn {
    /// The claims: from the file, from org and app, or from a live token fetched with
    /// `audience` (else the client's configured audience) and `options` (AWS's session tags).
    pub async fn claims(
        &self,
        client: ClientFn<'_>,
        audience: Option<&str>,
        options: TokenOptions,
    ) -> Result<FlyClaims, CheckError> {
        if let Some(path) = &self.claims_file {
            let bytes = fly_oidc::fs::read_file_capped(path, MAX_CLAIMS_FILE).map_err(|e| {
                CheckError::Usage(format!("cannot read --claims {}: {e}", path.display()))
            })?;
            return Ok(subject::claims_from_json(&String::from_utf8_lossy(&bytes))?);
        }
        if let (Some(org), Some(app)) = (&self.org, &self.app) {
            return Ok(subject::stand_in_claims(
                org,
                app,
                self.machine.as_deref(),
                audience,
            )?);
        }
        let client = client().map_err(CheckError::Setting)?;
        let audience = audience
            .map(str::to_owned)
            .or_else(|| client.audience().map(str::to_owned));
        match client.fetch_token_with(audience.as_deref(), options).await {
            Ok(token) => Ok(token.claims().clone()),
            Err(e) => Err(CheckError::NoToken(e)),
        }
    }
}

/// The org and app a set-up trusts: `org` and `app` when given (`app` only when `need_app`),
/// else read from a live token (`iss` and `sub`); without one, an error naming `--org` or
/// `--app`. An org of `personal` is refused before any token is looked for.
pub async fn org_app(
    client: ClientFn<'_>,
    org: Option<String>,
    app: Option<String>,
    need_app: bool,
) -> Result<(String, Option<String>), CheckError> {
    if let Some(org) = &org {
        subject::check_org(org)?;
        if app.is_some() || !need_app {
            return Ok((org.clone(), app));
        }
    }
    let token = match client() {
        Ok(client) => client.fetch_default_token().await.ok(),
        Err(_) => None,
    };
    let Some(token) = token else {
        return Err(CheckError::Usage(if org.is_none() {
            "no --org, and no Fly token to read it from: pass --org SLUG and --app APP (the org slug is in the iss of `fly-oidc token --claims`: https://oidc.fly.io/<slug>)".into()
        } else {
            "no --app, and no Fly token to read it from: pass --app APP".into()
        }));
    };
    let claims = token.claims();
    let org = match org {
        Some(org) => org,
        None => claims.org_slug().map(str::to_owned).ok_or_else(|| {
            CheckError::Usage(
                "the Fly token's iss is not https://oidc.fly.io/<org>: pass --org".into(),
            )
        })?,
    };
    let app = app.or_else(|| subject::app_of(claims).map(str::to_owned));
    Ok((org, app))
}

/// The options of a trust-policy check, as given (what `fly-oidc aws check-trust-policy` takes
/// as arguments): would the policy in `file` accept the token of `stand_in`?
///
/// `TrustPolicyCheck` derives `clap::Args`: `file` is the positional
/// `FILE`, the others flags, their help the first paragraph of each field's documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct TrustPolicyCheck {
    /// The trust policy document (JSON), as `aws iam get-role --query
    /// Role.AssumeRolePolicyDocument` prints it
    ///
    /// A path; at most 1 MiB is read.
    #[arg(value_name = "FILE", long_help = None)]
    pub file: PathBuf,
    /// The token audience [env: FLY_OIDC_AUDIENCE; default: sts.amazonaws.com]
    ///
    /// Not with `--claims`, whose file holds the audience.
    #[arg(long, value_name = "AUD", conflicts_with = "claims_file")]
    pub audience: Option<String>,
    /// Session tags are asked for: a live token is fetched with them, and the accepting statement must allow sts:TagSession
    ///
    /// As the provider's `--principal-tags` / `FLY_OIDC_AWS_PRINCIPAL_TAGS` asks; the
    /// statement must also allow `sts:TagSession` ([`trust_policy::evaluate`]).
    #[arg(long, long_help = None)]
    pub principal_tags: bool,
    /// What stands in for a live token.
    #[command(flatten)]
    pub stand_in: StandIn,
}

impl TrustPolicyCheck {
    /// Read the policy file, take the claims of the stand-in (a live token is fetched for
    /// the audience, resolved from `env` as the AWS provider resolves it), and evaluate the
    /// policy for them.
    ///
    /// Errors: [`CheckError::Usage`] for an unreadable or malformed file, [`CheckError::Setting`]
    /// for a blank or unreadable audience, [`CheckError::NoToken`] when a live token is needed
    /// and none can be fetched.
    pub async fn run(&self, client: ClientFn<'_>, env: &Env) -> Result<PolicyReport, CheckError> {
        let shown = self.file.display();
        let bytes = fly_oidc::fs::read_file_capped(&self.file, MAX_POLICY_FILE)
            .map_err(|e| CheckError::Usage(format!("cannot read the policy {shown}: {e}")))?;
        let policy = trust_policy::parse_policy(&String::from_utf8_lossy(&bytes))
            .map_err(|e| CheckError::Usage(format!("{shown}: {e}")))?;
        // As the AWS provider resolves it.
        let audience = fly_oidc_aws::resolve_audience(self.audience.clone(), env)
            .map_err(CheckError::Setting)?;
        let options = TokenOptions::default().aws_principal_tags(self.principal_tags);
        let claims = self
            .stand_in
            .claims(client, Some(&audience), options)
            .await?;
        trust_policy::evaluate(&policy, &claims, self.principal_tags)
            .map_err(|e| CheckError::Usage(format!("{shown}: {e}")))
    }
}

/// The options of an attribute-condition check, as given (what `fly-oidc gcp check-condition`
/// takes as arguments): would the condition `expr`, under the attribute mapping, accept the
/// token of `stand_in`?
///
/// `ConditionCheck` derives `clap::Args`: `expr` is the positional
/// `EXPR`, the others flags, their help the first paragraph of each field's documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct ConditionCheck {
    /// The attribute condition (CEL), such as "assertion.sub.startsWith('acme:my-app:')"
    ///
    /// At most 4,096 characters, 32 levels of nesting and 256 operators.
    #[arg(value_name = "EXPR", long_help = None)]
    pub expr: String,
    /// The provider's attribute mapping.
    #[arg(long, value_name = "MAPPING", default_value = DEFAULT_ATTRIBUTE_MAPPING)]
    pub attribute_mapping: Option<String>,
    /// What stands in for a live token.
    #[command(flatten)]
    pub stand_in: StandIn,
}

impl ConditionCheck {
    /// Check the mapping and the condition, take the claims of the stand-in (a live token
    /// with the client's audience), and evaluate the condition for them.
    ///
    /// Errors: [`CheckError::Usage`] for a malformed mapping or condition,
    /// [`CheckError::NoToken`] when a live token is needed and none can be fetched.
    pub async fn run(&self, client: ClientFn<'_>) -> Result<ConditionReport, CheckError> {
        let usage = |e: SubjectError| CheckError::Usage(e.to_string());
        let mapping = self
            .attribute_mapping
            .as_deref()
            .unwrap_or(DEFAULT_ATTRIBUTE_MAPPING);
        let mapping = AttributeMapping::parse(mapping).map_err(usage)?;
        condition::compile_condition(&self.expr).map_err(usage)?;
        let options = TokenOptions::default();
        let claims = self.stand_in.claims(client, None, options).await?;
        condition::evaluate(&self.expr, &mapping, &claims).map_err(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that must not be made (the stand-in needs no live token).
    fn no_client() -> Result<FlyOidcClient, BuildError> {
        panic!("no live token should be needed")
    }

    /// Org `acme` and app `web` stand in for a token.
    fn acme_web() -> StandIn {
        StandIn {
            org: Some("acme".into()),
            app: Some("web".into()),
            ..StandIn::default()
        }
    }

    /// The message of a usage error (any other error fails the test).
    fn usage(err: CheckError) -> String {
        match err {
            CheckError::Usage(message) => message,
            other => panic!("not a usage error: {other:?}"),
        }
    }

    #[tokio::test]
    async fn org_and_app_stand_in_for_a_token_and_bad_ones_are_usage_errors() {
        let stand_in = acme_web();
        let claims = stand_in
            .claims(&no_client, Some("aud"), TokenOptions::default())
            .await
            .unwrap();
        assert_eq!(claims.sub.as_deref(), Some("acme:web:example-machine"));
        let (org, app) = org_app(&no_client, Some("acme".into()), None, false)
            .await
            .unwrap();
        assert_eq!((org.as_str(), app), ("acme", None));
        let err = org_app(&no_client, Some("personal".into()), None, true).await;
        assert!(matches!(err, Err(CheckError::Usage(m)) if m.contains("personal")));
        let missing = StandIn {
            claims_file: Some("/nonexistent/claims.json".into()),
            ..StandIn::default()
        };
        let err = missing
            .claims(&no_client, None, TokenOptions::default())
            .await
            .unwrap_err();
        let message = usage(err);
        assert!(
            message.starts_with("cannot read --claims /nonexistent/claims.json"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_condition_check_without_a_mapping_uses_the_one_gcp_setup_writes() {
        let stand_in = acme_web();
        let check = |expr: &str| ConditionCheck {
            expr: expr.into(),
            attribute_mapping: None,
            stand_in: stand_in.clone(),
        };
        let report = check("attribute.app == 'web'")
            .run(&no_client)
            .await
            .unwrap();
        assert_eq!(report.why(), None, "{report}");
        let report = check("attribute.app == 'api'")
            .run(&no_client)
            .await
            .unwrap();
        assert!(report.why().is_some(), "{report}");
        let policy = TrustPolicyCheck {
            file: "/nonexistent/policy.json".into(),
            audience: None,
            principal_tags: false,
            stand_in,
        };
        let message = usage(
            policy
                .run(&no_client, &Env::from_slice(&[]))
                .await
                .unwrap_err(),
        );
        assert!(
            message.starts_with("cannot read the policy /nonexistent/policy.json"),
            "{message}"
        );
    }
}
