//! The behaviour every [`Store`] backend must show, written once.
//!
//! A backend's tests call [`suite!`] with an `async fn(capacity, window) -> Option<impl Store>` that
//! opens an empty store (`None` when the backend is not available here, a server that is not
//! configured, which the backend's tests then say once); each case becomes a test of that backend.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use crate::{
    core::delivery::Delivery,
    store::{Attempt, DeliveryId, DeliveryState, Filter, Inserted, Store, StoreError},
    Secret, Verifier, EVENT_HEADER,
};

/// A lease long enough never to expire within a test.
pub(crate) const LONG: Duration = Duration::from_secs(600);

/// A verified delivery numbered `n` of `event`; equal arguments give the same delivery.
pub(crate) fn delivery(n: u32, event: &str) -> Delivery {
    let body = format!(
        r#"{{"data":{{"id":"obj_{n}","status":"x"}},"event":"{event}","created_at":"2024-06-03T13:14:46.501Z"}}"#
    );
    let secret = Secret::new("conformance").expect("not empty");
    let signature = crate::sign_raw(&secret, body.as_bytes());
    let verified = Verifier::new(secret)
        .verify_signature(signature, body.as_bytes())
        .expect("signed with the same secret");
    let mut headers = HeaderMap::new();
    headers.insert(
        EVENT_HEADER,
        HeaderValue::from_str(event).expect("printable"),
    );
    Delivery::new(Bytes::from(body), verified, &headers)
}

pub(crate) fn attempt(error: Option<&str>) -> Attempt {
    Attempt {
        started_at: SystemTime::now(),
        duration: Duration::from_millis(3),
        error: error.map(str::to_owned),
    }
}

/// Claims one delivery, which must be there.
pub(crate) async fn claim_one(store: &dyn Store) -> crate::store::Claimed {
    let mut claim = store.claim(1, LONG).await.expect("claim");
    assert_eq!(claim.claimed.len(), 1, "one delivery was due");
    claim.claimed.remove(0)
}

/// Claims the next delivery and completes it.
pub(crate) async fn settle_done(store: &dyn Store) {
    let claimed = claim_one(store).await;
    store
        .complete(&claimed.lease, &attempt(None))
        .await
        .expect("complete");
}

async fn insert(store: &dyn Store, n: u32, event: &str) -> Inserted {
    store.insert(&delivery(n, event)).await.expect("insert")
}

pub(crate) async fn a_stored_delivery_is_claimed_once_with_its_body(store: &dyn Store) {
    assert_eq!(
        insert(store, 1, "order_status_update").await,
        Inserted::Stored
    );
    let claimed = claim_one(store).await;
    assert_eq!(claimed.attempt, 1);
    assert_eq!(
        claimed.delivery.body(),
        delivery(1, "order_status_update").body()
    );
    assert_eq!(claimed.delivery.event_header(), Some("order_status_update"));
    assert_eq!(
        claimed.delivery.signature(),
        delivery(1, "order_status_update").signature()
    );
    let again = store.claim(10, LONG).await.unwrap();
    assert!(
        again.claimed.is_empty(),
        "a leased delivery is not claimed twice"
    );
}

pub(crate) async fn a_redelivery_is_recognised_in_every_state(store: &dyn Store) {
    for n in 0..3 {
        assert_eq!(insert(store, n, "e").await, Inserted::Stored);
    }
    assert_eq!(insert(store, 0, "e").await, Inserted::Duplicate, "pending");
    let first = claim_one(store).await;
    assert_eq!(insert(store, 0, "e").await, Inserted::Duplicate, "leased");
    store.complete(&first.lease, &attempt(None)).await.unwrap();
    assert_eq!(insert(store, 0, "e").await, Inserted::Duplicate, "done");
    let second = claim_one(store).await;
    let failed = attempt(Some("no"));
    store.dead_letter(&second.lease, &failed).await.unwrap();
    assert_eq!(insert(store, 1, "e").await, Inserted::Duplicate, "dead");
    assert_eq!(store.counts().await.unwrap().backlog(), 1);
}

pub(crate) async fn a_full_backlog_refuses_new_deliveries_but_not_redeliveries(store: &dyn Store) {
    // The suite opens this store with a capacity of 4.
    for n in 0..4 {
        assert_eq!(insert(store, n, "e").await, Inserted::Stored);
    }
    assert_eq!(insert(store, 9, "e").await, Inserted::Full);
    assert_eq!(insert(store, 2, "e").await, Inserted::Duplicate);
    settle_done(store).await;
    assert_eq!(insert(store, 9, "e").await, Inserted::Stored, "room again");
}

pub(crate) async fn a_completed_delivery_keeps_its_id_but_not_its_body(store: &dyn Store) {
    insert(store, 1, "e").await;
    let claimed = claim_one(store).await;
    store
        .complete(&claimed.lease, &attempt(None))
        .await
        .unwrap();
    let stored = store.get(&claimed.lease.id).await.unwrap().expect("kept");
    assert_eq!(stored.state, DeliveryState::Done);
    assert_eq!(stored.body, None);
    assert!(stored.finished_at.is_some());
    assert_eq!(stored.history.len(), 1);
}

pub(crate) async fn a_retry_is_due_at_its_time_and_not_before(store: &dyn Store) {
    insert(store, 1, "e").await;
    let claimed = claim_one(store).await;
    let at = SystemTime::now() + Duration::from_millis(300);
    store
        .retry(&claimed.lease, &attempt(Some("later")), at)
        .await
        .unwrap();
    let early = store.claim(10, LONG).await.unwrap();
    assert!(early.claimed.is_empty(), "not due yet");
    let next_due = early.next_due.expect("a retry is waiting");
    assert!(
        next_due <= at + Duration::from_millis(5),
        "next_due is the retry's time"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let again = claim_one(store).await;
    assert_eq!(again.attempt, 2);
    let stored = store.get(&again.lease.id).await.unwrap().unwrap();
    assert_eq!(stored.last_error.as_deref(), Some("later"));
}

pub(crate) async fn an_expired_lease_is_claimed_again_and_the_old_holder_is_fenced_off(
    store: &dyn Store,
) {
    insert(store, 1, "e").await;
    let mut first = store.claim(1, Duration::from_millis(100)).await.unwrap();
    let first = first.claimed.remove(0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = claim_one(store).await;
    assert_eq!(second.attempt, 2);
    assert_ne!(second.lease.token, first.lease.token);
    let stale = store.complete(&first.lease, &attempt(None)).await;
    assert!(matches!(stale, Err(StoreError::LeaseLost(_))), "{stale:?}");
    store.complete(&second.lease, &attempt(None)).await.unwrap();
    let stored = store.get(&second.lease.id).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Done);
}

pub(crate) async fn a_dead_letter_keeps_its_body_and_reason_until_replayed(store: &dyn Store) {
    insert(store, 1, "e").await;
    let claimed = claim_one(store).await;
    store
        .dead_letter(&claimed.lease, &attempt(Some("unparseable")))
        .await
        .unwrap();
    let dead = store.get(&claimed.lease.id).await.unwrap().unwrap();
    assert_eq!(dead.state, DeliveryState::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("unparseable"));
    assert_eq!(dead.body.as_ref(), Some(delivery(1, "e").body()));
    assert_eq!(store.counts().await.unwrap().dead, 1);
    assert_eq!(store.replay(&[claimed.lease.id]).await.unwrap(), 1);
    assert_eq!(
        store.replay(&[claimed.lease.id]).await.unwrap(),
        0,
        "only dead letters"
    );
    let again = claim_one(store).await;
    assert_eq!(again.attempt, 1, "a replay resets the attempts");
}

pub(crate) async fn replaying_dead_letters_by_event_leaves_the_others(store: &dyn Store) {
    for (n, event) in [(1, "a"), (2, "b"), (3, "a")] {
        insert(store, n, event).await;
        let claimed = claim_one(store).await;
        store
            .dead_letter(&claimed.lease, &attempt(Some("x")))
            .await
            .unwrap();
    }
    let only_a = Filter {
        event: Some("a".into()),
        ..Filter::default()
    };
    assert_eq!(store.replay_dead(&only_a).await.unwrap(), 2);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (2, 1));
}

pub(crate) async fn a_list_is_filtered_newest_first_and_pages_by_time(store: &dyn Store) {
    for (n, event) in [(1, "a"), (2, "b"), (3, "a"), (4, "a")] {
        insert(store, n, event).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let claimed = claim_one(store).await;
    store
        .complete(&claimed.lease, &attempt(None))
        .await
        .unwrap();
    let all = store.list(&Filter::default()).await.unwrap();
    let ids: Vec<_> = all.iter().map(|d| d.data_id.clone().unwrap()).collect();
    assert_eq!(ids, ["obj_4", "obj_3", "obj_2", "obj_1"]);
    assert!(all.iter().all(|d| d.history.is_empty()));
    let pending_a = Filter {
        state: Some(DeliveryState::Pending),
        event: Some("a".into()),
        limit: 1,
        ..Filter::default()
    };
    let page = store.list(&pending_a).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].data_id.as_deref(), Some("obj_4"));
    let next = Filter {
        before: Some(page[0].received_at),
        ..pending_a
    };
    let page = store.list(&next).await.unwrap();
    assert_eq!(page[0].data_id.as_deref(), Some("obj_3"));
    let done = Filter {
        state: Some(DeliveryState::Done),
        ..Filter::default()
    };
    assert_eq!(
        store.list(&done).await.unwrap()[0].data_id.as_deref(),
        Some("obj_1")
    );
}

pub(crate) async fn the_history_holds_every_attempt_in_order(store: &dyn Store) {
    insert(store, 1, "e").await;
    let first = claim_one(store).await;
    let now = SystemTime::now();
    store
        .retry(&first.lease, &attempt(Some("one")), now)
        .await
        .unwrap();
    let second = claim_one(store).await;
    store.complete(&second.lease, &attempt(None)).await.unwrap();
    let stored = store.get(&first.lease.id).await.unwrap().unwrap();
    let errors: Vec<_> = stored.history.iter().map(|a| a.error.clone()).collect();
    assert_eq!(errors, [Some("one".to_owned()), None]);
    assert_eq!(stored.attempts, 2);
}

pub(crate) async fn an_id_is_found_by_a_prefix(store: &dyn Store) {
    insert(store, 1, "e").await;
    let id = crate::store::DeliveryId::of(&delivery(1, "e"));
    let found = store.resolve(&id.to_string()[..12]).await.unwrap();
    assert_eq!(found, [id]);
    let upper = id.to_string()[..12].to_ascii_uppercase();
    assert_eq!(store.resolve(&upper).await.unwrap(), [id]);
    assert!(store.resolve("zzzz").await.unwrap().is_empty());
    assert!(store
        .get(&crate::store::DeliveryId::from_bytes([7; 32]))
        .await
        .unwrap()
        .is_none());
}

pub(crate) async fn a_purge_removes_finished_deliveries_only(store: &dyn Store) {
    for n in 0..3 {
        insert(store, n, "e").await;
    }
    settle_done(store).await;
    let claimed = claim_one(store).await;
    store
        .dead_letter(&claimed.lease, &attempt(Some("x")))
        .await
        .unwrap();
    let later = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(store.purge(later).await.unwrap(), 2);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.done, counts.dead), (1, 0, 0));
    assert_eq!(
        insert(store, 0, "e").await,
        Inserted::Stored,
        "its id is forgotten"
    );
}

pub(crate) async fn a_released_delivery_is_due_again_without_counting_the_attempt(
    store: &dyn Store,
) {
    insert(store, 1, "e").await;
    let claimed = claim_one(store).await;
    store.release(&claimed.lease).await.unwrap();
    let again = claim_one(store).await;
    assert_eq!(again.attempt, 1);
    assert!(
        store.release(&claimed.lease).await.is_err(),
        "the old lease is gone"
    );
}

pub(crate) async fn counts_follow_every_state(store: &dyn Store) {
    for n in 0..4 {
        insert(store, n, "e").await;
    }
    settle_done(store).await;
    let dead = claim_one(store).await;
    store
        .dead_letter(&dead.lease, &attempt(Some("x")))
        .await
        .unwrap();
    let _held = claim_one(store).await;
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.leased, counts.done, counts.dead),
        (1, 1, 1, 1)
    );
}

pub(crate) async fn a_claim_takes_at_most_what_was_asked_oldest_first(store: &dyn Store) {
    for n in 0..3 {
        insert(store, n, "e").await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let claim = store.claim(2, LONG).await.unwrap();
    let ids: Vec<_> = claim
        .claimed
        .iter()
        .map(|c| c.delivery.summary().1.unwrap())
        .collect();
    assert_eq!(ids, ["obj_0", "obj_1"]);
}

pub(crate) async fn an_insert_wakes_a_waiting_worker(store: &dyn Store) {
    let waiting = store.changed();
    insert(store, 1, "e").await;
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken by the insert");
}

pub(crate) async fn housekeeping_forgets_handled_ids_past_the_window(store: &dyn Store) {
    // The suite opens this store with a window of 200 ms.
    insert(store, 1, "e").await;
    settle_done(store).await;
    assert_eq!(
        store.maintain().await.unwrap(),
        0,
        "still within the window"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.maintain().await.unwrap(), 1);
    assert_eq!(insert(store, 1, "e").await, Inserted::Stored);
}

/// The envelope of [`delivery`] `n` as Print.one's webhook log returns it (keys in another
/// order, `createdAt` in another offset), recovered from the log entry `log`.
pub(crate) fn recovered(n: u32, event: &str, log: &str) -> Delivery {
    let envelope = format!(
        r#"{{"event":"{event}","createdAt":"2024-06-03T15:14:46.501+02:00","data":{{"status":"x","id":"obj_{n}"}}}}"#
    );
    Delivery::recovered(Bytes::from(envelope), Some(event), log).expect("a logical key")
}

pub(crate) async fn a_signed_and_a_recovered_delivery_of_one_event_are_stored_once(
    store: &dyn Store,
) {
    assert_eq!(insert(store, 1, "e").await, Inserted::Stored);
    let again = store.insert(&recovered(1, "e", "log_1")).await.unwrap();
    assert_eq!(
        again,
        Inserted::Duplicate,
        "received signed, then in the log"
    );
    let first = recovered(2, "e", "log_2");
    assert_eq!(store.insert(&first).await.unwrap(), Inserted::Stored);
    assert_eq!(
        store.insert(&recovered(2, "e", "log_3")).await.unwrap(),
        Inserted::Duplicate,
        "a second log entry of the same event"
    );
    assert_eq!(
        insert(store, 2, "e").await,
        Inserted::Duplicate,
        "recovered, then arriving signed: a re-delivery"
    );
    assert_eq!(store.counts().await.unwrap().pending, 2);
    let stored = store.get(&DeliveryId::of(&first)).await.unwrap().unwrap();
    assert_eq!(stored.recovered_from.as_deref(), Some("log_2"));
    let signed = store
        .get(&DeliveryId::of(&delivery(1, "e")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(signed.recovered_from, None);
    let mut claimed = store.claim(2, LONG).await.unwrap().claimed;
    claimed.sort_by_key(|c| c.delivery.recovered_from().is_some());
    assert_eq!(claimed[0].delivery.recovered_from(), None);
    assert_eq!(claimed[1].delivery.recovered_from(), Some("log_2"));
    assert_eq!(claimed[1].delivery.body(), first.body());
}

pub(crate) async fn the_keys_of_stored_deliveries_are_held_in_every_state(store: &dyn Store) {
    let key = |n: u32| delivery(n, "e").logical_key().expect("a key");
    insert(store, 1, "e").await;
    insert(store, 2, "e").await;
    settle_done(store).await;
    let keys = [key(1), key(3), key(2)];
    assert_eq!(store.holds(&keys).await.unwrap(), [true, false, true]);
    assert!(store.holds(&[]).await.unwrap().is_empty());
    store.purge(SystemTime::now() + LONG).await.unwrap();
    let after = store.holds(&keys).await.unwrap();
    assert_eq!(after.iter().filter(|held| **held).count(), 1, "one purged");
}

pub(crate) async fn checkpoints_are_kept_by_name(store: &dyn Store) {
    let since = store.checkpoint("keyed-since").await.unwrap();
    let since = since.expect("a store records since when it keys deliveries");
    assert!(since.ends_with('Z') && since.len() >= 20, "{since}");
    assert_eq!(store.checkpoint("reconcile:wh_1").await.unwrap(), None);
    store.set_checkpoint("reconcile:wh_1", "a").await.unwrap();
    store.set_checkpoint("reconcile:wh_2", "b").await.unwrap();
    store.set_checkpoint("reconcile:wh_1", "c").await.unwrap();
    let first = store.checkpoint("reconcile:wh_1").await.unwrap();
    assert_eq!(first.as_deref(), Some("c"));
    let second = store.checkpoint("reconcile:wh_2").await.unwrap();
    assert_eq!(second.as_deref(), Some("b"));
}

pub(crate) async fn an_exclusive_lock_is_held_until_it_is_dropped(store: &dyn Store) {
    let held = store.try_exclusive("reconcile").await.unwrap();
    assert!(held.is_some(), "a free lock is taken");
    assert!(store.try_exclusive("reconcile").await.unwrap().is_none());
    let other = store.try_exclusive("other lock").await.unwrap();
    assert!(other.is_some(), "locks are by name");
    drop(held);
    // A server releases a lock when it sees its session end: allow it a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if store.try_exclusive("reconcile").await.unwrap().is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Delivery `n` of `event` as if it had been received at `at`.
pub(crate) fn delivery_at(n: u32, event: &str, at: SystemTime) -> Delivery {
    let fresh = delivery(n, event);
    Delivery::restore(crate::core::delivery::Restored {
        body: fresh.body().clone(),
        signature: *fresh.signature(),
        secret_index: fresh.secret_index(),
        event_header: fresh.event_header().map(str::to_owned),
        signature_header: fresh.signature_header(),
        received_at: at,
        recovered_from: None,
    })
}

/// Reads every page of `filter` (pages of `limit`), each after the last of the one before.
async fn every_page(store: &dyn Store, filter: Filter) -> Vec<Vec<crate::store::StoredDelivery>> {
    let mut pages = Vec::new();
    let mut next = filter;
    loop {
        let page = store.list(&next).await.expect("list");
        let Some(last) = page.last() else {
            return pages;
        };
        next = next.after(last);
        pages.push(page);
        assert!(pages.len() < 100, "the pages never end");
    }
}

pub(crate) async fn pages_neither_skip_nor_repeat_deliveries_received_at_the_same_time(
    store: &dyn Store,
) {
    // Whole seconds: every backend keeps them exactly.
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let later = at + Duration::from_secs(1);
    let earlier = at - Duration::from_secs(1);
    let received =
        (0..5)
            .map(|n| (n, "a", at))
            .chain([(10, "a", later), (11, "b", at), (12, "a", earlier)]);
    for (n, event, at) in received {
        // Handled at once: the suite's store holds at most 4 waiting.
        let stored = store.insert(&delivery_at(n, event, at)).await.unwrap();
        assert_eq!(stored, Inserted::Stored);
        settle_done(store).await;
    }
    let all = store
        .list(&Filter {
            event: Some("a".into()),
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
    assert!(
        all.windows(2)
            .all(|pair| (pair[0].received_at, pair[0].id) > (pair[1].received_at, pair[1].id)),
        "newest first, then by id from the highest"
    );
    let by_two = Filter {
        event: Some("a".into()),
        limit: 2,
        ..Filter::default()
    };
    let pages = every_page(store, by_two).await;
    assert_eq!(pages.len(), 4);
    let ids: Vec<_> = pages.iter().flatten().map(|d| d.id).collect();
    let expected: Vec<_> = all.iter().map(|d| d.id).collect();
    assert_eq!(ids, expected, "every delivery once, in order");
    let done = Filter {
        state: Some(DeliveryState::Done),
        limit: 3,
        ..Filter::default()
    };
    let pages = every_page(store, done).await;
    assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), 8);
    let since = Filter {
        since: Some(at),
        limit: 1,
        ..Filter::default()
    };
    assert_eq!(
        every_page(store, since).await.len(),
        7,
        "since holds its ties"
    );
}

pub(crate) async fn counts_per_event_follow_every_state(store: &dyn Store) {
    assert!(store.event_counts().await.unwrap().is_empty());
    for (n, event) in [(1, "b"), (2, "a"), (3, "b"), (4, "b")] {
        insert(store, n, event).await;
    }
    settle_done(store).await; // 1, "b"
    let dead = claim_one(store).await; // 2, "a"
    store
        .dead_letter(&dead.lease, &attempt(Some("x")))
        .await
        .unwrap();
    let _held = claim_one(store).await; // 3, "b"
    let events = store.event_counts().await.unwrap();
    let names: Vec<_> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["a", "b"], "by event name");
    let a = events[0].counts;
    assert_eq!((a.pending, a.leased, a.done, a.dead), (0, 0, 0, 1));
    let b = events[1].counts;
    assert_eq!((b.pending, b.leased, b.done, b.dead), (1, 1, 1, 0));
}

/// The hand-off of a store that claims deliveries as it stores them; every backend that has
/// one runs [`handoff_suite!`].
fn handoff(store: &dyn Store) -> &crate::store::handoff::Handoff {
    store
        .handoff()
        .expect("a backend in the hand-off suite has a hand-off")
}

pub(crate) async fn a_delivery_stored_for_an_attached_worker_is_handed_over_leased(
    store: &dyn Store,
) {
    let handoff = handoff(store);
    let _ticket = handoff.attach(2, LONG).expect("no other worker");
    assert_eq!(insert(store, 1, "a").await, Inserted::Stored);
    let mut handed = handoff.take();
    assert_eq!(handed.len(), 1, "handed over once its write returned");
    let claimed = handed.remove(0);
    assert_eq!(claimed.attempt, 1);
    assert_eq!(claimed.delivery.body(), delivery(1, "a").body());
    let stored = store.get(&claimed.lease.id).await.unwrap().expect("stored");
    assert_eq!(stored.state, DeliveryState::Leased);
    assert_eq!(stored.attempts, 1);
    assert!(
        store.claim(10, LONG).await.unwrap().claimed.is_empty(),
        "claimed once"
    );
    assert_eq!(store.counts().await.unwrap().leased, 1);
    store
        .complete(&claimed.lease, &attempt(None))
        .await
        .expect("the lease handed over is the current one");
    let done = store.get(&claimed.lease.id).await.unwrap().expect("kept");
    assert_eq!(done.state, DeliveryState::Done);
    assert_eq!(
        handoff.free(),
        1,
        "the slot stays taken until the worker gives it back"
    );
}

pub(crate) async fn a_worker_without_a_free_slot_finds_the_delivery_pending(store: &dyn Store) {
    let handoff = handoff(store);
    let _ticket = handoff.attach(1, LONG).expect("no other worker");
    assert_eq!(insert(store, 1, "a").await, Inserted::Stored);
    assert_eq!(insert(store, 2, "a").await, Inserted::Stored);
    let handed = handoff.take();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].delivery.body(), delivery(1, "a").body());
    let claimed = claim_one(store).await;
    assert_eq!(claimed.delivery.body(), delivery(2, "a").body());
    assert_eq!(claimed.attempt, 1);
    handoff.release_slots(1);
    assert_eq!(insert(store, 1, "a").await, Inserted::Duplicate);
    assert_eq!(handoff.free(), 1, "a re-delivery takes no slot");
    assert!(handoff.take().is_empty());
}

pub(crate) async fn a_handed_over_delivery_whose_lease_expired_is_claimed_again(store: &dyn Store) {
    let handoff = handoff(store);
    let _ticket = handoff
        .attach(1, Duration::from_millis(50))
        .expect("no other worker");
    assert_eq!(insert(store, 1, "a").await, Inserted::Stored);
    let first = handoff.take().pop().expect("handed over");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let again = claim_one(store).await;
    assert_eq!(again.attempt, 2);
    let stale = store.complete(&first.lease, &attempt(None)).await;
    assert!(matches!(stale, Err(StoreError::LeaseLost(_))), "{stale:?}");
    store
        .complete(&again.lease, &attempt(None))
        .await
        .expect("current");
}

pub(crate) async fn a_detached_worker_is_handed_nothing(store: &dyn Store) {
    let handoff = handoff(store);
    let ticket = handoff.attach(4, LONG).expect("no other worker");
    assert!(handoff.detach(ticket).is_empty());
    assert_eq!(insert(store, 1, "a").await, Inserted::Stored);
    assert!(handoff.take().is_empty());
    let claimed = claim_one(store).await;
    assert_eq!(claimed.attempt, 1);
}

/// Generates one `#[tokio::test]` per case for a backend opened by `$open(capacity, window)`.
macro_rules! suite {
    ($open:ident) => {
        $crate::store::conformance::suite!(@cases $open;
            a_stored_delivery_is_claimed_once_with_its_body,
            a_redelivery_is_recognised_in_every_state,
            a_full_backlog_refuses_new_deliveries_but_not_redeliveries,
            a_completed_delivery_keeps_its_id_but_not_its_body,
            a_retry_is_due_at_its_time_and_not_before,
            an_expired_lease_is_claimed_again_and_the_old_holder_is_fenced_off,
            a_dead_letter_keeps_its_body_and_reason_until_replayed,
            replaying_dead_letters_by_event_leaves_the_others,
            a_list_is_filtered_newest_first_and_pages_by_time,
            the_history_holds_every_attempt_in_order,
            an_id_is_found_by_a_prefix,
            a_purge_removes_finished_deliveries_only,
            a_released_delivery_is_due_again_without_counting_the_attempt,
            counts_follow_every_state,
            a_claim_takes_at_most_what_was_asked_oldest_first,
            an_insert_wakes_a_waiting_worker,
            housekeeping_forgets_handled_ids_past_the_window,
            a_signed_and_a_recovered_delivery_of_one_event_are_stored_once,
            the_keys_of_stored_deliveries_are_held_in_every_state,
            checkpoints_are_kept_by_name,
            an_exclusive_lock_is_held_until_it_is_dropped,
            pages_neither_skip_nor_repeat_deliveries_received_at_the_same_time,
            counts_per_event_follow_every_state,
        );
    };
    (@cases $open:ident; $($case:ident,)*) => {
        mod conformance_suite {
            $crate::store::conformance::suite!(@tests $open; $($case,)*);
        }
    };
    (@tests $open:ident; $($case:ident,)*) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some(store) = super::$open(4, std::time::Duration::from_millis(200)).await
                else {
                    return;
                };
                $crate::store::conformance::$case(
                    $crate::store::conformance::AsStore::as_store(&store),
                )
                .await;
            }
        )*
    };
}
pub(crate) use suite;

/// The cases of a backend that claims deliveries for its process's worker as it stores them.
macro_rules! handoff_suite {
    ($open:ident) => {
        mod handoff_suite {
            $crate::store::conformance::suite!(@tests $open;
                a_delivery_stored_for_an_attached_worker_is_handed_over_leased,
                a_worker_without_a_free_slot_finds_the_delivery_pending,
                a_handed_over_delivery_whose_lease_expired_is_claimed_again,
                a_detached_worker_is_handed_nothing,
            );
        }
    };
}
pub(crate) use handoff_suite;

/// What the suite runs against: a store, or a guard that holds one (a temporary file, a
/// schema of its own) and cleans up after it.
pub(crate) trait AsStore {
    fn as_store(&self) -> &dyn Store;
}

impl<S: Store> AsStore for S {
    fn as_store(&self) -> &dyn Store {
        self
    }
}
