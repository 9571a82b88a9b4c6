//! The built-in SMTP listener (RFC 5321) that receives the email channel's mail. It speaks
//! just enough ESMTP for MTAs and mail clients to hand us messages, and answers 250 only
//! after the [`MailSink`] says the message is durably stored.

mod connection;
mod data;
mod reply;
mod session;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tls;

pub use tls::{TlsConfigError, tls_config_from_pem};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// What the listener needs from the rest of KalTalk: which addresses exist, and a place to
/// store a message before the sender is told it was accepted.
#[async_trait::async_trait]
pub trait MailSink: Send + Sync + 'static {
    /// Called at RCPT TO. Unknown → 550 5.1.1; TempFail → 451 4.3.0.
    async fn recipient(&self, address: &str) -> RecipientVerdict;
    /// Called once DATA is complete. Must return only after the message is durably
    /// stored: Ok → `250 2.0.0 queued as <id>`; Err → 451 4.3.0 (the client retries).
    async fn deliver(&self, envelope: &Envelope, raw: Vec<u8>) -> Result<String, DeliveryError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientVerdict {
    Accept,
    Unknown,
    TempFail,
}

/// The SMTP envelope of one message: who the sending server says it is from and for whom
/// it is, which may differ from the message's own From/To headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Empty for the null sender `<>` (bounces and other automatic replies).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub peer: SocketAddr,
    /// Whether the message arrived inside STARTTLS.
    pub tls: bool,
}

/// Why a message could not be stored. The sender only ever sees a generic 451 (it retries
/// later); the cause is logged here.
#[derive(Debug, thiserror::Error)]
#[error("the message could not be stored: {0}")]
pub struct DeliveryError(Box<dyn std::error::Error + Send + Sync>);

impl DeliveryError {
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(cause.into())
    }
}

pub struct SmtpConfig {
    /// Named in the greeting and the EHLO answer.
    pub hostname: String,
    /// Advertised with SIZE; a larger message is refused with 552 5.3.4 and the
    /// connection stays usable.
    pub max_message_bytes: usize,
    /// STARTTLS is offered only when this is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// When true, MAIL before STARTTLS is refused with 530 5.7.0.
    pub require_tls: bool,
    pub max_recipients: usize,
    /// A client silent this long gets 421 and is disconnected.
    pub command_timeout: Duration,
    /// Connections beyond this many are greeted with 421 and closed.
    pub max_connections: usize,
    /// The most bytes of message bodies all connections together hold in memory while
    /// they are read and delivered. A message that does not fit is read to its end and
    /// refused with 452 4.3.1, which senders retry later.
    pub max_buffered_bytes: usize,
    /// After shutdown is requested, how long sessions in the middle of a message may take
    /// to finish before they are cut off.
    pub shutdown_grace: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".to_owned(),
            max_message_bytes: 25 * 1024 * 1024,
            tls: None,
            require_tls: false,
            max_recipients: 100,
            command_timeout: Duration::from_secs(5 * 60),
            max_connections: 256,
            max_buffered_bytes: 128 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("hostname", &self.hostname)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("tls", &self.tls.is_some())
            .field("require_tls", &self.require_tls)
            .field("max_recipients", &self.max_recipients)
            .field("command_timeout", &self.command_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

/// Accepts SMTP connections on `listener` until `shutdown` completes, one task per
/// connection. On shutdown it stops accepting, tells idle sessions 421, and gives sessions
/// in the middle of a message `shutdown_grace` to finish.
pub async fn serve(
    listener: TcpListener,
    config: Arc<SmtpConfig>,
    sink: Arc<dyn MailSink>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if config.require_tls && config.tls.is_none() {
        tracing::error!(
            "SMTP listener: require_tls is set but no TLS certificate is configured, so every \
             message will be refused; configure a certificate or turn require_tls off"
        );
    }
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let budget = data::MemoryBudget::new(config.max_buffered_bytes);
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually EMFILE or a connection reset before accept; the listener
                        // itself is fine, so keep going after a short pause.
                        tracing::warn!(%error, "SMTP listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let slot = Arc::clone(&slots).try_acquire_owned().ok();
                let config = Arc::clone(&config);
                let sink = Arc::clone(&sink);
                let stopping = stopping_rx.clone();
                let budget = budget.clone();
                sessions.spawn(async move {
                    match slot {
                        Some(_slot) => connection::run(stream, peer, config, sink, budget, stopping).await,
                        None => connection::refuse_busy(stream, peer, &config).await,
                    }
                });
            }
            // Reap finished sessions so the set does not grow with every connection.
            Some(finished) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(error) = finished
                    && error.is_panic()
                {
                    tracing::error!(%error, "SMTP listener: a session panicked");
                }
            }
        }
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = sessions.len(),
            "SMTP listener: sessions still running after the shutdown grace period were cut off"
        );
        sessions.shutdown().await;
    }
}
