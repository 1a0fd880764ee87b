//! Webhook secrets, keyed once and never printed.

use std::fmt;

use crate::{core::error::ConfigError, core::mac};

/// A webhook signing secret, as shown in Print.one's dashboard.
///
/// The secret is used as its bytes exactly as given: no prefix is stripped, nothing is decoded
/// and nothing is trimmed. The HMAC key schedule is computed once here, so verifying a delivery
/// only clones the keyed state.
///
/// # Security
///
/// `Debug` prints a redacted marker, never the secret, and the crate never logs it. A secret
/// with leading or trailing whitespace is accepted (it is what it is), but a warning is logged
/// because a stray newline from an environment file is a common cause of signature mismatches.
#[derive(Clone)]
pub struct Secret {
    keyed: mac::Key,
}

impl Secret {
    /// Creates a secret from its UTF-8 text (or raw bytes).
    ///
    /// # Errors
    ///
    /// Returns [`ConfigError::EmptySecret`] when `value` is empty: an empty key would make
    /// every signature forgeable by anyone who knows the scheme.
    ///
    /// # Examples
    ///
    /// ```
    /// use printone_webhooks::Secret;
    ///
    /// let secret = Secret::new("my-webhook-secret")?;
    /// assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    /// assert!(Secret::new("").is_err());
    /// # Ok::<(), printone_webhooks::ConfigError>(())
    /// ```
    pub fn new(value: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let value = value.as_ref();
        if value.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        if has_surrounding_whitespace(value) {
            tracing::warn!(
                "webhook secret has leading or trailing whitespace; it is used as given"
            );
        }
        let keyed = mac::Key::new(value).ok_or(ConfigError::EmptySecret)?;
        Ok(Self { keyed })
    }

    /// A fresh MAC state keyed with this secret.
    pub(crate) fn mac(&self) -> mac::Mac {
        self.keyed.start()
    }

    /// The raw 32-byte MAC of `body` under this secret.
    pub(crate) fn mac_of(&self, body: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(body);
        mac.finalize()
    }
}

fn has_surrounding_whitespace(value: &[u8]) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_whitespace);
    edge(value.first()) || edge(value.last())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_empty_secret() {
        assert!(matches!(Secret::new(""), Err(ConfigError::EmptySecret)));
        assert!(matches!(
            Secret::new(Vec::<u8>::new()),
            Err(ConfigError::EmptySecret)
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::new("super-secret-value").unwrap();
        let printed = format!("{secret:?} {secret:#?}");
        assert!(!printed.contains("super"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn keeps_whitespace_as_part_of_the_secret() {
        let plain = Secret::new("abc").unwrap();
        let padded = Secret::new("abc\n").unwrap();
        assert_ne!(plain.mac_of(b"body"), padded.mac_of(b"body"));
    }

    #[test]
    fn detects_surrounding_whitespace() {
        assert!(has_surrounding_whitespace(b" abc"));
        assert!(has_surrounding_whitespace(b"abc\n"));
        assert!(!has_surrounding_whitespace(b"a b c"));
    }
}
