//! The actix-web adapter through the public API: extractors, `WebhookResource` and
//! `worker_queues`, with `actix_web::test` and against a real server on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    reason = "helpers run inside tests, where a failed unwrap is a failed test"
)]

mod common;

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    thread::{self, ThreadId},
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
use futures_util::{
    stream::{self, StreamExt},
    Stream,
};
use printone_webhooks::{
    sign, worker_queues, BoxError, Delivery, Dispatcher, ErrorKind, RetryPolicy, Secret, Verifier,
    WebhookConfig, WebhookError, WebhookEvent, WebhookResource, Worker, LEGACY_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
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

#[actix_web::test]
async fn the_resource_acknowledges_with_200_once_handed_over() {
    let (resource, mut deliveries) = WebhookResource::channel(ROUTE, 4).unwrap();
    let service = test::init_service(App::new().service(resource.with_config(config()))).await;
    let response = test::call_service(&service, signed(BODY).to_request()).await;
    assert_eq!(response.status(), 200);
    let delivery = deliveries.try_recv().unwrap();
    assert_eq!(delivery.event().unwrap().data_id(), Some("ord_42"));
}

#[actix_web::test]
async fn the_resource_answers_503_with_retry_after_when_the_queue_is_full() {
    let (resource, mut deliveries) = WebhookResource::channel(ROUTE, 1).unwrap();
    let config = config().with_retry_after(Duration::from_secs(7));
    let service = test::init_service(App::new().service(resource.with_config(config))).await;
    assert_eq!(
        test::call_service(&service, signed(BODY).to_request())
            .await
            .status(),
        200
    );
    let other = BODY.replace("ord_42", "ord_43");
    let response = test::call_service(&service, signed(&other).to_request()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "7");
    assert!(deliveries.try_recv().is_ok());
    assert!(
        deliveries.try_recv().is_err(),
        "a refused delivery must not be queued"
    );
}

#[actix_web::test]
async fn the_resource_acknowledges_a_redelivery_without_handing_it_over_again() {
    let (resource, mut deliveries) = WebhookResource::channel(ROUTE, 4).unwrap();
    let config = config();
    let metrics = config.metrics().clone();
    let service = test::init_service(App::new().service(resource.with_config(config))).await;
    for _ in 0..3 {
        let response = test::call_service(&service, signed(BODY).to_request()).await;
        assert_eq!(response.status(), 200);
    }
    assert!(deliveries.try_recv().is_ok());
    assert!(
        deliveries.try_recv().is_err(),
        "a re-delivery was handed over again"
    );
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.accepted, snapshot.duplicates), (1, 2));
}

#[actix_web::test]
async fn the_resource_counts_refusals_by_kind() {
    let (resource, _deliveries) = WebhookResource::channel(ROUTE, 4).unwrap();
    let config = config();
    let metrics = config.metrics().clone();
    let service = test::init_service(App::new().service(resource.with_config(config))).await;
    let forged = signed(BODY).set_payload("forged").to_request();
    assert_eq!(test::call_service(&service, forged).await.status(), 401);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.rejected(ErrorKind::SignatureMismatch), 1);
    assert_eq!(snapshot.accepted, 0);
}

#[actix_web::test]
async fn the_resource_with_a_dispatcher_retries_and_dead_letters_a_failing_handler() {
    let (queue, worker) = Worker::new(4).unwrap();
    let letters = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&letters);
    let worker = worker
        .with_retry(
            RetryPolicy::new(2).with_backoff(Duration::from_millis(1), Duration::from_millis(1)),
        )
        .with_dead_letter(move |letter| {
            sink.lock().unwrap().push(letter.attempts());
            async {}
        })
        .spawn();
    let dispatcher = Dispatcher::new(queue)
        .on_order_status_update(|_, _| async { Err::<(), BoxError>("database down".into()) });
    let resource = WebhookResource::new(ROUTE, dispatcher).with_config(config());
    let service = test::init_service(App::new().service(resource)).await;
    assert_eq!(
        test::call_service(&service, signed(BODY).to_request())
            .await
            .status(),
        200
    );
    let report = worker.shutdown().await.unwrap();
    assert_eq!((report.failed, report.dead_lettered), (2, 1));
    assert_eq!(*letters.lock().unwrap(), [2]);
}

#[actix_web::test]
async fn the_resource_answers_503_when_the_receiver_is_gone() {
    let (resource, deliveries) = WebhookResource::channel(ROUTE, 4).unwrap();
    drop(deliveries);
    let service = test::init_service(App::new().app_data(config()).service(resource)).await;
    let response = test::call_service(&service, signed(BODY).to_request()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
}

#[actix_web::test]
async fn the_resource_answers_405_with_allow_to_other_methods() {
    let (resource, mut deliveries) = WebhookResource::channel(ROUTE, 4).unwrap();
    let service = test::init_service(App::new().app_data(config()).service(resource)).await;
    let request = test::TestRequest::get().uri(ROUTE).to_request();
    let response = test::call_service(&service, request).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers().get(header::ALLOW).unwrap(), "POST");
    assert!(deliveries.try_recv().is_err());
}

#[actix_web::test]
async fn the_resource_hands_nothing_over_for_a_forgery() {
    let (resource, mut deliveries) = WebhookResource::channel(ROUTE, 4).unwrap();
    let service = test::init_service(App::new().app_data(config()).service(resource)).await;
    let request = signed(BODY).set_payload("forged").to_request();
    assert_eq!(test::call_service(&service, request).await.status(), 401);
    assert!(deliveries.try_recv().is_err());
}

// ---- against a real server ----

/// Sends raw HTTP/1.1 bytes and returns the status code of the response.
async fn send_raw(addr: SocketAddr, head: &str, body: &[u8]) -> u16 {
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
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn post_head(body: &[u8], extra: &str) -> String {
    format!(
        "POST {ROUTE} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{}: {}\r\n{extra}\r\n",
        SIGNATURE_HEADER,
        sign(&secret(), body)
    )
}

async fn post(addr: SocketAddr, body: &[u8]) -> u16 {
    send_raw(
        addr,
        &post_head(body, &format!("content-length: {}\r\n", body.len())),
        body,
    )
    .await
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

fn order(id: usize) -> String {
    format!(r#"{{"data":{{"id":"ord_{id}"}},"event":"order_status_update"}}"#)
}

type Handled = Arc<Mutex<Vec<(String, ThreadId)>>>;

/// The recommended consumer: records what it handled, and on which thread, after `delay`.
fn recorder(
    handled: &Handled,
    delay: Duration,
) -> impl Fn(Delivery) -> Pin<Box<dyn std::future::Future<Output = ()>>> + Clone + Send + 'static {
    let handled = Arc::clone(handled);
    move |delivery: Delivery| {
        let handled = Arc::clone(&handled);
        Box::pin(async move {
            actix_web::rt::time::sleep(delay).await;
            let event = delivery.event().unwrap();
            let id = event.data_id().unwrap_or("-").to_owned();
            handled.lock().unwrap().push((id, thread::current().id()));
        })
    }
}

#[actix_web::test]
async fn a_real_server_finishes_every_accepted_delivery_after_a_graceful_stop() {
    let handled = Handled::default();
    let (queues, leftovers) =
        worker_queues(64, recorder(&handled, Duration::from_millis(20))).unwrap();
    let config = config();
    let (addr, handle, running) = serve!(move || App::new()
        .app_data(config.clone())
        .service(WebhookResource::new(ROUTE, queues.spawn())));
    for id in 0..10 {
        assert_eq!(post(addr, order(id).as_bytes()).await, 200);
    }
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    leftovers.finish().await;
    let mut ids: Vec<String> = handled
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..10).map(|id| format!("ord_{id}")).collect();
    expected.sort();
    assert_eq!(
        ids, expected,
        "every accepted delivery handled exactly once"
    );
}

#[actix_web::test]
async fn worker_queues_run_the_consumer_on_the_worker_thread_that_accepted() {
    let handled = Handled::default();
    let (queues, leftovers) = worker_queues(8, recorder(&handled, Duration::ZERO)).unwrap();
    let config = config();
    let (addr, handle, running) = serve!(move || App::new()
        .app_data(config.clone())
        .route(
            "/thread",
            web::get().to(|| async { format!("{:?}", thread::current().id()) })
        )
        .service(WebhookResource::new(ROUTE, queues.spawn())));
    assert_eq!(post(addr, order(1).as_bytes()).await, 200);
    for _ in 0..500 {
        if !handled.lock().unwrap().is_empty() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let head = "GET /thread HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    leftovers.finish().await;
    let handled = handled.lock().unwrap();
    let (_, consumer_thread) = handled.first().expect("the delivery was handled");
    assert_ne!(*consumer_thread, thread::current().id());
    assert!(
        response.ends_with(&format!("{consumer_thread:?}")),
        "{response}"
    );
}

#[actix_web::test]
async fn a_real_server_with_one_consumer_drains_its_channel_after_stopping() {
    let (resource, mut deliveries) = WebhookResource::channel(ROUTE, 16).unwrap();
    let resource = Arc::new(Mutex::new(Some(resource)));
    let config = config();
    let (addr, handle, running) = serve!(move || {
        let mut app = App::new().app_data(config.clone());
        if let Some(resource) = resource.lock().unwrap().take() {
            app = app.service(resource);
        }
        app
    });
    for id in 0..5 {
        assert_eq!(post(addr, order(id).as_bytes()).await, 200);
    }
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    let mut count = 0;
    while deliveries.recv().await.is_some() {
        count += 1;
    }
    assert_eq!(count, 5);
}

#[actix_web::test]
async fn a_real_server_answers_503_with_retry_after_when_saturated() {
    let (sender, mut deliveries) = tokio::sync::mpsc::channel(1);
    let config = config();
    let (addr, handle, running) = serve!(move || App::new()
        .app_data(config.clone())
        .service(WebhookResource::new(ROUTE, sender.clone())));
    assert_eq!(post(addr, order(1).as_bytes()).await, 200);
    assert_eq!(post(addr, order(2).as_bytes()).await, 503);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    assert!(deliveries.recv().await.is_some());
    assert!(
        deliveries.recv().await.is_none(),
        "only the acknowledged delivery was queued"
    );
}

#[actix_web::test]
async fn a_real_server_refuses_a_chunked_body_over_the_limit_with_413() {
    let (sender, _deliveries) = tokio::sync::mpsc::channel(4);
    let config = config().with_max_body_bytes(16);
    let (addr, handle, running) = serve!(move || App::new()
        .app_data(config.clone())
        .service(WebhookResource::new(ROUTE, sender.clone())));
    let body = b"0123456789".repeat(3);
    let chunked = b"a\r\n0123456789\r\na\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
    let status = send_raw(
        addr,
        &post_head(&body, "transfer-encoding: chunked\r\n"),
        chunked,
    )
    .await;
    assert_eq!(status, 413);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
}

#[actix_web::test]
async fn a_real_server_answers_408_when_the_body_stalls() {
    let (sender, _deliveries) = tokio::sync::mpsc::channel(4);
    let config = config().with_body_timeout(Duration::from_millis(100));
    let (addr, handle, running) = serve!(move || App::new()
        .app_data(config.clone())
        .service(WebhookResource::new(ROUTE, sender.clone())));
    let status = send_raw(
        addr,
        &post_head(b"x", "content-length: 100\r\n"),
        b"{\"data\":",
    )
    .await;
    assert_eq!(status, 408);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
}
