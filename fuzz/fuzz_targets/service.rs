//! The tower service fed random requests: the layer in front of an inner service, and
//! `store_in` a small memory store with and without a worker draining it. The harness and its
//! oracle are in `src/service/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use printone_webhooks_fuzz::service::{run, Input};

fuzz_target!(|input: Input| {
    run(input);
});
