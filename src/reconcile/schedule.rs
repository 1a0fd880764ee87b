//! Reconciling unattended: a task that runs a [`Reconciler`] now and then.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::reconcile::{error::ReconcileError, run::Reconciler};

/// The default time between two reconciliations: 10 minutes.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(10 * 60);

/// The longest wait between two tries while the API fails: 8 intervals.
const MAX_BACKOFF_FACTOR: u32 = 8;

impl Reconciler {
    /// Spawns a task that reconciles at once, then every `every`: what was sent while the
    /// receiver was down or being deployed is recovered soon after it starts.
    ///
    /// While the API fails, the wait doubles, up to eight intervals, and is never shorter
    /// than a `Retry-After` the API asked for. A run that finds another reconciler of the store
    /// running (another replica) is skipped. Every run logs one line with what it found, and a
    /// warning for each lost 200; neither the API key nor a body is logged. Abort the task
    /// handle to stop it: an interrupted run stores nothing twice and its checkpoints are
    /// consistent.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use = "the reconciler stops when the handle is aborted; keep it to stop it"]
    pub fn spawn_every(self, every: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            let every = every.max(Duration::from_secs(1));
            let mut failures = 0_u32;
            loop {
                let wait = match self.reconcile().await {
                    Ok(report) => {
                        failures = 0;
                        log_report(&report);
                        every
                    }
                    Err(ReconcileError::Busy) => {
                        tracing::debug!("another reconciler of this store is running; skipped");
                        every
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        let wait =
                            backoff(every, failures).max(error.retry_after().unwrap_or_default());
                        tracing::warn!(reason = %error, retry_in = ?wait, "reconciliation failed");
                        wait
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// The wait after `failures` failed runs in a row: `every`, doubling, up to eight of it.
fn backoff(every: Duration, failures: u32) -> Duration {
    let factor = 1_u32 << failures.saturating_sub(1).min(3);
    every.saturating_mul(factor.min(MAX_BACKOFF_FACTOR))
}

fn log_report(report: &crate::reconcile::Report) {
    for lost in report.lost_200() {
        tracing::warn!(
            webhook = %lost.webhook,
            log = %lost.log_id,
            event = %lost.event,
            "Print.one logged a delivery as answered 2xx that the store did not hold; recovered it"
        );
    }
    tracing::info!(
        webhooks = report.webhooks.len(),
        logged = report.logged(),
        held = report.held(),
        recovered = report.recovered(),
        lost_200 = report.lost_200_count(),
        "reconciled with the Print.one webhook logs"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_while_runs_fail_up_to_eight_intervals() {
        let every = Duration::from_secs(600);
        let waits: Vec<u64> = (1..=6).map(|n| backoff(every, n).as_secs() / 600).collect();
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
    }
}
