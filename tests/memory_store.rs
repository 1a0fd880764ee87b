//! What the memory store keeps of each handled delivery it remembers for de-duplication,
//! measured with a counting global allocator: the heap bytes per remembered id, with the body
//! dropped, stay within the figure `MemoryStore`'s documentation gives.
//!
//! One `#[test]` only: the allocator counts for the whole process. Run with `--nocapture` to
//! see the figure.
#![allow(clippy::unwrap_used)] // in this test crate a failed unwrap is a failed test

mod common;

use std::{alloc::System, time::Duration};

use bytes::Bytes;
use cap::Cap;
use printone_webhooks::{
    sign_raw,
    store::{Attempt, MemoryStore, Store as _},
    Delivery, Verifier,
};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Handled deliveries remembered in the measurement.
const REMEMBERED: usize = 20_000;
/// The most heap a remembered handled id may take (`DEFAULT_REMEMBERED`'s documentation says
/// about 850 bytes: its record, the maps by id and by logical key, the finished queue).
const BOUND: usize = 950;

/// A verified 1 KiB order envelope naming order `n`.
fn delivery(n: usize) -> Delivery {
    let head = format!(r#"{{"data":{{"id":"ord_{n}","note":""#);
    let tail = r#""},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;
    let body = format!("{head}{}{tail}", "x".repeat(1024 - head.len() - tail.len()));
    let secret = common::secret();
    let verified = Verifier::new(secret.clone())
        .verify_signature(sign_raw(&secret, body.as_bytes()), body.as_bytes())
        .unwrap();
    Delivery::new(Bytes::from(body), verified, &http::HeaderMap::new())
}

/// Stores, claims and completes `count` deliveries, numbered from `first`.
async fn handle(store: &MemoryStore, first: usize, count: usize) {
    for n in first..first + count {
        store.insert(&delivery(n)).await.unwrap();
        let claim = store.claim(1, Duration::from_secs(30)).await.unwrap();
        let claimed = &claim.claimed[0];
        let attempt = Attempt {
            started_at: std::time::SystemTime::now(),
            duration: Duration::from_micros(3),
            error: None,
        };
        store.complete(&claimed.lease, &attempt).await.unwrap();
    }
}

#[tokio::test]
async fn a_remembered_handled_id_takes_under_a_kilobyte_of_heap() {
    let store = MemoryStore::new()
        .with_capacity(10)
        .with_remembered(REMEMBERED);
    // Warm up: the runtime, the first allocations of the maps.
    handle(&store, 0, 100).await;
    let before = ALLOCATOR.allocated();
    handle(&store, 100, REMEMBERED - 100).await;
    let per_id = (ALLOCATOR.allocated() - before) / (REMEMBERED - 100);
    println!("{per_id} bytes of heap per remembered handled id");
    assert_eq!(store.counts().await.unwrap().done, REMEMBERED as u64);
    assert!(per_id <= BOUND, "{per_id} bytes per remembered id");
}
