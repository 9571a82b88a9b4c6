//! The organization's settings, creating another organization, switching between them,
//! deleting one.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use kaltalk_core::{OrgId, OrgName, Permission, ValidationError};
use serde::Deserialize;

use super::profile::is_their_password;
use crate::auth::{AgentSession, SessionForm, session};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoticeQuery, see_other};
use crate::web::{FieldErrors, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/organization", get(show).post(rename))
        .route("/orgs", post(create))
        .route("/orgs/switch", post(switch))
        .route("/settings/organization/delete", post(delete))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/organization.html")]
struct OrganizationPage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    can_manage: bool,
    can_delete: bool,
    /// The person belongs to another organization to carry on in after deleting this one.
    has_another: bool,
    org_name: String,
    new_org_name: String,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    session: &AgentSession,
    errors: FieldErrors,
    notice: Option<&'static str>,
) -> Result<OrganizationPage, AppError> {
    Ok(OrganizationPage {
        layout: Layout::signed_in(state, session, "organization").await?,
        notice,
        csrf: session.csrf_token.clone(),
        can_manage: session.role().can(Permission::ManageOrganization),
        can_delete: session.role().can(Permission::DeleteOrganization),
        has_another: state.store.memberships_of(session.user.id).await?.len() > 1,
        org_name: session.org.name.clone(),
        new_org_name: String::new(),
        errors,
    })
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let notice = match query.notice.as_deref() {
        Some("renamed") => Some("The organization was renamed."),
        Some("created") => Some("Organization created. You are its owner."),
        _ => None,
    };
    Ok(page(&state, &session, FieldErrors::default(), notice)
        .await?
        .into_response())
}

#[derive(Deserialize)]
struct RenameForm {
    #[serde(default)]
    name: String,
}

async fn rename(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<RenameForm>,
) -> PageResult {
    session.require(Permission::ManageOrganization)?;
    let name = match OrgName::parse("name", &form.name) {
        Ok(name) => name,
        Err(error) => {
            let page = page(&state, &session, vec![error].into(), None).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    state
        .store
        .rename_organization(session.org_id(), &name, state.now())
        .await?;
    Ok(see_other("/settings/organization?notice=renamed"))
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    new_org_name: String,
}

async fn create(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<CreateForm>,
) -> PageResult {
    let name = match OrgName::parse("new_org_name", &form.new_org_name) {
        Ok(name) => name,
        Err(error) => {
            let mut page = page(&state, &session, vec![error].into(), None).await?;
            page.new_org_name = form.new_org_name;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let org = state
        .store
        .create_organization(session.user.id, &name, state.now())
        .await?;
    state
        .store
        .switch_session_org(session.session_id, org.id)
        .await?;
    Ok(see_other("/settings/organization?notice=created"))
}

#[derive(Deserialize)]
struct SwitchForm {
    org_id: String,
}

async fn switch(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<SwitchForm>,
) -> PageResult {
    let org_id: OrgId = form.org_id.parse().map_err(|_| AppError::NotFound)?;
    // Only to an organization the person belongs to; any other id is simply not found.
    state.store.get_member(org_id, session.user.id).await?;
    state
        .store
        .switch_session_org(session.session_id, org_id)
        .await?;
    Ok(see_other("/?notice=switched"))
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    confirm_name: String,
    #[serde(default)]
    delete_password: String,
}

/// Deletes the organization and everything in it, once its owner has typed its name and
/// their password; they carry on in another organization of theirs. With none left, they
/// are sent to delete their account instead (a person without an organization has
/// nothing to sign in to).
async fn delete(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<DeleteForm>,
) -> PageResult {
    session.require(Permission::DeleteOrganization)?;
    let org = session.org_id();
    let refuse = |error: ValidationError| async {
        let page = page(&state, &session, vec![error].into(), None).await?;
        Ok::<_, AppError>((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    let next = state
        .store
        .memberships_of(session.user.id)
        .await?
        .into_iter()
        .find(|member| member.org_id != org);
    let Some(next) = next else {
        return Ok(refuse(ValidationError::new(
            "confirm_name",
            "This is your only organization: delete your account instead (Profile), or create another organization first.",
        ))
        .await?);
    };
    if form.confirm_name.trim() != session.org.name {
        return Ok(refuse(ValidationError::new(
            "confirm_name",
            format!(
                "Type the organization's name, {}, to confirm.",
                session.org.name
            ),
        ))
        .await?);
    }
    if !is_their_password(&state, &session, &form.delete_password).await? {
        return Ok(refuse(ValidationError::new(
            "delete_password",
            "That is not your password.",
        ))
        .await?);
    }
    state.store.delete_organization(org).await?;
    state.forget_organization(org).await;
    // This browser's session went with the organization: a new one in the next.
    let cookie = session::start(&state, session.user.id, next.org_id).await?;
    Ok((
        CookieJar::new().add(cookie),
        Redirect::to("/?notice=organization-deleted"),
    )
        .into_response())
}
