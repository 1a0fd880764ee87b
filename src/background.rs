//! Running a route after the 200: [`BackgroundLayer`], [`Job`] and the [`Worker`] that runs them.

use std::{
    fmt,
    future::{poll_fn, Future},
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::{
    sync::{mpsc, oneshot},
    task::{JoinError, JoinHandle, JoinSet},
};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    delivery::Delivery,
    error::{BoxError, ConfigError},
    handoff::{acknowledge, not_verified, Handoff, HandoffFuture},
    layer::VerifyLayer,
    service::Verify,
};

/// A verified request bound to the route that will handle it, waiting for a [`Worker`].
pub struct Job {
    event: Option<String>,
    run: Pin<Box<dyn Future<Output = Result<StatusCode, BoxError>> + Send>>,
}

impl Job {
    fn new<S, ResBody>(request: Request<Full<Bytes>>, mut service: S) -> Self
    where
        S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send,
    {
        let event = request
            .extensions()
            .get::<Delivery>()
            .and_then(Delivery::event_header)
            .map(str::to_owned);
        let run = Box::pin(async move {
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let response = service.call(request).await.map_err(Into::into)?;
            Ok(response.status())
        });
        Self { event, run }
    }

    /// The unsigned event header of the delivery, for logs.
    #[must_use]
    pub fn event_header(&self) -> Option<&str> {
        self.event.as_deref()
    }

    async fn run(self) -> Outcome {
        let result = self.run.await;
        Outcome {
            event: self.event,
            result,
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

struct Outcome {
    event: Option<String>,
    result: Result<StatusCode, BoxError>,
}

/// What a [`Worker`] did, returned by [`WorkerHandle::shutdown`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Jobs whose route answered with a 2xx status.
    pub handled: u64,
    /// Jobs whose route answered with another status or returned an error.
    pub failed: u64,
    /// Jobs whose route panicked (the worker kept running).
    pub panicked: u64,
}

impl WorkerReport {
    fn record(&mut self, joined: Result<Outcome, JoinError>) {
        match joined {
            Ok(Outcome {
                event,
                result: Ok(status),
            }) if status.is_success() => {
                self.handled += 1;
                tracing::debug!(
                    event,
                    status = status.as_u16(),
                    "background handler finished"
                );
            }
            Ok(Outcome {
                event,
                result: Ok(status),
            }) => {
                self.failed += 1;
                tracing::warn!(event, status = status.as_u16(), "background handler failed");
            }
            Ok(Outcome {
                event,
                result: Err(error),
            }) => {
                self.failed += 1;
                tracing::warn!(event, error = %error, "background handler returned an error");
            }
            Err(error) => {
                self.panicked += 1;
                tracing::error!(panic = error.is_panic(), "background handler panicked");
            }
        }
    }
}

/// Runs queued [`Job`]s with bounded concurrency, after their senders got a 200.
///
/// Create it with [`Worker::new`], put the queue into [`VerifyLayer::in_background`], start it
/// with [`Worker::spawn`] and, when the server has stopped, call [`WorkerHandle::shutdown`] to
/// finish every accepted delivery.
#[derive(Debug)]
pub struct Worker {
    receiver: mpsc::Receiver<Job>,
    concurrency: usize,
}

impl Worker {
    /// A worker and its queue, holding at most `capacity` waiting jobs; runs one job at a time
    /// until [`Worker::with_concurrency`] says otherwise.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] when `capacity` is 0.
    pub fn new(capacity: usize) -> Result<(mpsc::Sender<Job>, Self), ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        let (sender, receiver) = mpsc::channel(capacity);
        let worker = Self {
            receiver,
            concurrency: 1,
        };
        Ok((sender, worker))
    }

    /// Runs up to `concurrency` jobs at once (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Starts the worker on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use = "keep the handle to drain the queue on shutdown"]
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = oneshot::channel();
        let join = tokio::spawn(self.run(stopped));
        WorkerHandle { stop, join }
    }

    async fn run(mut self, mut stopped: oneshot::Receiver<()>) -> WorkerReport {
        let mut report = WorkerReport::default();
        let mut running = JoinSet::new();
        let mut listening = true;
        loop {
            tokio::select! {
                Some(joined) = running.join_next(), if !running.is_empty() => report.record(joined),
                signal = &mut stopped, if listening => {
                    listening = false;
                    if signal.is_ok() {
                        self.receiver.close();
                    }
                }
                job = self.receiver.recv(), if running.len() < self.concurrency => match job {
                    Some(job) => {
                        running.spawn(job.run());
                    }
                    None => break,
                },
            }
        }
        while let Some(joined) = running.join_next().await {
            report.record(joined);
        }
        report
    }
}

/// Controls a spawned [`Worker`].
#[derive(Debug)]
pub struct WorkerHandle {
    stop: oneshot::Sender<()>,
    join: JoinHandle<WorkerReport>,
}

impl WorkerHandle {
    /// Stops taking new jobs (further hand-offs are refused, so senders get 503), finishes
    /// every job already accepted, and reports what was done.
    ///
    /// # Errors
    ///
    /// The [`JoinError`] of the worker task if it was cancelled (it never panics itself: a
    /// panicking handler is caught and counted).
    pub async fn shutdown(self) -> Result<WorkerReport, JoinError> {
        let _ = self.stop.send(());
        self.join.await
    }
}

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
        let retry_after = self.verify.config().retry_after_header();
        let background = Background {
            inner,
            queue: self.queue.clone(),
            retry_after,
        };
        self.verify.layer(background)
    }
}

/// Queues the verified request as a [`Job`] for the inner service and answers 200 at once,
/// or 503 with `Retry-After` when the queue refuses it.
#[derive(Debug, Clone)]
pub struct Background<S, H> {
    inner: S,
    queue: H,
    retry_after: HeaderValue,
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
    type Error = std::convert::Infallible;
    type Future = HandoffFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        if request.extensions().get::<Delivery>().is_none() {
            return Box::pin(std::future::ready(Ok(not_verified())));
        }
        let job = Job::new(request, self.inner.clone());
        let queue = self.queue.clone();
        let retry_after = self.retry_after.clone();
        Box::pin(async move {
            let event = job.event.clone();
            let outcome = queue.hand_off(job).await;
            Ok(acknowledge(outcome, event.as_deref(), retry_after))
        })
    }
}
