//! A Print.one webhook receiver on axum: verify, answer 200 at once, handle in the background.
//!
//! Run it with `cargo run --example axum`. Settings come from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PRINTONE_BIND` | `127.0.0.1:3000` | address to listen on; the route is `POST /webhooks/printone` |
//! | `PRINTONE_WEBHOOK_SECRET` | generated | the secret; when unset a development secret is generated and printed with a ready `curl` command |
//! | `PRINTONE_MAX_BODY_BYTES` | `1048576` | body limit (413 above it) |
//! | `PRINTONE_BODY_TIMEOUT_MS` | `10000` | deadline for the body to arrive (408 after it) |
//! | `PRINTONE_QUEUE_CAPACITY` | `1024` | deliveries waiting for the handler (503 when full) |
//! | `PRINTONE_DEMO_HANDLER_DELAY_MS` | `0` | how long the demo handler works on each delivery |
//!
//! Every delivery handled in the background prints one line on stdout:
//! `handled event=<event> id=<data.id>` (`id=-` when there is none, `event=- id=-` when the body
//! does not parse). Logs go to stderr. On SIGTERM or Ctrl-C the server stops accepting, every
//! accepted delivery is finished, and the process exits 0.

mod support;

use std::{process::ExitCode, time::Duration};

use axum::{routing::post, Router};
use printone_webhooks::{Delivery, Secret, Verifier, VerifyLayer, Worker};
use support::{Settings, ROUTE};

#[tokio::main]
async fn main() -> ExitCode {
    support::init_tracing();
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env()?;
    let secret = Secret::new(&settings.secret_text)?;

    let (queue, worker) = Worker::new(settings.queue_capacity)?;
    let worker = worker.spawn();
    let delay = settings.handler_delay;
    let layer = VerifyLayer::new(Verifier::new(secret.clone()))
        .with_max_body_bytes(settings.max_body_bytes)
        .with_body_timeout(settings.body_timeout)
        .in_background(queue);
    let app = Router::new().route(
        ROUTE,
        post(move |delivery: Delivery| handle(delivery, delay)).layer(layer),
    );

    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local}{ROUTE}");
    if settings.generated {
        support::print_development_help(&settings.secret_text, &secret, local);
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(support::shutdown_signal())
        .await?;
    tracing::info!("stopped accepting; finishing accepted deliveries");
    let report = worker.shutdown().await?;
    tracing::info!(
        handled = report.handled,
        failed = report.failed,
        dead_lettered = report.dead_lettered,
        "all accepted deliveries finished"
    );
    Ok(())
}

/// The demo handler: runs after the sender already got its 200.
async fn handle(delivery: Delivery, delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    support::print_handled(&delivery);
}
