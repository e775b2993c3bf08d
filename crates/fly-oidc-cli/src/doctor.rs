//! `fly-oidc doctor` (and the key check of `fly-oidc token --verify`): flags to clients, the
//! steps of `fly_oidc_setup::doctor`, and printing.

use crate::common::{CliError, Globals};
use clap::Args;
use fly_oidc::FlyToken;
use fly_oidc_setup::doctor::{self, Diagnosis, Report, Step};
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
    fn source(&self, globals: &Globals) -> KeySource {
        let allow = globals
            .env()
            .get(fly_oidc::ENV_ALLOW_INSECURE_HTTP)
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        KeySource {
            jwks_url: self.jwks_url.clone(),
            discovery_url: self.discovery_url.clone(),
            allow_insecure_http: allow,
        }
    }
}

#[allow(clippy::disallowed_methods)] // the CLI checks tokens against the real clock
fn now() -> SystemTime {
    SystemTime::now()
}

/// `token --verify`: the signature against the issuer's keys, then the time claims.
/// Returns a one-line summary for stderr.
pub async fn verify_token(
    globals: &Globals,
    keys: &KeyArgs,
    token: &FlyToken,
) -> Result<String, CliError> {
    let http = verify::http_client().map_err(|e| CliError::new("token verification", e))?;
    let verified = verify::verify_signature(token, &keys.source(globals), &http)
        .await
        .map_err(|e| CliError::new("token verification", e))?;
    verify::check_times(token, now())
        .map_err(|e| CliError::new("token verification", e.to_string()))?;
    Ok(format!(
        "verified: RS256 signature with key {:?} from {}; {}",
        verified.kid,
        verified.jwks_url,
        token.claims().trust_summary()
    ))
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

/// The flag of each builder setting in `doctor`, for invalid-setting steps.
const DOCTOR_FLAGS: &[(&str, &str)] = &[
    ("token_file", "--token-file"),
    ("socket", "--socket"),
    ("api_url", "--api-url"),
    ("role_arn", "--aws-role-arn"),
    ("audience", "--aws-audience"),
    ("duration", "--aws-duration-seconds"),
    ("region", "--aws-region"),
    ("endpoint_url", "--aws-sts-endpoint"),
    ("provider", "--gcp-provider"),
    ("service_account", "--gcp-service-account"),
    ("sts_url", "--gcp-sts-url"),
    ("iam_url", "--gcp-iam-url"),
];

pub async fn run(globals: &Globals, args: DoctorArgs) -> Result<(), CliError> {
    let report = diagnose(globals, &args).await;
    let text = if args.json {
        let mut text = report.to_json().to_string();
        text.push('\n');
        text
    } else {
        report.to_string()
    };
    crate::setup::print_stdout(&fly_oidc::redact_jwts(&text))?;
    if report.ok() {
        Ok(())
    } else {
        let failed: Vec<&str> = report
            .steps
            .iter()
            .filter(|s| !s.ok)
            .map(|s| s.name.as_str())
            .collect();
        Err(CliError::new(
            "doctor",
            format!("failing steps: {}", failed.join(", ")),
        ))
    }
}

async fn diagnose(globals: &Globals, args: &DoctorArgs) -> Report {
    let client = match globals.fly_client_with(|b| {
        b.timeout(doctor::TIMEOUT)
            .connect_timeout(doctor::CONNECT_TIMEOUT)
    }) {
        Ok(client) => client,
        Err(err) => {
            let step = match err.as_build_error() {
                Some(e) => doctor::setting_step("token source", e, DOCTOR_FLAGS),
                None => Step::fail("token source", err.line(), "fix the token source settings"),
            };
            return Report { steps: vec![step] };
        }
    };
    let aws = || {
        let mut builder = fly_oidc_aws::FlyOidcCredentialsProvider::builder();
        if let Some(aud) = &args.aws_audience {
            builder = builder.audience(aud);
        }
        if let Some(secs) = args.aws_duration_seconds {
            builder = builder.duration(Duration::from_secs(secs.into()));
        }
        if let Some(region) = &args.aws_region {
            builder = builder.region(region);
        }
        if let Some(url) = &args.aws_sts_endpoint {
            builder = builder.endpoint_url(url);
        }
        builder
    };
    let mut gcp = fly_oidc_gcp::GcpTokenProvider::builder();
    if let Some(p) = &args.gcp_provider {
        gcp = gcp.provider(p);
    }
    if let Some(url) = &args.gcp_sts_url {
        gcp = gcp.sts_url(url);
    }
    if let Some(url) = &args.gcp_iam_url {
        gcp = gcp.iam_url(url);
    }
    doctor::diagnose(Diagnosis {
        client,
        env: globals.env(),
        now: now(),
        keys: args.keys.source(globals),
        offline: args.offline,
        aws_role_arns: args.aws_role_arns.clone(),
        aws: &aws,
        gcp,
        gcp_required: args.gcp_provider.is_some(),
        gcp_service_account: args.gcp_service_account.clone(),
        setting_names: DOCTOR_FLAGS,
    })
    .await
}
