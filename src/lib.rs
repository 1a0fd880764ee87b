#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod core;
pub mod event;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
#[cfg(test)]
mod test_vectors;

#[cfg(any(feature = "tower", feature = "actix-web"))]
mod intake;
#[cfg(feature = "worker")]
#[cfg_attr(docsrs, doc(cfg(feature = "worker")))]
pub mod store;
#[cfg(feature = "worker")]
#[cfg_attr(docsrs, doc(cfg(feature = "worker")))]
pub mod worker;

#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub mod console;
#[cfg(feature = "reconcile")]
#[cfg_attr(docsrs, doc(cfg(feature = "reconcile")))]
pub mod reconcile;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub mod actix;

#[cfg(feature = "worker")]
#[cfg_attr(docsrs, doc(cfg(feature = "worker")))]
pub mod prelude;

pub use crate::core::delivery::{Delivery, SignatureHeader};
pub use crate::core::error::{BoxError, ConfigError, ErrorKind, VerifyError};
pub use crate::core::freshness::{Clock, Freshness, SystemClock, DEFAULT_MAX_FUTURE};
pub use crate::core::key::LogicalKey;
pub use crate::core::secret::Secret;
pub use crate::core::sign::{sign, sign_raw};
pub use crate::core::signature::{
    Signature, EVENT_HEADER, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER, WEBHOOK_EVENT_HEADER,
};
pub use crate::core::verify::{Verification, Verified, Verifier};
pub use event::{Envelope, Event};

#[cfg(any(feature = "tower", feature = "actix-web"))]
pub use intake::config::{
    default_rejection, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_RETRY_AFTER,
};
#[cfg(feature = "worker")]
pub use worker::shutdown_signal;
