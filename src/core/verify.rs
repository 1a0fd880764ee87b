//! The framework-free verifier: one or more secrets, streaming or one-shot.

use std::sync::Arc;

use http::HeaderMap;

use crate::{
    core::error::{ConfigError, ErrorKind, VerifyError},
    core::freshness::Freshness,
    core::mac::Mac,
    core::secret::Secret,
    core::signature::Signature,
};

/// Verifies Print.one signatures against one or more secrets.
///
/// More than one secret supports rotation: configure the new secret next to the old one, switch
/// Print.one over, then drop the old one. Secrets are tried in the order given and
/// [`Verified::secret_index`] says which one matched. Cloning is cheap (the secrets are shared).
///
/// # Security
///
/// The MAC is compared with the decoded signature in constant time (`hmac::Mac::verify_slice`,
/// or `subtle` over ring's tag with the `ring` feature). The signature is
/// decoded strictly before any comparison.
///
/// # Examples
///
/// ```
/// use http::HeaderMap;
/// use printone_webhooks::{sign, Secret, Verifier, SIGNATURE_HEADER};
///
/// let secret = Secret::new("my-webhook-secret")?;
/// let body = br#"{"data":{"id":"ord_1"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;
/// let mut headers = HeaderMap::new();
/// headers.insert(SIGNATURE_HEADER, sign(&secret, body).parse()?);
///
/// let verifier = Verifier::new(secret);
/// assert_eq!(verifier.verify(&headers, body)?.secret_index(), 0);
/// assert!(verifier.verify(&headers, b"tampered").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Arc<[Secret]>,
    freshness: Option<Freshness>,
}

impl Verifier {
    /// A verifier with a single secret.
    #[must_use]
    pub fn new(secret: Secret) -> Self {
        Self {
            secrets: Arc::from([secret]),
            freshness: None,
        }
    }

    /// A verifier trying several secrets in order (rotation).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecrets`] when `secrets` is empty.
    pub fn with_secrets(secrets: impl IntoIterator<Item = Secret>) -> Result<Self, ConfigError> {
        let secrets: Arc<[Secret]> = secrets.into_iter().collect();
        if secrets.is_empty() {
            return Err(ConfigError::NoSecrets);
        }
        Ok(Self {
            secrets,
            freshness: None,
        })
    }

    /// Also refuses authentic deliveries whose signed `created_at` is not fresh
    /// ([`ErrorKind::Stale`]). Off by default: see [`Freshness`].
    #[must_use]
    pub fn with_freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = Some(freshness);
        self
    }

    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // used by the adapters' intake
    pub(crate) fn freshness(&self) -> Option<&Freshness> {
        self.freshness.as_ref()
    }

    /// Applies the freshness check, when configured, to an authentic body.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Stale`] as for [`Freshness::check`].
    pub fn check_freshness(&self, body: &[u8]) -> Result<(), VerifyError> {
        self.freshness
            .as_ref()
            .map_or(Ok(()), |freshness| freshness.check(body))
    }

    /// The number of configured secrets.
    #[must_use]
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// Verifies a whole body against the signature in `headers`.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] of kind missing, malformed, ambiguous (see [`Signature::from_headers`]),
    /// [`ErrorKind::SignatureMismatch`], or [`ErrorKind::Stale`] when the freshness check is on.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, VerifyError> {
        self.verify_signature(Signature::from_headers(headers)?, body)
    }

    /// Verifies a whole body against an already parsed signature.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SignatureMismatch`] when no secret produces `signature`, and
    /// [`ErrorKind::Stale`] when the freshness check is on and fails.
    pub fn verify_signature(
        &self,
        signature: Signature,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        let mut verification = self.begin(signature);
        verification.update(body);
        let verified = verification.finish()?;
        self.check_freshness(body)?;
        Ok(verified)
    }

    /// Starts a streaming verification: feed the body with [`Verification::update`] as it
    /// arrives, then call [`Verification::finish`] and, with the whole body,
    /// [`Verifier::check_freshness`]. The body is never walked twice.
    #[must_use]
    pub fn begin(&self, signature: Signature) -> Verification {
        let mut macs = self.secrets.iter().map(Secret::mac);
        let first = macs.next().unwrap_or_else(|| self.secrets[0].mac());
        Verification {
            signature,
            first,
            rest: macs.collect(),
        }
    }
}

/// A verification in progress: MAC states for every secret, fed chunk by chunk.
#[derive(Clone)]
pub struct Verification {
    signature: Signature,
    first: Mac,
    rest: Vec<Mac>,
}

impl Verification {
    /// Feeds the next chunk of the raw body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.first.update(chunk);
        for mac in &mut self.rest {
            mac.update(chunk);
        }
    }

    /// Finishes and compares, in constant time, with the claimed signature.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SignatureMismatch`] when no secret produced the signature.
    pub fn finish(self) -> Result<Verified, VerifyError> {
        let expected = self.signature.as_bytes();
        std::iter::once(self.first)
            .chain(self.rest)
            .position(|mac| mac.verify(expected))
            .map(|secret_index| Verified {
                signature: self.signature,
                secret_index,
            })
            .ok_or(VerifyError::new(
                ErrorKind::SignatureMismatch,
                "signature does not match the body",
            ))
    }

    /// The signature being checked.
    #[must_use]
    pub const fn signature(&self) -> &Signature {
        &self.signature
    }
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("signature", &self.signature)
            .field("secrets", &(1 + self.rest.len()))
            .finish_non_exhaustive()
    }
}

/// Proof that a body carried a valid signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    signature: Signature,
    secret_index: usize,
}

impl Verified {
    /// The proof a store keeps for a delivery it verified before.
    #[cfg(feature = "worker")]
    pub(crate) const fn restored(signature: Signature, secret_index: usize) -> Self {
        Self {
            signature,
            secret_index,
        }
    }

    /// The index of the secret that matched, in the order given to the [`Verifier`].
    #[must_use]
    pub const fn secret_index(&self) -> usize {
        self.secret_index
    }

    /// The verified signature, which is the MAC of the exact body and so identifies it.
    #[must_use]
    pub const fn signature(&self) -> &Signature {
        &self.signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        sign,
        test_vectors::{self, Vector},
        LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER,
    };
    use http::{HeaderName, HeaderValue};

    const BODY: &[u8] = br#"{"data":{"id":"ord_1","status":"order_created"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;

    fn secret(value: &str) -> Secret {
        Secret::new(value).unwrap()
    }

    fn signed(secret: &Secret, header: HeaderName, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header, HeaderValue::from_str(&sign(secret, body)).unwrap());
        headers
    }

    fn outcome_of(vector: &Vector) -> (String, Option<usize>) {
        let secrets: Result<Vec<_>, _> = vector.secrets.iter().map(Secret::new).collect();
        let Ok(secrets) = secrets else {
            return ("empty_secret".into(), None);
        };
        let verifier = Verifier::with_secrets(secrets).unwrap();
        match verifier.verify(&vector.header_map(), vector.body.as_bytes()) {
            Ok(accepted) => ("valid".into(), Some(accepted.secret_index())),
            Err(error) => {
                let outcome = match error.kind() {
                    ErrorKind::MissingSignature => "missing",
                    ErrorKind::MalformedSignature => "malformed",
                    ErrorKind::AmbiguousSignature => "ambiguous",
                    ErrorKind::SignatureMismatch => "mismatch",
                    other => other.as_str(),
                };
                (outcome.into(), None)
            }
        }
    }

    #[test]
    fn every_vector_in_the_shared_file_gives_its_expected_outcome() {
        let vectors = test_vectors::all();
        assert!(vectors.len() >= 20);
        for vector in &vectors {
            let expected = (
                vector.expected.outcome.clone(),
                vector.expected.matched_secret,
            );
            assert_eq!(outcome_of(vector), expected, "vector {}", vector.name);
        }
    }

    #[test]
    fn accepts_a_body_signed_with_the_secret() {
        let key = secret("s3cr3t");
        let headers = signed(&key, SIGNATURE_HEADER, BODY);
        assert_eq!(
            Verifier::new(key)
                .verify(&headers, BODY)
                .unwrap()
                .secret_index(),
            0
        );
    }

    #[test]
    fn accepts_the_legacy_header_name() {
        let key = secret("s3cr3t");
        let headers = signed(&key, LEGACY_SIGNATURE_HEADER, BODY);
        assert!(Verifier::new(key).verify(&headers, BODY).is_ok());
    }

    #[test]
    fn rejects_a_tampered_body() {
        let key = secret("s3cr3t");
        let headers = signed(&key, SIGNATURE_HEADER, BODY);
        let mut tampered = BODY.to_vec();
        tampered[20] ^= 1;
        let error = Verifier::new(key).verify(&headers, &tampered).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::SignatureMismatch);
    }

    #[test]
    fn rejects_signature_from_other_secret() {
        let headers = signed(&secret("other"), SIGNATURE_HEADER, BODY);
        let error = Verifier::new(secret("s3cr3t"))
            .verify(&headers, BODY)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::SignatureMismatch);
    }

    #[test]
    fn rotation_reports_which_secret_matched() {
        let verifier = Verifier::with_secrets([secret("new"), secret("old")]).unwrap();
        let old = signed(&secret("old"), SIGNATURE_HEADER, BODY);
        let new = signed(&secret("new"), SIGNATURE_HEADER, BODY);
        assert_eq!(verifier.verify(&old, BODY).unwrap().secret_index(), 1);
        assert_eq!(verifier.verify(&new, BODY).unwrap().secret_index(), 0);
        assert_eq!(verifier.secret_count(), 2);
    }

    #[test]
    fn refuses_an_empty_secret_list() {
        assert_eq!(
            Verifier::with_secrets(Vec::new()).unwrap_err(),
            ConfigError::NoSecrets
        );
    }

    #[test]
    fn accepts_an_empty_body() {
        let key = secret("s3cr3t");
        let headers = signed(&key, SIGNATURE_HEADER, b"");
        assert!(Verifier::new(key).verify(&headers, b"").is_ok());
    }

    #[test]
    fn accepts_a_unicode_body_byte_for_byte() {
        let key = secret("s3cr3t");
        let body = "{\"data\":{\"name\":\"Zoë 🚀 Ångström\"}}".as_bytes();
        let headers = signed(&key, SIGNATURE_HEADER, body);
        let verifier = Verifier::new(key);
        assert!(verifier.verify(&headers, body).is_ok());
        let nfd = "{\"data\":{\"name\":\"Zoe\u{308} 🚀 Ångström\"}}".as_bytes();
        assert!(verifier.verify(&headers, nfd).is_err());
    }

    #[test]
    fn streaming_in_any_split_equals_one_shot() {
        let key = secret("s3cr3t");
        let signature = Signature::parse(sign(&key, BODY)).unwrap();
        let verifier = Verifier::new(key);
        for split in [0, 1, 17, 64, BODY.len()] {
            let mut verification = verifier.begin(signature);
            verification.update(&BODY[..split]);
            verification.update(&BODY[split..]);
            assert!(verification.finish().is_ok(), "split at {split}");
        }
    }

    #[test]
    fn the_verified_signature_identifies_the_body() {
        let key = secret("s3cr3t");
        let headers = signed(&key, SIGNATURE_HEADER, BODY);
        let verified = Verifier::new(key).verify(&headers, BODY).unwrap();
        assert_eq!(
            verified.signature(),
            &Signature::from_headers(&headers).unwrap()
        );
    }
}
