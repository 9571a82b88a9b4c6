//! KalTalk's email: paired text and HTML templates, the SMTP relay that delivers what the
//! store's outbox queues and agents' replies, and the email channel's inbound side: the
//! SMTP listener, IMAP polling, and the parsing of what arrives.

pub mod imap_in;
pub mod inbound;
mod messages;
pub mod outbound;
mod relay;
pub mod smtp_in;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use messages::{
    EmailChange, EmailChangeNotice, Invitation, PasswordReset, RenderedEmail, VerifyEmail,
};
pub use outbound::{
    OutgoingAttachment, ReplyEmail, build_reply, is_sendable_address, make_message_id, reply_html,
    reply_subject, reply_text,
};
pub use relay::{Mailer, MailerError, OutgoingEmail};
