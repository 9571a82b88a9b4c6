//! The AI agent's settings and this month's usage.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use kaltalk_core::Text;
use kaltalk_core::chat::AiSettings;
use kaltalk_core::{Permission, ValidationError};
use kaltalk_store::ai::Usage;
use serde::Deserialize;

use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoticeQuery, see_other, ticked};
use crate::web::{FieldErrors, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/ai", get(show).post(save))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/ai.html")]
struct AiPage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    settings: AiSettings,
    usage: Usage,
    errors: FieldErrors,
    /// The server's default chat model; `None` when no chat model is configured, so the
    /// page can say answers are extractive whatever the organization names.
    default_model: Option<String>,
}

async fn page(
    state: &AppState,
    session: &AgentSession,
    settings: AiSettings,
    errors: FieldErrors,
) -> Result<AiPage, AppError> {
    Ok(AiPage {
        layout: Layout::signed_in(state, session, "ai").await?,
        notice: None,
        csrf: session.csrf_token.clone(),
        settings,
        usage: state.store.ai_usage(session.org_id(), state.now()).await?,
        errors,
        default_model: state.chat.as_ref().and(state.config.ai.model.clone()),
    })
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let settings = state.store.ai_settings(session.org_id()).await?;
    let mut page = page(&state, &session, settings, FieldErrors::default()).await?;
    page.notice = (query.notice.as_deref() == Some("saved")).then_some("Saved.");
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct SettingsForm {
    enabled: Option<String>,
    #[serde(default)]
    bot_name: Text,
    #[serde(default)]
    instructions: Text,
    #[serde(default)]
    tone: Text,
    #[serde(default)]
    model: Text,
    #[serde(default)]
    temperature: String,
    #[serde(default)]
    max_bot_turns: String,
    #[serde(default)]
    confidence_threshold: String,
}

/// Reads a number in `range`, or records why not.
fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    errors: &mut FieldErrors,
    field: &'static str,
    input: &str,
    range: (T, T),
) -> T {
    match input.trim().parse::<T>() {
        Ok(value) if value >= range.0 && value <= range.1 => value,
        _ => {
            errors.add(ValidationError::new(
                field,
                format!("Enter a number from {} to {}.", range.0, range.1),
            ));
            range.0
        }
    }
}

async fn save(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<SettingsForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut errors = FieldErrors::default();
    let bot_name = form.bot_name.trim();
    if bot_name.is_empty() || bot_name.chars().count() > 60 {
        errors.add(ValidationError::new(
            "bot_name",
            "Name the bot (1 to 60 characters).",
        ));
    }
    if form.instructions.chars().count() > 4000 {
        errors.add(ValidationError::new(
            "instructions",
            "Keep the instructions under 4000 characters.",
        ));
    }
    let settings = AiSettings {
        enabled: ticked(&form.enabled),
        bot_name: bot_name.to_owned(),
        instructions: form.instructions.trim().to_owned(),
        tone: form.tone.trim().chars().take(100).collect(),
        model: Some(form.model.trim().to_owned()).filter(|m| !m.is_empty()),
        temperature: number(&mut errors, "temperature", &form.temperature, (0.0, 2.0)),
        max_bot_turns: number(&mut errors, "max_bot_turns", &form.max_bot_turns, (1, 50)),
        confidence_threshold: number(
            &mut errors,
            "confidence_threshold",
            &form.confidence_threshold,
            (0.0, 1.0),
        ),
    };
    if !errors.is_empty() {
        let page = page(&state, &session, settings, errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    state
        .store
        .save_ai_settings(session.org_id(), &settings, state.now())
        .await?;
    Ok(see_other("/settings/ai?notice=saved"))
}
