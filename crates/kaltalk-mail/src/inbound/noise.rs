//! Recognizes mail no person wrote: out-of-office answers and delivery failure reports
//! (bounces), so they never reopen a conversation or start a new one.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::Noise;
use super::parse::strip_angle_brackets;

pub(crate) fn detect(message: &Message<'_>) -> Option<Noise> {
    // Checked first: a DSN usually also says `Auto-Submitted: auto-replied`.
    if is_bounce(message) {
        return Some(Noise::Bounce {
            original_message_id: bounced_message_id(message),
        });
    }
    is_auto_reply(message).then_some(Noise::AutoReply)
}

/// Case-insensitive lookup of a header's raw value, trimmed.
fn header<'a>(message: &'a Message<'_>, name: &str) -> Option<&'a str> {
    message
        .headers_raw()
        .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

fn is_auto_reply(message: &Message<'_>) -> bool {
    let auto_submitted = header(message, "Auto-Submitted")
        .is_some_and(|value| !value.eq_ignore_ascii_case("no") && !value.is_empty());
    let vacation_header =
        header(message, "X-Autoreply").is_some() || header(message, "X-Autorespond").is_some();
    let precedence = header(message, "Precedence").is_some_and(|value| {
        ["bulk", "junk", "auto_reply"]
            .iter()
            .any(|kind| value.eq_ignore_ascii_case(kind))
    });
    vacation_header || auto_submitted || precedence || is_outlook_out_of_office(message)
}

/// Exchange marks its automatic replies only with `X-Auto-Response-Suppress`, which
/// some ordinary mail carries too: it counts only with an out-of-office subject.
fn is_outlook_out_of_office(message: &Message<'_>) -> bool {
    let suppress = header(message, "X-Auto-Response-Suppress").is_some_and(|value| {
        value.split(',').map(str::trim).any(|kind| {
            ["all", "oof", "autoreply"]
                .iter()
                .any(|k| kind.eq_ignore_ascii_case(k))
        })
    });
    let subject = message.subject().unwrap_or_default().trim().to_lowercase();
    let out_of_office_subject = [
        "automatic reply:",
        "out of office",
        "auto:",
        "abwesenheitsnotiz",
    ]
    .iter()
    .any(|prefix| subject.starts_with(prefix));
    suppress && out_of_office_subject
}

fn is_bounce(message: &Message<'_>) -> bool {
    let delivery_report = message.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    });
    delivery_report || (from_mail_system(message) && has_bounce_subject(message))
}

fn from_mail_system(message: &Message<'_>) -> bool {
    message
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.address())
        .and_then(|address| address.split('@').next())
        .is_some_and(|local| {
            local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
        })
}

fn has_bounce_subject(message: &Message<'_>) -> bool {
    let subject = message.subject().unwrap_or_default().to_lowercase();
    [
        "undelivered mail returned to sender",
        "delivery status notification (failure)",
        "mail delivery failed",
        "undeliverable:",
        "returned mail",
        "delivery failure",
    ]
    .iter()
    .any(|phrase| subject.contains(phrase))
}

/// The Message-ID of the message that bounced: from the returned message or headers the
/// report carries, else from the report's own threading headers.
fn bounced_message_id(message: &Message<'_>) -> Option<String> {
    let from_returned_part = message.parts.iter().find_map(|part| match &part.body {
        PartType::Message(original) => original.message_id().map(strip_angle_brackets),
        PartType::Text(text) if is_rfc822_headers(part) => {
            // The headers alone parse as a message with an empty body.
            let headers = format!("{}\r\n\r\n", text.trim_end());
            MessageParser::default()
                .parse(headers.as_bytes())
                .and_then(|original| original.message_id().map(strip_angle_brackets))
        }
        _ => None,
    });
    from_returned_part
        .filter(|id| !id.is_empty())
        .or_else(|| {
            super::parse::id_list(message.in_reply_to())
                .into_iter()
                .next()
        })
        .or_else(|| {
            super::parse::id_list(message.references())
                .into_iter()
                .last()
        })
}

fn is_rfc822_headers(part: &mail_parser::MessagePart<'_>) -> bool {
    part.is_content_type("text", "rfc822-headers")
}
