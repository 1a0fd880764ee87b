//! axum extractors: the verified [`Delivery`] and the typed [`Webhook`] event.

use std::{error::Error as StdError, fmt};

use axum_core::{
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{header, request::Parts, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use crate::{core::delivery::Delivery, event::Event};

/// Extracts the typed event of a verified delivery: `T` defaults to the crate's [`Event`]
/// enum; any [`DeserializeOwned`] type works.
///
/// The body was buffered and verified by [`VerifyLayer`](crate::tower::VerifyLayer) (or, in a
/// [`Route`](crate::tower::Route) run by a worker, read back from the store); this extractor
/// only parses it. An authentic body that does not parse is answered with 422 by default:
/// handlers that must acknowledge every authentic delivery take
/// `Result<Webhook<T>, WebhookRejection>` or the [`Delivery`] and parse it themselves.
#[derive(Debug, Clone)]
pub struct Webhook<T = Event>(pub T);

impl<S: Send + Sync> FromRequestParts<S> for Delivery {
    type Rejection = WebhookRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Delivery>()
            .cloned()
            .ok_or(WebhookRejection::NotVerified)
    }
}

impl<T, S> FromRequestParts<S> for Webhook<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let delivery = parts
            .extensions
            .get::<Delivery>()
            .ok_or(WebhookRejection::NotVerified)?;
        delivery
            .parse()
            .map(Webhook)
            .map_err(WebhookRejection::Unparseable)
    }
}

/// Why [`Delivery`] or [`Webhook`] could not be extracted.
#[non_exhaustive]
#[derive(Debug)]
pub enum WebhookRejection {
    /// No verified delivery on the request: the route is not behind
    /// [`VerifyLayer`](crate::tower::VerifyLayer) (500, a setup mistake).
    NotVerified,
    /// The body is authentic but does not deserialize as the requested type (422).
    Unparseable(serde_json::Error),
}

impl WebhookRejection {
    /// The status of the response.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::NotVerified => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unparseable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The text of the response body.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotVerified => {
                f.write_str("webhook verification is not configured for this route")
            }
            Self::Unparseable(error) => write!(f, "authentic webhook body did not parse: {error}"),
        }
    }
}

impl StdError for WebhookRejection {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::NotVerified => None,
            Self::Unparseable(error) => Some(error),
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        match &self {
            Self::NotVerified => tracing::error!(reason = %self, "webhook extractor rejected"),
            Self::Unparseable(_) => tracing::warn!(reason = %self, "webhook extractor rejected"),
        }
        let mut response = (self.status(), self.body_text()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Request};

    fn parts_with(body: &'static [u8]) -> Parts {
        let delivery = crate::core::delivery::verified(body, &HeaderMap::new());
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.extensions.insert(delivery);
        parts
    }

    #[tokio::test]
    async fn extracts_the_typed_event() {
        let mut parts = parts_with(br#"{"data":{"id":"ord_9"},"event":"order_status_update"}"#);
        let Webhook(event) = Webhook::<Event>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(event.data_id(), Some("ord_9"));
    }

    #[tokio::test]
    async fn an_unparseable_authentic_body_is_422() {
        let mut parts = parts_with(b"[1,2");
        let rejection = Webhook::<Event>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(rejection.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(rejection.body_text().contains("did not parse"));
    }

    #[tokio::test]
    async fn without_the_layer_the_extractors_answer_500() {
        let (mut parts, ()) = Request::new(()).into_parts();
        let rejection = Delivery::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(
            rejection.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
