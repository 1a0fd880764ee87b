//! Between PostgreSQL rows and the store's types, and from PostgreSQL errors to
//! [`StoreError`]s.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use deadpool_postgres::PoolError;
use tokio_postgres::{error::SqlState, Row};

use crate::{
    core::{delivery::SignatureHeader, error::BoxError},
    store::{
        error::StoreError,
        postgres::sql,
        record::{Attempt, DeliveryId, DeliveryState, StoredDelivery},
    },
};

/// The longest interval the store hands the server (about 100 years): beyond it, PostgreSQL
/// intervals would overflow.
const MAX_MICROS: i64 = 100 * 366 * 24 * 60 * 60 * 1_000_000;

/// A duration in whole microseconds, as the statements take them.
pub(crate) fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).map_or(MAX_MICROS, |micros| micros.min(MAX_MICROS))
}

/// How long from now until `at` (nothing when it is past), in microseconds.
pub(crate) fn micros_until(at: SystemTime) -> i64 {
    micros(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

pub(crate) const fn state_number(state: DeliveryState) -> i16 {
    match state {
        DeliveryState::Pending => sql::PENDING,
        DeliveryState::Leased => sql::LEASED,
        DeliveryState::Done => sql::DONE,
        DeliveryState::Dead => sql::DEAD,
    }
}

pub(crate) fn state_of(number: i16) -> DeliveryState {
    match number {
        sql::LEASED => DeliveryState::Leased,
        sql::DONE => DeliveryState::Done,
        sql::DEAD => DeliveryState::Dead,
        _ => DeliveryState::Pending,
    }
}

pub(crate) const fn header_number(header: SignatureHeader) -> i16 {
    match header {
        SignatureHeader::Current => 0,
        SignatureHeader::Legacy => 1,
    }
}

fn header_of(number: i16) -> SignatureHeader {
    if number == 1 {
        SignatureHeader::Legacy
    } else {
        SignatureHeader::Current
    }
}

/// The 32-byte id in a `bytea` column (the schema checks its length).
pub(crate) fn id_of(bytes: &[u8]) -> DeliveryId {
    let mut id = [0; 32];
    let take = bytes.len().min(32);
    id[..take].copy_from_slice(&bytes[..take]);
    DeliveryId::from_bytes(id)
}

/// A delivery, its `seq` and its lease token from a row with the columns of the deliveries
/// table; `None` for the row of `NULL`s a claim that took nothing answers.
pub(crate) fn delivery(
    row: &Row,
) -> Result<Option<(i64, StoredDelivery, i64)>, tokio_postgres::Error> {
    let Some(id) = row.try_get::<_, Option<&[u8]>>("id")? else {
        return Ok(None);
    };
    let state = state_of(row.try_get("state")?);
    let due_at: Option<SystemTime> = row.try_get("due_at")?;
    let body: Option<&[u8]> = row.try_get("body")?;
    let stored = StoredDelivery {
        id: id_of(id),
        state,
        event: row.try_get("event")?,
        data_id: row.try_get("data_id")?,
        event_header: row.try_get("event_header")?,
        signature_header: header_of(row.try_get("signature_header")?),
        secret_index: usize::try_from(row.try_get::<_, i32>("secret_index")?).unwrap_or(0),
        received_at: row.try_get("received_at")?,
        attempts: u32::try_from(row.try_get::<_, i32>("attempts")?).unwrap_or(0),
        next_attempt_at: due_at.filter(|_| state == DeliveryState::Pending),
        last_error: row.try_get("last_error")?,
        finished_at: row.try_get("finished_at")?,
        body: body.map(Bytes::copy_from_slice),
        history: Vec::new(),
        recovered_from: row.try_get("recovered_from")?,
        logical_key: None,
    };
    Ok(Some((row.try_get("seq")?, stored, row.try_get("token")?)))
}

/// One attempt from a row of the history statement.
pub(crate) fn attempt(row: &Row) -> Result<Attempt, tokio_postgres::Error> {
    let micros: i64 = row.try_get("duration_us")?;
    Ok(Attempt {
        started_at: row.try_get("started_at")?,
        duration: Duration::from_micros(u64::try_from(micros).unwrap_or(0)),
        error: row.try_get("error")?,
    })
}

/// The store error for a PostgreSQL error, its message naming the server (`described`): a full
/// disk, busy (a lock, a serialization failure or the statement timeout), or unavailable
/// (refused, closed or broken connections, and everything else).
pub(crate) fn error(described: &str, error: &tokio_postgres::Error) -> StoreError {
    classify(error.code(), format!("{described}: {error}").into())
}

/// The kind of store error for an SQLSTATE.
pub(crate) fn classify(code: Option<&SqlState>, cause: BoxError) -> StoreError {
    let Some(code) = code else {
        return StoreError::Unavailable(cause);
    };
    if *code == SqlState::DISK_FULL {
        StoreError::DiskFull(cause)
    } else if [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::QUERY_CANCELED,
    ]
    .contains(code)
    {
        StoreError::Busy(cause)
    } else {
        StoreError::Unavailable(cause)
    }
}

/// The store error for a connection the pool could not hand out.
pub(crate) fn pool_error(described: &str, failure: PoolError) -> StoreError {
    match failure {
        PoolError::Backend(failure) => error(described, &failure),
        other => StoreError::unavailable(format!("{described}: no connection: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: &SqlState) -> &'static str {
        classify(Some(code), "x".into()).as_str()
    }

    #[test]
    fn sqlstates_map_to_store_error_kinds() {
        assert_eq!(kind(&SqlState::DISK_FULL), "disk_full");
        assert_eq!(kind(&SqlState::T_R_SERIALIZATION_FAILURE), "busy");
        assert_eq!(kind(&SqlState::T_R_DEADLOCK_DETECTED), "busy");
        assert_eq!(kind(&SqlState::LOCK_NOT_AVAILABLE), "busy");
        assert_eq!(kind(&SqlState::QUERY_CANCELED), "busy");
        assert_eq!(kind(&SqlState::ADMIN_SHUTDOWN), "unavailable");
        assert_eq!(kind(&SqlState::TOO_MANY_CONNECTIONS), "unavailable");
        assert_eq!(classify(None, "refused".into()).as_str(), "unavailable");
    }

    #[test]
    fn durations_are_clamped_to_what_an_interval_holds() {
        assert_eq!(micros(Duration::from_millis(3)), 3_000);
        assert_eq!(micros(Duration::MAX), MAX_MICROS);
        assert_eq!(micros_until(SystemTime::UNIX_EPOCH), 0);
    }
}
