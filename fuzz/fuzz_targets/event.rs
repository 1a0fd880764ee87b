//! Parsing of verified bodies: `Event`, `Envelope`, `Delivery` and the freshness check.
//!
//! Invariants: nothing panics (deeply nested JSON included); an envelope that parses carries the
//! same event as parsing `Event` alone; a parsed event has a name.
#![no_main]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use printone_webhooks::{sign_raw, Delivery, Envelope, Event, Freshness, Secret, Verifier};

fuzz_target!(|body: &[u8]| {
    let event = serde_json::from_slice::<Event>(body);
    let envelope = serde_json::from_slice::<Envelope>(body);
    if let Ok(envelope) = &envelope {
        let Ok(event) = event.as_ref() else {
            panic!(
                "the body parses as an Envelope but not as an Event: {}",
                quoted(body)
            );
        };
        assert_eq!(
            &envelope.event,
            event,
            "the envelope's event is not the event parsed alone: {}",
            quoted(body)
        );
    }
    if let Ok(event) = &event {
        let _ = (event.name(), event.data_id());
    }
    check_delivery(body);
    check_freshness(body);
});

/// The same body through a verified [`Delivery`], as a handler sees it.
fn check_delivery(body: &[u8]) {
    let Ok(secret) = Secret::new("fuzz-secret") else {
        return;
    };
    let signature = sign_raw(&secret, body);
    let verified = Verifier::new(secret)
        .verify_signature(signature, body)
        .unwrap_or_else(|error| {
            panic!(
                "a body signed with the verifier's secret was refused ({}): {}",
                error.kind(),
                quoted(body)
            )
        });
    let delivery = Delivery::new(Bytes::copy_from_slice(body), verified, &HeaderMap::new());
    assert_eq!(
        delivery.body().as_ref(),
        body,
        "the delivery's body is not the verified body {}",
        quoted(body)
    );
    let _ = delivery.event();
    let _ = delivery.envelope();
    let _ = delivery.parse::<serde_json::Value>();
    assert_eq!(
        delivery.id().len(),
        16,
        "the short id {} is not 8 bytes of hex, for the body {}",
        delivery.id(),
        quoted(body)
    );
    let _ = format!("{delivery:?}");
}

/// The optional freshness check parses `created_at` from untrusted bytes too.
fn check_freshness(body: &[u8]) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_717_420_486);
    let freshness = Freshness::new(Duration::from_secs(3600)).with_clock(move || now);
    if let Err(error) = freshness.check(body) {
        assert_eq!(
            error.status(),
            422,
            "the freshness check refused with {}, not 422 (stale): {}",
            error.kind(),
            quoted(body)
        );
    }
}

/// The body as escaped text, shortened, for a failed assertion.
fn quoted(body: &[u8]) -> String {
    const SHOWN: usize = 200;
    let text: String = body
        .iter()
        .take(SHOWN)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    let more = if body.len() > SHOWN {
        format!("… ({} bytes in all)", body.len())
    } else {
        String::new()
    };
    format!("the {}-byte body \"{text}\"{more}", body.len())
}
