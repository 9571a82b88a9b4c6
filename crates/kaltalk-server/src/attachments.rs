//! Files on messages: accepted only as the few types a support chat needs, recognised by
//! their content (never by the name or the browser's claim), capped in size, stored in the
//! data folder, and served only to those allowed to see them.

use std::path::PathBuf;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kaltalk_core::{AttachmentId, OrgId, token};
use kaltalk_store::messages::{Attachment, NewAttachment};
use serde::Deserialize;

use crate::auth::AgentSession;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{IdPath, PageError};

/// The largest file accepted.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// Files on one message at most (the API's and the dashboard's replies).
pub const MAX_FILES: usize = 5;

/// A file as received, before it is stored.
pub struct Upload {
    pub filename: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooLarge,
    UnsupportedType,
    Empty,
}

/// The type of a file from its first bytes: images a browser shows safely, and PDF.
/// SVG and HTML are refused: they can carry script.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        [b'%', b'P', b'D', b'F', b'-', ..] => Some("application/pdf"),
        _ => None,
    }
}

/// A file name safe to store and show: no path, no control characters, bounded.
pub fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

impl Upload {
    pub fn accept(filename: &str, bytes: Vec<u8>) -> Result<Self, Refused> {
        if bytes.is_empty() {
            return Err(Refused::Empty);
        }
        if bytes.len() > MAX_BYTES {
            return Err(Refused::TooLarge);
        }
        let content_type = sniff(&bytes).ok_or(Refused::UnsupportedType)?;
        Ok(Self {
            filename: clean_filename(filename),
            content_type,
            bytes,
        })
    }
}

/// Blob storage in the data folder (`blobs/<org>/<attachment>`). Writes go to a temporary
/// name and are renamed into place, so a crash never leaves half a file under a real key.
#[derive(Clone, Debug)]
pub struct Blobs {
    root: PathBuf,
}

impl Blobs {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let temporary = path.with_extension("part");
        tokio::fs::write(&temporary, bytes).await?;
        tokio::fs::rename(&temporary, &path).await
    }

    pub async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(key)).await
    }

    pub async fn delete(&self, key: &str) {
        let _ = tokio::fs::remove_file(self.path(key)).await;
    }

    /// Removes every file of a deleted organization: attachments and email originals
    /// (`<org>/`) and knowledge-base uploads (`knowledge/<org>/`).
    pub async fn delete_organization(&self, org: OrgId) -> std::io::Result<()> {
        for folder in [org.to_string(), format!("knowledge/{org}")] {
            match tokio::fs::remove_dir_all(self.path(&folder)).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Stores an accepted upload for `org`; returns what the message row records.
pub async fn store(
    state: &AppState,
    org: OrgId,
    upload: &Upload,
) -> Result<NewAttachment, AppError> {
    let id = AttachmentId::new();
    let storage_key = format!("{org}/{id}");
    state
        .blobs
        .put(&storage_key, &upload.bytes)
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("writing an attachment")))?;
    Ok(NewAttachment {
        id,
        filename: upload.filename.clone(),
        content_type: upload.content_type.to_owned(),
        size: upload.bytes.len() as i64,
        storage_key,
        access_token: token::generate(""),
    })
}

/// The file as a response: images inline, anything else as a download.
async fn respond(
    state: &AppState,
    attachment: &Attachment,
    cross_origin: bool,
) -> Result<Response, AppError> {
    let bytes = state
        .blobs
        .get(&attachment.storage_key)
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("reading an attachment")))?;
    let disposition = if attachment.is_image() {
        "inline"
    } else {
        "attachment"
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&attachment.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let encoded: String =
        url::form_urlencoded::byte_serialize(attachment.filename.as_bytes()).collect();
    if let Ok(value) = HeaderValue::from_str(&format!("{disposition}; filename*=UTF-8''{encoded}"))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    if cross_origin {
        // The widget shows images on the customer's page.
        headers.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("cross-origin"),
        );
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    t: String,
}

/// `GET /widget/v1/attachments/{id}?t=…`: for the visitor, by the unguessable URL.
pub async fn serve_to_visitor(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
) -> Result<Response, AppError> {
    let id: AttachmentId = id.parse().map_err(|_| AppError::NotFound)?;
    if query.t.is_empty() {
        return Err(AppError::NotFound);
    }
    let attachment = state.store.get_attachment_by_token(id, &query.t).await?;
    respond(&state, &attachment, true).await
}

/// `GET /inbox/attachments/{id}`: for the team of the attachment's organization.
pub async fn serve_to_agent(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<AttachmentId>,
) -> Result<Response, PageError> {
    let attachment = state.store.get_attachment(session.org_id(), id).await?;
    Ok(respond(&state, &attachment, false).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_content_not_names() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a...."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"%PDF-1.7"), Some("application/pdf"));
        assert_eq!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>"),
            None
        );
        assert_eq!(sniff(b"<html>"), None);
    }

    #[test]
    fn uploads_are_checked() {
        assert_eq!(
            Upload::accept("a.png", Vec::new()).err(),
            Some(Refused::Empty)
        );
        assert_eq!(
            Upload::accept("a.png", b"<script>".to_vec()).err(),
            Some(Refused::UnsupportedType)
        );
        let mut big = b"%PDF-".to_vec();
        big.resize(MAX_BYTES + 1, 0);
        assert_eq!(Upload::accept("a.pdf", big).err(), Some(Refused::TooLarge));
        let ok =
            Upload::accept("../../etc/passwd.png", b"\x89PNG\r\n\x1a\n".to_vec()).expect("png");
        assert_eq!(ok.filename, "passwd.png");
        assert_eq!(ok.content_type, "image/png");
    }

    #[test]
    fn filenames_are_cleaned() {
        assert_eq!(clean_filename("C:\\Users\\ada\\photo.jpg"), "photo.jpg");
        assert_eq!(clean_filename("..hidden"), "hidden");
        assert_eq!(clean_filename("a\"b\nc.png"), "abc.png");
        assert_eq!(clean_filename(""), "file");
    }
}
