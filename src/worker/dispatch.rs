//! [`Dispatcher`]: typed handlers per trigger, run by a [`Worker`](crate::worker::Worker).

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use crate::{
    core::{delivery::Delivery, error::BoxError},
    event::{Batch, CouponCode, Event, Order, TemplatePreview},
    worker::handler::{Handler as WorkerHandler, HandlerFuture, Permanent},
};

type Outcome = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type Handler<T> = Arc<dyn Fn(T, Delivery) -> Outcome + Send + Sync>;

/// Typed handlers per trigger: a [`Handler`](crate::worker::Handler) for a
/// [`Worker`](crate::worker::Worker).
///
/// The body is parsed in the background, at each attempt, never on the request path. A body
/// that does not parse is a [`Permanent`] failure (dead-lettered at once, since no retry can
/// fix it). An event with no handler of its own goes to the fallback; without a fallback it is
/// acknowledged and logged.
///
/// ```
/// use printone_webhooks::{store::MemoryStore, worker::{Dispatcher, Worker}, BoxError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
/// let dispatcher = Dispatcher::new()
///     .on_order_status_update(|order, _delivery| async move {
///         if let Some(status) = &order.status {
///             println!("order {} is now {status}", order.id);
///         }
///         Ok::<_, BoxError>(())
///     })
///     .fallback(|event, _delivery| async move {
///         println!("{} is not handled here", event.name());
///         Ok::<_, BoxError>(())
///     });
/// let worker = Worker::new(MemoryStore::new(), dispatcher).spawn();
/// # worker.shutdown().await?; Ok(()) }
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Dispatcher {
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

impl Dispatcher {
    /// A dispatcher with no handler yet: every event is acknowledged and logged.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles `order_status_update` with the typed [`Order`].
    pub fn on_order_status_update<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(Order, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.order = Some(boxed(handler)))
    }

    /// Handles `template_preview_rendered` with the typed [`TemplatePreview`].
    pub fn on_template_preview_rendered<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(TemplatePreview, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.preview = Some(boxed(handler)))
    }

    /// Handles `batch_status_update` with the typed [`Batch`].
    pub fn on_batch_status_update<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(Batch, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.batch = Some(boxed(handler)))
    }

    /// Handles `coupon_code_used` with the typed [`CouponCode`].
    pub fn on_coupon_code_used<F, Fut, E>(self, handler: F) -> Self
    where
        F: Fn(CouponCode, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.with(|handlers| handlers.coupon = Some(boxed(handler)))
    }

    /// Handles every event without a handler of its own, [`Event::Unknown`] included.
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

impl WorkerHandler for Dispatcher {
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        self.handlers.dispatch(delivery)
    }
}

impl fmt::Debug for Dispatcher {
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
    use crate::{
        store::{DeliveryId, DeliveryState, MemoryStore, Store},
        worker::{RetryPolicy, Worker},
    };
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
        let store = MemoryStore::new();
        let seen = Seen::default();
        let (a, b, c) = (Arc::clone(&seen), Arc::clone(&seen), Arc::clone(&seen));
        let dispatcher = Dispatcher::new()
            .on_order_status_update(move |order, _| record(&a, format!("order {}", order.id)))
            .on_coupon_code_used(move |coupon, _| record(&b, format!("coupon {}", coupon.id)))
            .fallback(move |event, _| record(&c, format!("fallback {}", event.name())));
        for body in [
            r#"{"data":{"id":"ord_1"},"event":"order_status_update"}"#,
            r#"{"data":{"id":"cpc_1"},"event":"coupon_code_used"}"#,
            r#"{"data":{"id":"bat_1"},"event":"batch_status_update"}"#,
            r#"{"data":{},"event":"letter_returned"}"#,
        ] {
            store.insert(&delivery(body)).await.unwrap();
        }
        let worker = Worker::new(store, dispatcher).with_concurrency(1).spawn();
        let report = worker.shutdown().await.unwrap();
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
        let store = MemoryStore::new();
        let bad = delivery(r#"{"data":{"id":"ord_1","status":7},"event":"order_status_update"}"#);
        store.insert(&bad).await.unwrap();
        let handler =
            Dispatcher::new().on_order_status_update(|_, _| async { Ok::<_, BoxError>(()) });
        let worker = Worker::new(store.clone(), handler)
            .with_retry(RetryPolicy::new(5))
            .spawn();
        let report = worker.shutdown().await.unwrap();
        assert_eq!((report.dead_lettered, report.retries_scheduled), (1, 0));
        let dead = store.get(&DeliveryId::of(&bad)).await.unwrap().unwrap();
        assert_eq!((dead.state, dead.attempts), (DeliveryState::Dead, 1));
        assert_eq!(dead.event.as_deref(), Some("order_status_update"));
        assert_eq!(dead.data_id.as_deref(), Some("ord_1"));
        assert!(dead.last_error.unwrap().contains("not a Print.one event"));
    }

    #[tokio::test]
    async fn an_event_without_any_handler_is_acknowledged() {
        let store = MemoryStore::new();
        let body = r#"{"data":{"id":"tpl_1","templateId":"t","imageUrl":"u","errors":[]},"event":"template_preview_rendered"}"#;
        store.insert(&delivery(body)).await.unwrap();
        let report = Worker::new(store, Dispatcher::new())
            .spawn()
            .shutdown()
            .await
            .unwrap();
        assert_eq!((report.handled, report.dead_lettered), (1, 0));
    }
}
