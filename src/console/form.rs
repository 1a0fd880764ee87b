//! What the console reads from query strings and forms: a list's filter and page cursor, times,
//! the age of a purge. Every parse failure is a sentence for a 400 page.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::store::{DeliveryId, DeliveryState, Filter};

/// The longest event name a filter takes.
const MAX_EVENT_LEN: usize = 200;

/// The name-value pairs of a query string or an `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(encoded: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(encoded)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, `None` when it is missing or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }
}

/// What a list shows: the operator's filter and the page's cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListQuery {
    pub(crate) state: Option<DeliveryState>,
    pub(crate) event: Option<String>,
    pub(crate) since: Option<SystemTime>,
    pub(crate) before: Option<SystemTime>,
    /// The last delivery of the page before: its time and id.
    pub(crate) cursor: Option<(SystemTime, DeliveryId)>,
}

impl ListQuery {
    /// The filter and cursor of `params` (`state`, `event`, `since`, `before`, `after`).
    pub(crate) fn parse(params: &Params) -> Result<Self, String> {
        let state = params
            .get("state")
            .filter(|state| *state != "any")
            .map(|name| {
                DeliveryState::from_name(name).ok_or_else(|| {
                    format!("{name:?} is not a state: pending, leased, done or dead")
                })
            })
            .transpose()?;
        let event = params.get("event").map(str::to_owned);
        if event.as_ref().is_some_and(|e| e.len() > MAX_EVENT_LEN) {
            return Err(format!("an event name is at most {MAX_EVENT_LEN} bytes"));
        }
        Ok(Self {
            state,
            event,
            since: params.get("since").map(parse_time).transpose()?,
            before: params.get("before").map(parse_time).transpose()?,
            cursor: params.get("after").map(parse_cursor).transpose()?,
        })
    }

    /// The store filter of this page, at most `limit` deliveries.
    pub(crate) fn filter(&self, limit: usize) -> Filter {
        let (before, before_id) = match self.cursor {
            Some((at, id)) => (Some(at), Some(id)),
            None => (self.before, None),
        };
        Filter {
            state: self.state,
            event: self.event.clone(),
            since: self.since,
            before,
            before_id,
            limit,
        }
    }

    /// The pairs of this query as links write them, without the cursor.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(state) = self.state {
            pairs.push(("state", state.as_str().to_owned()));
        }
        if let Some(event) = &self.event {
            pairs.push(("event", event.clone()));
        }
        if let Some(since) = self.since {
            pairs.push(("since", input_time(since)));
        }
        if let Some(before) = self.before {
            pairs.push(("before", input_time(before)));
        }
        pairs
    }
}

/// `pairs` as a query string (without the `?`), each part percent-encoded.
pub(crate) fn encode(pairs: &[(&str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    query.finish()
}

/// A page cursor as links write it: `NANOS-IDHEX`, the last delivery's time (nanoseconds since
/// the Unix epoch, exact in every store) and id.
pub(crate) fn cursor(at: SystemTime, id: &DeliveryId) -> String {
    let nanos = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{nanos}-{id}")
}

fn parse_cursor(text: &str) -> Result<(SystemTime, DeliveryId), String> {
    let bad = || "the page cursor is not valid: go back to the first page".to_owned();
    let (nanos, id) = text.split_once('-').ok_or_else(bad)?;
    let nanos: u128 = nanos.parse().map_err(|_| bad())?;
    let seconds = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad())?;
    let subsec = u32::try_from(nanos % 1_000_000_000).map_err(|_| bad())?;
    let at = UNIX_EPOCH
        .checked_add(Duration::new(seconds, subsec))
        .ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// A time from a form: RFC 3339, or a `datetime-local` value (`2024-06-03T13:14`, seconds
/// optional, `T` or a space), read as UTC.
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    let bad =
        || format!("{text:?} is not a time: write it as 2024-06-03T13:14 (UTC) or in RFC 3339");
    let mut normal = text.replacen(' ', "T", 1);
    let (_, clock) = normal.split_once('T').ok_or_else(bad)?;
    let has_offset = clock.ends_with(['Z', 'z']) || clock.contains(['+', '-']);
    if !has_offset {
        if clock.matches(':').count() == 1 {
            normal.push_str(":00");
        }
        normal.push('Z');
    }
    OffsetDateTime::parse(&normal, &Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| bad())
}

/// A time as a `datetime-local` input holds it, in UTC: `2024-06-03T13:14:46`.
pub(crate) fn input_time(time: SystemTime) -> String {
    let at = OffsetDateTime::from(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// An age such as `90s`, `30m`, `12h` or `7d`.
pub(crate) fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not an age: a number and s, m, h or d (90s, 30m, 12h, 7d)");
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at_checked(split).ok_or_else(bad)?;
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        _ => return Err(bad()),
    };
    number
        .checked_mul(unit)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_query_reads_its_filter_and_cursor() {
        let id = DeliveryId::from_bytes([7; 32]);
        let at = UNIX_EPOCH + Duration::new(1_717_420_486, 501_000_123);
        let query = format!(
            "state=dead&event=order_status_update&since=2024-06-03T13%3A14&after={}",
            cursor(at, &id)
        );
        let parsed = ListQuery::parse(&Params::parse(query.as_bytes())).unwrap();
        assert_eq!(parsed.state, Some(DeliveryState::Dead));
        assert_eq!(parsed.event.as_deref(), Some("order_status_update"));
        assert_eq!(parsed.cursor, Some((at, id)), "to the nanosecond");
        let filter = parsed.filter(50);
        assert_eq!((filter.before, filter.before_id), (Some(at), Some(id)));
        assert_eq!(input_time(filter.since.unwrap()), "2024-06-03T13:14:00");
    }

    #[test]
    fn an_empty_or_any_field_is_no_condition() {
        let parsed = ListQuery::parse(&Params::parse(b"state=any&event=&since=")).unwrap();
        assert_eq!(parsed, ListQuery::default());
    }

    #[test]
    fn a_bad_field_is_a_sentence_not_a_panic() {
        for query in [
            "state=gone",
            "since=yesterday",
            "before=2024-13-01T00:00",
            "after=12-zz",
            "after=99999999999999999999999999999-00",
            "after=nodash",
        ] {
            let refused = ListQuery::parse(&Params::parse(query.as_bytes()));
            assert!(refused.is_err(), "{query}");
        }
        let long = format!("event={}", "e".repeat(MAX_EVENT_LEN + 1));
        assert!(ListQuery::parse(&Params::parse(long.as_bytes())).is_err());
    }

    #[test]
    fn times_are_read_as_utc_unless_they_say_otherwise() {
        let utc = parse_time("2024-06-03T13:14:46Z").unwrap();
        assert_eq!(parse_time("2024-06-03T13:14:46").unwrap(), utc);
        assert_eq!(parse_time("2024-06-03 13:14:46").unwrap(), utc);
        assert_eq!(parse_time("2024-06-03T15:14:46+02:00").unwrap(), utc);
        assert_eq!(input_time(utc), "2024-06-03T13:14:46");
    }

    #[test]
    fn ages_take_a_unit() {
        assert_eq!(parse_age("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86_400));
        for bad in ["", "d", "7", "7w", "-1d", "99999999999999999999d", "1é"] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn links_encode_what_they_carry() {
        let query = ListQuery {
            event: Some("a&b=<c>".into()),
            ..ListQuery::default()
        };
        assert_eq!(encode(&query.pairs()), "event=a%26b%3D%3Cc%3E");
    }
}
