//! A list of deliveries: the filter form, the rows (newest first), the next page, and the
//! button that replays every dead letter of the filter.

use maud::{html, Markup};

use crate::{
    console::{
        form::{input_time, ListQuery},
        view::{
            layout::{csrf_field, notice, shell, state as state_badge, time},
            Chrome, Notice,
        },
    },
    store::{DeliveryState, StoredDelivery},
};

pub(crate) fn list(
    chrome: &Chrome<'_>,
    query: &ListQuery,
    deliveries: &[StoredDelivery],
    next: Option<&str>,
    done: Option<Notice>,
) -> Markup {
    let title = match query.state {
        Some(DeliveryState::Dead) => "Dead letters",
        _ => "Deliveries",
    };
    let content = html! {
        h1 { (title) }
        (notice(done))
        (filter_form(chrome, query))
        @if query.state.is_none_or(|state| state == DeliveryState::Dead) {
            (replay_form(chrome, query))
        }
        @if deliveries.is_empty() {
            p.muted { "No delivery matches." }
        } @else {
            table.cards-small {
                thead { tr {
                    th { "Received" } th { "State" } th { "Event" } th { "Data id" }
                    th.num { "Attempts" } th { "Last error" }
                } }
                tbody { @for delivery in deliveries { (row(chrome, delivery)) } }
            }
        }
        div.pager {
            @if query.cursor.is_some() {
                a href={ (chrome.base) "/deliveries?" (crate::console::form::encode(&query.pairs())) } { "← Newest" }
            }
            @if let Some(next) = next {
                a href=(next) rel="next" { "Older →" }
            }
        }
    };
    shell(title, Some(chrome), &content)
}

fn filter_form(chrome: &Chrome<'_>, query: &ListQuery) -> Markup {
    html! {
        form.filter method="get" action={ (chrome.base) "/deliveries" } {
            label { "State"
                select name="state" {
                    option value="any" { "any" }
                    @for state in DeliveryState::ALL {
                        option value=(state.as_str()) selected[query.state == Some(state)] { (state.as_str()) }
                    }
                }
            }
            label { "Event"
                input type="text" name="event" value=[query.event.as_deref()]
                    placeholder="order_status_update" maxlength="200";
            }
            label { "Received since (UTC)"
                input type="datetime-local" name="since" step="1" value=[query.since.map(input_time)];
            }
            label { "Received before (UTC)"
                input type="datetime-local" name="before" step="1" value=[query.before.map(input_time)];
            }
            button type="submit" { "Filter" }
            a href={ (chrome.base) "/deliveries" } { "Clear" }
        }
    }
}

/// Replays every dead letter of the filter (its state and page aside), then comes back here.
fn replay_form(chrome: &Chrome<'_>, query: &ListQuery) -> Markup {
    html! {
        form.actions method="post" action={ (chrome.base) "/replay-dead" } {
            (csrf_field(chrome))
            @for (name, value) in query.pairs() {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { "Replay every dead letter of this filter" }
        }
    }
}

fn row(chrome: &Chrome<'_>, delivery: &StoredDelivery) -> Markup {
    html! {
        tr {
            td data-label="Received" {
                a href={ (chrome.base) "/deliveries/" (delivery.id) } { (time(delivery.received_at)) }
            }
            td data-label="State" { (state_badge(delivery.state)) }
            td data-label="Event" { (delivery.event_name()) }
            td.mono data-label="Data id" { (delivery.data_id.as_deref().unwrap_or("-")) }
            td.num data-label="Attempts" { (delivery.attempts) }
            td.reason data-label="Last error" { (delivery.last_error.as_deref().unwrap_or("")) }
        }
    }
}
