//! [`healthz`] and [`readyz`]: liveness and readiness as actix-web handlers.

use actix_web::{http::header::ContentType, web, HttpResponse};

use crate::worker::health::Health;

/// Liveness: 200 `ok`. Mount it on an admin listener, e.g.
/// `App::new().app_data(web::Data::new(health)).route("/healthz", web::get().to(healthz))`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::plaintext())
        .body("ok\n")
}

/// Readiness: 200 `ready`, or 503 `draining` / `store unavailable: …`. Reads the [`Health`]
/// from `app_data` (`web::Data<Health>`).
pub async fn readyz(health: web::Data<Health>) -> HttpResponse {
    let readiness = health.readiness().await;
    let mut response = if readiness.is_ready() {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .insert_header(ContentType::plaintext())
        .body(readiness.text() + "\n")
}
