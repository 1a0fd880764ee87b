//! The `printone-webhooks` command-line tool, run as a user would run it.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_printone-webhooks");
const SECRET: &str = "pO1_webhook_7f3KqV9xLm2Rt8Wz4Nc6Hb";
const SECRET_ENV: &str = "PRINTONE_WEBHOOK_SECRET";
const PATIENCE: Duration = Duration::from_secs(10);

use common::vectors::{self, Vector};

fn vector(name: &str) -> Vector {
    vectors::named(name)
}

/// The tool with a clean environment: no secret unless a test gives one.
fn tool(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_remove(SECRET_ENV);
    command
}

fn run(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tool runs");
    let mut input = child.stdin.take().expect("stdin");
    // A tool that exits early (a usage error) closes its stdin: that is not a test failure.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("the tool finishes")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

/// Writes `body` to a file of its own and returns the path.
/// A file holding `body`, of its own for every call: tests run in parallel and several write
/// the same vector's body, so a shared path could be read while another test rewrites it.
fn body_file(name: &str, body: &[u8]) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let file = format!("cli-{}-{unique}-{name}.body", std::process::id());
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(file);
    std::fs::write(&path, body).expect("write body file");
    path
}

fn signature_of(vector: &Vector) -> String {
    vector
        .headers
        .iter()
        .find(|(name, _)| name.to_ascii_lowercase().ends_with("hmac-sha256"))
        .map(|(_, value)| value.trim_matches([' ', '\t']).to_owned())
        .expect("a signature header")
}

// ---- sign ------------------------------------------------------------------------------

#[test]
fn sign_prints_exactly_the_signatures_of_the_vector_file() {
    let signed = vectors::all().into_iter().filter(|v| {
        v.expected.outcome == "valid"
            && v.secrets.len() == 1
            && v.headers
                .iter()
                .any(|h| h.0.to_ascii_lowercase().ends_with("hmac-sha256"))
    });
    let mut checked = 0;
    for vector in signed {
        let output = run(
            tool(&["sign"]).env(SECRET_ENV, &vector.secrets[0]),
            vector.body.as_bytes(),
        );
        assert_eq!(output.status.code(), Some(0), "{}", vector.name);
        assert_eq!(stdout(&output), signature_of(&vector), "{}", vector.name);
        assert!(output.stderr.is_empty(), "{}", vector.name);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} vectors signed");
}

#[test]
fn sign_reads_a_body_file_and_the_secret_flag() {
    let vector = vector("coupon_code_used_valid");
    let path = body_file("sign", vector.body.as_bytes());
    let path = path.to_str().expect("UTF-8 path");
    let output = run(&mut tool(&["sign", "--secret", SECRET, path]), b"");
    assert_eq!(
        stdout(&output),
        "H9Mwv2poSIg3dv+DC7k13whNIHKEJkYW6HguG29swBA="
    );
}

#[test]
fn a_missing_or_empty_secret_is_a_usage_error() {
    let missing = run(&mut tool(&["sign"]), b"{}");
    assert_eq!(missing.status.code(), Some(2));
    assert!(missing.stdout.is_empty());
    let empty = run(tool(&["sign"]).env(SECRET_ENV, ""), b"{}");
    assert_eq!(empty.status.code(), Some(2));
    let unreadable = run(
        &mut tool(&["sign", "--secret", SECRET, "/no/such/body"]),
        b"",
    );
    assert_eq!(unreadable.status.code(), Some(2));
}

// ---- verify ----------------------------------------------------------------------------

fn verify_vector(vector: &Vector, secret: &str) -> Output {
    let path = body_file(&vector.name, vector.body.as_bytes());
    let mut args = vec!["verify".to_owned(), path.display().to_string()];
    for (name, value) in &vector.headers {
        args.push("--header".to_owned());
        args.push(format!("{name}: {value}"));
    }
    if !vector
        .headers
        .iter()
        .any(|(name, _)| name.to_ascii_lowercase().contains("hmac"))
    {
        // No signature header at all: say so with a header the tool will not read.
        args.extend(["--header".to_owned(), "x-request-id: 1".to_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(tool(&args).env(SECRET_ENV, secret), b"")
}

#[test]
fn verify_exits_0_for_valid_vectors_and_1_for_the_others() {
    let single_secret = vectors::all()
        .into_iter()
        .filter(|v| v.secrets.len() == 1 && !v.secrets[0].is_empty());
    for vector in single_secret {
        let output = verify_vector(&vector, &vector.secrets[0]);
        let expected = i32::from(vector.expected.outcome != "valid");
        assert_eq!(
            output.status.code(),
            Some(expected),
            "{}: {}",
            vector.name,
            stdout(&output)
        );
        let first_line = stdout(&output)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        if expected == 0 {
            assert_eq!(first_line, "valid", "{}", vector.name);
        } else {
            assert!(
                first_line.starts_with("invalid ("),
                "{}: {first_line}",
                vector.name
            );
        }
    }
}

/// The first line that names a confirmed cause.
fn likely_cause(vector: &Vector, secret: &str) -> String {
    let output = verify_vector(vector, secret);
    assert_eq!(output.status.code(), Some(1), "{}", vector.name);
    stdout(&output)
        .lines()
        .find(|line| line.starts_with("likely cause: "))
        .unwrap_or_else(|| panic!("{}: no likely cause in {}", vector.name, stdout(&output)))
        .to_owned()
}

#[test]
fn verify_names_the_cause_of_each_usual_mistake() {
    let cases = [
        ("hex_signature_malformed", "hex signature"),
        ("url_safe_base64_malformed", "URL-safe base64"),
        ("missing_padding_malformed", "missing base64 padding"),
        (
            "conflicting_header_names_ambiguous",
            "conflicting signature headers",
        ),
        ("trailing_newline_mismatch", "trailing newline in the body"),
        ("pretty_printed_body_mismatch", "pretty-printed body"),
        ("prefixed_secret_mismatch", "secret with a prefix"),
        (
            "secret_with_trailing_newline_mismatch",
            "newline in the signer's secret",
        ),
        (
            "base64_looking_secret_decoded_mismatch",
            "base64-decoded secret",
        ),
    ];
    for (name, cause) in cases {
        let vector = vector(name);
        let line = likely_cause(&vector, &vector.secrets[0]);
        assert!(
            line.starts_with(&format!("likely cause: {cause}: ")),
            "{name}: {line}"
        );
    }
}

#[test]
fn verify_finds_whitespace_in_the_configured_secret() {
    let vector = vector("coupon_code_used_valid");
    let line = likely_cause(&vector, &format!("{SECRET}\n"));
    assert!(
        line.starts_with("likely cause: whitespace in the secret: "),
        "{line}"
    );
}

#[test]
fn verify_does_not_explain_away_a_wrong_secret_and_never_prints_it() {
    let vector = vector("wrong_secret_mismatch");
    let output = verify_vector(&vector, &vector.secrets[0]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(!text.contains("likely cause"), "{text}");
    assert!(
        text.contains("possible cause: different body or secret"),
        "{text}"
    );
    assert!(!text.contains(&vector.secrets[0]), "{text}");
}

#[test]
fn verify_takes_the_signature_flag_and_the_body_on_stdin() {
    let vector = vector("coupon_code_used_valid");
    let signature = signature_of(&vector);
    let output = run(
        &mut tool(&["verify", "--secret", SECRET, "--signature", &signature]),
        vector.body.as_bytes(),
    );
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), "valid\n".to_owned())
    );
}

// ---- help ------------------------------------------------------------------------------

fn help(command: &[&str]) -> String {
    let mut args = command.to_vec();
    args.push("--help");
    let output = run(tool(&args).env(SECRET_ENV, "hunter2-top-secret"), b"");
    assert_eq!(output.status.code(), Some(0), "{command:?}");
    let text = stdout(&output);
    assert!(!text.contains("hunter2"), "--help shows the secret: {text}");
    text
}

#[test]
fn each_help_mentions_what_the_docs_say() {
    let expectations: [(&str, &[&str]); 5] = [
        (
            "",
            &[
                "sign",
                "verify",
                "send",
                "listen",
                "PRINTONE_WEBHOOK_SECRET",
                "Exit codes",
            ],
        ),
        (
            "sign",
            &[
                "base64 string and nothing else",
                "x-webhook-hmac-sha256",
                "--secret",
                "PRINTONE_WEBHOOK_SECRET",
            ],
        ),
        (
            "verify",
            &[
                "hex",
                "URL-safe",
                "x-printone-hmac-sha256",
                "trailing newline",
                "pretty-printed",
                "prefix",
                "--signature",
                "--header",
            ],
        ),
        (
            "send",
            &[
                "order_status_update",
                "template_preview_rendered",
                "batch_status_update",
                "coupon_code_used",
                "status",
                "30 seconds",
                "--file",
                "--legacy-header",
                "--signature",
                "--tamper",
                "--signature=-VALUE",
            ],
        ),
        (
            "listen",
            &[
                "headers",
                "verification result",
                "pretty JSON",
                "401",
                "--bind",
                "--forward-to",
                "--forward-timeout",
                "502",
                "504",
            ],
        ),
    ];
    for (command, phrases) in expectations {
        let args: Vec<&str> = [command].into_iter().filter(|c| !c.is_empty()).collect();
        let text = help(&args);
        for phrase in phrases {
            assert!(
                text.contains(phrase),
                "`{command} --help` lacks {phrase:?}:\n{text}"
            );
        }
    }
}

/// `(code, meaning)` pairs from lines like `  0  meaning` or `| 0 | meaning |`.
fn exit_codes(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .split(['|', ' '])
                .filter(|cell| !cell.is_empty())
                .collect();
            let (code, meaning) = cells.split_first()?;
            let numeric = code.len() == 1 && code.chars().all(|c| c.is_ascii_digit());
            numeric.then(|| (code.to_string(), meaning.join(" ")))
        })
        .collect()
}

#[test]
fn every_help_and_the_readme_list_the_same_exit_codes() {
    let readme = include_str!("../README.md");
    let tools = &readme[readme.find("## Tools").expect("a Tools section")..];
    let table = &tools[tools.find("| exit code").expect("an exit code table")..];
    let table = table.split("\n\n").next().unwrap_or_default();
    let documented = exit_codes(table);
    assert_eq!(documented.len(), 4, "{documented:?}");
    for command in [&[][..], &["sign"], &["verify"], &["send"], &["listen"]] {
        let text = help(command);
        let shown = exit_codes(&text[text.find("Exit codes:").expect("exit codes")..]);
        assert_eq!(shown, documented, "{command:?}");
    }
}

// ---- send and listen -------------------------------------------------------------------

/// A running `listen`, killed when dropped, with its stdout read line by line.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
    address: String,
}

impl Listener {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// `listen --bind 127.0.0.1:0 ARGS…`.
    fn start_with(args: &[&str]) -> Self {
        let mut all = vec!["listen", "--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = tool(&all)
            .env(SECRET_ENV, SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("listen starts");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        // Built before waiting, so that the listener is killed even when the wait fails.
        let mut listener = Self {
            child,
            lines,
            address: String::new(),
        };
        let first = listener
            .lines
            .recv_timeout(PATIENCE)
            .expect("listen prints its address");
        let start = first.find("http://").expect("an http:// address");
        let address = first[start..].split_whitespace().next().unwrap_or_default();
        listener.address = String::from(address);
        listener
    }

    /// What was printed for `count` requests. `listen` prints a request completely, the
    /// forwarding line included, before it answers; so once the senders have their answers,
    /// everything is in the pipe: read until `count` verification lines, then until the pipe
    /// is quiet (all within the patience).
    fn deliveries(&self, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut text = String::new();
        let mut seen = 0;
        while Instant::now() < deadline {
            let wait = if seen < count { 200 } else { 300 };
            match self.lines.recv_timeout(Duration::from_millis(wait)) {
                Ok(line) => {
                    seen += usize::from(line.starts_with("verification: "));
                    text.push_str(&line);
                    text.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Timeout) if seen >= count => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        text
    }
}

/// The printed requests, each from its `#N METHOD PATH from PEER` line up to the next.
fn printed_requests(text: &str) -> Vec<String> {
    let mut requests: Vec<String> = Vec::new();
    for line in text.lines() {
        let starts = line.starts_with('#') && line.contains(" from 127.0.0.1:");
        match requests.last_mut() {
            Some(request) if !starts => {
                request.push_str(line);
                request.push('\n');
            }
            _ if starts => requests.push(format!("{line}\n")),
            _ => {}
        }
    }
    requests
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send(args: &[&str], secret: &str) -> Output {
    let mut all = vec!["send", "--timeout", "10"];
    all.extend_from_slice(args);
    run(tool(&all).env(SECRET_ENV, secret), b"")
}

#[test]
fn send_to_listen_end_to_end() {
    let listener = Listener::start();
    let url = format!("{}/webhooks/printone", listener.address);
    for trigger in ["order_status_update", "coupon_code_used"] {
        let output = send(&[&url, "--trigger", trigger], SECRET);
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        assert!(
            stdout(&output).contains("200 OK in "),
            "{}",
            stdout(&output)
        );
    }
    let refused = send(
        &[&url, "--trigger", "batch_status_update"],
        "not-the-secret",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("401 Unauthorized in "),
        "{}",
        stdout(&refused)
    );

    let vector = vector("trailing_newline_mismatch");
    let path = body_file("send-newline", vector.body.as_bytes());
    let path = path.to_str().expect("UTF-8 path");
    let legacy = send(&[&url, "--file", path, "--legacy-header"], SECRET);
    assert_eq!(legacy.status.code(), Some(0), "{}", stdout(&legacy));

    let printed = listener.deliveries(4);
    assert!(
        printed.contains("x-webhook-hmac-sha256: x9KhWgLQ++1XFnnY4euCu37CJnMGp6Uo1fZd2K9GjtM="),
        "{printed}"
    );
    assert!(
        printed.contains("x-printone-event: coupon_code_used"),
        "{printed}"
    );
    assert_eq!(
        printed.matches("verification: valid -> 200 OK").count(),
        3,
        "{printed}"
    );
    assert!(
        printed.contains("verification: invalid (signature_mismatch)"),
        "{printed}"
    );
    assert!(printed.contains("-> 401 Unauthorized"), "{printed}");
    assert!(
        printed.contains("  \"event\": \"coupon_code_used\","),
        "{printed}"
    );
    assert!(printed.contains("x-printone-hmac-sha256: "), "{printed}");
    assert!(!printed.contains(SECRET), "the listener printed the secret");
}

#[test]
fn listen_shows_the_cause_of_a_failed_verification() {
    let listener = Listener::start();
    let vector = vector("coupon_code_used_valid");
    let path = body_file("send-signer-newline", vector.body.as_bytes());
    let path = path.to_str().expect("UTF-8 path");
    let url = format!("{}/hook", listener.address);
    let output = send(&[&url, "--file", path], &format!("whsec_{SECRET}"));
    assert_eq!(output.status.code(), Some(1));
    let printed = listener.deliveries(1);
    assert!(
        printed.contains("#1 POST /hook from 127.0.0.1:"),
        "{printed}"
    );
    assert!(
        printed.contains("verification: invalid (signature_mismatch)"),
        "{printed}"
    );
    assert!(
        printed.contains("likely cause: secret with a prefix: "),
        "{printed}"
    );
    assert!(!printed.contains(SECRET), "the listener printed the secret");
}

#[test]
fn send_reports_network_errors_with_exit_code_3() {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address").port()
    };
    let output = send(&[&format!("http://127.0.0.1:{port}/")], SECRET);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn send_refuses_https_and_listen_a_busy_address() {
    let https = send(&["https://127.0.0.1:9/"], SECRET);
    assert_eq!(https.status.code(), Some(2));
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = busy.local_addr().expect("address").to_string();
    let output = run(
        tool(&["listen", "--bind", &address]).env(SECRET_ENV, SECRET),
        b"",
    );
    assert_eq!(output.status.code(), Some(3));
}

// ---- send: what is sent is what was asked for ------------------------------------------

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn signed(body: &[u8]) -> String {
    let secret = printone_webhooks::Secret::new(SECRET).expect("the test secret is not empty");
    printone_webhooks::sign(&secret, body)
}

/// The header lines of one printed request, as `name: value`.
fn header_lines(request: &str) -> Vec<&str> {
    request
        .lines()
        .filter_map(|line| line.strip_prefix("  "))
        .take_while(|line| line.contains(": "))
        .collect()
}

#[test]
fn send_sends_a_given_signature_and_a_body_changed_after_signing() {
    let listener = Listener::start();
    let url = format!("{}/hook", listener.address);
    let sample = printone_webhooks::test_util::sample("order_status_update");
    // A well-formed MAC of another body.
    let other = signed(b"another body");

    let given = send(&[&url, "--signature", &other], SECRET);
    assert_eq!(given.status.code(), Some(1), "{}", stdout(&given));
    assert!(
        stdout(&given).contains("401 Unauthorized in "),
        "{}",
        stdout(&given)
    );
    let legacy = send(&[&url, "--signature", &other, "--legacy-header"], SECRET);
    assert_eq!(legacy.status.code(), Some(1), "{}", stdout(&legacy));
    let tampered = send(&[&url, "--tamper"], SECRET);
    assert_eq!(tampered.status.code(), Some(1), "{}", stdout(&tampered));
    assert!(
        stdout(&tampered).contains(&format!("{} bytes, changed after signing)", sample.len())),
        "{}",
        stdout(&tampered)
    );
    assert!(stdout(&tampered).contains("401 Unauthorized in "));

    let printed = printed_requests(&listener.deliveries(3));
    assert_eq!(printed.len(), 3, "{printed:?}");
    let signature_lines = |request: &str| -> Vec<String> {
        header_lines(request)
            .into_iter()
            .filter(|line| line.contains("hmac-sha256: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        signature_lines(&printed[0]),
        [format!("x-webhook-hmac-sha256: {other}")]
    );
    assert_eq!(
        signature_lines(&printed[1]),
        [format!("x-printone-hmac-sha256: {other}")]
    );
    // Signed as the sample, then its first byte changed: `{` is sent as `z`.
    assert_eq!(
        signature_lines(&printed[2]),
        [format!("x-webhook-hmac-sha256: {}", signed(&sample))]
    );
    assert!(
        printed[2].contains(&format!(
            "body ({} bytes):\nz{}",
            sample.len(),
            &String::from_utf8_lossy(&sample)[1..]
        )),
        "{}",
        printed[2]
    );
    for request in &printed {
        assert!(
            request.contains("verification: invalid (signature_mismatch)"),
            "{request}"
        );
    }
}

#[test]
fn send_sends_a_signature_header_given_with_h_as_given_and_warns() {
    let listener = Listener::start();
    let url = format!("{}/hook", listener.address);
    let sample = printone_webhooks::test_util::sample("coupon_code_used");
    let wrong = signed(b"not the body");
    let header = format!("x-webhook-hmac-sha256: {wrong}");
    let overridden = send(
        &[&url, "--trigger", "coupon_code_used", "-H", &header],
        SECRET,
    );
    assert_eq!(overridden.status.code(), Some(1), "{}", stdout(&overridden));
    assert!(stdout(&overridden).contains("401 Unauthorized in "));
    assert_eq!(
        stderr(&overridden),
        "printone-webhooks: warning: x-webhook-hmac-sha256 is sent as given with -H; it \
         overrides the computed signature, which is not sent\n"
    );

    // The correct value under the older name alone: accepted, and nothing else is added.
    let legacy = format!("X-Printone-HMAC-SHA256: {}", signed(&sample));
    let correct = send(
        &[&url, "--trigger", "coupon_code_used", "-H", &legacy],
        SECRET,
    );
    assert_eq!(correct.status.code(), Some(0), "{}", stdout(&correct));
    assert!(stderr(&correct).contains("x-printone-hmac-sha256 is sent as given with -H"));

    // Repeated: each value is sent.
    let repeated = send(
        &[&url, "-H", &header, "-H", "x-webhook-hmac-sha256: second="],
        SECRET,
    );
    assert_eq!(repeated.status.code(), Some(1), "{}", stdout(&repeated));

    let printed = printed_requests(&listener.deliveries(3));
    assert_eq!(printed.len(), 3, "{printed:?}");
    let signatures = |request: &str| -> Vec<String> {
        header_lines(request)
            .into_iter()
            .filter(|line| line.contains("hmac-sha256: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(signatures(&printed[0]), std::slice::from_ref(&header));
    assert!(printed[0].contains("verification: invalid (signature_mismatch)"));
    assert_eq!(
        signatures(&printed[1]),
        [format!("x-printone-hmac-sha256: {}", signed(&sample))]
    );
    assert!(
        printed[1].contains("verification: valid -> 200 OK"),
        "{}",
        printed[1]
    );
    assert_eq!(
        signatures(&printed[2]),
        [header, "x-webhook-hmac-sha256: second=".to_owned()]
    );
}

#[test]
fn send_reports_a_413_that_arrives_before_the_body_is_written_with_exit_code_1() {
    // listen reads 64 KiB, answers 413 and closes the connection with the rest unread, while
    // send is still writing 16 MiB: writing the rest fails, and the answer is what counts.
    let listener = Listener::start_with(&["--max-body-bytes", "65536"]);
    let url = format!("{}/hook", listener.address);
    let path = body_file("send-16mib", &vec![b'a'; 16 << 20]);
    let path = path.to_str().expect("UTF-8 path");
    // Whether the answer is read before or after a write fails is a race: try it often.
    for attempt in 0..8 {
        let output = send(&[&url, "--file", path], SECRET);
        let text = stdout(&output);
        assert_eq!(
            output.status.code(),
            Some(1),
            "attempt {attempt}: {text}{}",
            stderr(&output)
        );
        assert!(
            text.contains("413 Payload Too Large in "),
            "attempt {attempt}: {text}"
        );
        assert!(
            output.stderr.is_empty(),
            "attempt {attempt}: {}",
            stderr(&output)
        );
        if let Some(line) = text
            .lines()
            .find(|line| line.starts_with("answered before"))
        {
            assert!(
                line.starts_with(
                    "answered before the whole body was sent: the receiver closed the \
                     connection after "
                ),
                "{line}"
            );
        }
    }
    let _ = std::fs::remove_file(path);
}

/// A body whose signature starts with `+`, so that its URL-safe form starts with `-`.
fn body_with_a_plus_signature() -> (String, String) {
    (0..10_000)
        .map(|n| format!(r#"{{"data":{{"id":"ord_{n}"}},"event":"order_status_update"}}"#))
        .map(|body| {
            let signature = signed(body.as_bytes());
            (body, signature)
        })
        .find(|(_, signature)| signature.starts_with('+'))
        .expect("one in 64 signatures starts with +")
}

#[test]
fn a_value_starting_with_a_hyphen_is_given_with_equals_and_the_error_says_so() {
    let (body, signature) = body_with_a_plus_signature();
    let url_safe = signature.replace('+', "-").replace('/', "_");
    assert!(url_safe.starts_with('-'));
    let path = body_file("hyphen", body.as_bytes());
    let path = path.to_str().expect("UTF-8 path");

    for args in [
        vec!["verify", path, "--signature", &url_safe],
        vec!["verify", path, "-s", &url_safe],
        vec!["send", "http://127.0.0.1:9/", "--signature", &url_safe],
    ] {
        let output = run(tool(&args).env(SECRET_ENV, SECRET), b"");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let message = stderr(&output);
        let expected = format!(
            "error: {url_safe:?} was read as an option, not as the value of --signature\n\n  \
             tip: a value that starts with '-' is written with '=': --signature={url_safe}\n\n\
             Usage: printone-webhooks {} ",
            args[0]
        );
        assert!(message.starts_with(&expected), "{args:?}:\n{message}");
        assert!(
            !message.contains("'-- "),
            "clap's `-- VALUE` tip is wrong here: {message}"
        );
    }

    let equals = format!("--signature={url_safe}");
    let verified = run(
        tool(&["verify", path, &equals]).env(SECRET_ENV, SECRET),
        b"",
    );
    assert_eq!(verified.status.code(), Some(1), "{}", stderr(&verified));
    assert!(
        stdout(&verified).contains("likely cause: URL-safe base64: "),
        "{}",
        stdout(&verified)
    );

    let listener = Listener::start();
    let url = format!("{}/hook", listener.address);
    let sent = send(&[&url, "--file", path, &equals], SECRET);
    assert_eq!(sent.status.code(), Some(1), "{}", stdout(&sent));
    let printed = listener.deliveries(1);
    assert!(
        printed.contains(&format!("  x-webhook-hmac-sha256: {url_safe}\n")),
        "{printed}"
    );
    assert!(
        printed.contains("verification: invalid (malformed_signature)"),
        "{printed}"
    );

    // A secret that starts with '-': the same advice, without the secret.
    let secret = run(
        &mut tool(&["sign", "--secret", "-hunter2-top-secret"]),
        b"{}",
    );
    assert_eq!(secret.status.code(), Some(2));
    let message = stderr(&secret);
    assert!(
        message.starts_with(
            "error: its value was read as an option, not as the value of --secret\n\n  tip: a \
             value that starts with '-' is written with '=': --secret=VALUE\n"
        ),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

// ---- listen --forward-to ---------------------------------------------------------------

/// A request as an app received it: the head as sent, the headers, the body bytes.
#[derive(Debug)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body from `stream`.
fn read_request(stream: &mut std::net::TcpStream) -> std::io::Result<Received> {
    use std::io::Read;
    let mut data = Vec::new();
    let mut chunk = [0; 8192];
    let end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = data[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Received {
        request_line,
        headers,
        body,
    })
}

/// A stand-in for the developer's app: plain HTTP/1.1 on 127.0.0.1, one request per
/// connection, each recorded; it answers `answer`, or with `None` never answers and reports
/// when the other side closes the connection.
struct App {
    address: String,
    received: mpsc::Receiver<Received>,
    closed: mpsc::Receiver<Instant>,
}

impl App {
    fn start(answer: Option<&'static str>) -> Self {
        use std::io::Read;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the app");
        let address = listener
            .local_addr()
            .expect("the app's address")
            .to_string();
        let (record, received) = mpsc::channel();
        let (close, closed) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let _ = stream.set_read_timeout(Some(PATIENCE));
                let Ok(request) = read_request(&mut stream) else {
                    continue;
                };
                if record.send(request).is_err() {
                    break;
                }
                if let Some(answer) = answer {
                    let _ = stream.write_all(answer.as_bytes());
                } else {
                    let mut rest = [0; 64];
                    if matches!(stream.read(&mut rest), Ok(0)) {
                        let _ = close.send(Instant::now());
                    }
                }
            }
        });
        Self {
            address,
            received,
            closed,
        }
    }

    fn next(&self) -> Received {
        self.received
            .recv_timeout(PATIENCE)
            .expect("the app received the request")
    }
}

/// One exchange with `listen` as a raw HTTP/1.1 client: the whole answer, up to the close.
fn raw_exchange(address: &str, request: &[u8]) -> String {
    use std::io::Read;
    let address = address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to listen");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.write_all(request).expect("write the request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn listen_forwards_every_end_to_end_header_and_the_exact_body_bytes() {
    let app = App::start(Some(
        "HTTP/1.1 202 Accepted\r\ncontent-length: 8\r\nx-app: recorded\r\nconnection: close\r\n\
         \r\nrecorded",
    ));
    let forward_to = format!("http://{}/app/hook?from=listen", app.address);
    let listener = Listener::start_with(&["--forward-to", &forward_to]);

    // Chunked, not JSON-pretty, a trailing newline and non-ASCII bytes: forwarded as is.
    let body = "{\"data\":{\"id\":\"cpn_\u{e9}t\u{e9}\"},\"event\":\"coupon_code_used\"}\n";
    // The chunks split the body inside the `é` (bytes 19 and 20).
    let (first, second) = body.as_bytes().split_at(20);
    let signature = signed(body.as_bytes());
    let mut request = format!(
        "POST /from/the/tunnel HTTP/1.1\r\n\
         Host: abc123.tunnel.example\r\n\
         Content-Type: application/json\r\n\
         User-Agent: Print.one Webhook Service\r\n\
         X-Printone-Event: coupon_code_used\r\n\
         X-Webhook-HMAC-SHA256: {signature}\r\n\
         X-Request-Id: first\r\n\
         X-Request-Id: second\r\n\
         X-Forwarded-For: 203.0.113.7\r\n\
         Connection: close, X-Hop\r\n\
         X-Hop: for this connection only\r\n\
         Transfer-Encoding: chunked\r\n\
         \r\n"
    )
    .into_bytes();
    for chunk in [first, second] {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(&listener.address, &request);

    let received = app.next();
    assert_eq!(received.body, body.as_bytes(), "the body bytes changed");
    assert_eq!(received.request_line, "POST /app/hook?from=listen HTTP/1.1");
    assert_eq!(received.values("host"), [app.address.as_str()]);
    assert_eq!(received.values("content-length"), [body.len().to_string()]);
    for (name, values) in [
        ("content-type", &["application/json"][..]),
        ("user-agent", &["Print.one Webhook Service"]),
        ("x-printone-event", &["coupon_code_used"]),
        ("x-webhook-hmac-sha256", &[signature.as_str()]),
        ("x-request-id", &["first", "second"]),
        ("x-forwarded-for", &["203.0.113.7"]),
    ] {
        assert_eq!(received.values(name), values, "{name}: {received:?}");
    }
    for hop in ["connection", "x-hop", "transfer-encoding"] {
        assert_eq!(
            received.values(hop),
            Vec::<&str>::new(),
            "{hop}: {received:?}"
        );
    }
    // Nothing else was added.
    assert_eq!(received.headers.len(), 9, "{received:?}");

    // The sender gets the app's answer.
    assert!(answer.starts_with("HTTP/1.1 202 Accepted\r\n"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nx-app: recorded\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\nrecorded"), "{answer}");

    let printed = listener.deliveries(1);
    assert!(
        printed.contains("#1 POST /from/the/tunnel from 127.0.0.1:"),
        "{printed}"
    );
    assert!(
        printed.contains("verification: valid (forwarded; the app's answer is sent back)\n"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "#1 forwarded to {forward_to}: the app answered 202 Accepted in "
        )),
        "{printed}"
    );
    assert!(printed.contains(" ms\n  recorded\n"), "{printed}");
}

#[test]
fn listen_answers_a_request_refused_before_its_body_was_read_itself() {
    let app = App::start(Some("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    let forward_to = format!("http://{}/hook", app.address);
    let listener = Listener::start_with(&["--forward-to", &forward_to]);
    let answer = raw_exchange(
        &listener.address,
        b"GET /hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{answer}"
    );
    let printed = listener.deliveries(1);
    assert!(
        printed.contains(
            "verification: refused: webhooks are delivered with POST -> 405 Method Not Allowed \
             (not forwarded: refused before its body was read)"
        ),
        "{printed}"
    );
    assert!(
        app.received
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "the app received a refused request"
    );
}

#[test]
fn listen_answers_502_when_the_app_cannot_be_reached() {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address").port()
    };
    let forward_to = format!("http://127.0.0.1:{port}/hook");
    let listener = Listener::start_with(&["--forward-to", &forward_to]);
    let output = send(&[&format!("{}/hook", listener.address)], SECRET);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("502 Bad Gateway in "), "{text}");
    assert!(
        text.contains(&format!(
            "the app could not be reached at {forward_to}: cannot connect to 127.0.0.1:{port}: "
        )),
        "{text}"
    );
    let printed = listener.deliveries(1);
    assert!(
        printed.contains("verification: valid (forwarded;"),
        "{printed}"
    );
    let line = printed
        .lines()
        .find(|line| line.starts_with("#1 forward failed: "))
        .unwrap_or_else(|| panic!("no failed forward in {printed}"));
    assert!(
        line.starts_with(&format!(
            "#1 forward failed: the app could not be reached at {forward_to}: cannot connect"
        )) && line.ends_with(" -> answered 502 Bad Gateway"),
        "{line}"
    );
}

#[test]
fn listen_answers_504_when_the_app_is_slower_than_the_forward_timeout() {
    let app = App::start(None);
    let forward_to = format!("http://{}/hook", app.address);
    let listener = Listener::start_with(&["--forward-to", &forward_to, "--forward-timeout", "1"]);
    let started = Instant::now();
    let output = send(&[&format!("{}/hook", listener.address)], SECRET);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("504 Gateway Timeout in "), "{text}");
    assert!(
        text.contains(&format!(
            "the app at {forward_to} did not answer within 1 s"
        )),
        "{text}"
    );
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    // The app had the request, and listen closed the connection when it gave up.
    assert_eq!(app.next().request_line, "POST /hook HTTP/1.1");
    let closed = app
        .closed
        .recv_timeout(PATIENCE)
        .expect("listen closed the connection to the app");
    assert!(
        closed - started < Duration::from_secs(5),
        "{:?}",
        closed - started
    );
    let printed = listener.deliveries(1);
    assert!(
        printed.contains(&format!(
            "#1 forward failed: the app at {forward_to} did not answer within 1 s -> answered \
             504 Gateway Timeout\n"
        )),
        "{printed}"
    );
}

#[test]
fn listen_refuses_a_forward_url_that_is_not_plain_http() {
    for (args, reason) in [
        (
            &["--forward-to", "https://127.0.0.1:3000/hook"][..],
            "bad URL \"https://127.0.0.1:3000/hook\": only plain http:// is supported",
        ),
        (
            &["--forward-to", "127.0.0.1:3000/hook"],
            "bad URL \"127.0.0.1:3000/hook\": ",
        ),
        (&["--forward-timeout", "5"], "--forward-to <URL>"),
    ] {
        let mut all = vec!["listen", "--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let output = run(tool(&all).env(SECRET_ENV, SECRET), b"");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stdout(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}: {}", stdout(&output));
        assert!(
            stderr(&output).contains(reason),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

// ---- deliveries ------------------------------------------------------------------------

/// `deliveries` on SQLite files written by the axum example receiver (a real process, sent
/// real HTTP deliveries by `send`), in most tests while the receiver still runs on the file.
#[cfg(feature = "axum")]
mod deliveries {
    use std::{
        collections::HashSet,
        env, fs,
        path::Path,
        process::ExitStatus,
        sync::{Arc, Mutex, PoisonError},
        time::SystemTime,
    };

    use printone_webhooks::{sign_raw, store::DeliveryId, Secret};
    use time::{format_description::well_known::Rfc3339, OffsetDateTime};

    use super::*;

    /// The event the demo handler is told to fail.
    const FAILING: &str = "order_status_update";
    /// An event it handles.
    const MAILING: &str = "mailing_delivered";
    /// Why the demo handler fails a `FAILING` delivery.
    const REASON: &str = "PRINTONE_DEMO_FAIL_EVENT fails every order_status_update delivery";
    /// Settings under which every `FAILING` delivery is dead-lettered at its first attempt.
    const DEAD_AT_ONCE: [(&str, &str); 2] = [
        ("PRINTONE_DEMO_FAIL_EVENT", FAILING),
        ("PRINTONE_MAX_ATTEMPTS", "1"),
    ];

    /// A folder of its own for one test's store; kept when the test fails.
    pub(super) struct Scratch(PathBuf);

    impl Scratch {
        pub(super) fn new(name: &str) -> Self {
            let file = format!("cli-deliveries-{}-{name}", std::process::id());
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

    /// A running axum example receiver on a scratch store.
    pub(super) struct Receiver {
        child: Child,
        pub(super) url: String,
        stdout: Arc<Mutex<Vec<String>>>,
        reader: Option<thread::JoinHandle<()>>,
        log: Arc<Mutex<String>>,
    }

    impl Receiver {
        pub(super) fn start(scratch: &Scratch, settings: &[(&str, &str)]) -> Self {
            let mut command = Command::new(crate::common::example_binary("axum"));
            for (name, _) in env::vars_os() {
                if name.to_string_lossy().starts_with("PRINTONE_") {
                    command.env_remove(name);
                }
            }
            command
                .current_dir(&scratch.0)
                .env("PRINTONE_BIND", "127.0.0.1:0")
                .env(SECRET_ENV, SECRET)
                .env("PRINTONE_STORE", scratch.store())
                .env("RUST_LOG", "info")
                .envs(settings.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = command.spawn().expect("the axum example starts");
            let common::Captured {
                stdout,
                reader,
                log,
                listening,
            } = common::capture(&mut child);
            let url = listening;
            let mut receiver = Self {
                child,
                url: String::new(),
                stdout,
                reader: Some(reader),
                log,
            };
            receiver.url = url
                .recv_timeout(PATIENCE)
                .ok()
                .and_then(|line| Some(line.split_once("listening on ")?.1.to_owned()))
                .unwrap_or_else(|| panic!("the receiver did not listen:\n{}", receiver.log()));
            receiver
        }

        fn log(&self) -> String {
            self.log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }

        /// Posts a signed delivery of `event` for the object `data_id` with `send`.
        fn send(&self, event: &'static str, data_id: &str) -> Sent {
            let body = format!(
                r#"{{"data":{{"id":"{data_id}","status":"order_processed"}},"event":"{event}","created_at":"2024-06-03T13:14:46.501Z"}}"#
            );
            let path = body_file(data_id, body.as_bytes());
            let output = send(
                &[&self.url, "--file", path.to_str().expect("UTF-8")],
                SECRET,
            );
            assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
            let secret = Secret::new(SECRET).expect("the test secret is not empty");
            let id = DeliveryId::from_signature(&sign_raw(&secret, body.as_bytes()));
            Sent {
                id: id.to_string(),
                data_id: data_id.to_owned(),
            }
        }

        /// The data ids of the `handled` lines printed so far.
        pub(super) fn handled(&self) -> Vec<String> {
            self.stdout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter_map(|line| Some(line.strip_prefix("handled event=")?.split_once(" id=")?.1))
                .map(str::to_owned)
                .collect()
        }

        fn wait_until_handled(&self, sent: &[Sent]) {
            let deadline = Instant::now() + PATIENCE;
            loop {
                let handled = self.handled();
                if sent.iter().all(|sent| handled.contains(&sent.data_id)) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "not all of {:?} were handled: {handled:?}\n{}",
                    sent.iter().map(|s| &s.data_id).collect::<Vec<_>>(),
                    self.log()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }

        /// SIGTERM; waits (bounded) for the exit. Returns the status and every handled id.
        fn terminate(mut self) -> (ExitStatus, Vec<String>) {
            let pid = self.child.id().to_string();
            let sent = Command::new("kill").args(["-TERM", &pid]).status();
            assert!(sent.expect("`kill` runs").success());
            let deadline = Instant::now() + PATIENCE;
            let status = loop {
                if let Some(status) = self.child.try_wait().expect("the receiver's status") {
                    break status;
                }
                assert!(
                    Instant::now() < deadline,
                    "no exit after SIGTERM:\n{}",
                    self.log()
                );
                thread::sleep(Duration::from_millis(10));
            };
            if let Some(reader) = self.reader.take() {
                reader.join().expect("the stdout reader");
            }
            (status, self.handled())
        }
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            if thread::panicking() {
                eprintln!("--- the receiver's log ---\n{}", self.log());
            }
        }
    }

    /// A delivery that got its 200: its id (64 hex characters) and its data id.
    #[derive(Debug)]
    struct Sent {
        id: String,
        data_id: String,
    }

    impl Sent {
        /// The id as `list` prints it.
        fn short(&self) -> &str {
            &self.id[..16]
        }
    }

    /// A store the receiver filled and still runs on: `dead` deliveries the demo handler failed
    /// at their one attempt, then `done` deliveries it handled.
    struct Filled {
        scratch: Scratch,
        store: Store,
        receiver: Receiver,
        dead: Vec<Sent>,
        done: Vec<Sent>,
    }

    impl Filled {
        fn new(name: &str, dead: usize, done: usize) -> Self {
            let scratch = Scratch::new(name);
            let store = Store(scratch.store());
            let receiver = Receiver::start(&scratch, &DEAD_AT_ONCE);
            let dead: Vec<Sent> = (0..dead)
                .map(|n| receiver.send(FAILING, &format!("ord_{name}_{n}")))
                .collect();
            let done: Vec<Sent> = (0..done)
                .map(|n| receiver.send(MAILING, &format!("mlg_{name}_{n}")))
                .collect();
            receiver.wait_until_handled(&done);
            store.wait_for(&["--state", "dead"], dead.len());
            Self {
                scratch,
                store,
                receiver,
                dead,
                done,
            }
        }
    }

    /// The `deliveries` commands on one store.
    struct Store(String);

    impl Store {
        /// `deliveries --store <this store> ARGS…`.
        fn run(&self, args: &[&str]) -> Output {
            deliveries(&self.0, args)
        }

        /// `list ARGS…`, which must succeed, parsed.
        fn list(&self, args: &[&str]) -> Vec<Line> {
            let mut all = vec!["list"];
            all.extend_from_slice(args);
            let output = self.run(&all);
            assert_eq!(output.status.code(), Some(0), "{}", error(&output));
            stdout(&output).lines().map(Line::parse).collect()
        }

        /// Waits (bounded) until `list ARGS…` shows `count` deliveries.
        fn wait_for(&self, args: &[&str], count: usize) -> Vec<Line> {
            let deadline = Instant::now() + PATIENCE;
            loop {
                let lines = self.list(args);
                if lines.len() == count {
                    return lines;
                }
                assert!(
                    Instant::now() < deadline,
                    "list {args:?} shows {lines:?}, not {count} deliveries"
                );
                thread::sleep(Duration::from_millis(50));
            }
        }

        /// `show ID`, which must succeed.
        fn show(&self, id: &str) -> String {
            let output = self.run(&["show", id]);
            assert_eq!(output.status.code(), Some(0), "{}", error(&output));
            stdout(&output)
        }
    }

    fn deliveries(store: &str, args: &[&str]) -> Output {
        let mut all = vec!["deliveries", "--store", store];
        all.extend_from_slice(args);
        run(tool(&all).env_remove("PRINTONE_STORE"), b"")
    }

    fn error(output: &Output) -> String {
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// One `list` line: `ID STATE EVENT DATA_ID attempts=N received=TIME reason=REASON`.
    #[derive(Debug, PartialEq, Eq)]
    struct Line {
        id: String,
        state: String,
        event: String,
        data_id: String,
        attempts: u32,
        received: SystemTime,
        reason: String,
    }

    impl Line {
        fn parse(line: &str) -> Self {
            let fields: Vec<&str> = line.splitn(7, ' ').collect();
            let [id, state, event, data_id, attempts, received, reason] = fields[..] else {
                panic!("not a list line: {line}");
            };
            let value = |field: &str, name: &str| {
                field
                    .strip_prefix(name)
                    .unwrap_or_else(|| panic!("no {name} in {line}"))
                    .to_owned()
            };
            let received = OffsetDateTime::parse(&value(received, "received="), &Rfc3339)
                .unwrap_or_else(|_| panic!("received is no RFC 3339 time in {line}"));
            Self {
                id: id.to_owned(),
                state: state.to_owned(),
                event: event.to_owned(),
                data_id: data_id.to_owned(),
                attempts: value(attempts, "attempts=")
                    .parse()
                    .unwrap_or_else(|_| panic!("bad attempts in {line}")),
                received: received.into(),
                reason: value(reason, "reason="),
            }
        }
    }

    fn ids(lines: &[Line]) -> HashSet<&str> {
        lines.iter().map(|line| line.id.as_str()).collect()
    }

    fn shorts(sent: &[Sent]) -> HashSet<&str> {
        sent.iter().map(Sent::short).collect()
    }

    #[test]
    fn deliveries_list_prints_one_line_per_delivery_and_filters_by_state_and_event() {
        let filled = Filled::new("list", 3, 2);
        let all = filled.store.list(&[]);
        assert_eq!(all.len(), 5, "{all:?}");
        let a_minute_ago = SystemTime::now() - Duration::from_secs(60);
        for (sent, expected) in filled
            .dead
            .iter()
            .map(|sent| (sent, ("dead", FAILING, format!("{REASON:?}"))))
            .chain(
                filled
                    .done
                    .iter()
                    .map(|sent| (sent, ("done", MAILING, "-".to_owned()))),
            )
        {
            let line = all
                .iter()
                .find(|line| line.id == sent.short())
                .unwrap_or_else(|| panic!("{sent:?} is not listed: {all:?}"));
            let (state, event, reason) = expected;
            assert_eq!(
                (
                    line.state.as_str(),
                    line.event.as_str(),
                    line.data_id.as_str()
                ),
                (state, event, sent.data_id.as_str()),
                "{line:?}"
            );
            assert_eq!((line.attempts, line.reason.as_str()), (1, reason.as_str()));
            assert!(
                line.received > a_minute_ago && line.received <= SystemTime::now(),
                "{line:?}"
            );
        }
        // Newest first: the last two sent.
        let newest = filled.store.list(&["--limit", "2"]);
        let expected: Vec<&str> = filled.done.iter().rev().map(Sent::short).collect();
        let listed: Vec<&str> = newest.iter().map(|line| line.id.as_str()).collect();
        assert_eq!(listed, expected);

        assert_eq!(
            ids(&filled.store.list(&["--state", "dead"])),
            shorts(&filled.dead)
        );
        assert_eq!(
            ids(&filled.store.list(&["--state", "done"])),
            shorts(&filled.done)
        );
        assert_eq!(filled.store.list(&["--state", "pending"]), []);
        assert_eq!(
            ids(&filled.store.list(&["--event", MAILING])),
            shorts(&filled.done)
        );
        assert_eq!(
            ids(&filled.store.list(&["--event", FAILING])),
            shorts(&filled.dead)
        );
        assert_eq!(
            filled.store.list(&["--state", "dead", "--event", MAILING]),
            []
        );
        let bogus = filled.store.run(&["list", "--state", "lost"]);
        assert_eq!(bogus.status.code(), Some(2), "{}", error(&bogus));
    }

    #[test]
    fn deliveries_show_prints_the_headers_the_pretty_body_and_the_failed_attempt() {
        let filled = Filled::new("show", 1, 1);
        let dead = &filled.dead[0];
        let text = filled.store.show(dead.short());
        for expected in [
            format!("id:          {}\n", dead.id),
            "state:       dead\n".to_owned(),
            format!("event:       {FAILING}\n"),
            format!("data id:     {}\n", dead.data_id),
            "attempts:    1\n".to_owned(),
            format!("last reason: {REASON}\n"),
            format!("headers:\n  x-printone-event: {FAILING}\n"),
            "  signature under x-webhook-hmac-sha256 (secret #0)\n".to_owned(),
            "history:\n  #1 ".to_owned(),
            format!(" ms failed: {REASON}\nbody:\n{{\n  \"data\": {{\n"),
            format!("    \"id\": \"{}\",\n", dead.data_id),
            format!("  \"event\": \"{FAILING}\",\n"),
        ] {
            assert!(text.contains(&expected), "{expected:?} is not in:\n{text}");
        }
        assert_eq!(text.matches("\n  #").count(), 1, "one attempt:\n{text}");
        // The whole id names it too.
        assert_eq!(filled.store.show(&dead.id), text);

        let done = filled.store.show(filled.done[0].short());
        for expected in [
            "state:       done\n",
            "last reason: -\n",
            " ms handled\n",
            "body:\n  (dropped once handled; only the id is kept)\n",
        ] {
            assert!(done.contains(expected), "{expected:?} is not in:\n{done}");
        }
    }

    #[test]
    fn deliveries_replay_puts_dead_letters_back_for_the_receiver_to_handle() {
        let filled = Filled::new("replay", 3, 1);
        let first = &filled.dead[0];

        // The running receiver picks the replayed delivery up; its handler still fails it.
        let replayed = filled.store.run(&["replay", first.short()]);
        assert_eq!(
            (replayed.status.code(), stdout(&replayed)),
            (Some(0), "replayed 1\n".to_owned()),
            "{}",
            error(&replayed)
        );
        let deadline = Instant::now() + PATIENCE;
        while !filled.store.show(first.short()).contains("\n  #2 ") {
            assert!(Instant::now() < deadline, "the replay was not attempted");
            thread::sleep(Duration::from_millis(50));
        }
        let text = filled.store.wait_for(&["--state", "dead"], 3);
        assert!(text.iter().all(|line| line.attempts == 1), "{text:?}");
        let history = filled.store.show(first.short());
        assert_eq!(history.matches(" ms failed: ").count(), 2, "{history}");

        // Only dead letters are replayed.
        let not_dead = filled.store.run(&["replay", filled.done[0].short()]);
        assert_eq!(not_dead.status.code(), Some(1), "{}", error(&not_dead));
        assert_eq!(stdout(&not_dead), "replayed 0\n");

        let (status, _) = filled.receiver.terminate();
        assert!(status.success(), "{status}");
        let other_event = filled
            .store
            .run(&["replay", "--all-dead", "--event", MAILING]);
        assert_eq!(stdout(&other_event), "replayed 0\n");
        let all = filled
            .store
            .run(&["replay", "--all-dead", "--event", FAILING]);
        assert_eq!(
            (all.status.code(), stdout(&all)),
            (Some(0), "replayed 3\n".to_owned()),
            "{}",
            error(&all)
        );
        let pending = filled.store.list(&["--state", "pending"]);
        assert_eq!(ids(&pending), shorts(&filled.dead));
        assert!(pending.iter().all(|line| line.attempts == 0), "{pending:?}");

        // Restarted without the failing handler, the receiver handles them.
        let receiver = Receiver::start(&filled.scratch, &[]);
        receiver.wait_until_handled(&filled.dead);
        let done = filled.store.wait_for(&["--state", "done"], 4);
        assert!(done.iter().all(|line| line.reason == "-"), "{done:?}");
        let (status, handled) = receiver.terminate();
        assert!(status.success(), "{status}");
        let mut handled = handled;
        handled.sort();
        let mut expected: Vec<String> = filled.dead.iter().map(|s| s.data_id.clone()).collect();
        expected.sort();
        assert_eq!(handled, expected, "handled once each, nothing else");
        assert!(filled.store.show(first.short()).contains(" ms handled\n"));
    }

    #[test]
    fn deliveries_purge_removes_what_finished_before_the_duration() {
        let filled = Filled::new("purge", 2, 2);
        let kept = filled.store.run(&["purge", "--older-than", "1h"]);
        assert_eq!(
            (kept.status.code(), stdout(&kept)),
            (Some(0), "purged 0\n".to_owned()),
            "{}",
            error(&kept)
        );
        assert_eq!(filled.store.list(&[]).len(), 4);

        thread::sleep(Duration::from_millis(1_100));
        let fresh = filled.receiver.send(MAILING, "mlg_purge_fresh");
        filled
            .receiver
            .wait_until_handled(std::slice::from_ref(&fresh));
        filled.store.wait_for(&["--state", "done"], 3);
        let purged = filled.store.run(&["purge", "--older-than", "1s"]);
        assert_eq!(
            (purged.status.code(), stdout(&purged)),
            (Some(0), "purged 4\n".to_owned()),
            "{}",
            error(&purged)
        );
        let left = filled.store.list(&[]);
        assert_eq!(ids(&left), HashSet::from([fresh.short()]), "{left:?}");

        let bad = filled.store.run(&["purge", "--older-than", "3y"]);
        assert_eq!(bad.status.code(), Some(2), "{}", error(&bad));
    }

    #[test]
    fn deliveries_exits_1_for_an_id_no_delivery_has() {
        let filled = Filled::new("unknown", 1, 1);
        let unknown = "0".repeat(64);
        for args in [
            vec!["show", unknown.as_str()],
            vec!["show", "00000000"],
            vec!["replay", unknown.as_str()],
            vec!["replay", "00000000"],
        ] {
            let output = filled.store.run(&args);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{args:?}: {}",
                error(&output)
            );
        }
        let show = filled.store.run(&["show", "00000000"]);
        assert!(
            error(&show).contains("no delivery 00000000"),
            "{}",
            error(&show)
        );
        // Not an id at all: a usage error.
        let not_hex = filled.store.run(&["show", "xyz"]);
        assert_eq!(not_hex.status.code(), Some(2), "{}", error(&not_hex));
        // Nothing was changed.
        assert_eq!(filled.store.list(&["--state", "dead"]).len(), 1);
    }

    #[test]
    fn deliveries_exits_2_for_a_store_file_that_does_not_exist() {
        let scratch = Scratch::new("missing");
        let path = scratch.0.join("typo.db");
        let store = format!("sqlite:{}", path.display());
        for args in [
            &["list"][..],
            &["show", "abcd"],
            &["replay", "--all-dead"],
            &["purge", "--older-than", "7d"],
        ] {
            let output = deliveries(&store, args);
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            assert!(output.stdout.is_empty(), "{args:?}");
            let message = error(&output);
            assert!(
                message.contains(&path.display().to_string()) && message.contains("does not exist"),
                "{args:?}: {message}"
            );
        }
        // PRINTONE_STORE names it the same way.
        let output = run(
            tool(&["deliveries", "list"]).env("PRINTONE_STORE", &store),
            b"",
        );
        assert_eq!(output.status.code(), Some(2));
        assert!(error(&output).contains(&path.display().to_string()));
        assert!(!path.exists(), "the missing store was created");
        let memory = deliveries("memory", &["list"]);
        assert_eq!(memory.status.code(), Some(2), "{}", error(&memory));
    }

    #[test]
    fn deliveries_reads_the_store_while_the_receiver_writes_and_handles() {
        let scratch = Scratch::new("running");
        let store = Store(scratch.store());
        // One at a time, 800 ms each: a delivery is still waiting when `list` runs right
        // after its 200.
        let slow = [
            ("PRINTONE_DEMO_HANDLER_DELAY_MS", "800"),
            ("PRINTONE_CONCURRENCY", "1"),
        ];
        let receiver = Receiver::start(&scratch, &slow);
        let mut sent = Vec::new();
        for n in 0..3 {
            sent.push(receiver.send(MAILING, &format!("mlg_running_{n}")));
            let lines = store.list(&[]);
            assert_eq!(ids(&lines), shorts(&sent), "{lines:?}");
            let newest = &lines[0];
            assert_eq!(newest.id, sent[n].short(), "newest first: {lines:?}");
            assert!(
                ["pending", "leased"].contains(&newest.state.as_str()),
                "{lines:?}"
            );
            assert!(
                lines
                    .iter()
                    .all(|line| ["pending", "leased", "done"].contains(&line.state.as_str())),
                "{lines:?}"
            );
        }
        receiver.wait_until_handled(&sent);
        let done = store.wait_for(&["--state", "done"], sent.len());
        assert_eq!(ids(&done), shorts(&sent));
        let (status, mut handled) = receiver.terminate();
        assert!(status.success(), "{status}");
        handled.sort();
        let expected: Vec<String> = sent.iter().map(|s| s.data_id.clone()).collect();
        assert_eq!(handled, expected, "handled once each");
    }
}

/// `listen --forward-to` in front of a real receiver, the axum example.
#[cfg(feature = "axum")]
mod forward_to_a_receiver {
    use super::{
        deliveries::{Receiver, Scratch},
        *,
    };

    #[test]
    fn listen_passes_a_valid_delivery_through_and_shows_the_apps_401_for_a_tampered_one() {
        let scratch = Scratch::new("forward");
        let receiver = Receiver::start(&scratch, &[("PRINTONE_STORE", "memory")]);
        let listener = Listener::start_with(&["--forward-to", &receiver.url]);
        let url = format!("{}/any/path", listener.address);
        let body = r#"{"data":{"id":"ord_forwarded","status":"order_processed"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;
        let path = body_file("forward", body.as_bytes());
        let path = path.to_str().expect("UTF-8 path");

        let valid = send(&[&url, "--file", path], SECRET);
        assert_eq!(valid.status.code(), Some(0), "{}", stdout(&valid));
        assert!(stdout(&valid).contains("200 OK in "), "{}", stdout(&valid));
        let deadline = Instant::now() + PATIENCE;
        while receiver.handled() != ["ord_forwarded"] {
            assert!(
                Instant::now() < deadline,
                "the receiver handled {:?}",
                receiver.handled()
            );
            thread::sleep(Duration::from_millis(20));
        }

        let tampered = send(&[&url, "--file", path, "--tamper"], SECRET);
        assert_eq!(tampered.status.code(), Some(1), "{}", stdout(&tampered));
        assert!(
            stdout(&tampered).contains("401 Unauthorized in "),
            "{}",
            stdout(&tampered)
        );

        let printed = printed_requests(&listener.deliveries(2));
        assert_eq!(printed.len(), 2, "{printed:?}");
        let signature = format!("  x-webhook-hmac-sha256: {}\n", signed(body.as_bytes()));
        let prefix = format!(
            "#1 forwarded to {}: the app answered 200 OK in ",
            receiver.url
        );
        assert!(printed[0].contains(&signature), "{}", printed[0]);
        assert!(
            printed[0].contains("verification: valid (forwarded;"),
            "{}",
            printed[0]
        );
        assert!(printed[0].contains(&prefix), "{}", printed[0]);
        let prefix = format!(
            "#2 forwarded to {}: the app answered 401 Unauthorized in ",
            receiver.url
        );
        assert!(printed[1].contains(&signature), "{}", printed[1]);
        assert!(
            printed[1].contains("verification: invalid (signature_mismatch)"),
            "{}",
            printed[1]
        );
        assert!(printed[1].contains(&prefix), "{}", printed[1]);
        // The app's own reason, as it answered it.
        assert!(
            printed[1].contains(" ms\n  signature does not match the body\n"),
            "{}",
            printed[1]
        );
        assert_eq!(
            receiver.handled(),
            ["ord_forwarded"],
            "handled once, the tampered one not"
        );
    }
}
