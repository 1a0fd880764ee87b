//! actix-web extractors: the verified [`Delivery`] and the typed [`WebhookEvent`].

use std::{
    future::poll_fn,
    ops::{Deref, DerefMut},
    pin::Pin,
};

use actix_web::{dev::Payload, http::header as actix_header, FromRequest, HttpRequest};
use bytes::Bytes;
use futures_core::{future::LocalBoxFuture, Stream};
use http::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use crate::{
    actix::config::WebhookConfig,
    actix::error::WebhookError,
    core::delivery::Delivery,
    core::error::{ErrorKind, VerifyError},
    core::signature::{
        EVENT_HEADER, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER, WEBHOOK_EVENT_HEADER,
    },
    core::verify::Verified,
    event::Event,
    intake::body::{read_failed, timed_out, Accumulator},
    intake::checks::{begin, declared_length},
};

/// Reads, bounds and verifies the body with the [`WebhookConfig`] in `app_data`.
///
/// The body is hashed chunk by chunk as it streams in and refused with 413 as soon as it
/// crosses the limit, with or without `Content-Length`. Every failure answers with a
/// [`WebhookError`] (through the configured error handler, if any).
impl FromRequest for Delivery {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move { receive(&request, payload).await })
    }
}

/// Extracts the typed event of a verified delivery: `T` defaults to the crate's [`Event`]
/// enum; any [`DeserializeOwned`] type works.
///
/// The body is verified exactly as for the [`Delivery`] extractor, then parsed. An authentic
/// body that does not parse is answered with 422 ([`WebhookError::Unparseable`]). Print.one
/// retries what is not acknowledged, so handlers that must acknowledge every authentic
/// delivery take the [`Delivery`] and parse it themselves ([`Delivery::parse`]).
///
/// ```
/// use actix_web::{web, App, HttpResponse};
/// use printone_webhooks::{
///     actix::{WebhookConfig, WebhookEvent},
///     Event, Secret, Verifier,
/// };
///
/// async fn receive(WebhookEvent(event): WebhookEvent) -> HttpResponse {
///     if let Event::OrderStatusUpdate(order) = event {
///         if let Some(status) = &order.status {
///             println!("order {} is now {status}", order.id);
///         }
///     }
///     HttpResponse::Ok().finish()
/// }
///
/// let verifier = Verifier::new(Secret::new("my-webhook-secret")?);
/// let app = App::new()
///     .app_data(WebhookConfig::new(verifier))
///     .route("/webhooks/printone", web::post().to(receive));
/// # Ok::<(), printone_webhooks::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WebhookEvent<T = Event>(pub T);

impl<T> WebhookEvent<T> {
    /// The parsed event.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for WebhookEvent<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for WebhookEvent<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for WebhookEvent<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            let delivery = receive(&request, payload).await?;
            delivery.parse().map(WebhookEvent).map_err(|error| {
                let config = WebhookConfig::of(&request);
                WebhookConfig::refuse(config, WebhookError::Unparseable(error), &request)
            })
        })
    }
}

/// The one path from an actix request to a verified [`Delivery`].
pub(crate) async fn receive(
    request: &HttpRequest,
    payload: Payload,
) -> Result<Delivery, actix_web::Error> {
    let Some(config) = WebhookConfig::of(request) else {
        return Err(WebhookConfig::refuse(
            None,
            WebhookError::NotConfigured,
            request,
        ));
    };
    verify(config, request, payload)
        .await
        .map_err(|error| WebhookConfig::refuse(Some(config), error.into(), request))
}

async fn verify(
    config: &WebhookConfig,
    request: &HttpRequest,
    mut payload: Payload,
) -> Result<Delivery, VerifyError> {
    let headers = core_headers(request.headers())?;
    let declared = request.headers().get(actix_header::CONTENT_LENGTH);
    let declared = declared_length(declared.map(actix_header::HeaderValue::as_bytes));
    let accumulator = begin(&config.verifier, config.max_body_bytes, declared, &headers)?;
    let collected = tokio::time::timeout(config.body_timeout, collect(&mut payload, accumulator));
    let (body, verified) = collected.await.map_err(|_| timed_out())??;
    Ok(Delivery::new(body, verified, &headers))
}

/// Feeds every chunk to the accumulator, which bounds the body and hashes it as it arrives.
async fn collect(
    payload: &mut Payload,
    mut accumulator: Accumulator,
) -> Result<(Bytes, Verified), VerifyError> {
    while let Some(chunk) = poll_fn(|cx| Pin::new(&mut *payload).poll_next(cx)).await {
        accumulator.push(chunk.map_err(read_failed)?)?;
    }
    accumulator.finish()
}

/// Copies the signature and event headers into the `http` 1 map the core reads.
fn core_headers(headers: &actix_header::HeaderMap) -> Result<HeaderMap, VerifyError> {
    let mut core = HeaderMap::new();
    for name in [SIGNATURE_HEADER, LEGACY_SIGNATURE_HEADER] {
        for value in headers.get_all(name.as_str()) {
            let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
                VerifyError::new(
                    ErrorKind::MalformedSignature,
                    "signature header is not a valid header value",
                )
            })?;
            core.append(name.clone(), value);
        }
    }
    for name in [EVENT_HEADER, WEBHOOK_EVENT_HEADER] {
        let values = headers.get_all(name.as_str());
        for value in values.filter_map(|value| HeaderValue::from_bytes(value.as_bytes()).ok()) {
            core.append(name.clone(), value);
        }
    }
    Ok(core)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName as ActixName, HeaderValue as ActixValue};

    fn actix_headers(pairs: &[(&'static str, &'static str)]) -> actix_header::HeaderMap {
        let mut map = actix_header::HeaderMap::new();
        for (name, value) in pairs {
            map.append(ActixName::from_static(name), ActixValue::from_static(value));
        }
        map
    }

    #[test]
    fn keeps_every_signature_value_so_conflicts_are_still_seen() {
        let map = actix_headers(&[
            ("x-webhook-hmac-sha256", "a"),
            ("x-webhook-hmac-sha256", "b"),
            ("x-printone-hmac-sha256", "c"),
            ("x-printone-event", "order_status_update"),
            ("cookie", "not copied"),
        ]);
        let core = core_headers(&map).unwrap();
        assert_eq!(core.get_all(SIGNATURE_HEADER).iter().count(), 2);
        assert_eq!(core.get_all(LEGACY_SIGNATURE_HEADER).iter().count(), 1);
        assert_eq!(core[EVENT_HEADER], "order_status_update");
        assert!(core.get("cookie").is_none());
    }
}
