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

use crate::{body::Collect, config::Config, delivery::Delivery, error::BoxError};

pin_project! {
    /// The response future of [`Verify`](crate::Verify).
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
        Collecting {
            #[pin]
            collect: Collect<B>,
            head: Option<(Parts, S)>,
            config: Arc<Config>,
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
                collect,
                head,
                config,
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
                StateProj::Collecting {
                    collect,
                    head,
                    config,
                } => match ready!(collect.poll(cx)) {
                    Ok((body, verified)) => {
                        let (mut parts, mut inner) =
                            head.take().expect("ResponseFuture polled after completion");
                        let delivery = Delivery::new(body.clone(), verified, &parts.headers);
                        tracing::debug!(
                            event = delivery.event_header(),
                            secret_index = delivery.secret_index(),
                            body_len = body.len(),
                            "webhook verified"
                        );
                        parts.extensions.insert(delivery);
                        let future = inner.call(Request::from_parts(parts, Full::new(body)));
                        State::Calling { future }
                    }
                    Err(error) => {
                        let response = config.reject(&error).map(ResBody::from);
                        return Poll::Ready(Ok(response));
                    }
                },
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
