//! Errors: construction errors apart from runtime errors, each with a kind that says what to do.

use aws_credential_types::provider::error::CredentialsError;
use std::error::Error as StdError;
use std::fmt;

/// A setting given to [`Builder`](crate::Builder) (or read from the environment) is invalid.
///
/// Returned by [`Builder::build`](crate::Builder::build); the message names the setting and
/// the accepted values.
pub struct BuildError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl BuildError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildError")
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for BuildError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<BuildError> for CredentialsError {
    fn from(err: BuildError) -> Self {
        CredentialsError::invalid_configuration(err)
    }
}

/// What went wrong when assuming the role, and so what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// This provider does not apply here: not on a Fly Machine (no `/.fly/api` socket and no
    /// other Fly token source), or no role configured (`AWS_ROLE_ARN`). A credentials chain
    /// moves on. Maps to [`CredentialsError::CredentialsNotLoaded`].
    NotLoaded,
    /// The configuration is invalid (a bad token source, a missing `FLY_API_TOKEN`). Maps to
    /// [`CredentialsError::InvalidConfiguration`].
    InvalidConfiguration,
    /// STS rejected the Fly token or the role refused it (`InvalidIdentityToken`,
    /// `IDPRejectedClaim`, `AccessDenied`): the IAM OIDC provider or the role's trust policy
    /// does not match the token. The message says what they must match. Not retried.
    TrustPolicy,
    /// STS rejected the request for another reason (a malformed or too-large session policy,
    /// a disabled region, a validation error). Not retried.
    Rejected,
    /// STS (or the network) failed transiently (`IDPCommunicationError`, throttling, 5xx,
    /// timeouts, connection errors) on every attempt.
    Transient,
    /// The Fly token could not be fetched (see the cause).
    FlyToken,
    /// STS answered with something that is not usable credentials.
    InvalidResponse,
}

/// An error from assuming the role. The message never contains a token or a secret.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    code: Option<String>,
    transient: bool,
    source: Option<std::sync::Arc<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            transient: kind == ErrorKind::Transient,
            source: None,
        }
    }

    pub(crate) fn with_transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    pub(crate) fn with_code(mut self, code: Option<&str>) -> Self {
        self.code = code.map(str::to_owned);
        self
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The STS error code (`InvalidIdentityToken`, `AccessDenied`, ...), when STS answered with one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The message without the cause chain.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("code", &self.code)
            .field("transient", &self.transient)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<Error> for CredentialsError {
    /// `NotLoaded` becomes `CredentialsNotLoaded` (a chain moves on), `InvalidConfiguration`
    /// becomes `InvalidConfiguration`, `InvalidResponse` becomes `Unhandled`, and the rest
    /// `ProviderError` (the chain stops: this provider applies but failed).
    fn from(err: Error) -> Self {
        match err.kind {
            ErrorKind::NotLoaded => CredentialsError::not_loaded(err),
            ErrorKind::InvalidConfiguration => CredentialsError::invalid_configuration(err),
            ErrorKind::InvalidResponse => CredentialsError::unhandled(err),
            ErrorKind::TrustPolicy
            | ErrorKind::Rejected
            | ErrorKind::Transient
            | ErrorKind::FlyToken => CredentialsError::provider_error(err),
        }
    }
}
