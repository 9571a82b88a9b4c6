//! CSRF protection, two layers. Every state-changing request from a browser must come from
//! our own origin (`Origin` / `Sec-Fetch-Site`, checked in middleware for all routes), and
//! every state-changing request made with a session must carry the session's CSRF token
//! (a hidden form field, or the `X-CSRF-Token` header that htmx sends).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::auth::AgentSession;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::PageError;

pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A form posted by a signed-in person, its CSRF token checked.
pub struct SessionForm<T> {
    pub session: AgentSession,
    pub form: T,
}

#[derive(Deserialize)]
struct TokenField {
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for SessionForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = AgentSession::from_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
        let sent = match parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
            Some(token) => Some(token.to_owned()),
            None => serde_urlencoded::from_bytes::<TokenField>(&bytes)
                .ok()
                .and_then(|f| f.csrf_token),
        };
        check_token(sent.as_deref(), &session.csrf_token)?;
        let form = serde_urlencoded::from_bytes::<T>(&bytes)
            .map_err(|e| AppError::BadRequest(format!("The form is incomplete: {e}")))?;
        Ok(SessionForm { session, form })
    }
}

pub fn check_token(sent: Option<&str>, expected: &str) -> Result<(), AppError> {
    match sent {
        Some(sent) if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        _ => Err(AppError::CsrfRejected),
    }
}

/// Refuses state-changing browser requests that come from another site.
pub async fn same_origin_only(request: Request, next: Next) -> Response {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    // API keys are not ambient credentials: a page on another site cannot make the browser
    // send them, so bearer requests need no origin check.
    let bearer = request.headers().contains_key(header::AUTHORIZATION);
    if unsafe_method && !bearer && !same_origin(request.headers()) {
        return PageError::from(AppError::CsrfRejected).into_response();
    }
    next.run(request).await
}

fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_authority = origin.split_once("://").map(|(_, rest)| rest);
        return origin != "null" && origin_authority.is_some() && origin_authority == host;
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        // Neither header: not a modern browser's cross-site request (curl, scripts). The
        // session token check still applies to anything that uses a session.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn origin_must_match_host() {
        assert!(same_origin(&headers(&[
            ("host", "localhost:3000"),
            ("origin", "http://localhost:3000")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "localhost:3000"),
            ("origin", "http://evil.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "localhost:3000"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "a"),
            ("sec-fetch-site", "same-origin")
        ])));
    }

    #[test]
    fn token_compare() {
        assert!(check_token(Some("abc"), "abc").is_ok());
        assert!(check_token(Some("abd"), "abc").is_err());
        assert!(check_token(None, "abc").is_err());
    }
}
