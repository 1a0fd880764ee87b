//! Helpers shared by the data structs of several triggers.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// Reads an absent or `null` list as empty.
pub(crate) fn null_as_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Value>, D::Error> {
    Ok(Option::<Vec<Value>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Parses a timestamp Print.one sends as an RFC 3339 string, e.g. `2024-06-03T13:14:46.501Z`;
/// `None` when there is none or it is in another form. The typed data keeps the string as sent,
/// so a timestamp that does not parse never fails the event.
pub(crate) fn rfc3339(sent: Option<&str>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(sent?, &Rfc3339).ok()
}

/// Test fixtures shared by the event tests and the tests of each trigger:
/// envelopes, parsers and a full order.
#[cfg(test)]
pub(super) mod fixtures {
    use serde_json::{json, Value};

    use crate::event::{Event, Order};

    pub(crate) const CREATED_AT: &str = "2024-06-03T13:14:46.501Z";

    pub(crate) fn envelope(event: &str, data: &Value) -> String {
        json!({ "data": data, "event": event, "created_at": CREATED_AT }).to_string()
    }

    pub(crate) fn parse(body: &str) -> Event {
        serde_json::from_str(body).expect("envelope should parse")
    }

    pub(crate) fn parse_err(body: &str) -> String {
        serde_json::from_str::<Event>(body)
            .expect_err("envelope should be rejected")
            .to_string()
    }

    pub(crate) fn order_data() -> Value {
        json!({
            "id": "ord_Q8x1mZk3",
            "companyId": "cmp_7Hk2p",
            "templateId": "tmpl_a91Lr",
            "finish": "GLOSSY",
            "format": "POSTCARD_A5",
            "mergeVariables": { "firstName": "Jan", "couponCode": "WELCOME10" },
            "sender": {
                "name": "Print.one BV",
                "address": "Lange Viestraat 2b",
                "postalCode": "3511 BK",
                "city": "Utrecht",
                "country": "NL"
            },
            "recipient": {
                "name": "Jan Jansen",
                "address": "Keizersgracht 123",
                "addressLine2": "3e verdieping",
                "postalCode": "1015 CJ",
                "city": "Amsterdam",
                "country": "NL",
                "company": "Jansen & Co"
            },
            "definitiveCountryId": "NL",
            "deliverySpeed": "STANDARD",
            "billingId": "campaign-2024-06",
            "isBillable": true,
            "status": "order_pdf_delivered",
            "friendlyStatus": "Sent",
            "errors": [],
            "sendDate": "2024-06-03T00:00:00.000Z",
            "createdAt": "2024-06-03T13:10:02.114Z",
            "updatedAt": "2024-06-03T13:14:46.480Z",
            "anonymizedAt": null,
            "csvOrderId": null,
            "metadata": { "crmId": 4411 },
            "trackingCode": "3SABCD1234567"
        })
    }

    pub(crate) fn order_of(event: Event) -> Order {
        match event {
            Event::OrderStatusUpdate(order) => order,
            other => panic!("expected an order status update, got {other:?}"),
        }
    }
}
