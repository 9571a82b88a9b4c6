//! The dashboard: server-rendered pages, grouped by what they are about.

mod account;
mod ai;
pub(crate) mod api_keys;
mod api_reference;
mod business_hours;
mod canned;
pub(crate) mod contacts;
mod home;
pub(crate) mod inboxes;
mod invitations;
mod knowledge;
mod organization;
mod outbox;
mod playground;
mod profile;
pub(crate) mod settings;
mod team;
mod webhooks;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(account::router())
        .merge(home::router())
        .merge(invitations::router())
        .merge(profile::router())
        .merge(organization::router())
        .merge(team::router())
        .merge(api_keys::router())
        .merge(api_reference::router())
        .merge(outbox::router())
        .merge(inboxes::router())
        .merge(canned::router())
        .merge(contacts::router())
        .merge(ai::router())
        .merge(playground::router())
        .merge(knowledge::router())
        .merge(webhooks::router())
        .merge(settings::router())
}

/// The `?notice=` code a page shows a confirmation for after a redirect.
#[derive(serde::Deserialize)]
pub(crate) struct NoticeQuery {
    pub(crate) notice: Option<String>,
}

/// A form whose only field is its CSRF token.
#[derive(serde::Deserialize)]
pub(crate) struct NoFields {}

/// A redirect after a successful POST, with a short notice code the next page explains.
fn see_other(path: &str) -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::response::Redirect::to(path))
}

/// A checkbox is present in the form only when ticked.
fn ticked(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}
