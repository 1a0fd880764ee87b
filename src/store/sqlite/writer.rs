//! The one writer of a SQLite store: a thread that takes every command waiting, runs them in one
//! transaction, commits once, and only then answers each (group commit).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        mpsc, Arc,
    },
    time::{Duration, SystemTime},
};

use rusqlite::{params, Connection, OptionalExtension as _};
use tokio::sync::{oneshot, Notify};

use crate::{
    core::{delivery::Delivery, key::LogicalKey},
    store::sqlite::owners::Owners,
    store::{
        error::StoreError,
        handoff::{Handoff, Reservation},
        record::{Attempt, Claim, Claimed, DeliveryId, Filter, Inserted, Lease, StoredDelivery},
        sqlite::{
            checkpoint::{self, Wal},
            rows::{self, micros},
            sql,
        },
        MAINTENANCE_BATCH,
    },
};

/// What the writer is asked to do.
pub(crate) enum Op {
    /// A delivery, with its record made by the caller (reading the body is no work for the
    /// one writer), and the slot of this process's worker it is stored claimed for, if any.
    Insert(Delivery, Box<StoredDelivery>, Option<Reservation>),
    Claim {
        max: usize,
        lease: Duration,
    },
    Settle {
        lease: Lease,
        attempt: Attempt,
        outcome: Outcome,
    },
    Release(Lease),
    Replay(Vec<DeliveryId>),
    ReplayDead(Filter),
    Purge(SystemTime),
    Maintain(Duration),
    SetMaxPages(u64),
    SetCheckpoint {
        name: String,
        value: String,
    },
}

#[derive(Clone, Copy)]
pub(crate) enum Outcome {
    Done,
    Retry(SystemTime),
    Dead,
}

/// The writer's answer to one [`Op`].
pub(crate) enum Reply {
    Inserted(Inserted),
    Claim(Claim),
    Count(u64),
    Done,
}

pub(crate) struct Command {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<Reply, StoreError>>,
}

impl Command {
    /// Answers the caller once what the command holds is let go (a worker's slot it did not
    /// use is free again before the caller hears back).
    fn answer(self, result: Result<Reply, StoreError>) {
        let Self { op, reply } = self;
        drop(op);
        let _ = reply.send(result);
    }
}

/// Counters of the writer's work, for benchmarks and operators.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) commits: AtomicU64,
    pub(crate) commands: AtomicU64,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub(crate) connection: Connection,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) max_batch: usize,
    pub(crate) capacity: u64,
    /// Pending and leased deliveries, counted by this writer and read again by housekeeping
    /// (another process may have changed the file).
    pub(crate) backlog: u64,
    pub(crate) notify: Arc<Notify>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) owners: Arc<Owners>,
    /// Where deliveries claimed as they are stored go, once committed.
    pub(crate) handoff: Arc<Handoff>,
    /// The WAL's length, as the checkpointer saw it.
    pub(crate) wal: Arc<Wal>,
}

/// What one command changed, applied once the commit succeeded.
#[derive(Default)]
struct Effect {
    backlog: i64,
    wake: bool,
    /// Deliveries claimed for this process's worker as they were stored.
    handed: Vec<Claimed>,
}

impl Effect {
    fn add(&mut self, other: Self) {
        self.backlog += other.backlog;
        self.wake |= other.wake;
        self.handed.extend(other.handed);
    }
}

impl Op {
    /// Whether the command runs more than one statement that writes.
    const fn needs_savepoint(&self) -> bool {
        !matches!(
            self,
            Self::Insert(..) | Self::Claim { .. } | Self::Release(_) | Self::SetMaxPages(_)
        )
    }
}

impl Writer {
    /// Runs until every sender is gone.
    pub(crate) fn run(mut self) {
        while let Ok(first) = self.commands.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match self.commands.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.execute(batch);
        }
    }

    fn execute(&mut self, batch: Vec<Command>) {
        if let Err(error) = self.connection.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %error, "the SQLite store could not begin a transaction");
            return answer_all(batch, &error);
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut effect = Effect::default();
        for command in &batch {
            let result = self.apply_one(&command.op, &mut effect);
            if let Err(error) = &result {
                if self.connection.is_autocommit() {
                    // SQLite rolled the whole transaction back (a full disk, an I/O error):
                    // nothing of this batch was written, so every command gets the error.
                    tracing::error!(error = %error, "the SQLite store rolled a batch back");
                    self.handoff.cancel(effect.handed.len());
                    for command in batch {
                        command.answer(Err(error.again()));
                    }
                    return;
                }
            }
            results.push(result);
        }
        if let Err(error) = self.connection.execute_batch("COMMIT") {
            tracing::error!(error = %error, "the SQLite store could not commit");
            let _ = self.connection.execute_batch("ROLLBACK");
            self.handoff.cancel(effect.handed.len());
            return answer_all(batch, &error);
        }
        self.stats.commits.fetch_add(1, Relaxed);
        self.stats.commands.fetch_add(batch.len() as u64, Relaxed);
        self.backlog = self.backlog.saturating_add_signed(effect.backlog);
        if effect.wake {
            self.notify.notify_one();
        }
        self.handoff.deliver(effect.handed);
        for (command, result) in batch.into_iter().zip(results) {
            command.answer(result);
        }
        checkpoint::restart_if_long(&self.connection, &self.wal);
    }

    /// Runs one command; one of several statements runs inside its own savepoint, so that a
    /// failing command leaves the others' work (a single statement is atomic on its own).
    fn apply_one(&mut self, op: &Op, effect: &mut Effect) -> Result<Reply, StoreError> {
        let mut own = Effect::default();
        if !op.needs_savepoint() {
            let reply = self.apply(op, &mut own)?;
            effect.add(own);
            return Ok(reply);
        }
        self.run_cached("SAVEPOINT command")?;
        match self.apply(op, &mut own) {
            Ok(reply) => {
                self.run_cached("RELEASE command")?;
                effect.add(own);
                Ok(reply)
            }
            Err(error) => {
                let _ = self.run_cached("ROLLBACK TO command");
                let _ = self.run_cached("RELEASE command");
                Err(error)
            }
        }
    }

    fn run_cached(&self, sql: &str) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute([]))
            .map(|_| ())
            .map_err(|error| rows::error(&error))
    }

    fn apply(&mut self, op: &Op, effect: &mut Effect) -> Result<Reply, StoreError> {
        let sqlite = |error: rusqlite::Error| rows::error(&error);
        match op {
            Op::Insert(delivery, record, slot) => self
                .insert(delivery, record, slot.as_ref(), effect)
                .map(Reply::Inserted),
            Op::Claim { max, lease } => self.claim(*max, *lease).map(Reply::Claim),
            Op::Settle {
                lease,
                attempt,
                outcome,
            } => self
                .settle(lease, attempt, *outcome, effect)
                .map(|()| Reply::Done),
            Op::Release(lease) => {
                let changed = self
                    .connection
                    .prepare_cached(sql::RELEASE)
                    .and_then(|mut s| s.execute(params![lease_id(lease), token(lease), now()]))
                    .map_err(sqlite)?;
                if changed == 0 {
                    return Err(lost(lease));
                }
                effect.wake = true;
                Ok(Reply::Done)
            }
            Op::Replay(ids) => self.replay(ids, effect).map(Reply::Count),
            Op::ReplayDead(filter) => {
                let ids = dead_ids(&self.connection, filter).map_err(sqlite)?;
                self.replay(&ids, effect).map(Reply::Count)
            }
            Op::Purge(before) => {
                let before = micros(*before);
                let connection = &self.connection;
                connection
                    .execute(sql::PURGE_ATTEMPTS, params![before])
                    .map_err(sqlite)?;
                let purged = connection
                    .execute(sql::PURGE, params![before])
                    .map_err(sqlite)?;
                Ok(Reply::Count(purged as u64))
            }
            Op::Maintain(window) => self.maintain(*window).map(Reply::Count),
            Op::SetCheckpoint { name, value } => {
                self.connection
                    .prepare_cached(sql::SET_CHECKPOINT)
                    .and_then(|mut statement| statement.execute(params![name, value]))
                    .map_err(sqlite)?;
                Ok(Reply::Done)
            }
            Op::SetMaxPages(pages) => {
                self.connection
                    .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                    .map_err(sqlite)?;
                Ok(Reply::Done)
            }
        }
    }

    /// Stores the delivery unless its id is there; a full backlog refuses only new ids.
    fn insert(
        &mut self,
        delivery: &Delivery,
        record: &StoredDelivery,
        slot: Option<&Reservation>,
        effect: &mut Effect,
    ) -> Result<Inserted, StoreError> {
        let id = record.id;
        let pending = self.backlog.saturating_add_signed(effect.backlog);
        if pending >= self.capacity {
            let created = record.logical_key.as_deref().map(LogicalKey::created_at);
            let exists = self
                .connection
                .prepare_cached(sql::KNOWN)
                .and_then(|mut s| {
                    let known = params![id.as_bytes(), created, record.event, record.data_id];
                    s.query_row(known, |_| Ok(())).optional()
                })
                .map_err(|error| rows::error(&error))?;
            return Ok(if exists.is_some() {
                Inserted::Duplicate
            } else {
                Inserted::Full
            });
        }
        // Claimed for this process's worker in the same write when it has a slot for it.
        let expires_at = slot.map(|slot| micros(SystemTime::now() + slot.lease()));
        let inserted = self
            .connection
            .prepare_cached(sql::INSERT)
            .and_then(|mut statement| {
                statement.execute(params![
                    id.as_bytes(),
                    record.event,
                    record.data_id,
                    record.event_header,
                    rows::header_number(record.signature_header),
                    i64::try_from(record.secret_index).unwrap_or(0),
                    micros(record.received_at),
                    record.body.as_deref(),
                    record.logical_key.as_deref().map(LogicalKey::created_at),
                    record.recovered_from,
                    expires_at,
                    expires_at.map(|_| self.owners.me()),
                ])
            })
            .map_err(|error| rows::error(&error));
        // An unspent slot goes back when its command is dropped, after the answer.
        if inserted? == 0 {
            return Ok(Inserted::Duplicate);
        }
        effect.backlog += 1;
        if let Some(slot) = slot {
            // A rolled-back batch gives the slots of what it handed back (`execute`).
            slot.spend();
        }
        match expires_at {
            Some(expires_at) => effect.handed.push(Claimed {
                delivery: delivery.clone(),
                lease: Lease {
                    id,
                    token: 1,
                    expires_at: rows::time(expires_at),
                },
                attempt: 1,
            }),
            None => effect.wake = true,
        }
        Ok(Inserted::Stored)
    }

    fn claim(&mut self, max: usize, lease: Duration) -> Result<Claim, StoreError> {
        let sqlite = |error: rusqlite::Error| rows::error(&error);
        let now = SystemTime::now();
        let expires_at = now + lease;
        let mut statement = self.connection.prepare_cached(sql::CLAIM).map_err(sqlite)?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let mut found = statement
            .query_map(
                params![micros(now), micros(expires_at), limit, self.owners.me()],
                rows::delivery,
            )
            .map_err(sqlite)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite)?;
        drop(statement);
        found.sort_by_key(|(seq, stored, _)| (stored.received_at, *seq));
        let claimed = found
            .into_iter()
            .filter_map(|(_, stored, token)| {
                let delivery = stored.to_delivery()?;
                Some(Claimed {
                    delivery,
                    lease: Lease {
                        id: stored.id,
                        token: u64::try_from(token).unwrap_or(0),
                        expires_at: rows::time(micros(expires_at)),
                    },
                    attempt: stored.attempts,
                })
            })
            .collect();
        let next_due: Option<i64> = self
            .connection
            .prepare_cached(sql::NEXT_DUE)
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(sqlite)?;
        Ok(Claim {
            claimed,
            next_due: next_due.map(rows::time),
        })
    }

    /// Records the attempt's outcome in the delivery's row; a failure also gets a row of its
    /// own in the history (a success is the row's last attempt, so a handled delivery costs
    /// one statement).
    fn settle(
        &mut self,
        lease: &Lease,
        attempt: &Attempt,
        outcome: Outcome,
        effect: &mut Effect,
    ) -> Result<(), StoreError> {
        let sqlite = |error: rusqlite::Error| rows::error(&error);
        let connection = &self.connection;
        let started = micros(attempt.started_at);
        let duration = i64::try_from(attempt.duration.as_micros()).unwrap_or(i64::MAX);
        let (statement, at) = match outcome {
            Outcome::Done => (sql::COMPLETE, now()),
            Outcome::Retry(at) => (sql::RETRY, micros(at)),
            Outcome::Dead => (sql::DEAD_LETTER, now()),
        };
        let changed = match outcome {
            Outcome::Done => connection.prepare_cached(statement).and_then(|mut s| {
                s.execute(params![
                    lease_id(lease),
                    token(lease),
                    at,
                    started,
                    duration
                ])
            }),
            Outcome::Retry(_) | Outcome::Dead => {
                connection.prepare_cached(statement).and_then(|mut s| {
                    s.execute(params![
                        lease_id(lease),
                        token(lease),
                        at,
                        started,
                        duration,
                        attempt.error
                    ])
                })
            }
        }
        .map_err(sqlite)?;
        if changed == 0 {
            return Err(lost(lease));
        }
        if !matches!(outcome, Outcome::Done) {
            connection
                .prepare_cached(sql::RECORD_FAILED_ATTEMPT)
                .and_then(|mut s| {
                    s.execute(params![
                        lease_id(lease),
                        token(lease),
                        started,
                        duration,
                        attempt.error
                    ])
                })
                .map_err(sqlite)?;
        }
        match outcome {
            Outcome::Done | Outcome::Dead => effect.backlog -= 1,
            Outcome::Retry(_) => effect.wake = true,
        }
        Ok(())
    }

    fn replay(&mut self, ids: &[DeliveryId], effect: &mut Effect) -> Result<u64, StoreError> {
        let sqlite = |error: rusqlite::Error| rows::error(&error);
        let mut statement = self
            .connection
            .prepare_cached(sql::REPLAY)
            .map_err(sqlite)?;
        let now = now();
        let mut replayed = 0;
        for id in ids {
            replayed += statement
                .execute(params![id.as_bytes(), now])
                .map_err(sqlite)? as u64;
        }
        effect.backlog += i64::try_from(replayed).unwrap_or(0);
        effect.wake |= replayed > 0;
        Ok(replayed)
    }

    /// Forgets one batch of handled ids past the window, and counts the backlog again.
    fn maintain(&mut self, window: Duration) -> Result<u64, StoreError> {
        let sqlite = |error: rusqlite::Error| rows::error(&error);
        let Some(horizon) = SystemTime::now().checked_sub(window) else {
            return Ok(0);
        };
        let connection = &self.connection;
        let seqs = connection
            .prepare_cached(sql::EXPIRED_BATCH)
            .and_then(|mut s| {
                let limit = i64::try_from(MAINTENANCE_BATCH).unwrap_or(i64::MAX);
                s.query_map(params![micros(horizon), limit], |row| row.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sqlite)?;
        for seq in &seqs {
            connection
                .prepare_cached(sql::DELETE_ATTEMPTS_OF)
                .and_then(|mut s| s.execute(params![seq]))
                .map_err(sqlite)?;
            connection
                .prepare_cached(sql::DELETE_DELIVERY)
                .and_then(|mut s| s.execute(params![seq]))
                .map_err(sqlite)?;
        }
        let backlog: i64 = connection
            .query_row(sql::BACKLOG, [], |row| row.get(0))
            .map_err(sqlite)?;
        self.backlog = u64::try_from(backlog).unwrap_or(0);
        recover(connection, &self.owners).map_err(sqlite)?;
        Ok(seqs.len() as u64)
    }
}

/// Lets the leases of processes that died expire now, so their deliveries are taken at once
/// instead of when the leases run out.
pub(crate) fn recover(connection: &Connection, owners: &Owners) -> rusqlite::Result<()> {
    let others = connection
        .prepare_cached(sql::LEASE_OWNERS)?
        .query_map(params![owners.me()], |row| row.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for owner in others {
        if owners.is_dead(owner) {
            let expired = connection
                .prepare_cached(sql::EXPIRE_LEASES_OF)?
                .execute(params![owner, now()])?;
            tracing::warn!(
                expired,
                "a process holding deliveries died; they are taken again now"
            );
            owners.forget(owner);
        }
    }
    Ok(())
}

/// The dead letters that pass `filter` (its state and limit aside).
fn dead_ids(connection: &Connection, filter: &Filter) -> rusqlite::Result<Vec<DeliveryId>> {
    let mut statement = connection.prepare_cached(sql::DEAD_IDS)?;
    let ids = statement
        .query_map(
            params![
                filter.event,
                filter.since.map(micros),
                filter.before.map(micros)
            ],
            |row| rows::id_of(&row.get::<_, Vec<u8>>(0)?),
        )?
        .collect();
    ids
}

fn answer_all(batch: Vec<Command>, error: &rusqlite::Error) {
    for command in batch {
        command.answer(Err(rows::error(error)));
    }
}

fn now() -> i64 {
    micros(SystemTime::now())
}

fn lease_id(lease: &Lease) -> &[u8] {
    lease.id.as_bytes()
}

fn token(lease: &Lease) -> i64 {
    i64::try_from(lease.token).unwrap_or(i64::MAX)
}

fn lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost(lease.id.short())
}
