//! [`PostgresStore`]: deliveries in a PostgreSQL database, shared by every replica.
//!
//! A 200 means the delivery is committed on the server. Concurrent [`Store::insert`]s are
//! stored together (group commit): a task of the store takes every insert waiting, up to 128
//! deliveries or 1 MiB of bodies, and stores them with one `INSERT … SELECT … FROM unnest(…)
//! ON CONFLICT DO NOTHING` statement in its own (autocommit) transaction, two such batches at a
//! time on connections of their own; each insert returns only once the server answered that
//! statement, after its commit. A batch that fails fails each of its inserts with the same
//! error. Completions, retries and dead letters are batched the same way, one `UPDATE … FROM
//! unnest(…)` per batch that also records the failed attempts (a successful one stays in the
//! delivery's row). Workers of every replica claim with
//! `FOR UPDATE SKIP LOCKED`, each claim a lease and a fencing token, and the statement that
//! stores a batch sends one `NOTIFY` that wakes idle workers everywhere when it stored any
//! delivery pending.
//!
//! While this process's worker has free slots (its [`Handoff`]), the new deliveries of a batch
//! take them and are inserted already leased to it (first attempt, token 1, due when the lease
//! expires); once the statement committed they are handed over, and the slots of those that
//! were not stored (re-deliveries, no room, a failed batch) given back. The schema holds no
//! owner: a delivery handed to a replica that dies is taken by another once its lease expires.
//!
//! The insert statement reads `deliveries` only through its indexes, whatever its statistics
//! say (a new table is not analysed before a prepared statement's plan is made and kept): see
//! `sql::INSERT`.
//!
//! | file | what it holds |
//! |---|---|
//! | `batcher.rs` | group commit: callers' work queued, run a batch per statement, answered |
//! | `connect.rs` | the URL's settings, the description, the TLS connector |
//! | `migrate.rs` | the schema's creation and migrations under an advisory lock |
//! | `queries.rs` | what each operation runs |
//! | `listen.rs` | the `LISTEN` connection that wakes the workers |
//! | `sql.rs` | every statement, and the numbered migrations |
//! | `rows.rs` | rows to records, PostgreSQL errors to store errors |

mod batcher;
mod connect;
mod listen;
mod migrate;
mod queries;
mod rows;
mod sql;

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, SystemTime},
};

use deadpool_postgres::{Object, Pool};
use tokio::{
    sync::{watch, Notify},
    task::JoinHandle,
    time::timeout,
};
use tokio_postgres::{
    tls::{MakeTlsConnect, TlsConnect},
    NoTls, Socket,
};

use crate::{
    core::{delivery::Delivery, key::LogicalKey},
    store::{
        error::StoreError,
        handoff::{Handoff, Reservation, SLOT_WAIT},
        interface::{ChangedFuture, Exclusive, Sealed, Store, StoreFuture},
        record::{
            Attempt, Claim, Claimed, Counts, DeliveryId, EventCounts, Filter, Inserted, Lease,
            StoredDelivery,
        },
        DEFAULT_CAPACITY, DEFAULT_DEDUPE_WINDOW, MAINTENANCE_BATCH,
    },
};

use batcher::{Batcher, Run};
use connect::{Connector, Limits, Tls};
use listen::Listener;
use migrate::{Migrated, MIGRATION_TIMEOUT};
use queries::{Batch, Context, NewDelivery, Outcome, Settlement, Stored};
use sql::Statements;

/// The schema a store keeps its tables in unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "printone_webhooks";

/// What the network may add to the server's statement timeout before the store stops waiting
/// for an answer and drops the connection.
pub(crate) const GRACE: Duration = Duration::from_millis(500);

/// The longest schema name PostgreSQL keeps (its `NAMEDATALEN - 1` bytes).
const MAX_SCHEMA_NAME: usize = 63;

/// How big a batch of inserts grows (deliveries, and bytes of bodies past the first), and how
/// many run at a time, each on a connection of its own.
const INSERTS: batcher::Limits = batcher::Limits {
    items: 128,
    bytes: 1 << 20,
    in_flight: 2,
};

/// How big a batch of settled leases grows, and how many run at a time.
const SETTLES: batcher::Limits = batcher::Limits {
    items: 128,
    bytes: 1 << 20,
    in_flight: 2,
};

/// How a [`PostgresStore`] connects.
#[must_use]
#[derive(Clone)]
pub struct PostgresOptions {
    url: String,
    capacity: usize,
    dedupe_window: Duration,
    schema: String,
    connect_timeout: Duration,
    statement_timeout: Duration,
    pool_size: usize,
    tls: Arc<dyn Connector>,
}

impl PostgresOptions {
    /// Options for the database at `url` (`postgres://user:password@host:port/database`, or
    /// the `key=value` form): 10 000 waiting deliveries, a 7-day de-duplication window, the
    /// schema `printone_webhooks`, 2 s to connect and 2 s per statement, a pool of 16
    /// connections, no TLS.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            capacity: DEFAULT_CAPACITY,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            schema: DEFAULT_SCHEMA.to_owned(),
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(2),
            pool_size: 16,
            tls: Arc::new(Tls(NoTls)),
        }
    }

    /// Holds about `capacity` deliveries waiting (pending or leased, at least 1); beyond it a
    /// new delivery is answered 503.
    ///
    /// The backlog is counted once by each batch of inserts, in its own snapshot, and the new
    /// deliveries of the batch take the room left in their order: batches stored at the same
    /// moment (by this replica or others) can each see the same room, so the bound holds give
    /// or take the inserts in flight. A re-delivery is recognised as such even when the
    /// backlog is full.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Keeps handled ids for `window`, to recognise a re-delivery within it.
    pub fn dedupe_window(mut self, window: Duration) -> Self {
        self.dedupe_window = window;
        self
    }

    /// Keeps the tables in the schema `name` (default `printone_webhooks`), created on first
    /// use. Replicas that share a backlog use the same schema; its name is also the channel of
    /// the notifications that wake their workers.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// How long making a connection, or waiting for a free one, may take before the store
    /// answers [`StoreError::Unavailable`] (at least 1 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long one statement may run (the server's `statement_timeout` of the store's
    /// sessions, at least 1 ms): past it the server cancels it and the store answers
    /// [`StoreError::Busy`]. A server that does not answer at all is given another 500 ms
    /// before the store drops the connection and answers [`StoreError::Unavailable`].
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Keeps at most `connections` connections in the pool [`PostgresOptions::connect`] makes
    /// (at least 1); the listening connection comes on top.
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// Makes the store's connections with the TLS connector `tls` (a
    /// `postgres_native_tls::MakeTlsConnector` or `tokio_postgres_rustls::MakeRustlsConnect`,
    /// say) instead of `NoTls`: the pool's, and the listening connection of a store made with
    /// [`PostgresStore::from_pool`].
    pub fn tls<T>(mut self, tls: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
        T::Stream: Sync + Send,
        T::TlsConnect: Sync + Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        self.tls = Arc::new(Tls(tls));
        self
    }

    /// Connects, creates or migrates the schema, and starts listening for other replicas'
    /// deliveries.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`] for a URL or schema name that cannot be used,
    /// [`StoreError::Unavailable`] when the server cannot be reached within the connect timeout
    /// (or does not answer), [`StoreError::Incompatible`] for a schema of a newer version or
    /// another application's, or the server's error.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let config = self.config()?;
        let limits = Limits {
            size: self.pool_size,
            connect: self.connect_timeout,
            statement: self.statement_timeout,
        };
        let pool = self.tls.pool(config, limits)?;
        PostgresStore::start(pool, self).await
    }

    fn config(&self) -> Result<tokio_postgres::Config, StoreError> {
        connect::config(&self.url, self.connect_timeout, self.statement_timeout)
    }

    /// The schema name, or why PostgreSQL could not keep it.
    fn checked_schema(&self) -> Result<&str, StoreError> {
        let name = self.schema.as_str();
        if name.is_empty() || name.len() > MAX_SCHEMA_NAME || name.contains('\0') {
            return Err(StoreError::InvalidUrl(format!(
                "{name:?} cannot be a PostgreSQL schema name: 1 to {MAX_SCHEMA_NAME} bytes, no NUL"
            )));
        }
        Ok(name)
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = self.config().map_or_else(
            |_| "(an unreadable URL)".to_owned(),
            |config| connect::describe(&config, &self.schema),
        );
        f.debug_struct("PostgresOptions")
            .field("server", &server)
            .field("capacity", &self.capacity)
            .field("dedupe_window", &self.dedupe_window)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// Deliveries in a PostgreSQL database: durable as the server's commits are, and shared by
/// the receivers and workers of every replica that uses the same schema.
///
/// Any replica may answer a delivery and any replica's worker may handle it; a re-delivery is
/// recognised whichever replica stored it first. A delivery is claimed by one worker at a
/// time (`FOR UPDATE SKIP LOCKED`), under a lease: when its worker dies, the lease expires
/// and another replica takes the delivery, and the old holder's result is refused
/// ([`StoreError::LeaseLost`]). Every time the store compares is the server's clock.
///
/// Inserts that arrive together are stored together, by one statement and one commit (group
/// commit), and each is answered only after that commit; completions, retries and dead letters
/// are settled a batch per statement too. [`PostgresStore::commit_stats`] counts the insert
/// statements and the deliveries they held. While the worker of this process has a free slot,
/// a new delivery is claimed for it by the statement that stores it.
///
/// The tables live in their own schema (`printone_webhooks` unless
/// [`PostgresOptions::schema`] says otherwise), created on first use; the schema version is a
/// row of its `schema_version` table. Cloning is cheap: clones share the pool, the tasks that
/// run the batches and the listening connection, which stop when the last clone is dropped.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    database: Arc<Database>,
    /// Inserts, stored a batch per statement.
    inserts: Batcher<NewDelivery, Stored>,
    /// Completions, retries and dead letters, settled a batch per statement.
    settles: Batcher<Settlement, bool>,
    schema: String,
    notify: Arc<Notify>,
    /// Whether the listening connection listens now.
    listening: watch::Receiver<bool>,
    listener: JoinHandle<()>,
}

impl Drop for Shared {
    /// Stops the listening connection; the batchers stop once their senders, dropped with
    /// this, are gone.
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// What every statement needs, shared by the store and its batchers' tasks.
struct Database {
    pool: Pool,
    context: Context,
    described: String,
    connect_timeout: Duration,
    statement_timeout: Duration,
    /// Insert statements that committed, and the deliveries they held.
    insert_batches: AtomicU64,
    inserted: AtomicU64,
    /// Claims for this process's worker as deliveries are stored.
    handoff: Arc<Handoff>,
}

impl Database {
    /// Runs `work` on a pooled connection, waiting at most what `statements` statements may
    /// take; a connection whose server did not answer in time is dropped, not given back.
    async fn run<T>(
        &self,
        statements: u32,
        work: impl AsyncFnOnce(&Object, &Context) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let client = pooled(&self.pool, self.connect_timeout, &self.described).await?;
        let limit = self.statement_timeout * statements + GRACE;
        let Ok(answer) = timeout(limit, work(&client, &self.context)).await else {
            drop(Object::take(client));
            return Err(StoreError::unavailable(format!(
                "{}: no answer within {limit:?}",
                self.described
            )));
        };
        answer.map_err(|error| rows::error(&self.described, &error))
    }

    /// How long a caller of a batched operation waits for its answer: what one statement on
    /// a pooled connection may take, as [`Database::run`] bounds it.
    fn patience(&self) -> Duration {
        self.connect_timeout + self.statement_timeout + GRACE
    }

    /// The batcher of inserts: one statement per batch.
    fn inserts(self: &Arc<Self>) -> Batcher<NewDelivery, Stored> {
        let database = Arc::clone(self);
        let run: Run<NewDelivery, Stored> = Box::new(move |batch| {
            let database = Arc::clone(&database);
            Box::pin(async move { database.insert(batch).await })
        });
        Batcher::start(run, INSERTS, self.patience(), &self.described)
    }

    /// Stores one batch of inserts. Each new delivery takes a free slot of this process's
    /// worker, while there is one, and is stored claimed for it; once the statement committed,
    /// those stored are handed over and the other slots given back.
    async fn insert(&self, batch: Vec<NewDelivery>) -> Result<Vec<Stored>, StoreError> {
        let leases: Vec<Option<Duration>> = batch
            .iter()
            .map(|new| new.slot.as_ref().map(Reservation::lease))
            .collect();
        // A slot not spent on a delivery stored claimed goes back when its `NewDelivery` is
        // dropped: a re-delivery, no room, a failed batch.
        let stored = self
            .run(1, async |client, context| {
                queries::insert(client, context, &batch, &leases).await
            })
            .await;
        let stored = stored?;
        self.insert_batches.fetch_add(1, Relaxed);
        self.inserted.fetch_add(batch.len() as u64, Relaxed);
        let handed: Vec<Claimed> = batch
            .into_iter()
            .zip(&stored)
            .filter_map(|(new, stored)| {
                let expires_at = stored.leased_until?;
                if let Some(slot) = &new.slot {
                    slot.spend();
                }
                Some(Claimed {
                    delivery: new.delivery,
                    lease: Lease {
                        id: new.record.id,
                        token: 1,
                        expires_at,
                    },
                    attempt: 1,
                })
            })
            .collect();
        self.handoff.deliver(handed);
        Ok(stored)
    }

    /// The batcher of settled leases: one statement per batch.
    fn settles(self: &Arc<Self>) -> Batcher<Settlement, bool> {
        let database = Arc::clone(self);
        let run: Run<Settlement, bool> = Box::new(move |settlements| {
            let database = Arc::clone(&database);
            Box::pin(async move {
                database
                    .run(1, async |client, context| {
                        queries::settle(client, context, &settlements).await
                    })
                    .await
            })
        });
        Batcher::start(run, SETTLES, self.patience(), &self.described)
    }
}

impl PostgresStore {
    /// Connects to the database at `url` with the default [`PostgresOptions`].
    ///
    /// # Errors
    ///
    /// As for [`PostgresOptions::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        PostgresOptions::new(url).connect().await
    }

    /// A store on the connections of `pool`, a pool the application already has (with the TLS
    /// it needs). Its statements are bounded by `options`' statement timeout on this side
    /// only: set `statement_timeout` on the pool's sessions for the server to cancel them too.
    ///
    /// The listening connection is made from `options`' URL, with its TLS connector
    /// ([`PostgresOptions::tls`]); when it cannot connect, workers still find new work by
    /// polling, a little later. `options`' pool size is not used.
    ///
    /// # Errors
    ///
    /// As for [`PostgresOptions::connect`].
    pub async fn from_pool(pool: Pool, options: PostgresOptions) -> Result<Self, StoreError> {
        Self::start(pool, options).await
    }

    async fn start(pool: Pool, options: PostgresOptions) -> Result<Self, StoreError> {
        let config = options.config()?;
        let schema = options.checked_schema()?.to_owned();
        let described = connect::describe(&config, &schema);
        let sql = Statements::new(&schema);
        let mut client = pooled(&pool, options.connect_timeout, &described).await?;
        let migrated = timeout(
            MIGRATION_TIMEOUT + GRACE,
            migrate::migrate(&mut client, &sql, &schema, &described),
        )
        .await;
        let Ok(migrated) = migrated else {
            drop(Object::take(client));
            return Err(StoreError::unavailable(format!(
                "{described}: the schema was not ready within {MIGRATION_TIMEOUT:?}"
            )));
        };
        if let Migrated::Forward(from, to) = migrated? {
            tracing::info!(store = %described, from, to, "PostgreSQL store migrated");
        }
        check_commits(&client, &described, options.statement_timeout + GRACE).await;
        drop(client);
        let notify = Arc::new(Notify::new());
        let (up, listening) = watch::channel(false);
        let listener = options.tls.listen(Listener {
            config,
            listen: Statements::listen(&schema),
            notify: Arc::clone(&notify),
            up,
            connect_timeout: options.connect_timeout,
            statement_timeout: options.statement_timeout,
            described: described.clone(),
        });
        let context = Context {
            sql,
            channel: schema.clone(),
            capacity: i64::try_from(options.capacity).unwrap_or(i64::MAX),
            dedupe_window: options.dedupe_window,
        };
        let database = Arc::new(Database {
            pool,
            context,
            described,
            connect_timeout: options.connect_timeout,
            statement_timeout: options.statement_timeout,
            insert_batches: AtomicU64::new(0),
            inserted: AtomicU64::new(0),
            handoff: Arc::default(),
        });
        Ok(Self {
            shared: Arc::new(Shared {
                inserts: database.inserts(),
                settles: database.settles(),
                database,
                schema,
                notify,
                listening,
                listener,
            }),
        })
    }

    /// The schema this store keeps its tables in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The pool of connections this store runs its statements on.
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.shared.database.pool
    }

    /// How many insert statements committed, and how many deliveries they held: their ratio
    /// is the deliveries per commit of group commit.
    #[must_use]
    pub fn commit_stats(&self) -> (u64, u64) {
        let database = &self.shared.database;
        (
            database.insert_batches.load(Relaxed),
            database.inserted.load(Relaxed),
        )
    }

    /// Runs `work` as [`Database::run`] does.
    async fn run<T>(
        &self,
        statements: u32,
        work: impl AsyncFnOnce(&Object, &Context) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        self.shared.database.run(statements, work).await
    }

    /// Runs one batch after another until a batch comes back short, and adds them up.
    async fn batches(&self, batch: Batch<'_>) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let done = self
                .run(1, async |client, context| batch.run(client, context).await)
                .await?;
            total += done;
            if done < MAINTENANCE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    fn wake(&self) {
        self.shared.notify.notify_one();
    }

    fn settle<'a>(
        &'a self,
        lease: &'a Lease,
        attempt: &'a Attempt,
        outcome: Outcome,
    ) -> StoreFuture<'a, ()> {
        let settlement = Settlement::new(lease, attempt, outcome);
        Box::pin(async move {
            let current = self.shared.settles.submit(settlement).await?;
            if !current {
                return Err(lost(lease));
            }
            if matches!(outcome, Outcome::Retry(_)) {
                self.wake();
            }
            Ok(())
        })
    }
}

/// A connection from `pool` within `limit`.
async fn pooled(pool: &Pool, limit: Duration, described: &str) -> Result<Object, StoreError> {
    match timeout(limit, pool.get()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(rows::pool_error(described, error)),
        Err(_) => Err(StoreError::unavailable(format!(
            "{described}: no connection within {limit:?}"
        ))),
    }
}

/// Warns when the server answers commits before they are on its disk
/// (`synchronous_commit = off`): a crash of the server could then lose deliveries that got
/// their 200.
async fn check_commits(client: &Object, described: &str, limit: Duration) {
    let Ok(Ok(row)) = timeout(limit, client.query_one(sql::SYNCHRONOUS_COMMIT, &[])).await else {
        return;
    };
    if row
        .try_get::<_, &str>(0)
        .is_ok_and(|setting| setting == "off")
    {
        tracing::warn!(
            store = %described,
            "synchronous_commit is off on this server: a crash of the server can lose deliveries that got their 200"
        );
    }
}

fn lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost(lease.id.short())
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        let database = &shared.database;
        f.debug_struct("PostgresStore")
            .field("server", &database.described)
            .field("capacity", &database.context.capacity)
            .field("dedupe_window", &database.context.dedupe_window)
            .field("listening", &*shared.listening.borrow())
            .finish_non_exhaustive()
    }
}

impl Sealed for PostgresStore {
    fn handoff(&self) -> Option<&Handoff> {
        Some(&*self.shared.database.handoff)
    }
}

impl Store for PostgresStore {
    fn describe(&self) -> String {
        self.shared.database.described.clone()
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn insert<'a>(&'a self, delivery: &'a Delivery) -> StoreFuture<'a, Inserted> {
        Box::pin(async move {
            let new = NewDelivery {
                record: StoredDelivery::accepted(delivery),
                delivery: delivery.clone(),
                slot: self.shared.database.handoff.reserve_within(SLOT_WAIT).await,
            };
            let stored = self.shared.inserts.submit(new).await?;
            if stored.inserted == Inserted::Stored && stored.leased_until.is_none() {
                // Stored pending: the workers of this process at once; the others by the
                // notification. One stored leased went to this process's worker already.
                self.wake();
            }
            Ok(stored.inserted)
        })
    }

    fn claim(&self, max: usize, lease: Duration) -> StoreFuture<'_, Claim> {
        Box::pin(self.run(1, async move |client, context| {
            queries::claim(client, context, max, lease).await
        }))
    }

    fn complete<'a>(&'a self, lease: &'a Lease, attempt: &'a Attempt) -> StoreFuture<'a, ()> {
        self.settle(lease, attempt, Outcome::Done)
    }

    fn retry<'a>(
        &'a self,
        lease: &'a Lease,
        attempt: &'a Attempt,
        at: SystemTime,
    ) -> StoreFuture<'a, ()> {
        self.settle(lease, attempt, Outcome::Retry(at))
    }

    fn dead_letter<'a>(&'a self, lease: &'a Lease, attempt: &'a Attempt) -> StoreFuture<'a, ()> {
        self.settle(lease, attempt, Outcome::Dead)
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let current = self
                .run(1, async |client, context| {
                    queries::release(client, context, lease).await
                })
                .await?;
            if !current {
                return Err(lost(lease));
            }
            self.wake();
            Ok(())
        })
    }

    fn list<'a>(&'a self, filter: &'a Filter) -> StoreFuture<'a, Vec<StoredDelivery>> {
        Box::pin(self.run(1, async |client, context| {
            queries::list(client, context, filter).await
        }))
    }

    fn get<'a>(&'a self, id: &'a DeliveryId) -> StoreFuture<'a, Option<StoredDelivery>> {
        Box::pin(self.run(2, async |client, context| {
            queries::get(client, context, id).await
        }))
    }

    fn resolve<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<DeliveryId>> {
        let prefix = prefix.trim().to_ascii_lowercase();
        Box::pin(async move {
            if !prefix.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Ok(Vec::new());
            }
            self.run(1, async |client, context| {
                queries::resolve(client, context, &prefix).await
            })
            .await
        })
    }

    fn replay<'a>(&'a self, ids: &'a [DeliveryId]) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let mut replayed = 0;
            for chunk in ids.chunks(MAINTENANCE_BATCH) {
                replayed += self
                    .run(1, async |client, context| {
                        queries::replay(client, context, chunk).await
                    })
                    .await?;
            }
            if replayed > 0 {
                self.wake();
            }
            Ok(replayed)
        })
    }

    fn replay_dead<'a>(&'a self, filter: &'a Filter) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let replayed = self.batches(Batch::ReplayDead(filter)).await?;
            if replayed > 0 {
                self.wake();
            }
            Ok(replayed)
        })
    }

    fn purge(&self, before: SystemTime) -> StoreFuture<'_, u64> {
        Box::pin(self.batches(Batch::Purge(before)))
    }

    fn maintain(&self) -> StoreFuture<'_, u64> {
        Box::pin(self.run(1, async |client, context| {
            queries::maintain(client, context).await
        }))
    }

    fn counts(&self) -> StoreFuture<'_, Counts> {
        Box::pin(self.run(1, async |client, context| {
            queries::counts(client, context).await
        }))
    }

    fn changed(&self) -> ChangedFuture<'_> {
        Box::pin(self.shared.notify.notified())
    }

    fn event_counts(&self) -> StoreFuture<'_, Vec<EventCounts>> {
        Box::pin(self.run(1, async |client, context| {
            queries::event_counts(client, context).await
        }))
    }

    fn holds<'a>(&'a self, keys: &'a [LogicalKey]) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            let mut held = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(MAINTENANCE_BATCH) {
                held.extend(
                    self.run(1, async |client, context| {
                        queries::holds(client, context, chunk).await
                    })
                    .await?,
                );
            }
            Ok(held)
        })
    }

    fn checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(self.run(1, async |client, context| {
            queries::checkpoint(client, context, name).await
        }))
    }

    fn set_checkpoint<'a>(&'a self, name: &'a str, value: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.run(1, async |client, context| {
            queries::set_checkpoint(client, context, name, value).await
        }))
    }

    fn try_exclusive<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Exclusive>> {
        Box::pin(self.exclusive(name))
    }
}

impl PostgresStore {
    /// Takes the advisory lock `name` on a connection of its own, taken out of the pool: the
    /// lock lives as long as that session, which ends when the [`Exclusive`] is dropped (or
    /// when this process dies and the server notices the closed connection).
    async fn exclusive(&self, name: &str) -> Result<Option<Exclusive>, StoreError> {
        let shared = &*self.shared.database;
        let client = pooled(&shared.pool, shared.connect_timeout, &shared.described).await?;
        let key = format!("{}:{name}", shared.context.sql.schema);
        let taken = timeout(
            shared.statement_timeout + GRACE,
            client.query_one(
                shared.context.sql.try_exclusive,
                &[&sql::EXCLUSIVE_CLASS, &key],
            ),
        )
        .await;
        let Ok(answer) = taken else {
            drop(Object::take(client));
            return Err(StoreError::unavailable(format!(
                "{}: no answer to a lock within {:?}",
                shared.described, shared.statement_timeout
            )));
        };
        let taken: bool = answer
            .and_then(|row| row.try_get("taken"))
            .map_err(|error| rows::error(&shared.described, &error))?;
        Ok(taken.then(|| Exclusive::new(Object::take(client))))
    }
}

#[cfg(test)]
mod tests;
