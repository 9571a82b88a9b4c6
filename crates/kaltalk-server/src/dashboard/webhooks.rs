//! Settings → Webhooks: add endpoints, see each one's secret and delivery log, read a
//! delivery's request and attempts, send a test ping, replay, enable, disable, delete.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kaltalk_core::Permission;
use kaltalk_core::Text;
use kaltalk_store::webhooks::{
    NewWebhookEndpoint, WEBHOOK_EVENT_KINDS, WebhookAttempt, WebhookDelivery, WebhookDeliveryId,
    WebhookEndpoint, WebhookEndpointChange, WebhookId,
};
use serde::Deserialize;

use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoFields, NoticeQuery, see_other, ticked};
use crate::web::{FieldErrors, IdPath, Layout, PageResult};
use crate::webhooks;

/// Deliveries an endpoint's page lists.
const DELIVERY_PAGE: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/webhooks", get(list).post(create))
        .route("/settings/webhooks/{id}", get(show))
        .route("/settings/webhooks/{id}/ping", post(ping))
        .route("/settings/webhooks/{id}/enable", post(enable))
        .route("/settings/webhooks/{id}/disable", post(disable))
        .route("/settings/webhooks/{id}/delete", post(delete))
        .route(
            "/settings/webhooks/{id}/deliveries/{delivery_id}",
            get(delivery),
        )
        .route(
            "/settings/webhooks/{id}/deliveries/{delivery_id}/replay",
            post(replay),
        )
}

/// An event kind as a checkbox on the form.
struct EventChoice {
    kind: &'static str,
    checked: bool,
}

fn choices(chosen: &[String]) -> Vec<EventChoice> {
    WEBHOOK_EVENT_KINDS
        .iter()
        .map(|kind| EventChoice {
            kind,
            checked: chosen.iter().any(|c| c == kind),
        })
        .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "app/webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    csrf: String,
    endpoints: Vec<WebhookEndpoint>,
    url: String,
    events: Vec<EventChoice>,
    errors: FieldErrors,
    notice: Option<&'static str>,
}

async fn list_page(state: &AppState, session: &AgentSession) -> Result<WebhooksPage, AppError> {
    Ok(WebhooksPage {
        layout: Layout::signed_in(state, session, "webhooks").await?,
        csrf: session.csrf_token.clone(),
        endpoints: state.store.list_webhook_endpoints(session.org_id()).await?,
        url: String::new(),
        events: choices(&[]),
        errors: FieldErrors::default(),
        notice: None,
    })
}

async fn list(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    let mut page = list_page(&state, &session).await?;
    page.notice = match query.notice.as_deref() {
        Some("deleted") => Some("The endpoint was deleted."),
        _ => None,
    };
    Ok(page.into_response())
}

/// The add form: the URL and one checkbox per event kind (named after the kind).
#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    url: Text,
    #[serde(rename = "conversation.created")]
    conversation_created: Option<String>,
    #[serde(rename = "conversation.updated")]
    conversation_updated: Option<String>,
    #[serde(rename = "conversation.escalated")]
    conversation_escalated: Option<String>,
    #[serde(rename = "message.created")]
    message_created: Option<String>,
    #[serde(rename = "contact.created")]
    contact_created: Option<String>,
    #[serde(rename = "contact.updated")]
    contact_updated: Option<String>,
    #[serde(rename = "contact.deleted")]
    contact_deleted: Option<String>,
}

impl CreateForm {
    fn events(&self) -> Vec<String> {
        [
            &self.conversation_created,
            &self.conversation_updated,
            &self.conversation_escalated,
            &self.message_created,
            &self.contact_created,
            &self.contact_updated,
            &self.contact_deleted,
        ]
        .into_iter()
        .zip(WEBHOOK_EVENT_KINDS)
        .filter(|(box_, _)| ticked(box_))
        .map(|(_, kind)| kind.to_owned())
        .collect()
    }
}

async fn create(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<CreateForm>,
) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    let chosen = form.events();
    let checked = webhooks::parse_url("url", &form.url)
        .and_then(|url| webhooks::parse_events("events", &chosen).map(|events| (url, events)));
    let (url, events) = match checked {
        Ok(valid) => valid,
        Err(error) => {
            let mut page = list_page(&state, &session).await?;
            page.url = form.url.to_string();
            page.events = choices(&chosen);
            page.errors = vec![error].into();
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let endpoint = NewWebhookEndpoint {
        org_id: session.org_id(),
        url,
        secret: webhooks::new_secret(),
        events,
    };
    let created = state
        .store
        .create_webhook_endpoint(&endpoint, state.now())
        .await?;
    Ok(see_other(&format!(
        "/settings/webhooks/{}?notice=created",
        created.id
    )))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/webhook.html")]
struct EndpointPage {
    layout: Layout,
    csrf: String,
    endpoint: WebhookEndpoint,
    deliveries: Vec<WebhookDelivery>,
    notice: Option<&'static str>,
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<WebhookId>,
    Query(query): Query<NoticeQuery>,
) -> PageResult<EndpointPage> {
    session.require(Permission::ManageApiKeys)?;
    let org = session.org_id();
    let endpoint = state.store.get_webhook_endpoint(org, id).await?;
    let deliveries = state
        .store
        .list_webhook_deliveries(org, id, DELIVERY_PAGE)
        .await?;
    let notice = match query.notice.as_deref() {
        Some("created") => Some("Endpoint added. Copy the secret below to verify signatures."),
        Some("ping") => Some("Test ping queued: it appears in the deliveries below."),
        Some("enabled") => Some("Endpoint enabled."),
        Some("disabled") => Some("Endpoint disabled: no events are sent to it."),
        Some("replayed") => Some("Delivery queued again under the same id."),
        _ => None,
    };
    Ok(EndpointPage {
        layout: Layout::signed_in(&state, &session, "webhooks").await?,
        csrf: session.csrf_token.clone(),
        endpoint,
        deliveries,
        notice,
    })
}

async fn ping(
    State(state): State<AppState>,
    IdPath(id): IdPath<WebhookId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    state
        .store
        .create_webhook_ping(session.org_id(), id, state.now())
        .await?;
    Ok(see_other(&format!("/settings/webhooks/{id}?notice=ping")))
}

async fn set_enabled(
    state: &AppState,
    session: &AgentSession,
    id: WebhookId,
    on: bool,
) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    let change = WebhookEndpointChange {
        enabled: Some(on),
        ..Default::default()
    };
    state
        .store
        .update_webhook_endpoint(session.org_id(), id, &change, state.now())
        .await?;
    let notice = if on { "enabled" } else { "disabled" };
    Ok(see_other(&format!(
        "/settings/webhooks/{id}?notice={notice}"
    )))
}

async fn enable(
    State(state): State<AppState>,
    IdPath(id): IdPath<WebhookId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    set_enabled(&state, &session, id, true).await
}

async fn disable(
    State(state): State<AppState>,
    IdPath(id): IdPath<WebhookId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    set_enabled(&state, &session, id, false).await
}

async fn delete(
    State(state): State<AppState>,
    IdPath(id): IdPath<WebhookId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    state
        .store
        .delete_webhook_endpoint(session.org_id(), id)
        .await?;
    Ok(see_other("/settings/webhooks?notice=deleted"))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/webhook_delivery.html")]
struct DeliveryPage {
    layout: Layout,
    csrf: String,
    endpoint: WebhookEndpoint,
    delivery: WebhookDelivery,
    attempts: Vec<WebhookAttempt>,
}

async fn delivery(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath((id, delivery_id)): IdPath<(WebhookId, WebhookDeliveryId)>,
) -> PageResult<DeliveryPage> {
    session.require(Permission::ManageApiKeys)?;
    let org = session.org_id();
    let endpoint = state.store.get_webhook_endpoint(org, id).await?;
    let delivery = state
        .store
        .get_webhook_delivery(org, id, delivery_id)
        .await?;
    let attempts = state.store.list_webhook_attempts(org, delivery_id).await?;
    Ok(DeliveryPage {
        layout: Layout::signed_in(&state, &session, "webhooks").await?,
        csrf: session.csrf_token.clone(),
        endpoint,
        delivery,
        attempts,
    })
}

async fn replay(
    State(state): State<AppState>,
    IdPath((id, delivery_id)): IdPath<(WebhookId, WebhookDeliveryId)>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    state
        .store
        .replay_webhook_delivery(session.org_id(), id, delivery_id, state.now())
        .await?;
    Ok(see_other(&format!(
        "/settings/webhooks/{id}?notice=replayed"
    )))
}
