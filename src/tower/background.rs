//! Running a route after the 200: [`BackgroundLayer`] and its [`Background`] service.

use std::{
    convert::Infallible,
    future::ready,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    core::delivery::Delivery,
    core::error::BoxError,
    intake::config::Config,
    store::handoff::{not_verified, respond, Handoff, HandoffFuture},
    tower::layer::VerifyLayer,
    tower::service::Verify,
    worker::job::Job,
};

/// Layer produced by [`VerifyLayer::in_background`].
#[derive(Debug, Clone)]
#[must_use]
pub struct BackgroundLayer<H> {
    verify: VerifyLayer,
    queue: H,
}

impl<H> BackgroundLayer<H> {
    pub(crate) fn new(verify: VerifyLayer, queue: H) -> Self {
        Self { verify, queue }
    }
}

impl<S, H: Clone> Layer<S> for BackgroundLayer<H> {
    type Service = Verify<Background<S, H>>;

    fn layer(&self, inner: S) -> Self::Service {
        let background = Background {
            inner,
            queue: self.queue.clone(),
            config: Arc::clone(self.verify.config()),
        };
        self.verify.layer(background)
    }
}

/// Queues the verified request as a [`Job`] for the inner service and answers 200 at once
/// (also for a re-delivery, which is not queued again), or 503 with `Retry-After` when the
/// queue refuses it.
#[derive(Debug, Clone)]
pub struct Background<S, H> {
    inner: S,
    queue: H,
    config: Arc<Config>,
}

impl<S, H> Background<S, H> {
    /// The route that runs in the background.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, H, ResBody> Service<Request<Full<Bytes>>> for Background<S, H>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    H: Handoff<Job>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = HandoffFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let Some(delivery) = request.extensions().get::<Delivery>().cloned() else {
            return Box::pin(ready(Ok(not_verified())));
        };
        let job = Job::route(request, delivery.clone(), self.inner.clone());
        let queue = self.queue.clone();
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let outcome = config.acknowledger.hand_over(&queue, job, &delivery).await;
            Ok(respond(&outcome, &config))
        })
    }
}
