//! The team: members and their roles, invitations, ownership.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use kaltalk_core::{EmailAddress, InvitationId, Permission, Role, UserId, token};
use kaltalk_mail::Invitation as InvitationEmail;
use kaltalk_store::{Invitation, Member, NewInvitation};
use serde::Deserialize;

use super::account::new_email;
use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoFields, NoticeQuery, see_other};
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

pub const INVITATION_DAYS: i64 = 7;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/team", get(show))
        .route("/settings/team/invitations", post(invite))
        .route(
            "/settings/team/invitations/{id}/revoke",
            post(revoke_invitation),
        )
        .route("/settings/team/members/{user_id}/role", post(change_role))
        .route(
            "/settings/team/members/{user_id}/remove",
            post(remove_member),
        )
        .route(
            "/settings/team/transfer-ownership",
            post(transfer_ownership),
        )
}

#[derive(Template, WebTemplate)]
#[template(path = "app/team.html")]
struct TeamPage {
    layout: Layout,
    notice: Option<&'static str>,
    error: Option<String>,
    csrf: String,
    me: UserId,
    now: DateTime<Utc>,
    can_manage: bool,
    can_transfer: bool,
    members: Vec<Member>,
    invitations: Vec<Invitation>,
    invite_email: String,
    errors: FieldErrors,
}

async fn page(state: &AppState, session: &AgentSession) -> Result<TeamPage, AppError> {
    let can_manage = session.role().can(Permission::ManageTeam);
    let invitations = if can_manage {
        state.store.pending_invitations(session.org_id()).await?
    } else {
        Vec::new()
    };
    Ok(TeamPage {
        layout: Layout::signed_in(state, session, "team").await?,
        notice: None,
        error: None,
        csrf: session.csrf_token.clone(),
        me: session.user.id,
        now: state.now(),
        can_manage,
        can_transfer: session.role().can(Permission::TransferOwnership),
        members: state.store.list_members(session.org_id()).await?,
        invitations,
        invite_email: String::new(),
        errors: FieldErrors::default(),
    })
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ViewTeam)?;
    let mut page = page(&state, &session).await?;
    page.notice = match query.notice.as_deref() {
        Some("invited") => Some("Invitation sent."),
        Some("revoked") => Some("Invitation revoked."),
        Some("role") => Some("Role changed."),
        Some("removed") => Some("Member removed."),
        Some("transferred") => Some("Ownership transferred. You are now an admin."),
        _ => None,
    };
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn invite(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<InviteForm>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let role: Role = form
        .role
        .parse()
        .map_err(|_| AppError::invalid("role", "Choose Agent or Admin."))?;
    if !session.role().may_assign(role, role) {
        return Err(AppError::Forbidden("You cannot invite someone with that role.").into());
    }
    let email = match EmailAddress::parse("email", &form.email) {
        Ok(email) => email,
        Err(error) => {
            let mut page = page(&state, &session).await?;
            page.invite_email = form.email;
            page.errors = vec![error].into();
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let members = state.store.list_members(session.org_id()).await?;
    if members.iter().any(|m| m.email == email.as_str()) {
        let mut page = page(&state, &session).await?;
        page.invite_email = form.email;
        page.errors = vec![kaltalk_core::ValidationError::new(
            "email",
            "This person is already a member.",
        )]
        .into();
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }

    let link_token = token::generate("");
    let now = state.now();
    let expires_at = now + Duration::days(INVITATION_DAYS);
    let link = state.link(&format!("/invitations/{link_token}"));
    let expires = expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let message = InvitationEmail {
        inviter: &session.user.name,
        org: &session.org.name,
        role: role.label(),
        link: &link,
        expires: &expires,
    }
    .email()
    .map_err(|e| AppError::Internal(e.into()))?;
    let invitation = NewInvitation {
        org_id: session.org_id(),
        email: email.clone(),
        role,
        token_hash: token::hash(&link_token),
        invited_by: session.user.id,
        expires_at,
    };
    let outgoing = new_email(
        &state,
        Some(session.org_id()),
        email.as_str(),
        &message,
        "invitation",
    );
    state
        .store
        .create_invitation(&invitation, &outgoing, now)
        .await?;
    Ok(see_other("/settings/team?notice=invited"))
}

async fn revoke_invitation(
    State(state): State<AppState>,
    IdPath(id): IdPath<InvitationId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    state
        .store
        .revoke_invitation(session.org_id(), id, state.now())
        .await?;
    Ok(see_other("/settings/team?notice=revoked"))
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

/// The target as a member of the session's organization; another organization's member
/// is simply not found.
async fn target(
    state: &AppState,
    session: &AgentSession,
    user: UserId,
) -> Result<Member, AppError> {
    let member = state.store.get_member(session.org_id(), user).await?;
    if member.user_id == session.user.id {
        return Err(AppError::Forbidden(
            "You cannot change your own membership here.",
        ));
    }
    Ok(member)
}

async fn change_role(
    State(state): State<AppState>,
    IdPath(user): IdPath<UserId>,
    SessionForm { session, form }: SessionForm<RoleForm>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let member = target(&state, &session, user).await?;
    let role: Role = form
        .role
        .parse()
        .map_err(|_| AppError::invalid("role", "Choose Agent or Admin."))?;
    if !session.role().may_assign(member.role(), role) {
        return Err(AppError::Forbidden("You cannot give or take that role.").into());
    }
    state
        .store
        .change_role(session.org_id(), user, role, state.now())
        .await?;
    Ok(see_other("/settings/team?notice=role"))
}

async fn remove_member(
    State(state): State<AppState>,
    IdPath(user): IdPath<UserId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageTeam)?;
    let member = target(&state, &session, user).await?;
    if !session.role().may_assign(member.role(), member.role()) {
        return Err(AppError::Forbidden(
            "Only a new owner can be chosen for the owner: transfer ownership first.",
        )
        .into());
    }
    state
        .store
        .remove_member(session.org_id(), user, state.now())
        .await?;
    Ok(see_other("/settings/team?notice=removed"))
}

#[derive(Deserialize)]
struct TransferForm {
    user_id: String,
}

async fn transfer_ownership(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<TransferForm>,
) -> PageResult {
    session.require(Permission::TransferOwnership)?;
    let user: UserId = form.user_id.parse().map_err(|_| AppError::NotFound)?;
    target(&state, &session, user).await?;
    state
        .store
        .transfer_ownership(session.org_id(), session.user.id, user, state.now())
        .await?;
    Ok(see_other("/settings/team?notice=transferred"))
}
