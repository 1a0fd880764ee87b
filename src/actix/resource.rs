//! [`WebhookResource`]: acknowledge, then process, as a ready-made actix-web resource.

use actix_web::{
    dev::{AppService, HttpServiceFactory},
    http::header,
    web, HttpRequest, HttpResponse,
};

use crate::{
    actix::{config::WebhookConfig, error::WebhookError},
    core::delivery::Delivery,
    intake::{
        acknowledge::Acknowledger,
        checks::{method_not_allowed, retry_after_secs},
        config::DEFAULT_RETRY_AFTER,
    },
    store::SharedStore,
    worker::metrics::Metrics,
};

/// A resource that verifies each delivery, stores it, and answers 200 once the store holds it.
///
/// `POST` requests are verified with the [`WebhookConfig`] (the resource's own, set with
/// [`WebhookResource::with_config`], or the one in the app's `app_data`), then stored: 200
/// once the store holds the delivery (or held it before: a re-delivery is not stored again),
/// 503 with `Retry-After` when the backlog is full or the store failed, never 200 for a
/// delivery the store does not hold. Run a [`Worker`](crate::worker::Worker) on the same store
/// to handle them. Any other method gets 405 with `Allow: POST`. Refusals are
/// [`WebhookError`]s, through the configured error handler.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use printone_webhooks::{
///     actix::{WebhookConfig, WebhookResource}, store::MemoryStore, Secret, Verifier,
/// };
///
/// # async fn run() -> std::io::Result<()> {
/// let store = MemoryStore::new();
/// let config = WebhookConfig::new(Verifier::new(Secret::new("my-secret").unwrap()));
/// HttpServer::new(move || {
///     App::new()
///         .app_data(config.clone())
///         .service(WebhookResource::new("/webhooks/printone", store.clone()))
/// })
/// .bind("127.0.0.1:3000")?
/// .run()
/// .await
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct WebhookResource {
    path: String,
    store: SharedStore,
    config: Option<WebhookConfig>,
}

impl WebhookResource {
    /// A resource at `path` storing deliveries in `store`.
    pub fn new(path: impl Into<String>, store: impl Into<SharedStore>) -> Self {
        Self {
            path: path.into(),
            store: store.into(),
            config: None,
        }
    }

    /// Verifies with `config` instead of the one in the app's `app_data`.
    pub fn with_config(mut self, config: WebhookConfig) -> Self {
        self.config = Some(config);
        self
    }
}

impl HttpServiceFactory for WebhookResource {
    fn register(self, config: &mut AppService) {
        let store = self.store;
        let acknowledge = move |request: HttpRequest, delivery: Delivery| {
            acknowledge(store.clone(), request, delivery)
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

async fn acknowledge(store: SharedStore, request: HttpRequest, delivery: Delivery) -> HttpResponse {
    let config = WebhookConfig::of(&request);
    let retry_after = config.map_or(DEFAULT_RETRY_AFTER, |config| config.retry_after);
    let acknowledger = Acknowledger {
        store,
        metrics: config.map_or_else(Metrics::new, |config| config.metrics.clone()),
        retry_after,
    };
    let outcome = acknowledger.acknowledge(&delivery).await;
    if outcome.is_ok() {
        return HttpResponse::Ok().finish();
    }
    let response = outcome.response(acknowledger.retry_after);
    let text = String::from_utf8_lossy(response.body()).into_owned();
    HttpResponse::ServiceUnavailable()
        .insert_header((
            header::RETRY_AFTER,
            retry_after_secs(acknowledger.retry_after),
        ))
        .insert_header(header::ContentType::plaintext())
        .body(text)
}

async fn refuse_method(request: HttpRequest) -> Result<HttpResponse, actix_web::Error> {
    let error = WebhookError::Refused(method_not_allowed());
    Err(WebhookConfig::refuse(
        WebhookConfig::of(&request),
        error,
        &request,
    ))
}
