//! Handling stored deliveries after their 200: the worker, typed dispatch, retries and dead
//! letters.

pub(crate) mod attempt;
pub(crate) mod dead_letter;
pub(crate) mod dispatch;
pub(crate) mod job;
pub(crate) mod metrics;
pub(crate) mod retry;
pub(crate) mod run;
pub(crate) mod tally;
pub(crate) mod tasks;
