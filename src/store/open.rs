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
///   `sqlite`);
/// - `postgres://…` or `postgresql://…`: the PostgreSQL store in the schema
///   `printone_webhooks` of that database, created on first use (feature `postgres`; no TLS:
///   use `PostgresOptions::tls` or `PostgresStore::from_pool` for that).
///
/// # Errors
///
/// [`StoreError::InvalidUrl`] for a URL that names no store this build has, or the backend's
/// error when it cannot be opened (naming the path or server and the cause).
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
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return open_postgres(url, options).await;
    }
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    Err(StoreError::InvalidUrl(format!(
        "{scheme:?} names no store: use memory, sqlite:PATH or postgres://…"
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

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, options: OpenOptions) -> Result<SharedStore, StoreError> {
    let store = crate::store::PostgresOptions::new(url)
        .capacity(options.capacity)
        .dedupe_window(options.dedupe_window)
        .connect()
        .await?;
    Ok(store.into())
}

#[cfg(not(feature = "postgres"))]
#[allow(clippy::unused_async)] // the same signature as with the feature
async fn open_postgres(_: &str, _: OpenOptions) -> Result<SharedStore, StoreError> {
    Err(StoreError::InvalidUrl(
        "this build has no PostgreSQL store: enable the `postgres` feature".into(),
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
        // A mistyped URL may carry a password: only its scheme is repeated.
        let typo = open("postgress://u:secret@h/db", OpenOptions::default()).await;
        let text = typo.unwrap_err().to_string();
        assert!(
            text.contains("\"postgress\"") && !text.contains("secret"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_postgres_url_names_the_feature_or_the_server() {
        // Nothing listens on port 1: with the feature the store is tried and unavailable.
        let url = "postgres://user:pw@127.0.0.1:1/db";
        let error = open(url, OpenOptions::default()).await.unwrap_err();
        let text = error.to_string();
        assert!(!text.contains("pw"), "{text}");
        if cfg!(feature = "postgres") {
            assert!(matches!(error, StoreError::Unavailable(_)), "{text}");
        } else {
            assert!(text.contains("enable the `postgres` feature"), "{text}");
        }
    }
}
