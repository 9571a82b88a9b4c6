//! API keys: created here, shown once, stored as a hash, revocable.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kaltalk_core::Text;
use kaltalk_core::{ApiKeyId, Permission, token};
use kaltalk_store::ApiKey;
use serde::Deserialize;

use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoFields, see_other};
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

/// Every key starts with this, so secret scanners and people can recognise one.
pub const KEY_PREFIX: &str = "kt_";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/api-keys", get(show).post(create))
        .route("/settings/api-keys/{id}/revoke", post(revoke))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/api_keys.html")]
struct ApiKeysPage {
    layout: Layout,
    csrf: String,
    keys: Vec<ApiKey>,
    new_key: Option<String>,
    name: String,
    errors: FieldErrors,
}

async fn page(state: &AppState, session: &AgentSession) -> Result<ApiKeysPage, AppError> {
    Ok(ApiKeysPage {
        layout: Layout::signed_in(state, session, "api-keys").await?,
        csrf: session.csrf_token.clone(),
        keys: state.store.list_api_keys(session.org_id()).await?,
        new_key: None,
        name: String::new(),
        errors: FieldErrors::default(),
    })
}

async fn show(State(state): State<AppState>, session: AgentSession) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    Ok(page(&state, &session).await?.into_response())
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: Text,
}

/// Creates a key and shows it in the response to this POST only: the page is not
/// redirected, so the secret never appears in a URL or a later page.
async fn create(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<CreateForm>,
) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        let mut page = page(&state, &session).await?;
        page.errors = vec![kaltalk_core::ValidationError::new(
            "name",
            "Name the key (1 to 100 characters), e.g. after the program that uses it.",
        )]
        .into();
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let secret = create_key(
        &state.store,
        state.now(),
        session.org_id(),
        name,
        Some(session.user.id),
    )
    .await?;
    let mut page = page(&state, &session).await?;
    page.new_key = Some(secret);
    Ok(page.into_response())
}

/// Creates an API key for `org`; returns the secret, the only time it exists in clear.
pub async fn create_key(
    store: &kaltalk_store::Store,
    now: chrono::DateTime<chrono::Utc>,
    org: kaltalk_core::OrgId,
    name: &str,
    by: Option<kaltalk_core::UserId>,
) -> Result<String, kaltalk_store::StoreError> {
    let secret = token::generate(KEY_PREFIX);
    let key = kaltalk_store::NewApiKey {
        org_id: org,
        name: name.to_owned(),
        prefix: secret.chars().take(KEY_PREFIX.len() + 6).collect(),
        token_hash: token::hash(&secret),
        created_by: by,
    };
    store.create_api_key(&key, now).await?;
    Ok(secret)
}

async fn revoke(
    State(state): State<AppState>,
    IdPath(id): IdPath<ApiKeyId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageApiKeys)?;
    state
        .store
        .revoke_api_key(session.org_id(), id, state.now())
        .await?;
    Ok(see_other("/settings/api-keys"))
}
