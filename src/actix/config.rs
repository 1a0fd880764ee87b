//! [`WebhookConfig`]: the actix-web settings, found in `app_data` like `JsonConfig`.

use std::{fmt, sync::Arc, time::Duration};

use actix_web::{web, HttpRequest};

use crate::{
    actix::error::WebhookError,
    core::verify::Verifier,
    intake::config::{DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_RETRY_AFTER},
    worker::metrics::Metrics,
};

/// Turns a refusal into the error actix answers with; see [`WebhookConfig::with_error_handler`].
type ErrorHandler = Arc<dyn Fn(WebhookError, &HttpRequest) -> actix_web::Error + Send + Sync>;

/// Settings of the actix-web extractors ([`Delivery`](crate::Delivery),
/// [`WebhookEvent`](crate::actix::WebhookEvent)) and of
/// [`WebhookResource`](crate::actix::WebhookResource).
///
/// Register it with `App::app_data` (or on a scope or resource), as a plain value or wrapped
/// in `web::Data`; the innermost one wins, as for actix's own `JsonConfig`. Without one the
/// extractors answer 500 and log why. Cloning is cheap.
///
/// ```
/// use std::time::Duration;
/// use actix_web::App;
/// use printone_webhooks::{actix::WebhookConfig, Secret, Verifier};
///
/// let config = WebhookConfig::new(Verifier::new(Secret::new("my-webhook-secret")?))
///     .with_max_body_bytes(256 * 1024)
///     .with_body_timeout(Duration::from_secs(5));
/// let app = App::new().app_data(config);
/// # Ok::<(), printone_webhooks::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct WebhookConfig {
    pub(crate) verifier: Verifier,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) metrics: Metrics,
    error_handler: Option<ErrorHandler>,
}

impl WebhookConfig {
    /// Settings verifying with `verifier`, with a 1 MiB body limit, a 10 s body deadline and a
    /// 5 s `Retry-After`.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            retry_after: DEFAULT_RETRY_AFTER,
            metrics: Metrics::new(),
            error_handler: None,
        }
    }

    /// Shares `metrics` (rejections, stored deliveries, re-deliveries, 503s); give the same
    /// [`Metrics`] to [`Worker::with_metrics`](crate::worker::Worker::with_metrics) for one
    /// view.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The counters of this configuration.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Sets the largest accepted body, in bytes (default 1 MiB); larger bodies get 413, whether
    /// declared by `Content-Length` or streamed.
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Sets how long the whole body may take to arrive (default 10 s), answered with 408.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Sets the `Retry-After` of the 503 sent by
    /// [`WebhookResource`](crate::actix::WebhookResource) when the backlog is full or the store
    /// failed (default 5 s, whole seconds, at least 1).
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Replaces the response to a refused delivery, like `JsonConfig::error_handler`.
    ///
    /// The refusal is still logged. Keep the status of [`WebhookError::status`] unless you know
    /// why: Print.one retries on failures.
    ///
    /// ```
    /// use actix_web::{error::InternalError, HttpResponse, ResponseError};
    /// use printone_webhooks::{actix::WebhookConfig, Secret, Verifier};
    ///
    /// let verifier = Verifier::new(Secret::new("my-webhook-secret")?);
    /// let config = WebhookConfig::new(verifier).with_error_handler(|error, _request| {
    ///     let response = HttpResponse::build(error.status_code())
    ///         .json(serde_json::json!({ "error": error.to_string() }));
    ///     InternalError::from_response(error, response).into()
    /// });
    /// # Ok::<(), printone_webhooks::ConfigError>(())
    /// ```
    pub fn with_error_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(WebhookError, &HttpRequest) -> actix_web::Error + Send + Sync + 'static,
    {
        self.error_handler = Some(Arc::new(handler));
        self
    }

    /// The innermost configuration registered for `request`.
    pub(crate) fn of(request: &HttpRequest) -> Option<&Self> {
        request.app_data::<Self>().or_else(|| {
            request
                .app_data::<web::Data<Self>>()
                .map(web::Data::get_ref)
        })
    }

    /// Logs a refusal and turns it into the error actix answers with.
    pub(crate) fn refuse(
        config: Option<&Self>,
        error: WebhookError,
        request: &HttpRequest,
    ) -> actix_web::Error {
        error.log();
        if let (Some(config), Some(kind)) = (config, error.kind()) {
            config.metrics.rejected(kind);
        }
        match config.and_then(|config| config.error_handler.as_ref()) {
            Some(handler) => handler(error, request),
            None => error.into(),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("verifier", &self.verifier)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_timeout", &self.body_timeout)
            .field("retry_after", &self.retry_after)
            .field("metrics", &self.metrics)
            .field("error_handler", &self.error_handler.is_some())
            .finish()
    }
}
