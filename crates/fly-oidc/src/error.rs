//! The error pattern of every fly-oidc crate: [`BuildError`], [`Error`] and the [`Setting`]s
//! they name (see the crate docs' Errors section).

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// A setting: one row of the settings table, the one place that names it. The builder method
/// that sets it, the environment variable that can (if any), the `fly-oidc` binary's flag (if
/// any) and the cloud whose provider it configures (the prefix of its flag where a command
/// configures both clouds at once: `--aws-role-arn`).
///
/// Errors carry settings as data ([`BuildError::setting`], the [`Message`] of an [`Error`]);
/// each front end renders them with its [`Naming`].
///
/// ```
/// use fly_oidc::{Cloud, Naming, Setting};
/// let s = Setting::new("role_arn", Some("AWS_ROLE_ARN")).flag("role-arn").cloud(Cloud::Aws);
/// assert_eq!(s.to_string(), "Builder::role_arn or AWS_ROLE_ARN");
/// assert_eq!(s.render(Naming::Flags), "--role-arn or AWS_ROLE_ARN");
/// assert_eq!(s.name(Naming::PerCloudFlags), "--aws-role-arn");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Setting {
    builder_method: &'static str,
    env_var: Option<&'static str>,
    flag: Option<&'static str>,
    cloud: Option<Cloud>,
}

/// The cloud whose provider a [`Setting`] configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cloud {
    /// AWS: its flags are prefixed `--aws-` where both clouds are configured at once.
    Aws,
    /// Google Cloud: `--gcp-`.
    Gcp,
}

/// How a front end names settings in messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Naming {
    /// As a library user sets them: `Builder::role_arn`.
    #[default]
    Builder,
    /// By the `fly-oidc` binary's flags: `--role-arn` (a setting without a flag: by its
    /// variable alone where it has one, else `Builder::x`).
    Flags,
    /// By the flags of a command that configures both clouds at once (`exec`, `serve`,
    /// `doctor`): each provider's with its cloud's prefix, `--aws-role-arn`, `--gcp-audience`.
    PerCloudFlags,
}

impl Setting {
    /// The setting made by `Builder::<builder_method>`, or by the variable `env_var`.
    pub const fn new(builder_method: &'static str, env_var: Option<&'static str>) -> Self {
        Self {
            builder_method,
            env_var,
            flag: None,
            cloud: None,
        }
    }

    /// The same setting, set in the `fly-oidc` binary by `--<flag>`.
    pub const fn flag(mut self, flag: &'static str) -> Self {
        self.flag = Some(flag);
        self
    }

    /// The same setting, of `cloud`'s provider: its flag is prefixed (`--aws-`, `--gcp-`)
    /// where a command configures both clouds at once.
    pub const fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// The builder method's name, such as `role_arn`.
    pub fn builder_method(&self) -> &'static str {
        self.builder_method
    }

    /// The environment variable that sets it, such as `AWS_ROLE_ARN`.
    pub fn env_var(&self) -> Option<&'static str> {
        self.env_var
    }

    /// What sets it, as `naming` says: `Builder::role_arn`, `--role-arn`, `--aws-role-arn`;
    /// `None` for a front end with flags when it has none.
    fn setter(&self, naming: Naming) -> Option<String> {
        match (naming, self.flag, self.cloud) {
            (Naming::Builder, _, _) => Some(format!("Builder::{}", self.builder_method)),
            (_, None, _) => None,
            (Naming::PerCloudFlags, Some(flag), Some(Cloud::Aws)) => Some(format!("--aws-{flag}")),
            (Naming::PerCloudFlags, Some(flag), Some(Cloud::Gcp)) => Some(format!("--gcp-{flag}")),
            (_, Some(flag), _) => Some(format!("--{flag}")),
        }
    }

    /// Its name alone, as `naming` says (a setting without a flag: `Builder::x`).
    pub fn name(&self, naming: Naming) -> String {
        self.setter(naming)
            .unwrap_or_else(|| format!("Builder::{}", self.builder_method))
    }

    /// Its name and its variable, as `naming` says: `Builder::role_arn or AWS_ROLE_ARN`,
    /// `--role-arn or AWS_ROLE_ARN` (a setting without a flag: its variable alone).
    pub fn render(&self, naming: Naming) -> String {
        match (self.setter(naming), self.env_var) {
            (Some(setter), Some(var)) => format!("{setter} or {var}"),
            (Some(setter), None) => setter,
            (None, Some(var)) => var.to_owned(),
            (None, None) => self.name(Naming::Builder),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Naming::Builder))
    }
}

/// A message that names settings: text and [`Setting`]s in order, each setting rendered by
/// the front end's [`Naming`] (`Display`: as a library user sets them). Text is passed
/// through [`redact_jwts`] as it is added.
///
/// ```
/// use fly_oidc::{Cloud, Message, Naming, Setting};
/// const REGION: Setting = Setting::new("region", Some("AWS_REGION")).flag("region").cloud(Cloud::Aws);
/// let m = Message::from("check the region (").setting(REGION).text(")");
/// assert_eq!(m.to_string(), "check the region (Builder::region or AWS_REGION)");
/// assert_eq!(m.render(Naming::PerCloudFlags), "check the region (--aws-region or AWS_REGION)");
/// assert_eq!(m.settings().collect::<Vec<_>>(), [REGION]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message(Vec<Part>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    /// The setting's name and variable ([`Setting::render`]).
    Setting(Setting),
    /// The setting's name alone ([`Setting::name`]).
    Name(Setting),
}

impl Message {
    /// Add `text`.
    pub fn text(mut self, text: impl AsRef<str>) -> Self {
        self.0.push(Part::Text(redact_jwts(text.as_ref())));
        self
    }

    /// Add `setting`, named with its variable (`Builder::region or AWS_REGION`).
    pub fn setting(mut self, setting: Setting) -> Self {
        self.0.push(Part::Setting(setting));
        self
    }

    /// Add `setting`'s name alone (`Builder::socket`, `--socket`).
    pub fn name(mut self, setting: Setting) -> Self {
        self.0.push(Part::Name(setting));
        self
    }

    /// Add `other`'s text and settings.
    pub fn append(mut self, other: Message) -> Self {
        self.0.extend(other.0);
        self
    }

    /// The settings it names, in order.
    pub fn settings(&self) -> impl Iterator<Item = Setting> + '_ {
        self.0.iter().filter_map(|part| match part {
            Part::Setting(s) | Part::Name(s) => Some(*s),
            Part::Text(_) => None,
        })
    }

    /// The text, each setting named as `naming` says.
    pub fn render(&self, naming: Naming) -> String {
        self.0
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.clone(),
                Part::Setting(s) => s.render(naming),
                Part::Name(s) => s.name(naming),
            })
            .collect()
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::default().text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::default().text(text)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Naming::Builder))
    }
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// A builder method (for the `fly-oidc` binary: a flag).
    Builder,
    /// This environment variable.
    Env(String),
    /// This profile of the AWS shared config (`~/.aws/config` or `AWS_CONFIG_FILE`).
    Profile(String),
}

/// An invalid or missing setting, found before anything was sent.
///
/// `Display` names the setting the way a library user sets it: "... (from AWS_ROLE_ARN)",
/// "...; set Builder::role_arn or AWS_ROLE_ARN". A front end with flags renders the same
/// error with its [`Naming`] through [`render`](Self::render).
///
/// ```
/// use fly_oidc::{BuildError, Naming, Origin, Setting};
/// const ROLE: Setting = Setting::new("role_arn", Some("AWS_ROLE_ARN")).flag("role-arn");
/// let missing = BuildError::missing(ROLE, "no role to assume");
/// assert_eq!(missing.to_string(), "no role to assume; set Builder::role_arn or AWS_ROLE_ARN");
/// assert_eq!(missing.render(Naming::Flags), "no role to assume; set --role-arn or AWS_ROLE_ARN");
/// let bad = BuildError::invalid(ROLE, Origin::Env("AWS_ROLE_ARN".into()), "\"x\" is not a role ARN");
/// assert_eq!(bad.to_string(), "\"x\" is not a role ARN (from AWS_ROLE_ARN)");
/// let flag = BuildError::invalid(ROLE, Origin::Builder, "\"x\" is not a role ARN");
/// assert_eq!(flag.render(Naming::Flags), "\"x\" is not a role ARN (from --role-arn)");
/// ```
#[derive(Clone, Debug)]
pub struct BuildError {
    setting: Setting,
    origin: Option<Origin>,
    reason: Box<Message>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl BuildError {
    /// The value of `setting` from `origin` is invalid: `reason` says why and what is
    /// accepted (without naming the setting's source; `Display` adds it); the settings it
    /// names are rendered with the error's [`Naming`].
    pub fn invalid(setting: Setting, origin: Origin, reason: impl Into<Message>) -> Self {
        Self {
            setting,
            origin: Some(origin),
            reason: Box::new(reason.into()),
            source: None,
        }
    }

    /// `setting` is required and not set: `reason` says what is missing and what a value
    /// looks like.
    pub fn missing(setting: Setting, reason: impl Into<Message>) -> Self {
        Self {
            setting,
            origin: None,
            reason: Box::new(reason.into()),
            source: None,
        }
    }

    /// Attach the underlying error (shown in the cause chain).
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Which setting is wrong.
    pub fn setting(&self) -> Setting {
        self.setting
    }

    /// Where the bad value came from; `None` when the setting is missing.
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    /// Why the value is not accepted, without the setting's source (the settings it names
    /// as a library user sets them).
    pub fn reason(&self) -> String {
        self.reason.to_string()
    }

    /// The message, its setting named as `naming` says. A front end with flags shows a
    /// value it set on a builder without a flag by the reason alone.
    pub fn render(&self, naming: Naming) -> String {
        let reason = self.reason.render(naming);
        let setter = self.setting.setter(naming);
        match &self.origin {
            Some(Origin::Builder) => match setter {
                Some(setter) => format!("{reason} (from {setter})"),
                None => reason,
            },
            Some(Origin::Env(var)) => format!("{reason} (from {var})"),
            Some(Origin::Profile(profile)) => {
                format!("{reason} (from the AWS config profile {profile:?})")
            }
            None => format!("{reason}; set {}", self.setting.render(naming)),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Naming::Builder))
    }
}

impl StdError for BuildError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// What went wrong at run time, and so what the caller should do next.
///
/// One vocabulary for the token client, the AWS provider and the GCP provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No Fly token source here: the default Machines API socket (`/.fly/api`) does not
    /// exist, so this process is probably not on a Fly Machine. A credentials chain should
    /// move on (the AWS provider reports `CredentialsNotLoaded`).
    NotOnFly,
    /// This provider is not configured here (the AWS provider without a role: no
    /// `AWS_ROLE_ARN`). A credentials chain should move on.
    NotConfigured,
    /// A setting is invalid or points at nothing (a token file or socket that does not
    /// exist, a [`BuildError`] met at run time). Fix the configuration; retrying will not help.
    InvalidConfiguration,
    /// This process may not read the token file or use the Machines API socket (a process
    /// that dropped root cannot use `/.fly/api`). Fetch the token before dropping privileges,
    /// or fix the file's permissions.
    PermissionDenied,
    /// The Machines API rejected the token request (a 4xx other than 429; see
    /// [`Error::status`]): check the audience, or `FLY_API_TOKEN` over HTTP.
    FlyApi,
    /// The cloud rejected the Fly token: AWS STS `InvalidIdentityToken`, `IDPRejectedClaim`
    /// or `AccessDenied`; Google STS `invalid_grant`, `unauthorized_client` or
    /// `invalid_target`; IAM Credentials refusing the impersonation (401/403). The trust
    /// configuration (the IAM OIDC provider and role trust policy, or the workload identity
    /// pool provider and its service-account binding) does not match the token; the message
    /// says what must match. See [`Error::code`]. Not retried.
    TrustRejected,
    /// The cloud rejected the request for another reason (a malformed session policy, a
    /// disabled region, a validation error, a service account that does not exist). See
    /// [`Error::code`]. Not retried.
    Rejected,
    /// Every attempt failed transiently: a connection error, a timeout, throttling (429),
    /// a 5xx, STS `IDPCommunicationError`. Try again later.
    Transient,
    /// A service answered 200 with something that is not what it should send (not JSON, no
    /// token, already expired). Check the endpoint URL.
    InvalidResponse,
    /// The Fly token is not a well-formed JWT (or is larger than 64 KiB). Check the token
    /// source.
    MalformedToken,
    /// The Fly token has expired, or has less than 30 s left, so it was not handed on: a token
    /// file nobody keeps fresh, or a token held in memory too long. The message names where
    /// the token came from and when it expired (RFC 3339 UTC). Not transient: fix whatever
    /// should rewrite the file, or fetch a new token.
    StaleToken,
}

/// A run-time failure of the token client or a cloud provider.
///
/// Messages say what failed and what to do; they never contain a token (every message and
/// code is passed through [`redact_jwts`] when the error is made). Cheap to clone: a failed
/// refresh is shared with every caller that waited for it.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: Message,
    /// `message` as a library user reads it.
    text: String,
    status: Option<u16>,
    code: Option<String>,
    /// The token client's own message, when a provider said getting the Fly token failed.
    fly_token_message: Option<Box<Message>>,
    /// The service that refused the request, when a provider names it.
    refused_by: Option<&'static str>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message that says what to do. It is transient when
    /// `kind` is [`ErrorKind::Transient`].
    /// A message about settings names them as data ([`Message::setting`]).
    pub fn new(kind: ErrorKind, message: impl Into<Message>) -> Self {
        let message = message.into();
        Self {
            kind,
            text: message.to_string(),
            message,
            status: None,
            code: None,
            fly_token_message: None,
            refused_by: None,
            source: None,
        }
    }

    /// Set the HTTP status the service answered with.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Set the service's error code (`InvalidIdentityToken`, `invalid_grant`,
    /// `PERMISSION_DENIED`, ...).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(redact_jwts(&code.into()));
        self
    }

    /// Attach the underlying error (shown in the cause chain).
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Prefix the message with what was being done: `"{doing}: {message}"`. Kind, status,
    /// code, transience and source are kept.
    pub fn context(mut self, doing: impl fmt::Display) -> Self {
        self.message = Message::from(format!("{doing}: ")).append(self.message);
        self.text = self.message.to_string();
        self
    }

    /// For a provider whose step of getting the Fly token failed with this token client
    /// error: [`context`](Self::context) with `doing` (such as `"could not get a Fly OIDC
    /// token"`), remembering the token client's own message for
    /// [`fly_token_message`](Self::fly_token_message).
    ///
    /// ```
    /// use fly_oidc::{Error, ErrorKind};
    /// let err = Error::new(ErrorKind::Transient, "the Machines API answered HTTP 500");
    /// let err = err.fly_token_context("could not get a Fly OIDC token");
    /// assert_eq!(err.to_string(), "could not get a Fly OIDC token: the Machines API answered HTTP 500");
    /// assert_eq!(err.fly_token_message().unwrap().to_string(), "the Machines API answered HTTP 500");
    /// ```
    pub fn fly_token_context(mut self, doing: impl fmt::Display) -> Self {
        let own = self.message.clone();
        self = self.context(doing);
        self.fly_token_message = Some(Box::new(own));
        self
    }

    /// When this is a provider's error saying getting the Fly token failed (made by
    /// [`fly_token_context`](Self::fly_token_context)): the token client's message, without
    /// the provider's context, so a front end that names the step itself says it once.
    /// `None` for every other error.
    pub fn fly_token_message(&self) -> Option<&Message> {
        self.fly_token_message.as_deref()
    }

    /// Name the service that refused the request (such as `fly_oidc_gcp`'s Google STS or IAM
    /// Credentials), so a front end can say which call failed without reading the message.
    pub fn with_refused_by(mut self, service: &'static str) -> Self {
        self.refused_by = Some(service);
        self
    }

    /// The service that refused the request, when the error says so (see
    /// [`with_refused_by`](Self::with_refused_by)); `None` for every other failure (a
    /// transient one included).
    pub fn refused_by(&self) -> Option<&'static str> {
        self.refused_by
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status the service answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The service's error code, if it gave one: an STS error code (`InvalidIdentityToken`,
    /// `AccessDenied`, ...), Google STS's OAuth `error` (`invalid_grant`, ...) or IAM's
    /// `status` (`PERMISSION_DENIED`, ...). Never carries a token.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether trying again later may succeed (the failure was transient on every attempt).
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// Whether this process does not seem to run on a Fly Machine
    /// ([`ErrorKind::NotOnFly`]): a provider chain can move on.
    pub fn is_not_on_fly(&self) -> bool {
        self.kind == ErrorKind::NotOnFly
    }

    /// The message without the cause chain (settings named as a library user sets them).
    pub fn message(&self) -> &str {
        &self.text
    }

    /// The message with the settings it names as data ([`Message::settings`], in order).
    pub fn named_message(&self) -> &Message {
        &self.message
    }

    /// The message, its settings named as `naming` says.
    pub fn render(&self, naming: Naming) -> String {
        self.message.render(naming)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<BuildError> for Error {
    /// A [`BuildError`] met at run time (a provider built lazily): an
    /// [`ErrorKind::InvalidConfiguration`] error with the same message (its setting as data).
    fn from(err: BuildError) -> Self {
        let reason = (*err.reason).clone();
        let message = match &err.origin {
            Some(Origin::Builder) => reason.text(" (from ").name(err.setting).text(")"),
            None => reason.text("; set ").setting(err.setting),
            Some(Origin::Env(var)) => reason.text(format!(" (from {var})")),
            Some(Origin::Profile(profile)) => {
                reason.text(format!(" (from the AWS config profile {profile:?})"))
            }
        };
        Error::new(ErrorKind::InvalidConfiguration, message).with_source(err)
    }
}

/// Replace anything in `text` that looks like a JWT (three base64url parts starting
/// with `eyJ`), or like one base64-encoded (a base64 word starting `ZXlK` that decodes to
/// one), with `** redacted **`, so upstream messages can be shown safely. A JWT percent-encoded
/// or JSON-escaped is the same text (its alphabet needs no escaping). For secrets the caller
/// knows (an API token), see [`redact_secret`].
///
/// ```
/// let out = fly_oidc::redact_jwts("bad token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln here");
/// assert_eq!(out, "bad token ** redacted ** here");
/// ```
pub fn redact_jwts(text: &str) -> String {
    redact_base64_jwts(&redact_raw_jwts(text))
}

fn redact_raw_jwts(text: &str) -> String {
    redact_words(
        text,
        "eyJ",
        |c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.',
        |word| word.split('.').filter(|p| !p.is_empty()).count() >= 2,
    )
}

/// `text` with each word that starts with `start` (and runs on while `in_word`) replaced by
/// `** redacted **` when `secret(word)` says so.
fn redact_words(
    text: &str,
    start: &str,
    in_word: impl Fn(char) -> bool,
    secret: impl Fn(&str) -> bool,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(start) {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        let end = candidate
            .find(|c: char| !in_word(c))
            .unwrap_or(candidate.len());
        let word = &candidate[..end];
        out.push_str(if secret(word) { crate::REDACTED } else { word });
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with each base64 or base64url word that starts as an encoded JWT does (`ZXlK`, the
/// encoding of `eyJ`) and decodes to text holding one replaced by `** redacted **`.
fn redact_base64_jwts(text: &str) -> String {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let engines = [
        GeneralPurpose::new(&base64::alphabet::STANDARD, config),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, config),
    ];
    redact_words(
        text,
        "ZXlK",
        |c| c.is_ascii_alphanumeric() || "+/=_-".contains(c),
        |word| {
            engines.iter().any(|engine| {
                engine
                    .decode(word.trim_end_matches('='))
                    .is_ok_and(|bytes| {
                        let decoded = String::from_utf8_lossy(&bytes);
                        redact_raw_jwts(&decoded) != decoded
                    })
            })
        },
    )
}

/// The shortest secret [`redact_secret`] looks for: a shorter one would take ordinary words.
const MIN_SECRET_LEN: usize = 8;

/// Replace every occurrence of `secret` in `text` with `** redacted **`, in each form an
/// upstream service that echoes a request might write it:
///
/// - as it is;
/// - percent-encoded, each character encoded or not (encoders differ on `,`, `/`, `:`), hex
///   in either case, a space as `%20` or `+` (form encoding);
/// - JSON-escaped: `\/`, `\"`, `\\`, `\n` and the like, and `\u002B` for any ASCII character;
/// - base64 and base64url, padded or not, at any alignment (inside a longer encoded text,
///   such as an `Authorization: Basic` value), and those forms percent-encoded or escaped.
///
/// What is left is then searched for a trace of `secret` in a form not listed: 16 of its
/// characters in a row, in any case (a token split in two, or upper-cased), its hexadecimal
/// form, or either of those percent-encoded once or twice. When one is found, the whole text
/// is replaced by `** redacted ** (the text held part of a secret in another form, so it is left
/// out whole)`: what an upstream wrote that way cannot be shown in part.
///
/// A `secret` shorter than 8 bytes is left alone (it would take ordinary words with it).
/// Messages holding upstream text pass every secret the caller knows through this (the token
/// client: `FLY_API_TOKEN`), then through [`redact_jwts`] (tokens it cannot know).
///
/// ```
/// let secret = "FlyV1 fm2_ab+c/d==";
/// let echoed = "got FlyV1+fm2_ab%2Bc%2Fd%3D%3D and \"FlyV1 fm2_ab+c\\/d==\"";
/// assert_eq!(
///     fly_oidc::redact_secret(echoed, secret),
///     "got ** redacted ** and \"** redacted **\""
/// );
/// // base64 of "Bearer FlyV1 fm2_ab+c/d==": the secret starts at byte 7.
/// let basic = fly_oidc::redact_secret("QmVhcmVyIEZseVYxIGZtMl9hYitjL2Q9PQ==", secret);
/// assert!(basic.contains("** redacted **") && !basic.contains("ZseVYxIGZtMl9hYitjL2Q9"), "{basic}");
/// ```
pub fn redact_secret(text: &str, secret: &str) -> String {
    redact_secrets(text, &[secret])
}

/// [`redact_secret`] for several secrets at once, in the order given (a whole token before its
/// parts): each is replaced in place first, and only then is the text searched for a trace of
/// any of them, so that one secret's part is not taken for a trace of another's.
pub(crate) fn redact_secrets(text: &str, secrets: &[&str]) -> String {
    let secrets: Vec<&[u8]> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .map(|s| s.as_bytes())
        .collect();
    let mut out = text.to_owned();
    for secret in &secrets {
        out = redact_encoded(&out, secret);
        for form in base64_forms(secret) {
            out = redact_encoded(&out, form.as_bytes());
        }
    }
    if secrets.iter().any(|secret| holds_trace(&out, secret)) {
        return TRACE_LEFT_OUT.to_owned();
    }
    out
}

/// What [`redact_secret`] answers for a text that holds a trace of the secret in a form it
/// cannot redact in place.
const TRACE_LEFT_OUT: &str =
    "** redacted ** (the text held part of a secret in another form, so it is left out whole)";

/// The shortest run of a secret's characters that [`holds_trace`] takes for a trace of it.
const TRACE_LEN: usize = 16;

/// Whether `text`, in any case and percent-decoded up to twice, holds [`TRACE_LEN`]
/// characters in a row of `secret` or 2 × [`TRACE_LEN`] of its hexadecimal form.
fn holds_trace(text: &str, secret: &[u8]) -> bool {
    use std::collections::HashSet;
    let plain = secret.to_ascii_lowercase();
    let hex: Vec<u8> = secret
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect();
    let (plain_len, hex_len) = (TRACE_LEN.min(plain.len()), 2 * TRACE_LEN);
    let pieces: HashSet<&[u8]> = plain
        .windows(plain_len)
        .chain(hex.windows(hex_len))
        .collect();
    let mut variant = text.as_bytes().to_ascii_lowercase();
    for _ in 0..3 {
        if [plain_len, hex_len]
            .iter()
            .any(|&len| variant.windows(len).any(|w| pieces.contains(w)))
        {
            return true;
        }
        variant = percent_decoded(&variant).to_ascii_lowercase();
    }
    false
}

/// `bytes` with each `%XX` decoded (and `+` as a space), once.
fn percent_decoded(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let digit = |i: usize| bytes.get(i).copied().and_then(hex);
        match (byte, digit(at + 1), digit(at + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                at += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                at += 1;
            }
            (b, _, _) => {
                out.push(b);
                at += 1;
            }
        }
    }
    out
}

/// The parts of the base64 and base64url encodings of `secret` that do not depend on the
/// bytes around it, at each of the three alignments it can have in a longer encoded text.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms = Vec::new();
    for skip in 0..3usize {
        let mut bytes = vec![0u8; skip];
        bytes.extend_from_slice(secret);
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            // Characters wholly made of the secret's bits: from bit 8*skip to 8*(skip+len).
            let start = (8 * skip).div_ceil(6);
            let end = (8 * (skip + secret.len())) / 6;
            if let Some(core) = encoded.get(start..end)
                && core.len() >= MIN_SECRET_LEN
                && !forms.iter().any(|f| f == core)
            {
                forms.push(core.to_owned());
            }
        }
    }
    forms
}

/// `text` with every match of `secret` ([`match_encoded`]) replaced by `** redacted **`.
fn redact_encoded(text: &str, secret: &[u8]) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        match match_encoded(bytes, at, secret) {
            // A match starts and ends on ASCII bytes (a secret's first and last byte, or an
            // escape's), so both ends are char boundaries.
            Some(end) if text.is_char_boundary(at) && text.is_char_boundary(end) => {
                out.push_str(&text[copied..at]);
                out.push_str(crate::REDACTED);
                (copied, at) = (end, end);
            }
            _ => at += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Where a match of `secret` at `at` in `text` ends: each byte of `secret` written as it is,
/// percent-encoded (`%2b` or `%2B`; `+` for a space) or JSON-escaped (`\/`, `\u002b`, ...).
fn match_encoded(text: &[u8], mut at: usize, secret: &[u8]) -> Option<usize> {
    let hex = |from: usize, len: usize| -> Option<u32> {
        let digits = text.get(from..from + len)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    for &byte in secret {
        let next = *text.get(at)?;
        at += match next {
            _ if next == byte => 1,
            b'+' if byte == b' ' => 1,
            b'%' if hex(at + 1, 2) == Some(u32::from(byte)) => 3,
            b'\\' => match (*text.get(at + 1)?, byte) {
                (b'u', _) if byte.is_ascii() && hex(at + 2, 4) == Some(u32::from(byte)) => 6,
                (b'/', b'/') | (b'"', b'"') | (b'\\', b'\\') | (b'\'', b'\'') => 2,
                (b'n', b'\n') | (b'r', b'\r') | (b't', b'\t') => 2,
                (b'b', 0x08) | (b'f', 0x0c) => 2,
                _ => return None,
            },
            _ => return None,
        };
    }
    Some(at)
}

/// Cut `text` to at most `max` characters (on a char boundary), marking the cut with `…`;
/// for quoting upstream text in messages.
///
/// ```
/// assert_eq!(fly_oidc::truncate("abcdef", 3), "abc…");
/// assert_eq!(fly_oidc::truncate("abc", 3), "abc");
/// ```
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, ErrorKind};

    /// A provider's Fly-token failure keeps the token client's message apart (redacted, and
    /// kept through a later context), and says nothing of a refusing service.
    #[test]
    fn a_fly_token_failure_keeps_the_token_clients_message() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let err = Error::new(ErrorKind::FlyApi, format!("HTTP 400 for {jwt}"))
            .with_status(400)
            .fly_token_context("could not get a Fly OIDC token")
            .context("exec");
        let own = err.fly_token_message().map(ToString::to_string);
        assert_eq!(own.as_deref(), Some("HTTP 400 for ** redacted **"));
        assert_eq!(
            err.message(),
            "exec: could not get a Fly OIDC token: HTTP 400 for ** redacted **"
        );
        assert_eq!((err.kind(), err.status()), (ErrorKind::FlyApi, Some(400)));
        assert_eq!(err.refused_by(), None);
        assert!(!format!("{err:?}").contains("eyJ"));
        assert_eq!(
            Error::new(ErrorKind::Transient, "x").fly_token_message(),
            None
        );
    }

    /// A Fly API token as Fly writes them: a space, `+`, `/`, `=` and a comma.
    const SECRET: &str = "FlyV1 fm2_lJPE+AAAA/xB0k=,fm2_QmVh+Y2Rl/Zg==";

    /// Every form an echoing upstream may use, encoded here independently of the redactor.
    fn encoded_forms(secret: &str) -> Vec<(&'static str, String)> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let percent = |keep: &dyn Fn(char) -> bool, space: &str, upper: bool| -> String {
            secret
                .chars()
                .map(|c| match c {
                    ' ' => space.to_owned(),
                    c if keep(c) => c.to_string(),
                    c if upper => format!("%{:02X}", c as u32),
                    c => format!("%{:02x}", c as u32),
                })
                .collect()
        };
        let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
        let uri = |c: char| unreserved(c) || ",/".contains(c);
        let json_u = secret
            .chars()
            .map(|c| match c.is_ascii_alphanumeric() {
                true => c.to_string(),
                false => format!("\\u{:04X}", c as u32),
            })
            .collect();
        vec![
            ("raw", secret.to_owned()),
            ("percent-encoded", percent(&unreserved, "%20", true)),
            (
                "percent-encoded, lower-case hex",
                percent(&unreserved, "%20", false),
            ),
            ("form-encoded", percent(&unreserved, "+", true)),
            ("encodeURI-style", percent(&uri, "%20", true)),
            ("JSON \\/", secret.replace('/', "\\/")),
            ("JSON \\u", json_u),
            ("base64", STANDARD.encode(secret)),
            ("base64url", URL_SAFE_NO_PAD.encode(secret)),
            ("base64 in Basic", STANDARD.encode(format!("user:{secret}"))),
            (
                "base64 after Bearer",
                STANDARD.encode(format!("Bearer {secret}")),
            ),
            (
                "base64 percent-encoded",
                STANDARD
                    .encode(secret)
                    .replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D"),
            ),
        ]
    }

    #[test]
    fn a_known_secret_is_redacted_in_every_encoded_form() {
        for (form, encoded) in encoded_forms(SECRET) {
            let text = format!("rejected: {encoded} (end)");
            let out = super::redact_secret(&text, SECRET);
            assert!(out.contains(crate::REDACTED), "{form}: {out}");
            assert!(out.ends_with(" (end)"), "{form}: {out}");
            // At most the few characters at the edges that also encode other bytes are left
            // (after the first 10, which may encode the "user:" or "Bearer " before it).
            for piece in encoded.as_bytes()[10..].windows(8) {
                let piece = String::from_utf8_lossy(piece);
                assert!(!out.contains(&*piece), "{form}: {piece:?} is left in {out}");
            }
        }
        // Ordinary text, and a secret too short to look for, are left alone.
        assert_eq!(
            super::redact_secret("a FlyV1 token", SECRET),
            "a FlyV1 token"
        );
        assert_eq!(super::redact_secret("abc abc", "abc"), "abc abc");
        // Multi-byte text around a match stays whole.
        let out = super::redact_secret(&format!("é{SECRET}é"), SECRET);
        assert_eq!(out, format!("é{}é", crate::REDACTED));
    }

    #[test]
    fn a_trace_of_a_secret_in_another_form_leaves_the_whole_text_out() {
        let secret = "FlyV1 fm2_lJPECAAAAAAAAMSr+BBEV6Ks/3g==,fm2_lJPETmFtZSBhbmQ+c2lnbmF0dXJl/w==";
        let percent = |text: &str| -> String {
            text.bytes()
                .map(|b| match b.is_ascii_alphanumeric() {
                    true => (b as char).to_string(),
                    false => format!("%{b:02X}"),
                })
                .collect()
        };
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        for (form, echoed) in [
            ("upper-cased", secret.to_uppercase()),
            ("double percent-encoded", percent(&percent(secret))),
            ("hex", hex.clone()),
            ("HEX", hex.to_uppercase()),
            ("percent-encoded hex", percent(&hex)),
            ("its first 24 characters", secret[..24].to_owned()),
            (
                "its last 20 characters",
                secret[secret.len() - 20..].to_owned(),
            ),
        ] {
            let shown = super::redact_secret(&format!("bad token {echoed} here"), secret);
            assert_eq!(shown, super::TRACE_LEFT_OUT, "{form}");
        }
        // An answer without a trace is kept; a form the redaction knows is redacted in place.
        let kept = "HTTP 401: token expired; create another with fly tokens create";
        assert_eq!(super::redact_secret(kept, secret), kept);
        let shown = super::redact_secret(&format!("bad {secret} here"), secret);
        assert_eq!(shown, "bad ** redacted ** here");
    }

    #[test]
    fn a_base64_encoded_jwt_is_redacted() {
        use base64::Engine as _;
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let text = format!("echo: {} end", engine.encode(format!("{jwt}\n")));
            assert_eq!(super::redact_jwts(&text), "echo: ** redacted ** end");
        }
        // A word that starts the same but decodes to no JWT stays.
        assert_eq!(super::redact_jwts("ZXlKhello"), "ZXlKhello");
    }

    #[test]
    fn the_refusing_service_is_kept_through_a_context() {
        let err = Error::new(ErrorKind::TrustRejected, "no")
            .with_refused_by("Google STS")
            .context("getting a Google access token");
        assert_eq!(err.refused_by(), Some("Google STS"));
        assert_eq!(err.fly_token_message(), None);
        assert_eq!(Error::new(ErrorKind::Rejected, "no").refused_by(), None);
    }
}
