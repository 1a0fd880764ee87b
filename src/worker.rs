//! [`Worker`]: runs queued jobs after their 200, with bounded concurrency, retries, panic
//! isolation, a dead-letter hook and a bounded graceful shutdown.

use std::{
    collections::HashMap,
    future::{pending, Future},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use tracing::Instrument as _;

use tokio::{
    sync::{mpsc, oneshot},
    task::{Id, JoinError, JoinHandle, JoinSet},
    time::{sleep, Sleep},
};

use crate::{
    dead_letter::{DeadLetter, DeadLetterHook},
    delivery::Delivery,
    error::{BoxError, ConfigError},
    job::{Job, Permanent},
    metrics::Metrics,
    retry::RetryPolicy,
    tally::{Tally, WorkerReport},
};

/// The default time [`WorkerHandle::shutdown`] waits for accepted deliveries: 30 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs queued [`Job`]s after their senders got a 200.
///
/// Create it with [`Worker::new`], give the queue to
/// [`VerifyLayer::in_background`](crate::VerifyLayer::in_background) or a
/// [`Dispatcher`](crate::Dispatcher), start it with [`Worker::spawn`] and, once the server has
/// stopped, call [`WorkerHandle::shutdown`].
///
/// A failed attempt (an error, a non-2xx route response, or a panic, which never takes the
/// worker down) is retried with backoff by the [`RetryPolicy`]; a delivery that exhausts its
/// attempts, or is still unfinished when the shutdown deadline passes, goes to the dead-letter
/// hook (by default: logged at error level with the event name, data id and reason, never the
/// body).
pub struct Worker {
    receiver: mpsc::Receiver<Job>,
    concurrency: usize,
    shutdown_timeout: Duration,
    shared: Shared,
}

/// What every job of a worker needs.
#[derive(Clone)]
struct Shared {
    retry: RetryPolicy,
    dead_letter: DeadLetterHook,
    metrics: Metrics,
    tally: Arc<Tally>,
}

impl Worker {
    /// A worker and its queue, holding at most `capacity` waiting jobs. It runs one job at a
    /// time, retries as [`RetryPolicy::default`] says and waits up to 30 s on shutdown until
    /// told otherwise.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] when `capacity` is 0.
    pub fn new(capacity: usize) -> Result<(mpsc::Sender<Job>, Self), ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        let (sender, receiver) = mpsc::channel(capacity);
        let metrics = Metrics::new();
        register_depth(&metrics, &sender);
        let worker = Self {
            receiver,
            concurrency: 1,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            shared: Shared {
                retry: RetryPolicy::default(),
                dead_letter: DeadLetterHook::default(),
                metrics,
                tally: Arc::default(),
            },
        };
        Ok((sender, worker))
    }

    /// Runs up to `concurrency` jobs at once (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets how failed attempts are retried.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.shared.retry = retry;
        self
    }

    /// Sends deliveries that could not be handled to `hook` (instead of logging them).
    ///
    /// The hook gets the whole [`DeadLetter`] (the delivery with its raw body, the reason and
    /// the number of attempts), so it can store it for a later replay.
    #[must_use]
    pub fn with_dead_letter<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(DeadLetter) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.dead_letter = DeadLetterHook::new(hook);
        self
    }

    /// Sets how long [`WorkerHandle::shutdown`] lets accepted deliveries run (retries
    /// included) before the rest go to the dead-letter hook.
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Counts into `metrics` (shared with a [`VerifyLayer`](crate::VerifyLayer) for one view).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.shared.metrics = metrics;
        self
    }

    /// The counters of this worker.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Starts the worker on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use = "keep the handle to drain the queue on shutdown"]
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = oneshot::channel();
        let metrics = self.shared.metrics.clone();
        let join = tokio::spawn(self.run(stopped));
        WorkerHandle {
            stop,
            join,
            metrics,
        }
    }

    async fn run(mut self, mut stopped: oneshot::Receiver<()>) -> WorkerReport {
        let mut running = Running::default();
        let mut deadline: Option<Pin<Box<Sleep>>> = None;
        let mut listening = true;
        let mut queue_open = true;
        while queue_open || !running.is_empty() {
            tokio::select! {
                () = expire(&mut deadline) => {
                    self.give_up(running).await;
                    return self.shared.tally.report();
                }
                signal = &mut stopped, if listening => {
                    listening = false;
                    if signal.is_ok() {
                        tracing::info!("worker stopping: queue closed, finishing accepted deliveries");
                        self.receiver.close();
                        deadline = Some(Box::pin(sleep(self.shutdown_timeout)));
                    }
                }
                Some(joined) = running.tasks.join_next_with_id(), if !running.is_empty() => {
                    running.finished(joined);
                }
                job = self.receiver.recv(), if queue_open && running.len() < self.concurrency => {
                    match job {
                        Some(job) => running.start(job, self.shared.clone()),
                        None => queue_open = false,
                    }
                }
            }
        }
        self.shared.tally.report()
    }

    /// The deadline passed: stop what runs, and dead-letter it with what still waits.
    async fn give_up(&mut self, mut running: Running) {
        const REASON: &str = "shutdown deadline passed before the delivery was handled";
        tracing::warn!(
            in_flight = running.len(),
            "shutdown deadline passed; unfinished deliveries go to the dead-letter hook"
        );
        running.tasks.abort_all();
        while let Some(joined) = running.tasks.join_next_with_id().await {
            running.finished(joined);
        }
        for (_, delivery) in running.deliveries.drain() {
            self.shared.dead_letter(delivery, REASON.into(), 0).await;
        }
        while let Ok(job) = self.receiver.try_recv() {
            self.shared
                .dead_letter(job.into_delivery(), REASON.into(), 0)
                .await;
        }
    }
}

/// Jobs being handled now, with their deliveries for the dead-letter hook.
#[derive(Default)]
struct Running {
    tasks: JoinSet<()>,
    deliveries: HashMap<Id, Delivery>,
}

impl Running {
    fn start(&mut self, job: Job, shared: Shared) {
        let delivery = job.delivery().clone();
        let span = tracing::info_span!(
            "webhook_job",
            event = delivery.event_header(),
            id = delivery.id()
        );
        let id = self.tasks.spawn(shared.process(job).instrument(span)).id();
        self.deliveries.insert(id, delivery);
    }

    fn finished(&mut self, joined: Result<(Id, ()), JoinError>) {
        match joined {
            Ok((id, ())) => {
                self.deliveries.remove(&id);
            }
            // Cancelled by `give_up`: its delivery stays in `deliveries` to be dead-lettered.
            Err(error) if error.is_cancelled() => {}
            Err(error) => {
                tracing::error!(error = %error, "worker task failed");
                self.deliveries.remove(&error.id());
            }
        }
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Shared {
    /// Attempts a job until it succeeds, fails permanently or runs out of attempts.
    async fn process(self, mut job: Job) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Err(failure) = attempt_isolated(&mut job).await else {
                tracing::debug!(attempt = attempts, "handler succeeded");
                self.metrics.handled();
                self.tally.handled();
                return;
            };
            self.metrics.failed();
            self.tally.failed(&failure);
            let reason = failure.to_string();
            let permanent = failure.is_permanent();
            if permanent || attempts >= self.retry.max_attempts() {
                self.dead_letter(job.into_delivery(), reason, attempts)
                    .await;
                return;
            }
            let backoff = self.retry.backoff(attempts);
            let event = job.delivery().event_header();
            tracing::warn!(
                event,
                attempt = attempts,
                reason,
                ?backoff,
                "handler failed; retrying"
            );
            self.metrics.retried();
            self.tally.retried();
            sleep(backoff).await;
        }
    }

    async fn dead_letter(&self, delivery: Delivery, reason: String, attempts: u32) {
        self.metrics.dead_lettered();
        self.tally.dead_lettered();
        self.dead_letter
            .send(DeadLetter::new(delivery, reason, attempts))
            .await;
    }
}

/// Why one attempt failed.
pub(crate) enum Failure {
    Error(BoxError),
    Panicked,
}

impl Failure {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Error(error) if Permanent::is(error))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(error) => write!(f, "{error}"),
            Self::Panicked => f.write_str("the handler panicked"),
        }
    }
}

/// Runs one attempt in its own task, so a panic is caught and reported as a failure; the task
/// is aborted if this future is dropped (shutdown deadline).
async fn attempt_isolated(job: &mut Job) -> Result<(), Failure> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let task = tokio::spawn(job.attempt());
    let _guard = AbortOnDrop(task.abort_handle());
    match task.await {
        Ok(result) => result.map_err(Failure::Error),
        Err(_) => Err(Failure::Panicked),
    }
}

async fn expire(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.await,
        None => pending().await,
    }
}

fn register_depth(metrics: &Metrics, sender: &mpsc::Sender<Job>) {
    let weak = sender.downgrade();
    metrics.set_depth_probe(move || {
        weak.upgrade()
            .map_or(0, |sender| sender.max_capacity() - sender.capacity())
    });
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("concurrency", &self.concurrency)
            .field("retry", &self.shared.retry)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
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
    /// The worker's counters (queue depth included).
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops taking new jobs (further hand-offs are refused, so senders get 503), finishes
    /// every job already accepted (retries included) within the shutdown timeout, sends what
    /// could not finish to the dead-letter hook, and reports what was done.
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
    use crate::handoff::{Handoff, HandoffError};
    use http::HeaderMap;
    use std::sync::{
        atomic::{AtomicUsize, Ordering::SeqCst},
        Mutex,
    };

    fn delivery(body: &'static [u8]) -> Delivery {
        crate::delivery::verified(body, &HeaderMap::new())
    }

    fn quick_retry(attempts: u32) -> RetryPolicy {
        RetryPolicy::new(attempts).with_backoff(Duration::from_millis(1), Duration::from_millis(4))
    }

    type Letters = Arc<Mutex<Vec<(String, u32)>>>;

    fn collecting(worker: Worker) -> (Worker, Letters) {
        let letters = Letters::default();
        let sink = Arc::clone(&letters);
        let worker = worker.with_dead_letter(move |letter| {
            sink.lock()
                .unwrap()
                .push((letter.reason().to_owned(), letter.attempts()));
            async {}
        });
        (worker, letters)
    }

    #[tokio::test]
    async fn a_failing_job_is_retried_until_it_succeeds() {
        let (queue, worker) = Worker::new(4).unwrap();
        let handle = worker.with_retry(quick_retry(5)).spawn();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let job = Job::new(delivery(b"flaky"), move |_| {
            let call = counter.fetch_add(1, SeqCst);
            async move {
                if call < 2 {
                    Err("not yet")
                } else {
                    Ok(())
                }
            }
        });
        queue.hand_off(job).await.unwrap();
        let report = handle.shutdown().await.unwrap();
        assert_eq!(calls.load(SeqCst), 3);
        assert_eq!(
            (
                report.handled,
                report.failed,
                report.retried,
                report.dead_lettered
            ),
            (1, 2, 2, 0)
        );
    }

    #[tokio::test]
    async fn a_job_that_always_fails_ends_in_the_dead_letter_hook() {
        let (queue, worker) = Worker::new(4).unwrap();
        let (worker, letters) = collecting(worker.with_retry(quick_retry(3)));
        let handle = worker.spawn();
        let job = Job::new(delivery(b"doomed"), |_| async {
            Err::<(), _>("database down")
        });
        queue.hand_off(job).await.unwrap();
        let report = handle.shutdown().await.unwrap();
        assert_eq!(report.dead_lettered, 1);
        assert_eq!(*letters.lock().unwrap(), [("database down".to_owned(), 3)]);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_not_retried() {
        let (queue, worker) = Worker::new(4).unwrap();
        let (worker, letters) = collecting(worker.with_retry(quick_retry(5)));
        let handle = worker.spawn();
        let job = Job::new(delivery(b"bad"), |_| async {
            Err::<(), _>(Permanent::new("unparseable"))
        });
        queue.hand_off(job).await.unwrap();
        let report = handle.shutdown().await.unwrap();
        assert_eq!((report.failed, report.retried), (1, 0));
        assert_eq!(letters.lock().unwrap()[0].1, 1);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_failure_and_the_worker_keeps_going() {
        let (queue, worker) = Worker::new(4).unwrap();
        let handle = worker.with_retry(RetryPolicy::none()).spawn();
        let panicking = Job::new(delivery(b"panics"), |_| async {
            panic!("handler bug");
            #[allow(unreachable_code)]
            Ok::<(), BoxError>(())
        });
        queue.hand_off(panicking).await.unwrap();
        queue
            .hand_off(Job::new(delivery(b"fine"), |_| async {
                Ok::<(), BoxError>(())
            }))
            .await
            .unwrap();
        let report = handle.shutdown().await.unwrap();
        assert_eq!(
            (report.panicked, report.dead_lettered, report.handled),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn never_runs_more_jobs_at_once_than_its_concurrency() {
        let (queue, worker) = Worker::new(64).unwrap();
        let handle = worker.with_concurrency(3).spawn();
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        for _ in 0..20 {
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            let job = Job::new(delivery(b"x"), move |_| {
                let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
                async move {
                    peak.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
                    sleep(Duration::from_millis(2)).await;
                    now.fetch_sub(1, SeqCst);
                    Ok::<(), BoxError>(())
                }
            });
            queue.hand_off(job).await.unwrap();
        }
        let report = handle.shutdown().await.unwrap();
        assert_eq!(report.handled, 20);
        assert_eq!(peak.load(SeqCst), 3);
    }

    #[tokio::test]
    async fn shutdown_finishes_queued_jobs_then_refuses_new_ones() {
        let (queue, worker) = Worker::new(16).unwrap();
        let handle = worker.spawn();
        for _ in 0..10 {
            let job = Job::new(delivery(b"x"), |_| async {
                sleep(Duration::from_millis(1)).await;
                Ok::<(), BoxError>(())
            });
            queue.hand_off(job).await.unwrap();
        }
        let report = handle.shutdown().await.unwrap();
        assert_eq!(report.handled, 10);
        let late = Job::new(delivery(b"late"), |_| async { Ok::<(), BoxError>(()) });
        assert!(matches!(
            queue.hand_off(late).await,
            Err(HandoffError::Closed)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_shutdown_deadline_dead_letters_what_could_not_finish() {
        let (queue, worker) = Worker::new(16).unwrap();
        let worker = worker.with_shutdown_timeout(Duration::from_secs(5));
        let (worker, letters) = collecting(worker);
        let handle = worker.spawn();
        for _ in 0..3 {
            let job = Job::new(delivery(b"slow"), |_| async {
                sleep(Duration::from_secs(3600)).await;
                Ok::<(), BoxError>(())
            });
            queue.hand_off(job).await.unwrap();
        }
        tokio::task::yield_now().await;
        let report = handle.shutdown().await.unwrap();
        assert_eq!((report.handled, report.dead_lettered), (0, 3));
        let letters = letters.lock().unwrap();
        assert!(letters
            .iter()
            .all(|(reason, _)| reason.contains("shutdown deadline")));
    }

    #[tokio::test]
    async fn reports_its_queue_depth() {
        let (queue, worker) = Worker::new(8).unwrap();
        for _ in 0..3 {
            queue
                .hand_off(Job::new(delivery(b"x"), |_| async {
                    Ok::<(), BoxError>(())
                }))
                .await
                .unwrap();
        }
        assert_eq!(worker.metrics().snapshot().queue_depth, 3);
        let report = worker.spawn().shutdown().await.unwrap();
        assert_eq!(report.handled, 3);
    }
}
