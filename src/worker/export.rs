//! What [`Metrics`](crate::worker::Metrics) reports through the `metrics` facade (feature
//! `metrics`), so any exporter (Prometheus, OpenTelemetry, `StatsD` …) sees it. Without the
//! feature every function here does nothing.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `printone_webhooks_deliveries_total` | counter | `outcome`: `accepted`, `duplicate`, `backlog_full`, `store_failed` | authentic deliveries and what the store said (200 for the first two, 503 otherwise) |
//! | `printone_webhooks_refused_total` | counter | `kind`: the [`ErrorKind`](crate::ErrorKind) name | requests refused before the store (401, 405, 408, 413, 400, 422) |
//! | `printone_webhooks_handled_total` | counter | | deliveries handled |
//! | `printone_webhooks_attempts_failed_total` | counter | | failed attempts (errors and panics) |
//! | `printone_webhooks_retries_total` | counter | | failed attempts followed by a retry |
//! | `printone_webhooks_dead_letters_total` | counter | | deliveries dead-lettered |
//! | `printone_webhooks_stored_deliveries` | gauge | `state`: `pending`, `leased`, `done`, `dead` | what the store holds, as the worker last read it (every 5 s) |
//! | `printone_webhooks_acknowledge_seconds` | histogram | | from the verified body to the answer: the store's write |
//! | `printone_webhooks_handled_delay_seconds` | histogram | | from acceptance to handled |
//! | `printone_webhooks_handler_seconds` | histogram | `outcome`: `ok`, `failed` | one attempt of the handler |
//!
//! No label carries a body, a secret or an unbounded value (no delivery or data ids).

#[cfg(feature = "metrics")]
mod facade {
    use std::time::Duration;

    use crate::store::Counts;

    #[cfg_attr(not(any(feature = "tower", feature = "actix-web")), allow(dead_code))] // the intake's
    pub(crate) fn delivery(outcome: &'static str) {
        metrics::counter!("printone_webhooks_deliveries_total", "outcome" => outcome).increment(1);
    }

    #[cfg_attr(not(any(feature = "tower", feature = "actix-web")), allow(dead_code))] // the intake's
    pub(crate) fn refused(kind: &'static str) {
        metrics::counter!("printone_webhooks_refused_total", "kind" => kind).increment(1);
    }

    #[cfg_attr(not(any(feature = "tower", feature = "actix-web")), allow(dead_code))] // the intake's
    pub(crate) fn acknowledged(elapsed: Duration) {
        metrics::histogram!("printone_webhooks_acknowledge_seconds").record(elapsed);
    }

    pub(crate) fn handled(delay: Duration) {
        metrics::counter!("printone_webhooks_handled_total").increment(1);
        metrics::histogram!("printone_webhooks_handled_delay_seconds").record(delay);
    }

    pub(crate) fn attempt(duration: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        metrics::histogram!("printone_webhooks_handler_seconds", "outcome" => outcome)
            .record(duration);
        if !ok {
            metrics::counter!("printone_webhooks_attempts_failed_total").increment(1);
        }
    }

    pub(crate) fn retried() {
        metrics::counter!("printone_webhooks_retries_total").increment(1);
    }

    pub(crate) fn dead_lettered() {
        metrics::counter!("printone_webhooks_dead_letters_total").increment(1);
    }

    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub(crate) fn stored(counts: &Counts) {
        for (state, count) in [
            ("pending", counts.pending),
            ("leased", counts.leased),
            ("done", counts.done),
            ("dead", counts.dead),
        ] {
            metrics::gauge!("printone_webhooks_stored_deliveries", "state" => state)
                .set(count as f64);
        }
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(clippy::missing_const_for_fn)]
mod facade {
    use std::time::Duration;

    use crate::store::Counts;

    #[cfg_attr(not(any(feature = "tower", feature = "actix-web")), allow(dead_code))] // the intake's
    pub(crate) fn delivery(_: &'static str) {}
    #[cfg_attr(not(any(feature = "tower", feature = "actix-web")), allow(dead_code))] // the intake's
    pub(crate) fn refused(_: &'static str) {}
    #[cfg_attr(not(any(feature = "tower", feature = "actix-web")), allow(dead_code))] // the intake's
    pub(crate) fn acknowledged(_: Duration) {}
    pub(crate) fn handled(_: Duration) {}
    pub(crate) fn attempt(_: Duration, _: bool) {}
    pub(crate) fn retried() {}
    pub(crate) fn dead_lettered() {}
    pub(crate) fn stored(_: &Counts) {}
}

pub(crate) use facade::*;
