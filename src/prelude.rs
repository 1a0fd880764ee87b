//! The items most receivers use, in one import: `use printone_webhooks::prelude::*;`.

pub use crate::{
    event::Event,
    shutdown_signal,
    store::{MemoryStore, SharedStore, Store},
    worker::{Dispatcher, Permanent, RetryPolicy, Worker},
    BoxError, Delivery, Secret, Verifier,
};

#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub use crate::actix::{WebhookConfig, WebhookEvent, WebhookResource};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use crate::tower::Webhook;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use crate::tower::{Route, VerifyLayer};
