//! The shapes of Print.one's API answers the reconciler reads, as its official SDK
//! (`print-one-js`) types them. Unknown fields are ignored, and every field the reconciler can
//! do without is optional, so a new field or a missing one never stops a reconciliation.

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One page of a paginated list (`IPaginatedResponse`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// This page's number, from 1.
    #[serde(default)]
    pub page: Option<u64>,
    /// How many pages there are.
    #[serde(default)]
    pub pages: Option<u64>,
    /// Items per page.
    #[serde(default)]
    pub page_size: Option<u64>,
    /// Items in all pages.
    #[serde(default)]
    pub total: Option<u64>,
    /// The next page's URL, `null` on the last page.
    #[serde(default)]
    pub next_url: Option<String>,
}

impl<T> Page<T> {
    /// Whether a page follows this one (numbered `page`, when the answer does not say).
    #[must_use]
    pub fn has_next(&self, page: u64) -> bool {
        if self.data.is_empty() {
            return false;
        }
        match (self.pages, &self.next_url) {
            (Some(pages), _) => self.page.unwrap_or(page) < pages,
            (None, next) => next.is_some(),
        }
    }
}

/// A webhook of the account (`IWebhook`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Webhook {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// The triggers it is sent for.
    #[serde(default)]
    pub events: Vec<String>,
    /// Whether Print.one sends it.
    #[serde(default)]
    pub active: Option<bool>,
    /// Where Print.one sends it.
    #[serde(default)]
    pub url: Option<String>,
}

/// What Print.one logged of one attempt to send a webhook (`IWebhookLog`).
///
/// # Security
///
/// `Debug` shows neither the request (the envelope) nor the receiver's answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookLog {
    /// The log entry's id.
    pub id: String,
    /// Whether the receiver answered with a success.
    #[serde(default)]
    pub status: LogStatus,
    /// The trigger.
    #[serde(default)]
    pub event: Option<String>,
    /// The envelope that was sent (`data`, `event` and its creation time), exactly as the API
    /// wrote it.
    #[serde(default)]
    pub request: Option<Box<RawValue>>,
    /// What the receiver answered.
    #[serde(default)]
    pub response: Option<LogResponse>,
    /// When the attempt was made (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
}

impl fmt::Debug for WebhookLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookLog")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("event", &self.event)
            .field("created_at", &self.created_at)
            .field("request_len", &self.request.as_ref().map(|r| r.get().len()))
            .finish_non_exhaustive()
    }
}

impl WebhookLog {
    /// The envelope's JSON text: the request object, or the object a JSON string holds when
    /// the request was logged as a string.
    #[must_use]
    pub fn envelope(&self) -> Option<String> {
        let raw = self.request.as_ref()?.get();
        if raw.trim_start().starts_with('"') {
            return serde_json::from_str::<String>(raw).ok();
        }
        raw.trim_start().starts_with('{').then(|| raw.to_owned())
    }
}

/// A log entry's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogStatus {
    /// The receiver answered with a success: Print.one will not send it again.
    Success,
    /// The attempt failed (an error status, a timeout, no connection).
    Failed,
    /// Any other value, or none.
    #[default]
    #[serde(other)]
    Unknown,
}

/// The receiver's answer, as logged (`IWebhookLogResponse`).
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct LogResponse {
    /// Its status code.
    #[serde(default)]
    pub status: Option<u16>,
}

impl fmt::Debug for LogResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_page_reads_the_sdk_shape_and_ignores_unknown_fields() {
        let page: Page<WebhookLog> = serde_json::from_str(
            r#"{"data":[{"id":"log_1","status":"failed","event":"order_status_update",
                "request":{"data":{"id":"ord_1"},"event":"order_status_update","createdAt":"2024-06-03T13:14:46.501Z"},
                "response":{"status":503,"body":"full"},"createdAt":"2024-06-03T13:14:47.000Z","retries":3}],
                "page":1,"pages":2,"pageSize":1,"total":2,"nextUrl":"https://api.print.one/v2/webhooks/w/logs?page=2",
                "previousUrl":null,"currentUrl":"x","meta":{"filterOptions":{}}}"#,
        )
        .expect("parses");
        assert!(page.has_next(1));
        let log = &page.data[0];
        assert_eq!(log.status, LogStatus::Failed);
        assert_eq!(log.response.as_ref().and_then(|r| r.status), Some(503));
        let envelope = log.envelope().expect("an envelope");
        assert!(envelope.starts_with(r#"{"data":{"id":"ord_1"}"#));
        assert!(!format!("{log:?}").contains("ord_1"), "no body in Debug");
    }

    #[test]
    fn an_unknown_status_and_missing_fields_still_parse() {
        let log: WebhookLog =
            serde_json::from_str(r#"{"id":"log_2","status":"retrying"}"#).expect("parses");
        assert_eq!(log.status, LogStatus::Unknown);
        assert_eq!(log.envelope(), None);
    }

    #[test]
    fn a_request_logged_as_a_string_gives_its_envelope() {
        let log: WebhookLog =
            serde_json::from_str(r#"{"id":"l","request":"{\"event\":\"e\"}"}"#).expect("parses");
        assert_eq!(log.envelope().as_deref(), Some(r#"{"event":"e"}"#));
    }

    #[test]
    fn the_last_page_has_no_next() {
        let page: Page<Webhook> =
            serde_json::from_str(r#"{"data":[{"id":"w"}],"page":2,"pages":2}"#).expect("parses");
        assert!(!page.has_next(2));
        let empty: Page<Webhook> = serde_json::from_str(r#"{"data":[]}"#).expect("parses");
        assert!(!empty.has_next(1));
    }
}
