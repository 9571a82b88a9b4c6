//! The SMTP listener's storage side: a recipient is accepted only when it is an email
//! inbox's address (`support+anything@` too), and a message is answered with 250 only
//! after it is committed, so a message the sender was told we accepted is never lost.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use kaltalk_mail::smtp_in::{
    self, DeliveryError, Envelope, MailSink, RecipientVerdict, SmtpConfig,
};
use kaltalk_store::email::Received;
use tokio::net::TcpListener;

use crate::email::{Arrival, receive};
use crate::state::AppState;

struct InboxSink {
    state: AppState,
}

#[async_trait::async_trait]
impl MailSink for InboxSink {
    async fn recipient(&self, address: &str) -> RecipientVerdict {
        match self.state.store.find_email_inbox(address).await {
            Ok(Some(_)) => RecipientVerdict::Accept,
            Ok(None) => RecipientVerdict::Unknown,
            Err(err) => {
                tracing::warn!(error = %err, "looking up an SMTP recipient failed");
                RecipientVerdict::TempFail
            }
        }
    }

    async fn deliver(&self, envelope: &Envelope, raw: Vec<u8>) -> Result<String, DeliveryError> {
        // One copy per inbox, even when several of its addresses (tags) are recipients.
        let mut delivered = Vec::new();
        let mut outcome = String::new();
        for recipient in &envelope.rcpt_to {
            let inbox = match self.state.store.find_email_inbox(recipient).await {
                Ok(Some(inbox)) => inbox,
                Ok(None) => continue, // removed since RCPT: nothing to deliver to
                Err(err) => return Err(temporary(err.into())),
            };
            if delivered.contains(&inbox.id) {
                continue;
            }
            let arrival = Arrival {
                source: "smtp",
                recipient: Some(recipient),
            };
            let received = receive(&self.state, &inbox, raw.clone(), arrival)
                .await
                .map_err(temporary)?;
            delivered.push(inbox.id);
            outcome = match received {
                Received::Message { message, .. } => message.id.to_string(),
                Received::Duplicate => "duplicate".to_owned(),
                Received::Noise { .. } => "recorded".to_owned(),
            };
        }
        Ok(outcome)
    }
}

fn temporary(err: anyhow::Error) -> DeliveryError {
    tracing::error!(
        error = format!("{err:#}"),
        "an email could not be stored; the sender will retry"
    );
    DeliveryError::new(format!("{err:#}"))
}

/// Binds the SMTP listener named by `smtp_listen`, if it is on.
pub async fn bind(state_config: &crate::Config) -> anyhow::Result<Option<TcpListener>> {
    if state_config.smtp_listen.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(&state_config.smtp_listen)
        .await
        .with_context(|| {
            format!(
                "binding the SMTP listener on {} (smtp_listen / KALTALK_SMTP_LISTEN; empty turns it off)",
                state_config.smtp_listen
            )
        })?;
    Ok(Some(listener))
}

/// Serves SMTP on `listener` until `shutdown` resolves.
pub fn spawn(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let inbound = &state.config.inbound_email;
    let tls = inbound
        .tls_files(state.config.tls.as_ref())
        .map(|(cert, key)| crate::tls::server_config(cert, key))
        .transpose()
        .context("the STARTTLS certificate (inbound_email.tls_* or [tls])")?;
    let config = Arc::new(SmtpConfig {
        hostname: inbound.hostname.clone(),
        max_message_bytes: inbound.max_message_bytes,
        max_buffered_bytes: inbound.max_buffered_bytes,
        tls,
        require_tls: inbound.require_tls,
        ..SmtpConfig::default()
    });
    tracing::info!(address = %addr, starttls = config.tls.is_some(), "SMTP listener ready");
    let sink = Arc::new(InboxSink { state });
    let task = tokio::spawn(smtp_in::serve(listener, config, sink, shutdown));
    Ok((addr, task))
}
