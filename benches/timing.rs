//! Timing evidence for the signature comparison, in the style of dudect (Reparaz, Balasch and
//! Verbauwhede, "Dude, is my code constant time?", 2017).
//!
//! Run it with `cargo bench --bench timing` (`TIMING_SAMPLES=N` measurements per class,
//! default 100 000; each measurement times 16 calls).
//!
//! The verifier is called on one body with signatures of four classes: wrong in the first byte,
//! wrong in the last byte, wrong everywhere (random MACs) and valid. The classes are interleaved
//! in random order so that drift in the machine affects them alike, and every input is prepared
//! the same way before the clock starts. Each measurement times a batch of 16 calls of one class
//! (the clock ticks too coarsely for a single call). Welch's t statistic then compares two
//! classes' timings, on all measurements and on measurements cropped at several percentiles (to
//! remove interrupts and other one-sided noise, as dudect does). dudect's threshold: |t| < 4.5
//! is no evidence of a timing difference; a leaky `==` on the bytes shows up between "first
//! byte" and "last byte".
//!
//! Two functions are measured: the whole `Verifier::verify_signature` (HMAC of the body and
//! comparison) and `Verification::finish` alone (HMAC finalisation and comparison), where a
//! comparison leak would be a larger share of the time.
//!
//! The exit code is 1 when first byte vs last byte reaches |t| >= 4.5 in either function.
#![allow(
    clippy::cast_precision_loss,
    reason = "counts and nanoseconds are far below 2^52"
)]

use std::{
    hint::black_box,
    process::ExitCode,
    time::{Duration, Instant},
};

use printone_webhooks::{sign_raw, Secret, Signature, Verifier};

/// dudect's threshold for "no evidence of a leak".
const THRESHOLD: f64 = 4.5;
const DEFAULT_SAMPLES: usize = 100_000;
/// Calls per measurement: enough to stay well above the clock's resolution.
const BATCH: usize = 16;
const CLASSES: [&str; 4] = ["first byte", "last byte", "random", "valid"];
const FIRST: usize = 0;
const LAST: usize = 1;
const RANDOM: usize = 2;
const VALID: usize = 3;
/// Percentiles (in per mille) at which the measurements are cropped, besides using them all.
const CROPS: [usize; 3] = [500, 900, 990];

fn main() -> ExitCode {
    let samples = std::env::var("TIMING_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_SAMPLES);
    let Ok(secret) = Secret::new("pO1_webhook_7f3KqV9xLm2Rt8Wz4Nc6Hb") else {
        return ExitCode::FAILURE;
    };
    let body = br#"{"data":{"id":"cpc_2Zx4Cv6Bn8Mq1Wp3","couponId":"cpn_7Lk5Jh3Gf1Ds9Ap8","code":"WELCOME-7F3K","used":true,"orderId":"ord_4kR9vT2mXq7LbN3cW8pZ"},"event":"coupon_code_used","created_at":"2024-06-04T07:45:19.658Z"}"#;
    let valid = *sign_raw(&secret, body).as_bytes();
    let verifier = Verifier::new(secret);
    let pools = Pools::new(valid);
    println!(
        "dudect-style timing of signature verification: {samples} measurements per class of \
         {BATCH} calls each, {} classes interleaved at random, body {} bytes",
        CLASSES.len(),
        body.len()
    );

    let whole = measure(
        samples,
        0x9e37_79b9_7f4a_7c15,
        |class, n| pools.get(class, n),
        |signature| verifier.verify_signature(signature, body).is_ok(),
    );
    let mut leak = report(
        "Verifier::verify_signature (HMAC of the body + comparison)",
        &whole,
        true,
    );

    let finish = measure(
        samples,
        0x2545_f491_4f6c_dd1d,
        |class, n| {
            let mut verification = verifier.begin(pools.get(class, n));
            verification.update(body);
            verification
        },
        |verification| verification.finish().is_ok(),
    );
    leak |= report(
        "Verification::finish (MAC finalisation + comparison)",
        &finish,
        true,
    );

    // A positive control: a byte-by-byte comparison that stops at the first difference, timed
    // the same way. It must show a large |t| between "first byte" and "last byte", or the
    // measurement is too blunt to mean anything.
    let control = measure(
        samples,
        0x1405_7b7e_f767_814f,
        |class, n| pools.get(class, n),
        |signature| early_exit_eq(signature.as_bytes(), &valid),
    );
    report(
        "control: early-exit byte comparison (leaks by design)",
        &control,
        false,
    );

    if leak {
        println!("\nFAIL: |t| >= {THRESHOLD} between first-byte and last-byte mismatches");
        ExitCode::FAILURE
    } else {
        println!(
            "\nPASS: no evidence of a timing difference between first-byte and last-byte mismatches (|t| < {THRESHOLD})"
        );
        ExitCode::SUCCESS
    }
}

/// Prepared signatures of every class, so that preparing any class is the same work.
struct Pools([Vec<Signature>; 4]);

impl Pools {
    const SIZE: usize = 1024;

    fn new(valid: [u8; 32]) -> Self {
        let mut rng = XorShift(0x853c_49e6_748f_ea9b);
        let mut first = valid;
        first[0] ^= 0x01;
        let mut last = valid;
        last[31] ^= 0x01;
        let random = (0..Self::SIZE)
            .map(|_| {
                let mut mac = [0u8; 32];
                for chunk in mac.chunks_mut(8) {
                    chunk.copy_from_slice(&rng.next().to_le_bytes());
                }
                Signature::from_bytes(mac)
            })
            .collect();
        let fixed = |mac| vec![Signature::from_bytes(mac); Self::SIZE];
        Self([fixed(first), fixed(last), random, fixed(valid)])
    }

    fn get(&self, class: usize, n: usize) -> Signature {
        self.0[class][n % Self::SIZE]
    }
}

/// Times batches of [`BATCH`] calls of one class, the class of each batch drawn at random,
/// until every class has `samples` batches. Inputs are prepared before the clock starts.
fn measure<T>(
    samples: usize,
    seed: u64,
    mut prepare: impl FnMut(usize, usize) -> T,
    call: impl Fn(T) -> bool,
) -> [Vec<f64>; 4] {
    let mut rng = XorShift(seed);
    let mut timings: [Vec<f64>; 4] = Default::default();
    let mut inputs: Vec<T> = Vec::with_capacity(BATCH);
    let warm_up = samples / 10;
    let mut batches = 0;
    while timings.iter().any(|t| t.len() < samples) {
        let class = rng.class();
        inputs.clear();
        for i in 0..BATCH {
            inputs.push(prepare(class, batches * BATCH + i));
        }
        let start = Instant::now();
        let mut accepted = 0;
        for input in inputs.drain(..) {
            accepted += usize::from(black_box(call(black_box(input))));
        }
        let elapsed = start.elapsed();
        let expected = if class == VALID { BATCH } else { 0 };
        assert_eq!(accepted, expected, "answers for {}", CLASSES[class]);
        batches += 1;
        if batches > warm_up && timings[class].len() < samples {
            timings[class].push(nanos(elapsed) / BATCH as f64);
        }
    }
    timings
}

/// The comparison a constant-time verifier must not make.
fn early_exit_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if black_box(*x) != black_box(*y) {
            return false;
        }
    }
    true
}

/// Prints the statistics of one measurement; returns whether first vs last byte leaks (always
/// `false` for a control, which is not the crate's code).
fn report(what: &str, timings: &[Vec<f64>; 4], decides: bool) -> bool {
    println!("\n{what}");
    for (name, t) in CLASSES.iter().zip(timings) {
        let (mean, _) = mean_var(t);
        println!(
            "  {name:<11} mean {mean:8.1} ns  median {:8.1} ns",
            percentile(t, 500)
        );
    }
    let mut leak = false;
    // The verdict is first byte vs last byte, where a comparison that stops early differs most;
    // dudect's fixed-vs-random comparisons and valid vs wrong are printed alongside.
    for (a, b, verdict, note) in [
        (FIRST, LAST, true, "  (verdict)"),
        (FIRST, RANDOM, false, "  (fixed vs random)"),
        (LAST, RANDOM, false, "  (fixed vs random)"),
        (VALID, LAST, false, "  (informational: validity is public)"),
    ] {
        let ts = t_statistics(&timings[a], &timings[b]);
        let worst = ts.iter().fold(0.0_f64, |m, t| m.max(t.abs()));
        let cells: Vec<String> = ts.iter().map(|t| format!("{t:+7.2}")).collect();
        let note = if verdict && !decides { "" } else { note };
        println!(
            "  t {:<11} vs {:<11} all/p50/p90/p99: {}  max |t| {worst:5.2}{note}",
            CLASSES[a],
            CLASSES[b],
            cells.join(" ")
        );
        leak |= decides && verdict && worst >= THRESHOLD;
    }
    leak
}

/// Welch's t on all samples, then on samples below each crop percentile of the pooled data.
fn t_statistics(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    pooled.sort_by(f64::total_cmp);
    let mut ts = vec![welch(a, b)];
    for crop in CROPS {
        let cut = pooled[(pooled.len() - 1) * crop / 1000];
        let keep = |xs: &[f64]| xs.iter().copied().filter(|x| *x <= cut).collect::<Vec<_>>();
        ts.push(welch(&keep(a), &keep(b)));
    }
    ts
}

fn welch(a: &[f64], b: &[f64]) -> f64 {
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let se = (va / a.len() as f64 + vb / b.len() as f64).sqrt();
    if se == 0.0 {
        0.0
    } else {
        (ma - mb) / se
    }
}

/// Mean and unbiased variance, in one pass (Welford).
fn mean_var(xs: &[f64]) -> (f64, f64) {
    let (mut n, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for x in xs {
        n += 1.0;
        let delta = x - mean;
        mean += delta / n;
        m2 += delta * (x - mean);
    }
    (mean, if n > 1.0 { m2 / (n - 1.0) } else { 0.0 })
}

/// The `per_mille` percentile of `xs`.
fn percentile(xs: &[f64], per_mille: usize) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(sorted.len().saturating_sub(1) * per_mille / 1000)
        .copied()
        .unwrap_or(0.0)
}

fn nanos(elapsed: Duration) -> f64 {
    elapsed.as_nanos() as f64
}

/// A small, seeded PRNG (xorshift64*), so the run needs no extra dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn class(&mut self) -> usize {
        (self.next() >> 62) as usize
    }
}
