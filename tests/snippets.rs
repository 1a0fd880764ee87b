//! The reference snippets in `docs/snippets` agree with the shared test vectors.
//!
//! Python and Node.js run on every machine this crate is tested on; Go and PHP run where their
//! toolchains are installed.

use std::{path::Path, process::Command};

const VECTORS: &str = "tests/vectors/printone.json";

fn available(program: &str, version_arg: &str) -> bool {
    Command::new(program)
        .arg(version_arg)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs a snippet's vector mode and asserts every vector passed.
fn assert_vectors_pass(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .args(["--vectors", VECTORS])
        .output()
        .unwrap_or_else(|error| panic!("failed to run {program}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        output.status.success() && last.ends_with(" 0 failed"),
        "{program} {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a snippet's command mode: `SECRET BODY_FILE SIGNATURE`.
fn run_command(program: &str, script: &str, signature: &str) -> std::process::Output {
    let body_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("snippet-body-{program}"));
    std::fs::write(
        &body_file,
        br#"{"data":{"id":"ord_1"},"event":"order_status_update"}"#,
    )
    .expect("write the body file");
    Command::new(program)
        .args([
            script,
            "s3cr3t",
            body_file.to_str().expect("a UTF-8 temporary path"),
            signature,
        ])
        .output()
        .expect("run the snippet")
}

fn assert_command_mode(program: &str, script: &str) {
    let secret = printone_webhooks::Secret::new("s3cr3t").expect("a non-empty secret");
    let body = br#"{"data":{"id":"ord_1"},"event":"order_status_update"}"#;
    let valid = printone_webhooks::sign(&secret, body);

    let accepted = run_command(program, script, &valid);
    assert_eq!(
        accepted.status.code(),
        Some(0),
        "{program} refused a valid signature"
    );
    assert!(accepted.stdout.is_empty() && accepted.stderr.is_empty());

    let refused = run_command(program, script, &valid.replace('=', ""));
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{program} accepted an unpadded signature"
    );
}

#[test]
fn python_snippet_passes_every_vector() {
    assert_vectors_pass("python3", &["docs/snippets/verify.py"]);
}

#[test]
fn python_snippet_command_exits_0_silently_on_valid_and_1_on_invalid() {
    assert_command_mode("python3", "docs/snippets/verify.py");
}

#[test]
fn node_snippet_passes_every_vector() {
    assert_vectors_pass("node", &["docs/snippets/verify.js"]);
}

#[test]
fn node_snippet_command_exits_0_silently_on_valid_and_1_on_invalid() {
    assert_command_mode("node", "docs/snippets/verify.js");
}

#[test]
fn php_snippet_passes_every_vector_where_php_is_installed() {
    if available("php", "--version") {
        assert_vectors_pass("php", &["docs/snippets/verify.php"]);
    } else {
        eprintln!("php is not installed; the PHP snippet was not run");
    }
}

#[test]
fn go_snippet_passes_every_vector_where_go_is_installed() {
    if available("go", "version") {
        assert_vectors_pass("go", &["run", "docs/snippets/verify.go"]);
    } else {
        eprintln!("go is not installed; the Go snippet was not run");
    }
}
