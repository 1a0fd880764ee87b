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
        let mut child = tool(&["listen", "--bind", "127.0.0.1:0"])
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

    /// Reads until `count` deliveries have been printed completely (or the patience runs out).
    fn deliveries(&self, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut text = String::new();
        let mut seen = 0;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    seen += usize::from(line.starts_with('}') || line.starts_with("body (0"));
                    text.push_str(&line);
                    text.push('\n');
                    if seen == count {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        text
    }
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
