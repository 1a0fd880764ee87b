//! [`MemoryStore`]: deliveries in this process's memory, for tests and for receivers that may
//! lose what a crash interrupts.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime},
};

use tokio::sync::Notify;

use crate::{
    core::{delivery::Delivery, key::LogicalKey},
    store::{
        error::StoreError,
        handoff::{Handoff, Reservation, SLOT_WAIT},
        interface::{ChangedFuture, Exclusive, Sealed, Store, StoreFuture},
        record::{
            Attempt, Claim, Claimed, Counts, DeliveryId, DeliveryState, EventCounts, Filter,
            Inserted, Lease, StoredDelivery,
        },
        DEFAULT_CAPACITY, DEFAULT_DEDUPE_WINDOW, MAINTENANCE_BATCH,
    },
};

/// The default number of handled ids [`MemoryStore`] remembers for de-duplication: 100 000,
/// about 85 MB of heap (some 850 bytes each: the record without its body, and its place in the
/// maps by id and by logical key; `tests/memory_store.rs` measures it); the oldest are
/// forgotten first.
pub const DEFAULT_REMEMBERED: usize = 100_000;

/// Deliveries in this process's memory.
///
/// # Durability
///
/// **Everything it holds is lost when the process ends**: a crash, an OOM kill, a deploy or a
/// `kill -9` loses every delivery that got its 200 and was not handled yet, and Print.one
/// never sends those again. Use it for tests, or where such a loss is acceptable; the SQLite
/// store is the durable default.
///
/// Cloning is cheap: clones share the same deliveries.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
    window: Duration,
    remembered: usize,
    /// The names of the [`Exclusive`] locks held now.
    locks: Arc<Mutex<HashSet<String>>>,
    /// Claims for this process's worker as deliveries are stored.
    handoff: Arc<Handoff>,
}

#[derive(Default)]
struct State {
    /// Boxed, so that the table moves a pointer, not a record, when it grows or rehashes: it
    /// holds every remembered handled id, and ids come and go all the time.
    entries: IdMap<Box<Entry>>,
    /// The id of the delivery holding each logical key, by the key's digest.
    keys: HashMap<[u8; 32], DeliveryId, std::hash::BuildHasherDefault<IdHasher>>,
    checkpoints: HashMap<String, String>,
    /// Pending deliveries that are due, oldest first (ids whose entry moved on are skipped).
    ready: VecDeque<DeliveryId>,
    /// Pending deliveries waiting for their time, by (time, token).
    scheduled: BTreeMap<(SystemTime, u64), DeliveryId>,
    /// Leased deliveries by (expiry, token).
    leases: BTreeMap<(SystemTime, u64), DeliveryId>,
    /// Handled deliveries in the order they finished, for the de-duplication window.
    finished: VecDeque<(DeliveryId, SystemTime)>,
    counts: Counts,
    tokens: u64,
}

struct Entry {
    record: StoredDelivery,
    /// The delivery as it was accepted, handed out again by claims while the body is kept
    /// (boxed: a handled entry, remembered for days, keeps only the pointer's room).
    delivery: Option<Box<Delivery>>,
    token: u64,
    /// The digest of its logical key (the record keeps no key: it is only looked up).
    key: Option<[u8; 32]>,
}

/// Hashes a [`DeliveryId`] by its first 8 bytes. The id is a MAC under the webhook secret, so
/// nobody without the secret can choose ids that collide (forged deliveries never reach the
/// store), or, for a delivery recovered from the webhook log, a SHA-256 digest of an envelope
/// the API returned: the usual protection against hash flooding is not needed, and not paid
/// for.
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (slot, byte) in self.0.to_le_bytes().iter_mut().zip(bytes) {
            *slot ^= byte;
        }
        let mut word = [0; 8];
        let take = bytes.len().min(8);
        word[..take].copy_from_slice(&bytes[..take]);
        self.0 ^= u64::from_le_bytes(word);
    }
}

type IdMap<V> = HashMap<DeliveryId, V, std::hash::BuildHasherDefault<IdHasher>>;

impl MemoryStore {
    /// An empty store holding at most 10 000 waiting deliveries and remembering handled ids
    /// for 7 days (at most 100 000 of them).
    #[must_use]
    pub fn new() -> Self {
        Self::build(DEFAULT_CAPACITY, DEFAULT_DEDUPE_WINDOW, DEFAULT_REMEMBERED)
    }

    fn build(capacity: usize, window: Duration, remembered: usize) -> Self {
        let mut state = State::default();
        let now = crate::core::key::utc(time::OffsetDateTime::now_utc());
        state.checkpoints.insert("keyed-since".to_owned(), now);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                notify: Notify::new(),
                capacity: capacity.max(1),
                window,
                remembered: remembered.max(1),
                locks: Arc::default(),
                handoff: Arc::default(),
            }),
        }
    }

    /// Holds at most `capacity` deliveries waiting (pending or leased, at least 1); beyond it
    /// [`Store::insert`] answers [`Inserted::Full`] and the sender gets 503.
    #[must_use]
    pub fn with_capacity(self, capacity: usize) -> Self {
        Self::build(capacity, self.shared.window, self.shared.remembered)
    }

    /// Remembers handled ids for `window`, so a re-delivery within it is recognised.
    #[must_use]
    pub fn with_dedupe_window(self, window: Duration) -> Self {
        Self::build(self.shared.capacity, window, self.shared.remembered)
    }

    /// Remembers at most `count` handled ids (the oldest are forgotten first).
    #[must_use]
    pub fn with_remembered(self, count: usize) -> Self {
        Self::build(self.shared.capacity, self.shared.window, count)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn insert_now(&self, delivery: &Delivery, reserved: Option<&Reservation>) -> Inserted {
        let id = DeliveryId::of(delivery);
        let mut record = StoredDelivery::accepted(delivery);
        let digest = record.logical_key.take().as_deref().map(LogicalKey::digest);
        let mut state = self.lock();
        let known_key = digest.is_some_and(|key| state.keys.contains_key(&key));
        if known_key || state.entries.contains_key(&id) {
            return Inserted::Duplicate;
        }
        if state.counts.backlog() >= self.shared.capacity as u64 {
            return Inserted::Full;
        }
        if let Some(key) = digest {
            state.keys.insert(key, id);
        }
        let entry = Entry {
            record,
            delivery: Some(Box::new(delivery.clone())),
            token: 0,
            key: digest,
        };
        state.entries.insert(id, Box::new(entry));
        state.counts.pending += 1;
        let handed = reserved.and_then(|slot| state.lease(id, SystemTime::now(), slot.lease()));
        if handed.is_none() {
            state.ready.push_back(id);
        }
        drop(state);
        if let (Some(claimed), Some(slot)) = (handed, reserved) {
            slot.spend();
            self.shared.handoff.deliver([claimed]);
        } else {
            self.shared.notify.notify_one();
        }
        Inserted::Stored
    }

    fn claim_now(&self, max: usize, lease: Duration) -> Claim {
        let now = SystemTime::now();
        let mut state = self.lock();
        state.expire_leases(now);
        state.make_due(now);
        let mut claim = Claim::default();
        while claim.claimed.len() < max {
            let Some(id) = state.ready.pop_front() else {
                break;
            };
            if let Some(claimed) = state.lease(id, now, lease) {
                claim.claimed.push(claimed);
            }
        }
        let next_retry = state.scheduled.keys().next().map(|key| key.0);
        let next_expiry = state.leases.keys().next().map(|key| key.0);
        claim.next_due = next_retry.into_iter().chain(next_expiry).min();
        claim
    }

    fn settle(&self, lease: &Lease, attempt: &Attempt, outcome: Outcome) -> Result<(), StoreError> {
        let now = SystemTime::now();
        let mut state = self.lock();
        state.unlease(lease)?;
        let entry = state
            .entries
            .get_mut(&lease.id)
            .ok_or_else(|| lost(lease))?;
        let record = &mut entry.record;
        record.history.push(attempt.clone());
        record.last_error.clone_from(&attempt.error);
        match outcome {
            Outcome::Done => {
                entry.delivery = None;
                record.state = DeliveryState::Done;
                record.body = None;
                record.finished_at = Some(now);
                record.next_attempt_at = None;
                state.counts.done += 1;
                state.finished.push_back((lease.id, now));
                state.forget_beyond(self.shared.remembered);
            }
            Outcome::Retry(at) => {
                record.state = DeliveryState::Pending;
                record.next_attempt_at = Some(at);
                let token = entry.token;
                state.counts.pending += 1;
                state.schedule(lease.id, at, token, now);
            }
            Outcome::Dead => {
                record.state = DeliveryState::Dead;
                record.finished_at = Some(now);
                record.next_attempt_at = None;
                state.counts.dead += 1;
            }
        }
        Ok(())
    }

    fn release_now(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.unlease(lease)?;
        if let Some(entry) = state.entries.get_mut(&lease.id) {
            entry.record.state = DeliveryState::Pending;
            entry.record.attempts = entry.record.attempts.saturating_sub(1);
            entry.record.next_attempt_at = Some(SystemTime::now());
        }
        state.counts.pending += 1;
        state.ready.push_front(lease.id);
        drop(state);
        self.shared.notify.notify_one();
        Ok(())
    }

    fn list_now(&self, filter: &Filter) -> Vec<StoredDelivery> {
        let state = self.lock();
        let mut found: Vec<StoredDelivery> = state
            .entries
            .values()
            .filter(|entry| filter.matches(&entry.record))
            .map(|entry| StoredDelivery {
                history: Vec::new(),
                ..entry.record.clone()
            })
            .collect();
        drop(state);
        found.sort_by(|a, b| b.received_at.cmp(&a.received_at).then(b.id.cmp(&a.id)));
        found.truncate(filter.limit);
        found
    }

    fn replay_now(&self, ids: &[DeliveryId]) -> u64 {
        let mut state = self.lock();
        let mut replayed = 0;
        for id in ids {
            let Some(entry) = state.entries.get_mut(id) else {
                continue;
            };
            if entry.record.state != DeliveryState::Dead {
                continue;
            }
            entry.record.state = DeliveryState::Pending;
            entry.record.attempts = 0;
            entry.record.finished_at = None;
            entry.record.next_attempt_at = Some(SystemTime::now());
            state.counts.dead -= 1;
            state.counts.pending += 1;
            state.ready.push_back(*id);
            replayed += 1;
        }
        drop(state);
        if replayed > 0 {
            self.shared.notify.notify_one();
        }
        replayed
    }

    fn dead_ids(&self, filter: &Filter) -> Vec<DeliveryId> {
        let filter = Filter {
            state: Some(DeliveryState::Dead),
            before_id: None,
            ..filter.clone()
        };
        let state = self.lock();
        state
            .entries
            .values()
            .filter(|entry| filter.matches(&entry.record))
            .map(|entry| entry.record.id)
            .collect()
    }

    fn event_counts_now(&self) -> Vec<EventCounts> {
        let state = self.lock();
        let mut events: BTreeMap<&str, Counts> = BTreeMap::new();
        for entry in state.entries.values() {
            let record = &entry.record;
            events
                .entry(record.event_name())
                .or_default()
                .add(record.state, 1);
        }
        events
            .into_iter()
            .map(|(event, counts)| EventCounts {
                event: event.to_owned(),
                counts,
            })
            .collect()
    }

    fn purge_now(&self, before: SystemTime) -> u64 {
        let mut state = self.lock();
        let old: Vec<DeliveryId> = state
            .entries
            .values()
            .filter(|entry| entry.record.finished_at.is_some_and(|at| at < before))
            .map(|entry| entry.record.id)
            .collect();
        for id in &old {
            state.remove(id);
        }
        old.len() as u64
    }

    fn maintain_now(&self) -> u64 {
        let Some(horizon) = SystemTime::now().checked_sub(self.shared.window) else {
            return 0;
        };
        let mut state = self.lock();
        let mut removed = 0;
        while removed < MAINTENANCE_BATCH {
            let Some(&(id, at)) = state.finished.front() else {
                break;
            };
            if at >= horizon {
                break;
            }
            state.finished.pop_front();
            if state.is_done_at(&id, at) {
                state.remove(&id);
                removed += 1;
            }
        }
        removed as u64
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Done,
    Retry(SystemTime),
    Dead,
}

fn lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost(lease.id.short())
}

impl State {
    /// Leased deliveries whose lease expired are due again.
    fn expire_leases(&mut self, now: SystemTime) {
        while let Some(entry) = self.leases.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.record.state = DeliveryState::Pending;
                self.counts.leased -= 1;
                self.counts.pending += 1;
                self.ready.push_back(id);
            }
        }
    }

    /// Retries whose time came are due.
    fn make_due(&mut self, now: SystemTime) {
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            self.ready.push_back(id);
        }
    }

    fn lease(&mut self, id: DeliveryId, now: SystemTime, lease: Duration) -> Option<Claimed> {
        self.tokens += 1;
        let token = self.tokens;
        let entry = self.entries.get_mut(&id)?;
        if entry.record.state != DeliveryState::Pending {
            return None;
        }
        let delivery = match &entry.delivery {
            Some(delivery) => Delivery::clone(delivery),
            None => entry.record.to_delivery()?,
        };
        let expires_at = now + lease;
        entry.token = token;
        entry.record.state = DeliveryState::Leased;
        entry.record.attempts += 1;
        let attempt = entry.record.attempts;
        self.counts.pending -= 1;
        self.counts.leased += 1;
        self.leases.insert((expires_at, token), id);
        Some(Claimed {
            delivery,
            lease: Lease {
                id,
                token,
                expires_at,
            },
            attempt,
        })
    }

    /// Ends `lease`, or says it was lost.
    fn unlease(&mut self, lease: &Lease) -> Result<(), StoreError> {
        let current = self.entries.get(&lease.id).is_some_and(|entry| {
            entry.token == lease.token && entry.record.state == DeliveryState::Leased
        });
        if !current {
            return Err(lost(lease));
        }
        self.leases.remove(&(lease.expires_at, lease.token));
        self.counts.leased -= 1;
        Ok(())
    }

    fn schedule(&mut self, id: DeliveryId, at: SystemTime, token: u64, now: SystemTime) {
        if at <= now {
            self.ready.push_back(id);
        } else {
            self.scheduled.insert((at, token), id);
        }
    }

    fn is_done_at(&self, id: &DeliveryId, at: SystemTime) -> bool {
        self.entries.get(id).is_some_and(|entry| {
            entry.record.state == DeliveryState::Done && entry.record.finished_at == Some(at)
        })
    }

    /// Forgets the oldest handled ids beyond `remembered`.
    fn forget_beyond(&mut self, remembered: usize) {
        while self.counts.done > remembered as u64 {
            let Some((id, at)) = self.finished.pop_front() else {
                break;
            };
            if self.is_done_at(&id, at) {
                self.remove(&id);
            }
        }
    }

    fn remove(&mut self, id: &DeliveryId) {
        let Some(entry) = self.entries.remove(id) else {
            return;
        };
        if let Some(key) = &entry.key {
            self.keys.remove(key);
        }
        match entry.record.state {
            DeliveryState::Done => self.counts.done -= 1,
            DeliveryState::Dead => self.counts.dead -= 1,
            DeliveryState::Pending => self.counts.pending -= 1,
            DeliveryState::Leased => self.counts.leased -= 1,
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.shared.capacity)
            .field("window", &self.shared.window)
            .field("counts", &self.lock().counts)
            .finish_non_exhaustive()
    }
}

impl Sealed for MemoryStore {
    fn handoff(&self) -> Option<&Handoff> {
        Some(&*self.shared.handoff)
    }
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory (lost when the process ends)".to_owned()
    }

    fn is_durable(&self) -> bool {
        false
    }

    fn insert<'a>(&'a self, delivery: &'a Delivery) -> StoreFuture<'a, Inserted> {
        Box::pin(async move {
            let reserved = self.shared.handoff.reserve_within(SLOT_WAIT).await;
            // An unspent slot (a re-delivery, a full backlog) goes back as it is dropped.
            Ok(self.insert_now(delivery, reserved.as_ref()))
        })
    }

    fn claim(&self, max: usize, lease: Duration) -> StoreFuture<'_, Claim> {
        ready(Ok(self.claim_now(max, lease)))
    }

    fn complete<'a>(&'a self, lease: &'a Lease, attempt: &'a Attempt) -> StoreFuture<'a, ()> {
        ready(self.settle(lease, attempt, Outcome::Done))
    }

    fn retry<'a>(
        &'a self,
        lease: &'a Lease,
        attempt: &'a Attempt,
        at: SystemTime,
    ) -> StoreFuture<'a, ()> {
        ready(self.settle(lease, attempt, Outcome::Retry(at)))
    }

    fn dead_letter<'a>(&'a self, lease: &'a Lease, attempt: &'a Attempt) -> StoreFuture<'a, ()> {
        ready(self.settle(lease, attempt, Outcome::Dead))
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        ready(self.release_now(lease))
    }

    fn list<'a>(&'a self, filter: &'a Filter) -> StoreFuture<'a, Vec<StoredDelivery>> {
        ready(Ok(self.list_now(filter)))
    }

    fn get<'a>(&'a self, id: &'a DeliveryId) -> StoreFuture<'a, Option<StoredDelivery>> {
        let found = self
            .lock()
            .entries
            .get(id)
            .map(|entry| entry.record.clone());
        ready(Ok(found))
    }

    fn resolve<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<DeliveryId>> {
        let prefix = prefix.trim().to_ascii_lowercase();
        let state = self.lock();
        let found = state
            .entries
            .keys()
            .filter(|id| id.to_string().starts_with(&prefix))
            .take(2)
            .copied()
            .collect();
        ready(Ok(found))
    }

    fn replay<'a>(&'a self, ids: &'a [DeliveryId]) -> StoreFuture<'a, u64> {
        ready(Ok(self.replay_now(ids)))
    }

    fn replay_dead<'a>(&'a self, filter: &'a Filter) -> StoreFuture<'a, u64> {
        let ids = self.dead_ids(filter);
        ready(Ok(self.replay_now(&ids)))
    }

    fn purge(&self, before: SystemTime) -> StoreFuture<'_, u64> {
        ready(Ok(self.purge_now(before)))
    }

    fn maintain(&self) -> StoreFuture<'_, u64> {
        ready(Ok(self.maintain_now()))
    }

    fn counts(&self) -> StoreFuture<'_, Counts> {
        ready(Ok(self.lock().counts))
    }

    fn changed(&self) -> ChangedFuture<'_> {
        Box::pin(self.shared.notify.notified())
    }

    fn event_counts(&self) -> StoreFuture<'_, Vec<EventCounts>> {
        ready(Ok(self.event_counts_now()))
    }

    fn holds<'a>(&'a self, keys: &'a [LogicalKey]) -> StoreFuture<'a, Vec<bool>> {
        let state = self.lock();
        let held = keys
            .iter()
            .map(|key| state.keys.contains_key(&key.digest()))
            .collect();
        ready(Ok(held))
    }

    fn checkpoint<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<String>> {
        ready(Ok(self.lock().checkpoints.get(name).cloned()))
    }

    fn set_checkpoint<'a>(&'a self, name: &'a str, value: &'a str) -> StoreFuture<'a, ()> {
        self.lock()
            .checkpoints
            .insert(name.to_owned(), value.to_owned());
        ready(Ok(()))
    }

    fn try_exclusive<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Exclusive>> {
        let locks = Arc::clone(&self.shared.locks);
        let taken = locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned());
        let held = taken.then(|| {
            Exclusive::new(Held {
                locks,
                name: name.to_owned(),
            })
        });
        ready(Ok(held))
    }
}

/// A lock of [`MemoryStore::try_exclusive`]: released when dropped.
struct Held {
    locks: Arc<Mutex<HashSet<String>>>,
    name: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

fn ready<'a, T: Send + 'a>(value: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unused_async)]
    async fn store(capacity: usize, window: Duration) -> Option<MemoryStore> {
        Some(
            MemoryStore::new()
                .with_capacity(capacity)
                .with_dedupe_window(window),
        )
    }

    crate::store::conformance::suite!(store);
    crate::store::conformance::handoff_suite!(store);

    #[tokio::test]
    async fn forgets_the_oldest_handled_ids_beyond_its_limit() {
        use crate::store::conformance::{delivery, settle_done};
        let store = MemoryStore::new().with_remembered(2);
        for n in 0..4 {
            store
                .insert(&delivery(n, "order_status_update"))
                .await
                .unwrap();
            settle_done(&store).await;
        }
        assert_eq!(store.counts().await.unwrap().done, 2);
        let first = delivery(0, "order_status_update");
        assert_eq!(store.insert(&first).await.unwrap(), Inserted::Stored);
        let last = delivery(3, "order_status_update");
        assert_eq!(store.insert(&last).await.unwrap(), Inserted::Duplicate);
    }
}
