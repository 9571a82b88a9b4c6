//! Reading JSON request bodies field by field, so that a wrong type is a 422 naming the
//! field rather than a generic parse error.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use kaltalk_core::values::refuse_nul_in_json;

use crate::error::AppError;

/// A JSON object body: the extractor every JSON endpoint of the API reads its body with.
/// A body that does not say `Content-Type: application/json` is a 415, as any other
/// format would be misread.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(request.headers())?;
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        object(&body).map(JsonObject)
    }
}

/// Refuses a body that is not declared as JSON (`application/json`, or a `+json` type).
pub fn require_json(headers: &HeaderMap) -> Result<(), AppError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if is_json {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(
            "Send the body as JSON, with Content-Type: application/json.",
        ))
    }
}

/// The request body as a JSON object.
pub fn object(body: &Bytes) -> Result<Map<String, Value>, AppError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AppError::BadRequest(
            "The body must be a JSON object, e.g. {\"text\": \"Hello\"}.".into(),
        )),
        Err(err) => Err(AppError::BadRequest(format!(
            "The body is not valid JSON: {err}."
        ))),
    }
}

/// Refuses fields this endpoint does not know, so a typo is not silently ignored, and any
/// field holding a NUL character, in a string or a key at any depth (see
/// [`kaltalk_core::Text`]), naming it: every JSON body of the API passes here.
pub fn refuse_unknown(map: &Map<String, Value>, known: &[&'static str]) -> Result<(), AppError> {
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(AppError::BadRequest(format!(
            "Unknown field {unknown:?}: expected {}.",
            known.join(", ")
        )));
    }
    for field in known {
        if let Some(value) = map.get(*field) {
            refuse_nul_in_json(field, value).map_err(|e| AppError::Validation(vec![e]))?;
        }
    }
    Ok(())
}

/// A field that may be absent (`None`), null (`Some(None)`) or a string.
pub fn nullable_string(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Option<String>>, AppError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(AppError::invalid(field, "Must be a string or null.")),
    }
}

/// A required, non-blank string of at most `max` characters, trimmed.
pub fn required_text(
    map: &Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<String, AppError> {
    match map.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            let text = s.trim();
            if text.chars().count() > max {
                return Err(AppError::invalid(
                    field,
                    format!("At most {max} characters."),
                ));
            }
            Ok(text.to_owned())
        }
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(AppError::invalid(field, "Required, and not blank."))
        }
        Some(_) => Err(AppError::invalid(field, "Must be a string.")),
    }
}
