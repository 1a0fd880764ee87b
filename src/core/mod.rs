//! The framework-free core: secrets, the MAC, signature parsing, verification, signing,
//! freshness, errors and the verified [`Delivery`](delivery::Delivery).

pub(crate) mod delivery;
pub(crate) mod error;
pub(crate) mod freshness;
pub(crate) mod key;
pub(crate) mod mac;
pub(crate) mod secret;
pub(crate) mod sign;
pub(crate) mod signature;
pub(crate) mod verify;
