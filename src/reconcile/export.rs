//! What reconciliations report through the `metrics` facade (feature `metrics`); without the
//! feature, nothing.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `printone_webhooks_reconcile_runs_total` | counter | `outcome`: `ok`, `lost_200`, `busy`, `api_failed`, `config`, `store_failed` | reconciliations and how they ended |
//! | `printone_webhooks_reconcile_logged_total` | counter | `status`: `success`, `failed` | attempts read from the logs |
//! | `printone_webhooks_reconcile_recovered_total` | counter | | deliveries recovered from the logs |
//! | `printone_webhooks_reconcile_lost_200_total` | counter | | events logged as delivered that the store did not hold |
//! | `printone_webhooks_reconcile_last_success_seconds` | gauge | | when a reconciliation last ran to its end (Unix time) |

use crate::reconcile::{error::ReconcileError, report::Report};

/// Records how a reconciliation ended.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn run(outcome: &Result<Report, ReconcileError>) {
    #[cfg(feature = "metrics")]
    facade::run(outcome);
}

/// The outcome label of a run.
#[cfg(feature = "metrics")]
fn outcome(outcome: &Result<Report, ReconcileError>) -> &'static str {
    match outcome {
        Ok(report) if report.lost_200_count() > 0 => "lost_200",
        Ok(_) => "ok",
        Err(ReconcileError::Busy) => "busy",
        Err(error) if error.is_api_failure() => "api_failed",
        Err(ReconcileError::Config(_)) => "config",
        Err(_) => "store_failed",
    }
}

#[cfg(feature = "metrics")]
mod facade {
    use std::time::SystemTime;

    use crate::reconcile::{error::ReconcileError, report::Report};

    #[allow(clippy::cast_precision_loss)] // Unix seconds fit an f64's mantissa
    pub(super) fn run(outcome: &Result<Report, ReconcileError>) {
        let label = super::outcome(outcome);
        metrics::counter!("printone_webhooks_reconcile_runs_total", "outcome" => label)
            .increment(1);
        let Ok(report) = outcome else {
            return;
        };
        let (success, failed) = report.webhooks.iter().fold((0, 0), |(s, f), w| {
            (s + w.logged_success, f + w.logged_failed)
        });
        metrics::counter!("printone_webhooks_reconcile_logged_total", "status" => "success")
            .increment(success);
        metrics::counter!("printone_webhooks_reconcile_logged_total", "status" => "failed")
            .increment(failed);
        metrics::counter!("printone_webhooks_reconcile_recovered_total")
            .increment(report.recovered());
        metrics::counter!("printone_webhooks_reconcile_lost_200_total")
            .increment(report.lost_200_count());
        if let Ok(since) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            metrics::gauge!("printone_webhooks_reconcile_last_success_seconds")
                .set(since.as_secs_f64());
        }
    }
}
