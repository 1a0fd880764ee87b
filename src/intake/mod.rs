//! What every adapter shares between the socket and the store: the checks made before the
//! body is read, the bounded body reader, and storing a verified delivery before answering.

pub(crate) mod acknowledge;
pub(crate) mod body;
pub(crate) mod checks;
pub(crate) mod config;
