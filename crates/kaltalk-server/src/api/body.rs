//! Reading JSON request bodies field by field, so that a wrong type is a 422 naming the
//! field rather than a generic parse error.

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::error::AppError;

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

/// Refuses fields this endpoint does not know, so a typo is not silently ignored.
pub fn refuse_unknown(map: &Map<String, Value>, known: &[&str]) -> Result<(), AppError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(AppError::BadRequest(format!(
            "Unknown field {unknown:?}: expected {}.",
            known.join(", ")
        ))),
        None => Ok(()),
    }
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
