//! [`Worker`]: claims stored deliveries and runs the registered [`Handler`] on them, with
//! bounded concurrency, leases, retries with backoff, panic isolation, dead letters and a
//! bounded graceful shutdown.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{
    sync::oneshot,
    task::{Id, JoinError, JoinHandle, JoinSet},
    time::{sleep, sleep_until, Instant},
};
use tracing::Instrument as _;

use crate::{
    store::{
        handoff::Handoff, Claimed, DeliveryState, Filter, Lease, SharedStore, StoreError,
        MAINTENANCE_BATCH,
    },
    worker::{
        attempt,
        handler::Handler,
        metrics::Metrics,
        retry::RetryPolicy,
        settle::Settler,
        tally::{Tally, WorkerReport},
    },
};

/// The default time [`WorkerHandle::shutdown`] lets running and due deliveries finish: 30 s.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default lease on a claimed delivery: 30 s. A delivery whose worker died is taken again
/// once it expires; a handler that runs longer may run twice.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// The default number of handlers running at once: 4.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// How often an idle worker looks for work it was not told about (another process stored or
/// replayed it, a lease expired).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long a worker waits before it asks a failing store again.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// How often the worker runs the store's housekeeping.
const MAINTAIN_EVERY: Duration = Duration::from_secs(30);
/// How often the worker reads how many deliveries the store holds in each state, for the
/// backlog in [`Metrics`] and the `metrics` gauges.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Runs the registered [`Handler`] on every delivery in a store, after its sender got the 200.
///
/// ```
/// use printone_webhooks::{store::MemoryStore, worker::Worker, BoxError, Delivery};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
/// let store = MemoryStore::new();
/// let worker = Worker::new(store.clone(), |delivery: Delivery| async move {
///     println!("handling {}", delivery.id());
///     Ok::<_, BoxError>(())
/// })
/// .with_concurrency(8)
/// .spawn();
/// // … serve `VerifyLayer::new(verifier).store_in(store)` until the shutdown signal …
/// let report = worker.shutdown().await?;
/// assert_eq!(report.handled, 0);
/// # Ok(()) }
/// ```
///
/// A failed attempt (an error, a panic, which never takes the worker down) is retried with
/// backoff by the [`RetryPolicy`]; a [`Permanent`](crate::worker::Permanent) failure, or the
/// last attempt's, dead-letters the delivery in the store (logged at error level with the
/// event name, data id and reason, never the body).
pub struct Worker {
    store: SharedStore,
    handler: Arc<dyn Handler>,
    concurrency: usize,
    lease: Duration,
    retry: RetryPolicy,
    shutdown_timeout: Duration,
    metrics: Metrics,
}

impl Worker {
    /// A worker running `handler` on the deliveries of `store`: 4 at a time, with 30 s leases,
    /// the default [`RetryPolicy`] and a 30 s shutdown deadline until told otherwise.
    pub fn new(store: impl Into<SharedStore>, handler: impl Handler) -> Self {
        Self {
            store: store.into(),
            handler: Arc::new(handler),
            concurrency: DEFAULT_CONCURRENCY,
            lease: DEFAULT_LEASE,
            retry: RetryPolicy::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            metrics: Metrics::new(),
        }
    }

    /// Runs up to `concurrency` handlers at once (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets the lease on a claimed delivery (at least 1 ms): keep it above your slowest
    /// handler, since a delivery whose lease expired is taken again.
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// Sets how failed attempts are retried.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets how long [`WorkerHandle::shutdown`] lets running and due deliveries finish.
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Counts into `metrics` (shared with the receiver's, `VerifyLayer::with_metrics` or
    /// `WebhookConfig::with_metrics`, for one view).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The counters of this worker.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts the worker on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use = "keep the handle to drain the worker on shutdown"]
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = oneshot::channel();
        let metrics = self.metrics.clone();
        tracing::info!(store = self.store.describe(), "worker started");
        let join = tokio::spawn(Run::new(self).run(stopped));
        WorkerHandle {
            stop,
            join,
            metrics,
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("store", &self.store)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .field("retry", &self.retry)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// A running worker's state.
struct Run {
    worker: Worker,
    /// Each attempt's task ends with whether it made its delivery due again (a retry).
    running: JoinSet<bool>,
    /// The lease each running attempt holds, to give it back if the attempt is cut short.
    holding: HashMap<Id, Lease>,
    tally: Arc<Tally>,
    settler: Settler,
    /// When the next pending delivery falls due, as the last claim said.
    next_due: Option<SystemTime>,
    /// Set once shutdown began: when it must end.
    deadline: Option<Instant>,
    /// Set while the store fails: when to ask it again.
    store_retry: Option<Instant>,
    /// Whether the store may hold due deliveries this worker was not handed: set at start, by
    /// a wake-up from the store and by every timer; cleared by a claim that found fewer than
    /// it asked for.
    look: bool,
    /// The store's hand-off this worker is attached to, by its ticket; `None` when the store
    /// has none, or another worker of this process holds it.
    attached: Option<u64>,
    /// The worker's slots when it is not attached to the store's hand-off.
    own: Handoff,
}

/// The slots of a worker: the store's hand-off when it attached there, else its own.
fn slots<'a>(store: &'a SharedStore, own: &'a Handoff, attached: Option<u64>) -> &'a Handoff {
    match store.handoff() {
        Some(handoff) if attached.is_some() => handoff,
        _ => own,
    }
}

impl Run {
    fn new(worker: Worker) -> Self {
        let tally = Arc::new(Tally::default());
        let settler = Settler {
            store: worker.store.clone(),
            retry: worker.retry,
            metrics: worker.metrics.clone(),
            tally: Arc::clone(&tally),
        };
        let (concurrency, lease) = (worker.concurrency, worker.lease);
        let attached = worker
            .store
            .handoff()
            .and_then(|handoff| handoff.attach(concurrency, lease));
        let own = Handoff::default();
        let _ = own.attach(concurrency, lease);
        Self {
            worker,
            running: JoinSet::new(),
            holding: HashMap::new(),
            tally,
            settler,
            next_due: None,
            deadline: None,
            store_retry: None,
            look: true,
            attached,
            own,
        }
    }

    fn slots(&self) -> &Handoff {
        slots(&self.worker.store, &self.own, self.attached)
    }

    fn free(&self) -> usize {
        self.slots().free()
    }

    /// Starts what the store claimed for this worker as it stored it.
    fn take_handed(&mut self) {
        for claimed in self.slots().take() {
            self.start(claimed);
        }
    }

    async fn run(mut self, mut stopped: oneshot::Receiver<()>) -> WorkerReport {
        let mut maintain = tokio::time::interval(MAINTAIN_EVERY);
        let mut count = tokio::time::interval(COUNT_EVERY);
        count.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.take_handed();
            self.claim().await;
            if self.drained() {
                return self.finish().await;
            }
            let wait = self.wait();
            let deadline = self.deadline;
            let claimable = self.free() > 0 && self.store_retry.is_none();
            let attached = self.attached.is_some();
            let handed = slots(&self.worker.store, &self.own, self.attached);
            tokio::select! {
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    self.joined(joined).await;
                    self.join_ready().await;
                }
                signal = &mut stopped, if deadline.is_none() => {
                    self.begin_shutdown(signal.is_ok());
                }
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    return self.give_up().await;
                }
                () = handed.ready(), if attached => {}
                () = self.worker.store.changed(), if claimable => self.look = true,
                () = sleep(wait) => {
                    self.store_retry = None;
                    self.look = true;
                }
                _ = maintain.tick() => self.maintain().await,
                _ = count.tick() => self.read_counts().await,
            }
        }
    }

    /// Claims what is due for the free slots, once a quarter of them are free (or nothing
    /// runs), so that a busy worker claims in batches rather than one delivery at a time.
    async fn claim(&mut self) {
        let free = self.free();
        let batch = (self.worker.concurrency / 4).max(1);
        if !self.look
            || free == 0
            || self.store_retry.is_some()
            || (free < batch && !self.running.is_empty())
        {
            return;
        }
        let taken = self.slots().take_slots(free);
        if taken == 0 {
            return;
        }
        match self.worker.store.claim(taken, self.worker.lease).await {
            Ok(claim) => {
                self.next_due = claim.next_due;
                let found = claim.claimed.len();
                self.slots().release_slots(taken.saturating_sub(found));
                self.look = found >= taken;
                for claimed in claim.claimed {
                    self.start(claimed);
                }
            }
            Err(error) => {
                self.slots().release_slots(taken);
                self.store_failed("claim", &error);
            }
        }
    }

    fn start(&mut self, claimed: Claimed) {
        let span = tracing::info_span!(
            "webhook_delivery",
            event = claimed.delivery.event_header(),
            id = claimed.delivery.id(),
            attempt = claimed.attempt,
        );
        let lease = claimed.lease;
        let attempt = self.worker.handler.handle(claimed.delivery.clone());
        let settler = self.settler.clone();
        let task = async move {
            let finished = attempt::run(claimed, attempt).await;
            settler.settle(finished).await
        };
        let task = self.running.spawn(task.instrument(span));
        self.holding.insert(task.id(), lease);
    }

    /// How long to sleep when nothing else happens: until the next retry is due, the store may
    /// be asked again, or the next poll.
    fn wait(&self) -> Duration {
        if let Some(at) = self.store_retry {
            return at.saturating_duration_since(Instant::now());
        }
        let until_due = self.next_due.map_or(POLL_INTERVAL, |due| {
            due.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        until_due.min(POLL_INTERVAL)
    }

    fn store_failed(&mut self, operation: &'static str, error: &StoreError) {
        tracing::error!(
            operation,
            kind = error.as_str(),
            error = %error,
            "the store failed; the worker tries again in a second"
        );
        self.store_retry = Some(Instant::now() + STORE_RETRY);
    }

    /// Forgets a finished task; one that was cut short (or panicked outside its handler) gives
    /// its delivery back.
    async fn joined(&mut self, joined: Result<(Id, bool), JoinError>) {
        self.slots().release_slots(1);
        match joined {
            Ok((id, retried)) => {
                self.holding.remove(&id);
                // Without a hand-off every new delivery waits in the store: look after each
                // attempt, as a freed slot is for the next of them.
                self.look |= retried || self.attached.is_none();
            }
            Err(error) => {
                if error.is_panic() {
                    tracing::error!("recording an attempt panicked; the delivery is given back");
                }
                if let Some(lease) = self.holding.remove(&error.id()) {
                    self.release(&lease).await;
                    self.look = true;
                }
            }
        }
    }

    /// Forgets every task that already finished, so the next claim fills all free slots at once.
    async fn join_ready(&mut self) {
        while let Some(joined) = self.running.try_join_next_with_id() {
            self.joined(joined).await;
        }
    }

    fn begin_shutdown(&mut self, asked: bool) {
        if asked {
            tracing::info!(
                running = self.running.len(),
                "worker stopping: finishing running and due deliveries"
            );
        }
        self.deadline = Some(Instant::now() + self.worker.shutdown_timeout);
        // A wake-up that came while every slot was taken has not been seen yet: the drain
        // looks at the store once more before it can end.
        self.look = true;
    }

    /// Whether a shutdown has nothing left to wait for: nothing runs, and nothing is due now.
    /// With a store that keeps nothing, a retry falling due before the deadline is waited for
    /// too (it would be lost); a durable store keeps it for the next start.
    fn drained(&self) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        // `look` is still set when the store may hold due deliveries no claim has asked for.
        if self.look || !self.running.is_empty() || self.store_retry.is_some() {
            return false;
        }
        let now = SystemTime::now();
        if self.worker.store.is_durable() {
            return self.next_due.is_none_or(|due| due > now);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.next_due.is_none_or(|due| due > now + remaining)
    }

    /// The deadline passed: cut the running attempts short and give their deliveries back.
    async fn give_up(mut self) -> WorkerReport {
        tracing::warn!(
            running = self.running.len(),
            "shutdown deadline passed; cutting the running attempts short"
        );
        self.running.abort_all();
        while let Some(joined) = self.running.join_next_with_id().await {
            // An attempt that finished before it saw the abort was recorded as usual.
            self.joined(joined).await;
        }
        self.finish().await
    }

    /// Gives a delivery whose attempt was cut short back to the store, due again at once.
    async fn release(&self, lease: &Lease) {
        if let Err(error) = self.worker.store.release(lease).await {
            tracing::warn!(
                id = lease.id.short(),
                error = %error,
                "could not give a delivery back; it is tried again when its lease expires"
            );
        }
    }

    async fn finish(mut self) -> WorkerReport {
        self.detach().await;
        let left = self.leftovers().await;
        let report = self.tally.report(left);
        tracing::info!(
            handled = report.handled,
            dead_lettered = report.dead_lettered,
            left = report.left,
            attempts_failed = report.attempts_failed,
            "worker stopped"
        );
        report
    }

    /// Stops taking deliveries claimed at insert, and gives back those not started.
    async fn detach(&mut self) {
        let Some(ticket) = self.attached.take() else {
            return;
        };
        let Some(handoff) = self.worker.store.handoff() else {
            return;
        };
        for claimed in handoff.detach(ticket) {
            self.release(&claimed.lease).await;
        }
    }

    /// Counts what is still waiting; with a store that keeps nothing, logs each as lost.
    async fn leftovers(&self) -> u64 {
        let store = &self.worker.store;
        let Ok(counts) = store.counts().await else {
            return 0;
        };
        let left = counts.backlog();
        if left == 0 {
            return 0;
        }
        if store.is_durable() {
            tracing::info!(left, "deliveries left stored for the next start");
            return left;
        }
        let waiting = Filter {
            limit: usize::MAX,
            ..Filter::default()
        };
        for delivery in store.list(&waiting).await.unwrap_or_default() {
            if matches!(
                delivery.state,
                DeliveryState::Pending | DeliveryState::Leased
            ) {
                tracing::error!(
                    event = delivery.event_name(),
                    data_id = delivery.data_id.as_deref().unwrap_or("-"),
                    id = delivery.id.short(),
                    attempts = delivery.attempts,
                    "delivery lost: it got its 200, was not handled, and the memory store keeps nothing"
                );
            }
        }
        left
    }

    async fn read_counts(&self) {
        if let Ok(counts) = self.worker.store.counts().await {
            self.worker.metrics.set_counts(&counts);
        }
    }

    async fn maintain(&mut self) {
        let store = &self.worker.store;
        // Small batches, so the writer is never held for long.
        loop {
            match store.maintain().await {
                Ok(removed) if removed > 0 => {
                    tracing::debug!(removed, "forgot handled ids past the de-duplication window");
                    if removed < MAINTENANCE_BATCH as u64 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Ok(_) => break,
                Err(error) => {
                    self.store_failed("maintain", &error);
                    break;
                }
            }
        }
        self.read_counts().await;
    }
}

impl Drop for Run {
    /// A worker that ended without its shutdown (its task was dropped) is detached too; what
    /// was claimed for it waits for its lease to expire.
    fn drop(&mut self) {
        if let (Some(ticket), Some(handoff)) = (self.attached, self.worker.store.handoff()) {
            drop(handoff.detach(ticket));
        }
    }
}

/// Controls a spawned [`Worker`].
#[derive(Debug)]
pub struct WorkerHandle {
    stop: oneshot::Sender<()>,
    join: JoinHandle<WorkerReport>,
    metrics: Metrics,
}

impl WorkerHandle {
    /// The worker's counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops claiming new work once nothing is due, lets running attempts and what falls due
    /// finish within the shutdown deadline, then reports. What is left stays in a durable store
    /// for the next start; with the memory store it is lost, and each delivery is logged.
    ///
    /// Stop the server first, so nothing is stored after the worker stopped.
    ///
    /// # Errors
    ///
    /// The [`JoinError`] of the worker task if it was cancelled from outside (a panicking
    /// handler never fails the worker: it is caught and counted).
    pub async fn shutdown(self) -> Result<WorkerReport, JoinError> {
        let _ = self.stop.send(());
        self.join.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core::{delivery::Delivery, error::BoxError},
        store::{conformance::delivery, DeliveryId, MemoryStore, Store},
        worker::handler::Permanent,
    };
    use std::sync::{
        atomic::{AtomicUsize, Ordering::SeqCst},
        Mutex,
    };

    fn quick_retry(attempts: u32) -> RetryPolicy {
        RetryPolicy::new(attempts).with_backoff(Duration::from_millis(1), Duration::from_millis(4))
    }

    async fn stored(store: &MemoryStore, count: u32) {
        for n in 0..count {
            store
                .insert(&delivery(n, "order_status_update"))
                .await
                .unwrap();
        }
    }

    async fn state_of(store: &MemoryStore, n: u32) -> crate::store::StoredDelivery {
        let id = DeliveryId::of(&delivery(n, "order_status_update"));
        store.get(&id).await.unwrap().expect("stored")
    }

    #[tokio::test]
    async fn a_failing_handler_is_retried_until_it_succeeds() {
        let store = MemoryStore::new();
        stored(&store, 1).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let handler = move |_: Delivery| {
            let call = counter.fetch_add(1, SeqCst);
            async move {
                if call < 2 {
                    Err("not yet")
                } else {
                    Ok(())
                }
            }
        };
        let worker = Worker::new(store.clone(), handler)
            .with_retry(quick_retry(5))
            .spawn();
        let report = worker.shutdown().await.unwrap();
        assert_eq!(calls.load(SeqCst), 3);
        assert_eq!(
            (
                report.handled,
                report.attempts_failed,
                report.retries_scheduled,
                report.dead_lettered
            ),
            (1, 2, 2, 0)
        );
        assert_eq!(state_of(&store, 0).await.state, DeliveryState::Done);
    }

    #[tokio::test]
    async fn a_handler_that_always_fails_dead_letters_the_delivery_in_the_store() {
        let store = MemoryStore::new();
        stored(&store, 2).await;
        let handler = |_: Delivery| async { Err::<(), _>("database down") };
        let worker = Worker::new(store.clone(), handler)
            .with_retry(quick_retry(3))
            .spawn();
        let report = worker.shutdown().await.unwrap();
        assert_eq!(
            (report.dead_lettered, report.attempts_failed, report.left),
            (2, 6, 0)
        );
        let dead = state_of(&store, 0).await;
        assert_eq!(dead.state, DeliveryState::Dead);
        assert_eq!(dead.attempts, 3);
        assert_eq!(dead.last_error.as_deref(), Some("database down"));
        assert!(
            dead.body.is_some(),
            "a dead letter keeps its body for a replay"
        );
    }

    #[tokio::test]
    async fn a_permanent_failure_is_dead_lettered_at_the_first_attempt() {
        let store = MemoryStore::new();
        stored(&store, 1).await;
        let handler = |_: Delivery| async { Err::<(), _>(Permanent::new("unparseable")) };
        let worker = Worker::new(store.clone(), handler)
            .with_retry(quick_retry(5))
            .spawn();
        let report = worker.shutdown().await.unwrap();
        assert_eq!((report.attempts_failed, report.retries_scheduled), (1, 0));
        assert_eq!(state_of(&store, 0).await.attempts, 1);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_failure_and_the_worker_keeps_going() {
        let store = MemoryStore::new();
        stored(&store, 2).await;
        let handler = |delivery: Delivery| async move {
            assert!(delivery.summary().1.as_deref() != Some("obj_0"), "boom");
            Ok::<(), BoxError>(())
        };
        let worker = Worker::new(store.clone(), handler)
            .with_retry(RetryPolicy::none())
            .spawn();
        let report = worker.shutdown().await.unwrap();
        assert_eq!(
            (
                report.attempts_panicked,
                report.dead_lettered,
                report.handled
            ),
            (1, 1, 1)
        );
        let dead = state_of(&store, 0).await;
        assert_eq!(dead.last_error.as_deref(), Some("the handler panicked"));
    }

    #[tokio::test]
    async fn a_retry_waiting_out_its_backoff_does_not_hold_up_other_deliveries() {
        let store = MemoryStore::new();
        let long =
            RetryPolicy::new(2).with_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
        let (done, finished) = tokio::sync::oneshot::channel();
        let done = Arc::new(Mutex::new(Some(done)));
        let handler = move |delivery: Delivery| {
            let done = Arc::clone(&done);
            async move {
                if delivery.summary().1.as_deref() == Some("obj_0") {
                    return Err("later".into());
                }
                if let Some(done) = done.lock().unwrap().take() {
                    let _ = done.send(());
                }
                Ok::<(), BoxError>(())
            }
        };
        let worker = Worker::new(store.clone(), handler)
            .with_retry(long)
            .with_concurrency(1)
            .with_shutdown_timeout(Duration::from_millis(50))
            .spawn();
        stored(&store, 2).await;
        let waited = tokio::time::timeout(Duration::from_secs(10), finished).await;
        assert!(
            waited.is_ok(),
            "the second delivery waited for the first one's backoff"
        );
        let report = worker.shutdown().await.unwrap();
        assert_eq!(
            (report.handled, report.left),
            (1, 1),
            "the retry is left, not run early"
        );
    }

    #[tokio::test]
    async fn never_runs_more_handlers_at_once_than_its_concurrency() {
        let store = MemoryStore::new();
        stored(&store, 20).await;
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
        let handler = move |_: Delivery| {
            let (now, peak) = (Arc::clone(&n), Arc::clone(&p));
            async move {
                peak.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
                sleep(Duration::from_millis(2)).await;
                now.fetch_sub(1, SeqCst);
                Ok::<(), BoxError>(())
            }
        };
        let worker = Worker::new(store.clone(), handler)
            .with_concurrency(3)
            .spawn();
        let report = worker.shutdown().await.unwrap();
        assert_eq!(report.handled, 20);
        assert_eq!(peak.load(SeqCst), 3);
    }

    #[tokio::test]
    async fn shutdown_finishes_every_due_delivery_first() {
        let store = MemoryStore::new();
        stored(&store, 10).await;
        let handler = |_: Delivery| async {
            sleep(Duration::from_millis(1)).await;
            Ok::<(), BoxError>(())
        };
        let report = Worker::new(store.clone(), handler)
            .spawn()
            .shutdown()
            .await
            .unwrap();
        assert_eq!((report.handled, report.left), (10, 0));
    }

    #[tokio::test]
    async fn the_shutdown_deadline_gives_running_deliveries_back_to_the_store() {
        let store = MemoryStore::new();
        stored(&store, 3).await;
        let handler = |_: Delivery| async {
            sleep(Duration::from_secs(3600)).await;
            Ok::<(), BoxError>(())
        };
        let worker = Worker::new(store.clone(), handler)
            .with_shutdown_timeout(Duration::from_millis(100))
            .spawn();
        sleep(Duration::from_millis(50)).await;
        let report = worker.shutdown().await.unwrap();
        assert_eq!((report.handled, report.left), (0, 3));
        for n in 0..3 {
            let back = state_of(&store, n).await;
            assert_eq!((back.state, back.attempts), (DeliveryState::Pending, 0));
        }
    }

    #[tokio::test]
    async fn a_retry_due_before_the_shutdown_deadline_still_runs() {
        let store = MemoryStore::new();
        stored(&store, 1).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let handler = move |_: Delivery| {
            let first = counter.fetch_add(1, SeqCst) == 0;
            async move {
                if first {
                    Err("once")
                } else {
                    Ok(())
                }
            }
        };
        let retry =
            RetryPolicy::new(3).with_backoff(Duration::from_millis(200), Duration::from_secs(1));
        let worker = Worker::new(store.clone(), handler)
            .with_retry(retry)
            .with_shutdown_timeout(Duration::from_secs(5))
            .spawn();
        sleep(Duration::from_millis(50)).await;
        let report = worker.shutdown().await.unwrap();
        assert_eq!(
            (report.handled, report.retries_scheduled, report.left),
            (1, 1, 0)
        );
    }

    #[tokio::test]
    async fn a_handler_outliving_its_lease_runs_again_and_only_the_new_holder_completes() {
        let store = MemoryStore::new();
        stored(&store, 1).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let handler = move |_: Delivery| {
            let first = counter.fetch_add(1, SeqCst) == 0;
            async move {
                if first {
                    sleep(Duration::from_millis(400)).await;
                }
                Ok::<(), BoxError>(())
            }
        };
        let worker = Worker::new(store.clone(), handler)
            .with_lease(Duration::from_millis(50))
            .with_concurrency(2)
            .spawn();
        sleep(Duration::from_millis(700)).await;
        let report = worker.shutdown().await.unwrap();
        assert_eq!(
            calls.load(SeqCst),
            2,
            "the expired lease let the delivery run again"
        );
        assert_eq!(report.handled, 1, "the stale attempt's result was refused");
        assert_eq!(state_of(&store, 0).await.state, DeliveryState::Done);
    }

    #[tokio::test]
    async fn a_delivery_stored_while_the_worker_idles_is_handled_at_once() {
        let store = MemoryStore::new();
        let (done, finished) = tokio::sync::oneshot::channel();
        let done = Arc::new(Mutex::new(Some(done)));
        let handler = move |_: Delivery| {
            if let Some(done) = done.lock().unwrap().take() {
                let _ = done.send(std::time::Instant::now());
            }
            async { Ok::<(), BoxError>(()) }
        };
        let worker = Worker::new(store.clone(), handler).spawn();
        sleep(Duration::from_millis(20)).await;
        let stored_at = std::time::Instant::now();
        stored(&store, 1).await;
        let handled_at = tokio::time::timeout(Duration::from_secs(5), finished)
            .await
            .unwrap()
            .unwrap();
        assert!(
            handled_at.duration_since(stored_at) < POLL_INTERVAL,
            "woken by the store, not by the poll"
        );
        worker.shutdown().await.unwrap();
    }
}
