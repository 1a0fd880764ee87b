//! The frame of every page (head, navigation, footer), its one style sheet, and the small
//! pieces the pages share: times, durations, states, notices, hidden CSRF fields.

use std::time::{Duration, SystemTime};

use maud::{html, Markup, PreEscaped, DOCTYPE};
use time::OffsetDateTime;

use crate::{
    console::view::{Chrome, Notice},
    store::DeliveryState,
};

/// The console's only style sheet, inline (allowed by its hash in the CSP): readable on a
/// phone (tables turn into cards below 40em), light or dark as the system is.
pub(crate) const STYLE: &str = r#"
:root{color-scheme:light dark;--fg:#1d2125;--bg:#fff;--muted:#5f6b76;--line:#d8dde2;--card:#f5f7f9;--link:#0b5cad;--dead:#b3261e;--ok:#1e7b34;--warn:#8a5a00}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8ea;--bg:#15181b;--muted:#9aa5b1;--line:#33393f;--card:#1e2226;--link:#7db7ff;--dead:#ff8a80;--ok:#7fd18f;--warn:#f0c36b}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{border-bottom:1px solid var(--line);padding:.6em 1em;display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center}
header strong{margin-right:auto}
nav{display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:center}
main{padding:1em;max-width:72em;margin:0 auto}
footer{color:var(--muted);font-size:.85em;padding:1em;text-align:center;overflow-wrap:anywhere}
a{color:var(--link)}
h1{font-size:1.35em;margin:.2em 0 .6em}
h2{font-size:1.1em;margin:1.4em 0 .5em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(8em,1fr));gap:.6em}
.card{display:block;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.6em .8em;text-decoration:none;color:inherit}
.card b{display:block;font-size:1.6em}
.card.alert b,.state-dead{color:var(--dead)}
.state-done{color:var(--ok)}
.state-pending,.state-leased{color:var(--warn)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4em .5em;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.85em;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.mono,pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.mono{overflow-wrap:anywhere}
td.mono{overflow-wrap:break-word}
pre{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.8em;overflow:auto;max-height:32em;white-space:pre-wrap;overflow-wrap:anywhere}
.reason{color:var(--dead);overflow-wrap:anywhere}
.muted{color:var(--muted)}
.notice{background:var(--card);border-left:4px solid var(--ok);padding:.5em .8em;margin:0 0 1em}
.problem{border-left-color:var(--dead)}
form.filter{display:flex;flex-wrap:wrap;gap:.5em .8em;align-items:end;margin:0 0 1em}
label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted);gap:.2em}
input,select,button{font:inherit;padding:.35em .5em;border:1px solid var(--line);border-radius:4px;background:var(--bg);color:var(--fg);max-width:100%}
button{background:var(--card);cursor:pointer}
button.danger{border-color:var(--dead);color:var(--dead)}
form.inline{display:inline}
.actions{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.8em 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3em 1em;margin:0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.pager{margin:1em 0;display:flex;gap:1em}
@media (max-width:40em){
 main{padding:.7em}
 table.cards-small thead{display:none}
 table.cards-small tr{display:block;border:1px solid var(--line);border-radius:6px;margin:0 0 .6em;padding:.3em .5em;background:var(--card)}
 table.cards-small td{display:flex;gap:.6em;border:0;padding:.15em 0}
 table.cards-small td::before{content:attr(data-label);color:var(--muted);min-width:6.5em;flex:none;font-family:system-ui,sans-serif}
 table.cards-small td.num{text-align:left}
 dl{grid-template-columns:1fr}
 dt{margin-top:.4em}
}
"#;

/// A whole page: `title`, then `content`; the navigation and logout only for `chrome`.
pub(super) fn shell(title: &str, chrome: Option<&Chrome<'_>>, content: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · Print.one deliveries" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "Print.one deliveries" }
                    @if let Some(chrome) = chrome {
                        nav {
                            a href={ (chrome.base) "/" } { "Overview" }
                            a href={ (chrome.base) "/deliveries" } { "Deliveries" }
                            a href={ (chrome.base) "/deliveries?state=dead" } { "Dead letters" }
                            @if chrome.session {
                                form.inline method="post" action={ (chrome.base) "/logout" } {
                                    (csrf_field(chrome))
                                    button type="submit" { "Log out" }
                                }
                            }
                        }
                    }
                }
                main { (content) }
                @if let Some(chrome) = chrome {
                    footer { "printone-webhooks " (env!("CARGO_PKG_VERSION")) " · " (chrome.store) }
                }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub(super) fn csrf_field(chrome: &Chrome<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(chrome.csrf); }
}

/// What a form that redirected here did.
pub(super) fn notice(notice: Option<Notice>) -> Markup {
    let plural = |count: u64| if count == 1 { "" } else { "s" };
    html! {
        @match notice {
            Some(Notice::Replayed(0)) => p.notice.problem { "Nothing was replayed: no dead letter matched." },
            Some(Notice::Replayed(count)) => p.notice {
                "Replayed " (count) " dead letter" (plural(count)) ": pending again, for the worker to handle."
            },
            Some(Notice::Purged(count)) => p.notice {
                "Purged " (count) " finished deliver" (if count == 1 { "y" } else { "ies" }) "."
            },
            None => {}
        }
    }
}

/// A state, coloured.
pub(super) fn state(state: DeliveryState) -> Markup {
    html! { span class={ "state-" (state.as_str()) } { (state.as_str()) } }
}

/// A time in UTC to the millisecond: `2024-06-03 13:14:46.501 UTC`.
pub(super) fn time(time: SystemTime) -> String {
    let at = OffsetDateTime::from(time);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// A time that may be missing: `-` then.
pub(super) fn maybe_time(at: Option<SystemTime>) -> String {
    at.map_or_else(|| "-".to_owned(), time)
}

/// A duration as people read it: `850 µs`, `12.3 ms`, `4.20 s`.
pub(super) fn duration(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", duration.as_secs_f64() * 1_000.0)
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_as_people_write_them() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_717_420_486_501);
        assert_eq!(time(at), "2024-06-03 13:14:46.501 UTC");
        assert_eq!(maybe_time(None), "-");
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(4_200)), "4.20 s");
    }

    #[test]
    fn the_style_sheet_cannot_end_its_element() {
        assert!(!STYLE.contains("</"));
    }
}
