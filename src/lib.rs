#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod core;
pub mod event;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
#[cfg(test)]
mod test_vectors;

#[cfg(feature = "actix-web")]
mod actix;
#[cfg(feature = "tower")]
mod intake;
#[cfg(feature = "tower")]
mod store;
#[cfg(feature = "tower")]
mod tower;
#[cfg(feature = "tower")]
mod worker;

pub use crate::core::delivery::Delivery;
pub use crate::core::error::{BoxError, ConfigError, ErrorKind, VerifyError};
pub use crate::core::freshness::{Clock, Freshness, SystemClock, DEFAULT_MAX_FUTURE};
pub use crate::core::secret::Secret;
pub use crate::core::sign::{sign, sign_raw};
pub use crate::core::signature::{
    Signature, EVENT_HEADER, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER, WEBHOOK_EVENT_HEADER,
};
pub use crate::core::verify::{Verification, Verified, Verifier};
pub use event::{Envelope, Event};

#[cfg(feature = "actix-web")]
pub use actix::config::WebhookConfig;
#[cfg(feature = "actix-web")]
pub use actix::error::WebhookError;
#[cfg(feature = "actix-web")]
pub use actix::extract::WebhookEvent;
#[cfg(feature = "actix-web")]
pub use actix::local::{worker_queues, Leftovers, WorkerQueues};
#[cfg(feature = "actix-web")]
pub use actix::resource::WebhookResource;
#[cfg(feature = "tower")]
pub use intake::config::{
    default_rejection, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_RETRY_AFTER,
};
#[cfg(feature = "tower")]
pub use store::dedupe::{
    Claim, DedupeStore, MemoryStore, StoreFuture, DEFAULT_DEDUPE_CAPACITY, DEFAULT_DEDUPE_WINDOW,
};
#[cfg(feature = "tower")]
pub use store::handoff::{HandOff, Handoff, HandoffError, HandoffFuture};
#[cfg(feature = "axum")]
pub use tower::axum::{Webhook, WebhookRejection};
#[cfg(feature = "tower")]
pub use tower::background::{Background, BackgroundLayer};
#[cfg(feature = "tower")]
pub use tower::future::ResponseFuture;
#[cfg(feature = "tower")]
pub use tower::layer::{ChannelService, VerifyLayer};
#[cfg(feature = "tower")]
pub use tower::service::Verify;
#[cfg(feature = "tower")]
pub use worker::dead_letter::DeadLetter;
#[cfg(feature = "tower")]
pub use worker::dispatch::Dispatcher;
#[cfg(feature = "tower")]
pub use worker::job::{Job, Permanent};
#[cfg(feature = "tower")]
pub use worker::metrics::{Metrics, MetricsSnapshot};
#[cfg(feature = "tower")]
pub use worker::retry::RetryPolicy;
#[cfg(feature = "tower")]
pub use worker::run::{Worker, WorkerHandle, DEFAULT_SHUTDOWN_TIMEOUT};
#[cfg(feature = "tower")]
pub use worker::tally::WorkerReport;
