//! The knowledge base: what the AI agent may answer from, and the state of each source.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kaltalk_core::{Permission, ValidationError};
use kaltalk_store::knowledge::Source;
use serde::Deserialize;

use super::{NoFields, NoticeQuery, see_other};
use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/knowledge", get(list).post(add_text))
        .route("/settings/knowledge/web", post(add_web))
        .route("/settings/knowledge/{id}/resync", post(resync))
        .route("/settings/knowledge/{id}/delete", post(delete))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/knowledge.html")]
struct KnowledgePage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    sources: Vec<Source>,
    /// How retrieval works on this server (keyword-only, or with which model).
    retrieval: String,
    title: String,
    body: String,
    web_url: String,
    errors: FieldErrors,
}

async fn page(state: &AppState, session: &AgentSession) -> Result<KnowledgePage, AppError> {
    Ok(KnowledgePage {
        layout: Layout::signed_in(state, session, "knowledge").await?,
        notice: None,
        csrf: session.csrf_token.clone(),
        sources: state.store.list_sources(session.org_id()).await?,
        retrieval: state.knowledge.embeddings.describe(),
        title: String::new(),
        body: String::new(),
        web_url: String::new(),
        errors: FieldErrors::default(),
    })
}

async fn list(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut page = page(&state, &session).await?;
    page.notice = match query.notice.as_deref() {
        Some("added") => {
            Some("Added. It is being indexed; the state below updates when it is ready.")
        }
        Some("resync") => Some("Re-sync queued."),
        Some("deleted") => Some("Deleted. The bot no longer answers from it."),
        _ => None,
    };
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct TextForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

async fn add_text(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<TextForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut errors = FieldErrors::default();
    let title = form.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        errors.add(ValidationError::new(
            "title",
            "Give it a title (1 to 200 characters).",
        ));
    }
    let body = form.body.trim();
    if body.is_empty() || body.len() > 200_000 {
        errors.add(ValidationError::new(
            "body",
            "Write the text (at most 200 KB).",
        ));
    }
    if !errors.is_empty() {
        let mut page = page(&state, &session).await?;
        page.title = form.title;
        page.body = form.body;
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    state
        .store
        .add_text_source(session.org_id(), title, body, state.now())
        .await?;
    Ok(see_other("/settings/knowledge?notice=added"))
}

#[derive(Deserialize)]
struct WebForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    title: String,
    whole_site: Option<String>,
}

/// A web page, or a whole site crawled from it (same host, robots.txt honoured).
async fn add_web(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<WebForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let url = url::Url::parse(form.url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    let Some(url) = url else {
        let mut page = page(&state, &session).await?;
        page.errors = vec![ValidationError::new(
            "url",
            "Enter a web address starting with https://",
        )]
        .into();
        page.web_url = form.url;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let title = match form.title.trim() {
        "" => url.host_str().unwrap_or("Website").to_owned(),
        title => title.chars().take(200).collect(),
    };
    let kind = if super::ticked(&form.whole_site) {
        "site"
    } else {
        "url"
    };
    state
        .store
        .add_web_source(session.org_id(), kind, &title, url.as_str(), state.now())
        .await?;
    Ok(see_other("/settings/knowledge?notice=added"))
}

async fn resync(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    state
        .store
        .resync_source(session.org_id(), id, state.now())
        .await?;
    Ok(see_other("/settings/knowledge?notice=resync"))
}

async fn delete(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    state
        .store
        .delete_source(session.org_id(), id, state.now())
        .await?;
    Ok(see_other("/settings/knowledge?notice=deleted"))
}
