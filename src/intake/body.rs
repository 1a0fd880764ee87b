//! Buffering a request body under a size limit, hashing each chunk as it arrives.

use bytes::{Bytes, BytesMut};

use crate::{
    core::error::{BoxError, ErrorKind, VerifyError},
    core::freshness::Freshness,
    core::verify::{Verification, Verified},
};

/// Buffers a body once, bounded, and feeds every chunk to the MAC as it arrives.
///
/// A body that arrives in one frame is kept as that frame's `Bytes`, without copying.
#[derive(Debug)]
pub(crate) struct Accumulator {
    verification: Verification,
    freshness: Option<Freshness>,
    limit: usize,
    capacity_hint: usize,
    buffer: Buffer,
}

#[derive(Debug)]
enum Buffer {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Accumulator {
    pub(crate) fn new(
        verification: Verification,
        freshness: Option<Freshness>,
        limit: usize,
        declared: Option<u64>,
    ) -> Self {
        let capacity_hint = declared
            .and_then(|len| usize::try_from(len).ok())
            .map_or(0, |len| len.min(limit));
        Self {
            verification,
            freshness,
            limit,
            capacity_hint,
            buffer: Buffer::Empty,
        }
    }

    /// Adds the next chunk, refusing it when the body would cross the limit.
    pub(crate) fn push(&mut self, chunk: Bytes) -> Result<(), VerifyError> {
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.len() > self.limit - self.len() {
            return Err(VerifyError::new(
                ErrorKind::BodyTooLarge,
                "body is larger than the configured limit",
            ));
        }
        self.verification.update(&chunk);
        self.buffer = match std::mem::replace(&mut self.buffer, Buffer::Empty) {
            Buffer::Empty => Buffer::One(chunk),
            Buffer::One(first) => {
                let capacity = self.capacity_hint.max(first.len() + chunk.len());
                let mut many = BytesMut::with_capacity(capacity);
                many.extend_from_slice(&first);
                many.extend_from_slice(&chunk);
                Buffer::Many(many)
            }
            Buffer::Many(mut many) => {
                many.extend_from_slice(&chunk);
                Buffer::Many(many)
            }
        };
        Ok(())
    }

    fn len(&self) -> usize {
        match &self.buffer {
            Buffer::Empty => 0,
            Buffer::One(bytes) => bytes.len(),
            Buffer::Many(bytes) => bytes.len(),
        }
    }

    /// Completes the MAC and compares it with the signature.
    pub(crate) fn finish(self) -> Result<(Bytes, Verified), VerifyError> {
        let verified = self.verification.finish()?;
        let body = match self.buffer {
            Buffer::Empty => Bytes::new(),
            Buffer::One(bytes) => bytes,
            Buffer::Many(bytes) => bytes.freeze(),
        };
        if let Some(freshness) = &self.freshness {
            freshness.check(&body)?;
        }
        Ok((body, verified))
    }
}

pub(crate) fn timed_out() -> VerifyError {
    VerifyError::new(
        ErrorKind::BodyTimeout,
        "body did not arrive within the configured deadline",
    )
}

pub(crate) fn read_failed(error: impl Into<BoxError>) -> VerifyError {
    VerifyError::new(ErrorKind::BodyRead, "failed to read the request body").with_source(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sign_raw, Secret, Verifier};

    fn accumulator_for(body: &[u8], limit: usize) -> Accumulator {
        let secret = Secret::new("s3cr3t").unwrap();
        let signature = sign_raw(&secret, body);
        Accumulator::new(Verifier::new(secret).begin(signature), None, limit, None)
    }

    #[test]
    fn a_single_chunk_is_kept_without_copying() {
        let body = Bytes::from_static(b"{\"event\":\"x\"}");
        let mut accumulator = accumulator_for(&body, 1024);
        accumulator.push(body.clone()).unwrap();
        let (kept, _) = accumulator.finish().unwrap();
        assert_eq!(kept.as_ptr(), body.as_ptr());
    }

    #[test]
    fn many_chunks_are_joined_in_order() {
        let mut accumulator = accumulator_for(b"abcdef", 1024);
        for chunk in [&b"ab"[..], b"", b"cd", b"ef"] {
            accumulator.push(Bytes::copy_from_slice(chunk)).unwrap();
        }
        let (body, _) = accumulator.finish().unwrap();
        assert_eq!(body.as_ref(), b"abcdef");
    }

    #[test]
    fn a_body_exactly_at_the_limit_is_accepted() {
        let mut accumulator = accumulator_for(b"12345678", 8);
        accumulator.push(Bytes::from_static(b"1234")).unwrap();
        accumulator.push(Bytes::from_static(b"5678")).unwrap();
        assert!(accumulator.finish().is_ok());
    }

    #[test]
    fn a_chunk_crossing_the_limit_is_refused() {
        let mut accumulator = accumulator_for(b"123456789", 8);
        accumulator.push(Bytes::from_static(b"1234")).unwrap();
        let error = accumulator.push(Bytes::from_static(b"56789")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BodyTooLarge);
    }

    #[test]
    fn a_wrong_body_is_a_mismatch_after_buffering() {
        let mut accumulator = accumulator_for(b"expected", 1024);
        accumulator.push(Bytes::from_static(b"received")).unwrap();
        assert_eq!(
            accumulator.finish().unwrap_err().kind(),
            ErrorKind::SignatureMismatch
        );
    }
}
