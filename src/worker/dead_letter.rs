//! [`DeadLetter`]: a delivery that got its 200 but could not be handled, and where it goes.

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::SystemTime};

use crate::core::delivery::Delivery;

/// A delivery the sender got 200 for but that could not be handled: its retries ran out, it
/// failed permanently, or the shutdown deadline passed.
///
/// Print.one will not send it again, so the hook that receives it is the last place to keep it
/// (for example in a table, to replay later).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    delivery: Delivery,
    reason: String,
    attempts: u32,
    at: SystemTime,
}

impl DeadLetter {
    pub(crate) fn new(delivery: Delivery, reason: String, attempts: u32) -> Self {
        Self {
            delivery,
            reason,
            attempts,
            at: SystemTime::now(),
        }
    }

    /// The delivery, with its raw body.
    #[must_use]
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// Why it was given up: the last failure, or the shutdown deadline.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// How many attempts were made (0 when it never started before the shutdown deadline).
    #[must_use]
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When it was given up.
    #[must_use]
    pub const fn at(&self) -> SystemTime {
        self.at
    }

    /// The event name and data id, parsed from the body when possible (else the unsigned
    /// event header), for logs.
    #[must_use]
    pub fn summary(&self) -> (String, Option<String>) {
        match self.delivery.event() {
            Ok(event) => (event.name().to_owned(), event.data_id().map(str::to_owned)),
            Err(_) => (self.delivery.event_header().unwrap_or("-").to_owned(), None),
        }
    }
}

type Hook = Arc<dyn Fn(DeadLetter) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Where dead letters go; by default they are logged at error level (never the body).
#[derive(Clone, Default)]
pub(crate) struct DeadLetterHook(Option<Hook>);

impl DeadLetterHook {
    pub(crate) fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(DeadLetter) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self(Some(Arc::new(move |letter| Box::pin(hook(letter)))))
    }

    pub(crate) async fn send(&self, letter: DeadLetter) {
        let (event, id) = letter.summary();
        tracing::error!(
            event,
            id = letter.delivery.id(),
            data_id = id.as_deref().unwrap_or("-"),
            attempts = letter.attempts,
            reason = letter.reason,
            "delivery dead-lettered"
        );
        if let Some(hook) = &self.0 {
            hook(letter).await;
        }
    }
}

impl fmt::Debug for DeadLetterHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "DeadLetterHook(custom)"
        } else {
            "DeadLetterHook(log)"
        })
    }
}
