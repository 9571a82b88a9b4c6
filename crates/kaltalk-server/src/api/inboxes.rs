//! Inboxes over the API: list them, create api inboxes, and start conversations in an api
//! inbox as the customer.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kaltalk_core::chat::InboxKind;
use kaltalk_core::{ContactId, InboxId, MessageText, Permission};
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{JsonObject, refuse_unknown, required_text};
use super::contacts::{contact_fields, contact_json};
use super::pagination::{self, PageQuery};
use super::{require, resource_docs};
use crate::auth::ApiPrincipal;
use crate::dashboard::inboxes::create_api_inbox;
use crate::error::AppError;
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 100;
const MAX_MESSAGE_CHARS: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(start_conversation))
}

fn inbox_json(inbox: &Inbox) -> Value {
    json!({
        "id": inbox.id,
        "kind": inbox.kind,
        "name": inbox.name,
        "email_address": inbox.email_address,
        "created_at": inbox.created_at,
    })
}

/// The organization's inboxes, newest first.
#[utoipa::path(get, path = "/inboxes", tag = "inboxes", params(PageQuery),
    responses((status = 200, body = resource_docs::InboxPage)))]
async fn list(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    pagination::Pagination(page): pagination::Pagination,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
    // An organization has a handful of inboxes: paged in memory.
    let inboxes = state.store.list_inboxes(principal.org_id()).await?;
    let (data, next_cursor) =
        pagination::newest_first(inboxes, page, |i| (i.created_at, i.id.as_uuid()));
    let data: Vec<Value> = data.iter().map(inbox_json).collect();
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

/// Creates an inbox of kind `api` (web and email inboxes are set up in the dashboard).
#[utoipa::path(post, path = "/inboxes", tag = "inboxes",
    request_body(content = resource_docs::NewInbox, content_type = "application/json"),
    responses((status = 201, body = resource_docs::Inbox)))]
async fn create(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    JsonObject(map): JsonObject,
) -> Result<(StatusCode, Json<Value>), AppError> {
    require(&principal, Permission::ManageInboxes)?;
    refuse_unknown(&map, &["kind", "name"])?;
    match map.get("kind") {
        Some(Value::String(kind)) if kind == "api" => {}
        _ => {
            return Err(AppError::invalid(
                "kind",
                "Only \"api\" inboxes are created over the API; add web and email inboxes in the dashboard.",
            ));
        }
    }
    let name = required_text(&map, "name", MAX_NAME_CHARS)?;
    let inbox = create_api_inbox(&state.store, principal.org_id(), &name, state.now()).await?;
    Ok((StatusCode::CREATED, Json(inbox_json(&inbox))))
}

/// The customer starts a conversation in an api inbox: `contact` is `{"id"}` of a known
/// contact, or `{"external_id", "email", "name"}` found by external id, then email, and
/// created when neither matches.
#[utoipa::path(post, path = "/inboxes/{id}/conversations", tag = "inboxes",
    params(("id" = String, Path, description = "The id of an inbox of kind `api`.")),
    request_body(content = resource_docs::NewConversation, content_type = "application/json"),
    responses((status = 201, body = resource_docs::StartedConversation)))]
async fn start_conversation(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
    JsonObject(map): JsonObject,
) -> Result<(StatusCode, Json<Value>), AppError> {
    require(&principal, Permission::UseInbox)?;
    let org = principal.org_id();
    let id: InboxId = id.parse().map_err(|_| AppError::NotFound)?;
    let inbox = state.store.get_inbox(org, id).await?;
    if inbox.kind != InboxKind::Api {
        return Err(AppError::invalid(
            "inbox",
            "Conversations can be started over the API only in inboxes of kind api.",
        ));
    }
    refuse_unknown(&map, &["contact", "text"])?;
    let text = required_text(&map, "text", MAX_MESSAGE_CHARS)?;
    let contact_map = match map.get("contact") {
        Some(Value::Object(contact)) => contact,
        _ => {
            return Err(AppError::invalid(
                "contact",
                "An object: {\"id\"} of a contact, or {\"external_id\", \"email\", \"name\"}.",
            ));
        }
    };
    refuse_unknown(
        contact_map,
        &["id", "external_id", "email", "name", "attributes"],
    )?;
    let fields = contact_fields(contact_map)?;
    let contact = match contact_map.get("id") {
        None | Some(Value::Null) => {
            if fields.external_id.is_none() && fields.email.is_none() && fields.name.is_none() {
                return Err(AppError::invalid(
                    "contact",
                    "Give the contact's id, external_id, email or at least a name.",
                ));
            }
            Customer::Details(&fields)
        }
        Some(Value::String(raw)) => {
            let unknown = || AppError::invalid("contact.id", "Not a contact of this organization.");
            let contact: ContactId = raw.parse().map_err(|_| unknown())?;
            state
                .store
                .get_contact(org, contact)
                .await
                .map_err(|_| unknown())?;
            Customer::Contact(contact)
        }
        Some(_) => return Err(AppError::invalid("contact.id", "Must be a string.")),
    };
    let text = MessageText::parse("text", &text).map_err(AppError::from)?;
    let message = CustomerMessage {
        inbox: &inbox,
        from: contact,
        thread: Thread::New,
        text: &text,
        attachments: &[],
        client_id: None,
        wants_a_person: false,
        email: None,
    };
    let started = crate::intake::take_in(&state, message).await?;
    let mut conversation = serde_json::to_value(&started.conversation)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    conversation["labels"] = json!([]);
    let value = json!({
        "conversation": conversation,
        "contact": contact_json(&started.contact),
        "message": started.message.to_json(),
    });
    Ok((StatusCode::CREATED, Json(value)))
}
