//! KalTalk's email: paired text and HTML templates, the SMTP relay that delivers what the
//! store's outbox queues, and the inbound side of the email channel (IMAP polling).

pub mod imap_in;
mod messages;
mod relay;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use messages::{Invitation, PasswordReset, RenderedEmail, VerifyEmail};
pub use relay::{Mailer, MailerError, OutgoingEmail};
