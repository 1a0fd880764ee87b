//! Why a signature does not verify.
//!
//! Each usual mistake is *tried*, not guessed: the signature is read the mistaken way, or the
//! body or the secret is changed back the way the mistake changed it, and the library's own
//! [`Verifier`] decides whether that explains the signature. Nothing here computes an HMAC or
//! compares MACs itself.

use std::fmt;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use http::{HeaderMap, HeaderName};
use printone_webhooks::{Secret, Signature, Verifier, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER};

use crate::json;

/// A cause of a failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// A short, stable name, e.g. `hex signature`.
    pub(crate) label: &'static str,
    /// What was found and what to do about it. Never contains the secret.
    pub(crate) detail: String,
    /// Whether trying the mistake made the signature verify (or the mistake alone explains the
    /// refusal), rather than merely being noticed.
    pub(crate) confirmed: bool,
}

impl Finding {
    fn confirmed(label: &'static str, detail: impl Into<String>) -> Self {
        Self {
            label,
            detail: detail.into(),
            confirmed: true,
        }
    }

    fn possible(label: &'static str, detail: impl Into<String>) -> Self {
        Self {
            confirmed: false,
            ..Self::confirmed(label, detail)
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.confirmed {
            "likely cause"
        } else {
            "possible cause"
        };
        write!(f, "{kind}: {}: {}", self.label, self.detail)
    }
}

/// The causes of a failed verification of `body` and the signature in `headers` under
/// `secret`, confirmed ones first. Meant for a verification that has already failed.
pub(crate) fn diagnose(secret: &[u8], body: &[u8], headers: &HeaderMap) -> Vec<Finding> {
    let claims = claims(headers);
    let mut findings = match distinct(&claims).as_slice() {
        [] => missing(secret, body, headers),
        [value] => explain(secret, body, value),
        _ => conflicting(secret, body, &claims),
    };
    findings.sort_by_key(|finding| !finding.confirmed);
    findings
}

/// Every value of both signature headers, trimmed of spaces and tabs like the verifier does.
fn claims(headers: &HeaderMap) -> Vec<(HeaderName, String)> {
    [SIGNATURE_HEADER, LEGACY_SIGNATURE_HEADER]
        .into_iter()
        .flat_map(|name| {
            headers.get_all(&name).iter().map(move |value| {
                let text = String::from_utf8_lossy(value.as_bytes());
                (name.clone(), text.trim_matches([' ', '\t']).to_owned())
            })
        })
        .collect()
}

fn distinct(claims: &[(HeaderName, String)]) -> Vec<&str> {
    let mut values: Vec<&str> = claims.iter().map(|(_, value)| value.as_str()).collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// Whether `signature` is the signature of `body` under `secret`, by the library's verifier.
fn verifies(secret: &[u8], body: &[u8], signature: Signature) -> bool {
    Secret::new(secret).is_ok_and(|secret| {
        Verifier::new(secret)
            .verify_signature(signature, body)
            .is_ok()
    })
}

// ---- the signature headers -------------------------------------------------------------

/// Two different values under the old and new names (or one name repeated).
fn conflicting(secret: &[u8], body: &[u8], claims: &[(HeaderName, String)]) -> Vec<Finding> {
    let names: Vec<&str> = claims.iter().map(|(name, _)| name.as_str()).collect();
    let matching = claims.iter().find(|(_, value)| {
        readings(value)
            .iter()
            .any(|r| verifies(secret, body, r.signature))
    });
    let which = match matching {
        Some((name, _)) => {
            format!("the value under {name} is this body's signature, the other is not")
        }
        None => "neither value is this body's signature".to_owned(),
    };
    vec![Finding::confirmed(
        "conflicting signature headers",
        format!(
            "the signature headers ({}) carry different values and {which}; the old and new \
             names (x-printone-hmac-sha256, x-webhook-hmac-sha256) must agree, so a receiver \
             refuses this: send one of them, or the same value under both",
            names.join(", ")
        ),
    )]
}

/// No signature header at all: perhaps the signature came under another name.
fn missing(secret: &[u8], body: &[u8], headers: &HeaderMap) -> Vec<Finding> {
    let lookalike = headers.iter().find(|(name, value)| {
        let name = name.as_str();
        let looks = name.contains("hmac") || name.contains("signature");
        let text = String::from_utf8_lossy(value.as_bytes());
        looks
            && readings(text.trim())
                .iter()
                .any(|r| verifies(secret, body, r.signature))
    });
    let detail = match lookalike {
        Some((name, _)) => format!(
            "this body's signature arrived under {name}; Print.one sends it as \
             x-webhook-hmac-sha256 (older name: x-printone-hmac-sha256), so read those"
        ),
        None => "neither x-webhook-hmac-sha256 nor the older x-printone-hmac-sha256 was \
                 sent; read both names"
            .to_owned(),
    };
    let label = if lookalike.is_some() {
        "signature under another header"
    } else {
        "no signature header"
    };
    vec![Finding::confirmed(label, detail)]
}

// ---- the signature value ---------------------------------------------------------------

/// One way of reading the claimed value as a MAC, and the mistake that reading assumes.
struct Reading {
    signature: Signature,
    mistake: Option<(&'static str, &'static str)>,
}

/// Every plausible reading of `value`: as sent, as hex, as URL-safe or unpadded base64, or
/// without decoration such as quotes or a `sha256=` prefix.
fn readings(value: &str) -> Vec<Reading> {
    let strict = Signature::parse(value).ok().map(|signature| Reading {
        signature,
        mistake: None,
    });
    let mistaken = [
        hex_reading(value),
        base64_reading(value),
        decorated_reading(value),
    ];
    strict
        .into_iter()
        .chain(mistaken.into_iter().flatten())
        .collect()
}

fn hex_reading(value: &str) -> Option<Reading> {
    let bytes: [u8; 32] = decode_hex(value)?.try_into().ok()?;
    Some(Reading {
        signature: Signature::from_bytes(bytes),
        mistake: Some((
            "hex signature",
            "the value is the 64-digit hex form of the MAC; Print.one sends standard base64 \
             with padding (44 characters), and receivers must compare that",
        )),
    })
}

fn base64_reading(value: &str) -> Option<Reading> {
    let url_safe = value.contains(['-', '_']);
    let mut standard = value.replace('-', "+").replace('_', "/");
    let padding = (4 - standard.len() % 4) % 4;
    standard.extend(std::iter::repeat_n('=', padding));
    if standard == value {
        return None;
    }
    let mistake = if url_safe {
        (
            "URL-safe base64",
            "the value uses the URL-safe alphabet (- and _); Print.one sends the standard \
             alphabet (+ and /) with padding",
        )
    } else {
        (
            "missing base64 padding",
            "the value has lost its trailing =; Print.one sends padded base64 (44 characters)",
        )
    };
    let signature = Signature::parse(standard).ok()?;
    Some(Reading {
        signature,
        mistake: Some(mistake),
    })
}

fn decorated_reading(value: &str) -> Option<Reading> {
    let bare = value.trim_matches(['"', '\'']);
    let bare = bare.strip_prefix("sha256=").unwrap_or(bare);
    if bare == value {
        return None;
    }
    Some(Reading {
        signature: Signature::parse(bare).ok()?,
        mistake: Some((
            "decorated signature",
            "the value carries quotes or a sha256= prefix; Print.one sends the bare base64",
        )),
    })
}

/// What the claimed value says, given that the headers agree on it.
fn explain(secret: &[u8], body: &[u8], value: &str) -> Vec<Finding> {
    let readings = readings(value);
    if readings.is_empty() {
        return vec![Finding::confirmed(
            "not a signature",
            "the value is not a MAC in any encoding (base64, hex, URL-safe); check that the \
             signature header was copied, not another header",
        )];
    }
    for reading in &readings {
        if let Some(findings) = explain_reading(secret, body, reading) {
            return findings;
        }
    }
    unexplained(secret, body, &readings)
}

/// The findings when `reading` (possibly with one changed input) verifies.
fn explain_reading(secret: &[u8], body: &[u8], reading: &Reading) -> Option<Vec<Finding>> {
    let encoding = reading.mistake.map(|(label, detail)| {
        let correct = reading.signature.to_base64();
        Finding::confirmed(label, format!("{detail}; here that is {correct}"))
    });
    let changed = if verifies(secret, body, reading.signature) {
        Vec::new()
    } else {
        let found = changed_inputs(secret, body, reading.signature);
        if found.is_empty() {
            return None;
        }
        found
    };
    Some(encoding.into_iter().chain(changed).collect())
}

/// Nothing verified: say what was noticed, and that it is not the whole story.
fn unexplained(secret: &[u8], body: &[u8], readings: &[Reading]) -> Vec<Finding> {
    let noticed = readings
        .iter()
        .filter_map(|r| r.mistake)
        .map(|(label, detail)| {
            Finding::possible(
                label,
                format!("{detail} (but even read that way it does not match)"),
            )
        });
    let mut findings: Vec<Finding> = noticed.chain(noticed_inputs(secret, body)).collect();
    findings.push(Finding::possible(
        "different body or secret",
        "no single usual mistake explains the mismatch: the body was changed after it was \
         signed, or the secret is not the one configured for this endpoint in Print.one",
    ));
    findings
}

// ---- the body and the secret -----------------------------------------------------------

/// A body or secret changed back the way a mistake changed it.
struct Variant {
    label: &'static str,
    detail: &'static str,
    bytes: Vec<u8>,
}

/// The body and secret variants under which `signature` verifies.
fn changed_inputs(secret: &[u8], body: &[u8], signature: Signature) -> Vec<Finding> {
    let bodies = body_variants(body)
        .into_iter()
        .filter(|v| verifies(secret, &v.bytes, signature));
    let secrets = secret_variants(secret)
        .into_iter()
        .filter(|v| verifies(&v.bytes, body, signature));
    bodies
        .chain(secrets)
        .take(1)
        .map(|v| Finding::confirmed(v.label, v.detail))
        .collect()
}

fn body_variants(body: &[u8]) -> Vec<Variant> {
    let mut variants = Vec::new();
    let trimmed = body.trim_ascii_end();
    if trimmed.len() < body.len() {
        variants.push(trailing_whitespace(body, trimmed));
    }
    if body.trim_ascii().len() < trimmed.len() {
        variants.push(Variant {
            label: "whitespace around the body",
            detail: "the signature matches the body without its leading whitespace: pass the \
                     body exactly as received",
            bytes: body.trim_ascii().to_vec(),
        });
    }
    variants.push(Variant {
        label: "newline missing from the body",
        detail: "the signature matches the body followed by a newline: the signed body ended \
                 with one that was lost on the way",
        bytes: [body, b"\n"].concat(),
    });
    variants.extend(reformatted_bodies(body));
    variants
}

fn trailing_whitespace(body: &[u8], trimmed: &[u8]) -> Variant {
    let (label, detail) = if body.ends_with(b"\n") {
        (
            "trailing newline in the body",
            "the signature matches the body without its final newline: the body gained one \
             after signing (echo, an editor or a file write adds it; printf '%s' does not); \
             verify the bytes exactly as received",
        )
    } else {
        (
            "trailing whitespace in the body",
            "the signature matches the body without its trailing whitespace: verify the bytes \
             exactly as received",
        )
    };
    Variant {
        label,
        detail,
        bytes: trimmed.to_vec(),
    }
}

fn reformatted_bodies(body: &[u8]) -> Vec<Variant> {
    let compact = json::minify(body).filter(|compact| compact != body);
    let restringified =
        json::restringify(body).filter(|r| r != body && Some(r) != compact.as_ref());
    let pretty = compact.map(|bytes| Variant {
        label: "pretty-printed body",
        detail: "the signature matches the compact form of this JSON: the body was \
                 pretty-printed or re-indented after signing; verify the raw bytes before \
                 any parsing",
        bytes,
    });
    let reserialised = restringified.map(|bytes| Variant {
        label: "re-serialised body",
        detail: "the signature matches this JSON written compactly with non-ASCII text \
                 unescaped: the body was parsed and serialised again (json.dumps, a JSON \
                 body parser) before verifying; verify the raw bytes instead",
        bytes,
    });
    pretty.into_iter().chain(reserialised).collect()
}

/// Prefixes that dashboards and secret managers put in front of webhook secrets.
const PREFIXES: [&str; 4] = ["whsec_", "whsec:", "printone_", "secret:"];

fn secret_variants(secret: &[u8]) -> Vec<Variant> {
    let mut variants = Vec::new();
    if secret.trim_ascii().len() < secret.len() {
        variants.push(Variant {
            label: "whitespace in the secret",
            detail: "the signature matches the secret without its surrounding whitespace: the \
                     configured secret has a stray newline or space (often from a file or .env)",
            bytes: secret.trim_ascii().to_vec(),
        });
    }
    variants.push(Variant {
        label: "newline in the signer's secret",
        detail: "the signature matches the secret followed by a newline: the sender's copy of \
                 the secret ends with one; use the secret exactly as Print.one shows it",
        bytes: [secret, b"\n"].concat(),
    });
    variants.extend(unprefixed(secret));
    variants.extend(prefixed(secret));
    variants.extend(decoded_secrets(secret));
    variants
}

fn unprefixed(secret: &[u8]) -> Option<Variant> {
    let known = PREFIXES
        .iter()
        .find_map(|prefix| secret.strip_prefix(prefix.as_bytes()));
    let generic = || {
        let at = secret.iter().position(|&b| b == b'_')?;
        Some(&secret[at + 1..])
    };
    let bytes = known.or_else(generic)?.to_vec();
    Some(Variant {
        label: "secret with a prefix",
        detail: "the signature matches the secret without its prefix (such as whsec_): the \
                 key is the secret exactly as Print.one shows it, nothing added",
        bytes,
    })
}

fn prefixed(secret: &[u8]) -> impl Iterator<Item = Variant> + '_ {
    PREFIXES.iter().map(move |prefix| Variant {
        label: "secret with a prefix",
        detail: "the signature matches the secret with a prefix (such as whsec_) in front: \
                 the signer's copy of the secret carries one; the key is the secret exactly as \
                 Print.one shows it, nothing added",
        bytes: [prefix.as_bytes(), secret].concat(),
    })
}

fn decoded_secrets(secret: &[u8]) -> Vec<Variant> {
    let base64 = STANDARD.decode(secret).ok().map(|bytes| Variant {
        label: "base64-decoded secret",
        detail: "the signature was made with the base64-decoded secret: the key is the \
                 secret's text as given, never decoded",
        bytes,
    });
    let hex = std::str::from_utf8(secret)
        .ok()
        .and_then(decode_hex)
        .map(|bytes| Variant {
            label: "hex-decoded secret",
            detail: "the signature was made with the hex-decoded secret: the key is the \
                     secret's text as given, never decoded",
            bytes,
        });
    base64
        .into_iter()
        .chain(hex)
        .filter(|v| !v.bytes.is_empty())
        .collect()
}

/// What is odd about the body or the secret even though undoing it did not help.
fn noticed_inputs(secret: &[u8], body: &[u8]) -> Vec<Finding> {
    let mut noticed = Vec::new();
    if body.last().is_some_and(u8::is_ascii_whitespace) {
        noticed.push(Finding::possible(
            "trailing newline in the body",
            "the body ends with whitespace, which Print.one's bodies never do",
        ));
    }
    if json::minify(body).is_some_and(|compact| compact != body) {
        noticed.push(Finding::possible(
            "pretty-printed body",
            "the body has whitespace between JSON tokens; Print.one sends compact JSON, so \
             this is probably not the body as received",
        ));
    }
    if secret.trim_ascii().len() < secret.len() {
        noticed.push(Finding::possible(
            "whitespace in the secret",
            "the secret has leading or trailing whitespace; it is used as given",
        ));
    }
    noticed
}

/// Decodes an even-length hex string.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 2 == 1 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use printone_webhooks::sign;

    use super::*;

    const SECRET: &[u8] = b"pO1_webhook_7f3KqV9xLm2Rt8Wz4Nc6Hb";
    const BODY: &[u8] = r#"{"data":{"id":"cpc_1","city":"Zürich"},"event":"coupon_code_used","created_at":"2024-06-04T07:45:19.658Z"}"#.as_bytes();

    fn signature(secret: &[u8], body: &[u8]) -> String {
        sign(&Secret::new(secret).unwrap(), body)
    }

    fn labels(secret: &[u8], body: &[u8], pairs: &[(&HeaderName, &str)]) -> Vec<&'static str> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        diagnose(secret, body, &headers)
            .into_iter()
            .filter(|finding| finding.confirmed)
            .map(|finding| finding.label)
            .collect()
    }

    fn labels_for(secret: &[u8], body: &[u8], value: &str) -> Vec<&'static str> {
        labels(secret, body, &[(&SIGNATURE_HEADER, value)])
    }

    fn hex(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        bytes
            .iter()
            .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
            .map(char::from)
            .collect()
    }

    #[test]
    fn finds_a_hex_signature() {
        let mac = Signature::parse(signature(SECRET, BODY)).unwrap();
        assert_eq!(
            labels_for(SECRET, BODY, &hex(mac.as_bytes())),
            ["hex signature"]
        );
    }

    #[test]
    fn finds_url_safe_base64_and_missing_padding() {
        // Find a body whose signature contains + or / so that the URL-safe form differs.
        let body = (0..1000)
            .map(|n| format!("{{\"n\":{n}}}"))
            .find(|body| signature(SECRET, body.as_bytes()).contains(['+', '/']))
            .unwrap();
        let value = signature(SECRET, body.as_bytes());
        let url_safe = value.replace('+', "-").replace('/', "_");
        assert_eq!(
            labels_for(SECRET, body.as_bytes(), &url_safe),
            ["URL-safe base64"]
        );
        assert_eq!(
            labels_for(SECRET, body.as_bytes(), value.trim_end_matches('=')),
            ["missing base64 padding"]
        );
    }

    #[test]
    fn finds_conflicting_old_and_new_headers() {
        let right = signature(SECRET, BODY);
        let wrong = signature(b"other", BODY);
        let found = labels(
            SECRET,
            BODY,
            &[
                (&SIGNATURE_HEADER, &wrong),
                (&LEGACY_SIGNATURE_HEADER, &right),
            ],
        );
        assert_eq!(found, ["conflicting signature headers"]);
    }

    #[test]
    fn finds_the_signature_under_another_header() {
        let name = HeaderName::from_static("x-printone-signature");
        let found = labels(SECRET, BODY, &[(&name, &signature(SECRET, BODY))]);
        assert_eq!(found, ["signature under another header"]);
    }

    #[test]
    fn finds_a_trailing_newline_in_the_body() {
        let value = signature(SECRET, BODY);
        let captured = [BODY, b"\n"].concat();
        assert_eq!(
            labels_for(SECRET, &captured, &value),
            ["trailing newline in the body"]
        );
    }

    #[test]
    fn finds_a_pretty_printed_body() {
        let value = signature(SECRET, BODY);
        let pretty = json::pretty(BODY).unwrap();
        assert_eq!(
            labels_for(SECRET, pretty.as_bytes(), &value),
            ["pretty-printed body"]
        );
    }

    #[test]
    fn finds_a_re_serialised_body() {
        let value = signature(SECRET, BODY);
        let escaped = String::from_utf8(BODY.to_vec())
            .unwrap()
            .replace('ü', "\\u00fc");
        assert_eq!(
            labels_for(SECRET, escaped.as_bytes(), &value),
            ["re-serialised body"]
        );
    }

    #[test]
    fn finds_whitespace_and_prefixes_in_the_secret() {
        let value = signature(SECRET, BODY);
        let padded = [SECRET, b"\n"].concat();
        assert_eq!(
            labels_for(&padded, BODY, &value),
            ["whitespace in the secret"]
        );
        let prefixed = [b"whsec_".as_slice(), SECRET].concat();
        assert_eq!(
            labels_for(&prefixed, BODY, &value),
            ["secret with a prefix"]
        );
    }

    #[test]
    fn finds_a_secret_that_was_decoded() {
        let text = b"c2VjcmV0LWtleS1ieXRlcw==";
        let value = signature(b"secret-key-bytes", BODY);
        assert_eq!(labels_for(text, BODY, &value), ["base64-decoded secret"]);
    }

    #[test]
    fn a_different_secret_is_not_explained_away() {
        let value = signature(b"another-secret", BODY);
        let findings = diagnose(SECRET, BODY, &{
            let mut headers = HeaderMap::new();
            headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&value).unwrap());
            headers
        });
        assert!(findings.iter().all(|finding| !finding.confirmed));
        assert_eq!(findings.last().unwrap().label, "different body or secret");
    }

    #[test]
    fn findings_never_contain_the_secret() {
        let prefixed = [b"whsec_".as_slice(), SECRET].concat();
        let value = signature(SECRET, BODY);
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&value).unwrap());
        for finding in diagnose(&prefixed, BODY, &headers) {
            assert!(!finding.to_string().contains("7f3KqV9x"), "{finding}");
        }
    }

    #[test]
    fn decodes_hex_strictly() {
        assert_eq!(decode_hex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0af"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex(""), None);
    }
}
