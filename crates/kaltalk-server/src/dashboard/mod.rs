//! The dashboard: server-rendered pages, grouped by what they are about.

mod account;
mod ai;
pub(crate) mod api_keys;
mod api_reference;
mod business_hours;
mod canned;
mod home;
pub(crate) mod inboxes;
mod invitations;
mod knowledge;
mod organization;
mod outbox;
mod playground;
mod profile;
mod routing;
pub(crate) mod settings;
mod team;
pub(crate) mod teams;
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
        .merge(teams::router())
        .merge(api_keys::router())
        .merge(api_reference::router())
        .merge(outbox::router())
        .merge(inboxes::router())
        .merge(canned::router())
        .merge(ai::router())
        .merge(playground::router())
        .merge(knowledge::router())
        .merge(webhooks::router())
        .merge(settings::router())
}
