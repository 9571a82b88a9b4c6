//! Teams (Settings → Teams): create, rename and delete teams, their members, each
//! member's capacity for auto-assignment and availability; and the availability control
//! every page's layout shows its signed-in member.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use kaltalk_core::chat::Availability;
use kaltalk_core::{Permission, TeamId, UserId};
use kaltalk_store::routing::{MAX_CAPACITY, MemberStatus};
use kaltalk_store::teams::TeamDetails;
use serde::Deserialize;

use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoFields, NoticeQuery, see_other, whole_number};
use crate::web::{IdPath, Layout, PageResult};

/// The longest team name.
pub const MAX_TEAM_NAME: usize = 80;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/teams", get(show).post(create))
        .route("/settings/teams/{id}/rename", post(rename))
        .route("/settings/teams/{id}/delete", post(delete))
        .route("/settings/teams/{id}/members", post(add_member))
        .route("/settings/teams/{id}/members/remove", post(remove_member))
        .route("/settings/teams/capacity", post(set_capacity))
        .route("/settings/teams/offline-after", post(set_offline_after))
        .route("/availability", post(set_availability))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/teams.html")]
struct TeamsPage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    me: UserId,
    can_manage: bool,
    teams: Vec<TeamDetails>,
    members: Vec<MemberStatus>,
    offline_after: i32,
}

impl TeamsPage {
    /// The organization's members not in `team`, to add.
    fn outside(&self, team: &TeamDetails) -> Vec<&MemberStatus> {
        self.members
            .iter()
            .filter(|m| !team.members.iter().any(|t| t.user_id == m.user_id))
            .collect()
    }
}

/// A team name as typed: trimmed, 1 to [`MAX_TEAM_NAME`] characters.
pub fn team_name(input: &str) -> Result<String, AppError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(AppError::invalid("name", "Give the team a name."));
    }
    if name.chars().count() > MAX_TEAM_NAME {
        return Err(AppError::invalid(
            "name",
            format!("A team name has at most {MAX_TEAM_NAME} characters."),
        ));
    }
    Ok(name.to_owned())
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ViewTeam)?;
    let org = session.org_id();
    let notice = match query.notice.as_deref() {
        Some("created") => Some("Team created."),
        Some("renamed") => Some("Team renamed."),
        Some("deleted") => Some("Team deleted. Its conversations now belong to no team."),
        Some("members") => Some("Team members saved."),
        Some("capacity") => Some("Capacity saved."),
        Some("offline-after") => Some("Saved."),
        _ => None,
    };
    Ok(TeamsPage {
        layout: Layout::signed_in(&state, &session, "teams").await?,
        notice,
        csrf: session.csrf_token.clone(),
        me: session.user.id,
        can_manage: session.role().can(Permission::ManageTeam),
        teams: state.store.teams_with_members(org).await?,
        members: state.store.member_statuses(org).await?,
        offline_after: state.store.offline_after_minutes(org).await?,
    }
    .into_response())
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    name: String,
}

async fn create(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<NameForm>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let name = team_name(&form.name)?;
    let written = state
        .store
        .create_team(session.org_id(), &name, state.now())
        .await?;
    state.hub.publish_events(written.events);
    Ok(see_other("/settings/teams?notice=created"))
}

async fn rename(
    State(state): State<AppState>,
    IdPath(id): IdPath<TeamId>,
    SessionForm { session, form }: SessionForm<NameForm>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let name = team_name(&form.name)?;
    let written = state
        .store
        .rename_team(session.org_id(), id, &name, state.now())
        .await?;
    state.hub.publish_events(written.events);
    Ok(see_other("/settings/teams?notice=renamed"))
}

async fn delete(
    State(state): State<AppState>,
    IdPath(id): IdPath<TeamId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let written = state
        .store
        .delete_team(session.org_id(), id, state.now())
        .await?;
    crate::availability::publish(&state, written.events).await;
    Ok(see_other("/settings/teams?notice=deleted"))
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    user_id: String,
}

fn member_id(form: &MemberForm) -> Result<UserId, AppError> {
    form.user_id
        .parse()
        .map_err(|_| AppError::invalid("user_id", "Choose a member of the organization."))
}

async fn add_member(
    State(state): State<AppState>,
    IdPath(id): IdPath<TeamId>,
    SessionForm { session, form }: SessionForm<MemberForm>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let user = member_id(&form)?;
    let written = state
        .store
        .add_team_member(session.org_id(), id, user, state.now())
        .await?;
    crate::availability::publish(&state, written.events).await;
    Ok(see_other("/settings/teams?notice=members"))
}

async fn remove_member(
    State(state): State<AppState>,
    IdPath(id): IdPath<TeamId>,
    SessionForm { session, form }: SessionForm<MemberForm>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let user = member_id(&form)?;
    let written = state
        .store
        .remove_team_member(session.org_id(), id, user, state.now())
        .await?;
    crate::availability::publish(&state, written.events).await;
    Ok(see_other("/settings/teams?notice=members"))
}

#[derive(Deserialize)]
struct CapacityForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    capacity: String,
}

async fn set_capacity(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<CapacityForm>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let user = member_id(&MemberForm {
        user_id: form.user_id,
    })?;
    let capacity = whole_number(
        &form.capacity,
        0..=MAX_CAPACITY,
        "capacity",
        format!("Capacity is a whole number from 0 to {MAX_CAPACITY}."),
    )?;
    let written = state
        .store
        .set_capacity(session.org_id(), user, capacity, state.now())
        .await?;
    state.hub.publish_events(written.events);
    Ok(see_other("/settings/teams?notice=capacity"))
}

#[derive(Deserialize)]
struct OfflineAfterForm {
    #[serde(default)]
    minutes: String,
}

async fn set_offline_after(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<OfflineAfterForm>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let minutes = whole_number(
        &form.minutes,
        1..=1440,
        "minutes",
        "Minutes are a whole number from 1 to 1440.",
    )?;
    state
        .store
        .set_offline_after_minutes(session.org_id(), minutes, state.now())
        .await?;
    Ok(see_other("/settings/teams?notice=offline-after"))
}

#[derive(Deserialize)]
struct AvailabilityForm {
    #[serde(default)]
    availability: String,
}

/// The layout's control: the signed-in member sets themselves online, busy or offline,
/// and returns to the page they were on.
async fn set_availability(
    State(state): State<AppState>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<AvailabilityForm>,
) -> PageResult {
    let availability: Availability = form
        .availability
        .parse()
        .map_err(|_| AppError::invalid("availability", "Choose online, busy or offline."))?;
    let written = state
        .store
        .set_availability(
            session.org_id(),
            session.user.id,
            availability,
            false,
            state.now(),
        )
        .await?;
    crate::availability::publish(&state, written.events).await;
    // Back where they were: only a path of ours (the Referer's), never another site.
    let back = headers
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        })
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".to_owned());
    Ok(Redirect::to(&back).into_response())
}
