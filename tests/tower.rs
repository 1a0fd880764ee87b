//! The tower layer and its hand-off services, driven with `ServiceExt::oneshot` through the public API.

mod common;

use std::{
    convert::Infallible,
    fmt::Write as _,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
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
    sign, sign_raw, Delivery, Handoff, HandoffError, RetryPolicy, Secret, Verifier, VerifyLayer,
    Worker, EVENT_HEADER, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER, WEBHOOK_EVENT_HEADER,
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
    B::Error: Into<printone_webhooks::BoxError>,
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

#[tokio::test]
async fn a_full_channel_answers_503_with_retry_after_and_the_receiver_gets_exactly_the_accepted_deliveries(
) {
    let layer = verify_layer().with_retry_after(Duration::from_secs(7));
    let (service, mut receiver) = layer.channel(2).unwrap();

    let mut statuses = Vec::new();
    for id in ["ord_q0", "ord_q1", "ord_q2", "ord_q3"] {
        let response = service
            .clone()
            .oneshot(signed(&order_body(id)))
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        }
        statuses.push(response.status());
    }
    drop(service);

    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    let mut accepted = Vec::new();
    while let Some(delivery) = within("the receiver", receiver.recv()).await {
        accepted.push(delivery.into_body());
    }
    assert_eq!(accepted, [order_body("ord_q0"), order_body("ord_q1")]);
}

#[tokio::test]
async fn a_channel_whose_receiver_is_gone_answers_503() {
    let (service, receiver) = verify_layer().channel(4).unwrap();
    drop(receiver);
    let response = service
        .oneshot(signed(&order_body("ord_closed")))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
}

#[test]
fn a_channel_or_queue_of_capacity_0_is_refused() {
    assert!(verify_layer().channel(0).is_err());
    assert!(Worker::new(0).is_err());
}

/// A sink that fails or keeps the delivery, to show [`Handoff`] is the extension point.
#[derive(Clone, Default)]
struct Sink {
    failing: bool,
    kept: Arc<Mutex<Vec<Bytes>>>,
}

impl Handoff<Delivery> for Sink {
    fn hand_off(
        &self,
        delivery: Delivery,
    ) -> impl std::future::Future<Output = Result<(), HandoffError>> + Send {
        let result = if self.failing {
            Err(HandoffError::Failed("the store is down".into()))
        } else {
            self.kept
                .lock()
                .expect("sink lock")
                .push(delivery.into_body());
            Ok(())
        };
        std::future::ready(result)
    }
}

#[tokio::test]
async fn a_custom_hand_off_gets_200_when_it_keeps_the_delivery_and_503_when_it_fails() {
    let working = Sink::default();
    let failing = Sink {
        failing: true,
        ..Sink::default()
    };
    let body = order_body("ord_sink");

    let kept = verify_layer()
        .hand_off_to(working.clone())
        .oneshot(signed(&body))
        .await
        .unwrap();
    let refused = verify_layer()
        .hand_off_to(failing)
        .oneshot(signed(&body))
        .await
        .unwrap();

    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(*working.kept.lock().unwrap(), [body]);
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
}

/// A background route reporting each body it handles; it panics on a body containing `boom`
/// and fails with 500 on one containing `fail`.
fn background_route(
    done: mpsc::UnboundedSender<Bytes>,
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
            let body = delivery.expect("the route gets the delivery").into_body();
            let text = String::from_utf8_lossy(&body).into_owned();
            assert!(!text.contains("boom"), "the route panicked on purpose");
            let status = if text.contains("fail") {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            done.send(body).expect("the test is listening");
            let mut response = Response::new(Full::default());
            *response.status_mut() = status;
            Ok(response)
        }
    })
}

#[tokio::test]
async fn in_background_answers_200_first_and_runs_the_route_after() {
    let (queue, worker) = Worker::new(4).unwrap();
    let (done, mut handled) = mpsc::unbounded_channel();
    let service = verify_layer()
        .in_background(queue)
        .layer(background_route(done));
    let body = order_body("ord_background");

    let response = within("the 200", service.oneshot(signed(&body)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        handled.try_recv().is_err(),
        "the route ran before the worker was started"
    );

    let worker = worker.spawn();
    assert_eq!(within("the route", handled.recv()).await, Some(body));
    let report = within("the worker", worker.shutdown()).await.unwrap();
    assert_eq!((report.handled, report.failed, report.panicked), (1, 0, 0));
}

#[tokio::test]
async fn a_panicking_background_route_is_counted_and_the_worker_keeps_going() {
    let (queue, worker) = Worker::new(8).unwrap();
    // Without retries each delivery is attempted once, so the counts are exact.
    let worker = worker.with_retry(RetryPolicy::none()).spawn();
    let (done, mut handled) = mpsc::unbounded_channel();
    let service = verify_layer()
        .in_background(queue)
        .layer(background_route(done));

    for id in ["ord_boom", "ord_fail", "ord_after"] {
        let response = service
            .clone()
            .oneshot(signed(&order_body(id)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{id}");
    }
    assert_eq!(
        within("the failing route", handled.recv()).await,
        Some(order_body("ord_fail"))
    );
    assert_eq!(
        within("the route after the panic", handled.recv()).await,
        Some(order_body("ord_after"))
    );

    drop(service);
    let report = within("the worker", worker.shutdown()).await.unwrap();
    assert_eq!(report.handled, 1, "{report:?}");
    assert_eq!(report.panicked, 1, "{report:?}");
    assert_eq!(
        report.failed, 2,
        "failed attempts include the panic: {report:?}"
    );
    assert_eq!(report.dead_lettered, 2, "{report:?}");
}

#[tokio::test]
async fn after_worker_shutdown_in_background_answers_503() {
    let (queue, worker) = Worker::new(4).unwrap();
    let (done, _handled) = mpsc::unbounded_channel();
    let service = verify_layer()
        .in_background(queue)
        .layer(background_route(done));
    let report = within("the worker", worker.spawn().shutdown())
        .await
        .unwrap();
    assert_eq!(report.handled, 0);

    let response = service
        .oneshot(signed(&order_body("ord_late")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_hand_off_service_used_without_the_layer_answers_500() {
    let body = order_body("ord_unverified");
    let (channel, mut receiver) = verify_layer().channel(4).unwrap();
    let bare_channel = channel.into_inner();
    let response = bare_channel.oneshot(signed(&body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        receiver.try_recv().is_err(),
        "an unverified delivery was handed over"
    );

    let (queue, worker) = Worker::new(4).unwrap();
    let (done, mut handled) = mpsc::unbounded_channel();
    let bare_background = verify_layer()
        .in_background(queue)
        .layer(background_route(done))
        .into_inner();
    let response = bare_background.oneshot(signed(&body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let report = within("the worker", worker.spawn().shutdown())
        .await
        .unwrap();
    assert_eq!(report.handled + report.failed + report.panicked, 0);
    assert!(handled.try_recv().is_err());
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
