//! The background-mode contenders `benches/compare.sh` loads, and the load generator that
//! measures them: verify, de-duplicate, store, answer 200, then a worker runs a handler that
//! does nothing.
//!
//! ```sh
//! cargo build --release --example bench_background --features actix-web,sqlite
//! B=target/release/examples/bench_background
//! BENCH_SECRET=s3cr3t $B background-axum memory 127.0.0.1:3101
//! BENCH_SECRET=s3cr3t $B background-axum sqlite:/var/tmp/bench.db 127.0.0.1:3102
//! BENCH_SECRET=s3cr3t $B background-actix memory 127.0.0.1:3103
//! BENCH_SECRET=s3cr3t $B naive-sqlite /var/tmp/naive.db 127.0.0.1:3104
//! BENCH_SECRET=s3cr3t $B layered-axum 127.0.0.1:3105
//! BENCH_SECRET=s3cr3t $B load http://127.0.0.1:3101/webhooks/printone 5 32 1024
//! # replicas of one store: the connections are spread over them, the counts summed
//! BENCH_SECRET=s3cr3t $B load http://127.0.0.1:3106/webhooks/printone,http://127.0.0.1:3107/webhooks/printone 5 32 1024
//! $B fsync-probe /var/tmp 200
//! ```
//!
//! Every server answers `POST /webhooks/printone` and `GET /stats`, a line
//! `handled=<n> commits=<n> commands=<n> peak_rss_kb=<n>`. The load generator sends distinct
//! deliveries (each body names another order, so none is a re-delivery) over keep-alive
//! connections for the given seconds, waits until the server handled what it accepted or a
//! grace second passed, and prints one line:
//! `ok=<200s> refused=<503s> other=<n> handled=<in the run> rate=<handled/s> p50_us=<n> p99_us=<n>
//! rows_per_commit=<x> peak_rss_kb=<n>`. Only deliveries that got a 200 and were handled count:
//! 503s are refusals, and deliveries still waiting at the end do not count. For a route that
//! answers itself (`layered-axum`), every 200 counts as handled.

use std::{
    error::Error,
    net::SocketAddr,
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    http::StatusCode,
    routing::{get, post},
    Router,
};
use printone_webhooks::{
    actix::{WebhookConfig, WebhookResource},
    sign,
    store::{self, OpenOptions, SharedStore},
    tower::VerifyLayer,
    worker::Worker,
    BoxError, Delivery, Secret, Verifier,
};

const ROUTE: &str = "/webhooks/printone";

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// Deliveries the worker's handler ran on.
static HANDLED: AtomicU64 = AtomicU64::new(0);
/// Commits and commands of the naive receiver (one each per write).
static NAIVE_COMMITS: AtomicU64 = AtomicU64::new(0);

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let raw_secret = std::env::var("BENCH_SECRET").unwrap_or_default();
    let secret = Secret::new(&raw_secret)?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["background-axum", store, addr] => background_axum(&secret, store, addr.parse()?),
        ["background-actix", store, addr] => background_actix(&secret, store, addr.parse()?),
        ["naive-sqlite", path, addr] => naive::serve(&raw_secret, Path::new(path), addr.parse()?),
        ["layered-axum", addr] => layered_axum(&secret, addr.parse()?),
        ["load", url, seconds, connections, size] => load::run(
            &secret,
            url,
            seconds.parse()?,
            connections.parse()?,
            size.parse()?,
        ),
        ["fsync-probe", dir, count] => fsync_probe(Path::new(dir), count.parse()?),
        _ => Err(
            "usage: bench_background background-axum|background-actix STORE ADDR \
                  | naive-sqlite PATH ADDR | layered-axum ADDR \
                  | load URL[,URL...] SECONDS CONNECTIONS SIZE | fsync-probe DIR COUNT"
                .into(),
        ),
    }
}

/// Handlers at once in every background contender (`BENCH_CONCURRENCY`, default 64): the
/// handler does nothing, so a large batch per claim is what a worker needs to keep up.
fn concurrency() -> usize {
    std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(64)
}

async fn nothing(_: Delivery) -> std::result::Result<(), BoxError> {
    HANDLED.fetch_add(1, Relaxed);
    Ok(())
}

async fn open(url: &str) -> Result<SharedStore> {
    let options = OpenOptions {
        capacity: 100_000,
        ..OpenOptions::default()
    };
    Ok(store::open(url, options).await?)
}

/// The `GET /stats` line.
fn stats(store: Option<&SharedStore>) -> String {
    let (commits, commands) = store.map_or_else(
        || {
            let naive = NAIVE_COMMITS.load(Relaxed);
            (naive, naive)
        },
        commit_stats,
    );
    format!(
        "handled={} commits={commits} commands={commands} peak_rss_kb={}\n",
        HANDLED.load(Relaxed),
        peak_rss_kb()
    )
}

/// The SQLite writer's commits and commands (0 for the memory store).
fn commit_stats(store: &SharedStore) -> (u64, u64) {
    let sqlite = store
        .describe()
        .strip_prefix("sqlite:")
        .map(std::path::PathBuf::from);
    sqlite.map_or((0, 0), |_| {
        SQLITE_STATS.lock().map_or((0, 0), |s| {
            s.as_ref()
                .map_or((0, 0), printone_webhooks::store::SqliteStore::commit_stats)
        })
    })
}

/// The SQLite store of this process, to read its commit counters.
static SQLITE_STATS: Mutex<Option<printone_webhooks::store::SqliteStore>> = Mutex::new(None);

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Opens the store; a SQLite one is opened directly so its commit counters can be read, a
/// PostgreSQL one in the schema `BENCH_POSTGRES_SCHEMA` (default `printone_webhooks_bench`;
/// compare.sh drops it before a run).
async fn open_counted(url: &str) -> Result<SharedStore> {
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = printone_webhooks::store::PostgresOptions::new(url)
            .schema(
                std::env::var("BENCH_POSTGRES_SCHEMA")
                    .as_deref()
                    .unwrap_or("printone_webhooks_bench"),
            )
            .capacity(100_000)
            .pool_size(32)
            .connect()
            .await?;
        return Ok(store.into());
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        let sqlite = printone_webhooks::store::SqliteOptions::new(path)
            .capacity(100_000)
            .open()?;
        *SQLITE_STATS.lock().map_err(|_| "poisoned")? = Some(sqlite.clone());
        return Ok(sqlite.into());
    }
    open(url).await
}

fn background_axum(secret: &Secret, url: &str, addr: SocketAddr) -> Result<()> {
    let verifier = Verifier::new(secret.clone());
    tokio::runtime::Runtime::new()?.block_on(async move {
        let store = open_counted(url).await?;
        let _worker = Worker::new(store.clone(), nothing)
            .with_concurrency(concurrency())
            .spawn();
        let stats_store = store.clone();
        let app = Router::new()
            .route_service(ROUTE, VerifyLayer::new(verifier).store_in(store))
            .route(
                "/stats",
                get(move || async move { stats(Some(&stats_store)) }),
            );
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

fn background_actix(secret: &Secret, url: &str, addr: SocketAddr) -> Result<()> {
    use actix_web::{web, App, HttpServer};
    let config = WebhookConfig::new(Verifier::new(secret.clone()));
    let url = url.to_owned();
    actix_web::rt::System::new().block_on(async move {
        let store = open_counted(&url).await?;
        let _worker = Worker::new(store.clone(), nothing)
            .with_concurrency(concurrency())
            .spawn();
        HttpServer::new(move || {
            let stats_store = store.clone();
            App::new()
                .app_data(config.clone())
                .service(WebhookResource::new(ROUTE, store.clone()))
                .route(
                    "/stats",
                    web::get().to(move || {
                        let line = stats(Some(&stats_store));
                        async move { line }
                    }),
                )
        })
        .bind(addr)?
        .run()
        .await?;
        Ok(())
    })
}

fn layered_axum(secret: &Secret, addr: SocketAddr) -> Result<()> {
    async fn accept(body: Bytes) -> StatusCode {
        std::hint::black_box(body);
        HANDLED.fetch_add(1, Relaxed);
        StatusCode::OK
    }
    let app = Router::new()
        .route(
            ROUTE,
            post(accept).layer(VerifyLayer::new(Verifier::new(secret.clone()))),
        )
        .route("/stats", get(|| async { stats(None) }));
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// A receiver written naively: each delivery committed in its own transaction (same SQLite
/// settings: WAL, synchronous=FULL), then handled by a thread that takes one pending row at a
/// time and marks it done in its own transaction.
mod naive {
    use super::{
        get, post, stats, Arc, Bytes, Mutex, Path, Relaxed, Result, Router, SocketAddr, StatusCode,
        HANDLED, NAIVE_COMMITS, ROUTE,
    };
    use axum::{extract::State, http::HeaderMap};
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use hmac::{KeyInit as _, Mac as _};
    use rusqlite::{params, Connection, OptionalExtension as _};

    type Hmac = hmac::Hmac<sha2::Sha256>;

    struct Receiver {
        key: Hmac,
        db: Mutex<Connection>,
    }

    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        connection.execute_batch(
            "PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS deliveries (
                 id BLOB PRIMARY KEY, body BLOB, done INTEGER NOT NULL DEFAULT 0);
             CREATE INDEX IF NOT EXISTS pending ON deliveries (done);",
        )?;
        Ok(connection)
    }

    pub(super) fn serve(secret: &str, path: &Path, addr: SocketAddr) -> Result<()> {
        let receiver = Arc::new(Receiver {
            key: Hmac::new_from_slice(secret.as_bytes())?,
            db: Mutex::new(connect(path)?),
        });
        let worker_db = connect(path)?;
        std::thread::spawn(move || work(&worker_db));
        let app = Router::new()
            .route(ROUTE, post(accept).with_state(receiver))
            .route("/stats", get(|| async { stats(None) }));
        tokio::runtime::Runtime::new()?.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            axum::serve(listener, app).await?;
            Ok(())
        })
    }

    async fn accept(
        State(receiver): State<Arc<Receiver>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let mac = headers
            .get("x-webhook-hmac-sha256")
            .and_then(|value| STANDARD.decode(value.as_bytes()).ok());
        let mut state = receiver.key.clone();
        state.update(&body);
        let Some(mac) = mac.filter(|mac| state.verify_slice(mac).is_ok()) else {
            return StatusCode::UNAUTHORIZED;
        };
        let stored = tokio::task::spawn_blocking(move || {
            let db = receiver.db.lock().map_err(|_| "poisoned")?;
            db.execute(
                "INSERT INTO deliveries (id, body) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![mac, body.as_ref()],
            )?;
            NAIVE_COMMITS.fetch_add(1, Relaxed);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .await;
        match stored {
            Ok(Ok(())) => StatusCode::OK,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Takes one pending row at a time and marks it done, each in its own transaction.
    fn work(db: &Connection) {
        loop {
            let next: Option<Vec<u8>> = db
                .query_row(
                    "SELECT id FROM deliveries WHERE done = 0 LIMIT 1",
                    [],
                    |row| row.get(0),
                )
                .optional()
                .unwrap_or(None);
            let Some(id) = next else {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            };
            if db
                .execute(
                    "UPDATE deliveries SET done = 1, body = NULL WHERE id = ?1",
                    params![id],
                )
                .is_ok()
            {
                NAIVE_COMMITS.fetch_add(1, Relaxed);
                HANDLED.fetch_add(1, Relaxed);
            }
        }
    }
}

/// The load generator: distinct signed deliveries over keep-alive connections.
mod load {
    use super::{sign, Arc, AtomicU64, Duration, Instant, Relaxed, Result, Secret};
    use tokio::{
        io::{AsyncReadExt as _, AsyncWriteExt as _},
        net::TcpStream,
    };

    struct Tally {
        ok: AtomicU64,
        refused: AtomicU64,
        other: AtomicU64,
        next: AtomicU64,
        latencies: std::sync::Mutex<Vec<u32>>,
    }

    /// Loads the receivers at `urls` (comma-separated: replicas of one store), spreading the
    /// connections over them in turn; counts, memory and commits are those of all of them.
    pub(super) fn run(
        secret: &Secret,
        urls: &str,
        seconds: f64,
        connections: usize,
        size: usize,
    ) -> Result<()> {
        let targets = urls.split(',').map(target).collect::<Result<Vec<_>>>()?;
        let hosts: Vec<String> = targets.iter().map(|(host, _)| host.clone()).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let before = settled(&hosts).await?;
            let tally = Arc::new(Tally {
                ok: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                other: AtomicU64::new(0),
                // Numbered from the clock, so no run repeats an earlier run's deliveries: a
                // repeated body is a re-delivery, answered without being stored or handled.
                next: AtomicU64::new(first_number()),
                latencies: std::sync::Mutex::new(Vec::new()),
            });
            let stop = Instant::now() + Duration::from_secs_f64(seconds);
            let started = Instant::now();
            let tasks: Vec<_> = (0..connections)
                .map(|n| {
                    let (host, path) = targets[n % targets.len()].clone();
                    let (tally, secret) = (Arc::clone(&tally), secret.clone());
                    tokio::spawn(async move { connection(&tally, &secret, &host, &path, size, stop).await })
                })
                .collect();
            for task in tasks {
                task.await??;
            }
            let elapsed = started.elapsed().as_secs_f64();
            // What was accepted and handled within the run: the handled count right after the
            // load stopped (deliveries still waiting do not count).
            let after = handled(&hosts).await?;
            let (commits, commands, rss) = totals(&hosts).await?;
            let ok = tally.ok.load(Relaxed);
            let in_run = after.saturating_sub(before).min(ok);
            let mut latencies = tally.latencies.lock().map_err(|_| "poisoned")?.clone();
            latencies.sort_unstable();
            let pick = |q: f64| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
                let index = ((latencies.len().saturating_sub(1)) as f64 * q) as usize;
                latencies.get(index).copied().unwrap_or(0)
            };
            #[allow(clippy::cast_precision_loss)]
            let rows = if commits > 0 { commands as f64 / commits as f64 } else { 0.0 };
            #[allow(clippy::cast_precision_loss)]
            let rate = in_run as f64 / elapsed;
            println!(
                "ok={ok} refused={} other={} handled={in_run} rate={rate:.0} p50_us={} p99_us={} rows_per_commit={rows:.1} peak_rss_kb={rss}",
                tally.refused.load(Relaxed),
                tally.other.load(Relaxed),
                pick(0.5),
                pick(0.99),
            );
            // The next contender shares this server's core: let this one's worker finish
            // what it accepted first, so it takes no time from the next run.
            settled(&hosts).await?;
            Ok(())
        })
    }

    /// The host and path of an `http://` URL.
    fn target(url: &str) -> Result<(String, String)> {
        let rest = url.strip_prefix("http://").ok_or("an http:// URL")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        Ok((host.to_owned(), path.to_owned()))
    }

    /// Commits, commands and peak memory summed over the receivers.
    async fn totals(hosts: &[String]) -> Result<(u64, u64, u64)> {
        let mut sum = (0, 0, 0);
        for host in hosts {
            let (commits, commands, rss) = parse_stats(&stats_line(host).await?);
            sum = (sum.0 + commits, sum.1 + commands, sum.2 + rss);
        }
        Ok(sum)
    }

    async fn connection(
        tally: &Tally,
        secret: &Secret,
        host: &str,
        path: &str,
        size: usize,
        stop: Instant,
    ) -> Result<()> {
        let mut stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let mut buffer = Vec::with_capacity(4096);
        let mut latencies = Vec::new();
        while Instant::now() < stop {
            let n = tally.next.fetch_add(1, Relaxed);
            let body = body(n, size);
            let request = format!(
                "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\nx-webhook-hmac-sha256: {}\r\ncontent-length: {}\r\n\r\n",
                sign(secret, body.as_bytes()),
                body.len()
            );
            let sent = Instant::now();
            stream.write_all(request.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            let status = read_response(&mut stream, &mut buffer).await?;
            latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            match status {
                200 => tally.ok.fetch_add(1, Relaxed),
                503 => tally.refused.fetch_add(1, Relaxed),
                _ => tally.other.fetch_add(1, Relaxed),
            };
        }
        tally
            .latencies
            .lock()
            .map_err(|_| "poisoned")?
            .extend(latencies);
        Ok(())
    }

    /// A `size`-byte order envelope naming order `n`: every body is another delivery.
    /// The first delivery number of a run: the nanoseconds since the epoch, far beyond the
    /// numbers an earlier run on this machine used.
    fn first_number() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX / 2)
            })
    }

    fn body(n: u64, size: usize) -> String {
        let head = format!(r#"{{"data":{{"id":"ord_{n}","note":""#);
        let tail = r#""},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;
        let fill = size.saturating_sub(head.len() + tail.len());
        format!("{head}{}{tail}", "x".repeat(fill))
    }

    /// Reads one response; returns its status.
    async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<u16> {
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buffer[..end])?.to_owned();
                let status: u16 = head.split(' ').nth(1).ok_or("no status")?.parse()?;
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let total = end + 4 + length;
                while buffer.len() < total {
                    read_more(stream, buffer).await?;
                }
                buffer.drain(..total);
                return Ok(status);
            }
            read_more(stream, buffer).await?;
        }
    }

    async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<()> {
        let mut chunk = [0_u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn stats_line(host: &str) -> Result<String> {
        let mut stream = TcpStream::connect(host).await?;
        let request = format!("GET /stats HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_owned())
    }

    /// The handled count of the receivers once it stopped moving (what an earlier run left
    /// is handled first), or after 60 s.
    async fn settled(hosts: &[String]) -> Result<u64> {
        let give_up = Instant::now() + Duration::from_secs(60);
        let mut last = handled(hosts).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = handled(hosts).await?;
            if now == last || Instant::now() > give_up {
                return Ok(now);
            }
            last = now;
        }
    }

    /// Deliveries the receivers handled, summed.
    async fn handled(hosts: &[String]) -> Result<u64> {
        let mut sum = 0;
        for host in hosts {
            sum += field(&stats_line(host).await?, "handled");
        }
        Ok(sum)
    }

    fn field(line: &str, name: &str) -> u64 {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or(0)
    }

    fn parse_stats(line: &str) -> (u64, u64, u64) {
        (
            field(line, "commits"),
            field(line, "commands"),
            field(line, "peak_rss_kb"),
        )
    }
}

/// Writes 4 KiB and `fdatasync`s it `count` times in `dir`, and prints the mean time per sync.
fn fsync_probe(dir: &Path, count: u32) -> Result<()> {
    use std::io::Write as _;
    let path = dir.join(format!("fsync-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let block = [b'x'; 4096];
    let start = Instant::now();
    for _ in 0..count {
        file.write_all(&block)?;
        file.sync_data()?;
    }
    let per_sync = start.elapsed() / count.max(1);
    std::fs::remove_file(&path)?;
    println!("fsync_us={}", per_sync.as_micros());
    Ok(())
}
