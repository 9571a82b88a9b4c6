//! The JSON API under `/api/v1`, authenticated by an organization's API key (Bearer) or a
//! dashboard session. Errors are RFC 9457 problem documents with a stable `code`.
//!
//! Routes are declared only through `OpenApiRouter::routes(routes!(handler))`: a handler
//! without `#[utoipa::path]` does not compile there, so the OpenAPI document served at
//! `/api/v1/openapi.json` lists exactly the routes that exist. To add an endpoint, annotate
//! its handler and add one `.routes(routes!(…))` line to its module's `routes()`.

mod conversations;
mod docs;
mod problems;
mod rate_limit;
pub mod spec;
mod webhooks;

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::State;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::{Extension, Json, Router};
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
        .merge(webhooks::routes())
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
    router
        .layer(Extension(spec::SpecJson(Arc::new(json))))
        .layer(from_fn_with_state(
            (state.clone(), limiter),
            rate_limit::limit_api_keys,
        ))
        .layer(from_fn(problems::plain_errors_as_problems))
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
}

/// The organization's members.
#[utoipa::path(get, path = "/team", tag = "organization",
    responses((status = 200, body = Team)))]
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
