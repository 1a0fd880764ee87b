//! One attempt at a claimed delivery, with a panic caught as a failure, not a crash.

use std::{
    future::Future,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime},
};

use crate::{
    core::error::BoxError,
    store::{Attempt, Claimed},
    worker::handler::{HandlerFuture, Permanent},
};

/// Why an attempt failed.
pub(crate) enum Failure {
    Error(BoxError),
    Panicked,
}

impl Failure {
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Self::Error(error) if Permanent::is(error))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(error) => write!(f, "{error}"),
            Self::Panicked => f.write_str("the handler panicked"),
        }
    }
}

/// A finished attempt: the claim it ran for, what it did and when.
pub(crate) struct Finished {
    pub(crate) claimed: Claimed,
    pub(crate) result: Result<(), Failure>,
    pub(crate) started_at: SystemTime,
    pub(crate) duration: Duration,
}

impl Finished {
    /// The attempt as a store records it.
    pub(crate) fn record(&self) -> Attempt {
        Attempt {
            started_at: self.started_at,
            duration: self.duration,
            error: self.result.as_ref().err().map(ToString::to_string),
        }
    }
}

/// Runs `attempt` for `claimed` to its end, a panic included.
pub(crate) async fn run(claimed: Claimed, attempt: HandlerFuture) -> Finished {
    let started_at = SystemTime::now();
    let start = Instant::now();
    let result = CatchUnwind(attempt).await;
    Finished {
        claimed,
        result,
        started_at,
        duration: start.elapsed(),
    }
}

/// Polls a handler's future, turning a panic into [`Failure::Panicked`].
struct CatchUnwind(HandlerFuture);

impl Future for CatchUnwind {
    type Output = Result<(), Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(result.map_err(Failure::Error)),
            Err(_) => Poll::Ready(Err(Failure::Panicked)),
        }
    }
}
