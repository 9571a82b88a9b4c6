//! Markdown and plain text need no parser, only tidying; this module also tells text from
//! binary and HTML from the rest.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

use super::{Document, ExtractError, FileKind};

/// The file as UTF-8 text (without a byte-order mark), or `None` for anything binary.
pub(super) fn as_text(bytes: &[u8]) -> Option<&str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).ok()?;
    // Valid UTF-8 can still be binary: NUL-padded records, or control bytes that text
    // editors never write. A text file has none of the first and almost none of the second.
    let sample = text.chars().take(8192);
    let (mut chars, mut controls) = (0usize, 0usize);
    for c in sample {
        chars += 1;
        if c == '\0' {
            return None;
        }
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}') {
            controls += 1;
        }
    }
    (controls * 100 <= chars).then_some(text)
}

/// HTML is recognised by its opening markup; the extension only decides for fragments
/// that start with a tag.
pub(super) fn looks_like_html(text: &str, filename: &str) -> bool {
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix("<!--") {
        let Some(end) = after.find("-->") else { break };
        rest = after[end + 3..].trim_start();
    }
    let head: String = rest
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let html_name = [".html", ".htm", ".xhtml"]
        .iter()
        .any(|extension| filename.to_ascii_lowercase().ends_with(extension));
    ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|opening| head.starts_with(opening))
        || (html_name && rest.starts_with('<'))
}

/// UTF-8 text for a parser that takes `&str`.
pub(super) fn decode(bytes: &[u8]) -> Result<String, ExtractError> {
    as_text(bytes)
        .map(str::to_owned)
        .ok_or_else(|| ExtractError::UnsupportedType {
            reason: "it is not UTF-8 text".to_owned(),
        })
}

/// Markdown passes through; plain text too, since it reads as Markdown paragraphs.
pub(super) fn extract(bytes: &[u8], kind: FileKind) -> Result<Document, ExtractError> {
    let markdown = normalize_newlines(&decode(bytes)?);
    let title = match kind {
        FileKind::Markdown => first_top_heading(&markdown),
        _ => None,
    };
    Ok(Document { title, markdown })
}

pub(super) fn normalize_newlines(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.trim_start_matches('\n').trim_end().to_owned()
}

/// The text of the first level-1 heading: what a Markdown file calls itself.
pub(super) fn first_top_heading(markdown: &str) -> Option<String> {
    let mut title: Option<String> = None;
    for event in Parser::new(markdown) {
        match (event, title.as_mut()) {
            (
                Event::Start(Tag::Heading {
                    level: HeadingLevel::H1,
                    ..
                }),
                None,
            ) => title = Some(String::new()),
            (Event::Text(text) | Event::Code(text), Some(title)) => title.push_str(&text),
            (Event::SoftBreak | Event::HardBreak, Some(title)) => title.push(' '),
            (Event::End(TagEnd::Heading(_)), Some(title)) => {
                let title = title.trim();
                return (!title.is_empty()).then(|| title.to_owned());
            }
            _ => {}
        }
    }
    None
}

/// Text laid out on a page (PDF) as Markdown: the layout's indentation and blank-line
/// runs go, and a line that happens to start like a heading is escaped so it does not
/// become one.
pub(super) fn page_text_to_markdown(text: &str) -> String {
    let mut markdown = String::with_capacity(text.len());
    let mut blank_run = true;
    for line in normalize_newlines(text).lines() {
        let line = line.trim();
        if line.is_empty() {
            if !blank_run {
                markdown.push('\n');
            }
            blank_run = true;
            continue;
        }
        blank_run = false;
        if line.starts_with('#') {
            markdown.push('\\');
        }
        markdown.push_str(line);
        markdown.push('\n');
    }
    markdown.trim_end().to_owned()
}

/// Collapses the blank-line runs converters leave behind.
pub(super) fn tidy_markdown(markdown: &str) -> String {
    let mut tidy = String::with_capacity(markdown.len());
    let mut blank_lines = 0;
    for line in normalize_newlines(markdown).lines() {
        if line.trim().is_empty() {
            blank_lines += 1;
            continue;
        }
        if !tidy.is_empty() {
            tidy.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        blank_lines = 0;
        tidy.push_str(line.trim_end());
    }
    tidy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_told_from_binary() {
        assert_eq!(as_text(b"\xEF\xBB\xBFhello"), Some("hello"));
        assert_eq!(as_text(b"a\0b"), None);
        assert_eq!(as_text(b"\x01\x02\x03\x04 mostly control"), None);
        assert_eq!(as_text(&[0xFF, 0xFE, 0x41, 0x00]), None);
    }

    #[test]
    fn html_is_recognised_by_markup() {
        assert!(looks_like_html("\n<!DOCTYPE html><p>x", "a.txt"));
        assert!(looks_like_html("<!-- saved --> <HTML><body>", "a"));
        assert!(looks_like_html("<div>fragment</div>", "help.htm"));
        assert!(!looks_like_html("<div>fragment</div>", "notes.md"));
        assert!(!looks_like_html("# Title\n\n<br>", "notes.md"));
    }

    #[test]
    fn page_text_loses_layout_but_keeps_paragraphs() {
        let text = "   Refunds\n\n\n\n  # 1 priority  \nsecond line\n";
        assert_eq!(
            page_text_to_markdown(text),
            "Refunds\n\n\\# 1 priority\nsecond line"
        );
    }
}
