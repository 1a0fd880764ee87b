//! Every SQL statement of the PostgreSQL store, and its numbered migrations.
//!
//! The statements name their tables as `{schema}.deliveries`; [`Statements::new`] puts the
//! store's quoted schema name in once, when the store connects. Every time a statement compares
//! (due, lease expiry, finished) is the server's clock, `now()`, so replicas whose clocks differ
//! still agree on when a lease expires.

/// The advisory lock class of a store's migrations ("P1WH", as the SQLite store's
/// `application_id`); the second key is `hashtext` of the schema name.
pub(crate) const LOCK_CLASS: i32 = 0x5031_5748;

/// Makes the schema, when it is missing: only then, since `CREATE SCHEMA IF NOT EXISTS` still
/// asks for the `CREATE` privilege on the database, which a role given a schema made for it
/// may not have.
const CREATE_SCHEMA: &str = "CREATE SCHEMA {schema}";

/// Makes the version table: run under the migration lock when it is missing.
const CREATE_VERSION_TABLE: &str = "CREATE TABLE {schema}.schema_version (
        version integer PRIMARY KEY,
        migrated_at timestamptz NOT NULL DEFAULT now()
    )";

/// Migration `n` (from 1) takes a schema at version `n - 1` to version `n`; each applied
/// migration is a row of `schema_version`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: deliveries, their attempts.
    "CREATE TABLE {schema}.deliveries (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id bytea NOT NULL UNIQUE CHECK (octet_length(id) = 32),
        state smallint NOT NULL CHECK (state BETWEEN 0 AND 3),
        event text,
        data_id text,
        event_header text,
        signature_header smallint NOT NULL,
        secret_index integer NOT NULL,
        received_at timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        due_at timestamptz,
        token bigint NOT NULL DEFAULT 0,
        last_error text,
        finished_at timestamptz,
        body bytea
    );
    CREATE INDEX deliveries_due ON {schema}.deliveries (due_at, seq) WHERE state IN (0, 1);
    CREATE INDEX deliveries_finished ON {schema}.deliveries (state, finished_at)
        WHERE state IN (2, 3);
    CREATE INDEX deliveries_received ON {schema}.deliveries (received_at, id);
    CREATE TABLE {schema}.attempts (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        delivery_seq bigint NOT NULL REFERENCES {schema}.deliveries (seq) ON DELETE CASCADE,
        started_at timestamptz NOT NULL,
        duration_us bigint NOT NULL,
        error text
    );
    CREATE INDEX attempts_delivery ON {schema}.attempts (delivery_seq, seq);",
    // 2: the logical key (event, data id, creation time) that matches Print.one's webhook log,
    // the log entry a recovered delivery came from, and named checkpoints. Deliveries stored
    // before have no key, so the reconciler reads no log from before `keyed-since`.
    // The key is indexed by its creation time first, so that new keys land at the index's end,
    // not on a random page as a digest would.
    "ALTER TABLE {schema}.deliveries
        ADD COLUMN key_created text,
        ADD COLUMN recovered_from text;
    CREATE UNIQUE INDEX deliveries_logical_key
        ON {schema}.deliveries (key_created, event, data_id) WHERE key_created IS NOT NULL;
    CREATE TABLE {schema}.checkpoints (name text PRIMARY KEY, value text NOT NULL);
    INSERT INTO {schema}.checkpoints (name, value)
        VALUES ('keyed-since',
                to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'));",
    // 3: lists newest first (by time, then id) of an event and of the dead letters, each read
    // from an index in order (`deliveries_received` serves the others). No index holds the
    // state but the partial ones of the dead letters, so that claims and completions, which
    // change the state of every delivery twice, update none of them.
    "CREATE INDEX deliveries_event_listed
        ON {schema}.deliveries ((coalesce(event, event_header, '-')), received_at, id);
    CREATE INDEX deliveries_dead_listed ON {schema}.deliveries (received_at, id) WHERE state = 3;
    CREATE INDEX deliveries_dead_event_listed
        ON {schema}.deliveries ((coalesce(event, event_header, '-')), received_at, id)
        WHERE state = 3;",
    // 4: a successful attempt lives in its delivery's row, as in the SQLite store: a row of
    // `attempts` for every handled delivery cost an insert, two index entries and the foreign
    // key's check (a lock on the delivery's row) per delivery. Attempts recorded before stay
    // where they are.
    "ALTER TABLE {schema}.deliveries
        ADD COLUMN last_started_at timestamptz,
        ADD COLUMN last_duration_us bigint;",
];

/// The state numbers in the `state` column (as in the SQLite store).
pub(crate) const PENDING: i16 = 0;
pub(crate) const LEASED: i16 = 1;
pub(crate) const DONE: i16 = 2;
pub(crate) const DEAD: i16 = 3;

/// Takes the migration lock of the schema `$1` until the transaction ends.
const LOCK: &str = "SELECT pg_advisory_xact_lock($1::integer, hashtext($2::text))";

/// Whether the version table `$1` (qualified and quoted) exists.
const HAS_VERSION_TABLE: &str = "SELECT to_regclass($1::text) IS NOT NULL";

/// Whether the schema named `$1` exists, and how many tables, views and sequences it holds.
const SCHEMA_CONTENTS: &str = "SELECT
        EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1::text) AS exists,
        (SELECT count(*) FROM pg_catalog.pg_class AS c
         JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
         WHERE n.nspname = $1::text) AS relations";

const VERSION: &str = "SELECT coalesce(max(version), 0) FROM {schema}.schema_version";

const RECORD_VERSION: &str = "INSERT INTO {schema}.schema_version (version) VALUES ($1::integer)";

/// Whether the server flushes a commit before it answers (`off` answers first).
pub(crate) const SYNCHRONOUS_COMMIT: &str = "SELECT current_setting('synchronous_commit')";

/// Stores a batch of deliveries, each unless it is there already or the backlog is at
/// capacity, and wakes the listening workers once when it stored any pending, in one statement
/// (one autocommit transaction).
///
/// One array per column, a delivery at each position: `$1` ids, `$2` events, `$3` data ids,
/// `$4` event headers, `$5` signature headers, `$6` secret indexes, `$7` received at, `$8`
/// bodies, `$9` the logical keys' creation times, `$10` the logs recovered from, `$13` the
/// lease in microseconds of a delivery claimed for this process's worker as it is stored
/// (`NULL`: stored pending); `$11` the capacity, `$12` the notification channel. A delivery
/// with a lease is stored leased: its first attempt, token 1, due when the lease expires.
///
/// One row per delivery (`n`, its position from 1), with `known`, `first`, `room`, `stored`
/// and `leased_until`:
/// - `known`: its id or its logical key was stored before this statement began (read in its
///   snapshot);
/// - `first`: the position of the first delivery of the batch with the same id or logical key
///   (its own when there is none before it); only a first one is inserted, and a later one's
///   answer follows the first's;
/// - `room`: a first delivery not known, for which the backlog left room: the backlog is
///   counted once (up to the capacity) in the statement's snapshot, and the new deliveries of
///   the batch take the room in their order. Statements that run at the same moment can each
///   see the same room: the capacity is a bound give or take the deliveries in flight;
/// - `stored`: it was inserted. With room yet not stored: another statement stored the same id
///   or key at the same moment;
/// - `leased_until`: for one stored leased, when its lease expires (the server's clock).
///
/// The backlog is counted in the order of `deliveries_due`, which holds just the backlog: read
/// in any order, a plan made while the table was small could count it with a sequential scan of
/// the whole table, and a prepared statement kept that plan. Each delivery is looked up by its
/// id and by its key with a `LATERAL … LIMIT 1` subquery:
/// one probe of `deliveries_id_key` and of `deliveries_logical_key` per delivery, whatever the
/// table's statistics say (as `EXISTS`, a plan made while the table was small and never
/// analysed read the whole table twice per batch, and a prepared statement kept that plan).
/// `judged` is materialized so that each delivery is looked up once. The deliveries are
/// inserted in the order of their ids, so that two batches holding the same ids wait for each
/// other instead of deadlocking. `woken` is read so that the notification is sent (it goes
/// out with the commit): only for deliveries stored pending, which any replica's worker may
/// claim; one stored leased is this process's worker's already.
const INSERT: &str = "WITH waiting AS (
        SELECT count(*) AS backlog FROM (
            SELECT 1 FROM {schema}.deliveries WHERE state IN (0, 1)
            ORDER BY due_at, seq LIMIT $11::bigint
        ) AS held
    ), batch AS (
        SELECT b.*, least(
                min(b.n) OVER (PARTITION BY b.id),
                CASE WHEN b.key_created IS NOT NULL THEN min(b.n) OVER (
                    PARTITION BY b.key_created, b.event, b.data_id) END
            ) AS first
        FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::smallint[],
                $6::integer[], $7::timestamptz[], $8::bytea[], $9::text[], $10::text[],
                $13::bigint[])
            WITH ORDINALITY AS b (id, event, data_id, event_header, signature_header,
                secret_index, received_at, body, key_created, recovered_from, lease_us, n)
    ), judged AS MATERIALIZED (
        SELECT batch.*, (by_id.hit OR by_key.hit) IS NOT NULL AS known
        FROM batch
        LEFT JOIN LATERAL (
            SELECT true AS hit FROM {schema}.deliveries AS d WHERE d.id = batch.id LIMIT 1
        ) AS by_id ON true
        LEFT JOIN LATERAL (
            SELECT true AS hit FROM {schema}.deliveries AS d
            WHERE batch.key_created IS NOT NULL AND d.key_created = batch.key_created
              AND d.event = batch.event AND d.data_id = batch.data_id
            LIMIT 1
        ) AS by_key ON true
    ), placed AS (
        SELECT judged.*,
            (NOT known AND first = n) AND row_number() OVER (
                PARTITION BY NOT known AND first = n ORDER BY n
            ) <= $11::bigint - (SELECT backlog FROM waiting) AS room
        FROM judged
    ), stored AS (
        INSERT INTO {schema}.deliveries
            (id, state, event, data_id, event_header, signature_header, secret_index,
             received_at, due_at, body, key_created, recovered_from, attempts, token)
        SELECT id, CASE WHEN lease_us IS NULL THEN 0 ELSE 1 END, event, data_id, event_header,
            signature_header, secret_index, received_at,
            now() + coalesce(lease_us, 0) * interval '1 microsecond', body, key_created,
            recovered_from, CASE WHEN lease_us IS NULL THEN 0 ELSE 1 END,
            CASE WHEN lease_us IS NULL THEN 0 ELSE 1 END
        FROM placed WHERE room
        ORDER BY id
        ON CONFLICT DO NOTHING
        RETURNING id, state, due_at
    ), woken AS (
        SELECT pg_notify($12::text, '')
        FROM (SELECT 1 FROM stored WHERE state = 0 LIMIT 1) AS one
    )
    SELECT placed.n, placed.known, placed.first, placed.room, stored.id IS NOT NULL AS stored,
        CASE WHEN stored.state = 1 THEN stored.due_at END AS leased_until,
        (SELECT count(*) FROM woken) AS woken
    FROM placed LEFT JOIN stored ON placed.room AND stored.id = placed.id";

/// Claims up to `$1` due deliveries (pending and due, or leased with an expired lease), each
/// with a lease of `$2` microseconds, a new token and one more attempt. Rows another store is
/// claiming at this moment are skipped, not waited for.
///
/// One row per claimed delivery, each with `next_due`: when the next delivery still pending
/// or leased falls due (a retry, a lease that expires); a single row of `NULL`s but
/// `next_due` when nothing was claimed.
const CLAIM: &str = "WITH due AS (
        SELECT seq FROM {schema}.deliveries
        WHERE state IN (0, 1) AND due_at <= now()
        ORDER BY due_at, seq
        LIMIT $1::bigint
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE {schema}.deliveries AS d
        SET state = 1, attempts = d.attempts + 1, token = d.token + 1,
            due_at = now() + $2::bigint * interval '1 microsecond'
        FROM due
        WHERE d.seq = due.seq
        RETURNING d.seq, d.id, d.state, d.event, d.data_id, d.event_header,
            d.signature_header, d.secret_index, d.received_at, d.attempts, d.due_at, d.token,
            d.last_error, d.finished_at, d.body, d.recovered_from
    )
    SELECT
        least(
            (SELECT min(due_at) FROM {schema}.deliveries
             WHERE state IN (0, 1) AND seq NOT IN (SELECT seq FROM due)),
            (SELECT min(due_at) FROM claimed)
        ) AS next_due,
        claimed.*
    FROM (SELECT 1) AS one LEFT JOIN claimed ON true";

/// Settles a batch of leases, each only while it is the delivery's current lease, and records
/// their attempts, in one statement: one row (`n`, the position from 1) for each lease that was
/// current, none for one that was lost.
///
/// One array per column, a lease at each position: `$1` ids, `$2` tokens, `$3` the state it
/// ends in (pending for a retry, handled, dead letter), `$4` for a retry the microseconds from
/// now until it is due, `$5` when the attempt started, `$6` its microseconds, `$7` its error.
/// A handled delivery drops its body and error and keeps its successful attempt in its own
/// row (`last_started_at`, `last_duration_us`); a failed attempt is a row of `attempts`. A dead
/// letter keeps its body, the error as its reason.
const SETTLE: &str = "WITH lease AS (
        SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::smallint[], $4::bigint[],
                $5::timestamptz[], $6::bigint[], $7::text[])
            WITH ORDINALITY AS l (id, token, state, retry_us, started_at, duration_us, error, n)
    ), settled AS (
        UPDATE {schema}.deliveries AS d
        SET state = lease.state,
            body = CASE WHEN lease.state = 2 THEN NULL ELSE d.body END,
            due_at = CASE WHEN lease.state = 0
                THEN now() + lease.retry_us * interval '1 microsecond' END,
            last_error = CASE WHEN lease.state = 2 THEN NULL ELSE lease.error END,
            finished_at = CASE WHEN lease.state = 0 THEN d.finished_at ELSE now() END,
            last_started_at = CASE WHEN lease.state = 2 THEN lease.started_at END,
            last_duration_us = CASE WHEN lease.state = 2 THEN lease.duration_us END
        FROM lease
        WHERE d.id = lease.id AND d.token = lease.token AND d.state = 1
        RETURNING d.seq, lease.n, lease.state AS outcome, lease.started_at, lease.duration_us,
            lease.error
    ), recorded AS (
        INSERT INTO {schema}.attempts (delivery_seq, started_at, duration_us, error)
        SELECT seq, started_at, duration_us, error FROM settled WHERE outcome <> 2 ORDER BY n
    )
    SELECT n FROM settled";

/// Gives a lease back (`$1` id, `$2` token), due again now without counting the attempt, and
/// wakes the listening workers (`$3` channel): one row when it was the current lease.
const RELEASE: &str = "WITH released AS (
        UPDATE {schema}.deliveries
        SET state = 0, due_at = now(), attempts = greatest(attempts - 1, 0)
        WHERE id = $1::bytea AND token = $2::bigint AND state = 1
        RETURNING seq
    )
    SELECT pg_notify($3::text, '') IS NULL AS woken FROM released";

/// Makes the dead letters among the ids `$1` pending again, attempts reset, and wakes the
/// listening workers (`$2` channel) once when there were any.
const REPLAY: &str = "WITH replayed AS (
        UPDATE {schema}.deliveries
        SET state = 0, attempts = 0, finished_at = NULL, due_at = now()
        WHERE id = ANY($1::bytea[]) AND state = 3
        RETURNING seq
    ), woken AS (
        SELECT pg_notify($2::text, '') FROM (SELECT 1 FROM replayed LIMIT 1) AS one
    )
    SELECT (SELECT count(*) FROM replayed) AS replayed, (SELECT count(*) FROM woken) AS woken";

/// Replays one batch of at most `$4` dead letters that pass the filter (`$1` event, `$2`
/// since, `$3` before, each `NULL` for no condition), as [`REPLAY`] (`$5` channel).
const REPLAY_DEAD: &str = "WITH batch AS (
        SELECT seq FROM {schema}.deliveries
        WHERE state = 3
          AND ($1::text IS NULL OR coalesce(event, event_header, '-') = $1::text)
          AND ($2::timestamptz IS NULL OR received_at >= $2::timestamptz)
          AND ($3::timestamptz IS NULL OR received_at < $3::timestamptz)
        LIMIT $4::bigint
        FOR UPDATE SKIP LOCKED
    ), replayed AS (
        UPDATE {schema}.deliveries AS d
        SET state = 0, attempts = 0, finished_at = NULL, due_at = now()
        FROM batch WHERE d.seq = batch.seq
        RETURNING d.seq
    ), woken AS (
        SELECT pg_notify($5::text, '') FROM (SELECT 1 FROM replayed LIMIT 1) AS one
    )
    SELECT (SELECT count(*) FROM replayed) AS replayed, (SELECT count(*) FROM woken) AS woken";

/// Removes one batch of at most `$2` handled deliveries and dead letters that finished before
/// `$1` (their attempts go with them).
const PURGE: &str = "DELETE FROM {schema}.deliveries WHERE seq IN (
        SELECT seq FROM {schema}.deliveries
        WHERE state IN (2, 3) AND finished_at < $1::timestamptz
        LIMIT $2::bigint
        FOR UPDATE SKIP LOCKED
    )";

/// Forgets one batch of at most `$2` handled ids that finished more than `$1` microseconds ago.
const EXPIRE: &str = "DELETE FROM {schema}.deliveries WHERE seq IN (
        SELECT seq FROM {schema}.deliveries
        WHERE state = 2 AND finished_at < now() - $1::bigint * interval '1 microsecond'
        ORDER BY finished_at
        LIMIT $2::bigint
        FOR UPDATE SKIP LOCKED
    )";

const COUNTS: &str = "SELECT state, count(*) AS count FROM {schema}.deliveries GROUP BY state";

const GET: &str = "SELECT seq, id, state, event, data_id, event_header, signature_header,
    secret_index, received_at, attempts, due_at, token, last_error, finished_at, body,
    recovered_from
    FROM {schema}.deliveries WHERE id = $1::bytea";

/// The attempts of the delivery `$1` (seq), oldest first: the failed ones, then the successful
/// one of a handled delivery, which its row holds (one recorded before migration 4 is a row of
/// `attempts`, and the row's columns are empty).
const HISTORY: &str = "SELECT started_at, duration_us, error FROM (
        SELECT 0 AS part, seq, started_at, duration_us, error FROM {schema}.attempts
        WHERE delivery_seq = $1::bigint
        UNION ALL
        SELECT 1, seq, last_started_at, last_duration_us, NULL::text FROM {schema}.deliveries
        WHERE seq = $1::bigint AND state = 2 AND last_started_at IS NOT NULL
    ) AS history ORDER BY part, seq";

/// The ids whose lower-case hex starts with `$1` (hex digits only), at most two.
const RESOLVE: &str = "SELECT id FROM {schema}.deliveries
    WHERE encode(id, 'hex') LIKE $1::text || '%' ORDER BY id LIMIT 2";

/// A list, newest first, without bodies: [`Statements::list`] adds the conditions a filter has.
const LIST: &str = "SELECT seq, id, state, event, data_id, event_header, signature_header,
    secret_index, received_at, attempts, due_at, token, last_error, finished_at,
    NULL::bytea AS body, recovered_from
    FROM {schema}.deliveries WHERE true";

/// The conditions of a list; `{n}` is the number of its (first) parameter.
/// The state is written into the statement (`{state}`), not bound, so that the server sees a
/// list of dead letters match the partial indexes of the dead letters in every plan.
const LIST_STATE: &str = " AND state = {state}";
const LIST_EVENT: &str = " AND coalesce(event, event_header, '-') = ${n}::text";
const LIST_SINCE: &str = " AND received_at >= ${n}::timestamptz";
const LIST_BEFORE: &str = " AND received_at < ${n}::timestamptz";
const LIST_AFTER_CURSOR: &str = " AND (received_at, id) < (${n}::timestamptz, ${m}::bytea)";
const LIST_ORDER: &str = " ORDER BY received_at DESC, id DESC LIMIT ${n}::bigint";

/// Which conditions a list has, in the order of their parameters: one statement text for each
/// set, so that the server plans each on the index that serves it (no `$1 IS NULL OR …`).
#[allow(clippy::struct_excessive_bools)] // one flag per optional condition
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListShape {
    /// The state's number, written into the statement.
    pub(crate) state: Option<i16>,
    pub(crate) event: bool,
    pub(crate) since: bool,
    pub(crate) before: bool,
    pub(crate) cursor: bool,
}

/// How many deliveries of each event are in each state, by event name.
const EVENT_COUNTS: &str = "SELECT coalesce(event, event_header, '-') AS event, state,
    count(*) AS count FROM {schema}.deliveries GROUP BY 1, 2 ORDER BY 1, 2";

/// Which of the logical keys (creation times `$1`, events `$2`, data ids `$3`) are stored: the
/// positions (from 1) of those held.
const HOLDS: &str = "SELECT key.n FROM unnest($1::text[], $2::text[], $3::text[])
        WITH ORDINALITY AS key (created, event, data_id, n)
    WHERE EXISTS (
        SELECT 1 FROM {schema}.deliveries AS d
        WHERE d.key_created = key.created AND d.event = key.event AND d.data_id = key.data_id
    )";

const CHECKPOINT: &str = "SELECT value FROM {schema}.checkpoints WHERE name = $1::text";

const SET_CHECKPOINT: &str = "INSERT INTO {schema}.checkpoints (name, value)
    VALUES ($1::text, $2::text)
    ON CONFLICT (name) DO UPDATE SET value = excluded.value";

/// The advisory lock class of [`TRY_EXCLUSIVE`] (the migrations' class plus one).
pub(crate) const EXCLUSIVE_CLASS: i32 = LOCK_CLASS + 1;

/// Takes the session-level advisory lock `$2` (the schema and the lock's name) of the class
/// `$1` when it is free.
const TRY_EXCLUSIVE: &str = "SELECT pg_try_advisory_lock($1::integer, hashtext($2::text)) AS taken";

/// The store's statements with its schema in place.
#[derive(Debug)]
pub(crate) struct Statements {
    /// The quoted schema name, as the statements write it.
    pub(crate) schema: String,
    pub(crate) lock: &'static str,
    pub(crate) has_version_table: &'static str,
    pub(crate) schema_contents: &'static str,
    pub(crate) create_schema: String,
    pub(crate) create_version_table: String,
    pub(crate) version: String,
    pub(crate) record_version: String,
    pub(crate) migrations: Vec<String>,
    pub(crate) insert: String,
    pub(crate) claim: String,
    pub(crate) settle: String,
    pub(crate) release: String,
    pub(crate) replay: String,
    pub(crate) replay_dead: String,
    pub(crate) purge: String,
    pub(crate) expire: String,
    pub(crate) counts: String,
    pub(crate) get: String,
    pub(crate) history: String,
    pub(crate) resolve: String,
    list: String,
    pub(crate) event_counts: String,
    pub(crate) holds: String,
    pub(crate) checkpoint: String,
    pub(crate) set_checkpoint: String,
    pub(crate) try_exclusive: &'static str,
}

impl Statements {
    /// The statements of the schema named `schema` (unquoted).
    pub(crate) fn new(schema: &str) -> Self {
        let quoted = quote(schema);
        let qualify = |statement: &str| statement.replace("{schema}", &quoted);
        Self {
            lock: LOCK,
            has_version_table: HAS_VERSION_TABLE,
            schema_contents: SCHEMA_CONTENTS,
            create_schema: qualify(CREATE_SCHEMA),
            create_version_table: qualify(CREATE_VERSION_TABLE),
            version: qualify(VERSION),
            record_version: qualify(RECORD_VERSION),
            migrations: MIGRATIONS.iter().map(|m| qualify(m)).collect(),
            insert: qualify(INSERT),
            claim: qualify(CLAIM),
            settle: qualify(SETTLE),
            release: qualify(RELEASE),
            replay: qualify(REPLAY),
            replay_dead: qualify(REPLAY_DEAD),
            purge: qualify(PURGE),
            expire: qualify(EXPIRE),
            counts: qualify(COUNTS),
            get: qualify(GET),
            history: qualify(HISTORY),
            resolve: qualify(RESOLVE),
            list: qualify(LIST),
            holds: qualify(HOLDS),
            checkpoint: qualify(CHECKPOINT),
            set_checkpoint: qualify(SET_CHECKPOINT),
            try_exclusive: TRY_EXCLUSIVE,
            event_counts: qualify(EVENT_COUNTS),
            schema: quoted,
        }
    }

    /// The list statement of `shape`: its conditions' parameters come in the order of the
    /// shape's fields, then the limit.
    pub(crate) fn list(&self, shape: ListShape) -> String {
        let mut statement = self.list.clone();
        let mut next = 1;
        let mut push = |condition: &str, parameters: usize| {
            statement.push_str(
                &condition
                    .replace("{state}", &shape.state.unwrap_or_default().to_string())
                    .replace("{n}", &next.to_string())
                    .replace("{m}", &(next + 1).to_string()),
            );
            next += parameters;
        };
        let conditions = [
            (shape.state.is_some(), LIST_STATE, 0),
            (shape.event, LIST_EVENT, 1),
            (shape.since, LIST_SINCE, 1),
            (shape.before && !shape.cursor, LIST_BEFORE, 1),
            (shape.before && shape.cursor, LIST_AFTER_CURSOR, 2),
            (true, LIST_ORDER, 1),
        ];
        for (present, condition, parameters) in conditions {
            if present {
                push(condition, parameters);
            }
        }
        statement
    }

    /// The qualified, quoted name of the version table, for `to_regclass`.
    pub(crate) fn version_table(&self) -> String {
        format!("{}.schema_version", self.schema)
    }

    /// `LISTEN` on the channel `channel`.
    pub(crate) fn listen(channel: &str) -> String {
        format!("LISTEN {}", quote(channel))
    }
}

/// `name` as a quoted SQL identifier: any name is safe inside the quotes.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_name_is_quoted_in_every_statement() {
        let statements = Statements::new("odd\"name");
        assert!(statements.insert.contains("\"odd\"\"name\".deliveries"));
        assert!(!statements.claim.contains("{schema}"));
        assert!(statements
            .migrations
            .iter()
            .all(|m| !m.contains("{schema}")));
        assert_eq!(Statements::listen("a\"b"), "LISTEN \"a\"\"b\"");
    }

    #[test]
    fn a_list_numbers_the_parameters_of_the_conditions_it_has() {
        let statements = Statements::new("s");
        let shape = ListShape {
            state: None,
            event: true,
            since: false,
            before: true,
            cursor: true,
        };
        let list = statements.list(shape);
        assert!(list.contains("coalesce(event, event_header, '-') = $1::text"));
        assert!(list.contains("(received_at, id) < ($2::timestamptz, $3::bytea)"));
        assert!(list.ends_with("LIMIT $4::bigint"));
        assert!(!list.contains("state ="));
    }
}
