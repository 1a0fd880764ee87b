//! [`Job`]: a verified delivery and the work to do with it, which can be attempted again.

use std::{
    error::Error as StdError,
    fmt,
    future::{poll_fn, Future},
    pin::Pin,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower_service::Service;

use crate::{core::delivery::Delivery, core::error::BoxError};

type Attempt =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send>;

/// A verified delivery bound to the work that handles it, waiting for a
/// [`Worker`](crate::Worker).
///
/// The work can run more than once: a failed attempt is retried by the worker's
/// [`RetryPolicy`](crate::RetryPolicy).
pub struct Job {
    delivery: Delivery,
    attempt: Attempt,
}

impl Job {
    /// A job running `work` on (a clone of) `delivery` at each attempt.
    ///
    /// Return [`Permanent`] (boxed) from `work` for a failure that no retry can fix.
    pub fn new<F, Fut, E>(delivery: Delivery, mut work: F) -> Self
    where
        F: FnMut(Delivery) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let copy = delivery.clone();
        let attempt: Attempt = Box::new(move || {
            let future = work(copy.clone());
            Box::pin(async move { future.await.map_err(Into::into) })
        });
        Self { delivery, attempt }
    }

    /// A job calling `service` with the verified request; a non-2xx response is a failure.
    pub(crate) fn route<S, ResBody>(
        request: Request<Full<Bytes>>,
        delivery: Delivery,
        service: S,
    ) -> Self
    where
        S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send,
    {
        let (parts, body) = request.into_parts();
        let attempt: Attempt = Box::new(move || {
            let mut service = service.clone();
            let request = Request::from_parts(parts.clone(), body.clone());
            Box::pin(async move {
                poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                let status = service.call(request).await.map_err(Into::into)?.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("the route answered {status}").into())
                }
            })
        });
        Self { delivery, attempt }
    }

    /// The delivery this job handles.
    #[must_use]
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    pub(crate) fn into_delivery(self) -> Delivery {
        self.delivery
    }

    /// Starts one attempt.
    pub(crate) fn attempt(&mut self) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> {
        (self.attempt)()
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

/// A failure that retrying cannot fix (for example a body that does not parse): the worker
/// sends the delivery to the dead-letter hook at once.
#[derive(Debug)]
pub struct Permanent(BoxError);

impl Permanent {
    /// Marks `error` as permanent.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }

    /// Whether `error` is a [`Permanent`] failure.
    #[must_use]
    pub fn is(error: &BoxError) -> bool {
        error.downcast_ref::<Self>().is_some()
    }
}

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Permanent {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.0.as_ref())
    }
}
