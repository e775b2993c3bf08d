//! `fly-oidc token`.

use crate::common::{CliError, Globals};
use clap::Args;
use fly_oidc::time::{SystemTimeSource, TimeSource};

/// Flags of `fly-oidc token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The audience (`aud`) to request [env: FLY_OIDC_AUDIENCE; default: Fly's, https://fly.io/<org>]
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// Print the decoded (unverified) claims as JSON, plus expires_in_seconds, instead of the token
    #[arg(long)]
    claims: bool,
    /// Ask for AWS's session tags claim (https://aws.amazon.com/tags), as the AWS provider does with --principal-tags; with --claims, also list the tags on stderr [env: FLY_OIDC_AWS_PRINCIPAL_TAGS=1]
    #[arg(long)]
    aws_principal_tags: bool,
    /// Check the token's signature against the issuer's keys (JWKS) and its expiry first; exit 1 if it fails
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    keys: crate::doctor::KeyArgs,
}

pub async fn run(globals: &Globals, args: TokenArgs) -> Result<(), CliError> {
    let mut builder = globals.fly_builder();
    if let Some(audience) = args.audience {
        builder = builder.audience(audience);
    }
    if args.aws_principal_tags {
        builder = builder.aws_principal_tags(true);
    }
    let client = builder.build()?;
    // The key flags are checked before a token is fetched.
    let keys = match args.verify {
        true => Some(args.keys.source(globals)?),
        false => None,
    };
    let token = client
        .fetch_default_token()
        .await
        .map_err(CliError::fly_token)?;
    if let Some(keys) = keys {
        let summary = crate::doctor::verify_token(globals, &keys, &token).await?;
        crate::common::stderr_line(format_args!("fly-oidc: {summary}"));
    }
    if args.claims && client.default_options().wants_aws_principal_tags() {
        // The keys are Fly's and undocumented: show them, so a policy can name them.
        match token.claims().aws_session_tags() {
            Some(tags) => crate::common::stderr_line(format_args!(
                "fly-oidc: AWS session tags (aws:PrincipalTag/<key> in policies): {tags}"
            )),
            None => crate::common::stderr_line(format_args!(
                "fly-oidc: warning: AWS session tags were asked for, but the token has no {} claim",
                fly_oidc::AWS_TAGS_CLAIM
            )),
        }
    }
    let output = if args.claims {
        crate::setup::subject::claims_json(&token, SystemTimeSource.now())
            .map_err(|e| CliError::new("decoding claims", e))?
    } else {
        token.expose_jwt().to_owned()
    };
    crate::common::print_stdout(&[&output, "\n"])
}
