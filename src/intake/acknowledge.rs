//! Acknowledge, then process: hand a verified delivery over exactly once, then answer.

use std::sync::Arc;

use crate::{
    core::delivery::Delivery,
    store::dedupe::{Claim, DedupeStore},
    store::handoff::{Handoff, HandoffError},
    worker::metrics::Metrics,
};

/// What became of an authentic delivery at the hand-off.
#[derive(Debug)]
pub(crate) enum Acknowledgement {
    /// Handed over now: answer 200.
    Accepted,
    /// Handed over before (a re-delivery): answer 200 without handing it over again.
    Duplicate,
    /// Not handed over: answer 503 with `Retry-After`, Print.one delivers again.
    Unavailable(&'static str),
}

impl Acknowledgement {
    pub(crate) const fn is_ok(&self) -> bool {
        matches!(self, Self::Accepted | Self::Duplicate)
    }
}

/// The de-duplication store and the counters of one receiver.
#[derive(Clone, Default)]
pub(crate) struct Acknowledger {
    pub(crate) dedupe: Option<Arc<dyn DedupeStore>>,
    pub(crate) metrics: Metrics,
}

impl Acknowledger {
    /// Hands `item` (carrying `delivery`) over unless it is a re-delivery.
    ///
    /// A 200 is only ever answered for an item the hand-off took, now or before.
    pub(crate) async fn hand_over<T, H: Handoff<T>>(
        &self,
        handoff: &H,
        item: T,
        delivery: &Delivery,
    ) -> Acknowledgement {
        let event = delivery.event_header();
        let outcome = match &self.dedupe {
            None => Self::plain(handoff, item).await,
            Some(store) => Self::once(store.as_ref(), handoff, item, delivery).await,
        };
        match &outcome {
            Acknowledgement::Accepted => {
                self.metrics.accepted();
                tracing::debug!(event, id = delivery.id(), "webhook handed off");
            }
            Acknowledgement::Duplicate => {
                self.metrics.duplicate();
                tracing::info!(
                    event,
                    id = delivery.id(),
                    "re-delivery acknowledged, not handed over again"
                );
            }
            Acknowledgement::Unavailable(reason) => {
                self.metrics.unavailable();
                tracing::warn!(
                    event,
                    id = delivery.id(),
                    reason,
                    "webhook hand-off refused; answering 503"
                );
            }
        }
        outcome
    }

    async fn plain<T, H: Handoff<T>>(handoff: &H, item: T) -> Acknowledgement {
        match handoff.hand_off(item).await {
            Ok(()) => Acknowledgement::Accepted,
            Err(error) => Acknowledgement::Unavailable(reason_of(&error)),
        }
    }

    async fn once<T, H: Handoff<T>>(
        store: &dyn DedupeStore,
        handoff: &H,
        item: T,
        delivery: &Delivery,
    ) -> Acknowledgement {
        let id = delivery.signature();
        match store.claim(id).await {
            Ok(Claim::New) => {}
            Ok(Claim::Seen) => return Acknowledgement::Duplicate,
            Ok(Claim::InFlight) => return Acknowledgement::Unavailable("in_flight"),
            Err(error) => {
                tracing::error!(error = %error, "de-duplication store failed to claim");
                return Acknowledgement::Unavailable("store_failed");
            }
        }
        let outcome = Self::plain(handoff, item).await;
        let settled = if outcome.is_ok() {
            store.confirm(id).await
        } else {
            store.release(id).await
        };
        if let Err(error) = settled {
            tracing::error!(error = %error, "de-duplication store failed to settle a claim");
        }
        outcome
    }
}

fn reason_of(error: &HandoffError) -> &'static str {
    if let HandoffError::Failed(source) = error {
        tracing::error!(error = %source, "hand-off sink failed");
    }
    error.as_str()
}

impl std::fmt::Debug for Acknowledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acknowledger")
            .field("dedupe", &self.dedupe.is_some())
            .field("metrics", &self.metrics)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dedupe::MemoryStore;
    use http::HeaderMap;
    use tokio::sync::mpsc;

    fn delivery(body: &'static [u8]) -> Delivery {
        crate::core::delivery::verified(body, &HeaderMap::new())
    }

    fn deduplicating() -> Acknowledger {
        Acknowledger {
            dedupe: Some(Arc::new(MemoryStore::default())),
            metrics: Metrics::new(),
        }
    }

    #[tokio::test]
    async fn a_redelivery_is_acknowledged_but_handed_over_once() {
        let ack = deduplicating();
        let (sender, mut receiver) = mpsc::channel(4);
        let first = delivery(b"{\"event\":\"a\"}");
        assert!(matches!(
            ack.hand_over(&sender, first.clone(), &first).await,
            Acknowledgement::Accepted
        ));
        assert!(matches!(
            ack.hand_over(&sender, first.clone(), &first).await,
            Acknowledgement::Duplicate
        ));
        drop(sender);
        assert!(receiver.recv().await.is_some());
        assert!(receiver.recv().await.is_none());
        let snapshot = ack.metrics.snapshot();
        assert_eq!((snapshot.accepted, snapshot.duplicates), (1, 1));
    }

    #[tokio::test]
    async fn a_refused_hand_off_is_released_so_the_retry_is_accepted() {
        let ack = deduplicating();
        let (sender, mut receiver) = mpsc::channel(1);
        let filler = delivery(b"filler");
        let retried = delivery(b"retried");
        assert!(ack
            .hand_over(&sender, filler.clone(), &filler)
            .await
            .is_ok());
        assert!(matches!(
            ack.hand_over(&sender, retried.clone(), &retried).await,
            Acknowledgement::Unavailable("full")
        ));
        receiver.recv().await.unwrap();
        assert!(matches!(
            ack.hand_over(&sender, retried.clone(), &retried).await,
            Acknowledgement::Accepted
        ));
        assert_eq!(ack.metrics.snapshot().unavailable, 1);
    }

    #[tokio::test]
    async fn without_a_store_every_delivery_is_handed_over() {
        let ack = Acknowledger::default();
        let (sender, mut receiver) = mpsc::channel(4);
        let same = delivery(b"same");
        for _ in 0..2 {
            assert!(matches!(
                ack.hand_over(&sender, same.clone(), &same).await,
                Acknowledgement::Accepted
            ));
        }
        drop(sender);
        assert!(receiver.recv().await.is_some() && receiver.recv().await.is_some());
    }
}
