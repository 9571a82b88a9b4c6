//! The realtime hub: what committed is published here at once, and every connected
//! socket (widget or dashboard) picks what concerns it. A socket that falls behind does
//! not slow anyone else: it loses its place in the broadcast and catches up from the
//! event log instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use kaltalk_core::{ConversationId, EventId, OrgId};
use kaltalk_store::Event;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Mutex, broadcast};
use uuid::Uuid;

/// Something that happened, as sockets hear it.
#[derive(Debug, Clone)]
pub enum Live {
    /// A committed event-log row.
    Event(Arc<Event>),
    /// Someone is typing (not stored).
    Typing {
        org: OrgId,
        conversation: ConversationId,
        by: Typist,
        typing: bool,
    },
    /// The bot's answer while the model writes it (not stored): text to append to the
    /// draft `draft`, or, with `end`, the draft is over. The committed message names its
    /// draft in `metadata.draft_id` and replaces it; a draft that ends without one (a
    /// person took over, the model failed) is withdrawn.
    BotDraft {
        org: OrgId,
        conversation: ConversationId,
        draft: Uuid,
        delta: String,
        end: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typist {
    Agent { name: String },
    Contact,
}

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Live>,
    /// How often sockets are pinged; a socket that misses a pong is closed.
    ping_every: Duration,
    /// Dashboard sockets open per organization: the widget says whether anyone is there.
    agents_online: Arc<Mutex<HashMap<OrgId, usize>>>,
}

impl Hub {
    /// `capacity` is how many items a socket may fall behind before it catches up from
    /// the event log instead.
    pub fn new(capacity: usize, ping_every: Duration) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            ping_every,
            tx,
            agents_online: Arc::default(),
        }
    }

    pub async fn agent_connected(&self, org: OrgId) {
        *self.agents_online.lock().await.entry(org).or_default() += 1;
    }

    pub async fn agent_disconnected(&self, org: OrgId) {
        let mut online = self.agents_online.lock().await;
        if let Some(count) = online.get_mut(&org) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                online.remove(&org);
            }
        }
    }

    pub async fn agents_online(&self, org: OrgId) -> bool {
        self.agents_online
            .lock()
            .await
            .get(&org)
            .is_some_and(|n| *n > 0)
    }

    /// Publishes events that have been committed.
    pub fn publish_events(&self, events: Vec<Event>) {
        for event in events {
            let _ = self.tx.send(Live::Event(Arc::new(event)));
        }
    }

    pub fn publish(&self, live: Live) {
        let _ = self.tx.send(live);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.tx.subscribe()
    }
}

/// How far before the last event a client saw a resume starts: transactions that began
/// before it may commit a moment after it. Clients ignore what they already have.
const RESUME_OVERLAP_MS: u64 = 2_000;
/// The most events replayed in one go.
pub const REPLAY_BATCH: i64 = 500;
/// A socket that cannot take a frame for this long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Read buffer of a socket. Clients send only small frames (typing, seen); tungstenite's
/// default of 128 KiB is zero-filled on every read attempt, which at thousands of sockets
/// dominated the server's CPU (measured with kaltalk-bench and perf).
pub const READ_BUFFER: usize = 4 * 1024;

/// The id to replay from when a client resumes after `after`: a little earlier.
pub fn resume_floor(after: EventId) -> EventId {
    let bytes = after.as_uuid().into_bytes();
    let mut millis = [0u8; 8];
    millis[2..].copy_from_slice(&bytes[..6]);
    let floor = u64::from_be_bytes(millis).saturating_sub(RESUME_OVERLAP_MS);
    let mut out = [0u8; 16];
    out[..6].copy_from_slice(&floor.to_be_bytes()[2..]);
    EventId::from_uuid(Uuid::from_bytes(out))
}

/// What a socket is, for the pump: which events it wants, how they look on its wire, and
/// what it does with what the client sends.
pub trait Feed: Send {
    /// Events after `after` from the event log (replay), oldest first.
    fn replay(
        &self,
        after: Option<EventId>,
    ) -> impl Future<Output = anyhow::Result<Vec<Event>>> + Send;
    /// The frame for a live item, or `None` when it is not for this socket.
    fn render(&self, live: &Live) -> Option<Value>;
    /// A text frame from the client.
    fn on_client(&mut self, frame: &str) -> impl Future<Output = ()> + Send;
}

/// Runs a socket: replays what the client missed, then streams live until either side
/// goes away. Pings keep the connection honest; a silent peer is dropped.
pub async fn pump<F: Feed>(mut socket: WebSocket, hub: &Hub, mut feed: F, after: Option<EventId>) {
    // Subscribe before replaying, so nothing committed in between is missed.
    let mut rx = hub.subscribe();
    let mut seen = SeenIds::default();
    let mut last = after;
    if catch_up(
        &mut socket,
        &feed,
        &mut seen,
        &mut last,
        after.map(resume_floor),
    )
    .await
    .is_err()
    {
        return;
    }
    let mut ping = tokio::time::interval(hub.ping_every);
    ping.tick().await;
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            live = rx.recv() => match live {
                Ok(live) => {
                    // Most of what is broadcast is for other sockets: render first, and
                    // remember only what this socket sends.
                    let Some(frame) = feed.render(&live) else {
                        continue;
                    };
                    if let Live::Event(event) = &live {
                        if !seen.insert(event.id) {
                            continue;
                        }
                        last = Some(last.map_or(event.id, |l| l.max(event.id)));
                    }
                    if send(&mut socket, &frame).await.is_err() {
                        return;
                    }
                }
                // Fell behind the broadcast: catch up from the log, then carry on.
                Err(RecvError::Lagged(_)) => {
                    let from = last.map(resume_floor);
                    if catch_up(&mut socket, &feed, &mut seen, &mut last, from).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => feed.on_client(text.as_str()).await,
                Some(Ok(WsMessage::Pong(_))) => awaiting_pong = false,
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if awaiting_pong {
                    return; // no answer to the last ping
                }
                awaiting_pong = true;
                if tokio::time::timeout(SEND_TIMEOUT, socket.send(WsMessage::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                    return;
                }
            }
        }
    }
}

async fn catch_up<F: Feed>(
    socket: &mut WebSocket,
    feed: &F,
    seen: &mut SeenIds,
    last: &mut Option<EventId>,
    from: Option<EventId>,
) -> Result<(), ()> {
    let mut cursor = from;
    loop {
        let events = feed
            .replay(cursor)
            .await
            .map_err(|err| tracing::warn!(error = %err, "replay failed"))?;
        let done = (events.len() as i64) < REPLAY_BATCH;
        for event in events {
            cursor = Some(event.id);
            let id = event.id;
            let Some(frame) = feed.render(&Live::Event(Arc::new(event))) else {
                continue;
            };
            if !seen.insert(id) {
                continue;
            }
            *last = Some(last.map_or(id, |l| l.max(id)));
            send(socket, &frame).await?;
        }
        if done {
            return Ok(());
        }
    }
}

async fn send(socket: &mut WebSocket, frame: &Value) -> Result<(), ()> {
    let text = frame.to_string();
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(WsMessage::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// The ids a socket already delivered, bounded: enough to cover the resume overlap.
#[derive(Default)]
struct SeenIds {
    set: HashSet<EventId>,
    order: VecDeque<EventId>,
}

impl SeenIds {
    const CAPACITY: usize = 4096;

    /// Records `id`; false when it was already delivered.
    fn insert(&mut self, id: EventId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resume_floor_is_two_seconds_earlier_and_below_every_id_of_that_millisecond() {
        let id = EventId::new();
        let floor = resume_floor(id);
        assert!(floor < id);
        let ms = |e: EventId| {
            let b = e.as_uuid().into_bytes();
            u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
        };
        assert_eq!(ms(id) - ms(floor), RESUME_OVERLAP_MS);
    }

    #[test]
    fn seen_ids_forget_the_oldest() {
        let mut seen = SeenIds::default();
        let first = EventId::new();
        assert!(seen.insert(first));
        assert!(!seen.insert(first));
        for _ in 0..SeenIds::CAPACITY {
            seen.insert(EventId::new());
        }
        assert!(seen.insert(first), "forgotten after capacity");
    }
}
