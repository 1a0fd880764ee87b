//! The committed seeds of `corpus/service/`: each is written here in the target's `arbitrary`
//! encoding, and checked to be the committed file, to decode to the input its name describes,
//! and to pass when replayed through [`run`].
//!
//! `SEEDS_WRITE=1 cargo +nightly test -- --test-threads=1` rewrites the files from the inputs
//! below.

use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use http::{header, StatusCode};
use printone_webhooks::{sign, Secret, SIGNATURE_HEADER};

use super::{played, run, Input, Mode, Name, Req, Setup, Step, MAX_STEPS};

const SECRET: &str = "pO1_webhook_7f3KqV9xLm2Rt8Wz4Nc6Hb";
const ORDER: &str = r#"{"data":{"id":"ord_4kR9vT2mXq7LbN3cW8pZ","status":"order_processed"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;

/// Writes values the way `arbitrary` 1.x reads them back (`Unstructured` and the derive).
#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    /// An enum's variant: the derive reads a `u32` and takes `(x * count) >> 32`.
    fn variant(&mut self, index: u32, count: u32) {
        let x = (u64::from(index) << 32).div_ceil(u64::from(count));
        assert_eq!((x * u64::from(count)) >> 32, u64::from(index));
        self.0
            .extend_from_slice(&u32::try_from(x).expect("below 2^32").to_le_bytes());
    }

    /// A `Vec` read with `arbitrary`: a `true` byte before each element, a `false` after.
    fn vec<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        for item in items {
            self.bool(true);
            each(self, item);
        }
        self.bool(false);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.vec(bytes, |e, &b| e.u8(b));
    }

    fn name(&mut self, name: &Name) {
        match name {
            Name::Signature => self.variant(0, 6),
            Name::Legacy => self.variant(1, 6),
            Name::ContentLength => self.variant(2, 6),
            Name::Event => self.variant(3, 6),
            Name::ContentType => self.variant(4, 6),
            Name::Other(bytes) => {
                self.variant(5, 6);
                self.bytes(bytes);
            }
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Data(chunk) => {
                self.variant(0, 7);
                self.bytes(chunk);
            }
            Step::Yield => self.variant(1, 7),
            Step::Wait(ms) => {
                self.variant(2, 7);
                self.u16(*ms);
            }
            Step::Trailers => self.variant(3, 7),
            Step::Error => self.variant(4, 7),
            Step::Stall => self.variant(5, 7),
            Step::Endless => self.variant(6, 7),
        }
    }

    fn req(&mut self, req: &Req) {
        self.u8(req.method);
        self.vec(&req.headers, |e, (name, value)| {
            e.name(name);
            e.bytes(value);
        });
        self.vec(&req.steps, Self::step);
        match req.sign_with {
            None => self.bool(false),
            Some((index, legacy)) => {
                self.bool(true);
                self.u8(index);
                self.bool(legacy);
            }
        }
        self.bool(req.declare_length);
    }

    /// The whole input, read with `arbitrary_take_rest`: its last field, the requests, runs to
    /// the end of the data (each request after a `true` byte).
    fn input(input: &Input) -> Vec<u8> {
        let mut e = Self::default();
        match input.mode {
            Mode::Plain => e.variant(0, 3),
            Mode::Stored(n) => {
                e.variant(1, 3);
                e.u8(n);
            }
            Mode::Stuck(n) => {
                e.variant(2, 3);
                e.u8(n);
            }
        }
        e.vec(&input.secrets, |e, secret| e.bytes(secret));
        e.u16(input.limit);
        e.u16(input.timeout_ms);
        e.bool(input.freshness);
        for req in &input.requests {
            e.bool(true);
            e.req(req);
        }
        e.0
    }
}

fn input(mode: Mode, requests: Vec<Req>) -> Input {
    Input {
        mode,
        secrets: vec![SECRET.as_bytes().to_vec()],
        limit: 2047,
        timeout_ms: 1000,
        freshness: false,
        requests,
    }
}

fn post(headers: Vec<(Name, Vec<u8>)>, steps: Vec<Step>, signed: bool) -> Req {
    Req {
        method: 0,
        headers,
        steps,
        sign_with: signed.then_some((0, false)),
        declare_length: true,
    }
}

fn order_headers() -> Vec<(Name, Vec<u8>)> {
    vec![
        (Name::ContentType, b"application/json".to_vec()),
        (
            Name::Other(b"user-agent".to_vec()),
            b"Print.one Webhook Service".to_vec(),
        ),
        (Name::Event, b"order_status_update".to_vec()),
    ]
}

/// Every committed seed: its file name and the input it holds.
fn seeds() -> Vec<(&'static str, Input)> {
    let secret = Secret::new(SECRET).expect("a secret");
    let order_signature = sign(&secret, ORDER.as_bytes()).into_bytes();
    let mut repeated = order_headers();
    repeated.push((Name::Signature, order_signature.clone()));
    repeated.push((Name::Signature, order_signature));
    // Issue 17: a POST with Content-Length 0, signed over the empty body, whose 67 steps are
    // yields and trailers with an error as step 65. Only the first 64 steps are played, so
    // the service receives a complete, empty, correctly signed body and answers 200: the
    // oracle must judge what is sent, not the steps past the cap.
    let mut capped = vec![Step::Yield; MAX_STEPS];
    capped.extend([Step::Error, Step::Trailers, Step::Yield]);
    vec![
        (
            "empty_body_valid",
            input(Mode::Plain, vec![post(Vec::new(), Vec::new(), true)]),
        ),
        (
            "order_status_update_valid",
            input(
                Mode::Stored(1),
                vec![post(
                    order_headers(),
                    vec![Step::Data(ORDER.as_bytes().to_vec())],
                    true,
                )],
            ),
        ),
        (
            "repeated_header_identical_values_valid",
            input(
                Mode::Stuck(0),
                vec![post(
                    repeated,
                    vec![
                        Step::Data(ORDER.as_bytes()[..40].to_vec()),
                        Step::Yield,
                        Step::Data(ORDER.as_bytes()[40..].to_vec()),
                    ],
                    false,
                )],
            ),
        ),
        (
            "error_past_the_step_cap_valid",
            input(Mode::Plain, vec![post(Vec::new(), capped, true)]),
        ),
    ]
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/service")
        .join(name)
}

fn decode(bytes: &[u8]) -> Input {
    Input::arbitrary_take_rest(Unstructured::new(bytes)).expect("the seed decodes")
}

#[test]
fn every_seed_is_the_committed_file_and_decodes_to_its_input() {
    let write = std::env::var_os("SEEDS_WRITE").is_some();
    for (name, input) in seeds() {
        let bytes = Encoder::input(&input);
        if write {
            std::fs::write(path(name), &bytes).expect("the seed is written");
        }
        let committed = std::fs::read(path(name)).expect("the seed is committed");
        assert_eq!(committed, bytes, "{name} is not the encoding of its input");
        // Decoded, the file is the same input (compared through Debug: no PartialEq on Input).
        assert_eq!(
            format!("{:?}", decode(&committed)),
            format!("{input:?}"),
            "{name}"
        );
    }
}

#[test]
fn every_seed_is_answered_200() {
    for (name, _) in seeds() {
        let committed = std::fs::read(path(name)).expect("the seed is committed");
        assert_eq!(run(decode(&committed)), [StatusCode::OK], "{name}");
    }
}

#[test]
fn the_step_cap_seed_is_the_request_of_issue_17() {
    let committed = std::fs::read(path("error_past_the_step_cap_valid")).expect("committed");
    let input = decode(&committed);
    let [req] = input.requests.as_slice() else {
        panic!("one request");
    };
    assert_eq!(super::method_of(req.method), http::Method::POST);
    assert_eq!(req.steps.len(), 67);
    assert_eq!(req.steps[64], Step::Error, "step 65 is an error frame");
    for (at, step) in req.steps.iter().enumerate() {
        if at != 64 {
            assert!(
                matches!(step, Step::Yield | Step::Trailers),
                "step {}",
                at + 1
            );
        }
    }
    assert!(req.steps.contains(&Step::Trailers));
    assert!(req.headers.is_empty() && req.declare_length && req.sign_with.is_some());

    // As sent: 64 yields, no data, Content-Length 0 and the signature of the empty body.
    let secrets = vec![Secret::new(SECRET).expect("a secret")];
    let setup = Setup {
        mode: input.mode,
        check: printone_webhooks::Verifier::with_secrets(secrets.clone()).expect("a verifier"),
        secrets,
        limit: 2047,
        timeout: std::time::Duration::from_secs(1),
        freshness: false,
        requests: 1,
    };
    let prepared = super::Prepared::new(&setup, 0, req.clone());
    assert_eq!(&*prepared.steps, vec![Step::Yield; MAX_STEPS].as_slice());
    assert!(prepared.data.is_empty());
    assert_eq!(prepared.headers[header::CONTENT_LENGTH], "0");
    let empty = sign(&Secret::new(SECRET).expect("a secret"), b"");
    assert_eq!(prepared.headers[SIGNATURE_HEADER], empty.as_str());
    assert!(prepared.expect.cannot.is_none() && prepared.expect.unrefusable);
    let words = prepared.describe(&setup);
    assert!(
        words.contains("64 × a yield and ends (the empty body sent)")
            && words.contains("3 step(s) of the input are never sent (past the 64-step cap)"),
        "{words}"
    );
}

#[test]
fn nothing_is_played_after_trailers_nor_past_the_cap() {
    let (kept, dropped) = played(vec![Step::Yield, Step::Trailers, Step::Data(b"x".to_vec())]);
    assert_eq!(kept, [Step::Yield, Step::Trailers]);
    assert_eq!(dropped, [Step::Data(b"x".to_vec())]);
    let (kept, dropped) = played(vec![Step::Yield; MAX_STEPS + 2]);
    assert_eq!((kept.len(), dropped.len()), (MAX_STEPS, 2));
}

#[test]
fn a_failure_names_the_request_in_words() {
    // A request the crate answers 405, described as the oracle's message would.
    let secrets = vec![Secret::new(SECRET).expect("a secret")];
    let setup = Setup {
        mode: Mode::Stuck(1),
        check: printone_webhooks::Verifier::with_secrets(secrets.clone()).expect("a verifier"),
        secrets,
        limit: 16,
        timeout: std::time::Duration::from_millis(5),
        freshness: true,
        requests: 2,
    };
    let req = Req {
        method: 3,
        headers: vec![(Name::Legacy, b"not base64 \xff".to_vec())],
        steps: vec![Step::Data(b"abc".to_vec()), Step::Wait(7), Step::Stall],
        sign_with: None,
        declare_length: false,
    };
    let prepared = super::Prepared::new(&setup, 1, req);
    let words = format!(
        "{} / {} / {}",
        prepared.describe(&setup),
        prepared.expect.describe(),
        setup.describe()
    );
    assert_eq!(
        words,
        "request 2 of 2: a GET carrying x-printone-hmac-sha256: \"not base64 \\xff\"; its body \
         plays a data frame of 3 bytes, a wait of 7 ms and a stall, so it never ends: step 3 is \
         a stall (3 bytes sent before it) / it cannot be authentic: it is not a POST / \
         VerifyLayer::store_in a MemoryStore of capacity 2 that no worker drains; 1 secret(s); \
         body limit 16 bytes; body deadline 5 ms; freshness check on"
    );
}

#[test]
fn endless_and_stalled_bodies_meet_their_deadline_in_virtual_time() {
    let started = std::time::Instant::now();
    for mode in [Mode::Plain, Mode::Stored(0), Mode::Stuck(3)] {
        for tail in [Step::Endless, Step::Stall] {
            let steps = vec![Step::Data(b"{}".to_vec()), tail.clone()];
            let mut input = input(mode, vec![post(Vec::new(), steps, true)]);
            input.timeout_ms = 4999;
            assert_eq!(
                run(input),
                [StatusCode::REQUEST_TIMEOUT],
                "{mode:?} {tail:?}"
            );
        }
    }
    // Six 5-second deadlines, on the paused clock.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
