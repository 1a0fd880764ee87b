#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod delivery;
mod error;
pub mod event;
mod freshness;
mod mac;
mod secret;
mod sign;
mod signature;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
#[cfg(test)]
mod test_vectors;
mod verify;

#[cfg(feature = "tower")]
mod acknowledge;
#[cfg(feature = "actix-web")]
mod actix_config;
#[cfg(feature = "actix-web")]
mod actix_error;
#[cfg(feature = "actix-web")]
mod actix_extract;
#[cfg(feature = "actix-web")]
mod actix_local;
#[cfg(feature = "actix-web")]
mod actix_resource;
#[cfg(feature = "tower")]
mod attempt;
#[cfg(feature = "tower")]
mod background;
#[cfg(feature = "tower")]
mod body;
#[cfg(feature = "tower")]
mod config;
#[cfg(feature = "tower")]
mod dead_letter;
#[cfg(feature = "tower")]
mod dedupe;
#[cfg(feature = "tower")]
mod dispatch;
#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "tower")]
mod future;
#[cfg(feature = "tower")]
mod handoff;
#[cfg(feature = "tower")]
mod intake;
#[cfg(feature = "tower")]
mod job;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod metrics;
#[cfg(feature = "tower")]
mod retry;
#[cfg(feature = "tower")]
mod service;
#[cfg(feature = "tower")]
mod tally;
#[cfg(feature = "tower")]
mod tasks;
#[cfg(feature = "tower")]
mod worker;

pub use delivery::Delivery;
pub use error::{BoxError, ConfigError, ErrorKind, VerifyError};
pub use event::{Envelope, Event};
pub use freshness::{Clock, Freshness, SystemClock, DEFAULT_MAX_FUTURE};
pub use secret::Secret;
pub use sign::{sign, sign_raw};
pub use signature::{
    Signature, EVENT_HEADER, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER, WEBHOOK_EVENT_HEADER,
};
pub use verify::{Verification, Verified, Verifier};

#[cfg(feature = "actix-web")]
pub use actix_config::WebhookConfig;
#[cfg(feature = "actix-web")]
pub use actix_error::WebhookError;
#[cfg(feature = "actix-web")]
pub use actix_extract::WebhookEvent;
#[cfg(feature = "actix-web")]
pub use actix_local::{worker_queues, Leftovers, WorkerQueues};
#[cfg(feature = "actix-web")]
pub use actix_resource::WebhookResource;
#[cfg(feature = "tower")]
pub use background::{Background, BackgroundLayer};
#[cfg(feature = "tower")]
pub use config::{
    default_rejection, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_RETRY_AFTER,
};
#[cfg(feature = "tower")]
pub use dead_letter::DeadLetter;
#[cfg(feature = "tower")]
pub use dedupe::{
    Claim, DedupeStore, MemoryStore, StoreFuture, DEFAULT_DEDUPE_CAPACITY, DEFAULT_DEDUPE_WINDOW,
};
#[cfg(feature = "tower")]
pub use dispatch::Dispatcher;
#[cfg(feature = "axum")]
pub use extract::{Webhook, WebhookRejection};
#[cfg(feature = "tower")]
pub use future::ResponseFuture;
#[cfg(feature = "tower")]
pub use handoff::{HandOff, Handoff, HandoffError, HandoffFuture};
#[cfg(feature = "tower")]
pub use job::{Job, Permanent};
#[cfg(feature = "tower")]
pub use layer::{ChannelService, VerifyLayer};
#[cfg(feature = "tower")]
pub use metrics::{Metrics, MetricsSnapshot};
#[cfg(feature = "tower")]
pub use retry::RetryPolicy;
#[cfg(feature = "tower")]
pub use service::Verify;
#[cfg(feature = "tower")]
pub use tally::WorkerReport;
#[cfg(feature = "tower")]
pub use worker::{Worker, WorkerHandle, DEFAULT_SHUTDOWN_TIMEOUT};
