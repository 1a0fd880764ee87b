//! Reading bodies, secrets and `NAME: VALUE` headers from the command line.

use std::{io::Read, path::Path};

use http::{HeaderMap, HeaderName, HeaderValue};
use printone_webhooks::Secret;

use crate::{args::SecretArg, Failure};

/// The raw bytes of `path`, or of standard input when it is absent or `-`.
pub(crate) fn read_body(path: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match path {
        Some(path) if path != Path::new("-") => read_file(path),
        _ => read_stdin(),
    }
}

/// The raw bytes of a file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|error| Failure::usage(format!("cannot read {}: {error}", path.display())))
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|error| Failure::usage(format!("cannot read standard input: {error}")))?;
    Ok(body)
}

/// The configured secret, refused when empty.
pub(crate) fn secret(arg: &SecretArg) -> Result<Secret, Failure> {
    Secret::new(&arg.secret).map_err(|error| {
        Failure::usage(format!(
            "{error}: pass --secret or set PRINTONE_WEBHOOK_SECRET"
        ))
    })
}

/// Parses `NAME: VALUE` lines into a header map, keeping repeats.
pub(crate) fn headers(lines: &[String]) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = header(line)?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Parses one `NAME: VALUE` line; the value keeps everything after the first colon except
/// the spaces right after it (surrounding spaces are the verifier's business).
pub(crate) fn header(line: &str) -> Result<(HeaderName, HeaderValue), Failure> {
    let bad = || Failure::usage(format!("not a header line (NAME: VALUE): {line:?}"));
    let (name, value) = line.split_once(':').ok_or_else(bad)?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value.trim_start_matches(' ')).map_err(|_| bad())?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_header_line_and_keeps_repeats() {
        let lines = [
            "X-Webhook-HMAC-SHA256: abc=".to_owned(),
            "x-webhook-hmac-sha256:def=".to_owned(),
        ];
        let map = headers(&lines).unwrap();
        let values: Vec<_> = map.get_all("x-webhook-hmac-sha256").iter().collect();
        assert_eq!(values, ["abc=", "def="]);
    }

    #[test]
    fn keeps_a_tab_after_the_colon_for_the_verifier_to_trim() {
        let (_, value) = header("x-printone-hmac-sha256:\tabc").unwrap();
        assert_eq!(value, "\tabc");
    }

    #[test]
    fn refuses_a_line_without_a_colon() {
        assert_eq!(header("x-webhook-hmac-sha256 abc").unwrap_err().code, 2);
    }

    #[test]
    fn refuses_an_empty_secret_as_a_usage_error() {
        let arg = SecretArg {
            secret: String::new(),
        };
        assert_eq!(secret(&arg).unwrap_err().code, 2);
    }
}
