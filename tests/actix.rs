//! The actix-web adapter through the public API: the extractors, `WebhookConfig`, and
//! `WebhookResource` storing deliveries for a `Worker` on the same store, with
//! `actix_web::test` and against a real server on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    reason = "helpers run inside tests, where a failed unwrap is a failed test"
)]

mod common;

use std::{
    future::{ready, Ready},
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
        Arc,
    },
    time::Duration,
};

use actix_web::{
    body::to_bytes,
    dev::Payload,
    error::{InternalError, PayloadError},
    http::{header, StatusCode},
    test, web, App, HttpMessage as _, HttpResponse, HttpServer, ResponseError,
};
use bytes::Bytes;
use common::within;
use futures_util::{
    stream::{self, StreamExt},
    Stream,
};
use printone_webhooks::{
    actix::{WebhookConfig, WebhookError, WebhookEvent, WebhookResource},
    sign, sign_raw,
    store::{Counts, DeliveryId, DeliveryState, MemoryStore, Store as _, StoredDelivery},
    worker::{Dispatcher, Handler, Metrics, RetryPolicy, Worker},
    BoxError, Delivery, ErrorKind, Secret, Verifier, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};

const SECRET: &str = "pO1_webhook_7f3KqV9xLm2Rt8Wz4Nc6Hb";
const ROUTE: &str = "/webhooks/printone";
const BODY: &str = r#"{"data":{"id":"ord_42","status":"order_created"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;

fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

fn config() -> WebhookConfig {
    WebhookConfig::new(Verifier::new(secret()))
}

fn signed(body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(ROUTE)
        .insert_header((SIGNATURE_HEADER.as_str(), sign(&secret(), body.as_bytes())))
        .set_payload(body.to_owned())
}

async fn delivery_handler(delivery: Delivery) -> HttpResponse {
    HttpResponse::Ok().body(delivery.secret_index().to_string())
}

async fn event_handler(WebhookEvent(event): WebhookEvent) -> HttpResponse {
    HttpResponse::Ok().body(event.data_id().unwrap_or("-").to_owned())
}

/// An app with both extractors: `ROUTE` (`Delivery`) and `/typed` (`WebhookEvent`).
macro_rules! app {
    ($config:expr) => {
        test::init_service(
            App::new()
                .app_data($config)
                .route(ROUTE, web::post().to(delivery_handler))
                .route("/typed", web::post().to(event_handler)),
        )
        .await
    };
}

/// An app with nothing but a `WebhookResource` at `ROUTE` storing into `store`, verifying
/// with the `WebhookConfig` found in `app_data`.
macro_rules! resource_app {
    ($config:expr, $store:expr) => {
        test::init_service(
            App::new()
                .app_data($config)
                .service(WebhookResource::new(ROUTE, $store.clone())),
        )
        .await
    };
}

/// A signed request whose body arrives as `parts`, without `Content-Length`.
fn streamed(parts: Vec<Result<&'static [u8], ()>>, stall: bool) -> actix_http::Request {
    let signed_body: Vec<u8> = parts
        .iter()
        .flatten()
        .flat_map(|p| p.iter().copied())
        .collect();
    let request = test::TestRequest::post()
        .uri(ROUTE)
        .insert_header((SIGNATURE_HEADER.as_str(), sign(&secret(), &signed_body)))
        .to_request();
    let chunks = stream::iter(parts.into_iter().map(|part| {
        part.map(Bytes::from_static)
            .map_err(|()| PayloadError::Incomplete(None))
    }));
    let body: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = if stall {
        Box::pin(chunks.chain(stream::pending()))
    } else {
        Box::pin(chunks)
    };
    request.replace_payload(Payload::from(body)).0
}

/// The id a store gives the delivery of `body` signed with the configured secret.
fn id_of(body: &str) -> DeliveryId {
    DeliveryId::from_signature(&sign_raw(&secret(), body.as_bytes()))
}

/// The stored record of the delivery of `body`.
async fn stored(store: &MemoryStore, body: &str) -> StoredDelivery {
    store
        .get(&id_of(body))
        .await
        .unwrap()
        .expect("the delivery is in the store")
}

/// A worker handler that succeeds and reports the `data.id` of every delivery it handles.
fn recorder() -> (impl Handler, mpsc::UnboundedReceiver<String>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let handler = move |delivery: Delivery| -> Ready<Result<(), BoxError>> {
        let (_, data_id) = delivery.summary();
        let _ = sender.send(data_id.unwrap_or_else(|| "-".to_owned()));
        ready(Ok(()))
    };
    (handler, receiver)
}

/// The `data.id` of the next delivery the recorder handles, within the test's patience.
async fn next_handled(handled: &mut mpsc::UnboundedReceiver<String>) -> String {
    within("the worker to handle a delivery", handled.recv())
        .await
        .expect("the worker is still running")
}

/// Waits until nothing is pending or leased in `store` any more.
async fn until_the_backlog_is_empty(store: &MemoryStore) {
    within("the worker to empty the backlog", async {
        while store.counts().await.unwrap().backlog() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// Retries after 1 ms, up to `attempts` attempts in all.
fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts).with_backoff(Duration::from_millis(1), Duration::from_millis(1))
}

fn order(id: usize) -> String {
    format!(r#"{{"data":{{"id":"ord_{id}"}},"event":"order_status_update"}}"#)
}

#[actix_web::test]
async fn every_known_vector_gets_its_status_through_the_delivery_extractor() {
    let mut checked = 0;
    for vector in &common::vectors::all() {
        let Ok(secrets) = vector
            .secrets
            .iter()
            .map(Secret::new)
            .collect::<Result<Vec<_>, _>>()
        else {
            assert_eq!(vector.expected.outcome, "empty_secret", "{}", vector.name);
            continue;
        };
        let service = app!(WebhookConfig::new(Verifier::with_secrets(secrets).unwrap()));
        let mut request = test::TestRequest::post().uri(ROUTE);
        for (name, value) in &vector.headers {
            request = request.append_header((name.as_str(), value.as_str()));
        }
        let response = test::call_service(
            &service,
            request.set_payload(vector.body.clone()).to_request(),
        )
        .await;
        let status = response.status();
        let body = to_bytes(response.into_body()).await.unwrap();
        match vector.expected.matched_secret {
            Some(index) => {
                assert_eq!(status, StatusCode::OK, "{}", vector.name);
                assert_eq!(body, index.to_string(), "{}", vector.name);
            }
            None => assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", vector.name),
        }
        checked += 1;
    }
    assert!(checked >= 20);
}

#[actix_web::test]
async fn accepts_the_current_and_the_legacy_header_name() {
    let service = app!(config());
    for name in [SIGNATURE_HEADER, LEGACY_SIGNATURE_HEADER] {
        let request = test::TestRequest::post()
            .uri(ROUTE)
            .insert_header((name.as_str(), sign(&secret(), BODY.as_bytes())))
            .set_payload(BODY)
            .to_request();
        assert_eq!(
            test::call_service(&service, request).await.status(),
            200,
            "{name}"
        );
    }
}

#[actix_web::test]
async fn rejects_a_tampered_body_with_401() {
    let service = app!(config());
    let request = signed(BODY)
        .set_payload(BODY.replace("ord_42", "ord_43"))
        .to_request();
    assert_eq!(test::call_service(&service, request).await.status(), 401);
}

#[actix_web::test]
async fn rejects_conflicting_signature_headers_with_401() {
    let service = app!(config());
    let request = signed(BODY)
        .insert_header((
            LEGACY_SIGNATURE_HEADER.as_str(),
            sign(&secret(), b"other body"),
        ))
        .to_request();
    assert_eq!(test::call_service(&service, request).await.status(), 401);
}

#[actix_web::test]
async fn rejects_a_declared_length_over_the_limit_with_413() {
    let service = app!(config().with_max_body_bytes(16));
    let request = signed(BODY)
        .insert_header((header::CONTENT_LENGTH, BODY.len()))
        .to_request();
    assert_eq!(test::call_service(&service, request).await.status(), 413);
}

#[actix_web::test]
async fn rejects_a_streamed_body_crossing_the_limit_with_413() {
    let service = app!(config().with_max_body_bytes(16));
    let request = streamed(vec![Ok(b"0123456789"), Ok(b"0123456789"), Ok(b"0")], false);
    assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
    assert_eq!(test::call_service(&service, request).await.status(), 413);
}

#[actix_web::test]
async fn accepts_a_streamed_body_within_the_limit() {
    let service = app!(config().with_max_body_bytes(16));
    let request = streamed(vec![Ok(b"0123456789"), Ok(b"012345")], false);
    assert_eq!(test::call_service(&service, request).await.status(), 200);
}

#[actix_web::test]
async fn answers_408_when_the_body_stalls() {
    let service = app!(config().with_body_timeout(Duration::from_millis(50)));
    let request = streamed(vec![Ok(b"{\"data\":")], true);
    assert_eq!(test::call_service(&service, request).await.status(), 408);
}

#[actix_web::test]
async fn answers_400_when_the_body_cannot_be_read() {
    let service = app!(config());
    let request = streamed(vec![Ok(b"{\"data\":"), Err(())], false);
    assert_eq!(test::call_service(&service, request).await.status(), 400);
}

#[actix_web::test]
async fn answers_500_and_names_the_missing_config() {
    let service =
        test::init_service(App::new().route(ROUTE, web::post().to(delivery_handler))).await;
    let response = test::call_service(&service, signed(BODY).to_request()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = to_bytes(response.into_body()).await.unwrap();
    assert_eq!(body, "webhook verification is not configured");
}

#[actix_web::test]
async fn finds_the_config_wrapped_in_web_data() {
    let service = test::init_service(
        App::new()
            .app_data(web::Data::new(config()))
            .route(ROUTE, web::post().to(delivery_handler)),
    )
    .await;
    let response = test::call_service(&service, signed(BODY).to_request()).await;
    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn the_typed_extractor_parses_an_authentic_body() {
    let service = app!(config());
    let request = signed(BODY).uri("/typed").to_request();
    let body = test::call_and_read_body(&service, request).await;
    assert_eq!(body, "ord_42");
}

#[actix_web::test]
async fn the_typed_extractor_answers_422_for_an_authentic_body_that_does_not_parse() {
    let service = app!(config());
    let request = signed("[1,2]").uri("/typed").to_request();
    assert_eq!(test::call_service(&service, request).await.status(), 422);
}

#[actix_web::test]
async fn the_delivery_extractor_accepts_an_authentic_body_that_does_not_parse() {
    let service = app!(config());
    let request = signed("not json").to_request();
    assert_eq!(test::call_service(&service, request).await.status(), 200);
}

#[actix_web::test]
async fn the_typed_extractor_still_refuses_a_forgery_with_401() {
    let service = app!(config());
    let request = signed(BODY).uri("/typed").set_payload("{}").to_request();
    assert_eq!(test::call_service(&service, request).await.status(), 401);
}

#[actix_web::test]
async fn an_error_handler_replaces_the_response() {
    let config = config().with_error_handler(|error: WebhookError, _| {
        let response = HttpResponse::build(error.status_code())
            .insert_header((
                "x-refused",
                error.kind().map_or("other", |kind| kind.as_str()),
            ))
            .finish();
        InternalError::from_response(error, response).into()
    });
    let service = app!(config);
    let request = signed(BODY).set_payload("tampered").to_request();
    let response = test::call_service(&service, request).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers().get("x-refused").unwrap(),
        "signature_mismatch"
    );
}

// ---- WebhookResource: store, then a worker on the same store handles ----

#[actix_web::test]
async fn a_delivery_is_answered_200_once_stored_and_handled_by_a_worker_on_the_same_store() {
    let store = MemoryStore::new();
    let resource = WebhookResource::new(ROUTE, store.clone()).with_config(config());
    let service = test::init_service(App::new().service(resource)).await;
    let response = test::call_service(&service, signed(BODY).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);

    let waiting = stored(&store, BODY).await;
    assert_eq!(waiting.state, DeliveryState::Pending);
    assert_eq!(waiting.event.as_deref(), Some("order_status_update"));
    assert_eq!(waiting.data_id.as_deref(), Some("ord_42"));
    assert_eq!(waiting.body.as_deref(), Some(BODY.as_bytes()));

    let (handler, mut handled) = recorder();
    let worker = Worker::new(store.clone(), handler).spawn();
    assert_eq!(next_handled(&mut handled).await, "ord_42");
    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();
    assert_eq!((report.handled, report.left), (1, 0));
    let done = stored(&store, BODY).await;
    assert_eq!((done.state, done.attempts), (DeliveryState::Done, 1));
    assert!(done.body.is_none(), "a handled delivery keeps only its id");
}

#[actix_web::test]
async fn a_redelivery_is_answered_200_and_handled_once() {
    let store = MemoryStore::new();
    let config = config();
    let metrics = config.metrics().clone();
    let service = resource_app!(config, store);
    for _ in 0..3 {
        let response = test::call_service(&service, signed(BODY).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(store.counts().await.unwrap().pending, 1, "stored once");

    let (handler, mut handled) = recorder();
    let worker = Worker::new(store.clone(), handler).spawn();
    assert_eq!(next_handled(&mut handled).await, "ord_42");
    until_the_backlog_is_empty(&store).await;
    // Print.one sends it again after it was handled: still 200, still not handled again.
    let response = test::call_service(&service, signed(BODY).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);

    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();
    assert_eq!(report.handled, 1);
    assert!(
        handled.try_recv().is_err(),
        "a re-delivery was handled again"
    );
    assert_eq!(stored(&store, BODY).await.state, DeliveryState::Done);
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.accepted, snapshot.duplicates), (1, 3));
}

#[actix_web::test]
async fn a_full_backlog_answers_503_with_retry_after_and_the_resend_is_accepted_later() {
    let store = MemoryStore::new().with_capacity(1);
    let config = config().with_retry_after(Duration::from_secs(7));
    let metrics = config.metrics().clone();
    let resource = WebhookResource::new(ROUTE, store.clone()).with_config(config);
    let service = test::init_service(App::new().service(resource)).await;
    let first = order(1);
    let second = order(2);
    assert_eq!(
        test::call_service(&service, signed(&first).to_request())
            .await
            .status(),
        StatusCode::OK
    );

    let response = test::call_service(&service, signed(&second).to_request()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "7");
    assert!(
        store.get(&id_of(&second)).await.unwrap().is_none(),
        "a refused delivery must not be stored"
    );
    assert_eq!(store.counts().await.unwrap().pending, 1);

    let (handler, mut handled) = recorder();
    let worker = Worker::new(store.clone(), handler).spawn();
    assert_eq!(next_handled(&mut handled).await, "ord_1");
    until_the_backlog_is_empty(&store).await;
    let response = test::call_service(&service, signed(&second).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK, "the re-send finds room");
    assert_eq!(next_handled(&mut handled).await, "ord_2");

    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();
    assert_eq!(report.handled, 2);
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.accepted, snapshot.unavailable), (2, 1));
}

#[actix_web::test]
async fn a_failing_handler_is_retried_until_it_succeeds() {
    let store = MemoryStore::new();
    let service = resource_app!(config(), store);
    assert_eq!(
        test::call_service(&service, signed(BODY).to_request())
            .await
            .status(),
        StatusCode::OK
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let handler = move |_: Delivery| {
        let call = counter.fetch_add(1, SeqCst);
        ready(if call < 2 {
            Err::<(), BoxError>("database down".into())
        } else {
            Ok(())
        })
    };
    let worker = Worker::new(store.clone(), handler)
        .with_retry(quick_retry(5))
        .spawn();
    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();
    assert_eq!(calls.load(SeqCst), 3);
    assert_eq!(
        (
            report.handled,
            report.attempts_failed,
            report.retries_scheduled,
            report.dead_lettered
        ),
        (1, 2, 2, 0)
    );
    let done = stored(&store, BODY).await;
    assert_eq!((done.state, done.attempts), (DeliveryState::Done, 3));
    let errors: Vec<_> = done.history.iter().map(|a| a.error.as_deref()).collect();
    assert_eq!(errors, [Some("database down"), Some("database down"), None]);
}

#[actix_web::test]
async fn a_dispatcher_handler_that_keeps_failing_is_dead_lettered_after_its_last_attempt() {
    let store = MemoryStore::new();
    let service = resource_app!(config(), store);
    assert_eq!(
        test::call_service(&service, signed(BODY).to_request())
            .await
            .status(),
        StatusCode::OK
    );
    let dispatcher = Dispatcher::new()
        .on_order_status_update(|_, _| async { Err::<(), BoxError>("database down".into()) });
    let worker = Worker::new(store.clone(), dispatcher)
        .with_retry(quick_retry(2))
        .spawn();
    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();
    assert_eq!(
        (
            report.handled,
            report.attempts_failed,
            report.retries_scheduled,
            report.dead_lettered
        ),
        (0, 2, 1, 1)
    );
    let dead = stored(&store, BODY).await;
    assert_eq!((dead.state, dead.attempts), (DeliveryState::Dead, 2));
    assert_eq!(dead.last_error.as_deref(), Some("database down"));
    assert_eq!(
        dead.body.as_deref(),
        Some(BODY.as_bytes()),
        "a dead letter keeps its body for a replay"
    );
}

#[actix_web::test]
async fn a_dispatchers_unparseable_body_is_dead_lettered_at_the_first_attempt() {
    // Authentic, but `status` is not a string: the typed `Order` cannot be read from it.
    let body = r#"{"data":{"id":"ord_7","status":7},"event":"order_status_update"}"#;
    let store = MemoryStore::new();
    let service = resource_app!(config(), store);
    let response = test::call_service(&service, signed(body).to_request()).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the body is parsed in the background, never on the request path"
    );
    let called = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&called);
    let dispatcher = Dispatcher::new().on_order_status_update(move |_, _| {
        flag.store(true, SeqCst);
        async { Ok::<(), BoxError>(()) }
    });
    let worker = Worker::new(store.clone(), dispatcher)
        .with_retry(quick_retry(5))
        .spawn();
    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();
    assert_eq!(
        (
            report.handled,
            report.attempts_failed,
            report.retries_scheduled,
            report.dead_lettered
        ),
        (0, 1, 0, 1)
    );
    assert!(!called.load(SeqCst), "the typed handler never saw it");
    let dead = stored(&store, body).await;
    assert_eq!((dead.state, dead.attempts), (DeliveryState::Dead, 1));
    assert_eq!(dead.event.as_deref(), Some("order_status_update"));
    assert_eq!(dead.data_id.as_deref(), Some("ord_7"));
    let reason = dead.last_error.unwrap();
    assert!(reason.contains("not a Print.one event"), "{reason}");
}

#[actix_web::test]
async fn the_resource_answers_405_with_allow_to_other_methods() {
    let store = MemoryStore::new();
    let config = config();
    let metrics = config.metrics().clone();
    let service = resource_app!(config, store);
    for request in [test::TestRequest::get(), test::TestRequest::put()] {
        let request = request
            .uri(ROUTE)
            .insert_header((SIGNATURE_HEADER.as_str(), sign(&secret(), BODY.as_bytes())))
            .set_payload(BODY)
            .to_request();
        let method = request.method().clone();
        let response = test::call_service(&service, request).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(
            response.headers().get(header::ALLOW).unwrap(),
            "POST",
            "{method}"
        );
    }
    assert_eq!(store.counts().await.unwrap(), Counts::default());
    assert_eq!(metrics.snapshot().rejected(ErrorKind::MethodNotAllowed), 2);
}

#[actix_web::test]
async fn the_resource_stores_nothing_for_a_forgery_and_counts_it_by_kind() {
    let store = MemoryStore::new();
    let config = config();
    let metrics = config.metrics().clone();
    let service = resource_app!(config, store);
    let forged = signed(BODY).set_payload("forged").to_request();
    assert_eq!(
        test::call_service(&service, forged).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(store.counts().await.unwrap(), Counts::default());
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.rejected(ErrorKind::SignatureMismatch), 1);
    assert_eq!(snapshot.accepted, 0);
}

#[actix_web::test]
async fn the_resource_verifies_with_the_config_in_app_data_when_it_has_none_of_its_own() {
    let store = MemoryStore::new();
    let service = test::init_service(
        App::new()
            .app_data(web::Data::new(config()))
            .service(WebhookResource::new(ROUTE, store.clone())),
    )
    .await;
    let response = test::call_service(&service, signed(BODY).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(stored(&store, BODY).await.state, DeliveryState::Pending);
}

#[actix_web::test]
async fn the_shared_metrics_count_accepted_duplicates_unavailable_and_handled() {
    let metrics = Metrics::new();
    let store = MemoryStore::new().with_capacity(1);
    let service = resource_app!(config().with_metrics(metrics.clone()), store);
    let requests = [
        signed(BODY),                       // stored
        signed(BODY),                       // a re-delivery
        signed(&order(2)),                  // the backlog is full
        signed(BODY).set_payload("forged"), // refused
    ];
    let mut answered = Vec::new();
    for request in requests {
        answered.push(
            test::call_service(&service, request.to_request())
                .await
                .status(),
        );
    }
    assert_eq!(answered, [200, 200, 503, 401]);

    let (handler, mut handled) = recorder();
    let worker = Worker::new(store.clone(), handler)
        .with_metrics(metrics.clone())
        .spawn();
    assert_eq!(next_handled(&mut handled).await, "ord_42");
    within("the worker to stop", worker.shutdown())
        .await
        .unwrap();

    let snapshot = metrics.snapshot();
    assert_eq!(
        (snapshot.accepted, snapshot.duplicates, snapshot.unavailable),
        (1, 1, 1)
    );
    assert_eq!(snapshot.rejected(ErrorKind::SignatureMismatch), 1);
    assert_eq!(snapshot.rejected_total(), 1);
    assert_eq!(
        (snapshot.handled, snapshot.failed, snapshot.dead_lettered),
        (1, 0, 0)
    );
}

// ---- against a real server ----

/// Sends raw HTTP/1.1 bytes and returns the status code and the head of the response.
async fn send_raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn post_head(body: &[u8], extra: &str) -> String {
    format!(
        "POST {ROUTE} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{}: {}\r\n{extra}\r\n",
        SIGNATURE_HEADER,
        sign(&secret(), body)
    )
}

async fn post(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    let head = post_head(body, &format!("content-length: {}\r\n", body.len()));
    within("the server to answer", send_raw(addr, &head, body)).await
}

/// The value of the header `name` in a raw response head.
fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Starts a real one-worker server on 127.0.0.1:0; returns its address, handle and task.
macro_rules! serve {
    ($factory:expr) => {{
        let server = HttpServer::new($factory)
            .workers(1)
            .disable_signals()
            .shutdown_timeout(10)
            .bind(("127.0.0.1", 0))
            .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        (addr, handle, actix_web::rt::spawn(server))
    }};
}

#[actix_web::test]
async fn a_real_server_stores_every_delivery_it_acknowledges_and_the_worker_handles_each_once() {
    let store = MemoryStore::new();
    let (handler, mut handled) = recorder();
    let worker = Worker::new(store.clone(), handler).spawn();
    let config = config();
    let served = store.clone();
    let (addr, handle, running) = serve!(move || App::new()
        .app_data(config.clone())
        .service(WebhookResource::new(ROUTE, served.clone())));
    for id in 0..10 {
        assert_eq!(post(addr, order(id).as_bytes()).await.0, 200);
    }
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();
    assert_eq!((report.handled, report.left), (10, 0));
    let mut ids = Vec::new();
    while let Ok(id) = handled.try_recv() {
        ids.push(id);
    }
    ids.sort();
    let mut expected: Vec<String> = (0..10).map(|id| format!("ord_{id}")).collect();
    expected.sort();
    assert_eq!(
        ids, expected,
        "every accepted delivery handled exactly once"
    );
    assert_eq!(store.counts().await.unwrap().done, 10);
}

#[actix_web::test]
async fn a_real_server_answers_503_while_the_backlog_is_full_and_200_once_there_is_room() {
    let store = MemoryStore::new().with_capacity(1);
    let config = config().with_retry_after(Duration::from_secs(3));
    let served = store.clone();
    let (addr, handle, running) = serve!(move || App::new()
        .service(WebhookResource::new(ROUTE, served.clone()).with_config(config.clone())));
    assert_eq!(post(addr, order(1).as_bytes()).await.0, 200);
    let (status, head) = post(addr, order(2).as_bytes()).await;
    assert_eq!(status, 503, "{head}");
    assert_eq!(header_value(&head, "retry-after"), Some("3"), "{head}");
    assert!(store.get(&id_of(&order(2))).await.unwrap().is_none());

    let (handler, mut handled) = recorder();
    let worker = Worker::new(store.clone(), handler).spawn();
    assert_eq!(next_handled(&mut handled).await, "ord_1");
    until_the_backlog_is_empty(&store).await;
    assert_eq!(post(addr, order(2).as_bytes()).await.0, 200);
    assert_eq!(next_handled(&mut handled).await, "ord_2");

    handle.stop(true).await;
    running.await.unwrap().unwrap();
    let report = within("the worker to stop", worker.shutdown())
        .await
        .unwrap();
    assert_eq!(report.handled, 2);
}

#[actix_web::test]
async fn a_real_server_refuses_a_chunked_body_over_the_limit_with_413() {
    let store = MemoryStore::new();
    let config = config().with_max_body_bytes(16);
    let served = store.clone();
    let (addr, handle, running) = serve!(move || App::new()
        .app_data(config.clone())
        .service(WebhookResource::new(ROUTE, served.clone())));
    let body = b"0123456789".repeat(3);
    let chunked = b"a\r\n0123456789\r\na\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
    let head = post_head(&body, "transfer-encoding: chunked\r\n");
    let (status, _) = within("the server to answer", send_raw(addr, &head, chunked)).await;
    assert_eq!(status, 413);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    assert_eq!(store.counts().await.unwrap(), Counts::default());
}

#[actix_web::test]
async fn a_real_server_answers_408_when_the_body_stalls() {
    let store = MemoryStore::new();
    let config = config().with_body_timeout(Duration::from_millis(100));
    let served = store.clone();
    let (addr, handle, running) = serve!(move || App::new()
        .app_data(config.clone())
        .service(WebhookResource::new(ROUTE, served.clone())));
    let head = post_head(b"x", "content-length: 100\r\n");
    let (status, _) = within("the server to answer", send_raw(addr, &head, b"{\"data\":")).await;
    assert_eq!(status, 408);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    assert_eq!(store.counts().await.unwrap(), Counts::default());
}
