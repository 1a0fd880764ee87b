//! The tower service fed random requests: methods, header sets, bodies split into frames with
//! pauses, stalls and errors, small limits and short deadlines, in front of a plain inner
//! service, or as the terminal `store_in` service over a small `MemoryStore` with and without a
//! `Worker` draining it.
//!
//! Every input runs on one current-thread tokio runtime with paused time, kept for the whole
//! process: a stalled body reaches its deadline at once, a hang shows up as a failed
//! virtual-time bound, and nothing waits on the real clock.
//!
//! The oracle asserts only what the crate documents (`VerifyLayer`, `VerifyLayer::store_in`,
//! `ErrorKind::status`, `Store`, `WorkerHandle::shutdown`):
//!
//! - every response has a status the mode can answer;
//! - anything but `POST` gets 405; a single `Content-Length` over the limit gets 413;
//! - a 200 only ever answers a request that can be authentic: a `POST` whose body arrived whole
//!   within the limit and verifies under a configured secret;
//! - a request that is authentic, complete and within the limit (by its body and by every
//!   `Content-Length` it carries) is never refused with 400, 401, 405 or 413;
//! - the inner service is called once for each 200 and never otherwise, with the verified body;
//! - the store holds a request's delivery after its 200, and a refused request (anything but a
//!   200) stores nothing; a 503 comes only with a full backlog and with `Retry-After`;
//! - everything stored or handled is an authentic body, as sent; a worker handles every stored
//!   delivery before its shutdown returns.
//!
//! A failed assertion names the request that broke it in words (see `words.rs`).

mod body;
#[cfg(test)]
mod seeds;
mod words;

use std::{
    collections::{HashMap, HashSet},
    fmt,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll, Waker},
    time::Duration,
};

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::Full;
use printone_webhooks::{
    sign,
    store::{Counts, DeliveryId, DeliveryState, Filter, MemoryStore, Store},
    tower::VerifyLayer,
    worker::{RetryPolicy, Worker},
    BoxError, Delivery, Freshness, Secret, Verified, Verifier, VerifyError,
    LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER,
};
use tokio::{runtime::Runtime, time::timeout};
use tower_layer::Layer;
use tower_service::Service;

use self::body::Steps;

/// The most body steps a request plays; the rest of its steps are never sent.
///
/// Everything about a request (the frames its body sends, the data it signs and declares, what
/// the oracle expects of it) is derived from the steps [`played`] keeps, so the harness judges
/// and signs exactly what it sends.
pub const MAX_STEPS: usize = 64;
/// The most headers of the input a request carries (before the signature and length the
/// harness adds).
pub const MAX_HEADERS: usize = 8;
/// The most requests one input sends.
pub const MAX_REQUESTS: usize = 4;
/// The most secrets the verifier is given.
pub const MAX_SECRETS: usize = 3;
/// The body limit is `limit % LIMIT_RANGE` bytes.
const LIMIT_RANGE: u16 = 2048;
/// The body deadline is `timeout_ms % TIMEOUT_RANGE_MS` milliseconds.
const TIMEOUT_RANGE_MS: u16 = 5000;
/// How long one request (or the worker's shutdown) may take in virtual time before it counts
/// as a hang.
const HANG: Duration = Duration::from_secs(3600);

/// Where verified requests go.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Mode {
    /// The layer in front of an inner service that answers 200.
    Plain,
    /// `store_in` a `MemoryStore` of capacity `1 + n % 4`, drained by a running `Worker`.
    Stored(u8),
    /// `store_in` a `MemoryStore` of capacity `1 + n % 4` that no worker drains: the backlog
    /// fills up and further new deliveries get 503.
    Stuck(u8),
}

/// The name of a header of the input.
#[derive(Debug, Clone, Arbitrary)]
pub enum Name {
    Signature,
    Legacy,
    ContentLength,
    Event,
    ContentType,
    Other(Vec<u8>),
}

/// One step of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub enum Step {
    Data(Vec<u8>),
    /// Returns `Pending` once and wakes itself: a frame split across polls.
    Yield,
    /// Waits this many milliseconds of virtual time.
    Wait(u16),
    /// A trailers frame, which ends the body: HTTP sends nothing after trailers, so [`played`]
    /// drops every step after the first one.
    Trailers,
    /// The client went away: the body fails.
    Error,
    /// Never sends anything again.
    Stall,
    /// Sends empty data frames forever, each one ready at once (legal for an `http_body::Body`).
    Endless,
}

/// One request of the input.
#[derive(Debug, Clone, Arbitrary)]
pub struct Req {
    pub method: u8,
    pub headers: Vec<(Name, Vec<u8>)>,
    pub steps: Vec<Step>,
    /// Signs the data the body sends with this secret (index modulo the count), under the
    /// legacy name when the flag is set.
    pub sign_with: Option<(u8, bool)>,
    /// Sets `Content-Length` to the length of the data the body sends.
    pub declare_length: bool,
}

/// One input: a receiver's configuration and up to [`MAX_REQUESTS`] requests sent in turn.
#[derive(Debug, Clone, Arbitrary)]
pub struct Input {
    pub mode: Mode,
    pub secrets: Vec<Vec<u8>>,
    pub limit: u16,
    pub timeout_ms: u16,
    pub freshness: bool,
    pub requests: Vec<Req>,
}

thread_local! {
    /// One runtime for every input of the process: building a runtime per input cost more
    /// than most inputs do. Every input finishes what it spawned (the worker is shut down and
    /// awaited), so nothing of one input runs during the next.
    static RUNTIME: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime with paused time");
}

/// Runs one input; returns the status of each request sent, in order. Panics, naming the
/// request in words, when the crate breaks a documented guarantee.
pub fn run(input: Input) -> Vec<StatusCode> {
    RUNTIME.with(|runtime| runtime.block_on(run_input(input)))
}

/// The method of a request: `POST` three times in eight.
#[must_use]
pub fn method_of(n: u8) -> Method {
    match n % 8 {
        0..=2 => Method::POST,
        3 => Method::GET,
        4 => Method::PUT,
        5 => Method::HEAD,
        6 => Method::OPTIONS,
        _ => Method::from_bytes(b"PRINT").unwrap_or(Method::PATCH),
    }
}

/// The steps a request's body plays: at most [`MAX_STEPS`], and none after the first trailers
/// frame (HTTP cannot send a frame after trailers). Returns them and the steps never played.
#[must_use]
pub fn played(mut steps: Vec<Step>) -> (Vec<Step>, Vec<Step>) {
    let mut end = steps.len().min(MAX_STEPS);
    if let Some(trailers) = steps[..end]
        .iter()
        .position(|step| matches!(step, Step::Trailers))
    {
        end = trailers + 1;
    }
    let dropped = steps.split_off(end);
    (steps, dropped)
}

/// The data the steps send before the body ends, fails, stalls or goes endless.
#[must_use]
pub fn data_of(steps: &[Step]) -> Vec<u8> {
    let mut data = Vec::new();
    for step in steps {
        match step {
            Step::Data(chunk) => data.extend_from_slice(chunk),
            Step::Error | Step::Stall | Step::Endless => break,
            Step::Yield | Step::Wait(_) | Step::Trailers => {}
        }
    }
    data
}

/// The first step (0-based) after which the body never ends well, if any.
fn cut_of(steps: &[Step]) -> Option<(usize, &Step)> {
    steps
        .iter()
        .enumerate()
        .find(|(_, step)| matches!(step, Step::Error | Step::Stall | Step::Endless))
}

/// What every request of an input shares.
struct Setup {
    mode: Mode,
    secrets: Vec<Secret>,
    /// The configured secrets without the freshness check: the oracle's verifier.
    check: Verifier,
    limit: usize,
    timeout: Duration,
    freshness: bool,
    requests: usize,
}

impl Setup {
    fn capacity(&self) -> Option<usize> {
        match self.mode {
            Mode::Plain => None,
            Mode::Stored(n) | Mode::Stuck(n) => Some(1 + usize::from(n % 4)),
        }
    }
}

async fn run_input(input: Input) -> Vec<StatusCode> {
    let secrets: Vec<Secret> = input
        .secrets
        .iter()
        .take(MAX_SECRETS)
        .filter_map(|s| Secret::new(s).ok())
        .collect();
    let Ok(check) = Verifier::with_secrets(secrets.clone()) else {
        return Vec::new();
    };
    let mut verifier = check.clone();
    if input.freshness {
        // The check reads the system clock: most fuzzed bodies are undated or stale (422).
        verifier = verifier.with_freshness(Freshness::new(Duration::from_secs(60)));
    }
    let requests: Vec<Req> = input.requests.into_iter().take(MAX_REQUESTS).collect();
    let setup = Setup {
        mode: input.mode,
        secrets,
        check,
        limit: usize::from(input.limit % LIMIT_RANGE),
        timeout: Duration::from_millis(u64::from(input.timeout_ms % TIMEOUT_RANGE_MS)),
        freshness: input.freshness,
        requests: requests.len(),
    };
    let layer = VerifyLayer::new(verifier)
        .with_max_body_bytes(setup.limit)
        .with_body_timeout(setup.timeout);
    let requests: Vec<Prepared> = requests
        .into_iter()
        .enumerate()
        .map(|(index, req)| Prepared::new(&setup, index, req))
        .collect();
    match (input.mode, setup.capacity()) {
        (Mode::Plain, _) | (_, None) => plain(&setup, &layer, requests).await,
        (Mode::Stored(_), Some(capacity)) => stored(&setup, &layer, requests, capacity, true).await,
        (Mode::Stuck(_), Some(capacity)) => stored(&setup, &layer, requests, capacity, false).await,
    }
}

/// A request as it is sent, with everything the oracle derives from it.
struct Prepared {
    /// 0-based position in the input.
    index: usize,
    method: Method,
    headers: HeaderMap,
    /// The steps the body plays ([`played`]).
    steps: Arc<[Step]>,
    /// The steps of the input that are never played.
    dropped: Vec<Step>,
    /// The data the body sends.
    data: Bytes,
    /// The signature header the harness added: its name, value and the secret's index.
    signed: Option<(HeaderName, HeaderValue, usize)>,
    expect: Expect,
}

impl Prepared {
    fn new(setup: &Setup, index: usize, req: Req) -> Self {
        let (steps, dropped) = played(req.steps);
        let data = Bytes::from(data_of(&steps));
        let mut headers = HeaderMap::new();
        for (name, value) in req.headers.iter().take(MAX_HEADERS) {
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
        let mut signed = None;
        if let Some((index, legacy)) = req.sign_with {
            let secret_index = usize::from(index) % setup.secrets.len();
            let name = if legacy {
                LEGACY_SIGNATURE_HEADER
            } else {
                SIGNATURE_HEADER
            };
            if let Ok(value) = HeaderValue::from_str(&sign(&setup.secrets[secret_index], &data)) {
                headers.append(name.clone(), value.clone());
                signed = Some((name, value, secret_index));
            }
        }
        if req.declare_length {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
        }
        let method = method_of(req.method);
        let expect = Expect::of(setup, &method, &headers, &steps, &data);
        Self {
            index,
            method,
            headers,
            steps: steps.into(),
            dropped,
            data,
            signed,
            expect,
        }
    }

    fn request(&self) -> Request<Steps> {
        let mut request = Request::new(Steps::new(Arc::clone(&self.steps)));
        *request.method_mut() = self.method.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// Panics with `what`, naming this request and the setup in words.
    fn fail(&self, setup: &Setup, what: impl fmt::Display) -> ! {
        panic!(
            "{what}\n  the request: {request}\n  the oracle: {oracle}\n  the setup: {setup}",
            request = self.describe(setup),
            oracle = self.expect.describe(),
            setup = setup.describe(),
        )
    }
}

/// Why a request cannot be authentic.
#[derive(Debug, Clone)]
enum Cannot {
    NotPost,
    DeclaredTooLarge(u64),
    Incomplete(usize, Step),
    TooLarge(usize),
    NotAuthentic(&'static str),
}

/// What is known in advance about the answer to a request.
struct Expect {
    not_post: bool,
    /// The request carries one `Content-Length`, a number over the limit.
    declared_too_large: Option<u64>,
    /// Why the request cannot be authentic; `None` when it can.
    cannot: Option<Cannot>,
    /// The proof of an authentic request (its signature is the delivery's id in a store).
    verified: Option<Verified>,
    /// Authentic, complete, within the limit, and no `Content-Length` it carries reads as a
    /// number over the limit: nothing documented refuses it with 400, 401, 405 or 413.
    unrefusable: bool,
}

impl Expect {
    fn of(
        setup: &Setup,
        method: &Method,
        headers: &HeaderMap,
        steps: &[Step],
        data: &[u8],
    ) -> Self {
        let lengths: Vec<&HeaderValue> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
        let declared_too_large = match lengths.as_slice() {
            [one] => std::str::from_utf8(one.as_bytes())
                .ok()
                .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|text| text.parse::<u64>().ok())
                .filter(|&len| len > setup.limit as u64),
            _ => None,
        };
        let any_length_over = lengths.iter().any(|value| {
            std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|text| {
                    text.trim_matches(|c: char| c.is_ascii_whitespace())
                        .parse::<u64>()
                        .ok()
                })
                .is_some_and(|len| len > setup.limit as u64)
        });
        let verification = setup.check.verify(headers, data);
        let cannot = if *method != Method::POST {
            Some(Cannot::NotPost)
        } else if let Some(len) = declared_too_large {
            Some(Cannot::DeclaredTooLarge(len))
        } else if let Some((at, step)) = cut_of(steps) {
            Some(Cannot::Incomplete(at, step.clone()))
        } else if data.len() > setup.limit {
            Some(Cannot::TooLarge(data.len()))
        } else {
            verification
                .as_ref()
                .err()
                .map(|error: &VerifyError| Cannot::NotAuthentic(error.reason()))
        };
        Self {
            not_post: *method != Method::POST,
            declared_too_large,
            unrefusable: cannot.is_none() && !any_length_over,
            verified: verification.ok().filter(|_| cannot.is_none()),
            cannot,
        }
    }

    /// The assertions every mode shares.
    fn check(&self, setup: &Setup, req: &Prepared, status: StatusCode) {
        let documented: &[u16] = match setup.mode {
            // The inner service answers 200; the layer's refusals are 400, 401, 405, 408, 413
            // and 422 (`ErrorKind::status`).
            Mode::Plain => &[200, 400, 401, 405, 408, 413, 422],
            // `store_in` adds 503 when the backlog is full.
            Mode::Stored(_) | Mode::Stuck(_) => &[200, 400, 401, 405, 408, 413, 422, 503],
        };
        if !documented.contains(&status.as_u16()) {
            req.fail(
                setup,
                format!("answered {status}, which this setup never answers"),
            );
        }
        if self.not_post && status != StatusCode::METHOD_NOT_ALLOWED {
            req.fail(
                setup,
                format!("answered {status} to a method other than POST, not 405"),
            );
        }
        if !self.not_post
            && self.declared_too_large.is_some()
            && status != StatusCode::PAYLOAD_TOO_LARGE
        {
            req.fail(
                setup,
                format!("answered {status} to a Content-Length over the limit, not 413"),
            );
        }
        if status == StatusCode::OK && self.cannot.is_some() {
            req.fail(setup, "200 for a request that cannot be authentic");
        }
        let refused = [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::PAYLOAD_TOO_LARGE,
        ];
        if self.unrefusable && refused.contains(&status) {
            req.fail(
                setup,
                format!("answered {status} to an authentic, complete request within the limit"),
            );
        }
    }
}

/// The layer in front of an inner service that records what it is called with and answers 200.
async fn plain(setup: &Setup, layer: &VerifyLayer, requests: Vec<Prepared>) -> Vec<StatusCode> {
    let calls: Calls = Arc::default();
    let mut service = layer.layer(Inner(Arc::clone(&calls)));
    let mut statuses = Vec::with_capacity(requests.len());
    for req in &requests {
        let response = send(setup, &mut service, req).await;
        let status = response.status();
        req.expect.check(setup, req, status);
        let seen = std::mem::take(&mut *lock(&calls));
        match (status == StatusCode::OK, seen.as_slice()) {
            (false, []) => {}
            (_, [(None, _)]) => {
                req.fail(
                    setup,
                    "the inner service was called without a verified delivery",
                );
            }
            (true, [(Some(delivery), body)]) => {
                if body != delivery.body() || *delivery.body() != req.data {
                    req.fail(
                        setup,
                        "the inner service got another body than the request's",
                    );
                }
                let proof = setup
                    .check
                    .verify_signature(*delivery.signature(), delivery.body());
                if proof.ok() != req.expect.verified {
                    req.fail(
                        setup,
                        "the inner service got a delivery whose signature or secret index is not \
                         the request's",
                    );
                }
            }
            (_, seen) => req.fail(
                setup,
                format!(
                    "answered {status} after {} call(s) of the inner service (one for a 200, \
                     none otherwise)",
                    seen.len()
                ),
            ),
        }
        statuses.push(status);
    }
    statuses
}

/// `store_in` a small memory store, drained by a running worker or by none.
async fn stored(
    setup: &Setup,
    layer: &VerifyLayer,
    requests: Vec<Prepared>,
    capacity: usize,
    running: bool,
) -> Vec<StatusCode> {
    let store = MemoryStore::new().with_capacity(capacity);
    let mut service = layer.store_in(store.clone());
    let handled: Handled = Arc::default();
    let worker = running.then(|| {
        let handled = Arc::clone(&handled);
        let handler = move |delivery: Delivery| {
            let body = delivery.body().clone();
            lock(&handled).push((delivery, body));
            async { Ok::<(), BoxError>(()) }
        };
        Worker::new(store.clone(), handler)
            .with_retry(RetryPolicy::none())
            .spawn()
    });
    // What each stored delivery's body must be, by id.
    let mut sent: HashMap<DeliveryId, Bytes> = HashMap::new();
    let mut statuses = Vec::with_capacity(requests.len());
    for req in &requests {
        // Counted, not listed, around each request: listing clones every record, and the
        // ids are compared once, at the end.
        let before = counts(&store).await;
        let response = send(setup, &mut service, req).await;
        let status = response.status();
        req.expect.check(setup, req, status);
        let after = counts(&store).await;
        if status == StatusCode::OK {
            let id = req
                .expect
                .verified
                .map(|verified| DeliveryId::from_signature(verified.signature()))
                .unwrap_or_else(|| req.fail(setup, "a 200 without a proof"));
            let new = !sent.contains_key(&id);
            let held = store.get(&id).await.expect("the memory store reads");
            let body_kept = held.as_ref().and_then(|held| held.body.as_ref());
            if held.is_none() || body_kept.is_some_and(|body| *body != req.data) {
                req.fail(
                    setup,
                    "answered 200, but the store does not hold the request's delivery",
                );
            }
            if total(&after) != total(&before) + u64::from(new) {
                req.fail(
                    setup,
                    format!(
                        "answered 200 to a {} delivery, and the store went from {} to {} \
                         deliveries",
                        if new { "new" } else { "repeated" },
                        total(&before),
                        total(&after)
                    ),
                );
            }
            sent.entry(id).or_insert_with(|| req.data.clone());
        } else if total(&after) != total(&before) {
            req.fail(
                setup,
                format!(
                    "answered {status}, yet the store went from {} to {} deliveries",
                    total(&before),
                    total(&after)
                ),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            if req.expect.cannot.is_some() {
                req.fail(
                    setup,
                    "503 for a request that cannot be authentic, not its refusal",
                );
            }
            let backlog = before.backlog();
            if backlog < capacity as u64 {
                req.fail(
                    setup,
                    format!("503 with {backlog} of {capacity} deliveries waiting: the backlog was not full"),
                );
            }
            if !response.headers().contains_key(header::RETRY_AFTER) {
                req.fail(setup, "503 without Retry-After");
            }
        }
        statuses.push(status);
    }
    drop(service);
    let stuck = || {
        requests
            .last()
            .expect("a stored delivery came from a request")
    };
    if let Some(worker) = worker {
        let report = timeout(HANG, worker.shutdown())
            .await
            .unwrap_or_else(|_| stuck().fail(setup, "the worker's shutdown hung"))
            .expect("the worker task finishes");
        let handled = std::mem::take(&mut *lock(&handled));
        for (delivery, body) in &handled {
            check_stored(setup, &sent, &DeliveryId::of(delivery), Some(body), stuck);
        }
        let seen: HashSet<DeliveryId> = handled.iter().map(|(d, _)| DeliveryId::of(d)).collect();
        let all: HashSet<DeliveryId> = sent.keys().copied().collect();
        if report.handled != sent.len() as u64
            || report.left != 0
            || report.dead_lettered != 0
            || report.attempts_failed != 0
            || seen != all
        {
            stuck().fail(
                setup,
                format!(
                    "{} deliveries were stored, the handler saw {} of them, and the worker \
                     reported {report:?}",
                    sent.len(),
                    seen.intersection(&all).count(),
                ),
            );
        }
    }
    let listed = list(&store).await;
    if listed.len() != sent.len() {
        stuck().fail(
            setup,
            format!(
                "{} requests got a 200 for a new delivery, but the store lists {} at the end",
                sent.len(),
                listed.len()
            ),
        );
    }
    for delivery in listed {
        let waiting = if running {
            DeliveryState::Done
        } else {
            DeliveryState::Pending
        };
        if delivery.state != waiting {
            stuck().fail(
                setup,
                format!(
                    "a stored delivery is {} at the end, not {waiting}",
                    delivery.state
                ),
            );
        }
        check_stored(setup, &sent, &delivery.id, delivery.body.as_ref(), stuck);
    }
    statuses
}

/// A stored or handled delivery is one a request got its 200 for, with that request's body,
/// and authentic.
fn check_stored<'a>(
    setup: &Setup,
    sent: &HashMap<DeliveryId, Bytes>,
    id: &DeliveryId,
    body: Option<&Bytes>,
    last: impl Fn() -> &'a Prepared,
) {
    let Some(expected) = sent.get(id) else {
        last().fail(
            setup,
            format!("the store holds {id:?}, which no 200 answered"),
        );
    };
    if let Some(body) = body {
        if body != expected {
            last().fail(
                setup,
                format!("{id:?} holds another body than its request sent"),
            );
        }
        let signature = printone_webhooks::Signature::from_bytes(*id.as_bytes());
        if setup.check.verify_signature(signature, body).is_err() {
            last().fail(setup, format!("{id:?} holds a body that does not verify"));
        }
    }
}

async fn counts(store: &MemoryStore) -> Counts {
    store.counts().await.expect("the memory store counts")
}

/// Every delivery the store holds, in any state.
fn total(counts: &Counts) -> u64 {
    counts.pending + counts.leased + counts.done + counts.dead
}

async fn list(store: &MemoryStore) -> Vec<printone_webhooks::store::StoredDelivery> {
    let everything = Filter {
        limit: usize::MAX,
        ..Filter::default()
    };
    store
        .list(&everything)
        .await
        .expect("the memory store lists")
}

/// Sends one request and waits for its answer, within [`HANG`] of virtual time.
async fn send<S>(setup: &Setup, service: &mut S, req: &Prepared) -> Response<Full<Bytes>>
where
    S: Service<Request<Steps>, Response = Response<Full<Bytes>>>,
    S::Error: fmt::Debug,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap_or_else(|error| req.fail(setup, format!("the service was not ready: {error:?}")));
    match timeout(HANG, service.call(req.request())).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => req.fail(setup, format!("a service error, not a response: {error:?}")),
        Err(_) => req.fail(setup, "the service hung on the request"),
    }
}

/// What the inner service was called with: the verified delivery, if any, and the body.
type Calls = Arc<Mutex<Vec<(Option<Delivery>, Bytes)>>>;
/// What the worker's handler was called with: the delivery and its body.
type Handled = Arc<Mutex<Vec<(Delivery, Bytes)>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An inner service that records the verified delivery and the body it is called with, and
/// answers 200.
#[derive(Clone)]
struct Inner(Calls);

impl Service<Request<Full<Bytes>>> for Inner {
    type Response = Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let (parts, mut body) = request.into_parts();
        let delivery = parts.extensions.get::<Delivery>().cloned();
        lock(&self.0).push((delivery, full_body(&mut body)));
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

/// The bytes of a `Full` body, which is ready at once.
fn full_body(body: &mut Full<Bytes>) -> Bytes {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}
