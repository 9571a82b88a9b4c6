//! Contacts over the API: create, search, read, update, delete (with their
//! conversations) and merge.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kaltalk_core::{ContactId, EmailAddress, Permission, Text};
use kaltalk_store::contacts::{Contact, ContactChange, ContactFields, ContactQuery};
use kaltalk_store::{Conflict, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{JsonObject, nullable_string, refuse_unknown};
use super::pagination::{self, PageQuery, Pagination};
use super::{require, resource_docs};
use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 200;
const MAX_EXTERNAL_ID_CHARS: usize = 200;
/// Attributes are a small object of the customer's facts, not a document store.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
        .routes(routes!(merge))
}

pub fn contact_json(contact: &Contact) -> Value {
    json!({
        "id": contact.id,
        "name": contact.name,
        "email": contact.email,
        "external_id": contact.external_id,
        "attributes": contact.attributes.0,
        "details": contact.details.0,
        "first_seen_at": contact.first_seen_at,
        "last_seen_at": contact.last_seen_at,
        "created_at": contact.created_at,
    })
}

fn contact_id(raw: &str) -> Result<ContactId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// A name, email or external id as given: trimmed, blank meaning none, checked.
fn clean(field: &'static str, value: Option<String>) -> Result<Option<String>, AppError> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let max = match field {
        "email" => {
            let email =
                EmailAddress::parse(field, &value).map_err(|e| AppError::Validation(vec![e]))?;
            return Ok(Some(email.as_str().to_owned()));
        }
        "external_id" => MAX_EXTERNAL_ID_CHARS,
        _ => MAX_NAME_CHARS,
    };
    if value.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("At most {max} characters."),
        ));
    }
    Ok(Some(value))
}

fn attributes(map: &Map<String, Value>) -> Result<Option<Value>, AppError> {
    match map.get("attributes") {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => {
            if value.to_string().len() > MAX_ATTRIBUTES_BYTES {
                return Err(AppError::invalid("attributes", "At most 16 KB of JSON."));
            }
            Ok(Some(value.clone()))
        }
        Some(_) => Err(AppError::invalid(
            "attributes",
            "An object of your own fields, e.g. {\"plan\": \"pro\"}.",
        )),
    }
}

/// The identity fields of a body (`name`, `email`, `external_id`, `attributes`).
pub fn contact_fields(map: &Map<String, Value>) -> Result<ContactFields, AppError> {
    let field = |name: &'static str| -> Result<Option<String>, AppError> {
        clean(name, nullable_string(map, name)?.flatten())
    };
    Ok(ContactFields {
        name: field("name")?,
        email: field("email")?,
        external_id: field("external_id")?,
        attributes: attributes(map)?,
    })
}

fn external_id_taken(err: StoreError) -> AppError {
    match err {
        StoreError::Conflict(Conflict::ExternalIdTaken) => AppError::invalid(
            "external_id",
            "Another contact already has this external id; merge the two instead.",
        ),
        other => other.into(),
    }
}

/// Adds a contact; every field is optional.
#[utoipa::path(post, path = "/contacts", tag = "contacts",
    request_body(content = resource_docs::ContactFields, content_type = "application/json"),
    responses((status = 201, body = resource_docs::Contact)))]
async fn create(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    JsonObject(map): JsonObject,
) -> Result<(StatusCode, Json<Value>), AppError> {
    require(&principal, Permission::UseInbox)?;
    refuse_unknown(&map, &["name", "email", "external_id", "attributes"])?;
    let fields = contact_fields(&map)?;
    let written = state
        .store
        .create_contact(principal.org_id(), &fields, state.now())
        .await
        .map_err(external_id_taken)?;
    let value = contact_json(&written.value);
    state.hub.publish_events(written.events);
    Ok((StatusCode::CREATED, Json(value)))
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Text found in the name or email address.
    #[param(max_length = 200)]
    q: Option<String>,
}

/// Newest first; `q` searches names and email addresses.
#[utoipa::path(get, path = "/contacts", tag = "contacts", params(ListQuery, PageQuery),
    responses((status = 200, body = resource_docs::ContactPage)))]
async fn list(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Query(query): Query<ListQuery>,
    Pagination(page): Pagination,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
    let q = query.q.map(|q| Text::parse("q", q)).transpose()?;
    if q.as_deref().is_some_and(|q| q.chars().count() > 200) {
        return Err(AppError::invalid("q", "At most 200 characters."));
    }
    let found = state
        .store
        .list_contacts(
            principal.org_id(),
            &ContactQuery {
                search: q.as_deref(),
                after: page.after.map(|(at, id)| (at, ContactId::from_uuid(id))),
                // One more than asked tells whether there is a next page.
                limit: page.limit + 1,
            },
        )
        .await?;
    let (data, next_cursor) = pagination::finish(found, page, |c| (c.created_at, c.id.as_uuid()));
    let data: Vec<Value> = data.iter().map(contact_json).collect();
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

/// One contact.
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "The contact's id.")),
    responses((status = 200, body = resource_docs::Contact)))]
async fn show(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
    let contact = state
        .store
        .get_contact(principal.org_id(), contact_id(&id)?)
        .await?;
    Ok(Json(contact_json(&contact)))
}

/// Changes the given fields; `null` clears one.
#[utoipa::path(patch, path = "/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "The contact's id.")),
    request_body(content = resource_docs::ContactFields, content_type = "application/json"),
    responses((status = 200, body = resource_docs::Contact)))]
async fn update(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
    JsonObject(map): JsonObject,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
    let org = principal.org_id();
    let id = contact_id(&id)?;
    // Another organization's id is a 404 before the body is judged.
    state.store.get_contact(org, id).await?;
    refuse_unknown(&map, &["name", "email", "external_id", "attributes"])?;
    let field = |name: &'static str| -> Result<Option<Option<String>>, AppError> {
        nullable_string(&map, name)?
            .map(|value| clean(name, value))
            .transpose()
    };
    let change = ContactChange {
        name: field("name")?,
        email: field("email")?,
        external_id: field("external_id")?,
        attributes: match map.get("attributes") {
            Some(Value::Null) => Some(json!({})),
            _ => attributes(&map)?,
        },
    };
    let written = state
        .store
        .update_contact(org, id, &change, state.now())
        .await
        .map_err(external_id_taken)?;
    let value = contact_json(&written.value);
    state.hub.publish_events(written.events);
    Ok(Json(value))
}

/// Deletes the contact with its conversations and their messages and files.
#[utoipa::path(delete, path = "/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "The contact's id.")),
    responses((status = 204, description = "Deleted.")))]
async fn delete(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    require(&principal, Permission::UseInbox)?;
    let written = state
        .store
        .delete_contact(principal.org_id(), contact_id(&id)?, state.now())
        .await?;
    // After the rows are gone, so a failure here leaves an orphan file, never a message
    // whose file is missing.
    for key in &written.value {
        state.blobs.delete(key).await;
    }
    state.hub.publish_events(written.events);
    Ok(StatusCode::NO_CONTENT)
}

/// Moves this contact's conversations to `into`, which keeps its fields and takes this
/// one's where it has none; then deletes this one. Answers with the merged contact.
#[utoipa::path(post, path = "/contacts/{id}/merge", tag = "contacts",
    params(("id" = String, Path, description = "The id of the contact merged away.")),
    request_body(content = resource_docs::ContactMerge, content_type = "application/json"),
    responses((status = 200, body = resource_docs::Contact)))]
async fn merge(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
    JsonObject(map): JsonObject,
) -> Result<Json<Value>, AppError> {
    require(&principal, Permission::UseInbox)?;
    let org = principal.org_id();
    let source = contact_id(&id)?;
    state.store.get_contact(org, source).await?;
    refuse_unknown(&map, &["into"])?;
    let not_a_contact = || AppError::invalid("into", "The id of another contact to merge into.");
    let into: ContactId = match map.get("into") {
        Some(Value::String(raw)) => raw.parse().map_err(|_| not_a_contact())?,
        _ => return Err(not_a_contact()),
    };
    if into == source {
        return Err(AppError::invalid(
            "into",
            "A contact cannot be merged into itself.",
        ));
    }
    state
        .store
        .get_contact(org, into)
        .await
        .map_err(|_| not_a_contact())?;
    let written = state
        .store
        .merge_contacts(org, source, into, state.now())
        .await?;
    let value = contact_json(&written.value);
    state.hub.publish_events(written.events);
    Ok(Json(value))
}
