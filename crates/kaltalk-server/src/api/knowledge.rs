//! Knowledge sources over the API: list with their state, add text or a web page or site,
//! re-sync, delete. Validation and deletion are the dashboard's (`knowledge::sources`).

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use kaltalk_ai::extract::ExtractError;
use kaltalk_core::{OrgId, Permission, Text};
use kaltalk_store::knowledge::{Source, SyncInterval};
use serde_json::{Map, Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{object, refuse_unknown, require_json};
use super::pagination::{self, PageQuery};
use super::{require, resource_docs};
use crate::attachments::clean_filename;
use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::knowledge::sources;
use crate::state::AppState;

/// A JSON source body at most (the text of a text source is capped at 200 KB).
const JSON_BODY_LIMIT: usize = 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // A file is read up to the configured cap by the handler itself.
        .routes(routes!(list, create).layer(DefaultBodyLimit::disable()))
        .routes(routes!(show, delete))
        .routes(routes!(resync))
}

fn source_json(source: &Source) -> Value {
    json!({
        "id": source.id,
        "kind": source.kind,
        "title": source.title,
        "url": source.url,
        "file_name": source.file_name,
        "state": source.state,
        "error": source.error,
        "pages": source.pages,
        "chunks": source.chunks,
        "last_synced_at": source.last_synced_at,
        "sync_every": source.sync_interval().map(SyncInterval::as_str),
        "next_sync_at": source.next_sync_at,
        "created_at": source.created_at,
    })
}

fn source_id(raw: &str) -> Result<Uuid, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

fn string_field<'a>(map: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, AppError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(AppError::invalid(field, "Must be a string.")),
    }
}

/// Newest first, each with its indexing state (`queued`, `indexing`, `ready`, `failed`).
#[utoipa::path(get, path = "/knowledge/sources", tag = "knowledge", params(PageQuery),
    responses((status = 200, body = resource_docs::KnowledgeSourcePage)))]
async fn list(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    pagination::Pagination(page): pagination::Pagination,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::ManageInboxes)?;
    // An organization has tens of sources, not thousands: paged in memory.
    let all = state.store.list_sources(principal.org_id()).await?;
    let (data, next_cursor) = pagination::newest_first(all, page, |s| (s.created_at, s.id));
    let data: Vec<Value> = data.iter().map(source_json).collect();
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

/// One source with its indexing state.
#[utoipa::path(get, path = "/knowledge/sources/{id}", tag = "knowledge",
    params(("id" = String, Path, description = "The source's id.")),
    responses((status = 200, body = resource_docs::KnowledgeSource)))]
async fn show(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::ManageInboxes)?;
    let source = state
        .store
        .get_source(principal.org_id(), source_id(&id)?)
        .await?;
    Ok(Json(source_json(&source)))
}

/// A file as multipart (`file`, optional `title`, optional `kind` = `file`); the file
/// is read up to the configured cap, checked as the dashboard checks it, and stored.
async fn create_file(
    state: &AppState,
    org: OrgId,
    mut multipart: Multipart,
) -> Result<Uuid, AppError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        AppError::invalid(
            "file",
            format!("The upload could not be read: {}", e.body_text()),
        )
    };
    let cap = state.config.knowledge.max_file_bytes;
    let mut title = String::new();
    let mut file = None;
    while let Some(mut field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or_default() {
            "file" => {
                let name = clean_filename(field.file_name().unwrap_or("file"));
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() as u64 > cap {
                        return Err(AppError::invalid(
                            "file",
                            format!(
                                "{}: split it, or ask your administrator to raise knowledge.max_file_bytes.",
                                ExtractError::TooLarge { limit: cap }
                            ),
                        ));
                    }
                }
                file = Some((name, bytes));
            }
            "title" => {
                title =
                    Text::parse("title", field.text().await.map_err(unreadable)?)?.into_string();
            }
            "kind" => {
                if field.text().await.map_err(unreadable)? != "file" {
                    return Err(AppError::invalid(
                        "kind",
                        "A multipart upload adds a file; send text, url and site sources as JSON.",
                    ));
                }
            }
            other => {
                return Err(AppError::BadRequest(format!(
                    "Unknown field {other:?}: expected file, title, kind."
                )));
            }
        }
    }
    let (file_name, bytes) =
        file.ok_or_else(|| AppError::invalid("file", "Attach the file to add."))?;
    if bytes.is_empty() {
        return Err(AppError::invalid("file", "The file is empty."));
    }
    sources::check_file_type(&bytes, &file_name).map_err(|why| AppError::invalid("file", why))?;
    sources::add_file_source(state, org, &title, &file_name, &bytes).await
}

/// `{"kind": "text", "title", "text"}`, or `{"kind": "url" | "site", "url", "title"?,
/// "sync_every"?: "daily" | "weekly"}`, or a file as multipart. Indexing is queued; the
/// answer is the source.
#[utoipa::path(post, path = "/knowledge/sources", tag = "knowledge",
    request_body(content(
        (resource_docs::NewKnowledgeSource = "application/json"),
        (resource_docs::NewFileSource = "multipart/form-data"),
    )),
    responses((status = 201, body = resource_docs::KnowledgeSource)))]
async fn create(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    request: Request,
) -> Result<(StatusCode, Json<Value>), AppError> {
    require(&principal, Permission::ManageInboxes)?;
    let org = principal.org_id();
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        let id = create_file(&state, org, multipart).await?;
        let source = state.store.get_source(org, id).await?;
        return Ok((StatusCode::CREATED, Json(source_json(&source))));
    }
    require_json(request.headers())?;
    // JSON bodies are small: the usual limit, since this route lifts it for files.
    let body = axum::body::to_bytes(request.into_body(), JSON_BODY_LIMIT)
        .await
        .map_err(|_| {
            AppError::BadRequest("The body is too large (at most 1 MB of JSON).".into())
        })?;
    let map = object(&body)?;
    let kind = string_field(&map, "kind")?;
    let id = match kind {
        "text" => {
            refuse_unknown(&map, &["kind", "title", "text"])?;
            let (title, text) = sources::text_source(
                string_field(&map, "title")?,
                string_field(&map, "text")?,
                "text",
            )
            .map_err(AppError::Validation)?;
            state
                .store
                .add_text_source(org, title, text, state.now())
                .await?
        }
        "url" | "site" => {
            refuse_unknown(&map, &["kind", "url", "title", "sync_every"])?;
            let url = sources::web_url(string_field(&map, "url")?)
                .map_err(|e| AppError::Validation(vec![e]))?;
            let interval = match string_field(&map, "sync_every")? {
                "" | "none" => None,
                other => Some(SyncInterval::from_name(other).ok_or_else(|| {
                    AppError::invalid("sync_every", "One of none, daily or weekly.")
                })?),
            };
            let title = sources::web_title(string_field(&map, "title")?, &url);
            state
                .store
                .add_web_source(org, kind, &title, url.as_str(), interval, state.now())
                .await?
        }
        _ => {
            return Err(AppError::invalid(
                "kind",
                "One of text, url or site (send a file as multipart/form-data).",
            ));
        }
    };
    let source = state.store.get_source(org, id).await?;
    Ok((StatusCode::CREATED, Json(source_json(&source))))
}

/// Fetches and indexes the source again; the answer is the source, queued.
#[utoipa::path(post, path = "/knowledge/sources/{id}/resync", tag = "knowledge",
    params(("id" = String, Path, description = "The source's id.")),
    responses((status = 202, body = resource_docs::KnowledgeSource)))]
async fn resync(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    require(&principal, Permission::ManageInboxes)?;
    let org = principal.org_id();
    let id = source_id(&id)?;
    state.store.resync_source(org, id, state.now()).await?;
    let source = state.store.get_source(org, id).await?;
    Ok((StatusCode::ACCEPTED, Json(source_json(&source))))
}

/// Deletes the source and what was indexed from it.
#[utoipa::path(delete, path = "/knowledge/sources/{id}", tag = "knowledge",
    params(("id" = String, Path, description = "The source's id.")),
    responses((status = 204, description = "Deleted.")))]
async fn delete(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    require(&principal, Permission::ManageInboxes)?;
    sources::delete_source(&state, principal.org_id(), source_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
