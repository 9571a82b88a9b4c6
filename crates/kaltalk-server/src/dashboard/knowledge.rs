//! The knowledge base: what the AI agent may answer from, and the state of each source:
//! texts, web pages and sites (re-synced on a schedule if asked), and uploaded files.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kaltalk_ai::extract::{ExtractError, Size};
use kaltalk_core::Text;
use kaltalk_core::{Permission, ValidationError};
use kaltalk_store::knowledge::{Source, SyncInterval};
use serde::Deserialize;

use crate::attachments::clean_filename;
use crate::auth::{AgentSession, SessionForm, SessionUpload, UploadCap};
use crate::error::AppError;
use crate::knowledge::sources;
use crate::state::AppState;
use crate::web::forms::{NoFields, NoticeQuery, see_other};
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/knowledge", get(list).post(add_text))
        .route("/settings/knowledge/web", post(add_web))
        .route(
            "/settings/knowledge/file",
            // `SessionUpload` enforces the configured file cap itself.
            post(add_file).layer(DefaultBodyLimit::disable()),
        )
        .route("/settings/knowledge/{id}", get(view))
        .route("/settings/knowledge/{id}/edit", post(edit_text))
        .route("/settings/knowledge/{id}/schedule", post(schedule))
        .route("/settings/knowledge/{id}/resync", post(resync))
        .route("/settings/knowledge/{id}/delete", post(delete))
}

/// The interval choices of the web forms, as `(value, label)`.
const SYNC_CHOICES: [(&str, &str); 3] = [
    ("none", "Only when I ask"),
    ("daily", "Every day"),
    ("weekly", "Every week"),
];

/// A form's interval choice.
fn sync_interval(value: &str) -> Result<Option<SyncInterval>, ValidationError> {
    match value {
        "" | "none" => Ok(None),
        other => SyncInterval::from_name(other).map(Some).ok_or_else(|| {
            ValidationError::new("sync_every", "Choose how often: never, daily or weekly.")
        }),
    }
}

/// An interval choice as a `<select>` shows it.
struct SyncOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn sync_options(selected: &str) -> Vec<SyncOption> {
    SYNC_CHOICES
        .iter()
        .map(|&(value, label)| SyncOption {
            value,
            label,
            selected: value == selected,
        })
        .collect()
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
    /// The technical reason behind a keyword-only `retrieval`, shown folded away.
    retrieval_detail: Option<String>,
    title: String,
    body: String,
    web_url: String,
    web_title: String,
    sync_options: Vec<SyncOption>,
    file_title: String,
    /// The configured file cap, as people read it.
    max_file_size: String,
    errors: FieldErrors,
}

async fn page(state: &AppState, session: &AgentSession) -> Result<KnowledgePage, AppError> {
    let embeddings = state.knowledge.embeddings();
    Ok(KnowledgePage {
        layout: Layout::signed_in(state, session, "knowledge").await?,
        notice: None,
        csrf: session.csrf_token.clone(),
        sources: state.store.list_sources(session.org_id()).await?,
        retrieval: embeddings.describe(),
        retrieval_detail: embeddings.detail().map(str::to_owned),
        title: String::new(),
        body: String::new(),
        web_url: String::new(),
        web_title: String::new(),
        sync_options: sync_options("none"),
        file_title: String::new(),
        max_file_size: Size(state.config.knowledge.max_file_bytes).to_string(),
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
    title: Text,
    #[serde(default)]
    body: Text,
}

async fn add_text(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<TextForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let (title, body) = match sources::text_source(&form.title, &form.body, "body") {
        Ok(valid) => valid,
        Err(found) => {
            let mut errors = FieldErrors::default();
            for error in found {
                errors.add(error);
            }
            let mut page = page(&state, &session).await?;
            page.title = form.title.to_string();
            page.body = form.body.to_string();
            page.errors = errors;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    state
        .store
        .add_text_source(session.org_id(), title, body, state.now())
        .await?;
    Ok(see_other("/settings/knowledge?notice=added"))
}

#[derive(Deserialize)]
struct WebForm {
    #[serde(default)]
    url: Text,
    #[serde(default)]
    title: Text,
    whole_site: Option<String>,
    #[serde(default)]
    sync_every: String,
}

/// A web page, or a whole site crawled from it (same host, robots.txt honoured).
async fn add_web(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<WebForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut errors = FieldErrors::default();
    let url = errors.take(sources::web_url(&form.url));
    let interval = errors.take(sync_interval(&form.sync_every));
    let (Some(url), Some(interval)) = (url, interval) else {
        let mut page = page(&state, &session).await?;
        page.errors = errors;
        page.web_url = form.url.into_string();
        page.web_title = form.title.into_string();
        page.sync_options = sync_options(&form.sync_every);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let title = sources::web_title(&form.title, &url);
    let kind = if crate::web::forms::ticked(&form.whole_site) {
        "site"
    } else {
        "url"
    };
    state
        .store
        .add_web_source(
            session.org_id(),
            kind,
            &title,
            url.as_str(),
            interval,
            state.now(),
        )
        .await?;
    Ok(see_other("/settings/knowledge?notice=added"))
}

/// The configured size cap for uploaded sources.
struct KnowledgeFileCap;

impl UploadCap for KnowledgeFileCap {
    fn max_file_bytes(state: &AppState) -> u64 {
        state.config.knowledge.max_file_bytes
    }
}

#[derive(Deserialize)]
struct FileForm {
    #[serde(default)]
    title: Text,
}

/// An uploaded file: checked (size, type), stored, and queued to be read into chunks.
async fn add_file(
    State(state): State<AppState>,
    mut upload: SessionUpload<FileForm, KnowledgeFileCap>,
) -> PageResult {
    let file = upload.file();
    let SessionUpload { session, form, .. } = upload;
    session.require(Permission::ManageInboxes)?;
    let file =
        file.filter(|f| !(f.file_name.is_empty() && f.bytes.as_ref().is_some_and(Vec::is_empty)));
    let checked = match file {
        None => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a file to upload.".to_owned(),
        )),
        Some(file) => match file.bytes {
            None => Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{}: split it, or ask your administrator to raise knowledge.max_file_bytes.",
                    ExtractError::TooLarge {
                        limit: state.config.knowledge.max_file_bytes
                    }
                ),
            )),
            Some(bytes) if bytes.is_empty() => Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "The file is empty.".to_owned(),
            )),
            Some(bytes) => {
                let name = clean_filename(&file.file_name);
                sources::check_file_type(&bytes, &name)
                    .map(|_| (name, bytes))
                    .map_err(|why| (StatusCode::UNPROCESSABLE_ENTITY, why))
            }
        },
    };
    let (file_name, bytes) = match checked {
        Ok(file) => file,
        Err((status, message)) => {
            let mut page = page(&state, &session).await?;
            page.errors.add(ValidationError::new("file", message));
            page.file_title = form.title.into_string();
            return Ok((status, page).into_response());
        }
    };
    sources::add_file_source(&state, session.org_id(), &form.title, &file_name, &bytes).await?;
    Ok(see_other("/settings/knowledge?notice=added"))
}

/// A chunk as its source's page shows it: where it sits, and how it starts.
struct ChunkView {
    heading_path: String,
    preview: String,
}

/// The longest chunk start shown on a source's page.
const PREVIEW_CHARS: usize = 280;

#[derive(Template, WebTemplate)]
#[template(path = "app/knowledge_source.html")]
struct SourcePage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    source: Source,
    sync_options: Vec<SyncOption>,
    chunks: Vec<ChunkView>,
    errors: FieldErrors,
    /// A text source's title and text in its edit form (as saved, or as typed when the
    /// form came back with errors).
    edit_title: String,
    edit_body: String,
}

async fn source_page(
    state: &AppState,
    session: &AgentSession,
    id: uuid::Uuid,
) -> Result<SourcePage, AppError> {
    let org = session.org_id();
    let source = state.store.get_source(org, id).await?;
    let chunks = state
        .store
        .source_chunks(org, id)
        .await?
        .into_iter()
        .map(|chunk| {
            let mut preview: String = chunk.text.chars().take(PREVIEW_CHARS).collect();
            if chunk.text.chars().count() > PREVIEW_CHARS {
                preview.push('…');
            }
            ChunkView {
                heading_path: chunk.heading_path,
                preview,
            }
        })
        .collect();
    Ok(SourcePage {
        layout: Layout::signed_in(state, session, "knowledge").await?,
        notice: None,
        csrf: session.csrf_token.clone(),
        sync_options: sync_options(source.sync_interval().map_or("none", SyncInterval::as_str)),
        edit_title: source.title.clone(),
        edit_body: source.body.clone().unwrap_or_default(),
        source,
        chunks,
        errors: FieldErrors::default(),
    })
}

/// One source: its state, schedule and chunks.
async fn view(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut page = source_page(&state, &session, id).await?;
    page.notice = match query.notice.as_deref() {
        Some("schedule") => Some("Schedule saved."),
        Some("edited") => Some(
            "Saved. It is being indexed again; the bot answers from the new text once it is ready.",
        ),
        _ => None,
    };
    Ok(page.into_response())
}

/// Edits a text source in place and queues its re-indexing with the usual indexing job.
async fn edit_text(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    SessionForm { session, form }: SessionForm<TextForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let source = state.store.get_source(session.org_id(), id).await?;
    if source.kind != "text" {
        return Err(AppError::invalid(
            "body",
            "Only text sources are edited here: re-sync a web page, upload a file again.",
        )
        .into());
    }
    match sources::text_source(&form.title, &form.body, "body") {
        Ok((title, body)) => {
            state
                .store
                .update_text_source(session.org_id(), id, title, body, state.now())
                .await?;
            Ok(see_other(&format!(
                "/settings/knowledge/{id}?notice=edited"
            )))
        }
        Err(found) => {
            let mut page = source_page(&state, &session, id).await?;
            page.errors = found.into();
            page.edit_title = form.title.into_string();
            page.edit_body = form.body.into_string();
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
struct ScheduleForm {
    #[serde(default)]
    sync_every: String,
}

/// How often a web source re-syncs on its own.
async fn schedule(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    SessionForm { session, form }: SessionForm<ScheduleForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let source = state.store.get_source(session.org_id(), id).await?;
    let interval = match sync_interval(&form.sync_every) {
        Err(error) => Err(error),
        Ok(_) if !source.can_be_scheduled() => Err(ValidationError::new(
            "sync_every",
            "Only web pages and sites change on their own; re-sync other sources when you change them.",
        )),
        Ok(interval) => Ok(interval),
    };
    let interval = match interval {
        Ok(interval) => interval,
        Err(error) => {
            let mut page = source_page(&state, &session, id).await?;
            page.errors.add(error);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    state
        .store
        .set_sync_interval(session.org_id(), id, interval, state.now())
        .await?;
    Ok(see_other(&format!(
        "/settings/knowledge/{id}?notice=schedule"
    )))
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
    sources::delete_source(&state, session.org_id(), id).await?;
    Ok(see_other("/settings/knowledge?notice=deleted"))
}
