//! The servers `benches/compare.sh` loads: a bare axum route, the same route behind `VerifyLayer`,
//! the actix-web equivalent, a hand-written axum handler that verifies with the backend directly
//! (the floor any receiver pays), and a verification-speed probe to set beside `openssl speed`.
//!
//! `benches/compare.sh` builds and runs it; by hand (the secret comes from `BENCH_SECRET`):
//!
//! ```sh
//! cargo build --release --example bench_server --features actix-web   # add ring for the fast backend
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server bare-axum 127.0.0.1:3001
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server layered-axum 127.0.0.1:3002
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server actix 127.0.0.1:3003
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server handwritten 127.0.0.1:3004
//! BENCH_SECRET=s3cr3t target/release/examples/bench_server hmac-speed 1024 3   # prints MB/s
//! ```
//!
//! Every server answers `POST /webhooks/printone` with 200 and an empty body; the bare route
//! reads the body and checks nothing, the others verify it first (401 when it is not signed).
//! The hand-written handler does only what a minimal receiver must (one header, base64 decoding,
//! the HMAC with the pre-keyed state, a constant-time comparison) with ring when the `ring`
//! feature is on and with `hmac` + `sha2` otherwise, so it is the same backend as the layer.

use std::{
    error::Error,
    hint::black_box,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{body::Bytes, http::StatusCode, routing::post, Router};
use printone_webhooks::{
    actix::WebhookConfig, sign_raw, tower::VerifyLayer, Delivery, Secret, Verifier,
};

const ROUTE: &str = "/webhooks/printone";

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let raw_secret = std::env::var("BENCH_SECRET").unwrap_or_default();
    let secret = Secret::new(&raw_secret)?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bare-axum", addr] => serve_axum(addr.parse()?, None),
        ["layered-axum", addr] => serve_axum(addr.parse()?, Some(Verifier::new(secret))),
        ["actix", addr] => serve_actix(addr.parse()?, Verifier::new(secret)),
        ["handwritten", addr] => serve_handwritten(addr.parse()?, raw_secret.as_bytes()),
        ["hmac-speed", size, seconds] => {
            hmac_speed(&secret, size.parse()?, seconds.parse()?);
            Ok(())
        }
        _ => Err(
            "usage: bench_server bare-axum|layered-axum|actix|handwritten ADDR | hmac-speed SIZE SECONDS"
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

fn serve_handwritten(addr: SocketAddr, secret: &[u8]) -> Result<()> {
    let key = handwritten::Key::new(secret);
    let app = Router::new().route(ROUTE, post(handwritten::accept).with_state(Arc::new(key)));
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// A receiver written by hand against the backend, without this crate.
mod handwritten {
    use std::sync::Arc;

    use axum::{
        body::Bytes,
        extract::State,
        http::{HeaderMap, StatusCode},
    };
    use base64::{engine::general_purpose::STANDARD, Engine as _};

    /// The pre-keyed HMAC-SHA256 state of the backend the binary was built with.
    pub(super) struct Key(Backend);

    #[cfg(feature = "ring")]
    type Backend = ring::hmac::Key;
    #[cfg(not(feature = "ring"))]
    type Backend = hmac::Hmac<sha2::Sha256>;

    impl Key {
        pub(super) fn new(secret: &[u8]) -> Self {
            #[cfg(feature = "ring")]
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            #[cfg(not(feature = "ring"))]
            let key = <Backend as hmac::KeyInit>::new_from_slice(secret)
                .expect("HMAC takes keys of any length");
            Self(key)
        }

        /// Whether `mac` is the HMAC of `body`, compared in constant time.
        fn verifies(&self, body: &[u8], mac: &[u8]) -> bool {
            #[cfg(feature = "ring")]
            return ring::hmac::verify(&self.0, body, mac).is_ok();
            #[cfg(not(feature = "ring"))]
            {
                use hmac::Mac as _;
                let mut state = self.0.clone();
                state.update(body);
                state.verify_slice(mac).is_ok()
            }
        }
    }

    pub(super) async fn accept(
        State(key): State<Arc<Key>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let mac = headers
            .get("x-webhook-hmac-sha256")
            .and_then(|value| STANDARD.decode(value.as_bytes()).ok());
        match mac {
            Some(mac) if key.verifies(&body, &mac) => StatusCode::OK,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
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
