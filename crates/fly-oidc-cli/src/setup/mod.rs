//! Set-up and diagnosis: what `token --verify`, `aws setup`, `aws check-trust-policy`,
//! `gcp setup`, `gcp check-condition` and `doctor` do. Part of the binary (no library user
//! needs it), so the provider crates' users never compile the CEL interpreter it needs.
//!
//! - [`verify`]: a token's signature against its issuer's JWKS (OpenID Connect Discovery
//!   from `iss`, or a JWKS URL), and its time claims.
//! - [`subject`]: the org and app the cloud side trusts, from flags or saved claims.
//! - [`aws_setup`] and [`trust_policy`]: the IAM OIDC provider and role; would a trust policy
//!   accept a token?
//! - [`check`]: what stands in for a live token, the set-up's org and app, and the
//!   `check-*` commands up to their report.
//! - [`doctor`]: the steps of `fly-oidc doctor` and their report (text and JSON).
//! - [`gcp_setup`] and [`condition`]: the workload identity pool and provider; would an
//!   attribute condition accept a token?
//!
//! The options of the set-up and the checks ([`aws_setup::AwsSetupOptions`],
//! [`gcp_setup::GcpSetupOptions`], [`check::TrustPolicyCheck`], [`check::ConditionCheck`],
//! [`check::StandIn`]) are the commands' flags (`clap::Args`); this module prints.

pub mod aws_setup;
pub mod check;
pub mod condition;
pub mod doctor;
pub mod gcp_setup;
pub mod subject;
pub mod trust_policy;
pub mod verify;

use crate::common::{CliError, Globals, print_stdout};
use check::{CheckError, EXIT_NO_TOKEN};

/// Flags of `fly-oidc aws setup`.
pub use aws_setup::AwsSetupOptions as AwsSetupArgs;
/// Flags of `fly-oidc gcp check-condition`.
pub use check::ConditionCheck as CheckConditionArgs;
/// Flags of `fly-oidc aws check-trust-policy`.
pub use check::TrustPolicyCheck as CheckTrustPolicyArgs;
/// Flags of `fly-oidc gcp setup`.
pub use gcp_setup::GcpSetupOptions as GcpSetupArgs;

impl From<CheckError> for CliError {
    fn from(err: CheckError) -> Self {
        match err {
            CheckError::Usage(message) => CliError::usage(message),
            CheckError::Setting(e) => CliError::setting(e),
            CheckError::NoToken(e) => CliError::fly_token(e).with_exit_code(EXIT_NO_TOKEN),
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

pub async fn aws_setup(globals: &Globals, args: AwsSetupArgs) -> Result<(), CliError> {
    let out = args.render(&|| globals.fly_builder().build()).await?;
    for warning in &out.warnings {
        crate::common::stderr_line(format_args!("fly-oidc: warning: {warning}"));
    }
    print_stdout(&[&out.text])
}

pub async fn check_trust_policy(
    globals: &Globals,
    args: CheckTrustPolicyArgs,
) -> Result<(), CliError> {
    let report = args
        .run(&|| globals.fly_builder().build(), &globals.env())
        .await?;
    verdict(&report, report.why(), "trust policy check")
}

pub async fn gcp_setup(globals: &Globals, args: GcpSetupArgs) -> Result<(), CliError> {
    let text = args.render(&|| globals.fly_builder().build()).await?;
    print_stdout(&[&text])
}

pub async fn check_condition(globals: &Globals, args: CheckConditionArgs) -> Result<(), CliError> {
    let report = args.run(&|| globals.fly_builder().build()).await?;
    verdict(&report, report.why(), "attribute condition check")
}
