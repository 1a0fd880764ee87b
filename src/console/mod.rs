//! The delivery console: server-rendered pages to see what a store holds, inspect one delivery
//! and replay or purge, over any [`SharedStore`](crate::store::SharedStore).
//!
//! This folder is the whole console, free of any web framework: [`Console`] (its settings and
//! keys), the routing of its paths, the checks of the token and of the CSRF tokens, the forms
//! and the pages. The adapters only move a request in and a response out:
//! `tower::ConsoleService` (feature `tower`, for axum and hyper) and `actix::console_scope`
//! (feature `actix-web`).
//!
//! | file | what it holds |
//! |---|---|
//! | `config.rs` | [`Console`], [`AdminToken`], [`ConsoleConfigError`] |
//! | `auth.rs` | who may see the console: the token, the session cookie, the CSRF tokens |
//! | `form.rs` | query strings and forms: filters, page cursors, times, ages |
//! | `respond.rs` | a request's way through the console: route, check, act, answer |
//! | `response.rs` | pages, redirects and errors as HTTP responses, with the security headers |
//! | `view/` | the pages (`maud` templates; every value is HTML-escaped) |

// Without an adapter (`tower` or `actix-web`) nothing serves the console's pages yet.
#![cfg_attr(
    not(any(feature = "tower", feature = "actix-web")),
    allow(dead_code, unused_imports)
)]

mod auth;
mod config;
mod form;
mod respond;
mod response;
mod view;

pub use config::{AdminToken, Console, ConsoleConfigError, DEFAULT_BASE_PATH};
pub(crate) use respond::{ConsoleRequest, MAX_FORM_BYTES};
