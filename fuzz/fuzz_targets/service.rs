//! The tower service fed random requests: methods, header sets, bodies split into frames with
//! pauses, stalls and errors, small limits and short deadlines, in front of a plain inner
//! service, the background worker or a channel.
//!
//! Runs on a current-thread tokio runtime with paused time, so a stalled body reaches its
//! deadline at once and a hang shows up as a failed virtual-time bound.
//!
//! Invariants: every response has a documented status; a non-`POST` gets 405; a declared
//! length over the limit gets 413; a 200 only ever follows a body that was read to its end and
//! verifies under a configured secret; the inner service, queue or channel only ever sees
//! verified requests, and no more than the 200s it answered.
#![no_main]

use std::{
    convert::Infallible,
    future::Future as _,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use printone_webhooks::{
    sign, Delivery, Freshness, RetryPolicy, Secret, Verifier, VerifyLayer, Worker,
    LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER,
};
use tokio::time::{sleep, timeout, Sleep};
use tower_layer::Layer;
use tower_service::Service;

/// The statuses the README documents.
const DOCUMENTED: [u16; 9] = [200, 400, 401, 405, 408, 413, 422, 500, 503];

/// How long one input may take in virtual time before it counts as a hang.
const HANG: Duration = Duration::from_secs(3600);
/// The same, for inputs that run on the real clock.
const REAL_HANG: Duration = Duration::from_secs(5);
/// The longest delay, in milliseconds, of an input that runs on the real clock.
const REAL_MAX_MS: u16 = 20;

#[derive(Debug, Arbitrary)]
enum Mode {
    /// The layer around a service that answers 200.
    Plain,
    /// `in_background` with a running `Worker` (queue capacity 1 + n % 4).
    Background(u8),
    /// `in_background` with a worker that never runs: the queue fills up.
    Stuck(u8),
    /// `channel(1 + n % 4)`.
    Channel(u8),
}

#[derive(Debug, Arbitrary)]
enum Name {
    Signature,
    Legacy,
    ContentLength,
    Event,
    ContentType,
    Other(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Step {
    Data(Vec<u8>),
    /// Returns `Pending` once and wakes itself: a frame split across polls.
    Yield,
    /// Waits this many milliseconds of (virtual) time.
    Wait(u16),
    Trailers,
    Error,
    /// Never sends anything again.
    Stall,
    /// Sends empty data frames forever, each one ready at once (legal for an `http_body::Body`).
    Endless,
}

#[derive(Debug, Arbitrary)]
struct Req {
    method: u8,
    headers: Vec<(Name, Vec<u8>)>,
    steps: Vec<Step>,
    /// Signs the concatenated data with this secret (index modulo the count), under the
    /// legacy name when the flag is set.
    sign_with: Option<(u8, bool)>,
    /// Sets `Content-Length` to the real length of the data.
    declare_length: bool,
}

#[derive(Debug, Arbitrary)]
struct Input {
    mode: Mode,
    secrets: Vec<Vec<u8>>,
    limit: u16,
    timeout_ms: u16,
    freshness: bool,
    requests: Vec<Req>,
}

fuzz_target!(|input: Input| {
    // A body that is always ready keeps the runtime busy, so paused time would never advance:
    // such inputs run on the real clock, with every delay cut to a few milliseconds.
    let real_time = input
        .requests
        .iter()
        .any(|req| req.steps.iter().any(|step| matches!(step, Step::Endless)));
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(!real_time)
        .build()
    else {
        return;
    };
    let hang = if real_time { REAL_HANG } else { HANG };
    runtime.block_on(async {
        timeout(hang, run(input, real_time))
            .await
            .expect("an input hung the service");
    });
});

async fn run(input: Input, real_time: bool) {
    let secrets: Vec<Secret> = input
        .secrets
        .iter()
        .take(3)
        .filter_map(|s| Secret::new(s).ok())
        .collect();
    let Ok(mut verifier) = Verifier::with_secrets(secrets.clone()) else {
        return;
    };
    if input.freshness {
        // The check reads the system clock: most fuzzed bodies are undated or stale (422).
        verifier = verifier.with_freshness(Freshness::new(Duration::from_secs(60)));
    }
    let check = Verifier::with_secrets(secrets.clone()).expect("at least one secret");
    let limit = usize::from(input.limit % 2048);
    let max_ms = if real_time { REAL_MAX_MS } else { 5000 };
    let layer = VerifyLayer::new(verifier)
        .with_max_body_bytes(limit)
        .with_body_timeout(Duration::from_millis(u64::from(input.timeout_ms % max_ms)));
    let requests: Vec<Req> = input.requests.into_iter().take(4).collect();
    let ctx = Ctx {
        secrets: &secrets,
        check: &check,
        limit,
        layer: &layer,
        max_wait_ms: if real_time { REAL_MAX_MS } else { u16::MAX },
    };
    match input.mode {
        Mode::Plain => plain(&ctx, requests).await,
        Mode::Background(n) => background(&ctx, requests, n, true).await,
        Mode::Stuck(n) => background(&ctx, requests, n, false).await,
        Mode::Channel(n) => channel(&ctx, requests, n).await,
    }
}

struct Ctx<'a> {
    secrets: &'a [Secret],
    check: &'a Verifier,
    limit: usize,
    layer: &'a VerifyLayer,
    max_wait_ms: u16,
}

async fn plain(ctx: &Ctx<'_>, requests: Vec<Req>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = counting_inner(Arc::clone(&calls));
    let mut service = ctx.layer.layer(inner);
    let oks = send_all(ctx, &mut service, requests).await;
    assert_eq!(calls.load(Ordering::Relaxed), oks);
}

async fn background(ctx: &Ctx<'_>, requests: Vec<Req>, capacity: u8, running: bool) {
    let Ok((queue, worker)) = Worker::new(1 + usize::from(capacity % 4)) else {
        return;
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = counting_inner(Arc::clone(&calls));
    let metrics = worker.metrics().clone();
    let layer = ctx.layer.clone().with_metrics(metrics.clone());
    let mut service = layer.in_background(queue).layer(inner);
    // A worker that is not running keeps its queue open, so the queue fills up (503).
    let (handle, _parked) = if running {
        (Some(worker.with_retry(RetryPolicy::none()).spawn()), None)
    } else {
        (None, Some(worker))
    };
    let oks = send_all(ctx, &mut service, requests).await;
    let snapshot = metrics.snapshot();
    assert!(snapshot.accepted as usize <= oks);
    assert_eq!((snapshot.accepted + snapshot.duplicates) as usize, oks);
    drop(service);
    if let Some(handle) = handle {
        let report = handle.shutdown().await.expect("the worker finishes");
        assert_eq!(report.handled, snapshot.accepted);
        assert_eq!(calls.load(Ordering::Relaxed) as u64, snapshot.accepted);
    }
}

async fn channel(ctx: &Ctx<'_>, requests: Vec<Req>, capacity: u8) {
    let Ok((mut service, mut receiver)) = ctx.layer.channel(1 + usize::from(capacity % 4)) else {
        return;
    };
    let oks = send_all(ctx, &mut service, requests).await;
    drop(service);
    let mut handed = 0;
    while let Some(delivery) = receiver.recv().await {
        assert!(ctx
            .check
            .verify_signature(*delivery.signature(), delivery.body())
            .is_ok());
        handed += 1;
    }
    assert!(handed <= oks);
}

/// Sends every request in turn; returns how many were answered 200.
async fn send_all<S>(ctx: &Ctx<'_>, service: &mut S, requests: Vec<Req>) -> usize
where
    S: Service<Request<Steps>, Response = Response<Full<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    let mut oks = 0;
    for req in requests {
        let expect = Expect::of(ctx, &req);
        let request = build(ctx, req);
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .expect("the service is ready");
        let response = service.call(request).await.expect("refusals are responses");
        let status = response.status();
        assert!(
            DOCUMENTED.contains(&status.as_u16()),
            "undocumented {status}"
        );
        expect.check(status);
        oks += usize::from(status == StatusCode::OK);
    }
    oks
}

/// What is known in advance about the answer to a request.
struct Expect {
    not_post: bool,
    declared_too_large: bool,
    /// The body arrives whole and within the limit, and verifies.
    may_succeed: bool,
}

impl Expect {
    fn of(ctx: &Ctx<'_>, req: &Req) -> Self {
        let method = method_of(req.method);
        let data = data_of(&req.steps);
        let complete = !req
            .steps
            .iter()
            .any(|step| matches!(step, Step::Error | Step::Stall | Step::Endless));
        let headers = headers_of(ctx.secrets, req, &data);
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| std::str::from_utf8(v.as_bytes().trim_ascii()).ok())
            .and_then(|v| v.parse::<u64>().ok());
        Self {
            not_post: method != Method::POST,
            declared_too_large: declared.is_some_and(|len| len > ctx.limit as u64),
            may_succeed: complete
                && data.len() <= ctx.limit
                && ctx.check.verify(&headers, &data).is_ok(),
        }
    }

    fn check(&self, status: StatusCode) {
        if self.not_post {
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        } else if self.declared_too_large {
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        } else if status == StatusCode::OK {
            assert!(
                self.may_succeed,
                "200 for a request that cannot be authentic"
            );
        }
    }
}

fn method_of(n: u8) -> Method {
    match n % 8 {
        0..=2 => Method::POST,
        3 => Method::GET,
        4 => Method::PUT,
        5 => Method::HEAD,
        6 => Method::OPTIONS,
        _ => Method::from_bytes(b"PRINT").unwrap_or(Method::PATCH),
    }
}

fn data_of(steps: &[Step]) -> Vec<u8> {
    let mut data = Vec::new();
    for step in steps {
        match step {
            Step::Data(chunk) => data.extend_from_slice(chunk),
            Step::Error | Step::Stall | Step::Endless => break,
            _ => {}
        }
    }
    data
}

fn headers_of(secrets: &[Secret], req: &Req, data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in req.headers.iter().take(8) {
        let name = match name {
            Name::Signature => SIGNATURE_HEADER,
            Name::Legacy => LEGACY_SIGNATURE_HEADER,
            Name::ContentLength => header::CONTENT_LENGTH,
            Name::Event => printone_webhooks::EVENT_HEADER,
            Name::ContentType => header::CONTENT_TYPE,
            Name::Other(bytes) => match HeaderName::from_bytes(bytes) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    if let Some((index, legacy)) = req.sign_with {
        let secret = &secrets[usize::from(index) % secrets.len()];
        let name = if legacy {
            LEGACY_SIGNATURE_HEADER
        } else {
            SIGNATURE_HEADER
        };
        if let Ok(value) = HeaderValue::from_str(&sign(secret, data)) {
            headers.append(name, value);
        }
    }
    if req.declare_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
    }
    headers
}

fn build(ctx: &Ctx<'_>, req: Req) -> Request<Steps> {
    let data = data_of(&req.steps);
    let headers = headers_of(ctx.secrets, &req, &data);
    let mut request = Request::new(Steps {
        steps: req.steps.into_iter().take(64).rev().collect(),
        sleeping: None,
        max_wait_ms: ctx.max_wait_ms,
    });
    *request.method_mut() = method_of(req.method);
    *request.headers_mut() = headers;
    request
}

/// A request body played from a list of steps.
struct Steps {
    /// Reversed, so the next step is popped from the end.
    steps: Vec<Step>,
    sleeping: Option<Pin<Box<Sleep>>>,
    max_wait_ms: u16,
}

#[derive(Debug)]
struct Broken;

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client went away")
    }
}

impl std::error::Error for Broken {}

impl Body for Steps {
    type Data = Bytes;
    type Error = Broken;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        loop {
            if let Some(sleeping) = self.sleeping.as_mut() {
                if sleeping.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleeping = None;
            }
            let Some(step) = self.steps.pop() else {
                return Poll::Ready(None);
            };
            return match step {
                Step::Data(chunk) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk))))),
                Step::Yield => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Step::Wait(ms) => {
                    let ms = u64::from(ms.min(self.max_wait_ms));
                    self.sleeping = Some(Box::pin(sleep(Duration::from_millis(ms))));
                    continue;
                }
                Step::Trailers => Poll::Ready(Some(Ok(Frame::trailers(HeaderMap::new())))),
                Step::Error => Poll::Ready(Some(Err(Broken))),
                Step::Stall => {
                    self.steps.push(Step::Stall);
                    Poll::Pending
                }
                Step::Endless => {
                    self.steps.push(Step::Endless);
                    Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
                }
            };
        }
    }
}

/// A synchronous inner service, cloneable as the layer needs.
/// An inner service that requires a verified delivery and counts its calls.
fn counting_inner(
    calls: Arc<AtomicUsize>,
) -> ServiceFn<impl Fn(Request<Full<Bytes>>) -> Response<Full<Bytes>> + Clone + Send + 'static> {
    ServiceFn(move |request: Request<Full<Bytes>>| {
        assert!(request.extensions().get::<Delivery>().is_some());
        calls.fetch_add(1, Ordering::Relaxed);
        Response::new(Full::new(Bytes::new()))
    })
}

#[derive(Clone)]
struct ServiceFn<F>(F);

impl<F> Service<Request<Full<Bytes>>> for ServiceFn<F>
where
    F: Fn(Request<Full<Bytes>>) -> Response<Full<Bytes>> + Clone + Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        std::future::ready(Ok((self.0)(request)))
    }
}
