//! `fly-oidc aws setup`, `aws check-trust-policy`, `gcp setup` and `gcp check-condition`:
//! flags to `fly_oidc_setup`, and printing.

use crate::common::{CliError, Globals, print_stdout};
use clap::{Args, ValueEnum};
use fly_oidc_setup::aws_setup::{AwsSetup, DEFAULT_AWS_AUDIENCE};
use fly_oidc_setup::check::{self, CheckError, EXIT_NO_TOKEN};
use fly_oidc_setup::gcp_setup::{DEFAULT_ATTRIBUTE_MAPPING, GcpSetup};
use std::path::PathBuf;

impl From<CheckError> for CliError {
    fn from(err: CheckError) -> Self {
        match err {
            CheckError::Usage(message) => CliError::usage(message),
            CheckError::Setting(e) => CliError::setting(e),
            CheckError::NoToken(e) => CliError::new("Fly token", e).with_exit_code(EXIT_NO_TOKEN),
        }
    }
}

/// Print a check's `report`; when it says `why` the token is rejected, the command fails
/// (exit 1) at `step`.
fn verdict(
    report: &dyn std::fmt::Display,
    why: Option<impl Into<String>>,
    step: &'static str,
) -> Result<(), CliError> {
    print_stdout(&[&report.to_string()])?;
    match why {
        None => Ok(()),
        Some(why) => Err(CliError::new(step, why.into())),
    }
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
    /// The IAM role to create or update (required)
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

pub async fn aws_setup(globals: &Globals, args: AwsSetupArgs) -> Result<(), CliError> {
    let client = || globals.fly_builder().build();
    let (org, app) = check::org_app(&client, args.org, args.app, args.sub.is_none()).await?;
    let setup = AwsSetup::new(
        &args.role_name,
        args.account_id.as_deref(),
        &org,
        app.as_deref().filter(|_| args.sub.is_none()),
        args.sub.as_deref(),
        Some(&args.audience),
        args.max_session_duration,
    )
    .map_err(CheckError::from)?;
    let text = match args.format {
        AwsFormat::Commands => setup.commands(),
        AwsFormat::Json => {
            if let Some(warning) = setup.trust_policy_warning() {
                crate::common::stderr_line(format_args!("fly-oidc: warning: {warning}"));
            }
            format!("{:#}\n", setup.trust_policy())
        }
        AwsFormat::Terraform => setup.terraform(),
    };
    print_stdout(&[&text])
}

/// What stands in for a live token in the checkers.
#[derive(Debug, Args)]
pub struct StandIn {
    /// Use these claims instead of a live token: the JSON of `fly-oidc token --claims --audience
    /// AUD`, AUD the cloud's audience (`sts.amazonaws.com` for AWS, the provider's
    /// `https://iam.googleapis.com/...` for Google)
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
    fn lib(&self) -> check::StandIn {
        check::StandIn {
            claims_file: self.claims.clone(),
            org: self.org.clone(),
            app: self.app.clone(),
            machine: self.machine.clone(),
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
    let client = || globals.fly_builder().build();
    let stand_in = args.stand_in.lib();
    let report =
        check::check_trust_policy(&args.file, args.audience.as_deref(), &stand_in, &client).await?;
    verdict(&report, report.why(), "trust policy check")
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
    let client = || globals.fly_builder().build();
    let (org, app) = check::org_app(&client, args.org, args.app, false).await?;
    let setup = GcpSetup::new(
        &args.project_number,
        args.project.as_deref(),
        &args.pool,
        &args.provider,
        &org,
        app.as_deref(),
        args.service_account.as_deref(),
    )
    .map_err(CheckError::from)?;
    let text = match args.format {
        GcpFormat::Commands => setup.commands(),
        GcpFormat::Terraform => setup.terraform(),
    };
    print_stdout(&[&text])
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
    let client = || globals.fly_builder().build();
    let stand_in = args.stand_in.lib();
    let report =
        check::check_condition(&args.expr, &args.attribute_mapping, &stand_in, &client).await?;
    verdict(&report, report.why(), "attribute condition check")
}
