//! Hostile HTTP against a real server on loopback: axum with `VerifyLayer::store_in` a
//! `MemoryStore` and a `Worker` on that store, driven by raw bytes on a `TcpStream` so that
//! malformed HTTP can be sent.
//!
//! Every case names the status it expects. After every case the same server must still answer
//! an authentic delivery with 200. Where hyper itself refuses a request before the layer sees it
//! (a header name that is not a token, a `Content-Length` that is not a number, a folded
//! header), the expected status is hyper's 400 and the case says so.

mod common;

use std::{
    fmt::Write as _,
    future::IntoFuture as _,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};

use axum::Router;
use common::{order_body, signature_of, within, PATIENCE};
use printone_webhooks::{
    store::{Counts, DeliveryId, DeliveryState, Filter, MemoryStore, Store as _},
    tower::VerifyLayer,
    worker::{Metrics, RetryPolicy, Worker, WorkerHandle, WorkerReport},
    BoxError, Delivery, Signature, Verifier,
};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
    time::{sleep, timeout},
};

const ROUTE: &str = "/webhooks/printone";
/// The body limit of the server under test.
const LIMIT: usize = 64 * 1024;
/// The body deadline of the server under test.
const DEADLINE: Duration = Duration::from_millis(1500);

/// What the worker's handler saw: the `data.id` of every delivery it handled, in order (`None`
/// for a body without one).
type Handled = Arc<Mutex<Vec<Option<String>>>>;

/// A receiver as the README recommends, with a small limit and a short deadline.
struct Server {
    addr: SocketAddr,
    metrics: Metrics,
    store: MemoryStore,
    handled: Handled,
    worker: WorkerHandle,
    next_id: AtomicUsize,
}

impl Server {
    async fn start() -> Self {
        let metrics = Metrics::new();
        let store = MemoryStore::new();
        let handled = Handled::default();
        let seen = Arc::clone(&handled);
        let on_delivery = move |delivery: Delivery| {
            let seen = Arc::clone(&seen);
            async move {
                // Parse what arrived, as a real handler would; an unparseable body is not an
                // error here.
                let _ = delivery.event();
                let (_, data_id) = delivery.summary();
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(data_id);
                Ok::<(), BoxError>(())
            }
        };
        let worker = Worker::new(store.clone(), on_delivery)
            .with_concurrency(2)
            .with_retry(RetryPolicy::none())
            .with_metrics(metrics.clone())
            .spawn();
        let layer = VerifyLayer::new(Verifier::new(common::secret()))
            .with_max_body_bytes(LIMIT)
            .with_body_timeout(DEADLINE)
            .with_metrics(metrics.clone());
        let app = Router::new().route_service(ROUTE, layer.store_in(store.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("the bound address");
        tokio::spawn(axum::serve(listener, app).into_future());
        Self {
            addr,
            metrics,
            store,
            handled,
            worker,
            next_id: AtomicUsize::new(0),
        }
    }

    /// A fresh, authentic body: a different order id every time.
    fn fresh_body(&self) -> Vec<u8> {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        order_body(&format!("ord_hostile_{n}")).to_vec()
    }

    async fn connect(&self) -> Conn {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        Conn {
            stream: BufReader::new(stream),
        }
    }

    /// Sends `raw` on a new connection and reads one reply.
    async fn one(&self, raw: &[u8]) -> Reply {
        let mut conn = self.connect().await;
        conn.send(raw).await;
        conn.reply()
            .await
            .expect("a reply before the connection closed")
    }

    /// The server still takes an authentic delivery, with 200.
    async fn assert_serving(&self, after: &str) {
        let body = self.fresh_body();
        let reply = self.one(&post_signed(&body)).await;
        assert_eq!(reply.status, 200, "authentic delivery after case {after}");
    }

    /// How many deliveries the worker's handler ran on so far.
    fn handled_count(&self) -> usize {
        self.handled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    async fn counts(&self) -> Counts {
        self.store.counts().await.expect("the memory store counts")
    }

    /// Waits until the worker has handled everything stored so far.
    async fn settled(&self) -> Counts {
        within("the worker to handle what is stored", async {
            loop {
                let counts = self.counts().await;
                if counts.backlog() == 0 {
                    return counts;
                }
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    }
}

/// One connection, read through a buffer so replies can be parsed line by line.
struct Conn {
    stream: BufReader<TcpStream>,
}

/// A parsed HTTP/1.x response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Conn {
    async fn send(&mut self, raw: &[u8]) {
        self.stream.get_mut().write_all(raw).await.expect("write");
    }

    /// Reads the next reply; `None` when the server closed the connection first.
    async fn reply(&mut self) -> Option<Reply> {
        timeout(PATIENCE, self.read_reply())
            .await
            .expect("a reply (or a close) in time")
    }

    async fn read_reply(&mut self) -> Option<Reply> {
        let status_line = self.line().await?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("a status line, got {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(length) = reply.header("content-length") {
            let mut body = vec![0; length.parse().expect("a numeric content-length")];
            self.stream.read_exact(&mut body).await.ok()?;
            reply.body = body;
        } else if reply.header("transfer-encoding") == Some("chunked") {
            reply.body = self.chunked().await?;
        }
        Some(reply)
    }

    async fn chunked(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size = usize::from_str_radix(&self.line().await?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            self.stream.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                return Some(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }

    async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.stream.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
        }
    }

    /// Whether the server closed the connection (EOF or reset) within `PATIENCE`.
    async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            timeout(PATIENCE, self.stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

/// A `POST` to the webhook route with `headers` (raw lines without CRLF) and `body`, with an
/// exact `Content-Length`.
fn post_raw(headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let length = format!("content-length: {}", body.len());
    let mut lines: Vec<&[u8]> = headers.to_vec();
    lines.push(length.as_bytes());
    request(b"HTTP/1.1", &lines, body)
}

fn request(version: &[u8], headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.extend_from_slice(b"POST ");
    raw.extend_from_slice(ROUTE.as_bytes());
    raw.extend_from_slice(b" ");
    raw.extend_from_slice(version);
    raw.extend_from_slice(b"\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n");
    for line in headers {
        raw.extend_from_slice(line);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

fn signature_line(value: &str) -> Vec<u8> {
    format!("x-webhook-hmac-sha256: {value}").into_bytes()
}

/// An authentic delivery of `body`, as Print.one sends it.
fn post_signed(body: &[u8]) -> Vec<u8> {
    post_raw(&[&signature_line(&signature_of(body))], body)
}

/// The head of a chunked `POST` carrying `signature`.
fn chunked_head(signature: &str) -> Vec<u8> {
    let sig = signature_line(signature);
    request(b"HTTP/1.1", &[&sig, b"transfer-encoding: chunked"], b"")
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut raw = format!("{:x}\r\n", data.len()).into_bytes();
    raw.extend_from_slice(data);
    raw.extend_from_slice(b"\r\n");
    raw
}

/// Runs the cases one after another against one server, checking the server after each.
#[tokio::test]
async fn hostile_requests_get_their_documented_status_and_the_server_keeps_serving() {
    let server = Server::start().await;
    server.assert_serving("start").await;
    let body = server.fresh_body();
    let valid = signature_of(&body);

    signature_headers(&server, &body, &valid).await;
    signature_encodings(&server, &body, &valid).await;
    body_lengths(&server, &valid).await;
    deadlines(&server).await;
    framing(&server, &valid).await;
    authentic_bodies(&server).await;
    other_requests(&server, &body, &valid).await;

    let report = finish(server).await;
    assert_eq!(report.attempts_failed, 0);
    assert_eq!(report.dead_lettered, 0);
}

/// Missing, empty, repeated, conflicting, non-ASCII and huge signature headers.
async fn signature_headers(server: &Server, body: &[u8], valid: &str) {
    // 1. No signature header at all.
    let reply = server.one(&post_raw(&[], body)).await;
    expect(server, "missing signature", &reply, 401).await;

    // 2. The header is there, its value empty.
    let reply = server
        .one(&post_raw(&[b"x-webhook-hmac-sha256:"], body))
        .await;
    expect(server, "empty signature", &reply, 401).await;

    // 3. The same valid value twice is fine.
    let body3 = server.fresh_body();
    let sig3 = signature_line(&signature_of(&body3));
    let reply = server.one(&post_raw(&[&sig3, &sig3], &body3)).await;
    expect(server, "repeated identical signature", &reply, 200).await;

    // 4. One name repeated with different values: one of them is valid.
    let other = signature_line(&signature_of(b"another body"));
    let reply = server
        .one(&post_raw(&[&signature_line(valid), &other], body))
        .await;
    expect(server, "repeated different signatures", &reply, 401).await;

    // 5. Both names, different values.
    let legacy = format!("x-printone-hmac-sha256: {}", signature_of(b"another body"));
    let reply = server
        .one(&post_raw(
            &[&signature_line(valid), legacy.as_bytes()],
            body,
        ))
        .await;
    expect(server, "conflicting header names", &reply, 401).await;

    // 6. Bytes above 0x7f in the value (obs-text, which hyper passes on).
    let mut non_ascii = b"x-webhook-hmac-sha256: ".to_vec();
    non_ascii.extend_from_slice(&valid.as_bytes()[..42]);
    non_ascii.extend_from_slice("é".as_bytes());
    let reply = server.one(&post_raw(&[&non_ascii], body)).await;
    expect(server, "non-ASCII signature bytes", &reply, 401).await;

    // 7. A non-ASCII header name is not an HTTP token: hyper answers 400 itself.
    let reply = server
        .one(&post_raw(&["x-wébhook: 1".as_bytes()], body))
        .await;
    expect(server, "non-ASCII header name (hyper)", &reply, 400).await;

    // 8. A 10 KB signature header.
    let huge = signature_line(&"A".repeat(10 * 1024));
    let reply = server.one(&post_raw(&[&huge], body)).await;
    expect(server, "10 KB signature header", &reply, 401).await;
}

/// The right MAC in the wrong encoding, or the wrong length after decoding.
async fn signature_encodings(server: &Server, body: &[u8], valid: &str) {
    // 9. 44 characters that decode to 31 bytes.
    let short = format!("{}==", &valid[..42]);
    let reply = server
        .one(&post_raw(&[&signature_line(&short)], body))
        .await;
    expect(server, "decodes to 31 bytes", &reply, 401).await;

    // 10. Valid base64 of 48 bytes (the MAC with 16 extra bytes).
    let long = format!("{}AAAAAAAAAAAAAAAAAAAAAA==", &valid[..43]);
    let reply = server.one(&post_raw(&[&signature_line(&long)], body)).await;
    expect(server, "decodes to 48 bytes", &reply, 401).await;

    // 11. The right MAC, hex-encoded.
    let mac = Signature::parse(valid).expect("a valid signature");
    let hex = mac.as_bytes().iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    let reply = server.one(&post_raw(&[&signature_line(&hex)], body)).await;
    expect(server, "hex signature", &reply, 401).await;

    // 12. The right MAC in the URL-safe alphabet.
    let (url_body, url_sig) = body_whose_signature_has_plus_or_slash(server);
    let url_safe = url_sig.replace('+', "-").replace('/', "_");
    let reply = server
        .one(&post_raw(&[&signature_line(&url_safe)], &url_body))
        .await;
    expect(server, "URL-safe signature", &reply, 401).await;

    // 13. The right MAC without its padding.
    let unpadded = valid.trim_end_matches('=');
    let reply = server
        .one(&post_raw(&[&signature_line(unpadded)], body))
        .await;
    expect(server, "unpadded signature", &reply, 401).await;
}

/// Oversize bodies, declared and chunked, and a `Content-Length` that lies.
async fn body_lengths(server: &Server, valid: &str) {
    // 14. A declared length over the limit: refused before reading, connection closed.
    let head = request(
        b"HTTP/1.1",
        &[&signature_line(valid), b"content-length: 10485760"],
        b"",
    );
    let mut conn = server.connect().await;
    conn.send(&head).await;
    let reply = conn.reply().await.expect("a reply");
    assert_eq!(reply.header("connection"), Some("close"));
    expect(server, "declared oversize", &reply, 413).await;

    // 15. A chunked body that crosses the limit, and keeps going.
    let mut conn = server.connect().await;
    conn.send(&chunked_head(valid)).await;
    let block = vec![b' '; 16 * 1024];
    for _ in 0..8 {
        // The server may close while we still write; only its answer matters.
        if conn
            .stream
            .get_mut()
            .write_all(&chunk(&block))
            .await
            .is_err()
        {
            break;
        }
    }
    let reply = conn.reply().await.expect("a reply");
    expect(server, "chunked oversize", &reply, 413).await;

    // 16. Content-Length shorter than the body: the body is cut, so the MAC does not match;
    // the rest of the bytes are read as the next request, which hyper refuses with 400.
    let body16 = server.fresh_body();
    let sig16 = signature_line(&signature_of(&body16));
    let length = format!("content-length: {}", body16.len() - 10);
    let mut conn = server.connect().await;
    conn.send(&request(b"HTTP/1.1", &[&sig16, length.as_bytes()], &body16))
        .await;
    let reply = conn.reply().await.expect("a reply");
    expect(server, "Content-Length shorter than the body", &reply, 401).await;
    let leftover = conn.reply().await;
    assert!(
        leftover.as_ref().is_none_or(|reply| reply.status == 400),
        "the leftover bytes are refused by hyper: {leftover:?}"
    );

    // 17. Content-Length longer than the body: the server waits for bytes that never come.
    let body17 = server.fresh_body();
    let sig17 = signature_line(&signature_of(&body17));
    let length = format!("content-length: {}", body17.len() + 10);
    let mut conn = server.connect().await;
    conn.send(&request(b"HTTP/1.1", &[&sig17, length.as_bytes()], &body17))
        .await;
    let reply = conn.reply().await.expect("a reply");
    expect(server, "Content-Length longer than the body", &reply, 408).await;
}

/// Stalled and slow bodies against the deadline.
async fn deadlines(server: &Server) {
    // 18. Half the body, then nothing.
    let body18 = server.fresh_body();
    let mut conn = server.connect().await;
    let raw = post_signed(&body18);
    conn.send(&raw[..raw.len() - body18.len() / 2]).await;
    let reply = conn.reply().await.expect("a reply");
    expect(server, "stalled body", &reply, 408).await;

    // 19. A slow trickle that finishes within the deadline is accepted.
    let body19 = server.fresh_body();
    let raw = post_signed(&body19);
    let mut conn = server.connect().await;
    let (head, rest) = raw.split_at(raw.len() - body19.len());
    conn.send(head).await;
    for piece in rest.chunks(rest.len().div_ceil(8)) {
        sleep(Duration::from_millis(60)).await;
        conn.send(piece).await;
    }
    let reply = conn.reply().await.expect("a reply");
    expect(server, "slow trickle within the deadline", &reply, 200).await;

    // 20. A trickle that outlasts the deadline is cut off.
    let body20 = server.fresh_body();
    let raw = post_signed(&body20);
    let mut conn = server.connect().await;
    let (head, rest) = raw.split_at(raw.len() - body20.len());
    conn.send(head).await;
    let started = tokio::time::Instant::now();
    let mut answered = None;
    for piece in rest.chunks(4) {
        sleep(Duration::from_millis(100)).await;
        if conn.stream.get_mut().write_all(piece).await.is_err() || started.elapsed() > DEADLINE {
            answered = conn.reply().await;
            break;
        }
    }
    let reply = answered.expect("a reply once the deadline passed");
    expect(server, "trickle past the deadline", &reply, 408).await;
}

/// HTTP/1.0 and pipelining.
async fn framing(server: &Server, valid: &str) {
    // 21. HTTP/1.0.
    let body21 = server.fresh_body();
    let sig21 = signature_line(&signature_of(&body21));
    let length = format!("content-length: {}", body21.len());
    let mut conn = server.connect().await;
    conn.send(&request(b"HTTP/1.0", &[&sig21, length.as_bytes()], &body21))
        .await;
    let reply = conn.reply().await.expect("a reply");
    assert!(conn.closed().await, "HTTP/1.0 without keep-alive is closed");
    expect(server, "HTTP/1.0", &reply, 200).await;

    // 22. Three pipelined requests in one write: authentic, forged, authentic.
    let (first, second) = (server.fresh_body(), server.fresh_body());
    let mut raw = post_signed(&first);
    raw.extend(post_raw(&[&signature_line(valid)], b"forged"));
    raw.extend(post_signed(&second));
    let mut conn = server.connect().await;
    conn.send(&raw).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(conn.reply().await.expect("a reply").status);
    }
    println!(
        "{:<40} {statuses:?}",
        "pipelined: authentic, forged, authentic"
    );
    assert_eq!(statuses, [200, 401, 200], "pipelined replies in order");
    server.assert_serving("pipelined requests").await;
}

/// Authentic but strange bodies, re-deliveries and header spelling.
async fn authentic_bodies(server: &Server) {
    // 23. Deeply nested JSON in an authentic body: 200, and the worker survives parsing it.
    let depth = (LIMIT - 200) / 2;
    let nested = format!(
        r#"{{"data":{}{},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let reply = server.one(&post_signed(nested.as_bytes())).await;
    expect(server, "deeply nested JSON", &reply, 200).await;
    let id = id_of(nested.as_bytes());
    within("the nested body handled", async {
        while stored_state(server, &id).await != Some(DeliveryState::Done) {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    // 24. Invalid UTF-8 in an authentic body.
    let mut invalid = server.fresh_body();
    invalid.splice(10..10, [0xff, 0xfe, 0xc3]);
    let reply = server.one(&post_signed(&invalid)).await;
    expect(server, "invalid UTF-8 body", &reply, 200).await;

    // 29. An exact re-delivery: 200, not stored again (so handled once, see `finish`).
    let again = server.fresh_body();
    let reply = server.one(&post_signed(&again)).await;
    expect(server, "first delivery", &reply, 200).await;
    let before = server.metrics.snapshot();
    let reply = server.one(&post_signed(&again)).await;
    assert_eq!(reply.status, 200, "re-delivery");
    let after = server.metrics.snapshot();
    assert_eq!(after.duplicates, before.duplicates + 1);
    assert_eq!(
        after.accepted, before.accepted,
        "the re-delivery is not stored"
    );
    expect(server, "re-delivery", &reply, 200).await;
    // 30. Mixed-case header name and surrounding spaces and tabs: the same header.
    let body30 = server.fresh_body();
    let line = format!("X-Webhook-HMAC-SHA256: \t{} \t", signature_of(&body30));
    let reply = server.one(&post_raw(&[line.as_bytes()], &body30)).await;
    expect(server, "mixed-case name, padded value", &reply, 200).await;
}

/// Requests the layer or hyper refuses before any signature matters.
async fn other_requests(server: &Server, body: &[u8], valid: &str) {
    // 25. Any method but POST.
    let mut get = b"GET ".to_vec();
    get.extend_from_slice(ROUTE.as_bytes());
    get.extend_from_slice(b" HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    let reply = server.one(&get).await;
    assert_eq!(reply.header("allow"), Some("POST"));
    expect(server, "GET", &reply, 405).await;

    // 26. A Content-Length that is not a number: hyper answers 400 itself.
    let reply = server
        .one(&request(
            b"HTTP/1.1",
            &[&signature_line(valid), b"content-length: 12abc"],
            body,
        ))
        .await;
    expect(server, "non-numeric Content-Length (hyper)", &reply, 400).await;

    // 27. Two different Content-Length values: hyper answers 400 itself.
    let reply = server
        .one(&request(
            b"HTTP/1.1",
            &[
                &signature_line(valid),
                b"content-length: 10",
                b"content-length: 20",
            ],
            body,
        ))
        .await;
    expect(server, "conflicting Content-Length (hyper)", &reply, 400).await;

    // 28. An obsolete folded header line: hyper answers 400 itself.
    let reply = server
        .one(&post_raw(&[b"x-webhook-hmac-sha256: AAAA", b" BBBB"], body))
        .await;
    expect(server, "folded header (hyper)", &reply, 400).await;
}

/// A flood of unauthenticated requests stores nothing, so the worker handles nothing forged.
#[tokio::test]
async fn a_flood_of_forged_deliveries_stores_nothing_and_the_worker_handles_nothing_forged() {
    const CONNECTIONS: usize = 8;
    const PER_CONNECTION: usize = 50;
    let server = Arc::new(Server::start().await);
    server.assert_serving("start").await;
    let stored = server.settled().await;
    assert_eq!(stored.done, 1, "the authentic delivery was handled");
    let before = server.metrics.snapshot();
    let handled_before = server.handled_count();

    let mut flood = tokio::task::JoinSet::new();
    for n in 0..CONNECTIONS {
        let server = Arc::clone(&server);
        flood.spawn(async move {
            let mut conn = server.connect().await;
            let mut statuses = Vec::new();
            for i in 0..PER_CONNECTION {
                // A valid-looking MAC of another body, under a fresh id each time.
                let body = order_body(&format!("ord_forged_{n}_{i}"));
                let forged = signature_of(format!("{n}/{i}").as_bytes());
                let raw = if i % 5 == 0 {
                    post_raw(&[], &body)
                } else {
                    post_raw(&[&signature_line(&forged)], &body)
                };
                conn.send(&raw).await;
                statuses.push(conn.reply().await.expect("a reply").status);
            }
            statuses
        });
    }
    while let Some(statuses) = within("the flood", flood.join_next()).await {
        let statuses = statuses.expect("the flood task");
        assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    }

    let after = server.metrics.snapshot();
    let sent = (CONNECTIONS * PER_CONNECTION) as u64;
    assert_eq!(after.rejected_total() - before.rejected_total(), sent);
    assert_eq!(
        after.accepted, before.accepted,
        "no forged delivery accepted"
    );
    assert_eq!(
        after.duplicates, before.duplicates,
        "nor taken for a re-delivery"
    );
    assert_eq!(after.unavailable, before.unavailable, "no 503 either");
    assert_eq!(server.counts().await, stored, "nothing forged stored");
    assert!(
        stored_data_ids(&server)
            .await
            .iter()
            .all(|id| !is_forged(id.as_deref())),
        "no forged body in the store"
    );
    assert_eq!(
        server.handled_count(),
        handled_before,
        "nothing more handled"
    );

    server.assert_serving("the flood").await;
    let counts = server.settled().await;
    assert_eq!(
        counts,
        Counts {
            done: stored.done + 1,
            ..stored
        },
        "the authentic delivery after the flood is stored and handled"
    );
    let server = Arc::into_inner(server).expect("the flood tasks are done");
    let handled = Arc::clone(&server.handled);
    let report = finish(server).await;
    assert_eq!(report.handled, 2);
    let handled = handled.lock().unwrap_or_else(PoisonError::into_inner);
    assert!(
        handled.iter().all(|id| !is_forged(id.as_deref())),
        "the worker handled a forged delivery: {handled:?}"
    );
}

fn is_forged(data_id: Option<&str>) -> bool {
    data_id.is_some_and(|id| id.starts_with("ord_forged_"))
}

/// The `data.id` of every delivery the store holds, in any state.
async fn stored_data_ids(server: &Server) -> Vec<Option<String>> {
    let everything = Filter {
        limit: usize::MAX,
        ..Filter::default()
    };
    let stored = server
        .store
        .list(&everything)
        .await
        .expect("the store lists");
    stored
        .into_iter()
        .map(|delivery| delivery.data_id)
        .collect()
}

/// The store id of an authentic delivery of `body`.
fn id_of(body: &[u8]) -> DeliveryId {
    let signature = Signature::parse(signature_of(body)).expect("a valid signature");
    DeliveryId::from_signature(&signature)
}

async fn stored_state(server: &Server, id: &DeliveryId) -> Option<DeliveryState> {
    let stored = server.store.get(id).await.expect("the store reads");
    stored.map(|delivery| delivery.state)
}

async fn expect(server: &Server, case: &str, reply: &Reply, status: u16) {
    println!("{case:<40} {}", reply.status);
    assert_eq!(
        reply.status,
        status,
        "case {case}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    server.assert_serving(case).await;
}

/// A body of the server's kind whose signature contains `+` or `/`.
fn body_whose_signature_has_plus_or_slash(server: &Server) -> (Vec<u8>, String) {
    loop {
        let body = server.fresh_body();
        let signature = signature_of(&body);
        if signature.contains(['+', '/']) {
            return (body, signature);
        }
    }
}

/// Shuts the worker down once the server stored its last delivery: every accepted delivery was
/// handled, once, and nothing is left.
async fn finish(server: Server) -> WorkerReport {
    let accepted = server.metrics.snapshot().accepted;
    let report = within("the worker to stop", server.worker.shutdown())
        .await
        .expect("the worker report");
    assert_eq!(report.handled, accepted);
    assert_eq!(report.left, 0);
    let counts = server
        .store
        .counts()
        .await
        .expect("the memory store counts");
    assert_eq!(
        (counts.backlog(), counts.done, counts.dead),
        (0, accepted, 0),
        "every stored delivery is done"
    );
    let handled = server
        .handled
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    assert_eq!(handled.len() as u64, accepted);
    let mut ids: Vec<&str> = handled.iter().filter_map(Option::as_deref).collect();
    ids.sort_unstable();
    let all = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), all, "a delivery was handled twice: {handled:?}");
    report
}
