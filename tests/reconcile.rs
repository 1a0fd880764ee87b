//! The reconciler against a faithful local stand-in of Print.one's API (`common/printone_api.rs`):
//! what was refused or never sent is recovered and handled exactly once, what arrived is not
//! recovered, a lost 200 is reported, a second run recovers nothing new, two reconcilers at
//! once recover each delivery once, and the API's rate limits, errors and timeouts are waited
//! out. The command-line tool (`printone-webhooks reconcile`, `secret`) and the axum example's
//! background reconciler run as processes, as users run them.
//!
//! The PostgreSQL case needs `PRINTONE_TEST_POSTGRES_URL` (skipped with a note without it,
//! except under CI, where it must run).

mod common;
#[path = "common/printone_api.rs"]
mod printone_api;

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use printone_api::{
    batch, envelope, log_entry, order, webhook, Fault, Fixtures, Spelling, StandIn, API_KEY,
    WEBHOOK_SECRET,
};
use printone_webhooks::{
    reconcile::{
        ApiKey, ApiOptions, PrintOneApi, ReconcileError, ReconcileOptions, Reconciler, Report,
    },
    store::{Inserted, MemoryStore, SharedStore, SqliteStore, Store},
    worker::Worker,
    BoxError, Delivery, Verifier,
};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

const CLI: &str = env!("CARGO_BIN_EXE_printone-webhooks");
const ORDERS: &str = "wh_orders";
const BATCHES: &str = "wh_batches";
const ORDER_EVENT: &str = "order_status_update";
const BATCH_EVENT: &str = "batch_status_update";

// ---- The account: what Print.one tried to send, and what reached the receiver ----------

/// One event Print.one tried to send, how its attempts were logged, and whether it reached
/// the store.
struct Sent {
    webhook: &'static str,
    event: &'static str,
    data_id: &'static str,
    /// The outcome of each logged attempt, oldest first (`true`: the receiver answered 2xx).
    attempts: &'static [bool],
    /// Whether the store holds it (it arrived, signed).
    arrived: bool,
    spelling: Spelling,
}

/// The story of the account, once the receiver's store exists:
/// - `ord_arrived_1`, `ord_arrived_2`, `bat_arrived`: delivered, answered 200, stored;
/// - `ord_refused`, `bat_refused`: answered 503 while the backlog was full;
/// - `ord_timeout`: tried twice, timed out twice behind a slow proxy;
/// - `ord_lost`: logged as answered 200, yet not in the store (a lost 200).
const STORY: &[Sent] = &[
    sent(
        ORDERS,
        ORDER_EVENT,
        "ord_arrived_1",
        &[true],
        true,
        Spelling::Camel,
    ),
    sent(
        ORDERS,
        ORDER_EVENT,
        "ord_refused",
        &[false],
        false,
        Spelling::Camel,
    ),
    sent(
        ORDERS,
        ORDER_EVENT,
        "ord_timeout",
        &[false, false],
        false,
        Spelling::Snake,
    ),
    sent(
        ORDERS,
        ORDER_EVENT,
        "ord_arrived_2",
        &[true],
        true,
        Spelling::Snake,
    ),
    sent(
        ORDERS,
        ORDER_EVENT,
        "ord_lost",
        &[true],
        false,
        Spelling::Camel,
    ),
    sent(
        BATCHES,
        BATCH_EVENT,
        "bat_refused",
        &[false],
        false,
        Spelling::Snake,
    ),
    sent(
        BATCHES,
        BATCH_EVENT,
        "bat_arrived",
        &[true],
        true,
        Spelling::Camel,
    ),
];

/// Log entries in all, within the window: the attempts of the story and one entry whose
/// envelope has no creation time.
const LOGGED: usize = 9;
/// Log entries of events the store holds before any reconciliation.
const HELD: usize = 3;
/// Events missing from the store.
const MISSING: usize = 4;

const fn sent(
    webhook: &'static str,
    event: &'static str,
    data_id: &'static str,
    attempts: &'static [bool],
    arrived: bool,
    spelling: Spelling,
) -> Sent {
    Sent {
        webhook,
        event,
        data_id,
        attempts,
        arrived,
        spelling,
    }
}

/// An instant `offset` after `base`, as Print.one writes times.
fn at(base: OffsetDateTime, offset: Duration) -> String {
    (base + offset).format(&Rfc3339).expect("formats")
}

/// The envelope of one event of the story.
fn envelope_of(sent: &Sent, created_at: &str) -> Value {
    let data = if sent.event == BATCH_EVENT {
        batch(sent.data_id)
    } else {
        order(sent.data_id, "order_processed")
    };
    envelope(sent.event, &data, created_at)
}

/// The stand-in's fixtures for the story, its events created from `base` on; and the
/// envelope of each event, by `data.id`, as a delivery carries it.
fn account(base: OffsetDateTime) -> (Fixtures, HashMap<String, Value>) {
    let mut fixtures = Fixtures {
        webhooks: vec![
            webhook(ORDERS, &[ORDER_EVENT]),
            webhook(BATCHES, &[BATCH_EVENT]),
        ],
        max_page: 2,
        ..Fixtures::default()
    };
    let mut envelopes = HashMap::new();
    let mut clock = Duration::ZERO;
    for (n, sent) in STORY.iter().enumerate() {
        clock += Duration::from_millis(100);
        let created = at(base, clock);
        let envelope = envelope_of(sent, &created);
        envelopes.insert(sent.data_id.to_owned(), envelope.clone());
        for (try_n, success) in sent.attempts.iter().enumerate() {
            clock += Duration::from_millis(10);
            let entry = log_entry(
                &format!("log_{n}_{try_n}"),
                *success,
                &envelope,
                sent.spelling,
                &at(base, clock),
            );
            fixtures
                .logs
                .entry(sent.webhook.to_owned())
                .or_default()
                .push(entry);
        }
    }
    let mut unkeyed = log_entry(
        "log_unkeyed",
        false,
        &envelope(ORDER_EVENT, &order("ord_no_time", "order_created"), ""),
        Spelling::Camel,
        &at(base, clock + Duration::from_millis(5)),
    );
    unkeyed["request"]
        .as_object_mut()
        .expect("an object")
        .remove("createdAt");
    fixtures
        .logs
        .entry(ORDERS.into())
        .or_default()
        .push(unkeyed);
    // Attempted before the store existed: never read.
    let old = Sent {
        webhook: ORDERS,
        event: ORDER_EVENT,
        data_id: "ord_before_the_store",
        attempts: &[false],
        arrived: false,
        spelling: Spelling::Camel,
    };
    let long_ago = at(base - Duration::from_secs(3600), Duration::ZERO);
    let envelope = envelope_of(&old, &long_ago);
    fixtures
        .logs
        .entry(ORDERS.into())
        .or_default()
        .push(log_entry(
            "log_old",
            false,
            &envelope,
            Spelling::Camel,
            &long_ago,
        ));
    (fixtures, envelopes)
}

/// A signed delivery of `body`, as the receiver stored it.
fn signed(body: &Bytes) -> Delivery {
    let secret = common::secret();
    let signature = printone_webhooks::sign(&secret, body);
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-webhook-hmac-sha256",
        HeaderValue::from_str(&signature).expect("base64"),
    );
    let verified = Verifier::new(secret)
        .verify(&headers, body)
        .expect("signed with the secret");
    Delivery::new(body.clone(), verified, &headers)
}

/// A store file of its own, with the deliveries that arrived; the stand-in serving the story.
struct Scene {
    _dir: TempDir,
    path: PathBuf,
    store: SqliteStore,
    api: StandIn,
    envelopes: HashMap<String, Value>,
}

impl Scene {
    async fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let path = dir.0.join("store.db");
        let store = SqliteStore::open(&path).expect("a new store");
        let base = OffsetDateTime::now_utc() + Duration::from_secs(1);
        let (fixtures, envelopes) = account(base);
        for sent in STORY.iter().filter(|sent| sent.arrived) {
            let body = Bytes::from(envelopes[sent.data_id].to_string());
            assert_eq!(
                store.insert(&signed(&body)).await.expect("stored"),
                Inserted::Stored
            );
        }
        let api = StandIn::start(fixtures).await;
        Self {
            _dir: dir,
            path,
            store,
            api,
            envelopes,
        }
    }

    fn store_url(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn reconciler(&self, store: impl Into<SharedStore>) -> Reconciler {
        Reconciler::new(api(&self.api.url(), quick()), store)
    }

    /// `printone-webhooks reconcile` on the scene's store, with `args`.
    fn cli(&self, args: &[&str]) -> Output {
        let url = self.store_url();
        let mut all = vec!["reconcile", "--store", url.as_str(), "--api-url"];
        let api_url = self.api.url();
        all.push(&api_url);
        all.extend_from_slice(args);
        cli(&all, &[("PRINTONE_API_KEY", API_KEY)])
    }
}

/// API options for tests: a short timeout and backoff.
fn quick() -> ApiOptions {
    ApiOptions::default()
        .with_timeout(Duration::from_millis(500))
        .with_retries(4, Duration::from_millis(20))
}

fn api(url: &str, options: ApiOptions) -> PrintOneApi {
    PrintOneApi::with_options(url, ApiKey::new(API_KEY).expect("a key"), options).expect("a client")
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(CLI);
    command
        .args(args)
        .env_remove("PRINTONE_API_KEY")
        .env_remove("PRINTONE_API_URL")
        .env_remove("PRINTONE_STORE")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the CLI runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn last_line(output: &Output) -> String {
    stdout(output).lines().last().unwrap_or_default().to_owned()
}

/// A temporary folder, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "printone-reconcile-{name}-{}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a worker on `store` until nothing waits, and returns how often each `data.id` was
/// handled, and which were recovered from the log.
async fn handle_everything(store: SharedStore) -> (HashMap<String, u32>, Vec<String>) {
    let seen = Arc::new(Mutex::new((HashMap::new(), Vec::new())));
    let record = Arc::clone(&seen);
    let handler = move |delivery: Delivery| {
        let record = Arc::clone(&record);
        async move {
            let (_, data_id) = delivery.summary();
            let data_id = data_id.unwrap_or_default();
            let mut seen = record.lock().unwrap_or_else(PoisonError::into_inner);
            *seen.0.entry(data_id.clone()).or_insert(0) += 1;
            if delivery.recovered_from().is_some() {
                seen.1.push(data_id);
            }
            Ok::<(), BoxError>(())
        }
    };
    let worker = Worker::new(store.clone(), handler).spawn();
    let deadline = Instant::now() + common::PATIENCE;
    while store.counts().await.expect("counted").backlog() > 0 {
        assert!(Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown().await.expect("the worker stops");
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    let mut recovered = seen.1.clone();
    recovered.sort();
    (seen.0.clone(), recovered)
}

// ---- The command line ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_never_arrived_is_recovered_and_handled_once_and_a_lost_200_is_reported() {
    let scene = Scene::new("story").await;

    let first = scene.cli(&[]);
    assert_eq!(
        first.status.code(),
        Some(1),
        "a lost 200 exits 1: {}",
        stderr(&first)
    );
    assert_eq!(
        last_line(&first),
        format!("reconciled webhooks=2 logged={LOGGED} held={HELD} recovered={MISSING} lost_200=1")
    );
    let text = stdout(&first);
    assert!(
        text.contains(
            "lost_200 webhook=wh_orders log=log_4_0 event=order_status_update id=ord_lost"
        ),
        "{text}"
    );
    assert!(stderr(&first).contains("1 log entries have no event, data id or creation time"));
    assert!(
        !stderr(&first).contains(API_KEY),
        "the API key is never printed"
    );

    let store = SharedStore::from(scene.store.clone());
    let (handled, recovered) = handle_everything(store.clone()).await;
    let expected: Vec<&str> = STORY.iter().map(|sent| sent.data_id).collect();
    for data_id in &expected {
        assert_eq!(
            handled.get(*data_id),
            Some(&1),
            "{data_id} handled exactly once: {handled:?}"
        );
    }
    assert_eq!(
        handled.len(),
        expected.len(),
        "nothing else was handled: {handled:?}"
    );
    assert_eq!(
        recovered,
        ["bat_refused", "ord_lost", "ord_refused", "ord_timeout"]
    );

    let second = scene.cli(&[]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(
        last_line(&second),
        format!(
            "reconciled webhooks=2 logged={LOGGED} held={} recovered=0 lost_200=0",
            LOGGED - 1
        )
    );

    // A recovered delivery that then arrives signed is a re-delivery.
    let late = Bytes::from(scene.envelopes["ord_refused"].to_string());
    assert_eq!(
        store.insert(&signed(&late)).await.unwrap(),
        Inserted::Duplicate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_what_it_would_recover_and_changes_nothing() {
    let scene = Scene::new("dry").await;
    let dry = scene.cli(&["--dry-run"]);
    assert_eq!(
        dry.status.code(),
        Some(1),
        "a lost 200 is reported: {}",
        stderr(&dry)
    );
    assert!(
        stdout(&dry).contains(&format!("would recover {MISSING}")),
        "{}",
        stdout(&dry)
    );
    assert_eq!(
        last_line(&dry),
        format!("reconciled webhooks=2 logged={LOGGED} held={HELD} recovered=0 lost_200=1")
    );
    assert_eq!(scene.store.counts().await.unwrap().pending, HELD as u64);
    let real = scene.cli(&[]);
    assert!(
        last_line(&real).contains(&format!("recovered={MISSING}")),
        "no checkpoint moved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_webhooks_asked_for_are_reconciled() {
    let scene = Scene::new("one-webhook").await;
    let output = scene.cli(&["--webhook", BATCHES]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        last_line(&output),
        "reconciled webhooks=1 logged=2 held=1 recovered=1 lost_200=0"
    );
    let unknown = scene.cli(&["--webhook", "wh_nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no webhook wh_nope"),
        "{}",
        stderr(&unknown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_errors_exit_2_and_an_unreachable_api_exits_3() {
    let scene = Scene::new("errors").await;
    let store = scene.store_url();
    let api_url = scene.api.url();

    let no_key = cli(
        &["reconcile", "--store", &store, "--api-url", &api_url],
        &[],
    );
    assert_eq!(no_key.status.code(), Some(2));
    assert!(
        stderr(&no_key).contains("no API key"),
        "{}",
        stderr(&no_key)
    );

    let wrong = cli(
        &["reconcile", "--store", &store, "--api-url", &api_url],
        &[("PRINTONE_API_KEY", "not-the-key")],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("the API key was refused"),
        "{}",
        stderr(&wrong)
    );
    assert!(
        !stderr(&wrong).contains("not-the-key"),
        "the key is never printed"
    );

    scene.api.inject(std::iter::repeat_n(Fault::ServerError, 8));
    let failing = scene.cli(&["--timeout", "1s"]);
    assert_eq!(failing.status.code(), Some(3), "{}", stderr(&failing));
    assert!(stderr(&failing).contains("500"), "{}", stderr(&failing));
    scene.api.fixtures().faults.clear();

    let closed = free_port_url();
    let nobody = cli(
        &["reconcile", "--store", &store, "--api-url", &closed],
        &[("PRINTONE_API_KEY", API_KEY)],
    );
    assert_eq!(nobody.status.code(), Some(3), "{}", stderr(&nobody));
    assert!(
        stderr(&nobody).contains("could not be reached"),
        "{}",
        stderr(&nobody)
    );

    let missing_store = cli(
        &[
            "reconcile",
            "--store",
            "sqlite:/nonexistent/store.db",
            "--api-url",
            &api_url,
        ],
        &[("PRINTONE_API_KEY", API_KEY)],
    );
    assert_eq!(missing_store.status.code(), Some(2));
    assert_eq!(
        scene.store.counts().await.unwrap().pending,
        HELD as u64,
        "nothing stored"
    );
}

/// A loopback URL nobody listens on.
fn free_port_url() -> String {
    format!("http://{}/", common::free_address())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_prints_the_accounts_webhook_secret() {
    let api = StandIn::start(Fixtures::default()).await;
    let url = api.url();
    let output = cli(
        &["secret", "--api-url", &url],
        &[("PRINTONE_API_KEY", API_KEY)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{WEBHOOK_SECRET}\n"));
    assert!(api
        .fixtures()
        .requests
        .contains(&"POST /v2/webhooks/secret".to_owned()));
    let refused = cli(
        &["secret", "--api-url", &url],
        &[("PRINTONE_API_KEY", "wrong")],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(stdout(&refused).is_empty());
}

// ---- The library -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_errors_and_timeouts_are_waited_out() {
    let scene = Scene::new("faults").await;
    scene.api.inject([
        Fault::TooMany(1),
        Fault::ServerError,
        Fault::Slow(Duration::from_secs(2)),
    ]);
    let started = Instant::now();
    let report = scene
        .reconciler(scene.store.clone())
        .reconcile()
        .await
        .expect("waited out");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the Retry-After of the 429 was honoured"
    );
    assert_eq!(report.recovered(), MISSING as u64);
    let requests = scene.api.fixtures().requests.clone();
    let listings = requests
        .iter()
        .filter(|r| r.starts_with("GET /v2/webhooks {"))
        .count();
    assert!(
        listings >= 4,
        "the webhook list was asked again after each fault: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.contains("sortBy") && r.contains("createdAt:DESC")),
        "the logs are read newest first: {requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_retry_after_ends_the_run_as_rate_limited() {
    let api_server = StandIn::start(Fixtures::default()).await;
    api_server.inject([Fault::TooMany(3600)]);
    let reconciler = Reconciler::new(api(&api_server.url(), quick()), MemoryStore::new());
    let error = reconciler.reconcile().await.expect_err("rate limited");
    assert!(
        matches!(error, ReconcileError::RateLimited(wait) if wait == Duration::from_secs(3600))
    );
    assert!(error.is_api_failure());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciler_finds_another_running_and_steps_aside() {
    let scene = Scene::new("busy").await;
    let other = SqliteStore::open(&scene.path).expect("a second handle");
    let held = other
        .try_exclusive(printone_webhooks::reconcile::LOCK)
        .await
        .unwrap()
        .expect("free");
    let outcome = scene.reconciler(scene.store.clone()).reconcile().await;
    assert!(matches!(outcome, Err(ReconcileError::Busy)), "{outcome:?}");
    drop(held);
    assert!(scene
        .reconciler(scene.store.clone())
        .reconcile()
        .await
        .is_ok());
}

/// Reconciles, trying again while another reconciler holds the lock.
async fn reconcile_when_free(reconciler: &Reconciler) -> Report {
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        match reconciler.reconcile().await {
            Err(ReconcileError::Busy) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcome => return outcome.expect("reconciled"),
        }
    }
}

/// Two replicas (two stores on one database) reconcile at once, twice each.
async fn two_replicas_recover_each_delivery_once(
    scene: &Scene,
    first: SharedStore,
    second: SharedStore,
) {
    let one = scene
        .reconciler(first.clone())
        .with_options(ReconcileOptions::default().page_size(1));
    let two = scene
        .reconciler(second)
        .with_options(ReconcileOptions::default().page_size(1));
    let (a, b, c, d) = tokio::join!(
        reconcile_when_free(&one),
        reconcile_when_free(&two),
        reconcile_when_free(&one),
        reconcile_when_free(&two)
    );
    let recovered: u64 = [a, b, c, d].iter().map(Report::recovered).sum();
    assert_eq!(
        recovered, MISSING as u64,
        "each missing event recovered once in all"
    );
    let (handled, recovered) = handle_everything(first).await;
    assert_eq!(recovered.len(), MISSING);
    assert!(handled.values().all(|n| *n == 1), "{handled:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_of_one_sqlite_file_recover_each_delivery_once() {
    let scene = Scene::new("replicas").await;
    let second = SqliteStore::open(&scene.path).expect("a second handle");
    two_replicas_recover_each_delivery_once(&scene, scene.store.clone().into(), second.into())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_of_one_postgresql_schema_recover_each_delivery_once() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let scene = Scene::new("pg-replicas").await;
    let schema = format!("reconcile_{}", std::process::id());
    let open = || {
        printone_webhooks::store::PostgresOptions::new(&url)
            .schema(&schema)
            .connect()
    };
    let first = open().await.expect("connects");
    let second = open().await.expect("connects");
    for sent in STORY.iter().filter(|sent| sent.arrived) {
        let body = Bytes::from(scene.envelopes[sent.data_id].to_string());
        first.insert(&signed(&body)).await.expect("stored");
    }
    two_replicas_recover_each_delivery_once(&scene, first.clone().into(), second.into()).await;
    drop_schema(&url, &schema);
}

fn drop_schema(url: &str, schema: &str) {
    let _ = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-c",
            &format!("DROP SCHEMA \"{schema}\" CASCADE"),
        ])
        .stdin(Stdio::null())
        .output();
}

// ---- The example receiver's background reconciler ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_axum_receiver_recovers_at_start_what_never_reached_it() {
    let scene = Scene::new("example").await;
    let admin = common::free_address();
    let mut child = Command::new(common::example_binary("axum"))
        .env("PRINTONE_ADMIN_BIND", admin.to_string())
        .env("PRINTONE_BIND", "127.0.0.1:0")
        .env("PRINTONE_WEBHOOK_SECRET", common::SECRET)
        .env("PRINTONE_STORE", scene.store_url())
        .env("PRINTONE_API_KEY", API_KEY)
        .env("PRINTONE_API_URL", scene.api.url())
        .env("PRINTONE_RECONCILE_EVERY", "1h")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let captured = common::capture(&mut child);
    let expected = STORY.len();
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        let lines = captured
            .stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        if lines >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "handled {lines} of {expected}; log:\n{}",
            captured.log.lock().unwrap_or_else(PoisonError::into_inner)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("exits");
    let _ = captured.reader.join();
    let lines = captured
        .stdout
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let log = captured
        .log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(status.success(), "{status:?}\n{log}");
    for sent in STORY {
        let line = format!("handled event={} id={}", sent.event, sent.data_id);
        assert_eq!(
            lines.iter().filter(|l| **l == line).count(),
            1,
            "{line} once: {lines:?}"
        );
    }
    assert!(
        log.contains("reconciled with the Print.one webhook logs"),
        "{log}"
    );
    assert!(log.contains("lost_200=1"), "{log}");
    assert!(!log.contains(API_KEY), "the API key is never logged");
    assert!(!log.contains("Springfield"), "no body is logged");
}
