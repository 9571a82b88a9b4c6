//! Agents' replies in the email channel: a standard threaded message (Message-ID,
//! In-Reply-To, References) with text and HTML parts and attachments, sent through the
//! configured SMTP relay. Both parts come from the reply's text through the light
//! formatting the inbox and the widget show (`kaltalk_core::format`).

use lettre::message::header::{ContentType, InReplyTo, MessageId, References};
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::{Address, AsyncTransport, Message};

use crate::relay::{Mailer, MailerError};

/// One agent reply, ready to send.
#[derive(Debug, Clone)]
pub struct ReplyEmail {
    /// Shown as the sender's name, e.g. "Ada Lovelace at Acme".
    pub from_name: String,
    /// The inbox's support address.
    pub from_address: String,
    /// `support+<token>@domain`, the conversation's reply token.
    pub reply_to: Option<String>,
    /// Addresses, each either bare (`a@b.test`) or with a name (`Ada <a@b.test>`).
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// In the envelope only: the message itself carries no `Bcc` header.
    pub bcc: Vec<String>,
    /// Already the reply subject: see [`reply_subject`].
    pub subject: String,
    /// Without angle brackets: see [`make_message_id`].
    pub message_id: String,
    /// Without angle brackets.
    pub in_reply_to: Option<String>,
    /// Without angle brackets, oldest first.
    pub references: Vec<String>,
    pub text: String,
    pub html: String,
    pub attachments: Vec<OutgoingAttachment>,
}

#[derive(Debug, Clone)]
pub struct OutgoingAttachment {
    pub filename: String,
    /// A MIME type such as `application/pdf`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The HTML part of a reply: its text formatted (escaped; bold, italic, code, links,
/// lists, paragraphs), in a minimal document.
pub fn reply_html(text: &str) -> String {
    // Mail clients ignore stylesheets more often than inline styles.
    format!(
        "<!doctype html><html><body style=\"font-family: sans-serif; line-height: 1.5\">{}</body></html>",
        kaltalk_core::format::to_html(text)
    )
}

/// The text part of a reply: its text without formatting markers, link targets kept.
pub fn reply_text(text: &str) -> String {
    kaltalk_core::format::to_plain(text)
}

/// Whether the relay can write `address` as a recipient (lettre's address grammar,
/// stricter than the sign-up check: no quotes, brackets or commas in the local part).
pub fn is_sendable_address(address: &str) -> bool {
    address.parse::<Address>().is_ok()
}

/// `Re: ` + the original subject, without piling up `Re: Re: `.
pub fn reply_subject(original: &str) -> String {
    let mut rest = original.trim();
    while let Some(stripped) = strip_reply_prefix(rest) {
        rest = stripped;
    }
    if rest.is_empty() {
        "Re:".to_owned()
    } else {
        format!("Re: {rest}")
    }
}

fn strip_reply_prefix(subject: &str) -> Option<&str> {
    let head = subject.get(..2)?;
    if !head.eq_ignore_ascii_case("re") {
        return None;
    }
    let after = subject[2..].trim_start();
    after.strip_prefix(':').map(str::trim_start)
}

/// A fresh globally unique Message-ID (without brackets): a UUIDv7 at our domain.
pub fn make_message_id(domain: &str) -> String {
    let domain = domain.trim();
    let domain = if domain.is_empty() {
        "localhost"
    } else {
        domain
    };
    format!("{}@{domain}", uuid::Uuid::now_v7())
}

/// Builds the message exactly as [`Mailer::send_reply`] sends it.
pub fn build_reply(email: &ReplyEmail) -> Result<Message, MailerError> {
    let from_address = email
        .from_address
        .parse::<Address>()
        .map_err(|_| MailerError::Address(email.from_address.clone()))?;
    let from_name = email.from_name.trim();
    let from = Mailbox::new(
        (!from_name.is_empty()).then(|| from_name.to_owned()),
        from_address,
    );
    let message_id = bracketed_message_id(&email.message_id)
        .ok_or_else(|| MailerError::MessageId(email.message_id.clone()))?;

    let mut builder = Message::builder()
        .from(from)
        .subject(email.subject.clone())
        .header(MessageId::from(message_id));
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(parse_mailbox(reply_to)?);
    }
    for to in &email.to {
        builder = builder.to(parse_mailbox(to)?);
    }
    for cc in &email.cc {
        builder = builder.cc(parse_mailbox(cc)?);
    }
    // lettre puts these in the envelope and leaves the header out of the message.
    for bcc in &email.bcc {
        builder = builder.bcc(parse_mailbox(bcc)?);
    }
    // The ids we answer come from other people's mail: one we cannot write validly is
    // left out rather than failing the reply (the thread may then break in their client).
    if let Some(id) = &email.in_reply_to {
        match bracketed_message_id(id) {
            Some(id) => builder = builder.header(InReplyTo::from(id)),
            None => tracing::warn!(id, "reply: left out an invalid In-Reply-To id"),
        }
    }
    let references: Vec<String> = email
        .references
        .iter()
        .filter_map(|id| {
            let bracketed = bracketed_message_id(id);
            if bracketed.is_none() {
                tracing::warn!(id, "reply: left out an invalid References id");
            }
            bracketed
        })
        .collect();
    if !references.is_empty() {
        builder = builder.header(References::from(references.join(" ")));
    }

    let alternative = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
    let message = if email.attachments.is_empty() {
        builder.multipart(alternative)?
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for attachment in &email.attachments {
            let content_type = ContentType::parse(&attachment.content_type)
                .map_err(|_| MailerError::ContentType(attachment.content_type.clone()))?;
            mixed = mixed.singlepart(
                Attachment::new(attachment.filename.clone())
                    .body(attachment.bytes.clone(), content_type),
            );
        }
        builder.multipart(mixed)?
    };
    Ok(message)
}

impl Mailer {
    /// Sends an agent's reply. Unlike [`Mailer::send`], which leaves system emails in the
    /// outbox when no relay is configured, this fails with [`MailerError::NoRelay`]: a
    /// reply must never silently vanish, so the caller keeps it (the server puts it in the
    /// organization's outbox and says so on the message).
    pub async fn send_reply(&self, email: &ReplyEmail) -> Result<(), MailerError> {
        let Some(transport) = self.transport() else {
            return Err(MailerError::NoRelay);
        };
        let message = build_reply(email)?;
        transport.send(message).await?;
        Ok(())
    }
}

fn parse_mailbox(text: &str) -> Result<Mailbox, MailerError> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|_| MailerError::Address(text.to_owned()))
}

/// `id` with one pair of angle brackets, or None when it cannot be a msg-id (RFC 5322
/// §3.6.4): empty, no `@`, or with spaces, controls or brackets inside (which could also
/// smuggle extra header lines).
fn bracketed_message_id(id: &str) -> Option<String> {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id);
    let valid = id.contains('@')
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>'));
    valid.then(|| format!("<{id}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> ReplyEmail {
        ReplyEmail {
            from_name: "Ada at Acme".into(),
            from_address: "support@acme.test".into(),
            reply_to: None,
            to: vec!["bob@customer.test".into()],
            cc: vec!["carol@customer.test".into()],
            bcc: vec!["boss@acme.test".into()],
            subject: "Re: Vase".into(),
            message_id: make_message_id("acme.test"),
            in_reply_to: None,
            references: Vec::new(),
            text: reply_text(text),
            html: reply_html(text),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn bcc_is_in_the_envelope_and_not_in_the_message() {
        let message = build_reply(&reply("Hi")).expect("message");
        let recipients: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            recipients,
            ["bob@customer.test", "carol@customer.test", "boss@acme.test"]
        );
        let raw = String::from_utf8(message.formatted()).expect("text");
        assert!(raw.contains("Cc: carol@customer.test"), "{raw}");
        assert!(!raw.to_ascii_lowercase().contains("bcc"), "{raw}");
        assert!(!raw.contains("boss@acme.test"), "{raw}");
    }

    #[test]
    fn the_parts_are_formatted_and_escaped() {
        let email = reply("Hi <Ada>,\n**thanks** & [see](https://a.test/x)\n\n- one");
        assert!(
            email.html.contains(
                "<p>Hi &lt;Ada&gt;,<br><strong>thanks</strong> &amp; <a href=\"https://a.test/x\" \
                 rel=\"noopener noreferrer nofollow\" target=\"_blank\">see</a></p><ul><li>one</li></ul>"
            ),
            "{}",
            email.html
        );
        assert_eq!(
            email.text,
            "Hi <Ada>,\nthanks & see (https://a.test/x)\n\n- one"
        );
    }

    #[test]
    fn addresses_the_relay_cannot_write_are_told_apart() {
        assert!(is_sendable_address("ada@customer.test"));
        assert!(!is_sendable_address("a\"b@customer.test"));
        assert!(!is_sendable_address("ada@"));
    }

    #[test]
    fn reply_subject_adds_re_once() {
        assert_eq!(reply_subject("Order 42"), "Re: Order 42");
        assert_eq!(reply_subject("Re: Order 42"), "Re: Order 42");
        assert_eq!(reply_subject("RE: re : Order 42"), "Re: Order 42");
        assert_eq!(reply_subject("  Reply needed"), "Re: Reply needed");
        assert_eq!(reply_subject("Re:"), "Re:");
        assert_eq!(reply_subject("Réponse"), "Re: Réponse");
    }

    #[test]
    fn message_ids_are_unique_and_at_the_domain() {
        let first = make_message_id("acme.test");
        let second = make_message_id("acme.test");
        assert_ne!(first, second);
        assert!(first.ends_with("@acme.test"));
        assert_eq!(bracketed_message_id(&first), Some(format!("<{first}>")));
    }

    #[test]
    fn message_ids_get_exactly_one_pair_of_brackets() {
        assert_eq!(bracketed_message_id("a@b"), Some("<a@b>".to_owned()));
        assert_eq!(bracketed_message_id("<a@b>"), Some("<a@b>".to_owned()));
        assert_eq!(bracketed_message_id("a b@c"), None);
        assert_eq!(bracketed_message_id("a@b>\r\nBcc: x@y"), None);
        assert_eq!(bracketed_message_id("nobrackets"), None);
    }
}
