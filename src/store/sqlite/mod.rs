//! [`SqliteStore`]: deliveries in one SQLite file, durable by default.
//!
//! A 200 means the delivery is on disk: [`Store::insert`] returns only after the commit that
//! holds it (WAL journal, `synchronous=FULL`). One writer thread batches every write waiting
//! (inserts from many requests, the worker's claims and results) into one transaction and one
//! fsync, then answers each (group commit); reads use their own connections.

mod checkpoint;
mod owners;
mod rows;
mod sql;
mod writer;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{atomic::Ordering::Relaxed, mpsc, Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension as _};
use tokio::sync::{oneshot, Notify};

use crate::{
    core::{delivery::Delivery, key::LogicalKey},
    store::{
        error::StoreError,
        handoff::{Handoff, SLOT_WAIT},
        interface::{ChangedFuture, Exclusive, Sealed, Store, StoreFuture},
        record::{
            Attempt, Claim, Counts, DeliveryId, DeliveryState, EventCounts, Filter, Inserted,
            Lease, StoredDelivery,
        },
        DEFAULT_CAPACITY, DEFAULT_DEDUPE_WINDOW,
    },
};

use checkpoint::{Checkpointer, Wal};
use owners::Owners;
use writer::{Command, Op, Outcome, Reply, Stats, Writer};

/// How durably a commit is written (SQLite's `synchronous` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every commit is flushed to the disk before it returns (`FULL`, the default): a delivery
    /// that got its 200 survives a crash of the process **and** a power cut.
    #[default]
    Full,
    /// The WAL is flushed only at checkpoints (`NORMAL`): faster, survives a crash of the
    /// process, but a power cut or kernel panic can lose the last commits, deliveries that
    /// already got their 200. An explicit opt-in.
    Normal,
}

/// How a [`SqliteStore`] is opened.
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteOptions {
    path: PathBuf,
    capacity: usize,
    dedupe_window: Duration,
    busy_timeout: Duration,
    synchronous: Synchronous,
    max_batch: usize,
    max_size: Option<u64>,
}

impl SqliteOptions {
    /// Options for the file at `path` (created when missing): 10 000 waiting deliveries, a
    /// 7-day de-duplication window, a 5 s busy timeout, `synchronous=FULL`, batches of up to
    /// 512 commands.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            capacity: DEFAULT_CAPACITY,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Full,
            max_batch: 512,
            max_size: None,
        }
    }

    /// Holds at most `capacity` deliveries waiting (pending or leased, at least 1); beyond it a
    /// new delivery is answered 503. Counted by this process, and read again from the file by
    /// the worker's housekeeping (another process may have replayed dead letters).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Keeps handled ids for `window`, to recognise a re-delivery within it.
    pub fn dedupe_window(mut self, window: Duration) -> Self {
        self.dedupe_window = window;
        self
    }

    /// How long a write waits for another process's lock before it fails (503).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets how durably commits are written; see [`Synchronous`].
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Runs at most `commands` writes in one transaction (at least 1).
    pub fn max_batch(mut self, commands: usize) -> Self {
        self.max_batch = commands.max(1);
        self
    }

    /// Caps the database file at about `bytes` (SQLite's `max_page_count`): past it, writes fail
    /// as a full disk would, answered 503, and nothing stored is lost.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Opens (creating or migrating) the store and starts its writer thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::Incompatible`] for a file of a newer schema version or another
    /// application, [`StoreError::Unavailable`] (naming the path and the cause) when the file
    /// cannot be opened or created.
    pub fn open(self) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(self)
    }
}

/// Deliveries in one SQLite file: durable across crashes, `kill -9` and restarts, with nothing
/// to install (SQLite is compiled in).
///
/// Several processes may use the same file (a receiver and the command-line tool, say); one
/// file serves one machine. Replicas on several machines need a shared store: the PostgreSQL
/// store (feature `postgres`). Cloning is cheap: clones share the writer and the readers.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    notify: Arc<Notify>,
    stats: Arc<Stats>,
    dedupe_window: Duration,
    busy_timeout: Duration,
    page_size: u64,
    /// Claims for this process's worker as deliveries are stored.
    handoff: Arc<Handoff>,
    /// Stopped once the writer is.
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl SqliteStore {
    /// Opens the store at `path` with the default [`SqliteOptions`].
    ///
    /// # Errors
    ///
    /// As for [`SqliteOptions::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteOptions::new(path.as_ref()).open()
    }

    fn open_with(options: SqliteOptions) -> Result<Self, StoreError> {
        let connection = open_connection(&options.path, &options, true)?;
        migrate(&connection, &options.path)?;
        let failed = |error: rusqlite::Error| unavailable(&options.path, &error);
        let page_size: i64 = connection
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(failed)?;
        let page_size = u64::try_from(page_size).unwrap_or(4096);
        if let Some(bytes) = options.max_size {
            let pages = (bytes / page_size).max(1);
            connection
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(failed)?;
        }
        let backlog: i64 = connection
            .query_row(sql::BACKLOG, [], |row| row.get(0))
            .map_err(failed)?;
        let owners = Owners::register(&options.path).map_err(|error| {
            StoreError::unavailable(format!(
                "{}: cannot take an owner lock: {error}",
                options.path.display()
            ))
        })?;
        let owners = Arc::new(owners);
        writer::recover(&connection, &owners).map_err(failed)?;
        let notify = Arc::new(Notify::new());
        let stats = Arc::new(Stats::default());
        let handoff = Arc::new(Handoff::default());
        let wal = Arc::new(Wal::default());
        let checkpointer = Checkpointer::spawn(
            open_connection(&options.path, &options, true)?,
            Arc::clone(&stats),
            Arc::clone(&wal),
        )
        .map_err(|error| {
            StoreError::unavailable(format!("could not start the checkpointer: {error}"))
        })?;
        let (sender, receiver) = mpsc::channel();
        let writer = Writer {
            connection,
            commands: receiver,
            max_batch: options.max_batch,
            capacity: options.capacity as u64,
            backlog: u64::try_from(backlog).unwrap_or(0),
            notify: Arc::clone(&notify),
            stats: Arc::clone(&stats),
            owners,
            handoff: Arc::clone(&handoff),
            wal,
        };
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|error| {
                StoreError::unavailable(format!("could not start the writer: {error}"))
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                path: options.path,
                commands: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                notify,
                stats,
                dedupe_window: options.dedupe_window,
                busy_timeout: options.busy_timeout,
                page_size,
                handoff,
                checkpointer: Mutex::new(Some(checkpointer)),
            }),
        })
    }

    /// The file this store keeps its deliveries in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// How many commits the writer made, and how many commands they held: their ratio is the
    /// rows per commit of group commit.
    #[must_use]
    pub fn commit_stats(&self) -> (u64, u64) {
        let stats = &self.shared.stats;
        (stats.commits.load(Relaxed), stats.commands.load(Relaxed))
    }

    /// Caps the database file at about `bytes` from now on (see [`SqliteOptions::max_size`]).
    ///
    /// # Errors
    ///
    /// A store failure.
    pub async fn set_max_size(&self, bytes: u64) -> Result<(), StoreError> {
        let pages = (bytes / self.shared.page_size).max(1);
        self.write(Op::SetMaxPages(pages)).await.map(|_| ())
    }

    /// Sends `op` to the writer and waits for its answer, which comes after the commit.
    async fn write(&self, op: Op) -> Result<Reply, StoreError> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .shared
            .commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|commands| commands.send(Command { op, reply }).is_ok());
        if sent != Some(true) {
            return Err(StoreError::unavailable("the SQLite writer has stopped"));
        }
        answer
            .await
            .map_err(|_| StoreError::unavailable("the SQLite writer stopped before answering"))?
    }

    /// Runs `read` on a reader connection, off the async threads.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let joined = tokio::task::spawn_blocking(move || {
            let connection = shared.reader()?;
            let result = read(&connection).map_err(|error| rows::error(&error));
            shared.give_back(connection);
            result
        })
        .await;
        joined.map_err(|error| StoreError::unavailable(format!("a read failed: {error}")))?
    }
}

impl Shared {
    fn reader(&self) -> Result<Connection, StoreError> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(connection) = idle {
            return Ok(connection);
        }
        let options = SqliteOptions::new(&self.path).busy_timeout(self.busy_timeout);
        open_connection(&self.path, &options, false)
    }

    fn give_back(&self, connection: Connection) {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < 4 {
            readers.push(connection);
        }
    }
}

impl Drop for Shared {
    /// Lets the writer finish what it was sent, close the file and give up its owner lock.
    fn drop(&mut self) {
        let commands = self.commands.get_mut();
        drop(commands.unwrap_or_else(PoisonError::into_inner).take());
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        drop(
            self.checkpointer
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
}

/// Opens a connection with the store's settings; `write` for the writer's.
fn open_connection(
    path: &Path,
    options: &SqliteOptions,
    write: bool,
) -> Result<Connection, StoreError> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let failed = |error: rusqlite::Error| unavailable(path, &error);
    let connection = Connection::open_with_flags(path, flags).map_err(failed)?;
    connection
        .busy_timeout(options.busy_timeout)
        .map_err(failed)?;
    if write {
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(failed)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::unavailable(format!(
                "{}: the file system does not support the WAL journal",
                path.display()
            )));
        }
        let synchronous = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        // Memory-mapped reads, and a small page cache: a B-tree split that reorders its new
        // pages parks one under a page number past the pending-byte page (1 GiB), so that
        // every commit of a file below 1 GiB then walks the whole cache to drop pages past
        // the file's end. A 2 MiB cache makes that walk short; mapped reads keep the random
        // reads of the id index cheap. The checkpoints are the checkpointer's, never a
        // commit's; a WAL started over is cut back to 64 MiB.
        connection
            .execute_batch(&format!(
                "PRAGMA synchronous = {synchronous}; PRAGMA cache_size = -2048; \
                 PRAGMA mmap_size = 268435456; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA journal_size_limit = 67108864;"
            ))
            .map_err(failed)?;
    }
    Ok(connection)
}

/// Checks the file is ours and of a known schema, and migrates it forward.
fn migrate(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    let failed = |error: rusqlite::Error| unavailable(path, &error);
    let read = |pragma: &str| -> Result<i64, StoreError> {
        connection
            .query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
            .map_err(failed)
    };
    let application = read("application_id")?;
    let version = read("user_version")?;
    let known = i64::try_from(sql::MIGRATIONS.len()).unwrap_or(i64::MAX);
    let tables: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(failed)?;
    if application != sql::APPLICATION_ID && (application != 0 || tables > 0) {
        return Err(StoreError::Incompatible(format!(
            "{} is not a printone-webhooks store",
            path.display()
        )));
    }
    if version > known {
        return Err(StoreError::Incompatible(format!(
            "{} has schema version {version}, newer than this version of printone-webhooks knows ({known}); upgrade it",
            path.display()
        )));
    }
    for (index, migration) in sql::MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let target = index + 1;
        connection
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {migration}; PRAGMA application_id = {}; PRAGMA user_version = {target}; COMMIT;",
                sql::APPLICATION_ID
            ))
            .map_err(|error| {
                let _ = connection.execute_batch("ROLLBACK");
                failed(error)
            })?;
        tracing::info!(path = %path.display(), version = target, "SQLite store migrated");
    }
    Ok(())
}

fn unavailable(path: &Path, error: &rusqlite::Error) -> StoreError {
    match rows::error(error) {
        StoreError::Unavailable(_) => {
            StoreError::unavailable(format!("{}: {error}", path.display()))
        }
        other => other,
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `.map(reply_count)`
fn reply_count(reply: Reply) -> u64 {
    match reply {
        Reply::Count(count) => count,
        _ => 0,
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("dedupe_window", &self.shared.dedupe_window)
            .finish_non_exhaustive()
    }
}

impl Sealed for SqliteStore {
    fn handoff(&self) -> Option<&Handoff> {
        Some(&self.shared.handoff)
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.shared.path.display())
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn insert<'a>(&'a self, delivery: &'a Delivery) -> StoreFuture<'a, Inserted> {
        Box::pin(async move {
            let slot = self.shared.handoff.reserve_within(SLOT_WAIT).await;
            let record = Box::new(StoredDelivery::accepted(delivery));
            match self
                .write(Op::Insert(delivery.clone(), record, slot))
                .await?
            {
                Reply::Inserted(inserted) => Ok(inserted),
                _ => Err(StoreError::unavailable("unexpected answer from the writer")),
            }
        })
    }

    fn claim(&self, max: usize, lease: Duration) -> StoreFuture<'_, Claim> {
        Box::pin(async move {
            match self.write(Op::Claim { max, lease }).await? {
                Reply::Claim(claim) => Ok(claim),
                _ => Err(StoreError::unavailable("unexpected answer from the writer")),
            }
        })
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
        Box::pin(async move { self.write(Op::Release(*lease)).await.map(|_| ()) })
    }

    fn list<'a>(&'a self, filter: &'a Filter) -> StoreFuture<'a, Vec<StoredDelivery>> {
        let filter = filter.clone();
        Box::pin(self.read(move |connection| list(connection, &filter)))
    }

    fn get<'a>(&'a self, id: &'a DeliveryId) -> StoreFuture<'a, Option<StoredDelivery>> {
        let id = *id;
        Box::pin(self.read(move |connection| get(connection, &id)))
    }

    fn resolve<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<DeliveryId>> {
        let prefix = prefix.trim().to_ascii_uppercase();
        Box::pin(async move {
            if !prefix.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Ok(Vec::new());
            }
            self.read(move |connection| {
                let mut statement = connection.prepare_cached(sql::RESOLVE)?;
                let ids = statement
                    .query_map(params![prefix], |row| {
                        rows::id_of(&row.get::<_, Vec<u8>>(0)?)
                    })?
                    .collect();
                ids
            })
            .await
        })
    }

    fn replay<'a>(&'a self, ids: &'a [DeliveryId]) -> StoreFuture<'a, u64> {
        Box::pin(async move { self.write(Op::Replay(ids.to_vec())).await.map(reply_count) })
    }

    fn replay_dead<'a>(&'a self, filter: &'a Filter) -> StoreFuture<'a, u64> {
        let filter = filter.clone();
        Box::pin(async move { self.write(Op::ReplayDead(filter)).await.map(reply_count) })
    }

    fn purge(&self, before: SystemTime) -> StoreFuture<'_, u64> {
        Box::pin(async move { self.write(Op::Purge(before)).await.map(reply_count) })
    }

    fn maintain(&self) -> StoreFuture<'_, u64> {
        let window = self.shared.dedupe_window;
        Box::pin(async move { self.write(Op::Maintain(window)).await.map(reply_count) })
    }

    fn counts(&self) -> StoreFuture<'_, Counts> {
        Box::pin(self.read(counts))
    }

    fn changed(&self) -> ChangedFuture<'_> {
        Box::pin(self.shared.notify.notified())
    }

    fn event_counts(&self) -> StoreFuture<'_, Vec<EventCounts>> {
        Box::pin(self.read(event_counts))
    }

    fn holds<'a>(&'a self, keys: &'a [LogicalKey]) -> StoreFuture<'a, Vec<bool>> {
        let keys = keys.to_vec();
        Box::pin(self.read(move |connection| {
            let mut statement = connection.prepare_cached(sql::HOLDS)?;
            keys.iter()
                .map(|key| statement.exists(params![key.created_at(), key.event(), key.data_id()]))
                .collect()
        }))
    }

    fn checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<String>> {
        let name = name.to_owned();
        Box::pin(self.read(move |connection| {
            connection
                .prepare_cached(sql::CHECKPOINT)?
                .query_row(params![name], |row| row.get(0))
                .optional()
        }))
    }

    fn set_checkpoint<'a>(&'a self, name: &'a str, value: &'a str) -> StoreFuture<'a, ()> {
        let op = Op::SetCheckpoint {
            name: name.to_owned(),
            value: value.to_owned(),
        };
        Box::pin(async move { self.write(op).await.map(|_| ()) })
    }

    fn try_exclusive<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Exclusive>> {
        let path = self.shared.path.clone();
        let name = name.to_owned();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || owners::try_exclusive(&path, &name))
                .await
                .map_err(|error| StoreError::unavailable(format!("a lock failed: {error}")))?
        })
    }
}

impl SqliteStore {
    fn settle<'a>(
        &'a self,
        lease: &'a Lease,
        attempt: &'a Attempt,
        outcome: Outcome,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let op = Op::Settle {
                lease: *lease,
                attempt: attempt.clone(),
                outcome,
            };
            self.write(op).await.map(|_| ())
        })
    }
}

fn list(connection: &Connection, filter: &Filter) -> rusqlite::Result<Vec<StoredDelivery>> {
    let (text, values) = sql::list(filter);
    let mut statement = connection.prepare_cached(&text)?;
    let found = statement
        .query_map(rusqlite::params_from_iter(values), |row| {
            rows::delivery(row).map(|(_, stored, _)| stored)
        })?
        .collect();
    found
}

/// The counts of each event. No index holds the state of every delivery (claims and
/// completions would update it twice per delivery), so they are read from what the indexes
/// hold, in one snapshot: every delivery of the event, its dead letters and its backlog; the
/// rest are handled.
fn event_counts(connection: &Connection) -> rusqlite::Result<Vec<EventCounts>> {
    let snapshot = connection.unchecked_transaction()?;
    let mut events: Vec<EventCounts> = Vec::new();
    let mut totals = Vec::new();
    for (event, total) in per_event(&snapshot, sql::EVENT_TOTALS)? {
        totals.push(u64::try_from(total).unwrap_or(0));
        events.push(EventCounts {
            event,
            counts: Counts::default(),
        });
    }
    let mut of = |event: &str, state: DeliveryState, count: i64| {
        if let Ok(at) = events.binary_search_by(|e| e.event.as_str().cmp(event)) {
            events[at]
                .counts
                .add(state, u64::try_from(count).unwrap_or(0));
        }
    };
    for (event, count) in per_event(&snapshot, sql::EVENT_DEAD)? {
        of(&event, DeliveryState::Dead, count);
    }
    for row in snapshot
        .prepare_cached(sql::EVENT_WAITING)?
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?
    {
        let (event, state, count) = row?;
        of(&event, rows::state_of(state), count);
    }
    for (event, total) in events.iter_mut().zip(totals) {
        let others = event.counts.pending + event.counts.leased + event.counts.dead;
        event.counts.done = total.saturating_sub(others);
    }
    snapshot.finish()?;
    Ok(events)
}

/// The rows of a count by event: `(event, count)`.
fn per_event(connection: &Connection, sql: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    connection
        .prepare_cached(sql)?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

fn get(connection: &Connection, id: &DeliveryId) -> rusqlite::Result<Option<StoredDelivery>> {
    let found = connection
        .prepare_cached(sql::GET)?
        .query_row(params![id.as_bytes()], rows::delivery)
        .optional()?;
    let Some((seq, mut stored, _)) = found else {
        return Ok(None);
    };
    let mut history = connection.prepare_cached(sql::HISTORY)?;
    stored.history = history
        .query_map(params![seq], rows::attempt)?
        .collect::<rusqlite::Result<_>>()?;
    let last = connection
        .prepare_cached(sql::LAST_ATTEMPT)?
        .query_row(params![seq], |row| {
            Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?))
        })
        .optional()?;
    if let Some((Some(started), Some(duration))) = last {
        stored.history.push(crate::store::Attempt {
            started_at: rows::time(started),
            duration: Duration::from_micros(u64::try_from(duration).unwrap_or(0)),
            error: None,
        });
    }
    Ok(Some(stored))
}

/// The counts of each state, read as [`event_counts`] reads them.
fn counts(connection: &Connection) -> rusqlite::Result<Counts> {
    let snapshot = connection.unchecked_transaction()?;
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    let total = count(snapshot.query_row(sql::TOTAL, [], |row| row.get(0))?);
    let mut counts = Counts {
        dead: count(snapshot.query_row(sql::DEAD_TOTAL, [], |row| row.get(0))?),
        ..Counts::default()
    };
    let mut waiting = snapshot.prepare_cached(sql::WAITING)?;
    for row in waiting.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))? {
        let (state, n) = row?;
        counts.add(rows::state_of(state), count(n));
    }
    drop(waiting);
    counts.done = total.saturating_sub(counts.pending + counts.leased + counts.dead);
    snapshot.finish()?;
    Ok(counts)
}

#[cfg(test)]
mod tests;
