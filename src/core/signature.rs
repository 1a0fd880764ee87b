//! The signature headers and the strict parsing of their value.

use std::fmt;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use http::{HeaderMap, HeaderName};

use crate::core::error::{ErrorKind, VerifyError};

/// The header Print.one signs deliveries with: `x-webhook-hmac-sha256`.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-webhook-hmac-sha256");

/// The older documented name of the signature header: `x-printone-hmac-sha256`.
///
/// It is accepted like [`SIGNATURE_HEADER`]. When both are present they must carry the same
/// value.
pub const LEGACY_SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-printone-hmac-sha256");

/// The header naming the trigger, `x-printone-event`. It is **not** signed: use it for routing
/// hints and logs only; the signed body's `event` field is authoritative.
pub const EVENT_HEADER: HeaderName = HeaderName::from_static("x-printone-event");

/// The alternative name of the trigger header, `x-webhook-event`, also unsigned.
pub const WEBHOOK_EVENT_HEADER: HeaderName = HeaderName::from_static("x-webhook-event");

/// Length of a signature: standard, padded base64 of 32 bytes.
const ENCODED_LEN: usize = 44;

/// A decoded signature: the 32-byte HMAC-SHA256 a delivery claims.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 32]);

impl Signature {
    /// Finds the one signature a request carries, under either header name.
    ///
    /// Every value of both [`SIGNATURE_HEADER`] and [`LEGACY_SIGNATURE_HEADER`] is read and
    /// trimmed of surrounding spaces and tabs; identical repeats are fine.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::MissingSignature`] when neither header is present,
    /// [`ErrorKind::AmbiguousSignature`] when two values differ, and
    /// [`ErrorKind::MalformedSignature`] as for [`Signature::parse`].
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, VerifyError> {
        Self::parse(single_value(headers)?)
    }

    /// Parses one header value: exactly 44 characters of standard base64 with padding,
    /// canonical, decoding to 32 bytes. Surrounding spaces and tabs are ignored.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::MalformedSignature`], with a reason naming the likely mistake (hex,
    /// URL-safe alphabet, missing padding, wrong length).
    pub fn parse(value: impl AsRef<[u8]>) -> Result<Self, VerifyError> {
        let value = trim(value.as_ref());
        // The common case first: the shape checks below only find the words for a refusal.
        if value.len() == ENCODED_LEN {
            if let Ok(signature) = decode(value) {
                return Ok(signature);
            }
        }
        check_shape(value)?;
        decode(value)
    }

    /// Wraps a raw 32-byte MAC.
    #[must_use]
    pub const fn from_bytes(mac: [u8; 32]) -> Self {
        Self(mac)
    }

    /// The 32 decoded bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The header value: standard base64 with padding.
    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// The single value carried by either signature header.
///
/// One pass over the headers: a request carries a handful, and comparing names is cheaper than
/// hashing both signature header names for two lookups.
fn single_value(headers: &HeaderMap) -> Result<&[u8], VerifyError> {
    let values = headers
        .iter()
        .filter(|(name, _)| **name == SIGNATURE_HEADER || **name == LEGACY_SIGNATURE_HEADER)
        .map(|(_, value)| trim(value.as_bytes()));
    let mut found: Option<&[u8]> = None;
    for value in values {
        match found {
            Some(first) if first != value => {
                return Err(VerifyError::new(
                    ErrorKind::AmbiguousSignature,
                    "signature headers carry different values",
                ));
            }
            _ => found = Some(value),
        }
    }
    found.ok_or(VerifyError::new(
        ErrorKind::MissingSignature,
        "missing signature header x-webhook-hmac-sha256",
    ))
}

/// Decodes standard padded base64 that must carry exactly 32 bytes.
fn decode(value: &[u8]) -> Result<Signature, VerifyError> {
    let mut decoded = [0u8; ENCODED_LEN / 4 * 3];
    match STANDARD.decode_slice(value, &mut decoded) {
        Ok(32) => {
            let mut mac = [0u8; 32];
            mac.copy_from_slice(&decoded[..32]);
            Ok(Signature(mac))
        }
        Ok(_) => Err(malformed("signature does not decode to 32 bytes")),
        Err(_) => Err(malformed("signature is not valid standard base64")),
    }
}

/// Rejects the common wrong encodings with a reason that names them.
fn check_shape(value: &[u8]) -> Result<(), VerifyError> {
    if value.is_empty() {
        return Err(malformed("signature header is empty"));
    }
    if value.len() == 64 && value.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed("signature looks like hex; expected base64"));
    }
    if value.iter().any(|b| matches!(b, b'-' | b'_')) {
        return Err(malformed(
            "signature uses the URL-safe base64 alphabet; expected the standard one",
        ));
    }
    if value.len() == ENCODED_LEN - 1 && !value.contains(&b'=') {
        return Err(malformed("signature is missing its base64 padding"));
    }
    if value.len() != ENCODED_LEN {
        return Err(malformed(
            "signature has the wrong length; expected 44 base64 characters",
        ));
    }
    Ok(())
}

fn malformed(reason: &'static str) -> VerifyError {
    VerifyError::new(ErrorKind::MalformedSignature, reason)
}

fn trim(value: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t');
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const VALID: &str = "NrLaUnvYTFlo0vYh4oP+27lY5FCLAhmPwDsT5Ebi6uA=";

    fn headers(pairs: &[(&HeaderName, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    fn kind_of(result: Result<Signature, VerifyError>) -> ErrorKind {
        result.expect_err("expected a rejection").kind()
    }

    #[test]
    fn parses_standard_padded_base64_of_32_bytes() {
        let signature = Signature::parse(VALID).unwrap();
        assert_eq!(signature.to_base64(), VALID);
        assert_eq!(signature.as_bytes().len(), 32);
    }

    #[test]
    fn ignores_surrounding_spaces_and_tabs() {
        let signature = Signature::parse(format!(" \t{VALID}  ")).unwrap();
        assert_eq!(signature.to_string(), VALID);
    }

    #[test]
    fn rejects_hex_with_a_reason_naming_hex() {
        let hex = "36b2da527bd84c5968d2f621e283fedbb958e4508b02198fc03b13e446e2eae0";
        let error = Signature::parse(hex).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MalformedSignature);
        assert!(error.reason().contains("hex"));
    }

    #[test]
    fn rejects_url_safe_alphabet() {
        let url_safe = VALID.replace('+', "-");
        let error = Signature::parse(url_safe).unwrap_err();
        assert!(error.reason().contains("URL-safe"));
    }

    #[test]
    fn rejects_missing_padding() {
        let error = Signature::parse(VALID.trim_end_matches('=')).unwrap_err();
        assert!(error.reason().contains("padding"));
    }

    #[test]
    fn rejects_wrong_lengths_and_garbage() {
        for value in ["", "abc", &VALID[..40], &format!("{VALID}AAAA"), "!!!!"] {
            assert_eq!(
                kind_of(Signature::parse(value)),
                ErrorKind::MalformedSignature,
                "{value:?}"
            );
        }
    }

    #[test]
    fn rejects_44_characters_that_decode_to_31_bytes() {
        let short = format!("{}==", &VALID[..42]);
        assert_eq!(
            kind_of(Signature::parse(short)),
            ErrorKind::MalformedSignature
        );
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // 'B' before '=' sets bits that padding says must be zero.
        let non_canonical = format!("{}B=", &VALID[..42]);
        assert_eq!(
            kind_of(Signature::parse(non_canonical)),
            ErrorKind::MalformedSignature
        );
    }

    #[test]
    fn rejects_non_ascii_bytes() {
        let mut bytes = VALID.as_bytes().to_vec();
        bytes[3] = 0xC3;
        assert_eq!(
            kind_of(Signature::parse(bytes)),
            ErrorKind::MalformedSignature
        );
    }

    #[test]
    fn reads_the_current_header_name() {
        let map = headers(&[(&SIGNATURE_HEADER, VALID.as_bytes())]);
        assert_eq!(Signature::from_headers(&map).unwrap().to_string(), VALID);
    }

    #[test]
    fn reads_the_legacy_header_name() {
        let map = headers(&[(&LEGACY_SIGNATURE_HEADER, VALID.as_bytes())]);
        assert_eq!(Signature::from_headers(&map).unwrap().to_string(), VALID);
    }

    #[test]
    fn accepts_both_names_when_they_agree() {
        let map = headers(&[
            (&SIGNATURE_HEADER, VALID.as_bytes()),
            (&LEGACY_SIGNATURE_HEADER, format!(" {VALID}").as_bytes()),
        ]);
        assert!(Signature::from_headers(&map).is_ok());
    }

    #[test]
    fn rejects_both_names_with_different_values() {
        let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let map = headers(&[
            (&SIGNATURE_HEADER, VALID.as_bytes()),
            (&LEGACY_SIGNATURE_HEADER, other.as_bytes()),
        ]);
        assert_eq!(
            kind_of(Signature::from_headers(&map)),
            ErrorKind::AmbiguousSignature
        );
    }

    #[test]
    fn rejects_a_repeated_header_with_different_values() {
        let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let map = headers(&[
            (&SIGNATURE_HEADER, VALID.as_bytes()),
            (&SIGNATURE_HEADER, other.as_bytes()),
        ]);
        assert_eq!(
            kind_of(Signature::from_headers(&map)),
            ErrorKind::AmbiguousSignature
        );
    }

    #[test]
    fn accepts_a_repeated_header_with_identical_values() {
        let map = headers(&[
            (&SIGNATURE_HEADER, VALID.as_bytes()),
            (&SIGNATURE_HEADER, VALID.as_bytes()),
        ]);
        assert!(Signature::from_headers(&map).is_ok());
    }

    #[test]
    fn reports_a_missing_header() {
        let map = headers(&[(&EVENT_HEADER, b"order_status_update")]);
        assert_eq!(
            kind_of(Signature::from_headers(&map)),
            ErrorKind::MissingSignature
        );
    }

    #[test]
    fn an_empty_header_value_is_malformed_not_missing() {
        let map = headers(&[(&SIGNATURE_HEADER, b"")]);
        assert_eq!(
            kind_of(Signature::from_headers(&map)),
            ErrorKind::MalformedSignature
        );
    }
}
