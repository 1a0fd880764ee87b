//! Signed requests and sample payloads for testing your own webhook handlers.
//!
//! Enabled by the `test-util` feature; add it to your `[dev-dependencies]` only:
//!
//! ```toml
//! [dev-dependencies]
//! printone-webhooks = { version = "0.1", features = ["test-util"] }
//! ```
//!
//! A request Print.one would send, signed with your test secret, is one line:
//!
//! ```
//! use axum::body::Body;
//! use printone_webhooks::{event::ORDER_STATUS_UPDATE, test_util, Secret};
//!
//! let secret = Secret::new("test-secret")?;
//! let request = test_util::signed_sample::<Body>(&secret, ORDER_STATUS_UPDATE);
//! assert_eq!(request.headers()["x-printone-event"], ORDER_STATUS_UPDATE);
//! # Ok::<(), printone_webhooks::ConfigError>(())
//! ```
//!
//! The body type is any `B: From<Bytes>`: `axum::body::Body`, `http_body_util::Full<Bytes>`,
//! `Bytes` or `Vec<u8>`. [`SignedRequest`] adds the other knobs: the older header name, extra
//! headers, another path, a body tampered with after signing, and (with the `actix-web`
//! feature) an actix `TestRequest`.
//!
//! The samples ([`sample`]) are realistic deliveries, one per known trigger, byte for byte the
//! bodies of the `*_valid` vectors in `tests/vectors/printone.json`, so they parse as the
//! matching [`Event`](crate::Event) variant.

use bytes::Bytes;
use http::{
    header::{self, IntoHeaderName},
    HeaderMap, HeaderName, HeaderValue, Method, Request, Uri,
};

use crate::{
    core::secret::Secret,
    core::sign::sign,
    core::signature::{EVENT_HEADER, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER},
    event::{
        BATCH_STATUS_UPDATE, COUPON_CODE_USED, ORDER_STATUS_UPDATE, TEMPLATE_PREVIEW_RENDERED,
    },
};

/// Every trigger the crate knows, in the order of the [`Event`](crate::Event) variants.
pub const TRIGGERS: [&str; 4] = [
    ORDER_STATUS_UPDATE,
    TEMPLATE_PREVIEW_RENDERED,
    BATCH_STATUS_UPDATE,
    COUPON_CODE_USED,
];

/// The path the requests are sent to unless [`SignedRequest::with_uri`] says otherwise.
pub const DEFAULT_PATH: &str = "/webhooks/printone";

/// The `user-agent` Print.one sends its webhooks with.
pub const USER_AGENT: &str = "Print.one Webhook Service";

const ORDER_SAMPLE: &str = r#"{"data":{"id":"ord_4kR9vT2mXq7LbN3cW8pZ","companyId":"cmp_8Jx2Qw5Er7Ty1Ui3","templateId":"tmpl_3Fh6Jk9Lm2Nb5Vc8","finish":"GLOSSY","format":"POSTCARD_A6","mergeVariables":{"firstName":"Jane"},"recipient":{"name":"Jane Doe","address":"Keizersgracht 123","postalCode":"1015 CJ","city":"Amsterdam","country":"NL"},"sender":{"name":"Acme B.V.","address":"Herengracht 420","postalCode":"1017 BZ","city":"Amsterdam","country":"NL"},"definitiveCountryId":"NL","deliverySpeed":"NORMAL","isBillable":true,"status":"order_processed","friendlyStatus":"Processed","sendDate":"2024-06-03T13:00:00.000Z","createdAt":"2024-06-03T12:58:31.214Z","updatedAt":"2024-06-03T13:14:46.480Z","anonymizedAt":null,"errors":[],"batchId":null},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}"#;

const TEMPLATE_PREVIEW_SAMPLE: &str = r#"{"data":{"id":"prev_6Tg2Hy8Uj4Ik0Ol5","templateId":"tmpl_3Fh6Jk9Lm2Nb5Vc8","imageUrl":"https://cdn.example.com/previews/prev_6Tg2Hy8Uj4Ik0Ol5/front.png","errors":[]},"event":"template_preview_rendered","created_at":"2024-06-03T09:41:07.093Z"}"#;

const BATCH_SAMPLE: &str = r#"{"data":{"id":"batch_9Qa1Ws3Ed5Rf7Tg2","companyId":"cmp_8Jx2Qw5Er7Ty1Ui3","name":"June reactivation mailing","finish":"MATTE","templateId":"tmpl_3Fh6Jk9Lm2Nb5Vc8","sender":{"name":"Acme B.V.","address":"Herengracht 420","postalCode":"1017 BZ","city":"Amsterdam","country":"NL"},"billingId":null,"isBillable":true,"estimatedPrice":48750,"status":"batch_scheduled","sendDate":"2024-06-05T08:00:00.000Z","orders":{"processing":0,"success":750,"failed":0,"cancelled":0},"createdAt":"2024-06-03T10:02:11.870Z","updatedAt":"2024-06-03T16:20:05.334Z"},"event":"batch_status_update","created_at":"2024-06-03T16:20:05.402Z"}"#;

const COUPON_CODE_SAMPLE: &str = r#"{"data":{"id":"cpc_2Zx4Cv6Bn8Mq1Wp3","couponId":"cpn_7Lk5Jh3Gf1Ds9Ap8","code":"WELCOME-7F3K","used":true,"orderId":"ord_4kR9vT2mXq7LbN3cW8pZ"},"event":"coupon_code_used","created_at":"2024-06-04T07:45:19.658Z"}"#;

/// The sample body of a known trigger, `None` for any other name.
///
/// ```
/// use printone_webhooks::{event::COUPON_CODE_USED, test_util, Event};
///
/// let body = test_util::known_sample(COUPON_CODE_USED).unwrap();
/// let event: Event = serde_json::from_str(body)?;
/// assert!(matches!(event, Event::CouponCodeUsed(_)));
/// assert!(test_util::known_sample("order_teleported").is_none());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[must_use]
pub fn known_sample(trigger: &str) -> Option<&'static str> {
    match trigger {
        ORDER_STATUS_UPDATE => Some(ORDER_SAMPLE),
        TEMPLATE_PREVIEW_RENDERED => Some(TEMPLATE_PREVIEW_SAMPLE),
        BATCH_STATUS_UPDATE => Some(BATCH_SAMPLE),
        COUPON_CODE_USED => Some(COUPON_CODE_SAMPLE),
        _ => None,
    }
}

/// A sample delivery body for `trigger`, compact JSON as Print.one sends it.
///
/// A known trigger ([`TRIGGERS`]) gets a realistic payload that parses as its typed
/// [`Event`](crate::Event) variant. Any other name gets a minimal envelope
/// (`{"data":{"id":"sample_1"},"event":…,"created_at":…}`) that parses as
/// [`Event::Unknown`](crate::Event::Unknown): handy for checking that a receiver accepts
/// triggers it does not know yet.
///
/// ```
/// use printone_webhooks::{test_util, Event};
///
/// let event: Event = serde_json::from_slice(&test_util::sample("order_teleported"))?;
/// assert_eq!(event.name(), "order_teleported");
/// assert!(matches!(event, Event::Unknown { .. }));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[must_use]
pub fn sample(trigger: &str) -> Bytes {
    known_sample(trigger).map_or_else(
        || unknown_sample(trigger),
        |body| Bytes::from_static(body.as_bytes()),
    )
}

fn unknown_sample(trigger: &str) -> Bytes {
    let envelope = serde_json::json!({
        "data": { "id": "sample_1" },
        "event": trigger,
        "created_at": "2024-06-06T10:12:03.551Z",
    });
    Bytes::from(envelope.to_string())
}

/// A `POST` of `body`, signed with `secret` under `x-webhook-hmac-sha256`, as an
/// `http::Request<B>` for any body type built from [`Bytes`].
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use printone_webhooks::{test_util, Secret, Verifier};
///
/// let secret = Secret::new("test-secret")?;
/// let request = test_util::signed_request::<Full<Bytes>>(&secret, r#"{"event":"ping"}"#);
/// assert_eq!(request.method(), "POST");
/// let body = br#"{"event":"ping"}"#;
/// assert!(Verifier::new(secret).verify(request.headers(), body).is_ok());
/// # Ok::<(), printone_webhooks::ConfigError>(())
/// ```
#[must_use]
pub fn signed_request<B: From<Bytes>>(secret: &Secret, body: impl Into<Bytes>) -> Request<B> {
    SignedRequest::new(secret, body).build()
}

/// A `POST` of the [`sample`] of `trigger`, signed with `secret`, with the `x-printone-event`
/// header Print.one adds.
#[must_use]
pub fn signed_sample<B: From<Bytes>>(secret: &Secret, trigger: &str) -> Request<B> {
    SignedRequest::sample(secret, trigger).build()
}

/// A builder for a correctly signed delivery.
///
/// The signature is computed when the builder is created, with the crate's own [`sign`], over
/// the exact body. Every request built from it carries `content-type: application/json`,
/// Print.one's `user-agent`, the signature header and any extra headers, and goes to
/// [`DEFAULT_PATH`] unless told otherwise.
///
/// ```
/// use axum::body::Body;
/// use http::{HeaderName, HeaderValue};
/// use printone_webhooks::{test_util::SignedRequest, Secret, LEGACY_SIGNATURE_HEADER};
///
/// let secret = Secret::new("test-secret")?;
/// let request = SignedRequest::sample(&secret, "batch_status_update")
///     .with_legacy_header()
///     .with_header(HeaderName::from_static("x-request-id"), HeaderValue::from_static("42"))
///     .with_uri("/hooks/print".parse()?)
///     .build::<Body>();
/// assert!(request.headers().contains_key(LEGACY_SIGNATURE_HEADER));
/// assert_eq!(request.uri(), "/hooks/print");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SignedRequest {
    body: Bytes,
    signature: HeaderValue,
    signature_header: HeaderName,
    headers: HeaderMap,
    uri: Uri,
}

impl SignedRequest {
    /// Signs `body` with `secret`.
    pub fn new(secret: &Secret, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let signature = HeaderValue::from_str(&sign(secret, &body))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        Self {
            body,
            signature,
            signature_header: SIGNATURE_HEADER,
            headers,
            uri: Uri::from_static(DEFAULT_PATH),
        }
    }

    /// Signs the [`sample`] of `trigger` and names the trigger in `x-printone-event`.
    pub fn sample(secret: &Secret, trigger: &str) -> Self {
        let request = Self::new(secret, sample(trigger));
        match HeaderValue::from_str(trigger) {
            Ok(value) => request.with_header(EVENT_HEADER, value),
            Err(_) => request,
        }
    }

    /// Sends the signature under the older name, `x-printone-hmac-sha256`.
    pub fn with_legacy_header(mut self) -> Self {
        self.signature_header = LEGACY_SIGNATURE_HEADER;
        self
    }

    /// Adds a header, replacing any previous value of that name (the signature header is
    /// always set last, from the signed body).
    pub fn with_header(mut self, name: impl IntoHeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sends the request to `uri` instead of [`DEFAULT_PATH`].
    pub fn with_uri(mut self, uri: Uri) -> Self {
        self.uri = uri;
        self
    }

    /// Changes the body after signing (its first byte is flipped, or a byte is added to an
    /// empty body), so the signature no longer matches: for testing that forgeries get 401.
    pub fn tampered(mut self) -> Self {
        let mut body = self.body.to_vec();
        match body.first_mut() {
            Some(first) => *first ^= 0x01,
            None => body.push(b' '),
        }
        self.body = Bytes::from(body);
        self
    }

    /// The signature header's value: standard, padded base64.
    #[must_use]
    pub fn signature(&self) -> &str {
        self.signature.to_str().unwrap_or_default()
    }

    /// The body the request carries.
    #[must_use]
    pub const fn body(&self) -> &Bytes {
        &self.body
    }

    /// Every header the request carries, the signature included.
    #[must_use]
    pub fn headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        headers.insert(self.signature_header.clone(), self.signature.clone());
        headers
    }

    /// Builds the `POST` request, with any body type built from [`Bytes`] (`axum::body::Body`,
    /// `http_body_util::Full<Bytes>`, `Bytes`, `Vec<u8>`, …).
    #[must_use]
    pub fn build<B: From<Bytes>>(&self) -> Request<B> {
        let mut request = Request::new(B::from(self.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers();
        request
    }
}

#[cfg(all(feature = "test-util", feature = "actix-web"))]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
impl SignedRequest {
    /// The same delivery as an actix-web `TestRequest`, ready for `to_request()`,
    /// `to_http_request()` or `send_request(&app)`.
    ///
    /// ```
    /// use printone_webhooks::{test_util::SignedRequest, Secret};
    ///
    /// let secret = Secret::new("test-secret")?;
    /// let request = SignedRequest::sample(&secret, "order_status_update")
    ///     .to_actix()
    ///     .to_http_request();
    /// assert_eq!(request.method(), actix_web::http::Method::POST);
    /// assert!(request.headers().contains_key("x-webhook-hmac-sha256"));
    /// # Ok::<(), printone_webhooks::ConfigError>(())
    /// ```
    pub fn to_actix(&self) -> actix_web::test::TestRequest {
        let uri = self.uri.to_string();
        let mut request = actix_web::test::TestRequest::post().uri(&uri);
        for (name, value) in &self.headers() {
            request = request.append_header((name.as_str(), value.as_bytes()));
        }
        request.set_payload(self.body.clone())
    }
}

/// A signed actix-web `TestRequest` of the [`sample`] of `trigger`: the one-line version of
/// [`SignedRequest::to_actix`].
///
/// ```
/// use printone_webhooks::{test_util, Secret};
///
/// let secret = Secret::new("test-secret")?;
/// let request = test_util::signed_actix_sample(&secret, "coupon_code_used").to_http_request();
/// assert_eq!(request.headers().get("x-printone-event").unwrap(), "coupon_code_used");
/// # Ok::<(), printone_webhooks::ConfigError>(())
/// ```
#[cfg(all(feature = "test-util", feature = "actix-web"))]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
#[must_use]
pub fn signed_actix_sample(secret: &Secret, trigger: &str) -> actix_web::test::TestRequest {
    SignedRequest::sample(secret, trigger).to_actix()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event::Event, test_vectors, Verifier};

    fn secret() -> Secret {
        Secret::new("test-secret").unwrap()
    }

    #[test]
    fn each_known_sample_parses_as_its_typed_variant() {
        for trigger in TRIGGERS {
            let event: Event = serde_json::from_slice(&sample(trigger)).unwrap();
            assert_eq!(event.name(), trigger);
            let typed = match event {
                // Statuses the crate names and timestamps that parse, as real deliveries carry.
                Event::OrderStatusUpdate(order) => {
                    order
                        .status
                        .as_ref()
                        .is_some_and(|status| !status.is_unknown())
                        && order.created_at_time().is_some()
                        && order.updated_at_time().is_some()
                }
                Event::TemplatePreviewRendered(preview) => preview.image_url.is_some(),
                Event::BatchStatusUpdate(batch) => {
                    batch.orders.is_some()
                        && batch
                            .status
                            .as_ref()
                            .is_some_and(|status| !status.is_unknown())
                        && batch.send_date_time().is_some()
                }
                Event::CouponCodeUsed(code) => code.code.is_some(),
                other => panic!("{trigger} parsed as {other:?}"),
            };
            assert!(typed, "{trigger} sample lacks its main field");
        }
    }

    #[test]
    fn samples_are_the_bodies_of_the_shared_vectors() {
        for trigger in TRIGGERS {
            let name = format!("{trigger}_valid");
            let vector = test_vectors::named(&name);
            assert_eq!(known_sample(trigger), Some(vector.body.as_str()), "{name}");
        }
    }

    #[test]
    fn an_unknown_trigger_gets_an_envelope_that_parses_as_unknown() {
        let event: Event = serde_json::from_slice(&sample("a \"quoted\" trigger")).unwrap();
        assert_eq!(event.name(), "a \"quoted\" trigger");
        assert_eq!(event.data_id(), Some("sample_1"));
    }

    #[test]
    fn built_requests_verify_with_the_same_secret() {
        let signed = SignedRequest::sample(&secret(), ORDER_STATUS_UPDATE);
        let request: Request<Bytes> = signed.build();
        let verifier = Verifier::new(secret());
        assert!(verifier.verify(request.headers(), request.body()).is_ok());
        assert_eq!(request.headers()[EVENT_HEADER], ORDER_STATUS_UPDATE);
        assert_eq!(request.uri(), DEFAULT_PATH);
    }

    #[test]
    fn legacy_header_replaces_the_current_name() {
        let headers = SignedRequest::new(&secret(), "{}")
            .with_legacy_header()
            .headers();
        assert!(headers.contains_key(LEGACY_SIGNATURE_HEADER));
        assert!(!headers.contains_key(SIGNATURE_HEADER));
    }

    #[test]
    fn a_tampered_body_no_longer_verifies() {
        for body in ["{}", ""] {
            let signed = SignedRequest::new(&secret(), body).tampered();
            let error = Verifier::new(secret())
                .verify(&signed.headers(), signed.body())
                .unwrap_err();
            assert_eq!(error.kind(), crate::ErrorKind::SignatureMismatch);
        }
    }

    #[test]
    fn an_extra_header_cannot_replace_the_signature() {
        let signed = SignedRequest::new(&secret(), "{}")
            .with_header(SIGNATURE_HEADER, HeaderValue::from_static("forged"));
        assert_eq!(signed.headers()[SIGNATURE_HEADER], signed.signature());
    }
}
