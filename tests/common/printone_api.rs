//! A stand-in for the part of Print.one's API the reconciler reads, served on loopback: the
//! paths, the pagination and the shapes of the official SDK (`print-one-js` 1.4.0:
//! `IWebhook`, `IWebhookLog`, `IWebhookRequest`, `IPaginatedResponse`), from fixtures a test
//! writes, with faults a test injects (a 429 with `Retry-After`, a 500, an answer too slow).
#![allow(dead_code)] // each test crate uses a different subset

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

/// The API key the stand-in accepts.
pub(crate) const API_KEY: &str = "test_live_api_key_9Qx";

/// The webhook secret `POST webhooks/secret` answers.
pub(crate) const WEBHOOK_SECRET: &str = "whsec-standin-3f9d1c";

/// A fault the next request meets instead of its answer.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    TooMany(u64),
    /// `500 Internal Server Error`.
    ServerError,
    /// The answer comes after this long.
    Slow(Duration),
}

/// What the stand-in serves, and what it was asked.
#[derive(Debug, Default)]
pub(crate) struct Fixtures {
    /// `IWebhook`s, in the account's order.
    pub(crate) webhooks: Vec<Value>,
    /// `IWebhookLog`s of each webhook, in any order (served newest first).
    pub(crate) logs: HashMap<String, Vec<Value>>,
    /// The most items one page holds, whatever `limit` asks (the API caps it too).
    pub(crate) max_page: usize,
    /// Faults met by the next requests, one each.
    pub(crate) faults: VecDeque<Fault>,
    /// Every request: method, path and query.
    pub(crate) requests: Vec<String>,
}

/// The running stand-in.
pub(crate) struct StandIn {
    pub(crate) address: SocketAddr,
    pub(crate) fixtures: Arc<Mutex<Fixtures>>,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// Serves `fixtures` on a free loopback port.
    pub(crate) async fn start(fixtures: Fixtures) -> Self {
        let fixtures = Arc::new(Mutex::new(fixtures));
        let app = Router::new()
            .route("/v2/webhooks", get(webhooks))
            .route("/v2/webhooks/{id}/logs", get(logs))
            .route("/v2/webhooks/secret", post(secret))
            .with_state(Arc::clone(&fixtures));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            fixtures,
            task,
        }
    }

    /// The base URL to give the reconciler (`--api-url`).
    pub(crate) fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    pub(crate) fn fixtures(&self) -> std::sync::MutexGuard<'_, Fixtures> {
        lock(&self.fixtures)
    }

    /// Makes the next requests meet `faults`.
    pub(crate) fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.fixtures().faults.extend(faults);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = State<Arc<Mutex<Fixtures>>>;

/// The fixtures, also after a test thread panicked holding them.
fn lock(fixtures: &Mutex<Fixtures>) -> std::sync::MutexGuard<'_, Fixtures> {
    fixtures.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn webhooks(
    State(fixtures): Shared,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (items, max_page) = {
        let mut fixtures = lock(&fixtures);
        fixtures
            .requests
            .push(format!("GET /v2/webhooks {query:?}"));
        (fixtures.webhooks.clone(), fixtures.max_page)
    };
    if let Some(refused) = gate(&fixtures, &headers).await {
        return refused;
    }
    Json(paginate(items, &query, max_page, "/v2/webhooks")).into_response()
}

async fn logs(
    State(fixtures): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (items, max_page) = {
        let mut fixtures = lock(&fixtures);
        fixtures
            .requests
            .push(format!("GET /v2/webhooks/{id}/logs {query:?}"));
        (fixtures.logs.get(&id).cloned(), fixtures.max_page)
    };
    if let Some(refused) = gate(&fixtures, &headers).await {
        return refused;
    }
    let Some(mut items) = items else {
        return error(StatusCode::NOT_FOUND, "Webhook not found");
    };
    if query.get("sortBy").map(String::as_str) == Some("createdAt:DESC") {
        items.sort_by(|a, b| b["createdAt"].as_str().cmp(&a["createdAt"].as_str()));
    }
    let path = format!("/v2/webhooks/{id}/logs");
    Json(paginate(items, &query, max_page, &path)).into_response()
}

async fn secret(State(fixtures): Shared, headers: HeaderMap) -> Response {
    lock(&fixtures)
        .requests
        .push("POST /v2/webhooks/secret".into());
    if let Some(refused) = gate(&fixtures, &headers).await {
        return refused;
    }
    Json(json!({ "secret": WEBHOOK_SECRET })).into_response()
}

/// The key check and the next fault, as the real API would answer them.
async fn gate(fixtures: &Mutex<Fixtures>, headers: &HeaderMap) -> Option<Response> {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return Some(error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    let fault = lock(fixtures).faults.pop_front();
    match fault? {
        Fault::TooMany(seconds) => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", seconds.to_string())],
                Json(json!({ "statusCode": 429, "message": ["ThrottlerException: Too Many Requests"] })),
            )
                .into_response(),
        ),
        Fault::ServerError => Some(error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")),
        Fault::Slow(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({ "statusCode": status.as_u16(), "message": [message] });
    (status, Json(body)).into_response()
}

/// One page of `items`, as `IPaginatedResponse` (with a field the SDK does not know).
fn paginate(
    items: Vec<Value>,
    query: &HashMap<String, String>,
    max_page: usize,
    path: &str,
) -> Value {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, max_page.max(1));
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let pages = total.div_ceil(limit).max(1);
    let data: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    let link = |n: usize| format!("https://api.print.one{path}?page={n}&limit={limit}");
    json!({
        "data": data,
        "previousUrl": (page > 1).then(|| link(page - 1)),
        "currentUrl": link(page),
        "nextUrl": (page < pages).then(|| link(page + 1)),
        "page": page,
        "pages": pages,
        "pageSize": limit,
        "total": total,
        "meta": { "filterOptions": {} },
        "links": { "self": link(page) }
    })
}

/// An `IWebhook`.
pub(crate) fn webhook(id: &str, events: &[&str]) -> Value {
    json!({
        "id": id,
        "name": format!("Receiver for {}", events.join(", ")),
        "events": events,
        "active": true,
        "headers": {},
        "secretHeaders": {},
        "url": "https://receiver.example/webhooks/printone",
        "successRate": 0.75,
        "createdAt": "2024-05-01T08:00:00.000Z"
    })
}

/// The `data` of an `order_status_update` (`IOrder`, the fields a receiver reads).
pub(crate) fn order(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "companyId": "cmp_standin",
        "templateId": "tmpl_standin",
        "finish": "GLOSSY",
        "format": "POSTCARD_A6",
        "status": status,
        "friendlyStatus": "Processed",
        "sendDate": "2024-06-03T13:10:02.114Z",
        "recipient": { "name": "John Doe", "address": "123 Main St", "city": "Springfield", "postalCode": "12345", "country": "NL" },
        "createdAt": "2024-06-03T13:10:02.114Z",
        "updatedAt": "2024-06-03T13:14:46.501Z"
    })
}

/// The `data` of a `batch_status_update` (`IBatch`, the fields a receiver reads).
pub(crate) fn batch(id: &str) -> Value {
    json!({
        "id": id,
        "companyId": "cmp_standin",
        "name": "Spring mailing",
        "finish": "GLOSSY",
        "templateId": "tmpl_standin",
        "status": "batch_user_ready",
        "createdAt": "2024-06-01T08:00:00.000Z",
        "updatedAt": "2024-06-01T08:05:00.000Z",
        "sendDate": null,
        "orders": { "processing": 0, "success": 10, "failed": 0, "cancelled": 0 }
    })
}

/// The envelope a delivery carries, exactly as the receiver's body (`created_at`).
pub(crate) fn envelope(event: &str, data: &Value, created_at: &str) -> Value {
    json!({ "data": data, "event": event, "created_at": created_at })
}

/// How the log spells the envelope's creation time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Spelling {
    /// `createdAt`, as the SDK's `IWebhookRequest` types it.
    Camel,
    /// `created_at`, as deliveries carry it.
    Snake,
}

/// An `IWebhookLog` of one attempt to send `envelope` (rewritten as the log keeps it: keys in
/// another order, the creation time spelled `spelling`).
pub(crate) fn log_entry(
    id: &str,
    success: bool,
    envelope: &Value,
    spelling: Spelling,
    attempted_at: &str,
) -> Value {
    let created = envelope["created_at"].clone();
    let mut request = serde_json::Map::new();
    request.insert("event".into(), envelope["event"].clone());
    match spelling {
        Spelling::Camel => request.insert("createdAt".into(), created),
        Spelling::Snake => request.insert("created_at".into(), created),
    };
    request.insert("data".into(), envelope["data"].clone());
    let (status, body) = if success {
        (200, "")
    } else {
        (503, "the backlog is full; retry later")
    };
    json!({
        "id": id,
        "status": if success { "success" } else { "failed" },
        "event": envelope["event"],
        "request": Value::Object(request),
        "response": { "status": status, "body": body },
        "createdAt": attempted_at,
        "durationMs": 41
    })
}
