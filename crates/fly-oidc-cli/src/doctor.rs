//! `fly-oidc doctor` (and the key check of `fly-oidc token --verify`): flags to clients, the
//! steps of `crate::setup::doctor`, and printing.

use crate::common::{CliError, Globals};
use crate::options::serve::CloudOptions;
use crate::setup::doctor::DoctorOptions;
use crate::setup::verify::{self, KeySource};
use clap::Args;
use fly_oidc::FlyToken;
use std::time::SystemTime;

/// Where the issuer's keys come from (`token --verify` and `doctor`).
#[derive(Clone, Debug, Default, Args)]
pub struct KeyArgs {
    /// Verify with the JWKS at this URL instead of discovering it from the token's iss
    #[arg(long, value_name = "URL")]
    jwks_url: Option<String>,
    /// The OpenID discovery document [default: <iss>/.well-known/openid-configuration]
    #[arg(long, value_name = "URL", conflicts_with = "jwks_url")]
    discovery_url: Option<String>,
}

impl KeyArgs {
    /// Where the keys come from; a URL flag that is not an endpoint URL is an invalid setting
    /// (plain `http` only to loopback, unless `FLY_OIDC_ALLOW_INSECURE_HTTP`).
    pub fn source(&self, globals: &Globals) -> Result<KeySource, CliError> {
        let (jwks_url, discovery_url) = (self.jwks_url.clone(), self.discovery_url.clone());
        Ok(KeySource::new(jwks_url, discovery_url, &globals.env())?)
    }
}

/// The real clock's time: the CLI checks tokens against it.
fn now() -> SystemTime {
    use fly_oidc::time::TimeSource as _;
    fly_oidc::time::SystemTimeSource.now()
}

/// `token --verify`: the signature, then the time claims; a one-line summary for stderr.
pub async fn verify_token(
    globals: &Globals,
    keys: &KeySource,
    token: &FlyToken,
) -> Result<String, CliError> {
    verify::verify_token(token, keys, &globals.env(), now())
        .await
        .map_err(|e| CliError::new("token verification", e))
}

/// Flags of `fly-oidc doctor`. The per-cloud flags are `serve`'s and `exec`'s
/// ([`CloudOptions`]): doctor tries the providers those commands build; three of their help
/// texts are reworded for a diagnosis.
#[derive(Debug, Args)]
#[command(
    mut_arg("aws_role_arns", |a| a.help("An AWS role to try (repeatable) [env: AWS_ROLE_ARN]")),
    mut_arg("aws_region", |a| a.help("The STS region [env: AWS_REGION, AWS_DEFAULT_REGION]")),
    mut_arg("gcp_provider", |a| {
        a.help("The Google workload identity pool provider [env: FLY_OIDC_GCP_PROVIDER]")
    })
)]
pub struct DoctorArgs {
    #[command(flatten)]
    cloud: CloudOptions,
    #[command(flatten)]
    keys: KeyArgs,
    /// Skip the signature check (no network to the issuer); the other steps still run
    #[arg(long)]
    offline: bool,
    /// Print {"ok":..,"steps":[{"name","ok","detail","fix"}]} instead of lines
    #[arg(long)]
    json: bool,
}

impl DoctorArgs {
    /// The flags, each onto its builder setting (the AWS ones in [`CloudOptions::aws_builder`]).
    fn options(&self, globals: &Globals) -> Result<DoctorOptions, CliError> {
        let cloud = &self.cloud;
        Ok(DoctorOptions {
            keys: self.keys.source(globals)?,
            aws_role_arns: cloud.aws_role_arns.clone(),
            gcp: cloud.gcp_builder(),
            gcp_required: cloud.gcp_provider.is_some(),
            gcp_service_account: cloud.gcp_service_account.clone(),
            offline: self.offline,
        })
    }
}

pub async fn run(globals: &Globals, args: DoctorArgs) -> Result<(), CliError> {
    let (fly, aws) = (globals.fly_builder(), || args.cloud.aws_builder());
    let options = args.options(globals)?;
    let report = options.diagnose(fly, &aws, globals.env(), now()).await;
    let text = match args.json {
        true => report.to_json().to_string() + "\n",
        false => report.to_string(),
    };
    crate::common::print_stdout(&[&fly_oidc::redact_jwts(&text)])?;
    match report.failing().join(", ") {
        failed if failed.is_empty() => Ok(()),
        // An invalid setting exits 2 here too, as in every command.
        failed => Err(CliError::new("doctor", format!("failing steps: {failed}"))
            .with_exit_code(if report.invalid_setting() { 2 } else { 1 })),
    }
}
