//! A local SMTP sink for tests: a real [`serve`] on 127.0.0.1:0 whose [`MailSink`] keeps
//! every message in memory. Dropping the [`SinkServer`] stops it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot, watch};

use super::{DeliveryError, Envelope, MailSink, RecipientVerdict, SmtpConfig, serve};

/// One message as the sink stored it.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub id: String,
    pub envelope: Envelope,
    pub raw: Vec<u8>,
}

/// Accepts every recipient (or only the known ones) and keeps each message.
pub struct CollectingSink {
    known_recipients: Option<HashSet<String>>,
    fail_deliveries: AtomicBool,
    messages: Mutex<Vec<ReceivedMessage>>,
    count: watch::Sender<usize>,
}

impl Default for CollectingSink {
    fn default() -> Self {
        Self::new()
    }
}

impl CollectingSink {
    /// A sink that accepts mail for any address.
    pub fn new() -> Self {
        Self {
            known_recipients: None,
            fail_deliveries: AtomicBool::new(false),
            messages: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
        }
    }

    /// A sink that answers 550 for any address not listed (compared case-insensitively).
    pub fn with_recipients<I, S>(addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            known_recipients: Some(
                addresses
                    .into_iter()
                    .map(|address| address.as_ref().to_ascii_lowercase())
                    .collect(),
            ),
            ..Self::new()
        }
    }

    /// While set, every delivery fails as if the database were down (the client sees 451).
    pub fn set_fail_deliveries(&self, fail: bool) {
        self.fail_deliveries.store(fail, Ordering::SeqCst);
    }

    pub async fn messages(&self) -> Vec<ReceivedMessage> {
        self.messages.lock().await.clone()
    }

    /// Waits until at least `count` messages have arrived, then returns them all. Wrap it
    /// in a timeout: it waits for as long as it takes.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedMessage> {
        let mut arrivals = self.count.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we borrow it.
        let _ = arrivals.wait_for(|arrived| *arrived >= count).await;
        self.messages().await
    }
}

#[async_trait::async_trait]
impl MailSink for CollectingSink {
    async fn recipient(&self, address: &str) -> RecipientVerdict {
        match &self.known_recipients {
            Some(known) if !known.contains(&address.to_ascii_lowercase()) => {
                RecipientVerdict::Unknown
            }
            _ => RecipientVerdict::Accept,
        }
    }

    async fn deliver(&self, envelope: &Envelope, raw: Vec<u8>) -> Result<String, DeliveryError> {
        if self.fail_deliveries.load(Ordering::SeqCst) {
            return Err(DeliveryError::new(
                "CollectingSink is set to fail deliveries",
            ));
        }
        let mut messages = self.messages.lock().await;
        let id = format!("test-{}", messages.len() + 1);
        messages.push(ReceivedMessage {
            id: id.clone(),
            envelope: envelope.clone(),
            raw,
        });
        self.count.send_replace(messages.len());
        Ok(id)
    }
}

/// A running local SMTP sink. Dropping it stops the server.
pub struct SinkServer {
    pub addr: SocketAddr,
    pub sink: Arc<CollectingSink>,
    _stop: oneshot::Sender<()>,
}

impl SinkServer {
    /// The relay URL for [`crate::Mailer::new`]: plain SMTP, no authentication.
    pub fn smtp_url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub async fn messages(&self) -> Vec<ReceivedMessage> {
        self.sink.messages().await
    }
}

/// Starts an SMTP sink on 127.0.0.1:0 that accepts any recipient.
pub async fn spawn_sink_server() -> (SocketAddr, SinkServer) {
    spawn_server_with(SmtpConfig::default(), CollectingSink::new()).await
}

/// Starts [`serve`] on 127.0.0.1:0 with the given configuration and sink.
pub async fn spawn_server_with(
    config: SmtpConfig,
    sink: CollectingSink,
) -> (SocketAddr, SinkServer) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0 for the test SMTP sink");
    let addr = listener
        .local_addr()
        .expect("a bound listener has a local address");
    let sink = Arc::new(sink);
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        // Either an explicit send or the handle being dropped stops the server.
        let _ = stopped.await;
    };
    tokio::spawn(serve(
        listener,
        Arc::new(config),
        Arc::clone(&sink) as Arc<dyn MailSink>,
        shutdown,
    ));
    (
        addr,
        SinkServer {
            addr,
            sink,
            _stop: stop,
        },
    )
}
