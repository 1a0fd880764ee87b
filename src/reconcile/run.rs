//! [`Reconciler`]: reads each webhook's log since its checkpoint and stores what is missing.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use bytes::Bytes;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{
    core::{
        delivery::Delivery,
        key::{utc, LogicalKey},
    },
    reconcile::{
        api::{PrintOneApi, MAX_PAGE_SIZE},
        error::ReconcileError,
        export,
        model::{LogStatus, Webhook, WebhookLog},
        report::{LostDelivery, Report, WebhookReport},
    },
    store::{Inserted, SharedStore, DEFAULT_DEDUPE_WINDOW},
};

/// The name of the lock one reconciler of a store holds while it runs.
pub const LOCK: &str = "reconcile";

/// The checkpoint stores write when they start keying deliveries.
const KEYED_SINCE: &str = "keyed-since";

/// The most pages of one webhook's log one run reads.
const MAX_PAGES: u64 = 10_000;

/// Which part of the logs a [`Reconciler`] reads, and whether it changes anything.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconcileOptions {
    /// Read back this far from now instead of from each webhook's checkpoint.
    pub since: Option<Duration>,
    /// Only these webhooks (by id); every webhook of the account when empty.
    pub webhooks: Vec<String>,
    /// Store nothing and move no checkpoint: only report.
    pub dry_run: bool,
    /// How far before its checkpoint a webhook's log is read again, for attempts logged late
    /// (1 hour).
    pub overlap: Duration,
    /// How far back the first run of a webhook reads (24 hours).
    pub first_window: Duration,
    /// The store's de-duplication window: no log older than it is read, since the store has
    /// forgotten what it handled before (7 days, as the stores' default).
    pub dedupe_window: Duration,
    /// Log entries per page (at most 100).
    pub page_size: u32,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self {
            since: None,
            webhooks: Vec::new(),
            dry_run: false,
            overlap: Duration::from_secs(60 * 60),
            first_window: Duration::from_secs(24 * 60 * 60),
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            page_size: MAX_PAGE_SIZE,
        }
    }
}

impl ReconcileOptions {
    /// Sets [`ReconcileOptions::since`].
    #[must_use]
    pub const fn since(mut self, since: Duration) -> Self {
        self.since = Some(since);
        self
    }

    /// Sets [`ReconcileOptions::webhooks`].
    #[must_use]
    pub fn webhooks(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.webhooks = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`ReconcileOptions::dry_run`].
    #[must_use]
    pub const fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sets [`ReconcileOptions::dedupe_window`] (the store's own, when it is not the default).
    #[must_use]
    pub const fn dedupe_window(mut self, window: Duration) -> Self {
        self.dedupe_window = window;
        self
    }

    /// Sets [`ReconcileOptions::page_size`] (1 to 100).
    #[must_use]
    pub fn page_size(mut self, entries: u32) -> Self {
        self.page_size = entries.clamp(1, MAX_PAGE_SIZE);
        self
    }
}

/// Recovers what never reached the store from Print.one's webhook logs, and audits the rest.
///
/// A run takes the store's `reconcile` lock (one reconciler at a time, across processes and
/// replicas), lists the account's webhooks, and reads each one's log, newest first, back to
/// its checkpoint (less an overlap) or, the first time, a day back. Each attempt is matched by
/// the [`LogicalKey`] of its envelope:
///
/// - an event the store holds is *held*;
/// - an event it does not hold is stored as a delivery [recovered from the
///   log](Delivery::recovered_from), which the worker then handles like any other;
/// - an event Print.one logged as delivered (a 2xx) that the store does not hold is also
///   reported as a *lost 200*.
///
/// Then the webhook's checkpoint moves to the newest attempt read. Running it again, or in
/// two replicas at once, recovers nothing twice: the store refuses a second delivery of a key.
///
/// # Security
///
/// A recovered delivery was not signature-verified: the log holds the envelope, not the
/// signed bytes. Its authenticity comes from the API, reached over TLS with the account's API
/// key. Neither the key nor a body is logged.
#[derive(Debug, Clone)]
pub struct Reconciler {
    api: PrintOneApi,
    store: SharedStore,
    options: ReconcileOptions,
}

impl Reconciler {
    /// A reconciler of `store` with the logs `api` reads, with the default options.
    pub fn new(api: PrintOneApi, store: impl Into<SharedStore>) -> Self {
        Self {
            api,
            store: store.into(),
            options: ReconcileOptions::default(),
        }
    }

    /// Sets the options.
    #[must_use]
    pub fn with_options(mut self, options: ReconcileOptions) -> Self {
        self.options = options;
        self
    }

    /// The options.
    #[must_use]
    pub const fn options(&self) -> &ReconcileOptions {
        &self.options
    }

    /// Runs one reconciliation: see [`Reconciler`].
    ///
    /// # Errors
    ///
    /// [`ReconcileError::Busy`] when another reconciler of the store runs;
    /// [`ReconcileError::Config`] for a refused API key or an unknown webhook id; the API
    /// failures ([`ReconcileError::is_api_failure`]); a store failure or a full backlog.
    /// Webhooks reconciled before the failure keep their moved checkpoints.
    pub async fn reconcile(&self) -> Result<Report, ReconcileError> {
        let outcome = self.reconcile_locked().await;
        export::run(&outcome);
        outcome
    }

    async fn reconcile_locked(&self) -> Result<Report, ReconcileError> {
        let Some(_lock) = self.store.try_exclusive(LOCK).await? else {
            return Err(ReconcileError::Busy);
        };
        let now = OffsetDateTime::now_utc();
        let floor = self.floor(now).await?;
        let webhooks = self.webhooks().await?;
        let mut report = Report {
            webhooks: Vec::with_capacity(webhooks.len()),
            dry_run: self.options.dry_run,
        };
        for webhook in &webhooks {
            report
                .webhooks
                .push(self.reconcile_webhook(webhook, now, floor).await?);
        }
        Ok(report)
    }

    /// The oldest creation time any run may read: the store's de-duplication window back, and
    /// not before the store began keying deliveries.
    async fn floor(&self, now: OffsetDateTime) -> Result<OffsetDateTime, ReconcileError> {
        let window = now - self.options.dedupe_window;
        let keyed = self
            .store
            .checkpoint(KEYED_SINCE)
            .await?
            .and_then(|since| parse(&since));
        Ok(keyed.map_or(window, |keyed| keyed.max(window)))
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, ReconcileError> {
        let all = self.api.webhooks().await?;
        if self.options.webhooks.is_empty() {
            return Ok(all);
        }
        let known: HashSet<&str> = all.iter().map(|w| w.id.as_str()).collect();
        if let Some(missing) = self
            .options
            .webhooks
            .iter()
            .find(|id| !known.contains(id.as_str()))
        {
            return Err(ReconcileError::Config(format!(
                "the account has no webhook {missing}"
            )));
        }
        Ok(all
            .into_iter()
            .filter(|w| self.options.webhooks.contains(&w.id))
            .collect())
    }

    async fn reconcile_webhook(
        &self,
        webhook: &Webhook,
        now: OffsetDateTime,
        floor: OffsetDateTime,
    ) -> Result<WebhookReport, ReconcileError> {
        let checkpoint_name = format!("reconcile:{}", webhook.id);
        let from = self.from(&checkpoint_name, now).await?.max(floor);
        let mut pass = Pass::new(webhook, from, now);
        let mut newest: Option<OffsetDateTime> = None;
        for page in 1..=MAX_PAGES {
            let logs = self
                .api
                .logs(&webhook.id, page, self.options.page_size)
                .await?;
            let more = logs.has_next(page);
            let (entries, older) = within(logs.data, from);
            newest = entries
                .iter()
                .filter_map(|log| log.created_at.as_deref().and_then(parse))
                .chain(newest)
                .max();
            self.settle_page(&mut pass, &entries).await?;
            if older || !more {
                break;
            }
        }
        if let (Some(newest), false) = (newest, self.options.dry_run) {
            self.store
                .set_checkpoint(&checkpoint_name, &utc(newest))
                .await?;
        }
        Ok(pass.report)
    }

    /// Where a webhook's log is read from: `since` back, or its checkpoint less the overlap,
    /// or the first window back.
    async fn from(
        &self,
        checkpoint: &str,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, ReconcileError> {
        if let Some(since) = self.options.since {
            return Ok(now - since);
        }
        let saved = self.store.checkpoint(checkpoint).await?;
        Ok(match saved.as_deref().and_then(parse) {
            Some(at) => at - self.options.overlap,
            None => now - self.options.first_window,
        })
    }

    /// Matches one page of attempts with the store, and recovers what it lacks.
    async fn settle_page(
        &self,
        pass: &mut Pass,
        entries: &[WebhookLog],
    ) -> Result<(), ReconcileError> {
        let keyed: Vec<(usize, LogicalKey, String)> = entries
            .iter()
            .enumerate()
            .filter_map(|(at, log)| {
                let envelope = log.envelope()?;
                Some((at, LogicalKey::of_body(envelope.as_bytes())?, envelope))
            })
            .collect();
        let unknown: Vec<LogicalKey> = keyed
            .iter()
            .filter(|(_, key, _)| !pass.fates.contains_key(&key.digest()))
            .map(|(_, key, _)| key.clone())
            .collect();
        let held = self.store.holds(&unknown).await?;
        for (key, held) in unknown.iter().zip(held) {
            if held {
                pass.fates.insert(key.digest(), Fate::Held);
            }
        }
        let mut keys: HashMap<usize, (LogicalKey, String)> = keyed
            .into_iter()
            .map(|(at, key, envelope)| (at, (key, envelope)))
            .collect();
        for (at, log) in entries.iter().enumerate() {
            pass.count(log);
            match keys.remove(&at) {
                None => pass.report.unmatched += 1,
                Some((key, envelope)) => self.settle_entry(pass, log, &key, envelope).await?,
            }
        }
        Ok(())
    }

    async fn settle_entry(
        &self,
        pass: &mut Pass,
        log: &WebhookLog,
        key: &LogicalKey,
        envelope: String,
    ) -> Result<(), ReconcileError> {
        let digest = key.digest();
        let fate = if let Some(fate) = pass.fates.get(&digest) {
            *fate
        } else {
            let fate = self.recover(log, envelope).await?;
            pass.fates.insert(digest, fate);
            match fate {
                Fate::Recovered => pass.report.recovered += 1,
                Fate::Missing => pass.report.would_recover += 1,
                Fate::Held => {}
            }
            fate
        };
        if fate == Fate::Held {
            pass.report.held += 1;
        } else if log.status == LogStatus::Success && pass.lost.insert(digest) {
            pass.report.lost_200.push(LostDelivery {
                webhook: pass.report.id.clone(),
                log_id: log.id.clone(),
                event: key.event().to_owned(),
                data_id: key.data_id().to_owned(),
                created_at: key.created_at().to_owned(),
            });
        }
        Ok(())
    }

    /// Stores the envelope of `log` as a recovered delivery (not in a dry run).
    async fn recover(&self, log: &WebhookLog, envelope: String) -> Result<Fate, ReconcileError> {
        if self.options.dry_run {
            return Ok(Fate::Missing);
        }
        let delivery = Delivery::recovered(Bytes::from(envelope), log.event.as_deref(), &log.id)
            .ok_or_else(|| ReconcileError::Malformed("an envelope lost its key".into()))?;
        match self.store.insert(&delivery).await? {
            Inserted::Stored => {
                tracing::info!(
                    log = %log.id,
                    event = log.event.as_deref().unwrap_or("-"),
                    id = %delivery.id(),
                    "delivery recovered from the Print.one webhook log"
                );
                Ok(Fate::Recovered)
            }
            // Stored by another reconciler, or arrived signed, a moment ago.
            Inserted::Duplicate => Ok(Fate::Held),
            Inserted::Full => Err(ReconcileError::Full),
        }
    }
}

/// What became of an event, once per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The store held it.
    Held,
    /// Stored now from the log.
    Recovered,
    /// Missing, left so by a dry run.
    Missing,
}

/// The state of one webhook's reconciliation.
struct Pass {
    report: WebhookReport,
    fates: HashMap<[u8; 32], Fate>,
    lost: HashSet<[u8; 32]>,
}

impl Pass {
    fn new(webhook: &Webhook, from: OffsetDateTime, to: OffsetDateTime) -> Self {
        Self {
            report: WebhookReport {
                id: webhook.id.clone(),
                name: webhook.name.clone(),
                from: utc(from),
                to: utc(to),
                ..WebhookReport::default()
            },
            fates: HashMap::new(),
            lost: HashSet::new(),
        }
    }

    fn count(&mut self, log: &WebhookLog) {
        if log.status == LogStatus::Success {
            self.report.logged_success += 1;
        } else {
            self.report.logged_failed += 1;
        }
    }
}

/// The entries created at or after `from` (and those whose time does not parse), and whether
/// an older one was seen: the log is newest first, so the rest is older too.
fn within(entries: Vec<WebhookLog>, from: OffsetDateTime) -> (Vec<WebhookLog>, bool) {
    let mut older = false;
    let kept = entries
        .into_iter()
        .filter(|log| {
            let old = log
                .created_at
                .as_deref()
                .and_then(parse)
                .is_some_and(|at| at < from);
            older |= old;
            !old
        })
        .collect();
    (kept, older)
}

fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}
