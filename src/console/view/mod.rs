//! The console's pages, as `maud` templates: every value that is not the console's own text is
//! HTML-escaped by `maud`, so a body or an event name with markup shows as text.

mod delivery;
mod layout;
mod list;
mod overview;
mod simple;

pub(crate) use delivery::delivery;
pub(crate) use layout::STYLE;
pub(crate) use list::list;
pub(crate) use overview::overview;
pub(crate) use simple::{error, login};

/// What the layout of every page of a granted request shows.
#[derive(Debug)]
pub(crate) struct Chrome<'a> {
    /// The console's base path, for links and forms.
    pub(crate) base: &'a str,
    /// The CSRF token of this session's forms.
    pub(crate) csrf: String,
    /// Whether a session cookie opened the console (a logout button makes sense).
    pub(crate) session: bool,
    /// The store, as it describes itself (never a password).
    pub(crate) store: String,
}

/// What a redirect after a form says it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    /// This many dead letters are pending again.
    Replayed(u64),
    /// This many finished deliveries were removed.
    Purged(u64),
}
