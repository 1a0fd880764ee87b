//! What each store operation runs on a pooled connection: one statement each (a transaction
//! of its own), except a history read and the batches of a purge or replay.

use std::time::{Duration, SystemTime};

use deadpool_postgres::Object;
use tokio_postgres::{types::ToSql, Error};

use crate::{
    core::{delivery::Delivery, key::LogicalKey},
    store::{
        postgres::{
            rows::{self, micros, micros_until},
            sql::{ListShape, Statements},
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

/// Stores `delivery`; the answer comes once the statement committed.
pub(crate) async fn insert(
    client: &Object,
    context: &Context,
    delivery: &Delivery,
) -> Result<Inserted, Error> {
    let record = StoredDelivery::accepted(delivery);
    let statement = client.prepare_cached(&context.sql.insert).await?;
    let secret_index = i32::try_from(record.secret_index).unwrap_or(i32::MAX);
    // `query_one` returns after the server's ReadyForQuery, which follows the commit of this
    // autocommit statement: the delivery is committed before the sender gets its 200.
    let row = client
        .query_one(
            &statement,
            &[
                &record.id.as_bytes().as_slice(),
                &record.event,
                &record.data_id,
                &record.event_header,
                &rows::header_number(record.signature_header),
                &secret_index,
                &record.received_at,
                &delivery.body().as_ref(),
                &context.capacity,
                &context.channel,
                &record.logical_key.as_deref().map(LogicalKey::created_at),
                &record.recovered_from,
            ],
        )
        .await?;
    let stored: i64 = row.try_get("stored")?;
    let known: bool = row.try_get("known")?;
    let room: bool = row.try_get("room")?;
    Ok(if stored > 0 {
        Inserted::Stored
    } else if known {
        Inserted::Duplicate
    } else if room {
        // Not known when the statement began, yet in conflict: another store inserted the
        // same id at the same moment.
        Inserted::Duplicate
    } else {
        Inserted::Full
    })
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

/// Settles `lease` with `attempt`: whether it was still the current lease.
pub(crate) async fn settle(
    client: &Object,
    context: &Context,
    lease: &Lease,
    attempt: &Attempt,
    outcome: Outcome,
) -> Result<bool, Error> {
    let sql = &context.sql;
    let text = match outcome {
        Outcome::Done => &sql.complete,
        Outcome::Retry(_) => &sql.retry,
        Outcome::Dead => &sql.dead_letter,
    };
    let statement = client.prepare_cached(text).await?;
    let id = lease.id.as_bytes().as_slice();
    let token = token(lease);
    let duration = micros(attempt.duration);
    let changed = match outcome {
        Outcome::Retry(at) => {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
                &id,
                &token,
                &attempt.started_at,
                &duration,
                &attempt.error,
                &micros_until(at),
            ];
            client.execute(&statement, &params).await?
        }
        Outcome::Done | Outcome::Dead => {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                [&id, &token, &attempt.started_at, &duration, &attempt.error];
            client.execute(&statement, &params).await?
        }
    };
    Ok(changed > 0)
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
