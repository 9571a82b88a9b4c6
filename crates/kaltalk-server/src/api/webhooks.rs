//! Webhook endpoints over the API: create, list, read (with the secret), update, delete,
//! a test ping, the delivery log and replay.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kaltalk_core::Permission;
use kaltalk_store::webhooks::{
    NewWebhookEndpoint, WebhookDelivery, WebhookDeliveryId, WebhookEndpoint, WebhookEndpointChange,
    WebhookId,
};
use serde_json::{Map, Value, json};

use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;
use crate::webhooks;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{JsonObject, refuse_unknown};
use super::docs;
use super::pagination::{self, PageQuery, Pagination};

/// Deliveries listed at most.
const DELIVERY_PAGE: i64 = 100;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
        .routes(routes!(ping))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(replay))
}

/// API keys act for the whole organization; a signed-in member needs an admin's role, as
/// on the dashboard's page.
fn may_manage(principal: &ApiPrincipal) -> Result<(), AppError> {
    match principal {
        ApiPrincipal::Key { .. } => Ok(()),
        ApiPrincipal::Session(session) => session.require(Permission::ManageApiKeys),
    }
}

fn endpoint_json(endpoint: &WebhookEndpoint, with_secret: bool) -> Value {
    let mut value = json!({
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    });
    if with_secret {
        value["secret"] = json!(endpoint.secret);
    }
    value
}

fn delivery_json(delivery: &WebhookDelivery) -> Value {
    json!({
        "id": delivery.id,
        "webhook_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "type": delivery.event_kind,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_latency_ms": delivery.last_latency_ms,
        "created_at": delivery.created_at,
        "first_attempt_at": delivery.first_attempt_at,
        "last_attempt_at": delivery.last_attempt_at,
        "next_attempt_at": delivery.next_attempt_at,
    })
}

fn webhook_id(raw: &str) -> Result<WebhookId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

fn url_field(map: &Map<String, Value>, required: bool) -> Result<Option<String>, AppError> {
    match map.get("url") {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(AppError::invalid(
            "url",
            "Give the URL KalTalk should POST events to.",
        )),
        Some(Value::String(url)) => Ok(Some(
            webhooks::parse_url("url", url).map_err(|e| AppError::Validation(vec![e]))?,
        )),
        Some(_) => Err(AppError::invalid("url", "Must be a string.")),
    }
}

fn events_field(
    map: &Map<String, Value>,
) -> Result<Option<kaltalk_store::webhooks::EventKinds>, AppError> {
    let kinds = match map.get("events") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| AppError::invalid("events", "Must be a list of event names."))?,
        Some(_) => {
            return Err(AppError::invalid(
                "events",
                "Must be a list of event names (an empty list means every event).",
            ));
        }
    };
    Ok(Some(
        webhooks::parse_events("events", &kinds).map_err(|e| AppError::Validation(vec![e]))?,
    ))
}

/// Adds an endpoint; the answer includes its signing secret.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks",
    request_body(content = docs::NewWebhook, content_type = "application/json"),
    responses((status = 201, body = docs::Webhook)))]
async fn create(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    JsonObject(map): JsonObject,
) -> Result<(StatusCode, Json<Value>), AppError> {
    may_manage(&principal)?;
    refuse_unknown(&map, &["url", "events"])?;
    let url = url_field(&map, true)?.ok_or_else(|| AppError::invalid("url", "Required."))?;
    let events = events_field(&map)?.unwrap_or_default();
    let endpoint = NewWebhookEndpoint {
        org_id: principal.org_id(),
        url,
        secret: webhooks::new_secret(),
        events,
    };
    let created = state
        .store
        .create_webhook_endpoint(&endpoint, state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(endpoint_json(&created, true))))
}

/// The organization's endpoints (without secrets).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(PageQuery),
    responses((status = 200, body = docs::WebhookList)))]
async fn list(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Pagination(page): Pagination,
) -> Result<Json<Value>, AppError> {
    may_manage(&principal)?;
    // An organization has a handful of endpoints: paged in memory.
    let endpoints = state
        .store
        .list_webhook_endpoints(principal.org_id())
        .await?;
    let (endpoints, next_cursor) =
        pagination::newest_first(endpoints, page, |e| (e.created_at, e.id.as_uuid()));
    let data: Vec<Value> = endpoints.iter().map(|e| endpoint_json(e, false)).collect();
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

/// One endpoint, with its signing secret.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "The webhook's id.")),
    responses((status = 200, body = docs::Webhook)))]
async fn show(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    may_manage(&principal)?;
    let endpoint = state
        .store
        .get_webhook_endpoint(principal.org_id(), webhook_id(&id)?)
        .await?;
    Ok(Json(endpoint_json(&endpoint, true)))
}

/// Changes an endpoint's URL, events or whether it is enabled.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "The webhook's id.")),
    request_body(content = docs::WebhookChange, content_type = "application/json"),
    responses((status = 200, body = docs::Webhook)))]
async fn update(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
    JsonObject(map): JsonObject,
) -> Result<Json<Value>, AppError> {
    may_manage(&principal)?;
    let id = webhook_id(&id)?;
    // Another organization's id is a 404 before the body is judged.
    state
        .store
        .get_webhook_endpoint(principal.org_id(), id)
        .await?;
    refuse_unknown(&map, &["url", "events", "enabled"])?;
    let enabled = match map.get("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(enabled)) => Some(*enabled),
        Some(_) => return Err(AppError::invalid("enabled", "Must be true or false.")),
    };
    let change = WebhookEndpointChange {
        url: url_field(&map, false)?,
        events: events_field(&map)?,
        enabled,
    };
    let endpoint = state
        .store
        .update_webhook_endpoint(principal.org_id(), id, &change, state.now())
        .await?;
    Ok(Json(endpoint_json(&endpoint, false)))
}

/// Removes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "The webhook's id.")),
    responses((status = 204, description = "Deleted.")))]
async fn delete(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    may_manage(&principal)?;
    state
        .store
        .delete_webhook_endpoint(principal.org_id(), webhook_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a `ping` delivery to test the endpoint.
#[utoipa::path(post, path = "/webhooks/{id}/ping", tag = "webhooks", params(("id" = String, Path, description = "The webhook's id.")),
    responses((status = 202, body = docs::Delivery)))]
async fn ping(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    may_manage(&principal)?;
    let delivery = state
        .store
        .create_webhook_ping(principal.org_id(), webhook_id(&id)?, state.now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_json(&delivery))))
}

/// The endpoint's latest deliveries (the last 100 kept for listing), newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path, description = "The webhook's id."), PageQuery),
    responses((status = 200, body = docs::DeliveryList)))]
async fn deliveries(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(id): Path<String>,
    Pagination(page): Pagination,
) -> Result<Json<Value>, AppError> {
    may_manage(&principal)?;
    let deliveries = state
        .store
        .list_webhook_deliveries(principal.org_id(), webhook_id(&id)?, DELIVERY_PAGE)
        .await?;
    let (deliveries, next_cursor) =
        pagination::newest_first(deliveries, page, |d| (d.created_at, d.id.as_uuid()));
    let data: Vec<Value> = deliveries.iter().map(delivery_json).collect();
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

fn ids(raw: &(String, String)) -> Result<(WebhookId, WebhookDeliveryId), AppError> {
    Ok((
        webhook_id(&raw.0)?,
        raw.1.parse().map_err(|_| AppError::NotFound)?,
    ))
}

/// One delivery with the exact body sent and every attempt.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries/{delivery_id}", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id."), ("delivery_id" = String, Path, description = "The delivery's id.")),
    responses((status = 200, body = docs::DeliveryDetail)))]
async fn delivery(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(raw): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    may_manage(&principal)?;
    let (id, delivery_id) = ids(&raw)?;
    let org = principal.org_id();
    let delivery = state
        .store
        .get_webhook_delivery(org, id, delivery_id)
        .await?;
    let attempts = state.store.list_webhook_attempts(org, delivery_id).await?;
    let mut value = delivery_json(&delivery);
    value["request_body"] = json!(delivery.body);
    value["attempt_log"] = json!(attempts);
    Ok(Json(value))
}

/// A new attempt of the same delivery (same id, same body).
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery_id}/replay", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id."), ("delivery_id" = String, Path, description = "The delivery's id.")),
    responses((status = 202, body = docs::Delivery)))]
async fn replay(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    Path(raw): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    may_manage(&principal)?;
    let (id, delivery_id) = ids(&raw)?;
    let delivery = state
        .store
        .replay_webhook_delivery(principal.org_id(), id, delivery_id, state.now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_json(&delivery))))
}
