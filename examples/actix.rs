//! A Print.one webhook receiver on actix-web: verify, store, answer 200, handle in the
//! background.
//!
//! Run it with `cargo run --example actix --features actix-web`. Settings come from the
//! environment, exactly as for `examples/axum.rs` (see the table there): `PRINTONE_BIND`,
//! `PRINTONE_WEBHOOK_SECRET`, `PRINTONE_STORE`, `PRINTONE_MAX_BODY_BYTES`,
//! `PRINTONE_BODY_TIMEOUT_MS`, `PRINTONE_QUEUE_CAPACITY`, `PRINTONE_CONCURRENCY`,
//! `PRINTONE_LEASE_MS`, `PRINTONE_MAX_ATTEMPTS`, `PRINTONE_RETRY_BACKOFF_MS`,
//! `PRINTONE_DEMO_HANDLER_DELAY_MS`, `PRINTONE_DEMO_FAIL_EVENT`, `PRINTONE_API_KEY`,
//! `PRINTONE_API_URL`, `PRINTONE_RECONCILE_EVERY` (the reconciler, with `--features
//! reconcile`), `PRINTONE_ADMIN_BIND` (the admin listener: `GET /metrics`, `GET /healthz`,
//! `GET /readyz` and, built with `--features actix-web,console`, the delivery console at
//! `/console/`) and `PRINTONE_ADMIN_TOKEN` (the token the console asks for; required when the
//! admin listener is not on a loopback address, or the receiver does not start: exit code 2).
//!
//! Every delivery handled in the background prints one line on stdout:
//! `handled event=<event> id=<data.id>` (`id=-` when there is none, `event=- id=-` when the body
//! does not parse). Logs go to stderr; the first names the store. On SIGTERM or Ctrl-C the
//! server stops accepting, what runs and what is due is finished within the shutdown deadline,
//! what is left stays in a durable store for the next start, and the process exits 0. After a
//! `kill -9`, a restart on the same store handles every delivery that got its 200 and was not
//! handled yet.
//!
//! The actix workers store deliveries; one worker task on the main runtime handles them.

mod support;

use std::process::ExitCode;

use actix_web::{web, App, HttpResponse, HttpServer};
use printone_webhooks::{
    actix::{healthz, readyz, WebhookConfig, WebhookResource},
    worker::Health,
    Secret, Verifier,
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
    tracing::info!(store = %settings.store, "printone-webhooks receiver starting");
    let store = settings.open_store().await?;

    let health = Health::new(store.clone());
    let admin = match settings.admin()? {
        Some(addr) => Some(admin_server(&settings, addr, &store, health.clone())?),
        None => None,
    };
    let worker = settings.worker(store.clone()).spawn();
    let reconciler = settings.spawn_reconciler(store.clone())?;
    let config = WebhookConfig::new(Verifier::new(secret.clone()))
        .with_max_body_bytes(settings.max_body_bytes)
        .with_body_timeout(settings.body_timeout);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(config.clone())
            .service(WebhookResource::new(ROUTE, store.clone()))
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
    let draining = health.clone();
    actix_web::rt::spawn(async move {
        draining.shutdown_signal().await;
        tracing::info!("stopping: no new connections, finishing requests in flight");
        handle.stop(true).await;
    });
    server.await?;
    tracing::info!("stopped accepting; finishing running and due deliveries");
    if let Some(reconciler) = reconciler {
        reconciler.abort();
    }
    worker.shutdown().await?;
    if let Some(admin) = admin {
        admin.stop(true).await;
    }
    Ok(())
}

/// Starts the admin listener on `addr`: `/metrics`, `/healthz`, `/readyz` and, with the
/// `console` feature, the delivery console at `/console/`. The console is checked before the
/// listener binds: without `PRINTONE_ADMIN_TOKEN` a non-loopback address is refused.
fn admin_server(
    settings: &Settings,
    addr: std::net::SocketAddr,
    store: &printone_webhooks::store::SharedStore,
    health: Health,
) -> Result<actix_web::dev::ServerHandle, Box<dyn std::error::Error>> {
    #[cfg(feature = "console")]
    let console = settings.console(store.clone(), addr)?;
    #[cfg(not(feature = "console"))]
    let _ = (settings, store);
    let prometheus = support::prometheus()?;
    #[cfg(feature = "console")]
    let scope_console = console.clone();
    let server = HttpServer::new(move || {
        let prometheus = prometheus.clone();
        let app = App::new();
        #[cfg(feature = "console")]
        let app = app.service(printone_webhooks::actix::console_scope(
            scope_console.clone(),
        ));
        app.app_data(web::Data::new(health.clone()))
            .route(
                "/metrics",
                web::get().to(move || {
                    let text = prometheus.render();
                    async move {
                        HttpResponse::Ok()
                            .content_type("text/plain; version=0.0.4")
                            .body(text)
                    }
                }),
            )
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .bind(addr)?;
    let local = server.addrs()[0];
    tracing::info!("admin listener on http://{local}");
    #[cfg(feature = "console")]
    support::log_console(local, &console);
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(handle)
}
