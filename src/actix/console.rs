//! [`console_scope`]: the delivery console as an actix-web scope.

use actix_web::{http::StatusCode as ActixStatus, web, HttpRequest, HttpResponse, Scope};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::console::{Console, ConsoleRequest, MAX_FORM_BYTES};

/// The delivery [`Console`] as an actix-web scope at the console's base path (`/console` by
/// default): register it on an admin server's `App`, never beside the webhook resource.
///
/// A form body is read up to 16 KiB (413 above it); other bodies are not read.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use printone_webhooks::{actix::console_scope, console::Console, store::MemoryStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let console = Console::new(MemoryStore::new());
/// console.check_bind("127.0.0.1:9000".parse()?)?; // no token: loopback only
/// let factory = move || App::new().service(console_scope(console.clone()));
/// HttpServer::new(factory).bind("127.0.0.1:9000")?.run().await?;
/// # Ok(()) }
/// ```
pub fn console_scope(console: Console) -> Scope {
    web::scope(console.base_path())
        .app_data(web::Data::new(console))
        .default_service(web::to(respond))
}

async fn respond(
    request: HttpRequest,
    payload: web::Payload,
    console: web::Data<Console>,
) -> HttpResponse {
    let method = Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(Method::GET);
    let body = if method == Method::POST {
        match payload.to_bytes_limited(MAX_FORM_BYTES).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return answer(Console::refusal(StatusCode::BAD_REQUEST)),
            Err(_) => return answer(Console::refusal(StatusCode::PAYLOAD_TOO_LARGE)),
        }
    } else {
        Bytes::new()
    };
    let request = ConsoleRequest {
        method,
        path: console.relative(request.path()).to_owned(),
        query: Some(request.query_string().to_owned()).filter(|query| !query.is_empty()),
        headers: headers(&request),
        body,
    };
    answer(console.respond(request).await)
}

/// The request's headers as the console reads them.
fn headers(request: &HttpRequest) -> HeaderMap {
    request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
            Some((name, HeaderValue::from_bytes(value.as_bytes()).ok()?))
        })
        .collect()
}

/// The console's answer as an actix-web response.
fn answer(response: http::Response<Bytes>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status =
        ActixStatus::from_u16(parts.status.as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
    let mut answer = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        answer.append_header((name.as_str(), value.as_bytes()));
    }
    answer.body(body)
}
