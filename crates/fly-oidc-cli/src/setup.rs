//! `fly-oidc aws setup`, `aws check-trust-policy`, `gcp setup` and `gcp check-condition`:
//! flags to `fly_oidc_setup`, and printing.

use crate::common::{CliError, Globals};
use clap::{Args, ValueEnum};
use fly_oidc::FlyClaims;
use fly_oidc_setup::aws_setup::{AwsSetup, DEFAULT_AWS_AUDIENCE};
use fly_oidc_setup::condition::{self, AttributeMapping};
use fly_oidc_setup::gcp_setup::{DEFAULT_ATTRIBUTE_MAPPING, GcpSetup};
use fly_oidc_setup::subject::{self, SubjectError};
use fly_oidc_setup::trust_policy;
use std::io::Write;
use std::path::PathBuf;

/// Exit status of a check that found no token.
const EXIT_NO_TOKEN: u8 = 3;

fn subject_error(err: SubjectError) -> CliError {
    CliError::usage(err.to_string())
}

pub fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::new("writing to stdout", e))
}

/// Output formats of `aws setup`.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum AwsFormat {
    /// AWS CLI commands (a shell script that can be run again)
    #[default]
    Commands,
    /// The trust policy document alone
    Json,
    /// Terraform resources
    Terraform,
}

/// Flags of `fly-oidc aws setup`.
#[derive(Debug, Args)]
pub struct AwsSetupArgs {
    /// The IAM role to create or update
    #[arg(long, value_name = "NAME")]
    role_name: String,
    /// The 12-digit AWS account id [default: looked up with `aws sts get-caller-identity`]
    #[arg(long, value_name = "ID")]
    account_id: Option<String>,
    /// The Fly org slug (the issuer is https://oidc.fly.io/<org>) [default: from a Fly token's iss]
    #[arg(long, value_name = "SLUG")]
    org: Option<String>,
    /// The Fly app whose tokens the role trusts (sub <org>:<app>:*) [default: from a Fly token's sub]
    #[arg(long, value_name = "APP", conflicts_with = "sub")]
    app: Option<String>,
    /// A sub pattern (StringLike) instead of <org>:<app>:*
    #[arg(long, value_name = "PATTERN")]
    sub: Option<String>,
    /// The token audience the role trusts (and the OIDC provider's client id)
    #[arg(long, value_name = "AUD", default_value = DEFAULT_AWS_AUDIENCE)]
    audience: String,
    /// The role's maximum session duration, 3600..=43200 seconds
    #[arg(long, value_name = "SECONDS")]
    max_session_duration: Option<u32>,
    /// What to print
    #[arg(long, value_enum, default_value_t)]
    format: AwsFormat,
}

/// Org and app from the flags, else from a live token (on a Machine), else an error naming --org.
async fn org_app(
    globals: &Globals,
    org: Option<String>,
    app: Option<String>,
    need_app: bool,
) -> Result<(String, Option<String>), CliError> {
    if let Some(org) = &org {
        // Refuse `personal` before looking for a token.
        subject::check_org(org).map_err(subject_error)?;
        if app.is_some() || !need_app {
            return Ok((org.clone(), app));
        }
    }
    let token = match globals.fly_client() {
        Ok(client) => client.fetch_default_token().await.ok(),
        Err(_) => None,
    };
    let Some(token) = token else {
        return Err(CliError::usage(if org.is_none() {
            "no --org, and no Fly token to read it from: pass --org SLUG and --app APP (the org slug is in the iss of `fly-oidc token --claims`: https://oidc.fly.io/<slug>)"
        } else {
            "no --app, and no Fly token to read it from: pass --app APP"
        }));
    };
    let claims = token.claims();
    let org = match org {
        Some(org) => org,
        None => claims.org_slug().map(str::to_owned).ok_or_else(|| {
            CliError::usage("the Fly token's iss is not https://oidc.fly.io/<org>: pass --org")
        })?,
    };
    let app = app.or_else(|| subject::app_of(claims).map(str::to_owned));
    Ok((org, app))
}

pub async fn aws_setup(globals: &Globals, args: AwsSetupArgs) -> Result<(), CliError> {
    let (org, app) = org_app(globals, args.org, args.app, args.sub.is_none()).await?;
    let setup = AwsSetup::new(
        &args.role_name,
        args.account_id.as_deref(),
        &org,
        if args.sub.is_some() {
            None
        } else {
            app.as_deref()
        },
        args.sub.as_deref(),
        Some(&args.audience),
        args.max_session_duration,
    )
    .map_err(subject_error)?;
    let text = match args.format {
        AwsFormat::Commands => setup.commands(),
        AwsFormat::Json => {
            if setup.account_id.is_none() {
                eprintln!(
                    "fly-oidc: warning: no --account-id: the policy's principal holds <ACCOUNT_ID>; replace it, or pass --account-id"
                );
            }
            let mut text = serde_json::to_string_pretty(&setup.trust_policy())
                .map_err(|e| CliError::new("writing the policy", e))?;
            text.push('\n');
            text
        }
        AwsFormat::Terraform => setup.terraform(),
    };
    print_stdout(&text)
}

/// What stands in for a live token in the checkers.
#[derive(Debug, Args)]
pub struct StandIn {
    /// Use these claims (the JSON of `fly-oidc token --claims`) instead of a live token
    #[arg(long, value_name = "FILE", conflicts_with_all = ["org", "app"])]
    claims: Option<PathBuf>,
    /// With --app: check a token of this org's app instead of a live token
    #[arg(long, value_name = "SLUG", requires = "app")]
    org: Option<String>,
    /// With --org: the app
    #[arg(long, value_name = "APP", requires = "org")]
    app: Option<String>,
    /// With --org and --app: the Machine name in sub [default: example-machine]
    #[arg(long, value_name = "NAME", requires = "org")]
    machine: Option<String>,
}

impl StandIn {
    /// The claims: from the file, the flags, or a live token fetched with `audience`.
    async fn claims(
        &self,
        globals: &Globals,
        audience: Option<&str>,
    ) -> Result<FlyClaims, CliError> {
        if let Some(path) = &self.claims {
            let bytes = fly_oidc::fs::read_file_capped(path, 64 * 1024).map_err(|e| {
                CliError::usage(format!("cannot read --claims {}: {e}", path.display()))
            })?;
            let text = String::from_utf8_lossy(&bytes);
            return subject::claims_from_json(&text).map_err(subject_error);
        }
        if let (Some(org), Some(app)) = (&self.org, &self.app) {
            return subject::stand_in_claims(org, app, self.machine.as_deref(), audience)
                .map_err(subject_error);
        }
        let client = globals.fly_client()?;
        let audience = audience
            .map(str::to_owned)
            .or_else(|| client.audience().map(str::to_owned));
        match client.fetch_token(audience.as_deref()).await {
            Ok(token) => Ok(token.claims().clone()),
            Err(e) => Err(CliError::new("Fly token", e).with_exit_code(EXIT_NO_TOKEN)),
        }
    }
}

/// Flags of `fly-oidc aws check-trust-policy`.
#[derive(Debug, Args)]
pub struct CheckTrustPolicyArgs {
    /// The trust policy document (JSON), as `aws iam get-role --query Role.AssumeRolePolicyDocument` prints it
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The token audience [env: FLY_OIDC_AUDIENCE; default: sts.amazonaws.com]
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    #[command(flatten)]
    stand_in: StandIn,
}

pub async fn check_trust_policy(
    globals: &Globals,
    args: CheckTrustPolicyArgs,
) -> Result<(), CliError> {
    let bytes = fly_oidc::fs::read_file_capped(&args.file, 1024 * 1024).map_err(|e| {
        CliError::usage(format!(
            "cannot read the policy {}: {e}",
            args.file.display()
        ))
    })?;
    let policy = trust_policy::parse_policy(&String::from_utf8_lossy(&bytes))
        .map_err(|e| CliError::usage(format!("{}: {e}", args.file.display())))?;
    // The AWS audience rules: --audience, FLY_OIDC_AUDIENCE, sts.amazonaws.com.
    let client_audience = globals
        .fly_client()
        .ok()
        .and_then(|c| c.audience().map(str::to_owned));
    let audience = args
        .audience
        .clone()
        .or(client_audience)
        .unwrap_or_else(|| DEFAULT_AWS_AUDIENCE.to_owned());
    let claims = args.stand_in.claims(globals, Some(&audience)).await?;
    let report = trust_policy::evaluate(&policy, &claims)
        .map_err(|e| CliError::usage(format!("{}: {e}", args.file.display())))?;
    print_stdout(&report.to_string())?;
    if report.accepted {
        Ok(())
    } else {
        Err(CliError::new(
            "trust policy check",
            "the policy rejects this token: fix the FAIL lines above",
        ))
    }
}

/// Output formats of `gcp setup`.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum GcpFormat {
    /// gcloud commands (a shell script that can be run again)
    #[default]
    Commands,
    /// Terraform resources
    Terraform,
}

/// Flags of `fly-oidc gcp setup`.
#[derive(Debug, Args)]
pub struct GcpSetupArgs {
    /// The project number (in resource names)
    #[arg(long, value_name = "N")]
    project_number: String,
    /// The project id for gcloud's --project [default: gcloud's default project]
    #[arg(long, value_name = "ID")]
    project: Option<String>,
    /// The workload identity pool id
    #[arg(long, value_name = "ID")]
    pool: String,
    /// The workload identity pool provider id
    #[arg(long, value_name = "ID")]
    provider: String,
    /// The Fly org slug [default: from a Fly token's iss]
    #[arg(long, value_name = "SLUG")]
    org: Option<String>,
    /// Limit the provider to this app [default: from a Fly token's sub when --org is not given]
    #[arg(long, value_name = "APP")]
    app: Option<String>,
    /// Let the app impersonate this service account (roles/iam.workloadIdentityUser)
    #[arg(long, value_name = "EMAIL")]
    service_account: Option<String>,
    /// What to print
    #[arg(long, value_enum, default_value_t)]
    format: GcpFormat,
}

pub async fn gcp_setup(globals: &Globals, args: GcpSetupArgs) -> Result<(), CliError> {
    let (org, app) = org_app(globals, args.org, args.app, false).await?;
    let setup = GcpSetup::new(
        &args.project_number,
        args.project.as_deref(),
        &args.pool,
        &args.provider,
        &org,
        app.as_deref(),
        args.service_account.as_deref(),
    )
    .map_err(subject_error)?;
    print_stdout(&match args.format {
        GcpFormat::Commands => setup.commands(),
        GcpFormat::Terraform => setup.terraform(),
    })
}

/// Flags of `fly-oidc gcp check-condition`.
#[derive(Debug, Args)]
pub struct CheckConditionArgs {
    /// The attribute condition (CEL), such as "assertion.sub.startsWith('acme:my-app:')"
    #[arg(value_name = "EXPR")]
    expr: String,
    /// The provider's attribute mapping
    #[arg(long, value_name = "MAPPING", default_value = DEFAULT_ATTRIBUTE_MAPPING)]
    attribute_mapping: String,
    #[command(flatten)]
    stand_in: StandIn,
}

pub async fn check_condition(globals: &Globals, args: CheckConditionArgs) -> Result<(), CliError> {
    let mapping = AttributeMapping::parse(&args.attribute_mapping)
        .map_err(|e| CliError::usage(e.to_string()))?;
    condition::compile_condition(&args.expr).map_err(|e| CliError::usage(e.to_string()))?;
    let claims = args.stand_in.claims(globals, None).await?;
    let report = condition::evaluate(&args.expr, &mapping, &claims)
        .map_err(|e| CliError::usage(e.to_string()))?;
    print_stdout(&report.to_string())?;
    if report.accepted {
        Ok(())
    } else {
        Err(CliError::new(
            "attribute condition check",
            format!("the condition is {} for this token", report.result),
        ))
    }
}
