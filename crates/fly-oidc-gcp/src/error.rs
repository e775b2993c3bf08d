//! The error type of the GCP provider.

use std::error::Error as StdError;
use std::fmt;

/// What went wrong, and so what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid or incomplete (no provider, a bad URL or service
    /// account). Fix the configuration; retrying will not help.
    InvalidConfiguration,
    /// Getting the Fly OIDC token failed. The source is the [`fly_oidc::Error`];
    /// [`Error::is_not_on_fly`] tells whether this process is on a Fly Machine at all.
    FlyToken,
    /// Google's STS rejected the exchange (`invalid_grant`, `invalid_request`,
    /// `unauthorized_client`, `invalid_target`, ...): the workload identity pool provider
    /// does not trust this token. See [`Error::google_error`].
    Rejected,
    /// IAM refused to impersonate the service account (403/404/401): the federated
    /// principal lacks `roles/iam.workloadIdentityUser`, or the account does not exist.
    PermissionDenied,
    /// Google answered with 429 or 5xx, or the connection failed or timed out, after
    /// the retries. Transient.
    Transport,
    /// Google answered something that is not the expected JSON.
    InvalidResponse,
}

/// An error from getting a Google access token.
///
/// Messages say what failed and what to check; they never contain a token.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    google_error: Option<String>,
    transient: bool,
    not_on_fly: bool,
    source: Option<std::sync::Arc<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: fly_oidc::redact_jwts(&message.into()),
            status: None,
            google_error: None,
            transient: kind == ErrorKind::Transport,
            not_on_fly: false,
            source: None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfiguration, message)
    }

    pub(crate) fn fly(err: fly_oidc::Error) -> Self {
        let mut e = Self::new(
            ErrorKind::FlyToken,
            format!("getting a Fly OIDC token failed: {}", err.message()),
        );
        e.transient = err.is_transient();
        e.not_on_fly = err.is_not_on_fly();
        e.status = err.status();
        e.source = Some(std::sync::Arc::new(err));
        e
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self.transient = self.transient || status == 429 || (500..=599).contains(&status);
        self
    }

    pub(crate) fn with_google_error(mut self, code: impl Into<String>) -> Self {
        // The code comes from the endpoint: never let it carry a token.
        self.google_error = Some(fly_oidc::redact_jwts(&code.into()));
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

    /// The HTTP status Google (or the Fly API) answered with, if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Google's error code: the OAuth `error` of the STS (`invalid_grant`, ...) or the
    /// `status` of the IAM API (`PERMISSION_DENIED`, ...).
    pub fn google_error(&self) -> Option<&str> {
        self.google_error.as_deref()
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// Whether this process does not seem to run on a Fly Machine (a provider chain
    /// should move on).
    pub fn is_not_on_fly(&self) -> bool {
        self.not_on_fly
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
            .field("message", &self.message)
            .field("status", &self.status)
            .field("google_error", &self.google_error)
            .field("transient", &self.transient)
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
