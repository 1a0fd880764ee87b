//! Recover what never arrived: reconcile the store with Print.one's webhook logs (feature
//! `reconcile`).
//!
//! A durable store keeps what reached the receiver. It cannot keep what never did: deliveries
//! sent while every replica was down or being deployed, refused with 503 while the backlog was
//! full, or timed out behind a slow proxy. Print.one logs every attempt, with its outcome and
//! its envelope, behind its API, and never sends a failed one again. A [`Reconciler`] reads
//! those logs ([`PrintOneApi`]) and stores each event the store lacks as a delivery
//! [recovered from the log](crate::Delivery::recovered_from), which the worker then handles
//! like any other; it also reports events Print.one logged as delivered that the store does
//! not hold ([`LostDelivery`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use printone_webhooks::{
//!     reconcile::{ApiKey, PrintOneApi, Reconciler, DEFAULT_API_URL},
//!     store::MemoryStore,
//! };
//!
//! let store = MemoryStore::new();
//! let api = PrintOneApi::new(DEFAULT_API_URL, ApiKey::new(&std::env::var("PRINTONE_API_KEY")?)?)?;
//! let report = Reconciler::new(api, store).reconcile().await?;
//! println!("{report}");
//! # Ok(())
//! # }
//! ```
//!
//! Events are matched by their [`LogicalKey`](crate::LogicalKey) (event, `data.id`, creation
//! time), which every store keeps with each delivery, because the log holds the envelope, not
//! the signed bytes.

mod api;
mod duration;
mod error;
mod export;
mod model;
mod report;
mod run;
mod schedule;

pub use api::{ApiKey, ApiOptions, PrintOneApi, DEFAULT_API_URL, MAX_PAGE_SIZE};
pub use duration::parse_duration;
pub use error::ReconcileError;
pub use model::{LogResponse, LogStatus, Page, Webhook, WebhookLog};
pub use report::{LostDelivery, Report, WebhookReport};
pub use run::{ReconcileOptions, Reconciler, LOCK};
pub use schedule::DEFAULT_EVERY;
