//! [`Route`]: a tower service (an axum route) run by a worker as the handler of stored
//! deliveries.

use std::{
    fmt,
    future::poll_fn,
    sync::{Mutex, PoisonError},
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use crate::{
    core::{delivery::Delivery, error::BoxError, signature::EVENT_HEADER},
    worker::handler::{Handler, HandlerFuture, Permanent},
};

/// Runs a tower service, such as an axum route, as the [`Handler`] of a
/// [`Worker`](crate::worker::Worker): each attempt calls it with a `POST` carrying the stored
/// body, the event header and the [`Delivery`] in its extensions, so the route's extractors
/// ([`Delivery`], [`Webhook<T>`](crate::tower::Webhook)) work as in a route that answers
/// itself.
///
/// A 2xx answer is success. A 408, 429 or 5xx answer, or a service error, is a failed attempt
/// that is retried; any other 4xx (for example the 422 of a body that does not parse as the
/// route's `Webhook<T>`) is [`Permanent`]: no retry can fix it, so it is dead-lettered at once.
///
/// The request goes to `/`, which is what a `MethodRouter` (`post(handler)`) or a service
/// serves; give a whole `Router` the path it mounts the route at with [`Route::with_path`]
/// (a 404 would be a permanent failure).
pub struct Route<S> {
    service: Mutex<S>,
    path: http::Uri,
}

impl<S> Route<S> {
    /// Runs `service` for every delivery, calling it at `/`.
    pub fn new(service: S) -> Self {
        Self {
            service: Mutex::new(service),
            path: http::Uri::from_static("/"),
        }
    }

    /// Calls the service at `path` (a `Router`'s route, say `/webhooks/printone`).
    ///
    /// # Errors
    ///
    /// The [`http::uri::InvalidUri`] error when `path` is not a valid request path.
    pub fn with_path(mut self, path: &str) -> Result<Self, http::uri::InvalidUri> {
        self.path = path.parse()?;
        Ok(self)
    }
}

impl<S> fmt::Debug for Route<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route").finish_non_exhaustive()
    }
}

impl<S, ResBody> Handler for Route<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        let mut service = self
            .service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut request = request_for(delivery);
        *request.uri_mut() = self.path.clone();
        Box::pin(async move {
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let status = service.call(request).await.map_err(Into::into)?.status();
            judge(status)
        })
    }
}

/// The request a route sees for a stored delivery.
fn request_for(delivery: Delivery) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(delivery.body().clone()));
    *request.method_mut() = Method::POST;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(event) = delivery
        .event_header()
        .and_then(|event| HeaderValue::from_str(event).ok())
    {
        headers.insert(EVENT_HEADER, event);
    }
    request.extensions_mut().insert(delivery);
    request
}

/// Success, a failure worth retrying, or a permanent one, from the route's status.
fn judge(status: StatusCode) -> Result<(), BoxError> {
    if status.is_success() {
        return Ok(());
    }
    let failure = format!("the route answered {status}");
    let retryable = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    if retryable || !status.is_client_error() {
        Err(failure.into())
    } else {
        Err(Permanent::new(failure).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_error_is_permanent_but_408_429_and_5xx_are_retried() {
        let permanent = |code: u16| {
            let error = judge(StatusCode::from_u16(code).unwrap()).unwrap_err();
            Permanent::is(&error)
        };
        assert!(permanent(422) && permanent(400) && permanent(404));
        assert!(!permanent(408) && !permanent(429) && !permanent(500) && !permanent(503));
        assert!(judge(StatusCode::OK).is_ok() && judge(StatusCode::NO_CONTENT).is_ok());
    }
}
