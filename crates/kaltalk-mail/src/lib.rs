//! KalTalk's email: paired text and HTML templates, and the SMTP relay that delivers what
//! the store's outbox queues. Inbound mail (the email channel) will live here too.

mod messages;
mod relay;

pub use messages::{Invitation, PasswordReset, RenderedEmail, VerifyEmail};
pub use relay::{Mailer, MailerError, OutgoingEmail};
