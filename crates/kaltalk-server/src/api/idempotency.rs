//! `Idempotency-Key` on every POST of the API, once for all handlers: the first answer
//! (status and body) per (organization, key, method and path) is kept for 24 hours; a
//! retry with the same body gets it again with `Idempotent-Replayed: true`, the same key
//! with another body is a 422 `idempotency_key_reused`. Server errors are not kept, so a
//! retry after one runs again.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kaltalk_store::idempotency::{IdempotencyClaim, StoredResponse};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest key accepted (Stripe's limit; UUIDs fit easily).
const MAX_KEY_LEN: usize = 255;
/// Bodies hashed or kept at most: a message with its five files of 10 MB.
const MAX_BODY_BYTES: usize = 5 * crate::attachments::MAX_BYTES + 64 * 1024;

/// A problem document with its own stable code, for the answers only this layer gives.
fn problem(status: StatusCode, code: &'static str, detail: &str) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
        "errors": [{ "field": "Idempotency-Key", "message": detail }],
    });
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    if let Some(content_type) = stored
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// POSTs whose answer is never kept: a native app's sign-in answers its bearer token,
/// shown once and stored only hashed; a kept answer would store it readable (and the
/// request has no organization to key it by before it succeeds). Its operation is public,
/// so the document does not offer `Idempotency-Key` there.
const NEVER_KEPT: &[&str] = &["/api/v1/sessions"];

pub async fn honour_idempotency_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST
        || !request.headers().contains_key(IDEMPOTENCY_KEY)
        || NEVER_KEPT.contains(&request.uri().path())
    {
        return next.run(request).await;
    }
    match keyed(&state, request, next).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn keyed(state: &AppState, request: Request, next: Next) -> Result<Response, AppError> {
    let (mut parts, body) = request.into_parts();
    let key = parts
        .headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .map(str::to_owned)
        .ok_or_else(|| {
            AppError::invalid(
                "Idempotency-Key",
                "Use 1 to 255 visible characters, e.g. a UUID.",
            )
        })?;
    // Keys are per organization: authenticate first (the handler does it again).
    let principal = ApiPrincipal::from_request_parts(&mut parts, state).await?;
    let org = principal.org_id();
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        AppError::BadRequest("The body is too large for a request with an Idempotency-Key.".into())
    })?;
    let request_name = format!("{} {}", parts.method, parts.uri.path());
    let body_hash = hex::encode(Sha256::digest(&bytes));
    let claim = state
        .store
        .claim_idempotency_key(org, &key, &request_name, &body_hash, state.now())
        .await?;
    match claim {
        IdempotencyClaim::Replay(stored) => return Ok(replay(stored)),
        IdempotencyClaim::BodyMismatch => {
            return Ok(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different body; use a new key for a new request.",
            ));
        }
        IdempotencyClaim::InProgress => {
            return Ok(problem(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still running; retry once it has answered.",
            ));
        }
        IdempotencyClaim::New => {}
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status().is_server_error() {
        state
            .store
            .release_idempotency_key(org, &key, &request_name)
            .await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(err) => {
            // The answer could not be kept: free the key so a retry runs again.
            state
                .store
                .release_idempotency_key(org, &key, &request_name)
                .await?;
            return Err(AppError::Internal(anyhow::anyhow!(
                "reading a response to keep for its Idempotency-Key: {err}"
            )));
        }
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: bytes.to_vec(),
    };
    state
        .store
        .finish_idempotent_request(org, &key, &request_name, &stored)
        .await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
