//! Inbound email: turns a raw RFC 5322 message (from SMTP or IMAP) into what the email
//! channel stores as a conversation message. Pure functions: no database, no network.

mod html;
mod noise;
mod parse;
mod trim;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

pub use html::{html_to_text, sanitize as sanitize_html};
pub use parse::parse;
pub use trim::trim_reply;

/// A mailbox from a header, as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: Option<String>,
    /// Lowercased and trimmed, so it can be compared and looked up directly.
    pub email: String,
}

/// A file that came with the email: a real attachment or an inline image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundAttachment {
    /// Safe to use as a download name: no path separators, never empty.
    pub filename: String,
    /// As declared by the sender, lowercased, e.g. "image/png".
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// Without angle brackets; what a `cid:` URL in the HTML refers to.
    pub content_id: Option<String>,
    pub inline: bool,
}

/// Mail that no person wrote to us and that must not reopen or start a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noise {
    /// Out-of-office and other automatic answers.
    AutoReply,
    /// A delivery failure report for a message we sent.
    Bounce {
        /// The Message-ID of our message that could not be delivered, when the report
        /// carries it (without angle brackets).
        original_message_id: Option<String>,
    },
}

/// One received email, parsed and ready to become a conversation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEmail {
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// Ids without angle brackets, in header order.
    pub in_reply_to: Vec<String>,
    /// Ids without angle brackets, oldest first as sent.
    pub references: Vec<String>,
    pub from: Option<Address>,
    pub reply_to: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// Decoded (RFC 2047); empty when absent.
    pub subject: String,
    pub date: Option<chrono::DateTime<chrono::Utc>>,
    /// The whole body as plain text: the text/plain part, else the HTML made readable.
    pub text: String,
    /// The HTML part sanitized for display: no scripts, styles, event handlers, frames or
    /// forms; remote images removed (tracking pixels), `cid:` images kept.
    pub html: Option<String>,
    /// `text` without the quoted history and the signature.
    pub visible_text: String,
    /// Whether `visible_text` is shorter than `text` because something was trimmed.
    pub trimmed: bool,
    pub attachments: Vec<InboundAttachment>,
    pub noise: Option<Noise>,
    /// Plain-English notes for the agent about what could not be read.
    pub notes: Vec<String>,
}

impl InboundEmail {
    /// Removes every NUL character from what is kept as text. Mail is never refused for
    /// one (the sender would retry, then bounce): PostgreSQL cannot store U+0000 in text
    /// or JSON, and no reader misses it.
    fn without_nul(mut self) -> Self {
        use kaltalk_core::values::strip_nul;
        let address = |a: &mut Address| {
            if let Some(name) = &mut a.name {
                strip_nul(name);
            }
            strip_nul(&mut a.email);
        };
        let ids = self
            .message_id
            .iter_mut()
            .chain(&mut self.in_reply_to)
            .chain(&mut self.references);
        ids.for_each(strip_nul);
        self.from.iter_mut().for_each(address);
        self.reply_to.iter_mut().for_each(address);
        self.to.iter_mut().for_each(address);
        self.cc.iter_mut().for_each(address);
        strip_nul(&mut self.subject);
        strip_nul(&mut self.text);
        self.html.iter_mut().for_each(strip_nul);
        strip_nul(&mut self.visible_text);
        for attachment in &mut self.attachments {
            strip_nul(&mut attachment.filename);
            strip_nul(&mut attachment.content_type);
            attachment.content_id.iter_mut().for_each(strip_nul);
        }
        if let Some(Noise::Bounce {
            original_message_id: Some(id),
        }) = &mut self.noise
        {
            strip_nul(id);
        }
        self.notes.iter_mut().for_each(strip_nul);
        self
    }
}

/// Bounds on what one email may make us keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Attachments larger than this (decoded) are dropped with a note.
    pub max_attachment_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_attachment_bytes: 10 * 1024 * 1024,
        }
    }
}
