//! The actix-web adapter: configuration, extractors, errors and the acknowledging resource.

pub(crate) mod config;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod local;
pub(crate) mod resource;
