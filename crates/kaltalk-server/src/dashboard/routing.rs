//! An inbox's "Routing and auto-assignment" section: its team, auto-assignment, handing
//! back on offline and how long a customer may wait for a reply before the team is told.

use axum::extract::State;
use kaltalk_core::{InboxId, Permission, TeamId};
use kaltalk_store::routing::InboxRouting;
use kaltalk_store::waiting::MAX_WAITING_ALERT_MINUTES;
use serde::Deserialize;

use crate::auth::SessionForm;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{see_other, ticked, whole_number};
use crate::web::{IdPath, PageResult};

#[derive(Deserialize)]
pub(super) struct RoutingForm {
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    auto_assign: Option<String>,
    #[serde(default)]
    hand_back_on_offline: Option<String>,
    /// Empty: never tell.
    #[serde(default)]
    waiting_alert_minutes: String,
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
    let waiting_alert_minutes = match form.waiting_alert_minutes.trim() {
        "" => None,
        minutes => Some(whole_number(
            minutes,
            1..=MAX_WAITING_ALERT_MINUTES,
            "waiting_alert_minutes",
            format!(
                "Minutes of waiting are a whole number from 1 to {MAX_WAITING_ALERT_MINUTES} (a week); leave it empty never to be told."
            ),
        )?),
    };
    let routing = InboxRouting {
        team_id,
        auto_assign,
        hand_back_on_offline: ticked(&form.hand_back_on_offline),
        waiting_alert_minutes,
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
