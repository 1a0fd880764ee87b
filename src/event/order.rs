//! The `order_status_update` trigger: [`Order`] and its [`Address`]es.

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::common::{null_as_empty, rfc3339};
use super::status::OrderStatus;

/// A postal address as Print.one sends it (an order's or batch's sender or
/// recipient).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(
    clippy::struct_field_names,
    reason = "the field names follow Print.one's JSON keys"
)]
pub struct Address {
    /// Name of the person or company.
    #[serde(default)]
    pub name: Option<String>,
    /// Street and house number (first address line).
    #[serde(default)]
    pub address: Option<String>,
    /// Second address line.
    #[serde(default)]
    pub address_line2: Option<String>,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// City.
    #[serde(default)]
    pub city: Option<String>,
    /// Country, as sent (e.g. `"NL"`).
    #[serde(default)]
    pub country: Option<String>,
    /// Every field not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A Print.one order: the `data` of an `order_status_update` event.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The order id.
    pub id: String,
    /// The id of the company the order belongs to.
    #[serde(default)]
    pub company_id: Option<String>,
    /// The id of the template the order is printed from.
    #[serde(default)]
    pub template_id: Option<String>,
    /// The finish, e.g. `"GLOSSY"` or `"MATT"`.
    #[serde(default)]
    pub finish: Option<String>,
    /// The product format, e.g. `"POSTCARD_A5"`.
    #[serde(default)]
    pub format: Option<String>,
    /// The merge variables, keyed by variable name.
    #[serde(default)]
    pub merge_variables: Option<Map<String, Value>>,
    /// The sender address.
    #[serde(default)]
    pub sender: Option<Address>,
    /// The recipient address.
    #[serde(default)]
    pub recipient: Option<Address>,
    /// The id of the country the order is finally sent to.
    #[serde(default)]
    pub definitive_country_id: Option<String>,
    /// The delivery speed.
    #[serde(default)]
    pub delivery_speed: Option<String>,
    /// The reference the customer assigned for billing.
    #[serde(default)]
    pub billing_id: Option<String>,
    /// Whether the order is billed (created with a live API key).
    #[serde(default)]
    pub is_billable: Option<bool>,
    /// The status, e.g. [`OrderStatus::PdfDelivered`] for `"order_pdf_delivered"`; a status
    /// the crate does not name is [`OrderStatus::Unknown`], never an error.
    #[serde(default)]
    pub status: Option<OrderStatus>,
    /// The human-readable status, e.g. `"Processing"`, `"Sent"` or `"Failed"`.
    #[serde(default)]
    pub friendly_status: Option<String>,
    /// The errors reported for the order (empty when none); items are kept
    /// as sent.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub errors: Vec<Value>,
    /// The date the order is (to be) sent on, as sent: an RFC 3339 timestamp such as
    /// `"2024-06-03T13:00:00.000Z"`, parsed by [`Order::send_date_time`].
    #[serde(default)]
    pub send_date: Option<String>,
    /// When the order was created, as sent (RFC 3339), parsed by [`Order::created_at_time`].
    #[serde(default)]
    pub created_at: Option<String>,
    /// When the order was last updated, as sent (RFC 3339), parsed by
    /// [`Order::updated_at_time`].
    #[serde(default)]
    pub updated_at: Option<String>,
    /// When the order's personal data was anonymized, as sent (RFC 3339), parsed by
    /// [`Order::anonymized_at_time`].
    #[serde(default)]
    pub anonymized_at: Option<String>,
    /// The id of the CSV order this order was created from.
    #[serde(default)]
    pub csv_order_id: Option<String>,
    /// The id of the batch this order belongs to.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// Every field not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The timestamps as times. Each is `None` when the field is absent, `null` or not an RFC 3339
/// timestamp; the string as sent stays in the field.
impl Order {
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

    /// [`anonymized_at`](Self::anonymized_at) parsed.
    #[must_use]
    pub fn anonymized_at_time(&self) -> Option<OffsetDateTime> {
        rfc3339(self.anonymized_at.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::event::common::fixtures::{envelope, order_data, order_of, parse};
    use crate::event::{OrderStatus, ORDER_STATUS_UPDATE};

    /// Seconds since the epoch and milliseconds of a parsed time.
    fn instant(time: Option<time::OffsetDateTime>) -> Option<(i64, u16)> {
        time.map(|time| (time.unix_timestamp(), time.millisecond()))
    }

    #[test]
    fn parses_order_status_update_with_unknown_fields_kept() {
        let order = order_of(parse(&envelope(ORDER_STATUS_UPDATE, &order_data())));

        assert_eq!(order.id, "ord_Q8x1mZk3");
        assert_eq!(order.company_id.as_deref(), Some("cmp_7Hk2p"));
        assert_eq!(order.template_id.as_deref(), Some("tmpl_a91Lr"));
        assert_eq!(order.status, Some(OrderStatus::PdfDelivered));
        assert_eq!(order.friendly_status.as_deref(), Some("Sent"));
        assert_eq!(order.is_billable, Some(true));
        assert_eq!(order.anonymized_at, None);
        assert_eq!(order.csv_order_id, None);
        assert!(order.errors.is_empty());
        let merge = order.merge_variables.as_ref().expect("merge variables");
        assert_eq!(merge["couponCode"], "WELCOME10");
        assert_eq!(order.other.len(), 2);
        assert_eq!(order.other["metadata"], json!({ "crmId": 4411 }));
        assert_eq!(order.other["trackingCode"], "3SABCD1234567");
    }

    #[test]
    fn order_addresses_are_typed_and_keep_unknown_fields() {
        let order = order_of(parse(&envelope(ORDER_STATUS_UPDATE, &order_data())));

        let recipient = order.recipient.expect("recipient");
        assert_eq!(recipient.name.as_deref(), Some("Jan Jansen"));
        assert_eq!(recipient.address_line2.as_deref(), Some("3e verdieping"));
        assert_eq!(recipient.postal_code.as_deref(), Some("1015 CJ"));
        assert_eq!(recipient.other["company"], "Jansen & Co");
        let sender = order.sender.expect("sender");
        assert_eq!(sender.address_line2, None);
        assert_eq!(sender.city.as_deref(), Some("Utrecht"));
        assert!(sender.other.is_empty());
    }

    #[test]
    fn order_with_only_an_id_and_nulls_parses() {
        let data = json!({ "id": "ord_min", "sender": null, "errors": null, "status": null });
        let order = order_of(parse(&envelope(ORDER_STATUS_UPDATE, &data)));

        assert_eq!(order.id, "ord_min");
        assert_eq!(order.sender, None);
        assert_eq!(order.status, None);
        assert!(order.errors.is_empty());
        assert!(order.other.is_empty());
    }

    #[test]
    fn failed_order_keeps_its_errors() {
        let mut data = order_data();
        data["status"] = json!("order_failed");
        data["errors"] = json!(["Recipient address could not be validated"]);
        let order = order_of(parse(&envelope(ORDER_STATUS_UPDATE, &data)));

        assert_eq!(order.status, Some(OrderStatus::Failed));
        assert_eq!(
            order.errors,
            vec![json!("Recipient address could not be validated")]
        );
    }

    #[test]
    fn a_status_the_crate_does_not_name_is_kept_as_sent() {
        let mut data = order_data();
        data["status"] = json!("order_printed");
        let order = order_of(parse(&envelope(ORDER_STATUS_UPDATE, &data)));

        let status = order.status.expect("a status");
        assert_eq!(status, OrderStatus::Unknown("order_printed".to_owned()));
        assert_eq!(status.as_str(), "order_printed");
        assert_eq!(order.friendly_status.as_deref(), Some("Sent"));
    }

    #[test]
    fn timestamps_are_parsed_and_kept_as_sent() {
        let order = order_of(parse(&envelope(ORDER_STATUS_UPDATE, &order_data())));

        assert_eq!(
            order.created_at.as_deref(),
            Some("2024-06-03T13:10:02.114Z")
        );
        assert_eq!(instant(order.created_at_time()), Some((1_717_420_202, 114)));
        assert_eq!(instant(order.updated_at_time()), Some((1_717_420_486, 480)));
        assert_eq!(instant(order.send_date_time()), Some((1_717_372_800, 0)));
        assert_eq!(order.anonymized_at_time(), None);
    }

    #[test]
    fn a_timestamp_with_an_offset_is_the_same_instant() {
        let mut data = order_data();
        data["createdAt"] = json!("2024-06-03T15:10:02.114+02:00");
        let order = order_of(parse(&envelope(ORDER_STATUS_UPDATE, &data)));

        assert_eq!(instant(order.created_at_time()), Some((1_717_420_202, 114)));
        assert_eq!(
            order.created_at.as_deref(),
            Some("2024-06-03T15:10:02.114+02:00")
        );
    }

    #[test]
    fn an_unparseable_timestamp_does_not_fail_the_event() {
        let mut data = order_data();
        data["createdAt"] = json!("yesterday");
        data["updatedAt"] = json!("2024-06-03");
        data["sendDate"] = json!("");
        data["anonymizedAt"] = json!("2024-06-03 13:14:46");
        let order = order_of(parse(&envelope(ORDER_STATUS_UPDATE, &data)));

        assert_eq!(order.created_at.as_deref(), Some("yesterday"));
        assert_eq!(order.created_at_time(), None);
        assert_eq!(order.updated_at.as_deref(), Some("2024-06-03"));
        assert_eq!(order.updated_at_time(), None);
        assert_eq!(order.send_date_time(), None);
        assert_eq!(order.anonymized_at_time(), None);
        assert_eq!(order.status, Some(OrderStatus::PdfDelivered));
    }
}
