//! The hand-off: where a verified delivery goes before the sender gets its 200.

use std::{
    convert::Infallible,
    future::{ready, Future},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::mpsc;
use tower_service::Service;

use crate::{
    core::delivery::Delivery,
    core::error::BoxError,
    intake::acknowledge::Acknowledgement,
    intake::config::{text_response, Config},
};

/// Takes ownership of a verified item (a [`Delivery`], or a background [`Job`](crate::Job))
/// so that it is processed after the response.
///
/// The sender gets 200 only when `hand_off` returned `Ok`: a durable sink should return only
/// once the item is safely stored. The default implementation is the bounded tokio channel
/// ([`mpsc::Sender`]), which never waits: a full channel is refused at once.
pub trait Handoff<T>: Clone + Send + Sync + 'static {
    /// Hands `item` over.
    ///
    /// # Errors
    ///
    /// A [`HandoffError`] when the item was not taken; the sender then gets 503 with
    /// `Retry-After` and Print.one delivers again later.
    fn hand_off(&self, item: T) -> impl Future<Output = Result<(), HandoffError>> + Send;
}

/// Why a hand-off did not take an item.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The queue is at capacity.
    #[error("the queue is full")]
    Full,
    /// The queue no longer accepts items (shutting down, or its receiver is gone).
    #[error("the queue is closed")]
    Closed,
    /// A custom sink failed.
    #[error("the hand-off failed: {0}")]
    Failed(#[source] BoxError),
}

impl HandoffError {
    /// A stable `snake_case` name, for logs and metrics.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Closed => "closed",
            Self::Failed(_) => "failed",
        }
    }
}

impl<T: Send + 'static> Handoff<T> for mpsc::Sender<T> {
    fn hand_off(&self, item: T) -> impl Future<Output = Result<(), HandoffError>> + Send {
        ready(self.try_send(item).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => HandoffError::Full,
            mpsc::error::TrySendError::Closed(_) => HandoffError::Closed,
        }))
    }
}

/// The boxed response future of the hand-off services.
pub type HandoffFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

/// A terminal service handing each verified [`Delivery`] to a [`Handoff`]; built by
/// [`VerifyLayer::hand_off_to`](crate::VerifyLayer::hand_off_to) and
/// [`VerifyLayer::channel`](crate::VerifyLayer::channel).
///
/// It answers 200 once the delivery is handed over (or was handed over before: a re-delivery),
/// 503 with `Retry-After` when it was not, and 500 when no verified delivery is attached (the
/// service is used without [`Verify`](crate::Verify) in front of it).
#[derive(Debug, Clone)]
pub struct HandOff<H> {
    handoff: H,
    config: Arc<Config>,
}

impl<H> HandOff<H> {
    pub(crate) fn new(handoff: H, config: Arc<Config>) -> Self {
        Self { handoff, config }
    }

    /// The hand-off deliveries go to.
    pub fn get_ref(&self) -> &H {
        &self.handoff
    }
}

impl<H, B> Service<Request<B>> for HandOff<H>
where
    H: Handoff<Delivery>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = HandoffFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let delivery = request.extensions_mut().remove::<Delivery>();
        let handoff = self.handoff.clone();
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let Some(delivery) = delivery else {
                return Ok(not_verified());
            };
            let outcome = config
                .acknowledger
                .hand_over(&handoff, delivery.clone(), &delivery)
                .await;
            Ok(respond(&outcome, &config))
        })
    }
}

/// 200 when handed over (now or before), 503 with `Retry-After` when not.
pub(crate) fn respond(outcome: &Acknowledgement, config: &Config) -> Response<Full<Bytes>> {
    if outcome.is_ok() {
        return Response::new(Full::default());
    }
    let mut response = text_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue unavailable, retry later",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, config.retry_after_header());
    response.map(Full::new)
}

/// 500: a hand-off service was reached without a verified delivery.
pub(crate) fn not_verified() -> Response<Full<Bytes>> {
    tracing::error!(
        "no verified delivery on the request: is VerifyLayer in front of this service?"
    );
    text_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "webhook verification is not configured",
    )
    .map(Full::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_channel_takes_items_until_full() {
        let (sender, mut receiver) = mpsc::channel(1);
        assert!(sender.hand_off(1).await.is_ok());
        assert!(matches!(sender.hand_off(2).await, Err(HandoffError::Full)));
        assert_eq!(receiver.recv().await, Some(1));
        assert!(sender.hand_off(3).await.is_ok());
    }

    #[tokio::test]
    async fn a_channel_without_receiver_is_closed() {
        let (sender, receiver) = mpsc::channel::<u8>(4);
        drop(receiver);
        assert!(matches!(
            sender.hand_off(1).await,
            Err(HandoffError::Closed)
        ));
    }

    fn config() -> Config {
        let verifier = crate::Verifier::new(crate::Secret::new("s").unwrap());
        let mut config = Config::new(verifier);
        config.retry_after = std::time::Duration::from_secs(7);
        config
    }

    #[test]
    fn a_refused_hand_off_is_503_with_retry_after() {
        let response = respond(&Acknowledgement::Unavailable("full"), &config());
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn a_completed_or_repeated_hand_off_is_200() {
        for outcome in [Acknowledgement::Accepted, Acknowledgement::Duplicate] {
            assert_eq!(respond(&outcome, &config()).status(), StatusCode::OK);
        }
    }
}
