//! Configuration errors and the reasons a delivery is refused.

use std::{error::Error as StdError, fmt};

use http::StatusCode;

/// A boxed error: from a request body, a handler or a store's cause.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A mistake in how the crate was set up, found before any request is served.
///
/// Configuration errors are kept apart from [`VerifyError`]: they mean the receiver must not
/// start, not that a request was bad.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The secret is empty; an empty HMAC key protects nothing.
    #[error("the webhook secret is empty")]
    EmptySecret,
    /// A verifier was given no secret at all.
    #[error("at least one webhook secret is required")]
    NoSecrets,
}

/// Why a delivery was refused, independent of any web framework.
///
/// Each kind maps to one HTTP status ([`ErrorKind::status`]) and one stable name for logs and
/// metrics ([`ErrorKind::as_str`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request was not a `POST` (405).
    MethodNotAllowed,
    /// Neither signature header was present (401).
    MissingSignature,
    /// The signature header is not the standard, padded base64 of a 32-byte MAC (401).
    MalformedSignature,
    /// Signature headers disagree: both names with different values, or one name repeated with
    /// different values (401).
    AmbiguousSignature,
    /// The signature is well-formed but matches no configured secret (401).
    SignatureMismatch,
    /// The body is larger than the configured limit, declared or streamed (413).
    BodyTooLarge,
    /// The body did not arrive within the configured deadline (408).
    BodyTimeout,
    /// Reading the body failed, for example because the client went away (400).
    BodyRead,
    /// The optional freshness check is on and the signed `created_at` is too old, too far in
    /// the future, or missing (422).
    Stale,
}

impl ErrorKind {
    /// The HTTP status a receiver answers with.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MissingSignature
            | Self::MalformedSignature
            | Self::AmbiguousSignature
            | Self::SignatureMismatch => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyRead => StatusCode::BAD_REQUEST,
            Self::Stale => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// A stable `snake_case` name, for logs and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::AmbiguousSignature => "ambiguous_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BodyRead => "body_read",
            Self::Stale => "stale",
        }
    }

    /// Whether this kind is an authentication failure (answered with 401).
    #[must_use]
    pub const fn is_authentication(self) -> bool {
        matches!(self.status(), StatusCode::UNAUTHORIZED)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery was refused: its [`ErrorKind`] and a short, human-readable reason.
///
/// The reason never contains the body, the secret or the signature; it is safe to log and to
/// send back to the client.
#[derive(Debug)]
pub struct VerifyError {
    kind: ErrorKind,
    reason: &'static str,
    source: Option<BoxError>,
}

impl VerifyError {
    pub(crate) const fn new(kind: ErrorKind, reason: &'static str) -> Self {
        Self {
            kind,
            reason,
            source: None,
        }
    }

    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // used by the body readers
    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Why the delivery was refused.
    #[must_use]
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status a receiver answers with; the same as `self.kind().status()`.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The short reason, for example `"signature looks like hex; expected base64"`.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl StdError for VerifyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_authentication_failure_is_401() {
        for kind in [
            ErrorKind::MissingSignature,
            ErrorKind::MalformedSignature,
            ErrorKind::AmbiguousSignature,
            ErrorKind::SignatureMismatch,
        ] {
            assert_eq!(kind.status(), StatusCode::UNAUTHORIZED, "{kind}");
            assert!(kind.is_authentication());
        }
    }

    #[test]
    fn transport_failures_have_their_own_status() {
        assert_eq!(ErrorKind::MethodNotAllowed.status(), 405);
        assert_eq!(ErrorKind::BodyTooLarge.status(), 413);
        assert_eq!(ErrorKind::BodyTimeout.status(), 408);
        assert_eq!(ErrorKind::BodyRead.status(), 400);
        assert_eq!(ErrorKind::Stale.status(), 422);
        assert!(!ErrorKind::BodyTooLarge.is_authentication());
    }

    #[test]
    fn displays_the_reason_and_keeps_the_source() {
        let io = std::io::Error::other("connection reset");
        let error =
            VerifyError::new(ErrorKind::BodyRead, "failed to read the body").with_source(io);
        assert_eq!(error.to_string(), "failed to read the body");
        assert_eq!(error.kind().as_str(), "body_read");
        assert!(error.source().is_some());
    }
}
