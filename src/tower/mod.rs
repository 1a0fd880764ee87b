//! The tower adapter: [`VerifyLayer`](layer::VerifyLayer), its service and future, and the
//! axum extractors.

#[cfg(feature = "axum")]
pub(crate) mod axum;
pub(crate) mod background;
pub(crate) mod future;
pub(crate) mod layer;
pub(crate) mod service;
