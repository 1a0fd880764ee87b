//! The axum example receiver on the PostgreSQL store, as real processes: three replicas on one
//! database, one of them killed with `kill -9` under load; and one receiver whose database
//! server stops under load and starts again. Deliveries go over real HTTP on 127.0.0.1; what
//! was handled is read from the receivers' `handled event=… id=…` lines, what is left in the
//! store from the `deliveries` table (through `psql`).
//!
//! They run against the server `PRINTONE_TEST_POSTGRES_URL` names (each test in a database of
//! its own, dropped afterwards); without it they are skipped with a note, except under CI
//! (`CI` set), where they must run. The outage test also needs PostgreSQL's `initdb` and
//! `pg_ctl` (`/usr/lib/postgresql/*/bin/`) for a server of its own, which it stops and starts.

mod common;

use std::{
    collections::{hash_map::RandomState, HashMap, HashSet},
    env, fs,
    hash::{BuildHasher, Hasher},
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use printone_webhooks::{sign, Secret};

const SECRET: &str = "pO1_webhook_replicas_8Tz3Kd6Wq1Nx4Hb7";
const ROUTE: &str = "/webhooks/printone";
/// Handlers running at once in every receiver here: the most deliveries a kill (or an outage)
/// can catch handled but not yet recorded, and so the most that may be handled twice.
const CONCURRENCY: usize = 2;
/// The lease on a delivery being handled. PostgreSQL holds no owner lock a killed replica
/// would release: its deliveries come back to the others when their leases expire.
const LEASE_MS: &str = "2000";
/// How long the demo handler works on each delivery.
const HANDLER_DELAY_MS: &str = "30";
/// The longest one step (a start, an exit, one answer) may take before the test fails
/// instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);
/// The longest the backlog may take to drain, leases of the dead included.
const DRAIN: Duration = Duration::from_secs(30);
const ORDER: &str = "order_status_update";
/// The schema the store keeps its tables in (`store::open`'s default).
const SCHEMA: &str = "printone_webhooks";

// ---- The test server -------------------------------------------------------------------

/// `url` with its database replaced by `database` (the query string is kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").expect("a postgres:// URL");
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Runs `sql` with `psql` on `url`; its output (unaligned, tuples only), or the error.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("psql does not run: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "psql {sql:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A name no other test (in this run or another) uses.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(NEXT.fetch_add(1, Ordering::SeqCst));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos()),
    );
    format!("{prefix}_{:016x}", hasher.finish())
}

/// A database of the test's own on the test server, dropped (`WITH (FORCE)`) when it goes.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    fn create(server: &str) -> Self {
        let name = unique_name("printone_replicas");
        psql(server, &format!("CREATE DATABASE {name}")).unwrap_or_else(|error| panic!("{error}"));
        Self {
            admin: server.to_owned(),
            url: with_database(server, &name),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = psql(&self.admin, &drop) {
            eprintln!("{error}");
        }
    }
}

/// How many deliveries in the store at `url` still wait (pending or leased): 0 once every
/// stored delivery was handled or dead-lettered.
fn waiting(url: &str) -> usize {
    let sql = format!("SELECT count(*) FROM {SCHEMA}.deliveries WHERE state IN (0, 1)");
    psql(url, &sql)
        .unwrap_or_else(|error| panic!("{error}"))
        .parse()
        .expect("a count")
}

/// How many deliveries in the store at `url` are leased: their handlers run (or ran, in a
/// replica that died).
fn leased(url: &str) -> usize {
    let sql = format!("SELECT count(*) FROM {SCHEMA}.deliveries WHERE state = 1");
    psql(url, &sql)
        .unwrap_or_else(|error| panic!("{error}"))
        .parse()
        .expect("a count")
}

/// How many deliveries in the store at `url` were leased more than once: taken again after a
/// lease expired.
fn taken_again(url: &str) -> usize {
    let sql = format!("SELECT count(*) FROM {SCHEMA}.deliveries WHERE attempts > 1");
    psql(url, &sql)
        .unwrap_or_else(|error| panic!("{error}"))
        .parse()
        .expect("a count")
}

/// Waits (bounded) until nothing waits in the store at `url`: no handler prints anything more.
fn wait_until_settled(url: &str) {
    let deadline = Instant::now() + DRAIN;
    loop {
        let left = waiting(url);
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{left} deliveries still wait in the store after {DRAIN:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

// ---- The receivers ---------------------------------------------------------------------

/// A running axum example receiver: its address, its stdout lines and its log.
struct Receiver {
    name: String,
    child: Child,
    address: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
    log: Arc<Mutex<String>>,
}

impl Receiver {
    /// Starts the receiver on the store `store`, on a port the system picks, with `settings`
    /// over the defaults of these tests; returns once it listens.
    fn start(name: &str, store: &str, settings: &[(&str, &str)]) -> Self {
        let mut command = Command::new(common::example_binary("axum"));
        for (variable, _) in env::vars_os() {
            if variable.to_string_lossy().starts_with("PRINTONE_") {
                command.env_remove(variable);
            }
        }
        command
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .env("PRINTONE_BIND", "127.0.0.1:0")
            .env("PRINTONE_WEBHOOK_SECRET", SECRET)
            .env("PRINTONE_STORE", store)
            .env("PRINTONE_CONCURRENCY", CONCURRENCY.to_string())
            .env("PRINTONE_LEASE_MS", LEASE_MS)
            .env("PRINTONE_DEMO_HANDLER_DELAY_MS", HANDLER_DELAY_MS)
            .env("PRINTONE_QUEUE_CAPACITY", "100000")
            .env("RUST_LOG", "info")
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the example receiver starts");
        let common::Captured {
            stdout,
            reader,
            log,
            listening,
        } = common::capture(&mut child);
        let address = listening;
        let mut receiver = Self {
            name: name.to_owned(),
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            reader: Some(reader),
            log,
        };
        receiver.address = address
            .recv_timeout(PATIENCE)
            .ok()
            .and_then(|line| listening_address(&line))
            .unwrap_or_else(|| {
                panic!(
                    "the receiver {} did not log `listening on`:\n{}",
                    receiver.name,
                    receiver.log()
                )
            });
        receiver
    }

    fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The data ids of the `handled` lines printed so far, in order.
    fn handled(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|line| handled_id(line))
            .collect()
    }

    /// `kill -9`: the receiver gets no chance to finish or record anything. Returns the ids of
    /// every `handled` line it printed.
    fn kill(mut self) -> Vec<String> {
        self.child.kill().expect("SIGKILL is sent");
        let status = self.child.wait().expect("the killed receiver is reaped");
        assert_eq!(status.code(), None, "the receiver exited before the kill");
        self.read_to_end()
    }

    /// SIGTERM, as a service manager stops a receiver: waits (bounded) for the exit. Returns
    /// the exit status and the ids of every `handled` line.
    fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("`kill` runs");
        assert!(sent.success(), "kill -TERM failed");
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the receiver's status") {
                break status;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the receiver {} did not exit within {PATIENCE:?} of SIGTERM:\n{}",
                self.name,
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        };
        (status, self.read_to_end())
    }

    fn read_to_end(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stdout reader");
        }
        self.handled()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("--- the receiver {}'s log ---\n{}", self.name, self.log());
        }
    }
}

/// The address of a `listening on http://ADDRESS/webhooks/printone` log line.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let (_, url) = line.split_once("listening on http://")?;
    url.split('/').next()?.parse().ok()
}

/// The data id of a `handled event=<event> id=<data.id>` line.
fn handled_id(line: &str) -> Option<String> {
    let rest = line.strip_prefix("handled event=")?;
    let (_, id) = rest.split_once(" id=")?;
    Some(id.to_owned())
}

/// Waits (bounded by `DRAIN`) until every id in `ids` is among the ids `handled` returns.
fn wait_until_handled(
    ids: &[String],
    handled: impl Fn() -> Vec<String>,
    logs: impl Fn() -> String,
) {
    let deadline = Instant::now() + DRAIN;
    loop {
        let seen: HashSet<String> = handled().into_iter().collect();
        let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains(*id)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} deliveries that got their 200 were not handled within {DRAIN:?}: {missing:?}\n{}",
            missing.len(),
            logs()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- Deliveries ------------------------------------------------------------------------

/// A signed delivery for the object `id`.
struct Delivery {
    id: String,
    body: String,
    signature: String,
}

fn delivery(id: String) -> Delivery {
    let body = format!(
        r#"{{"data":{{"id":"{id}","status":"order_processed"}},"event":"{ORDER}","created_at":"2024-06-03T13:14:46.501Z"}}"#
    );
    let secret = Secret::new(SECRET).expect("the test secret is not empty");
    let signature = sign(&secret, body.as_bytes());
    Delivery {
        id,
        body,
        signature,
    }
}

/// What a receiver answered: the status and its `Retry-After`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
}

/// Posts `delivery` as Print.one does, over a connection of its own. The answer, or `None`
/// when the receiver answered nothing (refused, reset, closed, or silent for `PATIENCE`).
fn post(address: SocketAddr, delivery: &Delivery) -> Option<Answer> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    stream.set_write_timeout(Some(PATIENCE)).ok()?;
    let request = format!(
        "POST {ROUTE} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         x-printone-event: {ORDER}\r\nx-webhook-hmac-sha256: {}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{}",
        delivery.signature,
        delivery.body.len(),
        delivery.body
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let mut chunk = [0; 1024];
    // Until the server closes; a reset after the head still counts as that answer.
    while let Ok(read) = stream.read(&mut chunk) {
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
    }
    let response = String::from_utf8_lossy(&response);
    let head = response.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse().ok()?,
        _ => return None,
    };
    let retry_after = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().to_owned())
    });
    Some(Answer {
        status,
        retry_after,
    })
}

fn is_ok(answer: Option<&Answer>) -> bool {
    answer.is_some_and(|answer| answer.status == 200)
}

/// How many times each id occurs in `handled`.
fn counts<'a>(handled: impl IntoIterator<Item = &'a String>) -> HashMap<&'a String, usize> {
    let mut counts = HashMap::new();
    for id in handled {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

// ---- Three replicas, one killed under load ----------------------------------------------

/// Distinct deliveries sent, round-robin over the replicas that are alive.
const DELIVERIES: usize = 150;
/// Every `RESEND_EVERY`th delivery sent, an earlier one is sent again to another replica.
const RESEND_EVERY: usize = 4;
/// How far back the re-sent delivery is: long enough for most to be handled already.
const RESEND_LAG: usize = 10;
/// The deliveries sent one after the other before the burst and the kill.
const KILL_AFTER: usize = 70;
/// Deliveries sent all at once just before the kill.
const BURST: usize = 24;

/// What was sent through the kill: for each delivery the replica it was first sent to and the
/// answer; the re-sends (the delivery, the replica, the answer); and what the killed replica
/// had handled.
struct Sending {
    first: Vec<(usize, Option<Answer>)>,
    resends: Vec<(usize, usize, Option<Answer>)>,
    before: Vec<String>,
}

/// Sends `deliveries` round-robin over the live `replicas` (on the store at `url`), re-sends
/// some to another replica, and kills the first replica in the middle of it.
fn send_through_a_kill(
    url: &str,
    replicas: &mut [Option<Receiver>],
    deliveries: &[Delivery],
) -> Sending {
    let victim = 0;
    let mut killed: Option<Vec<String>> = None;
    // For each delivery, the replica it was first sent to and the answer.
    let mut first: Vec<(usize, Option<Answer>)> = Vec::with_capacity(DELIVERIES);
    // The re-sends: the delivery, the replica it went to, the answer.
    let mut resends: Vec<(usize, usize, Option<Answer>)> = Vec::new();

    let alive = |replicas: &[Option<Receiver>]| -> Vec<usize> {
        (0..replicas.len())
            .filter(|&n| replicas[n].is_some())
            .collect()
    };
    let mut n = 0;
    while n < DELIVERIES {
        let live = alive(replicas);
        let to = live[n % live.len()];
        let address = replicas[to].as_ref().expect("alive").address;
        first.push((to, post(address, &deliveries[n])));

        if n % RESEND_EVERY == RESEND_EVERY - 1 && n >= RESEND_LAG {
            let earlier = n - RESEND_LAG;
            let (sent_to, answer) = &first[earlier];
            if is_ok(answer.as_ref()) {
                let other = live
                    .iter()
                    .copied()
                    .find(|&r| r != *sent_to)
                    .expect("two replicas are alive");
                let address = replicas[other].as_ref().expect("alive").address;
                resends.push((earlier, other, post(address, &deliveries[earlier])));
            }
        }
        n += 1;

        if n == KILL_AFTER {
            // A burst from several clients at once builds a backlog in the shared store: the
            // kill comes while every replica's handlers are busy, the victim's among them.
            let addresses: Vec<SocketAddr> = replicas
                .iter()
                .map(|r| r.as_ref().expect("all alive").address)
                .collect();
            let burst: Vec<(usize, Option<Answer>)> = thread::scope(|scope| {
                let posts: Vec<_> = (n..n + BURST)
                    .map(|m| {
                        let (to, delivery) = (m % addresses.len(), &deliveries[m]);
                        let address = addresses[to];
                        scope.spawn(move || (to, post(address, delivery)))
                    })
                    .collect();
                posts
                    .into_iter()
                    .map(|post| post.join().expect("a burst client"))
                    .collect()
            });
            first.extend(burst);
            n += BURST;
            let busy = 3 * CONCURRENCY;
            let deadline = Instant::now() + PATIENCE;
            while leased(url) < busy {
                assert!(
                    Instant::now() < deadline,
                    "fewer than {busy} deliveries leased at once after the burst"
                );
            }
            let receiver = replicas[victim].take().expect("the victim is alive");
            let address = receiver.address;
            killed = Some(receiver.kill());
            // Nobody answers at its address any more.
            assert_eq!(
                post(address, &deliveries[0]),
                None,
                "the killed replica answered"
            );
        }
    }
    let before = killed.expect("the victim was killed");
    Sending {
        first,
        resends,
        before,
    }
}

/// The promise across the kill: each replica handled each delivery at most once, and nothing
/// that was never sent; the survivors never both handled one; only a delivery whose handler
/// ran at the kill is handled again; every re-send to another replica was not handled again.
fn assert_handled_once_across_the_kill(
    deliveries: &[Delivery],
    sending: &Sending,
    printed: &[(String, Vec<String>)],
    recovered: usize,
) {
    let Sending {
        resends, before, ..
    } = sending;
    let acknowledged: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    // Handled at most once by each replica, and nothing that was never sent.
    let sent: HashSet<&String> = acknowledged.iter().collect();
    for (name, handled) in printed
        .iter()
        .map(|(name, handled)| (name.as_str(), handled))
        .chain([("the killed replica", before)])
    {
        let twice: Vec<&String> = counts(handled)
            .into_iter()
            .filter(|(_, count)| *count > 1)
            .map(|(id, _)| id)
            .collect();
        assert!(twice.is_empty(), "{name} handled twice: {twice:?}");
        let unknown: Vec<&String> = handled.iter().filter(|id| !sent.contains(id)).collect();
        assert!(
            unknown.is_empty(),
            "{name} handled what was never sent: {unknown:?}"
        );
    }
    // Two survivors never handle one delivery both.
    let (left, right) = (&printed[0].1, &printed[1].1);
    let shared: Vec<&String> = left.iter().filter(|id| right.contains(id)).collect();
    assert!(shared.is_empty(), "handled by both survivors: {shared:?}");
    // Only a delivery whose handler ran at the kill (one of the last `CONCURRENCY` the
    // killed replica printed; its result never recorded) is handled again, by a survivor.
    let again: Vec<&String> = before
        .iter()
        .filter(|id| left.contains(id) || right.contains(id))
        .collect();
    let at_the_kill = &before[before.len().saturating_sub(CONCURRENCY)..];
    let early: Vec<&&String> = again
        .iter()
        .filter(|id| !at_the_kill.contains(id))
        .collect();
    assert!(
        again.len() <= CONCURRENCY && early.is_empty(),
        "handled again after the kill: {again:?}; only the last {CONCURRENCY} the killed \
         replica handled ({at_the_kill:?}) may be"
    );
    // Every re-send was answered 200 by a replica that did not handle the delivery again:
    // with the duplicates of the kill set aside, each delivery was handled exactly once.
    let all = counts(
        printed
            .iter()
            .flat_map(|(_, handled)| handled)
            .chain(before),
    );
    let resent_twice: Vec<&String> = resends
        .iter()
        .map(|(n, _, _)| &deliveries[*n].id)
        .filter(|id| all.get(id).copied().unwrap_or(0) > 1 && !again.contains(id))
        .collect();
    assert!(
        resent_twice.is_empty(),
        "re-sent to another replica and handled again: {resent_twice:?}"
    );
    eprintln!(
        "replicas: {} acknowledged, {} re-sent, {} handled by the killed replica, {recovered} \
         taken again after the kill, {} of them handled twice",
        acknowledged.len(),
        resends.len(),
        before.len(),
        again.len()
    );
    for id in &acknowledged {
        let expected = if again.contains(&id) { 2 } else { 1 };
        assert_eq!(all.get(id).copied(), Some(expected), "{id} handled");
    }
}

#[test]
fn three_replicas_on_one_database_handle_every_acknowledged_delivery_once_across_a_kill() {
    let Some(server) = common::postgres_url() else {
        return;
    };
    let database = Database::create(&server);
    // One after the other: the first creates the schema, the others find it.
    // The victim (replica 0) works for seconds on each delivery, so it certainly holds leases
    // when it is killed, and the survivors must take them over once they expire.
    let mut replicas: Vec<Option<Receiver>> = (0..3)
        .map(|n| {
            let slow: &[(&str, &str)] = if n == 0 {
                &[("PRINTONE_DEMO_HANDLER_DELAY_MS", "5000")]
            } else {
                &[]
            };
            Some(Receiver::start(
                &format!("replica-{n}"),
                &database.url,
                slow,
            ))
        })
        .collect();
    let deliveries: Vec<Delivery> = (0..DELIVERIES)
        .map(|n| delivery(format!("ord_replicas_{n}")))
        .collect();
    let sending = send_through_a_kill(&database.url, &mut replicas, &deliveries);
    let Sending {
        first,
        resends,
        before,
    } = &sending;

    // Every delivery sent to a live replica got its 200; the ones sent to the victim before
    // the kill too (it was killed after they were answered).
    let refused: Vec<(usize, &(usize, Option<Answer>))> = first
        .iter()
        .enumerate()
        .filter(|(_, (_, answer))| !is_ok(answer.as_ref()))
        .collect();
    assert!(refused.is_empty(), "not answered 200: {refused:?}");
    let acknowledged: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    let bad_resends: Vec<_> = resends
        .iter()
        .filter(|(_, _, answer)| !is_ok(answer.as_ref()))
        .collect();
    assert!(
        bad_resends.is_empty(),
        "re-sends to another replica not answered 200: {bad_resends:?}"
    );
    assert!(
        resends.len() >= 25,
        "only {} deliveries were re-sent",
        resends.len()
    );
    assert!(
        resends.iter().all(|(n, to, _)| first[*n].0 != *to),
        "a re-send went to the replica of the first send"
    );

    let survivors: Vec<&Receiver> = replicas.iter().flatten().collect();
    assert_eq!(survivors.len(), 2);
    let union = || -> Vec<String> {
        survivors
            .iter()
            .flat_map(|r| r.handled())
            .chain(before.iter().cloned())
            .collect()
    };
    let logs = || -> String {
        survivors.iter().fold(String::new(), |mut text, r| {
            text.push_str("--- ");
            text.push_str(&r.name);
            text.push_str(" ---\n");
            text.push_str(&r.log());
            text
        })
    };
    wait_until_handled(&acknowledged, union, logs);
    wait_until_settled(&database.url);
    // The killed replica's leases expired, and the survivors took those deliveries.
    let recovered = taken_again(&database.url);
    assert!(
        (1..=CONCURRENCY).contains(&recovered),
        "{recovered} deliveries were taken again after a lease expired: the kill should \
         leave 1 to {CONCURRENCY}"
    );

    let mut printed: Vec<(String, Vec<String>)> = Vec::new();
    for receiver in replicas.into_iter().flatten() {
        let name = receiver.name.clone();
        let (status, handled) = receiver.terminate();
        assert_eq!(
            status.code(),
            Some(0),
            "{name}'s exit after SIGTERM: {status}"
        );
        printed.push((name, handled));
    }

    assert_handled_once_across_the_kill(&deliveries, &sending, &printed, recovered);
}

// ---- A database server that stops under load --------------------------------------------

/// PostgreSQL's `bin` folder of the newest installed version with `initdb`, if any.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(Path::file_name)
            .and_then(|version| version.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A PostgreSQL cluster of the test's own in a temporary folder, on a free port: stopped and
/// deleted when it goes. Run as `postgres` when the test runs as root (initdb refuses root).
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn new(bin: PathBuf) -> Self {
        let dir = env::temp_dir().join(unique_name("printone-cluster"));
        fs::create_dir_all(&dir).expect("the cluster's folder");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self {
            bin,
            dir,
            port,
            as_postgres: is_root(),
        };
        if cluster.as_postgres {
            let chowned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .expect("chown runs");
            assert!(chowned.success(), "chown the cluster's folder to postgres");
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `bin/program args…` (as `postgres` when the test is root); panics when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let (status, output) = self.try_run(program, args);
        assert!(status, "{program} {args:?} failed:\n{output}");
    }

    fn try_run(&self, program: &str, args: &[&str]) -> (bool, String) {
        let program = self.bin.join(program);
        let output = if self.as_postgres {
            let mut line = shell_quote(&program.display().to_string());
            for arg in args {
                line.push(' ');
                line.push_str(&shell_quote(arg));
            }
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &line])
                .stdin(Stdio::null())
                .output()
        } else {
            Command::new(&program)
                .args(args)
                .stdin(Stdio::null())
                .output()
        }
        .expect("the PostgreSQL program runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k /tmp -c fsync=off",
            self.port
        );
        let log = self.dir.join("server.log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "start", "-w", "-t", "30", "-D", &data, "-l", &log, "-o", &options,
            ],
        );
    }

    /// `pg_ctl stop -m fast`: sessions are ended, the server stops.
    fn stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["stop", "-w", "-t", "30", "-m", "fast", "-D", &data],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.try_run(
            "pg_ctl",
            &["stop", "-w", "-t", "30", "-m", "immediate", "-D", &data],
        );
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// One delivery of the load: when it was sent, what was answered, how long the answer took.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    at: Instant,
    answered: Instant,
    answer: Option<Answer>,
}

/// Sends distinct deliveries to `address` one after the other until `stop`.
fn load(address: SocketAddr, stop: &AtomicBool, log: &Mutex<Vec<Sent>>) {
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let delivery = delivery(format!("ord_outage_{n}"));
        let at = Instant::now();
        let answer = post(address, &delivery);
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Sent {
                id: delivery.id,
                at,
                answered: Instant::now(),
                answer,
            });
        thread::sleep(Duration::from_millis(5));
    }
}

/// The longest any one delivery may wait for its answer, the server down or not.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// `GET /readyz` on the admin listener: its status and body.
fn readyz(admin: std::net::SocketAddr) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    let request = format!("GET /readyz HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.split(' ').nth(1)?.parse().ok()?, body.to_owned()))
}

/// Waits (bounded) until `/readyz` answers `status`; returns its body.
fn wait_for_readyz(admin: std::net::SocketAddr, status: u16) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some((code, body)) = readyz(admin) {
            if code == status {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not answer {status} within {PATIENCE:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_database_that_stops_under_load_gets_503s_no_200_for_what_was_not_stored_and_recovery() {
    let Some(_) = common::postgres_url() else {
        return;
    };
    let Some(bin) = postgres_bin() else {
        let note = "\nPostgreSQL outage test skipped: no /usr/lib/postgresql/*/bin/initdb\n";
        let _ = std::io::stderr().write_all(note.as_bytes());
        return;
    };
    let cluster = Cluster::new(bin);
    cluster.start();
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port for the admin listener");
    let admin_text = admin.to_string();
    let receiver = Receiver::start(
        "outage",
        &cluster.url(),
        &[("PRINTONE_ADMIN_BIND", admin_text.as_str())],
    );
    assert_eq!(readyz(admin), Some((200, "ready\n".to_owned())));
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = {
        let (address, stop, log) = (receiver.address, Arc::clone(&stop), Arc::clone(&log));
        thread::spawn(move || load(address, &stop, &log))
    };
    let sent = || log.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let count = |since: Instant, status: u16| {
        sent()
            .iter()
            .filter(|s| s.at >= since && s.answer.as_ref().is_some_and(|a| a.status == status))
            .count()
    };
    let wait_for = |what: &str, since: Instant, status: u16, how_many: usize| {
        let deadline = Instant::now() + PATIENCE;
        while count(since, status) < how_many {
            assert!(
                Instant::now() < deadline,
                "{what}: fewer than {how_many} answers {status} within {PATIENCE:?}: {:?}\n{}",
                sent().last(),
                receiver.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    };

    let began = Instant::now();
    wait_for("before the stop", began, 200, 30);
    let stopping = Instant::now();
    cluster.stop();
    let stopped = Instant::now();
    // Down: 503s, and no 200 for what arrived after the server was gone.
    wait_for("the server down", stopped, 503, 5);
    let unready = wait_for_readyz(admin, 503);
    assert!(unready.starts_with("store unavailable"), "{unready}");
    thread::sleep(Duration::from_secs(1));
    let restarting = Instant::now();
    cluster.start();
    let restarted = Instant::now();
    wait_for("after the restart", restarted, 200, 30);
    assert_eq!(wait_for_readyz(admin, 200), "ready\n");
    stop.store(true, Ordering::SeqCst);
    client.join().expect("the load");
    let sent = sent();

    let slow: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.answer.is_none() || s.answered - s.at > ANSWER_WITHIN)
        .collect();
    assert!(
        slow.is_empty(),
        "not answered within {ANSWER_WITHIN:?}: {slow:?}\n{}",
        receiver.log()
    );
    let down: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.at >= stopped && s.answered <= restarting)
        .collect();
    assert!(!down.is_empty());
    let not_503: Vec<&&Sent> = down
        .iter()
        .filter(|s| {
            s.answer.as_ref().is_none_or(|answer| {
                answer.status != 503
                    || answer
                        .retry_after
                        .as_deref()
                        .is_none_or(|after| after.parse::<u64>().is_err())
            })
        })
        .collect();
    assert!(
        not_503.is_empty(),
        "answered while the server was down, other than 503 with Retry-After: {not_503:?}"
    );
    // Around the stop and the start, only 200 and 503 (nothing else: no 500, no hang).
    let others: Vec<&Sent> = sent
        .iter()
        .filter(|s| {
            s.answer
                .as_ref()
                .is_some_and(|a| !matches!(a.status, 200 | 503))
        })
        .collect();
    assert!(others.is_empty(), "neither 200 nor 503: {others:?}");
    // 200s before the stop, and again after the restart without anyone's help.
    assert!(sent
        .iter()
        .any(|s| s.answered < stopping && is_ok(s.answer.as_ref())));
    assert!(sent
        .iter()
        .any(|s| s.at >= restarted && is_ok(s.answer.as_ref())));

    // Half of the deliveries answered 503 are sent again, as Print.one would: now 200.
    let refused: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.answer.as_ref().is_some_and(|a| a.status == 503))
        .collect();
    let resent: Vec<String> = refused.iter().step_by(2).map(|s| s.id.clone()).collect();
    for id in &resent {
        let answer = post(receiver.address, &delivery(id.clone()));
        assert!(is_ok(answer.as_ref()), "{id} re-sent: {answer:?}");
    }

    let acknowledged: Vec<String> = sent
        .iter()
        .filter(|s| is_ok(s.answer.as_ref()))
        .map(|s| s.id.clone())
        .chain(resent.iter().cloned())
        .collect();
    wait_until_handled(&acknowledged, || receiver.handled(), || receiver.log());
    wait_until_settled(&cluster.url());
    let (status, handled) = receiver.terminate();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");

    let all = counts(&handled);
    let known: HashSet<&String> = sent.iter().map(|s| &s.id).collect();
    let unknown: Vec<&&String> = all.keys().filter(|id| !known.contains(*id)).collect();
    assert!(unknown.is_empty(), "handled but never sent: {unknown:?}");
    // A delivery answered 503 and not sent again is handled at most once (it may have been
    // committed as the server went: then its 503 only asks for a re-send it never got).
    let resent_set: HashSet<&String> = resent.iter().collect();
    let twice_refused: Vec<&&Sent> = refused
        .iter()
        .filter(|s| !resent_set.contains(&s.id) && all.get(&s.id).copied().unwrap_or(0) > 1)
        .collect();
    assert!(
        twice_refused.is_empty(),
        "answered 503, never re-sent, handled twice: {twice_refused:?}"
    );
    // Only a handler running as the server went, whose result could not be recorded, runs
    // again: at most `CONCURRENCY` deliveries handled twice, none more.
    let resumed = sent
        .iter()
        .find(|s| s.at >= restarted && is_ok(s.answer.as_ref()))
        .map(|s| s.answered - restarted);
    eprintln!(
        "outage: {} sent, {} answered 200, {} answered 503 ({} re-sent), {} while down, {} \
         handled, first 200 {resumed:?} after the restart",
        sent.len(),
        sent.iter().filter(|s| is_ok(s.answer.as_ref())).count(),
        refused.len(),
        resent.len(),
        down.len(),
        handled.len()
    );
    let again: Vec<(&&String, &usize)> = all.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        again.len() <= CONCURRENCY && again.iter().all(|(_, count)| **count == 2),
        "handled more than once: {again:?}"
    );
}
