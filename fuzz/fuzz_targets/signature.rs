//! Signature header parsing and verification with random headers, bodies and secrets.
//!
//! Invariants: nothing panics; an accepted header value is the canonical encoding of its 32
//! bytes; every refusal is an authentication failure (401); `verify` accepts exactly when one of
//! the secrets produces the claimed MAC, and reports the first such secret.
#![no_main]

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use printone_webhooks::{
    sign, sign_raw, Secret, Signature, Verifier, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER,
};

#[derive(Debug, Arbitrary)]
enum Name {
    Current,
    Legacy,
    Event,
    Other(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    secrets: Vec<Vec<u8>>,
    headers: Vec<(Name, Vec<u8>)>,
    body: Vec<u8>,
    /// Adds the correct signature of the body under this secret (index modulo the count).
    sign_with: Option<u8>,
    legacy: bool,
}

fuzz_target!(|input: Input| {
    for (_, value) in &input.headers {
        check_parse(value);
    }
    let secrets: Vec<Secret> = input
        .secrets
        .iter()
        .take(4)
        .filter_map(|s| Secret::new(s).ok())
        .collect();
    let Ok(verifier) = Verifier::with_secrets(secrets.clone()) else {
        return;
    };
    let mut headers = headers_of(&input.headers);
    if let Some(index) = input.sign_with {
        let secret = &secrets[usize::from(index) % secrets.len()];
        let name = if input.legacy {
            LEGACY_SIGNATURE_HEADER
        } else {
            SIGNATURE_HEADER
        };
        if let Ok(value) = HeaderValue::from_str(&sign(secret, &input.body)) {
            headers.append(name, value);
        }
    }
    check_verify(&verifier, &secrets, &headers, &input.body);
});

/// `Signature::parse` never panics, and what it accepts is canonical.
fn check_parse(value: &[u8]) {
    let Ok(signature) = Signature::parse(value) else {
        return;
    };
    let trimmed = value
        .iter()
        .skip_while(|b| matches!(b, b' ' | b'\t'))
        .copied()
        .collect::<Vec<u8>>();
    let canonical = signature.to_base64();
    assert!(
        trimmed.starts_with(canonical.as_bytes())
            && trimmed[canonical.len()..]
                .iter()
                .all(|b| matches!(b, b' ' | b'\t')),
        "accepted a non-canonical value"
    );
    assert_eq!(Signature::parse(&canonical).ok(), Some(signature));
}

fn headers_of(pairs: &[(Name, Vec<u8>)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs.iter().take(8) {
        let name = match name {
            Name::Current => SIGNATURE_HEADER,
            Name::Legacy => LEGACY_SIGNATURE_HEADER,
            Name::Event => printone_webhooks::EVENT_HEADER,
            Name::Other(bytes) => match HeaderName::from_bytes(bytes) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    headers
}

fn check_verify(verifier: &Verifier, secrets: &[Secret], headers: &HeaderMap, body: &[u8]) {
    let parsed = Signature::from_headers(headers);
    let result = verifier.verify(headers, body);
    let expected = parsed.as_ref().ok().and_then(|claimed| {
        secrets
            .iter()
            .position(|secret| sign_raw(secret, body) == *claimed)
    });
    match result {
        Ok(verified) => {
            assert_eq!(Some(verified.secret_index()), expected);
            assert_eq!(Some(verified.signature()), parsed.as_ref().ok());
        }
        Err(error) => {
            assert!(error.kind().is_authentication(), "{:?}", error.kind());
            assert_eq!(error.status(), 401);
            assert_eq!(expected, None, "refused an authentic body");
            if let Err(parse_error) = parsed {
                assert_eq!(parse_error.kind(), error.kind());
            }
        }
    }
}
