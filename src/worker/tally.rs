//! [`WorkerReport`]: what one worker did, returned when it shuts down.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::worker::attempt::Failure;

/// What a [`Worker`](crate::worker::Worker) did, returned by
/// [`WorkerHandle::shutdown`](crate::worker::WorkerHandle::shutdown).
///
/// The first three fields count deliveries, the rest count attempts.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Deliveries handled.
    pub handled: u64,
    /// Deliveries given up on (dead-lettered).
    pub dead_lettered: u64,
    /// Deliveries still waiting when the worker stopped: left stored for the next start with a
    /// durable store, **lost** with the memory store (each is logged).
    pub left: u64,
    /// Attempts that failed (errors and panics).
    pub attempts_failed: u64,
    /// Attempts that panicked (also counted in `attempts_failed`).
    pub attempts_panicked: u64,
    /// Failed attempts followed by a retry.
    pub retries_scheduled: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Tally {
    handled: AtomicU64,
    dead_lettered: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    retried: AtomicU64,
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

    pub(crate) fn report(&self, left: u64) -> WorkerReport {
        WorkerReport {
            handled: self.handled.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            left,
            attempts_failed: self.failed.load(Relaxed),
            attempts_panicked: self.panicked.load(Relaxed),
            retries_scheduled: self.retried.load(Relaxed),
        }
    }
}
