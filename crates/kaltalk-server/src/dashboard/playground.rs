//! The AI playground: ask the bot a question as a visitor would and see what it would do
//! (the passages retrieved with their scores, the answer or the reason it would hand
//! over, the citations, and where the time went), without any conversation.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use kaltalk_core::{Permission, ValidationError};
use serde::Deserialize;

use crate::auth::{AgentSession, SessionForm};
use crate::bot::{self, Preview, PreviewOutcome};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{FieldErrors, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/ai/playground", get(show).post(ask))
}

/// The longest question the playground takes: about what a visitor types at most.
const QUESTION_CHARS: usize = 2_000;

#[derive(Template, WebTemplate)]
#[template(path = "app/playground.html")]
struct PlaygroundPage {
    layout: Layout,
    csrf: String,
    question: String,
    errors: FieldErrors,
    /// Whether answers are written by a chat model (else quoted from the best passage).
    generative: bool,
    result: Option<Shown>,
}

/// A preview as the page shows it.
struct Shown {
    preview: Preview,
    answer: Option<String>,
    handover: Option<String>,
    citations: Vec<(String, Option<String>)>,
    retrieval_ms: String,
    model_ms: Option<String>,
}

fn millis(d: std::time::Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

impl From<Preview> for Shown {
    fn from(preview: Preview) -> Self {
        let (answer, handover, citations) = match &preview.outcome {
            PreviewOutcome::Answer { text, citations } => (
                Some(text.clone()),
                None,
                citations
                    .iter()
                    .map(|c| {
                        (
                            c["title"].as_str().unwrap_or("Source").to_owned(),
                            c["url"].as_str().map(str::to_owned),
                        )
                    })
                    .collect(),
            ),
            PreviewOutcome::HandOver(reason) => (None, Some(reason.clone()), Vec::new()),
        };
        Shown {
            retrieval_ms: millis(preview.retrieval),
            model_ms: preview.model.map(millis),
            preview,
            answer,
            handover,
            citations,
        }
    }
}

async fn page(
    state: &AppState,
    session: &AgentSession,
    question: String,
    errors: FieldErrors,
    result: Option<Shown>,
) -> Result<PlaygroundPage, AppError> {
    Ok(PlaygroundPage {
        layout: Layout::signed_in(state, session, "ai").await?,
        csrf: session.csrf_token.clone(),
        question,
        errors,
        generative: state.chat.is_some(),
        result,
    })
}

async fn show(State(state): State<AppState>, session: AgentSession) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    Ok(page(
        &state,
        &session,
        String::new(),
        FieldErrors::default(),
        None,
    )
    .await?
    .into_response())
}

#[derive(Deserialize)]
struct AskForm {
    #[serde(default)]
    question: String,
}

async fn ask(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<AskForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let question = form.question.trim().to_owned();
    let mut errors = FieldErrors::default();
    if question.is_empty() {
        errors.add(ValidationError::new("question", "Ask a question."));
    } else if question.chars().count() > QUESTION_CHARS {
        errors.add(ValidationError::new(
            "question",
            format!("Keep the question under {QUESTION_CHARS} characters."),
        ));
    }
    if !errors.is_empty() {
        let page = page(&state, &session, question, errors, None).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let preview = bot::preview(&state, session.org_id(), &question).await?;
    // The home checklist's "try the playground" ticks from this.
    state
        .store
        .mark_playground_tried(session.org_id(), state.now())
        .await?;
    let page = page(
        &state,
        &session,
        question,
        FieldErrors::default(),
        Some(preview.into()),
    )
    .await?;
    Ok(page.into_response())
}
