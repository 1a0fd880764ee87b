//! [`Handoff`]: deliveries claimed in the same step that stores them, for the worker of this
//! process.
//!
//! Without it, a delivery is written three times before it is forgotten: stored pending, then
//! claimed by the worker, then completed. A store that has a worker attached claims the
//! delivery for it as it stores it (one write less, and no claim to look it up), and passes
//! the claimed delivery over here once the write that holds it is durable. A delivery is
//! claimed this way only while the worker has a free slot; every other one is stored pending,
//! as without a worker, and claimed from the store as usual.
//!
//! The worker's free slots are counted here, for both ways a delivery reaches it: what is
//! claimed at insert, what it claims from the store, and what runs.
//!
//! It is also the receiver's flow control. While every slot is taken, a new delivery waits
//! up to [`SLOT_WAIT`] for one before it is stored pending ([`Handoff::reserve_within`]): the
//! worker and the requests share the process's cores, and a receiver that answers faster than
//! its worker handles would otherwise grow a backlog, store it, claim it back and write each
//! delivery three times over while the load lasts. The sender waits a few milliseconds more
//! for its 200 (it gives up after 30 s), and the work it sends is handled as fast as it comes.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use tokio::{sync::Notify, time::timeout};

/// How long a new delivery waits for a free slot of the worker while every slot is taken.
pub(crate) const SLOT_WAIT: Duration = Duration::from_millis(20);

use crate::store::record::Claimed;

/// The slots of the worker attached to a store, and what the store claimed for it.
#[derive(Debug, Default)]
pub struct Handoff {
    inner: Mutex<Inner>,
    ready: Notify,
    /// Woken when slots are given back.
    freed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// The lease of a delivery claimed at insert, while a worker is attached.
    attached: Option<Duration>,
    /// The attachment's number, so that only the worker that attached detaches.
    ticket: u64,
    /// How many deliveries the worker may hold at once.
    capacity: usize,
    /// How many it holds: running, waiting here, or reserved by a write not yet committed.
    held: usize,
    /// Claimed at insert, not yet taken by the worker.
    queue: VecDeque<Claimed>,
}

impl Handoff {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Attaches a worker that holds up to `capacity` deliveries, each claimed with `lease`,
    /// and returns the ticket that detaches it. `None` when a worker is attached already (the
    /// second one claims from the store).
    pub(crate) fn attach(&self, capacity: usize, lease: Duration) -> Option<u64> {
        let mut inner = self.lock();
        if inner.attached.is_some() {
            return None;
        }
        inner.attached = Some(lease);
        inner.capacity = capacity;
        inner.held = 0;
        inner.ticket += 1;
        Some(inner.ticket)
    }

    /// Detaches the worker that holds `ticket`: nothing more is claimed at insert. Returns
    /// what was claimed for it and not taken, for the worker to give back to the store.
    pub(crate) fn detach(&self, ticket: u64) -> Vec<Claimed> {
        let mut inner = self.lock();
        if inner.attached.is_none() || inner.ticket != ticket {
            return Vec::new();
        }
        inner.attached = None;
        inner.held = 0;
        let queued = inner.queue.drain(..).collect();
        drop(inner);
        self.freed.notify_waiters();
        queued
    }

    /// Gives back `count` reservations whose writes did not happen.
    pub(crate) fn cancel(&self, count: usize) {
        if count > 0 {
            let mut inner = self.lock();
            // Only a new delivery that found every slot taken waits for one.
            let waited_on = inner.held >= inner.capacity;
            inner.held = inner.held.saturating_sub(count);
            drop(inner);
            if waited_on {
                self.freed.notify_waiters();
            }
        }
    }

    /// Reserves a slot of the attached worker for a new delivery, waiting up to `limit` while
    /// every slot is taken. `None` at once when no worker is attached, or after `limit`: the
    /// delivery is then stored pending. A store asks before it writes a new delivery.
    pub(crate) async fn reserve_within(self: &Arc<Self>, limit: Duration) -> Option<Reservation> {
        // The common case, a free slot or no worker, takes the lock once and waits for nothing.
        if let Ok(answer) = self.try_reserve() {
            return answer;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the second look, so a slot given back in between wakes it.
            freed.as_mut().enable();
            if let Ok(answer) = self.try_reserve() {
                return answer;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || timeout(left, freed).await.is_err() {
                return None;
            }
        }
    }

    /// A slot when one is free, `None` when no worker is attached, `Err` while every slot is
    /// taken.
    fn try_reserve(self: &Arc<Self>) -> Result<Option<Reservation>, Full> {
        let mut inner = self.lock();
        let Some(lease) = inner.attached else {
            return Ok(None);
        };
        if inner.held >= inner.capacity {
            return Err(Full);
        }
        inner.held += 1;
        Ok(Some(Reservation {
            handoff: Arc::clone(self),
            lease,
            spent: AtomicBool::new(false),
        }))
    }

    /// Passes deliveries claimed at insert to the worker, once their write is durable (their
    /// reservations spent).
    pub(crate) fn deliver(&self, claimed: impl IntoIterator<Item = Claimed>) {
        let mut inner = self.lock();
        let before = inner.queue.len();
        inner.queue.extend(claimed);
        let added = inner.queue.len() > before;
        drop(inner);
        if added {
            self.ready.notify_one();
        }
    }

    /// What was claimed for the worker since it last looked.
    pub(crate) fn take(&self) -> Vec<Claimed> {
        self.lock().queue.drain(..).collect()
    }

    /// Resolves when something waits in [`Handoff::take`].
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }

    /// How many more deliveries the worker may hold.
    pub(crate) fn free(&self) -> usize {
        let inner = self.lock();
        inner.capacity.saturating_sub(inner.held)
    }

    /// The worker takes up to `wanted` of its free slots to claim from the store, and gets how
    /// many it took.
    pub(crate) fn take_slots(&self, wanted: usize) -> usize {
        let mut inner = self.lock();
        let taken = wanted.min(inner.capacity.saturating_sub(inner.held));
        inner.held += taken;
        taken
    }

    /// The worker gives back `count` slots: attempts that finished, or slots it took and did
    /// not fill.
    pub(crate) fn release_slots(&self, count: usize) {
        self.cancel(count);
    }
}

/// Every slot of the worker is taken.
#[derive(Debug)]
struct Full;

/// A slot of the worker held for one new delivery: spent when the delivery is stored claimed
/// (its slot then goes with the claimed delivery), given back when it is dropped unspent (a
/// re-delivery, a full backlog, a failed write, a caller that went away).
pub(crate) struct Reservation {
    handoff: Arc<Handoff>,
    lease: Duration,
    spent: AtomicBool,
}

impl Reservation {
    /// The lease to store the delivery claimed with.
    pub(crate) const fn lease(&self) -> Duration {
        self.lease
    }

    /// The delivery was stored claimed: its slot is the claimed delivery's now.
    pub(crate) fn spend(&self) {
        self.spent.store(true, Relaxed);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.spent.load(Relaxed) {
            self.handoff.cancel(1);
        }
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("lease", &self.lease)
            .field("spent", &self.spent.load(Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn claims_at_insert_only_for_an_attached_worker_with_a_free_slot() {
        let handoff = Arc::new(Handoff::default());
        assert!(handoff.reserve_within(Duration::ZERO).await.is_none());
        assert!(handoff.attach(2, LEASE).is_some());
        let reserved = handoff.reserve_within(Duration::ZERO).await.expect("free");
        reserved.spend();
        assert_eq!(handoff.take_slots(5), 1);
        assert!(handoff.reserve_within(Duration::ZERO).await.is_none());
        handoff.release_slots(1);
        assert_eq!(handoff.free(), 1);
        handoff.cancel(1);
        assert_eq!(handoff.free(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_delivery_waits_for_a_free_slot_but_not_longer_than_its_limit() {
        let handoff = Arc::new(Handoff::default());
        assert!(
            handoff.reserve_within(SLOT_WAIT).await.is_none(),
            "no worker"
        );
        let _ticket = handoff.attach(1, LEASE);
        let first = handoff
            .reserve_within(SLOT_WAIT)
            .await
            .expect("a free slot");
        assert_eq!(first.lease(), LEASE);
        first.spend();
        drop(first);
        let began = tokio::time::Instant::now();
        assert!(handoff.reserve_within(SLOT_WAIT).await.is_none());
        assert_eq!(
            began.elapsed(),
            SLOT_WAIT,
            "every slot taken: waits out its limit"
        );
        let freeing = Arc::clone(&handoff);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            freeing.release_slots(1);
        });
        let began = tokio::time::Instant::now();
        let second = handoff
            .reserve_within(SLOT_WAIT)
            .await
            .expect("the slot given back");
        assert_eq!(
            began.elapsed(),
            Duration::from_millis(5),
            "until a slot is given back"
        );
        drop(second);
        assert_eq!(
            handoff.free(),
            1,
            "an unspent reservation gives its slot back"
        );
    }

    #[tokio::test]
    async fn a_second_worker_is_not_attached_and_only_its_own_ticket_detaches_a_worker() {
        let handoff = Arc::new(Handoff::default());
        let reserve = || handoff.reserve_within(Duration::ZERO);
        let first = handoff.attach(1, LEASE).expect("attached");
        assert_eq!(handoff.attach(1, LEASE), None);
        assert!(handoff.detach(first).is_empty());
        assert!(reserve().await.is_none(), "detached");
        let second = handoff.attach(1, LEASE).expect("attached again");
        handoff.detach(first);
        assert!(reserve().await.is_some(), "a stale ticket detaches nobody");
        handoff.detach(second);
        assert!(reserve().await.is_none());
    }
}
