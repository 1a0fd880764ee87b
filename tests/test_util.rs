//! The test kit, used as a user would in their own handler tests: one line builds the request.

use axum::{body::Body, routing::post, Router};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use printone_webhooks::{
    event::{BATCH_STATUS_UPDATE, ORDER_STATUS_UPDATE},
    test_util::{self, SignedRequest, TRIGGERS},
    tower::{VerifyLayer, Webhook},
    Event, Secret, Verifier,
};
use tower::{service_fn, ServiceExt};

fn secret() -> Secret {
    Secret::new("pO1_webhook_test_util_secret").expect("not empty")
}

/// A user's handler: answers with the trigger and the data id it saw.
async fn handler(Webhook(event): Webhook<Event>) -> String {
    format!("{} {}", event.name(), event.data_id().unwrap_or("-"))
}

fn app() -> Router {
    Router::new().route(
        "/webhooks/printone",
        post(handler).layer(VerifyLayer::new(Verifier::new(secret()))),
    )
}

async fn text(response: Response<Body>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

#[tokio::test]
async fn every_sample_reaches_an_axum_handler_as_its_typed_event() {
    for trigger in TRIGGERS {
        let response = app()
            .oneshot(test_util::signed_sample::<Body>(&secret(), trigger))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{trigger}");
        assert!(text(response).await.starts_with(trigger), "{trigger}");
    }
}

#[tokio::test]
async fn an_unknown_trigger_sample_is_accepted_as_unknown() {
    let request = test_util::signed_sample::<Body>(&secret(), "order_delivery_confirmed");
    let response = app().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "order_delivery_confirmed sample_1");
}

#[tokio::test]
async fn any_body_can_be_signed() {
    let body = r#"{"data":{"id":"ord_custom"},"event":"order_status_update"}"#;
    let response = app()
        .oneshot(test_util::signed_request::<Body>(&secret(), body))
        .await
        .expect("infallible");
    assert_eq!(text(response).await, "order_status_update ord_custom");
}

#[tokio::test]
async fn the_legacy_header_is_accepted_too() {
    let request = SignedRequest::sample(&secret(), BATCH_STATUS_UPDATE)
        .with_legacy_header()
        .build::<Body>();
    let response = app().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn tampered_and_wrongly_signed_requests_get_401() {
    let tampered = SignedRequest::sample(&secret(), ORDER_STATUS_UPDATE)
        .tampered()
        .build::<Body>();
    let response = app().oneshot(tampered).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let other = Secret::new("someone-else").expect("not empty");
    let forged = test_util::signed_sample::<Body>(&other, ORDER_STATUS_UPDATE);
    let response = app().oneshot(forged).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn full_bytes_requests_work_with_a_plain_tower_service() {
    let service = tower::ServiceBuilder::new()
        .layer(VerifyLayer::new(Verifier::new(secret())))
        .service(service_fn(|request: Request<Full<Bytes>>| async move {
            let length = request.into_body().collect().await?.to_bytes().len();
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                length.to_string(),
            ))))
        }));
    let request: Request<Full<Bytes>> = test_util::signed_sample(&secret(), ORDER_STATUS_UPDATE);
    let response = service.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let length = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(
        length,
        test_util::sample(ORDER_STATUS_UPDATE).len().to_string()
    );
}

/// The same one-liner for actix-web handlers, through the crate's actix extractor.
#[cfg(feature = "actix-web")]
mod actix {
    use actix_web::{test, web, App, HttpResponse};
    use printone_webhooks::{
        actix::{WebhookConfig, WebhookEvent},
        event::COUPON_CODE_USED,
        test_util::{self, SignedRequest},
        Verifier,
    };

    use super::secret;

    async fn handler(WebhookEvent(event): WebhookEvent) -> HttpResponse {
        HttpResponse::Ok().body(format!(
            "{} {}",
            event.name(),
            event.data_id().unwrap_or("-")
        ))
    }

    #[actix_web::test]
    async fn a_signed_actix_sample_reaches_the_handler_and_a_tampered_one_does_not() {
        let app = test::init_service(
            App::new()
                .app_data(WebhookConfig::new(Verifier::new(secret())))
                .route(test_util::DEFAULT_PATH, web::post().to(handler)),
        )
        .await;

        let request = test_util::signed_actix_sample(&secret(), COUPON_CODE_USED).to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 200);
        let body = test::read_body(response).await;
        assert_eq!(body, "coupon_code_used cpc_2Zx4Cv6Bn8Mq1Wp3");

        let tampered = SignedRequest::sample(&secret(), COUPON_CODE_USED)
            .tampered()
            .to_actix()
            .to_request();
        let response = test::call_service(&app, tampered).await;
        assert_eq!(response.status(), 401);
    }
}
