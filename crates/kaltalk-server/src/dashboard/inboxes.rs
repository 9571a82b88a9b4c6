//! Channels: creating web inboxes, their widget settings, and the embed snippet.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use kaltalk_core::chat::{IdentityMode, InboxKind, LauncherPosition, WidgetSettings};
use kaltalk_core::{InboxId, OrgId, Permission, ValidationError, token};
use kaltalk_store::chat::{Inbox, NewInbox};
use kaltalk_store::{Store, StoreError};
use serde::Deserialize;

use super::{NoticeQuery, see_other, ticked};
use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/inboxes", get(list).post(create))
        .route("/settings/inboxes/{id}", get(show).post(update))
}

/// The one `<script>` line a website pastes to show the widget.
pub fn embed_snippet(public_base: &str, inbox_token: &str) -> String {
    format!(
        r#"<script src="{public_base}/widget.js" data-kaltalk-inbox="{inbox_token}" async></script>"#
    )
}

/// Creates a web inbox with default widget settings and the given allowed domains.
pub async fn create_web_inbox(
    store: &Store,
    org: OrgId,
    name: &str,
    domains: Vec<String>,
    now: DateTime<Utc>,
) -> Result<Inbox, StoreError> {
    let inbox = NewInbox {
        org_id: org,
        kind: InboxKind::Web,
        name: name.to_owned(),
        public_token: token::generate("wi_"),
        identity_secret: token::generate(""),
        settings: WidgetSettings {
            allowed_domains: domains,
            ..WidgetSettings::default()
        },
    };
    store.create_inbox(&inbox, now).await
}

/// Parses allowed domains (one per line or comma-separated; `https://` and paths are cut).
pub fn parse_domains(input: &str) -> Result<Vec<String>, ValidationError> {
    let mut domains = Vec::new();
    for raw in input
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let host = raw
            .split("://")
            .last()
            .unwrap_or(raw)
            .split(['/', ':'])
            .next()
            .unwrap_or_default()
            .trim_start_matches("*.")
            .to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid {
            return Err(ValidationError::new(
                "allowed_domains",
                format!("{raw:?} is not a domain like example.com."),
            ));
        }
        if !domains.contains(&host) {
            domains.push(host);
        }
    }
    Ok(domains)
}

#[derive(Template, WebTemplate)]
#[template(path = "app/inboxes.html")]
struct InboxesPage {
    layout: Layout,
    csrf: String,
    inboxes: Vec<Inbox>,
    name: String,
    domains: String,
    errors: FieldErrors,
}

async fn list_page(state: &AppState, session: &AgentSession) -> Result<InboxesPage, AppError> {
    Ok(InboxesPage {
        layout: Layout::signed_in(state, session, "inboxes").await?,
        csrf: session.csrf_token.clone(),
        inboxes: state.store.list_inboxes(session.org_id()).await?,
        name: String::new(),
        domains: String::new(),
        errors: FieldErrors::default(),
    })
}

async fn list(State(state): State<AppState>, session: AgentSession) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    Ok(list_page(&state, &session).await?.into_response())
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    allowed_domains: String,
}

async fn create(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<CreateForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut errors = FieldErrors::default();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(ValidationError::new(
            "name",
            "Name the inbox (1 to 100 characters), e.g. Website.",
        ));
    }
    let domains = errors.take(parse_domains(&form.allowed_domains));
    let (Some(domains), true) = (domains, errors.is_empty()) else {
        let mut page = list_page(&state, &session).await?;
        page.name = form.name;
        page.domains = form.allowed_domains;
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let inbox =
        create_web_inbox(&state.store, session.org_id(), name, domains, state.now()).await?;
    Ok(see_other(&format!(
        "/settings/inboxes/{}?notice=created",
        inbox.id
    )))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/inbox_settings.html")]
struct InboxPage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    inbox: Inbox,
    name: String,
    settings: WidgetSettings,
    domains: String,
    snippet: String,
    errors: FieldErrors,
}

async fn inbox_page(
    state: &AppState,
    session: &AgentSession,
    id: InboxId,
) -> Result<InboxPage, AppError> {
    let inbox = state.store.get_inbox(session.org_id(), id).await?;
    Ok(InboxPage {
        layout: Layout::signed_in(state, session, "inboxes").await?,
        notice: None,
        csrf: session.csrf_token.clone(),
        name: inbox.name.clone(),
        settings: inbox.settings.0.clone(),
        domains: inbox.settings.0.allowed_domains.join("\n"),
        snippet: embed_snippet(&state.public_base, &inbox.public_token),
        inbox,
        errors: FieldErrors::default(),
    })
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<InboxId>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut page = inbox_page(&state, &session, id).await?;
    page.notice = match query.notice.as_deref() {
        Some("created") => Some("Inbox created. Paste the snippet below into your website."),
        Some("saved") => Some("Settings saved."),
        _ => None,
    };
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    color: String,
    #[serde(default)]
    greeting: String,
    #[serde(default)]
    position: String,
    #[serde(default)]
    allowed_domains: String,
    prechat_name: Option<String>,
    prechat_email: Option<String>,
    #[serde(default)]
    offline_message: String,
    #[serde(default)]
    identity: String,
}

fn parse_settings(form: &SettingsForm, errors: &mut FieldErrors) -> Option<WidgetSettings> {
    let color = form.color.trim().to_ascii_lowercase();
    if !WidgetSettings::valid_color(&color) {
        errors.add(ValidationError::new("color", "Use a colour like #4338ca."));
    }
    let greeting = form.greeting.trim();
    if greeting.chars().count() > 300 {
        errors.add(ValidationError::new(
            "greeting",
            "Keep the greeting under 300 characters.",
        ));
    }
    let offline = form.offline_message.trim();
    if offline.chars().count() > 500 {
        errors.add(ValidationError::new(
            "offline_message",
            "Keep the offline message under 500 characters.",
        ));
    }
    let position = form
        .position
        .parse::<LauncherPosition>()
        .map_err(|e| ValidationError::new("position", e));
    let position = errors.take(position);
    let identity = errors.take(
        form.identity
            .parse::<IdentityMode>()
            .map_err(|e| ValidationError::new("identity", e)),
    );
    let domains = errors.take(parse_domains(&form.allowed_domains));
    Some(WidgetSettings {
        color,
        greeting: greeting.to_owned(),
        position: position?,
        allowed_domains: domains?,
        prechat_name: ticked(&form.prechat_name),
        prechat_email: ticked(&form.prechat_email),
        offline_message: offline.to_owned(),
        identity: identity?,
    })
    .filter(|_| errors.is_empty())
}

async fn update(
    State(state): State<AppState>,
    IdPath(id): IdPath<InboxId>,
    SessionForm { session, form }: SessionForm<SettingsForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut errors = FieldErrors::default();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(ValidationError::new(
            "name",
            "Name the inbox (1 to 100 characters).",
        ));
    }
    let Some(settings) = parse_settings(&form, &mut errors) else {
        let mut page = inbox_page(&state, &session, id).await?;
        page.name = form.name.clone();
        page.domains = form.allowed_domains.clone();
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    state
        .store
        .update_inbox(session.org_id(), id, name, &settings, state.now())
        .await?;
    Ok(see_other(&format!("/settings/inboxes/{id}?notice=saved")))
}
