//! The JSON API under `/api/v1`, authenticated by an organization's API key (Bearer) or a
//! dashboard session. Errors are RFC 9457 problem documents with a stable `code`.

mod conversations;
mod webhooks;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/team", get(team))
        .merge(conversations::router())
        .merge(webhooks::router())
        .fallback(|| async { AppError::NotFound })
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
}

async fn team(
    State(state): State<AppState>,
    principal: ApiPrincipal,
) -> Result<Json<Team>, AppError> {
    let members = state.store.list_members(principal.org_id()).await?;
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
    Ok(Json(Team { data }))
}
