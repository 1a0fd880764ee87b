//! A verified delivery: the raw body and what is known about it.

use std::{fmt, sync::Arc, time::SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use crate::{
    core::key::{LogicalKey, Summary},
    core::signature::{Signature, EVENT_HEADER, LEGACY_SIGNATURE_HEADER, WEBHOOK_EVENT_HEADER},
    core::verify::Verified,
    event::{Envelope, Event},
};

/// Which header carried a delivery's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureHeader {
    /// `x-webhook-hmac-sha256`, the current name.
    Current,
    /// `x-printone-hmac-sha256`, the older name (used only when the current one is absent).
    Legacy,
}

impl SignatureHeader {
    /// The header's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Current => "x-webhook-hmac-sha256",
            Self::Legacy => "x-printone-hmac-sha256",
        }
    }

    /// The header named `name`, if it is a signature header.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Current, Self::Legacy]
            .into_iter()
            .find(|header| header.name().eq_ignore_ascii_case(name))
    }
}

/// A delivery whose signature has been verified.
///
/// It keeps the raw body exactly as received (as [`Bytes`], shared, never copied) and is parsed
/// only when asked ([`Delivery::event`], [`Delivery::parse`]), so an authentic delivery is never
/// lost to a parse error: the error surfaces where the handler parses.
///
/// # Security
///
/// `Debug` shows the body's length, never its content.
#[derive(Clone)]
pub struct Delivery {
    body: Bytes,
    event_header: Option<HeaderValue>,
    verified: Verified,
    signature_header: SignatureHeader,
    received_at: SystemTime,
    /// The webhook log entry a delivery recovered from Print.one's log came from.
    recovered_from: Option<Arc<str>>,
}

impl Delivery {
    /// Builds a delivery from a body that `verified` proves authentic and the request headers.
    #[must_use]
    pub fn new(body: Bytes, verified: Verified, headers: &HeaderMap) -> Self {
        let (event_header, signature_header) = scan_headers(headers);
        Self {
            body,
            event_header,
            verified,
            signature_header,
            received_at: SystemTime::now(),
            recovered_from: None,
        }
    }

    /// A delivery recovered from Print.one's webhook log: `envelope` is the logged request
    /// (the JSON envelope), `log_id` the log entry's id. It was not signed (the log holds the
    /// envelope, not the signed bytes; its authenticity comes from the API, over TLS); its id
    /// is the digest of its [`LogicalKey`], so `None` when the envelope has none.
    #[cfg(any(feature = "reconcile", all(test, feature = "worker")))]
    pub(crate) fn recovered(
        envelope: Bytes,
        event_header: Option<&str>,
        log_id: &str,
    ) -> Option<Self> {
        let key = LogicalKey::of_body(&envelope)?;
        Some(Self {
            body: envelope,
            event_header: event_header.and_then(|value| HeaderValue::from_str(value).ok()),
            verified: Verified::restored(Signature::from_bytes(key.digest()), 0),
            signature_header: SignatureHeader::Current,
            received_at: SystemTime::now(),
            recovered_from: Some(log_id.into()),
        })
    }

    /// A delivery read back from a store: it was verified when it was received.
    #[cfg(feature = "worker")]
    pub(crate) fn restore(restored: Restored) -> Self {
        Self {
            body: restored.body,
            event_header: restored
                .event_header
                .and_then(|value| HeaderValue::from_str(&value).ok()),
            verified: Verified::restored(restored.signature, restored.secret_index),
            signature_header: restored.signature_header,
            received_at: restored.received_at,
            recovered_from: restored.recovered_from.map(Into::into),
        }
    }

    /// The raw body, byte for byte as signed.
    #[must_use]
    pub const fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the raw body out of the delivery.
    #[must_use]
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The trigger named by the unsigned `x-printone-event` (or `x-webhook-event`) header, if
    /// it was present and printable.
    ///
    /// # Security
    ///
    /// This header is not covered by the signature; route on [`Delivery::event`] (the signed
    /// body) when it matters.
    #[must_use]
    pub fn event_header(&self) -> Option<&str> {
        self.event_header.as_ref().and_then(|v| v.to_str().ok())
    }

    /// The index of the secret that matched, in the order given to the
    /// [`Verifier`](crate::Verifier).
    #[must_use]
    pub const fn secret_index(&self) -> usize {
        self.verified.secret_index()
    }

    /// The verified signature. It is the MAC of the exact body, so equal bodies (a re-delivery)
    /// have equal signatures: a natural delivery id for de-duplication.
    ///
    /// A delivery [recovered from the webhook log](Delivery::recovered_from) had no signature:
    /// this is then its id, the digest of its [`LogicalKey`].
    #[must_use]
    pub const fn signature(&self) -> &Signature {
        self.verified.signature()
    }

    /// A short id for logs: the first 8 bytes of the verified MAC, in hex. Equal bodies have
    /// equal ids; it reveals nothing of the body or the secret.
    ///
    /// It is the same at every attempt and for every re-delivery of the body, so an idempotent
    /// handler can key on it (`store::DeliveryId::of` gives all 32 bytes, as the store keys
    /// deliveries).
    #[must_use]
    pub fn id(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.signature().as_bytes()[..8]
            .iter()
            .flat_map(|byte| [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0f)]])
            .map(char::from)
            .collect()
    }

    /// Which header carried the signature.
    #[must_use]
    pub const fn signature_header(&self) -> SignatureHeader {
        self.signature_header
    }

    /// The event name and `data.id` the signed body carries, when it is a JSON object with
    /// them (read without parsing the typed event; `None` for what is missing).
    #[must_use]
    pub fn summary(&self) -> (Option<String>, Option<String>) {
        let summary = Summary::of(&self.body);
        (summary.event, summary.data_id)
    }

    /// The event, `data.id` and creation time that identify the event whatever bytes carried
    /// it; `None` when the body lacks one of them.
    #[must_use]
    pub fn logical_key(&self) -> Option<LogicalKey> {
        LogicalKey::of_body(&self.body)
    }

    /// The id of the Print.one webhook log entry this delivery was recovered from, by the
    /// reconciler; `None` for a delivery that arrived signed and was verified.
    ///
    /// # Security
    ///
    /// A recovered delivery was not signature-verified: its body is the envelope Print.one's
    /// API returned, over TLS, to a holder of the account's API key.
    #[must_use]
    pub fn recovered_from(&self) -> Option<&str> {
        self.recovered_from.as_deref()
    }

    /// When the body finished arriving and was verified.
    #[must_use]
    pub const fn received_at(&self) -> SystemTime {
        self.received_at
    }

    /// Parses the body as the crate's [`Event`] enum.
    ///
    /// # Errors
    ///
    /// A [`serde_json::Error`] when the body is not a Print.one envelope, or a known trigger's
    /// `data` has the wrong shape. Unknown triggers are not errors: they parse as
    /// [`Event::Unknown`].
    pub fn event(&self) -> Result<Event, serde_json::Error> {
        self.parse()
    }

    /// Parses the body as the whole [`Envelope`] (event and `created_at`).
    ///
    /// # Errors
    ///
    /// As for [`Delivery::event`].
    pub fn envelope(&self) -> Result<Envelope, serde_json::Error> {
        self.parse()
    }

    /// Parses the body as any deserializable type.
    ///
    /// # Errors
    ///
    /// A [`serde_json::Error`] when the body does not deserialize as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// What a store keeps of a delivery to build it again.
#[cfg(feature = "worker")]
pub(crate) struct Restored {
    pub(crate) body: Bytes,
    pub(crate) signature: Signature,
    pub(crate) secret_index: usize,
    pub(crate) event_header: Option<String>,
    pub(crate) signature_header: SignatureHeader,
    pub(crate) received_at: SystemTime,
    pub(crate) recovered_from: Option<String>,
}

/// The value of `x-printone-event` (else of `x-webhook-event`) and which header carried the
/// signature, found in one pass over the headers (cheaper than several lookups, which hash
/// each name).
fn scan_headers(headers: &HeaderMap) -> (Option<HeaderValue>, SignatureHeader) {
    let mut event = None;
    let mut fallback = None;
    let mut legacy_only = None;
    for (name, value) in headers {
        if event.is_none() && *name == EVENT_HEADER {
            event = Some(value);
        } else if fallback.is_none() && *name == WEBHOOK_EVENT_HEADER {
            fallback = Some(value);
        } else if *name == LEGACY_SIGNATURE_HEADER {
            legacy_only.get_or_insert(true);
        } else if name.as_str() == SignatureHeader::Current.name() {
            legacy_only = Some(false);
        }
    }
    let header = if legacy_only == Some(true) {
        SignatureHeader::Legacy
    } else {
        SignatureHeader::Current
    };
    (event.or(fallback).cloned(), header)
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("body_len", &self.body.len())
            .field("event_header", &self.event_header())
            .field("secret_index", &self.secret_index())
            .field("signature", self.signature())
            .field("received_at", &self.received_at)
            .field("recovered_from", &self.recovered_from)
            .finish_non_exhaustive()
    }
}

/// A verified delivery of `body` with `headers`, for unit tests.
#[cfg(test)]
pub(crate) fn verified(body: &'static [u8], headers: &HeaderMap) -> Delivery {
    let secret = crate::Secret::new("s3cr3t").expect("not empty");
    let signature = crate::sign_raw(&secret, body);
    let verified = crate::Verifier::new(secret)
        .verify_signature(signature, body)
        .expect("signed with the same secret");
    Delivery::new(Bytes::from_static(body), verified, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"data":{"id":"ord_42","status":"order_created"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;

    fn delivery(body: &'static [u8], headers: &HeaderMap) -> Delivery {
        verified(body, headers)
    }

    #[test]
    fn debug_shows_length_not_body() {
        let printed = format!("{:?}", delivery(BODY, &HeaderMap::new()));
        assert!(
            printed.contains(&format!("body_len: {}", BODY.len())),
            "{printed}"
        );
        assert!(!printed.contains("ord_42"), "{printed}");
    }

    #[test]
    fn the_id_is_stable_per_body_and_short() {
        let first = delivery(BODY, &HeaderMap::new());
        let again = delivery(BODY, &HeaderMap::new());
        let other = delivery(b"other", &HeaderMap::new());
        assert_eq!(first.id(), again.id());
        assert_ne!(first.id(), other.id());
        assert_eq!(first.id().len(), 16);
        let bytes = &first.signature().as_bytes()[..8];
        let hex = format!("{:016x}", u64::from_be_bytes(bytes.try_into().unwrap()));
        assert_eq!(first.id(), hex, "the MAC's first 8 bytes in lower-case hex");
    }

    #[test]
    fn reads_the_event_header_under_either_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            WEBHOOK_EVENT_HEADER,
            HeaderValue::from_static("batch_status_update"),
        );
        assert_eq!(
            delivery(BODY, &headers).event_header(),
            Some("batch_status_update")
        );
        headers.insert(
            EVENT_HEADER,
            HeaderValue::from_static("order_status_update"),
        );
        assert_eq!(
            delivery(BODY, &headers).event_header(),
            Some("order_status_update")
        );
    }

    #[test]
    fn parses_the_typed_event_lazily() {
        let event = delivery(BODY, &HeaderMap::new()).event().unwrap();
        assert_eq!(event.name(), "order_status_update");
        assert_eq!(event.data_id(), Some("ord_42"));
    }

    #[test]
    fn a_body_that_is_not_an_envelope_is_kept_and_fails_only_when_parsed() {
        let delivery = delivery(b"not json", &HeaderMap::new());
        assert_eq!(delivery.body().as_ref(), b"not json");
        assert!(delivery.event().is_err());
    }
}
