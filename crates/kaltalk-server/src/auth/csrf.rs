//! CSRF protection, two layers. Every state-changing request from a browser must come from
//! our own origin (`Origin` / `Sec-Fetch-Site`, checked in middleware for all routes), and
//! every state-changing request made with a session must carry the session's CSRF token
//! (a hidden form field, or the `X-CSRF-Token` header that htmx sends).

use axum::body::Bytes;
use std::marker::PhantomData;

use axum::extract::{FromRequest, Multipart, Request};
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

/// A JSON body sent by the signed-in person's dashboard script, its CSRF token in the
/// `X-CSRF-Token` header (a JSON body has no form field for it).
pub struct SessionJson<T> {
    pub session: AgentSession,
    pub body: T,
}

/// The most a [`SessionJson`] body may weigh.
const MAX_JSON_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned> FromRequest<AppState> for SessionJson<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = AgentSession::from_parts(&mut parts, state).await?;
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        check_token(sent, &session.csrf_token)?;
        let bytes = axum::body::to_bytes(body, MAX_JSON_BYTES)
            .await
            .map_err(|_| {
                AppError::BadRequest("The body could not be read (64 KB at most).".into())
            })?;
        let body = serde_json::from_slice::<T>(&bytes)
            .map_err(|e| AppError::BadRequest(format!("The JSON body does not fit: {e}")))?;
        Ok(SessionJson { session, body })
    }
}

/// How large a file a [`SessionUpload`] accepts, read from configuration per request,
/// and how many files one form may carry.
pub trait UploadCap {
    fn max_file_bytes(state: &AppState) -> u64;
    const MAX_FILES: usize = 1;
}

/// A file field of a [`SessionUpload`].
pub struct UploadedFile {
    /// The name the browser sent, unchecked: clean it before showing or storing it.
    pub file_name: String,
    /// The bytes, or `None` when the file is larger than the cap (reading stopped there).
    pub bytes: Option<Vec<u8>>,
}

/// A multipart form (a file upload) posted by a signed-in person, its CSRF token checked
/// like [`SessionForm`]'s. Text fields deserialize into `T`; each file field (up to `C`'s
/// count) is read up to `C`'s cap, so an oversized file is reported to the handler (which
/// explains it on the page) instead of being buffered whole. The route must lift axum's
/// default body limit (`DefaultBodyLimit::disable()`): the caps here replace it.
pub struct SessionUpload<T, C> {
    pub session: AgentSession,
    pub form: T,
    /// In the order sent, without the empty part a file input sends when nothing was chosen.
    pub files: Vec<UploadedFile>,
    cap: PhantomData<C>,
}

impl<T, C> SessionUpload<T, C> {
    /// The file of a form with one file input.
    pub fn file(&mut self) -> Option<UploadedFile> {
        (!self.files.is_empty()).then(|| self.files.remove(0))
    }
}

/// Text fields are small; anything longer is not a form we render.
const MAX_TEXT_FIELD_BYTES: usize = 64 * 1024;
const MAX_FIELDS: usize = 32;

impl<T: DeserializeOwned, C: UploadCap> FromRequest<AppState> for SessionUpload<T, C> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = AgentSession::from_parts(&mut parts, state).await?;
        let header_token = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let unreadable = || AppError::BadRequest("The form could not be read.".into());
        let mut multipart = Multipart::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| unreadable())?;
        let cap = C::max_file_bytes(state);
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut files = Vec::new();
        while let Some(mut field) = multipart.next_field().await.map_err(|_| unreadable())? {
            let name = field.name().unwrap_or_default().to_owned();
            if let Some(file_name) = field.file_name().map(str::to_owned) {
                if files.len() == C::MAX_FILES {
                    return Err(AppError::BadRequest(match C::MAX_FILES {
                        1 => "Send one file at a time.".into(),
                        n => format!("Attach at most {n} files."),
                    })
                    .into());
                }
                let mut bytes = Vec::new();
                let mut over = false;
                while let Some(chunk) = field.chunk().await.map_err(|_| unreadable())? {
                    if (bytes.len() + chunk.len()) as u64 > cap {
                        over = true;
                        break;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                if file_name.is_empty() && bytes.is_empty() && !over {
                    continue; // a file input with nothing chosen
                }
                files.push(UploadedFile {
                    file_name,
                    bytes: (!over).then_some(bytes),
                });
                // Past the cap the rest of the body is not read: later fields are lost,
                // which is why the page puts its token and text fields before the file.
                if over {
                    break;
                }
                continue;
            }
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|_| unreadable())? {
                text.extend_from_slice(&chunk);
                if text.len() > MAX_TEXT_FIELD_BYTES {
                    return Err(
                        AppError::BadRequest(format!("The field {name} is too long.")).into(),
                    );
                }
            }
            let text = String::from_utf8(text).map_err(|_| {
                AppError::BadRequest(format!("The field {name} is not UTF-8 text."))
            })?;
            fields.push((name, text));
            if fields.len() > MAX_FIELDS {
                return Err(AppError::BadRequest("The form has too many fields.".into()).into());
            }
        }
        let sent = header_token.or_else(|| {
            fields
                .iter()
                .find(|(name, _)| name == CSRF_FIELD)
                .map(|(_, value)| value.clone())
        });
        check_token(sent.as_deref(), &session.csrf_token)?;
        // The text fields take the same path as a urlencoded form, so `T` is declared alike.
        let encoded = serde_urlencoded::to_string(&fields).map_err(|_| unreadable())?;
        let form = serde_urlencoded::from_str::<T>(&encoded)
            .map_err(|e| AppError::BadRequest(format!("The form is incomplete: {e}")))?;
        Ok(SessionUpload {
            session,
            form,
            files,
            cap: PhantomData,
        })
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
    // No exemption for requests with an `Authorization` header: these routes also accept
    // the session cookie, which the browser adds whatever else a request carries. API
    // clients outside a browser send no `Origin` and pass; this API allows no CORS, so
    // no page on another site has a reason to call it.
    if unsafe_method && !same_origin(request.headers()) {
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
