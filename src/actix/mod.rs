//! The actix-web adapter: [`WebhookConfig`], the verifying extractors
//! ([`Delivery`](crate::Delivery) and [`WebhookEvent`]), [`WebhookError`] and the
//! acknowledging [`WebhookResource`].

pub(crate) mod config;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod health;
pub(crate) mod resource;

pub use config::WebhookConfig;
pub use error::WebhookError;
pub use extract::WebhookEvent;
pub use health::{healthz, readyz};
pub use resource::WebhookResource;
