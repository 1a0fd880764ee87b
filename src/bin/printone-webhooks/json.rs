//! Reformatting JSON text without re-serialising it: key order, numbers and escapes stay as
//! sent, only the whitespace between tokens changes.

/// Whether `body` is one well-formed JSON value.
pub(crate) fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// `body` without whitespace between tokens (strings are left alone), or `None` when `body`
/// is not JSON.
pub(crate) fn minify(body: &[u8]) -> Option<Vec<u8>> {
    if !is_json(body) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut scanner = Scanner::default();
    for &byte in body {
        if scanner.in_string(byte) || !byte.is_ascii_whitespace() {
            out.push(byte);
        }
    }
    Some(out)
}

/// `body` indented by two spaces per level, or `None` when `body` is not UTF-8 JSON.
pub(crate) fn pretty(body: &[u8]) -> Option<String> {
    let compact = String::from_utf8(minify(body)?).ok()?;
    let mut out = String::with_capacity(compact.len() * 2);
    let mut scanner = Scanner::default();
    let mut depth = 0usize;
    let mut chars = compact.chars().peekable();
    while let Some(c) = chars.next() {
        let in_string = match u8::try_from(c) {
            Ok(byte) => scanner.in_string(byte),
            Err(_) => true, // only strings hold non-ASCII text
        };
        if in_string {
            out.push(c);
            continue;
        }
        match c {
            '{' | '[' if matches!(chars.peek(), Some('}' | ']')) => out.push(c),
            '{' | '[' => {
                depth += 1;
                out.push(c);
                newline(&mut out, depth);
            }
            '}' | ']' if out.ends_with(['{', '[']) => out.push(c),
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    Some(out)
}

/// `body` written the way Print.one (JavaScript's `JSON.stringify`) writes it: compact, key
/// order kept, every string re-encoded with the fewest escapes (non-ASCII text unescaped), or
/// `None` when `body` is not JSON.
pub(crate) fn restringify(body: &[u8]) -> Option<Vec<u8>> {
    let compact = minify(body)?;
    let mut out = Vec::with_capacity(compact.len());
    let mut scanner = Scanner::default();
    let mut string = Vec::new();
    for byte in compact {
        if !scanner.in_string(byte) {
            out.push(byte);
            continue;
        }
        string.push(byte);
        if !scanner.inside {
            out.extend(reencode(&string)?);
            string.clear();
        }
    }
    Some(out)
}

/// One string literal, decoded and encoded again by `serde_json`.
fn reencode(literal: &[u8]) -> Option<Vec<u8>> {
    let text: String = serde_json::from_slice(literal).ok()?;
    serde_json::to_vec(&text).ok()
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n("  ", depth));
}

/// Tracks whether the bytes seen so far leave us inside a string literal.
#[derive(Default)]
struct Scanner {
    inside: bool,
    escaped: bool,
}

impl Scanner {
    /// Feeds `byte`; true when it belongs to a string literal (its quotes included).
    fn in_string(&mut self, byte: u8) -> bool {
        if self.inside {
            match (self.escaped, byte) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.inside = false,
                _ => {}
            }
            return true;
        }
        self.inside = byte == b'"';
        self.inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRETTY: &str = "{\n  \"data\": {\n    \"id\": \"ord 1\",\n    \"errors\": [],\n    \"note\": \"a \\\" , b\"\n  },\n  \"event\": \"order_status_update\"\n}";
    const COMPACT: &str =
        r#"{"data":{"id":"ord 1","errors":[],"note":"a \" , b"},"event":"order_status_update"}"#;

    #[test]
    fn minify_keeps_key_order_and_string_contents() {
        assert_eq!(minify(PRETTY.as_bytes()).unwrap(), COMPACT.as_bytes());
    }

    #[test]
    fn pretty_is_the_inverse_of_minify() {
        assert_eq!(pretty(COMPACT.as_bytes()).unwrap(), PRETTY);
    }

    #[test]
    fn pretty_keeps_non_ascii_text() {
        assert_eq!(
            pretty("{\"city\":\"Zürich\"}".as_bytes()).unwrap(),
            "{\n  \"city\": \"Zürich\"\n}"
        );
    }

    #[test]
    fn restringify_unescapes_non_ascii_text_and_keeps_order() {
        let python = br#"{"z": "Z\u00fcrich", "a": "tab\tquote\" \/"}"#;
        let expected = "{\"z\":\"Zürich\",\"a\":\"tab\\tquote\\\" /\"}";
        assert_eq!(
            String::from_utf8(restringify(python).unwrap()).unwrap(),
            expected
        );
    }

    #[test]
    fn refuses_what_is_not_json() {
        assert!(minify(b"not json").is_none());
        assert!(pretty(b"{\"a\":").is_none());
    }
}
