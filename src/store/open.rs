//! [`open`]: a store named by a URL, as `PRINTONE_STORE` and the command line's `--store` give it.

use std::time::Duration;

use crate::store::{
    error::StoreError, interface::SharedStore, MemoryStore, DEFAULT_CAPACITY, DEFAULT_DEDUPE_WINDOW,
};

/// What every backend opened by [`open`] is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct OpenOptions {
    /// Deliveries waiting (pending or leased) beyond which a new one is answered 503.
    pub capacity: usize,
    /// How long handled ids are kept to recognise a re-delivery.
    pub dedupe_window: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
        }
    }
}

/// Opens the store `url` names:
///
/// - `memory`: a [`MemoryStore`] (lost when the process ends);
/// - `sqlite:PATH`: the SQLite store in the file `PATH`, created when missing (feature
///   `sqlite`).
///
/// # Errors
///
/// [`StoreError::InvalidUrl`] for a URL that names no store this build has, or the backend's
/// error when it cannot be opened (naming the path and the cause).
#[allow(clippy::unused_async)] // backends that connect over the network are opened here too
pub async fn open(url: &str, options: OpenOptions) -> Result<SharedStore, StoreError> {
    let url = url.trim();
    if url == "memory" {
        let store = MemoryStore::new()
            .with_capacity(options.capacity)
            .with_dedupe_window(options.dedupe_window);
        return Ok(store.into());
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return open_sqlite(path, options);
    }
    Err(StoreError::InvalidUrl(format!(
        "{url:?} names no store: use memory or sqlite:PATH"
    )))
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &str, options: OpenOptions) -> Result<SharedStore, StoreError> {
    if path.is_empty() {
        return Err(StoreError::InvalidUrl(
            "sqlite: needs a path, as in sqlite:deliveries.db".into(),
        ));
    }
    let store = crate::store::SqliteOptions::new(path)
        .capacity(options.capacity)
        .dedupe_window(options.dedupe_window)
        .open()?;
    Ok(store.into())
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite(_: &str, _: OpenOptions) -> Result<SharedStore, StoreError> {
    Err(StoreError::InvalidUrl(
        "this build has no SQLite store: enable the `sqlite` feature".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_and_unknown_urls() {
        let store = open("memory", OpenOptions::default()).await.unwrap();
        assert!(!store.is_durable());
        let error = open("redis://x", OpenOptions::default()).await.unwrap_err();
        assert!(matches!(error, StoreError::InvalidUrl(_)), "{error}");
    }
}
