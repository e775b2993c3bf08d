//! The STS client (aws-sdk-sts, unsigned) and the mapping of its answers.

use crate::settings::{
    CHAIN_DURATION, CHAIN_EXTERNAL_ID, ChainedRole, DEFAULT_AUDIENCE, ENDPOINT_URL, POLICY,
    POLICY_ARNS, REGION, Settings, arn_account_id, role_name_of, truncate,
};
use aws_credential_types::Credentials;
use aws_sdk_sts::config::{BehaviorVersion, Region, SharedHttpClient};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
use aws_sdk_sts::types::{AssumedRoleUser, PolicyDescriptorType};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::timeout::TimeoutConfig;
use fly_oidc::time::SharedTimeSource;
use fly_oidc::{Error, ErrorKind, Message};
use fly_oidc::{FlyClaims, FlyToken};
use std::time::{Duration, SystemTime};

/// The provider name set on the credentials.
const PROVIDER_NAME: &str = "FlyOidc";

/// Wraps the STS HTTP client so that error answers are scrubbed of anything shaped like a JWT
/// before the SDK sees them. Real STS never echoes the web identity token, but an endpoint
/// that does (hostile or misconfigured) would otherwise put it into the SDK's own TRACE-level
/// `output_or_error` event and into error messages.
#[derive(Debug)]
struct RedactErrorBodies(SharedHttpClient);

impl HttpClient for RedactErrorBodies {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RedactingConnector(
            self.0.http_connector(settings, components),
        ))
    }
}

#[derive(Debug)]
struct RedactingConnector(SharedHttpConnector);

/// The most of an error answer we read (STS error bodies are well under 1 KiB).
const MAX_ERROR_BODY: usize = 64 * 1024;

impl HttpConnector for RedactingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let answer = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let mut response = answer.await?;
            if response.status().is_success() {
                return Ok(response);
            }
            let body = ByteStream::new(response.take_body())
                .collect()
                .await
                .map_err(|e| ConnectorError::io(e.into()))?
                .into_bytes();
            let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
            let scrubbed = fly_oidc::redact_jwts(&text);
            response.headers_mut().remove("content-length");
            *response.body_mut() = SdkBody::from(scrubbed);
            Ok(response)
        })
    }
}

/// The start of STS's message when it could not fetch the issuer's JWKS: an
/// `InvalidIdentityToken` that is transient (public reports show it passing on a retry).
const VERIFICATION_KEY_FAILURE: &str =
    "Couldn't retrieve verification key from your identity provider";

/// Whether STS's `code` and `message` say it could not fetch the issuer's keys.
fn is_verification_key_failure(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("InvalidIdentityToken")
        && message.is_some_and(|m| {
            m.trim_start()
                .to_ascii_lowercase()
                .starts_with(&VERIFICATION_KEY_FAILURE.to_ascii_lowercase())
        })
}

/// Tells the SDK's standard retry (same attempts, jittered backoff and timeouts as every other
/// transient STS error) to retry an `InvalidIdentityToken` that says STS could not fetch the
/// issuer's verification key. Every other `InvalidIdentityToken` is left alone (not retried).
#[derive(Debug)]
struct RetryVerificationKeyFailures;

impl ClassifyRetry for RetryVerificationKeyFailures {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        match err
            .as_operation_error()
            .and_then(|e| e.downcast_ref::<AssumeRoleWithWebIdentityError>())
        {
            Some(e) if is_verification_key_failure(e.code(), e.message()) => {
                RetryAction::transient_error()
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "fly-oidc: STS could not fetch the issuer's verification key"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Adapts our injected clock to the SDK's `TimeSource`.
#[derive(Debug)]
struct SdkTime(SharedTimeSource);

impl aws_smithy_async::time::TimeSource for SdkTime {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

pub(crate) struct StsOptions {
    pub http_client: SharedHttpClient,
    pub time: SharedTimeSource,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
}

pub(crate) fn build_client(settings: &Settings, opts: StsOptions) -> aws_sdk_sts::Client {
    let retry = aws_smithy_types::retry::RetryConfig::standard()
        .with_max_attempts(opts.max_attempts)
        .with_initial_backoff(opts.initial_backoff)
        .with_max_backoff(opts.max_backoff);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(opts.connect_timeout)
        .operation_attempt_timeout(opts.attempt_timeout)
        // Every attempt plus every backoff, with a second to spare: the bound on one call.
        .operation_timeout(
            (opts.attempt_timeout + opts.max_backoff) * opts.max_attempts + Duration::from_secs(1),
        )
        .build();
    let mut config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .http_client(SharedHttpClient::new(RedactErrorBodies(opts.http_client)))
        .time_source(SdkTime(opts.time))
        .retry_config(retry)
        .retry_classifier(RetryVerificationKeyFailures)
        .timeout_config(timeouts)
        .use_fips(settings.use_fips)
        .use_dual_stack(settings.use_dual_stack);
    if let Some(url) = &settings.endpoint_url {
        config = config.endpoint_url(url.clone());
    }
    aws_sdk_sts::Client::from_conf(config.build())
}

/// Credentials from one successful `AssumeRoleWithWebIdentity`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AssumedRole {
    /// The credentials (their `Debug` hides the secret key and session token), with expiry,
    /// account id and provider name `FlyOidc`.
    pub credentials: Credentials,
    /// When the credentials expire.
    pub expires_at: SystemTime,
    /// The account id, from the assumed-role ARN.
    pub account_id: Option<String>,
    /// The assumed-role ARN, `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub assumed_role_arn: Option<String>,
    /// The role session name used.
    pub session_name: String,
    /// The `sub` STS read from the token (`SubjectFromWebIdentityToken`).
    pub subject: Option<String>,
}

/// Whether STS's `code` says the Fly token expired (`ExpiredTokenException`): to the first
/// hop, worth one more try with a fresh Fly token.
pub(crate) fn is_expired_token_code(code: &str) -> bool {
    matches!(code, "ExpiredTokenException" | "ExpiredToken")
}

/// The session policies of `settings`, as STS takes them: they apply to the session handed
/// out (the chained one when the role is chained).
fn policy_arns(settings: &Settings) -> Option<Vec<PolicyDescriptorType>> {
    (!settings.policy_arns.is_empty()).then(|| {
        settings
            .policy_arns
            .iter()
            .map(|arn| PolicyDescriptorType::builder().arn(arn).build())
            .collect()
    })
}

/// STS's `DurationSeconds`.
fn duration_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

pub(crate) async fn assume_role_with_web_identity(
    client: &aws_sdk_sts::Client,
    settings: &Settings,
    role_arn: &str,
    session_name: &str,
    token: &FlyToken,
    attempts: u32,
    time: &SharedTimeSource,
) -> Result<AssumedRole, Error> {
    // Without a chain this session is the one handed out, and the session policies apply.
    let last = settings.chain.is_none();
    // STS never grants more than DurationSeconds from when it answers, so by our clock the
    // credentials cannot outlive `started + duration`, whatever STS's clock says.
    let started = time.now();
    let result = client
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .web_identity_token(token.expose_jwt())
        .duration_seconds(duration_seconds(settings.duration))
        .set_policy(settings.policy.clone().filter(|_| last))
        .set_policy_arns(policy_arns(settings).filter(|_| last))
        .send()
        .await;
    match result {
        Ok(output) => into_assumed_role(
            Answer {
                action: "AssumeRoleWithWebIdentity",
                credentials: output.credentials,
                user: output.assumed_role_user,
                subject: output.subject_from_web_identity_token,
            },
            session_name,
            started + settings.duration,
            time.now(),
        ),
        Err(err) => Err(map_sdk_error(
            err,
            settings,
            role_arn,
            Hop::WebIdentity(token.claims()),
            attempts,
        )),
    }
}

/// The second hop of a chain: `sts:AssumeRole` of `chain`'s role, signed with `first`'s
/// credentials (the role `first_role_arn`, which the Fly token assumed).
pub(crate) async fn assume_chained_role(
    client: &aws_sdk_sts::Client,
    settings: &Settings,
    chain: &ChainedRole,
    first_role_arn: &str,
    first: &AssumedRole,
    attempts: u32,
    time: &SharedTimeSource,
) -> Result<AssumedRole, Error> {
    let session_name = chain
        .session_name
        .clone()
        .unwrap_or_else(|| first.session_name.clone());
    let signed_by_first =
        aws_sdk_sts::Config::builder().credentials_provider(first.credentials.clone());
    let started = time.now();
    let result = client
        .assume_role()
        .role_arn(&chain.role_arn)
        .role_session_name(&session_name)
        .set_external_id(chain.external_id.clone())
        .duration_seconds(duration_seconds(chain.duration))
        .set_policy(settings.policy.clone())
        .set_policy_arns(policy_arns(settings))
        .customize()
        .config_override(signed_by_first)
        .send()
        .await;
    match result {
        Ok(output) => into_assumed_role(
            Answer {
                action: "AssumeRole",
                credentials: output.credentials,
                user: output.assumed_role_user,
                subject: first.subject.clone(),
            },
            &session_name,
            started + chain.duration,
            time.now(),
        ),
        Err(err) => Err(map_sdk_error(
            err,
            settings,
            &chain.role_arn,
            Hop::Chained {
                chain,
                first_role_arn,
            },
            attempts,
        )),
    }
}

/// What a successful answer of either action holds.
struct Answer {
    action: &'static str,
    credentials: Option<aws_sdk_sts::types::Credentials>,
    user: Option<AssumedRoleUser>,
    subject: Option<String>,
}

/// `latest`: the latest expiry the requested duration allows by our clock; `now`: our clock.
fn into_assumed_role(
    answer: Answer,
    session_name: &str,
    latest: SystemTime,
    now: SystemTime,
) -> Result<AssumedRole, Error> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!(
                "STS answered {} without usable credentials: {why}",
                answer.action
            ),
        )
    };
    let creds = answer
        .credentials
        .ok_or_else(|| invalid("no Credentials element"))?;
    let sts_expiry = SystemTime::try_from(creds.expiration)
        .map_err(|_| invalid("the Expiration is not a representable time"))?;
    // Clock skew: an Expiration later than the duration allows means STS's clock is ahead of
    // ours; trusting it would serve the credentials after they really expire.
    let expires_at = match sts_expiry.duration_since(latest) {
        Ok(ahead) if !ahead.is_zero() => {
            if ahead > Duration::from_secs(60) {
                tracing::warn!(
                    ahead_secs = ahead.as_secs(),
                    "STS's Expiration is later than the requested duration allows (its clock is ahead of this machine's); treating the credentials as expiring after the requested duration"
                );
            }
            latest
        }
        _ => sts_expiry,
    };
    if expires_at <= now {
        let ago = now.duration_since(expires_at).unwrap_or_default().as_secs();
        return Err(invalid(&format!(
            "they expired {ago} s ago by this machine's clock; check this machine's clock (it is ahead of STS's)"
        )));
    }
    if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
        return Err(invalid("an empty access key id or secret key"));
    }
    let assumed_role_arn = answer.user.map(|u| u.arn);
    let account_id = assumed_role_arn
        .as_deref()
        .and_then(arn_account_id)
        .map(str::to_owned);
    let mut builder = Credentials::builder()
        .access_key_id(creds.access_key_id)
        .secret_access_key(creds.secret_access_key)
        .session_token(creds.session_token)
        .expiry(expires_at)
        .provider_name(PROVIDER_NAME);
    if let Some(account) = &account_id {
        builder = builder.account_id(account.as_str());
    }
    Ok(AssumedRole {
        credentials: builder.build(),
        expires_at,
        account_id,
        assumed_role_arn,
        session_name: session_name.to_owned(),
        subject: answer.subject,
    })
}

/// The token facts a rejection names: its `iss`, `aud` and `sub`, and the IAM condition-key
/// prefix its issuer gives (`oidc.fly.io/<org>`).
struct TokenFacts<'a> {
    iss: &'a str,
    aud: String,
    sub: &'a str,
    key_prefix: String,
}

impl<'a> TokenFacts<'a> {
    fn of(claims: &'a FlyClaims) -> Self {
        let iss = claims.iss.as_deref().unwrap_or("(no iss claim)");
        let aud = claims
            .aud
            .as_ref()
            .map(|a| a.iter().collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "(no aud claim)".into());
        let key_prefix = match claims.iss.as_deref() {
            Some(iss) => fly_oidc::issuer_key(iss).to_owned(),
            None => fly_oidc::issuer_key(&fly_oidc::issuer_url("<org>")).to_owned(),
        };
        TokenFacts {
            iss,
            aud,
            sub: claims.sub.as_deref().unwrap_or("(no sub claim)"),
            key_prefix,
        }
    }
}

impl std::fmt::Display for TokenFacts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the token's iss {}, aud {}, sub {}",
            self.iss, self.aud, self.sub
        )
    }
}

/// The cause STS reported for refusing `AssumeRoleWithWebIdentity`, for a front end that
/// gives each cause its own fix (`fly-oidc doctor`): read it from an error of this provider
/// with [`Rejection::of`]. It is classified once, from STS's code and message, where the
/// error is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// `AccessDenied` ("Not authorized to perform sts:AssumeRoleWithWebIdentity"): the role's
    /// trust policy does not accept the token, or the role does not exist.
    TrustPolicy,
    /// `InvalidIdentityToken` "No OpenIDConnect provider found in your account for ...": the
    /// role's account has no IAM OpenID Connect provider for the token's issuer.
    NoOidcProvider,
    /// `InvalidIdentityToken` "Incorrect token audience": the IAM OpenID Connect provider
    /// does not list the audience sent among its client IDs.
    IncorrectAudience,
    /// `InvalidIdentityToken` "Couldn't retrieve verification key from your identity
    /// provider" on every attempt: STS could not fetch the issuer's keys (transient).
    VerificationKey,
    /// Another `InvalidIdentityToken` or `IDPRejectedClaim`: STS did not accept the token
    /// itself.
    Token,
}

impl Rejection {
    /// The cause of `err` (or of an error in its cause chain), when `err` is STS refusing a
    /// token; `None` for every other error (a duration above the role's maximum is a
    /// [`BuildError`](fly_oidc::BuildError) in the cause chain instead).
    pub fn of(err: &(dyn std::error::Error + 'static)) -> Option<Self> {
        std::iter::successors(Some(err), |&e| e.source())
            .find_map(|e| e.downcast_ref::<Self>())
            .copied()
    }

    /// The cause of an STS answer with `code` and `message`, if it refuses the token.
    fn classify(code: &str, message: Option<&str>) -> Option<Self> {
        let says = |text: &str| message.is_some_and(|m| m.contains(text));
        match code {
            "AccessDenied" => Some(Self::TrustPolicy),
            "InvalidIdentityToken" if is_verification_key_failure(Some(code), message) => {
                Some(Self::VerificationKey)
            }
            "InvalidIdentityToken" if says("No OpenIDConnect provider found") => {
                Some(Self::NoOidcProvider)
            }
            "InvalidIdentityToken" if says("Incorrect token audience") => {
                Some(Self::IncorrectAudience)
            }
            "InvalidIdentityToken" | "IDPRejectedClaim" => Some(Self::Token),
            _ => None,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TrustPolicy => "the cause STS reported: the role's trust policy",
            Self::NoOidcProvider => "the cause STS reported: no IAM OpenID Connect provider",
            Self::IncorrectAudience => "the cause STS reported: the audience",
            Self::VerificationKey => "the cause STS reported: the issuer's verification key",
            Self::Token => "the cause STS reported: the token",
        })
    }
}

impl std::error::Error for Rejection {}

/// What to do when a role's trust policy refuses a Fly token (STS's `AccessDenied` to
/// `AssumeRoleWithWebIdentity`): with session tags asked for (`principal_tags`), allow
/// `sts:TagSession`; then the commands that fetch the role's trust policy and name the
/// condition that fails, and the set-up command that prints one that accepts the token (both
/// with `--audience` when the token's audience is not the default). The one wording of that
/// advice, in the error's message and in `fly-oidc doctor`'s fix.
pub fn trust_policy_fix(role_arn: &str, audience: &str, principal_tags: bool) -> String {
    let (tags, mut flags) = match principal_tags {
        true => (
            "the statement that trusts the OIDC provider must also allow sts:TagSession \
             (\"Action\": [\"sts:AssumeRoleWithWebIdentity\", \"sts:TagSession\"]), and the rest \
             must match the token: ",
            " --principal-tags".to_owned(),
        ),
        false => ("", String::new()),
    };
    if audience != DEFAULT_AUDIENCE {
        flags = format!("{flags} --audience {}", fly_oidc::shell_quote(audience));
    }
    format!(
        "{tags}`aws iam get-role --role-name {name} --query Role.AssumeRolePolicyDocument > trust.json \
         && fly-oidc aws check-trust-policy trust.json{flags}` names the condition that fails; \
         `fly-oidc aws setup{flags}` prints a trust policy that accepts the token",
        name = role_name_of(role_arn),
    )
}

/// What to do when a chained role refuses the first role (STS's `AccessDenied` to the
/// chained hop's `sts:AssumeRole`): the chained role's trust policy must name the first role
/// as principal, allow `sts:TagSession` when session tags were asked for (transitive tags
/// pass along the chain), and require the external id when one is sent; the first role's
/// permissions must allow `sts:AssumeRole` on it; and the `fly-oidc aws setup
/// --trusted-role-arn` command that prints both. The one wording of that advice, in the
/// error's message and in `fly-oidc doctor`'s fix (each front end names the settings).
pub fn chain_trust_fix(chain: &ChainedRole, first_role_arn: &str, principal_tags: bool) -> Message {
    let role_arn = &chain.role_arn;
    let name = role_name_of(role_arn);
    let actions = match principal_tags {
        true => "\"Action\": [\"sts:AssumeRole\", \"sts:TagSession\"]",
        false => "\"Action\": \"sts:AssumeRole\"",
    };
    let mut message = Message::from(format!(
        "the chained role's trust policy must allow {actions} for the principal \
         {{\"AWS\": \"{first_role_arn}\"}}"
    ));
    if principal_tags {
        message = message
            .text(" (session tags were asked for, by ")
            .setting(crate::settings::PRINCIPAL_TAGS)
            .text(", and the transitive ones pass along the chain)");
    }
    let mut setup =
        format!("fly-oidc aws setup --role-name {name} --trusted-role-arn {first_role_arn}");
    if let Some(id) = &chain.external_id {
        message = message
            .text(format!(
                " with the condition {{\"StringEquals\": {{\"sts:ExternalId\": \"{id}\"}}}} (the external id sent, set by "
            ))
            .setting(CHAIN_EXTERNAL_ID)
            .text(")");
        setup.push_str(&format!(" --external-id {id}"));
    } else {
        message = message
            .text(" (no external id was sent: if that policy has an sts:ExternalId condition, set ")
            .setting(CHAIN_EXTERNAL_ID)
            .text(")");
    }
    if principal_tags {
        setup.push_str(" --principal-tags");
    }
    let permissions = match principal_tags {
        true => "sts:AssumeRole and sts:TagSession",
        false => "sts:AssumeRole",
    };
    message.text(format!(
        ", and the first role's permissions policy must allow {permissions} on {role_arn} \
         (or the chained role does not exist); `{setup}` prints both, to compare with \
         `aws iam get-role --role-name {name} --query Role.AssumeRolePolicyDocument`"
    ))
}

/// The message of an `InvalidIdentityToken`, `IDPRejectedClaim` or `AccessDenied` answer
/// (`said`: STS's code and message): the one cause STS reported, with the role sent, the
/// token's `iss`, `aud`, `sub` (and session tags, when they were asked for), and what to do
/// next.
fn trust_message(
    cause: Rejection,
    said: &str,
    role_arn: &str,
    settings: &Settings,
    claims: &FlyClaims,
) -> Message {
    let audience = &settings.audience;
    let facts = TokenFacts::of(claims);
    let prefix = &facts.key_prefix;
    let refused = format!("STS refused to assume {role_arn} ({said})");
    if cause == Rejection::TrustPolicy {
        let account = arn_account_id(role_arn).unwrap_or("<account>");
        // Session tags asked for: the trust policy must allow sts:TagSession too, or STS
        // answers AccessDenied whatever the conditions say (the fix says so).
        let tags = match settings.principal_tags {
            false => Message::default(),
            true => {
                let carried = match claims.aws_session_tags() {
                    Some(tags) => format!("the token carries the session tags {tags}"),
                    None => format!("the token carries no {} claim", fly_oidc::AWS_TAGS_CLAIM),
                };
                Message::from("session tags were asked for (")
                    .setting(crate::settings::PRINCIPAL_TAGS)
                    .text(format!("; {carried}); "))
            }
        };
        return Message::from(format!(
            "{refused}: the role's trust policy does not accept this token (or the role does not exist); "
        ))
        .append(tags)
        .text(format!(
            "its principal must be arn:aws:iam::{account}:oidc-provider/{prefix} (from the token's iss {iss}) \
             and its conditions must match the token: \"{prefix}:aud\" the aud {aud}, \"{prefix}:sub\" the sub {sub}; \
             next: {fix}",
            iss = facts.iss,
            aud = facts.aud,
            sub = facts.sub,
            fix = trust_policy_fix(role_arn, &settings.audience, settings.principal_tags),
        ));
    }
    if cause == Rejection::NoOidcProvider {
        return format!(
            "{refused}: the role's account has no IAM OpenID Connect provider for the token's issuer {iss} \
             ({facts}); create one with exactly this URL (`fly-oidc aws setup` prints the commands; \
             a personal org's slug is not the word \"personal\")",
            iss = facts.iss,
        )
        .into();
    }
    if cause == Rejection::IncorrectAudience {
        return Message::from(format!(
            "{refused}: the IAM OpenID Connect provider for {iss} does not list the audience {audience} \
             among its client IDs (the audience sent, set by ",
            iss = facts.iss,
        ))
        .setting(crate::settings::AUDIENCE)
        .text(format!(
            "; {facts}); add it (`aws iam add-client-id-to-open-id-connect-provider --client-id {quoted} ...`, \
             or `fly-oidc aws setup --audience {quoted}`), or send an audience the provider lists",
            quoted = fly_oidc::shell_quote(audience),
        ));
    }
    format!(
        "{refused}: STS did not accept the token itself ({facts}); `fly-oidc doctor` checks its \
         signature against the issuer's keys and walks the whole chain"
    )
    .into()
}

/// The message of an `AccessDenied` answer to the chained hop: the hop, the first role, and
/// [`chain_trust_fix`].
fn chain_trust_message(
    said: &str,
    chain: &ChainedRole,
    first_role_arn: &str,
    settings: &Settings,
) -> Message {
    Message::from(format!(
        "STS refused to assume the chained role {role_arn} with the credentials of the first role \
         {first_role_arn} ({said}); ",
        role_arn = chain.role_arn,
    ))
    .append(chain_trust_fix(
        chain,
        first_role_arn,
        settings.principal_tags,
    ))
}

/// The error for STS's `ValidationError` "The requested DurationSeconds exceeds the
/// MaxSessionDuration set for this role" (or, for a chained role, "the 1 hour session limit
/// for roles assumed by role chaining"): an invalid duration setting of the hop (so the
/// binary names it by its flag, and exits 2).
fn duration_error(said: &str, settings: &Settings, role_arn: &str, hop: &Hop) -> Error {
    let (setting, secs, origin) = match hop {
        Hop::WebIdentity(_) => (
            crate::settings::DURATION,
            settings.duration.as_secs(),
            settings.duration_origin.clone(),
        ),
        Hop::Chained { chain, .. } => (CHAIN_DURATION, chain.duration.as_secs(), None),
    };
    let reason = format!(
        "STS refused the session duration {secs} s for {role_arn} ({said}): it is more than the role's \
         maximum session duration; ask for less, or raise the role's MaxSessionDuration \
         (`aws iam update-role --role-name {name} --max-session-duration {secs}`)",
        name = role_name_of(role_arn),
    );
    Error::from(match origin {
        Some(origin) => fly_oidc::BuildError::invalid(setting, origin, reason),
        None => fly_oidc::BuildError::missing(setting, reason),
    })
}

/// Whether STS's `ValidationError` says the duration is above the role's maximum.
fn is_duration_above_maximum(message: Option<&str>) -> bool {
    message.is_some_and(|m| {
        m.contains("DurationSeconds exceeds the MaxSessionDuration")
            || m.contains("DurationSeconds exceeds the 1 hour session limit")
    })
}

fn sts_message(err: &impl ProvideErrorMetadata) -> String {
    let msg = err.message().unwrap_or("no message");
    fly_oidc::redact_jwts(&truncate(msg, 300))
}

fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "IDPCommunicationError"
            | "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "InternalError"
            | "RequestTimeout"
            | "RequestTimeoutException"
    )
}

/// Which hop of an assume-role an STS call is.
enum Hop<'a> {
    /// `AssumeRoleWithWebIdentity` with a Fly token carrying these claims.
    WebIdentity(&'a FlyClaims),
    /// `AssumeRole` of the chained role, signed with the credentials of `first_role_arn`.
    Chained {
        chain: &'a ChainedRole,
        first_role_arn: &'a str,
    },
}

impl Hop<'_> {
    fn action(&self) -> &'static str {
        match self {
            Hop::WebIdentity(_) => "AssumeRoleWithWebIdentity",
            Hop::Chained { .. } => "AssumeRole",
        }
    }
}

fn map_sdk_error<E>(
    err: SdkError<E, HttpResponse>,
    settings: &Settings,
    role_arn: &str,
    hop: Hop,
    attempts: u32,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let action = hop.action();
    let endpoint = settings.sts_endpoint();
    let after = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let e = service.into_err();
            let code = e.code().unwrap_or("").to_owned();
            let msg = sts_message(&e);
            let said = match code.as_str() {
                "" => format!("HTTP {status}: {msg}"),
                code => format!("{code}: {msg}"),
            };
            let cause = Rejection::classify(&code, e.message());
            let (kind, text): (ErrorKind, Message) = match (code.as_str(), &hop) {
                ("AccessDenied", Hop::Chained { chain, first_role_arn }) => (
                    ErrorKind::TrustRejected,
                    chain_trust_message(&said, chain, first_role_arn, settings),
                ),
                ("ValidationError", _) if is_duration_above_maximum(e.message()) => {
                    return duration_error(&said, settings, role_arn, &hop)
                        .with_status(status)
                        .with_code(code.as_str());
                }
                (c, Hop::WebIdentity(_)) if is_expired_token_code(c) => (
                    ErrorKind::TrustRejected,
                    format!(
                        "STS {endpoint} rejected the Fly token as expired twice ({said}), \
                         although each was fresh; check this machine's clock, and that the token source \
                         mints new tokens (a token file must be rewritten before its tokens expire)"
                    ).into(),
                ),
                (_, Hop::WebIdentity(claims)) if cause == Some(Rejection::VerificationKey) => {
                    let facts = TokenFacts::of(claims);
                    let issuer = facts.iss;
                    (
                        ErrorKind::Transient,
                        format!(
                            "STS {endpoint} could not fetch the signing keys of the token's issuer {issuer}{after} \
                             ({said}) while assuming {role_arn}; this is probably transient (STS reads \
                             {issuer}/.well-known/openid-configuration and its JWKS), try again shortly; if it \
                             persists, `fly-oidc token --verify` checks the keys can be fetched ({facts})"
                        ).into(),
                    )
                }
                ("InvalidIdentityToken" | "IDPRejectedClaim" | "AccessDenied", Hop::WebIdentity(claims)) => (
                    ErrorKind::TrustRejected,
                    trust_message(cause.unwrap_or(Rejection::Token), &said, role_arn, settings, claims),
                ),
                ("", _) if status < 500 && status != 429 => (
                    ErrorKind::InvalidResponse,
                    Message::from(format!(
                        "STS {endpoint} answered HTTP {status} with something that is not an STS answer; check the endpoint URL ("
                    )).setting(ENDPOINT_URL).text(", AWS_ENDPOINT_URL, the profile's endpoint_url)"),
                ),
                (c, _) if is_transient_code(c) || status >= 500 || status == 429 => (
                    ErrorKind::Transient,
                    format!(
                        "STS {endpoint} failed{after} ({said}); this is usually transient, try again shortly"
                    ).into(),
                ),
                ("MalformedPolicyDocument" | "PackedPolicyTooLarge", _) => (
                    ErrorKind::Rejected,
                    Message::from(format!(
                        "STS {endpoint} rejected the session policy ({said}); check the session policy and policy ARNs ("
                    )).setting(POLICY).text(", ").setting(POLICY_ARNS).text(")"),
                ),
                ("RegionDisabledException", _) => (
                    ErrorKind::Rejected,
                    format!(
                        "STS is not activated in region {} for this account ({said}); activate it in IAM account settings or use another region",
                        settings.region
                    ).into(),
                ),
                _ => (
                    ErrorKind::Rejected,
                    format!(
                        "STS {endpoint} rejected {action} for {role_arn} ({said}); check the role ARN, session name, duration (the role's maximum session duration) and policies"
                    ).into(),
                ),
            };
            // The message already holds STS's code and message: the source is only the
            // cause, classified, when STS refused the token.
            let error = Error::new(kind, text).with_status(status);
            let error = match cause {
                Some(cause) => error.with_source(cause),
                None => error,
            };
            match code.as_str() {
                "" => error,
                code => error.with_code(code),
            }
        }
        SdkError::TimeoutError(_) => Error::new(
            ErrorKind::Transient,
            format!(
                "timed out calling STS {endpoint}{after}; this is usually transient, try again (check network access to STS)"
            ),
        )
        .with_source(err),
        SdkError::DispatchFailure(_) => Error::new(
            ErrorKind::Transient,
            Message::from(format!(
                "could not reach STS {endpoint}{after}; check network access and the region/endpoint ("
            ))
            .setting(REGION)
            .text(", ")
            .setting(ENDPOINT_URL)
            .text(")"),
        )
        .with_source(err),
        SdkError::ResponseError(resp) => {
            let status = resp.raw().status().as_u16();
            let kind = if status >= 500 {
                ErrorKind::Transient
            } else {
                ErrorKind::InvalidResponse
            };
            Error::new(
                kind,
                format!(
                    "STS {endpoint} answered HTTP {status} with a response that is not a valid STS answer{after}; check the endpoint URL"
                ),
            )
        }
        SdkError::ConstructionFailure(_) => Error::new(
            ErrorKind::InvalidConfiguration,
            format!(
                "could not build the STS request for {endpoint}; check the region and endpoint settings"
            ),
        )
        .with_source(err),
        other => Error::new(
            ErrorKind::InvalidResponse,
            format!("calling STS {endpoint} failed unexpectedly{after}"),
        )
        .with_source(other),
    }
}
