//! Errors that axum answers by itself (a query string or JSON body that does not parse,
//! a body over the size limit, a wrong method, a missing content type) turned into the
//! problem documents of the API and the widget, so that a client meets one error format
//! whatever refused its request.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::PROBLEM_JSON;

/// axum's rejection texts are one line; anything longer is not one of them.
const MAX_PLAIN_ERROR: usize = 4096;

pub async fn plain_errors_as_problems(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = match to_bytes(body, MAX_PLAIN_ERROR).await {
        // A server error's text may describe internals; the log has it.
        _ if status.is_server_error() => "internal error".to_owned(),
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("Error").to_owned(),
    };
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code_of(status),
        "detail": detail,
    });
    let mut response = (status, body.to_string()).into_response();
    // Keep what axum set (e.g. `Allow` on a 405), replacing only the body's type.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    *response.extensions_mut() = parts.extensions;
    response
}

/// The stable code of an error axum produced, by its status.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}
