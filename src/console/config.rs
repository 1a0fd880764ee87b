//! [`Console`]: the console's settings, and the [`AdminToken`] that guards it.

use std::{fmt, net::SocketAddr, sync::Arc, time::Duration};

use subtle::ConstantTimeEq as _;

use crate::{core::mac::Key, store::SharedStore};

/// Where the console is mounted unless told otherwise: `/console`.
pub const DEFAULT_BASE_PATH: &str = "/console";

/// How many deliveries one list page shows.
pub(crate) const PAGE_SIZE: usize = 50;

/// How long a login lasts: 12 hours.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The key under which tokens are hashed before they are compared, so that the comparison
/// runs over two 32-byte digests whatever their lengths.
const TOKEN_DIGEST_KEY: &[u8] = b"printone-webhooks console token";

/// Why a console could not be set up as asked.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleConfigError {
    /// The admin token is shorter than [`AdminToken::MIN_LEN`] characters.
    #[error("the admin token is too short: at least {min} characters", min = AdminToken::MIN_LEN)]
    TokenTooShort,
    /// The console would answer on a non-loopback address without a token.
    #[error(
        "the console on {0} is reachable from other machines: it needs an admin token (or bind it to a loopback address)"
    )]
    TokenRequired(SocketAddr),
    /// The base path is not `/` or an absolute path of plain segments without a trailing `/`.
    #[error("{0:?} is not a console base path: `/console`, `/admin/console` or `/`")]
    InvalidBasePath(String),
}

/// The token an operator gives to open the console: as `Authorization: Bearer TOKEN`, or once
/// in the login form, which sets a session cookie.
///
/// # Security
///
/// Only a keyed digest of the token is kept; `Debug` shows neither. Presented tokens are
/// compared with it in constant time (`subtle`). Choose a long random token (at least
/// [`AdminToken::MIN_LEN`] characters; `openssl rand -hex 32` gives 64).
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    /// The shortest token accepted: 16 characters.
    pub const MIN_LEN: usize = 16;

    /// The token `token` (surrounding whitespace is not part of it).
    ///
    /// # Errors
    ///
    /// [`ConsoleConfigError::TokenTooShort`] for a token under [`AdminToken::MIN_LEN`]
    /// characters.
    pub fn new(token: impl AsRef<str>) -> Result<Self, ConsoleConfigError> {
        let token = token.as_ref().trim();
        if token.chars().count() < Self::MIN_LEN {
            return Err(ConsoleConfigError::TokenTooShort);
        }
        Ok(Self {
            digest: digest(token.as_bytes()),
        })
    }

    /// Whether `presented` is this token, compared in constant time.
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        self.digest.ct_eq(&digest(presented)).into()
    }

    /// The digest a session is bound to, so that a session outlives no change of token.
    pub(crate) const fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    let Some(key) = Key::new(TOKEN_DIGEST_KEY) else {
        return [0; 32];
    };
    let mut mac = key.start();
    mac.update(token);
    mac.finalize()
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The delivery console over a store: counts per state and per event, lists filtered by
/// state, event and time (newest first, paged), each delivery with its headers, body and
/// attempts, and buttons to replay dead letters and purge what finished.
///
/// Serve it with `tower::ConsoleService` (axum: `Router::nest_service("/console", …)`) or
/// `actix::console_scope`, on an admin listener, never beside the webhook route.
///
/// ```
/// use printone_webhooks::{console::{AdminToken, Console}, store::MemoryStore};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let console = Console::new(MemoryStore::new())
///     .with_token(AdminToken::new("a-long-random-admin-token-0123456789")?);
/// // Refuses to serve it on another machine's reach without a token; with one it is fine.
/// console.check_bind("0.0.0.0:9000".parse()?)?;
/// # Ok(()) }
/// ```
///
/// # Security
///
/// - **Who may look**: with a token ([`Console::with_token`]) every page asks for it, as a
///   bearer header or through the login form, whose session cookie is `HttpOnly`,
///   `SameSite=Strict`, scoped to the console's path, and signed with a key this console drew
///   at random when it was made (a restart logs everyone out). Without a token the console
///   answers only requests whose `Host` is a loopback address or `localhost` (a page on another
///   site that rebinds its name to 127.0.0.1 gets 403), and [`Console::check_bind`] refuses a
///   non-loopback listener.
/// - **What may change**: replay and purge are `POST` forms, each with a CSRF token: an HMAC,
///   under the console's random key, of the session (the cookie, the bearer token's use, or the
///   open console). A form without it, or with another, gets 403.
/// - **What is shown**: webhook bodies are untrusted input; every value on every page is
///   HTML-escaped, no script is served or allowed (`Content-Security-Policy: default-src
///   'none'` and the hash of the one inline style sheet), nothing is fetched from elsewhere,
///   and every answer says `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and
///   `Cache-Control: no-store`. No body is logged.
///
/// Cloning is cheap: clones share the settings and the key.
#[derive(Clone)]
pub struct Console {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) store: SharedStore,
    pub(crate) token: Option<AdminToken>,
    pub(crate) base: String,
    pub(crate) secure_cookie: bool,
    /// This console's random key: sessions and CSRF tokens are HMACs under it.
    pub(crate) key: [u8; 32],
}

impl Console {
    /// A console over `store`, mounted at `/console`, without a token (loopback only).
    ///
    /// # Panics
    ///
    /// When the operating system cannot give the random key the console signs its sessions
    /// and CSRF tokens with (`getrandom` failed), which a working system never does.
    pub fn new(store: impl Into<SharedStore>) -> Self {
        let mut key = [0; 32];
        getrandom::fill(&mut key).expect("the operating system's random number generator");
        Self {
            inner: Arc::new(Inner {
                store: store.into(),
                token: None,
                base: DEFAULT_BASE_PATH.to_owned(),
                secure_cookie: false,
                key,
            }),
        }
    }

    /// Asks for `token` on every page.
    #[must_use]
    pub fn with_token(mut self, token: AdminToken) -> Self {
        Arc::make_mut(&mut self.inner).token = Some(token);
        self
    }

    /// Sets the path the console is mounted at (default `/console`), which its links, forms,
    /// redirects and cookie use. Give the path as the browser sees it (behind a reverse proxy
    /// that adds a prefix, with the prefix).
    ///
    /// # Errors
    ///
    /// [`ConsoleConfigError::InvalidBasePath`] for a path that is not `/`, or that does not
    /// start with `/`, ends with `/`, or holds anything but letters, digits, `-`, `_`, `.` and
    /// `/` between segments.
    pub fn with_base_path(mut self, path: &str) -> Result<Self, ConsoleConfigError> {
        Arc::make_mut(&mut self.inner).base = checked_base(path)?;
        Ok(self)
    }

    /// Marks the session cookie `Secure`, so that the browser sends it over HTTPS only: turn it
    /// on when the console is reached through an HTTPS reverse proxy.
    #[must_use]
    pub fn with_secure_cookie(mut self, secure: bool) -> Self {
        Arc::make_mut(&mut self.inner).secure_cookie = secure;
        self
    }

    /// The path the console is mounted at (empty when it is mounted at `/`).
    #[must_use]
    pub fn base_path(&self) -> &str {
        &self.inner.base
    }

    /// Whether the console asks for a token.
    #[must_use]
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    /// Checks that the console may be served on a listener bound to `addr`: always with a
    /// token, and without one only on a loopback address.
    ///
    /// # Errors
    ///
    /// [`ConsoleConfigError::TokenRequired`] for a non-loopback address (`0.0.0.0` included)
    /// without a token.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), ConsoleConfigError> {
        if self.inner.token.is_none() && !addr.ip().is_loopback() {
            return Err(ConsoleConfigError::TokenRequired(addr));
        }
        Ok(())
    }
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("store", &self.inner.store)
            .field("token", &self.inner.token)
            .field("base", &self.inner.base)
            .field("secure_cookie", &self.inner.secure_cookie)
            .finish_non_exhaustive()
    }
}

/// `path` as a base path without its trailing `/` (`/` itself is the empty base).
fn checked_base(path: &str) -> Result<String, ConsoleConfigError> {
    if path == "/" {
        return Ok(String::new());
    }
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match path.strip_prefix('/') {
        Some(rest) if rest.split('/').all(plain) => Ok(path.to_owned()),
        _ => Err(ConsoleConfigError::InvalidBasePath(path.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn a_token_matches_itself_only() {
        let token = AdminToken::new("correct-horse-battery-staple").unwrap();
        assert!(token.matches(b"correct-horse-battery-staple"));
        assert!(!token.matches(b"correct-horse-battery-stapl"));
        assert!(!token.matches(b""));
        assert_eq!(
            AdminToken::new("short").unwrap_err(),
            ConsoleConfigError::TokenTooShort
        );
    }

    #[test]
    fn debug_shows_no_token() {
        let console = Console::new(MemoryStore::new())
            .with_token(AdminToken::new("correct-horse-battery-staple").unwrap());
        let printed = format!("{console:?}");
        assert!(printed.contains("<redacted>"), "{printed}");
        assert!(!printed.contains("correct-horse"), "{printed}");
    }

    #[test]
    fn a_console_without_a_token_is_refused_beyond_loopback() {
        let open = Console::new(MemoryStore::new());
        assert!(open.check_bind("127.0.0.1:9000".parse().unwrap()).is_ok());
        assert!(open.check_bind("[::1]:9000".parse().unwrap()).is_ok());
        for exposed in ["0.0.0.0:9000", "192.0.2.7:9000", "[::]:9000"] {
            let addr = exposed.parse().unwrap();
            assert_eq!(
                open.check_bind(addr),
                Err(ConsoleConfigError::TokenRequired(addr))
            );
        }
        let guarded = open.with_token(AdminToken::new("correct-horse-battery-staple").unwrap());
        assert!(guarded.check_bind("0.0.0.0:9000".parse().unwrap()).is_ok());
    }

    #[test]
    fn base_paths_are_plain_absolute_paths() {
        assert_eq!(checked_base("/").unwrap(), "");
        assert_eq!(checked_base("/admin/console").unwrap(), "/admin/console");
        for bad in [
            "",
            "console",
            "/console/",
            "/a//b",
            "/a/../b",
            "/a b",
            "/<x>",
        ] {
            assert!(checked_base(bad).is_err(), "{bad:?}");
        }
    }
}
