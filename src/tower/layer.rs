//! [`VerifyLayer`]: verify deliveries in front of any tower HTTP service.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::Response;
use tokio::sync::mpsc;
use tower_layer::Layer;

use crate::{
    core::delivery::Delivery,
    core::error::{ConfigError, VerifyError},
    core::verify::Verifier,
    intake::config::Config,
    store::dedupe::DedupeStore,
    store::handoff::{HandOff, Handoff},
    tower::background::BackgroundLayer,
    tower::service::Verify,
    worker::job::Job,
    worker::metrics::Metrics,
};

/// The terminal service returned by [`VerifyLayer::channel`].
pub type ChannelService = Verify<HandOff<mpsc::Sender<Delivery>>>;

/// A tower layer that verifies Print.one deliveries before the inner service sees them.
///
/// For every request it answers 405 to anything but `POST`, 413 when `Content-Length` is over
/// the limit (before reading) or when a streamed body crosses it, 401 for any authentication
/// failure (checked before reading the body when the header is missing, malformed or
/// ambiguous), and 408 when the body does not arrive in time. A verified request reaches the
/// inner service with its body buffered (`Full<Bytes>`) and the [`Delivery`] in its extensions.
///
/// Three ways to use it:
///
/// - as is (`Router::layer`, `MethodRouter::layer`, or around any hyper service): the inner
///   service runs on the verified request and answers itself;
/// - [`VerifyLayer::in_background`]: the route runs in the background after a 200 has gone out;
/// - [`VerifyLayer::channel`] / [`VerifyLayer::hand_off_to`]: a terminal service that hands each
///   [`Delivery`] to a receiver and answers 200.
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

    /// Sets the `Retry-After` sent with a 503 when a hand-off is full or closed (default 5 s,
    /// rounded down to whole seconds, at least 1).
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
    /// use printone_webhooks::{Secret, Verifier, VerifyLayer};
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

    /// Shares `metrics` with this layer (rejections, hand-offs, duplicates); give the same
    /// [`Metrics`] to [`Worker::with_metrics`](crate::Worker::with_metrics) for one view.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        Arc::make_mut(&mut self.config).acknowledger.metrics = metrics;
        self
    }

    /// The counters of this layer.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.config.acknowledger.metrics
    }

    /// Remembers handed-over deliveries in `store` (default: a [`MemoryStore`](crate::MemoryStore) of 100 000 ids
    /// for 24 hours), so that a re-delivery is answered 200 and not handed over again.
    pub fn with_dedupe_store(mut self, store: impl DedupeStore) -> Self {
        Arc::make_mut(&mut self.config).acknowledger.dedupe = Some(Arc::new(store));
        self
    }

    /// Hands every authentic delivery over, re-deliveries included.
    pub fn without_deduplication(mut self) -> Self {
        Arc::make_mut(&mut self.config).acknowledger.dedupe = None;
        self
    }

    /// Runs the wrapped route in the background: the sender gets 200 as soon as the verified
    /// request is queued for a [`Worker`](crate::Worker), and the route's handler runs after.
    pub fn in_background<H: Handoff<Job>>(self, queue: H) -> BackgroundLayer<H> {
        BackgroundLayer::new(self, queue)
    }

    /// A terminal service handing every verified [`Delivery`] to `handoff`, answering 200 once
    /// it is handed over and 503 (with `Retry-After`) when it could not be.
    pub fn hand_off_to<H: Handoff<Delivery>>(&self, handoff: H) -> Verify<HandOff<H>> {
        let service = HandOff::new(handoff, Arc::clone(&self.config));
        self.layer(service)
    }

    /// A terminal service and the receiver of its deliveries, through a bounded tokio channel
    /// of `capacity` deliveries.
    ///
    /// When the channel is full the sender gets 503 with `Retry-After`. After the server has
    /// stopped and dropped the service, the receiver yields the remaining deliveries, then
    /// `None`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] when `capacity` is 0.
    pub fn channel(
        &self,
        capacity: usize,
    ) -> Result<(ChannelService, mpsc::Receiver<Delivery>), ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        let (sender, receiver) = mpsc::channel(capacity);
        Ok((self.hand_off_to(sender), receiver))
    }

    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Verify::new(inner, Arc::clone(&self.config))
    }
}
