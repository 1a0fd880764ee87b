//! [`StoreError`]: why a store could not do what it was asked.

use crate::core::error::BoxError;

/// Why a store could not do what it was asked.
///
/// On the request path every kind answers 503 with `Retry-After` (never 200) and is logged with
/// its cause; the worker logs it and tries again later.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk (or the store's size limit) is full: nothing was written.
    #[error("the store is full: {0}")]
    DiskFull(#[source] BoxError),
    /// The store stayed locked or busy past its timeout.
    #[error("the store is busy: {0}")]
    Busy(#[source] BoxError),
    /// The store could not be reached or failed to read or write (an I/O error, a database
    /// that went away, a closed writer).
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The lease on a delivery expired and another worker holds it now: the result of this
    /// attempt was not recorded.
    #[error("the lease on delivery {0} was lost to another worker")]
    LeaseLost(String),
    /// The store URL names no store this build has.
    #[error("not a store URL: {0}")]
    InvalidUrl(String),
    /// The store was written by an incompatible version (a newer schema), or is not a store.
    #[error("incompatible store: {0}")]
    Incompatible(String),
}

impl StoreError {
    /// A stable `snake_case` name, for logs and metrics.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::DiskFull(_) => "disk_full",
            Self::Busy(_) => "busy",
            Self::Unavailable(_) => "unavailable",
            Self::LeaseLost(_) => "lease_lost",
            Self::Incompatible(_) => "incompatible",
            Self::InvalidUrl(_) => "invalid_url",
        }
    }

    /// The same error again, for each of several callers it failed at once.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn again(&self) -> Self {
        let cause = |source: &BoxError| -> BoxError { source.to_string().into() };
        match self {
            Self::DiskFull(source) => Self::DiskFull(cause(source)),
            Self::Busy(source) => Self::Busy(cause(source)),
            Self::Unavailable(source) => Self::Unavailable(cause(source)),
            Self::LeaseLost(id) => Self::LeaseLost(id.clone()),
            Self::Incompatible(text) => Self::Incompatible(text.clone()),
            Self::InvalidUrl(text) => Self::InvalidUrl(text.clone()),
        }
    }

    /// An [`StoreError::Unavailable`] from any error.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }
}
