//! `printone-webhooks`: sign, verify, send and receive Print.one webhooks from the command line.
//!
//! Every command runs the library's own code (`sign`, `Verifier`, `Signature`); see
//! `printone-webhooks --help` and the README's "Tools" section.

mod args;
mod client;
mod deliveries;
mod diagnose;
mod input;
mod json;
mod listen;
mod reconcile;
mod send;
mod sign;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// A command that could not do its job, with the exit code that says why.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// Exit code 2: bad arguments, no usable secret, an unreadable file, a bad URL.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Exit code 1, with a message: what was asked for is not there.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 3: no connection, no response in time, an address that cannot be bound.
    pub(crate) fn network(message: impl Into<String>) -> Self {
        Self {
            code: 3,
            message: message.into(),
        }
    }
}

/// What a command that ran to the end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit code 0.
    Success,
    /// Exit code 1: the signature did not verify, or the receiver refused the delivery.
    Failed,
}

/// A single-threaded tokio runtime for the commands that talk HTTP.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::network(format!("cannot start the async runtime: {error}")))
}

/// The command line, or the exit after an error (a value that starts with `-` given as a
/// separate word gets a message that says to write `--option=VALUE`).
fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|error| {
        if error.use_stderr() {
            let args: Vec<String> = std::env::args_os()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect();
            if let Some(hint) = args::hyphen_value_hint(&args) {
                let rendered = error.render().to_string();
                let usage = rendered.find("Usage:").map_or("", |at| &rendered[at..]);
                eprint!("{hint}\n{usage}");
                return ExitCode::from(2);
            }
        }
        let code = error.exit_code();
        let _ = error.print();
        ExitCode::from(u8::try_from(code).unwrap_or(2))
    })
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Sign(args) => sign::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Send(args) => send::run(&args),
        Command::Listen(args) => listen::run(&args),
        Command::Deliveries(args) => deliveries::run(&args),
        Command::Reconcile(args) => reconcile::run(&args),
        Command::Secret(args) => reconcile::secret(&args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(failure) => {
            eprintln!("printone-webhooks: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
