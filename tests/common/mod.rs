//! Helpers shared by the integration tests: a secret, signed deliveries and bounded waits.
#![allow(dead_code)] // each test crate uses a different subset of these helpers

use std::{future::Future, time::Duration};

#[path = "../../src/test_vectors.rs"]
pub(crate) mod vectors;

use bytes::Bytes;
use printone_webhooks::{sign, Secret};

/// The secret the receivers under test are configured with.
pub(crate) const SECRET: &str = "pO1_webhook_integration_7f3KqV9xLm2R";

/// How long any single wait in a test may take before the test fails instead of hanging.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// The configured secret.
pub(crate) fn secret() -> Secret {
    Secret::new(SECRET).expect("the test secret is not empty")
}

/// A Print.one `order_status_update` envelope for the order `id`.
pub(crate) fn order_body(id: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"data":{{"id":"{id}","status":"order_processed","friendlyStatus":"Processed"}},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}}"#
    ))
}

/// The signature header value Print.one would send for `body` under the configured secret.
pub(crate) fn signature_of(body: &[u8]) -> String {
    sign(&secret(), body)
}

/// Awaits `future`, failing the test when it takes longer than [`PATIENCE`].
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// What a child process prints, collected as it runs: stdout a line at a time, stderr as one
/// text, and every stderr line that says where it is `listening on`.
pub(crate) struct Captured {
    pub(crate) stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Ends when the child's stdout closes: join it to read every line.
    pub(crate) reader: std::thread::JoinHandle<()>,
    pub(crate) log: std::sync::Arc<std::sync::Mutex<String>>,
    pub(crate) listening: std::sync::mpsc::Receiver<String>,
}

/// Starts reading the piped stdout and stderr of `child`.
///
/// # Panics
///
/// When the child's stdout or stderr is not piped.
pub(crate) fn capture(child: &mut std::process::Child) -> Captured {
    use std::{
        io::{BufRead as _, BufReader},
        sync::{mpsc, Arc, Mutex, PoisonError},
        thread,
    };
    let stdout_pipe = child.stdout.take().expect("stdout is piped");
    let stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let lines = Arc::clone(&stdout);
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout_pipe).lines().map_while(Result::ok) {
            lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        }
    });
    let log = Arc::new(Mutex::new(String::new()));
    let text = Arc::clone(&log);
    let (said, listening) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            if line.contains("listening on ") {
                let _ = said.send(line.clone());
            }
            let mut text = text.lock().unwrap_or_else(PoisonError::into_inner);
            text.push_str(&line);
            text.push('\n');
        }
    });
    Captured {
        stdout,
        reader,
        log,
        listening,
    }
}

/// The example `name` that `cargo test` built beside this test (`target/<profile>/examples/`),
/// refused when a source it was built from changed after it was built: a stale receiver would
/// test old code.
///
/// # Panics
///
/// When the binary is missing or older than one of its sources.
pub(crate) fn example_binary(name: &str) -> std::path::PathBuf {
    use std::{fs, path::Path};
    let modified = |path: &Path| fs::metadata(path).and_then(|meta| meta.modified()).ok();
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps/");
    let binary = profile.join("examples").join(name);
    let built = modified(&binary).unwrap_or_else(|| {
        panic!(
            "{} is missing: `cargo test --all-features` builds the examples (a `--test` \
             filter alone does not; `cargo build --examples --all-features` does)",
            binary.display()
        )
    });
    let dep_info = fs::read_to_string(binary.with_extension("d")).unwrap_or_default();
    let line = dep_info.lines().next().unwrap_or_default();
    let list = line.split_once(": ").map_or("", |(_, list)| list);
    let changed: Vec<std::path::PathBuf> = list
        .replace("\\ ", "\0")
        .split(' ')
        .filter(|source| !source.is_empty())
        .map(|source| std::path::PathBuf::from(source.replace('\0', " ")))
        .filter(|source| modified(source).is_some_and(|at| at > built))
        .collect();
    assert!(
        changed.is_empty(),
        "{} is older than {changed:?}: rebuild it with `cargo build --examples --all-features`",
        binary.display()
    );
    binary
}
