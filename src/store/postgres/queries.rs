//! What each store operation runs on a pooled connection: one statement each (a transaction
//! of its own), except a history read and the batches of a purge or replay. Inserts and
//! settled leases come in batches of several callers' (see `batcher.rs`), each batch one
//! statement.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use deadpool_postgres::Object;
use tokio_postgres::{types::ToSql, Error};

use crate::{
    core::{delivery::Delivery, key::LogicalKey},
    store::{
        handoff::Reservation,
        postgres::{
            batcher::Weigh,
            rows::{self, micros, micros_until},
            sql::{self, ListShape, Statements},
        },
        record::{
            Attempt, Claim, Claimed, Counts, DeliveryId, DeliveryState, EventCounts, Filter,
            Inserted, Lease, StoredDelivery,
        },
        MAINTENANCE_BATCH,
    },
};

/// The store's statements and settings, as every operation needs them.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) sql: Statements,
    /// The notification channel (the schema name, unquoted).
    pub(crate) channel: String,
    pub(crate) capacity: i64,
    pub(crate) dedupe_window: Duration,
}

/// How a settled lease ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Done,
    Retry(SystemTime),
    Dead,
}

fn batch() -> i64 {
    i64::try_from(MAINTENANCE_BATCH).unwrap_or(i64::MAX)
}

/// A delivery to store, as an insert batch takes it.
#[derive(Debug)]
pub(crate) struct NewDelivery {
    pub(crate) record: StoredDelivery,
    /// The delivery itself, for this process's worker when it is stored claimed for it.
    pub(crate) delivery: Delivery,
    /// The slot of this process's worker it is stored claimed for, if any.
    pub(crate) slot: Option<Reservation>,
}

impl Weigh for NewDelivery {
    /// Its body, and about what its other columns take.
    fn weight(&self) -> usize {
        self.record.body.as_ref().map_or(0, Bytes::len) + 256
    }
}

/// What became of one delivery of an insert batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) inserted: Inserted,
    /// For one stored leased (claimed for this process's worker), when its lease expires.
    pub(crate) leased_until: Option<SystemTime>,
}

/// Stores a batch of deliveries in one statement, each with a lease (`leases`, at the same
/// positions) when it is to be stored claimed for this process's worker: what became of each,
/// in order, once that statement committed.
pub(crate) async fn insert(
    client: &Object,
    context: &Context,
    batch: &[NewDelivery],
    leases: &[Option<Duration>],
) -> Result<Vec<Stored>, Error> {
    let statement = client.prepare_cached(&context.sql.insert).await?;
    let records: Vec<&StoredDelivery> = batch.iter().map(|new| &new.record).collect();
    let column = |take: fn(&StoredDelivery) -> Option<&str>| -> Vec<Option<&str>> {
        records.iter().map(|r| take(r)).collect()
    };
    let leases: Vec<Option<i64>> = leases.iter().map(|lease| lease.map(micros)).collect();
    let ids: Vec<&[u8]> = records.iter().map(|r| r.id.as_bytes().as_slice()).collect();
    let headers: Vec<i16> = records
        .iter()
        .map(|r| rows::header_number(r.signature_header))
        .collect();
    let secret_indexes: Vec<i32> = records
        .iter()
        .map(|r| i32::try_from(r.secret_index).unwrap_or(i32::MAX))
        .collect();
    let received: Vec<SystemTime> = records.iter().map(|r| r.received_at).collect();
    let bodies: Vec<&[u8]> = records
        .iter()
        .map(|r| r.body.as_deref().unwrap_or_default())
        .collect();
    // `query` returns after the server's ReadyForQuery, which follows the commit of this
    // autocommit statement: the batch is committed before any sender gets its 200.
    let found = client
        .query(
            &statement,
            &[
                &ids,
                &column(|r| r.event.as_deref()),
                &column(|r| r.data_id.as_deref()),
                &column(|r| r.event_header.as_deref()),
                &headers,
                &secret_indexes,
                &received,
                &bodies,
                &column(|r| r.logical_key.as_deref().map(LogicalKey::created_at)),
                &column(|r| r.recovered_from.as_deref()),
                &context.capacity,
                &context.channel,
                &leases,
            ],
        )
        .await?;
    let mut judged = Vec::with_capacity(found.len());
    for row in &found {
        judged.push(Judged {
            n: row.try_get("n")?,
            first: row.try_get("first")?,
            known: row.try_get("known")?,
            room: row.try_get("room")?,
            stored: row.try_get("stored")?,
            leased_until: row.try_get("leased_until")?,
        });
    }
    Ok(answers(records.len(), judged))
}

/// What the insert statement says of one delivery of a batch (see `sql::INSERT`).
#[derive(Debug, Clone, Copy)]
struct Judged {
    /// Its position in the batch, from 1.
    n: i64,
    /// The position of the first delivery of the batch with its id or logical key.
    first: i64,
    known: bool,
    room: bool,
    stored: bool,
    /// For one stored leased, when its lease expires.
    leased_until: Option<SystemTime>,
}

/// Each delivery's answer from the rows of the insert statement; none at all when a delivery
/// has no row (which fails the batch).
fn answers(count: usize, mut judged: Vec<Judged>) -> Vec<Stored> {
    judged.sort_by_key(|row| row.n);
    let mut answers: Vec<Inserted> = Vec::with_capacity(count);
    for (row, expected) in judged.iter().zip(1..) {
        if row.n != expected {
            return Vec::new();
        }
        let earlier = usize::try_from(row.first - 1)
            .ok()
            .filter(|_| row.first < row.n)
            .and_then(|at| answers.get(at).copied());
        answers.push(if row.stored {
            Inserted::Stored
        } else if row.known {
            Inserted::Duplicate
        } else if let Some(first) = earlier {
            // A later delivery of the same id or key: stored only if the first was.
            match first {
                Inserted::Full => Inserted::Full,
                _ => Inserted::Duplicate,
            }
        } else if row.room {
            // Not known when the statement began, yet in conflict: another store inserted the
            // same id or key at the same moment.
            Inserted::Duplicate
        } else {
            Inserted::Full
        });
    }
    if answers.len() != count {
        return Vec::new();
    }
    answers
        .into_iter()
        .zip(&judged)
        .map(|(inserted, row)| Stored {
            inserted,
            leased_until: row.leased_until.filter(|_| row.stored),
        })
        .collect()
}

pub(crate) async fn claim(
    client: &Object,
    context: &Context,
    max: usize,
    lease: Duration,
) -> Result<Claim, Error> {
    let statement = client.prepare_cached(&context.sql.claim).await?;
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let found = client.query(&statement, &[&limit, &micros(lease)]).await?;
    let mut next_due = None;
    let mut claimed = Vec::with_capacity(found.len());
    for row in &found {
        next_due = row.try_get::<_, Option<SystemTime>>("next_due")?;
        let Some((seq, stored, token)) = rows::delivery(row)? else {
            continue;
        };
        let expires_at = row.try_get::<_, SystemTime>("due_at")?;
        claimed.push((seq, stored, token, expires_at));
    }
    claimed.sort_by_key(|(seq, stored, _, _)| (stored.received_at, *seq));
    let claimed = claimed
        .into_iter()
        .filter_map(|(_, stored, token, expires_at)| {
            Some(Claimed {
                delivery: stored.to_delivery()?,
                lease: Lease {
                    id: stored.id,
                    token: u64::try_from(token).unwrap_or(0),
                    expires_at,
                },
                attempt: stored.attempts,
            })
        })
        .collect();
    Ok(Claim { claimed, next_due })
}

/// A lease to settle, as a settle batch takes it.
#[derive(Debug)]
pub(crate) struct Settlement {
    id: DeliveryId,
    token: i64,
    /// The state the delivery ends in.
    state: i16,
    /// For a retry, how long from now until it is due, in microseconds.
    retry_in: Option<i64>,
    started_at: SystemTime,
    duration: i64,
    error: Option<String>,
}

impl Settlement {
    /// `lease` settled with `attempt` and `outcome`; a retry's due time is counted from now.
    pub(crate) fn new(lease: &Lease, attempt: &Attempt, outcome: Outcome) -> Self {
        let (state, retry_in) = match outcome {
            Outcome::Done => (sql::DONE, None),
            Outcome::Retry(at) => (sql::PENDING, Some(micros_until(at))),
            Outcome::Dead => (sql::DEAD, None),
        };
        Self {
            id: lease.id,
            token: token(lease),
            state,
            retry_in,
            started_at: attempt.started_at,
            duration: micros(attempt.duration),
            error: attempt.error.clone(),
        }
    }
}

impl Weigh for Settlement {
    fn weight(&self) -> usize {
        self.error.as_ref().map_or(0, String::len) + 64
    }
}

/// Settles a batch of leases in one statement: for each, in order, whether it was still the
/// current lease.
pub(crate) async fn settle(
    client: &Object,
    context: &Context,
    settlements: &[Settlement],
) -> Result<Vec<bool>, Error> {
    let statement = client.prepare_cached(&context.sql.settle).await?;
    let ids: Vec<&[u8]> = settlements
        .iter()
        .map(|s| s.id.as_bytes().as_slice())
        .collect();
    let tokens: Vec<i64> = settlements.iter().map(|s| s.token).collect();
    let states: Vec<i16> = settlements.iter().map(|s| s.state).collect();
    let retry_in: Vec<Option<i64>> = settlements.iter().map(|s| s.retry_in).collect();
    let started: Vec<SystemTime> = settlements.iter().map(|s| s.started_at).collect();
    let durations: Vec<i64> = settlements.iter().map(|s| s.duration).collect();
    let errors: Vec<Option<&str>> = settlements.iter().map(|s| s.error.as_deref()).collect();
    let found = client
        .query(
            &statement,
            &[
                &ids, &tokens, &states, &retry_in, &started, &durations, &errors,
            ],
        )
        .await?;
    let mut current = vec![false; settlements.len()];
    for row in found {
        let n: i64 = row.try_get("n")?;
        if let Some(slot) = usize::try_from(n - 1)
            .ok()
            .and_then(|at| current.get_mut(at))
        {
            *slot = true;
        }
    }
    Ok(current)
}

/// Gives `lease` back: whether it was still the current lease.
pub(crate) async fn release(
    client: &Object,
    context: &Context,
    lease: &Lease,
) -> Result<bool, Error> {
    let statement = client.prepare_cached(&context.sql.release).await?;
    let id = lease.id.as_bytes().as_slice();
    let released = client
        .query(&statement, &[&id, &token(lease), &context.channel])
        .await?;
    Ok(!released.is_empty())
}

pub(crate) async fn list(
    client: &Object,
    context: &Context,
    filter: &Filter,
) -> Result<Vec<StoredDelivery>, Error> {
    let shape = ListShape {
        state: filter.state.map(rows::state_number),
        event: filter.event.is_some(),
        since: filter.since.is_some(),
        before: filter.before.is_some(),
        cursor: filter.before_id.is_some(),
    };
    let statement = client.prepare_cached(&context.sql.list(shape)).await?;
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let before_id = filter.before_id.as_ref().map(|id| id.as_bytes().as_slice());
    let mut parameters: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(6);
    if let Some(event) = &filter.event {
        parameters.push(event);
    }
    if let Some(since) = &filter.since {
        parameters.push(since);
    }
    if let Some(before) = &filter.before {
        parameters.push(before);
        if let Some(id) = &before_id {
            parameters.push(id);
        }
    }
    parameters.push(&limit);
    let found = client.query(&statement, &parameters).await?;
    let mut deliveries = Vec::with_capacity(found.len());
    for row in &found {
        if let Some((_, stored, _)) = rows::delivery(row)? {
            deliveries.push(stored);
        }
    }
    Ok(deliveries)
}

pub(crate) async fn get(
    client: &Object,
    context: &Context,
    id: &DeliveryId,
) -> Result<Option<StoredDelivery>, Error> {
    let statement = client.prepare_cached(&context.sql.get).await?;
    let found = client
        .query_opt(&statement, &[&id.as_bytes().as_slice()])
        .await?;
    let Some((seq, mut stored, _)) = found.as_ref().map(rows::delivery).transpose()?.flatten()
    else {
        return Ok(None);
    };
    let history = client.prepare_cached(&context.sql.history).await?;
    stored.history = client
        .query(&history, &[&seq])
        .await?
        .iter()
        .map(rows::attempt)
        .collect::<Result<_, _>>()?;
    Ok(Some(stored))
}

/// The ids whose hex starts with `prefix` (already lower-case hex digits).
pub(crate) async fn resolve(
    client: &Object,
    context: &Context,
    prefix: &str,
) -> Result<Vec<DeliveryId>, Error> {
    let statement = client.prepare_cached(&context.sql.resolve).await?;
    let found = client.query(&statement, &[&prefix]).await?;
    found
        .iter()
        .map(|row| row.try_get::<_, &[u8]>("id").map(rows::id_of))
        .collect()
}

/// Replays the dead letters among `ids` (a batch at most as long as a maintenance batch).
pub(crate) async fn replay(
    client: &Object,
    context: &Context,
    ids: &[DeliveryId],
) -> Result<u64, Error> {
    let statement = client.prepare_cached(&context.sql.replay).await?;
    let ids: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
    let row = client
        .query_one(&statement, &[&ids, &context.channel])
        .await?;
    Ok(u64::try_from(row.try_get::<_, i64>("replayed")?).unwrap_or(0))
}

/// Work done in batches, each a statement of its own, so that none runs long.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Batch<'a> {
    /// Removes what finished before the time.
    Purge(SystemTime),
    /// Replays the dead letters that pass the filter.
    ReplayDead(&'a Filter),
}

impl Batch<'_> {
    /// Runs one batch: how many it removed or replayed.
    pub(crate) async fn run(&self, client: &Object, context: &Context) -> Result<u64, Error> {
        match *self {
            Self::Purge(before) => purge(client, context, before).await,
            Self::ReplayDead(filter) => replay_dead(client, context, filter).await,
        }
    }
}

/// Replays one batch of the dead letters that pass `filter`.
async fn replay_dead(client: &Object, context: &Context, filter: &Filter) -> Result<u64, Error> {
    let statement = client.prepare_cached(&context.sql.replay_dead).await?;
    let row = client
        .query_one(
            &statement,
            &[
                &filter.event,
                &filter.since,
                &filter.before,
                &batch(),
                &context.channel,
            ],
        )
        .await?;
    Ok(u64::try_from(row.try_get::<_, i64>("replayed")?).unwrap_or(0))
}

/// Removes one batch of what finished before `before`.
async fn purge(client: &Object, context: &Context, before: SystemTime) -> Result<u64, Error> {
    let statement = client.prepare_cached(&context.sql.purge).await?;
    client.execute(&statement, &[&before, &batch()]).await
}

/// Forgets one batch of handled ids past the de-duplication window.
pub(crate) async fn maintain(client: &Object, context: &Context) -> Result<u64, Error> {
    let statement = client.prepare_cached(&context.sql.expire).await?;
    let window = micros(context.dedupe_window);
    client.execute(&statement, &[&window, &batch()]).await
}

pub(crate) async fn counts(client: &Object, context: &Context) -> Result<Counts, Error> {
    let statement = client.prepare_cached(&context.sql.counts).await?;
    let mut counts = Counts::default();
    for row in client.query(&statement, &[]).await? {
        let count = u64::try_from(row.try_get::<_, i64>("count")?).unwrap_or(0);
        match rows::state_of(row.try_get("state")?) {
            DeliveryState::Pending => counts.pending = count,
            DeliveryState::Leased => counts.leased = count,
            DeliveryState::Done => counts.done = count,
            DeliveryState::Dead => counts.dead = count,
        }
    }
    Ok(counts)
}

pub(crate) async fn event_counts(
    client: &Object,
    context: &Context,
) -> Result<Vec<EventCounts>, Error> {
    let statement = client.prepare_cached(&context.sql.event_counts).await?;
    let mut events: Vec<EventCounts> = Vec::new();
    for row in client.query(&statement, &[]).await? {
        let event: String = row.try_get("event")?;
        let count = u64::try_from(row.try_get::<_, i64>("count")?).unwrap_or(0);
        let state = rows::state_of(row.try_get("state")?);
        if events.last().is_none_or(|last| last.event != event) {
            events.push(EventCounts {
                event,
                counts: Counts::default(),
            });
        }
        if let Some(last) = events.last_mut() {
            last.counts.add(state, count);
        }
    }
    Ok(events)
}

fn token(lease: &Lease) -> i64 {
    i64::try_from(lease.token).unwrap_or(i64::MAX)
}

/// Which of `keys` are stored.
pub(crate) async fn holds(
    client: &Object,
    context: &Context,
    keys: &[LogicalKey],
) -> Result<Vec<bool>, Error> {
    let statement = client.prepare_cached(&context.sql.holds).await?;
    let created: Vec<&str> = keys.iter().map(LogicalKey::created_at).collect();
    let events: Vec<&str> = keys.iter().map(LogicalKey::event).collect();
    let data_ids: Vec<&str> = keys.iter().map(LogicalKey::data_id).collect();
    let rows = client
        .query(&statement, &[&created, &events, &data_ids])
        .await?;
    let mut held = vec![false; keys.len()];
    for row in rows {
        let n: i64 = row.try_get("n")?;
        if let Some(slot) = usize::try_from(n - 1).ok().and_then(|at| held.get_mut(at)) {
            *slot = true;
        }
    }
    Ok(held)
}

pub(crate) async fn checkpoint(
    client: &Object,
    context: &Context,
    name: &str,
) -> Result<Option<String>, Error> {
    let statement = client.prepare_cached(&context.sql.checkpoint).await?;
    client
        .query_opt(&statement, &[&name])
        .await?
        .map(|row| row.try_get("value"))
        .transpose()
}

pub(crate) async fn set_checkpoint(
    client: &Object,
    context: &Context,
    name: &str,
    value: &str,
) -> Result<(), Error> {
    let statement = client.prepare_cached(&context.sql.set_checkpoint).await?;
    client
        .execute(&statement, &[&name, &value])
        .await
        .map(|_| ())
}
