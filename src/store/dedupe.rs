//! Handling re-deliveries once: a store of delivery ids, keyed by the verified MAC.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    future::{ready, Future},
    pin::Pin,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{core::error::BoxError, core::signature::Signature};

/// The boxed future returned by [`DedupeStore`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>;

/// The default window in which a re-delivery is recognised: 24 hours.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// The default number of delivery ids the in-memory store keeps: 100 000 (about 10 MB).
pub const DEFAULT_DEDUPE_CAPACITY: usize = 100_000;

/// How long an unsettled claim blocks a re-delivery before [`MemoryStore`] treats it as
/// abandoned (its request was cancelled between claim and settle): 60 seconds.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// What a store knows of a delivery id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not seen within the window: the caller now holds the claim and must
    /// [`confirm`](DedupeStore::confirm) or [`release`](DedupeStore::release) it.
    New,
    /// Claimed by a request still being handed over (a concurrent re-delivery).
    InFlight,
    /// Handed over before, within the window: a re-delivery.
    Seen,
}

/// Remembers which deliveries were handed over, so that a re-delivery is answered 200 and not
/// handed over again.
///
/// Print.one sends no delivery id; the id is the verified signature, which is the MAC of the
/// exact body. A store shared by several replicas (a database, Redis) makes de-duplication work
/// across them; [`MemoryStore`] is the default for one process.
///
/// A claim is normally settled right after the hand-off, but a request can be cancelled in
/// between (the client went away): a store must let such a claim expire after a while (an
/// in-flight claim older than a minute, say) so the re-delivery is not refused forever.
pub trait DedupeStore: Send + Sync + 'static {
    /// Claims `id` unless it is in flight or was seen within the window.
    ///
    /// # Errors
    ///
    /// A store failure; the sender then gets 503 and delivers again later.
    fn claim<'a>(&'a self, id: &'a Signature) -> StoreFuture<'a, Claim>;

    /// Marks a claimed id as handed over.
    ///
    /// # Errors
    ///
    /// A store failure; it is logged (the delivery was handed over, so it still gets 200).
    fn confirm<'a>(&'a self, id: &'a Signature) -> StoreFuture<'a, ()>;

    /// Gives a claim back after the hand-off failed, so a later re-delivery is accepted.
    ///
    /// # Errors
    ///
    /// A store failure; it is logged.
    fn release<'a>(&'a self, id: &'a Signature) -> StoreFuture<'a, ()>;
}

/// The in-memory [`DedupeStore`]: bounded in time (the window) and in size (the capacity; the
/// oldest ids are forgotten first when it is full).
pub struct MemoryStore {
    window: Duration,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<[u8; 32], Entry>,
    order: VecDeque<([u8; 32], Instant)>,
}

#[derive(Clone, Copy)]
struct Entry {
    at: Instant,
    confirmed: bool,
}

impl MemoryStore {
    /// A store remembering at most `capacity` ids for `window` each.
    #[must_use]
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// The number of ids remembered now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no id is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn claim_now(&self, id: [u8; 32], now: Instant) -> Claim {
        let mut state = self.lock();
        state.forget_expired(now, self.window);
        if let Some(entry) = state.entries.get(&id) {
            if entry.confirmed {
                return Claim::Seen;
            }
            if now.duration_since(entry.at) < ABANDONED_AFTER {
                return Claim::InFlight;
            }
        }
        state.entries.insert(
            id,
            Entry {
                at: now,
                confirmed: false,
            },
        );
        state.order.push_back((id, now));
        while state.entries.len() > self.capacity || state.order.len() > 2 * self.capacity {
            state.forget_oldest();
        }
        Claim::New
    }

    fn settle(&self, id: [u8; 32], confirmed: bool) {
        let mut state = self.lock();
        if confirmed {
            if let Some(entry) = state.entries.get_mut(&id) {
                entry.confirmed = true;
            }
        } else {
            state.entries.remove(&id);
        }
    }
}

impl State {
    fn forget_expired(&mut self, now: Instant, window: Duration) {
        while let Some(&(_, at)) = self.order.front() {
            if now.duration_since(at) < window {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Drops the oldest id, unless it was released and claimed again since.
    fn forget_oldest(&mut self) {
        if let Some((id, at)) = self.order.pop_front() {
            if self.entries.get(&id).is_some_and(|entry| entry.at == at) {
                self.entries.remove(&id);
            }
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_DEDUPE_WINDOW, DEFAULT_DEDUPE_CAPACITY)
    }
}

impl DedupeStore for MemoryStore {
    fn claim<'a>(&'a self, id: &'a Signature) -> StoreFuture<'a, Claim> {
        Box::pin(ready(Ok(self.claim_now(*id.as_bytes(), Instant::now()))))
    }

    fn confirm<'a>(&'a self, id: &'a Signature) -> StoreFuture<'a, ()> {
        self.settle(*id.as_bytes(), true);
        Box::pin(ready(Ok(())))
    }

    fn release<'a>(&'a self, id: &'a Signature) -> StoreFuture<'a, ()> {
        self.settle(*id.as_bytes(), false);
        Box::pin(ready(Ok(())))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("window", &self.window)
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn a_confirmed_id_is_seen_and_an_unconfirmed_one_in_flight() {
        let store = MemoryStore::default();
        let now = Instant::now();
        assert_eq!(store.claim_now(id(1), now), Claim::New);
        assert_eq!(store.claim_now(id(1), now), Claim::InFlight);
        store.settle(id(1), true);
        assert_eq!(store.claim_now(id(1), now), Claim::Seen);
    }

    #[test]
    fn an_abandoned_claim_can_be_taken_over() {
        let store = MemoryStore::default();
        let start = Instant::now();
        assert_eq!(store.claim_now(id(1), start), Claim::New);
        let soon = start + Duration::from_secs(5);
        assert_eq!(store.claim_now(id(1), soon), Claim::InFlight);
        let later = start + ABANDONED_AFTER + Duration::from_secs(1);
        assert_eq!(store.claim_now(id(1), later), Claim::New);
        store.settle(id(1), true);
        assert_eq!(store.claim_now(id(1), later), Claim::Seen);
    }

    #[test]
    fn a_released_id_can_be_claimed_again() {
        let store = MemoryStore::default();
        let now = Instant::now();
        assert_eq!(store.claim_now(id(1), now), Claim::New);
        store.settle(id(1), false);
        assert_eq!(store.claim_now(id(1), now), Claim::New);
    }

    #[test]
    fn ids_are_forgotten_after_the_window() {
        let store = MemoryStore::new(Duration::from_secs(60), 10);
        let start = Instant::now();
        store.claim_now(id(1), start);
        store.settle(id(1), true);
        let later = start + Duration::from_secs(61);
        assert_eq!(store.claim_now(id(1), later), Claim::New);
    }

    #[test]
    fn memory_stays_within_capacity_forgetting_the_oldest() {
        let store = MemoryStore::new(DEFAULT_DEDUPE_WINDOW, 3);
        let now = Instant::now();
        for n in 0..10 {
            store.claim_now(id(n), now);
            store.settle(id(n), true);
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.claim_now(id(9), now), Claim::Seen);
        assert_eq!(store.claim_now(id(0), now), Claim::New);
        assert!(store.lock().order.len() <= 4);
    }

    #[test]
    fn a_release_and_reclaim_is_not_forgotten_by_the_stale_order_entry() {
        let store = MemoryStore::new(Duration::from_secs(60), 10);
        let start = Instant::now();
        store.claim_now(id(1), start);
        store.settle(id(1), false);
        let later = start + Duration::from_secs(30);
        store.claim_now(id(1), later);
        store.settle(id(1), true);
        let after_first_window = start + Duration::from_secs(61);
        assert_eq!(store.claim_now(id(1), after_first_window), Claim::Seen);
    }
}
