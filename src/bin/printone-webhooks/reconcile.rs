//! `reconcile` and `secret`: the commands that talk to Print.one's API.

use std::time::Duration;

use printone_webhooks::reconcile::{
    ApiKey, ApiOptions, PrintOneApi, ReconcileError, ReconcileOptions, Reconciler, Report,
};

use crate::{
    args::{ApiArgs, ReconcileArgs},
    deliveries, runtime, Failure, Outcome,
};

/// How long `reconcile` waits for another reconciler of the store to finish.
const LOCK_PATIENCE: Duration = Duration::from_secs(60);

pub(crate) fn run(args: &ReconcileArgs) -> Result<Outcome, Failure> {
    let api = api(&args.api)?;
    runtime()?.block_on(async {
        let store = deliveries::open(&args.store).await?;
        let mut options = ReconcileOptions::default()
            .webhooks(args.webhook.iter().cloned())
            .dry_run(args.dry_run);
        options.since = args.since;
        let reconciler = Reconciler::new(api, store).with_options(options);
        let report = reconcile_when_free(&reconciler).await?;
        for webhook in &report.webhooks {
            if webhook.unmatched > 0 {
                eprintln!(
                    "warning: webhook {}: {} log entries have no event, data id or creation time and cannot be matched",
                    webhook.id, webhook.unmatched
                );
            }
        }
        println!("{report}");
        Ok(if report.lost_200_count() > 0 {
            Outcome::Failed
        } else {
            Outcome::Success
        })
    })
}

pub(crate) fn secret(args: &ApiArgs) -> Result<Outcome, Failure> {
    let api = api(args)?;
    runtime()?.block_on(async {
        let secret = api.webhook_secret().await.map_err(failure)?;
        println!("{secret}");
        Ok(Outcome::Success)
    })
}

/// Runs the reconciliation, waiting while another reconciler of the store runs.
async fn reconcile_when_free(reconciler: &Reconciler) -> Result<Report, Failure> {
    let deadline = tokio::time::Instant::now() + LOCK_PATIENCE;
    let mut said = false;
    loop {
        match reconciler.reconcile().await {
            Err(ReconcileError::Busy) if tokio::time::Instant::now() < deadline => {
                if !std::mem::replace(&mut said, true) {
                    eprintln!("another reconciler of this store is running; waiting for it");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            outcome => return outcome.map_err(failure),
        }
    }
}

fn api(args: &ApiArgs) -> Result<PrintOneApi, Failure> {
    let key = args
        .api_key
        .as_deref()
        .ok_or_else(|| Failure::usage("no API key: set PRINTONE_API_KEY or give --api-key"))?;
    let key = ApiKey::new(key).map_err(failure)?;
    let options = ApiOptions::default().with_timeout(args.timeout);
    PrintOneApi::with_options(&args.api_url, key, options).map_err(failure)
}

#[allow(clippy::needless_pass_by_value)] // used as `.map_err(failure)`
fn failure(error: ReconcileError) -> Failure {
    if error.is_api_failure() {
        Failure::network(error.to_string())
    } else {
        Failure::usage(error.to_string())
    }
}
