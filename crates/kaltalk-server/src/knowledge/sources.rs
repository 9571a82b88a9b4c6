//! Adding and removing knowledge sources, shared by the dashboard's forms and the API so
//! both accept and refuse the same input.

use std::path::Path;

use kaltalk_ai::extract::{FileKind, sniff};
use kaltalk_core::{OrgId, ValidationError};
use kaltalk_store::knowledge::NewFileSource;
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

/// What each kind of file may be named; the content decides the kind.
fn extensions(kind: FileKind) -> &'static [&'static str] {
    match kind {
        FileKind::Pdf => &["pdf"],
        FileKind::Docx => &["docx"],
        FileKind::Html => &["html", "htm"],
        FileKind::Markdown => &["md", "markdown"],
        FileKind::Text => &["txt", "text"],
    }
}

/// Whether an upload is a kind of file the knowledge base reads: its content must be one
/// (sniffed), and its name, if it has an extension, must agree, so that a misnamed or
/// unexpected file (a spreadsheet, a ZIP of something else) is refused now rather than
/// failing later.
pub fn check_file_type(bytes: &[u8], file_name: &str) -> Result<FileKind, String> {
    let kind = sniff(bytes, file_name).map_err(|e| e.to_string())?;
    let extension = Path::new(file_name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let Some(extension) = extension else {
        return Ok(kind);
    };
    if extensions(kind).contains(&extension.as_str()) {
        return Ok(kind);
    }
    let known = [
        FileKind::Pdf,
        FileKind::Docx,
        FileKind::Html,
        FileKind::Markdown,
        FileKind::Text,
    ]
    .iter()
    .any(|k| extensions(*k).contains(&extension.as_str()));
    Err(if known {
        format!(
            "The file is named .{extension} but its content is a {kind}; it may be damaged or misnamed."
        )
    } else {
        format!(
            "Only PDF, DOCX, Markdown, HTML and plain-text files can be added (.pdf, .docx, .md, .html, .txt), not .{extension}."
        )
    })
}

/// Stores an uploaded file's bytes (`file_name` already cleaned, type already checked)
/// and adds it as a source, queued to be read into chunks. The title defaults to the
/// file's name.
pub async fn add_file_source(
    state: &AppState,
    org: OrgId,
    title: &str,
    file_name: &str,
    bytes: &[u8],
) -> Result<Uuid, AppError> {
    let blob_key = format!("knowledge/{org}/{}", Uuid::now_v7());
    state.blobs.put(&blob_key, bytes).await.map_err(|e| {
        AppError::Internal(anyhow::Error::new(e).context("storing a knowledge file"))
    })?;
    let title: String = match title.trim() {
        "" => file_name.to_owned(),
        title => title.chars().take(MAX_TITLE_CHARS).collect(),
    };
    let source = NewFileSource {
        title: &title,
        file_name,
        blob_key: &blob_key,
    };
    match state.store.add_file_source(org, &source, state.now()).await {
        Ok(id) => Ok(id),
        Err(err) => {
            // Nothing refers to the bytes: do not keep them.
            state.blobs.delete(&blob_key).await;
            Err(err.into())
        }
    }
}
