//! HMAC-SHA256, the one place that knows which crypto backend is active.
//!
//! The pure-Rust `hmac` + `sha2` pair (`RustCrypto`) is the default. The `ring` feature switches
//! to ring's assembly; the pure-Rust pair stays compiled either way (it is small) so the two can be
//! checked against each other. There is only one optional backend, so `--all-features` means ring.

/// The name of the active backend (the tests check that `ring` wins when it is enabled).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const BACKEND: &str = if cfg!(feature = "ring") {
    "ring"
} else {
    "rustcrypto"
};

/// The length of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

/// A pre-keyed HMAC-SHA256: the key schedule is computed once, each message starts from a copy.
#[derive(Clone)]
pub(crate) struct Key(backend::Key);

/// One message being authenticated.
#[derive(Clone)]
pub(crate) struct Mac(backend::Mac);

impl Key {
    /// Keys HMAC-SHA256 with `secret` as its bytes (any length; `None` only if the backend
    /// refuses the key, which HMAC never does).
    pub(crate) fn new(secret: &[u8]) -> Option<Self> {
        backend::key(secret).map(Self)
    }

    /// A fresh MAC state for one message.
    pub(crate) fn start(&self) -> Mac {
        Mac(backend::start(&self.0))
    }
}

impl Mac {
    /// Feeds the next part of the message.
    pub(crate) fn update(&mut self, data: &[u8]) {
        backend::update(&mut self.0, data);
    }

    /// The tag of the message.
    pub(crate) fn finalize(self) -> [u8; TAG_LEN] {
        backend::finalize(self.0)
    }

    /// Whether the message's tag equals `expected`, compared in constant time.
    pub(crate) fn verify(self, expected: &[u8; TAG_LEN]) -> bool {
        backend::verify(self.0, expected)
    }
}

#[cfg(not(feature = "ring"))]
use rustcrypto as backend;

#[cfg(feature = "ring")]
use ring_backend as backend;

/// `hmac` 0.13 over `sha2` 0.11 (SHA-NI when the CPU has it, portable code otherwise).
#[cfg_attr(feature = "ring", allow(dead_code))]
mod rustcrypto {
    use hmac::{KeyInit, Mac as _};

    use super::TAG_LEN;

    pub(super) type Key = hmac::Hmac<sha2::Sha256>;
    pub(super) type Mac = Key;

    pub(super) fn key(secret: &[u8]) -> Option<Key> {
        Key::new_from_slice(secret).ok()
    }

    pub(super) fn start(key: &Key) -> Mac {
        key.clone()
    }

    pub(super) fn update(mac: &mut Mac, data: &[u8]) {
        mac.update(data);
    }

    pub(super) fn finalize(mac: Mac) -> [u8; TAG_LEN] {
        mac.finalize().into_bytes().into()
    }

    pub(super) fn verify(mac: Mac, expected: &[u8; TAG_LEN]) -> bool {
        mac.verify_slice(expected).is_ok()
    }
}

/// ring 0.17's `hmac` (assembly SHA-256), compared with `subtle`.
#[cfg(feature = "ring")]
mod ring_backend {
    use ring::hmac;
    use subtle::ConstantTimeEq as _;

    use super::TAG_LEN;

    pub(super) type Key = hmac::Key;
    pub(super) type Mac = hmac::Context;

    #[allow(
        clippy::unnecessary_wraps,
        reason = "the same signature as the RustCrypto backend"
    )]
    pub(super) fn key(secret: &[u8]) -> Option<Key> {
        Some(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    pub(super) fn start(key: &Key) -> Mac {
        hmac::Context::with_key(key)
    }

    pub(super) fn update(mac: &mut Mac, data: &[u8]) {
        mac.update(data);
    }

    pub(super) fn finalize(mac: Mac) -> [u8; TAG_LEN] {
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(mac.sign().as_ref());
        tag
    }

    pub(super) fn verify(mac: Mac, expected: &[u8; TAG_LEN]) -> bool {
        mac.sign().as_ref().ct_eq(expected).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so failures are reproducible without a `rand` crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            usize::try_from(self.next() % bound as u64).unwrap()
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
        }
    }

    fn tag(secret: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let mut mac = Key::new(secret).unwrap().start();
        for part in parts {
            mac.update(part);
        }
        mac.finalize()
    }

    fn hex(tag: &[u8]) -> String {
        tag.iter()
            .fold(String::new(), |hex, b| hex + &format!("{b:02x}"))
    }

    #[test]
    fn the_active_backend_is_ring_exactly_when_the_feature_is_on() {
        let expected = if cfg!(feature = "ring") {
            "ring"
        } else {
            "rustcrypto"
        };
        assert_eq!(BACKEND, expected);
    }

    #[test]
    fn matches_rfc_4231_including_a_key_longer_than_a_block() {
        // RFC 4231 test cases 2 and 6 (131-byte key, hashed first).
        assert_eq!(
            hex(&tag(b"Jefe", &[b"what do ya want for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&tag(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn verify_accepts_only_the_exact_tag() {
        let key = Key::new(b"s3cr3t").unwrap();
        let good = tag(b"s3cr3t", &[b"body"]);
        let mut mac = key.start();
        mac.update(b"body");
        assert!(mac.clone().verify(&good));
        for position in [0, 15, 31] {
            let mut bad = good;
            bad[position] ^= 0x80;
            assert!(!mac.clone().verify(&bad), "flipped byte {position}");
        }
    }

    #[test]
    fn every_shared_vector_signature_is_reproduced() {
        use base64::Engine as _;
        let mut checked = 0;
        for vector in crate::test_vectors::all().iter().filter(|v| v.is_valid()) {
            let secret = &vector.secrets[vector.expected.matched_secret.unwrap()];
            let ours = tag(secret.as_bytes(), &[vector.body.as_bytes()]);
            let claimed = vector.headers.iter().any(|(_, value)| {
                base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .ok()
                    == Some(ours.to_vec())
            });
            assert!(claimed, "vector {}", vector.name);
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} valid vectors");
    }

    /// Under the `ring` feature, the active backend is checked against the pure-Rust one on random
    /// keys, bodies and splits; without it, split updates are checked against one-shot.
    #[test]
    fn backends_agree_on_random_keys_bodies_and_splits() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..500 {
            let key_len = 1 + rng.below(200);
            let secret = rng.bytes(key_len);
            let body_len = match round % 4 {
                0 => rng.below(64),
                1 => rng.below(1024),
                2 => rng.below(70_000),
                _ => 55 + rng.below(20), // around the SHA-256 padding boundary
            };
            let body = rng.bytes(body_len);
            let split = rng.below(body.len() + 1);
            let (head, tail) = body.split_at(split);
            let reference = {
                let mut mac = rustcrypto::start(&rustcrypto::key(&secret).unwrap());
                rustcrypto::update(&mut mac, &body);
                rustcrypto::finalize(mac)
            };
            assert_eq!(
                tag(&secret, &[head, tail]),
                reference,
                "round {round} ({BACKEND}), key {key_len} B, body {body_len} B, split {split}"
            );
            let mut mac = Key::new(&secret).unwrap().start();
            mac.update(&body);
            assert!(mac.verify(&reference), "round {round}");
        }
    }
}
