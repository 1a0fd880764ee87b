//! Between SQLite rows and the store's types: times as microseconds since the Unix epoch,
//! states and signature headers as small numbers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{ffi::ErrorCode, Row};

use crate::{
    core::delivery::SignatureHeader,
    store::{
        error::StoreError,
        record::{Attempt, DeliveryId, DeliveryState, StoredDelivery},
        sqlite::sql,
    },
};

/// A time as microseconds since the Unix epoch (0 before it).
pub(crate) fn micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
    })
}

/// The time `micros` microseconds after the Unix epoch.
pub(crate) fn time(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

pub(crate) const fn state_number(state: DeliveryState) -> i64 {
    match state {
        DeliveryState::Pending => sql::PENDING,
        DeliveryState::Leased => sql::LEASED,
        DeliveryState::Done => sql::DONE,
        DeliveryState::Dead => sql::DEAD,
    }
}

pub(crate) fn state_of(number: i64) -> DeliveryState {
    match number {
        sql::LEASED => DeliveryState::Leased,
        sql::DONE => DeliveryState::Done,
        sql::DEAD => DeliveryState::Dead,
        _ => DeliveryState::Pending,
    }
}

pub(crate) const fn header_number(header: SignatureHeader) -> i64 {
    match header {
        SignatureHeader::Current => 0,
        SignatureHeader::Legacy => 1,
    }
}

fn header_of(number: i64) -> SignatureHeader {
    if number == 1 {
        SignatureHeader::Legacy
    } else {
        SignatureHeader::Current
    }
}

/// The 32-byte id in a BLOB column.
pub(crate) fn id_of(bytes: &[u8]) -> rusqlite::Result<DeliveryId> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(1, "id".into(), rusqlite::types::Type::Blob)
    })?;
    Ok(DeliveryId::from_bytes(bytes))
}

/// A delivery from the columns every read selects (`seq, id, state, event, data_id,
/// event_header, signature_header, secret_index, received_at, attempts, due_at, token,
/// last_error, finished_at, body, recovered_from`), with its `seq` and lease token.
pub(crate) fn delivery(row: &Row<'_>) -> rusqlite::Result<(i64, StoredDelivery, i64)> {
    let seq: i64 = row.get(0)?;
    let id = id_of(&row.get::<_, Vec<u8>>(1)?)?;
    let state = state_of(row.get(2)?);
    let due_at: Option<i64> = row.get(10)?;
    let body: Option<Vec<u8>> = row.get(14)?;
    let stored = StoredDelivery {
        id,
        state,
        event: row.get(3)?,
        data_id: row.get(4)?,
        event_header: row.get(5)?,
        signature_header: header_of(row.get(6)?),
        secret_index: usize::try_from(row.get::<_, i64>(7)?).unwrap_or(0),
        received_at: time(row.get(8)?),
        attempts: u32::try_from(row.get::<_, i64>(9)?).unwrap_or(0),
        next_attempt_at: (state == DeliveryState::Pending)
            .then(|| due_at.map(time))
            .flatten(),
        last_error: row.get(12)?,
        finished_at: row.get::<_, Option<i64>>(13)?.map(time),
        body: body.map(Bytes::from),
        history: Vec::new(),
        recovered_from: row.get(15)?,
        logical_key: None,
    };
    Ok((seq, stored, row.get(11)?))
}

/// One attempt from the columns of [`sql::HISTORY`].
pub(crate) fn attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        started_at: time(row.get(0)?),
        duration: Duration::from_micros(u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0)),
        error: row.get(2)?,
    })
}

/// The store error for a SQLite error: disk full, busy, or unavailable, with the cause.
pub(crate) fn error(error: &rusqlite::Error) -> StoreError {
    let cause = error.to_string().into();
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::DiskFull(cause),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy(cause),
        _ => StoreError::Unavailable(cause),
    }
}
