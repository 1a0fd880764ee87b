//! Requests, expectations and setups in words, for the message of a failed assertion: a
//! failure names the request that broke the oracle, not only the `Debug` dump of the input.

use std::fmt::Write as _;

use super::{cut_of, Cannot, Expect, Mode, Prepared, Setup, Step, MAX_STEPS};

impl Prepared {
    /// For example: "request 1 of 1: a POST carrying x-webhook-hmac-sha256: the signature of
    /// the empty body under secret 1 of 1 and content-length: \"0\"; its body plays 64 × a
    /// yield and ends (the empty body sent); 3 step(s) of the input are never sent (past the
    /// 64-step cap): an error, trailers and a yield".
    pub(super) fn describe(&self, setup: &Setup) -> String {
        let mut words = format!(
            "request {} of {}: a {}",
            self.index + 1,
            setup.requests,
            self.method
        );
        if self.headers.is_empty() {
            words.push_str(" without headers");
        } else {
            let headers: Vec<String> = self
                .headers
                .iter()
                .map(|(name, value)| match &self.signed {
                    Some((signed_name, signed_value, secret))
                        if signed_name == name && signed_value == value =>
                    {
                        format!(
                            "{name}: the signature of {} under secret {} of {}",
                            body_words(self.data.len()),
                            secret + 1,
                            setup.secrets.len()
                        )
                    }
                    _ => format!("{name}: {}", quoted(value.as_bytes())),
                })
                .collect();
            let _ = write!(words, " carrying {}", list(&headers));
        }
        if self.steps.is_empty() {
            words.push_str("; its body is empty and ends at once");
        } else {
            let _ = write!(words, "; its body plays {}", steps_words(&self.steps));
            match cut_of(&self.steps) {
                None => {
                    let _ = write!(words, " and ends ({} sent)", body_words(self.data.len()));
                }
                Some((at, step)) => {
                    let _ = write!(
                        words,
                        ", so it never ends: step {} is {} ({} sent before it)",
                        at + 1,
                        step_words(step),
                        body_words(self.data.len())
                    );
                }
            }
        }
        if !self.dropped.is_empty() {
            let why = if self.steps.last() == Some(&Step::Trailers) {
                "after its trailers frame, which ends an HTTP body".to_owned()
            } else {
                format!("past the {MAX_STEPS}-step cap")
            };
            let _ = write!(
                words,
                "; {} step(s) of the input are never sent ({why}): {}",
                self.dropped.len(),
                steps_words(&self.dropped)
            );
        }
        words
    }
}

impl Expect {
    pub(super) fn describe(&self) -> String {
        let mut words = match &self.cannot {
            None => "it can be authentic: a POST whose body ends within the limit and verifies"
                .to_owned(),
            Some(cannot) => format!("it cannot be authentic: {}", cannot_words(cannot)),
        };
        if self.unrefusable {
            words.push_str(", and no Content-Length it carries is over the limit");
        } else if self.cannot.is_none() {
            words.push_str(", but a Content-Length it carries reads as over the limit");
        }
        words
    }
}

impl Setup {
    pub(super) fn describe(&self) -> String {
        let mode = match (self.mode, self.capacity()) {
            (Mode::Plain, _) | (_, None) => {
                "VerifyLayer in front of an inner service that answers 200".to_owned()
            }
            (Mode::Stored(_), Some(capacity)) => format!(
                "VerifyLayer::store_in a MemoryStore of capacity {capacity}, drained by a running \
                 Worker"
            ),
            (Mode::Stuck(_), Some(capacity)) => format!(
                "VerifyLayer::store_in a MemoryStore of capacity {capacity} that no worker drains"
            ),
        };
        format!(
            "{mode}; {} secret(s); body limit {} bytes; body deadline {} ms; freshness check {}",
            self.secrets.len(),
            self.limit,
            self.timeout.as_millis(),
            if self.freshness { "on" } else { "off" }
        )
    }
}

fn cannot_words(cannot: &Cannot) -> String {
    match cannot {
        Cannot::NotPost => "it is not a POST".to_owned(),
        Cannot::DeclaredTooLarge(len) => format!("its Content-Length {len} is over the limit"),
        Cannot::Incomplete(at, step) => {
            format!(
                "its body never ends: step {} is {}",
                at + 1,
                step_words(step)
            )
        }
        Cannot::TooLarge(len) => format!("its body ({len} bytes) is over the limit"),
        Cannot::NotAuthentic(reason) => format!("it does not verify ({reason})"),
    }
}

fn body_words(len: usize) -> String {
    match len {
        0 => "the empty body".to_owned(),
        1 => "1 byte".to_owned(),
        len => format!("{len} bytes"),
    }
}

fn step_words(step: &Step) -> String {
    match step {
        Step::Data(chunk) => format!("a data frame of {}", body_words(chunk.len())),
        Step::Yield => "a yield".to_owned(),
        Step::Wait(ms) => format!("a wait of {ms} ms"),
        Step::Trailers => "trailers".to_owned(),
        Step::Error => "an error".to_owned(),
        Step::Stall => "a stall".to_owned(),
        Step::Endless => "endless empty frames".to_owned(),
    }
}

/// The steps, with runs of the same step counted: "64 × a yield, an error, trailers and a
/// yield".
fn steps_words(steps: &[Step]) -> String {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for step in steps {
        let words = step_words(step);
        match runs.last_mut() {
            Some((last, count)) if *last == words => *count += 1,
            _ => runs.push((words, 1)),
        }
    }
    let runs: Vec<String> = runs
        .into_iter()
        .map(|(words, count)| match count {
            1 => words,
            count => format!("{count} × {words}"),
        })
        .collect();
    list(&runs)
}

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A header value as text, escaped and shortened.
fn quoted(bytes: &[u8]) -> String {
    const SHOWN: usize = 60;
    let mut text: String = bytes
        .iter()
        .take(SHOWN)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > SHOWN {
        let _ = write!(text, "… ({} bytes)", bytes.len());
    }
    format!("\"{text}\"")
}
