//! The SQLite store's own tests: the conformance suite, durability and faults.

use std::time::Duration;

use super::*;
use crate::store::conformance::{self, delivery};

/// A fresh store file in its own temporary folder, removed when the test ends.
pub(crate) struct TempStore {
    pub(crate) store: SqliteStore,
    _dir: TempDir,
}

impl std::ops::Deref for TempStore {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

/// A temporary folder removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "printone-sqlite-{}-{n}-{}",
            std::process::id(),
            rows::micros(SystemTime::now())
        ));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        Self(dir)
    }

    pub(crate) fn file(&self) -> PathBuf {
        self.0.join("deliveries.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[allow(clippy::unused_async)]
async fn store(capacity: usize, window: Duration) -> Option<TempStore> {
    let dir = TempDir::new();
    let store = SqliteOptions::new(dir.file())
        .capacity(capacity)
        .dedupe_window(window)
        .open()
        .expect("opens");
    Some(TempStore { store, _dir: dir })
}

impl conformance::AsStore for TempStore {
    fn as_store(&self) -> &dyn Store {
        &self.store
    }
}

conformance::suite!(store);
conformance::handoff_suite!(store);

#[tokio::test]
async fn a_delivery_survives_closing_and_opening_the_file_again() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.file()).unwrap();
    store
        .insert(&delivery(1, "order_status_update"))
        .await
        .unwrap();
    drop(store);
    let again = SqliteStore::open(dir.file()).unwrap();
    let claimed = conformance::claim_one(&again).await;
    assert_eq!(
        claimed.delivery.body(),
        delivery(1, "order_status_update").body()
    );
    assert_eq!(
        again
            .insert(&delivery(1, "order_status_update"))
            .await
            .unwrap(),
        Inserted::Duplicate
    );
}

#[tokio::test]
async fn a_file_from_a_newer_schema_is_refused_with_a_clear_error() {
    let dir = TempDir::new();
    drop(SqliteStore::open(dir.file()).unwrap());
    let connection = Connection::open(dir.file()).unwrap();
    connection
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    drop(connection);
    let error = SqliteStore::open(dir.file()).unwrap_err();
    assert!(matches!(error, StoreError::Incompatible(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("schema version 99") && text.contains("deliveries.db"),
        "{text}"
    );
}

#[tokio::test]
async fn another_applications_sqlite_file_is_refused() {
    let dir = TempDir::new();
    let connection = Connection::open(dir.file()).unwrap();
    connection
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    drop(connection);
    let error = SqliteStore::open(dir.file()).unwrap_err();
    assert!(
        error.to_string().contains("not a printone-webhooks store"),
        "{error}"
    );
}

#[tokio::test]
async fn a_path_that_cannot_be_created_names_the_path_and_the_cause() {
    let error = SqliteStore::open("/nonexistent-folder/sub/deliveries.db").unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, StoreError::Unavailable(_)));
    assert!(
        text.contains("/nonexistent-folder/sub/deliveries.db"),
        "{text}"
    );
}

#[tokio::test]
async fn the_file_is_in_wal_mode_with_full_synchronous_writes() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.file()).unwrap();
    store.insert(&delivery(1, "e")).await.unwrap();
    let connection = Connection::open(dir.file()).unwrap();
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(store);
    let options = SqliteOptions::new(dir.file());
    let writer = open_connection(&dir.file(), &options, true).unwrap();
    let synchronous: i64 = writer
        .query_row("PRAGMA synchronous", [], |row| row.get(0))
        .unwrap();
    assert_eq!(synchronous, 2, "FULL");
}

#[tokio::test]
async fn concurrent_inserts_share_commits() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.file()).unwrap();
    let inserts = (0..200).map(|n| {
        let store = store.clone();
        tokio::spawn(async move { store.insert(&delivery(n, "e")).await })
    });
    for insert in inserts.collect::<Vec<_>>() {
        assert_eq!(insert.await.unwrap().unwrap(), Inserted::Stored);
    }
    let (commits, commands) = store.commit_stats();
    assert_eq!(commands, 200);
    assert!(
        commits < 200,
        "{commits} commits for 200 concurrent inserts"
    );
}

#[tokio::test]
async fn a_full_disk_is_refused_with_nothing_lost_and_recovers_when_space_returns() {
    let dir = TempDir::new();
    let store = SqliteOptions::new(dir.file())
        .max_size(64 * 1024)
        .open()
        .unwrap();
    let mut stored = Vec::new();
    let mut full = None;
    for n in 0..2_000 {
        match store.insert(&delivery(n, &"x".repeat(200))).await {
            Ok(Inserted::Stored) => stored.push(n),
            Ok(other) => panic!("{other:?}"),
            Err(error) => {
                full = Some(error);
                break;
            }
        }
    }
    let error = full.expect("the capped file fills up");
    assert!(matches!(error, StoreError::DiskFull(_)), "{error:?}");
    assert_eq!(
        store.counts().await.unwrap().pending,
        stored.len() as u64,
        "everything that was stored before is still there"
    );
    store.set_max_size(16 * 1024 * 1024).await.unwrap();
    let next = u32::try_from(stored.len()).unwrap();
    assert_eq!(
        store
            .insert(&delivery(next, &"x".repeat(200)))
            .await
            .unwrap(),
        Inserted::Stored
    );
}

#[tokio::test]
async fn the_command_line_and_a_receiver_can_share_the_file() {
    let dir = TempDir::new();
    let receiver = SqliteStore::open(dir.file()).unwrap();
    let tool = SqliteStore::open(dir.file()).unwrap();
    receiver.insert(&delivery(1, "e")).await.unwrap();
    let claimed = conformance::claim_one(&receiver).await;
    receiver
        .dead_letter(&claimed.lease, &conformance::attempt(Some("bad")))
        .await
        .unwrap();
    assert_eq!(tool.replay_dead(&Filter::default()).await.unwrap(), 1);
    let again = conformance::claim_one(&receiver).await;
    assert_eq!(again.attempt, 1);
}

#[tokio::test]
async fn the_leases_of_a_store_that_is_gone_are_taken_at_once_on_the_next_open() {
    let dir = TempDir::new();
    let first = SqliteStore::open(dir.file()).unwrap();
    first.insert(&delivery(1, "e")).await.unwrap();
    let held = first.claim(1, Duration::from_secs(600)).await.unwrap();
    assert_eq!(held.claimed.len(), 1);
    let live = SqliteStore::open(dir.file()).unwrap();
    let claim = live.claim(1, Duration::from_secs(600)).await.unwrap();
    assert!(
        claim.claimed.is_empty(),
        "a live owner's lease is respected"
    );
    drop(live);
    drop(first);
    let next = SqliteStore::open(dir.file()).unwrap();
    let again = conformance::claim_one(&next).await;
    assert_eq!(again.attempt, 2, "the interrupted attempt counts");
}

/// A store file at `path` as the first schema version made it, still open.
fn first_schema_file(path: &Path) -> Connection {
    let connection = Connection::open(path).unwrap();
    connection
        .execute_batch(&format!(
            "{}; PRAGMA application_id = {}; PRAGMA user_version = 1;",
            sql::MIGRATIONS[0],
            sql::APPLICATION_ID
        ))
        .unwrap();
    connection
}

#[tokio::test]
async fn a_file_of_the_first_schema_is_migrated_with_its_deliveries_kept() {
    let dir = TempDir::new();
    let connection = first_schema_file(&dir.file());
    let old = delivery(1, "order_status_update");
    connection
        .execute(
            "INSERT INTO deliveries (id, state, event, data_id, signature_header, secret_index,
                received_at, due_at, body) VALUES (?1, 0, 'order_status_update', 'obj_1', 0, 0,
                ?2, ?2, ?3)",
            params![
                DeliveryId::of(&old).as_bytes(),
                rows::micros(SystemTime::now()),
                old.body().as_ref()
            ],
        )
        .unwrap();
    drop(connection);
    let began = time::OffsetDateTime::now_utc() - Duration::from_secs(1);
    let store = SqliteStore::open(dir.file()).unwrap();
    let since = store.checkpoint("keyed-since").await.unwrap().unwrap();
    let since = time::OffsetDateTime::parse(&since, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    assert!(since >= began, "keyed since the migration: {since}");
    let claimed = conformance::claim_one(&store).await;
    assert_eq!(claimed.delivery.body(), old.body(), "the delivery was kept");
    assert_eq!(store.insert(&old).await.unwrap(), Inserted::Duplicate);
}

/// Fills the store file at `path` with `count` deliveries straight through SQL, in one
/// transaction: four events in turn, every fourth a dead letter, the others handled, three at
/// a time received in the same microsecond.
fn fill(path: &Path, count: u32) {
    let mut connection = Connection::open(path).expect("the store file");
    let transaction = connection.transaction().unwrap();
    {
        let mut insert = transaction
            .prepare(
                "INSERT INTO deliveries (id, state, event, data_id, signature_header,
                 secret_index, received_at, finished_at) VALUES (?1, ?2, ?3, ?4, 0, 0, ?5, ?5)",
            )
            .unwrap();
        let start = rows::micros(SystemTime::now()) - i64::from(count);
        for n in 0..count {
            let mut id = [0_u8; 32];
            id[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
            id[4..8].copy_from_slice(&n.to_be_bytes());
            let state = if n % 4 == 0 { sql::DEAD } else { sql::DONE };
            let event = [
                "order_status_update",
                "batch_status_update",
                "coupon_code_used",
                "template_preview_rendered",
            ][n as usize % 4];
            insert
                .execute(params![
                    id.as_slice(),
                    state,
                    event,
                    format!("obj_{n}"),
                    start + i64::from(n / 3)
                ])
                .unwrap();
        }
    }
    transaction.commit().unwrap();
}

/// SQLite's plan of `statement` with `values`, one detail line per step.
fn plan(
    connection: &Connection,
    statement: &str,
    values: Vec<rusqlite::types::Value>,
) -> Vec<String> {
    let mut explain = connection
        .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
        .unwrap();
    let details = explain
        .query_map(rusqlite::params_from_iter(values), |row| {
            row.get::<_, String>(3)
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    details
}

#[tokio::test]
async fn every_list_reads_an_index_in_order_among_100_000_deliveries() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.file()).unwrap();
    fill(&dir.file(), 100_000);
    let connection = Connection::open(dir.file()).unwrap();
    let some_time = SystemTime::now() - Duration::from_millis(30);
    let cursor = DeliveryId::from_bytes([9; 32]);
    let event = || Some("coupon_code_used".to_owned());
    let filters = [
        Filter::default(),
        Filter {
            state: Some(DeliveryState::Dead),
            ..Filter::default()
        },
        Filter {
            event: event(),
            ..Filter::default()
        },
        Filter {
            state: Some(DeliveryState::Dead),
            event: event(),
            ..Filter::default()
        },
        Filter {
            since: Some(some_time),
            ..Filter::default()
        },
        Filter {
            state: Some(DeliveryState::Done),
            since: Some(some_time),
            ..Filter::default()
        },
        Filter {
            before: Some(some_time),
            before_id: Some(cursor),
            ..Filter::default()
        },
        Filter {
            state: Some(DeliveryState::Dead),
            event: event(),
            before: Some(some_time),
            before_id: Some(cursor),
            ..Filter::default()
        },
        Filter {
            event: event(),
            since: Some(some_time - Duration::from_secs(1)),
            before: Some(some_time),
            ..Filter::default()
        },
    ];
    for filter in &filters {
        let (statement, values) = sql::list(filter);
        let steps = plan(&connection, &statement, values);
        assert!(
            steps.iter().any(|step| step.contains("INDEX deliveries_")),
            "{filter:?} reads no index: {steps:?}"
        );
        assert!(
            steps.iter().all(|step| !step.contains("TEMP B-TREE")),
            "{filter:?} sorts: {steps:?}"
        );
    }
    for dead in [&filters[1], &filters[3], &filters[7]] {
        let (statement, values) = sql::list(dead);
        let steps = plan(&connection, &statement, values);
        assert!(
            steps
                .iter()
                .any(|step| step.contains("INDEX deliveries_dead_")),
            "{dead:?} reads no index of the dead letters: {steps:?}"
        );
    }

    let mut next = Filter {
        state: Some(DeliveryState::Dead),
        limit: 1_000,
        ..Filter::default()
    };
    let mut seen = std::collections::HashSet::new();
    loop {
        let page = store.list(&next).await.unwrap();
        let Some(last) = page.last() else { break };
        next = next.after(last);
        for delivery in &page {
            assert!(seen.insert(delivery.id), "{:?} twice", delivery.id);
        }
    }
    assert_eq!(
        seen.len(),
        25_000,
        "every dead letter once across the pages"
    );
}

#[tokio::test]
async fn the_counts_add_up_what_the_indexes_hold_among_100_000_deliveries() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.file()).unwrap();
    fill(&dir.file(), 100_000);
    let connection = Connection::open(dir.file()).unwrap();
    for counting in [
        sql::EVENT_TOTALS,
        sql::EVENT_DEAD,
        sql::EVENT_WAITING,
        sql::TOTAL,
        sql::DEAD_TOTAL,
        sql::WAITING,
    ] {
        let steps = plan(&connection, counting, Vec::new());
        assert!(
            steps.iter().any(|step| step.contains("INDEX ")),
            "{counting} reads no index: {steps:?}"
        );
    }

    let events = store.event_counts().await.unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events.iter().map(|e| e.counts.dead).sum::<u64>(), 25_000);
    assert_eq!(events.iter().map(|e| e.counts.done).sum::<u64>(), 75_000);
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.done, counts.dead, counts.backlog()),
        (75_000, 25_000, 0)
    );
}

#[tokio::test]
async fn a_store_of_the_first_schema_is_migrated_to_the_listing_indexes() {
    let dir = TempDir::new();
    drop(first_schema_file(&dir.file()));
    let store = SqliteStore::open(dir.file()).unwrap();
    store.insert(&delivery(1, "e")).await.unwrap();
    let connection = Connection::open(dir.file()).unwrap();
    let indexes: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'deliveries_%' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for index in [
        "deliveries_listed",
        "deliveries_event_listed",
        "deliveries_dead_listed",
        "deliveries_dead_event_listed",
        "deliveries_logical_key",
    ] {
        assert!(
            indexes.iter().any(|name| name == index),
            "{index} missing: {indexes:?}"
        );
    }
    assert!(
        !indexes
            .iter()
            .any(|name| name == "deliveries_state_received"),
        "replaced"
    );
    assert_eq!(store.list(&Filter::default()).await.unwrap().len(), 1);
}
