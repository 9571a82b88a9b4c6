//! Conversations and their messages over the API: list, read, update (status, assignee,
//! team, labels), and new messages: a reply or private note by the team, or, on an api inbox,
//! the customer's own message.

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use kaltalk_core::chat::{ConversationStatus, InboxKind, MessageKind};
use kaltalk_core::{ConversationId, InboxId, MessageText, Permission, TeamId, Text, UserId};
use kaltalk_store::conversations::{
    AssigneeFilter, Conversation, ConversationFilter, ConversationOrder,
};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::labels::{MAX_LABEL_CHARS, MAX_LABELS, normalize_label};
use kaltalk_store::messages::AgentWrite;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::body::{JsonObject, refuse_unknown, required_text};
use super::pagination::{self, PageQuery, Pagination};
use super::{acting_agent, docs, require, resource_docs};
use crate::attachments::{MAX_FILES, Refused, Upload};
use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;
use utoipa::IntoParams;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The longest message the API accepts, as in the dashboard's composer.
const MAX_MESSAGE_CHARS: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, update))
        .routes(
            // A little over the file cap times the files allowed, for the framing.
            routes!(messages, create_message).layer(DefaultBodyLimit::max(
                MAX_FILES * crate::attachments::MAX_BYTES + 64 * 1024,
            )),
        )
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
    /// A team id: only that team's conversations.
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    team_id: Option<String>,
    /// A user id, or `unassigned`.
    #[param(
        pattern = "^(unassigned|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    assignee_id: Option<String>,
    /// Only conversations with this label.
    #[param(pattern = "^[A-Za-z0-9_-]{1,40}$")]
    label: Option<String>,
    /// Search words (message text, contact name or email); other filters do not apply
    /// and the answer is one page.
    q: Option<String>,
}

/// Newest first by creation, so a conversation that gets a message while a client pages
/// through does not jump pages; `next_cursor` continues after the last item.
#[utoipa::path(get, path = "/conversations", tag = "conversations", params(ListQuery, PageQuery),
    responses((status = 200, body = docs::ConversationPage)))]
async fn list(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Query(query): Query<ListQuery>,
    Pagination(page): Pagination,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
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
    let team = match query.team_id.as_deref() {
        Some(id) => Some(
            id.parse::<TeamId>()
                .map_err(|_| AppError::invalid("team_id", "Not a team id."))?,
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
    let q = query.q.map(|q| Text::parse("q", q)).transpose()?;
    if let Some(words) = q.as_deref().filter(|q| !q.trim().is_empty()) {
        let found = state
            .store
            .search_conversations(principal.org_id(), words, page.limit)
            .await?;
        return Ok(Json(json!({ "data": found, "next_cursor": null })));
    }
    let label = query.label.as_deref().map(normalize_label).transpose()?;
    let filter = ConversationFilter {
        label,
        status,
        inbox,
        assignee,
        before: page
            .after
            .map(|(at, id)| (at, ConversationId::from_uuid(id))),
        // One more than asked tells whether there is a next page.
        limit: page.limit + 1,
        order: ConversationOrder::Created,
        attribute: None,
        team,
    };
    let found = state
        .store
        .list_conversations(principal.org_id(), &filter)
        .await?;
    let (data, next_cursor) = pagination::finish(found, page, |c| {
        (c.conversation.created_at, c.conversation.id.as_uuid())
    });
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

fn conversation_id(raw: &str) -> Result<ConversationId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// A conversation as the API shows it: its row and its labels.
async fn conversation_json(
    state: &AppState,
    conversation: &Conversation,
) -> Result<Value, AppError> {
    let labels = state
        .store
        .labels_of(conversation.org_id, conversation.id)
        .await?;
    let mut value = serde_json::to_value(conversation)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    value["labels"] = json!(labels);
    Ok(value)
}

/// One conversation, with its labels.
#[utoipa::path(get, path = "/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id.")),
    responses((status = 200, body = resource_docs::ConversationDetail)))]
async fn show(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
    let conversation = state
        .store
        .get_conversation(principal.org_id(), conversation_id(&id)?)
        .await?;
    Ok(Json(conversation_json(&state, &conversation).await?))
}

/// What a PATCH asks for, every field checked before anything is written.
struct Change {
    status: Option<(ConversationStatus, Option<DateTime<Utc>>)>,
    assignee: Option<Option<UserId>>,
    team: Option<Option<TeamId>>,
    labels: Option<Vec<String>>,
}

async fn parse_change(
    state: &AppState,
    principal: &ApiPrincipal,
    map: &Map<String, Value>,
) -> Result<Change, AppError> {
    refuse_unknown(
        map,
        &[
            "status",
            "snoozed_until",
            "assignee_id",
            "team_id",
            "labels",
        ],
    )?;
    let snoozed_until = match map.get("snoozed_until") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(
            DateTime::parse_from_rfc3339(raw)
                .map_err(|_| {
                    AppError::invalid(
                        "snoozed_until",
                        "An RFC 3339 time, e.g. 2026-12-01T09:00:00Z.",
                    )
                })?
                .with_timezone(&Utc),
        ),
        Some(_) => return Err(AppError::invalid("snoozed_until", "Must be a string.")),
    };
    let status = match map.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(
            raw.parse::<ConversationStatus>()
                .map_err(|e| AppError::invalid("status", e))?,
        ),
        Some(_) => return Err(AppError::invalid("status", "Must be a string.")),
    };
    let status = match (status, snoozed_until) {
        (Some(ConversationStatus::Snoozed), Some(until)) if until > state.now() => {
            Some((ConversationStatus::Snoozed, Some(until)))
        }
        (Some(ConversationStatus::Snoozed), Some(_)) => {
            return Err(AppError::invalid("snoozed_until", "Must be in the future."));
        }
        (Some(ConversationStatus::Snoozed), None) => {
            return Err(AppError::invalid(
                "snoozed_until",
                "Say until when to snooze (RFC 3339).",
            ));
        }
        (_, Some(_)) => {
            return Err(AppError::invalid(
                "snoozed_until",
                "Only with \"status\": \"snoozed\".",
            ));
        }
        (Some(status), None) => Some((status, None)),
        (None, None) => None,
    };
    let assignee = match map.get("assignee_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(raw)) => {
            let not_member = || AppError::invalid("assignee_id", "Not a member of the team.");
            let user: UserId = raw.parse().map_err(|_| not_member())?;
            // Only a member of this organization can be assigned.
            state
                .store
                .get_member(principal.org_id(), user)
                .await
                .map_err(|_| not_member())?;
            Some(Some(user))
        }
        Some(_) => {
            return Err(AppError::invalid(
                "assignee_id",
                "A member's user id, or null to unassign.",
            ));
        }
    };
    let team = match map.get("team_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(raw)) => {
            let not_team = || AppError::invalid("team_id", "Not one of the organization's teams.");
            let team: TeamId = raw.parse().map_err(|_| not_team())?;
            state
                .store
                .get_team(principal.org_id(), team)
                .await
                .map_err(|_| not_team())?;
            Some(Some(team))
        }
        Some(_) => {
            return Err(AppError::invalid(
                "team_id",
                "A team's id, or null for no team.",
            ));
        }
    };
    let labels = match map.get("labels") {
        None => None,
        Some(Value::Array(items)) => {
            if items.len() > MAX_LABELS {
                return Err(AppError::invalid(
                    "labels",
                    format!("At most {MAX_LABELS} labels on a conversation."),
                ));
            }
            let mut labels = Vec::new();
            for item in items {
                let raw = item
                    .as_str()
                    .ok_or_else(|| AppError::invalid("labels", "Must be a list of label names."))?;
                let label = normalize_label(raw).map_err(|_| {
                    AppError::invalid(
                        "labels",
                        format!("{raw:?}: use 1 to {MAX_LABEL_CHARS} letters, digits, dashes or underscores."),
                    )
                })?;
                if !labels.contains(&label) {
                    labels.push(label);
                }
            }
            Some(labels)
        }
        Some(_) => {
            return Err(AppError::invalid(
                "labels",
                "The full list of labels (an empty list removes them all).",
            ));
        }
    };
    Ok(Change {
        status,
        assignee,
        team,
        labels,
    })
}

/// Changes status, assignee, team and labels; each change is its own event.
#[utoipa::path(patch, path = "/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id.")),
    request_body(content = resource_docs::ConversationChange, content_type = "application/json"),
    responses((status = 200, body = resource_docs::ConversationDetail)))]
async fn update(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
    JsonObject(map): JsonObject,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
    let org = principal.org_id();
    let id = conversation_id(&id)?;
    // Another organization's id is a 404 before the body is judged.
    state.store.get_conversation(org, id).await?;
    let change = parse_change(&state, &principal, &map).await?;
    if let Some((status, until)) = change.status {
        let written = state
            .store
            .set_conversation_status(org, id, status, until, state.now())
            .await?;
        state.hub.publish_events(written.events);
    }
    if let Some(assignee) = change.assignee {
        // A signed-in member assigning is told nothing of it; an integration is nobody.
        let by = match &principal {
            ApiPrincipal::Session(session) => Some(session.user.id),
            ApiPrincipal::Key { .. } => None,
        };
        let written = state
            .store
            .assign_conversation(org, id, assignee, by, state.now())
            .await?;
        state.hub.publish_events(written.events);
    }
    if let Some(team) = change.team {
        let written = state
            .store
            .set_conversation_team(org, id, team, state.now())
            .await?;
        state.hub.publish_events(written.events);
    }
    if let Some(labels) = change.labels {
        let written = state
            .store
            .set_labels(org, id, &labels, state.now())
            .await?;
        state.hub.publish_events(written.events);
    }
    let conversation = state.store.get_conversation(org, id).await?;
    Ok(Json(conversation_json(&state, &conversation).await?))
}

/// A conversation's messages, oldest first, private notes included (the API acts for the
/// team).
#[utoipa::path(get, path = "/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id."), PageQuery),
    responses((status = 200, body = docs::MessageList)))]
async fn messages(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
    Pagination(page): Pagination,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
    let id = conversation_id(&id)?;
    let org = principal.org_id();
    state.store.get_conversation(org, id).await?;
    let all = state.store.list_messages(org, id, true).await?;
    let (data, next_cursor) =
        pagination::oldest_first(all, page, |m| (m.created_at, m.id.as_uuid()));
    Ok(Json(json!({
        "data": data.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

/// Who a new message is from.
enum Author {
    /// A reply or a private note.
    Team(MessageKind),
    /// The customer, on an api inbox.
    Customer,
}

/// A new message as asked for, before anything is stored.
struct NewMessage {
    text: MessageText,
    kind: String,
    files: Vec<Upload>,
}

/// A JSON body: `{"text", "kind"}`.
fn json_message(map: &Map<String, Value>) -> Result<NewMessage, AppError> {
    refuse_unknown(map, &["text", "kind"])?;
    let text = MessageText::parse("text", &required_text(map, "text", MAX_MESSAGE_CHARS)?)?;
    let kind = match map.get("kind") {
        None | Some(Value::Null) => "reply".to_owned(),
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(AppError::invalid("kind", "Must be a string.")),
    };
    Ok(NewMessage {
        text,
        kind,
        files: Vec::new(),
    })
}

/// A multipart body: `text` (may be empty with a file), `kind`, and up to five `file`s
/// (images or PDF, as in the widget).
async fn multipart_message(mut multipart: Multipart) -> Result<NewMessage, AppError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        AppError::invalid(
            "file",
            format!("The upload could not be read: {}", e.body_text()),
        )
    };
    let mut message = NewMessage {
        text: MessageText::default(),
        kind: "reply".to_owned(),
        files: Vec::new(),
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if message.files.len() == MAX_FILES {
                    return Err(AppError::invalid("file", "At most 5 files per message."));
                }
                let filename = field.file_name().unwrap_or("file").to_owned();
                let bytes = field.bytes().await.map_err(unreadable)?;
                let upload = Upload::accept(&filename, bytes.to_vec()).map_err(|refused| {
                    AppError::invalid(
                        "file",
                        match refused {
                            Refused::TooLarge => "A file can be at most 10 MB.",
                            Refused::UnsupportedType => {
                                "Send an image (PNG, JPEG, GIF, WebP) or a PDF."
                            }
                            Refused::Empty => "The file is empty.",
                        },
                    )
                })?;
                message.files.push(upload);
            }
            "text" => {
                let text = field.text().await.map_err(unreadable)?;
                message.text = MessageText::parse("text", &text)?;
            }
            "kind" => message.kind = field.text().await.map_err(unreadable)?,
            other => {
                return Err(AppError::BadRequest(format!(
                    "Unknown field {other:?}: expected text, kind, file."
                )));
            }
        }
    }
    if message.text.is_empty() && message.files.is_empty() {
        return Err(AppError::invalid(
            "text",
            "Write a message or attach a file.",
        ));
    }
    Ok(message)
}

/// `reply` (sent to the customer) or `note` (the team only) by the team; `incoming` is the
/// customer's message, on api inboxes only. JSON, or multipart with files.
#[utoipa::path(post, path = "/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id.")),
    request_body(content(
        (resource_docs::NewMessage = "application/json"),
        (resource_docs::NewMessageWithFiles = "multipart/form-data"),
    )),
    responses((status = 201, body = docs::Message)))]
async fn create_message(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), AppError> {
    require(&principal, Permission::UseInbox)?;
    let org = principal.org_id();
    let id = conversation_id(&id)?;
    let conversation = state.store.get_conversation(org, id).await?;
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let message = if is_multipart {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        multipart_message(multipart).await?
    } else {
        let JsonObject(map) = JsonObject::from_request(request, &state).await?;
        json_message(&map)?
    };
    let author = match message.kind.as_str() {
        "reply" => Author::Team(MessageKind::Text),
        "note" => Author::Team(MessageKind::Note),
        "incoming" => {
            let inbox = state.store.get_inbox(org, conversation.inbox_id).await?;
            if inbox.kind != InboxKind::Api {
                return Err(AppError::invalid(
                    "kind",
                    "Customer messages can be added only in api inboxes; the customer writes through the widget or by email here.",
                ));
            }
            Author::Customer
        }
        _ => return Err(AppError::invalid("kind", "One of reply, note or incoming.")),
    };
    let team = match author {
        Author::Team(kind) => Some((acting_agent(&state, &principal).await?, kind)),
        Author::Customer => None,
    };
    let mut attachments = Vec::new();
    for file in &message.files {
        attachments.push(crate::attachments::store(&state, org, file).await?);
    }
    let written = match team {
        Some((agent, kind)) => {
            let write = AgentWrite {
                agent,
                kind,
                text: &message.text,
                client_id: None,
                attachments: &attachments,
                email: None,
                // A note's `@Name` in the text is all the API needs to mention someone.
                mentions: &[],
            };
            state.store.agent_writes(org, id, write, state.now()).await
        }
        None => {
            let inbox = state.store.get_inbox(org, conversation.inbox_id).await?;
            let message = CustomerMessage {
                inbox: &inbox,
                from: Customer::Contact(conversation.contact_id),
                thread: Thread::Existing(conversation.id),
                text: &message.text,
                attachments: &attachments,
                client_id: None,
                wants_a_person: false,
                email: None,
            };
            let stored = crate::intake::take_in(&state, message).await?;
            return Ok((StatusCode::CREATED, Json(stored.message.to_json())));
        }
    };
    let written = match written {
        Ok(written) => written,
        Err(err) => {
            // Nothing refers to the files: do not keep them.
            for attachment in &attachments {
                state.blobs.delete(&attachment.storage_key).await;
            }
            return Err(err.into());
        }
    };
    let value = written.value.to_json();
    state.hub.publish_events(written.events);
    Ok((StatusCode::CREATED, Json(value)))
}
