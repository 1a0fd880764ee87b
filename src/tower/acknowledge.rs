//! [`Acknowledge`]: the terminal service that stores a verified delivery and answers.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use crate::{
    core::delivery::Delivery,
    intake::{acknowledge::Acknowledger, config::text_response},
};

/// The boxed response future of [`Acknowledge`].
pub type AcknowledgeFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

/// Stores each verified [`Delivery`] and answers from what the store said; built by
/// [`VerifyLayer::store_in`](crate::tower::VerifyLayer::store_in).
///
/// 200 once the store holds the delivery (now or before: a re-delivery), 503 with
/// `Retry-After` when the backlog is full or the store failed, and 500 when no verified
/// delivery is attached (the service is used without [`Verify`](crate::tower::Verify) in front
/// of it).
#[derive(Debug, Clone)]
pub struct Acknowledge {
    acknowledger: Acknowledger,
}

impl Acknowledge {
    pub(crate) fn new(acknowledger: Acknowledger) -> Self {
        Self { acknowledger }
    }
}

impl<B> Service<Request<B>> for Acknowledge {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = AcknowledgeFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let delivery = request.extensions_mut().remove::<Delivery>();
        let acknowledger = self.acknowledger.clone();
        Box::pin(async move {
            let Some(delivery) = delivery else {
                return Ok(not_verified());
            };
            let outcome = acknowledger.acknowledge(&delivery).await;
            Ok(outcome.response(acknowledger.retry_after).map(Full::new))
        })
    }
}

/// 500: the service was reached without a verified delivery.
fn not_verified() -> Response<Full<Bytes>> {
    tracing::error!(
        "no verified delivery on the request: is VerifyLayer in front of this service?"
    );
    text_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "webhook verification is not configured",
    )
    .map(Full::new)
}
