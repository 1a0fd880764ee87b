//! The layer's memory under many concurrent large bodies, measured with a counting global
//! allocator: buffered bytes stay within body limit × requests in flight (times a small factor
//! for buffer growth, plus a fixed overhead), and an over-limit body is not read past the limit.
//!
//! One `#[test]` only: the allocator's peak is for the whole process, so the two phases run one
//! after the other, the smaller first. Run with `--nocapture` to see the figures.
#![allow(clippy::unwrap_used)] // in this test crate a failed unwrap is a failed test

mod common;

use std::{
    alloc::System,
    convert::Infallible,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use cap::Cap;
use common::{secret, signature_of};
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{Full, StreamBody};
use printone_webhooks::{tower::VerifyLayer, Verifier, SIGNATURE_HEADER};
use tokio::sync::Barrier;
use tower::{Layer as _, ServiceExt as _};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The configured body limit.
const LIMIT: usize = 256 * 1024;
/// Requests in flight at once.
const IN_FLIGHT: usize = 32;
/// The size of each frame, as a network read would deliver it.
const CHUNK: usize = 16 * 1024;
/// The fixed overhead allowed on top of the bodies: runtime, tasks, headers, responses.
const OVERHEAD: usize = 4 * 1024 * 1024;
/// The allowed factor on the bodies: a chunked body grows its buffer by doubling.
const FACTOR: usize = 2;

/// A body of `len` bytes sent in fresh `CHUNK`-sized frames; every stream waits at `pause` (a
/// byte offset) until all `IN_FLIGHT` streams got there, and `sent` counts what was produced.
fn streamed(
    len: usize,
    pause: usize,
    barrier: Arc<Barrier>,
    sent: Arc<AtomicUsize>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    StreamBody::new(stream::unfold(0, move |offset| {
        let (barrier, sent) = (Arc::clone(&barrier), Arc::clone(&sent));
        async move {
            if offset >= len {
                return None;
            }
            if offset == pause {
                barrier.wait().await;
            }
            let size = CHUNK.min(len - offset);
            sent.fetch_add(size, Ordering::SeqCst);
            let frame = Frame::data(Bytes::from(vec![b'x'; size]));
            Some((Ok(frame), offset + size))
        }
    }))
}

/// Sends `IN_FLIGHT` concurrent deliveries of `len` bytes through a layer limited to `LIMIT`,
/// returns the statuses, the bytes each body stream produced and the peak allocation growth.
async fn run(len: usize, pause: usize) -> (Vec<StatusCode>, Vec<usize>, usize) {
    let signature = signature_of(&vec![b'x'; len]);
    let held = Arc::new(Barrier::new(IN_FLIGHT));
    let inner = tower::service_fn(move |request: Request<Full<Bytes>>| {
        let held = Arc::clone(&held);
        async move {
            held.wait().await; // every verified body is alive at the same time
            drop(request);
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }
    });
    let service = VerifyLayer::new(Verifier::new(secret()))
        .with_max_body_bytes(LIMIT)
        .layer(inner);

    let paused = Arc::new(Barrier::new(IN_FLIGHT));
    let counters: Vec<_> = (0..IN_FLIGHT)
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    let baseline = ALLOCATOR.allocated();
    let tasks: Vec<_> = counters
        .iter()
        .map(|sent| {
            let body = streamed(len, pause, Arc::clone(&paused), Arc::clone(sent));
            let request = Request::post("/webhooks/printone")
                .header(SIGNATURE_HEADER, signature.as_str())
                .body(body)
                .unwrap();
            tokio::spawn(service.clone().oneshot(request))
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let response = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the deliveries finish")
            .unwrap()
            .unwrap();
        statuses.push(response.status());
    }
    let growth = ALLOCATOR.max_allocated().saturating_sub(baseline);
    let sent = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    (statuses, sent, growth)
}

fn mib(bytes: usize) -> String {
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64 / (1024.0 * 1024.0);
    format!("{value:.2} MiB")
}

#[test]
fn concurrent_large_bodies_stay_within_limit_times_requests_in_flight() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bound = IN_FLIGHT * LIMIT * FACTOR + OVERHEAD;

    // Over the limit first: each body would be four times the limit; all of them pause just
    // below the limit together, then cross it.
    let pause = LIMIT / CHUNK * CHUNK - CHUNK;
    let (statuses, sent, over_growth) = runtime.block_on(run(4 * LIMIT, pause));
    assert!(statuses.iter().all(|s| *s == StatusCode::PAYLOAD_TOO_LARGE));
    let most_read = sent.iter().copied().max().unwrap();
    assert!(
        most_read <= LIMIT + CHUNK,
        "an over-limit body was read to {most_read} bytes, past the limit {LIMIT} plus one frame"
    );
    assert!(over_growth <= bound, "{over_growth} > {bound}");

    // Near the limit: every body is complete, verified and held by the inner service at once.
    let len = LIMIT - 100;
    let (statuses, _, growth) = runtime.block_on(run(len, CHUNK));
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert!(
        growth >= IN_FLIGHT * len,
        "the bodies were not all held at once ({growth} bytes): the test measures nothing"
    );
    assert!(
        growth <= bound,
        "peak growth {} exceeds {IN_FLIGHT} x {} x {FACTOR} + {}",
        mib(growth),
        mib(LIMIT),
        mib(OVERHEAD)
    );
    println!(
        "memory: {IN_FLIGHT} in flight, limit {}: near-limit bodies peak growth {} \
         ({:.2} x in-flight x limit); over-limit bodies peak growth {}, most read {most_read} B; \
         bound {}",
        mib(LIMIT),
        mib(growth),
        ratio(growth, IN_FLIGHT * LIMIT),
        mib(over_growth),
        mib(bound)
    );
}

fn ratio(a: usize, b: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let value = a as f64 / b as f64;
    value
}
