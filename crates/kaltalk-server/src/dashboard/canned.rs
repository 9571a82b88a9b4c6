//! Canned responses: saved replies the team inserts by typing `/shortcut`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kaltalk_core::Text;
use kaltalk_core::{Permission, ValidationError};
use kaltalk_store::labels::CannedResponse;
use kaltalk_store::{Conflict, StoreError};
use serde::Deserialize;

use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoFields, see_other};
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/canned-responses", get(list).post(create))
        .route("/settings/canned-responses/{id}", post(update))
        .route("/settings/canned-responses/{id}/delete", post(delete))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/canned.html")]
struct CannedPage {
    layout: Layout,
    csrf: String,
    can_manage: bool,
    responses: Vec<CannedResponse>,
    shortcut: String,
    text: String,
    errors: FieldErrors,
    /// The response being edited in place when its form came back with errors, with what
    /// was typed.
    editing: Option<Editing>,
}

impl CannedPage {
    /// The edit that came back with errors, if it is this response's.
    fn edit_of(&self, id: &uuid::Uuid) -> Option<&Editing> {
        self.editing.as_ref().filter(|e| e.id == *id)
    }
}

struct Editing {
    id: uuid::Uuid,
    shortcut: String,
    text: String,
    errors: FieldErrors,
}

async fn page(state: &AppState, session: &AgentSession) -> Result<CannedPage, AppError> {
    Ok(CannedPage {
        layout: Layout::signed_in(state, session, "canned").await?,
        csrf: session.csrf_token.clone(),
        can_manage: session.role().can(Permission::ManageInboxes),
        responses: state.store.list_canned_responses(session.org_id()).await?,
        shortcut: String::new(),
        text: String::new(),
        errors: FieldErrors::default(),
        editing: None,
    })
}

async fn list(State(state): State<AppState>, session: AgentSession) -> PageResult {
    session.require(Permission::UseInbox)?;
    Ok(page(&state, &session).await?.into_response())
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    shortcut: Text,
    #[serde(default)]
    text: Text,
}

/// A shortcut and reply as typed, checked; the shortcut without its `/`, lower-cased.
fn validate(form: &CreateForm) -> (String, String, FieldErrors) {
    let shortcut = form.shortcut.trim().trim_start_matches('/').to_lowercase();
    let text = form.text.trim().to_owned();
    let mut errors = FieldErrors::default();
    if shortcut.is_empty()
        || shortcut.chars().count() > 30
        || !shortcut
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        errors.add(ValidationError::new(
            "shortcut",
            "Use 1 to 30 letters, digits, dashes or underscores, e.g. refund.",
        ));
    }
    if text.is_empty() || text.chars().count() > 5000 {
        errors.add(ValidationError::new(
            "text",
            "Write the reply (at most 5000 characters).",
        ));
    }
    (shortcut, text, errors)
}

async fn create(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<CreateForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let (shortcut, text, mut errors) = validate(&form);
    if errors.is_empty() {
        match state
            .store
            .create_canned_response(session.org_id(), &shortcut, &text, state.now())
            .await
        {
            Ok(()) => return Ok(see_other("/settings/canned-responses")),
            Err(StoreError::Conflict(Conflict::ShortcutTaken)) => {
                errors.add(ValidationError::new(
                    "shortcut",
                    format!("/{shortcut} already exists."),
                ));
            }
            Err(err) => return Err(AppError::from(err).into()),
        }
    }
    let mut page = page(&state, &session).await?;
    page.shortcut = form.shortcut.into_string();
    page.text = form.text.into_string();
    page.errors = errors;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Edits a canned response in place; a taken shortcut or a bad value comes back on its
/// row, with what was typed.
async fn update(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    SessionForm { session, form }: SessionForm<CreateForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let (shortcut, text, mut errors) = validate(&form);
    if errors.is_empty() {
        match state
            .store
            .update_canned_response(session.org_id(), id, &shortcut, &text, state.now())
            .await
        {
            Ok(()) => return Ok(see_other("/settings/canned-responses")),
            Err(StoreError::Conflict(Conflict::ShortcutTaken)) => {
                errors.add(ValidationError::new(
                    "shortcut",
                    format!("/{shortcut} already exists."),
                ));
            }
            Err(err) => return Err(AppError::from(err).into()),
        }
    }
    let mut page = page(&state, &session).await?;
    // Another organization's id, or one deleted meanwhile, is not found, as everywhere.
    if !page.responses.iter().any(|r| r.id == id) {
        return Err(AppError::NotFound.into());
    }
    page.editing = Some(Editing {
        id,
        shortcut: form.shortcut.into_string(),
        text: form.text.into_string(),
        errors,
    });
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

async fn delete(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    state
        .store
        .delete_canned_response(session.org_id(), id)
        .await?;
    Ok(see_other("/settings/canned-responses"))
}
