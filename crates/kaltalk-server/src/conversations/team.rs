//! The conversation header's team: which team a conversation belongs to (set by hand
//! here, by an inbox's routing otherwise), and each member's availability beside their
//! name in the assignee select.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use kaltalk_core::chat::Availability;
use kaltalk_core::{ConversationId, OrgId, Permission, TeamId, UserId};
use kaltalk_store::teams::Team;
use serde::Deserialize;

use super::after_change;
use crate::auth::SessionForm;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{IdPath, PageResult};

pub struct HeaderRouting {
    pub teams: Vec<Team>,
    availability: HashMap<UserId, Availability>,
}

impl HeaderRouting {
    pub async fn load(state: &AppState, org: OrgId) -> Result<Self, AppError> {
        Ok(Self {
            teams: state.store.list_teams(org).await?,
            availability: state
                .store
                .member_statuses(org)
                .await?
                .into_iter()
                .map(|m| (m.user_id, m.availability))
                .collect(),
        })
    }

    pub fn availability_of(&self, user: &UserId) -> &'static str {
        self.availability
            .get(user)
            .copied()
            .unwrap_or(Availability::Offline)
            .as_str()
    }

    pub fn team_name(&self, team: &Option<TeamId>) -> Option<&str> {
        let team = (*team)?;
        self.teams
            .iter()
            .find(|t| t.id == team)
            .map(|t| t.name.as_str())
    }
}

#[derive(Deserialize)]
pub(super) struct TeamForm {
    #[serde(default)]
    team_id: String,
}

pub(super) async fn set_team(
    State(state): State<AppState>,
    IdPath(id): IdPath<ConversationId>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<TeamForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let team = match form.team_id.trim() {
        "" => None,
        team => Some(
            team.parse::<TeamId>()
                .map_err(|_| AppError::invalid("team_id", "Choose one of the teams."))?,
        ),
    };
    let written = state
        .store
        .set_conversation_team(session.org_id(), id, team, state.now())
        .await?;
    state.hub.publish_events(written.events);
    after_change(&state, &session, id, &headers).await
}
