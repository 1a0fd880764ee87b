//! The tower adapter: [`VerifyLayer`], its [`Verify`] service and [`ResponseFuture`], the
//! [`Acknowledge`] terminal service, [`Route`] (a route run by a worker), [`HealthService`],
//! with the `axum` feature the axum extractors, and with the `console` feature the delivery
//! console's `ConsoleService`.

pub(crate) mod acknowledge;
#[cfg(feature = "axum")]
pub(crate) mod axum;
pub(crate) mod body;
pub(crate) mod config;
#[cfg(feature = "console")]
pub(crate) mod console;
pub(crate) mod future;
pub(crate) mod health;
pub(crate) mod layer;
pub(crate) mod route;
pub(crate) mod service;

pub use acknowledge::{Acknowledge, AcknowledgeFuture};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::{Webhook, WebhookRejection};
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub use console::{ConsoleFuture, ConsoleService};
pub use future::ResponseFuture;
pub use health::{HealthFuture, HealthService};
pub use layer::VerifyLayer;
pub use route::Route;
pub use service::Verify;
