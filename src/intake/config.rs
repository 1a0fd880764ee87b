//! The defaults every adapter shares, and the rejection responses.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::core::error::{ErrorKind, VerifyError};

/// The default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default deadline for the whole body to arrive: 10 seconds.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The default `Retry-After` of a 503 when the backlog is full or the store failed: 5 seconds.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The default response to a refused delivery: the kind's status and the reason as plain text,
/// `Allow: POST` on 405 and `Connection: close` when the body was not read to its end.
#[must_use]
pub fn default_rejection(error: &VerifyError) -> Response<Bytes> {
    let mut response = text_response(error.status(), error.reason());
    let headers = response.headers_mut();
    match error.kind() {
        ErrorKind::MethodNotAllowed => {
            headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        ErrorKind::BodyTooLarge | ErrorKind::BodyTimeout | ErrorKind::BodyRead => {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    response
}

pub(crate) fn text_response(status: StatusCode, text: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(text.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
