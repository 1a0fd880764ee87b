//! [`Dispatcher`]: typed handlers per trigger, run by a [`Worker`](crate::Worker).

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use tokio::sync::mpsc;

use crate::{
    core::delivery::Delivery,
    core::error::BoxError,
    event::{Batch, CouponCode, Event, Order, TemplatePreview},
    store::handoff::{Handoff, HandoffError},
    worker::job::{Job, Permanent},
};

type Outcome = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type Handler<T> = Arc<dyn Fn(T, Delivery) -> Outcome + Send + Sync>;

/// Hands each verified [`Delivery`] to a [`Worker`](crate::Worker) queue as a [`Job`] that
/// calls the handler registered for its trigger.
///
/// It is a [`Handoff<Delivery>`]: use it with
/// [`VerifyLayer::hand_off_to`](crate::VerifyLayer::hand_off_to) (or the actix service). The
/// body is parsed in the background, at each attempt, never on the request path. A body that
/// does not parse is a [`Permanent`] failure (dead-lettered at once, since no retry can fix
/// it). An event with no handler of its own goes to the fallback; without a fallback it is
/// acknowledged and logged.
///
/// ```
/// use printone_webhooks::{Dispatcher, Worker, BoxError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
/// let (queue, worker) = Worker::new(1024)?;
/// let dispatcher = Dispatcher::new(queue)
///     .on_order_status_update(|order, _delivery| async move {
///         println!("order {} is now {:?}", order.id, order.status);
///         Ok::<_, BoxError>(())
///     })
///     .fallback(|event, _delivery| async move {
///         println!("{} is not handled here", event.name());
///         Ok::<_, BoxError>(())
///     });
/// let worker = worker.with_concurrency(8).spawn();
/// # drop(dispatcher); worker.shutdown().await?; Ok(()) }
/// ```
pub struct Dispatcher<Q = mpsc::Sender<Job>> {
    queue: Q,
    handlers: Arc<Handlers>,
}

#[derive(Default)]
struct Handlers {
    order: Option<Handler<Order>>,
    preview: Option<Handler<TemplatePreview>>,
    batch: Option<Handler<Batch>>,
    coupon: Option<Handler<CouponCode>>,
    fallback: Option<Handler<Event>>,
}

impl<Q> Dispatcher<Q> {
    /// A dispatcher queueing its jobs on `queue` (from [`Worker::new`](crate::Worker::new)).
    pub fn new(queue: Q) -> Self {
        Self {
            queue,
            handlers: Arc::default(),
        }
    }

    /// Handles `order_status_update` with the typed [`Order`].
    #[must_use]
    pub fn on_order_status_update<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(Order, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.order = Some(boxed(handler)))
    }

    /// Handles `template_preview_rendered` with the typed [`TemplatePreview`].
    #[must_use]
    pub fn on_template_preview_rendered<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(TemplatePreview, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.preview = Some(boxed(handler)))
    }

    /// Handles `batch_status_update` with the typed [`Batch`].
    #[must_use]
    pub fn on_batch_status_update<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(Batch, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.batch = Some(boxed(handler)))
    }

    /// Handles `coupon_code_used` with the typed [`CouponCode`].
    #[must_use]
    pub fn on_coupon_code_used<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(CouponCode, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.coupon = Some(boxed(handler)))
    }

    /// Handles every event without a handler of its own, [`Event::Unknown`] included.
    #[must_use]
    pub fn fallback<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(Event, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.fallback = Some(boxed(handler)))
    }

    fn with(mut self, change: impl FnOnce(&mut Handlers)) -> Self {
        let mut handlers = Arc::try_unwrap(self.handlers).unwrap_or_else(|shared| shared.copy());
        change(&mut handlers);
        self.handlers = Arc::new(handlers);
        self
    }
}

fn boxed<T, F, Fut, E>(handler: F) -> Handler<T>
where
    F: Fn(T, Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    Arc::new(move |data, delivery| {
        let future = handler(data, delivery);
        Box::pin(async move { future.await.map_err(Into::into) })
    })
}

impl Handlers {
    fn copy(&self) -> Self {
        Self {
            order: self.order.clone(),
            preview: self.preview.clone(),
            batch: self.batch.clone(),
            coupon: self.coupon.clone(),
            fallback: self.fallback.clone(),
        }
    }

    /// Parses the delivery and calls the handler for its trigger.
    fn dispatch(&self, delivery: Delivery) -> Outcome {
        let event = match delivery.event() {
            Ok(event) => event,
            Err(error) => {
                let error = Permanent::new(format!("the body is not a Print.one event: {error}"));
                return Box::pin(std::future::ready(Err(error.into())));
            }
        };
        match event {
            Event::OrderStatusUpdate(order) if self.order.is_some() => {
                call(self.order.as_ref(), order, delivery)
            }
            Event::TemplatePreviewRendered(preview) if self.preview.is_some() => {
                call(self.preview.as_ref(), preview, delivery)
            }
            Event::BatchStatusUpdate(batch) if self.batch.is_some() => {
                call(self.batch.as_ref(), batch, delivery)
            }
            Event::CouponCodeUsed(coupon) if self.coupon.is_some() => {
                call(self.coupon.as_ref(), coupon, delivery)
            }
            event if self.fallback.is_some() => call(self.fallback.as_ref(), event, delivery),
            event => {
                tracing::info!(
                    event = event.name(),
                    "no handler for this event; acknowledged"
                );
                Box::pin(std::future::ready(Ok(())))
            }
        }
    }
}

fn call<T>(handler: Option<&Handler<T>>, data: T, delivery: Delivery) -> Outcome {
    match handler {
        Some(handler) => handler(data, delivery),
        None => Box::pin(std::future::ready(Ok(()))),
    }
}

impl<Q: Handoff<Job>> Handoff<Delivery> for Dispatcher<Q> {
    fn hand_off(
        &self,
        delivery: Delivery,
    ) -> impl Future<Output = Result<(), HandoffError>> + Send {
        let handlers = Arc::clone(&self.handlers);
        let job = Job::new(delivery, move |delivery| handlers.dispatch(delivery));
        self.queue.hand_off(job)
    }
}

impl<Q: Clone> Clone for Dispatcher<Q> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            handlers: Arc::clone(&self.handlers),
        }
    }
}

impl<Q> fmt::Debug for Dispatcher<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.handlers;
        f.debug_struct("Dispatcher")
            .field("order_status_update", &h.order.is_some())
            .field("template_preview_rendered", &h.preview.is_some())
            .field("batch_status_update", &h.batch.is_some())
            .field("coupon_code_used", &h.coupon.is_some())
            .field("fallback", &h.fallback.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RetryPolicy, Worker};
    use http::HeaderMap;
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<String>>>;

    fn record(seen: &Seen, what: String) -> std::future::Ready<Result<(), BoxError>> {
        seen.lock().unwrap().push(what);
        std::future::ready(Ok(()))
    }

    fn delivery(body: &'static str) -> Delivery {
        crate::core::delivery::verified(body.as_bytes(), &HeaderMap::new())
    }

    #[tokio::test]
    async fn calls_the_handler_of_each_trigger_and_the_fallback_for_the_rest() {
        let (queue, worker) = Worker::new(16).unwrap();
        let seen = Seen::default();
        let (a, b, c) = (Arc::clone(&seen), Arc::clone(&seen), Arc::clone(&seen));
        let dispatcher = Dispatcher::new(queue)
            .on_order_status_update(move |order, _| record(&a, format!("order {}", order.id)))
            .on_coupon_code_used(move |coupon, _| record(&b, format!("coupon {}", coupon.id)))
            .fallback(move |event, _| record(&c, format!("fallback {}", event.name())));
        let handle = worker.spawn();
        for body in [
            r#"{"data":{"id":"ord_1"},"event":"order_status_update"}"#,
            r#"{"data":{"id":"cpc_1"},"event":"coupon_code_used"}"#,
            r#"{"data":{"id":"bat_1"},"event":"batch_status_update"}"#,
            r#"{"data":{},"event":"letter_returned"}"#,
        ] {
            dispatcher.hand_off(delivery(body)).await.unwrap();
        }
        let report = handle.shutdown().await.unwrap();
        assert_eq!(report.handled, 4);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "order ord_1",
                "coupon cpc_1",
                "fallback batch_status_update",
                "fallback letter_returned"
            ]
        );
    }

    #[tokio::test]
    async fn an_unparseable_body_is_dead_lettered_without_retries() {
        let (queue, worker) = Worker::new(4).unwrap();
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&attempts);
        let handle = worker
            .with_retry(RetryPolicy::new(5))
            .with_dead_letter(move |letter| {
                sink.lock().unwrap().push(letter.attempts());
                async {}
            })
            .spawn();
        Dispatcher::new(queue)
            .hand_off(delivery("not json"))
            .await
            .unwrap();
        let report = handle.shutdown().await.unwrap();
        assert_eq!((report.dead_lettered, report.retried), (1, 0));
        assert_eq!(*attempts.lock().unwrap(), [1]);
    }

    #[tokio::test]
    async fn an_event_without_any_handler_is_acknowledged() {
        let (queue, worker) = Worker::new(4).unwrap();
        let handle = worker.spawn();
        let body = r#"{"data":{"id":"tpl_1","templateId":"t","imageUrl":"u","errors":[]},"event":"template_preview_rendered"}"#;
        Dispatcher::new(queue)
            .hand_off(delivery(body))
            .await
            .unwrap();
        let report = handle.shutdown().await.unwrap();
        assert_eq!((report.handled, report.dead_lettered), (1, 0));
    }
}
