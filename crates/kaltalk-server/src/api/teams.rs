//! The organization's teams over the API, read-only: which teams there are and who is in
//! them, so an integration can put a conversation in one (`team_id` on a conversation's
//! PATCH) or list a team's conversations (`team_id` on the list). Teams are made and
//! changed in Settings → Teams.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use kaltalk_core::{Permission, TeamId};
use kaltalk_store::teams::TeamDetails;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::require;
use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
}

/// A member of a team, with what auto-assignment reads.
#[derive(Serialize, ToSchema)]
struct TeamMemberView {
    user_id: String,
    name: String,
    /// `online`, `busy` or `offline`.
    #[schema(pattern = "^(online|busy|offline)$")]
    availability: &'static str,
    /// The most open conversations auto-assignment gives them.
    capacity: i32,
    /// Open or pending conversations assigned to them now.
    open_conversations: i64,
}

#[derive(Serialize, ToSchema)]
struct TeamView {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    members: Vec<TeamMemberView>,
}

impl From<TeamDetails> for TeamView {
    fn from(details: TeamDetails) -> Self {
        Self {
            id: details.team.id.to_string(),
            name: details.team.name,
            created_at: details.team.created_at,
            members: details
                .members
                .into_iter()
                .map(|m| TeamMemberView {
                    user_id: m.user_id.to_string(),
                    name: m.name,
                    availability: m.availability.as_str(),
                    capacity: m.capacity,
                    open_conversations: m.open_conversations,
                })
                .collect(),
        }
    }
}

/// Every team of the organization, by name (an organization has a handful, so one page).
#[derive(Serialize, ToSchema)]
struct TeamList {
    data: Vec<TeamView>,
}

/// The organization's teams and their members, by name.
#[utoipa::path(get, path = "/teams", tag = "organization",
    responses((status = 200, body = TeamList)))]
async fn list(
    State(state): State<AppState>,
    principal: ApiPrincipal,
) -> Result<Json<TeamList>, AppError> {
    require(&principal, Permission::ViewTeam)?;
    let teams = state.store.teams_with_members(principal.org_id()).await?;
    Ok(Json(TeamList {
        data: teams.into_iter().map(TeamView::from).collect(),
    }))
}

/// One team and its members.
#[utoipa::path(get, path = "/teams/{id}", tag = "organization",
    params(("id" = String, Path, description = "The team's id.")),
    responses((status = 200, body = TeamView)))]
async fn show(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<Json<TeamView>, AppError> {
    require(&principal, Permission::ViewTeam)?;
    let org = principal.org_id();
    let id: TeamId = id.parse().map_err(|_| AppError::NotFound)?;
    let team = state.store.get_team(org, id).await?;
    let members = state.store.team_members(org, id).await?;
    Ok(Json(TeamView::from(TeamDetails { team, members })))
}
