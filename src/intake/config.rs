//! Settings shared by the tower services, and the rejection responses.

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, request::Parts, HeaderValue, Method, Response, StatusCode};

use crate::{
    core::error::{ErrorKind, VerifyError},
    core::verify::Verifier,
    intake::body::Accumulator,
    intake::checks::{begin, declared_length, method_not_allowed},
    worker::metrics::Metrics,
};

/// Builds the response for a refused delivery.
pub(crate) type Responder = Arc<dyn Fn(&VerifyError) -> Response<Bytes> + Send + Sync>;

/// The default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default deadline for the whole body to arrive: 10 seconds.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The default `Retry-After` of a 503 when the backlog is full or the store failed: 5 seconds.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) verifier: Verifier,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) responder: Responder,
    pub(crate) metrics: Metrics,
}

impl Config {
    pub(crate) fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            retry_after: DEFAULT_RETRY_AFTER,
            responder: Arc::new(default_rejection),
            metrics: Metrics::new(),
        }
    }

    /// Checks everything that can be checked before reading the body: method, declared
    /// length and signature header.
    pub(crate) fn start(&self, parts: &Parts) -> Result<Accumulator, VerifyError> {
        if parts.method != Method::POST {
            return Err(method_not_allowed());
        }
        let declared = parts.headers.get(header::CONTENT_LENGTH);
        let declared = declared_length(declared.map(HeaderValue::as_bytes));
        begin(
            &self.verifier,
            self.max_body_bytes,
            declared,
            &parts.headers,
        )
    }

    /// Logs why a delivery was refused and builds the response.
    pub(crate) fn reject(&self, error: &VerifyError) -> Response<Bytes> {
        self.metrics.rejected(error.kind());
        tracing::warn!(
            kind = error.kind().as_str(),
            status = error.status().as_u16(),
            reason = error.reason(),
            "webhook rejected"
        );
        (self.responder)(error)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("verifier", &self.verifier)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_timeout", &self.body_timeout)
            .field("retry_after", &self.retry_after)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

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
