//! Acknowledge, then process: store a verified delivery, then answer from what the store said.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::{
    core::delivery::Delivery,
    intake::{checks::retry_after_secs, config::text_response},
    store::{Inserted, SharedStore, StoreError},
    worker::metrics::Metrics,
};

/// What became of an authentic delivery at the store.
#[derive(Debug)]
pub(crate) enum Acknowledgement {
    /// Stored now: answer 200.
    Accepted,
    /// Stored before (a re-delivery): answer 200 without storing it again.
    Duplicate,
    /// The backlog is full: answer 503 with `Retry-After`.
    Full,
    /// The store failed: answer 503 with `Retry-After`.
    Failed(StoreError),
}

impl Acknowledgement {
    #[cfg_attr(not(feature = "actix-web"), allow(dead_code))]
    pub(crate) const fn is_ok(&self) -> bool {
        matches!(self, Self::Accepted | Self::Duplicate)
    }

    /// The response: 200, or 503 with `Retry-After` and a reason that names no internals.
    pub(crate) fn response(&self, retry_after: Duration) -> Response<Bytes> {
        let text = match self {
            Self::Accepted | Self::Duplicate => return Response::new(Bytes::new()),
            Self::Full => "backlog full, retry later",
            Self::Failed(_) => "store unavailable, retry later",
        };
        let mut response = text_response(StatusCode::SERVICE_UNAVAILABLE, text);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(retry_after)),
        );
        response
    }
}

/// The store deliveries go to, and the counters of one receiver.
#[derive(Debug, Clone)]
pub(crate) struct Acknowledger {
    pub(crate) store: SharedStore,
    pub(crate) metrics: Metrics,
    pub(crate) retry_after: Duration,
}

impl Acknowledger {
    /// Stores `delivery` unless it is a re-delivery, and says what to answer.
    ///
    /// A 200 is only ever answered for a delivery the store holds: `insert` returned after the
    /// write that holds it.
    pub(crate) async fn acknowledge(&self, delivery: &Delivery) -> Acknowledgement {
        let outcome = match self.store.insert(delivery).await {
            Ok(Inserted::Stored) => Acknowledgement::Accepted,
            Ok(Inserted::Duplicate) => Acknowledgement::Duplicate,
            Ok(Inserted::Full) => Acknowledgement::Full,
            Err(error) => Acknowledgement::Failed(error),
        };
        self.record(&outcome, delivery);
        outcome
    }

    fn record(&self, outcome: &Acknowledgement, delivery: &Delivery) {
        let event = delivery.event_header();
        let elapsed = delivery.received_at().elapsed().unwrap_or_default();
        match outcome {
            Acknowledgement::Accepted => {
                self.metrics.accepted(elapsed);
                tracing::debug!(event, id = delivery.id(), "webhook stored");
            }
            Acknowledgement::Duplicate => {
                self.metrics.duplicate(elapsed);
                tracing::info!(
                    event,
                    id = delivery.id(),
                    "re-delivery acknowledged, not stored again"
                );
            }
            Acknowledgement::Full => {
                self.metrics.unavailable("backlog_full", elapsed);
                tracing::warn!(event, id = delivery.id(), "backlog full; answering 503");
            }
            Acknowledgement::Failed(error) => {
                self.metrics.unavailable("store_failed", elapsed);
                tracing::error!(
                    event,
                    id = delivery.id(),
                    kind = error.as_str(),
                    error = %error,
                    "could not store the delivery; answering 503"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conformance::delivery, MemoryStore};

    fn acknowledger(capacity: usize) -> Acknowledger {
        Acknowledger {
            store: MemoryStore::new().with_capacity(capacity).into(),
            metrics: Metrics::new(),
            retry_after: Duration::from_secs(7),
        }
    }

    #[tokio::test]
    async fn a_redelivery_is_acknowledged_but_stored_once() {
        let ack = acknowledger(4);
        let first = delivery(1, "e");
        assert!(matches!(
            ack.acknowledge(&first).await,
            Acknowledgement::Accepted
        ));
        assert!(matches!(
            ack.acknowledge(&first).await,
            Acknowledgement::Duplicate
        ));
        assert_eq!(ack.store.counts().await.unwrap().pending, 1);
        let snapshot = ack.metrics.snapshot();
        assert_eq!((snapshot.accepted, snapshot.duplicates), (1, 1));
    }

    #[tokio::test]
    async fn a_full_backlog_is_503_with_retry_after() {
        let ack = acknowledger(1);
        ack.acknowledge(&delivery(1, "e")).await;
        let outcome = ack.acknowledge(&delivery(2, "e")).await;
        let response = outcome.response(ack.retry_after);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(ack.metrics.snapshot().unavailable, 1);
    }

    #[test]
    fn a_stored_or_repeated_delivery_is_200() {
        for outcome in [Acknowledgement::Accepted, Acknowledgement::Duplicate] {
            assert_eq!(
                outcome.response(Duration::from_secs(1)).status(),
                StatusCode::OK
            );
        }
    }
}
