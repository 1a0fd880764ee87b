//! [`WebhookError`]: why an actix-web extractor refused a delivery, as a `ResponseError`.

use std::{error::Error as StdError, fmt};

use actix_web::{
    http::{header, StatusCode as ActixStatus},
    HttpResponse, ResponseError,
};
use http::StatusCode;

use crate::core::error::{ErrorKind, VerifyError};

/// Why the actix-web [`Delivery`](crate::Delivery) or
/// [`WebhookEvent`](crate::actix::WebhookEvent) extractor, or
/// [`WebhookResource`](crate::actix::WebhookResource), refused a request.
///
/// It implements [`ResponseError`]: the status is 401 for every authentication failure, 413
/// for a body over the limit (declared or streamed), 408 when the body is late, 400 when it
/// could not be read, 405 for a method other than `POST` at a `WebhookResource`, 422 for an
/// authentic body that does not parse as the requested type, and 500 when no
/// [`WebhookConfig`](crate::actix::WebhookConfig) is registered. The response body is the
/// plain-text [`Display`](fmt::Display) of the error.
///
/// # Security
///
/// Neither `Display` nor `Debug` contains the body, the secret or the signature: a parse
/// error shows only where parsing stopped (line and column).
#[non_exhaustive]
pub enum WebhookError {
    /// The delivery was refused before it could be trusted; see [`VerifyError::kind`].
    Refused(VerifyError),
    /// The body is authentic but does not deserialize as the requested type (422).
    Unparseable(serde_json::Error),
    /// No [`WebhookConfig`](crate::actix::WebhookConfig) in `app_data` (500, a setup mistake).
    NotConfigured,
}

impl WebhookError {
    /// The status of the response, as the `http` 1 type used across this crate.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::Refused(error) => error.status(),
            Self::Unparseable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The refusal's kind, when the delivery was refused before it could be trusted.
    #[must_use]
    pub const fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Refused(error) => Some(error.kind()),
            _ => None,
        }
    }

    /// Logs the refusal: a warning, or an error for a setup mistake. Never the body.
    pub(crate) fn log(&self) {
        let status = self.status().as_u16();
        match self {
            Self::Refused(error) => tracing::warn!(
                kind = error.kind().as_str(),
                status,
                reason = error.reason(),
                "webhook rejected"
            ),
            Self::Unparseable(error) => tracing::warn!(
                status,
                line = error.line(),
                column = error.column(),
                "authentic webhook body did not parse"
            ),
            Self::NotConfigured => tracing::error!(
                status,
                "no WebhookConfig in app_data: register one with App::app_data(WebhookConfig::new(verifier))"
            ),
        }
    }
}

impl From<VerifyError> for WebhookError {
    fn from(error: VerifyError) -> Self {
        Self::Refused(error)
    }
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(error) => fmt::Display::fmt(error, f),
            Self::Unparseable(_) => f.write_str("authentic webhook body did not parse"),
            Self::NotConfigured => f.write_str("webhook verification is not configured"),
        }
    }
}

impl fmt::Debug for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(error) => f.debug_tuple("Refused").field(error).finish(),
            Self::Unparseable(error) => f
                .debug_struct("Unparseable")
                .field("line", &error.line())
                .field("column", &error.column())
                .finish_non_exhaustive(),
            Self::NotConfigured => f.write_str("NotConfigured"),
        }
    }
}

impl StdError for WebhookError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Refused(error) => Some(error),
            Self::Unparseable(error) => Some(error),
            Self::NotConfigured => None,
        }
    }
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> ActixStatus {
        ActixStatus::from_u16(self.status().as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR)
    }

    /// The status, the text of the error, `Allow: POST` on 405 and `Connection: close` when
    /// the body was not read to its end.
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header(header::ContentType::plaintext());
        match self.kind() {
            Some(ErrorKind::MethodNotAllowed) => {
                response.insert_header((header::ALLOW, "POST"));
            }
            Some(ErrorKind::BodyTooLarge | ErrorKind::BodyTimeout | ErrorKind::BodyRead) => {
                response.force_close();
            }
            _ => {}
        }
        response.body(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(kind: ErrorKind) -> WebhookError {
        WebhookError::Refused(VerifyError::new(kind, "refused"))
    }

    #[test]
    fn actix_status_matches_the_core_status() {
        for kind in [
            ErrorKind::MethodNotAllowed,
            ErrorKind::MissingSignature,
            ErrorKind::SignatureMismatch,
            ErrorKind::BodyTooLarge,
            ErrorKind::BodyTimeout,
            ErrorKind::BodyRead,
        ] {
            let error = refused(kind);
            assert_eq!(
                error.status_code().as_u16(),
                kind.status().as_u16(),
                "{kind}"
            );
        }
        assert_eq!(WebhookError::NotConfigured.status_code().as_u16(), 500);
    }

    #[test]
    fn a_parse_error_shows_neither_in_display_nor_debug_what_the_body_said() {
        let parse = serde_json::from_str::<u32>(r#""secret-order-id""#).unwrap_err();
        let error = WebhookError::Unparseable(parse);
        assert_eq!(error.status_code().as_u16(), 422);
        let printed = format!("{error} {error:?}");
        assert!(!printed.contains("secret-order-id"), "{printed}");
    }

    #[test]
    fn a_405_names_the_allowed_method() {
        let response = refused(ErrorKind::MethodNotAllowed).error_response();
        assert_eq!(response.headers().get(header::ALLOW).unwrap(), "POST");
    }
}
