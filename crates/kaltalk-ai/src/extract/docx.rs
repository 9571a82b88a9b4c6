//! DOCX: the paragraphs of `word/document.xml`, with heading styles as Markdown headings.
//! A DOCX is a ZIP archive, so every part is read through a decompression budget.

use std::collections::HashMap;
use std::io::{self, Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use zip::ZipArchive;

use super::{Document, ExtractError, FileKind, Limits, MIB};

/// Real documents compress about 10:1, very repetitive XML maybe 50:1; a bomb, over 1000:1.
const MAX_RATIO: u64 = 100;
/// Small parts may compress well without being a threat.
const RATIO_GRACE_BYTES: u64 = MIB;

pub(super) fn extract(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| unreadable(format!("it is not a valid ZIP archive ({error})")))?;
    if archive.index_for_name("word/document.xml").is_none() {
        return Err(ExtractError::UnsupportedType {
            reason: "this ZIP archive is not a Word document".to_owned(),
        });
    }
    let mut budget = limits.max_decompressed_bytes;
    // Styles only map localized style ids to headings: a document without them still reads.
    let styles = read_part(&mut archive, "word/styles.xml", &mut budget, limits)?;
    let heading_styles = styles.as_deref().map(heading_styles).unwrap_or_default();
    let body = read_part(&mut archive, "word/document.xml", &mut budget, limits)?
        .ok_or_else(|| unreadable("word/document.xml is missing".to_owned()))?;
    paragraphs_to_markdown(&body, &heading_styles)
}

fn unreadable(reason: String) -> ExtractError {
    ExtractError::Unreadable {
        kind: FileKind::Docx,
        reason,
    }
}

/// Reads one part, refusing it on its declared size or compression ratio before
/// inflating anything, and on its real size while inflating, since headers can lie.
fn read_part(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: &mut u64,
    limits: &Limits,
) -> Result<Option<String>, ExtractError> {
    let Some(index) = archive.index_for_name(name) else {
        return Ok(None);
    };
    let part = archive
        .by_index(index)
        .map_err(|error| unreadable(format!("{name} cannot be opened ({error})")))?;
    let too_much = ExtractError::ExpandsTooMuch {
        kind: FileKind::Docx,
        limit: limits.max_decompressed_bytes,
    };
    let declared = part.size();
    if declared > *budget {
        return Err(too_much);
    }
    let ratio = declared / part.compressed_size().max(1);
    if declared > RATIO_GRACE_BYTES && ratio > MAX_RATIO {
        return Err(ExtractError::SuspiciousCompression {
            kind: FileKind::Docx,
            ratio,
        });
    }
    let mut xml = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    part.take(*budget + 1)
        .read_to_end(&mut xml)
        .map_err(|error| {
            // zip stops at the declared size itself; a part that goes on is a forged header.
            if error.kind() == io::ErrorKind::InvalidData && error.to_string().contains("declared")
            {
                unreadable(format!(
                    "{name} expands beyond the size it declares: refused as a possible zip bomb"
                ))
            } else {
                unreadable(format!("{name} cannot be decompressed ({error})"))
            }
        })?;
    let read = xml.len() as u64;
    if read > *budget {
        return Err(too_much);
    }
    *budget -= read;
    String::from_utf8(xml)
        .map(Some)
        .map_err(|_| unreadable(format!("{name} is not UTF-8")))
}

/// Style id → heading level, from the style names ("heading 1", "Title"), which stay in
/// English when Word localizes the ids (a German file says `Überschrift1`).
fn heading_styles(xml: &str) -> HashMap<String, usize> {
    let mut levels = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut style_id = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(element)) if element.local_name().as_ref() == "style" => {
                style_id = attribute(&element, "styleId");
            }
            Ok(Event::Empty(element)) if element.local_name().as_ref() == "name" => {
                if let (Some(id), Some(name)) = (&style_id, attribute(&element, "val"))
                    && let Some(level) = heading_level(&name.to_ascii_lowercase(), "heading ")
                {
                    levels.insert(id.clone(), level);
                }
            }
            // A damaged styles part costs only the localized heading names.
            Ok(Event::Eof) | Err(_) => return levels,
            _ => {}
        }
    }
}

/// "title" is level 1; "heading N" (or the id "headingN") is level N, capped at 6.
fn heading_level(name: &str, prefix: &str) -> Option<usize> {
    if name == "title" {
        return Some(1);
    }
    let level: usize = name.strip_prefix(prefix)?.trim().parse().ok()?;
    (level >= 1).then_some(level.min(6))
}

fn attribute(element: &BytesStart<'_>, local_name: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|attribute| attribute.key.local_name().as_ref() == local_name)
        .and_then(|attribute| attribute.normalized_value(XmlVersion::Implicit1_0).ok())
        .map(|value| value.into_owned())
}

#[derive(Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    list_item: bool,
}

fn paragraphs_to_markdown(
    xml: &str,
    heading_styles: &HashMap<String, usize>,
) -> Result<Document, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut out = Output::default();
    // Text boxes nest paragraphs inside paragraphs: each is written when it closes.
    let mut open: Vec<Paragraph> = Vec::new();
    let (mut in_run, mut in_text) = (false, false);
    loop {
        let event = reader.read_event().map_err(|error| {
            unreadable(format!(
                "word/document.xml is not valid XML at byte {} ({error})",
                reader.error_position()
            ))
        })?;
        let paragraph = open.last_mut();
        match (event, paragraph) {
            (Event::Start(element), paragraph) => {
                match (element.local_name().as_ref(), paragraph) {
                    ("p", _) => open.push(Paragraph::default()),
                    ("r", _) => in_run = true,
                    ("t", _) => in_text = true,
                    (_, Some(paragraph)) => properties(&element, paragraph, in_run),
                    _ => {}
                }
            }
            (Event::Empty(element), Some(paragraph)) => properties(&element, paragraph, in_run),
            (Event::Text(text), Some(paragraph)) if in_text => {
                paragraph.text.push_str(&text.xml10_content());
            }
            (Event::GeneralRef(reference), Some(paragraph)) if in_text => {
                match reference.resolve_char_ref() {
                    Ok(Some(c)) => paragraph.text.push(c),
                    _ => paragraph.text.push_str(
                        quick_xml::escape::resolve_predefined_entity(&reference).unwrap_or(""),
                    ),
                }
            }
            (Event::End(element), _) => match element.local_name().as_ref() {
                "t" => in_text = false,
                "r" => in_run = false,
                "p" => {
                    if let Some(paragraph) = open.pop() {
                        out.write(paragraph, heading_styles);
                    }
                }
                _ => {}
            },
            (Event::Eof, _) => break,
            _ => {}
        }
    }
    Ok(Document {
        title: out.title,
        markdown: out.markdown,
    })
}

/// The parts of a paragraph's properties and runs that matter for Markdown.
fn properties(element: &BytesStart<'_>, paragraph: &mut Paragraph, in_run: bool) {
    match element.local_name().as_ref() {
        "pStyle" => paragraph.style = attribute(element, "val"),
        "numPr" => paragraph.list_item = true,
        // Tab stops in the paragraph properties are also `w:tab`: only a run's count.
        "tab" if in_run => paragraph.text.push(' '),
        "br" | "cr" if in_run => paragraph.text.push('\n'),
        _ => {}
    }
}

#[derive(Default)]
struct Output {
    markdown: String,
    title: Option<String>,
    in_list: bool,
}

impl Output {
    fn write(&mut self, paragraph: Paragraph, heading_styles: &HashMap<String, usize>) {
        let text = paragraph.text.trim();
        if text.is_empty() {
            return;
        }
        let level = paragraph.style.as_deref().and_then(|style| {
            heading_styles
                .get(style)
                .copied()
                .or_else(|| heading_level(&style.to_ascii_lowercase(), "heading"))
        });
        let list_item = paragraph.list_item && level.is_none();
        if !self.markdown.is_empty() {
            // Consecutive list items stay one list.
            self.markdown.push_str(if list_item && self.in_list {
                "\n"
            } else {
                "\n\n"
            });
        }
        self.in_list = list_item;
        match level {
            Some(level) => {
                let heading = text.split_whitespace().collect::<Vec<_>>().join(" ");
                self.markdown.push_str(&"#".repeat(level));
                self.markdown.push(' ');
                self.markdown.push_str(&heading);
                if self.title.is_none() && level == 1 {
                    self.title = Some(heading);
                }
            }
            None => {
                if list_item {
                    self.markdown.push_str("- ");
                }
                // A paragraph that starts like Markdown syntax would change the structure
                // (a `#` line becomes a heading and shifts every heading path below it).
                if text.starts_with(['#', '>', '-', '*', '+', '|']) {
                    self.markdown.push('\\');
                }
                self.markdown.push_str(text);
            }
        }
    }
}
