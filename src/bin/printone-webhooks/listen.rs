//! `listen`: a local verifying receiver that prints every delivery, refused ones included.
//!
//! The layer would refuse a bad delivery before anyone sees it; here every request is
//! buffered and checked with the library's [`Verifier`] directly, so a failure can be printed
//! with its cause, and then answered exactly as the layer answers it
//! ([`default_rejection`]).
//!
//! With `--forward-to`, a request whose body was read is then sent on to the app with its
//! original headers (hop-by-hop ones aside) and body bytes, and the app's answer is passed
//! back: `listen` behind a tunnel shows every real delivery and what the app made of it.

use std::{
    convert::Infallible,
    fmt::Write as _,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{header, request::Parts, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use printone_webhooks::{default_rejection, Verifier, DEFAULT_BODY_TIMEOUT};
use tokio::net::{TcpListener, TcpStream};

use crate::{
    args::ListenArgs,
    client::{self, Target},
    diagnose::diagnose,
    input, json, runtime, Failure, Outcome,
};

/// What the receiver knows: the verifier, and the secret's bytes for explaining failures.
struct Receiver {
    verifier: Verifier,
    secret: Vec<u8>,
    max_body_bytes: usize,
    received: AtomicU64,
    forward: Option<Forward>,
}

/// Where and how long to forward: `--forward-to` and `--forward-timeout`.
struct Forward {
    url: String,
    target: Target,
    timeout: Duration,
}

/// What happened to one request.
struct Verdict {
    response: Response<Bytes>,
    result: String,
    causes: Vec<String>,
    body: Option<Bytes>,
}

/// Listens until Ctrl-C.
pub(crate) fn run(args: &ListenArgs) -> Result<Outcome, Failure> {
    let forward = match &args.forward_to {
        Some(url) => Some(Forward {
            url: url.clone(),
            target: Target::parse(url)?,
            timeout: Duration::from_secs(args.forward_timeout),
        }),
        None => None,
    };
    let receiver = Arc::new(Receiver {
        verifier: Verifier::new(input::secret(&args.secret)?),
        secret: args.secret.secret.clone().into_bytes(),
        max_body_bytes: args.max_body_bytes,
        received: AtomicU64::new(0),
        forward,
    });
    runtime()?.block_on(serve(args.bind, receiver))
}

async fn serve(bind: SocketAddr, receiver: Arc<Receiver>) -> Result<Outcome, Failure> {
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|error| Failure::network(format!("cannot listen on {bind}: {error}")))?;
    let local = listener
        .local_addr()
        .map_err(|error| Failure::network(format!("cannot listen on {bind}: {error}")))?;
    match &receiver.forward {
        Some(forward) => println!(
            "listening on http://{local} (any path; every request is verified, printed and \
             forwarded to {}; Ctrl-C stops)",
            forward.url
        ),
        None => println!(
            "listening on http://{local} (any path; every request is verified and printed; \
             Ctrl-C stops)"
        ),
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(connection(stream, peer, Arc::clone(&receiver)));
                }
                Err(error) => eprintln!("printone-webhooks: accept failed: {error}"),
            },
            _ = tokio::signal::ctrl_c() => return Ok(Outcome::Success),
        }
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, receiver: Arc<Receiver>) {
    let service = service_fn(move |request| {
        let receiver = Arc::clone(&receiver);
        async move { Ok::<_, Infallible>(receiver.handle(request, peer).await) }
    });
    if let Err(error) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        eprintln!("printone-webhooks: connection from {peer}: {error}");
    }
}

impl Receiver {
    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let number = self.received.fetch_add(1, Ordering::Relaxed) + 1;
        let (parts, body) = request.into_parts();
        let verdict = self.check(&parts, body).await;
        let (Some(forward), Some(body)) = (&self.forward, &verdict.body) else {
            let note = self.forward.as_ref().map(|_| Note::NotForwarded);
            print!("{}", render(number, peer, &parts, &verdict, note));
            return verdict.response.map(Full::new);
        };
        print!(
            "{}",
            render(number, peer, &parts, &verdict, Some(Note::Forwarding))
        );
        let (response, report) = forward.send(&parts, body.clone()).await;
        print!("#{number} {report}");
        response
    }

    /// Reads and verifies, answering as the library's layer does.
    async fn check(&self, parts: &Parts, body: Incoming) -> Verdict {
        if parts.method != Method::POST {
            return Verdict::refused(method_not_allowed(), "webhooks are delivered with POST");
        }
        let body = match self.read(body).await {
            Ok(body) => body,
            Err((status, reason)) => return Verdict::refused(refusal(status, reason), reason),
        };
        match self.verifier.verify(&parts.headers, &body) {
            Ok(_) => Verdict {
                response: Response::new(Bytes::from_static(b"ok")),
                result: "valid".to_owned(),
                causes: Vec::new(),
                body: Some(body),
            },
            Err(error) => Verdict {
                response: default_rejection(&error),
                result: format!("invalid ({}): {}", error.kind(), error.reason()),
                causes: diagnose(&self.secret, &body, &parts.headers)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                body: Some(body),
            },
        }
    }

    /// The whole body, within the size limit and the deadline the layer uses.
    async fn read(&self, body: Incoming) -> Result<Bytes, (StatusCode, &'static str)> {
        let limited = Limited::new(body, self.max_body_bytes).collect();
        match tokio::time::timeout(DEFAULT_BODY_TIMEOUT, limited).await {
            Err(_) => Err((
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            )),
            Ok(Err(error)) if error.is::<LengthLimitError>() => Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than the limit",
            )),
            Ok(Err(_)) => Err((StatusCode::BAD_REQUEST, "the body could not be read")),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }
}

impl Forward {
    /// Sends the request on to the app; returns the answer for the sender and what to print.
    async fn send(&self, parts: &Parts, body: Bytes) -> (Response<Full<Bytes>>, String) {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = self.target.path.clone();
        *request.headers_mut() = end_to_end(&parts.headers);
        if let Ok(host) = HeaderValue::from_str(&self.target.authority) {
            request.headers_mut().insert(header::HOST, host);
        }
        let started = Instant::now();
        let exchange = client::exchange(&self.target, request);
        let (status, mut report) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => {
                let elapsed = started.elapsed().as_secs_f64() * 1000.0;
                let status = answer.response.status();
                let mut report = format!(
                    "forwarded to {}: the app answered {status} in {elapsed:.1} ms\n",
                    self.url
                );
                if let Some(cut) = &answer.cut {
                    let _ = writeln!(report, "  answered before the whole body was sent: {cut}");
                }
                let (mut parts, body) = answer.response.into_parts();
                let text = String::from_utf8_lossy(&body);
                for line in text.trim().chars().take(1000).collect::<String>().lines() {
                    let _ = writeln!(report, "  {line}");
                }
                parts.headers = end_to_end(&parts.headers);
                return (Response::from_parts(parts, Full::new(body)), report);
            }
            Ok(Err(broken)) => (
                StatusCode::BAD_GATEWAY,
                format!("the app could not be reached at {}: {broken}", self.url),
            ),
            Err(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the app at {} did not answer within {} s",
                    self.url,
                    self.timeout.as_secs()
                ),
            ),
        };
        let response = refusal(status, &report);
        report = format!("forward failed: {report} -> answered {status}\n");
        (response.map(Full::new), report)
    }
}

/// The headers to pass on: all of them but the hop-by-hop ones, which belong to one
/// connection (`Connection` and those it names, `Transfer-Encoding`, `Keep-Alive`, …), and
/// `Host`, which names the server on the other side.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    const HOP_BY_HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    ];
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        let hop = |hop: &str| name.as_str() == hop;
        if !HOP_BY_HOP.iter().copied().any(hop) && !named.iter().map(String::as_str).any(hop) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

impl Verdict {
    fn refused(response: Response<Bytes>, reason: &str) -> Self {
        Self {
            result: format!("refused: {reason}"),
            response,
            causes: Vec::new(),
            body: None,
        }
    }
}

fn method_not_allowed() -> Response<Bytes> {
    let mut response = refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        "webhooks are delivered with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

fn refusal(status: StatusCode, reason: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::copy_from_slice(reason.as_bytes()));
    *response.status_mut() = status;
    response
}

/// What `--forward-to` does with a request, shown after its verification.
#[derive(Debug, Clone, Copy)]
enum Note {
    /// Its body was read: it goes to the app, whose answer the sender gets.
    Forwarding,
    /// Refused before its body was read: answered here.
    NotForwarded,
}

/// One delivery as printed: request line, headers, result, causes, body.
fn render(
    number: u64,
    peer: SocketAddr,
    parts: &Parts,
    verdict: &Verdict,
    note: Option<Note>,
) -> String {
    let mut out = format!("\n#{number} {} {} from {peer}\n", parts.method, parts.uri);
    for (name, value) in &parts.headers {
        let _ = writeln!(
            out,
            "  {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    let status = verdict.response.status();
    let _ = match note {
        None => writeln!(out, "verification: {} -> {status}", verdict.result),
        Some(Note::Forwarding) => writeln!(
            out,
            "verification: {} (forwarded; the app's answer is sent back)",
            verdict.result
        ),
        Some(Note::NotForwarded) => writeln!(
            out,
            "verification: {} -> {status} (not forwarded: refused before its body was read)",
            verdict.result
        ),
    };
    for cause in &verdict.causes {
        let _ = writeln!(out, "{cause}");
    }
    if let Some(body) = &verdict.body {
        let _ = writeln!(out, "body ({} bytes):\n{}", body.len(), show(body));
    }
    out
}

/// The body for a person: pretty JSON, else text, else a note.
fn show(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty)".to_owned();
    }
    json::pretty(body)
        .or_else(|| String::from_utf8(body.to_vec()).ok())
        .unwrap_or_else(|| "(not UTF-8 text)".to_owned())
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;

    #[test]
    fn shows_json_pretty_and_other_bodies_plainly() {
        assert_eq!(
            show(br#"{"a":[1,2]}"#),
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(show(b"plain text"), "plain text");
        assert_eq!(show(&[0xff, 0xfe]), "(not UTF-8 text)");
        assert_eq!(show(b""), "(empty)");
    }

    #[test]
    fn only_end_to_end_headers_are_forwarded() {
        let lines: Vec<String> = [
            "Connection: keep-alive, X-Hop",
            "x-hop: 1",
            "transfer-encoding: chunked",
            "host: tunnel.example",
            "x-webhook-hmac-sha256: abc=",
            "x-request-id: 1",
            "x-request-id: 2",
            "content-length: 10",
        ]
        .iter()
        .map(|line| (*line).to_owned())
        .collect();
        let kept = end_to_end(&input::headers(&lines).unwrap());
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            ["x-webhook-hmac-sha256", "x-request-id", "content-length"]
        );
        assert_eq!(kept.get_all("x-request-id").iter().count(), 2);
    }

    #[test]
    fn a_non_post_is_refused_with_allow_post() {
        let response = method_not_allowed();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
    }
}
