//! What both example receivers share: the run contract (environment, route, output line,
//! signals) and the development-secret help. Not an example of its own.

use std::{
    collections::hash_map::RandomState,
    env,
    fmt::Write as _,
    hash::{BuildHasher, Hasher},
    io::Write as _,
    net::SocketAddr,
    str::FromStr,
    time::{Duration, SystemTime},
};

use printone_webhooks::{
    sign,
    store::{self, SharedStore},
    worker::{RetryPolicy, Worker},
    BoxError, Delivery, Secret,
};
use serde_json::Value;

/// The route both receivers listen on.
pub(crate) const ROUTE: &str = "/webhooks/printone";

/// The store when `PRINTONE_STORE` is unset.
const DEFAULT_STORE: &str = "sqlite:printone-webhooks.db";

/// The signed sample event of the printed `curl` command.
const SAMPLE: &str = r#"{"data":{"id":"ord_sample_1","status":"order_created","friendlyStatus":"Created"},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;

/// The settings read from the environment.
pub(crate) struct Settings {
    pub(crate) bind: SocketAddr,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) handler_delay: Duration,
    /// `PRINTONE_STORE`: `memory`, `sqlite:PATH` or `postgres://…` (with the `postgres` feature).
    pub(crate) store: String,
    pub(crate) concurrency: usize,
    pub(crate) lease: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) retry_backoff: Duration,
    /// `PRINTONE_DEMO_FAIL_EVENT`: the demo handler fails every delivery of this event.
    pub(crate) fail_event: Option<String>,
    /// `PRINTONE_ADMIN_BIND`: where `/metrics`, `/healthz` and `/readyz` are served (off when
    /// unset).
    pub(crate) admin_bind: Option<SocketAddr>,
    /// `PRINTONE_API_KEY`, `PRINTONE_API_URL`, `PRINTONE_RECONCILE_EVERY`: the reconciler, off
    /// without a key.
    pub(crate) reconcile: Option<Reconcile>,
    /// `PRINTONE_ADMIN_TOKEN`: the token the delivery console asks for (unset: none, and the
    /// console is refused on a non-loopback admin address).
    #[cfg_attr(not(feature = "console"), allow(dead_code))]
    pub(crate) admin_token: Option<String>,
    /// The secret's text; generated when `PRINTONE_WEBHOOK_SECRET` is unset.
    pub(crate) secret_text: String,
    /// Whether the secret was generated (and the development help should be printed).
    pub(crate) generated: bool,
}

impl Settings {
    /// Reads every `PRINTONE_*` variable, with the documented defaults.
    pub(crate) fn from_env() -> Result<Self, String> {
        let given = env::var("PRINTONE_WEBHOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty());
        Ok(Self {
            bind: var("PRINTONE_BIND", SocketAddr::from(([127, 0, 0, 1], 3000)))?,
            max_body_bytes: var(
                "PRINTONE_MAX_BODY_BYTES",
                printone_webhooks::DEFAULT_MAX_BODY_BYTES,
            )?,
            body_timeout: Duration::from_millis(var("PRINTONE_BODY_TIMEOUT_MS", 10_000)?),
            queue_capacity: var("PRINTONE_QUEUE_CAPACITY", 1024)?,
            handler_delay: Duration::from_millis(var("PRINTONE_DEMO_HANDLER_DELAY_MS", 0)?),
            store: var("PRINTONE_STORE", DEFAULT_STORE.to_owned())?,
            concurrency: var("PRINTONE_CONCURRENCY", 4)?,
            lease: Duration::from_millis(var("PRINTONE_LEASE_MS", 30_000)?),
            max_attempts: var("PRINTONE_MAX_ATTEMPTS", 5)?,
            retry_backoff: Duration::from_millis(var("PRINTONE_RETRY_BACKOFF_MS", 1_000)?),
            fail_event: env::var("PRINTONE_DEMO_FAIL_EVENT")
                .ok()
                .filter(|event| !event.is_empty()),
            admin_bind: admin_bind()?,
            reconcile: Reconcile::from_env()?,
            admin_token: env::var("PRINTONE_ADMIN_TOKEN")
                .ok()
                .filter(|token| !token.trim().is_empty()),
            generated: given.is_none(),
            secret_text: given.unwrap_or_else(development_secret),
        })
    }
}

/// The reconciler's settings.
#[cfg_attr(not(feature = "reconcile"), allow(dead_code))]
pub(crate) struct Reconcile {
    key: String,
    url: String,
    every: Duration,
}

impl Reconcile {
    /// `None` when `PRINTONE_API_KEY` is unset or empty.
    fn from_env() -> Result<Option<Self>, String> {
        let Some(key) = env::var("PRINTONE_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
        else {
            return Ok(None);
        };
        let url = env::var("PRINTONE_API_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| "https://api.print.one/".to_owned());
        let every = match env::var("PRINTONE_RECONCILE_EVERY") {
            Ok(text) if !text.trim().is_empty() => every(&text)?,
            _ => Duration::from_secs(600),
        };
        Ok(Some(Self { key, url, every }))
    }
}

#[cfg(feature = "reconcile")]
fn every(text: &str) -> Result<Duration, String> {
    printone_webhooks::reconcile::parse_duration(text)
        .map_err(|error| format!("PRINTONE_RECONCILE_EVERY: {error}"))
}

#[cfg(not(feature = "reconcile"))]
fn every(_: &str) -> Result<Duration, String> {
    Ok(Duration::ZERO)
}

impl Settings {
    /// Starts reconciling `store` with Print.one's webhook logs when `PRINTONE_API_KEY` is set.
    #[cfg(feature = "reconcile")]
    pub(crate) fn spawn_reconciler(
        &self,
        store: SharedStore,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
        use printone_webhooks::reconcile::{ApiKey, PrintOneApi, Reconciler};
        let Some(settings) = &self.reconcile else {
            return Ok(None);
        };
        let key =
            ApiKey::new(&settings.key).map_err(|error| format!("PRINTONE_API_KEY: {error}"))?;
        let api = PrintOneApi::new(&settings.url, key)
            .map_err(|error| format!("PRINTONE_API_URL: {error}"))?;
        tracing::info!(api = %api.base(), every = ?settings.every, "reconciling with the Print.one webhook logs");
        Ok(Some(
            Reconciler::new(api, store).spawn_every(settings.every),
        ))
    }

    /// Without the `reconcile` feature, refuses a `PRINTONE_API_KEY` it cannot use.
    #[cfg(not(feature = "reconcile"))]
    pub(crate) fn spawn_reconciler(
        &self,
        _store: SharedStore,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
        match self.reconcile {
            Some(_) => Err("PRINTONE_API_KEY is set, but this build has no reconciler: build with --features reconcile".into()),
            None => Ok(None),
        }
    }
}

/// `PRINTONE_ADMIN_BIND`, when set and not empty.
fn admin_bind() -> Result<Option<SocketAddr>, String> {
    match env::var("PRINTONE_ADMIN_BIND") {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("PRINTONE_ADMIN_BIND={value:?} is not valid")),
        Err(_) => Ok(None),
    }
}

impl Settings {
    /// The admin listener's address, refused when it is the webhook listener's.
    pub(crate) fn admin(&self) -> Result<Option<SocketAddr>, String> {
        match self.admin_bind {
            Some(admin) if admin == self.bind && admin.port() != 0 => Err(format!(
                "PRINTONE_ADMIN_BIND={admin} is the webhook listener's address: give the admin listener its own"
            )),
            other => Ok(other),
        }
    }
}

impl Settings {
    /// The delivery console over `store` for the admin listener on `admin`: asking for
    /// `PRINTONE_ADMIN_TOKEN` when it is set, and refused on a non-loopback address when it is
    /// not (the receiver does not start then).
    #[cfg(feature = "console")]
    pub(crate) fn console(
        &self,
        store: SharedStore,
        admin: SocketAddr,
    ) -> Result<printone_webhooks::console::Console, String> {
        use printone_webhooks::console::{AdminToken, Console};
        let mut console = Console::new(store);
        if let Some(token) = &self.admin_token {
            let token =
                AdminToken::new(token).map_err(|error| format!("PRINTONE_ADMIN_TOKEN: {error}"))?;
            console = console.with_token(token);
        }
        console.check_bind(admin).map_err(|error| {
            format!("PRINTONE_ADMIN_BIND={admin}: {error}; set PRINTONE_ADMIN_TOKEN")
        })?;
        Ok(console)
    }
}

/// Logs where the console of the admin listener at `local` answers, and how it is guarded.
#[cfg(feature = "console")]
pub(crate) fn log_console(local: SocketAddr, console: &printone_webhooks::console::Console) {
    let guard = if console.has_token() {
        "asks for PRINTONE_ADMIN_TOKEN"
    } else {
        "no token: loopback only"
    };
    tracing::info!(
        "delivery console on http://{local}{}/ ({guard})",
        console.base_path()
    );
}

/// Installs the Prometheus recorder the crate's `metrics` feed, and returns its handle, which
/// renders the text `GET /metrics` answers.
pub(crate) fn prometheus() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    // Buckets from half a millisecond to a minute: the time to the 200, the delay to handled,
    // a handler's run.
    const BUCKETS: [f64; 16] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0,
    ];
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .map_err(|error| format!("cannot set the metrics buckets: {error}"))?
        .install_recorder()
        .map_err(|error| format!("cannot install the metrics recorder: {error}"))
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

/// Logs to stderr (stdout carries only the contract's lines), `RUST_LOG` or `info`.
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// 0 when the receiver stopped cleanly; 2, with the reason on stderr, when it could not start.
pub(crate) fn exit_code(result: Result<(), Box<dyn std::error::Error>>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

impl Settings {
    /// Opens the store `PRINTONE_STORE` names, bounded by `PRINTONE_QUEUE_CAPACITY`.
    pub(crate) async fn open_store(&self) -> Result<SharedStore, String> {
        let options = store::OpenOptions {
            capacity: self.queue_capacity,
            ..store::OpenOptions::default()
        };
        store::open(&self.store, options)
            .await
            .map_err(|error| format!("PRINTONE_STORE={}: {error}", self.store))
    }

    /// The worker running the demo handler on `store`, as the settings say.
    pub(crate) fn worker(&self, store: SharedStore) -> Worker {
        let delay = self.handler_delay;
        let fail_event = self.fail_event.clone();
        let handler = move |delivery: Delivery| demo_handler(delivery, delay, fail_event.clone());
        let retry = RetryPolicy::new(self.max_attempts)
            .with_backoff(self.retry_backoff, self.retry_backoff.saturating_mul(64));
        Worker::new(store, handler)
            .with_concurrency(self.concurrency)
            .with_lease(self.lease)
            .with_retry(retry)
    }
}

/// The demo handler: runs after the sender already got its 200, fails every delivery of the
/// `PRINTONE_DEMO_FAIL_EVENT` event, and prints one line for each delivery it handled.
async fn demo_handler(
    delivery: Delivery,
    delay: Duration,
    fail_event: Option<String>,
) -> Result<(), BoxError> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (event, _) = summary(&delivery);
    if fail_event.as_deref() == Some(event.as_str()) {
        return Err(format!("PRINTONE_DEMO_FAIL_EVENT fails every {event} delivery").into());
    }
    print_handled(&delivery);
    Ok(())
}

/// Prints the one `handled event=<event> id=<data.id>` line of a handled delivery.
fn print_handled(delivery: &Delivery) {
    let (event, id) = summary(delivery);
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

/// Prints the generated secret and a `curl` command sending a correctly signed sample.
pub(crate) fn print_development_help(secret_text: &str, secret: &Secret, local: SocketAddr) {
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
