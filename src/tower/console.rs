//! [`ConsoleService`]: the delivery console as a tower service.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{header, Method, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use tower_service::Service;

use crate::{
    console::{Console, ConsoleRequest, MAX_FORM_BYTES},
    core::error::BoxError,
};

/// How long the console waits for a form's body.
const FORM_TIMEOUT: Duration = Duration::from_secs(10);

/// The delivery [`Console`] as a `tower::Service`: nest it where the console's base path says
/// (`/console` by default), on an admin listener, never beside the webhook route.
///
/// It takes the path below the base as it comes (axum's `nest_service` strips the base), or
/// strips the base itself (a bare hyper server, `route_service` with a wildcard). A form body is
/// read up to 16 KiB (413 above it) within 10 s; other bodies are not read.
///
/// ```no_run
/// use printone_webhooks::{console::Console, store::MemoryStore, tower::ConsoleService};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let console = Console::new(MemoryStore::new());
/// let admin: axum::Router = axum::Router::new()
///     .nest_service(console.base_path(), ConsoleService::new(console.clone()));
/// let addr = "127.0.0.1:9000".parse()?;
/// console.check_bind(addr)?; // no token: loopback only
/// axum::serve(tokio::net::TcpListener::bind(addr).await?, admin).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConsoleService {
    console: Console,
}

impl ConsoleService {
    /// A service answering for `console`.
    #[must_use]
    pub const fn new(console: Console) -> Self {
        Self { console }
    }

    /// The console it answers for.
    #[must_use]
    pub const fn get_ref(&self) -> &Console {
        &self.console
    }
}

/// The boxed response future of [`ConsoleService`].
pub type ConsoleFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl<B> Service<Request<B>> for ConsoleService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ConsoleFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let console = self.console.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = if parts.method == Method::POST {
                match read_form(&parts.headers, body).await {
                    Ok(body) => body,
                    Err(response) => return Ok(response.map(Full::new)),
                }
            } else {
                Bytes::new()
            };
            let request = ConsoleRequest {
                path: console.relative(parts.uri.path()).to_owned(),
                query: parts.uri.query().map(str::to_owned),
                method: parts.method,
                headers: parts.headers,
                body,
            };
            Ok(console.respond(request).await.map(Full::new))
        })
    }
}

/// The form of a `POST`, or the answer when it is too large, late or broken.
async fn read_form<B>(headers: &http::HeaderMap, body: B) -> Result<Bytes, Response<Bytes>>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_FORM_BYTES as u64) {
        return Err(Console::refusal(http::StatusCode::PAYLOAD_TOO_LARGE));
    }
    let collected =
        tokio::time::timeout(FORM_TIMEOUT, Limited::new(body, MAX_FORM_BYTES).collect());
    match collected.await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => {
            Err(Console::refusal(http::StatusCode::PAYLOAD_TOO_LARGE))
        }
        Ok(Err(_)) => Err(Console::refusal(http::StatusCode::BAD_REQUEST)),
        Err(_) => Err(Console::refusal(http::StatusCode::REQUEST_TIMEOUT)),
    }
}
