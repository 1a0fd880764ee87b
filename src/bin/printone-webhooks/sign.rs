//! `sign`: print the signature of a body, and nothing else.

use std::io::{IsTerminal, Write};

use crate::{args::SignArgs, input, Failure, Outcome};

/// Reads the body and prints its base64 signature.
pub(crate) fn run(args: &SignArgs) -> Result<Outcome, Failure> {
    let secret = input::secret(&args.secret)?;
    let body = input::read_body(args.body.as_deref())?;
    let signature = printone_webhooks::sign(&secret, &body);
    let mut stdout = std::io::stdout().lock();
    let newline = if stdout.is_terminal() { "\n" } else { "" };
    write!(stdout, "{signature}{newline}")
        .and_then(|()| stdout.flush())
        .map_err(|error| Failure::usage(format!("cannot write to standard output: {error}")))?;
    Ok(Outcome::Success)
}
