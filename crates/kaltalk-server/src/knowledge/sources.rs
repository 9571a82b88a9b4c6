//! Adding and removing knowledge sources, shared by the dashboard's forms and the API so
//! both accept and refuse the same input.

use kaltalk_core::{OrgId, ValidationError};
use uuid::Uuid;

use crate::error::AppError;
use crate::state::AppState;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_TEXT_BYTES: usize = 200_000;

/// A text source's title and Markdown, trimmed; `text_field` names the text's field
/// (`body` in the dashboard's form, `text` in the API).
pub fn text_source<'a>(
    title: &'a str,
    text: &'a str,
    text_field: &'static str,
) -> Result<(&'a str, &'a str), Vec<ValidationError>> {
    let mut errors = Vec::new();
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        errors.push(ValidationError::new(
            "title",
            "Give it a title (1 to 200 characters).",
        ));
    }
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_TEXT_BYTES {
        errors.push(ValidationError::new(
            text_field,
            "Write the text (at most 200 KB).",
        ));
    }
    if errors.is_empty() {
        Ok((title, text))
    } else {
        Err(errors)
    }
}

/// A web page's or site's address: http(s) with a host.
pub fn web_url(raw: &str) -> Result<url::Url, ValidationError> {
    url::Url::parse(raw.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| ValidationError::new("url", "Enter a web address starting with https://"))
}

/// The title given, else the site's host.
pub fn web_title(given: &str, url: &url::Url) -> String {
    match given.trim() {
        "" => url.host_str().unwrap_or("Website").to_owned(),
        title => title.chars().take(MAX_TITLE_CHARS).collect(),
    }
}

/// Deletes a source with its chunks, then its stored file.
pub async fn delete_source(state: &AppState, org: OrgId, id: Uuid) -> Result<(), AppError> {
    let blob_key = state.store.delete_source(org, id, state.now()).await?;
    // After the row is gone, so a failure here leaves an orphan file, never a source
    // whose file is missing.
    if let Some(key) = blob_key {
        state.blobs.delete(&key).await;
    }
    Ok(())
}
