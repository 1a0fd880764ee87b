//! Where verified deliveries wait to be handled: one [`Store`] interface, its backends side by
//! side, and the conformance suite every backend passes.
//!
//! | backend | a 200 means the delivery is | for |
//! |---|---|---|
//! | [`MemoryStore`] | in this process's memory (lost on a crash, a deploy or `kill -9`) | tests |
//! | `SqliteStore` (feature `sqlite`, default) | committed to one SQLite file on disk | one machine: the default |
//! | `PostgresStore` (feature `postgres`) | committed on the PostgreSQL server | replicas sharing one backlog |

use std::time::Duration;

pub(crate) mod error;
pub(crate) mod handoff;
pub(crate) mod interface;
pub(crate) mod memory;
pub(crate) mod open;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod record;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use error::StoreError;
pub use interface::{ChangedFuture, Exclusive, SharedStore, Store, StoreFuture};
pub use memory::{MemoryStore, DEFAULT_REMEMBERED};
pub use open::{open, OpenOptions};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresOptions, PostgresStore, DEFAULT_SCHEMA};
pub use record::{
    Attempt, Claim, Claimed, Counts, DeliveryId, DeliveryState, EventCounts, Filter, Inserted,
    InvalidDeliveryId, Lease, StoredDelivery,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// The default number of deliveries a store holds waiting (pending or leased): 10 000. Beyond
/// it a new delivery is answered 503 with `Retry-After`.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// The default time handled ids are kept to recognise a re-delivery: 7 days.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How many expired rows one [`Store::maintain`] call removes at most, so housekeeping never
/// holds a store for long.
pub(crate) const MAINTENANCE_BATCH: usize = 500;
