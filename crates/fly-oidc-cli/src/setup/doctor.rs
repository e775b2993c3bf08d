//! `fly-oidc doctor`: walk the chain from the token source to the cloud credentials, one
//! [`Step`] per link, each failing step with its fix.
//!
//! The steps, in order: token source, token (iss, sub, aud, expiry), signature against the
//! issuer's JWKS, clock skew, each AWS role (and, for a chained role, its second hop), the
//! Google exchange and impersonation. The
//! front end builds the clients (and turns an invalid setting into a failing step); the
//! functions here run one step each.

use crate::common::{one_line, refused_setting};
use crate::options::SetIf;
use crate::options::serve::aws_role_builders;
use crate::setup::verify::{self, KeySource, TimeFinding};
use fly_oidc::{BuildError, Env, FlyOidcClient, FlyToken, Naming, ProviderConfig, redact_jwts};
use serde_json::{Value, json};
use std::fmt;
use std::time::{Duration, SystemTime};

/// Clock skew beyond this many seconds fails the clock step.
const MAX_SKEW_SECONDS: i64 = 60;

/// One step of the diagnosis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What was checked, such as `token source` or `aws role arn:aws:iam::...`.
    pub name: String,
    /// Whether it passed (a skipped step passes).
    pub ok: bool,
    /// What was found (never a secret).
    pub detail: String,
    /// What to do, when it failed.
    pub fix: Option<String>,
    /// Whether it failed on an invalid setting (see [`setting_step`]): the front end exits as
    /// for any invalid setting (status 2 for the CLI).
    pub invalid_setting: bool,
}

impl Step {
    /// A passing step.
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            detail: redact_jwts(&detail.into()),
            fix: None,
            invalid_setting: false,
        }
    }

    /// The same step, failed on an invalid setting when `invalid` (see
    /// [`Report::invalid_setting`]).
    pub fn invalid_setting(self, invalid: bool) -> Self {
        Self {
            invalid_setting: invalid,
            ..self
        }
    }

    /// A failing step with its fix.
    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            ok: false,
            detail: redact_jwts(&detail.into()),
            fix: Some(redact_jwts(&fix.into())),
            invalid_setting: false,
        }
    }
}

/// Every step, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The steps run.
    pub steps: Vec<Step>,
    /// Whether the token was checked but no AWS role or Google provider was configured, so no
    /// cloud step ran: the summary says so, rather than a bare "all passed".
    pub no_cloud: bool,
}

impl Report {
    /// True when no step failed.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }

    /// Whether a step failed on an invalid setting.
    pub fn invalid_setting(&self) -> bool {
        self.steps.iter().any(|s| s.invalid_setting)
    }

    /// The names of the failing steps, in order.
    pub fn failing(&self) -> Vec<&str> {
        let failed = self.steps.iter().filter(|s| !s.ok);
        failed.map(|s| s.name.as_str()).collect()
    }

    /// `{"ok":bool,"steps":[{"name","ok","detail","fix"}]}`, `fix` null on passing steps.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "steps": self.steps.iter().map(|s| json!({
                "name": s.name,
                "ok": s.ok,
                "detail": s.detail,
                "fix": s.fix,
            })).collect::<Vec<_>>(),
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(
                f,
                "{} {}: {}",
                if step.ok { "ok  " } else { "FAIL" },
                step.name,
                one_line(&step.detail)
            )?;
            if let Some(fix) = &step.fix {
                writeln!(f, "     fix: {}", one_line(fix))?;
            }
        }
        let failed = self.steps.iter().filter(|s| !s.ok).count();
        if failed == 0 && self.no_cloud {
            writeln!(
                f,
                "all {} steps passed, but no cloud was checked: configure {}",
                self.steps.len(),
                crate::options::serve::a_cloud().render(NAMING)
            )
        } else if failed == 0 {
            writeln!(f, "all {} steps passed", self.steps.len())
        } else {
            writeln!(f, "{failed} of {} steps failed", self.steps.len())
        }
    }
}

/// The token-source step: where tokens come from; fails for a Machines API socket that
/// does not exist.
pub fn token_source(client: &FlyOidcClient) -> Step {
    let source = client.source();
    if let fly_oidc::TokenSource::Socket { path, is_default } = source
        && std::fs::symlink_metadata(path).is_err()
    {
        let fix = match *is_default {
            true => format!(
                "run on a Fly Machine; elsewhere {}",
                fly_oidc::not_on_fly_hint().render(NAMING)
            ),
            false => format!(
                "check the path ({}): on a Fly Machine it is /.fly/api",
                fly_oidc::SOCKET.render(NAMING)
            ),
        };
        let step = Step::fail("token source", format!("{source} does not exist"), fix);
        // A socket named by a setting is an invalid setting; the default one means "not on Fly".
        return step.invalid_setting(!*is_default);
    }
    Step::ok("token source", source.to_string())
}

/// The token step: fetch a token and check its claims and expiry. Returns the token for
/// the next steps.
pub async fn token(client: &FlyOidcClient, now: SystemTime) -> (Step, Option<FlyToken>) {
    let token = match client.fetch_default_token().await {
        Ok(token) => token,
        Err(e) => {
            let detail = format!("no token from {}: {}", client.source(), e.render(NAMING));
            // A token source that cannot be used as set (a token file that is a directory):
            // an invalid setting, with the message's own fix.
            let invalid = e.kind() == fly_oidc::ErrorKind::InvalidConfiguration;
            let fix = match invalid {
                true => "fix the token source setting named above and run doctor again".into(),
                false => format!(
                    "run on a Fly Machine (the Machines API at /.fly/api), or point the token file ({}) at a fresh token, or the Machines API's URL ({}) with its token ({})",
                    fly_oidc::TOKEN_FILE.render(NAMING),
                    fly_oidc::API_URL.render(NAMING),
                    fly_oidc::API_TOKEN.render(NAMING),
                ),
            };
            return (
                Step::fail("token", detail, fix).invalid_setting(invalid),
                None,
            );
        }
    };
    let claims = token.claims();
    let summary = claims.trust_summary();
    let step = match verify::check_times(&token, now) {
        _ if claims.org_slug().is_none() => Step::fail(
            "token",
            format!("{summary}: the issuer is not https://oidc.fly.io/<org>"),
            "use a token minted by Fly's Machines API",
        ),
        Ok(()) => {
            let left = claims
                .expires_at()
                .and_then(|exp| exp.duration_since(now).ok())
                .map_or(0, |d| d.as_secs());
            Step::ok("token", format!("{summary}, expires in {left} s"))
        }
        Err(finding) => {
            let fix = match finding {
                TimeFinding::Expired(_) => {
                    "fetch a fresh token: point --token-file at the file Fly's init rewrites (/.fly/oidc_token), or use the Machines API"
                }
                TimeFinding::NotYetValid(_) => "sync this machine's clock (NTP)",
                TimeFinding::NoExpiry => "use a token minted by Fly's Machines API",
            };
            Step::fail("token", format!("{summary}: {finding}"), fix)
        }
    };
    (step, Some(token))
}

/// The signature step. With `offline`, skipped (and passing) with a note.
pub async fn signature(
    token: &FlyToken,
    source: &KeySource,
    offline: bool,
    http: Option<&reqwest::Client>,
) -> Step {
    if offline {
        return Step::ok(
            "signature",
            "skipped (--offline): the signature was not checked against the issuer's keys",
        );
    }
    let Some(http) = http else {
        return Step::fail(
            "signature",
            "could not set up HTTP to fetch the issuer's keys",
            "retry, or pass --offline to skip this check",
        );
    };
    match verify::verify_signature(token, source, http).await {
        Ok(v) => Step::ok(
            "signature",
            format!(
                "RS256 signature verified with key {:?} from {}",
                v.kid, v.jwks_url
            ),
        ),
        Err(e) => {
            let fix = match &e {
                verify::VerifyError::Fetch { .. } | verify::VerifyError::BadUrl { .. } => {
                    "check the network to the issuer and the keys' URL (clouds fetch the same keys; for a private CA, its roots in SSL_CERT_FILE or SSL_CERT_DIR), give another with --jwks-url, or --offline to skip"
                }
                _ => {
                    "use a token minted by Fly's Machines API for this org; the clouds will refuse this one"
                }
            };
            Step::fail("signature", e.to_string(), fix)
        }
    }
}

/// The clock step: the skew between this machine and the issuer, from a fresh token's `iat`.
pub fn clock(token: &FlyToken, now: SystemTime) -> Step {
    match verify::clock_skew_seconds(token, now) {
        None => Step::ok("clock skew", "unknown (the token has no iat)"),
        Some(skew) if skew.abs() <= MAX_SKEW_SECONDS => Step::ok(
            "clock skew",
            format!("{skew:+} s between the token's iat and this clock"),
        ),
        Some(skew) => Step::fail(
            "clock skew",
            format!(
                "the token's iat is {skew:+} s from this clock (more than {MAX_SKEW_SECONDS} s; or the token was not freshly minted)"
            ),
            "sync this machine's clock (NTP); clouds compare exp and iat with theirs",
        ),
    }
}

/// The step for one AWS role: `AssumeRoleWithWebIdentity` with a fresh token (asked with
/// session tags when the provider asks for them), the first hop alone when the role is chained
/// ([`aws_chained_role`] checks the second); its credentials come back for that step. A failure
/// gets the fix of the cause STS reported ([`fly_oidc_aws::Rejection`]; with session tags, a
/// refused trust policy's fix names `sts:TagSession`); a duration above the role's maximum is
/// an invalid setting (see [`setting_step`]).
pub async fn aws_role(
    provider: &fly_oidc_aws::FlyOidcCredentialsProvider,
) -> (Step, Option<fly_oidc_aws::AssumedRole>) {
    use fly_oidc_aws::Rejection;
    let settings = provider.settings();
    let role = settings.role_arn().unwrap_or("(none)").to_owned();
    let name = format!("aws role {role}");
    let tags = settings.principal_tags();
    let err = match provider.assume_web_identity_role().await {
        Ok(assumed) => {
            let step = Step::ok(
                name,
                format!(
                    "AssumeRoleWithWebIdentity succeeded (audience {}{}) as {}",
                    settings.audience(),
                    if tags { ", with session tags" } else { "" },
                    assumed
                        .assumed_role_arn
                        .as_deref()
                        .unwrap_or("(no assumed-role ARN)")
                ),
            );
            return (step, Some(assumed));
        }
        Err(err) => err,
    };
    if let Some(setting) = refused_setting(&err) {
        return (setting_step(name, setting), None);
    }
    let audience = settings.audience();
    let fix = match Rejection::of(&err) {
        Some(Rejection::NoOidcProvider) => {
            "create the IAM OpenID Connect provider for the token's issuer (exactly the iss above) in the role's account: fly-oidc aws setup prints the command".to_owned()
        }
        Some(Rejection::IncorrectAudience) => {
            // The setting the error names (the audience's).
            let named = err.named_message().settings().next();
            let setting = named.map_or_else(|| fly_oidc::ENV_AUDIENCE.to_owned(), |s| s.name(NAMING));
            format!(
                "add the audience {audience} to the IAM OpenID Connect provider's client IDs (aws iam add-client-id-to-open-id-connect-provider --client-id {quoted} ...), or set {setting} to an audience it lists",
                quoted = fly_oidc::shell_quote(audience),
            )
        }
        Some(Rejection::VerificationKey) => {
            "STS could not fetch the issuer's keys: run doctor again shortly; if it persists, check that the issuer's discovery document and JWKS answer from the internet (the signature step fetches the same keys)".to_owned()
        }
        _ if err.is_transient() => AWS_TRANSIENT.to_owned(),
        // The session tags' part of the fix is about the trust policy alone.
        Some(Rejection::TrustPolicy) => fly_oidc_aws::trust_policy_fix(&role, audience, tags),
        Some(Rejection::Token) => fly_oidc_aws::trust_policy_fix(&role, audience, false),
        // Another refusal (a session policy, a disabled region, an endpoint that is not STS):
        // its message names the cause and the setting.
        _ => FIX_NAMED.to_owned(),
    };
    (Step::fail(name, err.render(NAMING), fix), None)
}

/// The fix of a refusal whose message names its cause and setting.
const FIX_NAMED: &str = "fix what the message above names, and run doctor again";

/// The fix of a step that failed on a transient error (no answer, a 5xx, a timeout) of STS.
const AWS_TRANSIENT: &str = "run doctor again shortly; if it persists, check network access to STS and the region and endpoint settings";

/// The step for the chained role of `provider` (role chaining), after its first role's step
/// succeeded with `first`: `sts:AssumeRole` signed with `first`'s credentials. An
/// `AccessDenied` gets the fix on both sides: the chained role's trust policy (the first role
/// as principal, `sts:TagSession` with session tags, the external id condition), the first
/// role's permission to assume it, and the `aws setup --trusted-role-arn` command that prints
/// both. `None` when the role is not chained.
pub async fn aws_chained_role(
    provider: &fly_oidc_aws::FlyOidcCredentialsProvider,
    first: &fly_oidc_aws::AssumedRole,
) -> Option<Step> {
    let settings = provider.settings();
    let chain = settings.chain()?;
    let (role, first_role) = (
        chain.role_arn.as_str(),
        settings.role_arn().unwrap_or("(none)"),
    );
    let name = format!("aws chained role {role}");
    let err = match provider.assume_chained_role(first).await {
        Ok(assumed) => {
            let detail = format!(
                "AssumeRole with the credentials of {first_role} succeeded{} as {}",
                match chain.external_id.as_deref() {
                    Some(id) => format!(" (external id {id})"),
                    None => String::new(),
                },
                assumed
                    .assumed_role_arn
                    .as_deref()
                    .unwrap_or("(no assumed-role ARN)")
            );
            return Some(Step::ok(name, detail));
        }
        Err(err) => err,
    };
    if let Some(setting) = refused_setting(&err) {
        return Some(setting_step(name, setting));
    }
    let fix = match err.code() {
        _ if err.is_transient() => AWS_TRANSIENT.to_owned(),
        Some("AccessDenied") => format!(
            "let the chained role trust the first: {}",
            fly_oidc_aws::chain_trust_fix(chain, first_role, settings.principal_tags())
                .render(NAMING)
        ),
        _ => FIX_NAMED.to_owned(),
    };
    Some(Step::fail(name, err.render(NAMING), fix))
}

/// The Google steps: the STS exchange (with `exchange_only`, a provider without a service
/// account) and, with `impersonating`, the impersonation.
pub async fn gcp(
    exchange_only: &fly_oidc_gcp::GcpTokenProvider,
    impersonating: Option<&fly_oidc_gcp::GcpTokenProvider>,
) -> Vec<Step> {
    let provider = exchange_only.settings().provider().to_string();
    let exchange = match exchange_only.fetch_access_token().await {
        Ok(_) => Step::ok(
            "google exchange",
            format!(
                "Google STS exchanged the token for provider {provider} (audience {})",
                exchange_only.settings().audience()
            ),
        ),
        // No such provider (docs/ERRORS.md): its own fix, not the trust settings'.
        Err(e) if e.code() == Some("invalid_target") => Step::fail(
            "google exchange",
            e.render(NAMING),
            "check the project number, pool and provider ids (gcloud iam workload-identity-pools providers list); fly-oidc gcp setup creates them",
        ),
        Err(e) => google_fail(
            "google exchange",
            &e,
            "compare the provider with the token: gcloud iam workload-identity-pools providers describe ... shows its issuer, allowed audiences and attribute condition; test the condition with fly-oidc gcp check-condition; or recreate it with fly-oidc gcp setup".into(),
        ),
    };
    let exchanged = exchange.ok;
    let mut steps = vec![exchange];
    if let Some(imp) = impersonating.filter(|_| exchanged) {
        let sa = imp.settings().service_account().unwrap_or_default();
        steps.push(match imp.fetch_access_token().await {
            Ok(_) => Step::ok(
                "google impersonation",
                format!("generateAccessToken for {sa} succeeded"),
            ),
            Err(e) => google_fail(
                "google impersonation",
                &e,
                format!(
                    "grant the app's principal set roles/iam.workloadIdentityUser on {sa} (fly-oidc gcp setup --service-account {sa} prints the command)"
                ),
            ),
        });
    }
    steps
}

/// A failing Google step named `name`: a transient error (no answer, a 5xx, a timeout) and an
/// answer that is not Google's (a wrong STS or IAM Credentials URL) have their own fixes; any
/// other failure gets `fix`.
fn google_fail(name: &str, e: &fly_oidc::Error, fix: String) -> Step {
    let fix = if e.is_transient() {
        GOOGLE_TRANSIENT.to_owned()
    } else if e.kind() == fly_oidc::ErrorKind::InvalidResponse {
        GOOGLE_URL.to_owned()
    } else {
        fix
    };
    Step::fail(name, e.render(NAMING), fix)
}

/// The fix of a Google step that failed on a transient error.
const GOOGLE_TRANSIENT: &str = "run doctor again shortly; if it persists, check network access to Google STS and IAM Credentials and their URL settings";

/// The fix of a Google step whose answer was not Google's.
const GOOGLE_URL: &str = "check the URL setting named above: it must be Google's (or your emulator's), not another server's";

/// Connect timeout of every client the diagnosis builds: doctor answers within a minute even
/// when every service hangs.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout of every client the diagnosis builds.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// How doctor names settings: by the per-cloud flags it shares with `exec` and `serve`.
const NAMING: Naming = Naming::PerCloudFlags;

/// An invalid setting as a failing step named `name`.
pub fn setting_step(name: impl Into<String>, err: &BuildError) -> Step {
    let step = Step::fail(
        name,
        format!("invalid setting: {}", err.render(NAMING)),
        "fix the setting named above (flag or environment variable) and run doctor again",
    );
    step.invalid_setting(true)
}

/// What `doctor` checks, as the front end was told. A setting not given is resolved by the
/// providers from the environment, as they always do (`AWS_ROLE_ARN`, `FLY_OIDC_AUDIENCE`,
/// `FLY_OIDC_GCP_PROVIDER`, ...). The AWS settings come as a builder factory to
/// [`diagnose`](Self::diagnose) (one provider a role).
#[derive(Clone, Debug, Default)]
pub struct DoctorOptions {
    /// The AWS roles to try; empty: the one `AWS_ROLE_ARN` names, and none without it (AWS
    /// is then not configured, and no AWS step runs).
    pub aws_role_arns: Vec<String>,
    /// The front end's Google settings (provider, STS and IAM URLs), without a service
    /// account: the diagnosis adds the environment, the client and the timeouts.
    pub gcp: fly_oidc_gcp::Builder,
    /// Google was asked for explicitly (a provider was given): a missing provider is then a
    /// failing step instead of "Google not configured" (no Google step).
    pub gcp_required: bool,
    /// The service account to impersonate; `None`: `FLY_OIDC_GCP_SERVICE_ACCOUNT`, if set.
    pub gcp_service_account: Option<String>,
    /// Where the issuer's keys come from.
    pub keys: KeySource,
    /// Skip the signature check (no network to the issuer).
    pub offline: bool,
}

/// Makes a builder with the front end's AWS settings (audience, duration, region, endpoint),
/// without a role: the diagnosis adds the environment, the client, the role and timeouts.
pub type AwsBuilderFn<'a> = &'a dyn Fn() -> fly_oidc_aws::Builder;

impl DoctorOptions {
    /// Run every step in order: token source, token, signature, clock, each AWS role (the first
    /// one's chained role too, when one is set), the Google exchange (with the Google variables other than the service account) and
    /// impersonation. The Fly token client is `fly`'s (given [`CONNECT_TIMEOUT`] and
    /// [`TIMEOUT`]; an invalid token-source setting is the one failing step); the providers
    /// resolve the rest from `env` (the AWS ones from `aws`'s builders); the token and clock
    /// are checked at `now`. Stops after the token step when no token could be fetched.
    pub async fn diagnose(
        &self,
        fly: fly_oidc::Builder,
        aws: AwsBuilderFn<'_>,
        env: Env,
        now: SystemTime,
    ) -> Report {
        // Every client of the diagnosis: `env` and the doctor's timeouts.
        let config = ProviderConfig::default()
            .with_env(env.clone())
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(TIMEOUT);
        let client = match fly.configure(&config).build() {
            Ok(client) => client,
            Err(e) => {
                let step = setting_step("token source", &e);
                return Report {
                    steps: vec![step],
                    no_cloud: false,
                };
            }
        };
        let mut report = Report::default();
        let source = token_source(&client);
        let source_ok = source.ok;
        report.steps.push(source);
        if !source_ok {
            return report;
        }
        let (step, token) = token(&client, now).await;
        report.steps.push(step);
        let Some(token) = token else {
            return report;
        };
        let http = verify::http_client(&env).ok();
        let keys = &self.keys;
        let signature = signature(&token, keys, self.offline, http.as_ref()).await;
        report.steps.push(signature);
        report.steps.push(clock(&token, now));
        let before_clouds = report.steps.len();
        let config = config.with_fly_client(client);
        self.aws_steps(&mut report, &config, aws).await;
        self.gcp_steps(&mut report, &config).await;
        report.no_cloud = report.steps.len() == before_clouds;
        report
    }

    /// A step for each AWS role, and one for the first role's chained role.
    async fn aws_steps(&self, report: &mut Report, config: &ProviderConfig, aws: AwsBuilderFn<'_>) {
        let roles = aws_role_builders(&self.aws_role_arns, || {
            aws().configure(config).disable_cache()
        });
        for (role, builder) in roles {
            match builder.build() {
                Ok(provider) => {
                    let (step, first) = aws_role(&provider).await;
                    report.steps.push(step);
                    // The chained role is checked once its first role's credentials are had.
                    if let Some(first) = first
                        && let Some(step) = aws_chained_role(&provider, &first).await
                    {
                        report.steps.push(step);
                    }
                }
                Err(e) => report.steps.push(setting_step(
                    format!("aws role {}", role.map_or("(AWS_ROLE_ARN)", |r| r.as_str())),
                    &e,
                )),
            }
        }
    }

    /// The Google steps.
    async fn gcp_steps(&self, report: &mut Report, config: &ProviderConfig) {
        let builder = self.gcp.clone().configure(config);
        // The exchange alone, whatever service account is set.
        let exchange = builder.clone().no_impersonation();
        // The flag's service account, else the variable's, read by the builder itself so that
        // an invalid value is named where it came from.
        let impersonation = builder.set_if(self.gcp_service_account.clone(), |b, sa| {
            b.service_account(sa)
        });
        if !self.gcp_required && !exchange.is_configured() {
            return;
        }
        match exchange.build() {
            Err(e) => report.steps.push(setting_step("google exchange", &e)),
            Ok(exchange_only) => {
                let impersonating = match impersonation.build() {
                    Ok(p) => p.settings().service_account().is_some().then_some(p),
                    Err(e) => {
                        report.steps.push(setting_step("google impersonation", &e));
                        None
                    }
                };
                let steps = gcp(&exchange_only, impersonating.as_ref()).await;
                report.steps.extend(steps);
            }
        }
    }
}
