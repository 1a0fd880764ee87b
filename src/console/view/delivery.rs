//! One delivery: what it is, its headers, its body pretty-printed, every attempt, and the
//! replay button of a dead letter.

use maud::{html, Markup};

use crate::{
    console::view::{
        layout::{csrf_field, duration, maybe_time, notice, shell, state as state_badge, time},
        Chrome, Notice,
    },
    store::{DeliveryState, StoredDelivery},
    EVENT_HEADER,
};

pub(crate) fn delivery(
    chrome: &Chrome<'_>,
    delivery: &StoredDelivery,
    done: Option<Notice>,
) -> Markup {
    let content = html! {
        h1 { "Delivery " span.mono { (delivery.id.short()) } }
        (notice(done))
        @if delivery.state == DeliveryState::Dead {
            form.actions method="post" action={ (chrome.base) "/deliveries/" (delivery.id) "/replay" } {
                (csrf_field(chrome))
                button type="submit" { "Replay this dead letter" }
                span.muted { "It becomes pending again with its attempts reset." }
            }
        }
        dl {
            dt { "State" } dd { (state_badge(delivery.state)) }
            dt { "Event" } dd { (delivery.event.as_deref().unwrap_or("-")) }
            dt { "Data id" } dd.mono { (delivery.data_id.as_deref().unwrap_or("-")) }
            dt { "Received" } dd { (time(delivery.received_at)) }
            dt { "Attempts" } dd { (delivery.attempts) }
            @if delivery.state == DeliveryState::Pending {
                dt { "Next attempt" } dd { (maybe_time(delivery.next_attempt_at)) }
            }
            dt { "Finished" } dd { (maybe_time(delivery.finished_at)) }
            @if let Some(reason) = &delivery.last_error {
                dt { @if delivery.state == DeliveryState::Dead { "Reason" } @else { "Last error" } }
                dd.reason { (reason) }
            }
            dt { "Id" } dd.mono { (delivery.id) }
        }
        h2 { "Headers" }
        @if let Some(log) = &delivery.recovered_from {
            p {
                "Recovered from Print.one's webhook log, entry " span.mono { (log) }
                ": it never reached the receiver, so it carried no headers and no signature. \
                 The envelope came from the API over TLS; the id above is the digest of its \
                 event, data id and creation time."
            }
        } @else {
            dl {
                dt.mono { (EVENT_HEADER) } dd.mono { (delivery.event_header.as_deref().unwrap_or("(not sent)")) }
                dt.mono { (delivery.signature_header.name()) }
                dd { "carried the signature, verified with secret #" (delivery.secret_index + 1)
                     "; the signature is the id above" }
            }
        }
        h2 { "Body" }
        @match &delivery.body {
            Some(body) => {
                p.muted { (body.len()) " bytes" @if !is_json(body) { ", not JSON: shown as received" } }
                pre { (shown(body)) }
            }
            None => p.muted { "Not kept: a handled delivery keeps only its id and times." },
        }
        h2 { "Attempts" }
        @if delivery.history.is_empty() {
            p.muted { "None yet." }
        } @else {
            table.cards-small {
                thead { tr { th.num { "#" } th { "Started" } th.num { "Took" } th { "Result" } } }
                tbody {
                    @for (n, attempt) in delivery.history.iter().enumerate() {
                        tr {
                            td.num data-label="#" { (n + 1) }
                            td data-label="Started" { (time(attempt.started_at)) }
                            td.num data-label="Took" { (duration(attempt.duration)) }
                            @match &attempt.error {
                                Some(error) => td.reason data-label="Result" { (error) },
                                None => td.state-done data-label="Result" { "handled" },
                            }
                        }
                    }
                }
            }
        }
    };
    shell(
        &format!("Delivery {}", delivery.id.short()),
        Some(chrome),
        &content,
    )
}

fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// The body as text: JSON indented (its members in the order sent, its values untouched),
/// anything else as received (invalid UTF-8 replaced).
fn shown(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if is_json(body) {
        indent(&text)
    } else {
        text.into_owned()
    }
}

/// Valid JSON `json` with two spaces per level: only whitespace between tokens changes.
fn indent(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|next| matches!(next, '}' | ']')) {
                    continue;
                }
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                if !out.ends_with(['{', '[']) {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_indented_in_the_order_sent() {
        let body = br#"{"z":1,"a":{"list":[1, 2,{}],"empty":[]},"s":"a, {b}: \"c\""}"#;
        let expected = "{\n  \"z\": 1,\n  \"a\": {\n    \"list\": [\n      1,\n      2,\n      {}\n    ],\n    \"empty\": []\n  },\n  \"s\": \"a, {b}: \\\"c\\\"\"\n}";
        assert_eq!(shown(body), expected);
    }

    #[test]
    fn a_body_that_is_not_json_is_shown_as_received() {
        assert_eq!(shown(b"not {json"), "not {json");
        assert_eq!(shown(b"bad \xff byte"), "bad \u{fffd} byte");
    }

    fn page_of(recovered_from: Option<&str>) -> String {
        let body = br#"{"data":{"id":"ord_1"},"event":"order_status_update","createdAt":"2024-06-03T13:14:46.501Z"}"#;
        let mut stored = crate::store::StoredDelivery::accepted(&crate::core::delivery::verified(
            body,
            &http::HeaderMap::new(),
        ));
        stored.recovered_from = recovered_from.map(str::to_owned);
        let chrome = Chrome {
            base: "/console",
            csrf: "token".into(),
            session: false,
            store: "memory".into(),
        };
        delivery(&chrome, &stored, None).into_string()
    }

    #[test]
    fn a_recovered_delivery_names_its_log_entry_instead_of_headers() {
        let page = page_of(Some("log_<8Hk2>"));
        assert!(page.contains("Recovered from Print.one"), "{page}");
        assert!(page.contains("log_&lt;8Hk2&gt;"), "escaped: {page}");
        assert!(!page.contains("carried the signature"), "{page}");
        let signed = page_of(None);
        assert!(signed.contains("carried the signature"), "{signed}");
        assert!(!signed.contains("Recovered from"), "{signed}");
    }
}
