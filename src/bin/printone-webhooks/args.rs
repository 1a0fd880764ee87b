//! The command line, as clap reads it.

use std::{net::SocketAddr, path::PathBuf};

use clap::{ArgGroup, Args, CommandFactory, Parser, Subcommand};
use printone_webhooks::reconcile::parse_duration;

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
receiver answered and how long it took, also when it answered before the whole body was sent \
(a 413). Plain http:// only. Print.one gives up after 30 seconds, and so does send unless \
--timeout says otherwise.

For negative tests, what is sent is exactly what was asked for: --signature sends a given value \
instead of the computed signature, --tamper changes the body after signing, and a signature \
header given with -H is sent as given (a warning says that it overrides the computed one). A \
value that starts with '-' is written with '=': --signature=-VALUE.";

const LISTEN_HELP: &str = "\
A local verifying receiver, a drop-in for webhook inspection sites. Every request, on any path, \
is verified with the same code as the library and printed: method and path, headers, the \
verification result with its reason (and the likely cause of a failure), and the body as \
pretty JSON. Valid deliveries get 200; refused ones get the status the library's layer answers \
(401, 405, 408, 413), so failed verifications show up too. Stop it with Ctrl-C.

With --forward-to URL, like `stripe listen --forward-to`, each request whose body was read, valid \
or not, is then forwarded to your app at URL with its original headers and exact body bytes \
(only hop-by-hop headers are dropped and Host names the app), the app's status and time are \
printed, and the app's answer is what the sender gets: 502 when the app cannot be reached, 504 \
when it does not answer within --forward-timeout. With a tunnel (ngrok and the like) in front \
of listen, real Print.one deliveries reach an app on your machine.";

const DELIVERIES_HELP: &str = "\
Manages the deliveries a receiver stored (--store, or $PRINTONE_STORE; the same URL as the \
example receivers' PRINTONE_STORE, default sqlite:printone-webhooks.db). Works while a \
receiver runs on the same file: a replayed dead letter is picked up by the running worker.";

/// The exit codes of `deliveries`.
pub(crate) const DELIVERIES_EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  no delivery has that id (or the prefix is ambiguous), or an id to replay is no dead letter
  2  usage or configuration error, or the store cannot be opened (the message names the path \
and the cause)
  3  the store failed while reading or writing";

const RECONCILE_HELP: &str = "\
Reads the webhook logs Print.one keeps behind its API (GET /v2/webhooks/{id}/logs) and compares \
them with the store: an event the store does not hold (sent while the receiver was down, \
refused with 503, timed out) is stored as a delivery recovered from the log, and the receiver's \
worker handles it like any other. An event Print.one logged as delivered (a 2xx) that the store \
does not hold is reported as a lost 200, with its log id. Events are matched by their event, \
data id and creation time.

Each webhook's log is read newest first back to where the last run stopped (a checkpoint kept \
in the store, less an hour of overlap), the first time a day back, and never further back than \
the store's de-duplication window or the time the store began keying deliveries. One reconciler \
of a store runs at a time; this one waits up to a minute for another to finish. The last line \
is `reconciled webhooks=<n> logged=<n> held=<n> recovered=<n> lost_200=<n>`.";

/// The exit codes of `reconcile`.
pub(crate) const RECONCILE_EXIT_CODES: &str = "\
Exit codes:
  0  nothing was lost (what was missing was recovered)
  1  Print.one logged a delivery as answered 2xx that the store does not hold (a lost 200)
  2  usage or configuration error: no API key or a refused one, an unknown webhook, a store \
that cannot be opened or failed, a full backlog, another reconciler that does not finish
  3  the Print.one API could not be reached (no connection, timeouts, 5xx or 429 after retries)";

const SECRET_HELP: &str = "\
Fetches the account's webhook secret (POST /v2/webhooks/secret) with the API key and prints it \
on stdout, for PRINTONE_WEBHOOK_SECRET: nobody copies it from the dashboard by hand.";

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

/// The commands.
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
    /// List, inspect, replay and purge the deliveries in a receiver's store
    #[command(long_about = DELIVERIES_HELP, after_help = DELIVERIES_EXIT_CODES)]
    Deliveries(DeliveriesArgs),
    /// Recover what never arrived from Print.one's webhook logs, and report lost 200s
    #[command(long_about = RECONCILE_HELP, after_help = RECONCILE_EXIT_CODES)]
    Reconcile(ReconcileArgs),
    /// Print the account's webhook secret, fetched with the API key
    #[command(long_about = SECRET_HELP, after_help = RECONCILE_EXIT_CODES)]
    Secret(ApiArgs),
}

/// How to reach Print.one's API.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// The account's API key. Prefer the environment variable: arguments are visible to other
    /// users of the machine.
    #[arg(
        long,
        env = "PRINTONE_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) api_key: Option<String>,
    /// The API's base URL (its paths are under v2/).
    #[arg(
        long,
        env = "PRINTONE_API_URL",
        value_name = "URL",
        default_value = "https://api.print.one/"
    )]
    pub(crate) api_url: String,
    /// The longest one API request may take (retried after it): `30s`, `2m`.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub(crate) timeout: std::time::Duration,
}

/// `reconcile --store URL [--webhook ID]… [--since DURATION] [--dry-run]`.
#[derive(Debug, Args)]
pub(crate) struct ReconcileArgs {
    /// The receiver's store: `sqlite:PATH` or `postgres://…`.
    #[arg(
        long,
        env = "PRINTONE_STORE",
        value_name = "URL",
        default_value = "sqlite:printone-webhooks.db"
    )]
    pub(crate) store: String,
    /// Only this webhook (repeat for more); every webhook of the account by default.
    #[arg(long, value_name = "ID")]
    pub(crate) webhook: Vec<String>,
    /// Read the logs this far back instead of from the checkpoints: `90m`, `12h`, `2d`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) since: Option<std::time::Duration>,
    /// Report only: store nothing, move no checkpoint.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

/// `deliveries [--store URL] <list|show|replay|purge>`.
#[derive(Debug, Args)]
pub(crate) struct DeliveriesArgs {
    /// The store: `sqlite:PATH` (the file a receiver uses; it must exist).
    #[arg(
        long,
        env = "PRINTONE_STORE",
        value_name = "URL",
        default_value = "sqlite:printone-webhooks.db",
        global = true
    )]
    pub(crate) store: String,
    #[command(subcommand)]
    pub(crate) command: DeliveriesCommand,
}

/// What to do with the stored deliveries.
#[derive(Debug, Subcommand)]
pub(crate) enum DeliveriesCommand {
    /// One line per delivery, newest first: id, state, event, data id, attempts, received, last reason
    List(ListDeliveriesArgs),
    /// One delivery: its headers, its body pretty-printed and every attempt
    Show {
        /// The delivery id, or a prefix of it (at least 4 hex characters).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Make dead letters pending again, attempts reset (a running receiver picks them up)
    #[command(group(ArgGroup::new("which").required(true).args(["ids", "all_dead"])))]
    Replay {
        /// Dead letters to replay, by id or id prefix.
        #[arg(value_name = "ID")]
        ids: Vec<String>,
        /// Replay every dead letter (of `--event`, when given).
        #[arg(long)]
        all_dead: bool,
        /// With `--all-dead`: only the dead letters of this event.
        #[arg(long, value_name = "NAME", requires = "all_dead")]
        event: Option<String>,
    },
    /// Remove handled deliveries and dead letters that finished before a time (a purged
    /// delivery that Print.one sends again is then handled again)
    Purge {
        /// How old a finished delivery must be to go: `90s`, `30m`, `12h`, `7d`, `1d12h`.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: std::time::Duration,
    },
}

/// `deliveries list [--state STATE] [--event NAME] [--limit N]`.
#[derive(Debug, Args)]
pub(crate) struct ListDeliveriesArgs {
    /// Only deliveries in this state.
    #[arg(long, value_name = "STATE", value_parser = ["pending", "leased", "dead", "done"])]
    pub(crate) state: Option<String>,
    /// Only deliveries of this event.
    #[arg(long, value_name = "NAME")]
    pub(crate) event: Option<String>,
    /// At most this many lines.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub(crate) limit: usize,
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
    /// The signature, as received in x-webhook-hmac-sha256 (a value that starts with '-' is
    /// written --signature=VALUE).
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
    /// Send this value as the signature instead of the computed one (a value that starts with
    /// '-' is written --signature=VALUE).
    #[arg(long, value_name = "VALUE")]
    pub(crate) signature: Option<String>,
    /// Change the body after signing (its first byte), so that the signature no longer
    /// matches.
    #[arg(long)]
    pub(crate) tamper: bool,
    /// A request header, `NAME: VALUE` (repeat for each), sent as given in place of any built
    /// header of that name; a signature header given here replaces the computed signature.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) header: Vec<String>,
    /// Seconds to wait for the whole response.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub(crate) timeout: u64,
}

/// `listen [--bind ADDRESS] [--forward-to URL]`.
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
    /// Forward every request whose body was read to this plain http:// URL (your app), with
    /// its original headers and body, and answer with the app's status.
    #[arg(long, value_name = "URL")]
    pub(crate) forward_to: Option<String>,
    /// Seconds to wait for the app's whole answer before answering 504.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        requires = "forward_to"
    )]
    pub(crate) forward_timeout: u64,
}

/// When a value that starts with `-` was given to an option as a separate word, clap reads it
/// as a flag and suggests `-- VALUE`, which is wrong for an option. Returns the message that
/// says how to write it instead: `--option=VALUE`.
pub(crate) fn hyphen_value_hint(args: &[String]) -> Option<String> {
    let root = Cli::command();
    let mut command = &root;
    let mut options: Vec<&clap::Arg> = command.get_arguments().collect();
    let names = |arg: &clap::Arg| {
        let long = arg.get_long().map(|long| format!("--{long}"));
        let short = arg.get_short().map(|short| format!("-{short}"));
        long.into_iter().chain(short).collect::<Vec<_>>()
    };
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if let Some(sub) = command.find_subcommand(word) {
            command = sub;
            options.extend(command.get_arguments());
            continue;
        }
        let Some(option) = options.iter().find(|arg| names(arg).contains(word)) else {
            continue;
        };
        if !option.get_action().takes_values() {
            continue;
        }
        let value = words.next()?;
        let is_an_option = options.iter().any(|arg| names(arg).contains(value));
        if value.starts_with('-') && value != "-" && !is_an_option {
            let name = names(option).into_iter().next().unwrap_or_default();
            // A secret is not repeated on the screen.
            let (what, shown) = if option.is_hide_env_values_set() {
                ("its value".to_owned(), "VALUE")
            } else {
                (format!("{value:?}"), value.as_str())
            };
            return Some(format!(
                "error: {what} was read as an option, not as the value of {name}\n\n  tip: a \
                 value that starts with '-' is written with '=': {name}={shown}\n"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn a_hyphen_value_after_an_option_gets_the_equals_form() {
        let hint = hyphen_value_hint(&words("p send http://h/ --signature -abc=")).unwrap();
        assert!(hint.contains("--signature=-abc="), "{hint}");
        let short = hyphen_value_hint(&words("p verify b -s -abc= --secret x")).unwrap();
        assert!(short.contains("--signature=-abc="), "{short}");
        let header = hyphen_value_hint(&words("p send u -H -x")).unwrap();
        assert!(header.contains("--header=-x"), "{header}");
    }

    #[test]
    fn the_hint_for_a_secret_does_not_repeat_it() {
        let hint = hyphen_value_hint(&words("p sign --secret -hunter2")).unwrap();
        assert!(hint.contains("--secret=VALUE"), "{hint}");
        assert!(!hint.contains("hunter2"), "{hint}");
    }

    #[test]
    fn no_hint_for_stdin_a_following_option_or_the_equals_form() {
        for line in [
            "p send u --file -",
            "p send u --signature --tamper",
            "p send u --signature=-abc",
            "p send u --tamper -x",
            "p verify -- --signature -abc",
        ] {
            assert_eq!(hyphen_value_hint(&words(line)), None, "{line}");
        }
    }

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
    fn durations_are_sums_of_units() {
        let secs = |text| parse_duration(text).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("1d12h"), Ok(129_600));
        assert_eq!(secs("7d"), Ok(604_800));
        assert!(secs("7").is_err() && secs("d").is_err() && secs("").is_err());
        assert!(secs("3y").is_err());
    }

    #[test]
    fn replay_needs_ids_or_all_dead() {
        let none = Cli::try_parse_from(["p", "deliveries", "replay"]);
        assert!(none.is_err());
        let all = Cli::try_parse_from(["p", "deliveries", "replay", "--all-dead"]);
        assert!(all.is_ok());
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
