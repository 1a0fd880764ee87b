//! The `coupon_code_used` trigger: [`CouponCode`].

use serde::Deserialize;
use serde_json::{Map, Value};

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
    /// When the code was used, as sent.
    #[serde(default)]
    pub used_at: Option<String>,
    /// The id of the order the code was used on.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Every field not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
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
        assert_eq!(code.order_id.as_deref(), Some("ord_Q8x1mZk3"));
        assert!(code.other.is_empty());
    }
}
