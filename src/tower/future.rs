//! [`ResponseFuture`]: collect and verify the body, then call the inner service.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use http::{request::Parts, Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::{
    core::delivery::Delivery, core::error::BoxError, core::verify::Verified, tower::body::Collect,
    tower::config::Config,
};

pin_project! {
    /// The response future of [`Verify`](crate::tower::Verify).
    pub struct ResponseFuture<B, S>
    where
        S: Service<Request<Full<Bytes>>>,
    {
        #[pin]
        state: State<B, S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<B, S>
    where
        S: Service<Request<Full<Bytes>>>,
    {
        // Boxed: the MAC state and the request head are large, and a future is moved several
        // times on its way into the server's task; one allocation is cheaper than those copies.
        Collecting {
            collecting: Pin<Box<Collecting<B, S>>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
    }
}

pin_project! {
    /// The body being read, with what is needed to call the inner service afterwards.
    struct Collecting<B, S> {
        #[pin]
        collect: Collect<B>,
        head: Option<(Parts, S)>,
        config: Arc<Config>,
    }
}

impl<B, S> ResponseFuture<B, S>
where
    S: Service<Request<Full<Bytes>>>,
{
    pub(crate) fn collecting(
        collect: Collect<B>,
        parts: Parts,
        inner: S,
        config: Arc<Config>,
    ) -> Self {
        let head = Some((parts, inner));
        Self {
            state: State::Collecting {
                collecting: Box::pin(Collecting {
                    collect,
                    head,
                    config,
                }),
            },
        }
    }

    pub(crate) fn rejected(response: S::Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<B, S, ResBody> Future for ResponseFuture<B, S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Collecting { collecting } => {
                    let collecting = collecting.as_mut().project();
                    match ready!(collecting.collect.poll(cx)) {
                        Ok((body, verified)) => {
                            let (parts, inner) = collecting
                                .head
                                .take()
                                .expect("ResponseFuture polled after completion");
                            State::Calling {
                                future: call_inner(parts, inner, body, verified),
                            }
                        }
                        Err(error) => {
                            let response = collecting.config.reject(&error).map(ResBody::from);
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response));
                }
            };
            state.set(next);
        }
    }
}

/// Calls the inner service with the verified body and the [`Delivery`] in the extensions.
fn call_inner<S>(mut parts: Parts, mut inner: S, body: Bytes, verified: Verified) -> S::Future
where
    S: Service<Request<Full<Bytes>>>,
{
    let delivery = Delivery::new(body.clone(), verified, &parts.headers);
    tracing::debug!(
        event = delivery.event_header(),
        secret_index = delivery.secret_index(),
        body_len = body.len(),
        "webhook verified"
    );
    parts.extensions.insert(delivery);
    inner.call(Request::from_parts(parts, Full::new(body)))
}
