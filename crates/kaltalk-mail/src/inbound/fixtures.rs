//! Realistic replies as Gmail, Outlook and Apple Mail write them, for thread tests
//! (compiled for this crate's tests and behind the `fixtures` feature for other crates).
//!
//! `references` is the References list of the message being answered; like the real
//! clients, Gmail and Apple Mail send it with `in_reply_to` appended, while Outlook keeps
//! only the id it answers (plus a `Thread-Index`), which threading must survive.

use super::Address;

/// The mail client whose reply format to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStyle {
    /// multipart/alternative; the history in `div.gmail_quote` and `> ` lines.
    Gmail,
    /// windows-1252 quoted-printable; the history after `divRplyFwdMsg` and a
    /// `From:/Sent:/To:/Subject:` block, unquoted; References cut to the last id.
    Outlook,
    /// `format=flowed` text; the history in `blockquote type="cite"`.
    Apple,
}

const DATE: &str = "Tue, 3 Nov 2026 10:02:00 +0000";
const ATTRIBUTION_DATE: &str = "Tue, 3 Nov 2026 at 10:02";

/// Builds the raw bytes (CRLF) of a reply written in `style`'s client.
///
/// `to` is the address being replied to, `message_id` / `in_reply_to` are given without
/// angle brackets, `body` is what the sender writes and `quoted` the history the client
/// appends below it.
#[allow(clippy::too_many_arguments)]
pub fn reply_fixture(
    style: ClientStyle,
    from: &Address,
    to: &str,
    subject: &str,
    message_id: &str,
    in_reply_to: Option<&str>,
    references: &[String],
    body: &str,
    quoted: &str,
) -> Vec<u8> {
    let from_header = match &from.name {
        Some(name) => format!("{} <{}>", encoded_words(name), from.email),
        None => from.email.clone(),
    };
    let mut headers = vec![
        format!("From: {from_header}"),
        format!("To: {to}"),
        format!("Subject: {}", encoded_words(subject)),
        format!("Date: {DATE}"),
        format!("Message-ID: <{message_id}>"),
    ];
    if let Some(parent) = in_reply_to {
        headers.push(format!("In-Reply-To: <{parent}>"));
    }
    let references = match style {
        ClientStyle::Outlook => in_reply_to
            .map(|id| vec![id.to_owned()])
            .unwrap_or_default(),
        ClientStyle::Gmail | ClientStyle::Apple => {
            let mut chain = references.to_vec();
            if let Some(parent) = in_reply_to
                && chain.last().map(String::as_str) != Some(parent)
            {
                chain.push(parent.to_owned());
            }
            chain
        }
    };
    if !references.is_empty() {
        let ids: Vec<String> = references.iter().map(|id| format!("<{id}>")).collect();
        // Folded, as clients do once the list grows.
        headers.push(format!("References: {}", ids.join("\r\n ")));
    }
    headers.push("MIME-Version: 1.0".to_owned());

    let boundary = format!(
        "kt-{}",
        message_id.replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let (text, html, text_headers) = match style {
        ClientStyle::Gmail => gmail(to, body, quoted),
        ClientStyle::Outlook => outlook(from, to, subject, body, quoted),
        ClientStyle::Apple => apple(to, body, quoted),
    };
    if style == ClientStyle::Outlook {
        headers.push("Thread-Topic: support".to_owned());
        headers.push("Thread-Index: AQHZrBZkq1s2mR0bTkKx3y7cN2s7Vg==".to_owned());
        headers.push("X-MS-Has-Attach:".to_owned());
    }
    headers.push(format!(
        "Content-Type: multipart/alternative; boundary=\"{boundary}\""
    ));

    let html_headers = match style {
        ClientStyle::Outlook => {
            "Content-Type: text/html; charset=\"windows-1252\"\r\nContent-Transfer-Encoding: quoted-printable"
        }
        _ => "Content-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 8bit",
    };
    let (text_body, html_body) = match style {
        ClientStyle::Outlook => (
            quoted_printable(&windows_1252(&text)),
            quoted_printable(&windows_1252(&html)),
        ),
        _ => (text, html),
    };
    let raw = format!(
        "{}\r\n\r\n--{boundary}\r\n{text_headers}\r\n\r\n{text_body}\r\n--{boundary}\r\n{html_headers}\r\n\r\n{html_body}\r\n--{boundary}--\r\n",
        headers.join("\r\n"),
    );
    raw.into_bytes()
}

/// RFC 2047 Q-encoding for non-ASCII header text, as clients send it, split so that
/// no encoded word is longer than 75 characters.
fn encoded_words(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let mut encoded = String::new();
        if c.is_ascii_alphanumeric() {
            encoded.push(c);
        } else if c == ' ' {
            encoded.push('_');
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                encoded.push_str(&format!("={byte:02X}"));
            }
        }
        // "=?UTF-8?Q?" + "?=" take 12 of the 75.
        if word.len() + encoded.len() > 63 {
            words.push(format!("=?UTF-8?Q?{word}?="));
            word.clear();
        }
        word.push_str(&encoded);
    }
    words.push(format!("=?UTF-8?Q?{word}?="));
    words.join("\r\n ")
}

fn quote_lines(quoted: &str) -> String {
    quoted
        .lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_owned()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn crlf(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\r\n")
}

fn html_paragraphs(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.trim().is_empty() {
                "<div><br></div>".to_owned()
            } else {
                format!("<div>{}</div>", escape_html(line))
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// (text part, html part, text part headers)
fn gmail(to: &str, body: &str, quoted: &str) -> (String, String, &'static str) {
    let attribution = format!("On {ATTRIBUTION_DATE}, {} wrote:", to);
    let text = if quoted.is_empty() {
        crlf(body)
    } else {
        format!(
            "{}\r\n\r\n{attribution}\r\n\r\n{}",
            crlf(body),
            quote_lines(quoted)
        )
    };
    let quote_html = if quoted.is_empty() {
        String::new()
    } else {
        format!(
            "<br><div class=\"gmail_quote gmail_quote_container\"><div dir=\"ltr\" class=\"gmail_attr\">{}<br></div>\r\n<blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">{}</blockquote></div>",
            escape_html(&attribution),
            html_paragraphs(quoted)
        )
    };
    let html = format!(
        "<div dir=\"ltr\">{}</div>{quote_html}",
        html_paragraphs(body)
    );
    (
        text,
        html,
        "Content-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 8bit",
    )
}

fn outlook(
    from: &Address,
    to: &str,
    subject: &str,
    body: &str,
    quoted: &str,
) -> (String, String, &'static str) {
    let header_block = format!(
        "From: {}\r\nSent: Tuesday, November 3, 2026 10:02 AM\r\nTo: {}\r\nSubject: {}",
        to,
        from.name.as_deref().unwrap_or(&from.email),
        subject.trim_start_matches("RE: ")
    );
    let text = if quoted.is_empty() {
        crlf(body)
    } else {
        format!(
            "{}\r\n\r\n________________________________\r\n{header_block}\r\n\r\n{}",
            crlf(body),
            crlf(quoted)
        )
    };
    let quote_html = if quoted.is_empty() {
        String::new()
    } else {
        format!(
            "<div id=\"appendonsend\"></div>\r\n<hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\r\n<div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\" style=\"font-size:11pt\" color=\"#000000\"><b>From:</b> {}<br><b>Sent:</b> Tuesday, November 3, 2026 10:02 AM<br><b>To:</b> {}<br><b>Subject:</b> {}</font>\r\n<div>&nbsp;</div></div>\r\n<div class=\"BodyFragment\"><font size=\"2\"><span style=\"font-size:11pt;\">{}</span></font></div>",
            escape_html(to),
            escape_html(from.name.as_deref().unwrap_or(&from.email)),
            escape_html(subject),
            html_paragraphs(quoted)
        )
    };
    let html = format!(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=Windows-1252\"><style type=\"text/css\" style=\"display:none;\"> P {{margin-top:0;margin-bottom:0;}} </style></head><body dir=\"ltr\"><div class=\"elementToProof\" style=\"font-family: Aptos, sans-serif; font-size: 12pt;\">{}</div>\r\n{quote_html}</body></html>",
        html_paragraphs(body)
    );
    (
        text,
        html,
        "Content-Type: text/plain; charset=\"windows-1252\"\r\nContent-Transfer-Encoding: quoted-printable",
    )
}

fn apple(to: &str, body: &str, quoted: &str) -> (String, String, &'static str) {
    let attribution = format!("On 3 Nov 2026, at 10:02, {} wrote:", to);
    let text = if quoted.is_empty() {
        crlf(body)
    } else {
        format!(
            "{}\r\n\r\n{attribution}\r\n\r\n{}",
            crlf(body),
            quote_lines(quoted)
        )
    };
    let quote_html = if quoted.is_empty() {
        String::new()
    } else {
        format!(
            "<div><br><blockquote type=\"cite\"><div>{}</div><br><div>{}</div></blockquote></div>",
            escape_html(&attribution),
            html_paragraphs(quoted)
        )
    };
    let html = format!(
        "<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\"></head><body dir=\"auto\">{}{quote_html}</body></html>",
        html_paragraphs(body)
    );
    (
        text,
        html,
        "Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: 8bit",
    )
}

/// Outlook writes in the Windows code page; characters it lacks become `?` as there.
fn windows_1252(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{0}'..='\u{7f}' | '\u{a0}'..='\u{ff}' => c as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '–' => 0x96,
            '—' => 0x97,
            _ => b'?',
        })
        .collect()
}

/// RFC 2045 quoted-printable with soft breaks before 76 characters; CRLF stays a hard
/// line break.
fn quoted_printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'\r' && bytes.get(index + 1) == Some(&b'\n') {
            out.push_str("\r\n");
            line_len = 0;
            index += 2;
            continue;
        }
        let at_line_end = matches!(bytes.get(index + 1), None | Some(b'\r'));
        let literal = (byte.is_ascii_graphic() && byte != b'=') || (byte == b' ' && !at_line_end);
        let encoded = if literal {
            (byte as char).to_string()
        } else {
            format!("={byte:02X}")
        };
        if line_len + encoded.len() > 75 {
            out.push_str("=\r\n");
            line_len = 0;
        }
        line_len += encoded.len();
        out.push_str(&encoded);
        index += 1;
    }
    out
}
