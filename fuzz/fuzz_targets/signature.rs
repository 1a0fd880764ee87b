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
        "accepted the non-canonical value {} as {canonical}",
        quoted(value)
    );
    assert_eq!(
        Signature::parse(&canonical).ok(),
        Some(signature),
        "the canonical form {canonical} of {} does not parse back to the same MAC",
        quoted(value)
    );
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
    let words = || describe(secrets, headers, body, expected);
    match result {
        Ok(verified) => {
            assert_eq!(
                Some(verified.secret_index()),
                expected,
                "accepted with secret {} (0-based): {}",
                verified.secret_index(),
                words()
            );
            assert_eq!(
                Some(verified.signature()),
                parsed.as_ref().ok(),
                "accepted another signature than the headers carry: {}",
                words()
            );
        }
        Err(error) => {
            assert!(
                error.kind().is_authentication() && error.status() == 401,
                "refused with {} ({}), not an authentication failure: {}",
                error.kind(),
                error.status(),
                words()
            );
            assert_eq!(
                expected,
                None,
                "refused an authentic body with {}: {}",
                error.kind(),
                words()
            );
            if let Err(parse_error) = parsed {
                assert_eq!(
                    parse_error.kind(),
                    error.kind(),
                    "verify and from_headers refuse the same headers differently: {}",
                    words()
                );
            }
        }
    }
}

/// The request in words, for a failed assertion.
fn describe(
    secrets: &[Secret],
    headers: &HeaderMap,
    body: &[u8],
    expected: Option<usize>,
) -> String {
    let headers: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", quoted(value.as_bytes())))
        .collect();
    let signer = match expected {
        Some(index) => format!("the MAC of secret {index} (0-based)"),
        None => "no secret's MAC".to_owned(),
    };
    format!(
        "a body of {} bytes, {} secret(s), headers [{}]; the headers carry {signer}",
        body.len(),
        secrets.len(),
        headers.join(", ")
    )
}

/// A header value as escaped text, shortened.
fn quoted(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .take(80)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    let more = if bytes.len() > 80 { "…" } else { "" };
    format!("\"{text}{more}\"")
}
