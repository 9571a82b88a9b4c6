//! The JSON API under `/api/v1`, authenticated by an organization's API key (Bearer) or a
//! dashboard session. Errors are RFC 9457 problem documents with a stable `code`.
//!
//! Routes are declared only through `OpenApiRouter::routes(routes!(handler))`: a handler
//! without `#[utoipa::path]` does not compile there, so the OpenAPI document served at
//! `/api/v1/openapi.json` lists exactly the routes that exist. To add an endpoint, annotate
//! its handler and add one `.routes(routes!(…))` line to its module's `routes()`.

mod body;
mod contacts;
mod conversations;
mod devices;
mod docs;
mod idempotency;
mod inboxes;
mod knowledge;
mod pagination;
mod rate_limit;
mod resource_docs;
pub mod spec;
mod teams;
mod webhooks;

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::State;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::{Extension, Json, Router};
use kaltalk_core::{Permission, Role, UserId};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;

pub use rate_limit::ApiRateLimiter;

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1";

/// Every API route with its documentation, paths relative to [`PREFIX`].
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(team))
        .merge(conversations::routes())
        .merge(contacts::routes())
        .merge(inboxes::routes())
        .merge(knowledge::routes())
        .merge(teams::routes())
        .merge(webhooks::routes())
        .merge(devices::routes())
        .routes(routes!(spec::openapi_json))
}

/// The API's routes and their document, both under [`PREFIX`].
fn mounted() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, routed) = OpenApiRouter::new()
        .nest(PREFIX, routes().fallback(|| async { AppError::NotFound }))
        .split_for_parts();
    (router, spec::document(routed))
}

/// The OpenAPI 3.1 document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    mounted().1
}

/// The API, mounted at [`PREFIX`]; merge it into the root router.
pub fn router(state: &AppState) -> Router<AppState> {
    let (router, doc) = mounted();
    let json = doc
        .to_pretty_json()
        .expect("a document built from our own types serializes");
    let per_minute =
        NonZeroU32::new(state.config.api.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
    let limiter = ApiRateLimiter::new(per_minute, state.clock.clone());
    // The last layer added runs first: errors become problem documents, then the key's
    // rate limit is counted, and only then may an `Idempotency-Key` replay a stored
    // answer, so replays are rate limited like any other request. The idempotency layer
    // needs the state because it authenticates a POST before deciding to run or replay it.
    router
        .layer(Extension(spec::SpecJson(Arc::new(json))))
        .layer(from_fn_with_state(
            state.clone(),
            idempotency::honour_idempotency_key,
        ))
        .layer(from_fn_with_state(
            (state.clone(), limiter),
            rate_limit::limit_api_keys,
        ))
        .layer(from_fn(crate::problems::plain_errors_as_problems))
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

#[derive(Serialize, ToSchema)]
struct OrgView {
    id: String,
    name: String,
}

/// Who the request acts as.
#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
struct Me {
    actor: Actor,
    organization: OrgView,
}

/// The caller: the API key (or signed-in person) and its organization.
#[utoipa::path(get, path = "/me", tag = "organization",
    responses((status = 200, body = Me)))]
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

#[derive(Serialize, ToSchema)]
struct TeamMember {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    joined_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
struct Team {
    data: Vec<TeamMember>,
    next_cursor: Option<String>,
}

/// The organization's members, newest first.
#[utoipa::path(get, path = "/team", tag = "organization", params(pagination::PageQuery),
    responses((status = 200, body = Team)))]
async fn team(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    pagination::Pagination(page): pagination::Pagination,
) -> Result<Json<Team>, AppError> {
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
