//! A Print.one webhook receiver on axum: verify, store, answer 200, handle in the background.
//!
//! Run it with `cargo run --example axum`. Settings come from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PRINTONE_BIND` | `127.0.0.1:3000` | address to listen on; the route is `POST /webhooks/printone` |
//! | `PRINTONE_WEBHOOK_SECRET` | generated | the secret; when unset a development secret is generated and printed with a ready `curl` command |
//! | `PRINTONE_STORE` | `sqlite:printone-webhooks.db` | where deliveries wait: `sqlite:PATH` (a file, created when missing; survives crashes and restarts), `postgres://…` (shared by replicas; build with `--features postgres`) or `memory` (lost when the process ends) |
//! | `PRINTONE_MAX_BODY_BYTES` | `1048576` | body limit (413 above it) |
//! | `PRINTONE_BODY_TIMEOUT_MS` | `10000` | deadline for the body to arrive (408 after it) |
//! | `PRINTONE_QUEUE_CAPACITY` | `1024` | deliveries waiting in the store (503 with `Retry-After` beyond it) |
//! | `PRINTONE_CONCURRENCY` | `4` | handlers running at once |
//! | `PRINTONE_LEASE_MS` | `30000` | lease on a delivery being handled; a delivery whose process died is taken again after it |
//! | `PRINTONE_MAX_ATTEMPTS` | `5` | attempts before a delivery is dead-lettered |
//! | `PRINTONE_RETRY_BACKOFF_MS` | `1000` | wait before the first retry, doubling after each failure |
//! | `PRINTONE_DEMO_HANDLER_DELAY_MS` | `0` | how long the demo handler works on each delivery |
//! | `PRINTONE_DEMO_FAIL_EVENT` | unset | the demo handler fails every delivery of this event (to show retries and dead letters) |
//! | `PRINTONE_API_KEY` | unset (off) | the account's API key: reconcile the store with Print.one's webhook logs at start and then every `PRINTONE_RECONCILE_EVERY`, recovering what never arrived (build with `--features reconcile`) |
//! | `PRINTONE_API_URL` | `https://api.print.one/` | the API's base URL |
//! | `PRINTONE_RECONCILE_EVERY` | `10m` | time between reconciliations (`90s`, `10m`, `1h`) |
//! | `PRINTONE_ADMIN_BIND` | unset (off) | an address of its own for the admin listener: `GET /metrics` (Prometheus text), `GET /healthz`, `GET /readyz` (503 while draining or when the store is down) |
//! | `PRINTONE_ADMIN_TOKEN` | unset | the token the console asks for (bearer header or login form); required when `PRINTONE_ADMIN_BIND` is not a loopback address, or the receiver does not start (exit code 2) |
//!
//! Every delivery handled in the background prints one line on stdout:
//! `handled event=<event> id=<data.id>` (`id=-` when there is none, `event=- id=-` when the body
//! does not parse). Logs go to stderr; the first names the store. On SIGTERM or Ctrl-C the
//! server stops accepting, what runs and what is due is finished within the shutdown deadline,
//! what is left stays in a durable store for the next start, and the process exits 0. After a
//! `kill -9`, a restart on the same store handles every delivery that got its 200 and was not
//! handled yet.

mod support;

use std::process::ExitCode;

use axum::{routing::get, Router};
use printone_webhooks::{
    tower::{HealthService, VerifyLayer},
    worker::Health,
    Secret, Verifier,
};
use support::{Settings, ROUTE};

#[tokio::main]
async fn main() -> ExitCode {
    support::init_tracing();
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env()?;
    let secret = Secret::new(&settings.secret_text)?;
    tracing::info!(store = %settings.store, "printone-webhooks receiver starting");
    let store = settings.open_store().await?;

    let health = Health::new(store.clone());
    let admin = match settings.admin()? {
        Some(addr) => Some(serve_admin(&settings, addr, &store, health.clone()).await?),
        None => None,
    };
    let worker = settings.worker(store.clone()).spawn();
    let reconciler = settings.spawn_reconciler(store.clone())?;
    let receiver = VerifyLayer::new(Verifier::new(secret.clone()))
        .with_max_body_bytes(settings.max_body_bytes)
        .with_body_timeout(settings.body_timeout)
        .store_in(store);
    let app = Router::new().route_service(ROUTE, receiver);

    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local}{ROUTE}");
    if settings.generated {
        support::print_development_help(&settings.secret_text, &secret, local);
    }
    let draining = health.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { draining.shutdown_signal().await })
        .await?;
    tracing::info!("stopped accepting; finishing running and due deliveries");
    if let Some(reconciler) = reconciler {
        reconciler.abort();
    }
    worker.shutdown().await?;
    if let Some(admin) = admin {
        admin.abort();
    }
    Ok(())
}

/// Serves `/metrics`, `/healthz`, `/readyz` and, with the `console` feature, the delivery
/// console at `/console/` on `addr` until the receiver stops. The console is checked before the
/// listener binds: without `PRINTONE_ADMIN_TOKEN` a non-loopback address is refused.
async fn serve_admin(
    settings: &Settings,
    addr: std::net::SocketAddr,
    store: &printone_webhooks::store::SharedStore,
    health: Health,
) -> Result<tokio::task::JoinHandle<()>, Box<dyn std::error::Error>> {
    #[cfg(feature = "console")]
    let console = settings.console(store.clone(), addr)?;
    #[cfg(not(feature = "console"))]
    let _ = (settings, store);
    let prometheus = support::prometheus()?;
    let app = Router::new()
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        )
        .route_service("/healthz", HealthService::new(health.clone()))
        .route_service("/readyz", HealthService::new(health));
    #[cfg(feature = "console")]
    let app = app.nest_service(
        console.base_path(),
        printone_webhooks::tower::ConsoleService::new(console.clone()),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!("admin listener on http://{local}");
    #[cfg(feature = "console")]
    support::log_console(local, &console);
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the admin listener stopped");
        }
    }))
}
