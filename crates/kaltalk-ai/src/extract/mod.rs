//! Turning an uploaded file or a fetched page into clean Markdown for the knowledge base.
//! Every parser runs guarded, so a file that breaks one fails alone, with a reason a
//! person can act on, and the worker carries on with the next.

mod docx;
mod html;
mod pdf;
mod text;

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Duration;

pub use html::extract_html;

/// What came out of a file or a page: its title, if one was found, and its text as Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub title: Option<String>,
    pub markdown: String,
}

/// Caps on what one file may cost. The defaults suit a help-centre upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Larger uploads are refused before any parsing.
    pub max_file_bytes: u64,
    /// How much a compressed file (DOCX, PDF streams) may expand to, all parts together.
    pub max_decompressed_bytes: u64,
    /// How long one file may take to parse. On expiry the caller gets an error at once;
    /// the parser thread cannot be killed and finishes (or not) on its own.
    pub timeout: Duration,
}

const MIB: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 20 * MIB,
            max_decompressed_bytes: 50 * MIB,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The kinds of file the knowledge base reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Pdf,
    Docx,
    Html,
    Markdown,
    Text,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pdf => "PDF",
            Self::Docx => "DOCX",
            Self::Html => "HTML page",
            Self::Markdown => "Markdown file",
            Self::Text => "text file",
        })
    }
}

/// Why a file gave no document. The messages are written for the person who uploaded it.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("The file is larger than {}", Size(*limit))]
    TooLarge { limit: u64 },
    #[error("This kind of file is not supported: {reason}")]
    UnsupportedType { reason: String },
    #[error("The {kind} could not be read: {reason}")]
    Unreadable { kind: FileKind, reason: String },
    #[error("The {kind} expands beyond {}: refused as a possible {}", Size(*limit), bomb_name(*kind))]
    ExpandsTooMuch { kind: FileKind, limit: u64 },
    #[error("The {kind} is compressed {ratio}:1, far beyond any real document: refused as a possible {}", bomb_name(*kind))]
    SuspiciousCompression { kind: FileKind, ratio: u64 },
    #[error("Reading the {kind} took longer than {} s and was given up", timeout.as_secs_f32())]
    TimedOut { kind: FileKind, timeout: Duration },
    #[error("The {kind} has no text to learn from{}", no_text_hint(*kind))]
    NoText { kind: FileKind },
}

fn bomb_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Docx => "zip bomb",
        _ => "decompression bomb",
    }
}

fn no_text_hint(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Pdf => " (it may be scanned pages, which need OCR first)",
        _ => "",
    }
}

/// A byte count as people read it: "20 MB", "1.5 MB", "512 KB".
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        if bytes >= MIB {
            if bytes.is_multiple_of(MIB) {
                write!(f, "{} MB", bytes / MIB)
            } else {
                // Display only: the precision lost in the cast is invisible at one decimal.
                #[allow(clippy::cast_precision_loss)]
                let mb = bytes as f64 / MIB as f64;
                write!(f, "{mb:.1} MB")
            }
        } else if bytes >= 1024 {
            write!(f, "{} KB", bytes / 1024)
        } else {
            write!(f, "{bytes} bytes")
        }
    }
}

/// Reads an uploaded file into Markdown. The type comes from the content, not the name:
/// the name only tells Markdown from plain text, and gives the title when the file has
/// none of its own.
pub async fn extract_file(
    bytes: Vec<u8>,
    filename: &str,
    limits: &Limits,
) -> Result<Document, ExtractError> {
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(ExtractError::TooLarge {
            limit: limits.max_file_bytes,
        });
    }
    let kind = sniff(&bytes, filename)?;
    let mut document = match kind {
        FileKind::Pdf => {
            let limits = limits.clone();
            guarded(kind, limits.timeout, move || pdf::extract(&bytes, &limits)).await?
        }
        FileKind::Docx => {
            let limits = limits.clone();
            guarded(kind, limits.timeout, move || docx::extract(&bytes, &limits)).await?
        }
        FileKind::Html => {
            guarded(kind, limits.timeout, move || {
                extract_html(&text::decode(&bytes)?, None)
            })
            .await?
        }
        // Nothing to parse: the text is the Markdown.
        FileKind::Markdown | FileKind::Text => text::extract(&bytes, kind)?,
    };
    if document.markdown.trim().is_empty() {
        return Err(ExtractError::NoText { kind });
    }
    if document.title.is_none() {
        document.title = title_from_filename(filename);
    }
    Ok(document)
}

/// The kind of a file, from its content (the name only tells Markdown from text), or why
/// it is not one the knowledge base reads. Uploads are checked with it before they are
/// kept; [`extract_file`] decides the same way.
pub fn sniff(bytes: &[u8], filename: &str) -> Result<FileKind, ExtractError> {
    if bytes.starts_with(b"%PDF-") {
        return Ok(FileKind::Pdf);
    }
    // Whether the archive is a Word document is settled when it is opened.
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(FileKind::Docx);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Err(ExtractError::UnsupportedType {
            reason: "this is an old Office file (.doc, .xls or .ppt): save it as .docx or PDF"
                .to_owned(),
        });
    }
    let Some(text) = text::as_text(bytes) else {
        return Err(ExtractError::UnsupportedType {
            reason: "it is not a PDF, a DOCX, HTML, Markdown or UTF-8 text".to_owned(),
        });
    };
    if text::looks_like_html(text, filename) {
        return Ok(FileKind::Html);
    }
    let extension = Path::new(filename)
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match extension.as_deref() {
        Some("md" | "markdown") => FileKind::Markdown,
        _ => FileKind::Text,
    })
}

fn title_from_filename(filename: &str) -> Option<String> {
    let stem = Path::new(filename).file_stem()?.to_str()?.trim();
    (!stem.is_empty()).then(|| stem.to_owned())
}

/// Runs a parser on the blocking pool, turning a panic or an overrun into an error for
/// this file alone. The parsers are CPU-bound and some (pdf-extract) panic on real files.
async fn guarded<F>(kind: FileKind, timeout: Duration, parse: F) -> Result<Document, ExtractError>
where
    F: FnOnce() -> Result<Document, ExtractError> + Send + 'static,
{
    // The closure owns everything it touches and is dropped after a panic, so no broken
    // state can be observed afterwards: asserting unwind safety is sound.
    let task =
        tokio::task::spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(parse)));
    match tokio::time::timeout(timeout, task).await {
        Err(_elapsed) => Err(ExtractError::TimedOut { kind, timeout }),
        Ok(Ok(Ok(result))) => result,
        Ok(Ok(Err(panic))) => {
            tracing::warn!(%kind, panic = panic_message(panic.as_ref()), "file parser panicked");
            Err(ExtractError::Unreadable {
                kind,
                reason: "the reader failed on this file; it may be damaged or use features we cannot read yet"
                    .to_owned(),
            })
        }
        // Only a cancelled runtime gets here: catch_unwind already holds any panic.
        Ok(Err(join_error)) => Err(ExtractError::Unreadable {
            kind,
            reason: format!("the reader was stopped ({join_error})"),
        }),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_parser_becomes_an_error_for_that_file() {
        let result = guarded(FileKind::Pdf, Duration::from_secs(5), || {
            panic!("index out of bounds in a font table")
        })
        .await;

        let error = result.expect_err("a panic must not pass as a document");
        assert!(matches!(
            error,
            ExtractError::Unreadable {
                kind: FileKind::Pdf,
                ..
            }
        ));
        assert!(error.to_string().starts_with("The PDF could not be read: "));
    }

    #[tokio::test]
    async fn a_parser_that_runs_too_long_is_given_up() {
        let result = guarded(FileKind::Pdf, Duration::from_millis(50), || {
            // Stands in for a parser stuck in a loop; ends on its own so the test leaks nothing.
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(500) {
                std::hint::spin_loop();
            }
            Ok(Document {
                title: None,
                markdown: "too late".to_owned(),
            })
        })
        .await;

        let error = result.expect_err("an overrun must not wait for the parser");
        assert!(matches!(
            error,
            ExtractError::TimedOut {
                kind: FileKind::Pdf,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            "Reading the PDF took longer than 0.05 s and was given up"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(Size(20 * MIB).to_string(), "20 MB");
        assert_eq!(Size(3 * MIB / 2).to_string(), "1.5 MB");
        assert_eq!(Size(2048).to_string(), "2 KB");
        assert_eq!(Size(100).to_string(), "100 bytes");
    }
}
