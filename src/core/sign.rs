//! Signing bodies, for tests, local tools and senders.

use crate::{core::secret::Secret, core::signature::Signature};

/// Signs `body` the way Print.one does: standard, padded base64 of HMAC-SHA256 keyed with the
/// secret, over the exact bytes.
///
/// The result is the value of the [`SIGNATURE_HEADER`](crate::SIGNATURE_HEADER).
///
/// # Examples
///
/// ```
/// use printone_webhooks::{sign, Secret};
///
/// let secret = Secret::new("my-webhook-secret")?;
/// let signature = sign(&secret, b"{}");
/// assert_eq!(signature.len(), 44);
/// assert!(signature.ends_with('='));
/// # Ok::<(), printone_webhooks::ConfigError>(())
/// ```
#[must_use]
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    sign_raw(secret, body).to_base64()
}

/// Signs `body` and returns the decoded [`Signature`].
#[must_use]
pub fn sign_raw(secret: &Secret, body: &[u8]) -> Signature {
    Signature::from_bytes(secret.mac_of(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_4231_CASE_2: &str =
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn matches_rfc_4231_test_case_2() {
        // RFC 4231, 4.3: key "Jefe", data "what do ya want for nothing?".
        let secret = Secret::new("Jefe").unwrap();
        let mac = sign_raw(&secret, b"what do ya want for nothing?");
        let expected: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&RFC_4231_CASE_2[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(mac.as_bytes().as_slice(), expected);
    }

    #[test]
    fn signs_as_standard_base64_with_padding() {
        let secret = Secret::new("Jefe").unwrap();
        assert_eq!(
            sign(&secret, b"what do ya want for nothing?"),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }
}
