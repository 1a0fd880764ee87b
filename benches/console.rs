//! The delivery console on a SQLite store of 100 000 deliveries: the store's reads behind each
//! page, and whole pages through `tower::ConsoleService` (the store's read and the rendering).
//!
//! ```sh
//! cargo bench --bench console --features console
//! ```
//!
//! - `store/list_first_page`, `store/list_deep_page` (the page after the 50 000th delivery, by
//!   its cursor), `store/list_dead_of_an_event`: `Store::list` of 50 deliveries.
//! - `store/counts`, `store/event_counts`: what the overview reads.
//! - `page/overview`, `page/list`, `page/list_deep`, `page/delivery`: a `GET` answered by the
//!   console, from the request to the last byte of HTML.
//!
//! The store is filled once through `Store::insert` (a quarter of the deliveries then
//! dead-lettered), in a temporary folder removed at the end.

use std::{
    hint::black_box,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{header, HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt as _, Full};
use printone_webhooks::{
    console::Console,
    sign_raw,
    store::{
        Attempt, DeliveryState, Filter, SharedStore, SqliteOptions, StoredDelivery, Synchronous,
    },
    tower::ConsoleService,
    Delivery, Secret, Verifier, EVENT_HEADER,
};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

const DELIVERIES: u32 = 100_000;
const EVENTS: [&str; 4] = [
    "order_status_update",
    "batch_status_update",
    "coupon_code_used",
    "template_preview_rendered",
];

fn delivery(verifier: &Verifier, secret: &Secret, n: u32) -> Delivery {
    let event = EVENTS[n as usize % EVENTS.len()];
    let body = format!(
        r#"{{"data":{{"id":"obj_{n}","status":"order_created"}},"event":"{event}","created_at":"2024-06-03T13:14:46.501Z"}}"#
    );
    let proof = verifier
        .verify_signature(sign_raw(secret, body.as_bytes()), body.as_bytes())
        .expect("signed with the same secret");
    let mut headers = HeaderMap::new();
    headers.insert(EVENT_HEADER, HeaderValue::from_static(event));
    Delivery::new(Bytes::from(body), proof, &headers)
}

/// Inserts the deliveries, 512 at a time (one commit each), then dead-letters a quarter.
async fn fill(store: &SharedStore) {
    let secret = Secret::new("bench-console").expect("not empty");
    let verifier = Verifier::new(secret.clone());
    for chunk in (0..DELIVERIES).collect::<Vec<_>>().chunks(512) {
        let mut inserts = tokio::task::JoinSet::new();
        for &n in chunk {
            let store = store.clone();
            let delivery = delivery(&verifier, &secret, n);
            inserts.spawn(async move { store.insert(&delivery).await.expect("insert") });
        }
        inserts.join_all().await;
    }
    let failed = Attempt {
        started_at: SystemTime::now(),
        duration: Duration::from_millis(3),
        error: Some("the bench fails it".to_owned()),
    };
    let mut dead = 0;
    while dead < DELIVERIES / 4 {
        let claim = store
            .claim(500, Duration::from_secs(600))
            .await
            .expect("claim");
        for claimed in &claim.claimed {
            store
                .dead_letter(&claimed.lease, &failed)
                .await
                .expect("dead letter");
        }
        dead += u32::try_from(claim.claimed.len()).unwrap_or(0);
    }
}

async fn get(service: &ConsoleService, uri: &str) -> usize {
    let request = Request::get(uri)
        .header(header::HOST, "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .expect("a request");
    let response = service.clone().oneshot(request).await.expect("infallible");
    assert!(
        response.status().is_success(),
        "{uri}: {}",
        response.status()
    );
    response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes()
        .len()
}

fn console(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a runtime");
    let dir = std::env::temp_dir().join(format!("printone-bench-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let store: SharedStore = SqliteOptions::new(dir.join("deliveries.db"))
        .capacity(DELIVERIES as usize + 1)
        .synchronous(Synchronous::Normal)
        .open()
        .expect("opens")
        .into();
    let started = std::time::Instant::now();
    runtime.block_on(fill(&store));
    eprintln!("filled {DELIVERIES} deliveries in {:?}", started.elapsed());

    let first = Filter {
        limit: 50,
        ..Filter::default()
    };
    let middle: StoredDelivery = runtime
        .block_on(store.list(&Filter {
            limit: 50_000,
            ..Filter::default()
        }))
        .expect("list")
        .pop()
        .expect("50 000 deliveries");
    let deep = first.after(&middle);
    let dead_of_an_event = Filter {
        state: Some(DeliveryState::Dead),
        event: Some(EVENTS[0].to_owned()),
        limit: 50,
        ..Filter::default()
    };
    let mut group = c.benchmark_group("store");
    for (name, filter) in [
        ("list_first_page", &first),
        ("list_deep_page", &deep),
        ("list_dead_of_an_event", &dead_of_an_event),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(store.list(filter).await.expect("list").len()) });
        });
    }
    group.bench_function("counts", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(store.counts().await.expect("counts")) });
    });
    group.bench_function("event_counts", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(store.event_counts().await.expect("counts").len()) });
    });
    group.finish();

    let service = ConsoleService::new(Console::new(store.clone()));
    let cursor = format!(
        "{}-{}",
        middle
            .received_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        middle.id
    );
    let pages = [
        ("overview", "/console/".to_owned()),
        ("list", "/console/deliveries".to_owned()),
        ("list_deep", format!("/console/deliveries?after={cursor}")),
        ("delivery", format!("/console/deliveries/{}", middle.id)),
    ];
    let mut group = c.benchmark_group("page");
    for (name, uri) in &pages {
        group.bench_function(*name, |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(get(&service, uri).await) });
        });
    }
    group.finish();
    drop(service);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, console);
criterion_main!(benches);
