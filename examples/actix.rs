//! A Print.one webhook receiver on actix-web: verify, answer 200 at once, handle on the worker.
//!
//! Run it with `cargo run --example actix --features actix-web`. Settings come from the
//! environment, exactly as for `examples/axum.rs`:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PRINTONE_BIND` | `127.0.0.1:3000` | address to listen on; the route is `POST /webhooks/printone` |
//! | `PRINTONE_WEBHOOK_SECRET` | generated | the secret; when unset a development secret is generated and printed with a ready `curl` command |
//! | `PRINTONE_MAX_BODY_BYTES` | `1048576` | body limit (413 above it) |
//! | `PRINTONE_BODY_TIMEOUT_MS` | `10000` | deadline for the body to arrive (408 after it) |
//! | `PRINTONE_QUEUE_CAPACITY` | `1024` | deliveries waiting for the handler, per worker (503 when full) |
//! | `PRINTONE_DEMO_HANDLER_DELAY_MS` | `0` | how long the demo handler works on each delivery |
//!
//! Every delivery handled in the background prints one line on stdout:
//! `handled event=<event> id=<data.id>` (`id=-` when there is none, `event=- id=-` when the body
//! does not parse). Logs go to stderr. On SIGTERM or Ctrl-C the server stops accepting, every
//! accepted delivery is finished, and the process exits 0.
//!
//! Each actix worker gets its own queue and consumer on its own thread
//! ([`printone_webhooks::worker_queues`]), so handing a delivery over never wakes another
//! thread; what a worker has not finished when the server stops is handled after it.

use std::{
    collections::hash_map::RandomState,
    env,
    fmt::Write as _,
    hash::{BuildHasher, Hasher},
    io::Write as _,
    net::SocketAddr,
    process::ExitCode,
    str::FromStr,
    time::{Duration, SystemTime},
};

use actix_web::{App, HttpServer};
use printone_webhooks::{
    sign, worker_queues, Delivery, Secret, Verifier, WebhookConfig, WebhookResource,
};
use serde_json::Value;

const ROUTE: &str = "/webhooks/printone";
const SAMPLE: &str = r#"{"data":{"id":"ord_sample_1","status":"order_created","friendlyStatus":"Created"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;

struct Settings {
    bind: SocketAddr,
    secret: Option<String>,
    max_body_bytes: usize,
    body_timeout: Duration,
    queue_capacity: usize,
    handler_delay: Duration,
}

#[actix_web::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env()?;
    let generated = settings.secret.is_none();
    let secret_text = settings.secret.clone().unwrap_or_else(development_secret);
    let secret = Secret::new(&secret_text)?;

    let delay = settings.handler_delay;
    let (queues, leftovers) = worker_queues(settings.queue_capacity, move |delivery| {
        handle(delivery, delay)
    })?;
    let config = WebhookConfig::new(Verifier::new(secret.clone()))
        .with_max_body_bytes(settings.max_body_bytes)
        .with_body_timeout(settings.body_timeout);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(config.clone())
            .service(WebhookResource::new(ROUTE, queues.spawn()))
    })
    .disable_signals()
    .bind(settings.bind)?;
    let local = server
        .addrs()
        .first()
        .copied()
        .ok_or("the server is not bound")?;
    tracing::info!("listening on http://{local}{ROUTE}");
    if generated {
        print_development_help(&secret_text, &secret, local);
    }

    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: no new connections, finishing requests in flight");
        handle.stop(true).await;
    });
    server.await?;
    tracing::info!("stopped accepting; finishing accepted deliveries");
    let finished_after_stop = leftovers.finish().await;
    tracing::info!(finished_after_stop, "all accepted deliveries finished");
    Ok(())
}

/// The demo handler: runs on the worker thread after the sender already got its 200.
async fn handle(delivery: Delivery, delay: Duration) {
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    let (event, id) = summary(&delivery);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "handled event={event} id={id}");
    let _ = stdout.flush();
}

/// The event name and `data.id` of a delivery, `-` for what is not there.
fn summary(delivery: &Delivery) -> (String, String) {
    if let Ok(event) = delivery.event() {
        let id = event.data_id().unwrap_or("-");
        return (printable(event.name()), printable(id));
    }
    let Ok(value) = delivery.parse::<Value>() else {
        return ("-".into(), "-".into());
    };
    let Some(event) = value.get("event").and_then(Value::as_str) else {
        return ("-".into(), "-".into());
    };
    let id = match value.pointer("/data/id") {
        Some(Value::String(id)) => printable(id),
        Some(Value::Number(id)) => id.to_string(),
        _ => "-".into(),
    };
    (printable(event), id)
}

/// Keeps one output line per delivery, whatever the body contains.
fn printable(text: &str) -> String {
    if text.is_empty() {
        return "-".into();
    }
    text.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        Ok(Self {
            bind: var(
                "PRINTONE_BIND",
                "127.0.0.1:3000".parse().map_err(|_| "bad default")?,
            )?,
            secret: env::var("PRINTONE_WEBHOOK_SECRET")
                .ok()
                .filter(|s| !s.is_empty()),
            max_body_bytes: var(
                "PRINTONE_MAX_BODY_BYTES",
                printone_webhooks::DEFAULT_MAX_BODY_BYTES,
            )?,
            body_timeout: Duration::from_millis(var("PRINTONE_BODY_TIMEOUT_MS", 10_000)?),
            queue_capacity: var("PRINTONE_QUEUE_CAPACITY", 1024)?,
            handler_delay: Duration::from_millis(var("PRINTONE_DEMO_HANDLER_DELAY_MS", 0)?),
        })
    }
}

/// Reads and parses an environment variable, or returns `default` when it is unset.
fn var<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name}={value:?} is not valid")),
        Err(env::VarError::NotPresent) => Ok(default),
        Err(env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

/// A random secret for local development: 64 hex characters.
fn development_secret() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    let seed = format!("{:x}{:?}", hasher.finish(), RandomState::new());
    let Ok(key) = Secret::new(seed) else {
        return format!("{:x}", hasher.finish());
    };
    printone_webhooks::sign_raw(&key, b"development secret")
        .as_bytes()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

fn print_development_help(secret_text: &str, secret: &Secret, local: SocketAddr) {
    let host = if local.ip().is_unspecified() {
        format!("127.0.0.1:{}", local.port())
    } else {
        local.to_string()
    };
    println!("PRINTONE_WEBHOOK_SECRET={secret_text}");
    println!("no PRINTONE_WEBHOOK_SECRET was set; this development secret was generated.");
    println!("send a signed sample event with:");
    println!(
        "curl -sS -i -X POST 'http://{host}{ROUTE}' -H 'content-type: application/json' \
         -H 'x-printone-event: order_status_update' -H 'x-webhook-hmac-sha256: {}' --data-binary '{SAMPLE}'",
        sign(secret, SAMPLE.as_bytes())
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
