//! [`Steps`]: a request body played from a list of steps.

use std::{
    future::Future,
    pin::{pin, Pin},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use tokio::time::{sleep, Sleep};

use super::Step;

/// How far each endless empty frame moves the paused clock.
const ENDLESS_TICK: Duration = Duration::from_millis(100);

/// A request body played from the steps [`played`](super::played) kept.
pub struct Steps {
    steps: Arc<[Step]>,
    next: usize,
    sleeping: Option<Pin<Box<Sleep>>>,
}

impl Steps {
    pub(super) fn new(steps: Arc<[Step]>) -> Self {
        Self {
            steps,
            next: 0,
            sleeping: None,
        }
    }
}

/// The body's error: the client went away.
#[derive(Debug)]
pub struct Broken;

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client went away")
    }
}

impl std::error::Error for Broken {}

impl Body for Steps {
    type Data = Bytes;
    type Error = Broken;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleeping) = this.sleeping.as_mut() {
                if sleeping.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleeping = None;
            }
            let Some(step) = this.steps.get(this.next) else {
                return Poll::Ready(None);
            };
            // Stall and Endless repeat forever; every other step is played once.
            if !matches!(step, Step::Stall | Step::Endless) {
                this.next += 1;
            }
            return match step {
                Step::Data(chunk) => {
                    Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(chunk)))))
                }
                Step::Yield => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Step::Wait(ms) => {
                    let wait = Duration::from_millis(u64::from(*ms));
                    this.sleeping = Some(Box::pin(sleep(wait)));
                    continue;
                }
                // The last frame: `played` keeps no step after it.
                Step::Trailers => Poll::Ready(Some(Ok(Frame::trailers(HeaderMap::new())))),
                Step::Error => Poll::Ready(Some(Err(Broken))),
                Step::Stall => Poll::Pending,
                Step::Endless => {
                    // Always ready, so the runtime is never idle and paused time would never
                    // advance on its own: each frame moves the clock on by a tick, so that the
                    // layer's deadline still comes, in virtual time. `advance` moves the clock
                    // on its first poll (then yields, which only wakes this task once more).
                    let _ = pin!(tokio::time::advance(ENDLESS_TICK)).poll(cx);
                    Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
                }
            };
        }
    }
}
