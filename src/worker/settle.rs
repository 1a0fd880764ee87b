//! [`Settler`]: records what an attempt did in the store, right where the attempt ran, so the
//! results of concurrent attempts reach the store together (and share a commit).

use std::{sync::Arc, time::SystemTime};

use crate::{
    store::{SharedStore, StoreError},
    worker::{attempt::Finished, metrics::Metrics, retry::RetryPolicy, tally::Tally},
};

/// What every attempt needs to record its outcome.
#[derive(Clone)]
pub(crate) struct Settler {
    pub(crate) store: SharedStore,
    pub(crate) retry: RetryPolicy,
    pub(crate) metrics: Metrics,
    pub(crate) tally: Arc<Tally>,
}

impl Settler {
    /// Done, a retry after its backoff, or a dead letter; a store failure is logged (the
    /// delivery stays leased and is tried again when its lease expires). Returns whether the
    /// delivery is due again (a retry was recorded).
    pub(crate) async fn settle(&self, finished: Finished) -> bool {
        let (settled, retried) = match &finished.result {
            Ok(()) => (self.handled(&finished).await, false),
            Err(failure) => {
                self.metrics.failed(finished.duration);
                self.tally.failed(failure);
                if failure.is_permanent() || finished.claimed.attempt >= self.retry.max_attempts() {
                    (self.dead_letter(&finished).await, false)
                } else {
                    (self.retry(&finished).await, true)
                }
            }
        };
        match settled {
            Ok(()) => retried,
            Err(error) => {
                settle_failed(&finished, &error);
                false
            }
        }
    }

    async fn handled(&self, finished: &Finished) -> Result<(), StoreError> {
        let lease = &finished.claimed.lease;
        self.store.complete(lease, &finished.record()).await?;
        let delay = finished
            .claimed
            .delivery
            .received_at()
            .elapsed()
            .unwrap_or_default();
        self.metrics.handled(delay, finished.duration);
        self.tally.handled();
        tracing::debug!(id = lease.id.short(), "delivery handled");
        Ok(())
    }

    async fn retry(&self, finished: &Finished) -> Result<(), StoreError> {
        let claimed = &finished.claimed;
        let backoff = self.retry.backoff(claimed.attempt);
        let record = finished.record();
        let at = SystemTime::now() + backoff;
        self.store.retry(&claimed.lease, &record, at).await?;
        self.metrics.retried();
        self.tally.retried();
        let (event, data_id) = names(finished);
        tracing::warn!(
            event,
            data_id,
            id = claimed.delivery.id(),
            attempt = claimed.attempt,
            reason = record.error.as_deref().unwrap_or("-"),
            ?backoff,
            "handler failed; retrying"
        );
        Ok(())
    }

    async fn dead_letter(&self, finished: &Finished) -> Result<(), StoreError> {
        let claimed = &finished.claimed;
        let record = finished.record();
        self.store.dead_letter(&claimed.lease, &record).await?;
        self.metrics.dead_lettered();
        self.tally.dead_lettered();
        let (event, data_id) = names(finished);
        tracing::error!(
            event,
            data_id,
            id = claimed.delivery.id(),
            attempts = claimed.attempt,
            reason = record.error.as_deref().unwrap_or("-"),
            "delivery dead-lettered: it got its 200 but could not be handled"
        );
        Ok(())
    }
}

/// The event name and data id of a delivery for a log line: the body's, else `-`.
fn names(finished: &Finished) -> (String, String) {
    let delivery = &finished.claimed.delivery;
    let (event, data_id) = delivery.summary();
    let event = event
        .or_else(|| delivery.event_header().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned());
    (event, data_id.unwrap_or_else(|| "-".to_owned()))
}

fn settle_failed(finished: &Finished, error: &StoreError) {
    let id = finished.claimed.delivery.id();
    if matches!(error, StoreError::LeaseLost(_)) {
        tracing::warn!(
            id,
            "the lease expired while the handler ran; another worker holds the delivery now"
        );
        return;
    }
    tracing::error!(
        id,
        kind = error.as_str(),
        error = %error,
        "could not record the attempt; the delivery is tried again when its lease expires"
    );
}
