//! What a store holds: a delivery's id, state, attempts and history.

use std::{
    fmt,
    str::FromStr,
    time::{Duration, SystemTime},
};

use bytes::Bytes;

use crate::core::{
    delivery::{Delivery, Restored, SignatureHeader},
    key::Summary,
    signature::Signature,
};

/// A delivery's id: its verified MAC, which is unique per body (a re-delivery has the same id).
///
/// It prints as 64 lowercase hex characters; [`DeliveryId::short`] gives the first 16, as in
/// the logs. It reveals nothing of the body or the secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId([u8; 32]);

impl DeliveryId {
    /// The id of a delivery with this verified signature.
    #[must_use]
    pub const fn from_signature(signature: &Signature) -> Self {
        Self(*signature.as_bytes())
    }

    /// The id of `delivery`.
    #[must_use]
    pub const fn of(delivery: &Delivery) -> Self {
        Self::from_signature(delivery.signature())
    }

    /// The id from its 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the MAC.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 16 hex characters, as [`Delivery::id`] prints them in logs.
    #[must_use]
    pub fn short(&self) -> String {
        let mut hex = self.to_string();
        hex.truncate(16);
        hex
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeliveryId({})", self.short())
    }
}

/// A delivery id that is not 64 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a delivery id is 64 hex characters")]
pub struct InvalidDeliveryId;

impl FromStr for DeliveryId {
    type Err = InvalidDeliveryId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().as_bytes();
        if text.len() != 64 {
            return Err(InvalidDeliveryId);
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| InvalidDeliveryId)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| InvalidDeliveryId)?;
        }
        Ok(Self(bytes))
    }
}

/// Where a stored delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for a worker: new, or waiting out a retry's backoff.
    Pending,
    /// Held by a worker whose handler runs now (until its lease expires).
    Leased,
    /// Handled. Only the id and times are kept, to recognise a re-delivery.
    Done,
    /// Given up on (a failure no retry can fix, or every attempt failed); kept with its body
    /// until it is replayed or purged.
    Dead,
}

impl DeliveryState {
    /// Every state, in the order of a delivery's life.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Leased, Self::Done, Self::Dead];

    /// The state's stable `snake_case` name, as stores, the CLI and logs write it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Leased => "leased",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// The state named `name` (as [`DeliveryState::as_str`] writes it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt at handling a delivery: when it started, how long it ran, and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When the handler was called.
    pub started_at: SystemTime,
    /// How long the handler ran.
    pub duration: Duration,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
}

/// A delivery as a store holds it.
///
/// # Security
///
/// The body is untrusted input as Print.one sent it; `Debug` shows its length only.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    /// The id (the verified MAC).
    pub id: DeliveryId,
    /// Where it is in its life.
    pub state: DeliveryState,
    /// The `event` the signed body names, when it has one.
    pub event: Option<String>,
    /// The signed body's `data.id`, when it has one.
    pub data_id: Option<String>,
    /// The unsigned event header as received.
    pub event_header: Option<String>,
    /// Which header carried the signature.
    pub signature_header: SignatureHeader,
    /// Which secret of the verifier matched.
    pub secret_index: usize,
    /// When the body had arrived and was verified.
    pub received_at: SystemTime,
    /// Attempts started so far.
    pub attempts: u32,
    /// When a pending delivery may next be tried.
    pub next_attempt_at: Option<SystemTime>,
    /// Why the last attempt failed, or why it was dead-lettered.
    pub last_error: Option<String>,
    /// When it was handled or dead-lettered.
    pub finished_at: Option<SystemTime>,
    /// The raw body; `None` once handled (only the id is kept then).
    pub body: Option<Bytes>,
    /// Every attempt, oldest first: filled by [`Store::get`](crate::store::Store::get), empty
    /// in lists.
    pub history: Vec<Attempt>,
    /// The Print.one webhook log entry it was recovered from by the reconciler; `None` when it
    /// arrived signed.
    pub recovered_from: Option<String>,
    /// Its [`LogicalKey`](crate::LogicalKey), when the body has one (set on the way in; not
    /// read back by the stores, which index its parts).
    pub(crate) logical_key: Option<Box<crate::LogicalKey>>,
}

impl StoredDelivery {
    /// What a store records of a delivery it accepts now.
    #[must_use]
    pub fn accepted(delivery: &Delivery) -> Self {
        let summary = Summary::of(delivery.body());
        let id = DeliveryId::of(delivery);
        let logical_key = summary.key().map(Box::new);
        Self {
            id,
            state: DeliveryState::Pending,
            event: summary.event,
            data_id: summary.data_id,
            event_header: delivery.event_header().map(str::to_owned),
            signature_header: delivery.signature_header(),
            secret_index: delivery.secret_index(),
            received_at: delivery.received_at(),
            attempts: 0,
            next_attempt_at: Some(delivery.received_at()),
            last_error: None,
            finished_at: None,
            body: Some(delivery.body().clone()),
            history: Vec::new(),
            recovered_from: delivery.recovered_from().map(str::to_owned),
            logical_key,
        }
    }

    /// The delivery to hand to a handler; `None` when the body is no longer kept.
    pub(crate) fn to_delivery(&self) -> Option<Delivery> {
        Some(Delivery::restore(Restored {
            body: self.body.clone()?,
            signature: Signature::from_bytes(self.id.0),
            secret_index: self.secret_index,
            event_header: self.event_header.clone(),
            signature_header: self.signature_header,
            received_at: self.received_at,
            recovered_from: self.recovered_from.clone(),
        }))
    }

    /// The event name for logs: the body's, else the header's, else `-`.
    #[must_use]
    pub fn event_name(&self) -> &str {
        self.event
            .as_deref()
            .or(self.event_header.as_deref())
            .unwrap_or("-")
    }
}

impl fmt::Debug for StoredDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredDelivery")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("event", &self.event)
            .field("data_id", &self.data_id)
            .field("attempts", &self.attempts)
            .field("received_at", &self.received_at)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("recovered_from", &self.recovered_from)
            .finish_non_exhaustive()
    }
}

/// A worker's hold on a delivery: only the holder of the current token may settle it.
///
/// The token is a fencing token: a claim after an expired lease gets a new one, so a worker
/// whose lease expired can no longer complete, retry or dead-letter the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The delivery held.
    pub id: DeliveryId,
    /// The fencing token of this claim.
    pub token: u64,
    /// When the lease expires and another worker may take the delivery.
    pub expires_at: SystemTime,
}

/// A delivery claimed for an attempt.
#[derive(Debug)]
pub struct Claimed {
    /// The delivery, to hand to the handler.
    pub delivery: Delivery,
    /// The hold on it.
    pub lease: Lease,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
}

/// The answer to a claim: what is due now, and when the next pending delivery falls due.
#[derive(Debug, Default)]
pub struct Claim {
    /// The deliveries claimed, oldest first.
    pub claimed: Vec<Claimed>,
    /// When the next delivery left pending is due (a retry waiting out its backoff), if any.
    pub next_due: Option<SystemTime>,
}

/// What became of a delivery offered to [`Store::insert`](crate::store::Store::insert).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored now: it will be handled.
    Stored,
    /// Its id was stored before (a re-delivery): not stored again.
    Duplicate,
    /// The backlog is at capacity: not stored; the sender should try again later.
    Full,
}

/// How many deliveries a store holds in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting for a worker.
    pub pending: u64,
    /// Held by a worker now.
    pub leased: u64,
    /// Handled, kept as ids for the de-duplication window.
    pub done: u64,
    /// Dead letters.
    pub dead: u64,
}

impl Counts {
    /// Deliveries accepted and not yet handled or given up on: pending and leased.
    #[must_use]
    pub const fn backlog(&self) -> u64 {
        self.pending + self.leased
    }

    /// Adds `count` deliveries in `state`.
    pub(crate) fn add(&mut self, state: DeliveryState, count: u64) {
        let slot = match state {
            DeliveryState::Pending => &mut self.pending,
            DeliveryState::Leased => &mut self.leased,
            DeliveryState::Done => &mut self.done,
            DeliveryState::Dead => &mut self.dead,
        };
        *slot += count;
    }

    /// The count of one state.
    #[must_use]
    pub const fn of(&self, state: DeliveryState) -> u64 {
        match state {
            DeliveryState::Pending => self.pending,
            DeliveryState::Leased => self.leased,
            DeliveryState::Done => self.done,
            DeliveryState::Dead => self.dead,
        }
    }
}

/// Which deliveries [`Store::list`](crate::store::Store::list) returns: newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Only this state.
    pub state: Option<DeliveryState>,
    /// Only this event (as the body names it, else as the header did).
    pub event: Option<String>,
    /// Only deliveries received at or after this time.
    pub since: Option<SystemTime>,
    /// Only deliveries received before this time (the cursor of the next page).
    pub before: Option<SystemTime>,
    /// With [`Filter::before`]: also the deliveries received exactly at `before` whose id is
    /// below this one. A list is ordered newest first, then by id from the highest, so a page
    /// that ends at a delivery goes on right after it, however many deliveries share its time
    /// ([`Filter::after`] sets both). Without `before` it has no effect.
    pub before_id: Option<DeliveryId>,
    /// At most this many.
    pub limit: usize,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            state: None,
            event: None,
            since: None,
            before: None,
            before_id: None,
            limit: 100,
        }
    }
}

impl Filter {
    /// Whether `delivery` passes the filter (its limit aside).
    #[must_use]
    pub fn matches(&self, delivery: &StoredDelivery) -> bool {
        self.state.is_none_or(|state| state == delivery.state)
            && self
                .event
                .as_deref()
                .is_none_or(|event| event == delivery.event_name())
            && self.since.is_none_or(|since| delivery.received_at >= since)
            && self.precedes(delivery)
    }

    /// The next page of this filter: the deliveries that come after `last` (the last delivery
    /// of this page) in the list's order, newest first then by id.
    #[must_use]
    pub fn after(&self, last: &StoredDelivery) -> Self {
        Self {
            before: Some(last.received_at),
            before_id: Some(last.id),
            ..self.clone()
        }
    }

    /// Whether `delivery` comes after the page cursor (`before`, `before_id`).
    fn precedes(&self, delivery: &StoredDelivery) -> bool {
        let Some(before) = self.before else {
            return true;
        };
        delivery.received_at < before
            || self
                .before_id
                .is_some_and(|id| delivery.received_at == before && delivery.id < id)
    }
}

/// How many deliveries of one event a store holds in each state, as
/// [`Store::event_counts`](crate::store::Store::event_counts) gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCounts {
    /// The event as [`StoredDelivery::event_name`] gives it: the body's, else the header's,
    /// else `-`.
    pub event: String,
    /// Its deliveries in each state.
    pub counts: Counts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_prints_as_hex_and_parses_back() {
        let id = DeliveryId::from_bytes([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<DeliveryId>(), Ok(id));
        assert_eq!(id.short(), "abababababababab");
    }

    #[test]
    fn an_id_that_is_not_64_hex_characters_is_refused() {
        assert!("abc".parse::<DeliveryId>().is_err());
        assert!("zz".repeat(32).parse::<DeliveryId>().is_err());
    }

    fn received(n: u8, at: SystemTime) -> StoredDelivery {
        StoredDelivery {
            id: DeliveryId::from_bytes([n; 32]),
            state: DeliveryState::Done,
            event: None,
            data_id: None,
            event_header: None,
            signature_header: SignatureHeader::Current,
            secret_index: 0,
            received_at: at,
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            finished_at: None,
            body: None,
            history: Vec::new(),
            recovered_from: None,
            logical_key: None,
        }
    }

    #[test]
    fn the_page_after_a_delivery_holds_its_older_ties_and_older_times_only() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let next = Filter::default().after(&received(5, at));
        assert!(next.matches(&received(4, at)), "same time, lower id");
        assert!(!next.matches(&received(5, at)), "the cursor itself");
        assert!(!next.matches(&received(6, at)), "same time, higher id");
        assert!(next.matches(&received(9, at - Duration::from_micros(1))));
        assert!(!next.matches(&received(1, at + Duration::from_micros(1))));
        let by_time = Filter {
            before_id: None,
            ..next
        };
        assert!(!by_time.matches(&received(4, at)), "before alone is strict");
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in DeliveryState::ALL {
            assert_eq!(DeliveryState::from_name(state.as_str()), Some(state));
        }
        assert_eq!(DeliveryState::from_name("nope"), None);
    }
}
