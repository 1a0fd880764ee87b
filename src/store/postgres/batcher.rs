//! Group commit for the PostgreSQL store: callers queue their work with a channel for the
//! answer; a task takes everything waiting (up to a number of items and of bytes), runs it as
//! one statement on a pooled connection, and answers each caller once that statement returned,
//! after its commit. A few batches run at a time, on connections of their own, so that the next
//! batch fills while one commits.
//!
//! A batch that fails gives every caller in it the same error. A caller that stopped waiting
//! (its request went away, or its own time limit passed) is left out of the batch it would
//! have joined. The task ends once the last sender is gone, when the store is dropped, after
//! the batches it runs have answered.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore},
    time::timeout,
};

use crate::store::error::StoreError;

/// What a batch comes to: one answer per item, in the items' order, or the error of all.
pub(crate) type Answers<A> = Pin<Box<dyn Future<Output = Result<Vec<A>, StoreError>> + Send>>;

/// Runs one batch.
pub(crate) type Run<T, A> = Box<dyn Fn(Vec<T>) -> Answers<A> + Send + Sync>;

/// How big a batch may grow and how many run at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The most items in one batch.
    pub(crate) items: usize,
    /// The most bytes (as [`Weigh`] counts them) in one batch, but for its first item.
    pub(crate) bytes: usize,
    /// How many batches may run at the same time.
    pub(crate) in_flight: usize,
}

/// How much of a batch's byte budget an item takes.
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

/// One caller's work and where its answer goes.
struct Waiter<T, A> {
    item: T,
    reply: oneshot::Sender<Result<A, StoreError>>,
}

/// The sending side of a batcher: cheap to share, and the task stops once it is dropped.
pub(crate) struct Batcher<T, A> {
    queue: mpsc::UnboundedSender<Waiter<T, A>>,
    /// How long a caller waits for its answer.
    patience: Duration,
    /// The server, for the messages of errors.
    described: String,
}

impl<T, A> Batcher<T, A>
where
    T: Weigh + Send + 'static,
    A: Send + 'static,
{
    /// Starts the task that runs batches with `run`; each caller waits at most `patience`.
    pub(crate) fn start(
        run: Run<T, A>,
        limits: Limits,
        patience: Duration,
        described: &str,
    ) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(serve(waiting, run, limits));
        Self {
            queue,
            patience,
            described: described.to_owned(),
        }
    }

    /// Queues `item` and waits for the answer of the batch it joins.
    ///
    /// # Errors
    ///
    /// The batch's error, or [`StoreError::Unavailable`] when no answer came in time or the
    /// batcher stopped.
    pub(crate) async fn submit(&self, item: T) -> Result<A, StoreError> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Waiter { item, reply }).is_err() {
            return Err(self.stopped());
        }
        match timeout(self.patience, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.stopped()),
            Err(_) => Err(StoreError::unavailable(format!(
                "{}: no answer within {:?}",
                self.described, self.patience
            ))),
        }
    }

    fn stopped(&self) -> StoreError {
        StoreError::unavailable(format!("{}: the store is closing", self.described))
    }
}

/// Takes batch after batch from `waiting` until every sender is gone.
async fn serve<T, A>(
    mut waiting: mpsc::UnboundedReceiver<Waiter<T, A>>,
    run: Run<T, A>,
    limits: Limits,
) where
    T: Weigh + Send + 'static,
    A: Send + 'static,
{
    let run = Arc::new(run);
    let slots = Arc::new(Semaphore::new(limits.in_flight.max(1)));
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        // Waiting for a slot lets the next batch fill while the others commit.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let batch = gather(first, &mut waiting, limits, &mut carried);
        if !batch.is_empty() {
            tokio::spawn(execute(batch, Arc::clone(&run), slot));
        }
    }
}

/// `first` and what else is waiting, within the limits; the first item that did not fit goes
/// to `carried`, for the next batch. Callers that stopped waiting are left out.
fn gather<T: Weigh, A>(
    first: Waiter<T, A>,
    waiting: &mut mpsc::UnboundedReceiver<Waiter<T, A>>,
    limits: Limits,
    carried: &mut Option<Waiter<T, A>>,
) -> Vec<Waiter<T, A>> {
    let mut bytes = first.item.weight();
    let mut batch = Vec::with_capacity(limits.items.min(64));
    if !first.reply.is_closed() {
        batch.push(first);
    }
    while batch.len() < limits.items {
        let Ok(next) = waiting.try_recv() else {
            break;
        };
        if next.reply.is_closed() {
            continue;
        }
        let weight = next.item.weight();
        if !batch.is_empty() && bytes.saturating_add(weight) > limits.bytes {
            *carried = Some(next);
            break;
        }
        bytes = bytes.saturating_add(weight);
        batch.push(next);
    }
    batch
}

/// Runs one batch and answers each of its callers; the slot is given back afterwards.
async fn execute<T, A>(batch: Vec<Waiter<T, A>>, run: Arc<Run<T, A>>, slot: OwnedSemaphorePermit) {
    let (items, replies): (Vec<T>, Vec<_>) = batch
        .into_iter()
        .map(|waiter| (waiter.item, waiter.reply))
        .unzip();
    let count = items.len();
    let result = run(items).await;
    drop(slot);
    match result {
        Ok(answers) if answers.len() == count => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Ok(answers) => {
            let error = StoreError::unavailable(format!(
                "a batch of {count} came back with {} answers",
                answers.len()
            ));
            answer_all(replies, &error);
        }
        Err(error) => answer_all(replies, &error),
    }
}

fn answer_all<A>(replies: Vec<oneshot::Sender<Result<A, StoreError>>>, error: &StoreError) {
    for reply in replies {
        let _ = reply.send(Err(error.again()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::Notify;

    use super::*;

    impl Weigh for u32 {
        fn weight(&self) -> usize {
            usize::try_from(*self).unwrap_or(usize::MAX)
        }
    }

    const LIMITS: Limits = Limits {
        items: 8,
        bytes: 100,
        in_flight: 1,
    };

    /// A batcher that doubles each item, holding each batch until `gate` is notified, and
    /// records the batches it ran.
    fn doubling(
        gate: Arc<Notify>,
        seen: Arc<Mutex<Vec<Vec<u32>>>>,
        limits: Limits,
    ) -> Batcher<u32, u32> {
        let run: Run<u32, u32> = Box::new(move |items: Vec<u32>| {
            let (gate, seen) = (Arc::clone(&gate), Arc::clone(&seen));
            Box::pin(async move {
                gate.notified().await;
                seen.lock().expect("not poisoned").push(items.clone());
                Ok(items.into_iter().map(|item| item * 2).collect())
            })
        });
        Batcher::start(run, limits, Duration::from_secs(5), "test")
    }

    async fn open_gate(gate: &Notify, seen: &Mutex<Vec<Vec<u32>>>, batches: usize) {
        while seen.lock().expect("not poisoned").len() < batches {
            gate.notify_one();
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn callers_waiting_together_share_a_batch_and_each_gets_its_own_answer() {
        let (gate, seen) = (Arc::new(Notify::new()), Arc::default());
        let batcher = doubling(Arc::clone(&gate), Arc::clone(&seen), LIMITS);
        let callers = join_all((1..=5).map(|n| batcher.submit(n)));
        let (answers, ()) = tokio::join!(callers, open_gate(&gate, &seen, 1));
        let answers: Vec<u32> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers, [2, 4, 6, 8, 10]);
        assert_eq!(seen.lock().unwrap().clone(), [vec![1, 2, 3, 4, 5]]);
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_its_items_and_its_bytes() {
        let (gate, seen) = (Arc::new(Notify::new()), Arc::default());
        let limits = Limits {
            items: 3,
            bytes: 100,
            in_flight: 1,
        };
        let batcher = doubling(Arc::clone(&gate), Arc::clone(&seen), limits);
        let items = [1, 1, 1, 1, 1, 60, 60, 200];
        let callers = join_all(items.iter().map(|&n| batcher.submit(n)));
        let (answers, ()) = tokio::join!(callers, open_gate(&gate, &seen, 4));
        assert!(answers.iter().all(Result::is_ok));
        let seen = seen.lock().unwrap().clone();
        // The first item of a batch always fits, however big.
        assert_eq!(seen, [vec![1, 1, 1], vec![1, 1, 60], vec![60], vec![200]]);
    }

    #[tokio::test]
    async fn a_failed_batch_gives_every_caller_its_error() {
        let run: Run<u32, u32> = Box::new(|_: Vec<u32>| {
            Box::pin(async { Err(StoreError::Busy("statement timeout".into())) })
        });
        let batcher = Batcher::start(run, LIMITS, Duration::from_secs(5), "test");
        let answers = join_all((1..=4).map(|n| batcher.submit(n))).await;
        for answer in answers {
            let error = answer.unwrap_err();
            assert!(matches!(error, StoreError::Busy(_)), "{error:?}");
            assert!(error.to_string().contains("statement timeout"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_is_left_out_and_the_others_are_answered() {
        let (gate, seen) = (Arc::new(Notify::new()), Arc::default());
        let batcher = doubling(Arc::clone(&gate), Arc::clone(&seen), LIMITS);
        let mut first = std::pin::pin!(batcher.submit(1));
        assert!(poll_once(first.as_mut()).is_none(), "queued");
        {
            let mut gone = std::pin::pin!(batcher.submit(2));
            assert!(poll_once(gone.as_mut()).is_none(), "queued, then dropped");
        }
        let third = batcher.submit(3);
        let (first, third, ()) = tokio::join!(first, third, open_gate(&gate, &seen, 1));
        assert_eq!((first.unwrap(), third.unwrap()), (2, 6));
        assert_eq!(seen.lock().unwrap().clone(), [vec![1, 3]]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_waits_no_longer_than_its_patience() {
        let run: Run<u32, u32> = Box::new(|_: Vec<u32>| Box::pin(std::future::pending()));
        let batcher = Batcher::start(run, LIMITS, Duration::from_millis(300), "test");
        let error = batcher.submit(1).await.unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(
            error.to_string().contains("no answer within 300ms"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_task_ends_when_the_batcher_is_dropped() {
        let (gate, seen) = (Arc::new(Notify::new()), Arc::default());
        let batcher = doubling(Arc::clone(&gate), Arc::clone(&seen), LIMITS);
        drop(batcher);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            Arc::strong_count(&gate),
            1,
            "the task let go of its batch runner"
        );
    }

    /// Polls `future` once: its output, if it is ready.
    fn poll_once<F: Future>(future: Pin<&mut F>) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match future.poll(&mut cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }

    /// Runs every future of `futures` at once; their outputs in order.
    async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
        let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
        let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut done = true;
            for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
                if output.is_none() {
                    match future.as_mut().poll(cx) {
                        std::task::Poll::Ready(value) => *output = Some(value),
                        std::task::Poll::Pending => done = false,
                    }
                }
            }
            if done {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        outputs.into_iter().flatten().collect()
    }
}
