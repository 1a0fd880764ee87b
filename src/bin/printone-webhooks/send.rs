//! `send`: post a signed delivery to a URL, like a local Print.one.
//!
//! What is sent is what was asked for: `--signature` replaces the computed signature,
//! `--tamper` changes the body after signing, and a header given with `-H` (a signature header
//! included) is sent exactly as given.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use printone_webhooks::{
    test_util::SignedRequest, Secret, EVENT_HEADER, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER,
};

use crate::{
    args::SendArgs,
    client::{self, Answer, Target},
    input, runtime, Failure, Outcome,
};

/// How long Print.one waits for an answer before it counts a delivery as failed.
const PRINTONE_PATIENCE: Duration = Duration::from_secs(30);

/// Posts the delivery, prints status and timing; fails (exit 1) on a non-2xx answer.
pub(crate) fn run(args: &SendArgs) -> Result<Outcome, Failure> {
    let secret = input::secret(&args.secret)?;
    let target = Target::parse(&args.url)?;
    let delivery = delivery(args, &secret, &target)?;
    for warning in &delivery.warnings {
        eprintln!("printone-webhooks: warning: {warning}");
    }
    println!(
        "POST {} ({}, {} bytes{})",
        args.url,
        what(args),
        delivery.request.body().len(),
        if args.tamper {
            ", changed after signing"
        } else {
            ""
        }
    );
    let timeout = Duration::from_secs(args.timeout);
    let started = Instant::now();
    let request = delivery.request.map(Full::new);
    let answer = runtime()?.block_on(async {
        tokio::time::timeout(timeout, client::exchange(&target, request)).await
    });
    let answer = answer
        .map_err(|_| too_slow(timeout))?
        .map_err(|broken| Failure::network(broken.to_string()))?;
    let status = answer.response.status();
    report(&answer, started.elapsed());
    Ok(if status.is_success() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn what(args: &SendArgs) -> String {
    args.file.as_ref().map_or_else(
        || format!("sample {}", args.trigger),
        |file| file.display().to_string(),
    )
}

/// The request to send, and what the user should know about it.
struct Delivery {
    request: Request<Bytes>,
    warnings: Vec<String>,
}

/// The signed request: a sample or a file, with the signature, body and headers asked for.
fn delivery(args: &SendArgs, secret: &Secret, target: &Target) -> Result<Delivery, Failure> {
    let mut signed = match &args.file {
        Some(path) => from_file(secret, &input::read_file(path)?),
        None => SignedRequest::sample(secret, &args.trigger),
    };
    let host = HeaderValue::from_str(&target.authority)
        .map_err(|_| Failure::usage("the URL's host cannot be sent as a header"))?;
    signed = signed
        .with_uri(target.path.clone())
        .with_header(header::HOST, host);
    if args.legacy_header {
        signed = signed.with_legacy_header();
    }
    if args.tamper {
        signed = signed.tampered();
    }
    let mut request = signed.build::<Bytes>();
    if let Some(signature) = &args.signature {
        let value = HeaderValue::from_str(signature).map_err(|_| {
            Failure::usage("the --signature value contains characters a header cannot carry")
        })?;
        let name = if args.legacy_header {
            LEGACY_SIGNATURE_HEADER
        } else {
            SIGNATURE_HEADER
        };
        request.headers_mut().insert(name, value);
    }
    let given = input::headers(&args.header)?;
    let warnings = override_headers(request.headers_mut(), &given, args.signature.is_some());
    Ok(Delivery { request, warnings })
}

/// Puts the `-H` headers in place of the built ones of the same names, every repeat kept. A
/// signature header given there replaces the signature under both names, with a warning.
fn override_headers(
    headers: &mut HeaderMap,
    given: &HeaderMap,
    signature_flag: bool,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let replaced = if signature_flag {
        "the --signature value"
    } else {
        "the computed signature"
    };
    for name in given.keys() {
        if is_signature_header(name) {
            warnings.push(format!(
                "{name} is sent as given with -H; it overrides {replaced}, which is not sent"
            ));
            headers.remove(SIGNATURE_HEADER);
            headers.remove(LEGACY_SIGNATURE_HEADER);
        }
    }
    for name in given.keys() {
        headers.remove(name);
    }
    for (name, value) in given {
        headers.append(name, value.clone());
    }
    warnings
}

fn is_signature_header(name: &HeaderName) -> bool {
    *name == SIGNATURE_HEADER || *name == LEGACY_SIGNATURE_HEADER
}

/// A file's bytes, signed, with `x-printone-event` taken from its `event` field when it has
/// one.
fn from_file(secret: &Secret, body: &[u8]) -> SignedRequest {
    let event = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("event")?.as_str().map(str::to_owned))
        .and_then(|event| HeaderValue::from_str(&event).ok());
    let signed = SignedRequest::new(secret, Bytes::copy_from_slice(body));
    match event {
        Some(event) => signed.with_header(EVENT_HEADER, event),
        None => signed,
    }
}

fn too_slow(timeout: Duration) -> Failure {
    Failure::network(format!(
        "no response within {} s; Print.one gives up after {} s and counts the delivery as failed",
        timeout.as_secs(),
        PRINTONE_PATIENCE.as_secs()
    ))
}

fn report(answer: &Answer, elapsed: Duration) {
    let status: StatusCode = answer.response.status();
    println!("{status} in {:.1} ms", elapsed.as_secs_f64() * 1000.0);
    if let Some(cut) = &answer.cut {
        println!("answered before the whole body was sent: {cut}");
    }
    if elapsed > PRINTONE_PATIENCE {
        println!(
            "slower than Print.one's {} s limit: Print.one would count this delivery as failed",
            PRINTONE_PATIENCE.as_secs()
        );
    }
    let text = String::from_utf8_lossy(answer.response.body());
    let text = text.trim();
    if !text.is_empty() {
        println!("{}", text.chars().take(1000).collect::<String>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_an_event_field_names_its_trigger() {
        let secret = Secret::new("s").unwrap();
        let signed = from_file(
            &secret,
            br#"{"data":{"id":"x"},"event":"coupon_code_used"}"#,
        );
        assert_eq!(signed.headers()[EVENT_HEADER], "coupon_code_used");
        assert!(!from_file(&secret, b"plain")
            .headers()
            .contains_key(EVENT_HEADER));
    }

    fn map(lines: &[&str]) -> HeaderMap {
        let lines: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();
        input::headers(&lines).unwrap()
    }

    #[test]
    fn a_given_signature_header_replaces_the_computed_one_under_both_names() {
        let mut headers = map(&["x-webhook-hmac-sha256: computed=", "user-agent: Print.one"]);
        let given = map(&[
            "X-Printone-HMAC-SHA256: given=",
            "x-printone-hmac-sha256: again=",
        ]);
        let warnings = override_headers(&mut headers, &given, false);
        assert!(!headers.contains_key(SIGNATURE_HEADER));
        let sent: Vec<_> = headers.get_all(LEGACY_SIGNATURE_HEADER).iter().collect();
        assert_eq!(sent, ["given=", "again="]);
        assert_eq!(headers[header::USER_AGENT], "Print.one");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("overrides the computed signature"));
    }

    #[test]
    fn other_given_headers_replace_the_built_ones_without_a_warning() {
        let mut headers = map(&[
            "content-type: application/json",
            "x-webhook-hmac-sha256: s=",
        ]);
        let given = map(&["content-type: text/plain", "x-request-id: 7"]);
        assert!(override_headers(&mut headers, &given, false).is_empty());
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain");
        assert_eq!(headers["x-request-id"], "7");
        assert_eq!(headers[SIGNATURE_HEADER], "s=");
    }
}
