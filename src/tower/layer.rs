//! [`VerifyLayer`]: verify deliveries in front of any tower HTTP service.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::Response;
use tower_layer::Layer;

use crate::{
    core::{error::VerifyError, verify::Verifier},
    intake::acknowledge::Acknowledger,
    store::SharedStore,
    tower::config::Config,
    tower::{acknowledge::Acknowledge, service::Verify},
    worker::metrics::Metrics,
};

/// A tower layer that verifies Print.one deliveries before the inner service sees them.
///
/// For every request it answers 405 to anything but `POST`, 413 when `Content-Length` is over
/// the limit (before reading) or when a streamed body crosses it, 401 for any authentication
/// failure (checked before reading the body when the header is missing, malformed or
/// ambiguous), and 408 when the body does not arrive in time. A verified request reaches the
/// inner service with its body buffered (`Full<Bytes>`) and the
/// [`Delivery`](crate::Delivery) in its extensions.
///
/// Two ways to use it:
///
/// - [`VerifyLayer::store_in`]: a terminal service that stores each verified delivery and
///   answers 200 once the store holds it; a [`Worker`](crate::worker::Worker) runs your handler
///   after (acknowledge, then process: the recommended setup);
/// - as a layer (`Router::layer`, `MethodRouter::layer`, or around any hyper service): the
///   inner service runs on the verified request and answers itself.
///
/// Cloning is cheap: the configuration is shared.
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifyLayer {
    config: Arc<Config>,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`, with a 1 MiB body limit and a 10 s body deadline.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            config: Arc::new(Config::new(verifier)),
        }
    }

    /// Sets the largest accepted body, in bytes (default 1 MiB).
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).max_body_bytes = limit;
        self
    }

    /// Sets how long the body may take to arrive (default 10 s), answered with 408. The clock
    /// starts the first time the body is not already there, so a body that came with its
    /// headers never pays for a timer.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).body_timeout = timeout;
        self
    }

    /// Sets the `Retry-After` sent with a 503 when the backlog is full or the store failed
    /// (default 5 s, rounded down to whole seconds, at least 1).
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        Arc::make_mut(&mut self.config).retry_after = retry_after;
        self
    }

    /// Replaces the response sent for a refused delivery.
    ///
    /// The refusal is still logged. Keep the status of [`VerifyError::status`] unless you know
    /// why: Print.one retries on failures.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::Response;
    /// use printone_webhooks::{tower::VerifyLayer, Secret, Verifier};
    ///
    /// let verifier = Verifier::new(Secret::new("my-webhook-secret")?);
    /// let layer = VerifyLayer::new(verifier).with_rejection(|error| {
    ///     let body = format!("{{\"error\":\"{}\"}}", error.kind());
    ///     let mut response = Response::new(Bytes::from(body));
    ///     *response.status_mut() = error.status();
    ///     response
    /// });
    /// # Ok::<(), printone_webhooks::ConfigError>(())
    /// ```
    pub fn with_rejection<F>(mut self, respond: F) -> Self
    where
        F: Fn(&VerifyError) -> Response<Bytes> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).responder = Arc::new(respond);
        self
    }

    /// Shares `metrics` with this layer (rejections, stored deliveries, duplicates); give the
    /// same [`Metrics`] to [`Worker::with_metrics`](crate::worker::Worker::with_metrics) for one
    /// view.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        Arc::make_mut(&mut self.config).metrics = metrics;
        self
    }

    /// The counters of this layer.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.config.metrics
    }

    /// A terminal service storing every verified delivery in `store` and answering from what
    /// the store said: 200 once the store holds it (or held it before: a re-delivery is not
    /// stored again), 503 with `Retry-After` when the backlog is full or the store failed.
    ///
    /// Mount it with `Router::route_service` and run a [`Worker`](crate::worker::Worker) on the
    /// same store.
    pub fn store_in(&self, store: impl Into<SharedStore>) -> Verify<Acknowledge> {
        let acknowledger = Acknowledger {
            store: store.into(),
            metrics: self.config.metrics.clone(),
            retry_after: self.config.retry_after,
        };
        self.layer(Acknowledge::new(acknowledger))
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Verify::new(inner, Arc::clone(&self.config))
    }
}
