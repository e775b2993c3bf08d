//! `fly-oidc aws setup`, `aws check-trust-policy`, `gcp setup` and `gcp check-condition`:
//! their options are `fly_oidc_setup`'s (flattened), and this module prints.

use crate::common::{CliError, Globals, print_stdout};
use fly_oidc_setup::check::{CheckError, EXIT_NO_TOKEN};

/// Flags of `fly-oidc aws setup`.
pub use fly_oidc_setup::aws_setup::AwsSetupOptions as AwsSetupArgs;
/// Flags of `fly-oidc gcp check-condition`.
pub use fly_oidc_setup::check::ConditionCheck as CheckConditionArgs;
/// Flags of `fly-oidc aws check-trust-policy`.
pub use fly_oidc_setup::check::TrustPolicyCheck as CheckTrustPolicyArgs;
/// Flags of `fly-oidc gcp setup`.
pub use fly_oidc_setup::gcp_setup::GcpSetupOptions as GcpSetupArgs;

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

pub async fn aws_setup(globals: &Globals, args: AwsSetupArgs) -> Result<(), CliError> {
    let out = args.render(&|| globals.fly_builder().build()).await?;
    if let Some(warning) = out.warning {
        crate::common::stderr_line(format_args!("fly-oidc: warning: {warning}"));
    }
    print_stdout(&[&out.text])
}

pub async fn check_trust_policy(
    globals: &Globals,
    args: CheckTrustPolicyArgs,
) -> Result<(), CliError> {
    let report = args.run(&|| globals.fly_builder().build()).await?;
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
