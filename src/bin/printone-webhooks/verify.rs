//! `verify`: check a captured body and signature, and explain a mismatch.

use http::{HeaderMap, HeaderValue};
use printone_webhooks::{Verifier, SIGNATURE_HEADER};

use crate::{args::VerifyArgs, diagnose::diagnose, input, Failure, Outcome};

/// Verifies with the library's [`Verifier`]; on failure prints the refusal and its likely
/// causes on stdout.
pub(crate) fn run(args: &VerifyArgs) -> Result<Outcome, Failure> {
    let secret = input::secret(&args.secret)?;
    let body = input::read_body(args.body.as_deref())?;
    let headers = claimed_headers(args)?;
    match Verifier::new(secret).verify(&headers, &body) {
        Ok(_) => {
            println!("valid");
            Ok(Outcome::Success)
        }
        Err(error) => {
            println!("invalid ({}): {}", error.kind(), error.reason());
            for finding in diagnose(args.secret.secret.as_bytes(), &body, &headers) {
                println!("{finding}");
            }
            Ok(Outcome::Failed)
        }
    }
}

/// The `--header` lines, plus `--signature` as an `x-webhook-hmac-sha256` header.
fn claimed_headers(args: &VerifyArgs) -> Result<HeaderMap, Failure> {
    let mut headers = input::headers(&args.header)?;
    if let Some(signature) = &args.signature {
        let value = HeaderValue::from_str(signature).map_err(|_| {
            Failure::usage("the signature contains characters a header cannot carry")
        })?;
        headers.append(SIGNATURE_HEADER, value);
    }
    Ok(headers)
}
