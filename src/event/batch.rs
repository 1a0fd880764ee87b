//! The `batch_status_update` trigger: [`Batch`] and its [`BatchOrderCounts`].

use serde::Deserialize;
use serde_json::{Map, Value};

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
    /// The date the batch is (to be) sent on, as sent.
    #[serde(default)]
    pub send_date: Option<String>,
    /// The status, e.g. [`BatchStatus::Scheduled`] for `"batch_scheduled"`; a status the
    /// crate does not name is [`BatchStatus::Unknown`], never an error.
    #[serde(default)]
    pub status: Option<BatchStatus>,
    /// How many of the batch's orders are in each state.
    #[serde(default)]
    pub orders: Option<BatchOrderCounts>,
    /// When the batch was created, as sent.
    #[serde(default)]
    pub created_at: Option<String>,
    /// When the batch was last updated, as sent.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Every field not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
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
        let orders = batch.orders.expect("order counts");
        assert_eq!(orders.processing, Some(2));
        assert_eq!(orders.success, Some(240));
        assert_eq!(orders.failed, Some(1));
        assert_eq!(orders.cancelled, Some(0));
        assert_eq!(orders.other["queued"], 7);
        assert_eq!(batch.other["ready"], "2024-06-02T09:00:00.000Z");
    }

    #[test]
    fn a_status_the_crate_does_not_name_is_kept_as_sent() {
        let data = json!({ "id": "bat_4Gr", "status": "batch_paused" });
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
    }
}
