//! Who may see the console: the admin token (bearer header or session cookie), the loopback
//! rule of a console without a token, and the CSRF tokens of its forms.
//!
//! Sessions and CSRF tokens are HMAC-SHA256 tags under the console's random key, written in
//! hex; a presented tag is checked in constant time.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap};

use crate::{
    console::config::{Inner, SESSION_LIFETIME},
    core::mac::{Key, TAG_LEN},
};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "printone_console";

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// The console has no token, and the request came to a loopback host.
    Open,
    /// The request carried the token as a bearer header.
    Bearer,
    /// The request carried a valid session cookie (its value).
    Session(String),
    /// No token, a wrong one, or an expired session.
    Denied,
    /// The console has no token and the request names a host that is not loopback.
    ForeignHost,
}

impl Access {
    /// Whether the console may answer.
    pub(crate) const fn is_granted(&self) -> bool {
        matches!(self, Self::Open | Self::Bearer | Self::Session(_))
    }

    /// Whether a logout button makes sense.
    pub(crate) const fn has_session(&self) -> bool {
        matches!(self, Self::Session(_))
    }

    /// What this access's CSRF tokens are bound to.
    fn binding(&self) -> &str {
        match self {
            Self::Open => "open",
            Self::Bearer => "bearer",
            Self::Session(cookie) => cookie,
            Self::Denied | Self::ForeignHost => "",
        }
    }
}

/// Who is asking, from the request's headers, at `now`.
pub(crate) fn access(console: &Inner, headers: &HeaderMap, now: SystemTime) -> Access {
    let Some(token) = &console.token else {
        return if host_is_loopback(headers) {
            Access::Open
        } else {
            Access::ForeignHost
        };
    };
    if bearer(headers).is_some_and(|presented| token.matches(presented.as_bytes())) {
        return Access::Bearer;
    }
    match cookie(headers, COOKIE) {
        Some(session) if session_is_valid(console, session, now) => {
            Access::Session(session.to_owned())
        }
        _ => Access::Denied,
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of the cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the `Host` names a loopback address or `localhost` (with or without a port).
fn host_is_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A new session cookie's value, issued at `now`: `ISSUED.TAG`.
pub(crate) fn new_session(console: &Inner, now: SystemTime) -> String {
    let issued = seconds(now);
    format!("{issued}.{}", hex(&session_tag(console, issued)))
}

fn session_is_valid(console: &Inner, session: &str, now: SystemTime) -> bool {
    let Some((issued, tag)) = session.split_once('.') else {
        return false;
    };
    let Ok(issued) = issued.parse::<u64>() else {
        return false;
    };
    let now = seconds(now);
    let fresh =
        issued <= now.saturating_add(60) && now.saturating_sub(issued) < SESSION_LIFETIME.as_secs();
    fresh && unhex(tag).is_some_and(|tag| tagged(console, &session_message(console, issued), &tag))
}

fn session_tag(console: &Inner, issued: u64) -> [u8; TAG_LEN] {
    tag(console, &session_message(console, issued))
}

/// What a session tag covers: its issue time and the token it was opened with.
fn session_message(console: &Inner, issued: u64) -> Vec<u8> {
    let mut message = format!("session\0{issued}\0").into_bytes();
    if let Some(token) = &console.token {
        message.extend_from_slice(token.digest());
    }
    message
}

/// The CSRF token of `access`'s forms.
pub(crate) fn csrf_token(console: &Inner, access: &Access) -> String {
    hex(&tag(console, &csrf_message(access)))
}

/// Whether `presented` is the CSRF token of `access`, in constant time.
pub(crate) fn csrf_is_valid(console: &Inner, access: &Access, presented: Option<&str>) -> bool {
    presented
        .and_then(unhex)
        .is_some_and(|tag| tagged(console, &csrf_message(access), &tag))
}

fn csrf_message(access: &Access) -> Vec<u8> {
    format!("csrf\0{}", access.binding()).into_bytes()
}

fn tag(console: &Inner, message: &[u8]) -> [u8; TAG_LEN] {
    let Some(key) = Key::new(&console.key) else {
        return [0; TAG_LEN];
    };
    let mut mac = key.start();
    mac.update(message);
    mac.finalize()
}

fn tagged(console: &Inner, message: &[u8], expected: &[u8; TAG_LEN]) -> bool {
    let Some(key) = Key::new(&console.key) else {
        return false;
    };
    let mut mac = key.start();
    mac.update(message);
    mac.verify(expected)
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

fn unhex(text: &str) -> Option<[u8; TAG_LEN]> {
    let text = text.as_bytes();
    if text.len() != TAG_LEN * 2 {
        return None;
    }
    let mut bytes = [0; TAG_LEN];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;
    use crate::{
        console::{AdminToken, Console},
        store::MemoryStore,
    };

    const TOKEN: &str = "correct-horse-battery-staple";

    fn guarded() -> Console {
        Console::new(MemoryStore::new()).with_token(AdminToken::new(TOKEN).unwrap())
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn the_bearer_token_opens_a_guarded_console_and_nothing_else_does() {
        let console = guarded();
        let now = SystemTime::now();
        let right = headers(&[(header::AUTHORIZATION, &format!("Bearer {TOKEN}"))]);
        assert_eq!(access(&console.inner, &right, now), Access::Bearer);
        let wrong = headers(&[(
            header::AUTHORIZATION,
            "Bearer correct-horse-battery-stapler",
        )]);
        assert_eq!(access(&console.inner, &wrong, now), Access::Denied);
        let basic = headers(&[(header::AUTHORIZATION, &format!("Basic {TOKEN}"))]);
        assert_eq!(access(&console.inner, &basic, now), Access::Denied);
        assert_eq!(
            access(&console.inner, &HeaderMap::new(), now),
            Access::Denied
        );
    }

    #[test]
    fn a_session_lasts_its_lifetime_in_the_console_that_issued_it() {
        let console = guarded();
        let now = SystemTime::now();
        let session = new_session(&console.inner, now);
        let sent = headers(&[(header::COOKIE, &format!("other=1; {COOKIE}={session}"))]);
        assert!(access(&console.inner, &sent, now).is_granted());
        let later = now + SESSION_LIFETIME + Duration::from_secs(1);
        assert_eq!(
            access(&console.inner, &sent, later),
            Access::Denied,
            "expired"
        );
        let restarted = guarded();
        assert_eq!(
            access(&restarted.inner, &sent, now),
            Access::Denied,
            "other key"
        );
        let (issued, _) = session.split_once('.').unwrap();
        let forged = headers(&[(
            header::COOKIE,
            &format!("{COOKIE}={issued}.{}", "0".repeat(64)),
        )]);
        assert_eq!(access(&console.inner, &forged, now), Access::Denied);
    }

    #[test]
    fn an_open_console_answers_loopback_hosts_only() {
        let console = Console::new(MemoryStore::new());
        let now = SystemTime::now();
        for host in [
            "127.0.0.1:9000",
            "localhost:9000",
            "[::1]:9000",
            "LOCALHOST",
            "127.1.2.3",
        ] {
            let sent = headers(&[(header::HOST, host)]);
            assert_eq!(access(&console.inner, &sent, now), Access::Open, "{host}");
        }
        for host in [
            "attacker.example:9000",
            "10.0.0.1:9000",
            "localhost.attacker.example",
        ] {
            let sent = headers(&[(header::HOST, host)]);
            assert_eq!(
                access(&console.inner, &sent, now),
                Access::ForeignHost,
                "{host}"
            );
        }
        assert_eq!(
            access(&console.inner, &HeaderMap::new(), now),
            Access::ForeignHost
        );
    }

    #[test]
    fn a_csrf_token_is_bound_to_its_session_and_console() {
        let console = guarded();
        let session = Access::Session(new_session(&console.inner, SystemTime::now()));
        let token = csrf_token(&console.inner, &session);
        assert!(csrf_is_valid(&console.inner, &session, Some(&token)));
        assert!(!csrf_is_valid(&console.inner, &session, None));
        assert!(!csrf_is_valid(&console.inner, &session, Some("abc")));
        assert!(!csrf_is_valid(
            &console.inner,
            &Access::Bearer,
            Some(&token)
        ));
        assert!(!csrf_is_valid(&guarded().inner, &session, Some(&token)));
    }
}
