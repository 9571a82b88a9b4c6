//! Opening an emailed invitation: a newcomer signs up on the spot; someone with an account
//! logs in (as the invited address) and accepts.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use kaltalk_core::{EmailAddress, Password, PersonName, ValidationError, token};
use kaltalk_store::{Acceptor, Invitation, NewUser, StoreError};
use serde::Deserialize;

use crate::auth::csrf::check_token;
use crate::auth::{AgentSession, password, session};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::ticked;
use crate::web::{FieldErrors, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/invitations/{token}", get(show).post(accept))
}

pub enum InvitationMode {
    SignUp,
    Accept(String),
    LogInFirst,
    WrongAccount(String),
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/invitation.html")]
struct InvitationPage {
    layout: Layout,
    token: String,
    org_name: String,
    role: String,
    email: String,
    mode: InvitationMode,
    name: String,
    age_ticked: bool,
    errors: FieldErrors,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct JoinForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    age_confirmed: Option<String>,
    csrf_token: Option<String>,
}

/// The open invitation behind a link, or a page saying why it cannot be used.
async fn open_invitation(state: &AppState, link_token: &str) -> Result<Invitation, AppError> {
    match state.store.find_invitation(&token::hash(link_token)).await {
        Ok(invitation) if invitation.is_open(state.now()) => Ok(invitation),
        Ok(_) | Err(StoreError::NotFound) => Err(AppError::Forbidden(
            "This invitation has expired, was revoked, or was already used. Ask the person who invited you for a new one.",
        )),
        Err(err) => Err(err.into()),
    }
}

async fn mode_for(
    state: &AppState,
    invitation: &Invitation,
    session: Option<&AgentSession>,
) -> Result<InvitationMode, AppError> {
    Ok(match session {
        Some(session) if session.user.email == invitation.email => {
            InvitationMode::Accept(session.csrf_token.clone())
        }
        Some(session) => InvitationMode::WrongAccount(session.user.email.clone()),
        None => {
            let email = EmailAddress::parse("email", &invitation.email)
                .map_err(|e| AppError::Internal(e.into()))?;
            if state.store.find_user_by_email(&email).await?.is_some() {
                InvitationMode::LogInFirst
            } else {
                InvitationMode::SignUp
            }
        }
    })
}

fn page(
    state: &AppState,
    link_token: String,
    invitation: &Invitation,
    mode: InvitationMode,
) -> InvitationPage {
    InvitationPage {
        layout: Layout::public(state),
        token: link_token,
        org_name: invitation.org_name.clone(),
        role: invitation.role().label().to_lowercase(),
        email: invitation.email.clone(),
        mode,
        name: String::new(),
        age_ticked: false,
        errors: FieldErrors::default(),
        error: None,
    }
}

async fn optional_session(state: &AppState, request: Request) -> (Option<AgentSession>, Request) {
    let (mut parts, body) = request.into_parts();
    let session = AgentSession::from_parts(&mut parts, state).await.ok();
    (session, Request::from_parts(parts, body))
}

async fn show(
    State(state): State<AppState>,
    Path(link_token): Path<String>,
    request: Request,
) -> PageResult {
    let invitation = open_invitation(&state, &link_token).await?;
    let (session, _) = optional_session(&state, request).await;
    let mode = mode_for(&state, &invitation, session.as_ref()).await?;
    Ok(page(&state, link_token, &invitation, mode).into_response())
}

async fn accept(
    State(state): State<AppState>,
    Path(link_token): Path<String>,
    request: Request,
) -> PageResult {
    let invitation = open_invitation(&state, &link_token).await?;
    let (session, request) = optional_session(&state, request).await;
    let Form(form) = Form::<JoinForm>::from_request(request, &state)
        .await
        .map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
    let token_hash = token::hash(&link_token);

    if let Some(session) = session {
        check_token(form.csrf_token.as_deref(), &session.csrf_token)?;
        if session.user.email != invitation.email {
            let mode = InvitationMode::WrongAccount(session.user.email.clone());
            return Ok((
                StatusCode::FORBIDDEN,
                page(&state, link_token, &invitation, mode),
            )
                .into_response());
        }
        let (_, org) = state
            .store
            .accept_invitation(
                &token_hash,
                Acceptor::Existing(session.user.id),
                state.now(),
            )
            .await?;
        state
            .store
            .switch_session_org(session.session_id, org)
            .await?;
        return Ok(Redirect::to("/?notice=joined").into_response());
    }

    if !matches!(
        mode_for(&state, &invitation, None).await?,
        InvitationMode::SignUp
    ) {
        return Ok((
            StatusCode::CONFLICT,
            page(&state, link_token, &invitation, InvitationMode::LogInFirst),
        )
            .into_response());
    }
    let mut errors = FieldErrors::default();
    let name = errors.take(PersonName::parse("name", &form.name));
    let password = errors.take(Password::parse("password", &form.password));
    if !ticked(&form.age_confirmed) {
        errors.add(ValidationError::new(
            "age_confirmed",
            "KalTalk is not for people under 16: confirm that you are 16 or older.",
        ));
    }
    let (Some(name), Some(password), true) = (name, password, errors.is_empty()) else {
        let mut page = page(&state, link_token, &invitation, InvitationMode::SignUp);
        page.name = form.name;
        page.age_ticked = ticked(&form.age_confirmed);
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let email = EmailAddress::parse("email", &invitation.email)
        .map_err(|e| AppError::Internal(e.into()))?;
    let user = NewUser {
        name,
        email,
        password_hash: password::hash(&password, state.bcrypt_cost).await?,
        // The link reached this address, which proves it.
        email_verified: true,
    };
    let (user_id, org) = state
        .store
        .accept_invitation(&token_hash, Acceptor::New(&user), state.now())
        .await?;
    let cookie = session::start(&state, user_id, org).await?;
    Ok((CookieJar::new().add(cookie), Redirect::to("/")).into_response())
}

use axum::extract::FromRequest;
