//! A bounded load test on a real server on loopback: thousands of distinct deliveries at high
//! concurrency, a slow background handler and a small queue (so most first tries get 503 and
//! are sent again, as Print.one does), re-deliveries of accepted bodies, a handler that always
//! fails, then a graceful shutdown. No 200 may be lost and none may be doubled.
#![allow(clippy::unwrap_used)] // in this test crate a failed unwrap is a failed test

mod common;

use std::{
    collections::{HashMap, HashSet},
    future::IntoFuture as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{http::StatusCode, routing::post, Router};
use bytes::Bytes;
use common::{signature_of, within};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use printone_webhooks::{
    Delivery, Metrics, RetryPolicy, Verifier, VerifyLayer, Worker, WorkerHandle, SIGNATURE_HEADER,
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};

const DELIVERIES: usize = 2_000;
const RESENT: usize = 200;
const ALWAYS_FAILING: usize = 5;
const CLIENT_CONCURRENCY: usize = 64;
const MAX_TRIES: usize = 2_000;

type Counts = Arc<Mutex<HashMap<String, usize>>>;

fn body(id: &str, event: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"data":{{"id":"{id}"}},"event":"{event}","created_at":"2024-06-03T13:14:46.501Z"}}"#
    ))
}

/// The slow background handler: counts each id it handles; `always_fails` never succeeds.
async fn handle(delivery: Delivery, handled: Counts) -> StatusCode {
    let event = delivery.event().expect("the load test sends envelopes");
    if event.name() == "always_fails" {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let id = event
        .data_id()
        .expect("every delivery has an id")
        .to_owned();
    *handled.lock().unwrap().entry(id).or_default() += 1;
    StatusCode::OK
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Posts `body` until it is accepted, backing off on 503 as Print.one does; returns every
/// status received.
async fn send_one(client: &HttpClient, url: &str, body: Bytes) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..MAX_TRIES {
        let request = http::Request::post(url)
            .header(SIGNATURE_HEADER, signature_of(&body))
            .body(Full::new(body.clone()))
            .unwrap();
        let status = within("a response", client.request(request))
            .await
            .unwrap()
            .status();
        statuses.push(status);
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    statuses
}

/// Sends every `(id, body)` with bounded concurrency and returns each id's statuses.
async fn send_all(
    client: &HttpClient,
    url: &str,
    deliveries: Vec<(String, Bytes)>,
) -> Vec<(String, StatusCode)> {
    let permits = Arc::new(Semaphore::new(CLIENT_CONCURRENCY));
    let mut sends = JoinSet::new();
    for (id, body) in deliveries {
        let (client, url, permits) = (client.clone(), url.to_owned(), Arc::clone(&permits));
        sends.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let statuses = send_one(&client, &url, body).await;
            statuses
                .into_iter()
                .map(move |status| (id.clone(), status))
                .collect::<Vec<_>>()
        });
    }
    let mut statuses = Vec::new();
    while let Some(sent) = sends.join_next().await {
        statuses.extend(sent.unwrap());
    }
    statuses
}

/// What the background side recorded.
#[derive(Default)]
struct Recorded {
    handled: Counts,
    dead_letters: Arc<Mutex<Vec<String>>>,
    metrics: Metrics,
}

/// Starts the receiver: a worker with a small queue, and the route in the background.
async fn start(recorded: &Recorded) -> (String, Router, TcpListener, WorkerHandle) {
    let (queue, worker) = Worker::new(16).unwrap();
    let letters = Arc::clone(&recorded.dead_letters);
    let worker = worker
        .with_concurrency(8)
        .with_metrics(recorded.metrics.clone())
        .with_retry(
            RetryPolicy::new(3).with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .with_dead_letter(move |letter| {
            let id = letter
                .delivery()
                .event()
                .unwrap()
                .data_id()
                .unwrap()
                .to_owned();
            letters.lock().unwrap().push(id);
            async {}
        })
        .spawn();
    let layer = VerifyLayer::new(Verifier::new(common::secret()))
        .with_metrics(recorded.metrics.clone())
        .in_background(queue);
    let counts = Arc::clone(&recorded.handled);
    let app = Router::new().route(
        "/webhooks/printone",
        post(move |delivery: Delivery| handle(delivery, Arc::clone(&counts))).layer(layer),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/printone",
        listener.local_addr().unwrap()
    );
    (url, app, listener, worker)
}

fn deliveries() -> Vec<(String, Bytes)> {
    let orders = (0..DELIVERIES).map(|i| (format!("ord_{i}"), "order_status_update"));
    let failing = (0..ALWAYS_FAILING).map(|i| (format!("bad_{i}"), "always_fails"));
    orders
        .chain(failing)
        .map(|(id, event)| {
            let body = body(&id, event);
            (id, body)
        })
        .collect()
}

/// Each id that got at least one 200; asserts every other status was a 503.
fn accepted_ids(statuses: &[(String, StatusCode)]) -> HashSet<String> {
    for (id, status) in statuses {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{id} got {status}"
        );
    }
    statuses
        .iter()
        .filter(|(_, status)| *status == StatusCode::OK)
        .map(|(id, _)| id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_every_200_is_handled_exactly_once_and_every_refusal_is_503() {
    let recorded = Recorded::default();
    let (url, app, listener, worker) = start(&recorded).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async { stopped.await.unwrap_or(()) })
            .into_future(),
    );
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let all = deliveries();
    let resent = all[..RESENT].to_vec();
    let statuses = within_long(send_all(&client, &url, all)).await;
    let duplicates_before = recorded.metrics.snapshot().duplicates;
    let resent_statuses = within_long(send_all(&client, &url, resent)).await;

    stop.send(()).unwrap();
    within("the server to stop", server).await.unwrap().unwrap();
    let report = within_long(worker.shutdown()).await.unwrap();

    let accepted = accepted_ids(&statuses);
    assert_eq!(
        accepted.len(),
        DELIVERIES + ALWAYS_FAILING,
        "every delivery got its 200 in the end"
    );
    let refused = statuses.len() - accepted.len();
    assert!(refused > 0, "the small queue should have pushed back");

    assert!(resent_statuses
        .iter()
        .all(|(_, status)| *status == StatusCode::OK));
    let snapshot = recorded.metrics.snapshot();
    assert_eq!(
        snapshot.duplicates - duplicates_before,
        RESENT as u64,
        "re-deliveries handed over again"
    );

    let handled = recorded.handled.lock().unwrap();
    assert_eq!(handled.len(), DELIVERIES);
    for (id, count) in handled.iter() {
        assert_eq!(*count, 1, "{id} was handled {count} times");
    }
    let dead_letters: HashSet<String> = recorded
        .dead_letters
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .collect();
    let failing: HashSet<String> = accepted
        .iter()
        .filter(|id| id.starts_with("bad_"))
        .cloned()
        .collect();
    assert_eq!(
        dead_letters, failing,
        "the always-failing deliveries end in the dead-letter hook"
    );
    assert_eq!(report.dead_lettered, ALWAYS_FAILING as u64);

    assert_eq!(snapshot.accepted, (DELIVERIES + ALWAYS_FAILING) as u64);
    assert_eq!(snapshot.unavailable, refused as u64);
    assert_eq!(snapshot.handled, DELIVERIES as u64);
}

async fn within_long<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), future)
        .await
        .expect("the load test finished in time")
}
