//! The layer on a real axum 0.8 server on `127.0.0.1:0`, driven by a hyper client.

mod common;

use std::{
    collections::BTreeSet,
    convert::Infallible,
    future::IntoFuture as _,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{routing::post, Router};
use bytes::Bytes;
use common::{order_body, signature_of, within};
use futures_util::{stream, StreamExt as _};
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper_util::rt::TokioIo;
use printone_webhooks::{
    BoxError, Delivery, Event, Verifier, VerifyLayer, Webhook, Worker, EVENT_HEADER,
    SIGNATURE_HEADER,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot, watch},
    task::JoinSet,
};

const ROUTE: &str = "/webhooks/printone";

fn verify_layer() -> VerifyLayer {
    VerifyLayer::new(Verifier::new(common::secret()))
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("the bound address");
    (listener, addr)
}

/// Serves `app` until the test ends.
async fn serve(app: Router) -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(axum::serve(listener, app).into_future());
    addr
}

/// What the client saw.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

/// Sends one request on a fresh HTTP/1.1 connection and reads the whole response.
async fn send<B>(addr: SocketAddr, request: Request<B>) -> Reply
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(connection);
    let response = within("the response", sender.send_request(request))
        .await
        .expect("a response");
    let (parts, body) = response.into_parts();
    let body = within("the response body", body.collect())
        .await
        .expect("the response body")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A `POST` to the webhook route with the given signature and body.
fn webhook_request<B>(addr: SocketAddr, signature: &str, body: B) -> Request<B> {
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    *request.uri_mut() = ROUTE.parse().expect("a valid path");
    let headers = request.headers_mut();
    let host = HeaderValue::from_str(&addr.to_string()).expect("a valid host");
    headers.insert(header::HOST, host);
    let signature = HeaderValue::from_str(signature).expect("a valid signature value");
    headers.insert(SIGNATURE_HEADER, signature);
    headers.insert(
        EVENT_HEADER,
        HeaderValue::from_static("order_status_update"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    request
}

/// A delivery as Print.one sends it.
fn signed(addr: SocketAddr, body: &Bytes) -> Request<Full<Bytes>> {
    webhook_request(addr, &signature_of(body), Full::new(body.clone()))
}

/// A body that sends `chunks` and then never ends (the client keeps the request open).
fn then_stall(
    chunks: Vec<Bytes>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let sent = stream::iter(chunks.into_iter().map(|chunk| Ok(Frame::data(chunk))));
    StreamBody::new(sent.chain(stream::pending()))
}

/// Sends one signed delivery per id at once; returns the ids answered 200 and the 503 replies.
async fn send_all(addr: SocketAddr, ids: &[String]) -> (BTreeSet<String>, Vec<Reply>) {
    let mut requests = JoinSet::new();
    for id in ids {
        let id = id.clone();
        requests.spawn(async move {
            let reply = send(addr, signed(addr, &order_body(&id))).await;
            (id, reply)
        });
    }
    let mut accepted = BTreeSet::new();
    let mut refused = Vec::new();
    while let Some(joined) = requests.join_next().await {
        let (id, reply) = joined.expect("the request task");
        match reply.status {
            StatusCode::OK => assert!(accepted.insert(id)),
            StatusCode::SERVICE_UNAVAILABLE => refused.push(reply),
            other => panic!("unexpected status {other} for {id}"),
        }
    }
    (accepted, refused)
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}_{n}")).collect()
}

/// The `data.id` of a verified delivery.
fn id_of(event: &Event) -> String {
    event
        .data_id()
        .expect("every test delivery has an id")
        .to_owned()
}

async fn describe(delivery: Delivery, Webhook(event): Webhook<Event>) -> String {
    format!(
        "{} {} secret={} event_header={}",
        event.name(),
        id_of(&event),
        delivery.secret_index(),
        delivery.event_header().unwrap_or("-")
    )
}

#[tokio::test]
async fn router_layer_verifies_and_handlers_extract_the_delivery_and_typed_event() {
    let app = Router::new()
        .route(ROUTE, post(describe))
        .layer(verify_layer());
    let addr = serve(app).await;
    let body = order_body("ord_axum");

    let accepted = send(addr, signed(addr, &body)).await;
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(
        accepted.text,
        "order_status_update ord_axum secret=0 event_header=order_status_update"
    );

    let tampered = webhook_request(
        addr,
        &signature_of(&body),
        Full::new(order_body("ord_forged")),
    );
    let refused = send(addr, tampered).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let mut get = signed(addr, &body);
    *get.method_mut() = Method::GET;
    let wrong_method = send(addr, get).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.headers[header::ALLOW], "POST");
}

#[tokio::test]
async fn a_route_layered_in_background_answers_200_before_its_handler_runs() {
    let (queue, worker) = Worker::new(8).expect("a queue");
    let worker = worker.spawn();
    let (gate, opened) = watch::channel(false);
    let (done, mut handled) = mpsc::unbounded_channel();
    let held = move |Webhook(event): Webhook<Event>| {
        let mut opened = opened.clone();
        let done = done.clone();
        async move {
            opened.wait_for(|open| *open).await.expect("the gate");
            done.send(id_of(&event)).expect("the test is listening");
        }
    };
    let app = Router::new().route(ROUTE, post(held).layer(verify_layer().in_background(queue)));
    let addr = serve(app).await;

    // The handler is held at the gate: a 200 now proves it was not awaited.
    let reply = send(addr, signed(addr, &order_body("ord_later"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        handled.try_recv().is_err(),
        "the handler ran before the gate opened"
    );

    gate.send(true).expect("the handler holds the gate");
    assert_eq!(
        within("the handler", handled.recv()).await.as_deref(),
        Some("ord_later")
    );
    let report = within("the worker", worker.shutdown())
        .await
        .expect("the worker report");
    assert_eq!((report.handled, report.failed, report.panicked), (1, 0, 0));
}

/// A handler that reports each call on the returned receiver.
fn counting_handler() -> (
    impl Fn() -> std::future::Ready<()> + Clone + Send + Sync + 'static,
    mpsc::UnboundedReceiver<()>,
) {
    let (calls, called) = mpsc::unbounded_channel::<()>();
    let handler = move || {
        calls.send(()).expect("the test is listening");
        std::future::ready(())
    };
    (handler, called)
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let (handler, mut called) = counting_handler();
    let app = Router::new()
        .route(ROUTE, post(handler))
        .layer(verify_layer().with_max_body_bytes(1024));
    let addr = serve(app).await;

    let body = Bytes::from(vec![b'x'; 1536]);
    let chunks = vec![body.slice(..512), body.slice(512..1024), body.slice(1024..)];
    let mut request = webhook_request(addr, &signature_of(&body), then_stall(chunks));
    request.headers_mut().insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    let reply = send(addr, request).await;

    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(called.try_recv().is_err(), "the handler was called");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_after_the_configured_deadline() {
    let (handler, mut called) = counting_handler();
    let app = Router::new()
        .route(ROUTE, post(handler))
        .layer(verify_layer().with_body_timeout(Duration::from_millis(200)));
    let addr = serve(app).await;

    let body = order_body("ord_stalled");
    let mut request = webhook_request(
        addr,
        &signature_of(&body),
        then_stall(vec![body.slice(..20)]),
    );
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let reply = send(addr, request).await;

    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT);
    assert!(called.try_recv().is_err(), "the handler was called");
}

#[tokio::test]
async fn a_saturated_channel_answers_503_with_retry_after_and_200_only_for_received_deliveries() {
    let layer = verify_layer().with_retry_after(Duration::from_secs(3));
    let (service, mut receiver) = layer.channel(1).expect("a channel");
    let addr = serve(Router::new().route_service(ROUTE, service)).await;

    // Nobody drains the receiver while the deliveries arrive.
    let (accepted, refused) = send_all(addr, &ids("ord_sat", 6)).await;

    assert_eq!(accepted.len(), 1);
    assert_eq!(refused.len(), 5);
    for reply in &refused {
        assert_eq!(reply.headers[header::RETRY_AFTER], "3");
    }
    let mut drained = BTreeSet::new();
    while let Ok(delivery) = receiver.try_recv() {
        let event = delivery.event().expect("a Print.one envelope");
        assert!(drained.insert(id_of(&event)), "received twice");
    }
    assert_eq!(drained, accepted);
}

#[tokio::test]
async fn a_saturated_background_queue_never_answers_200_for_a_delivery_it_will_not_handle() {
    let (queue, worker) = Worker::new(1).expect("a queue");
    let worker = worker.spawn();
    let (gate, opened) = watch::channel(false);
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let blocked = move |Webhook(event): Webhook<Event>| {
        let mut opened = opened.clone();
        let seen = Arc::clone(&seen);
        async move {
            opened.wait_for(|open| *open).await.expect("the gate");
            seen.lock().expect("lock").push(id_of(&event));
        }
    };
    let layer = verify_layer().in_background(queue);
    let addr = serve(Router::new().route(ROUTE, post(blocked).layer(layer))).await;

    let (accepted, refused) = send_all(addr, &ids("ord_blocked", 8)).await;
    assert!(!refused.is_empty(), "a blocked queue of 1 took all 8");
    assert!(refused
        .iter()
        .all(|reply| reply.headers.contains_key(header::RETRY_AFTER)));

    gate.send(true).expect("the handlers hold the gate");
    let report = within("the worker", worker.shutdown())
        .await
        .expect("the worker report");
    let handled: BTreeSet<_> = handled.lock().expect("lock").iter().cloned().collect();
    assert_eq!(
        report.handled,
        u64::try_from(accepted.len()).expect("small")
    );
    assert_eq!(handled, accepted);
}

#[tokio::test]
async fn graceful_shutdown_handles_every_delivery_that_got_200_exactly_once() {
    let (queue, worker) = Worker::new(16).expect("a queue");
    let worker = worker.with_concurrency(2).spawn();
    let (gate, opened) = watch::channel(false);
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let slow = move |Webhook(event): Webhook<Event>| {
        let mut opened = opened.clone();
        let seen = Arc::clone(&seen);
        async move {
            opened.wait_for(|open| *open).await.expect("the gate");
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen.lock().expect("lock").push(id_of(&event));
        }
    };
    let app = Router::new().route(ROUTE, post(slow).layer(verify_layer().in_background(queue)));
    let (listener, addr) = listen().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );

    let mut accepted = Vec::new();
    for id in ids("ord_drain", 8) {
        let reply = send(addr, signed(addr, &order_body(&id))).await;
        if reply.status == StatusCode::OK {
            accepted.push(id);
        }
    }
    assert_eq!(accepted.len(), 8);

    stop.send(()).expect("the server is running");
    within("the server to stop", server)
        .await
        .expect("the server task")
        .expect("the server");
    assert!(handled.lock().expect("lock").is_empty());

    let drain = tokio::spawn(worker.shutdown());
    gate.send(true).expect("the handlers hold the gate");
    let report = within("the drain", drain)
        .await
        .expect("the drain task")
        .expect("the worker report");

    let mut handled = handled.lock().expect("lock").clone();
    handled.sort();
    accepted.sort();
    assert_eq!(report.handled, 8);
    assert_eq!((report.failed, report.panicked), (0, 0));
    assert_eq!(handled, accepted, "every accepted delivery, each once");
}
