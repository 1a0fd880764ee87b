//! Why a reconciliation could not run to its end.

use std::time::Duration;

use crate::store::StoreError;

/// Why a reconciliation stopped before its end. Nothing it stored is lost: a delivery it
/// recovered stays stored, and the checkpoint of a webhook moves only once all of that
/// webhook's log in the window was read, so the next run reads the rest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// A setting is wrong: an empty or refused API key (401, 403), a webhook id the account
    /// does not have (404), a bad API URL, a window the store cannot serve.
    #[error("{0}")]
    Config(String),
    /// The API did not answer, timed out or kept failing (5xx) through every retry.
    #[error("the Print.one API could not be reached: {0}")]
    Unreachable(String),
    /// The API asked to wait longer than the client will (`429` with a long `Retry-After`).
    #[error("the Print.one API asks to wait {0:?} (429 Too Many Requests)")]
    RateLimited(Duration),
    /// The API answered with something that is not the documented shape.
    #[error("the Print.one API answered in an unexpected shape: {0}")]
    Malformed(String),
    /// The store failed (full disk, lost database); the cause says which.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// The store's backlog is at capacity: recovered deliveries wait for the next run.
    #[error("the store's backlog is full: run again once the worker has caught up")]
    Full,
    /// Another reconciler of the same store runs now (in this or another process).
    #[error("another reconciler of this store is running")]
    Busy,
}

impl ReconcileError {
    /// Whether the API could not be reached (unreachable, rate limited, or an answer of an
    /// unexpected shape): worth trying again later with the same settings.
    #[must_use]
    pub const fn is_api_failure(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::RateLimited(_) | Self::Malformed(_)
        )
    }

    /// How long the API asked to wait, for a [`ReconcileError::RateLimited`].
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(wait) => Some(*wait),
            _ => None,
        }
    }
}
