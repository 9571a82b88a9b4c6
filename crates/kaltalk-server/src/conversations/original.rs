//! An email message's original: what the conversation shows is trimmed of quoted history
//! and signatures; here the team reads the whole email (text, sanitized HTML, the notes
//! about what could not be read) or downloads it as it arrived.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kaltalk_core::{MessageId, Permission};
use kaltalk_store::email::EmailRecord;

use crate::auth::AgentSession;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::embed::SanitizedHtml;
use crate::web::{IdPath, Layout, PageResult};

#[derive(Template, WebTemplate)]
#[template(path = "conversations/original.html")]
struct OriginalPage {
    layout: Layout,
    email: EmailRecord,
    /// The email's HTML part, sanitized again for this page.
    html: Option<SanitizedHtml>,
    conversation: String,
    message: String,
    notes: Vec<String>,
}

pub async fn page(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<MessageId>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let email = state.store.message_email(session.org_id(), id).await?;
    let message = state.store.get_message(session.org_id(), id).await?;
    let notes = message
        .metadata
        .as_ref()
        .and_then(|m| m.0.get("email")?.get("notes")?.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    Ok(OriginalPage {
        layout: Layout::signed_in(&state, &session, "inbox").await?,
        conversation: message.conversation_id.to_string(),
        message: message.id.to_string(),
        html: email.html.as_deref().map(SanitizedHtml::email),
        email,
        notes,
    }
    .into_response())
}

/// The message exactly as it arrived, as an `.eml` download.
pub async fn raw(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<MessageId>,
) -> Result<Response, AppError> {
    session.require(Permission::UseInbox)?;
    let email = state.store.message_email(session.org_id(), id).await?;
    let key = email.raw_key.ok_or(AppError::NotFound)?;
    let bytes = state
        .blobs
        .get(&key)
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("reading an email")))?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"original.eml\""),
    );
    Ok(response)
}
