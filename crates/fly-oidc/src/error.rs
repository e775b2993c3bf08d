//! The error type of the token client.

use std::error::Error as StdError;
use std::fmt;

/// What went wrong, and so what the caller should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The default Machines API socket (`/.fly/api`) does not exist: this process is
    /// probably not running on a Fly Machine. A credentials chain should move on.
    NotOnFly,
    /// The configuration is invalid or incomplete (a missing `FLY_API_TOKEN`, a bad URL,
    /// a token file or socket that does not exist). Fix the configuration.
    InvalidConfiguration,
    /// Access to the socket or token file was denied (a process that dropped root
    /// cannot use `/.fly/api`).
    PermissionDenied,
    /// The Machines API answered with a status other than 200. See [`Error::status`];
    /// 429 and 5xx are transient.
    Rejected,
    /// The request did not complete: connection refused or reset, or a timeout. Transient.
    Transport,
    /// The answer was not a well-formed JWT (or was larger than the 64 KiB cap).
    MalformedToken,
}

/// An error from fetching or parsing a Fly OIDC token.
///
/// Messages say what failed and what to do; they never contain a token.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    source: Option<std::sync::Arc<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message that says what to do.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            source: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
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

    /// The HTTP status the Machines API answered with, for [`ErrorKind::Rejected`].
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Whether trying again later may succeed: transport failures, timeouts, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Transport => true,
            ErrorKind::Rejected => matches!(self.status, Some(429) | Some(500..=599)),
            _ => false,
        }
    }

    /// Whether the error means "not on a Fly Machine", so a provider chain can move on.
    pub fn is_not_on_fly(&self) -> bool {
        self.kind == ErrorKind::NotOnFly
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

/// Replace anything in `text` that looks like a JWT (three base64url parts starting
/// with `eyJ`) with `** redacted **`, so upstream messages can be shown safely.
///
/// ```
/// let out = fly_oidc::redact_jwts("bad token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln here");
/// assert_eq!(out, "bad token ** redacted ** here");
/// ```
pub fn redact_jwts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(candidate.len());
        let word = &candidate[..end];
        if word.split('.').filter(|p| !p.is_empty()).count() >= 2 {
            out.push_str(crate::REDACTED);
        } else {
            out.push_str(word);
        }
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
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
