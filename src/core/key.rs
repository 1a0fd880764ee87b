//! The logical key of a delivery: which event it reports, independent of its exact bytes.

use std::fmt;

use sha2::{Digest as _, Sha256};
use time::{format_description::well_known::Rfc3339, OffsetDateTime, UtcOffset};

/// What identifies a Print.one event whatever bytes carried it: the trigger, the `data.id` and
/// the envelope's creation time.
///
/// A delivery's id is the MAC of its exact body, so only a byte-for-byte re-delivery has the
/// same id. Print.one's webhook log keeps the envelope as parsed JSON, not the signed bytes, so
/// a delivery recovered from the log is matched by this key instead: a stored delivery whose key
/// equals a log entry's is the same event. The creation time is read from `created_at` or, when
/// that is absent, `createdAt`, and compared as an instant (`2024-06-03T15:14:46.501+02:00`
/// equals `2024-06-03T13:14:46.501Z`); a value that is not RFC 3339 is compared as written.
///
/// ```
/// use printone_webhooks::LogicalKey;
///
/// let signed = br#"{"data":{"id":"ord_1"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;
/// let logged = br#"{"event":"order_status_update","createdAt":"2024-06-03T15:14:46.501+02:00","data":{"id":"ord_1","x":1}}"#;
/// assert_eq!(LogicalKey::of_body(signed), LogicalKey::of_body(logged));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LogicalKey {
    event: String,
    data_id: String,
    created_at: String,
}

impl LogicalKey {
    /// The key of an envelope with these parts; the creation time is normalised as described
    /// on [`LogicalKey`].
    #[must_use]
    pub fn new(event: &str, data_id: &str, created_at: &str) -> Self {
        Self {
            event: event.to_owned(),
            data_id: data_id.to_owned(),
            created_at: normalise(created_at),
        }
    }

    /// The key of a JSON envelope, when it has an `event`, a `data.id` (a string or a number)
    /// and a creation time; `None` otherwise (such a delivery cannot be matched with the log).
    #[must_use]
    pub fn of_body(body: &[u8]) -> Option<Self> {
        Summary::of(body).key()
    }

    /// The trigger.
    #[must_use]
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The `data.id` the envelope carries.
    #[must_use]
    pub fn data_id(&self) -> &str {
        &self.data_id
    }

    /// The creation time, normalised (UTC, RFC 3339) when it parsed.
    #[must_use]
    pub fn created_at(&self) -> &str {
        &self.created_at
    }

    /// A SHA-256 digest of the three parts, as stores index the key (and as the id of a
    /// delivery recovered from the log).
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(b"printone-webhooks logical key v1\0");
        for part in [&self.event, &self.data_id, &self.created_at] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hash.finalize().into()
    }
}

impl fmt::Debug for LogicalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogicalKey")
            .field("event", &self.event)
            .field("data_id", &self.data_id)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// An RFC 3339 time as the same instant in UTC, in nanoseconds; anything else as written
/// (trimmed).
fn normalise(created_at: &str) -> String {
    let text = created_at.trim();
    OffsetDateTime::parse(text, &Rfc3339).map_or_else(|_| text.to_owned(), utc)
}

/// `time` in UTC as RFC 3339 with nanoseconds: `2024-06-03T13:14:46.501000000Z`.
pub(crate) fn utc(time: OffsetDateTime) -> String {
    let time = time.to_offset(UtcOffset::UTC);
    let (date, clock) = (time.date(), time.time());
    // Written digit by digit: this runs for every delivery stored, and `format!` with widths
    // cost more than the rest of the key.
    let mut text = String::with_capacity(30);
    // RFC 3339 years are 0000 to 9999, as are the clock's.
    push_digits(&mut text, u32::try_from(date.year()).unwrap_or(0), 4);
    text.push('-');
    push_digits(&mut text, u32::from(u8::from(date.month())), 2);
    text.push('-');
    push_digits(&mut text, u32::from(date.day()), 2);
    text.push('T');
    push_digits(&mut text, u32::from(clock.hour()), 2);
    text.push(':');
    push_digits(&mut text, u32::from(clock.minute()), 2);
    text.push(':');
    push_digits(&mut text, u32::from(clock.second()), 2);
    text.push('.');
    push_digits(&mut text, clock.nanosecond(), 9);
    text.push('Z');
    text
}

/// Appends `value` in decimal, zero-padded to at least `width` digits.
fn push_digits(text: &mut String, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut rest = value;
    let mut start = digits.len();
    while rest > 0 || start == digits.len() {
        start -= 1;
        // `rest % 10` is below 10, so the cast keeps it.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (rest % 10) as u8;
        digits[start] = b'0' + digit;
        rest /= 10;
    }
    let start = start.min(digits.len().saturating_sub(width));
    for &digit in &digits[start..] {
        text.push(char::from(digit));
    }
}

/// What the crate reads from a body without parsing the typed event: the trigger, `data.id`
/// and the creation time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) event: Option<String>,
    pub(crate) data_id: Option<String>,
    pub(crate) created_at: Option<String>,
}

impl Summary {
    /// The summary of a JSON body; empty when it is not a JSON object.
    pub(crate) fn of(body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Head {
            event: Option<String>,
            data: Option<Data>,
            created_at: Option<serde_json::Value>,
            #[serde(rename = "createdAt")]
            created_at_camel: Option<serde_json::Value>,
        }
        #[derive(serde::Deserialize)]
        struct Data {
            id: Option<serde_json::Value>,
        }
        let Ok(head) = serde_json::from_slice::<Head>(body) else {
            return Self::default();
        };
        let data_id = head.data.and_then(|data| match data.id? {
            serde_json::Value::String(id) => Some(id),
            serde_json::Value::Number(id) => Some(id.to_string()),
            _ => None,
        });
        let text = |value: Option<serde_json::Value>| match value {
            Some(serde_json::Value::String(text)) => Some(text),
            _ => None,
        };
        Self {
            event: head.event,
            data_id,
            created_at: text(head.created_at).or_else(|| text(head.created_at_camel)),
        }
    }

    /// The logical key, when every part is there.
    pub(crate) fn key(&self) -> Option<LogicalKey> {
        Some(LogicalKey::new(
            self.event.as_deref()?,
            self.data_id.as_deref()?,
            self.created_at.as_deref()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_is_written_in_utc_with_every_digit() {
        let cases = [
            (
                "2024-06-03T15:14:46.501+02:00",
                "2024-06-03T13:14:46.501000000Z",
            ),
            ("0999-01-02T03:04:05Z", "0999-01-02T03:04:05.000000000Z"),
            (
                "2024-12-31T23:59:59.999999999Z",
                "2024-12-31T23:59:59.999999999Z",
            ),
            (
                "2025-01-01T00:30:00.000000007+01:00",
                "2024-12-31T23:30:00.000000007Z",
            ),
        ];
        for (text, expected) in cases {
            let time = OffsetDateTime::parse(text, &Rfc3339).unwrap();
            assert_eq!(utc(time), expected, "{text}");
        }
    }

    #[test]
    fn the_same_instant_in_another_offset_is_the_same_key() {
        let utc = LogicalKey::new("order_status_update", "ord_1", "2024-06-03T13:14:46.501Z");
        let local = LogicalKey::new(
            "order_status_update",
            "ord_1",
            "2024-06-03T15:14:46.501+02:00",
        );
        assert_eq!(utc, local);
        assert_eq!(utc.digest(), local.digest());
        assert_eq!(utc.created_at(), "2024-06-03T13:14:46.501000000Z");
    }

    #[test]
    fn another_event_data_id_or_time_is_another_key() {
        let key = LogicalKey::new("order_status_update", "ord_1", "2024-06-03T13:14:46.501Z");
        for other in [
            LogicalKey::new("batch_status_update", "ord_1", "2024-06-03T13:14:46.501Z"),
            LogicalKey::new("order_status_update", "ord_2", "2024-06-03T13:14:46.501Z"),
            LogicalKey::new("order_status_update", "ord_1", "2024-06-03T13:14:46.502Z"),
        ] {
            assert_ne!(key.digest(), other.digest());
        }
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        let a = LogicalKey::new("ab", "c", "t");
        let b = LogicalKey::new("a", "bc", "t");
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn a_time_that_is_not_rfc_3339_is_kept_as_written() {
        assert_eq!(
            LogicalKey::new("e", "d", " yesterday ").created_at(),
            "yesterday"
        );
    }

    #[test]
    fn a_body_reads_created_at_before_created_at_camel() {
        let body = br#"{"event":"e","data":{"id":7},"created_at":"2024-01-01T00:00:00Z","createdAt":"1999-01-01T00:00:00Z"}"#;
        let key = LogicalKey::of_body(body).expect("a key");
        assert_eq!(key.data_id(), "7");
        assert!(key.created_at().starts_with("2024-01-01"));
    }

    #[test]
    fn a_body_without_a_part_has_no_key() {
        assert_eq!(
            LogicalKey::of_body(br#"{"event":"e","data":{"id":"x"}}"#),
            None
        );
        assert_eq!(
            LogicalKey::of_body(br#"{"event":"e","created_at":"t"}"#),
            None
        );
        assert_eq!(LogicalKey::of_body(b"not json"), None);
    }
}
