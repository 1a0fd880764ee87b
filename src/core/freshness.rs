//! The optional freshness check on the signed `created_at`.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use serde::Deserialize;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::core::error::{ErrorKind, VerifyError};

/// Tells the time; injectable so tests can move it.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<F: Fn() -> SystemTime + Send + Sync + 'static> Clock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

/// Refuses authentic deliveries whose signed `created_at` is older than `max_age` or more than
/// `max_future` ahead of the clock ([`ErrorKind::Stale`], 422).
///
/// Off unless configured ([`Verifier::with_freshness`](crate::Verifier::with_freshness)):
/// Print.one retries failed deliveries later, and a late retry is legal. Turn it on to bound
/// how long a captured delivery can be replayed; pick `max_age` longer than Print.one's retry
/// schedule. A delivery without a parseable `created_at` is refused while the check is on.
#[derive(Clone)]
pub struct Freshness {
    max_age: Duration,
    max_future: Duration,
    clock: Arc<dyn Clock>,
}

/// The default tolerance for a `created_at` ahead of the local clock: 5 minutes.
pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(5 * 60);

impl Freshness {
    /// Refuses deliveries created more than `max_age` ago or more than 5 minutes ahead.
    #[must_use]
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            max_future: DEFAULT_MAX_FUTURE,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets how far ahead of the clock `created_at` may be (clock skew).
    #[must_use]
    pub fn with_max_future(mut self, max_future: Duration) -> Self {
        self.max_future = max_future;
        self
    }

    /// Uses `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the `created_at` of an authentic body.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Stale`] when `created_at` is missing, unparseable, too old or too far
    /// ahead.
    pub fn check(&self, body: &[u8]) -> Result<(), VerifyError> {
        let created = created_at(body)?;
        let now = self.clock.now();
        match now.duration_since(created) {
            Ok(age) if age > self.max_age => Err(stale("created_at is older than the allowed age")),
            Err(ahead) if ahead.duration() > self.max_future => {
                Err(stale("created_at is too far in the future"))
            }
            _ => Ok(()),
        }
    }
}

fn created_at(body: &[u8]) -> Result<SystemTime, VerifyError> {
    #[derive(Deserialize)]
    struct Stamp {
        created_at: Option<String>,
    }
    let stamp: Stamp =
        serde_json::from_slice(body).map_err(|_| stale("body has no readable created_at"))?;
    let text = stamp
        .created_at
        .ok_or_else(|| stale("body has no created_at"))?;
    let parsed = OffsetDateTime::parse(&text, &Rfc3339)
        .map_err(|_| stale("created_at is not an RFC 3339 timestamp"))?;
    Ok(SystemTime::from(parsed))
}

fn stale(reason: &'static str) -> VerifyError {
    VerifyError::new(ErrorKind::Stale, reason)
}

impl fmt::Debug for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Freshness")
            .field("max_age", &self.max_age)
            .field("max_future", &self.max_future)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"data":{"id":"ord_1"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;

    fn at(rfc3339: &'static str) -> impl Fn() -> SystemTime + Send + Sync + 'static {
        move || SystemTime::from(OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap())
    }

    fn freshness(now: &'static str) -> Freshness {
        Freshness::new(Duration::from_secs(3600)).with_clock(at(now))
    }

    #[test]
    fn accepts_a_delivery_within_the_age() {
        assert!(freshness("2024-06-03T13:44:46Z").check(BODY).is_ok());
    }

    #[test]
    fn refuses_a_delivery_older_than_the_age() {
        let error = freshness("2024-06-03T15:14:47Z").check(BODY).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Stale);
        assert_eq!(error.status(), 422);
    }

    #[test]
    fn tolerates_small_clock_skew_but_not_the_far_future() {
        assert!(freshness("2024-06-03T13:12:00Z").check(BODY).is_ok());
        let error = freshness("2024-06-03T12:00:00Z").check(BODY).unwrap_err();
        assert!(error.reason().contains("future"));
    }

    #[test]
    fn refuses_a_body_without_created_at() {
        let error = freshness("2024-06-03T13:14:46Z")
            .check(br#"{"data":{},"event":"x"}"#)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Stale);
    }

    #[test]
    fn refuses_an_unparseable_created_at_or_body() {
        let check = freshness("2024-06-03T13:14:46Z");
        assert!(check.check(br#"{"created_at":"yesterday"}"#).is_err());
        assert!(check.check(b"not json").is_err());
    }

    #[test]
    fn accepts_offsets_other_than_z() {
        let body = br#"{"created_at":"2024-06-03T15:14:46.501+02:00"}"#;
        assert!(freshness("2024-06-03T13:20:00Z").check(body).is_ok());
    }
}
