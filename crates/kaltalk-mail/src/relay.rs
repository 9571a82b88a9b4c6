//! Delivery through an SMTP relay (lettre). Without one configured, nothing is sent and the
//! outbox keeps every email for owners to read.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("the SMTP relay refused or failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// Only for replies: system emails stay in the outbox instead.
    #[error("not sent: no SMTP relay configured (set the SMTP relay URL in the configuration)")]
    NoRelay,
    #[error("invalid Message-ID {0:?}: expected id@domain without spaces")]
    MessageId(String),
    #[error("invalid attachment content type {0:?}: expected a MIME type such as application/pdf")]
    ContentType(String),
    /// A file on the reply could not be read from storage.
    #[error("the attachment {0} could not be read")]
    Attachment(String),
}

/// What the relay needs of a stored email.
pub struct OutgoingEmail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
}

#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("smtp", &self.transport.is_some())
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Mailer {
    /// `smtp_url` is lettre's form: `smtp://user:pass@host:587?tls=required`,
    /// `smtps://host:465`, or `smtp://127.0.0.1:1025` for a local relay without TLS.
    pub fn new(smtp_url: Option<&str>, from: &str) -> Result<Self, MailerError> {
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| MailerError::Address(from.to_owned()))?;
        let transport = match smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailerError::Url(e.to_string()))?
                    .build(),
            ),
            None => None,
        };
        Ok(Self { transport, from })
    }

    /// Whether emails leave this machine (otherwise they stay in the outbox).
    pub fn delivers(&self) -> bool {
        self.transport.is_some()
    }

    pub(crate) fn transport(&self) -> Option<&AsyncSmtpTransport<Tokio1Executor>> {
        self.transport.as_ref()
    }

    pub async fn send(&self, email: OutgoingEmail<'_>) -> Result<(), MailerError> {
        let Some(transport) = &self.transport else {
            return Ok(());
        };
        let to = email
            .to
            .parse::<Mailbox>()
            .map_err(|_| MailerError::Address(email.to.to_owned()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .multipart(MultiPart::alternative_plain_html(
                email.text.to_owned(),
                email.html.to_owned(),
            ))?;
        transport.send(message).await?;
        Ok(())
    }
}
