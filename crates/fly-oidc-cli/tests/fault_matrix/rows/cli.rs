//! The binary's configuration and usage errors (every other error path of the CLI). Over
//! HTTP, so the Fly API token is in every child's environment (and in the scan).

use super::{EXIT_2, google};
use crate::row::{Inject, Row, Source, Via, row};

use crate::row::Counter::{Fly, Sts};
use Via::{CliAws, CliGcpConfig, CliGcpExec, CliGcpToken, CliToken};

/// A row running `fly-oidc --verbose <args>` with the extra variables `env`.
fn cli(
    via: Via,
    fault: &'static str,
    args: &'static str,
    env: &'static [(&'static str, &'static str)],
) -> Row {
    row(Source::Http, via, fault, Inject::Cli { args, env })
}

// The arguments (whitespace-separated; see `Inject::Cli` for the placeholders).
/// `aws credential-process` for the fake STS.
const AWS: &str = "aws credential-process --role-arn {role} --sts-endpoint {sts}";
const AWS_NO_ROLE: &str = "aws credential-process --sts-endpoint {sts}";
const AWS_BAD_ROLE: &str = "aws credential-process --role-arn my-role --sts-endpoint {sts}";
const AWS_SHORT: &str =
    "aws credential-process --role-arn {role} --sts-endpoint {sts} --duration-seconds 100";
const AWS_NO_POLICY: &str = "aws credential-process --role-arn {role} --sts-endpoint {sts} --policy @/nonexistent/policy.json";
const AWS_BAD_POLICY: &str =
    "aws credential-process --role-arn {role} --sts-endpoint {sts} --policy {not-json";
const AWS_HTTP: &str =
    "aws credential-process --role-arn {role} --sts-endpoint http://sts.example.com";
/// `gcp executable` with an audience.
const EXEC: &str = "gcp executable --audience https://iam.googleapis.com/x";
const GCP_TOKEN: &str = "gcp access-token --sts-url {google_sts} --iam-url {google_iam}";
const GCP_BAD_SA: &str = "gcp access-token --provider {provider} --service-account not-an-email --sts-url {google_sts} --iam-url {google_iam}";
const GCP_HTTP: &str =
    "gcp access-token --provider {provider} --sts-url http://sts.example.com/v1/token";
const GCP_CONFIG_OUT: &str =
    "gcp credential-config --provider {provider} --output /nonexistent/dir/credentials.json";

#[rustfmt::skip]
pub fn rows() -> Vec<Row> {
    vec![
        cli(CliToken, "unknown flag", "token --bogus", &[]).fails(EXIT_2, &["unexpected argument '--bogus'"]),
        cli(CliAws, "no role", AWS_NO_ROLE, &[]).fails(EXIT_2, &["no role to assume", "--role-arn", "AWS_ROLE_ARN"]).attempts(Fly, 0),
        cli(CliAws, "invalid role ARN", AWS_BAD_ROLE, &[])
            .fails(EXIT_2, &["invalid role ARN \"my-role\"", "arn:aws:iam::<12-digit account id>:role/<name>"]).attempts(Fly, 0),
        cli(CliAws, "duration out of range", AWS_SHORT, &[]).fails(EXIT_2, &["from 900 to 43200"]).attempts(Fly, 0),
        cli(CliAws, "FLY_OIDC_AWS_DURATION_SECONDS not a number", AWS, &[("FLY_OIDC_AWS_DURATION_SECONDS", "1h")])
            .fails(EXIT_2, &["\"1h\" is not a whole number of seconds (from FLY_OIDC_AWS_DURATION_SECONDS)"]),
        cli(CliAws, "policy file missing", AWS_NO_POLICY, &[])
            .fails(EXIT_2, &["cannot read the session policy file /nonexistent/policy.json", "(from --policy)"]),
        cli(CliAws, "policy not JSON", AWS_BAD_POLICY, &[])
            .fails(EXIT_2, &["the session policy is not valid JSON", "give an IAM policy document"]).attempts(Sts, 0),
        cli(CliAws, "plain-HTTP STS endpoint that is not loopback", AWS_HTTP, &[]).fails(EXIT_2, &["FLY_OIDC_ALLOW_INSECURE_HTTP"]),
        cli(CliAws, "FLY_OIDC_AWS_MIN_TTL invalid", AWS, &[("FLY_OIDC_AWS_MIN_TTL", "soon")])
            .fails(EXIT_2, &["FLY_OIDC_AWS_MIN_TTL", "expected seconds, or a number followed by s, m or h"]),
        cli(CliGcpExec, "unsupported subject token type", EXEC, &[("GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE", "urn:ietf:params:oauth:token-type:saml2")])
            .fails(google("UNSUPPORTED_TOKEN_TYPE"), &["saml2"]).attempts(Fly, 0),
        cli(CliGcpExec, "interactive mode", EXEC, &[("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "1")])
            .fails(google("INTERACTIVE_UNSUPPORTED"), &["interactive mode is not supported"]),
        cli(CliGcpExec, "no audience", "gcp executable", &[])
            .fails(google("MISSING_AUDIENCE"), &["GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", "--audience", "FLY_OIDC_GCP_PROVIDER"]).attempts(Fly, 0),
        cli(CliGcpExec, "invalid FLY_OIDC_GCP_PROVIDER", "gcp executable", &[("FLY_OIDC_GCP_PROVIDER", "my-pool/my-provider")])
            .fails(google("INVALID_CONFIGURATION"), &["workloadIdentityPools"]),
        cli(CliGcpExec, "output file not writable (after a token was minted)", EXEC, &[("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", "/nonexistent/dir/out.json")])
            .fails(google("OUTPUT_FILE_UNWRITABLE"), &["could not write GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", "output_file"]).attempts(Fly, 1),
        cli(CliGcpToken, "no provider", GCP_TOKEN, &[])
            .fails(EXIT_2, &["invalid setting", "set --provider or FLY_OIDC_GCP_PROVIDER"]).attempts(Fly, 0),
        cli(CliGcpToken, "invalid service account", GCP_BAD_SA, &[])
            .fails(EXIT_2, &["invalid service account", "name@project.iam.gserviceaccount.com", "(from --service-account)"]),
        cli(CliGcpToken, "plain-HTTP STS URL that is not loopback", GCP_HTTP, &[]).fails(EXIT_2, &["FLY_OIDC_ALLOW_INSECURE_HTTP", "(from --sts-url)"]),
        cli(CliGcpConfig, "no provider", "gcp credential-config", &[]).fails(EXIT_2, &["FLY_OIDC_GCP_PROVIDER"]),
        cli(CliGcpConfig, "output file not writable", GCP_CONFIG_OUT, &[]).fails(EXIT_2, &["cannot write the credential configuration", "No such file or directory", "(from --output)"]),
    ]
}
