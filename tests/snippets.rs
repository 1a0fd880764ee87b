//! The reference snippets in `docs/snippets` agree with the shared test vectors.
//!
//! Every snippet runs wherever its toolchain is installed. When one is missing, its tests fail
//! if the `CI` environment variable is set (to anything but the empty string): `.ci/run` installs
//! every toolchain from Debian's packages, so a CI run always checks every snippet. Without `CI`
//! (a developer's machine) the tests of a missing toolchain pass after one line on stderr naming
//! the tool and the Debian package that provides it.

use std::{
    io::Write as _,
    path::Path,
    process::{Command, Output},
    sync::OnceLock,
};

const VECTORS: &str = "tests/vectors/printone.json";

/// A toolchain a snippet runs with.
struct Toolchain {
    /// The command that runs the snippet.
    program: &'static str,
    /// The argument that makes it print its version and succeed.
    version_arg: &'static str,
    /// The Debian package that provides it (what `.ci/run` installs).
    package: &'static str,
    /// Whether it runs on this machine, asked once.
    installed: OnceLock<bool>,
}

impl Toolchain {
    const fn new(program: &'static str, version_arg: &'static str, package: &'static str) -> Self {
        Self {
            program,
            version_arg,
            package,
            installed: OnceLock::new(),
        }
    }

    /// Whether this toolchain's snippet tests run here.
    ///
    /// # Panics
    ///
    /// When the toolchain is missing and `CI` is set: a snippet CI cannot run is a red CI.
    fn runs(&self) -> bool {
        let ci = in_ci();
        let installed = *self.installed.get_or_init(|| {
            let installed = Command::new(self.program)
                .arg(self.version_arg)
                .output()
                .is_ok_and(|output| output.status.success());
            if !installed && !ci {
                // Straight to the process's stderr: the test harness would hide a passing
                // test's `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: {} not installed (Debian package {})",
                    self.program,
                    self.package
                );
            }
            installed
        });
        assert!(
            installed || !ci,
            "{} not installed (Debian package {}), and CI is set: every snippet must run in CI \
             (.ci/run installs it)",
            self.program,
            self.package
        );
        installed
    }
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty())
}

static PYTHON: Toolchain = Toolchain::new("python3", "--version", "python3");
static NODE: Toolchain = Toolchain::new("node", "--version", "nodejs");
static GO: Toolchain = Toolchain::new("go", "version", "golang-go");
static PHP: Toolchain = Toolchain::new("php", "--version", "php-cli");
static RUBY: Toolchain = Toolchain::new("ruby", "--version", "ruby");

/// Runs a snippet's vector mode (`program args… --vectors FILE`) and asserts every vector passed.
fn assert_vectors_pass(tool: &Toolchain, args: &[&str]) {
    if !tool.runs() {
        return;
    }
    let program = tool.program;
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

/// Runs a snippet's command mode: `program args… SECRET BODY_FILE SIGNATURE`.
fn run_command(tool: &Toolchain, args: &[&str], signature: &str) -> Output {
    let program = tool.program;
    let body_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("snippet-body-{program}"));
    std::fs::write(
        &body_file,
        br#"{"data":{"id":"ord_1"},"event":"order_status_update"}"#,
    )
    .expect("write the body file");
    Command::new(program)
        .args(args)
        .args([
            "s3cr3t",
            body_file.to_str().expect("a UTF-8 temporary path"),
            signature,
        ])
        .output()
        .unwrap_or_else(|error| panic!("failed to run {program}: {error}"))
}

/// A valid signature exits 0 silently; an unpadded one exits 1.
fn assert_command_mode(tool: &Toolchain, args: &[&str]) {
    if !tool.runs() {
        return;
    }
    let program = tool.program;
    let secret = printone_webhooks::Secret::new("s3cr3t").expect("a non-empty secret");
    let body = br#"{"data":{"id":"ord_1"},"event":"order_status_update"}"#;
    let valid = printone_webhooks::sign(&secret, body);

    let accepted = run_command(tool, args, &valid);
    assert_eq!(
        accepted.status.code(),
        Some(0),
        "{program} refused a valid signature: {}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(accepted.stdout.is_empty() && accepted.stderr.is_empty());

    // `go run` exits 1 for any non-zero exit of the program, so 1 is what every snippet gives.
    let refused = run_command(tool, args, &valid.replace('=', ""));
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{program} accepted an unpadded signature"
    );
}

#[test]
fn python_snippet_passes_every_vector() {
    assert_vectors_pass(&PYTHON, &["docs/snippets/verify.py"]);
}

#[test]
fn python_snippet_command_exits_0_silently_on_valid_and_1_on_invalid() {
    assert_command_mode(&PYTHON, &["docs/snippets/verify.py"]);
}

#[test]
fn node_snippet_passes_every_vector() {
    assert_vectors_pass(&NODE, &["docs/snippets/verify.js"]);
}

#[test]
fn node_snippet_command_exits_0_silently_on_valid_and_1_on_invalid() {
    assert_command_mode(&NODE, &["docs/snippets/verify.js"]);
}

#[test]
fn go_snippet_passes_every_vector() {
    assert_vectors_pass(&GO, &["run", "docs/snippets/verify.go"]);
}

#[test]
fn go_snippet_command_exits_0_silently_on_valid_and_1_on_invalid() {
    assert_command_mode(&GO, &["run", "docs/snippets/verify.go"]);
}

#[test]
fn php_snippet_passes_every_vector() {
    assert_vectors_pass(&PHP, &["docs/snippets/verify.php"]);
}

#[test]
fn php_snippet_command_exits_0_silently_on_valid_and_1_on_invalid() {
    assert_command_mode(&PHP, &["docs/snippets/verify.php"]);
}

#[test]
fn ruby_snippet_passes_every_vector() {
    assert_vectors_pass(&RUBY, &["docs/snippets/verify.rb"]);
}

#[test]
fn ruby_snippet_command_exits_0_silently_on_valid_and_1_on_invalid() {
    assert_command_mode(&RUBY, &["docs/snippets/verify.rb"]);
}
