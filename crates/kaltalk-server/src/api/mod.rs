//! The JSON API under `/api/v1`, authenticated by an organization's API key (Bearer) or a
//! dashboard session. Errors are RFC 9457 problem documents with a stable `code`.

mod body;
mod contacts;
mod conversations;
mod idempotency;
mod inboxes;
mod knowledge;
mod pagination;
mod webhooks;

use axum::extract::{Query, State};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::{Json, Router};
use kaltalk_core::{Permission, Role, UserId};
use serde::Serialize;

use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;

/// The API's routes. `state` is needed by the `Idempotency-Key` layer, which
/// authenticates a POST before deciding whether to run or replay it.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/team", get(team))
        .merge(conversations::router())
        .merge(contacts::router())
        .merge(inboxes::router())
        .merge(knowledge::router())
        .merge(webhooks::router())
        .fallback(|| async { AppError::NotFound })
        .layer(from_fn_with_state(
            state,
            idempotency::honour_idempotency_key,
        ))
}

/// API keys act for the whole organization; a signed-in member needs the permission the
/// dashboard asks for the same thing.
fn require(principal: &ApiPrincipal, permission: Permission) -> Result<(), AppError> {
    match principal {
        ApiPrincipal::Key { .. } => Ok(()),
        ApiPrincipal::Session(session) => session.require(permission),
    }
}

/// Who a reply or note is written as. A member writes as themselves; an API key writes
/// as the organization's first owner, because messages name a person as their sender
/// and an integration has none (its replies read as sent by that owner).
async fn acting_agent(state: &AppState, principal: &ApiPrincipal) -> Result<UserId, AppError> {
    match principal {
        ApiPrincipal::Session(session) => Ok(session.user.id),
        ApiPrincipal::Key { org_id, .. } => state
            .store
            .list_members(*org_id)
            .await?
            .into_iter()
            .filter(|m| m.role() == Role::Owner)
            .min_by_key(|m| (m.joined_at, m.user_id.as_uuid()))
            .map(|m| m.user_id)
            .ok_or_else(|| {
                AppError::Conflict(
                    "The organization has no owner to send API replies as; make someone its owner first.".into(),
                )
            }),
    }
}

#[derive(Serialize)]
struct OrgView {
    id: String,
    name: String,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Actor {
    ApiKey {
        id: String,
        name: String,
    },
    User {
        id: String,
        name: String,
        email: String,
        role: &'static str,
    },
}

#[derive(Serialize)]
struct Me {
    actor: Actor,
    organization: OrgView,
}

async fn me(State(state): State<AppState>, principal: ApiPrincipal) -> Result<Json<Me>, AppError> {
    let org = state.store.get_organization(principal.org_id()).await?;
    let actor = match principal {
        ApiPrincipal::Key { key_id, name, .. } => Actor::ApiKey {
            id: key_id.to_string(),
            name,
        },
        ApiPrincipal::Session(session) => Actor::User {
            id: session.user.id.to_string(),
            name: session.user.name.clone(),
            email: session.user.email.clone(),
            role: session.role().as_str(),
        },
    };
    Ok(Json(Me {
        actor,
        organization: OrgView {
            id: org.id.to_string(),
            name: org.name,
        },
    }))
}

#[derive(Serialize)]
struct TeamMember {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    joined_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize)]
struct Team {
    data: Vec<TeamMember>,
    next_cursor: Option<String>,
}

/// Newest member first.
async fn team(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Query(query): Query<pagination::PageQuery>,
) -> Result<Json<Team>, AppError> {
    let page = query.page()?;
    let members = state.store.list_members(principal.org_id()).await?;
    let (members, next_cursor) =
        pagination::newest_first(members, page, |m| (m.joined_at, m.user_id.as_uuid()));
    let data = members
        .into_iter()
        .map(|m| TeamMember {
            id: m.user_id.to_string(),
            role: m.role().as_str(),
            name: m.name,
            email: m.email,
            joined_at: m.joined_at,
        })
        .collect();
    Ok(Json(Team { data, next_cursor }))
}
