//! [`Worker`]: runs queued jobs after their 200, with bounded concurrency, retries, panic
//! isolation, a dead-letter hook and a bounded graceful shutdown.

use std::{
    collections::VecDeque,
    future::{pending, Future},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    task::{JoinError, JoinHandle},
    time::{sleep, Sleep},
};

use crate::{
    core::delivery::Delivery,
    core::error::ConfigError,
    worker::attempt::Failure,
    worker::dead_letter::{DeadLetter, DeadLetterHook},
    worker::job::Job,
    worker::metrics::Metrics,
    worker::retry::RetryPolicy,
    worker::tally::{Tally, WorkerReport},
    worker::tasks::{Step, Tasks},
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
        let mut tasks = Tasks::default();
        let mut due = VecDeque::new();
        let mut deadline: Option<Pin<Box<Sleep>>> = None;
        let mut listening = true;
        let mut queue_open = true;
        while queue_open || !tasks.is_empty() || !due.is_empty() {
            while tasks.attempts_running < self.concurrency {
                let Some((job, attempt)) = due.pop_front() else {
                    break;
                };
                tasks.attempt(job, attempt);
            }
            tokio::select! {
                () = expire(&mut deadline) => {
                    self.give_up(tasks, due).await;
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
                Some(joined) = tasks.set.join_next_with_id(), if !tasks.is_empty() => {
                    if let Some(step) = tasks.finished(joined) {
                        self.shared.advance(step, &mut tasks, &mut due);
                    }
                }
                job = self.receiver.recv(),
                    if queue_open && due.is_empty() && tasks.attempts_running < self.concurrency =>
                {
                    match job {
                        Some(job) => tasks.attempt(job, 1),
                        None => queue_open = false,
                    }
                }
            }
        }
        self.shared.tally.report()
    }

    /// The deadline passed: stop attempts and waits, and dead-letter them with what is due or
    /// still queued. Dead letters already on their way are let through.
    async fn give_up(&mut self, mut tasks: Tasks, due: VecDeque<(Job, u32)>) {
        const REASON: &str = "shutdown deadline passed before the delivery was handled";
        tracing::warn!(
            unfinished = tasks.meta.len() + due.len(),
            "shutdown deadline passed; unfinished deliveries go to the dead-letter hook"
        );
        tasks.abort_unfinished();
        while let Some(joined) = tasks.set.join_next_with_id().await {
            tasks.finished(joined);
        }
        let unfinished = tasks
            .meta
            .into_values()
            .map(|meta| (meta.delivery, meta.attempt - 1));
        let due = due
            .into_iter()
            .map(|(job, attempt)| (job.into_delivery(), attempt - 1));
        let mut queued = Vec::new();
        while let Ok(job) = self.receiver.try_recv() {
            queued.push((job.into_delivery(), 0));
        }
        for (delivery, attempts) in unfinished.chain(due).chain(queued) {
            let letter = self.shared.letter(delivery, REASON.into(), attempts);
            self.shared.dead_letter.send(letter).await;
        }
    }
}

impl Shared {
    /// Records what a finished task did and schedules what follows: a retry after its backoff,
    /// or a dead letter.
    fn advance(&self, step: Step, tasks: &mut Tasks, due: &mut VecDeque<(Job, u32)>) {
        match step {
            Step::Attempted {
                result: Ok(()),
                attempt,
                ..
            } => {
                tracing::debug!(attempt, "handler succeeded");
                self.metrics.handled();
                self.tally.handled();
            }
            Step::Attempted {
                job,
                attempt,
                result: Err(failure),
            } => self.failed(job, attempt, &failure, tasks),
            Step::Due { job, attempt } => due.push_back((job, attempt)),
            Step::Lettered => {}
        }
    }

    fn failed(&self, job: Job, attempt: u32, failure: &Failure, tasks: &mut Tasks) {
        self.metrics.failed();
        self.tally.failed(failure);
        let reason = failure.to_string();
        if failure.is_permanent() || attempt >= self.retry.max_attempts() {
            let letter = self.letter(job.into_delivery(), reason, attempt);
            tasks.letter(self.dead_letter.clone(), letter);
            return;
        }
        let backoff = self.retry.backoff(attempt);
        let event = job.delivery().event_header();
        tracing::warn!(
            event,
            id = job.delivery().id(),
            attempt,
            reason,
            ?backoff,
            "handler failed; retrying"
        );
        self.metrics.retried();
        self.tally.retried();
        tasks.wait(job, attempt + 1, backoff);
    }

    /// Counts a dead letter and builds it.
    fn letter(&self, delivery: Delivery, reason: String, attempts: u32) -> DeadLetter {
        self.metrics.dead_lettered();
        self.tally.dead_lettered();
        DeadLetter::new(delivery, reason, attempts)
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
    use crate::{
        core::error::BoxError,
        store::handoff::{Handoff, HandoffError},
        worker::job::Permanent,
    };
    use http::HeaderMap;
    use std::sync::{
        atomic::{AtomicUsize, Ordering::SeqCst},
        Mutex,
    };

    fn delivery(body: &'static [u8]) -> Delivery {
        crate::core::delivery::verified(body, &HeaderMap::new())
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

    #[tokio::test(start_paused = true)]
    async fn a_retry_waiting_out_its_backoff_does_not_hold_up_other_deliveries() {
        let (queue, worker) = Worker::new(4).unwrap();
        let retry =
            RetryPolicy::new(2).with_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
        let handle = worker.with_retry(retry).spawn();
        let failing = Job::new(delivery(b"fails once"), |_| async { Err::<(), _>("later") });
        queue.hand_off(failing).await.unwrap();
        let (done, finished) = oneshot::channel();
        let done = Arc::new(Mutex::new(Some(done)));
        let next = Job::new(delivery(b"next"), move |_| {
            let done = done.lock().unwrap().take();
            async move {
                done.map(|done| done.send(()));
                Ok::<(), BoxError>(())
            }
        });
        queue.hand_off(next).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(60), finished).await;
        assert!(
            waited.is_ok(),
            "the second delivery waited for the first one's backoff"
        );
        drop(handle);
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

    #[tokio::test(start_paused = true)]
    async fn a_retry_still_waiting_at_the_shutdown_deadline_is_dead_lettered() {
        let (queue, worker) = Worker::new(4).unwrap();
        let retry =
            RetryPolicy::new(3).with_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
        let worker = worker
            .with_retry(retry)
            .with_shutdown_timeout(Duration::from_secs(5));
        let (worker, letters) = collecting(worker);
        let handle = worker.spawn();
        let failing = Job::new(delivery(b"flaky"), |_| async { Err::<(), _>("flaky") });
        queue.hand_off(failing).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let report = handle.shutdown().await.unwrap();
        assert_eq!((report.retried, report.dead_lettered), (1, 1));
        let letters = letters.lock().unwrap();
        assert!(letters[0].0.contains("shutdown deadline"));
        assert_eq!(letters[0].1, 1, "one attempt was made before the deadline");
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
