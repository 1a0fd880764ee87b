//! The actix-web adapter: [`WebhookConfig`], the verifying extractors
//! ([`Delivery`](crate::Delivery) and [`WebhookEvent`]), [`WebhookError`] and the
//! acknowledging [`WebhookResource`], the health handlers, and with the `console` feature the
//! delivery console's `console_scope`.

pub(crate) mod config;
#[cfg(feature = "console")]
pub(crate) mod console;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod health;
pub(crate) mod resource;

pub use config::WebhookConfig;
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub use console::console_scope;
pub use error::WebhookError;
pub use extract::WebhookEvent;
pub use health::{healthz, readyz};
pub use resource::WebhookResource;
