//! Property tests of the framework-free core, through the public API: signing and verifying
//! round-trip for any body and secret, a single flipped bit anywhere is refused, rotation
//! reports the matching secret, and header parsing never panics on arbitrary bytes.

use http::{HeaderMap, HeaderValue};
use printone_webhooks::{
    sign, sign_raw, ErrorKind, Secret, Signature, Verifier, LEGACY_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
};
use proptest::{collection::vec, prelude::*};

fn body() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..2048)
}

fn secret_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..96)
}

fn headers_with(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(signature).expect("base64 is a valid header value"),
    );
    headers
}

fn secret(bytes: &[u8]) -> Secret {
    Secret::new(bytes).expect("the strategy never yields an empty secret")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sign_then_verify_accepts_any_body_and_secret(body in body(), key in secret_bytes()) {
        let key = secret(&key);
        let headers = headers_with(&sign(&key, &body));
        let verified = Verifier::new(key).verify(&headers, &body);
        prop_assert_eq!(verified.map(|v| v.secret_index()).ok(), Some(0));
    }

    #[test]
    fn any_single_bit_flip_in_the_body_is_refused(
        body in vec(any::<u8>(), 1..2048),
        key in secret_bytes(),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let key = secret(&key);
        let headers = headers_with(&sign(&key, &body));
        let mut tampered = body.clone();
        tampered[position.index(body.len())] ^= 1 << bit;
        let error = Verifier::new(key).verify(&headers, &tampered).unwrap_err();
        prop_assert_eq!(error.kind(), ErrorKind::SignatureMismatch);
    }

    #[test]
    fn any_single_bit_flip_in_the_signature_is_refused(
        body in body(),
        key in secret_bytes(),
        position in 0usize..32,
        bit in 0u8..8,
    ) {
        let key = secret(&key);
        let mut mac = *sign_raw(&key, &body).as_bytes();
        mac[position] ^= 1 << bit;
        let headers = headers_with(&Signature::from_bytes(mac).to_base64());
        let error = Verifier::new(key).verify(&headers, &body).unwrap_err();
        prop_assert_eq!(error.kind(), ErrorKind::SignatureMismatch);
    }

    #[test]
    fn rotation_accepts_every_configured_secret_and_reports_which(
        keys in vec(secret_bytes(), 1..6),
        pick in any::<prop::sample::Index>(),
        body in body(),
    ) {
        let secrets: Vec<Secret> = keys.iter().map(|k| secret(k)).collect();
        let chosen = pick.index(keys.len());
        let headers = headers_with(&sign(&secrets[chosen], &body));
        let verifier = Verifier::with_secrets(secrets).expect("at least one secret");
        // Equal secrets may repeat in the list: the first equal one is reported.
        let first_equal = keys.iter().position(|k| *k == keys[chosen]);
        let reported = verifier.verify(&headers, &body).map(|v| v.secret_index()).ok();
        prop_assert_eq!(reported, first_equal);
    }

    #[test]
    fn a_secret_not_in_the_list_is_refused(
        keys in vec(secret_bytes(), 1..4),
        other in secret_bytes(),
        body in body(),
    ) {
        prop_assume!(!keys.contains(&other));
        let verifier = Verifier::with_secrets(keys.iter().map(|k| secret(k))).expect("secrets");
        let headers = headers_with(&sign(&secret(&other), &body));
        let error = verifier.verify(&headers, &body).unwrap_err();
        prop_assert_eq!(error.kind(), ErrorKind::SignatureMismatch);
    }

    #[test]
    fn streaming_in_any_split_equals_one_shot(
        body in body(),
        key in secret_bytes(),
        cuts in vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let key = secret(&key);
        let signature = sign_raw(&key, &body);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut verification = Verifier::new(key).begin(signature);
        let mut start = 0;
        for cut in cuts.into_iter().chain([body.len()]) {
            verification.update(&body[start..cut]);
            start = cut;
        }
        prop_assert!(verification.finish().is_ok());
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics_and_accepts_only_canonical_values(
        value in vec(any::<u8>(), 0..96),
    ) {
        if let Ok(signature) = Signature::parse(&value) {
            let canonical = signature.to_base64();
            prop_assert_eq!(value.trim_ascii(), canonical.as_bytes());
        }
    }

    #[test]
    fn near_misses_of_a_valid_value_never_panic(
        mac in any::<[u8; 32]>(),
        position in 0usize..44,
        byte in any::<u8>(),
    ) {
        let mut value = Signature::from_bytes(mac).to_base64().into_bytes();
        value[position] = byte;
        if let Ok(signature) = Signature::parse(&value) {
            let canonical = signature.to_base64();
            prop_assert_eq!(canonical.as_bytes(), value.as_slice());
        }
    }

    #[test]
    fn header_sets_of_arbitrary_bytes_never_panic(
        values in vec((any::<bool>(), vec(any::<u8>(), 0..64)), 0..6),
        body in body(),
    ) {
        let mut headers = HeaderMap::new();
        for (legacy, value) in &values {
            let name = if *legacy { LEGACY_SIGNATURE_HEADER } else { SIGNATURE_HEADER };
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append(name, value);
            }
        }
        let verifier = Verifier::new(secret(b"s3cr3t"));
        if let Err(error) = verifier.verify(&headers, &body) {
            prop_assert!(error.kind().is_authentication());
        }
    }
}
