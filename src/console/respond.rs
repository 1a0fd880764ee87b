//! A request's way through the console: its route, who asks, the CSRF check of a form, what
//! the store is asked, and the page or redirect that answers.

use std::time::SystemTime;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::{
    console::{
        auth::{self, Access, COOKIE},
        config::{Console, Inner, PAGE_SIZE, SESSION_LIFETIME},
        form::{self, ListQuery, Params},
        response::{page, redirect},
        view::{self, Chrome, Notice},
    },
    store::{DeliveryId, StoreError},
};

/// The largest form the console reads (its forms are a few hundred bytes).
pub(crate) const MAX_FORM_BYTES: usize = 16 * 1024;

/// A request as the adapters hand it to the console.
#[derive(Debug)]
pub(crate) struct ConsoleRequest {
    pub(crate) method: Method,
    /// The path below the console's base path: empty, or starting with `/`.
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    /// The form of a `POST` (at most [`MAX_FORM_BYTES`]).
    pub(crate) body: Bytes,
}

/// Where a path leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Overview,
    List,
    Delivery(&'a str),
    Replay(&'a str),
    ReplayDead,
    Purge,
    Login,
    Logout,
    NotFound,
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Self {
        let path = path.strip_suffix('/').unwrap_or(path);
        match path {
            "" => Self::Overview,
            "/deliveries" => Self::List,
            "/replay-dead" => Self::ReplayDead,
            "/purge" => Self::Purge,
            "/login" => Self::Login,
            "/logout" => Self::Logout,
            _ => match path.strip_prefix("/deliveries/") {
                Some(rest) => match rest.strip_suffix("/replay") {
                    Some(id) if !id.contains('/') => Self::Replay(id),
                    None if !rest.contains('/') => Self::Delivery(rest),
                    _ => Self::NotFound,
                },
                None => Self::NotFound,
            },
        }
    }

    /// The methods the route answers, as an `Allow` header lists them.
    const fn allowed(self) -> &'static str {
        match self {
            Self::Overview | Self::List | Self::Delivery(_) | Self::NotFound => "GET, HEAD",
            Self::Login => "GET, HEAD, POST",
            Self::Replay(_) | Self::ReplayDead | Self::Purge | Self::Logout => "POST",
        }
    }

    fn allows(self, method: &Method) -> bool {
        let name = method.as_str();
        self.allowed().split(", ").any(|allowed| allowed == name)
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
enum Failure {
    BadRequest(String),
    NotFound(String),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// What every page of one request shares.
struct Context<'a> {
    console: &'a Inner,
    access: Access,
    now: SystemTime,
}

impl Context<'_> {
    fn chrome(&self) -> Chrome<'_> {
        Chrome {
            base: &self.console.base,
            csrf: auth::csrf_token(self.console, &self.access),
            session: self.access.has_session(),
            store: self.console.store.describe(),
        }
    }

    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.console.base)
    }
}

impl Console {
    /// The path below the base of `path`: `path` itself when it does not start with the base
    /// (the framework stripped it already, as axum's `nest_service` does).
    pub(crate) fn relative<'a>(&self, path: &'a str) -> &'a str {
        let base = self.inner.base.as_str();
        match path.strip_prefix(base) {
            Some(rest) if !base.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
            _ => path,
        }
    }

    /// The answer to a form an adapter could not read: too large (413), late (408) or broken
    /// (400).
    pub(crate) fn refusal(status: StatusCode) -> Response<Bytes> {
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                format!("The console reads forms of at most {MAX_FORM_BYTES} bytes.")
            }
            StatusCode::REQUEST_TIMEOUT => "The form did not arrive in time.".to_owned(),
            _ => "The form could not be read.".to_owned(),
        };
        page(status, &view::error(None, status, &message))
    }

    /// Answers `request`. Never fails: a refusal, bad input or a store failure is an error
    /// page with its status.
    pub(crate) async fn respond(&self, request: ConsoleRequest) -> Response<Bytes> {
        let now = SystemTime::now();
        let console = &*self.inner;
        let route = Route::of(&request.path);
        let access = auth::access(console, &request.headers, now);
        if access == Access::ForeignHost {
            return foreign_host();
        }
        if !route.allows(&request.method) {
            return not_allowed(route);
        }
        if route == Route::Login {
            return login(console, &request, &access, now);
        }
        if !access.is_granted() {
            return login_page(console, Some(&request), false);
        }
        let context = Context {
            console,
            access,
            now,
        };
        let answer = if request.method == Method::POST {
            act(&context, route, &request).await
        } else {
            show(&context, route, &request).await
        };
        answer.unwrap_or_else(|failure| failed(&context, failure))
    }
}

/// A page to look at.
async fn show(
    context: &Context<'_>,
    route: Route<'_>,
    request: &ConsoleRequest,
) -> Result<Response<Bytes>, Failure> {
    let params = Params::parse(request.query.as_deref().unwrap_or_default().as_bytes());
    let notice = Notice::parse(&params);
    let store = &context.console.store;
    let markup = match route {
        Route::Overview => {
            let counts = store.counts().await?;
            let events = store.event_counts().await?;
            view::overview(&context.chrome(), &counts, &events, notice)
        }
        Route::List => {
            let query = ListQuery::parse(&params).map_err(Failure::BadRequest)?;
            let deliveries = store.list(&query.filter(PAGE_SIZE)).await?;
            let next = (deliveries.len() == PAGE_SIZE)
                .then(|| deliveries.last())
                .flatten()
                .map(|last| {
                    let mut pairs = query.pairs();
                    pairs.push(("after", form::cursor(last.received_at, &last.id)));
                    context.link(&format!("/deliveries?{}", form::encode(&pairs)))
                });
            view::list(
                &context.chrome(),
                &query,
                &deliveries,
                next.as_deref(),
                notice,
            )
        }
        Route::Delivery(id) => {
            let id = delivery_id(id)?;
            let delivery = store
                .get(&id)
                .await?
                .ok_or_else(|| Failure::NotFound(format!("No delivery {id} is stored.")))?;
            view::delivery(&context.chrome(), &delivery, notice)
        }
        _ => return Err(Failure::NotFound("No page here.".to_owned())),
    };
    Ok(page(StatusCode::OK, &markup))
}

/// A form that changes something: checked for its CSRF token, then done, then a `303` back.
async fn act(
    context: &Context<'_>,
    route: Route<'_>,
    request: &ConsoleRequest,
) -> Result<Response<Bytes>, Failure> {
    let form = Params::parse(&request.body);
    if !auth::csrf_is_valid(context.console, &context.access, form.get("csrf")) {
        return Ok(csrf_refused(context));
    }
    let store = &context.console.store;
    match route {
        Route::Replay(id) => {
            let id = delivery_id(id)?;
            let replayed = store.replay(&[id]).await?;
            tracing::info!(id = %id.short(), replayed, "console: replay");
            let notice = Notice::Replayed(replayed).query();
            Ok(redirect(
                &context.link(&format!("/deliveries/{id}?{notice}")),
            ))
        }
        Route::ReplayDead => {
            let query = ListQuery::parse(&form).map_err(Failure::BadRequest)?;
            let filter = query.filter(usize::MAX);
            let replayed = store.replay_dead(&filter).await?;
            tracing::info!(event = ?filter.event, replayed, "console: replay dead letters");
            let mut pairs = query.pairs();
            pairs.extend(Notice::Replayed(replayed).pairs());
            Ok(redirect(
                &context.link(&format!("/deliveries?{}", form::encode(&pairs))),
            ))
        }
        Route::Purge => {
            let age = form
                .get("older_than")
                .ok_or_else(|| Failure::BadRequest("Say how old a purged delivery is.".into()))
                .and_then(|age| form::parse_age(age).map_err(Failure::BadRequest))?;
            let before = context
                .now
                .checked_sub(age)
                .unwrap_or(std::time::UNIX_EPOCH);
            let purged = store.purge(before).await?;
            tracing::info!(older_than = ?age, purged, "console: purge");
            let notice = Notice::Purged(purged).query();
            Ok(redirect(&context.link(&format!("/?{notice}"))))
        }
        Route::Logout => Ok(with_cookie(
            redirect(&context.link("/login")),
            &clear_cookie(context.console),
        )),
        _ => Err(Failure::NotFound("No form here.".to_owned())),
    }
}

/// `GET /login` shows the form, `POST /login` checks the token and opens a session.
///
/// The login form carries no CSRF token: what it posts is the admin token itself, which a page
/// on another site cannot know, and the session it opens is the operator's own.
fn login(
    console: &Inner,
    request: &ConsoleRequest,
    access: &Access,
    now: SystemTime,
) -> Response<Bytes> {
    let home = format!("{}/", console.base);
    let Some(token) = &console.token else {
        return redirect(&home);
    };
    if request.method != Method::POST {
        if access.is_granted() {
            return redirect(&home);
        }
        return login_page(console, None, false);
    }
    let form = Params::parse(&request.body);
    let presented = form.get("token").unwrap_or_default().trim();
    if !token.matches(presented.as_bytes()) {
        tracing::warn!("console: a login with a wrong token");
        return login_page(console, None, true);
    }
    let next = form
        .get("next")
        .filter(|next| is_console_path(&console.base, next))
        .unwrap_or(&home);
    let session = auth::new_session(console, now);
    with_cookie(redirect(next), &session_cookie(console, &session))
}

/// The login form, answered 401; `asked` is the request it stands in for, to go back to it.
fn login_page(console: &Inner, asked: Option<&ConsoleRequest>, wrong: bool) -> Response<Bytes> {
    let next = asked
        .filter(|request| request.method != Method::POST)
        .map(|request| {
            let query = request
                .query
                .as_deref()
                .map_or_else(String::new, |query| format!("?{query}"));
            format!("{}{}{query}", console.base, request.path)
        })
        .filter(|next| is_console_path(&console.base, next));
    let mut response = page(
        StatusCode::UNAUTHORIZED,
        &view::login(&console.base, next.as_deref(), wrong),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"printone-webhooks console\""),
    );
    response
}

/// Whether `next` is a path of this console, safe to redirect to after a login.
fn is_console_path(base: &str, next: &str) -> bool {
    let inside = next == base || next.starts_with(&format!("{base}/"));
    inside
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.chars().all(|c| c.is_ascii_graphic())
}

fn session_cookie(console: &Inner, session: &str) -> String {
    cookie(console, session, SESSION_LIFETIME.as_secs())
}

fn clear_cookie(console: &Inner) -> String {
    cookie(console, "", 0)
}

fn cookie(console: &Inner, value: &str, max_age: u64) -> String {
    let path = if console.base.is_empty() {
        "/"
    } else {
        &console.base
    };
    let secure = if console.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

fn with_cookie(mut response: Response<Bytes>, cookie: &str) -> Response<Bytes> {
    if let Ok(cookie) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn delivery_id(text: &str) -> Result<DeliveryId, Failure> {
    text.parse().map_err(|_| {
        Failure::BadRequest("A delivery id is 64 hex characters, as the lists link it.".into())
    })
}

fn failed(context: &Context<'_>, failure: Failure) -> Response<Bytes> {
    let (status, message) = match failure {
        Failure::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
        Failure::NotFound(message) => (StatusCode::NOT_FOUND, message),
        Failure::Store(error) => {
            tracing::error!(kind = error.as_str(), %error, "console: the store failed");
            let message = format!(
                "The store did not answer: {error}. Nothing was changed by this request; try again once the store is back."
            );
            (StatusCode::SERVICE_UNAVAILABLE, message)
        }
    };
    page(
        status,
        &view::error(Some(&context.chrome()), status, &message),
    )
}

fn csrf_refused(context: &Context<'_>) -> Response<Bytes> {
    tracing::warn!("console: a form without its CSRF token was refused");
    let message = "This form's CSRF token is missing or is not this session's: nothing was changed. Reload the page and try again.";
    page(
        StatusCode::FORBIDDEN,
        &view::error(Some(&context.chrome()), StatusCode::FORBIDDEN, message),
    )
}

fn foreign_host() -> Response<Bytes> {
    let message = "This console has no admin token, so it answers only requests to a loopback address or localhost. Set a token to reach it under another name.";
    page(
        StatusCode::FORBIDDEN,
        &view::error(None, StatusCode::FORBIDDEN, message),
    )
}

fn not_allowed(route: Route<'_>) -> Response<Bytes> {
    let message = format!("This page answers {} only.", route.allowed());
    let mut response = page(
        StatusCode::METHOD_NOT_ALLOWED,
        &view::error(None, StatusCode::METHOD_NOT_ALLOWED, &message),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(route.allowed()));
    response
}

impl Notice {
    /// The notice a redirect carries, from `notice` and `count`.
    fn parse(params: &Params) -> Option<Self> {
        let count = params.get("count").and_then(|count| count.parse().ok())?;
        match params.get("notice")? {
            "replayed" => Some(Self::Replayed(count)),
            "purged" => Some(Self::Purged(count)),
            _ => None,
        }
    }

    fn pairs(self) -> [(&'static str, String); 2] {
        let (name, count) = match self {
            Self::Replayed(count) => ("replayed", count),
            Self::Purged(count) => ("purged", count),
        };
        [("notice", name.to_owned()), ("count", count.to_string())]
    }

    fn query(self) -> String {
        form::encode(&self.pairs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lead_to_their_pages() {
        let id = "ab".repeat(32);
        assert_eq!(Route::of(""), Route::Overview);
        assert_eq!(Route::of("/"), Route::Overview);
        assert_eq!(Route::of("/deliveries/"), Route::List);
        assert_eq!(
            Route::of(&format!("/deliveries/{id}")),
            Route::Delivery(&id)
        );
        assert_eq!(
            Route::of(&format!("/deliveries/{id}/replay")),
            Route::Replay(&id)
        );
        for lost in [
            "/nope",
            "/deliveries/a/b",
            "/deliveries/a/b/replay",
            "/console",
        ] {
            assert_eq!(Route::of(lost), Route::NotFound, "{lost}");
        }
    }

    #[test]
    fn a_login_goes_back_to_console_paths_only() {
        assert!(is_console_path(
            "/console",
            "/console/deliveries?state=dead"
        ));
        assert!(is_console_path("/console", "/console"));
        assert!(is_console_path("", "/deliveries"));
        for elsewhere in [
            "https://attacker.example/",
            "//attacker.example/",
            "/consoleX",
            "/console/\\attacker",
            "/console/a b",
        ] {
            assert!(!is_console_path("/console", elsewhere), "{elsewhere}");
        }
        assert!(!is_console_path("", "//attacker.example"));
    }
}
