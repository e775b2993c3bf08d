//! `fly-oidc doctor` (and the key check of `fly-oidc token --verify`): flags to clients, the
//! steps of `fly_oidc_setup::doctor`, and printing.

use crate::common::{CliError, Globals, with};
use clap::Args;
use fly_oidc::FlyToken;
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_setup::doctor::DoctorOptions;
use fly_oidc_setup::verify::{self, KeySource};
use std::time::{Duration, SystemTime};

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

#[allow(clippy::disallowed_methods)] // the CLI checks tokens against the real clock
fn now() -> SystemTime {
    SystemTime::now()
}

/// `token --verify`: the signature, then the time claims; a one-line summary for stderr.
pub async fn verify_token(keys: &KeySource, token: &FlyToken) -> Result<String, CliError> {
    verify::verify_token(token, keys, now())
        .await
        .map_err(|e| CliError::new("token verification", e))
}

/// Flags of `fly-oidc doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// An AWS role to try (repeatable) [env: AWS_ROLE_ARN]
    #[arg(long = "aws-role-arn", value_name = "ARN")]
    aws_role_arns: Vec<String>,
    /// The Fly token audience for AWS [env: FLY_OIDC_AUDIENCE; default: sts.amazonaws.com]
    #[arg(long, value_name = "AUD")]
    aws_audience: Option<String>,
    /// The AWS session duration, 900..43200 [env: FLY_OIDC_AWS_DURATION_SECONDS]
    #[arg(long, value_name = "SECONDS")]
    aws_duration_seconds: Option<u32>,
    /// The STS region [env: AWS_REGION, AWS_DEFAULT_REGION]
    #[arg(long, value_name = "REGION")]
    aws_region: Option<String>,
    /// The STS endpoint [env: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    aws_sts_endpoint: Option<String>,
    /// The Google workload identity pool provider [env: FLY_OIDC_GCP_PROVIDER]
    #[arg(long, value_name = "PROVIDER")]
    gcp_provider: Option<String>,
    /// The Google service account to impersonate [env: FLY_OIDC_GCP_SERVICE_ACCOUNT]
    #[arg(long, value_name = "EMAIL")]
    gcp_service_account: Option<String>,
    /// The Google STS token endpoint [env: FLY_OIDC_GCP_STS_URL]
    #[arg(long, value_name = "URL")]
    gcp_sts_url: Option<String>,
    /// The Google IAM Credentials base URL [env: FLY_OIDC_GCP_IAM_URL]
    #[arg(long, value_name = "URL")]
    gcp_iam_url: Option<String>,
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
    /// The flags, each onto its builder setting.
    fn options(&self, globals: &Globals) -> Result<DoctorOptions, CliError> {
        let gcp = GcpTokenProvider::builder();
        let gcp = with(gcp, self.gcp_provider.as_ref(), |b, v| b.provider(v));
        let gcp = with(gcp, self.gcp_sts_url.as_ref(), |b, v| b.sts_url(v));
        Ok(DoctorOptions {
            keys: self.keys.source(globals)?,
            aws_role_arns: self.aws_role_arns.clone(),
            gcp: with(gcp, self.gcp_iam_url.as_ref(), |b, v| b.iam_url(v)),
            gcp_required: self.gcp_provider.is_some(),
            gcp_service_account: self.gcp_service_account.clone(),
            offline: self.offline,
        })
    }

    /// An AWS provider builder with the AWS flags, without a role.
    fn aws(&self) -> fly_oidc_aws::Builder {
        let aws = FlyOidcCredentialsProvider::builder();
        let aws = with(aws, self.aws_audience.as_ref(), |b, v| b.audience(v));
        let duration = self
            .aws_duration_seconds
            .map(|s| Duration::from_secs(s.into()));
        let aws = with(aws, duration, |b, v| b.duration(v));
        let aws = with(aws, self.aws_region.as_ref(), |b, v| b.region(v));
        with(aws, self.aws_sts_endpoint.as_ref(), |b, v| {
            b.endpoint_url(v)
        })
    }
}

pub async fn run(globals: &Globals, args: DoctorArgs) -> Result<(), CliError> {
    let names = |method: &str| crate::common::flag(method, true);
    let (fly, aws) = (globals.fly_builder(), || args.aws());
    let options = args.options(globals)?;
    let report = options
        .diagnose(fly, &aws, globals.env(), now(), &names)
        .await;
    let text = match args.json {
        true => report.to_json().to_string() + "\n",
        false => report.to_string(),
    };
    crate::common::print_stdout(&[&fly_oidc::redact_jwts(&text)])?;
    match report.failing().join(", ") {
        failed if failed.is_empty() => Ok(()),
        failed => Err(CliError::new("doctor", format!("failing steps: {failed}"))),
    }
}
