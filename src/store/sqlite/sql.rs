//! Every SQL statement of the SQLite store, and its numbered migrations.

use rusqlite::types::Value;

use crate::store::{record::Filter, sqlite::rows};

/// The `application_id` of a store file ("P1WH"), so another SQLite file is refused.
pub(crate) const APPLICATION_ID: i64 = 0x5031_5748;

/// Migration `n` (from 1) takes an empty file, or a file at schema `n - 1`, to schema `n`.
/// The schema version is `PRAGMA user_version`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: deliveries, their attempts.
    "CREATE TABLE deliveries (
        seq INTEGER PRIMARY KEY,
        id BLOB NOT NULL UNIQUE,
        state INTEGER NOT NULL,
        event TEXT,
        data_id TEXT,
        event_header TEXT,
        signature_header INTEGER NOT NULL,
        secret_index INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at INTEGER,
        token INTEGER NOT NULL DEFAULT 0,
        owner INTEGER,
        last_started_at INTEGER,
        last_duration_us INTEGER,
        last_error TEXT,
        finished_at INTEGER,
        body BLOB
    );
    CREATE INDEX deliveries_due ON deliveries (state, due_at) WHERE state IN (0, 1);
    CREATE INDEX deliveries_finished ON deliveries (state, finished_at) WHERE state IN (2, 3);
    CREATE INDEX deliveries_state_received ON deliveries (state, received_at);
    CREATE TABLE attempts (
        delivery_seq INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        duration_us INTEGER NOT NULL,
        error TEXT
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_seq);",
    // 2: the logical key (event, data id, creation time) that matches Print.one's webhook log,
    // the log entry a recovered delivery came from, and named checkpoints. Deliveries stored
    // before have no key, so the reconciler reads no log from before `keyed-since`.
    // The key is indexed by its creation time first, so that new keys land at the index's end,
    // not on a random page as a digest would.
    "ALTER TABLE deliveries ADD COLUMN key_created TEXT;
    ALTER TABLE deliveries ADD COLUMN recovered_from TEXT;
    CREATE UNIQUE INDEX deliveries_logical_key ON deliveries (key_created, event, data_id)
        WHERE key_created IS NOT NULL;
    CREATE TABLE checkpoints (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO checkpoints (name, value)
        VALUES ('keyed-since', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));",
    // 3: lists newest first (by time, then id), of every delivery or of an event, and of the
    // dead letters, each read from an index in order. No index holds the state but the partial
    // ones of the dead letters, so that claims and completions, which change the state of
    // every delivery twice, update none of them; (state, received_at) goes for that reason.
    "DROP INDEX deliveries_state_received;
    CREATE INDEX deliveries_listed ON deliveries (received_at, id);
    CREATE INDEX deliveries_event_listed
        ON deliveries (coalesce(event, event_header, '-'), received_at, id);
    CREATE INDEX deliveries_dead_listed ON deliveries (received_at, id) WHERE state = 3;
    CREATE INDEX deliveries_dead_event_listed
        ON deliveries (coalesce(event, event_header, '-'), received_at, id) WHERE state = 3;",
];

/// The state numbers in the `state` column.
pub(crate) const PENDING: i64 = 0;
pub(crate) const LEASED: i64 = 1;
pub(crate) const DONE: i64 = 2;
pub(crate) const DEAD: i64 = 3;

/// Stores a delivery unless its id or its logical key is stored: pending and due at once, or,
/// with a lease's expiry `?11` and its owner `?12`, claimed for this process's worker (its
/// first attempt, token 1).
pub(crate) const INSERT: &str = "INSERT INTO deliveries
    (id, state, event, data_id, event_header, signature_header, secret_index, received_at,
     due_at, body, key_created, recovered_from, attempts, token, owner)
    VALUES (?1, iif(?11 IS NULL, 0, 1), ?2, ?3, ?4, ?5, ?6, ?7, coalesce(?11, ?7), ?8, ?9, ?10,
        iif(?11 IS NULL, 0, 1), iif(?11 IS NULL, 0, 1), ?12)
    ON CONFLICT DO NOTHING";

/// Whether a delivery with the id `?1`, or the logical key of the creation time `?2`, event
/// `?3` and data id `?4`, is stored.
pub(crate) const KNOWN: &str = "SELECT 1 FROM deliveries WHERE id = ?1
    OR (?2 IS NOT NULL AND key_created = ?2 AND event = ?3 AND data_id = ?4)";

/// Whether a delivery with the logical key of the creation time `?1`, event `?2` and data id
/// `?3` is stored.
pub(crate) const HOLDS: &str =
    "SELECT 1 FROM deliveries WHERE key_created = ?1 AND event = ?2 AND data_id = ?3";

pub(crate) const CHECKPOINT: &str = "SELECT value FROM checkpoints WHERE name = ?1";

pub(crate) const SET_CHECKPOINT: &str = "INSERT INTO checkpoints (name, value) VALUES (?1, ?2)
    ON CONFLICT (name) DO UPDATE SET value = excluded.value";

pub(crate) const CLAIM: &str = "UPDATE deliveries
    SET state = 1, attempts = attempts + 1, token = token + 1, due_at = ?2, owner = ?4
    WHERE seq IN (
        SELECT seq FROM deliveries WHERE state IN (0, 1) AND due_at <= ?1
        ORDER BY due_at, seq LIMIT ?3
    )
    RETURNING seq, id, state, event, data_id, event_header, signature_header,
    secret_index, received_at, attempts, due_at, token, last_error, finished_at, body,
    recovered_from";

/// The processes that hold leases now, other than `?1`.
pub(crate) const LEASE_OWNERS: &str =
    "SELECT DISTINCT owner FROM deliveries WHERE state = 1 AND owner IS NOT NULL AND owner != ?1";

/// The leases of a process that died expire now: `?1` owner, `?2` now.
pub(crate) const EXPIRE_LEASES_OF: &str =
    "UPDATE deliveries SET due_at = ?2 WHERE state = 1 AND owner = ?1";

pub(crate) const NEXT_DUE: &str = "SELECT min(due_at) FROM deliveries WHERE state IN (0, 1)";

/// A failed attempt's row (a successful one lives in the delivery's `last_*` columns):
/// `?1` id, `?2` token, `?3` started, `?4` duration, `?5` error.
pub(crate) const RECORD_FAILED_ATTEMPT: &str =
    "INSERT INTO attempts (delivery_seq, started_at, duration_us, error)
    SELECT seq, ?3, ?4, ?5 FROM deliveries WHERE id = ?1 AND token = ?2";

/// Done: `?1` id, `?2` token, `?3` now, `?4` started, `?5` duration.
pub(crate) const COMPLETE: &str = "UPDATE deliveries
    SET state = 2, body = NULL, due_at = NULL, last_error = NULL, finished_at = ?3,
        last_started_at = ?4, last_duration_us = ?5
    WHERE id = ?1 AND token = ?2 AND state = 1";

/// Due again at `?3`, after a failure `?6`: `?1` id, `?2` token, `?4` started, `?5` duration.
pub(crate) const RETRY: &str = "UPDATE deliveries
    SET state = 0, due_at = ?3, last_started_at = ?4, last_duration_us = ?5, last_error = ?6
    WHERE id = ?1 AND token = ?2 AND state = 1";

/// Given up at `?3` for the reason `?6`: `?1` id, `?2` token, `?4` started, `?5` duration.
pub(crate) const DEAD_LETTER: &str = "UPDATE deliveries
    SET state = 3, due_at = NULL, finished_at = ?3, last_started_at = ?4,
        last_duration_us = ?5, last_error = ?6
    WHERE id = ?1 AND token = ?2 AND state = 1";

/// The successful last attempt of a handled delivery: `?1` seq.
pub(crate) const LAST_ATTEMPT: &str =
    "SELECT last_started_at, last_duration_us FROM deliveries WHERE seq = ?1 AND state = 2";

pub(crate) const RELEASE: &str = "UPDATE deliveries
    SET state = 0, due_at = ?3, attempts = max(attempts - 1, 0)
    WHERE id = ?1 AND token = ?2 AND state = 1";

pub(crate) const REPLAY: &str = "UPDATE deliveries
    SET state = 0, attempts = 0, finished_at = NULL, due_at = ?2
    WHERE id = ?1 AND state = 3";

pub(crate) const PURGE_ATTEMPTS: &str = "DELETE FROM attempts WHERE delivery_seq IN (
    SELECT seq FROM deliveries WHERE state IN (2, 3) AND finished_at < ?1)";

pub(crate) const PURGE: &str = "DELETE FROM deliveries WHERE state IN (2, 3) AND finished_at < ?1";

/// One batch of handled deliveries past the window (their attempts go first).
pub(crate) const EXPIRED_BATCH: &str = "SELECT seq FROM deliveries
    WHERE state = 2 AND finished_at < ?1 ORDER BY finished_at LIMIT ?2";

pub(crate) const DELETE_ATTEMPTS_OF: &str = "DELETE FROM attempts WHERE delivery_seq = ?1";

pub(crate) const DELETE_DELIVERY: &str = "DELETE FROM deliveries WHERE seq = ?1";

pub(crate) const BACKLOG: &str = "SELECT count(*) FROM deliveries WHERE state IN (0, 1)";

pub(crate) const GET: &str = "SELECT seq, id, state, event, data_id, event_header,
    signature_header, secret_index, received_at, attempts, due_at, token, last_error,
    finished_at, body, recovered_from FROM deliveries WHERE id = ?1";

pub(crate) const HISTORY: &str = "SELECT started_at, duration_us, error FROM attempts
    WHERE delivery_seq = ?1 ORDER BY rowid";

/// The ids whose upper-case hex starts with `?1`.
pub(crate) const RESOLVE: &str =
    "SELECT id FROM deliveries WHERE hex(id) LIKE ?1 || '%' ORDER BY id LIMIT 2";

/// A list, newest first, without bodies: [`list`] adds the conditions a filter has.
const LIST: &str = "SELECT seq, id, state, event, data_id, event_header,
    signature_header, secret_index, received_at, attempts, due_at, token, last_error,
    finished_at, NULL, recovered_from FROM deliveries WHERE true";

/// The conditions of a list, each with its one parameter (the page cursor with two).
/// The state is written into the statement, not bound, so that SQLite sees a list of dead
/// letters match the partial indexes of the dead letters.
const LIST_STATE: &str = " AND state = ";
const LIST_EVENT: &str = " AND coalesce(event, event_header, '-') = ?";
const LIST_SINCE: &str = " AND received_at >= ?";
const LIST_BEFORE: &str = " AND received_at < ?";
const LIST_AFTER_CURSOR: &str = " AND (received_at, id) < (?, ?)";
const LIST_ORDER: &str = " ORDER BY received_at DESC, id DESC LIMIT ?";

/// The list statement for `filter` and its parameters in order. Only the conditions the filter
/// has are in the statement (no `? IS NULL OR …`), so that each form of it is planned on the
/// index that serves it: `deliveries_listed`, `deliveries_event_listed`, or for dead letters
/// `deliveries_dead_listed` and `deliveries_dead_event_listed`, read in order and stopped at
/// the limit (a list of another state reads the rows in order and skips the others).
pub(crate) fn list(filter: &Filter) -> (String, Vec<Value>) {
    let mut statement = LIST.to_owned();
    let mut values = Vec::new();
    if let Some(state) = filter.state {
        statement.push_str(LIST_STATE);
        statement.push_str(&rows::state_number(state).to_string());
    }
    if let Some(event) = &filter.event {
        statement.push_str(LIST_EVENT);
        values.push(Value::Text(event.clone()));
    }
    if let Some(since) = filter.since {
        statement.push_str(LIST_SINCE);
        values.push(Value::Integer(rows::micros(since)));
    }
    match (filter.before, filter.before_id) {
        (Some(before), Some(id)) => {
            statement.push_str(LIST_AFTER_CURSOR);
            values.push(Value::Integer(rows::micros(before)));
            values.push(Value::Blob(id.as_bytes().to_vec()));
        }
        (Some(before), None) => {
            statement.push_str(LIST_BEFORE);
            values.push(Value::Integer(rows::micros(before)));
        }
        (None, _) => {}
    }
    statement.push_str(LIST_ORDER);
    values.push(Value::Integer(
        i64::try_from(filter.limit).unwrap_or(i64::MAX),
    ));
    (statement, values)
}

/// How many deliveries of each event there are, by event name: a walk of
/// `deliveries_event_listed`, which holds no state (grouped by position: by the alias, SQLite
/// sorts the groups again).
pub(crate) const EVENT_TOTALS: &str = "SELECT coalesce(event, event_header, '-') AS name,
    count(*) FROM deliveries GROUP BY 1 ORDER BY 1";

/// How many dead letters of each event there are: a walk of `deliveries_dead_event_listed`.
pub(crate) const EVENT_DEAD: &str = "SELECT coalesce(event, event_header, '-') AS name,
    count(*) FROM deliveries WHERE state = 3 GROUP BY 1";

/// How many deliveries of each event wait (pending, leased): the backlog, through
/// `deliveries_due`.
pub(crate) const EVENT_WAITING: &str = "SELECT coalesce(event, event_header, '-') AS name,
    state, count(*) FROM deliveries WHERE state IN (0, 1) GROUP BY 1, 2";

/// Every delivery, through the smallest index.
pub(crate) const TOTAL: &str = "SELECT count(*) FROM deliveries";

/// The dead letters, through their partial index.
pub(crate) const DEAD_TOTAL: &str = "SELECT count(*) FROM deliveries WHERE state = 3";

/// The backlog by state, through `deliveries_due`.
pub(crate) const WAITING: &str =
    "SELECT state, count(*) FROM deliveries WHERE state IN (0, 1) GROUP BY state";

/// The dead letters to replay, by the same conditions as [`LIST`] (state aside).
pub(crate) const DEAD_IDS: &str = "SELECT id FROM deliveries
    WHERE state = 3
      AND (?1 IS NULL OR coalesce(event, event_header, '-') = ?1)
      AND (?2 IS NULL OR received_at >= ?2)
      AND (?3 IS NULL OR received_at < ?3)";
