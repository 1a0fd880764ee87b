//! The command line, as clap reads it.

use std::{net::SocketAddr, path::PathBuf};

use clap::{ArgGroup, Args, Parser, Subcommand};

/// The exit codes, shown in `--help` and in the README's "Tools" section.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success: signed, valid signature, the receiver answered 2xx, or the listener stopped
  1  verification failed (verify), or the receiver answered with a non-2xx status (send)
  2  usage or configuration error: bad arguments, no secret, an unreadable file, a bad URL
  3  network error: no connection, no response in time, or the address cannot be bound";

const SIGN_HELP: &str = "\
Prints exactly the signature value, the base64 string and nothing else, on stdout (a newline \
follows only when stdout is a terminal). The value is what Print.one sends in the \
x-webhook-hmac-sha256 header: base64(HMAC-SHA256(secret, raw body)), standard alphabet with \
padding.";

const VERIFY_HELP: &str = "\
Checks a captured body against a signature, with the same code as the library. When they do \
not match it tries the usual mistakes and says which one explains the failure: hex instead of \
base64, URL-safe base64, missing padding, the old and new header names (x-printone-hmac-sha256, \
x-webhook-hmac-sha256) carrying different values or the signature under another header, a \
trailing newline or whitespace in the body or the secret, a pretty-printed or re-serialised \
body, a secret with a prefix such as whsec_, or a base64- or hex-decoded secret.";

const SEND_HELP: &str = "\
Posts a correctly signed delivery to URL, like a local Print.one: a realistic sample of a \
trigger (order_status_update, template_preview_rendered, batch_status_update, coupon_code_used, \
or any other name for an unknown trigger) or the body of a file. Prints the status the \
receiver answered and how long it took. Plain http:// only. Print.one gives up after 30 \
seconds, and so does send unless --timeout says otherwise.";

const LISTEN_HELP: &str = "\
A local verifying receiver, a drop-in for webhook inspection sites. Every request, on any path, \
is verified with the same code as the library and printed: method and path, headers, the \
verification result with its reason (and the likely cause of a failure), and the body as \
pretty JSON. Valid deliveries get 200; refused ones get the status the library's layer answers \
(401, 405, 408, 413), so failed verifications show up too. Stop it with Ctrl-C.";

/// `printone-webhooks`: sign, verify, send and receive Print.one webhooks.
#[derive(Debug, Parser)]
#[command(
    name = "printone-webhooks",
    version,
    about = "Sign, verify, send and receive Print.one webhooks",
    long_about = "Sign, verify, send and receive Print.one webhooks, with the same code as the \
                  printone-webhooks library. The secret comes from --secret or \
                  $PRINTONE_WEBHOOK_SECRET and is never printed.",
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The four commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the signature of a body (the base64 value only)
    #[command(long_about = SIGN_HELP, after_help = EXIT_CODES)]
    Sign(SignArgs),
    /// Check a captured body and signature, and explain a mismatch
    #[command(long_about = VERIFY_HELP, after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// Post a signed sample (or file) to a URL and show status and timing
    #[command(long_about = SEND_HELP, after_help = EXIT_CODES)]
    Send(SendArgs),
    /// Run a local verifying receiver that prints every delivery
    #[command(long_about = LISTEN_HELP, after_help = EXIT_CODES)]
    Listen(ListenArgs),
}

/// The webhook secret, shared by every command.
#[derive(Debug, Args)]
pub(crate) struct SecretArg {
    /// The webhook secret, used as its bytes exactly as given (nothing trimmed or decoded).
    /// Prefer the environment variable: arguments are visible to other users of the machine.
    #[arg(
        long,
        env = "PRINTONE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub(crate) secret: String,
}

/// `sign [BODY_FILE]`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub(crate) secret: SecretArg,
    /// The raw body, read as bytes; standard input when absent or `-`.
    #[arg(value_name = "BODY_FILE")]
    pub(crate) body: Option<PathBuf>,
}

/// `verify [BODY_FILE] --signature VALUE | --header 'NAME: VALUE'…`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("claim").required(true).multiple(true).args(["signature", "header"])))]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) secret: SecretArg,
    /// The captured raw body, read as bytes; standard input when absent or `-`.
    #[arg(value_name = "BODY_FILE")]
    pub(crate) body: Option<PathBuf>,
    /// The signature, as received in x-webhook-hmac-sha256.
    #[arg(long, short = 's', value_name = "VALUE")]
    pub(crate) signature: Option<String>,
    /// A captured request header, `NAME: VALUE` (repeat for each); every signature header
    /// (x-webhook-hmac-sha256 and the older x-printone-hmac-sha256) is checked.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) header: Vec<String>,
}

/// `send URL [--trigger NAME | --file BODY_FILE]`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) secret: SecretArg,
    #[arg(
        value_name = "URL",
        help = "Where to post, e.g. http://127.0.0.1:3000/webhooks/printone (plain http only)"
    )]
    pub(crate) url: String,
    /// The trigger whose sample to send; an unknown name sends a minimal envelope.
    #[arg(
        long,
        short = 't',
        value_name = "NAME",
        default_value = "order_status_update",
        conflicts_with = "file"
    )]
    pub(crate) trigger: String,
    /// Send the bytes of this file instead of a sample.
    #[arg(long, short = 'f', value_name = "BODY_FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Sign under the older header name x-printone-hmac-sha256 instead of
    /// x-webhook-hmac-sha256.
    #[arg(long)]
    pub(crate) legacy_header: bool,
    /// An extra request header, `NAME: VALUE` (repeat for each).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) header: Vec<String>,
    /// Seconds to wait for the whole response.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub(crate) timeout: u64,
}

/// `listen [--bind ADDRESS]`.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    pub(crate) secret: SecretArg,
    /// The address to listen on; port 0 picks a free port (the address is printed first).
    #[arg(
        long,
        short = 'b',
        value_name = "ADDRESS",
        default_value = "127.0.0.1:3000"
    )]
    pub(crate) bind: SocketAddr,
    /// The largest accepted body, in bytes (413 above it).
    #[arg(long, value_name = "BYTES", default_value_t = printone_webhooks::DEFAULT_MAX_BODY_BYTES)]
    pub(crate) max_body_bytes: usize,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn verify_needs_a_signature_or_a_header() {
        let missing = Cli::try_parse_from(["printone-webhooks", "verify", "--secret", "s", "b"]);
        assert!(missing.is_err());
        let given = Cli::try_parse_from(["p", "verify", "--secret", "s", "b", "--signature", "x"]);
        assert!(given.is_ok());
    }

    #[test]
    fn send_refuses_a_trigger_and_a_file_together() {
        let both = Cli::try_parse_from([
            "p",
            "send",
            "--secret",
            "s",
            "http://127.0.0.1:1/",
            "--trigger",
            "coupon_code_used",
            "--file",
            "body.json",
        ]);
        assert!(both.is_err());
    }
}
