//! [`WorkerReport`]: what one worker did, returned when it shuts down.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::worker::attempt::Failure;

/// What a [`Worker`](crate::Worker) did, returned by
/// [`WorkerHandle::shutdown`](crate::WorkerHandle::shutdown).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Deliveries whose handler succeeded (after retries, if any).
    pub handled: u64,
    /// Attempts that failed, panics included.
    pub failed: u64,
    /// Attempts that panicked (the worker kept running).
    pub panicked: u64,
    /// Attempts scheduled again after a failure.
    pub retried: u64,
    /// Deliveries given to the dead-letter hook.
    pub dead_lettered: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Tally {
    handled: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
}

impl Tally {
    pub(crate) fn handled(&self) {
        self.handled.fetch_add(1, Relaxed);
    }

    pub(crate) fn failed(&self, failure: &Failure) {
        self.failed.fetch_add(1, Relaxed);
        if matches!(failure, Failure::Panicked) {
            self.panicked.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn retried(&self) {
        self.retried.fetch_add(1, Relaxed);
    }

    pub(crate) fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Relaxed);
    }

    pub(crate) fn report(&self) -> WorkerReport {
        WorkerReport {
            handled: self.handled.load(Relaxed),
            failed: self.failed.load(Relaxed),
            panicked: self.panicked.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
        }
    }
}
