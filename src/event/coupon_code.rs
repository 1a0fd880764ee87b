//! The `coupon_code_used` trigger: [`CouponCode`].

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::common::rfc3339;

/// A coupon code: the `data` of a `coupon_code_used` event.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponCode {
    /// The coupon code id.
    pub id: String,
    /// The id of the coupon the code belongs to.
    #[serde(default)]
    pub coupon_id: Option<String>,
    /// The code itself.
    #[serde(default)]
    pub code: Option<String>,
    /// Whether the code has been used.
    #[serde(default)]
    pub used: Option<bool>,
    /// When the code was used, as sent (RFC 3339), parsed by [`CouponCode::used_at_time`].
    #[serde(default)]
    pub used_at: Option<String>,
    /// The id of the order the code was used on.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Every field not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl CouponCode {
    /// [`used_at`](Self::used_at) parsed: `None` when it is absent, `null` or not an RFC 3339
    /// timestamp (the string as sent stays in the field).
    #[must_use]
    pub fn used_at_time(&self) -> Option<OffsetDateTime> {
        rfc3339(self.used_at.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::event::common::fixtures::{envelope, parse};
    use crate::event::{Event, COUPON_CODE_USED};

    #[test]
    fn parses_coupon_code_used() {
        let data = json!({
            "id": "cc_x7P2",
            "couponId": "cpn_Wk4",
            "code": "WELCOME10",
            "used": true,
            "usedAt": "2024-06-03T13:14:40.000Z",
            "orderId": "ord_Q8x1mZk3"
        });
        let event = parse(&envelope(COUPON_CODE_USED, &data));

        assert_eq!(event.name(), COUPON_CODE_USED);
        assert_eq!(event.data_id(), Some("cc_x7P2"));
        let Event::CouponCodeUsed(code) = event else {
            panic!("expected a coupon code");
        };
        assert_eq!(code.coupon_id.as_deref(), Some("cpn_Wk4"));
        assert_eq!(code.code.as_deref(), Some("WELCOME10"));
        assert_eq!(code.used, Some(true));
        assert_eq!(code.used_at.as_deref(), Some("2024-06-03T13:14:40.000Z"));
        let used = code.used_at_time().expect("usedAt parses");
        assert_eq!(used.unix_timestamp(), 1_717_420_480);
        assert_eq!(code.order_id.as_deref(), Some("ord_Q8x1mZk3"));
        assert!(code.other.is_empty());
    }

    #[test]
    fn an_unparseable_used_at_is_kept_and_parses_as_none() {
        let data = json!({ "id": "cc_x7P2", "usedAt": "03/06/2024 13:14" });
        let Event::CouponCodeUsed(code) = parse(&envelope(COUPON_CODE_USED, &data)) else {
            panic!("expected a coupon code");
        };

        assert_eq!(code.used_at.as_deref(), Some("03/06/2024 13:14"));
        assert_eq!(code.used_at_time(), None);
    }
}
