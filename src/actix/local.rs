//! [`worker_queues`]: one queue per actix worker, consumed on that worker's own thread.

use std::{fmt, future::Future};

use tokio::sync::mpsc;

use crate::{core::delivery::Delivery, core::error::ConfigError};

/// Queues whose consumers run on the actix worker threads, and what they leave at shutdown.
///
/// Call [`WorkerQueues::spawn`] inside the `HttpServer::new` factory: each worker then gets a
/// bounded queue of `capacity` deliveries for its [`WebhookResource`](crate::WebhookResource)
/// and a consumer task on its own thread that runs `handler` for one delivery at a time. A
/// hand-off then only schedules a task on the current thread; a consumer on another thread
/// would have to be woken across threads, which costs about as much as verifying.
///
/// When the server stops, actix ends each worker's runtime as soon as its connections are
/// closed, which would drop deliveries still queued there. The consumer therefore passes
/// whatever it has not finished (the queue, and the delivery it was running) to the
/// [`Leftovers`], which runs `handler` on them after the server has stopped.
///
/// The trade-offs: the capacity is per worker, so a busy worker can answer 503 while
/// another has room; `handler` runs on the worker thread, so it must not block (use
/// `actix_web::rt::task::spawn_blocking` for blocking work) and a slow handler delays that
/// worker's requests; and a delivery interrupted by the shutdown runs again from the start,
/// so `handler` should be idempotent (Print.one may deliver twice anyway). When those costs
/// matter more than the wake-up, use one consumer: [`WebhookResource::channel`](crate::WebhookResource::channel).
///
/// # Errors
///
/// [`ConfigError::ZeroCapacity`] when `capacity` is 0.
pub fn worker_queues<F, Fut>(
    capacity: usize,
    handler: F,
) -> Result<(WorkerQueues<F>, Leftovers<F>), ConfigError>
where
    F: Fn(Delivery) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    if capacity == 0 {
        return Err(ConfigError::ZeroCapacity);
    }
    let (leftovers, receiver) = mpsc::unbounded_channel();
    let queues = WorkerQueues {
        capacity,
        handler: handler.clone(),
        leftovers,
    };
    Ok((queues, Leftovers { handler, receiver }))
}

/// Starts a queue and its consumer on the current actix worker; see [`worker_queues`].
#[derive(Clone)]
pub struct WorkerQueues<F> {
    capacity: usize,
    handler: F,
    leftovers: mpsc::UnboundedSender<Delivery>,
}

impl<F, Fut> WorkerQueues<F>
where
    F: Fn(Delivery) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    /// A bounded queue whose consumer runs on the current thread; give the sender to a
    /// [`WebhookResource`](crate::WebhookResource).
    ///
    /// # Panics
    ///
    /// When called outside an actix-web runtime (call it in the `HttpServer::new` factory).
    #[must_use]
    pub fn spawn(&self) -> mpsc::Sender<Delivery> {
        let (sender, receiver) = mpsc::channel(self.capacity);
        let consumer = Consumer {
            receiver,
            current: None,
            leftovers: self.leftovers.clone(),
        };
        actix_web::rt::spawn(consumer.run(self.handler.clone()));
        sender
    }
}

impl<F> fmt::Debug for WorkerQueues<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerQueues")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The deliveries the worker consumers did not finish; see [`worker_queues`].
pub struct Leftovers<F> {
    handler: F,
    receiver: mpsc::UnboundedReceiver<Delivery>,
}

impl<F, Fut> Leftovers<F>
where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    /// After the server has stopped: waits until every worker consumer has stopped, runs the
    /// handler on each delivery they left, in order, and returns how many there were.
    ///
    /// It returns once every [`WorkerQueues`] is dropped, which happens when the server that
    /// owns the factory has stopped: do not keep a clone elsewhere.
    ///
    /// # Panics
    ///
    /// When called outside an actix-web runtime. A panicking handler does not stop it.
    pub async fn finish(mut self) -> usize {
        let mut count = 0;
        while let Some(delivery) = self.receiver.recv().await {
            run(&self.handler, delivery).await;
            count += 1;
        }
        count
    }
}

impl<F> fmt::Debug for Leftovers<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leftovers").finish_non_exhaustive()
    }
}

/// Runs one delivery in its own local task, so that a panic is caught and logged.
async fn run<F, Fut>(handler: &F, delivery: Delivery)
where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let id = delivery.id();
    let event = delivery.event_header().map(str::to_owned);
    if let Err(error) = actix_web::rt::spawn(handler(delivery)).await {
        tracing::error!(
            event,
            id,
            panic = error.is_panic(),
            "webhook handler panicked; the delivery was not handled"
        );
    }
}

/// A worker's consumer; when dropped unfinished, it passes its work on to the [`Leftovers`].
struct Consumer {
    receiver: mpsc::Receiver<Delivery>,
    current: Option<Delivery>,
    leftovers: mpsc::UnboundedSender<Delivery>,
}

impl Consumer {
    async fn run<F, Fut>(mut self, handler: F)
    where
        F: Fn(Delivery) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        while let Some(delivery) = self.receiver.recv().await {
            self.current = Some(delivery.clone());
            run(&handler, delivery).await;
            self.current = None;
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.receiver.close();
        let unfinished = self.current.take().into_iter();
        let queued = std::iter::from_fn(|| self.receiver.try_recv().ok());
        for delivery in unfinished.chain(queued) {
            if self.leftovers.send(delivery).is_err() {
                tracing::error!("a queued webhook delivery was dropped: its leftovers are gone");
            }
        }
    }
}
