//! Verification speed per crypto backend, and the crate's own cost per request beyond the HMAC.
//!
//! Run with the default pure-Rust backend and with ring, and compare (results and machine in
//! `benches/RESULTS.md`):
//!
//! ```sh
//! cargo bench --bench verify
//! cargo bench --bench verify --features ring
//! ```
//!
//! - `verify/<backend>/<size>`: `Verifier::verify_signature` (pre-keyed HMAC-SHA256 of the body
//!   and the constant-time comparison) at 128 B, 1 KiB, 64 KiB and 1 MiB, reported in bytes/s.
//! - `per_request_1KiB/*`: one 1 KiB delivery as a bare HMAC of the body, as `Verifier::verify`
//!   on the headers (signature lookup and base64 decoding added), and through the whole tower
//!   layer (method and length checks, body deadline, accumulation, `Delivery` and the call of a
//!   no-op inner service). The difference between the first and the last is what the crate adds.

use std::{convert::Infallible, hint::black_box};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use http::{header, HeaderMap, HeaderValue, Request, Response};
use http_body_util::Full;
use printone_webhooks::{sign, sign_raw, tower::VerifyLayer, Secret, Verifier, SIGNATURE_HEADER};
use tower::{Layer as _, ServiceExt as _};

const BACKEND: &str = if cfg!(feature = "ring") {
    "ring"
} else {
    "rustcrypto"
};

const SECRET: &str = "pO1_webhook_bench_7f3KqV9xLm2R";

fn secret() -> Secret {
    Secret::new(SECRET).expect("the bench secret is not empty")
}

/// A JSON-looking body of exactly `len` bytes.
fn body(len: usize) -> Bytes {
    let prefix = br#"{"data":{"id":"ord_1","note":""#;
    let suffix = br#""},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(prefix);
    body.resize(len.saturating_sub(suffix.len()).max(prefix.len()), b'x');
    body.extend_from_slice(suffix);
    body.truncate(len);
    Bytes::from(body)
}

fn verification(c: &mut Criterion) {
    let verifier = Verifier::new(secret());
    let mut group = c.benchmark_group(format!("verify/{BACKEND}"));
    for len in [128, 1024, 64 * 1024, 1024 * 1024] {
        let body = body(len);
        let signature = sign_raw(&secret(), &body);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &body, |b, body| {
            b.iter(|| verifier.verify_signature(black_box(signature), black_box(body)));
        });
    }
    group.finish();
}

fn signed_headers(body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&sign(&secret(), body)).expect("base64 is a header value");
    headers.insert(SIGNATURE_HEADER, value);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-printone-event",
        HeaderValue::from_static("order_status_update"),
    );
    headers
}

fn request(headers: &HeaderMap, body: &Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::post("/webhooks/printone")
        .body(Full::new(body.clone()))
        .expect("a valid request");
    *request.headers_mut() = headers.clone();
    request
}

fn per_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let body = body(1024);
    let headers = signed_headers(&body);
    let verifier = Verifier::new(secret());
    let key = secret();
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    });
    let layered = VerifyLayer::new(verifier.clone()).layer(inner);

    let mut group = c.benchmark_group(format!("per_request_1KiB/{BACKEND}"));
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("bare_hmac", |b| {
        b.iter(|| sign_raw(black_box(&key), black_box(&body)));
    });
    group.bench_function("verifier_from_headers", |b| {
        b.iter(|| verifier.verify(black_box(&headers), black_box(&body)));
    });
    group.bench_function("tower_layer", |b| {
        b.to_async(&runtime).iter_batched(
            || (layered.clone(), request(&headers, &body)),
            |(service, request)| async move {
                let response = service.oneshot(request).await;
                assert!(matches!(&response, Ok(r) if r.status() == 200));
                response
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, verification, per_request);
criterion_main!(benches);
