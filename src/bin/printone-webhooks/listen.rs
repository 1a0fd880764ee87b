//! `listen`: a local verifying receiver that prints every delivery, refused ones included.
//!
//! The layer would refuse a bad delivery before anyone sees it; here every request is
//! buffered and checked with the library's [`Verifier`] directly, so a failure can be printed
//! with its cause, and then answered exactly as the layer answers it
//! ([`default_rejection`]).

use std::{
    convert::Infallible,
    fmt::Write as _,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use bytes::Bytes;
use http::{header, request::Parts, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use printone_webhooks::{default_rejection, Verifier, DEFAULT_BODY_TIMEOUT};
use tokio::net::{TcpListener, TcpStream};

use crate::{args::ListenArgs, diagnose::diagnose, input, json, runtime, Failure, Outcome};

/// What the receiver knows: the verifier, and the secret's bytes for explaining failures.
struct Receiver {
    verifier: Verifier,
    secret: Vec<u8>,
    max_body_bytes: usize,
    received: AtomicU64,
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
    let receiver = Arc::new(Receiver {
        verifier: Verifier::new(input::secret(&args.secret)?),
        secret: args.secret.secret.clone().into_bytes(),
        max_body_bytes: args.max_body_bytes,
        received: AtomicU64::new(0),
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
    println!("listening on http://{local} (any path; every request is verified and printed; Ctrl-C stops)");
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
        print!("{}", render(number, peer, &parts, &verdict));
        verdict.response.map(Full::new)
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

fn refusal(status: StatusCode, reason: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(reason.as_bytes()));
    *response.status_mut() = status;
    response
}

/// One delivery as printed: request line, headers, result, causes, body.
fn render(number: u64, peer: SocketAddr, parts: &Parts, verdict: &Verdict) -> String {
    let mut out = format!("\n#{number} {} {} from {peer}\n", parts.method, parts.uri);
    for (name, value) in &parts.headers {
        let _ = writeln!(
            out,
            "  {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    let status = verdict.response.status();
    let _ = writeln!(out, "verification: {} -> {status}", verdict.result);
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
    fn a_non_post_is_refused_with_allow_post() {
        let response = method_not_allowed();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
    }
}
