//! Agents' replies in the email channel: a standard threaded message (Message-ID,
//! In-Reply-To, References) with text and HTML parts and attachments, sent through the
//! configured SMTP relay.

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
