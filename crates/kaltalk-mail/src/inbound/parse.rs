//! From raw bytes to [`InboundEmail`]: headers, bodies, attachments, noise and notes.
//! Never fails: whatever can be read is kept, and what cannot becomes a note.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::{Address, InboundAttachment, InboundEmail, ParseLimits, html, noise, trim};

const MALFORMED_NOTE: &str = "This message is not well-formed MIME; what could be read is shown.";

/// Parses one raw email. Never panics and never fails: unreadable input still gives an
/// [`InboundEmail`] holding the bytes as text, with a note saying so. No text in the
/// answer holds a NUL character.
pub fn parse(raw: &[u8], limits: &ParseLimits) -> InboundEmail {
    // mail-parser is fed hostile input from the internet; a bug in it must cost us one
    // message's structure, not the SMTP listener or the IMAP poller.
    catch_unwind(AssertUnwindSafe(|| parse_structured(raw, limits)))
        .unwrap_or_else(|_| unparsed(raw))
        .without_nul()
}

fn parse_structured(raw: &[u8], limits: &ParseLimits) -> InboundEmail {
    let Some(message) = MessageParser::default()
        .parse(raw)
        .filter(has_a_known_header)
    else {
        return unparsed(raw);
    };
    let mut notes = Vec::new();

    let (mut text, html, mut visible_text) = bodies(&message);
    // In broken MIME (a part never closed) mail-parser can file the only text part as an
    // attachment: a nameless text/plain "attachment" is then the body.
    let body_part = (text.trim().is_empty() && html.is_none())
        .then(|| {
            message.attachments().position(|part| {
                part.attachment_name().is_none() && declared_type(part).starts_with("text/plain")
            })
        })
        .flatten();
    if let Some(part) = body_part.and_then(|index| message.attachments().nth(index)) {
        text = String::from_utf8_lossy(part.contents())
            .trim_end()
            .to_owned();
        visible_text = trim::trim_reply(&text).0;
    }
    let trimmed = visible_text != text;
    let attachments = attachments(&message, limits, &mut notes, body_part);
    unknown_charset_notes(&message, &mut notes);
    if is_malformed(&message, raw) {
        notes.push(MALFORMED_NOTE.to_owned());
    }
    if message
        .html_bodies()
        .any(|part| matches!(&part.body, PartType::Html(html) if kaltalk_core::html::too_deeply_nested(html)))
    {
        notes.push(format!(
            "The HTML of this email nests more than {} levels deep and was not read; only its plain text is shown.",
            kaltalk_core::html::MAX_NESTING
        ));
    }

    InboundEmail {
        message_id: message
            .message_id()
            .map(strip_angle_brackets)
            .filter(|id| !id.is_empty()),
        in_reply_to: id_list(message.in_reply_to()),
        references: id_list(message.references()),
        from: message
            .from()
            .and_then(|from| from.iter().find_map(address)),
        reply_to: message
            .reply_to()
            .and_then(|to| to.iter().find_map(address)),
        to: message
            .to()
            .map(|to| to.iter().filter_map(address).collect())
            .unwrap_or_default(),
        cc: message
            .cc()
            .map(|cc| cc.iter().filter_map(address).collect())
            .unwrap_or_default(),
        subject: message.subject().unwrap_or_default().trim().to_owned(),
        date: message
            .date()
            .filter(|date| date.is_valid())
            .and_then(|date| chrono::DateTime::from_timestamp(date.to_timestamp(), 0)),
        text,
        html,
        visible_text,
        trimmed,
        attachments,
        noise: noise::detect(&message),
        notes,
    }
}

/// mail-parser reads any leading text as headers; without a single header it knows
/// (From, Subject, Content-Type, ...) the bytes are not an email and are shown as text.
fn has_a_known_header(message: &Message<'_>) -> bool {
    message
        .root_part()
        .headers
        .iter()
        .any(|header| !matches!(header.name, mail_parser::HeaderName::Other(_)))
}

/// What we keep when the bytes are not a message at all: the text, lossily decoded.
fn unparsed(raw: &[u8]) -> InboundEmail {
    let text = String::from_utf8_lossy(raw).trim_end().to_owned();
    let (visible_text, trimmed) = trim::trim_reply(&text);
    InboundEmail {
        message_id: None,
        in_reply_to: Vec::new(),
        references: Vec::new(),
        from: None,
        reply_to: None,
        to: Vec::new(),
        cc: Vec::new(),
        subject: String::new(),
        date: None,
        text,
        html: None,
        visible_text,
        trimmed,
        attachments: Vec::new(),
        noise: None,
        notes: vec![MALFORMED_NOTE.to_owned()],
    }
}

/// (text, sanitized html, visible text). The text/plain part wins for `text`; HTML-only
/// mail is made readable, and its visible text drops the clients' quote markup first.
fn bodies(message: &Message<'_>) -> (String, Option<String>, String) {
    let plain: Vec<Cow<'_, str>> = message
        .text_bodies()
        .filter_map(|part| match &part.body {
            PartType::Text(text) => Some(unflow_if_flowed(part, text)),
            _ => None,
        })
        .collect();
    let html_source: Vec<&str> = message
        .html_bodies()
        .filter_map(|part| match &part.body {
            PartType::Html(html) => Some(html.as_ref()),
            _ => None,
        })
        .collect();
    let html_source = (!html_source.is_empty())
        .then(|| html_source.join("\n"))
        .filter(|source| !kaltalk_core::html::too_deeply_nested(source));

    let plain_text = plain.join("\n\n").trim_end().to_owned();
    match html_source {
        // Some clients send an empty text alternative next to the real HTML.
        Some(source) if plain_text.trim().is_empty() => bodies_from_html(&source),
        html_source => {
            let (visible, _) = trim::trim_reply(&plain_text);
            let html = html_source.as_deref().map(html::sanitize);
            (plain_text, html, visible)
        }
    }
}

fn bodies_from_html(source: &str) -> (String, Option<String>, String) {
    let text = html::html_to_text(source);
    let (visible, _) = trim::trim_reply(&html::html_to_text_without_quotes(source));
    let visible = if visible.trim().is_empty() {
        text.clone()
    } else {
        visible.trim_end().to_owned()
    };
    (text, Some(html::sanitize(source)), visible)
}

/// Joins the soft line breaks of `format=flowed` text (RFC 3676), so the customer's
/// paragraphs read as paragraphs; quote depth and the signature delimiter are kept.
fn unflow_if_flowed<'a>(part: &MessagePart<'_>, text: &'a str) -> Cow<'a, str> {
    let Some(content_type) = part.content_type() else {
        return Cow::Borrowed(text);
    };
    let flowed = content_type
        .attribute("format")
        .is_some_and(|f| f.eq_ignore_ascii_case("flowed"));
    if !flowed {
        return Cow::Borrowed(text);
    }
    let delete_space = content_type
        .attribute("delsp")
        .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
    Cow::Owned(unflow(text, delete_space))
}

fn unflow(text: &str, delete_space: bool) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for line in text.lines() {
        let depth = line.chars().take_while(|&c| c == '>').count();
        let content = &line[depth..];
        let content = content.strip_prefix(' ').unwrap_or(content);
        let soft = content.ends_with(' ') && content != "-- ";
        let mut piece = content;
        if soft && delete_space {
            piece = &content[..content.len() - 1];
        }
        match &mut open {
            Some((open_depth, joined)) if *open_depth == depth => joined.push_str(piece),
            _ => {
                if let Some((open_depth, joined)) = open.take() {
                    out.push(quote_prefix(open_depth, &joined));
                }
                open = Some((depth, piece.to_owned()));
            }
        }
        if !soft && let Some((open_depth, joined)) = open.take() {
            out.push(quote_prefix(open_depth, &joined));
        }
    }
    if let Some((open_depth, joined)) = open {
        out.push(quote_prefix(open_depth, &joined));
    }
    out.join("\n")
}

fn quote_prefix(depth: usize, line: &str) -> String {
    if depth == 0 {
        line.to_owned()
    } else {
        format!("{} {line}", ">".repeat(depth))
    }
}

fn attachments(
    message: &Message<'_>,
    limits: &ParseLimits,
    notes: &mut Vec<String>,
    body_part: Option<usize>,
) -> Vec<InboundAttachment> {
    let mut kept = Vec::new();
    for (index, part) in message.attachments().enumerate() {
        if Some(index) == body_part {
            continue;
        }
        let content_type = declared_type(part);
        let filename = sanitize_filename(part.attachment_name(), &content_type);
        let bytes = part.contents();
        if bytes.len() > limits.max_attachment_bytes {
            notes.push(format!(
                "The attachment {filename} ({}) is over the {} limit and was not kept.",
                human_size(bytes.len()),
                human_size(limits.max_attachment_bytes),
            ));
            continue;
        }
        let content_id = part
            .content_id()
            .map(strip_angle_brackets)
            .filter(|id| !id.is_empty());
        let disposition = part.content_disposition().map(|d| d.ctype().to_lowercase());
        let inline = match disposition.as_deref() {
            Some("inline") => true,
            Some(_) => false,
            None => content_id.is_some(),
        };
        kept.push(InboundAttachment {
            filename,
            content_type,
            bytes: bytes.to_vec(),
            content_id,
            inline,
        });
    }
    kept
}

fn declared_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(subtype) => format!("{}/{}", ct.ctype(), subtype).to_lowercase(),
            None => ct.ctype().to_lowercase(),
        },
        None => "text/plain".to_owned(),
    }
}

/// A name safe to offer as a download: no directories, no control characters, no
/// leading dots (hidden files, `..`), bounded length, never empty.
fn sanitize_filename(declared: Option<&str>, content_type: &str) -> String {
    let base = declared
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if matches!(c, ':' | '<' | '>' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        return if matches!(content_type, "message/rfc822" | "message/global") {
            "message.eml".to_owned()
        } else {
            "attachment.bin".to_owned()
        };
    }
    cleaned.chars().take(200).collect()
}

fn human_size(bytes: usize) -> String {
    const KB: f64 = 1024.0;
    const MB: f64 = 1024.0 * 1024.0;
    let size = bytes as f64;
    let (value, unit) = if size >= MB {
        (size / MB, "MB")
    } else if size >= KB {
        (size / KB, "KB")
    } else {
        return format!("{bytes} bytes");
    };
    let rounded = format!("{value:.1}");
    format!("{} {unit}", rounded.strip_suffix(".0").unwrap_or(&rounded))
}

/// mail-parser falls back to UTF-8 without a word when it has no decoder for a declared
/// charset; the agent should know the characters may be wrong.
fn unknown_charset_notes(message: &Message<'_>, notes: &mut Vec<String>) {
    let mut seen: Vec<String> = Vec::new();
    for part in &message.parts {
        if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
            continue;
        }
        let Some(charset) = part.content_type().and_then(|ct| ct.attribute("charset")) else {
            continue;
        };
        let charset = charset.trim();
        if charset.is_empty() || is_known_charset(charset) || seen.iter().any(|c| c == charset) {
            continue;
        }
        seen.push(charset.to_owned());
        notes.push(format!(
            "Unknown charset \"{charset}\": the text may show wrong characters."
        ));
    }
}

fn is_known_charset(label: &str) -> bool {
    // mail-parser decodes UTF-8 natively, so its decoder table has no entry for it.
    let compact: String = label
        .chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .collect::<String>()
        .to_ascii_lowercase();
    let utf8 = matches!(
        compact.as_str(),
        "utf8" | "unicode11utf8" | "unicode20utf8" | "xunicode20utf8"
    );
    utf8 || charset_decoder(label.as_bytes()).is_some()
}

/// Signs that the structure was guessed: a multipart boundary that is never closed, or a
/// part whose transfer encoding could not be decoded.
fn is_malformed(message: &Message<'_>, raw: &[u8]) -> bool {
    let unclosed_boundary = message.parts.iter().any(|part| {
        part.content_type()
            .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
            .and_then(|ct| ct.attribute("boundary"))
            .is_some_and(|boundary| {
                let closing = format!("--{boundary}--");
                !contains(raw, closing.as_bytes())
            })
    });
    unclosed_boundary || message.parts.iter().any(|part| part.is_encoding_problem)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

fn address(addr: &mail_parser::Addr<'_>) -> Option<Address> {
    let email = addr.address()?.trim().to_lowercase();
    if email.is_empty() {
        return None;
    }
    let name = addr
        .name()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned);
    Some(Address { name, email })
}

pub(crate) fn strip_angle_brackets(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

/// Message ids from In-Reply-To or References, in order, without brackets or empties.
pub(crate) fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(text) => vec![text.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(AsRef::as_ref).collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .flat_map(str::split_whitespace)
        .map(strip_angle_brackets)
        .filter(|id| !id.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_never_end_up_empty() {
        assert_eq!(
            sanitize_filename(Some("../../etc/passwd"), "text/plain"),
            "passwd"
        );
        assert_eq!(
            sanitize_filename(Some("C:\\Users\\bob\\report.pdf"), "application/pdf"),
            "report.pdf"
        );
        assert_eq!(sanitize_filename(Some(".."), "image/png"), "attachment.bin");
        assert_eq!(sanitize_filename(None, "image/png"), "attachment.bin");
        assert_eq!(sanitize_filename(None, "message/rfc822"), "message.eml");
        assert_eq!(
            sanitize_filename(None, "message/delivery-status"),
            "attachment.bin"
        );
        assert_eq!(
            sanitize_filename(Some("a\u{0}b\nc.txt"), "text/plain"),
            "abc.txt"
        );
    }

    #[test]
    fn nul_characters_are_removed_from_every_text_never_refused() {
        let raw = b"From: \"Ada\0\" <ada@customer.test>\r\nTo: support@acme.test\r\n\
Subject: Order\0 1234\r\nMessage-ID: <a\0b@customer.test>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nHello\0 there\r\n";
        let parsed = parse(raw, &ParseLimits::default());
        assert_eq!(parsed.subject, "Order 1234");
        assert_eq!(parsed.text.trim(), "Hello there");
        assert_eq!(parsed.visible_text.trim(), "Hello there");
        assert_eq!(parsed.message_id.as_deref(), Some("ab@customer.test"));
        assert_eq!(parsed.from.and_then(|a| a.name).as_deref(), Some("Ada"),);
        // Bytes that are no email at all keep their text, without the NUL.
        let unparsed = parse(b"\0just\0 text", &ParseLimits::default());
        assert_eq!(unparsed.text, "just text");
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(10 * 1024 * 1024), "10 MB");
        assert_eq!(human_size(32_715_571), "31.2 MB");
    }

    #[test]
    fn charsets_mail_parser_knows_are_not_reported() {
        for label in [
            "utf-8",
            "UTF-8",
            "us-ascii",
            "windows-1252",
            "iso-8859-1",
            "Shift_JIS",
        ] {
            assert!(is_known_charset(label), "{label}");
        }
        assert!(!is_known_charset("x-unknown-42"));
    }

    #[test]
    fn flowed_text_joins_soft_breaks_per_quote_depth() {
        let flowed = "This is a long \nparagraph.\n> quoted \n> more\n-- \nsig";
        assert_eq!(
            unflow(flowed, false),
            "This is a long paragraph.\n> quoted more\n-- \nsig"
        );
        assert_eq!(unflow("split wo \nrd", true), "split word");
    }
}
