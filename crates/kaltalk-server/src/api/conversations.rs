//! Conversations and their messages over the API (read side for now; the API issue adds
//! writes).

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use kaltalk_core::chat::ConversationStatus;
use kaltalk_core::{ConversationId, InboxId, UserId};
use kaltalk_store::chat::{AssigneeFilter, ConversationFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(messages))
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `open`, `pending`, `resolved` or `snoozed`.
    #[param(pattern = "^(open|pending|resolved|snoozed)$")]
    status: Option<String>,
    /// An inbox id.
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    inbox_id: Option<String>,
    /// A user id, or `unassigned`.
    #[param(
        pattern = "^(unassigned|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    assignee_id: Option<String>,
    /// Conversations per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    cursor: Option<String>,
    /// Conversations with this label.
    #[param(pattern = "^[A-Za-z0-9_-]{1,40}$")]
    label: Option<String>,
    /// Search words (message text, contact name or email); other filters do not apply.
    q: Option<String>,
}

fn cursor_of(at: DateTime<Utc>, id: ConversationId) -> String {
    format!("{}_{}", at.timestamp_micros(), id)
}

fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, ConversationId)> {
    let (micros, id) = cursor.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

/// Newest activity first; `next_cursor` continues after the last item.
#[utoipa::path(get, path = "/conversations", tag = "conversations", params(ListQuery),
    responses((status = 200, body = super::docs::ConversationPage)))]
async fn list(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let status = match query.status.as_deref() {
        Some(s) => Some(
            s.parse::<ConversationStatus>()
                .map_err(|e| AppError::invalid("status", e))?,
        ),
        None => None,
    };
    let inbox = match query.inbox_id.as_deref() {
        Some(id) => Some(
            id.parse::<InboxId>()
                .map_err(|_| AppError::invalid("inbox_id", "Not an inbox id."))?,
        ),
        None => None,
    };
    let assignee =
        match query.assignee_id.as_deref() {
            None => AssigneeFilter::Anyone,
            Some("unassigned") => AssigneeFilter::Unassigned,
            Some(id) => AssigneeFilter::User(id.parse::<UserId>().map_err(|_| {
                AppError::invalid("assignee_id", "Not a user id (or `unassigned`).")
            })?),
        };
    let before = match query.cursor.as_deref() {
        Some(c) => Some(
            parse_cursor(c)
                .ok_or_else(|| AppError::invalid("cursor", "Not a cursor from a previous page."))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(AppError::invalid("limit", "Between 1 and 100."));
    }
    if let Some(words) = query.q.as_deref().filter(|q| !q.trim().is_empty()) {
        let found = state
            .store
            .search_conversations(principal.org_id(), words, limit)
            .await?;
        return Ok(Json(json!({ "data": found, "next_cursor": null })));
    }
    let label = query
        .label
        .as_deref()
        .map(crate::inbox::normalize_label)
        .transpose()?;
    let filter = ConversationFilter {
        label,
        status,
        inbox,
        assignee,
        before,
        limit,
    };
    let page = state
        .store
        .list_conversations(principal.org_id(), &filter)
        .await?;
    let next_cursor = (page.len() as i64 == limit)
        .then(|| {
            page.last()
                .map(|c| cursor_of(c.conversation.last_message_at, c.conversation.id))
        })
        .flatten();
    Ok(Json(json!({ "data": page, "next_cursor": next_cursor })))
}

/// A conversation's messages, private notes included.
#[utoipa::path(get, path = "/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id.")),
    responses((status = 200, body = super::docs::MessageList)))]
async fn messages(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id: ConversationId = id.parse().map_err(|_| AppError::NotFound)?;
    let org = principal.org_id();
    state.store.get_conversation(org, id).await?;
    let messages = state.store.list_messages(org, id, true).await?;
    Ok(Json(
        json!({ "data": messages.iter().map(|m| m.to_json()).collect::<Vec<_>>() }),
    ))
}
