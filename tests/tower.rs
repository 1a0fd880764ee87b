//! The tower layer, and its store-backed service with a real memory store and worker, driven
//! with `ServiceExt::oneshot` through the public API.

mod common;

use std::{
    convert::Infallible,
    fmt::Write as _,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use common::{order_body, secret, signature_of, within};
use futures_util::{stream, StreamExt as _};
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt as _, Full, StreamBody};
use printone_webhooks::{
    sign, sign_raw,
    store::{Counts, DeliveryId, DeliveryState, Filter, MemoryStore, Store as _, StoredDelivery},
    tower::{Acknowledge, Route, Verify, VerifyLayer},
    worker::{Metrics, RetryPolicy, Worker},
    BoxError, Delivery, Secret, SignatureHeader, Verifier, EVENT_HEADER, LEGACY_SIGNATURE_HEADER,
    SIGNATURE_HEADER, WEBHOOK_EVENT_HEADER,
};
use tokio::sync::mpsc;
use tower::{Layer as _, Service, ServiceExt as _};

/// What the inner service saw: the buffered body and the verified delivery of each call.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<(Bytes, Delivery)>>>,
}

impl Recorder {
    /// An inner service that records every request and answers 200 with `inner` as its body.
    fn service(
        &self,
    ) -> impl Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone
    {
        let seen = Arc::clone(&self.seen);
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let seen = Arc::clone(&seen);
            async move {
                let delivery = request
                    .extensions()
                    .get::<Delivery>()
                    .cloned()
                    .expect("the inner service gets the verified delivery");
                let body = request.into_body().collect().await?.to_bytes();
                seen.lock().expect("recorder lock").push((body, delivery));
                Ok(Response::new(Full::new(Bytes::from_static(b"inner"))))
            }
        })
    }

    fn calls(&self) -> usize {
        self.seen.lock().expect("recorder lock").len()
    }

    fn only(&self) -> (Bytes, Delivery) {
        let seen = self.seen.lock().expect("recorder lock");
        assert_eq!(seen.len(), 1, "the inner service was called once");
        seen[0].clone()
    }
}

fn verify_layer() -> VerifyLayer {
    VerifyLayer::new(Verifier::new(secret()))
}

/// A `POST` with `body` and the given headers.
fn post<B>(headers: &[(HeaderName, &str)], body: B) -> Request<B> {
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).expect("a valid header value");
        request.headers_mut().append(name.clone(), value);
    }
    request
}

/// A delivery as Print.one sends it: signed under the current header name, with its event.
fn signed(body: &Bytes) -> Request<Full<Bytes>> {
    post(
        &[
            (SIGNATURE_HEADER, &signature_of(body)),
            (EVENT_HEADER, "order_status_update"),
        ],
        Full::new(body.clone()),
    )
}

async fn text_of<B: Body>(response: Response<B>) -> String
where
    B::Error: std::fmt::Debug,
{
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the response body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("a UTF-8 response body")
}

/// Sends `request` through the layer around a fresh recorder.
async fn through_layer<B>(
    layer: &VerifyLayer,
    request: Request<B>,
) -> (Response<Full<Bytes>>, Recorder)
where
    B: Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    let recorder = Recorder::default();
    let response = within(
        "the layer",
        layer.layer(recorder.service()).oneshot(request),
    )
    .await
    .unwrap();
    (response, recorder)
}

/// A body that records whether it was ever polled.
struct Watched {
    polled: Arc<AtomicBool>,
    declared: u64,
}

impl Body for Watched {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.polled.store(true, Ordering::SeqCst);
        Poll::Ready(None)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.declared)
    }
}

/// A body arriving as `chunks`, with no declared length.
fn chunked(
    chunks: Vec<Bytes>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    StreamBody::new(stream::iter(
        chunks.into_iter().map(|chunk| Ok(Frame::data(chunk))),
    ))
}

fn split(body: &Bytes, size: usize) -> Vec<Bytes> {
    body.chunks(size).map(Bytes::copy_from_slice).collect()
}

#[tokio::test]
async fn a_valid_delivery_reaches_the_inner_service_with_its_body_and_delivery() {
    let body = order_body("ord_valid");
    let (response, recorder) = through_layer(&verify_layer(), signed(&body)).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text_of(response).await, "inner");
    let (seen_body, delivery) = recorder.only();
    assert_eq!(seen_body, body);
    assert_eq!(delivery.body(), &body);
    assert_eq!(delivery.secret_index(), 0);
    assert_eq!(delivery.event_header(), Some("order_status_update"));
    assert_eq!(delivery.event().unwrap().data_id(), Some("ord_valid"));
}

#[tokio::test]
async fn the_event_header_is_also_read_from_x_webhook_event() {
    let body = order_body("ord_event");
    let request = post(
        &[
            (SIGNATURE_HEADER, &signature_of(&body)),
            (WEBHOOK_EVENT_HEADER, "order_status_update"),
        ],
        Full::new(body),
    );
    let (response, recorder) = through_layer(&verify_layer(), request).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        recorder.only().1.event_header(),
        Some("order_status_update")
    );
}

#[tokio::test]
async fn a_tampered_body_is_401_and_never_reaches_the_inner_service() {
    let body = order_body("ord_tampered");
    let mut request = signed(&body);
    *request.body_mut() = Full::new(order_body("ord_tampereD"));
    let (response, recorder) = through_layer(&verify_layer(), request).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_ne!(text_of(response).await, "inner");
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn a_delivery_signed_with_another_secret_is_401() {
    let body = order_body("ord_other_secret");
    let other = Secret::new("pO1_webhook_someone_else").unwrap();
    let request = post(&[(SIGNATURE_HEADER, &sign(&other, &body))], Full::new(body));
    let (response, recorder) = through_layer(&verify_layer(), request).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn during_rotation_a_delivery_signed_with_the_second_secret_reports_index_1() {
    let old = Secret::new("pO1_webhook_old_secret").unwrap();
    let layer = VerifyLayer::new(Verifier::with_secrets([old, secret()]).unwrap());
    let body = order_body("ord_rotated");
    let (response, recorder) = through_layer(&layer, signed(&body)).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(recorder.only().1.secret_index(), 1);
}

#[tokio::test]
async fn the_legacy_signature_header_is_accepted_alone_and_next_to_the_current_one() {
    let body = order_body("ord_legacy");
    let signature = signature_of(&body);
    let legacy_only = post(
        &[(LEGACY_SIGNATURE_HEADER, &signature)],
        Full::new(body.clone()),
    );
    let both = post(
        &[
            (SIGNATURE_HEADER, &signature),
            (LEGACY_SIGNATURE_HEADER, &signature),
        ],
        Full::new(body.clone()),
    );

    for request in [legacy_only, both] {
        let (response, recorder) = through_layer(&verify_layer(), request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(recorder.only().0, body);
    }
}

#[tokio::test]
async fn conflicting_signature_headers_are_401_even_when_one_of_them_is_valid() {
    let body = order_body("ord_conflict");
    let valid = signature_of(&body);
    let other = signature_of(b"another body");
    let both_names = post(
        &[
            (SIGNATURE_HEADER, &valid),
            (LEGACY_SIGNATURE_HEADER, &other),
        ],
        Full::new(body.clone()),
    );
    let repeated = post(
        &[(SIGNATURE_HEADER, &valid), (SIGNATURE_HEADER, &other)],
        Full::new(body),
    );

    for request in [both_names, repeated] {
        let (response, recorder) = through_layer(&verify_layer(), request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn a_malformed_or_hex_signature_is_401() {
    let body = order_body("ord_malformed");
    let hex = sign_raw(&secret(), &body)
        .as_bytes()
        .iter()
        .fold(String::new(), |mut hex, byte| {
            write!(hex, "{byte:02x}").expect("writing to a String");
            hex
        });
    let unpadded = signature_of(&body).trim_end_matches('=').to_owned();

    for value in ["not a signature", "", hex.as_str(), unpadded.as_str()] {
        let request = post(&[(SIGNATURE_HEADER, value)], Full::new(body.clone()));
        let (response, recorder) = through_layer(&verify_layer(), request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{value:?}");
        assert_eq!(recorder.calls(), 0, "{value:?}");
    }
}

#[tokio::test]
async fn a_delivery_without_signature_is_401() {
    let body = order_body("ord_unsigned");
    let request = post(&[(EVENT_HEADER, "order_status_update")], Full::new(body));
    let (response, recorder) = through_layer(&verify_layer(), request).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn anything_but_post_is_405_with_allow_post() {
    for method in [Method::GET, Method::PUT, Method::HEAD] {
        let body = order_body("ord_method");
        let mut request = signed(&body);
        *request.method_mut() = method.clone();
        let (response, recorder) = through_layer(&verify_layer(), request).await;

        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()[header::ALLOW], "POST");
        assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_without_reading_the_body() {
    let polled = Arc::new(AtomicBool::new(false));
    let body = Watched {
        polled: Arc::clone(&polled),
        declared: 4096,
    };
    let request = post(
        &[
            (SIGNATURE_HEADER, &signature_of(b"")),
            (header::CONTENT_LENGTH, "4096"),
        ],
        body,
    );
    let layer = verify_layer().with_max_body_bytes(1024);
    let (response, recorder) = through_layer(&layer, request).await;

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!polled.load(Ordering::SeqCst), "the body was polled");
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn a_chunked_body_is_verified_across_its_chunks() {
    let body = order_body("ord_chunked");
    let request = post(
        &[(SIGNATURE_HEADER, &signature_of(&body))],
        chunked(split(&body, 7)),
    );
    let layer = verify_layer().with_max_body_bytes(body.len());
    let (response, recorder) = through_layer(&layer, request).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(recorder.only().0, body);
}

#[tokio::test]
async fn a_streamed_body_crossing_the_limit_is_413() {
    let body = Bytes::from(vec![b'x'; 4096]);
    let request = post(
        &[(SIGNATURE_HEADER, &signature_of(&body))],
        chunked(split(&body, 512)),
    );
    let layer = verify_layer().with_max_body_bytes(1024);
    let (response, recorder) = through_layer(&layer, request).await;

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stops_arriving_is_408_after_the_deadline() {
    let body = order_body("ord_stalled");
    let first_part = body.slice(..10);
    let stalled = StreamBody::new(
        stream::iter([Ok(Frame::data(first_part))])
            .chain(stream::pending::<Result<Frame<Bytes>, Infallible>>()),
    );
    let request = post(&[(SIGNATURE_HEADER, &signature_of(&body))], stalled);
    let layer = verify_layer().with_body_timeout(Duration::from_secs(2));
    let (response, recorder) = through_layer(&layer, request).await;

    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn a_custom_rejection_responder_answers_every_refusal() {
    let layer = verify_layer().with_rejection(|error| {
        let mut response =
            Response::new(Bytes::from(format!("{{\"error\":\"{}\"}}", error.kind())));
        *response.status_mut() = error.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    });
    let body = order_body("ord_custom");
    let mut tampered = signed(&body);
    *tampered.body_mut() = Full::new(Bytes::from_static(b"{}"));
    let mut get = signed(&body);
    *get.method_mut() = Method::GET;

    let (response, _) = through_layer(&layer, tampered).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(text_of(response).await, r#"{"error":"signature_mismatch"}"#);

    let (response, _) = through_layer(&layer, get).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(text_of(response).await, r#"{"error":"method_not_allowed"}"#);
}

#[tokio::test]
async fn a_refusal_is_a_response_and_inner_service_errors_pass_through() {
    let failing = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Err::<Response<Full<Bytes>>, _>(std::io::Error::other("inner failed"))
    });
    let service = verify_layer().layer(failing);
    let body = order_body("ord_errors");
    let mut tampered = signed(&body);
    *tampered.body_mut() = Full::new(Bytes::from_static(b"{}"));

    let refused = service.clone().oneshot(tampered).await;
    assert_eq!(refused.unwrap().status(), StatusCode::UNAUTHORIZED);
    let failed = service.oneshot(signed(&body)).await;
    assert_eq!(failed.unwrap_err().to_string(), "inner failed");
}

/// The id the store gives a delivery of `body`: its MAC under the configured secret.
fn id_of(body: &[u8]) -> DeliveryId {
    DeliveryId::from_signature(&sign_raw(&secret(), body))
}

/// The store's record of the delivery of `body`.
async fn record_of(store: &MemoryStore, body: &[u8]) -> StoredDelivery {
    store
        .get(&id_of(body))
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

/// Sends a signed delivery of `body` to `service` and returns the response.
async fn deliver(service: &Verify<Acknowledge>, body: &Bytes) -> Response<Full<Bytes>> {
    within("the response", service.clone().oneshot(signed(body)))
        .await
        .expect("the service is infallible")
}

/// Retries quickly, so that a test waits milliseconds for them.
fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts).with_backoff(Duration::from_millis(1), Duration::from_millis(4))
}

/// A handler reporting the `data.id` of each delivery it handles.
fn reporting(
    done: mpsc::UnboundedSender<String>,
) -> impl Fn(Delivery) -> std::future::Ready<Result<(), BoxError>> + Send + Sync + 'static {
    move |delivery: Delivery| {
        let id = delivery
            .summary()
            .1
            .expect("every test delivery has a data id");
        done.send(id).expect("the test is listening");
        std::future::ready(Ok(()))
    }
}

/// Everything `handled` received so far, sorted.
fn drained(handled: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(id) = handled.try_recv() {
        seen.push(id);
    }
    seen.sort();
    seen
}

/// A background route reporting each delivery it handles; it panics on a body containing `boom`
/// and fails with 500 on one containing `fail`.
fn background_route(
    done: mpsc::UnboundedSender<Delivery>,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        let done = done.clone();
        async move {
            let delivery = request.extensions().get::<Delivery>().cloned();
            let delivery = delivery.expect("the route gets the delivery");
            let text = String::from_utf8_lossy(delivery.body()).into_owned();
            assert!(!text.contains("boom"), "the route panicked on purpose");
            let status = if text.contains("fail") {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            done.send(delivery).expect("the test is listening");
            let mut response = Response::new(Full::default());
            *response.status_mut() = status;
            Ok(response)
        }
    })
}

#[tokio::test]
async fn a_stored_delivery_is_answered_200_and_then_handled_by_the_worker() {
    let store = MemoryStore::new();
    let service = verify_layer().store_in(store.clone());
    let body = order_body("ord_background");

    let response = deliver(&service, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let stored = record_of(&store, &body).await;
    assert_eq!(stored.state, DeliveryState::Pending);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.body.as_ref(), Some(&body));
    assert_eq!(stored.event.as_deref(), Some("order_status_update"));
    assert_eq!(stored.data_id.as_deref(), Some("ord_background"));
    assert_eq!(stored.event_header.as_deref(), Some("order_status_update"));
    assert_eq!(stored.signature_header, SignatureHeader::Current);
    assert_eq!(stored.secret_index, 0);

    // Only now does anything handle it: the 200 did not wait for a handler.
    let (done, mut handled) = mpsc::unbounded_channel();
    let worker = Worker::new(store.clone(), Route::new(background_route(done))).spawn();
    let seen = within("the route", handled.recv())
        .await
        .expect("the route ran");
    assert_eq!(seen.body(), &body);
    assert_eq!(seen.event_header(), Some("order_status_update"));
    assert_eq!(seen.id(), id_of(&body).short());

    let report = within("the worker", worker.shutdown()).await.unwrap();
    assert_eq!(
        (
            report.handled,
            report.attempts_failed,
            report.attempts_panicked,
            report.left
        ),
        (1, 0, 0, 0)
    );
    let handled = record_of(&store, &body).await;
    assert_eq!((handled.state, handled.attempts), (DeliveryState::Done, 1));
    assert_eq!(handled.body, None, "a handled delivery keeps only its id");
}

#[tokio::test]
async fn a_redelivery_is_answered_200_and_handled_once() {
    let metrics = Metrics::new();
    let store = MemoryStore::new();
    let service = verify_layer()
        .with_metrics(metrics.clone())
        .store_in(store.clone());
    let body = order_body("ord_again");

    for attempt in ["first", "re-delivery while pending"] {
        let response = deliver(&service, &body).await;
        assert_eq!(response.status(), StatusCode::OK, "{attempt}");
    }
    assert_eq!(store.counts().await.unwrap().pending, 1);

    let (done, mut handled) = mpsc::unbounded_channel();
    let worker = Worker::new(store.clone(), reporting(done))
        .with_metrics(metrics.clone())
        .spawn();
    assert_eq!(
        within("the handler", handled.recv()).await.as_deref(),
        Some("ord_again")
    );
    until_drained(&store).await;

    // Once handled, the same body (here under the legacy header name) is still recognised.
    let legacy = post(
        &[(LEGACY_SIGNATURE_HEADER, &signature_of(&body))],
        Full::new(body.clone()),
    );
    let response = within("the response", service.clone().oneshot(legacy))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "re-delivery once handled"
    );

    let report = within("the worker", worker.shutdown()).await.unwrap();
    assert_eq!(report.handled, 1);
    assert!(handled.try_recv().is_err(), "the re-delivery was handled");
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.backlog(), counts.done), (0, 1));
    let snapshot = metrics.snapshot();
    assert_eq!(
        (snapshot.accepted, snapshot.duplicates, snapshot.handled),
        (1, 2, 1)
    );
}

#[tokio::test]
async fn a_full_backlog_answers_503_with_retry_after_and_the_resend_is_accepted_once_the_worker_made_room(
) {
    let store = MemoryStore::new().with_capacity(2);
    let layer = verify_layer().with_retry_after(Duration::from_secs(7));
    let service = layer.store_in(store.clone());
    let ids = ["ord_q0", "ord_q1", "ord_q2", "ord_q3"];

    let mut statuses = Vec::new();
    for id in ids {
        let response = deliver(&service, &order_body(id)).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(response.headers()[header::RETRY_AFTER], "7", "{id}");
        }
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    let waiting = store.list(&Filter::default()).await.unwrap();
    let mut stored: Vec<_> = waiting.iter().filter_map(|d| d.data_id.clone()).collect();
    stored.sort();
    assert_eq!(stored, ["ord_q0", "ord_q1"], "only the 200s are stored");
    assert_eq!(layer.metrics().snapshot().unavailable, 2);

    let (done, mut handled) = mpsc::unbounded_channel();
    let worker = Worker::new(store.clone(), reporting(done)).spawn();
    until_drained(&store).await;
    for id in &ids[2..] {
        let response = deliver(&service, &order_body(id)).await;
        assert_eq!(response.status(), StatusCode::OK, "the re-sent {id}");
    }

    let report = within("the worker", worker.shutdown()).await.unwrap();
    assert_eq!((report.handled, report.left), (4, 0));
    assert_eq!(drained(&mut handled), ids, "each delivery handled once");
}

#[tokio::test]
async fn a_store_of_capacity_0_still_holds_one_delivery() {
    let store = MemoryStore::new().with_capacity(0);
    let service = verify_layer().store_in(store.clone());

    let first = deliver(&service, &order_body("ord_only")).await;
    let second = deliver(&service, &order_body("ord_second")).await;

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(second.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(store.counts().await.unwrap().pending, 1);
}

#[tokio::test]
async fn a_refused_delivery_is_never_stored() {
    let store = MemoryStore::new();
    let service = verify_layer().store_in(store.clone());
    let body = order_body("ord_refused");
    let mut tampered = signed(&body);
    *tampered.body_mut() = Full::new(order_body("ord_refuseD"));
    let unsigned = post(
        &[(EVENT_HEADER, "order_status_update")],
        Full::new(body.clone()),
    );
    let mut get = signed(&body);
    *get.method_mut() = Method::GET;

    for (request, status) in [
        (tampered, StatusCode::UNAUTHORIZED),
        (unsigned, StatusCode::UNAUTHORIZED),
        (get, StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let response = within("the response", service.clone().oneshot(request))
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
    assert_eq!(store.counts().await.unwrap(), Counts::default());
}

#[tokio::test]
async fn a_failing_handler_is_retried_and_then_succeeds() {
    // A route that answers 503 twice, as a handler whose database is briefly down would.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let flaky = tower::service_fn(move |_: Request<Full<Bytes>>| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut response = Response::new(Full::<Bytes>::default());
            if call < 2 {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, Infallible>(response)
        }
    });
    let store = MemoryStore::new();
    let service = verify_layer().store_in(store.clone());
    let body = order_body("ord_flaky");
    assert_eq!(deliver(&service, &body).await.status(), StatusCode::OK);

    let worker = Worker::new(store.clone(), Route::new(flaky))
        .with_retry(quick_retry(5))
        .spawn();
    let report = within("the worker", worker.shutdown()).await.unwrap();

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
    let unavailable = Some("the route answered 503 Service Unavailable");
    assert_eq!(errors, [unavailable, unavailable, None]);
    assert_eq!(record.last_error, None);
}

#[tokio::test]
async fn a_panicking_route_is_counted_and_the_worker_keeps_going() {
    let store = MemoryStore::new();
    let service = verify_layer().store_in(store.clone());
    for id in ["ord_boom", "ord_fail", "ord_after"] {
        let response = deliver(&service, &order_body(id)).await;
        assert_eq!(response.status(), StatusCode::OK, "{id}");
    }

    // Without retries each delivery is attempted once, so the counts are exact.
    let (done, mut handled) = mpsc::unbounded_channel();
    let worker = Worker::new(store.clone(), Route::new(background_route(done)))
        .with_retry(RetryPolicy::none())
        .spawn();
    let report = within("the worker", worker.shutdown()).await.unwrap();

    assert_eq!(report.handled, 1, "{report:?}");
    assert_eq!(report.attempts_panicked, 1, "{report:?}");
    assert_eq!(
        report.attempts_failed, 2,
        "failed attempts include the panic: {report:?}"
    );
    assert_eq!(report.dead_lettered, 2, "{report:?}");
    let mut reached: Vec<_> = std::iter::from_fn(|| handled.try_recv().ok())
        .map(Delivery::into_body)
        .collect();
    reached.sort();
    assert_eq!(reached, [order_body("ord_after"), order_body("ord_fail")]);

    let boom = record_of(&store, &order_body("ord_boom")).await;
    assert_eq!(boom.state, DeliveryState::Dead);
    assert_eq!(boom.last_error.as_deref(), Some("the handler panicked"));
    let fail = record_of(&store, &order_body("ord_fail")).await;
    assert_eq!(fail.state, DeliveryState::Dead);
    assert_eq!(
        fail.last_error.as_deref(),
        Some("the route answered 500 Internal Server Error")
    );
    let after = record_of(&store, &order_body("ord_after")).await;
    assert_eq!(after.state, DeliveryState::Done);
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn a_body_that_does_not_parse_as_the_routes_webhook_type_is_dead_lettered_at_the_first_attempt(
) {
    use printone_webhooks::{tower::Webhook, Event};

    // Authentic, and an order_status_update, but `isBillable` is not a boolean.
    let body = Bytes::from_static(
        br#"{"data":{"id":"ord_shapeless","isBillable":"yes"},"event":"order_status_update"}"#,
    );
    let called = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&called);
    let route = axum::routing::post(move |Webhook(_): Webhook<Event>| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(())
    });
    let store = MemoryStore::new();
    let service = verify_layer().store_in(store.clone());
    assert_eq!(
        deliver(&service, &body).await.status(),
        StatusCode::OK,
        "the intake stores authentic bodies without parsing them"
    );

    let worker = Worker::new(store.clone(), Route::new(route))
        .with_retry(quick_retry(5))
        .spawn();
    let report = within("the worker", worker.shutdown()).await.unwrap();

    assert_eq!(called.load(Ordering::SeqCst), 0, "the handler ran");
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
        .unwrap();
    assert_eq!(dead.len(), 1);
    let dead = &dead[0];
    assert_eq!(dead.id, id_of(&body));
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
async fn store_in_used_without_the_layer_answers_500_and_stores_nothing() {
    let store = MemoryStore::new();
    let bare = verify_layer().store_in(store.clone()).into_inner();

    let response = within(
        "the response",
        bare.oneshot(signed(&order_body("ord_bare"))),
    )
    .await
    .unwrap();

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(store.counts().await.unwrap(), Counts::default());
}

#[tokio::test]
async fn every_shared_vector_is_200_when_valid_and_401_otherwise() {
    let mut checked = 0;
    for vector in &common::vectors::all() {
        let name = &vector.name;
        let secrets: Result<Vec<_>, _> = vector.secrets.iter().map(Secret::new).collect();
        if vector.expected.outcome == "empty_secret" {
            assert!(secrets.is_err(), "{name}: an empty secret was accepted");
            continue;
        }
        let layer = VerifyLayer::new(Verifier::with_secrets(secrets.unwrap()).unwrap());
        let mut request = post(&[], Full::new(Bytes::from(vector.body.clone())));
        request.headers_mut().extend(vector.header_map());
        let (response, recorder) = through_layer(&layer, request).await;

        if vector.is_valid() {
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            let (body, delivery) = recorder.only();
            assert_eq!(body, vector.body.as_bytes(), "{name}");
            assert_eq!(
                Some(delivery.secret_index()),
                vector.expected.matched_secret,
                "{name}"
            );
        } else {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
            assert_eq!(recorder.calls(), 0, "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} vectors ran");
}

/// A SQLite store whose file is capped: past the cap it fails as a full disk would.
#[cfg(feature = "sqlite")]
mod full_disk {
    use super::*;
    use printone_webhooks::store::{SqliteOptions, SqliteStore};

    struct Folder(std::path::PathBuf);

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn capped_store(bytes: u64) -> (SqliteStore, Folder) {
        let folder = std::env::temp_dir().join(format!(
            "printone-full-disk-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&folder).expect("a temporary folder");
        let store = SqliteOptions::new(folder.join("deliveries.db"))
            .max_size(bytes)
            .open()
            .expect("opens");
        (store, Folder(folder))
    }

    #[tokio::test]
    async fn a_full_disk_answers_503_with_retry_after_and_the_resend_is_stored_once_space_returns()
    {
        let (store, _folder) = capped_store(48 * 1024);
        let service = verify_layer()
            .with_retry_after(Duration::from_secs(4))
            .store_in(store.clone());
        let mut accepted = Vec::new();
        let mut refused = None;
        for n in 0..500 {
            let body = order_body(&format!("ord_full_{n}_{}", "x".repeat(400)));
            let response = deliver(&service, &body).await;
            if response.status() == StatusCode::OK {
                accepted.push(body);
                continue;
            }
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "4");
            refused = Some(body);
            break;
        }
        let refused = refused.expect("the capped file fills up");
        assert!(!accepted.is_empty());
        let counts = store.counts().await.unwrap();
        assert_eq!(
            counts.pending,
            accepted.len() as u64,
            "nothing stored was lost"
        );
        assert!(store.get(&id_of(&refused)).await.unwrap().is_none());

        store.set_max_size(64 * 1024 * 1024).await.unwrap();
        assert_eq!(deliver(&service, &refused).await.status(), StatusCode::OK);
        assert_eq!(
            deliver(&service, &refused).await.status(),
            StatusCode::OK,
            "a re-send"
        );
        assert_eq!(
            store.counts().await.unwrap().pending,
            accepted.len() as u64 + 1
        );
    }
}
