//! The harnesses behind the fuzz targets in `fuzz_targets/`.
//!
//! They live in a library rather than in the target binaries so that `cargo test` can decode the
//! committed seeds in `corpus/` and replay them through exactly the code the fuzzer runs.

pub mod service;
