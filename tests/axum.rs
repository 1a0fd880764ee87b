//! The layer and the store-backed receiver on a real axum 0.8 server on `127.0.0.1:0`, driven
//! by a hyper client, with a real memory store and worker behind it.

mod common;

use std::{
    collections::BTreeSet,
    convert::Infallible,
    future::{Future, IntoFuture as _},
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    routing::{post, MethodRouter},
    Router,
};
use bytes::Bytes;
use common::{order_body, secret, signature_of, within};
use futures_util::{stream, StreamExt as _};
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper_util::rt::TokioIo;
use printone_webhooks::{
    sign_raw,
    store::{Counts, DeliveryId, DeliveryState, Filter, MemoryStore, Store as _, StoredDelivery},
    tower::{Route, VerifyLayer, Webhook},
    worker::{RetryPolicy, Worker},
    BoxError, Delivery, Event, Verifier, EVENT_HEADER, SIGNATURE_HEADER,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot, watch},
    task::JoinSet,
};

const ROUTE: &str = "/webhooks/printone";

fn verify_layer() -> VerifyLayer {
    VerifyLayer::new(Verifier::new(secret()))
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

/// Sends one signed delivery per id at once; returns the ids answered 200 and the ids answered
/// 503 with their replies.
async fn send_all(addr: SocketAddr, ids: &[String]) -> (BTreeSet<String>, Vec<(String, Reply)>) {
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
            StatusCode::SERVICE_UNAVAILABLE => refused.push((id, reply)),
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

/// The recommended setup: the route verifies each delivery and answers 200 once `store` holds it.
fn receiver(store: &MemoryStore) -> Router {
    Router::new().route_service(ROUTE, verify_layer().store_in(store.clone()))
}

/// The id the store gives a delivery of `body`: its MAC under the configured secret.
fn id_of_body(body: &[u8]) -> DeliveryId {
    DeliveryId::from_signature(&sign_raw(&secret(), body))
}

/// The store's record of the delivery of `body`.
async fn record_of(store: &MemoryStore, body: &[u8]) -> StoredDelivery {
    store
        .get(&id_of_body(body))
        .await
        .expect("the memory store answers")
        .expect("the delivery is stored")
}

/// Waits until the worker settled everything waiting in `store`.
async fn until_drained(store: &MemoryStore) {
    within("the backlog to drain", async {
        while store.counts().await.expect("counts").backlog() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// An axum route for the worker: each call waits until `opened` is true, works for `work`,
/// then reports the event's `data.id` on the returned receiver.
fn gated_route(
    opened: watch::Receiver<bool>,
    work: Duration,
) -> (MethodRouter, mpsc::UnboundedReceiver<String>) {
    let (done, handled) = mpsc::unbounded_channel();
    let route = post(move |Webhook(event): Webhook<Event>| {
        let mut opened = opened.clone();
        let done = done.clone();
        async move {
            opened.wait_for(|open| *open).await.expect("the gate");
            tokio::time::sleep(work).await;
            done.send(id_of(&event)).expect("the test is listening");
        }
    });
    (route, handled)
}

/// Everything `handled` received so far, sorted.
fn received(handled: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(id) = handled.try_recv() {
        seen.push(id);
    }
    seen.sort();
    seen
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
async fn a_stored_delivery_is_answered_200_before_the_worker_runs_its_route() {
    let store = MemoryStore::new();
    let (gate, opened) = watch::channel(false);
    let (route, mut handled) = gated_route(opened, Duration::ZERO);
    let worker = Worker::new(store.clone(), Route::new(route)).spawn();
    let addr = serve(receiver(&store)).await;
    let body = order_body("ord_later");

    // The route is held at the gate: a 200 now proves it was not awaited.
    let reply = send(addr, signed(addr, &body)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        handled.try_recv().is_err(),
        "the route ran before the gate opened"
    );
    let waiting = record_of(&store, &body).await;
    assert!(
        matches!(
            waiting.state,
            DeliveryState::Pending | DeliveryState::Leased
        ),
        "{waiting:?}"
    );

    gate.send(true).expect("the route holds the gate");
    assert_eq!(
        within("the route", handled.recv()).await.as_deref(),
        Some("ord_later")
    );
    let report = within("the worker", worker.shutdown())
        .await
        .expect("the worker report");
    assert_eq!(
        (
            report.handled,
            report.attempts_failed,
            report.attempts_panicked
        ),
        (1, 0, 0)
    );
    assert_eq!(record_of(&store, &body).await.state, DeliveryState::Done);
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
async fn a_redelivery_is_answered_200_and_handled_once() {
    let store = MemoryStore::new();
    let layer = verify_layer();
    let app = Router::new().route_service(ROUTE, layer.store_in(store.clone()));
    let addr = serve(app).await;
    let body = order_body("ord_again");

    for attempt in ["first", "re-delivery while pending"] {
        let reply = send(addr, signed(addr, &body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{attempt}");
    }
    assert_eq!(store.counts().await.expect("counts").pending, 1);

    let (_gate, opened) = watch::channel(true);
    let (route, mut handled) = gated_route(opened, Duration::ZERO);
    let worker = Worker::new(store.clone(), Route::new(route)).spawn();
    assert_eq!(
        within("the route", handled.recv()).await.as_deref(),
        Some("ord_again")
    );
    until_drained(&store).await;
    let reply = send(addr, signed(addr, &body)).await;
    assert_eq!(reply.status, StatusCode::OK, "re-delivery once handled");

    let report = within("the worker", worker.shutdown())
        .await
        .expect("the worker report");
    assert_eq!(report.handled, 1);
    assert!(handled.try_recv().is_err(), "the re-delivery was handled");
    let snapshot = layer.metrics().snapshot();
    assert_eq!((snapshot.accepted, snapshot.duplicates), (1, 2));
}

#[tokio::test]
async fn a_full_backlog_answers_503_with_retry_after_and_each_resend_is_accepted_once_the_worker_made_room(
) {
    let store = MemoryStore::new().with_capacity(1);
    let (gate, opened) = watch::channel(false);
    let (route, mut handled) = gated_route(opened, Duration::ZERO);
    let worker = Worker::new(store.clone(), Route::new(route)).spawn();
    let layer = verify_layer().with_retry_after(Duration::from_secs(3));
    let addr = serve(Router::new().route_service(ROUTE, layer.store_in(store.clone()))).await;
    let all = ids("ord_full", 6);

    // The worker's route is held at the gate, so the one stored delivery keeps the backlog full.
    let (accepted, refused) = send_all(addr, &all).await;
    assert_eq!(accepted.len(), 1, "a backlog of 1 took {accepted:?}");
    assert_eq!(refused.len(), 5);
    for (id, reply) in &refused {
        assert_eq!(reply.headers[header::RETRY_AFTER], "3", "{id}");
    }
    let waiting = store.list(&Filter::default()).await.expect("list");
    let stored: BTreeSet<_> = waiting.iter().filter_map(|d| d.data_id.clone()).collect();
    assert_eq!(stored, accepted, "only the 200s are stored");

    // Print.one sends again after Retry-After; each re-send finds room once the worker drained.
    gate.send(true).expect("the route holds the gate");
    for (id, _) in &refused {
        until_drained(&store).await;
        let reply = send(addr, signed(addr, &order_body(id))).await;
        assert_eq!(reply.status, StatusCode::OK, "the re-sent {id}");
    }

    let report = within("the worker", worker.shutdown())
        .await
        .expect("the worker report");
    assert_eq!((report.handled, report.left), (6, 0));
    let mut all = all;
    all.sort();
    assert_eq!(received(&mut handled), all, "each delivery handled once");
}

#[tokio::test]
async fn a_failing_handler_is_retried_and_then_succeeds() {
    let store = MemoryStore::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let flaky = move |_: Delivery| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if call < 2 {
                Err::<(), BoxError>("the database is down".into())
            } else {
                Ok(())
            }
        }
    };
    let retry =
        RetryPolicy::new(5).with_backoff(Duration::from_millis(1), Duration::from_millis(4));
    let worker = Worker::new(store.clone(), flaky).with_retry(retry).spawn();
    let addr = serve(receiver(&store)).await;
    let body = order_body("ord_flaky");

    let reply = send(addr, signed(addr, &body)).await;
    assert_eq!(reply.status, StatusCode::OK);
    until_drained(&store).await;
    let report = within("the worker", worker.shutdown())
        .await
        .expect("the worker report");

    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        (
            report.handled,
            report.attempts_failed,
            report.retries_scheduled,
            report.dead_lettered
        ),
        (1, 2, 2, 0)
    );
    let record = record_of(&store, &body).await;
    assert_eq!((record.state, record.attempts), (DeliveryState::Done, 3));
    let errors: Vec<_> = record.history.iter().map(|a| a.error.as_deref()).collect();
    let down = Some("the database is down");
    assert_eq!(errors, [down, down, None]);
}

#[tokio::test]
async fn a_body_that_does_not_parse_as_the_routes_webhook_type_is_dead_lettered_at_the_first_attempt(
) {
    // Authentic, and an order_status_update, but `isBillable` is not a boolean.
    let body = Bytes::from_static(
        br#"{"data":{"id":"ord_shapeless","isBillable":"yes"},"event":"order_status_update"}"#,
    );
    let store = MemoryStore::new();
    let (_gate, opened) = watch::channel(true);
    let (route, mut handled) = gated_route(opened, Duration::ZERO);
    let retry =
        RetryPolicy::new(5).with_backoff(Duration::from_millis(1), Duration::from_millis(4));
    let worker = Worker::new(store.clone(), Route::new(route))
        .with_retry(retry)
        .spawn();
    let addr = serve(receiver(&store)).await;

    let reply = send(addr, signed(addr, &body)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the receiver stores authentic bodies without parsing them"
    );
    until_drained(&store).await;
    let report = within("the worker", worker.shutdown())
        .await
        .expect("the worker report");

    assert!(handled.try_recv().is_err(), "the route's handler ran");
    assert_eq!(
        (
            report.dead_lettered,
            report.attempts_failed,
            report.retries_scheduled,
            report.handled
        ),
        (1, 1, 0, 0)
    );
    let dead = store
        .list(&Filter {
            state: Some(DeliveryState::Dead),
            ..Filter::default()
        })
        .await
        .expect("list");
    assert_eq!(dead.len(), 1);
    let dead = &dead[0];
    assert_eq!(dead.id, id_of_body(&body));
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.event.as_deref(), Some("order_status_update"));
    assert_eq!(dead.data_id.as_deref(), Some("ord_shapeless"));
    assert_eq!(
        dead.last_error.as_deref(),
        Some("the route answered 422 Unprocessable Entity")
    );
    assert_eq!(
        dead.body.as_ref(),
        Some(&body),
        "a dead letter keeps its body"
    );
}

#[tokio::test]
async fn store_in_mounted_without_the_layer_answers_500_and_stores_nothing() {
    let store = MemoryStore::new();
    let bare = verify_layer().store_in(store.clone()).into_inner();
    let addr = serve(Router::new().route_service(ROUTE, bare)).await;

    let reply = send(addr, signed(addr, &order_body("ord_bare"))).await;

    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(store.counts().await.expect("counts"), Counts::default());
}

/// How many deliveries the drain tests send.
const DRAINED: usize = 8;

/// Serves the store-backed route until `shutdown` resolves, sends deliveries while the worker's
/// slow handler is held, runs `stop`, waits for the server to finish, then shuts the worker
/// down: every delivery that got its 200 must be handled, each once.
async fn every_delivery_that_got_200_is_handled_after(
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: impl Future<Output = ()>,
) {
    let store = MemoryStore::new();
    let (gate, opened) = watch::channel(false);
    let (route, mut handled) = gated_route(opened, Duration::from_millis(20));
    let worker = Worker::new(store.clone(), Route::new(route))
        .with_concurrency(2)
        .spawn();
    let (listener, addr) = listen().await;
    let server = tokio::spawn(
        axum::serve(listener, receiver(&store))
            .with_graceful_shutdown(shutdown)
            .into_future(),
    );

    let mut accepted = Vec::new();
    for id in ids("ord_drain", DRAINED) {
        let reply = send(addr, signed(addr, &order_body(&id))).await;
        assert_eq!(reply.status, StatusCode::OK, "{id}");
        accepted.push(id);
    }

    within("the stop", stop).await;
    within("the server to stop", server)
        .await
        .expect("the server task")
        .expect("the server");
    assert!(
        handled.try_recv().is_err(),
        "a handler finished before the drain"
    );
    assert_eq!(
        store.counts().await.expect("counts").backlog(),
        DRAINED as u64,
        "every delivery that got its 200 is stored"
    );

    let drain = tokio::spawn(worker.shutdown());
    gate.send(true).expect("the handlers hold the gate");
    let report = within("the drain", drain)
        .await
        .expect("the drain task")
        .expect("the worker report");

    accepted.sort();
    assert_eq!(report.handled, DRAINED as u64);
    assert_eq!(
        (
            report.attempts_failed,
            report.attempts_panicked,
            report.left
        ),
        (0, 0, 0)
    );
    assert_eq!(
        received(&mut handled),
        accepted,
        "every accepted delivery, each once"
    );
    assert_eq!(store.counts().await.expect("counts").done, DRAINED as u64);
}

#[tokio::test]
async fn graceful_shutdown_then_worker_shutdown_handles_every_delivery_that_got_200_exactly_once() {
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let stop = async move {
        stop.send(()).expect("the server is running");
    };
    every_delivery_that_got_200_is_handled_after(shutdown, stop).await;
}

/// A real SIGTERM, as docker, Kubernetes or systemd send it, caught by `shutdown_signal`.
#[cfg(unix)]
#[tokio::test]
async fn a_sigterm_stops_the_server_through_shutdown_signal_and_the_worker_drains_what_got_200() {
    use std::task::Poll;

    let (armed, listening) = oneshot::channel();
    let shutdown = async move {
        let mut signal = Box::pin(printone_webhooks::shutdown_signal());
        // Its first poll installs the signal handlers: only then may the signal be sent, or it
        // would end the test process.
        let fired =
            std::future::poll_fn(|cx| Poll::Ready(signal.as_mut().poll(cx).is_ready())).await;
        let _ = armed.send(());
        if !fired {
            signal.await;
        }
    };
    let stop = async move {
        listening.await.expect("the signal handlers are installed");
        let status = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(std::process::id().to_string())
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    };
    every_delivery_that_got_200_is_handled_after(shutdown, stop).await;
}
