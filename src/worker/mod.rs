//! Handling stored deliveries after their 200: the [`Worker`], the [`Handler`] it runs (a plain
//! async function, a [`Dispatcher`] of typed handlers, or a route), retries and dead letters.

pub(crate) mod attempt;
pub(crate) mod dispatch;
pub(crate) mod export;
pub(crate) mod handler;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod retry;
pub(crate) mod run;
pub(crate) mod settle;
pub(crate) mod signal;
pub(crate) mod tally;

pub use dispatch::Dispatcher;
pub use handler::{Handler, HandlerFuture, Permanent};
pub use health::{Health, Readiness, DEFAULT_READINESS_TIMEOUT};
pub use metrics::{Metrics, MetricsSnapshot};
pub use retry::RetryPolicy;
pub use run::{Worker, WorkerHandle, DEFAULT_CONCURRENCY, DEFAULT_LEASE, DEFAULT_SHUTDOWN_TIMEOUT};
pub use signal::shutdown_signal;
pub use tally::WorkerReport;
