//! [`Verify`]: the service produced by [`VerifyLayer`](crate::tower::VerifyLayer).

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use crate::{
    core::error::BoxError, tower::body::Collect, tower::config::Config,
    tower::future::ResponseFuture,
};

/// Verifies a delivery, then calls the inner service with the buffered body and the
/// [`Delivery`](crate::Delivery) in the request extensions.
///
/// A refused delivery is answered by this service with a response (never an error), so
/// `Error = S::Error`.
#[derive(Debug, Clone)]
pub struct Verify<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Verify<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for Verify<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone,
    B: Body,
    B::Error: Into<BoxError>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<B, S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        match self.config.start(&parts) {
            Ok(accumulator) => {
                let collect = Collect::new(body, accumulator, self.config.body_timeout);
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::collecting(collect, parts, inner, Arc::clone(&self.config))
            }
            Err(error) => ResponseFuture::rejected(self.config.reject(&error).map(ResBody::from)),
        }
    }
}
