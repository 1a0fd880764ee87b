//! [`Handler`]: the work registered once on a [`Worker`](crate::worker::Worker), and
//! [`Permanent`], a failure no retry can fix.

use std::{error::Error as StdError, fmt, future::Future, pin::Pin};

use crate::core::{delivery::Delivery, error::BoxError};

/// The boxed future of one attempt at handling a delivery.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// What a worker runs for every stored delivery, after its sender got the 200.
///
/// Any `Fn(Delivery) -> impl Future<Output = Result<(), E>>` is a handler; so are a
/// [`Dispatcher`](crate::worker::Dispatcher) of typed handlers and, with the `tower` feature,
/// a tower service such as an axum route, run in the background (`tower::Route`).
///
/// An error is a failed attempt, retried with backoff; return [`Permanent`] for a failure no
/// retry can fix (the delivery is dead-lettered at once). Handlers run **at least once**: a
/// delivery whose process died while its handler ran is handled again, so make them
/// idempotent, keyed on [`Delivery::id`] or on the event's own id and status.
pub trait Handler: Send + Sync + 'static {
    /// Starts one attempt at `delivery`.
    fn handle(&self, delivery: Delivery) -> HandlerFuture;
}

impl<F, Fut, E> Handler for F
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        let attempt = self(delivery);
        Box::pin(async move { attempt.await.map_err(Into::into) })
    }
}

/// A failure that retrying cannot fix (for example a body that does not parse): the worker
/// dead-letters the delivery at once.
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
