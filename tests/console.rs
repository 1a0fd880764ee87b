//! The delivery console through its public API: the tower service over a memory store (pages,
//! escaping, the token, CSRF, paging, bad input, a failing store), the actix scope, and a real
//! browser (Debian's Chromium, driven by `playwright-core`) against the axum example.
//!
//! The browser test needs `/usr/bin/chromium` (Debian package `chromium`) and `npm ci` in
//! `tests/console/`. Without them it says once that it was skipped and how to run it; with `CI`
//! set (to anything but the empty string) it fails instead: `.ci/run` installs both.

mod common;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use printone_webhooks::{
    console::{AdminToken, Console},
    sign_raw,
    store::{Attempt, DeliveryId, DeliveryState, MemoryStore, SharedStore},
    tower::ConsoleService,
    Delivery, Verifier, EVENT_HEADER,
};
use tower::ServiceExt as _;

const TOKEN: &str = "console-test-token-4Vb9Qk2Lx7Rm";

/// A verified delivery of `body`, with `event` as its event header.
fn delivery(body: &str, event: &str) -> Delivery {
    let secret = common::secret();
    let verified = Verifier::new(secret.clone())
        .verify_signature(sign_raw(&secret, body.as_bytes()), body.as_bytes())
        .expect("signed with the same secret");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        EVENT_HEADER,
        HeaderValue::from_str(event).expect("printable"),
    );
    Delivery::new(Bytes::from(body.to_owned()), verified, &headers)
}

fn order(id: &str) -> Delivery {
    delivery(
        &format!(
            r#"{{"data":{{"id":"{id}","status":"order_created"}},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}}"#
        ),
        "order_status_update",
    )
}

/// Stores `delivery` and gives up on it at once with `reason`; its id.
async fn dead_letter(store: &SharedStore, delivery: &Delivery, reason: &str) -> DeliveryId {
    store.insert(delivery).await.expect("insert");
    let mut claim = store
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim");
    let claimed = claim.claimed.remove(0);
    let attempt = Attempt {
        started_at: SystemTime::now(),
        duration: Duration::from_millis(4),
        error: Some(reason.to_owned()),
    };
    store
        .dead_letter(&claimed.lease, &attempt)
        .await
        .expect("dead letter");
    claimed.lease.id
}

/// A console answer, its body read.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    /// The value of the hidden CSRF field on this page.
    fn csrf(&self) -> String {
        let (_, rest) = self
            .body
            .split_once(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no CSRF field on the page:\n{}", self.body));
        rest.split('"').next().unwrap_or_default().to_owned()
    }

    fn location(&self) -> &str {
        self.headers[header::LOCATION]
            .to_str()
            .expect("a printable Location")
    }
}

async fn collect(response: Response<Full<Bytes>>) -> Answer {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a full body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).expect("UTF-8 pages"),
    }
}

/// Sends a request to `console`: `GET` without a form, `POST` with one; as a browser on
/// loopback would, with the headers given.
async fn send(
    console: &Console,
    method: Method,
    uri: &str,
    form: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:9000");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if form.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let body = Full::new(Bytes::from(form.unwrap_or_default().to_owned()));
    let response = ConsoleService::new(console.clone())
        .oneshot(request.body(body).expect("a request"))
        .await
        .expect("infallible");
    collect(response).await
}

async fn get(console: &Console, uri: &str) -> Answer {
    send(console, Method::GET, uri, None, &[]).await
}

async fn post(console: &Console, uri: &str, form: &str) -> Answer {
    send(console, Method::POST, uri, Some(form), &[]).await
}

#[tokio::test]
async fn the_overview_counts_each_state_and_each_event() {
    let store = SharedStore::from(MemoryStore::new());
    dead_letter(&store, &order("ord_1"), "no such order").await;
    store.insert(&order("ord_2")).await.unwrap();
    store
        .insert(&delivery(
            r#"{"event":"coupon_code_used","data":{}}"#,
            "coupon_code_used",
        ))
        .await
        .unwrap();
    let console = Console::new(store);
    let page = get(&console, "/console/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#));
    for expected in [
        "coupon_code_used",
        "order_status_update",
        "/console/deliveries?state=dead",
        "/console/purge",
    ] {
        assert!(
            page.body.contains(expected),
            "{expected} missing:\n{}",
            page.body
        );
    }
    assert!(!page.body.contains("<script"), "no script on any page");
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "nothing from elsewhere"
    );
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let console = Console::new(MemoryStore::new());
    for uri in ["/console/", "/console/deliveries", "/console/nope"] {
        let page = get(&console, uri).await;
        let policy = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            policy.starts_with("default-src 'none'; style-src 'sha256-"),
            "{policy}"
        );
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            page.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
    }
}

#[tokio::test]
async fn bodies_and_event_names_with_markup_are_shown_as_text() {
    let store = SharedStore::from(MemoryStore::new());
    let hostile = r#"{"event":"<img src=x onerror=alert(1)>","data":{"id":"<b>ord</b>","note":"</pre><script>alert('body')</script>"}}"#;
    let id = dead_letter(
        &store,
        &delivery(hostile, "<i>header</i>"),
        "<script>alert('reason')</script>",
    )
    .await;
    let console = Console::new(store);
    let pages = [
        get(&console, "/console/").await,
        get(&console, "/console/deliveries").await,
        get(&console, &format!("/console/deliveries/{id}")).await,
    ];
    for page in &pages {
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("<script"), "unescaped:\n{}", page.body);
        assert!(!page.body.contains("<img"), "unescaped:\n{}", page.body);
        assert!(!page.body.contains("<b>ord"), "unescaped:\n{}", page.body);
    }
    let shown = &pages[2].body;
    assert!(
        shown.contains("&lt;/pre&gt;&lt;script&gt;alert('body')&lt;/script&gt;"),
        "{shown}"
    );
    assert!(
        shown.contains("&lt;i&gt;header&lt;/i&gt;"),
        "the event header, escaped"
    );
    assert!(
        shown.contains("&lt;script&gt;alert('reason')"),
        "the reason, escaped"
    );
    assert!(pages[1].body.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[tokio::test]
async fn a_delivery_page_shows_its_headers_body_and_attempts() {
    let store = SharedStore::from(MemoryStore::new());
    let id = dead_letter(&store, &order("ord_7"), "upstream said 502").await;
    let console = Console::new(store);
    let page = get(&console, &format!("/console/deliveries/{id}")).await;
    for expected in [
        "x-printone-event",
        "x-webhook-hmac-sha256",
        "\n  &quot;data&quot;: {\n    &quot;id&quot;: &quot;ord_7&quot;,",
        "upstream said 502",
        "4.0 ms",
        &id.to_string(),
        "Replay this dead letter",
    ] {
        assert!(
            page.body.contains(expected),
            "{expected:?} missing:\n{}",
            page.body
        );
    }
    assert!(!page.body.contains(common::SECRET), "never the secret");
}

#[tokio::test]
async fn a_guarded_console_opens_with_its_token_only() {
    let console = Console::new(MemoryStore::new()).with_token(AdminToken::new(TOKEN).unwrap());
    let refused = get(&console, "/console/deliveries?state=dead").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused
        .body
        .contains(r#"name="next" value="/console/deliveries?state=dead""#));
    let wrong = send(
        &console,
        Method::GET,
        "/console/",
        None,
        &[("authorization", "Bearer console-test-token-4Vb9Qk2Lx7Rn")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {TOKEN}");
    let right = send(
        &console,
        Method::GET,
        "/console/",
        None,
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(right.status, StatusCode::OK);

    let bad_login = post(&console, "/console/login", "token=nope-nope-nope-nope").await;
    assert_eq!(bad_login.status, StatusCode::UNAUTHORIZED);
    assert!(bad_login.headers.get(header::SET_COOKIE).is_none());
    let login = post(
        &console,
        "/console/login",
        &format!("token={TOKEN}&next=%2Fconsole%2Fdeliveries"),
    )
    .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/console/deliveries");
    let cookie = login.headers[header::SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains(TOKEN), "the cookie is not the token");
    let session = cookie.split(';').next().unwrap();
    let page = send(
        &console,
        Method::GET,
        "/console/",
        None,
        &[("cookie", session)],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Log out"));

    let elsewhere = post(
        &console,
        "/console/login",
        &format!("token={TOKEN}&next=%2F%2Fattacker.example%2F"),
    )
    .await;
    assert_eq!(elsewhere.location(), "/console/", "never off the console");
}

#[tokio::test]
async fn a_form_without_this_sessions_csrf_token_changes_nothing() {
    let store = SharedStore::from(MemoryStore::new());
    let id = dead_letter(&store, &order("ord_1"), "no").await;
    let console = Console::new(store.clone());
    let replay = format!("/console/deliveries/{id}/replay");
    let without = post(&console, &replay, "").await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let wrong = post(&console, &replay, &format!("csrf={}", "0".repeat(64))).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let other_console = Console::new(store.clone());
    let foreign = get(&other_console, "/console/").await.csrf();
    assert_eq!(
        post(&console, &replay, &format!("csrf={foreign}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for (uri, form) in [
        ("/console/purge", "older_than=0s"),
        ("/console/replay-dead", ""),
    ] {
        assert_eq!(
            post(&console, uri, form).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
    }
    assert_eq!(
        store.counts().await.unwrap().dead,
        1,
        "nothing was replayed or purged"
    );

    let csrf = get(&console, &format!("/console/deliveries/{id}"))
        .await
        .csrf();
    let replayed = post(&console, &replay, &format!("csrf={csrf}")).await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER);
    assert!(replayed
        .location()
        .starts_with(&format!("/console/deliveries/{id}?")));
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Pending);
    let after = get(&console, replayed.location()).await;
    assert!(
        after.body.contains("Replayed 1 dead letter"),
        "{}",
        after.body
    );
}

#[tokio::test]
async fn replaying_a_filter_and_purging_redirect_back_with_what_they_did() {
    let store = SharedStore::from(MemoryStore::new());
    dead_letter(&store, &order("ord_1"), "no").await;
    dead_letter(&store, &order("ord_2"), "no").await;
    let coupon = delivery(
        r#"{"event":"coupon_code_used","data":{}}"#,
        "coupon_code_used",
    );
    dead_letter(&store, &coupon, "no").await;
    let console = Console::new(store.clone());
    let csrf = get(&console, "/console/").await.csrf();
    let replayed = post(
        &console,
        "/console/replay-dead",
        &format!("csrf={csrf}&state=dead&event=order_status_update"),
    )
    .await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        replayed.location(),
        "/console/deliveries?state=dead&event=order_status_update&notice=replayed&count=2"
    );
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (2, 1));

    let purged = post(
        &console,
        "/console/purge",
        &format!("csrf={csrf}&older_than=0s"),
    )
    .await;
    assert_eq!(purged.location(), "/console/?notice=purged&count=1");
    assert!(get(&console, purged.location())
        .await
        .body
        .contains("Purged 1 finished delivery."));
    let bad_age = post(
        &console,
        "/console/purge",
        &format!("csrf={csrf}&older_than=soon"),
    )
    .await;
    assert_eq!(bad_age.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_pages_of_a_long_list_hold_every_delivery_once() {
    let store = SharedStore::from(MemoryStore::new().with_capacity(1_000));
    for n in 0..120 {
        store.insert(&order(&format!("ord_{n}"))).await.unwrap();
    }
    let console = Console::new(store);
    let mut seen = Vec::new();
    let mut uri = "/console/deliveries?event=order_status_update".to_owned();
    for _ in 0..10 {
        let page = get(&console, &uri).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.extend(
            page.body
                .split("<td class=\"mono\" data-label=\"Data id\">")
                .skip(1)
                .filter_map(|rest| rest.split('<').next().map(str::to_owned)),
        );
        let Some((before, _)) = page.body.split_once("\" rel=\"next\"") else {
            break;
        };
        uri = before
            .rsplit("href=\"")
            .next()
            .unwrap()
            .replace("&amp;", "&");
    }
    assert_eq!(seen.len(), 120, "{seen:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 120, "no delivery twice");
}

#[tokio::test]
async fn bad_input_answers_a_page_with_its_status() {
    let console = Console::new(MemoryStore::new());
    let unknown = "ab".repeat(32);
    for (uri, status) in [
        ("/console/deliveries/not-an-id", StatusCode::BAD_REQUEST),
        (
            &format!("/console/deliveries/{unknown}") as &str,
            StatusCode::NOT_FOUND,
        ),
        ("/console/deliveries?state=gone", StatusCode::BAD_REQUEST),
        (
            "/console/deliveries?since=yesterday",
            StatusCode::BAD_REQUEST,
        ),
        ("/console/deliveries?after=1-zz", StatusCode::BAD_REQUEST),
        ("/console/elsewhere", StatusCode::NOT_FOUND),
        ("/console/purge", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let page = get(&console, uri).await;
        assert_eq!(page.status, status, "{uri}:\n{}", page.body);
        assert!(page.body.contains("<h1>"), "{uri}: an error page");
    }
    let large = format!("csrf={}", "x".repeat(20_000));
    assert_eq!(
        post(&console, "/console/purge", &large).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn an_open_console_refuses_a_host_that_is_not_loopback() {
    let console = Console::new(MemoryStore::new());
    // What a page on another site sends once it has rebound its name to 127.0.0.1.
    let request = Request::get("/console/")
        .header(header::HOST, "attacker.example:9000")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = ConsoleService::new(console).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_store_that_fails_answers_503() {
    let dir = std::env::temp_dir().join(format!("printone-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gone.db");
    let store = printone_webhooks::store::SqliteStore::open(&file).unwrap();
    let console = Console::new(store.clone());
    std::fs::remove_dir_all(&dir).unwrap();
    let page = get(&console, "/console/").await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(
        page.body.contains("The store did not answer"),
        "{}",
        page.body
    );
}

#[cfg(feature = "actix-web")]
#[actix_web::test]
async fn the_actix_scope_serves_the_same_console() {
    use actix_web::{test, App};
    let store = SharedStore::from(MemoryStore::new());
    let id = dead_letter(&store, &order("ord_1"), "no such order").await;
    let app = test::init_service(App::new().service(printone_webhooks::actix::console_scope(
        Console::new(store.clone()),
    )))
    .await;
    let uri = format!("/console/deliveries/{id}");
    let request = test::TestRequest::get()
        .uri(&uri)
        .insert_header(("host", "127.0.0.1:9000"))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status().as_u16(), 200);
    let frames = response
        .headers()
        .get("x-frame-options")
        .map(|v| v.as_bytes().to_vec());
    assert_eq!(frames.as_deref(), Some(b"DENY".as_slice()));
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    assert!(body.contains("no such order"), "{body}");
    let page = Answer {
        status: StatusCode::OK,
        headers: http::HeaderMap::new(),
        body,
    };
    let replay = |form: String| {
        test::TestRequest::post()
            .uri(&format!("{uri}/replay"))
            .insert_header(("host", "127.0.0.1:9000"))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(form)
            .to_request()
    };
    let refused = test::call_service(&app, replay(String::new())).await;
    assert_eq!(refused.status().as_u16(), 403);
    let replayed = test::call_service(&app, replay(format!("csrf={}", page.csrf()))).await;
    assert_eq!(replayed.status().as_u16(), 303);
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().state,
        DeliveryState::Pending
    );
}

#[test]
fn the_example_refuses_a_console_beyond_loopback_without_a_token() {
    let output = std::process::Command::new(common::example_binary("axum"))
        .env("PRINTONE_BIND", "127.0.0.1:0")
        .env("PRINTONE_ADMIN_BIND", "0.0.0.0:0")
        .env_remove("PRINTONE_ADMIN_TOKEN")
        .env("PRINTONE_STORE", "memory")
        .env("PRINTONE_WEBHOOK_SECRET", common::SECRET)
        .output()
        .expect("the axum example runs");
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("set PRINTONE_ADMIN_TOKEN"), "{said}");
    assert!(!said.contains("listening on"), "it did not start: {said}");
}

/// The real-browser test: what the receiver, the store and the console do together, seen by
/// Chromium.
mod browser {
    use std::{
        env,
        io::{Read as _, Write as _},
        net::{SocketAddr, TcpStream},
        path::{Path, PathBuf},
        process::{Child, Command, Stdio},
        sync::{Arc, Mutex, PoisonError},
        thread,
        time::{Duration, Instant},
    };

    use super::{common, TOKEN};

    const CHROMIUM: &str = "/usr/bin/chromium";
    const FAILING: &str = "order_status_update";
    const PATIENCE: Duration = Duration::from_secs(20);

    /// Where the browser script and its `node_modules` are.
    fn script_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
    }

    /// Whether the browser test can run here; says once why not (or fails under `CI`).
    fn runnable() -> bool {
        let node = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        let missing: Vec<&str> = [
            (!Path::new(CHROMIUM).exists())
                .then_some("/usr/bin/chromium (Debian package chromium)"),
            (!node).then_some("node (Debian package nodejs)"),
            (!script_dir().join("node_modules/playwright-core").exists())
                .then_some("playwright-core (`npm ci` in tests/console)"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if missing.is_empty() {
            return true;
        }
        let ci = env::var_os("CI").is_some_and(|value| !value.is_empty());
        assert!(
            !ci,
            "the console's browser test cannot run, and CI is set: missing {}",
            missing.join(", ")
        );
        let _ = writeln!(
            std::io::stderr(),
            "\nconsole browser test skipped: missing {}; run `apt-get install chromium nodejs npm` and \
             `npm ci --prefix tests/console`, then `cargo test --all-features --test console`\n",
            missing.join(", ")
        );
        false
    }

    /// A running axum example: its webhook and admin addresses, its stdout and log.
    struct Receiver {
        child: Child,
        webhooks: SocketAddr,
        admin: SocketAddr,
        stdout: Arc<Mutex<Vec<String>>>,
        log: Arc<Mutex<String>>,
    }

    impl Receiver {
        /// Starts the example in `dir` on the store file `deliveries.db` there.
        fn start(dir: &Path, fail: bool) -> Self {
            let mut command = Command::new(common::example_binary("axum"));
            for (name, _) in env::vars_os() {
                if name.to_string_lossy().starts_with("PRINTONE_") {
                    command.env_remove(name);
                }
            }
            command
                .env("PRINTONE_BIND", "127.0.0.1:0")
                .env("PRINTONE_ADMIN_BIND", "127.0.0.1:0")
                .env("PRINTONE_ADMIN_TOKEN", TOKEN)
                .env("PRINTONE_WEBHOOK_SECRET", common::SECRET)
                .current_dir(dir)
                .env("PRINTONE_STORE", "sqlite:deliveries.db")
                .env("PRINTONE_MAX_ATTEMPTS", "2")
                .env("PRINTONE_RETRY_BACKOFF_MS", "50")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if fail {
                command.env("PRINTONE_DEMO_FAIL_EVENT", FAILING);
            }
            let mut child = command.spawn().expect("the axum example starts");
            let captured = common::capture(&mut child);
            let webhooks = captured
                .listening
                .recv_timeout(PATIENCE)
                .ok()
                .and_then(|line| address_after(&line, "listening on http://"))
                .unwrap_or_else(|| panic!("no `listening on`:\n{}", text(&captured.log)));
            let admin = address_after(&text(&captured.log), "admin listener on http://")
                .unwrap_or_else(|| panic!("no admin listener:\n{}", text(&captured.log)));
            Self {
                child,
                webhooks,
                admin,
                stdout: captured.stdout,
                log: captured.log,
            }
        }

        fn console(&self) -> String {
            format!("http://{}/console", self.admin)
        }

        fn handled(&self) -> Vec<String> {
            self.stdout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }

        /// SIGTERM, and the wait for a clean exit.
        fn stop(mut self) {
            let sent = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .expect("`kill` runs");
            assert!(sent.success());
            let deadline = Instant::now() + PATIENCE;
            loop {
                if let Some(status) = self.child.try_wait().expect("the receiver's status") {
                    assert!(status.success(), "exit {status}:\n{}", text(&self.log));
                    return;
                }
                assert!(Instant::now() < deadline, "no exit after SIGTERM");
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            if thread::panicking() {
                eprintln!("--- the receiver's log ---\n{}", text(&self.log));
            }
        }
    }

    fn text(log: &Arc<Mutex<String>>) -> String {
        log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn address_after(text: &str, marker: &str) -> Option<SocketAddr> {
        let (_, rest) = text.split_once(marker)?;
        rest.split(['/', '\n', ' ']).next()?.parse().ok()
    }

    /// One raw HTTP/1.1 exchange; the status and the body.
    fn exchange(address: SocketAddr, request: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(address).expect("the receiver accepts");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("a read timeout");
        stream
            .write_all(request.as_bytes())
            .expect("the request is sent");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.to_owned())
    }

    fn post(receiver: &Receiver, event: &str, body: &str) {
        let request = format!(
            "POST /webhooks/printone HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             x-printone-event: {event}\r\nx-webhook-hmac-sha256: {}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            receiver.webhooks,
            common::signature_of(body.as_bytes()),
            body.len()
        );
        assert_eq!(exchange(receiver.webhooks, &request).0, 200, "{body}");
    }

    fn order(id: &str, note: &str) -> String {
        format!(
            r#"{{"data":{{"id":"{id}","status":"order_created","note":"{note}"}},"event":"{FAILING}","created_at":"2024-06-03T13:14:46.501Z"}}"#
        )
    }

    /// How many dead letters the console lists, asked with the bearer token.
    fn dead_letters(receiver: &Receiver) -> usize {
        let request = format!(
            "GET /console/deliveries?state=dead HTTP/1.1\r\nhost: {}\r\n\
             authorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n",
            receiver.admin
        );
        let (status, body) = exchange(receiver.admin, &request);
        assert_eq!(status, 200, "{body}");
        body.matches(r#"<span class="state-dead">"#).count()
    }

    fn browse(phase: &str, receiver: &Receiver, shots: &Path) {
        let output = Command::new("node")
            .arg(script_dir().join("browser.mjs"))
            .args([phase, &receiver.console(), TOKEN])
            .arg(shots)
            .current_dir(script_dir())
            .output()
            .expect("node runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "the browser's {phase} phase failed:\n{said}"
        );
        let _ = std::io::stderr().write_all(said.as_bytes());
    }

    #[test]
    fn an_operator_sees_dead_letters_in_a_browser_and_replays_them() {
        if !runnable() {
            return;
        }
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target dir")
            .to_owned();
        let shots = target.join("console-screenshots");
        let scratch = target.join(format!("tmp/console-browser-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).unwrap();

        let failing = Receiver::start(&scratch, true);
        for n in 1..=3 {
            post(&failing, FAILING, &order(&format!("ord_{n}"), "plain"));
        }
        post(
            &failing,
            FAILING,
            &order(
                "ord_script",
                "<script>window.__pwned = true; alert('pwned')</script>",
            ),
        );
        post(
            &failing,
            "mailing_delivered",
            r#"{"data":{"id":"mail_1"},"event":"mailing_delivered"}"#,
        );
        post(
            &failing,
            "<b>odd</b>",
            r#"{"data":{"id":"odd_1"},"event":"<img src=x onerror=alert(1)>"}"#,
        );
        let deadline = Instant::now() + PATIENCE;
        while dead_letters(&failing) < 4 {
            assert!(
                Instant::now() < deadline,
                "4 dead letters within {PATIENCE:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        browse("dead", &failing, &shots);
        failing.stop();

        let fixed = Receiver::start(&scratch, false);
        browse("replay", &fixed, &shots);
        let handled = fixed.handled();
        for id in ["ord_1", "ord_2", "ord_3", "ord_script"] {
            let line = format!("handled event={FAILING} id={id}");
            assert!(handled.contains(&line), "{line} missing from {handled:?}");
        }
        fixed.stop();
        let _ = std::fs::remove_dir_all(&scratch);
        let _ = writeln!(
            std::io::stderr(),
            "\nconsole screenshots: {}\n",
            shots.display()
        );
    }
}
