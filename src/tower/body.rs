//! [`Collect`]: reading an `http_body::Body` into the intake's bounded, hashing buffer before
//! a deadline.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf, Bytes};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::{sleep, Sleep};

use crate::{
    core::{
        error::{BoxError, VerifyError},
        verify::Verified,
    },
    intake::body::{read_failed, timed_out, Accumulator},
};

/// How many frames one poll of [`Collect`] reads before it yields.
const FRAMES_PER_POLL: usize = 64;

pin_project! {
    /// Collects a body into an [`Accumulator`] before a deadline.
    ///
    /// The deadline starts the first time the body makes the reader wait (or keeps it busy for
    /// many frames): a body that arrived with its headers costs no timer at all.
    pub(crate) struct Collect<B> {
        #[pin]
        body: B,
        #[pin]
        deadline: Option<Sleep>,
        timeout: Duration,
        accumulator: Option<Accumulator>,
    }
}

impl<B> Collect<B> {
    pub(crate) fn new(body: B, accumulator: Accumulator, timeout: Duration) -> Self {
        Self {
            body,
            deadline: None,
            timeout,
            accumulator: Some(accumulator),
        }
    }
}

/// Whether the deadline (started now if it was not yet) has passed.
fn expired(mut deadline: Pin<&mut Option<Sleep>>, timeout: Duration, cx: &mut Context<'_>) -> bool {
    if deadline.is_none() {
        deadline.set(Some(sleep(timeout)));
    }
    deadline
        .as_pin_mut()
        .is_some_and(|sleep| sleep.poll(cx).is_ready())
}

impl<B> Future for Collect<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<(Bytes, Verified), VerifyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        for _ in 0..FRAMES_PER_POLL {
            let Poll::Ready(frame) = this.body.as_mut().poll_frame(cx) else {
                if expired(this.deadline.as_mut(), *this.timeout, cx) {
                    return Poll::Ready(Err(timed_out()));
                }
                return Poll::Pending;
            };
            let Some(accumulator) = this.accumulator.as_mut() else {
                return Poll::Ready(Err(timed_out()));
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        accumulator.push(data.copy_to_bytes(data.remaining()))?;
                    }
                }
                Some(Err(error)) => return Poll::Ready(Err(read_failed(error))),
                None => {
                    return Poll::Ready(
                        this.accumulator
                            .take()
                            .map_or_else(|| Err(timed_out()), Accumulator::finish),
                    )
                }
            }
        }
        // Still ready after many frames (empty ones do not count against the limit): a body that
        // is always ready must not outrun its deadline, and must let other tasks run.
        if expired(this.deadline.as_mut(), *this.timeout, cx) {
            return Poll::Ready(Err(timed_out()));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{core::error::ErrorKind, sign_raw, Secret, Verifier};

    fn accumulator_for(body: &[u8], limit: usize) -> Accumulator {
        let secret = Secret::new("s3cr3t").unwrap();
        let signature = sign_raw(&secret, body);
        Accumulator::new(Verifier::new(secret).begin(signature), None, limit, None)
    }

    /// A body that is always ready with an empty frame, and never ends.
    struct Endless;

    impl Body for Endless {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::new()))))
        }
    }

    #[test]
    fn a_body_that_is_always_ready_still_meets_its_deadline() {
        // On its own thread: without the fix the poll never returns, and only a wait from
        // outside the runtime can notice.
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let outcome = runtime.block_on(async {
                let limit = Duration::from_millis(50);
                Collect::new(Endless, accumulator_for(b"", 1024), limit).await
            });
            let _ = done.send(outcome.map(|_| ()).map_err(|error| error.kind()));
        });
        let outcome = outcome
            .recv_timeout(Duration::from_secs(10))
            .expect("an endless body is cut off at its deadline, not polled forever");
        assert_eq!(outcome, Err(ErrorKind::BodyTimeout));
    }
}
