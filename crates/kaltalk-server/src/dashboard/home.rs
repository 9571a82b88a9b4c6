//! The landing page after signing in.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use kaltalk_core::Permission;

use super::NoticeQuery;
use crate::auth::AgentSession;
use crate::state::AppState;
use crate::web::{Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/home.html")]
struct HomePage {
    layout: Layout,
    notice: Option<&'static str>,
    name: String,
    email: String,
    verified: bool,
    org_name: String,
    role: &'static str,
    csrf: String,
    can_api_keys: bool,
}

async fn home(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult<HomePage> {
    let notice = match query.notice.as_deref() {
        Some("verification-sent") => Some("We sent a new confirmation link."),
        Some("joined") => Some("You joined the organization."),
        Some("switched") => Some("Switched organization."),
        Some("organization-deleted") => Some("The organization and everything in it were deleted."),
        _ => None,
    };
    Ok(HomePage {
        layout: Layout::signed_in(&state, &session, "home").await?,
        notice,
        name: session.user.name.clone(),
        email: session.user.email.clone(),
        verified: session.user.email_verified_at.is_some(),
        org_name: session.org.name.clone(),
        role: session.role().label(),
        csrf: session.csrf_token.clone(),
        can_api_keys: session.role().can(Permission::ManageApiKeys),
    })
}
