//! [`WebhookResource`]: acknowledge, then process, as a ready-made actix-web resource.

use actix_web::{
    dev::{AppService, HttpServiceFactory},
    http::header,
    web, HttpRequest, HttpResponse,
};
use tokio::sync::mpsc;

use crate::{
    actix::config::WebhookConfig,
    actix::error::WebhookError,
    core::delivery::Delivery,
    core::error::ConfigError,
    intake::acknowledge::Acknowledger,
    intake::checks::{method_not_allowed, retry_after_secs},
    intake::config::DEFAULT_RETRY_AFTER,
    store::handoff::Handoff,
};

/// A resource that verifies each delivery, hands it to a [`Handoff`] and answers 200 at once.
///
/// `POST` requests are verified with the [`WebhookConfig`] (the resource's own, set with
/// [`WebhookResource::with_config`], or the one in the app's `app_data`), then the
/// [`Delivery`] is handed over: 200 when it was taken, 503 with `Retry-After` when the
/// hand-off is full or closed, never 200 without a hand-off. A re-delivery of a body handed
/// over before is answered 200 without a second hand-off (see
/// [`WebhookConfig::with_dedupe_store`]). Hand it a [`Dispatcher`](crate::Dispatcher) to get
/// typed handlers with retries and dead letters from a [`Worker`](crate::Worker). Any other method gets 405 with
/// `Allow: POST`. Refusals are [`WebhookError`]s, through the configured error handler.
///
/// # Where the consumer runs
///
/// actix-web runs each worker on its own single-threaded runtime. A consumer on another
/// thread (one task on the main runtime, say) must be woken across threads for every
/// delivery that finds it idle, which costs about as much as verifying the delivery.
/// [`worker_queues`](crate::worker_queues) instead gives each worker its own queue and a
/// consumer on the same thread, so a hand-off only schedules a local task; see its docs for
/// the trade-off. [`WebhookResource::channel`] is the simple setup with one consumer.
///
/// ```
/// use actix_web::App;
/// use printone_webhooks::{Secret, Verifier, WebhookConfig, WebhookResource};
///
/// let verifier = Verifier::new(Secret::new("my-webhook-secret")?);
/// let (resource, mut deliveries) = WebhookResource::channel("/webhooks/printone", 1024)?;
/// let app = App::new().service(resource.with_config(WebhookConfig::new(verifier)));
/// // elsewhere: while let Some(delivery) = deliveries.recv().await { … }
/// # Ok::<(), printone_webhooks::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct WebhookResource<H> {
    path: String,
    handoff: H,
    config: Option<WebhookConfig>,
}

impl<H: Handoff<Delivery>> WebhookResource<H> {
    /// A resource at `path` handing every verified delivery to `handoff`.
    pub fn new(path: impl Into<String>, handoff: H) -> Self {
        Self {
            path: path.into(),
            handoff,
            config: None,
        }
    }

    /// Uses `config` for this resource instead of the app's.
    pub fn with_config(mut self, config: WebhookConfig) -> Self {
        self.config = Some(config);
        self
    }
}

impl WebhookResource<mpsc::Sender<Delivery>> {
    /// A resource at `path` and the receiver of its deliveries, through a bounded tokio
    /// channel of `capacity` deliveries.
    ///
    /// After the server has stopped (and so dropped the resource), the receiver yields the
    /// remaining deliveries, then `None`: drain it to finish every accepted delivery.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] when `capacity` is 0.
    pub fn channel(
        path: impl Into<String>,
        capacity: usize,
    ) -> Result<(Self, mpsc::Receiver<Delivery>), ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        let (sender, receiver) = mpsc::channel(capacity);
        Ok((Self::new(path, sender), receiver))
    }
}

impl<H: Handoff<Delivery>> HttpServiceFactory for WebhookResource<H> {
    fn register(self, config: &mut AppService) {
        let handoff = self.handoff;
        let acknowledge = move |request: HttpRequest, delivery: Delivery| {
            acknowledge(handoff.clone(), request, delivery)
        };
        let mut resource = web::resource(self.path)
            .route(web::post().to(acknowledge))
            .default_service(web::to(refuse_method));
        if let Some(webhook_config) = self.config {
            resource = resource.app_data(webhook_config);
        }
        resource.register(config);
    }
}

/// Hands the delivery over (once: a re-delivery is acknowledged without a second hand-off):
/// 200 when taken now or before, 503 with `Retry-After` when not.
async fn acknowledge<H: Handoff<Delivery>>(
    handoff: H,
    request: HttpRequest,
    delivery: Delivery,
) -> HttpResponse {
    let config = WebhookConfig::of(&request);
    let fallback = Acknowledger::default();
    let acknowledger = config.map_or(&fallback, |config| &config.acknowledger);
    let outcome = acknowledger
        .hand_over(&handoff, delivery.clone(), &delivery)
        .await;
    if outcome.is_ok() {
        return HttpResponse::Ok().finish();
    }
    let retry_after = config.map_or(DEFAULT_RETRY_AFTER, |config| config.retry_after);
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, retry_after_secs(retry_after)))
        .insert_header(header::ContentType::plaintext())
        .body("queue unavailable, retry later")
}

async fn refuse_method(request: HttpRequest) -> Result<HttpResponse, actix_web::Error> {
    let error = WebhookError::Refused(method_not_allowed());
    Err(WebhookConfig::refuse(
        WebhookConfig::of(&request),
        error,
        &request,
    ))
}
