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

mod support;

use std::{process::ExitCode, time::Duration};

use actix_web::{App, HttpServer};
use printone_webhooks::{
    worker_queues, Delivery, Secret, Verifier, WebhookConfig, WebhookResource,
};
use support::{Settings, ROUTE};

#[actix_web::main]
async fn main() -> ExitCode {
    support::init_tracing();
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env()?;
    let secret = Secret::new(&settings.secret_text)?;

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
    if settings.generated {
        support::print_development_help(&settings.secret_text, &secret, local);
    }

    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        support::shutdown_signal().await;
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
    support::print_handled(&delivery);
}
