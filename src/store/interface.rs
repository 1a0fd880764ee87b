//! The [`Store`] trait every backend implements.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    time::{Duration, SystemTime},
};

use crate::{
    core::{delivery::Delivery, key::LogicalKey},
    store::{
        error::StoreError,
        record::{
            Attempt, Claim, Counts, DeliveryId, EventCounts, Filter, Inserted, Lease,
            StoredDelivery,
        },
    },
};

/// The boxed future a [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The future of [`Store::changed`].
pub type ChangedFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

mod sealed {
    /// Keeps [`Store`](super::Store) to the crate's backends, and holds what only the crate
    /// calls.
    pub trait Sealed {
        /// Where a store that claims deliveries for this process's worker as it stores them
        /// passes them on; `None` for one that does not.
        fn handoff(&self) -> Option<&crate::store::handoff::Handoff> {
            None
        }
    }
}
pub(crate) use sealed::Sealed;

/// Where verified deliveries wait to be handled, and are remembered afterwards.
///
/// A delivery is stored and de-duplicated in one step ([`Store::insert`]): its id is the
/// verified MAC, unique in the store, so a re-delivery of a stored, handled or dead-lettered
/// delivery is recognised and not stored again. The sender gets its 200 only once `insert`
/// returned, so a durable backend returns only after the commit that holds the delivery.
///
/// Workers [`claim`](Store::claim) due deliveries with a lease and a fencing token, then
/// [`complete`](Store::complete), [`retry`](Store::retry) or
/// [`dead_letter`](Store::dead_letter) them; a lease that expires (its worker died) lets
/// another worker claim the delivery again.
///
/// The backends are [`MemoryStore`](crate::store::MemoryStore) (lost when the process ends)
/// and, with the `sqlite` feature, the embedded `SqliteStore` (one file on disk), and with the
/// `postgres` feature `PostgresStore` (a database shared by replicas). The trait is sealed so
/// that every backend passes the crate's one conformance suite.
pub trait Store: Sealed + fmt::Debug + Send + Sync + 'static {
    /// Names the backend and where it keeps its data, for the first log line (never a
    /// password).
    fn describe(&self) -> String;

    /// Whether a stored delivery survives the end of the process.
    fn is_durable(&self) -> bool;

    /// Stores `delivery` unless its id is already stored, or the backlog is at capacity.
    ///
    /// While a [`Worker`](crate::worker::Worker) of this process works on the store and every
    /// one of its slots is taken, the insert first waits up to 20 ms for a free slot (flow
    /// control); with a free slot, the delivery is stored claimed for that worker.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when it could not be stored (full disk, I/O error, lock timeout,
    /// unreachable database): nothing is stored, the sender gets 503.
    fn insert<'a>(&'a self, delivery: &'a Delivery) -> StoreFuture<'a, Inserted>;

    /// Claims up to `max` deliveries that are due (pending and due now, or leased with an
    /// expired lease), oldest first, each with a lease of `lease` and one more attempt.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot be read or written.
    fn claim(&self, max: usize, lease: Duration) -> StoreFuture<'_, Claim>;

    /// Records a successful attempt: the delivery is done and its body is dropped.
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseLost`] when `lease` is no longer the current one, or a store failure.
    fn complete<'a>(&'a self, lease: &'a Lease, attempt: &'a Attempt) -> StoreFuture<'a, ()>;

    /// Records a failed attempt and makes the delivery due again at `at`.
    ///
    /// # Errors
    ///
    /// As for [`Store::complete`].
    fn retry<'a>(
        &'a self,
        lease: &'a Lease,
        attempt: &'a Attempt,
        at: SystemTime,
    ) -> StoreFuture<'a, ()>;

    /// Records a failed attempt and gives up on the delivery: it is kept, with its body and
    /// the attempt's error as the reason, until it is replayed or purged.
    ///
    /// # Errors
    ///
    /// As for [`Store::complete`].
    fn dead_letter<'a>(&'a self, lease: &'a Lease, attempt: &'a Attempt) -> StoreFuture<'a, ()>;

    /// Gives a claimed delivery back without counting its attempt (an attempt cut short by a
    /// shutdown): it is due again at once.
    ///
    /// # Errors
    ///
    /// As for [`Store::complete`].
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()>;

    /// The deliveries that pass `filter`, newest first, without their history.
    ///
    /// # Errors
    ///
    /// A store failure.
    fn list<'a>(&'a self, filter: &'a Filter) -> StoreFuture<'a, Vec<StoredDelivery>>;

    /// One delivery with its history.
    ///
    /// # Errors
    ///
    /// A store failure.
    fn get<'a>(&'a self, id: &'a DeliveryId) -> StoreFuture<'a, Option<StoredDelivery>>;

    /// The ids that start with the hex `prefix` (at most two: one is an answer, two say the
    /// prefix is ambiguous).
    ///
    /// # Errors
    ///
    /// A store failure.
    fn resolve<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<DeliveryId>>;

    /// Makes dead letters pending again with their attempts reset, and returns how many.
    /// Ids that are not dead letters are left alone.
    ///
    /// # Errors
    ///
    /// A store failure.
    fn replay<'a>(&'a self, ids: &'a [DeliveryId]) -> StoreFuture<'a, u64>;

    /// Replays every dead letter that passes `filter` (its state and limit aside).
    ///
    /// # Errors
    ///
    /// A store failure.
    fn replay_dead<'a>(&'a self, filter: &'a Filter) -> StoreFuture<'a, u64>;

    /// Removes handled deliveries and dead letters that finished before `before`, and returns
    /// how many. Pending and leased deliveries are never purged. A purged id is forgotten: a
    /// re-delivery of it is stored and handled again.
    ///
    /// # Errors
    ///
    /// A store failure.
    fn purge(&self, before: SystemTime) -> StoreFuture<'_, u64>;

    /// Housekeeping a worker runs now and then: forgets handled ids older than the
    /// de-duplication window, in small batches, and returns how many it removed.
    ///
    /// # Errors
    ///
    /// A store failure.
    fn maintain(&self) -> StoreFuture<'_, u64>;

    /// How many deliveries are in each state.
    ///
    /// # Errors
    ///
    /// A store failure (also the readiness check of a store that went away).
    fn counts(&self) -> StoreFuture<'_, Counts>;

    /// Resolves when new work may have arrived (a delivery stored or replayed here, or, for
    /// a shared store, announced by another process). Workers also poll, so a missed wake-up
    /// only delays.
    fn changed(&self) -> ChangedFuture<'_>;

    /// How many deliveries of each event are in each state, ordered by event name. The event
    /// is the body's, else the header's, else `-`, as [`Filter::event`] matches it.
    ///
    /// # Errors
    ///
    /// A store failure.
    fn event_counts(&self) -> StoreFuture<'_, Vec<EventCounts>>;

    /// Whether the store holds a delivery of each key (in any state, until it is purged or
    /// forgotten after the de-duplication window), in the order of `keys`.
    ///
    /// A delivery's [`LogicalKey`] is stored with it, so a delivery received signed and one
    /// recovered from Print.one's webhook log are recognised as the same event: inserting the
    /// second answers [`Inserted::Duplicate`].
    ///
    /// # Errors
    ///
    /// A store failure.
    fn holds<'a>(&'a self, keys: &'a [LogicalKey]) -> StoreFuture<'a, Vec<bool>>;

    /// The value last saved under `name` by [`Store::set_checkpoint`] (the reconciler keeps
    /// how far it read each webhook's log there).
    ///
    /// # Errors
    ///
    /// A store failure.
    fn checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<String>>;

    /// Saves `value` under `name`, durably in a durable store.
    ///
    /// # Errors
    ///
    /// A store failure.
    fn set_checkpoint<'a>(&'a self, name: &'a str, value: &'a str) -> StoreFuture<'a, ()>;

    /// Takes the lock named `name` when nobody holds it: every process that uses the same
    /// store sees the same lock (an advisory lock of the PostgreSQL server, a lock file beside
    /// the SQLite file, a lock in this process for the memory store). `None` when it is held
    /// elsewhere; the lock is released when the [`Exclusive`] is dropped, or when its process
    /// dies.
    ///
    /// # Errors
    ///
    /// A store failure (no connection to take the lock on, a lock file that cannot be made).
    fn try_exclusive<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Exclusive>>;
}

/// A lock taken by [`Store::try_exclusive`]: held until it is dropped.
#[must_use = "the lock is released when this is dropped"]
pub struct Exclusive {
    _held: Box<dyn Send + Sync>,
}

impl Exclusive {
    /// A lock held as long as `held` lives (its `Drop` releases it).
    pub(crate) fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

impl fmt::Debug for Exclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exclusive")
    }
}

/// A store shared by the receivers and workers of a process: any [`Store`] behind an `Arc`.
///
/// Every API that takes a store takes `impl Into<SharedStore>`, so a concrete store (cheap to
/// clone) or one chosen at run time (`Arc<dyn Store>`, or what [`open`](fn@crate::store::open)
/// returns) both fit.
#[derive(Clone)]
pub struct SharedStore(std::sync::Arc<dyn Store>);

impl<S: Store> From<S> for SharedStore {
    fn from(store: S) -> Self {
        Self(std::sync::Arc::new(store))
    }
}

impl From<std::sync::Arc<dyn Store>> for SharedStore {
    fn from(store: std::sync::Arc<dyn Store>) -> Self {
        Self(store)
    }
}

impl std::ops::Deref for SharedStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
