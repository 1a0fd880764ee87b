//! The overview: how many deliveries are in each state, per event, and the purge form.

use maud::{html, Markup};

use crate::{
    console::{
        form,
        view::{
            layout::{csrf_field, notice, shell},
            Chrome, Notice,
        },
    },
    store::{Counts, DeliveryState, EventCounts},
};

/// The ages the purge form offers, as `form::parse_age` reads them.
const AGES: [(&str, &str); 5] = [
    ("1h", "1 hour"),
    ("1d", "1 day"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
];

pub(crate) fn overview(
    chrome: &Chrome<'_>,
    counts: &Counts,
    events: &[EventCounts],
    done: Option<Notice>,
) -> Markup {
    let content = html! {
        h1 { "Overview" }
        (notice(done))
        div.cards {
            @for state in DeliveryState::ALL {
                @let count = counts.of(state);
                a.card.alert[state == DeliveryState::Dead && count > 0]
                    href={ (chrome.base) "/deliveries?state=" (state.as_str()) } {
                    b { (count) }
                    (state.as_str())
                }
            }
        }
        h2 { "Per event" }
        @if events.is_empty() {
            p.muted { "No deliveries are stored yet." }
        } @else {
            table.cards-small {
                thead { tr {
                    th { "Event" }
                    @for state in DeliveryState::ALL { th.num { (state.as_str()) } }
                } }
                tbody {
                    @for event in events { (event_row(chrome, event)) }
                }
            }
        }
        h2 { "Purge" }
        form.actions method="post" action={ (chrome.base) "/purge" } {
            (csrf_field(chrome))
            label {
                "Remove handled deliveries and dead letters that finished more than"
                select name="older_than" {
                    @for (value, text) in AGES {
                        option value=(value) selected[value == "30d"] { (text) " ago" }
                    }
                }
            }
            button.danger type="submit" { "Purge" }
        }
        p.muted { "Waiting and running deliveries are never purged. A purged delivery's id is forgotten: a re-delivery of it would be handled again." }
    };
    shell("Overview", Some(chrome), &content)
}

fn event_row(chrome: &Chrome<'_>, event: &EventCounts) -> Markup {
    let link = |state: Option<DeliveryState>| {
        let mut pairs = vec![("event", event.event.clone())];
        if let Some(state) = state {
            pairs.push(("state", state.as_str().to_owned()));
        }
        format!("{}/deliveries?{}", chrome.base, form::encode(&pairs))
    };
    html! {
        tr {
            td data-label="Event" { a href=(link(None)) { (event.event) } }
            @for state in DeliveryState::ALL {
                @let count = event.counts.of(state);
                td.num data-label=(state.as_str()) {
                    @if count > 0 {
                        a class={ "state-" (state.as_str()) } href=(link(Some(state))) { (count) }
                    } @else {
                        span.muted { "0" }
                    }
                }
            }
        }
    }
}
