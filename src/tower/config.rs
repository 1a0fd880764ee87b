//! The tower layer's settings, shared by its services through an `Arc`.

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, request::Parts, HeaderValue, Method, Response};

use crate::{
    core::{error::VerifyError, verify::Verifier},
    intake::{
        body::Accumulator,
        checks::{begin, declared_length, method_not_allowed},
        config::{
            default_rejection, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_RETRY_AFTER,
        },
    },
    worker::metrics::Metrics,
};

/// Builds the response for a refused delivery.
pub(crate) type Responder = Arc<dyn Fn(&VerifyError) -> Response<Bytes> + Send + Sync>;

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
