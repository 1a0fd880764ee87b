//! The PostgreSQL store's own tests: the conformance suite, replicas sharing one schema, and
//! faults. They run against the server `PRINTONE_TEST_POSTGRES_URL` names, each in a fresh
//! schema of its own (dropped afterwards), so they run in parallel; without the variable they
//! are skipped, except under CI, where they must run.

use std::{
    collections::{hash_map::RandomState, HashSet},
    hash::{BuildHasher, Hasher},
    io::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Once,
    },
    time::Instant,
};

use super::*;
use crate::store::conformance::{self, attempt, delivery, LONG};

const URL_VARIABLE: &str = "PRINTONE_TEST_POSTGRES_URL";

/// The test server's URL, or `None` (said once per test binary) when it is not set. Under CI
/// a missing URL fails the test instead: CI must never skip these.
fn server() -> Option<String> {
    static SKIPPED: Once = Once::new();
    if let Some(url) = std::env::var(URL_VARIABLE)
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{URL_VARIABLE} is not set: CI must run the PostgreSQL tests, not skip them"
    );
    SKIPPED.call_once(|| {
        // Past the test harness's capture (which takes `eprintln!`), so that it is seen; in one
        // write, on a line of its own, since the harness writes its progress meanwhile.
        let note =
            format!("\nPostgreSQL tests skipped: set {URL_VARIABLE}=postgres://… to run them\n");
        let _ = std::io::stderr().write_all(note.as_bytes());
    });
    None
}

/// A connection of the test's own, beside the store's.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the test server answers");
    tokio::spawn(connection);
    client
}

/// A store on `schema` whose statements the server cancels after 300 ms.
async fn impatient(schema: &Schema) -> PostgresStore {
    schema
        .options()
        .statement_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap()
}

/// Locks the schema's deliveries against every statement until the transaction ends.
async fn lock_deliveries<'a>(
    locker: &'a mut tokio_postgres::Client,
    schema: &Schema,
) -> tokio_postgres::Transaction<'a> {
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute(&format!(
        "LOCK TABLE {}.deliveries IN ACCESS EXCLUSIVE MODE",
        schema.quoted()
    ))
    .await
    .unwrap();
    lock
}

/// A fresh schema name, dropped with everything in it when the guard goes (best effort).
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn fresh(url: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u64(NEXT.fetch_add(1, Relaxed));
        hasher.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos()),
        );
        Self {
            url: url.to_owned(),
            name: format!("printone_test_{:016x}", hasher.finish()),
        }
    }

    fn options(&self) -> PostgresOptions {
        PostgresOptions::new(&self.url).schema(&self.name)
    }

    async fn connect(&self) -> PostgresStore {
        self.options().connect().await.expect("connects")
    }

    fn quoted(&self) -> String {
        sql::quote(&self.name)
    }
}

impl Drop for Schema {
    /// Drops the schema from a thread of its own: the test's runtime may be ending.
    fn drop(&mut self) {
        let (url, drop_schema) = (
            self.url.clone(),
            format!("DROP SCHEMA IF EXISTS {} CASCADE", self.quoted()),
        );
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let wait = Duration::from_secs(5);
                let Ok(Ok((client, connection))) =
                    timeout(wait, tokio_postgres::connect(&url, NoTls)).await
                else {
                    return;
                };
                tokio::spawn(connection);
                let _ = timeout(wait, client.batch_execute(&drop_schema)).await;
            });
        });
        let _ = dropped.join();
    }
}

/// A store in a fresh schema, which goes with it.
struct TestStore {
    store: PostgresStore,
    _schema: Schema,
}

async fn store(capacity: usize, window: Duration) -> Option<TestStore> {
    let schema = Schema::fresh(&server()?);
    let store = schema
        .options()
        .capacity(capacity)
        .dedupe_window(window)
        .connect()
        .await
        .expect("connects");
    Some(TestStore {
        store,
        _schema: schema,
    })
}

impl conformance::AsStore for TestStore {
    fn as_store(&self) -> &dyn Store {
        &self.store
    }
}

conformance::suite!(store);
conformance::handoff_suite!(store);

/// Waits until `store`'s listening connection listens, then takes the wake-up it gives when
/// it starts, so that the next wake-up has another cause.
async fn listening(store: &PostgresStore) {
    let mut up = store.shared.listening.clone();
    timeout(Duration::from_secs(10), up.wait_for(|up| *up))
        .await
        .expect("the listening connection is up within 10 s")
        .expect("the store is alive");
    let _ = timeout(Duration::from_millis(20), store.changed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_claim_the_same_delivery_and_recognise_each_others() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let (a, b) = (schema.connect().await, schema.connect().await);
    for n in 0..40 {
        let (first, second) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        assert_eq!(
            first.insert(&delivery(n, "e")).await.unwrap(),
            Inserted::Stored
        );
        assert_eq!(
            second.insert(&delivery(n, "e")).await.unwrap(),
            Inserted::Duplicate,
            "stored by the other replica"
        );
    }
    let claimers = [&a, &b, &a, &b].map(|store| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let claim = store.claim(3, LONG).await.expect("claim");
                if claim.claimed.is_empty() {
                    return ids;
                }
                for claimed in claim.claimed {
                    store
                        .complete(&claimed.lease, &attempt(None))
                        .await
                        .unwrap();
                    ids.push(claimed.lease.id);
                }
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(
        (all.len(), unique.len()),
        (40, 40),
        "each claimed exactly once"
    );
    let counts = b.counts().await.unwrap();
    assert_eq!((counts.backlog(), counts.done), (0, 40));
}

#[tokio::test]
async fn a_replica_whose_lease_expired_is_fenced_off_by_the_one_that_holds_it_now() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let (a, b) = (schema.connect().await, schema.connect().await);
    a.insert(&delivery(1, "e")).await.unwrap();
    let mut first = a.claim(1, Duration::from_millis(100)).await.unwrap();
    let first = first.claimed.remove(0);
    assert!(
        b.claim(1, LONG).await.unwrap().claimed.is_empty(),
        "held by a"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = conformance::claim_one(&b).await;
    assert_eq!(second.attempt, 2);
    assert!(second.lease.token > first.lease.token);
    let failed = attempt(Some("late"));
    for stale in [
        a.complete(&first.lease, &attempt(None)).await,
        a.retry(&first.lease, &failed, SystemTime::now()).await,
        a.dead_letter(&first.lease, &failed).await,
        a.release(&first.lease).await,
    ] {
        assert!(matches!(stale, Err(StoreError::LeaseLost(_))), "{stale:?}");
    }
    b.complete(&second.lease, &attempt(None)).await.unwrap();
    let done = a.get(&second.lease.id).await.unwrap().unwrap();
    assert_eq!(done.state, crate::store::DeliveryState::Done);
    assert_eq!(
        done.history.len(),
        1,
        "only the holder's attempt is recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_create_the_schema_exactly_once() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let starting: Vec<_> = (0..6)
        .map(|_| {
            let options = schema.options();
            tokio::spawn(async move { options.connect().await })
        })
        .collect();
    let mut stores = Vec::new();
    for started in starting {
        stores.push(started.await.unwrap().expect("every replica starts"));
    }
    let client = raw(&url).await;
    let versions = client
        .query(
            &format!("SELECT version FROM {}.schema_version", schema.quoted()),
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i32> = versions.iter().map(|row| row.get(0)).collect();
    let expected: Vec<i32> = (1..=i32::try_from(sql::MIGRATIONS.len()).unwrap()).collect();
    assert_eq!(versions, expected, "each migration ran once");
    stores[5].insert(&delivery(1, "e")).await.unwrap();
    assert_eq!(stores[0].counts().await.unwrap().pending, 1);
}

#[tokio::test]
async fn an_insert_on_one_replica_wakes_the_workers_of_another() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let (a, b) = (schema.connect().await, schema.connect().await);
    listening(&b).await;
    assert!(
        timeout(Duration::from_millis(200), b.changed())
            .await
            .is_err(),
        "nothing happened yet"
    );
    let waiting = b.changed();
    a.insert(&delivery(1, "e")).await.unwrap();
    timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken by the notification of a's insert");
}

#[tokio::test]
async fn a_delivery_stored_for_this_processs_worker_wakes_no_other_replica() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let (a, b) = (schema.connect().await, schema.connect().await);
    let handoff = a.handoff().expect("the store hands over");
    let _ticket = handoff.attach(1, LONG).expect("no other worker");
    listening(&b).await;
    let waiting = b.changed();
    a.insert(&delivery(1, "e")).await.unwrap();
    assert_eq!(handoff.take().len(), 1, "handed over");
    assert!(
        timeout(Duration::from_millis(300), waiting).await.is_err(),
        "no notification for a delivery claimed as it was stored"
    );
    let waiting = b.changed();
    a.insert(&delivery(2, "e")).await.unwrap();
    timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken by the delivery stored pending, with no slot left");
    let claimed = b.claim(10, LONG).await.unwrap().claimed;
    assert_eq!(claimed.len(), 1, "only the pending one is b's to claim");
    assert_eq!(claimed[0].delivery.body(), delivery(2, "e").body());
}

#[tokio::test]
async fn a_batch_claims_for_the_worker_what_its_free_slots_hold_and_stores_the_rest_pending() {
    let Some(store) = store(100, LONG).await else {
        return;
    };
    let store = &store.store;
    let handoff = store.handoff().expect("the store hands over");
    let _ticket = handoff.attach(3, LONG).expect("no other worker");
    let offered: Vec<Delivery> = (1..=8).map(|n| delivery(n, "e")).collect();
    let before = store.commit_stats();
    // The three that find a slot reach the batcher together, before it runs.
    let inserted = all(offered[..3].iter().map(|d| store.insert(d))).await;
    let inserted: Vec<Inserted> = inserted.into_iter().map(Result::unwrap).collect();
    assert_eq!(inserted, [Inserted::Stored; 3]);
    let after = store.commit_stats();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 3),
        "one statement"
    );
    // The five without a slot wait for one (flow control), then are stored pending (in as
    // many statements as their waits ended in different ticks of the clock).
    let inserted = all(offered[3..].iter().map(|d| store.insert(d))).await;
    let inserted: Vec<Inserted> = inserted.into_iter().map(Result::unwrap).collect();
    assert_eq!(inserted, [Inserted::Stored; 5]);
    assert_eq!(store.commit_stats().1 - after.1, 5);
    let handed = handoff.take();
    assert_eq!(handed.len(), 3, "one per free slot");
    assert_eq!(handoff.free(), 0);
    for claimed in &handed {
        assert_eq!((claimed.lease.token, claimed.attempt), (1, 1));
        let stored = store.get(&claimed.lease.id).await.unwrap().expect("stored");
        assert_eq!(stored.state, crate::store::DeliveryState::Leased);
    }
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.leased, counts.pending), (3, 5));
    let claimed = store.claim(10, LONG).await.unwrap().claimed;
    assert_eq!(claimed.len(), 5, "the rest are pending, due now");
    store
        .complete(&handed[0].lease, &attempt(None))
        .await
        .expect("the lease handed over is current");
}

#[tokio::test]
async fn the_listening_connection_comes_back_when_the_server_drops_it() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let (a, b) = (schema.connect().await, schema.connect().await);
    listening(&b).await;
    let client = raw(&url).await;
    let listen = Statements::listen(&schema.name);
    let listeners = "SELECT pid FROM pg_stat_activity WHERE query = $1::text";
    let before: Vec<i32> = client
        .query(listeners, &[&listen])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(before.len(), 2, "a and b listen: {before:?}");
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::integer[]) AS pid",
            &[&before],
        )
        .await
        .unwrap();
    let began = Instant::now();
    loop {
        let now: Vec<i32> = client
            .query(listeners, &[&listen])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        if now.len() == 2 && now.iter().all(|pid| !before.contains(pid)) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "no new listener: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    listening(&b).await;
    let waiting = b.changed();
    a.insert(&delivery(1, "e")).await.unwrap();
    timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken through the new connection");
}

#[tokio::test]
async fn an_unreachable_server_answers_unavailable_within_three_seconds() {
    let began = Instant::now();
    let result = PostgresStore::connect("postgres://postgres:pw@127.0.0.1:1/test").await;
    let error = result.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    let text = error.to_string();
    assert!(
        text.contains("postgres://127.0.0.1:1/test") && !text.contains("pw"),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_within_three_seconds() {
    // Accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let began = Instant::now();
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let error = PostgresStore::connect(&url).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    held.abort();
}

#[tokio::test]
async fn a_schema_of_a_newer_version_is_refused_naming_it() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    drop(schema.connect().await);
    raw(&url)
        .await
        .batch_execute(&format!(
            "INSERT INTO {}.schema_version (version) VALUES (99)",
            schema.quoted()
        ))
        .await
        .unwrap();
    let error = schema.options().connect().await.unwrap_err();
    assert!(matches!(error, StoreError::Incompatible(_)), "{error:?}");
    assert!(error.to_string().contains("schema version 99"), "{error}");
}

#[tokio::test]
async fn a_schema_of_the_first_version_is_migrated_with_its_deliveries_kept() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let statements = sql::Statements::new(&schema.name);
    let old = conformance::delivery(1, "order_status_update");
    let client = raw(&url).await;
    client
        .batch_execute(&format!(
            "{}; {}; {}; INSERT INTO {}.schema_version (version) VALUES (1);",
            statements.create_schema,
            statements.create_version_table,
            statements.migrations[0],
            schema.quoted()
        ))
        .await
        .unwrap();
    client
        .execute(
            &format!(
                "INSERT INTO {}.deliveries (id, state, event, data_id, signature_header,
                    secret_index, received_at, due_at, body)
                 VALUES ($1, 0, 'order_status_update', 'obj_1', 0, 0, now(), now(), $2)",
                schema.quoted()
            ),
            &[
                &DeliveryId::of(&old).as_bytes().as_slice(),
                &old.body().as_ref(),
            ],
        )
        .await
        .unwrap();
    let store = schema.options().connect().await.unwrap();
    let since = store.checkpoint("keyed-since").await.unwrap();
    assert!(since.is_some_and(|since| since.ends_with('Z')));
    let claimed = conformance::claim_one(&store).await;
    assert_eq!(claimed.delivery.body(), old.body(), "the delivery was kept");
    assert_eq!(store.insert(&old).await.unwrap(), Inserted::Duplicate);
}

#[tokio::test]
async fn a_handled_delivery_keeps_its_attempt_in_its_row_and_an_older_one_in_attempts() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let statements = sql::Statements::new(&schema.name);
    let client = raw(&url).await;
    let versions = format!(
        "INSERT INTO {}.schema_version (version) VALUES (1), (2), (3);",
        schema.quoted()
    );
    client
        .batch_execute(&format!(
            "{}; {}; {}; {}; {}; {versions}",
            statements.create_schema,
            statements.create_version_table,
            statements.migrations[0],
            statements.migrations[1],
            statements.migrations[2],
        ))
        .await
        .unwrap();
    let old = conformance::delivery(1, "order_status_update");
    client
        .execute(
            &format!(
                "WITH handled AS (
                    INSERT INTO {0}.deliveries (id, state, signature_header, secret_index,
                        received_at, finished_at)
                    VALUES ($1, 2, 0, 0, now(), now()) RETURNING seq)
                 INSERT INTO {0}.attempts (delivery_seq, started_at, duration_us)
                 SELECT seq, now(), 7 FROM handled",
                schema.quoted()
            ),
            &[&DeliveryId::of(&old).as_bytes().as_slice()],
        )
        .await
        .unwrap();
    let store = schema.options().connect().await.unwrap();
    let before = store.get(&DeliveryId::of(&old)).await.unwrap().unwrap();
    assert_eq!(
        before.history.len(),
        1,
        "the attempt recorded before migration 4"
    );
    store.insert(&delivery(2, "e")).await.unwrap();
    let claimed = conformance::claim_one(&store).await;
    store
        .complete(&claimed.lease, &conformance::attempt(None))
        .await
        .unwrap();
    let handled = store.get(&claimed.lease.id).await.unwrap().unwrap();
    assert_eq!(handled.history.len(), 1);
    assert_eq!(handled.history[0].error, None);
    let rows: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM {}.attempts", schema.quoted()),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "a successful attempt is no row of attempts");
}

#[tokio::test]
async fn another_applications_schema_is_refused() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    raw(&url)
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA {0}; CREATE TABLE {0}.notes (text text);",
            schema.quoted()
        ))
        .await
        .unwrap();
    let error = schema.options().connect().await.unwrap_err();
    assert!(
        error.to_string().contains("not a printone-webhooks store"),
        "{error}"
    );
}

#[tokio::test]
async fn a_locked_table_answers_busy_within_the_statement_timeout_then_recovers() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let store = impatient(&schema).await;
    let mut locker = raw(&url).await;
    let lock = lock_deliveries(&mut locker, &schema).await;
    let began = Instant::now();
    let error = store.insert(&delivery(1, "e")).await.unwrap_err();
    assert!(matches!(error, StoreError::Busy(_)), "{error:?}");
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    lock.rollback().await.unwrap();
    assert_eq!(
        store.insert(&delivery(1, "e")).await.unwrap(),
        Inserted::Stored
    );
}

#[tokio::test]
async fn connections_the_server_drops_fail_at_most_once_and_nothing_stored_is_lost() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let store = schema.connect().await;
    for n in 0..5 {
        store.insert(&delivery(n, "e")).await.unwrap();
    }
    let client = raw(&url).await;
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE pid <> pg_backend_pid() AND position($1::text IN query) > 0",
            &[&schema.quoted()],
        )
        .await
        .unwrap();
    let mut failures = 0;
    let stored = loop {
        match store.insert(&delivery(5, "e")).await {
            Ok(inserted) => break inserted,
            Err(error) => {
                assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
                failures += 1;
                assert!(failures < 3, "the store did not recover: {error}");
            }
        }
    };
    assert_eq!(stored, Inserted::Stored);
    assert_eq!(store.counts().await.unwrap().pending, 6);
}

#[tokio::test]
async fn the_description_names_the_server_and_schema() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let store = schema.connect().await;
    let text = store.describe();
    assert!(
        text.starts_with("postgres://") && text.ends_with(&format!("(schema {})", schema.name)),
        "{text}"
    );
    assert!(store.is_durable());
    assert_eq!(store.schema(), schema.name);
}

#[tokio::test]
async fn a_role_that_may_not_create_schemas_uses_the_schema_made_for_it() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let role = format!("{}_role", schema.name);
    let admin = raw(&url).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; CREATE SCHEMA {schema} AUTHORIZATION {role};",
            role = sql::quote(&role),
            schema = schema.quoted()
        ))
        .await
        .unwrap();
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
    };
    let as_role = format!(
        "host={host} port={} dbname={} user={role}",
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("postgres"),
    );
    let opened = PostgresOptions::new(as_role)
        .schema(&schema.name)
        .connect()
        .await;
    let stored = match &opened {
        Ok(store) => store
            .insert(&delivery(1, "e"))
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    drop(opened);
    // The role owns the schema: both go before the role can.
    let _ = admin
        .batch_execute(&format!(
            "DROP SCHEMA {} CASCADE; DROP ROLE {};",
            schema.quoted(),
            sql::quote(&role)
        ))
        .await;
    assert_eq!(stored, Ok(Inserted::Stored));
}

#[tokio::test]
async fn a_worker_handles_what_another_replica_stored_without_waiting_for_its_poll() {
    use crate::{core::error::BoxError, worker::Worker};
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let (a, b) = (schema.connect().await, schema.connect().await);
    listening(&a).await;
    let (done, finished) = tokio::sync::oneshot::channel();
    let done = std::sync::Mutex::new(Some(done));
    let handler = move |_: Delivery| {
        if let Some(done) = done.lock().expect("not poisoned").take() {
            let _ = done.send(Instant::now());
        }
        async { Ok::<(), BoxError>(()) }
    };
    let worker = Worker::new(a.clone(), handler).spawn();
    // Let the worker find nothing and go idle.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stored_at = Instant::now();
    b.insert(&delivery(1, "e")).await.unwrap();
    let handled_at = timeout(Duration::from_secs(5), finished)
        .await
        .expect("handled")
        .expect("the handler ran");
    assert!(
        handled_at.duration_since(stored_at) < Duration::from_millis(250),
        "woken by the notification, not by the 500 ms poll: {:?}",
        handled_at.duration_since(stored_at)
    );
    let report = worker.shutdown().await.unwrap();
    assert_eq!((report.handled, report.left), (1, 0));
    assert_eq!(b.counts().await.unwrap().done, 1);
}

/// Runs every future of `futures` at once, from this task: in a test's runtime they all queue
/// their work before the store's batcher takes any, so they land in one batch.
async fn all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures_util::future::join_all(futures).await
}

#[tokio::test]
async fn inserts_queued_together_are_one_statement_and_repeats_in_it_are_duplicates() {
    let Some(test) = store(100, LONG).await else {
        return;
    };
    let store = &test.store;
    let mut offered: Vec<Delivery> = (0..20).map(|n| delivery(n, "e")).collect();
    // The same body twice, and the same event (logical key) in another body.
    offered.push(delivery(3, "e"));
    offered.push(conformance::recovered(5, "e", "log_5"));
    offered.push(delivery(7, "e"));
    let before = store.commit_stats();
    let answers = all(offered.iter().map(|d| store.insert(d))).await;
    let answers: Vec<Inserted> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers[..20], [Inserted::Stored; 20]);
    assert_eq!(answers[20..], [Inserted::Duplicate; 3]);
    let after = store.commit_stats();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 23),
        "one statement"
    );
    assert_eq!(store.counts().await.unwrap().pending, 20);
    let again = all(offered.iter().take(4).map(|d| store.insert(d))).await;
    assert!(
        again.iter().all(|a| matches!(a, Ok(Inserted::Duplicate))),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_batch_past_the_capacity_stores_what_fits_and_refuses_only_new_deliveries() {
    use Inserted::{Duplicate, Full, Stored};
    let Some(test) = store(5, LONG).await else {
        return;
    };
    let store = &test.store;
    assert_eq!(
        store.insert(&delivery(0, "e")).await.unwrap(),
        Inserted::Stored
    );
    let mut offered: Vec<Delivery> = (1..=8).map(|n| delivery(n, "e")).collect();
    offered.extend([delivery(0, "e"), delivery(2, "e"), delivery(7, "e")]);
    let answers: Vec<Inserted> = all(offered.iter().map(|d| store.insert(d)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        answers,
        [Stored, Stored, Stored, Stored, Full, Full, Full, Full, Duplicate, Duplicate, Full],
        "room for four; a repeat of a refused delivery is refused too"
    );
    assert_eq!(store.counts().await.unwrap().pending, 5);
}

#[tokio::test]
async fn a_batch_whose_statement_fails_answers_every_caller_with_the_error() {
    let Some(url) = server() else { return };
    let schema = Schema::fresh(&url);
    let store = impatient(&schema).await;
    let mut locker = raw(&url).await;
    let lock = lock_deliveries(&mut locker, &schema).await;
    let offered: Vec<Delivery> = (0..10).map(|n| delivery(n, "e")).collect();
    for answer in all(offered.iter().map(|d| store.insert(d))).await {
        assert!(matches!(answer, Err(StoreError::Busy(_))), "{answer:?}");
    }
    assert_eq!(store.commit_stats(), (0, 0), "nothing committed");
    lock.rollback().await.unwrap();
    for answer in all(offered.iter().map(|d| store.insert(d))).await {
        assert_eq!(answer.unwrap(), Inserted::Stored);
    }
}

#[tokio::test]
async fn settling_many_leases_at_once_loses_only_the_one_with_a_stale_token() {
    let Some(test) = store(100, LONG).await else {
        return;
    };
    let store = &test.store;
    for n in 0..10 {
        store.insert(&delivery(n, "e")).await.unwrap();
    }
    let claimed = store.claim(10, LONG).await.unwrap().claimed;
    let mut leases: Vec<Lease> = claimed.iter().map(|c| c.lease).collect();
    leases[4].token -= 1;
    let (done, failed) = (attempt(None), attempt(Some("no")));
    let answers = all(leases.iter().enumerate().map(|(n, lease)| match n {
        0 => store.retry(lease, &failed, SystemTime::now()),
        1 => store.dead_letter(lease, &failed),
        _ => store.complete(lease, &done),
    }))
    .await;
    for (n, answer) in answers.iter().enumerate() {
        if n == 4 {
            assert!(
                matches!(answer, Err(StoreError::LeaseLost(_))),
                "{answer:?}"
            );
        } else {
            assert!(answer.is_ok(), "{n}: {answer:?}");
        }
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.leased, counts.done, counts.dead),
        (1, 1, 7, 1)
    );
    let retried = store.get(&leases[0].id).await.unwrap().unwrap();
    assert_eq!(retried.last_error.as_deref(), Some("no"));
    assert!(retried.body.is_some() && retried.next_attempt_at.is_some());
    let dead = store.get(&leases[1].id).await.unwrap().unwrap();
    assert_eq!(
        (dead.last_error.as_deref(), dead.body.is_some()),
        (Some("no"), true)
    );
    let handled = store.get(&leases[2].id).await.unwrap().unwrap();
    assert_eq!((handled.body, handled.history.len()), (None, 1));
    let lost = store.get(&leases[4].id).await.unwrap().unwrap();
    assert!(lost.history.is_empty(), "a lost lease records no attempt");
}

#[tokio::test]
async fn dropping_the_last_clone_stops_the_batchers() {
    let Some(test) = store(100, LONG).await else {
        return;
    };
    let clone = test.store.clone();
    clone.insert(&delivery(1, "e")).await.unwrap();
    let database = Arc::downgrade(&clone.shared.database);
    drop(clone);
    assert!(database.upgrade().is_some(), "a clone is left");
    drop(test);
    let began = Instant::now();
    while database.upgrade().is_some() {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "the batchers still run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
