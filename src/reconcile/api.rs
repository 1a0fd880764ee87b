//! A client of the few paths of Print.one's API the reconciler needs, with its retries.

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use reqwest::{header, Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::reconcile::{
    error::ReconcileError,
    model::{Page, Webhook, WebhookLog},
};

/// Print.one's API, as its SDK addresses it (the paths are under `v2/`).
pub const DEFAULT_API_URL: &str = "https://api.print.one/";

/// The most entries one page of logs asks for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// An API key of a Print.one account.
///
/// # Security
///
/// `Debug` never shows it, and it is sent marked sensitive (left out of HTTP logs).
#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// The key as the dashboard shows it (surrounding whitespace is dropped).
    ///
    /// # Errors
    ///
    /// [`ReconcileError::Config`] when it is empty or cannot be sent in a header.
    pub fn new(key: &str) -> Result<Self, ReconcileError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(ReconcileError::Config("the API key is empty".into()));
        }
        if header::HeaderValue::from_str(key).is_err() {
            return Err(ReconcileError::Config(
                "the API key holds characters a header cannot carry".into(),
            ));
        }
        Ok(Self(key.into()))
    }

    fn header(&self) -> header::HeaderValue {
        let mut value = header::HeaderValue::from_str(&self.0)
            .unwrap_or_else(|_| header::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How the client waits for and retries the API.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiOptions {
    /// The longest one request may take, connection and body included (30 s).
    pub timeout: Duration,
    /// Tries of one request before the API counts as unreachable (4).
    pub attempts: u32,
    /// The wait after the first failure (a timeout, no connection, a 5xx), doubling after
    /// each (500 ms).
    pub backoff: Duration,
    /// The longest a `429` may make the client wait before trying again (60 s); a longer
    /// `Retry-After` ends the request with [`ReconcileError::RateLimited`].
    pub max_wait: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl ApiOptions {
    /// Sets [`ApiOptions::timeout`].
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`ApiOptions::attempts`] (at least 1) and [`ApiOptions::backoff`].
    #[must_use]
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// Sets [`ApiOptions::max_wait`].
    #[must_use]
    pub const fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

/// A client of Print.one's API: the account's webhooks, their logs and the webhook secret.
///
/// Every request sends `x-api-key`, waits at most [`ApiOptions::timeout`], and is tried again
/// after a timeout, a connection error, a 5xx (with a doubling backoff) or a `429` (after its
/// `Retry-After`). Cloning is cheap.
#[derive(Clone)]
pub struct PrintOneApi {
    http: reqwest::Client,
    base: Url,
    key: ApiKey,
    options: ApiOptions,
}

impl fmt::Debug for PrintOneApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrintOneApi")
            .field("base", &self.base.as_str())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PrintOneApi {
    /// A client of the API at `base_url` ([`DEFAULT_API_URL`] for Print.one's own) with the
    /// default [`ApiOptions`].
    ///
    /// # Errors
    ///
    /// [`ReconcileError::Config`] for a URL that is not `http(s)://`, or a TLS setup that
    /// fails.
    pub fn new(base_url: &str, key: ApiKey) -> Result<Self, ReconcileError> {
        Self::with_options(base_url, key, ApiOptions::default())
    }

    /// As [`PrintOneApi::new`], with `options`.
    ///
    /// # Errors
    ///
    /// As for [`PrintOneApi::new`].
    pub fn with_options(
        base_url: &str,
        key: ApiKey,
        options: ApiOptions,
    ) -> Result<Self, ReconcileError> {
        let base = versioned(base_url)?;
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(concat!("printone-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ReconcileError::Config(format!("cannot build the client: {error}")))?;
        Ok(Self {
            http,
            base,
            key,
            options,
        })
    }

    /// The URL the paths are resolved against (ending in `v2/`).
    #[must_use]
    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    /// Every webhook of the account (`GET webhooks`, all pages).
    ///
    /// # Errors
    ///
    /// [`ReconcileError::Unreachable`] or [`ReconcileError::RateLimited`] when the API did not
    /// answer after the retries, [`ReconcileError::Config`] when it refused the key (401,
    /// 403) or the request, [`ReconcileError::Malformed`] for an answer that is not a page.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, ReconcileError> {
        let mut all = Vec::new();
        for page in 1..=10_000_u64 {
            let mut url = self.url(&["webhooks"]);
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("limit", &MAX_PAGE_SIZE.to_string());
            let answer: Page<Webhook> = self.json(Method::GET, url).await?;
            let more = answer.has_next(page);
            all.extend(answer.data);
            if !more {
                break;
            }
        }
        Ok(all)
    }

    /// One page (from 1) of a webhook's log, newest first (`GET webhooks/{id}/logs`).
    ///
    /// # Errors
    ///
    /// As for [`PrintOneApi::webhooks`]; [`ReconcileError::Config`] also for a webhook id the
    /// account does not have (404).
    pub async fn logs(
        &self,
        webhook: &str,
        page: u64,
        limit: u32,
    ) -> Result<Page<WebhookLog>, ReconcileError> {
        let mut url = self.url(&["webhooks", webhook, "logs"]);
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("limit", &limit.clamp(1, MAX_PAGE_SIZE).to_string())
            .append_pair("sortBy", "createdAt:DESC");
        self.json(Method::GET, url).await
    }

    /// The account's webhook secret (`POST webhooks/secret`), for `PRINTONE_WEBHOOK_SECRET`.
    ///
    /// # Errors
    ///
    /// As for [`PrintOneApi::webhooks`].
    ///
    /// # Security
    ///
    /// The answer is the secret that proves deliveries authentic: keep it out of logs.
    pub async fn webhook_secret(&self) -> Result<String, ReconcileError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            secret: String,
        }
        let answer: Answer = self
            .json(Method::POST, self.url(&["webhooks", "secret"]))
            .await?;
        Ok(answer.secret)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
    ) -> Result<T, ReconcileError> {
        let path = url.path().to_owned();
        let body = self.send(method, url).await?;
        serde_json::from_slice(&body)
            .map_err(|error| ReconcileError::Malformed(format!("{path}: {error}")))
    }

    /// Sends one request, trying again as [`ApiOptions`] say, and returns a 2xx answer's body.
    async fn send(&self, method: Method, url: Url) -> Result<Bytes, ReconcileError> {
        let path = url.path().to_owned();
        let mut last = String::new();
        for attempt in 1..=self.options.attempts {
            let wait = match self.try_once(&method, &url).await {
                Ok(Answer::Body(body)) => return Ok(body),
                Ok(Answer::Refused(error)) => return Err(error),
                Ok(Answer::Later { wait, reason }) => {
                    last = reason;
                    match wait {
                        Some(wait) if wait > self.options.max_wait => {
                            return Err(ReconcileError::RateLimited(wait));
                        }
                        Some(wait) => wait,
                        None => self.backoff(attempt),
                    }
                }
                Err(reason) => {
                    last = reason;
                    self.backoff(attempt)
                }
            };
            if attempt < self.options.attempts {
                tracing::debug!(%path, attempt, ?wait, reason = %last, "the Print.one API will be asked again");
                tokio::time::sleep(wait).await;
            }
        }
        Err(ReconcileError::Unreachable(format!(
            "{} {path}: {last} (tried {} times)",
            method, self.options.attempts
        )))
    }

    async fn try_once(&self, method: &Method, url: &Url) -> Result<Answer, String> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header("x-api-key", self.key.header())
            .header(header::ACCEPT, "application/json");
        if *method == Method::POST {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body("{}");
        }
        let response = request.send().await.map_err(describe)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(describe)?;
        Ok(classify(status, retry_after, &body, url.path()))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.options
            .backoff
            .saturating_mul(1 << (attempt - 1).min(10))
            .min(self.options.max_wait)
    }
}

/// What one try of a request came to.
enum Answer {
    Body(Bytes),
    /// Try again: after `wait` when the API said so, else after the backoff.
    Later {
        wait: Option<Duration>,
        reason: String,
    },
    /// No retry helps.
    Refused(ReconcileError),
}

fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8], path: &str) -> Answer {
    if status.is_success() {
        return Answer::Body(Bytes::copy_from_slice(body));
    }
    let reason = format!("{}{}", status.as_u16(), message(body));
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Answer::Later {
            wait: Some(retry_after.unwrap_or(Duration::from_secs(1))),
            reason,
        };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Answer::Later { wait: None, reason };
    }
    let what = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            "the API key was refused (check PRINTONE_API_KEY)"
        }
        StatusCode::NOT_FOUND => "not found (check the webhook id and the API URL)",
        _ => "the request was refused",
    };
    Answer::Refused(ReconcileError::Config(format!("{path}: {what}: {reason}")))
}

/// The API's own error message (`{"statusCode":…,"message":[…]}`), short and on one line.
fn message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Message {
        Many(Vec<String>),
        One(String),
    }
    #[derive(serde::Deserialize)]
    struct Error {
        message: Option<Message>,
    }
    let text = match serde_json::from_slice::<Error>(body)
        .ok()
        .and_then(|e| e.message)
    {
        Some(Message::Many(lines)) => lines.join("; "),
        Some(Message::One(line)) => line,
        None => return String::new(),
    };
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    format!(" ({line})")
}

/// `Retry-After` in seconds, or as an HTTP date.
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::format_description::well_known::Rfc2822;
    let at = time::OffsetDateTime::parse(value, &format).ok()?;
    let wait = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// A transport error in a few words (never the URL's query or a header).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        let mut text = error.without_url().to_string();
        text.truncate(200);
        text
    }
}

/// `base` with `v2/` appended, as the SDK resolves its paths.
fn versioned(base: &str) -> Result<Url, ReconcileError> {
    let invalid = |why: &str| ReconcileError::Config(format!("the API URL {base:?} {why}"));
    let mut url = Url::parse(base.trim()).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("is not an http:// or https:// URL"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.join("v2/")
        .map_err(|_| invalid("cannot take the v2/ path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_are_under_v2_of_the_base_url() {
        for base in ["https://api.print.one/", "https://api.print.one"] {
            assert_eq!(
                versioned(base).unwrap().as_str(),
                "https://api.print.one/v2/"
            );
        }
        assert_eq!(
            versioned("http://127.0.0.1:9/prefix").unwrap().as_str(),
            "http://127.0.0.1:9/prefix/v2/"
        );
        assert!(versioned("ftp://x/").is_err());
        assert!(versioned("not a url").is_err());
    }

    #[test]
    fn a_webhook_id_is_one_escaped_path_segment() {
        let key = ApiKey::new("k").unwrap();
        let api = PrintOneApi::new("http://127.0.0.1:9/", key).unwrap();
        let url = api.url(&["webhooks", "a/b?c", "logs"]);
        assert_eq!(url.path(), "/v2/webhooks/a%2Fb%3Fc/logs");
    }

    #[test]
    fn an_api_key_never_shows_in_debug() {
        let key = ApiKey::new("  live_123  ").unwrap();
        assert!(!format!("{key:?}").contains("live_123"));
        let api = PrintOneApi::new(DEFAULT_API_URL, key).unwrap();
        assert!(!format!("{api:?}").contains("live_123"));
        assert!(ApiKey::new(" ").is_err());
        assert!(ApiKey::new("a\nb").is_err());
    }

    #[test]
    fn statuses_are_retried_or_refused_as_they_deserve() {
        let later = |status| matches!(classify(status, None, b"", "/p"), Answer::Later { .. });
        assert!(later(StatusCode::TOO_MANY_REQUESTS));
        assert!(later(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(later(StatusCode::BAD_GATEWAY));
        for status in [
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND,
            StatusCode::BAD_REQUEST,
        ] {
            assert!(matches!(
                classify(status, None, b"", "/p"),
                Answer::Refused(ReconcileError::Config(_))
            ));
        }
    }

    #[test]
    fn a_retry_after_is_read_in_seconds_or_as_a_date() {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a date gone by"
        );
    }

    #[test]
    fn the_apis_message_is_kept_short_and_on_one_line() {
        let body = br#"{"statusCode":401,"message":["Invalid\nkey"]}"#;
        assert_eq!(message(body), " (Invalid key)");
        assert_eq!(message(b"<html>"), "");
    }
}
