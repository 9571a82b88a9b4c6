//! An inbox's "Routing and auto-assignment" section: its team, auto-assignment and
//! handing back on offline.

use axum::extract::State;
use kaltalk_core::{InboxId, Permission, TeamId};
use kaltalk_store::routing::InboxRouting;
use serde::Deserialize;

use crate::auth::SessionForm;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{see_other, ticked};
use crate::web::{IdPath, PageResult};

#[derive(Deserialize)]
pub(super) struct RoutingForm {
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    auto_assign: Option<String>,
    #[serde(default)]
    hand_back_on_offline: Option<String>,
}

pub(super) async fn save_routing(
    State(state): State<AppState>,
    IdPath(id): IdPath<InboxId>,
    SessionForm { session, form }: SessionForm<RoutingForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let team_id = match form.team_id.trim() {
        "" => None,
        team => Some(
            team.parse::<TeamId>()
                .map_err(|_| AppError::invalid("team_id", "Choose one of the teams."))?,
        ),
    };
    let auto_assign = ticked(&form.auto_assign);
    if auto_assign && team_id.is_none() {
        return Err(AppError::invalid(
            "auto_assign",
            "Choose a team to auto-assign to: auto-assignment hands conversations to its members.",
        )
        .into());
    }
    let routing = InboxRouting {
        team_id,
        auto_assign,
        hand_back_on_offline: ticked(&form.hand_back_on_offline),
    };
    let written = state
        .store
        .set_inbox_routing(session.org_id(), id, routing, state.now())
        .await?;
    state.hub.publish_events(written.events);
    Ok(see_other(&format!(
        "/settings/inboxes/{id}?notice=routing-saved#routing"
    )))
}
