//! `deliveries`: list, show, replay and purge the deliveries in a receiver's store.

use std::{path::Path, time::SystemTime};

use printone_webhooks::store::{
    self, DeliveryId, DeliveryState, Filter, OpenOptions, SharedStore, StoreError, StoredDelivery,
};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{
    args::{DeliveriesArgs, DeliveriesCommand, ListDeliveriesArgs},
    json, runtime, Failure, Outcome,
};

pub(crate) fn run(args: &DeliveriesArgs) -> Result<Outcome, Failure> {
    runtime()?.block_on(async {
        let store = open(&args.store).await?;
        match &args.command {
            DeliveriesCommand::List(list_args) => list(&store, list_args).await,
            DeliveriesCommand::Show { id } => show(&store, id).await,
            DeliveriesCommand::Replay {
                ids,
                all_dead,
                event,
            } => replay(&store, ids, *all_dead, event.clone()).await,
            DeliveriesCommand::Purge { older_than } => {
                let before = SystemTime::now()
                    .checked_sub(*older_than)
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                let purged = store.purge(before).await.map_err(failed)?;
                println!("purged {purged}");
                Ok(Outcome::Success)
            }
        }
    })
}

/// Opens an existing store: a missing file is a mistake here, not a new empty store.
pub(crate) async fn open(url: &str) -> Result<SharedStore, Failure> {
    let url = url.trim();
    if url == "memory" {
        return Err(Failure::usage(
            "--store memory: the memory store lives inside a receiver's process; use sqlite:PATH",
        ));
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if !Path::new(path).exists() {
            return Err(Failure::usage(format!(
                "cannot open the store {url}: {path} does not exist (is PRINTONE_STORE the receiver's?)"
            )));
        }
    }
    // The error names the file or the server; a database URL may hold a password, so the URL
    // itself is not repeated.
    store::open(url, OpenOptions::default())
        .await
        .map_err(|error| Failure::usage(format!("cannot open the store: {error}")))
}

#[allow(clippy::needless_pass_by_value)] // used as `.map_err(failed)`
fn failed(error: StoreError) -> Failure {
    Failure {
        code: 3,
        message: format!("the store failed: {error}"),
    }
}

async fn list(store: &SharedStore, args: &ListDeliveriesArgs) -> Result<Outcome, Failure> {
    let filter = Filter {
        state: args.state.as_deref().and_then(DeliveryState::from_name),
        event: args.event.clone(),
        limit: args.limit,
        ..Filter::default()
    };
    for delivery in store.list(&filter).await.map_err(failed)? {
        println!("{}", line(&delivery));
    }
    Ok(Outcome::Success)
}

/// `ID STATE EVENT DATA_ID attempts=N received=TIME reason=…`, one delivery a line.
fn line(delivery: &StoredDelivery) -> String {
    format!(
        "{} {} {} {} attempts={} received={} reason={}",
        delivery.id.short(),
        delivery.state,
        printable(delivery.event_name()),
        printable(delivery.data_id.as_deref().unwrap_or("-")),
        delivery.attempts,
        timestamp(delivery.received_at),
        delivery
            .last_error
            .as_deref()
            .map_or_else(|| "-".to_owned(), |reason| format!("{reason:?}")),
    )
}

async fn show(store: &SharedStore, prefix: &str) -> Result<Outcome, Failure> {
    let id = resolve(store, prefix).await?;
    let Some(delivery) = store.get(&id).await.map_err(failed)? else {
        return Err(Failure::not_found(format!("no delivery {prefix}")));
    };
    print!("{}", details(&delivery));
    Ok(Outcome::Success)
}

/// The whole record of one delivery, as `show` prints it.
fn details(delivery: &StoredDelivery) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let optional = |time: Option<SystemTime>| time.map_or_else(|| "-".to_owned(), timestamp);
    let _ = writeln!(out, "id:          {}", delivery.id);
    let _ = writeln!(out, "state:       {}", delivery.state);
    let _ = writeln!(out, "event:       {}", delivery.event_name());
    let _ = writeln!(
        out,
        "data id:     {}",
        delivery.data_id.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "received:    {}", timestamp(delivery.received_at));
    let _ = writeln!(out, "attempts:    {}", delivery.attempts);
    let _ = writeln!(out, "next try:    {}", optional(delivery.next_attempt_at));
    let _ = writeln!(out, "finished:    {}", optional(delivery.finished_at));
    let _ = writeln!(
        out,
        "last reason: {}",
        delivery.last_error.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "headers:");
    let event = delivery.event_header.as_deref().unwrap_or("(none)");
    let _ = writeln!(out, "  x-printone-event: {event}");
    let _ = writeln!(
        out,
        "  signature under {} (secret #{})",
        delivery.signature_header.name(),
        delivery.secret_index
    );
    let _ = writeln!(out, "history:");
    if delivery.history.is_empty() {
        let _ = writeln!(out, "  (no attempt yet)");
    }
    for (n, attempt) in delivery.history.iter().enumerate() {
        let outcome = attempt
            .error
            .as_deref()
            .map_or_else(|| "handled".to_owned(), |error| format!("failed: {error}"));
        let _ = writeln!(
            out,
            "  #{} {} {} ms {outcome}",
            n + 1,
            timestamp(attempt.started_at),
            attempt.duration.as_millis()
        );
    }
    let _ = writeln!(out, "body:");
    match &delivery.body {
        None => {
            let _ = writeln!(out, "  (dropped once handled; only the id is kept)");
        }
        Some(body) => {
            let text =
                json::pretty(body).unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
            let _ = writeln!(out, "{text}");
        }
    }
    out
}

async fn replay(
    store: &SharedStore,
    prefixes: &[String],
    all_dead: bool,
    event: Option<String>,
) -> Result<Outcome, Failure> {
    if all_dead {
        let filter = Filter {
            event,
            ..Filter::default()
        };
        let replayed = store.replay_dead(&filter).await.map_err(failed)?;
        println!("replayed {replayed}");
        return Ok(Outcome::Success);
    }
    let mut ids = Vec::with_capacity(prefixes.len());
    for prefix in prefixes {
        ids.push(resolve(store, prefix).await?);
    }
    let replayed = store.replay(&ids).await.map_err(failed)?;
    println!("replayed {replayed}");
    if replayed < ids.len() as u64 {
        return Err(Failure::not_found(format!(
            "{} of the ids given are not dead letters",
            ids.len() as u64 - replayed
        )));
    }
    Ok(Outcome::Success)
}

/// The one id `prefix` names (a whole id, or at least 4 hex characters of one).
async fn resolve(store: &SharedStore, prefix: &str) -> Result<DeliveryId, Failure> {
    if let Ok(id) = prefix.parse::<DeliveryId>() {
        return Ok(id);
    }
    let hex = prefix.trim();
    if hex.len() < 4 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "{prefix:?} is not a delivery id (at least 4 hex characters, as `list` prints them)"
        )));
    }
    match store.resolve(hex).await.map_err(failed)?.as_slice() {
        [id] => Ok(*id),
        [] => Err(Failure::not_found(format!("no delivery {prefix}"))),
        _ => Err(Failure::not_found(format!(
            "{prefix} names more than one delivery; give more of the id"
        ))),
    }
}

fn timestamp(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "-".to_owned())
}

/// One word, whatever the value holds.
fn printable(text: &str) -> String {
    let word: String = text
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if word.is_empty() {
        "-".to_owned()
    } else {
        word
    }
}
