//! [`HealthService`]: `GET …/healthz` and `GET …/readyz` as a tower service.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use crate::worker::health::Health;

/// Answers `GET` (or `HEAD`) on a path ending in `/healthz` with 200 `ok` (liveness) and on one
/// ending in `/readyz` with 200 `ready`, or 503 `draining` / `store unavailable: …`
/// (readiness); anything else gets 404. Mount it on an admin listener, never on the webhook
/// route:
///
/// ```no_run
/// # async fn run(health: printone_webhooks::worker::Health) {
/// use printone_webhooks::tower::HealthService;
/// let admin: axum::Router = axum::Router::new()
///     .route_service("/healthz", HealthService::new(health.clone()))
///     .route_service("/readyz", HealthService::new(health));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HealthService {
    health: Health,
}

impl HealthService {
    /// A service answering for `health`.
    #[must_use]
    pub const fn new(health: Health) -> Self {
        Self { health }
    }
}

/// The boxed response future of [`HealthService`].
pub type HealthFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl<B> Service<Request<B>> for HealthService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = HealthFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let health = self.health.clone();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        Box::pin(async move {
            if method != Method::GET && method != Method::HEAD {
                return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only".to_owned()));
            }
            if path.ends_with("/healthz") {
                return Ok(text(StatusCode::OK, "ok".to_owned()));
            }
            if path.ends_with("/readyz") {
                let readiness = health.readiness().await;
                let status = if readiness.is_ready() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                return Ok(text(status, readiness.text()));
            }
            Ok(text(StatusCode::NOT_FOUND, "not found".to_owned()))
        })
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
