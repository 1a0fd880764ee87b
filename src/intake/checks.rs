//! The checks every adapter makes before reading a body (method, declared length, signature
//! header), shared by the tower layer and the actix-web extractors so that both refuse the same
//! requests for the same reasons.

use std::time::Duration;

use http::HeaderMap;

use crate::{
    core::error::{ErrorKind, VerifyError},
    core::signature::Signature,
    core::verify::Verifier,
    intake::body::Accumulator,
};

/// The refusal of any method but `POST`.
pub(crate) const fn method_not_allowed() -> VerifyError {
    VerifyError::new(
        ErrorKind::MethodNotAllowed,
        "webhooks are delivered with POST",
    )
}

/// Checks the declared length against `limit`, then the signature header, and starts the
/// bounded, hashing [`Accumulator`] (with the verifier's freshness check, if any).
pub(crate) fn begin(
    verifier: &Verifier,
    limit: usize,
    declared: Option<u64>,
    headers: &HeaderMap,
) -> Result<Accumulator, VerifyError> {
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(VerifyError::new(
            ErrorKind::BodyTooLarge,
            "declared body length is larger than the configured limit",
        ));
    }
    let signature = Signature::from_headers(headers)?;
    let verification = verifier.begin(signature);
    let freshness = verifier.freshness().cloned();
    Ok(Accumulator::new(verification, freshness, limit, declared))
}

/// The `Content-Length` value as a number, `None` when absent or not a number.
pub(crate) fn declared_length(value: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(value?.trim_ascii()).ok()?.parse().ok()
}

/// The `Retry-After` seconds for `retry_after`: whole seconds, at least 1.
pub(crate) fn retry_after_secs(retry_after: Duration) -> u64 {
    retry_after.as_secs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sign, Secret, SIGNATURE_HEADER};
    use bytes::Bytes;

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_the_signature() {
        let verifier = Verifier::new(Secret::new("s3cr3t").unwrap());
        let error = begin(&verifier, 8, Some(9), &HeaderMap::new()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BodyTooLarge);
        let error = begin(&verifier, 8, Some(8), &HeaderMap::new()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingSignature);
    }

    #[test]
    fn begin_verifies_what_it_is_fed() {
        let secret = Secret::new("s3cr3t").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, sign(&secret, b"body").parse().unwrap());
        let mut accumulator = begin(&Verifier::new(secret), 8, None, &headers).unwrap();
        accumulator.push(Bytes::from_static(b"body")).unwrap();
        assert!(accumulator.finish().is_ok());
    }

    #[test]
    fn reads_a_declared_length() {
        assert_eq!(declared_length(Some(b" 42 ")), Some(42));
        assert_eq!(declared_length(Some(b"-1")), None);
        assert_eq!(declared_length(Some(b"4 2")), None);
        assert_eq!(declared_length(None), None);
    }

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero() {
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
