//! Counters a user can read: what was accepted, refused, de-duplicated, handled and given up.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use crate::{core::error::ErrorKind, store::Counts, worker::export};

/// Every [`ErrorKind`], in the order of [`MetricsSnapshot::rejected`].
const KINDS: [ErrorKind; 9] = [
    ErrorKind::MethodNotAllowed,
    ErrorKind::MissingSignature,
    ErrorKind::MalformedSignature,
    ErrorKind::AmbiguousSignature,
    ErrorKind::SignatureMismatch,
    ErrorKind::BodyTooLarge,
    ErrorKind::BodyTimeout,
    ErrorKind::BodyRead,
    ErrorKind::Stale,
];

/// Shared counters of a receiver. Cloning shares them.
///
/// The receiver counts what happens to requests (stored, rejected by kind, re-deliveries,
/// 503s because the backlog was full or the store failed); the
/// [`Worker`](crate::worker::Worker) counts what happens afterwards (handled, failed attempts,
/// retries, dead letters) and records the store's backlog at each housekeeping pass (every
/// 30 s). Give both the same `Metrics` (`VerifyLayer::with_metrics` with the `tower` feature,
/// `WebhookConfig::with_metrics` with `actix-web`, and
/// [`Worker::with_metrics`](crate::worker::Worker::with_metrics)) to read one view.
#[derive(Clone, Default)]
pub struct Metrics {
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    rejected: [AtomicU64; KINDS.len()],
    duplicates: AtomicU64,
    unavailable: AtomicU64,
    handled: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    backlog: AtomicU64,
}

impl Metrics {
    /// New counters, all zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A consistent-enough copy of every counter (each is read atomically, not all at once).
    #[must_use]
    pub fn snapshot(&self) -> MetricsSnapshot {
        let c = &self.counters;
        let mut rejected = [0; KINDS.len()];
        for (slot, counter) in rejected.iter_mut().zip(&c.rejected) {
            *slot = counter.load(Relaxed);
        }
        MetricsSnapshot {
            accepted: c.accepted.load(Relaxed),
            rejected,
            duplicates: c.duplicates.load(Relaxed),
            unavailable: c.unavailable.load(Relaxed),
            handled: c.handled.load(Relaxed),
            failed: c.failed.load(Relaxed),
            retried: c.retried.load(Relaxed),
            dead_lettered: c.dead_lettered.load(Relaxed),
            backlog: c.backlog.load(Relaxed),
        }
    }

    #[cfg(any(feature = "tower", feature = "actix-web"))]
    pub(crate) fn rejected(&self, kind: ErrorKind) {
        if let Some(index) = KINDS.iter().position(|k| *k == kind) {
            self.counters.rejected[index].fetch_add(1, Relaxed);
        }
        export::refused(kind.as_str());
    }

    #[cfg(any(feature = "tower", feature = "actix-web"))]
    pub(crate) fn accepted(&self, elapsed: Duration) {
        self.counters.accepted.fetch_add(1, Relaxed);
        export::delivery("accepted");
        export::acknowledged(elapsed);
    }

    #[cfg(any(feature = "tower", feature = "actix-web"))]
    pub(crate) fn duplicate(&self, elapsed: Duration) {
        self.counters.duplicates.fetch_add(1, Relaxed);
        export::delivery("duplicate");
        export::acknowledged(elapsed);
    }

    /// A 503: `reason` is `backlog_full` or `store_failed`.
    #[cfg(any(feature = "tower", feature = "actix-web"))]
    pub(crate) fn unavailable(&self, reason: &'static str, elapsed: Duration) {
        self.counters.unavailable.fetch_add(1, Relaxed);
        export::delivery(reason);
        export::acknowledged(elapsed);
    }

    /// A delivery handled `delay` after it was accepted, by an attempt of `duration`.
    pub(crate) fn handled(&self, delay: Duration, duration: Duration) {
        self.counters.handled.fetch_add(1, Relaxed);
        export::attempt(duration, true);
        export::handled(delay);
    }

    pub(crate) fn failed(&self, duration: Duration) {
        self.counters.failed.fetch_add(1, Relaxed);
        export::attempt(duration, false);
    }

    pub(crate) fn retried(&self) {
        self.counters.retried.fetch_add(1, Relaxed);
        export::retried();
    }

    pub(crate) fn dead_lettered(&self) {
        self.counters.dead_lettered.fetch_add(1, Relaxed);
        export::dead_lettered();
    }

    /// Records what the worker last read of the store: the backlog (pending and leased) and,
    /// with the `metrics` feature, the gauge per state.
    pub(crate) fn set_counts(&self, counts: &Counts) {
        self.counters.backlog.store(counts.backlog(), Relaxed);
        export::stored(counts);
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Metrics").field(&self.snapshot()).finish()
    }
}

/// The counters of [`Metrics`] at one moment.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Deliveries stored (the sender got 200).
    pub accepted: u64,
    rejected: [u64; KINDS.len()],
    /// Authentic re-deliveries answered 200 without being stored again.
    pub duplicates: u64,
    /// Authentic deliveries answered 503 because the backlog was full or the store failed.
    pub unavailable: u64,
    /// Deliveries whose handler succeeded (after retries, if any).
    pub handled: u64,
    /// Handler attempts that failed (an error, a failure status or a panic).
    pub failed: u64,
    /// Attempts scheduled again after a failure.
    pub retried: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
    /// Deliveries waiting in the store (pending or leased), as the worker last read it.
    pub backlog: u64,
}

impl MetricsSnapshot {
    /// Requests refused with `kind`.
    #[must_use]
    pub fn rejected(&self, kind: ErrorKind) -> u64 {
        KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |index| self.rejected[index])
    }

    /// Requests refused for any reason.
    #[must_use]
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(feature = "tower", feature = "actix-web"))]
    fn counts_rejections_by_kind() {
        let metrics = Metrics::new();
        metrics.rejected(ErrorKind::SignatureMismatch);
        metrics.rejected(ErrorKind::SignatureMismatch);
        metrics.rejected(ErrorKind::BodyTooLarge);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.rejected(ErrorKind::SignatureMismatch), 2);
        assert_eq!(snapshot.rejected(ErrorKind::BodyTooLarge), 1);
        assert_eq!(snapshot.rejected(ErrorKind::MissingSignature), 0);
        assert_eq!(snapshot.rejected_total(), 3);
    }

    #[test]
    #[cfg(any(feature = "tower", feature = "actix-web"))]
    fn clones_share_counters() {
        let metrics = Metrics::new();
        metrics.clone().accepted(Duration::ZERO);
        metrics.clone().duplicate(Duration::ZERO);
        let snapshot = metrics.snapshot();
        assert_eq!((snapshot.accepted, snapshot.duplicates), (1, 1));
    }

    #[test]
    fn reports_the_last_backlog_read() {
        let metrics = Metrics::new();
        assert_eq!(metrics.snapshot().backlog, 0);
        let counts = Counts {
            pending: 4,
            leased: 3,
            ..Counts::default()
        };
        metrics.set_counts(&counts);
        assert_eq!(metrics.snapshot().backlog, 7);
    }
}
