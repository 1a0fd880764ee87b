//! Typed Print.one webhook events.
//!
//! Print.one POSTs every webhook as a JSON envelope:
//!
//! ```json
//! {
//!   "data": { "id": "ord_…", "status": "order_pdf_delivered", "…": "…" },
//!   "event": "order_status_update",
//!   "created_at": "2024-06-03T13:14:46.501Z"
//! }
//! ```
//!
//! The envelope keys are `snake_case`; the `data` object is the API resource
//! the trigger is about (an order, a batch, a coupon code or a template
//! preview), with `camelCase` keys.
//!
//! # Parsing is lazy and happens after verification
//!
//! Nothing here checks signatures. Parse an [`Event`] (or an [`Envelope`],
//! which also keeps the delivery timestamp) from the exact body bytes only
//! after the signature over those bytes has been verified, and only when the
//! typed view is wanted: a receiver that merely forwards or stores deliveries
//! never needs to parse them.
//!
//! # Lenient by design
//!
//! Print.one adds fields and triggers over time, and a receiver must keep
//! accepting deliveries when it does:
//!
//! * a trigger this crate does not know becomes [`Event::Unknown`], which keeps
//!   the trigger name and the raw `data` value;
//! * the data structs ([`Order`], [`Batch`], [`CouponCode`],
//!   [`TemplatePreview`]) require only `id`; every other field is optional and
//!   absent or `null` values read as `None` (or an empty list);
//! * fields the structs do not name are kept in their `other` map, so nothing
//!   Print.one sends is lost;
//! * order and batch statuses are [`OrderStatus`] and [`BatchStatus`]; a status
//!   the crate does not name is their `Unknown` variant with the string as sent,
//!   never an error;
//! * timestamps are kept as the strings sent (`created_at`, `updated_at`, …),
//!   and a `*_time()` accessor next to each ([`Order::created_at_time`],
//!   [`Envelope::created_at_time`], …) parses the RFC 3339 form Print.one sends
//!   into a [`time::OffsetDateTime`], `None` when it does not parse: a timestamp
//!   in another form never fails the event;
//! * unknown envelope keys are ignored.
//!
//! What is *not* tolerated is a body that is not an object, an envelope without
//! a string `event`, and a known trigger whose `data` is missing, is not an
//! object, lacks a string `id`, or carries a named field of the wrong type:
//! those are deserialization errors, never a silent [`Event::Unknown`].
//!
//! ```
//! # use printone_webhooks::event::{Event, OrderStatus, ORDER_STATUS_UPDATE};
//! let body = br#"{
//!     "data": {"id": "ord_9f3Kx1", "status": "order_pdf_delivered"},
//!     "event": "order_status_update",
//!     "created_at": "2024-06-03T13:14:46.501Z"
//! }"#;
//! let event: Event = serde_json::from_slice(body)?;
//! assert_eq!(event.name(), ORDER_STATUS_UPDATE);
//! assert_eq!(event.data_id(), Some("ord_9f3Kx1"));
//! if let Event::OrderStatusUpdate(order) = &event {
//!     assert_eq!(order.status, Some(OrderStatus::PdfDelivered));
//! }
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::OffsetDateTime;

mod batch;
mod common;
mod coupon_code;
mod order;
mod status;
mod template_preview;

pub use batch::{Batch, BatchOrderCounts};
pub use coupon_code::CouponCode;
pub use order::{Address, Order};
pub use status::{BatchStatus, OrderStatus};
pub use template_preview::TemplatePreview;

/// Trigger name sent when an order changes status; `data` is an [`Order`].
pub const ORDER_STATUS_UPDATE: &str = "order_status_update";

/// Trigger name sent when a template preview has been rendered; `data` is a
/// [`TemplatePreview`].
pub const TEMPLATE_PREVIEW_RENDERED: &str = "template_preview_rendered";

/// Trigger name sent when a batch changes status; `data` is a [`Batch`].
pub const BATCH_STATUS_UPDATE: &str = "batch_status_update";

/// Trigger name sent when a coupon code has been used; `data` is a
/// [`CouponCode`].
pub const COUPON_CODE_USED: &str = "coupon_code_used";

/// A Print.one webhook event, parsed from the whole delivery envelope.
///
/// Deserializing an `Event` reads the envelope's `event` and `data` keys and
/// ignores `created_at`; use [`Envelope`] to keep the timestamp as well.
///
/// New variants may be added when Print.one documents new triggers; until
/// then such deliveries arrive as [`Event::Unknown`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one event per delivery, matched on by value; boxing would only add noise"
)]
pub enum Event {
    /// `order_status_update`: an order changed status.
    OrderStatusUpdate(Order),
    /// `template_preview_rendered`: a template preview finished rendering.
    TemplatePreviewRendered(TemplatePreview),
    /// `batch_status_update`: a batch changed status.
    BatchStatusUpdate(Batch),
    /// `coupon_code_used`: a coupon code was used.
    CouponCodeUsed(CouponCode),
    /// A trigger this crate does not know (yet).
    Unknown {
        /// The trigger name exactly as sent.
        event: String,
        /// The raw `data` value, or [`Value::Null`] when the envelope had none.
        data: Value,
    },
}

impl Event {
    /// The trigger name, e.g. `"order_status_update"`, or the name of an
    /// unknown trigger exactly as sent.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::OrderStatusUpdate(_) => ORDER_STATUS_UPDATE,
            Self::TemplatePreviewRendered(_) => TEMPLATE_PREVIEW_RENDERED,
            Self::BatchStatusUpdate(_) => BATCH_STATUS_UPDATE,
            Self::CouponCodeUsed(_) => COUPON_CODE_USED,
            Self::Unknown { event, .. } => event,
        }
    }

    /// The `id` of the data object: the order, preview, batch or coupon code
    /// id, or for an unknown trigger `data["id"]` when that is a string.
    #[must_use]
    pub fn data_id(&self) -> Option<&str> {
        match self {
            Self::OrderStatusUpdate(order) => Some(&order.id),
            Self::TemplatePreviewRendered(preview) => Some(&preview.id),
            Self::BatchStatusUpdate(batch) => Some(&batch.id),
            Self::CouponCodeUsed(code) => Some(&code.id),
            Self::Unknown { data, .. } => data.get("id").and_then(Value::as_str),
        }
    }

    /// Builds the event for trigger `event` from its raw `data`.
    fn from_parts(event: String, data: Option<Value>) -> Result<Self, String> {
        let Some(typed) = typed_data_of(&event) else {
            let data = data.unwrap_or(Value::Null);
            return Ok(Self::Unknown { event, data });
        };
        let data = data.ok_or_else(|| format!("missing `data` for `{event}` event"))?;
        typed(data).map_err(|err| format!("invalid `data` for `{event}` event: {err}"))
    }
}

/// A parser turning the raw `data` of one known trigger into its [`Event`].
type TypedData = fn(Value) -> Result<Event, serde_json::Error>;

/// The `data` parser of a known trigger, `None` for an unknown one.
fn typed_data_of(event: &str) -> Option<TypedData> {
    let typed: TypedData = match event {
        ORDER_STATUS_UPDATE => |data| serde_json::from_value(data).map(Event::OrderStatusUpdate),
        TEMPLATE_PREVIEW_RENDERED => {
            |data| serde_json::from_value(data).map(Event::TemplatePreviewRendered)
        }
        BATCH_STATUS_UPDATE => |data| serde_json::from_value(data).map(Event::BatchStatusUpdate),
        COUPON_CODE_USED => |data| serde_json::from_value(data).map(Event::CouponCodeUsed),
        _ => return None,
    };
    Some(typed)
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEnvelope::deserialize(deserializer)?;
        Self::from_parts(raw.event, raw.data).map_err(D::Error::custom)
    }
}

/// A whole webhook delivery: the [`Event`] plus the envelope's timestamp.
///
/// Deserialized from the same envelope as [`Event`], in one pass.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawEnvelope")]
pub struct Envelope {
    /// The typed event (trigger name and data).
    pub event: Event,
    /// The envelope's `created_at`: the RFC 3339 timestamp of the delivery,
    /// exactly as sent (not parsed or normalised), `None` when absent or
    /// `null`. A `createdAt` key is read instead when `created_at` is absent;
    /// a value that is not a string makes the envelope fail to deserialize.
    ///
    /// It is part of the signed body, so it is covered by the signature and
    /// can be trusted as much as the event itself once the delivery has been
    /// verified, e.g. to reject stale or replayed deliveries.
    /// [`Envelope::created_at_time`] parses it.
    pub created_at: Option<String>,
}

impl Envelope {
    /// [`created_at`](Self::created_at) parsed: `None` when it is absent, `null` or not an RFC
    /// 3339 timestamp (the string as sent stays in the field).
    ///
    /// ```
    /// # use printone_webhooks::Envelope;
    /// let body = br#"{"data":{"id":"ord_1"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;
    /// let envelope: Envelope = serde_json::from_slice(body)?;
    /// let created = envelope.created_at_time().expect("an RFC 3339 timestamp");
    /// assert_eq!(created.unix_timestamp(), 1_717_420_486);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn created_at_time(&self) -> Option<OffsetDateTime> {
        common::rfc3339(self.created_at.as_deref())
    }
}

impl TryFrom<RawEnvelope> for Envelope {
    type Error = String;

    fn try_from(raw: RawEnvelope) -> Result<Self, Self::Error> {
        let created_at = raw.created_at()?;
        let event = Event::from_parts(raw.event, raw.data)?;
        Ok(Self { event, created_at })
    }
}

/// The envelope keys this module reads; every other key is ignored.
#[derive(Deserialize)]
struct RawFields {
    event: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    created_at: Option<Value>,
    /// The camelCase spelling declared by Print.one's JavaScript client.
    #[serde(default, rename = "createdAt")]
    created_at_camel: Option<Value>,
}

/// The envelope as read in one pass; only a JSON object is accepted.
struct RawEnvelope {
    event: String,
    data: Option<Value>,
    created_at: Option<Value>,
}

impl RawEnvelope {
    /// The timestamp as sent; a non-string, non-null value is an error.
    fn created_at(&self) -> Result<Option<String>, String> {
        match &self.created_at {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(sent)) => Ok(Some(sent.clone())),
            Some(other) => Err(format!("`created_at` must be a string, got {other}")),
        }
    }
}

impl From<RawFields> for RawEnvelope {
    fn from(fields: RawFields) -> Self {
        let created_at = match fields.created_at {
            None | Some(Value::Null) => fields.created_at_camel,
            sent => sent,
        };
        Self {
            event: fields.event,
            data: fields.data,
            created_at,
        }
    }
}

impl<'de> Deserialize<'de> for RawEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

/// Accepts a JSON object only (serde would otherwise also take an array).
struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = RawEnvelope;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a Print.one webhook envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        RawFields::deserialize(MapAccessDeserializer::new(map)).map(RawEnvelope::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::common::fixtures::{envelope, order_data, order_of, parse, parse_err, CREATED_AT};
    use super::*;

    #[test]
    fn trigger_constants_are_print_one_names() {
        assert_eq!(ORDER_STATUS_UPDATE, "order_status_update");
        assert_eq!(TEMPLATE_PREVIEW_RENDERED, "template_preview_rendered");
        assert_eq!(BATCH_STATUS_UPDATE, "batch_status_update");
        assert_eq!(COUPON_CODE_USED, "coupon_code_used");
    }

    #[test]
    fn unknown_trigger_keeps_raw_data() {
        let data = json!({ "id": "cmp_launch", "status": "campaign_started", "count": 3 });
        let event = parse(&envelope("campaign_status_update", &data));

        assert_eq!(
            event,
            Event::Unknown {
                event: "campaign_status_update".to_owned(),
                data,
            }
        );
        assert_eq!(event.name(), "campaign_status_update");
    }

    #[test]
    fn unknown_trigger_keeps_non_object_data() {
        let event = parse(r#"{"event":"credits_low","data":[1,2,3]}"#);

        assert_eq!(
            event,
            Event::Unknown {
                event: "credits_low".to_owned(),
                data: json!([1, 2, 3]),
            }
        );
        assert_eq!(event.data_id(), None);
    }

    #[test]
    fn unknown_trigger_without_data_has_null_data() {
        let event =
            parse(r#"{"event":"account_suspended","created_at":"2024-06-03T13:14:46.501Z"}"#);

        assert_eq!(
            event,
            Event::Unknown {
                event: "account_suspended".to_owned(),
                data: Value::Null,
            }
        );
        assert_eq!(event.data_id(), None);
    }

    #[test]
    fn known_trigger_with_wrong_data_type_is_an_error() {
        for data in [json!("ord_Q8x1mZk3"), json!([order_data()]), json!(42)] {
            let err = parse_err(&envelope(ORDER_STATUS_UPDATE, &data));
            assert!(
                err.contains("invalid `data` for `order_status_update`"),
                "{err}"
            );
        }
    }

    #[test]
    fn known_trigger_with_wrongly_typed_field_is_an_error() {
        let data = json!({ "id": "bat_1", "orders": { "success": "many" } });
        let err = parse_err(&envelope(BATCH_STATUS_UPDATE, &data));

        assert!(
            err.contains("invalid `data` for `batch_status_update`"),
            "{err}"
        );
    }

    #[test]
    fn known_trigger_without_data_is_an_error() {
        let missing =
            parse_err(r#"{"event":"coupon_code_used","created_at":"2024-06-03T13:14:46.501Z"}"#);
        assert!(
            missing.contains("missing `data` for `coupon_code_used`"),
            "{missing}"
        );

        let null = parse_err(r#"{"event":"coupon_code_used","data":null}"#);
        assert!(null.contains("`coupon_code_used`"), "{null}");
    }

    #[test]
    fn known_trigger_data_without_string_id_is_an_error() {
        let no_id = json!({ "templateId": "tmpl_1", "imageUrl": "https://x/p.png" });
        let err = parse_err(&envelope(TEMPLATE_PREVIEW_RENDERED, &no_id));
        assert!(err.contains("missing field `id`"), "{err}");

        let numeric_id = json!({ "id": 17 });
        let err = parse_err(&envelope(TEMPLATE_PREVIEW_RENDERED, &numeric_id));
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn missing_event_is_an_error() {
        let body = json!({ "data": order_data(), "created_at": CREATED_AT }).to_string();
        let err = parse_err(&body);

        assert!(err.contains("missing field `event`"), "{err}");
        assert!(serde_json::from_str::<Envelope>(&body).is_err());
    }

    #[test]
    fn non_string_event_is_an_error() {
        let err = parse_err(r#"{"event":7,"data":{"id":"ord_1"}}"#);
        assert!(err.contains("invalid type"), "{err}");

        let err = parse_err(r#"{"event":null,"data":{"id":"ord_1"}}"#);
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn non_object_body_is_an_error() {
        let bodies = [
            r#"["order_status_update",{"id":"ord_1"},"2024-06-03T13:14:46.501Z"]"#,
            r#""order_status_update""#,
            "42",
            "null",
        ];
        for body in bodies {
            let err = parse_err(body);
            assert!(err.contains("webhook envelope object"), "{body}: {err}");
            assert!(serde_json::from_str::<Envelope>(body).is_err(), "{body}");
        }
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(
            serde_json::from_str::<Event>(r#"{"event":"order_status_update","data":{"#).is_err()
        );
    }

    #[test]
    fn unknown_envelope_keys_are_tolerated() {
        let body = json!({
            "data": order_data(),
            "event": ORDER_STATUS_UPDATE,
            "created_at": CREATED_AT,
            "webhook_id": "whk_1",
            "attempt": 2
        })
        .to_string();

        let order = order_of(parse(&body));
        assert_eq!(order.id, "ord_Q8x1mZk3");
    }

    #[test]
    fn name_is_the_trigger_name() {
        let cases = [
            (ORDER_STATUS_UPDATE, json!({ "id": "ord_1" })),
            (TEMPLATE_PREVIEW_RENDERED, json!({ "id": "prv_1" })),
            (BATCH_STATUS_UPDATE, json!({ "id": "bat_1" })),
            (COUPON_CODE_USED, json!({ "id": "cc_1" })),
            ("mailing_delivered", json!({ "id": "mlg_1" })),
        ];
        for (name, data) in cases {
            assert_eq!(parse(&envelope(name, &data)).name(), name);
        }
    }

    #[test]
    fn data_id_of_known_events_is_the_object_id() {
        let cases = [
            (ORDER_STATUS_UPDATE, "ord_1"),
            (TEMPLATE_PREVIEW_RENDERED, "prv_1"),
            (BATCH_STATUS_UPDATE, "bat_1"),
            (COUPON_CODE_USED, "cc_1"),
        ];
        for (name, id) in cases {
            let event = parse(&envelope(name, &json!({ "id": id })));
            assert_eq!(event.data_id(), Some(id), "{name}");
        }
    }

    #[test]
    fn data_id_of_unknown_event_reads_string_id() {
        let event = parse(&envelope("mailing_delivered", &json!({ "id": "mlg_8Zt" })));
        assert_eq!(event.data_id(), Some("mlg_8Zt"));

        let numeric = parse(&envelope("mailing_delivered", &json!({ "id": 8 })));
        assert_eq!(numeric.data_id(), None);

        let no_id = parse(&envelope(
            "mailing_delivered",
            &json!({ "mailingId": "mlg_8Zt" }),
        ));
        assert_eq!(no_id.data_id(), None);
    }

    #[test]
    fn created_at_is_kept_verbatim() {
        for sent in [
            CREATED_AT,
            "2024-06-03T15:14:46.501+02:00",
            "2024-06-03T13:14:46Z",
        ] {
            let body = json!({ "data": { "id": "ord_1" }, "event": ORDER_STATUS_UPDATE, "created_at": sent })
                .to_string();
            let envelope: Envelope = serde_json::from_str(&body).expect("envelope");

            assert_eq!(envelope.created_at.as_deref(), Some(sent));
            assert_eq!(envelope.event.data_id(), Some("ord_1"));
        }
    }

    #[test]
    fn created_at_time_is_the_instant_sent() {
        for (sent, seconds, millis) in [
            (CREATED_AT, 1_717_420_486, 501),
            ("2024-06-03T15:14:46.501+02:00", 1_717_420_486, 501),
            ("2024-06-03T13:14:46Z", 1_717_420_486, 0),
        ] {
            let body = json!({ "data": { "id": "ord_1" }, "event": ORDER_STATUS_UPDATE, "created_at": sent })
                .to_string();
            let envelope: Envelope = serde_json::from_str(&body).expect("envelope");

            let time = envelope.created_at_time().expect("an RFC 3339 timestamp");
            assert_eq!(
                (time.unix_timestamp(), time.millisecond()),
                (seconds, millis),
                "{sent}"
            );
        }
    }

    #[test]
    fn an_unparseable_created_at_keeps_the_envelope() {
        for sent in [
            "1717420486",
            "2024-06-03",
            "Mon, 03 Jun 2024 13:14:46 GMT",
            "",
        ] {
            let body = json!({ "data": { "id": "ord_1" }, "event": ORDER_STATUS_UPDATE, "created_at": sent })
                .to_string();
            let envelope: Envelope = serde_json::from_str(&body).expect("envelope");

            assert_eq!(envelope.created_at.as_deref(), Some(sent));
            assert_eq!(envelope.created_at_time(), None, "{sent}");
        }
        let none: Envelope =
            serde_json::from_str(r#"{"event":"order_status_update","data":{"id":"ord_1"}}"#)
                .expect("envelope");
        assert_eq!(none.created_at_time(), None);
    }

    #[test]
    fn envelope_and_event_agree() {
        let body = envelope(ORDER_STATUS_UPDATE, &order_data());
        let envelope: Envelope = serde_json::from_str(&body).expect("envelope");

        assert_eq!(envelope.event, parse(&body));
        assert_eq!(envelope.created_at.as_deref(), Some(CREATED_AT));
    }

    #[test]
    fn absent_or_null_created_at_is_none() {
        for body in [
            r#"{"event":"order_status_update","data":{"id":"ord_1"}}"#,
            r#"{"event":"order_status_update","data":{"id":"ord_1"},"created_at":null}"#,
        ] {
            let envelope: Envelope = serde_json::from_str(body).expect("envelope");
            assert_eq!(envelope.created_at, None, "{body}");
        }
    }

    #[test]
    fn camel_case_created_at_is_read_when_snake_case_is_absent() {
        let camel = r#"{"event":"order_status_update","data":{"id":"ord_1"},"createdAt":"2024-06-03T13:14:46.501Z"}"#;
        let envelope: Envelope = serde_json::from_str(camel).expect("envelope");
        assert_eq!(envelope.created_at.as_deref(), Some(CREATED_AT));

        let both = r#"{"createdAt":"2024-01-01T00:00:00Z","event":"x","created_at":"2024-06-03T13:14:46.501Z"}"#;
        let envelope: Envelope = serde_json::from_str(both).expect("envelope");
        assert_eq!(envelope.created_at.as_deref(), Some(CREATED_AT));
    }

    #[test]
    fn non_string_created_at_fails_the_envelope_but_not_the_event() {
        let body =
            r#"{"event":"order_status_update","data":{"id":"ord_1"},"created_at":1717420486}"#;

        let err = serde_json::from_str::<Envelope>(body).expect_err("envelope should be rejected");
        assert!(
            err.to_string().contains("`created_at` must be a string"),
            "{err}"
        );
        assert_eq!(parse(body).data_id(), Some("ord_1"));
    }

    #[test]
    fn parses_from_bytes_of_a_delivery() {
        let body = br#"{"data":{"id":"ord_Q8x1mZk3","status":"order_cancelled","friendlyStatus":"Cancelled"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;
        let envelope: Envelope = serde_json::from_slice(body).expect("envelope");

        assert_eq!(envelope.created_at.as_deref(), Some(CREATED_AT));
        let order = order_of(envelope.event);
        assert_eq!(order.status, Some(OrderStatus::Cancelled));
        assert_eq!(order.friendly_status.as_deref(), Some("Cancelled"));
    }
}
