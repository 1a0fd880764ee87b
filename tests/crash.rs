//! The example receivers (axum and actix) as real processes on a SQLite file, stopped the way
//! hosts stop them: `kill -9` once every delivery got its 200, `kill -9` in the middle of the
//! load, and SIGTERM while retries are still pending. Deliveries go over real HTTP on
//! 127.0.0.1; what was handled is read from the receivers' `handled event=… id=…` lines, what
//! is left in the store from `printone-webhooks deliveries list`. The admin listener
//! (`PRINTONE_ADMIN_BIND`) is read as an operator reads it: `/metrics` after a known mix of
//! deliveries, `/readyz` while the receiver drains.

mod common;

use std::{
    collections::{HashMap, HashSet},
    env, fs,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    thread,
    time::{Duration, Instant},
};

use printone_webhooks::{sign, Secret};

const SECRET: &str = "pO1_webhook_crash_5Jm8Qx2Lv7Rk3Wn9";
const CLI: &str = env!("CARGO_BIN_EXE_printone-webhooks");
const ROUTE: &str = "/webhooks/printone";
/// Handlers running at once in every receiver here: the most deliveries a kill can catch
/// handled but not yet recorded, and so the most that may be handled twice.
const CONCURRENCY: usize = 2;
/// The longest any one wait may take before the test fails instead of hanging. Below the 30 s
/// lease: a killed receiver's deliveries must come back through its released owner lock, not
/// through an expired lease.
const PATIENCE: Duration = Duration::from_secs(10);
/// The event of most deliveries here; the one the demo handler is told to fail in the SIGTERM
/// tests.
const ORDER: &str = "order_status_update";
/// An event the demo handler always handles.
const MAILING: &str = "mailing_delivered";

#[derive(Debug, Clone, Copy)]
enum Example {
    Axum,
    Actix,
}

impl Example {
    const fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Actix => "actix",
        }
    }
}

/// A folder of its own under the target dir for one test's store; kept when the test fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let file = format!("crash-{}-{name}", std::process::id());
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create the scratch folder");
        Self(path)
    }

    fn store(&self) -> String {
        format!("sqlite:{}", self.0.join("deliveries.db").display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A running example receiver: its address, its stdout lines and its log.
struct Receiver {
    name: &'static str,
    child: Child,
    address: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
    log: Arc<Mutex<String>>,
}

impl Receiver {
    /// Starts `example` on the scratch store, on a port the system picks, with `settings` over
    /// the defaults of these tests; returns once it listens.
    fn start(example: Example, scratch: &Scratch, settings: &[(&str, &str)]) -> Self {
        let mut command = Command::new(common::example_binary(example.name()));
        for (name, _) in env::vars_os() {
            if name.to_string_lossy().starts_with("PRINTONE_") {
                command.env_remove(name);
            }
        }
        command
            .current_dir(&scratch.0)
            .env("PRINTONE_BIND", "127.0.0.1:0")
            .env("PRINTONE_WEBHOOK_SECRET", SECRET)
            .env("PRINTONE_STORE", scratch.store())
            .env("PRINTONE_CONCURRENCY", CONCURRENCY.to_string())
            .env("PRINTONE_LEASE_MS", "30000")
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
            name: example.name(),
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
                    "the {} receiver did not log `listening on`:\n{}",
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

    /// Waits (bounded) until every id in `ids` was handled, by this run or by `earlier`.
    fn wait_until_handled(&self, ids: &[String], earlier: &[String]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let handled: HashSet<String> = self
                .handled()
                .into_iter()
                .chain(earlier.iter().cloned())
                .collect();
            let missing: Vec<&String> = ids.iter().filter(|id| !handled.contains(*id)).collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the {} receiver did not handle {} deliveries within {PATIENCE:?}: {missing:?}\n{}",
                self.name,
                missing.len(),
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until the receiver printed `count` `handled` lines.
    fn wait_until_printed(&self, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.handled().len() < count {
            assert!(
                Instant::now() < deadline,
                "the {} receiver handled {} deliveries in {PATIENCE:?}, not {count}:\n{}",
                self.name,
                self.handled().len(),
                self.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
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
    /// the exit status, how long the exit took, and the ids of every `handled` line.
    fn terminate(mut self) -> (ExitStatus, Duration, Vec<String>) {
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
                "the {} receiver did not exit within {PATIENCE:?} of SIGTERM:\n{}",
                self.name,
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        };
        let took = started.elapsed();
        (status, took, self.read_to_end())
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
            eprintln!("--- the {} receiver's log ---\n{}", self.name, self.log());
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

/// A signed delivery of `event` for the object `id`.
struct Delivery {
    id: String,
    event: &'static str,
    body: String,
    signature: String,
}

fn delivery(event: &'static str, id: String) -> Delivery {
    let body = format!(
        r#"{{"data":{{"id":"{id}","status":"order_processed"}},"event":"{event}","created_at":"2024-06-03T13:14:46.501Z"}}"#
    );
    let secret = Secret::new(SECRET).expect("the test secret is not empty");
    let signature = sign(&secret, body.as_bytes());
    Delivery {
        id,
        event,
        body,
        signature,
    }
}

/// Posts `delivery` as Print.one does, over a connection of its own. The status the receiver
/// answered, or `None` when it answered nothing (refused, reset, closed).
fn post(address: SocketAddr, delivery: &Delivery) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    stream.set_write_timeout(Some(PATIENCE)).ok()?;
    let request = format!(
        "POST {ROUTE} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         x-printone-event: {}\r\nx-webhook-hmac-sha256: {}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{}",
        delivery.event,
        delivery.signature,
        delivery.body.len(),
        delivery.body
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let mut chunk = [0; 1024];
    // Until the server closes; a reset after the status line still counts as that answer.
    while let Ok(read) = stream.read(&mut chunk) {
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
    }
    let response = String::from_utf8_lossy(&response);
    let (status_line, _) = response.split_once("\r\n")?;
    let mut parts = status_line.split(' ');
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse().ok(),
        _ => None,
    }
}

/// One line of `deliveries list`: `ID STATE EVENT DATA_ID attempts=N received=T reason=R`.
#[derive(Debug)]
struct Listed {
    state: String,
    event: String,
    data_id: String,
    attempts: u32,
    reason: String,
}

/// `printone-webhooks deliveries list --state STATE` on the scratch store.
fn listed(scratch: &Scratch, state: &str) -> Vec<Listed> {
    let output = Command::new(CLI)
        .args(["deliveries", "--store", &scratch.store(), "list"])
        .args(["--state", state, "--limit", "10000"])
        .env_remove("PRINTONE_STORE")
        .output()
        .expect("the CLI runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "deliveries list: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(7, ' ').collect();
            let [_, state, event, data_id, attempts, _, reason] = fields[..] else {
                panic!("not a list line: {line}");
            };
            Listed {
                state: state.to_owned(),
                event: event.to_owned(),
                data_id: data_id.to_owned(),
                attempts: attempts
                    .strip_prefix("attempts=")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no attempts in {line}")),
                reason: reason.strip_prefix("reason=").unwrap_or(reason).to_owned(),
            }
        })
        .collect()
}

/// Waits (bounded) until the store holds nothing pending or leased: every stored delivery was
/// handled (or dead-lettered), and no handler will print anything more.
fn wait_until_settled(scratch: &Scratch) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let waiting = listed(scratch, "pending").len() + listed(scratch, "leased").len();
        if waiting == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} deliveries still wait in the store after {PATIENCE:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The promise across a kill: every acknowledged delivery was handled; none twice within one
/// run; only a delivery whose handler had printed at the kill but whose result was not yet
/// recorded (one of the last `CONCURRENCY` the killed run printed) is handled again; and
/// nothing is handled that was never sent.
fn assert_handled_once_across_the_kill(
    sent: &HashSet<String>,
    acknowledged: &[String],
    before: &[String],
    after: &[String],
) {
    for (run, handled) in [("before the kill", before), ("after the restart", after)] {
        let mut seen = HashSet::new();
        let twice: Vec<&String> = handled.iter().filter(|id| !seen.insert(*id)).collect();
        assert!(twice.is_empty(), "handled twice {run}: {twice:?}");
        let unknown: Vec<&String> = handled.iter().filter(|id| !sent.contains(*id)).collect();
        assert!(
            unknown.is_empty(),
            "handled {run} but never sent: {unknown:?}"
        );
    }
    let handled: HashSet<&String> = before.iter().chain(after).collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !handled.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "got their 200 and were never handled: {lost:?}"
    );
    let again: Vec<&String> = after.iter().filter(|id| before.contains(id)).collect();
    let at_the_kill = &before[before.len().saturating_sub(CONCURRENCY)..];
    let early: Vec<&&String> = again
        .iter()
        .filter(|id| !at_the_kill.contains(id))
        .collect();
    assert!(
        again.len() <= CONCURRENCY && early.is_empty(),
        "handled again after the restart: {again:?}; only the last {CONCURRENCY} handled \
         before the kill ({at_the_kill:?}) may be"
    );
}

// ---- kill -9 once every delivery got its 200 --------------------------------------------

fn killed_after_the_200s(example: Example) {
    let scratch = Scratch::new(&format!("{}-after", example.name()));
    let slow = [("PRINTONE_DEMO_HANDLER_DELAY_MS", "200")];
    let first = Receiver::start(example, &scratch, &slow);
    let deliveries: Vec<Delivery> = (0..40)
        .map(|n| delivery(ORDER, format!("ord_{}_after_{n}", example.name())))
        .collect();
    for delivery in &deliveries {
        assert_eq!(post(first.address, delivery), Some(200), "{}", delivery.id);
    }
    // Killed once a few were handled (a kill may catch a handler between its output and its
    // record) while most still wait: 40 deliveries at 2 × 200 ms take 4 s.
    first.wait_until_printed(CONCURRENCY + 1);
    let before = first.kill();
    assert!(
        before.len() <= deliveries.len() / 2,
        "the kill came after {} of {} were handled: nothing left to recover",
        before.len(),
        deliveries.len()
    );

    let second = Receiver::start(example, &scratch, &[]);
    let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    second.wait_until_handled(&ids, &before);
    wait_until_settled(&scratch);
    let printed = second.handled().len();
    for delivery in &deliveries {
        assert_eq!(
            post(second.address, delivery),
            Some(200),
            "re-sent {}",
            delivery.id
        );
    }
    let (status, _, after) = second.terminate();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
    assert_eq!(
        after[printed..],
        [] as [String; 0],
        "re-sent deliveries that were handled already were handled again"
    );
    let sent: HashSet<String> = ids.iter().cloned().collect();
    assert_handled_once_across_the_kill(&sent, &ids, &before, &after);
}

#[test]
fn axum_receiver_killed_after_the_200s_handles_every_delivery_after_a_restart() {
    killed_after_the_200s(Example::Axum);
}

#[test]
fn actix_receiver_killed_after_the_200s_handles_every_delivery_after_a_restart() {
    killed_after_the_200s(Example::Actix);
}

// ---- kill -9 while deliveries keep arriving ---------------------------------------------

/// The 200s that must be answered before the kill: the load is well under way.
const ACKNOWLEDGED_BEFORE_THE_KILL: usize = 30;
const CLIENTS: usize = 3;

fn killed_during_the_load(example: Example) {
    let scratch = Scratch::new(&format!("{}-load", example.name()));
    // Room for the whole load: a 503 would be a refusal, not the crash under test.
    let slow = [
        ("PRINTONE_DEMO_HANDLER_DELAY_MS", "200"),
        ("PRINTONE_QUEUE_CAPACITY", "100000"),
    ];
    let first = Receiver::start(example, &scratch, &slow);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (address, stop, ok) = (first.address, Arc::clone(&stop), Arc::clone(&ok));
            let name = example.name();
            thread::spawn(move || {
                let mut answers = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let delivery = delivery(ORDER, format!("ord_{name}_load_{client}_{n}"));
                    let answer = post(address, &delivery);
                    match answer {
                        Some(200) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        // Nobody listens any more: do not spin.
                        None => thread::sleep(Duration::from_millis(5)),
                        Some(_) => {}
                    }
                    answers.push((delivery.id, answer));
                    // A steady load, not a flood: a few hundred deliveries before the kill.
                    thread::sleep(Duration::from_millis(1));
                }
                answers
            })
        })
        .collect();

    let deadline = Instant::now() + PATIENCE;
    while ok.load(Ordering::SeqCst) < ACKNOWLEDGED_BEFORE_THE_KILL {
        assert!(Instant::now() < deadline, "the load did not get going");
        thread::sleep(Duration::from_millis(5));
    }
    first.wait_until_printed(CONCURRENCY + 1);
    let before = first.kill();
    // The clients keep sending for a while to a receiver that is gone.
    thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    let answers: Vec<(String, Option<u16>)> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("a client thread"))
        .collect();

    let unexpected: Vec<_> = answers
        .iter()
        .filter(|(_, answer)| !matches!(answer, Some(200) | None))
        .collect();
    assert!(
        unexpected.is_empty(),
        "answers other than 200: {unexpected:?}"
    );
    let acknowledged: Vec<String> = answers
        .iter()
        .filter(|(_, answer)| *answer == Some(200))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        answers.iter().any(|(_, answer)| answer.is_none()),
        "every delivery was answered: the kill did not happen during the load"
    );
    assert!(
        before.len() < acknowledged.len(),
        "nothing was left to handle at the kill"
    );

    let second = Receiver::start(example, &scratch, &[]);
    second.wait_until_handled(&acknowledged, &before);
    wait_until_settled(&scratch);
    let (status, _, after) = second.terminate();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
    let sent: HashSet<String> = answers.into_iter().map(|(id, _)| id).collect();
    assert_handled_once_across_the_kill(&sent, &acknowledged, &before, &after);
}

#[test]
fn axum_receiver_killed_during_the_load_handles_every_acknowledged_delivery_after_a_restart() {
    killed_during_the_load(Example::Axum);
}

#[test]
fn actix_receiver_killed_during_the_load_handles_every_acknowledged_delivery_after_a_restart() {
    killed_during_the_load(Example::Actix);
}

// ---- SIGTERM with retries pending -------------------------------------------------------

fn sigterm_with_retries_pending(example: Example) {
    let scratch = Scratch::new(&format!("{}-term", example.name()));
    let settings = [
        ("PRINTONE_DEMO_FAIL_EVENT", ORDER),
        // Due well before the 30 s shutdown deadline: a durable store keeps the retry for the
        // next start instead of holding the exit for it.
        ("PRINTONE_RETRY_BACKOFF_MS", "20000"),
        ("PRINTONE_MAX_ATTEMPTS", "5"),
        ("PRINTONE_DEMO_HANDLER_DELAY_MS", "300"),
    ];
    let receiver = Receiver::start(example, &scratch, &settings);
    let failing: Vec<Delivery> = (0..4)
        .map(|n| delivery(ORDER, format!("ord_{}_term_{n}", example.name())))
        .collect();
    for delivery in &failing {
        assert_eq!(
            post(receiver.address, delivery),
            Some(200),
            "{}",
            delivery.id
        );
    }
    // Each fails its first attempt and waits 20 s for its retry.
    let deadline = Instant::now() + PATIENCE;
    while listed(&scratch, "pending")
        .iter()
        .filter(|listed| listed.attempts == 1)
        .count()
        < failing.len()
    {
        assert!(
            Instant::now() < deadline,
            "the first attempts did not fail: {:?}",
            listed(&scratch, "pending")
        );
        thread::sleep(Duration::from_millis(50));
    }
    // These are running or due when the SIGTERM comes: the drain finishes them.
    let handled: Vec<Delivery> = (0..CONCURRENCY)
        .map(|n| delivery(MAILING, format!("mlg_{}_term_{n}", example.name())))
        .collect();
    for delivery in &handled {
        assert_eq!(
            post(receiver.address, delivery),
            Some(200),
            "{}",
            delivery.id
        );
    }

    let (status, took, printed) = receiver.terminate();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
    assert!(
        took < Duration::from_secs(5),
        "the exit took {took:?}: the drain waited for the retries due in 20 s"
    );
    let mut printed = printed;
    printed.sort();
    let handled_ids: Vec<String> = handled.iter().map(|d| d.id.clone()).collect();
    assert_eq!(printed, handled_ids, "what ran at SIGTERM was not finished");

    let pending: HashMap<String, Listed> = listed(&scratch, "pending")
        .into_iter()
        .map(|listed| (listed.data_id.clone(), listed))
        .collect();
    assert_eq!(pending.len(), failing.len(), "left stored: {pending:?}");
    for delivery in &failing {
        let left = pending
            .get(&delivery.id)
            .unwrap_or_else(|| panic!("{} is not pending: {pending:?}", delivery.id));
        assert_eq!(
            (left.state.as_str(), left.event.as_str(), left.attempts),
            ("pending", ORDER, 1),
            "{left:?}"
        );
        assert_eq!(
            left.reason,
            format!("\"PRINTONE_DEMO_FAIL_EVENT fails every {ORDER} delivery\"")
        );
    }
    let dead = listed(&scratch, "dead");
    assert!(dead.is_empty(), "dead-lettered at SIGTERM: {dead:?}");
    let leased = listed(&scratch, "leased");
    assert!(leased.is_empty(), "left leased at SIGTERM: {leased:?}");
    assert_eq!(listed(&scratch, "done").len(), handled.len());
}

#[test]
fn axum_receiver_exits_0_on_sigterm_and_leaves_pending_retries_stored() {
    sigterm_with_retries_pending(Example::Axum);
}

#[test]
fn actix_receiver_exits_0_on_sigterm_and_leaves_pending_retries_stored() {
    sigterm_with_retries_pending(Example::Actix);
}

// ---- The admin listener (PRINTONE_ADMIN_BIND): metrics and health as operators read them ----

/// The value of the sample `name` (with its labels, as Prometheus prints them) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits (bounded) until `GET /metrics` shows `name` at `value`.
fn wait_for_sample(admin: SocketAddr, name: &str, value: f64) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, text) = common::get(admin, "/metrics").expect("the admin listener answers");
        assert_eq!(status, 200);
        if sample(&text, name) == Some(value) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not reach {value} within {PATIENCE:?}:\n{text}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn metrics_after_a_known_mix(example: Example) {
    let scratch = Scratch::new(&format!("{}-metrics", example.name()));
    let admin = common::free_address();
    let admin_text = admin.to_string();
    let settings = [
        ("PRINTONE_ADMIN_BIND", admin_text.as_str()),
        ("PRINTONE_DEMO_FAIL_EVENT", MAILING),
        ("PRINTONE_MAX_ATTEMPTS", "2"),
        ("PRINTONE_RETRY_BACKOFF_MS", "10"),
    ];
    let receiver = Receiver::start(example, &scratch, &settings);
    let orders: Vec<Delivery> = (0..3)
        .map(|n| delivery(ORDER, format!("ord_{}_metrics_{n}", example.name())))
        .collect();
    let failing = delivery(MAILING, format!("mlg_{}_metrics", example.name()));
    for delivery in orders.iter().chain([&failing]) {
        assert_eq!(post(receiver.address, delivery), Some(200));
    }
    assert_eq!(
        post(receiver.address, &orders[0]),
        Some(200),
        "a re-delivery"
    );
    let mut forged = delivery(ORDER, "ord_forged".to_owned());
    forged.body.push(' ');
    assert_eq!(post(receiver.address, &forged), Some(401));

    let text = wait_for_sample(admin, "printone_webhooks_dead_letters_total", 1.0);
    let text = if sample(&text, "printone_webhooks_handled_total") == Some(3.0) {
        text
    } else {
        wait_for_sample(admin, "printone_webhooks_handled_total", 3.0)
    };
    let expected = [
        (
            "printone_webhooks_deliveries_total{outcome=\"accepted\"}",
            4.0,
        ),
        (
            "printone_webhooks_deliveries_total{outcome=\"duplicate\"}",
            1.0,
        ),
        (
            "printone_webhooks_refused_total{kind=\"signature_mismatch\"}",
            1.0,
        ),
        ("printone_webhooks_handled_total", 3.0),
        ("printone_webhooks_attempts_failed_total", 2.0),
        ("printone_webhooks_retries_total", 1.0),
        ("printone_webhooks_dead_letters_total", 1.0),
        ("printone_webhooks_acknowledge_seconds_count", 5.0),
        ("printone_webhooks_handled_delay_seconds_count", 3.0),
        (
            "printone_webhooks_handler_seconds_count{outcome=\"ok\"}",
            3.0,
        ),
        (
            "printone_webhooks_handler_seconds_count{outcome=\"failed\"}",
            2.0,
        ),
    ];
    for (name, value) in expected {
        assert_eq!(sample(&text, name), Some(value), "{name} in:\n{text}");
    }
    let dead = wait_for_sample(
        admin,
        "printone_webhooks_stored_deliveries{state=\"dead\"}",
        1.0,
    );
    assert_eq!(
        sample(&dead, "printone_webhooks_stored_deliveries{state=\"done\"}"),
        Some(3.0)
    );
    for secret_or_body in [SECRET, "ord_", "mlg_"] {
        assert!(
            !text.contains(secret_or_body),
            "{secret_or_body} in the metrics"
        );
    }
    assert_eq!(
        common::get(admin, "/healthz").map(|(code, _)| code),
        Some(200)
    );
    assert_eq!(
        common::get(admin, "/readyz"),
        Some((200, "ready\n".to_owned()))
    );
    let (status, _, _) = receiver.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn axum_receiver_serves_metrics_that_count_a_known_mix_of_deliveries() {
    metrics_after_a_known_mix(Example::Axum);
}

#[test]
fn actix_receiver_serves_metrics_that_count_a_known_mix_of_deliveries() {
    metrics_after_a_known_mix(Example::Actix);
}

fn readiness_during_the_drain(example: Example) {
    let scratch = Scratch::new(&format!("{}-ready", example.name()));
    let admin = common::free_address();
    let admin_text = admin.to_string();
    let settings = [
        ("PRINTONE_ADMIN_BIND", admin_text.as_str()),
        ("PRINTONE_DEMO_HANDLER_DELAY_MS", "1500"),
        ("PRINTONE_CONCURRENCY", "1"),
    ];
    let receiver = Receiver::start(example, &scratch, &settings);
    assert_eq!(
        common::get(admin, "/readyz"),
        Some((200, "ready\n".to_owned()))
    );
    let slow = delivery(ORDER, format!("ord_{}_ready", example.name()));
    assert_eq!(post(receiver.address, &slow), Some(200));
    thread::sleep(Duration::from_millis(200));
    let sent = Command::new("kill")
        .args(["-TERM", &receiver.child.id().to_string()])
        .status()
        .expect("`kill` runs");
    assert!(sent.success());
    // The handler still runs for a second: the receiver drains, and says so.
    let deadline = Instant::now() + PATIENCE;
    let draining = loop {
        match common::get(admin, "/readyz") {
            Some((503, body)) => break body,
            Some((200, _)) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            other => panic!("readyz during the drain: {other:?}\n{}", receiver.log()),
        }
    };
    assert_eq!(draining, "draining\n");
    assert_eq!(
        common::get(admin, "/healthz").map(|(code, _)| code),
        Some(200),
        "still alive"
    );
    let (status, _, printed) = receiver.terminate();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        printed,
        std::slice::from_ref(&slow.id),
        "the drain finished the running delivery"
    );
    assert!(
        common::get(admin, "/readyz").is_none(),
        "the admin listener stops with the receiver"
    );
}

#[test]
fn axum_receiver_is_not_ready_while_it_drains() {
    readiness_during_the_drain(Example::Axum);
}

#[test]
fn actix_receiver_is_not_ready_while_it_drains() {
    readiness_during_the_drain(Example::Actix);
}

#[test]
fn an_admin_listener_on_the_webhook_address_is_refused() {
    let scratch = Scratch::new("admin-clash");
    let output = Command::new(common::example_binary(Example::Axum.name()))
        .current_dir(&scratch.0)
        .env("PRINTONE_BIND", "127.0.0.1:38999")
        .env("PRINTONE_ADMIN_BIND", "127.0.0.1:38999")
        .env("PRINTONE_WEBHOOK_SECRET", SECRET)
        .env("PRINTONE_STORE", "memory")
        .output()
        .expect("the example runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PRINTONE_ADMIN_BIND"), "{stderr}");
}
