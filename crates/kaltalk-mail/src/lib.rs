//! KalTalk's email: paired text and HTML templates, the SMTP relay that delivers what
//! the store's outbox queues, and the parsing of inbound mail for the email channel.

pub mod inbound;
mod messages;
mod relay;

pub use messages::{Invitation, PasswordReset, RenderedEmail, VerifyEmail};
pub use relay::{Mailer, MailerError, OutgoingEmail};
