//! What a reconciliation found: per webhook and in all.

use std::fmt;

/// What one reconciliation found, per webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// One entry per webhook reconciled, in the account's order.
    pub webhooks: Vec<WebhookReport>,
    /// Whether it was a dry run (nothing stored, no checkpoint moved).
    pub dry_run: bool,
}

impl Report {
    /// Log entries read, in all.
    #[must_use]
    pub fn logged(&self) -> u64 {
        self.webhooks.iter().map(WebhookReport::logged).sum()
    }

    /// Log entries whose event the store held already.
    #[must_use]
    pub fn held(&self) -> u64 {
        self.webhooks.iter().map(|w| w.held).sum()
    }

    /// Events stored now from the log.
    #[must_use]
    pub fn recovered(&self) -> u64 {
        self.webhooks.iter().map(|w| w.recovered).sum()
    }

    /// Events a dry run would have recovered.
    #[must_use]
    pub fn would_recover(&self) -> u64 {
        self.webhooks.iter().map(|w| w.would_recover).sum()
    }

    /// Every event Print.one logged as delivered (a 2xx) that the store did not hold.
    pub fn lost_200(&self) -> impl Iterator<Item = &LostDelivery> {
        self.webhooks.iter().flat_map(|w| w.lost_200.iter())
    }

    /// How many events were lost after a 200.
    #[must_use]
    pub fn lost_200_count(&self) -> u64 {
        self.lost_200().count() as u64
    }

    /// The summary line scripts read:
    /// `reconciled webhooks=<n> logged=<n> held=<n> recovered=<n> lost_200=<n>`.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "reconciled webhooks={} logged={} held={} recovered={} lost_200={}",
            self.webhooks.len(),
            self.logged(),
            self.held(),
            self.recovered(),
            self.lost_200_count()
        )
    }
}

impl fmt::Display for Report {
    /// One line per webhook, one per lost 200, then [`Report::summary`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for webhook in &self.webhooks {
            writeln!(f, "{webhook}")?;
            for lost in &webhook.lost_200 {
                writeln!(f, "{lost}")?;
            }
        }
        if self.dry_run {
            writeln!(
                f,
                "dry run: nothing stored; would recover {}",
                self.would_recover()
            )?;
        }
        f.write_str(&self.summary())
    }
}

/// What the log of one webhook held in the window read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookReport {
    /// The webhook's id.
    pub id: String,
    /// Its name, when it has one.
    pub name: Option<String>,
    /// The oldest creation time read (RFC 3339, UTC): the window's start.
    pub from: String,
    /// When the reconciliation read the log: the window's end.
    pub to: String,
    /// Attempts Print.one logged as `success`.
    pub logged_success: u64,
    /// Attempts Print.one logged as `failed` (or with another status).
    pub logged_failed: u64,
    /// Attempts whose event the store held before this run.
    pub held: u64,
    /// Events stored now, recovered from the log.
    pub recovered: u64,
    /// Events a dry run found missing.
    pub would_recover: u64,
    /// Attempts whose envelope lacks an event, a `data.id` or a creation time: they cannot be
    /// matched, so they are neither held nor recovered.
    pub unmatched: u64,
    /// Events logged as delivered that the store did not hold: a 200 that was lost.
    pub lost_200: Vec<LostDelivery>,
}

impl WebhookReport {
    /// Attempts read from its log.
    #[must_use]
    pub const fn logged(&self) -> u64 {
        self.logged_success + self.logged_failed
    }
}

impl fmt::Display for WebhookReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "webhook {} from={} to={} logged_success={} logged_failed={} held={} recovered={} lost_200={}",
            self.id,
            self.from,
            self.to,
            self.logged_success,
            self.logged_failed,
            self.held,
            self.recovered,
            self.lost_200.len()
        )?;
        if self.unmatched > 0 {
            write!(f, " unmatched={}", self.unmatched)?;
        }
        if self.would_recover > 0 {
            write!(f, " would_recover={}", self.would_recover)?;
        }
        Ok(())
    }
}

/// An event Print.one logged as delivered (the receiver answered 2xx) that the store does not
/// hold: the store lost it, or something else answered for the receiver. It is recovered like
/// any other missing event (unless the run is dry), and reported because it should not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LostDelivery {
    /// The webhook it was sent for.
    pub webhook: String,
    /// The log entry that says it was delivered.
    pub log_id: String,
    /// Its trigger.
    pub event: String,
    /// Its `data.id`.
    pub data_id: String,
    /// Its creation time, normalised.
    pub created_at: String,
}

impl fmt::Display for LostDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lost_200 webhook={} log={} event={} id={} created_at={}",
            printable(&self.webhook),
            printable(&self.log_id),
            printable(&self.event),
            printable(&self.data_id),
            self.created_at
        )
    }
}

/// Keeps a value on its line: whitespace and control characters become `_`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_adds_up_every_webhook() {
        let report = Report {
            webhooks: vec![
                WebhookReport {
                    id: "w1".into(),
                    logged_success: 3,
                    logged_failed: 2,
                    held: 3,
                    recovered: 1,
                    lost_200: vec![LostDelivery {
                        webhook: "w1".into(),
                        log_id: "log 9".into(),
                        event: "e".into(),
                        data_id: "d".into(),
                        created_at: "t".into(),
                    }],
                    ..WebhookReport::default()
                },
                WebhookReport {
                    id: "w2".into(),
                    logged_failed: 1,
                    recovered: 1,
                    ..WebhookReport::default()
                },
            ],
            dry_run: false,
        };
        let text = report.to_string();
        let last = text.lines().last().unwrap();
        assert_eq!(
            last,
            "reconciled webhooks=2 logged=6 held=3 recovered=2 lost_200=1"
        );
        assert!(text.contains("lost_200 webhook=w1 log=log_9 event=e id=d created_at=t"));
    }
}
