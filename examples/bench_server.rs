//! The servers `benches/compare.sh` loads: a bare axum route, the same route behind `VerifyLayer`,
//! the actix-web equivalent, and a verification-speed probe to set beside `openssl speed`.
//!
//! `benches/compare.sh` builds and runs it; by hand (the secret comes from `BENCH_SECRET`):
//!
//! ```sh
//! cargo build --release --example bench_server --features actix-web   # add ring for the fast backend
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server bare-axum 127.0.0.1:3001
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server layered-axum 127.0.0.1:3002
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server actix 127.0.0.1:3003
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server hmac-speed 1024 3   # prints MB/s
//! ```
//!
//! Every server answers `POST /webhooks/printone` with 200 and an empty body; the bare route
//! reads the body and checks nothing, the others verify it first (401 when it is not signed).

use std::{
    error::Error,
    hint::black_box,
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{body::Bytes, http::StatusCode, routing::post, Router};
use printone_webhooks::{sign_raw, Delivery, Secret, Verifier, VerifyLayer, WebhookConfig};

const ROUTE: &str = "/webhooks/printone";

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secret = Secret::new(std::env::var("BENCH_SECRET").unwrap_or_default())?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bare-axum", addr] => serve_axum(addr.parse()?, None),
        ["layered-axum", addr] => serve_axum(addr.parse()?, Some(Verifier::new(secret))),
        ["actix", addr] => serve_actix(addr.parse()?, Verifier::new(secret)),
        ["hmac-speed", size, seconds] => {
            hmac_speed(&secret, size.parse()?, seconds.parse()?);
            Ok(())
        }
        _ => Err(
            "usage: bench_server bare-axum|layered-axum|actix ADDR | hmac-speed SIZE SECONDS"
                .into(),
        ),
    }
}

/// The handler of both axum servers: it takes the whole body, as a real receiver would.
async fn accept(body: Bytes) -> StatusCode {
    black_box(body);
    StatusCode::OK
}

fn serve_axum(addr: SocketAddr, verifier: Option<Verifier>) -> Result<()> {
    let route = match verifier {
        Some(verifier) => post(accept).layer(VerifyLayer::new(verifier)),
        None => post(accept),
    };
    let app = Router::new().route(ROUTE, route);
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

fn serve_actix(addr: SocketAddr, verifier: Verifier) -> Result<()> {
    use actix_web::{web, App, HttpResponse, HttpServer};

    async fn accept(delivery: Delivery) -> HttpResponse {
        black_box(delivery);
        HttpResponse::Ok().finish()
    }

    let config = WebhookConfig::new(verifier);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(config.clone())
                .route(ROUTE, web::post().to(accept))
        })
        .bind(addr)?
        .run()
        .await
    })?;
    Ok(())
}

/// Verifies a `size`-byte body for `seconds` and prints the rate as `<MB/s> MB/s`
/// (10^6 bytes, like `openssl speed`).
fn hmac_speed(secret: &Secret, size: usize, seconds: f64) {
    let body = vec![b'x'; size];
    let signature = sign_raw(secret, &body);
    let verifier = Verifier::new(secret.clone());
    let deadline = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut bytes = 0_u64;
    while start.elapsed() < deadline {
        for _ in 0..64 {
            let outcome = verifier.verify_signature(black_box(signature), black_box(&body));
            black_box(outcome.is_ok());
        }
        bytes += 64 * size as u64;
    }
    #[allow(clippy::cast_precision_loss, reason = "a rate, far below 2^52")]
    let rate = bytes as f64 / start.elapsed().as_secs_f64() / 1e6;
    println!("{rate:.1} MB/s");
}
