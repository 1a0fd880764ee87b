//! Where verified deliveries wait to be handled.

pub(crate) mod dedupe;
pub(crate) mod handoff;
