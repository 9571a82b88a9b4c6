//! A person's own account: name, sign-in address, password, a copy of their data, and
//! deleting the account.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use chrono::Duration;
use kaltalk_core::{EmailAddress, Password, PersonName, ValidationError};
use kaltalk_store::privacy::Leaving;
use kaltalk_store::{Conflict, EmailChange, LinkToken, StoreError};
use serde::Deserialize;

use super::account::{UNDO_EMAIL_CHANGE_DAYS, VERIFY_LINK_HOURS, email_change_for};
use crate::auth::{AgentSession, SessionForm, password, session};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoticeQuery, see_other};
use crate::web::{FieldErrors, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/profile", get(show))
        .route("/settings/profile/name", post(rename))
        .route("/settings/profile/email", post(change_email))
        .route("/settings/profile/password", post(change_password))
        .route("/settings/profile/export", get(export))
        .route("/settings/profile/apps/{id}/sign-out", post(sign_out_app))
        .route("/settings/profile/delete", post(delete_account))
}

/// What deleting the account does in one organization, as the page says it.
struct DeletionStep {
    organization: String,
    outcome: &'static str,
    blocks: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "app/profile.html")]
struct ProfilePage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    name: String,
    email: String,
    verified: bool,
    errors: FieldErrors,
    deletion: Vec<DeletionStep>,
    /// The browsers that get this person's pushes here.
    devices: Vec<Device>,
    /// The native apps signed in as this person, with the device each registered.
    apps: Vec<AppDevice>,
}

/// A signed-in native app, as Profile lists it.
struct AppDevice {
    session_id: kaltalk_core::SessionId,
    /// "Android 14, app 2.3.0", or that it gets no pushes.
    what: String,
    since: String,
    last_push: Option<String>,
}

/// A browser that gets the person's pushes, as Profile lists it.
struct Device {
    id: kaltalk_core::PushSubscriptionId,
    /// Its push service, as people know it.
    service: String,
    since: String,
    last_push: Option<String>,
}

impl ProfilePage {
    fn deletion_blocked(&self) -> bool {
        self.deletion.iter().any(|step| step.blocks)
    }
}

async fn page(
    state: &AppState,
    session: &AgentSession,
    errors: FieldErrors,
    notice: Option<&'static str>,
) -> Result<ProfilePage, AppError> {
    let plan = state.store.account_deletion_plan(session.user.id).await?;
    let deletion = plan
        .into_iter()
        .map(|(_, organization, leaving)| {
            let outcome = match leaving {
                Leaving::DeletesOrganization => {
                    "deleted with your account: you are its only member, so its conversations, contacts, knowledge base and settings go too"
                }
                Leaving::LeavesOrganization => {
                    "you leave it; the replies you wrote stay there without your name"
                }
                Leaving::MustTransferOwnership => {
                    "you own it and others are members: make one of them the owner first (Team)"
                }
            };
            DeletionStep {
                organization,
                outcome,
                blocks: leaving == Leaving::MustTransferOwnership,
            }
        })
        .collect();
    let now = state.now();
    let devices = state
        .store
        .list_push_subscriptions(session.org_id(), session.user.id)
        .await?
        .into_iter()
        .map(|b| Device {
            id: b.id,
            service: crate::notifications::push::push_service_name(&b.endpoint),
            since: crate::conversations::short_time(&b.created_at, &now),
            last_push: b
                .last_pushed_at
                .map(|at| crate::conversations::short_time(&at, &now)),
        })
        .collect();
    let apps = state
        .store
        .list_app_sessions(session.user.id, now)
        .await?
        .into_iter()
        .map(|app| AppDevice {
            session_id: app.id,
            what: match &app.device {
                Some(device) => format!(
                    "The app on {} {}, version {}",
                    match device.platform {
                        kaltalk_store::devices::Platform::Fcm => "Android",
                        kaltalk_store::devices::Platform::Apns => "iOS",
                    },
                    device.os_version,
                    device.app_version
                ),
                None => "The app, signed in (no pushes: it registered no device)".to_owned(),
            },
            since: crate::conversations::short_time(&app.created_at, &now),
            last_push: app
                .device
                .and_then(|d| d.last_pushed_at)
                .map(|at| crate::conversations::short_time(&at, &now)),
        })
        .collect();
    Ok(ProfilePage {
        devices,
        apps,
        layout: Layout::signed_in(state, session, "profile").await?,
        notice,
        csrf: session.csrf_token.clone(),
        name: session.user.name.clone(),
        email: session.user.email.clone(),
        verified: session.user.email_verified_at.is_some(),
        errors,
        deletion,
    })
}

async fn invalid(state: &AppState, session: &AgentSession, error: ValidationError) -> PageResult {
    let page = page(state, session, vec![error].into(), None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Whether `typed` is the signed-in person's password (asked again before what cannot be
/// undone).
pub(super) async fn is_their_password(
    state: &AppState,
    session: &AgentSession,
    typed: &str,
) -> Result<bool, AppError> {
    Ok(password::verify(typed, Some(&session.user.password_hash), state.bcrypt_cost).await?)
}

/// Goes on only when `typed` is the person's password; otherwise the page again, with
/// `wrong` on its field.
async fn require_password(
    state: &AppState,
    session: &AgentSession,
    typed: &str,
    wrong: ValidationError,
) -> Result<(), PageResult> {
    match is_their_password(state, session, typed).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(invalid(state, session, wrong).await),
        Err(error) => Err(Err(error.into())),
    }
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let notice = match query.notice.as_deref() {
        Some("name") => Some("Your name was saved."),
        Some("email") => Some(
            "Follow the link we sent to the new address: it becomes your sign-in address then. Until you do, you sign in with the current one.",
        ),
        Some("password") => Some("Your password was changed. Every other session was signed out."),
        Some("device-removed") => Some("That device gets no more pushes."),
        Some("app-signed-out") => {
            Some("That app was signed out: its token no longer works and it gets no more pushes.")
        }
        _ => None,
    };
    Ok(page(&state, &session, FieldErrors::default(), notice)
        .await?
        .into_response())
}

/// Signs one of the person's native apps out (its device goes with it).
async fn sign_out_app(
    State(state): State<AppState>,
    crate::web::IdPath(id): crate::web::IdPath<kaltalk_core::SessionId>,
    SessionForm { session, .. }: SessionForm<crate::web::forms::NoFields>,
) -> PageResult {
    state.store.revoke_app_session(session.user.id, id).await?;
    Ok(see_other("/settings/profile?notice=app-signed-out#devices"))
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    name: String,
}

async fn rename(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<NameForm>,
) -> PageResult {
    let name = match PersonName::parse("name", &form.name) {
        Ok(name) => name,
        Err(error) => return invalid(&state, &session, error).await,
    };
    state
        .store
        .rename_user(session.user.id, &name, state.now())
        .await?;
    Ok(see_other("/settings/profile?notice=name"))
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_password: String,
}

/// Asks to change the sign-in address, with the password (a borrowed session must not be
/// enough to move the account): nothing changes until the link sent to the new address is
/// followed, and the current address gets a notice with an undo link.
async fn change_email(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<EmailForm>,
) -> PageResult {
    if let Err(page) = require_password(
        &state,
        &session,
        &form.email_password,
        ValidationError::new("email_password", "That is not your password."),
    )
    .await
    {
        return page;
    }
    let email = match EmailAddress::parse("email", &form.email) {
        Ok(email) => email,
        Err(error) => return invalid(&state, &session, error).await,
    };
    if email.as_str() == session.user.email {
        return Ok(see_other("/settings/profile"));
    }
    let mail = email_change_for(&state, &session.user, &email)?;
    let now = state.now();
    let change = EmailChange {
        user: session.user.id,
        from: &session.user.email,
        to: &email,
        confirm: (
            LinkToken {
                token_hash: &mail.confirm_hash,
                expires_at: now + Duration::hours(VERIFY_LINK_HOURS),
            },
            &mail.confirm,
        ),
        undo: (
            LinkToken {
                token_hash: &mail.undo_hash,
                expires_at: now + Duration::days(UNDO_EMAIL_CHANGE_DAYS),
            },
            &mail.undo,
        ),
    };
    match state.store.request_email_change(&change, now).await {
        Ok(()) => Ok(see_other("/settings/profile?notice=email")),
        Err(err) => match AppError::from(err) {
            AppError::Validation(mut list) if !list.is_empty() => {
                invalid(&state, &session, list.remove(0)).await
            }
            other => Err(other.into()),
        },
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Ends every session of the person, this one included, then signs this browser in again
/// with a fresh token: a stolen cookie stops working the moment the password changes.
async fn change_password(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<PasswordForm>,
) -> PageResult {
    if let Err(page) = require_password(
        &state,
        &session,
        &form.current_password,
        ValidationError::new("current_password", "That is not your current password."),
    )
    .await
    {
        return page;
    }
    let new_password = match Password::parse("new_password", &form.new_password) {
        Ok(password) => password,
        Err(error) => return invalid(&state, &session, error).await,
    };
    let hash = password::hash(&new_password, state.bcrypt_cost).await?;
    state
        .store
        .change_password(session.user.id, &hash, state.now())
        .await?;
    let cookie = session::start(&state, session.user.id, session.org_id()).await?;
    Ok((
        CookieJar::new().add(cookie),
        Redirect::to("/settings/profile?notice=password"),
    )
        .into_response())
}

/// A copy of what KalTalk holds about the signed-in person, as a JSON download.
async fn export(State(state): State<AppState>, session: AgentSession) -> PageResult {
    let data = state.store.account_data(session.user.id).await?;
    let body = serde_json::to_string_pretty(&serde_json::json!({
        "exported_at": state.now(),
        "account": data,
    }))
    .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("writing the export")))?;
    let filename = format!(
        "attachment; filename=\"kaltalk-account-{}.json\"",
        state.now().format("%Y-%m-%d")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    delete_password: String,
}

/// Deletes the account once the person has typed their password; the browser is signed
/// out (every session went with the account).
async fn delete_account(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<DeleteForm>,
) -> PageResult {
    if let Err(page) = require_password(
        &state,
        &session,
        &form.delete_password,
        ValidationError::new("delete_password", "That is not your password."),
    )
    .await
    {
        return page;
    }
    let deleted = match state
        .store
        .delete_account(session.user.id, state.now())
        .await
    {
        Ok(deleted) => deleted,
        Err(StoreError::Conflict(Conflict::OwnsSharedOrganization(name))) => {
            let message = format!(
                "You own {name}, where others are members: make one of them the owner first (Team), then delete your account."
            );
            return invalid(
                &state,
                &session,
                ValidationError::new("delete_password", &message),
            )
            .await;
        }
        Err(err) => return Err(err.into()),
    };
    for org in &deleted.deleted_organizations {
        state.forget_organization(*org).await;
    }
    state.hub.publish_events(deleted.events);
    Ok((
        CookieJar::new().add(session::removal_cookie(&state)),
        Redirect::to("/login?notice=account-deleted"),
    )
        .into_response())
}
