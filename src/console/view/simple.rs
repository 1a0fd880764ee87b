//! The pages of one message: the login form and the error page.

use http::StatusCode;
use maud::{html, Markup};

use crate::console::view::{layout::shell, Chrome};

/// The login form; `wrong` after a wrong token.
pub(crate) fn login(base: &str, next: Option<&str>, wrong: bool) -> Markup {
    let content = html! {
        h1 { "Log in" }
        @if wrong { p.notice.problem { "That is not the admin token." } }
        p { "This console asks for the admin token (" code { "PRINTONE_ADMIN_TOKEN" } " in the examples)." }
        form.filter method="post" action={ (base) "/login" } {
            @if let Some(next) = next { input type="hidden" name="next" value=(next); }
            label { "Admin token"
                input type="password" name="token" autocomplete="current-password" required autofocus;
            }
            button type="submit" { "Log in" }
        }
    };
    shell("Log in", None, &content)
}

/// An error page: the status and what went wrong; with `chrome`, the navigation too.
pub(crate) fn error(chrome: Option<&Chrome<'_>>, status: StatusCode, message: &str) -> Markup {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let content = html! {
        h1 { (title) }
        p.notice.problem { (message) }
        @if let Some(chrome) = chrome {
            p { a href={ (chrome.base) "/" } { "Back to the overview" } }
        }
    };
    shell(&title, chrome, &content)
}
