//! A bounded load test on a real server on loopback: axum serving `VerifyLayer::store_in` a
//! memory store that holds at most 16 waiting deliveries, and a worker on that store. Several
//! clients send thousands of distinct deliveries at once, each sent again on 503 after the
//! `Retry-After` it was given (as Print.one sends a refused delivery again), re-send some that
//! were accepted, and a few deliveries always fail in the handler; then a graceful shutdown.
//! No 200 may be lost and none may be handled twice.
#![allow(clippy::unwrap_used)] // in this test crate a failed unwrap is a failed test

mod common;

use std::{
    collections::{HashMap, HashSet},
    future::IntoFuture as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{http::StatusCode, Router};
use bytes::Bytes;
use common::{order_body, signature_of, within};
use http::header::RETRY_AFTER;
use http_body_util::{BodyExt as _, Full};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use printone_webhooks::{
    store::{Counts, DeliveryState, Filter, MemoryStore, Store as _},
    tower::VerifyLayer,
    worker::{Handler, Metrics, RetryPolicy, Worker, WorkerHandle},
    BoxError, Delivery, Verifier, SIGNATURE_HEADER,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

const DELIVERIES: usize = 2_000;
/// Every tenth delivery is sent again once it was accepted.
const RESENT: usize = 200;
const ALWAYS_FAILING: usize = 5;
/// Waiting deliveries (pending or leased) the store holds before it answers 503.
const CAPACITY: usize = 16;
const WORKER_CONCURRENCY: usize = 8;
/// Attempts at an always-failing delivery before it is dead-lettered.
const ATTEMPTS: u32 = 3;
/// Concurrent clients, each with its own connection, sending one delivery at a time.
const CLIENTS: usize = 16;
/// Sends of one delivery before the test gives up on it.
const MAX_TRIES: usize = 200;
/// How long a client waits for each second of `Retry-After`: the refusal is honoured on a
/// scale that keeps the test within a few seconds.
const RETRY_AFTER_SECOND: Duration = Duration::from_millis(10);
/// Why the always-failing handler fails.
const REASON: &str = "the fulfilment system refused the update";
/// The longest the whole exchange may take before the test fails instead of hanging.
const LOAD_PATIENCE: Duration = Duration::from_secs(60);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One delivery to send: its `data.id`, its body, and whether it is sent again once accepted.
#[derive(Clone)]
struct Planned {
    id: String,
    body: Bytes,
    resend: bool,
}

/// What one delivery got: the statuses of its sends, and of its re-sends when it had one.
struct Sent {
    id: String,
    statuses: Vec<StatusCode>,
    resent: Option<Vec<StatusCode>>,
}

/// The 2 000 orders, with the 5 always-failing deliveries spread among them.
fn plan() -> Vec<Planned> {
    let mut plan: Vec<Planned> = (0..DELIVERIES)
        .map(|i| {
            let id = format!("ord_{i}");
            Planned {
                body: order_body(&id),
                id,
                resend: i % (DELIVERIES / RESENT) == 0,
            }
        })
        .collect();
    for k in 0..ALWAYS_FAILING {
        let id = format!("bad_{k}");
        let envelope = serde_json::json!({
            "data": { "id": id },
            "event": "always_fails",
            "created_at": "2024-06-03T13:14:46.501Z",
        });
        let body = Bytes::from(envelope.to_string());
        let at = k * (DELIVERIES / ALWAYS_FAILING) + 1;
        plan.insert(
            at,
            Planned {
                id,
                body,
                resend: false,
            },
        );
    }
    plan
}

/// What the background side saw, and the gate that holds the handler back until the backlog
/// pushed back once (so that refusals are certain, whatever the machine's speed).
#[derive(Clone)]
struct Recorded {
    handled: Arc<Mutex<HashMap<String, usize>>>,
    metrics: Metrics,
    gate: Arc<watch::Sender<bool>>,
}

impl Recorded {
    fn new() -> Self {
        Self {
            handled: Arc::default(),
            metrics: Metrics::new(),
            gate: Arc::new(watch::Sender::new(false)),
        }
    }

    /// The handler: counts each `data.id` it handles; an `always_fails` delivery never succeeds.
    fn handler(&self) -> impl Handler {
        let handled = Arc::clone(&self.handled);
        let gate = self.gate.subscribe();
        move |delivery: Delivery| {
            let handled = Arc::clone(&handled);
            let mut gate = gate.clone();
            async move {
                // The sender lives as long as the test, so this only waits for the gate.
                let _ = gate.wait_for(|open| *open).await;
                let event = delivery.event()?;
                if event.name() == "always_fails" {
                    return Err(BoxError::from(REASON));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                let id = event
                    .data_id()
                    .ok_or("a delivery without an id")?
                    .to_owned();
                *handled.lock().unwrap().entry(id).or_default() += 1;
                Ok(())
            }
        }
    }
}

/// The receiver: the acknowledging service on a small store, and a worker on the same store.
async fn start(
    recorded: &Recorded,
    store: &MemoryStore,
) -> (String, Router, TcpListener, WorkerHandle) {
    let worker = Worker::new(store.clone(), recorded.handler())
        .with_concurrency(WORKER_CONCURRENCY)
        .with_metrics(recorded.metrics.clone())
        .with_retry(
            RetryPolicy::new(ATTEMPTS)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .with_shutdown_timeout(common::PATIENCE)
        .spawn();
    let layer =
        VerifyLayer::new(Verifier::new(common::secret())).with_metrics(recorded.metrics.clone());
    let app = Router::new().route_service("/webhooks/printone", layer.store_in(store.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/printone",
        listener.local_addr().unwrap()
    );
    (url, app, listener, worker)
}

/// Posts `body` until it is answered with something other than 503, waiting out each refusal's
/// `Retry-After` (scaled by [`RETRY_AFTER_SECOND`]); returns every status received.
async fn send_until_answered(
    client: &HttpClient,
    url: &str,
    id: &str,
    body: &Bytes,
    gate: &watch::Sender<bool>,
) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..MAX_TRIES {
        let request = http::Request::post(url)
            .header(SIGNATURE_HEADER, signature_of(body))
            .body(Full::new(body.clone()))
            .unwrap();
        let response = within("a response", client.request(request)).await.unwrap();
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        within("the response body", response.into_body().collect())
            .await
            .unwrap();
        statuses.push(status);
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return statuses;
        }
        let seconds: u32 = retry_after
            .unwrap_or_else(|| panic!("the 503 for {id} says when to come back"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(seconds >= 1, "Retry-After {seconds} for {id}");
        // The backlog pushed back: let the worker make room from now on.
        gate.send_replace(true);
        tokio::time::sleep(RETRY_AFTER_SECOND * seconds).await;
    }
    panic!("{id} was refused {MAX_TRIES} times: {statuses:?}");
}

/// One client: sends its deliveries one after another, each re-sent once accepted when planned.
async fn client(url: String, planned: Vec<Planned>, gate: Arc<watch::Sender<bool>>) -> Vec<Sent> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut sent = Vec::with_capacity(planned.len());
    for delivery in planned {
        let statuses =
            send_until_answered(&client, &url, &delivery.id, &delivery.body, &gate).await;
        let resent = if delivery.resend && statuses.last() == Some(&StatusCode::OK) {
            Some(send_until_answered(&client, &url, &delivery.id, &delivery.body, &gate).await)
        } else {
            None
        };
        sent.push(Sent {
            id: delivery.id,
            statuses,
            resent,
        });
    }
    sent
}

/// Runs [`CLIENTS`] clients at once, the deliveries dealt out among them in turn.
async fn send_all(url: &str, plan: Vec<Planned>, gate: &Arc<watch::Sender<bool>>) -> Vec<Sent> {
    let mut dealt: Vec<Vec<Planned>> = vec![Vec::new(); CLIENTS];
    for (n, delivery) in plan.into_iter().enumerate() {
        dealt[n % CLIENTS].push(delivery);
    }
    let mut clients = JoinSet::new();
    for planned in dealt {
        clients.spawn(client(url.to_owned(), planned, Arc::clone(gate)));
    }
    let mut sent = Vec::new();
    while let Some(done) = clients.join_next().await {
        sent.extend(done.unwrap());
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_every_200_is_handled_exactly_once_and_every_refusal_is_503_with_retry_after() {
    let recorded = Recorded::new();
    let store = MemoryStore::new().with_capacity(CAPACITY);
    let (url, app, listener, worker) = start(&recorded, &store).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async { stopped.await.unwrap_or(()) })
            .into_future(),
    );

    let plan = plan();
    let bodies: HashMap<String, Bytes> = plan
        .iter()
        .map(|planned| (planned.id.clone(), planned.body.clone()))
        .collect();
    let (watching, watched) = watch::channel(());
    let largest_backlog = tokio::spawn(largest_backlog(store.clone(), watched));
    let sent = tokio::time::timeout(LOAD_PATIENCE, send_all(&url, plan, &recorded.gate))
        .await
        .expect("the load finished in time");
    drop(watching);
    let largest_backlog = within("the backlog watch", largest_backlog).await.unwrap();
    assert!(
        largest_backlog <= CAPACITY as u64,
        "the store held {largest_backlog} waiting deliveries, more than its capacity"
    );

    stop.send(()).unwrap();
    within("the server to stop", server).await.unwrap().unwrap();
    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();

    let refused = assert_every_send_answered_200_after_503s(&sent);
    assert!(refused > 0, "the small backlog should have pushed back");
    let snapshot = recorded.metrics.snapshot();
    assert_eq!(sent.iter().filter(|d| d.resent.is_some()).count(), RESENT);
    assert_eq!(
        snapshot.duplicates, RESENT as u64,
        "every re-send is counted as a duplicate"
    );
    assert_eq!(snapshot.accepted, (DELIVERIES + ALWAYS_FAILING) as u64);
    assert_eq!(snapshot.unavailable, refused as u64, "every 503 is counted");
    assert_eq!(snapshot.rejected_total(), 0);

    assert_every_order_handled_once(&recorded, &sent);
    assert_eq!(snapshot.handled, DELIVERIES as u64);
    assert_eq!(report.handled, DELIVERIES as u64);

    // The always-failing deliveries were tried ATTEMPTS times, then dead-lettered.
    let failing = ALWAYS_FAILING as u64;
    let retries = failing * u64::from(ATTEMPTS - 1);
    assert_eq!(report.dead_lettered, failing);
    assert_eq!(report.attempts_failed, failing * u64::from(ATTEMPTS));
    assert_eq!(report.attempts_panicked, 0);
    assert_eq!(report.retries_scheduled, retries);
    assert_eq!(snapshot.dead_lettered, failing);
    assert_eq!(snapshot.retried, retries);
    assert_dead_letters_kept_with_their_reason(&store, &bodies).await;

    // Nothing is left behind.
    assert_eq!(report.left, 0);
    assert_eq!(
        store.counts().await.unwrap(),
        Counts {
            pending: 0,
            leased: 0,
            done: DELIVERIES as u64,
            dead: failing,
        }
    );
}

/// The largest backlog (pending and leased) seen in the store until `stop` is dropped.
async fn largest_backlog(store: MemoryStore, mut stop: watch::Receiver<()>) -> u64 {
    let mut largest = 0;
    loop {
        largest = largest.max(store.counts().await.unwrap().backlog());
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { return largest },
            () = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    }
}

/// Asserts that every delivery and every re-send got its 200 in the end, after nothing but
/// 503s; returns how many 503s there were in all.
fn assert_every_send_answered_200_after_503s(sent: &[Sent]) -> usize {
    assert_eq!(sent.len(), DELIVERIES + ALWAYS_FAILING);
    let mut refused = 0;
    for delivery in sent {
        let sends = [Some(&delivery.statuses), delivery.resent.as_ref()];
        for statuses in sends.into_iter().flatten() {
            let (last, before) = statuses.split_last().unwrap();
            assert_eq!(*last, StatusCode::OK, "{}: {statuses:?}", delivery.id);
            assert!(
                before.iter().all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
                "{}: {statuses:?}",
                delivery.id,
            );
            refused += before.len();
        }
    }
    refused
}

/// Asserts that the handler ran exactly once for every accepted order, and for nothing else.
fn assert_every_order_handled_once(recorded: &Recorded, sent: &[Sent]) {
    let orders: HashSet<&str> = sent
        .iter()
        .map(|d| d.id.as_str())
        .filter(|id| id.starts_with("ord_"))
        .collect();
    assert_eq!(orders.len(), DELIVERIES);
    let handled = recorded.handled.lock().unwrap();
    assert_eq!(
        handled.keys().map(String::as_str).collect::<HashSet<_>>(),
        orders,
        "every accepted order was handled, and nothing else"
    );
    for (id, times) in handled.iter() {
        assert_eq!(*times, 1, "{id} was handled {times} times");
    }
}

/// Asserts that the always-failing deliveries, and only they, stay in the store as dead
/// letters, each with its body, its attempts and the handler's reason.
async fn assert_dead_letters_kept_with_their_reason(
    store: &MemoryStore,
    bodies: &HashMap<String, Bytes>,
) {
    let dead = store
        .list(&Filter {
            state: Some(DeliveryState::Dead),
            limit: usize::MAX,
            ..Filter::default()
        })
        .await
        .unwrap();
    let dead_ids: HashSet<&str> = dead.iter().filter_map(|d| d.data_id.as_deref()).collect();
    let expected: HashSet<String> = (0..ALWAYS_FAILING).map(|k| format!("bad_{k}")).collect();
    assert_eq!(dead.len(), ALWAYS_FAILING);
    assert_eq!(
        dead_ids,
        expected.iter().map(String::as_str).collect(),
        "the always-failing deliveries are the dead letters"
    );
    for letter in &dead {
        let id = letter.data_id.as_deref().unwrap();
        assert_eq!(letter.event.as_deref(), Some("always_fails"), "{id}");
        assert_eq!(letter.attempts, ATTEMPTS, "{id}");
        assert_eq!(letter.last_error.as_deref(), Some(REASON), "{id}");
        assert_eq!(
            letter.body.as_ref(),
            Some(&bodies[id]),
            "{id} keeps its body"
        );
        let history = store.get(&letter.id).await.unwrap().unwrap().history;
        assert_eq!(history.len(), ATTEMPTS as usize, "{id}");
        assert!(
            history.iter().all(|a| a.error.as_deref() == Some(REASON)),
            "{id}: {history:?}"
        );
    }
}
