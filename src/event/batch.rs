//! The `batch_status_update` trigger: [`Batch`] and its [`BatchOrderCounts`].

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::common::rfc3339;
use super::order::Address;
use super::status::BatchStatus;

/// A Print.one batch: the `data` of a `batch_status_update` event.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// The batch id.
    pub id: String,
    /// The id of the company the batch belongs to.
    #[serde(default)]
    pub company_id: Option<String>,
    /// The batch name.
    #[serde(default)]
    pub name: Option<String>,
    /// The reference the customer assigned for billing.
    #[serde(default)]
    pub billing_id: Option<String>,
    /// The finish, e.g. `"GLOSSY"` or `"MATT"`.
    #[serde(default)]
    pub finish: Option<String>,
    /// The product format, e.g. `"POSTCARD_A5"`.
    #[serde(default)]
    pub format: Option<String>,
    /// Whether the batch is billed (created with a live API key).
    #[serde(default)]
    pub is_billable: Option<bool>,
    /// The id of the template the batch is printed from.
    #[serde(default)]
    pub template_id: Option<String>,
    /// The estimated price of the batch.
    #[serde(default)]
    pub estimated_price: Option<f64>,
    /// The estimated tax on the batch.
    #[serde(default)]
    pub estimated_tax: Option<f64>,
    /// The sender address.
    #[serde(default)]
    pub sender: Option<Address>,
    /// The date the batch is (to be) sent on, as sent: an RFC 3339 timestamp such as
    /// `"2024-06-05T08:00:00.000Z"`, parsed by [`Batch::send_date_time`].
    #[serde(default)]
    pub send_date: Option<String>,
    /// The status, e.g. [`BatchStatus::Scheduled`] for `"batch_scheduled"`; a status the
    /// crate does not name is [`BatchStatus::Unknown`], never an error.
    #[serde(default)]
    pub status: Option<BatchStatus>,
    /// How many of the batch's orders are in each state.
    #[serde(default)]
    pub orders: Option<BatchOrderCounts>,
    /// When the batch was created, as sent (RFC 3339), parsed by [`Batch::created_at_time`].
    #[serde(default)]
    pub created_at: Option<String>,
    /// When the batch was last updated, as sent (RFC 3339), parsed by
    /// [`Batch::updated_at_time`].
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Every field not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The timestamps as times. Each is `None` when the field is absent, `null` or not an RFC 3339
/// timestamp; the string as sent stays in the field.
impl Batch {
    /// [`send_date`](Self::send_date) parsed.
    #[must_use]
    pub fn send_date_time(&self) -> Option<OffsetDateTime> {
        rfc3339(self.send_date.as_deref())
    }

    /// [`created_at`](Self::created_at) parsed.
    #[must_use]
    pub fn created_at_time(&self) -> Option<OffsetDateTime> {
        rfc3339(self.created_at.as_deref())
    }

    /// [`updated_at`](Self::updated_at) parsed.
    #[must_use]
    pub fn updated_at_time(&self) -> Option<OffsetDateTime> {
        rfc3339(self.updated_at.as_deref())
    }
}

/// The number of a batch's orders in each state.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOrderCounts {
    /// Orders still being processed.
    #[serde(default)]
    pub processing: Option<u64>,
    /// Orders processed successfully.
    #[serde(default)]
    pub success: Option<u64>,
    /// Orders that failed.
    #[serde(default)]
    pub failed: Option<u64>,
    /// Orders that were cancelled.
    #[serde(default)]
    pub cancelled: Option<u64>,
    /// Every field not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::event::common::fixtures::{envelope, parse};
    use crate::event::{BatchStatus, Event, BATCH_STATUS_UPDATE};

    #[test]
    fn parses_batch_status_update_with_order_counts() {
        let data = json!({
            "id": "bat_3Fq9",
            "companyId": "cmp_7Hk2p",
            "name": "Summer campaign",
            "billingId": "summer-2024",
            "finish": "MATT",
            "format": "POSTCARD_SQ15",
            "isBillable": false,
            "templateId": "tmpl_a91Lr",
            "estimatedPrice": 125.5,
            "estimatedTax": 26.36,
            "sendDate": null,
            "status": "batch_scheduled",
            "orders": { "processing": 2, "success": 240, "failed": 1, "cancelled": 0, "queued": 7 },
            "createdAt": "2024-06-01T08:00:00.000Z",
            "updatedAt": "2024-06-03T13:14:46.000Z",
            "ready": "2024-06-02T09:00:00.000Z"
        });
        let Event::BatchStatusUpdate(batch) = parse(&envelope(BATCH_STATUS_UPDATE, &data)) else {
            panic!("expected a batch");
        };

        assert_eq!(batch.id, "bat_3Fq9");
        assert_eq!(batch.name.as_deref(), Some("Summer campaign"));
        assert_eq!(batch.status, Some(BatchStatus::Scheduled));
        assert_eq!(batch.is_billable, Some(false));
        assert_eq!(batch.send_date, None);
        assert!(batch
            .estimated_price
            .is_some_and(|p| (p - 125.5).abs() < 1e-9));
        assert!(batch
            .estimated_tax
            .is_some_and(|t| (t - 26.36).abs() < 1e-9));
        let orders = batch.orders.as_ref().expect("order counts");
        assert_eq!(orders.processing, Some(2));
        assert_eq!(orders.success, Some(240));
        assert_eq!(orders.failed, Some(1));
        assert_eq!(orders.cancelled, Some(0));
        assert_eq!(orders.other["queued"], 7);
        assert_eq!(batch.other["ready"], "2024-06-02T09:00:00.000Z");
        assert_eq!(batch.send_date_time(), None);
        let created = batch.created_at_time().expect("createdAt parses");
        assert_eq!(
            (created.unix_timestamp(), created.millisecond()),
            (1_717_228_800, 0)
        );
        let updated = batch.updated_at_time().expect("updatedAt parses");
        assert_eq!(updated.unix_timestamp(), 1_717_420_486);
    }

    #[test]
    fn unknown_status_and_unparseable_timestamps_do_not_fail_the_batch() {
        let data = json!({
            "id": "bat_4Gr",
            "status": "batch_paused",
            "sendDate": "next Monday",
            "createdAt": "2024-06-01"
        });
        let Event::BatchStatusUpdate(batch) = parse(&envelope(BATCH_STATUS_UPDATE, &data)) else {
            panic!("expected a batch");
        };

        assert_eq!(
            batch.status,
            Some(BatchStatus::Unknown("batch_paused".to_owned()))
        );
        assert_eq!(
            batch.status.as_ref().map(BatchStatus::as_str),
            Some("batch_paused")
        );
        assert_eq!(batch.send_date.as_deref(), Some("next Monday"));
        assert_eq!(batch.send_date_time(), None);
        assert_eq!(batch.created_at.as_deref(), Some("2024-06-01"));
        assert_eq!(batch.created_at_time(), None);
        assert_eq!(batch.updated_at_time(), None);
    }
}
