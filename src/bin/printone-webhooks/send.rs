//! `send`: post a signed delivery to a URL, like a local Print.one.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use printone_webhooks::{test_util::SignedRequest, Secret, EVENT_HEADER};
use tokio::net::TcpStream;

use crate::{args::SendArgs, input, runtime, Failure, Outcome};

/// How long Print.one waits for an answer before it counts a delivery as failed.
const PRINTONE_PATIENCE: Duration = Duration::from_secs(30);

/// Where to post: an `http://` URL taken apart.
struct Target {
    authority: String,
    host: String,
    port: u16,
    path: Uri,
}

impl Target {
    fn parse(url: &str) -> Result<Self, Failure> {
        let bad = |why: &str| Failure::usage(format!("bad URL {url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("only plain http:// is supported")),
            _ => return Err(bad("expected http://HOST[:PORT]/PATH")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(Self {
            authority: authority.to_string(),
            host: authority.host().trim_matches(['[', ']']).to_owned(),
            port: authority.port_u16().unwrap_or(80),
            path: path.parse().map_err(|_| bad("bad path"))?,
        })
    }
}

/// Posts the delivery, prints status and timing; fails (exit 1) on a non-2xx answer.
pub(crate) fn run(args: &SendArgs) -> Result<Outcome, Failure> {
    let secret = input::secret(&args.secret)?;
    let target = Target::parse(&args.url)?;
    let signed = delivery(args, &secret, &target)?;
    println!(
        "POST {} ({}, {} bytes)",
        args.url,
        what(args),
        signed.body().len()
    );
    let timeout = Duration::from_secs(args.timeout);
    let started = Instant::now();
    let answer = runtime()?
        .block_on(async { tokio::time::timeout(timeout, post(&target, signed.build())).await });
    let (status, body) = answer.map_err(|_| too_slow(timeout))??;
    report(status, &body, started.elapsed());
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

/// The signed request: a sample or a file, with the headers asked for.
fn delivery(args: &SendArgs, secret: &Secret, target: &Target) -> Result<SignedRequest, Failure> {
    let mut signed = match &args.file {
        Some(path) => from_file(secret, &input::read_file(path)?),
        None => SignedRequest::sample(secret, &args.trigger),
    };
    let host = HeaderValue::from_str(&target.authority)
        .map_err(|_| Failure::usage("the URL's host cannot be sent as a header"))?;
    signed = signed
        .with_uri(target.path.clone())
        .with_header(header::HOST, host);
    for line in &args.header {
        let (name, value) = input::header(line)?;
        signed = signed.with_header(name, value);
    }
    Ok(if args.legacy_header {
        signed.with_legacy_header()
    } else {
        signed
    })
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

/// One HTTP/1.1 exchange over a fresh connection.
async fn post(
    target: &Target,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), Failure> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|error| network(&format!("cannot connect to {}", target.authority), &error))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| network("HTTP handshake failed", &error))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| network("no response", &error))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| network("the response body broke off", &error))?
        .to_bytes();
    Ok((status, body))
}

fn network(what: &str, error: &dyn std::fmt::Display) -> Failure {
    Failure::network(format!("{what}: {error}"))
}

fn too_slow(timeout: Duration) -> Failure {
    Failure::network(format!(
        "no response within {} s; Print.one gives up after {} s and counts the delivery as failed",
        timeout.as_secs(),
        PRINTONE_PATIENCE.as_secs()
    ))
}

fn report(status: StatusCode, body: &[u8], elapsed: Duration) {
    println!("{status} in {:.1} ms", elapsed.as_secs_f64() * 1000.0);
    if elapsed > PRINTONE_PATIENCE {
        println!(
            "slower than Print.one's {} s limit: Print.one would count this delivery as failed",
            PRINTONE_PATIENCE.as_secs()
        );
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.is_empty() {
        println!("{}", text.chars().take(1000).collect::<String>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_an_http_url_apart() {
        let target = Target::parse("http://127.0.0.1:8080/webhooks/printone?x=1").unwrap();
        assert_eq!(target.host, "127.0.0.1");
        assert_eq!(target.port, 8080);
        assert_eq!(target.authority, "127.0.0.1:8080");
        assert_eq!(target.path, "/webhooks/printone?x=1");
        let bare = Target::parse("http://localhost").unwrap();
        assert_eq!((bare.port, bare.path.to_string()), (80, "/".to_owned()));
    }

    #[test]
    fn refuses_https_and_non_urls_as_usage_errors() {
        for url in ["https://example.com/", "example.com/hook", "not a url"] {
            assert_eq!(Target::parse(url).err().map(|f| f.code), Some(2), "{url}");
        }
    }

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
}
