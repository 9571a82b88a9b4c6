//! The realtime hub: what committed is published here at once and routed to the sockets
//! it concerns: a widget socket hears its conversation's topic, a dashboard socket its
//! organization's. A socket that falls behind does not slow anyone else: it loses its
//! place in its topic and catches up from the event log instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use kaltalk_core::{ConversationId, EventId, OrgId};
use kaltalk_store::Event;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};
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
        /// `delta` is the whole draft so far, to show instead of what the socket had: the
        /// first item a socket that subscribes mid-draft hears.
        replace: bool,
    },
    /// Who of the organization is online (their availability) may have changed: the
    /// widget's "Online" / "Away", for its inbox's team or the whole organization.
    Presence {
        org: OrgId,
        presence: Arc<kaltalk_store::routing::Presence>,
    },
}

impl Live {
    /// The topics this goes to: its conversation's and (but for drafts) its organization's.
    fn topics(&self) -> [Option<Topic>; 2] {
        match self {
            Live::Event(event) => [
                event.conversation_id.map(Topic::Conversation),
                event.org_id.map(Topic::Org),
            ],
            Live::Typing {
                org, conversation, ..
            } => [
                Some(Topic::Conversation(*conversation)),
                Some(Topic::Org(*org)),
            ],
            // Only the visitor's widget shows drafts; the inbox waits for the message.
            Live::BotDraft { conversation, .. } => [Some(Topic::Conversation(*conversation)), None],
            Live::Presence { org, .. } => [Some(Topic::Presence(*org)), None],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typist {
    Agent { name: String },
    Contact,
}

/// What a socket subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// One conversation: what a widget socket hears.
    Conversation(ConversationId),
    /// Everything of one organization: what a dashboard socket hears.
    Org(OrgId),
    /// Whether the organization's team is online: what every widget socket also hears.
    Presence(OrgId),
}

/// The most a conversation's topic buffers. Each topic allocates its buffer up front, and
/// at 10,000 widget sockets the organization-sized buffer would take gigabytes; a
/// conversation rarely has more than a handful of events in flight, and a widget socket
/// that falls further behind catches up from the event log like any other.
const CONVERSATION_BUFFER: usize = 64;
/// Presence changes are rare and only the latest matters: a socket that lags still
/// hears the newest ones the buffer kept.
const PRESENCE_BUFFER: usize = 4;

impl Topic {
    fn capacity(self, buffer: usize) -> usize {
        match self {
            Topic::Conversation(_) => buffer.min(CONVERSATION_BUFFER),
            Topic::Presence(_) => buffer.min(PRESENCE_BUFFER),
            Topic::Org(_) => buffer,
        }
        .max(1)
    }
}

/// What the router task is asked to do. One task owns the topic map, so publishing stays
/// a synchronous call (handlers publish right after they commit) and no lock is shared
/// between thousands of sockets; the channel keeps publishes and subscriptions in order.
enum Command {
    Publish(Live),
    /// Answered with the topic's receiver and, for a conversation whose bot answer is
    /// being written, the draft so far.
    Subscribe(
        Topic,
        oneshot::Sender<(broadcast::Receiver<Live>, Option<Live>)>,
    ),
    /// A subscriber went away: the topic is dropped once it has no receiver left.
    Left(Topic),
    /// How many topics are open (tests check that none leak).
    #[cfg(test)]
    CountTopics(oneshot::Sender<usize>),
}

#[derive(Clone)]
pub struct Hub {
    commands: mpsc::UnboundedSender<Command>,
    /// How often sockets are pinged; a socket that misses a pong is closed.
    ping_every: Duration,
    /// Rung when events other than notifications are published: the notifier reads the
    /// log then, instead of at its next second.
    written: Arc<tokio::sync::Notify>,
}

impl Hub {
    /// `buffer` is how many items a socket may fall behind before it catches up from the
    /// event log instead (at most [`CONVERSATION_BUFFER`] for a conversation). Starts the
    /// router task, so it must be called inside the runtime.
    pub fn new(buffer: usize, ping_every: Duration) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(route(rx, buffer));
        Self {
            ping_every,
            commands,
            written: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Publishes events that have been committed.
    pub fn publish_events(&self, events: Vec<Event>) {
        // The notifier's own (notification.*) do not wake it: it would only read them again.
        if events.iter().any(|e| !e.kind.starts_with("notification.")) {
            self.written.notify_one();
        }
        for event in events {
            self.publish(Live::Event(Arc::new(event)));
        }
    }

    /// Resolves when events were published since the last call (at once if they were).
    pub async fn events_written(&self) {
        self.written.notified().await;
    }

    pub fn publish(&self, live: Live) {
        // Fails only once the router is gone, when the server is shutting down.
        let _ = self.commands.send(Command::Publish(live));
    }

    /// Everything published to `topic` from now on; `None` when the hub has shut down.
    pub async fn subscribe(&self, topic: Topic) -> Option<Subscription> {
        let (reply, receiver) = oneshot::channel();
        self.commands.send(Command::Subscribe(topic, reply)).ok()?;
        let (rx, draft_so_far) = receiver.await.ok()?;
        Some(Subscription {
            rx: Some(rx),
            first: draft_so_far,
            topic,
            commands: self.commands.clone(),
        })
    }
}

/// A socket's place in a topic. Dropping it lets the hub forget a topic nobody hears.
pub struct Subscription {
    /// Always `Some` until dropped: taken in `drop` so the receiver is gone before the
    /// router counts what is left.
    rx: Option<broadcast::Receiver<Live>>,
    /// Heard before anything from `rx`: the bot's draft so far, when subscribing mid-draft.
    first: Option<Live>,
    topic: Topic,
    commands: mpsc::UnboundedSender<Command>,
}

impl Subscription {
    pub async fn recv(&mut self) -> Result<Live, RecvError> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => Err(RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        let _ = self.commands.send(Command::Left(self.topic));
    }
}

/// The bot answers being written, by conversation: what a socket that subscribes in the
/// middle of one missed. Drafts are not in the event log, so nothing else could tell it.
#[derive(Default)]
struct DraftsSoFar(HashMap<ConversationId, DraftSoFar>);

struct DraftSoFar {
    org: OrgId,
    draft: Uuid,
    text: String,
    updated: std::time::Instant,
}

impl DraftsSoFar {
    /// Past this many drafts in progress, ones silent for [`Self::ABANDONED_AFTER`] are
    /// dropped: a turn that died without ending its draft must not be kept forever.
    const SWEEP_ABOVE: usize = 1024;
    const ABANDONED_AFTER: Duration = Duration::from_secs(300);

    fn follow(&mut self, live: &Live) {
        let Live::BotDraft {
            org,
            conversation,
            draft,
            delta,
            end,
            ..
        } = live
        else {
            return;
        };
        if *end {
            self.0.remove(conversation);
            return;
        }
        let entry = self.0.entry(*conversation).or_insert_with(|| DraftSoFar {
            org: *org,
            draft: *draft,
            text: String::new(),
            updated: std::time::Instant::now(),
        });
        if entry.draft != *draft {
            entry.draft = *draft;
            entry.text.clear();
        }
        entry.text.push_str(delta);
        entry.updated = std::time::Instant::now();
        if self.0.len() > Self::SWEEP_ABOVE {
            self.0
                .retain(|_, d| d.updated.elapsed() < Self::ABANDONED_AFTER);
        }
    }

    fn snapshot(&self, topic: Topic) -> Option<Live> {
        let Topic::Conversation(conversation) = topic else {
            return None; // only widgets show drafts
        };
        self.0.get(&conversation).map(|d| Live::BotDraft {
            org: d.org,
            conversation,
            draft: d.draft,
            delta: d.text.clone(),
            end: false,
            replace: true,
        })
    }
}

/// The router: owns one broadcast channel per topic somebody listens to.
async fn route(mut commands: mpsc::UnboundedReceiver<Command>, buffer: usize) {
    let mut topics: HashMap<Topic, broadcast::Sender<Live>> = HashMap::new();
    let mut drafts = DraftsSoFar::default();
    let forget_if_unheard = |topics: &mut HashMap<Topic, broadcast::Sender<Live>>, topic| {
        if topics
            .get(&topic)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            topics.remove(&topic);
        }
    };
    while let Some(command) = commands.recv().await {
        match command {
            Command::Publish(live) => {
                drafts.follow(&live);
                for topic in live.topics().into_iter().flatten() {
                    // Nobody listening to a topic is the common case: no channel, no work.
                    if let Some(tx) = topics.get(&topic) {
                        let _ = tx.send(live.clone());
                    }
                }
            }
            Command::Subscribe(topic, reply) => {
                let rx = topics
                    .entry(topic)
                    .or_insert_with(|| broadcast::channel(topic.capacity(buffer)).0)
                    .subscribe();
                // The socket gave up before its answer came: undo.
                if let Err((rx, _)) = reply.send((rx, drafts.snapshot(topic))) {
                    drop(rx);
                    forget_if_unheard(&mut topics, topic);
                }
            }
            Command::Left(topic) => forget_if_unheard(&mut topics, topic),
            #[cfg(test)]
            Command::CountTopics(reply) => {
                let _ = reply.send(topics.len());
            }
        }
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
    /// The topic this socket hears live, or `None` for a socket with nothing to hear yet.
    fn topic(&self) -> Option<Topic>;
    /// Events after `after` from the event log (replay), oldest first.
    fn replay(
        &self,
        after: Option<EventId>,
    ) -> impl Future<Output = anyhow::Result<Vec<Event>>> + Send;
    /// The frame for a live item, or `None` when it is not for this socket.
    fn render(&self, live: &Live) -> Option<Value>;
    /// A text frame from the client.
    fn on_client(&mut self, frame: &str) -> impl Future<Output = ()> + Send;
    /// Whether the socket may go on streaming, asked again at every ping: what admitted
    /// it at the handshake (a visitor session, an inbox's identity mode) can change while
    /// it is open.
    fn still_admitted(&self) -> impl Future<Output = bool> + Send {
        async { true }
    }
    /// A second topic the socket hears live besides [`Feed::topic`] (a widget socket:
    /// its organization's presence).
    fn side_topic(&self) -> Option<Topic> {
        None
    }
    /// A frame sent once the socket opens (and again on every reconnect), after the
    /// replay: state that is not in the event log, such as presence.
    fn hello(&self) -> impl Future<Output = Option<Value>> + Send {
        async { None }
    }
}

/// Runs a socket: replays what the client missed, then streams live until either side
/// goes away. Pings keep the connection honest; a silent peer is dropped.
pub async fn pump<F: Feed>(mut socket: WebSocket, hub: &Hub, mut feed: F, after: Option<EventId>) {
    // Subscribe before replaying, so nothing committed in between is missed.
    let mut subscription = match feed.topic() {
        Some(topic) => match hub.subscribe(topic).await {
            Some(subscription) => Some(subscription),
            None => return, // shutting down
        },
        None => None,
    };
    let mut side = match feed.side_topic() {
        Some(topic) => match hub.subscribe(topic).await {
            Some(subscription) => Some(subscription),
            None => return,
        },
        None => None,
    };
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
    // After subscribing, so a change from here on is heard even if it beats the hello.
    if let Some(frame) = feed.hello().await
        && send(&mut socket, &frame).await.is_err()
    {
        return;
    }
    let mut ping = tokio::time::interval(hub.ping_every);
    ping.tick().await;
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            live = next_live(&mut subscription) => match live {
                Ok(live) => {
                    // A topic may carry what this socket must not show (a note to a
                    // widget): render first, and remember only what this socket sends.
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
            live = next_live(&mut side) => match live {
                Ok(live) => {
                    if let Some(frame) = feed.render(&live)
                        && send(&mut socket, &frame).await.is_err()
                    {
                        return;
                    }
                }
                // Nothing to catch up: the buffer kept the newest changes.
                Err(RecvError::Lagged(_)) => {}
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
                if !feed.still_admitted().await {
                    // 4403: the client should not just reconnect with the same credentials.
                    let close = axum::extract::ws::CloseFrame {
                        code: 4403,
                        reason: "no longer admitted".into(),
                    };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(WsMessage::Close(Some(close)))).await;
                    return;
                }
                awaiting_pong = true;
                if tokio::time::timeout(SEND_TIMEOUT, socket.send(WsMessage::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                    return;
                }
            }
        }
    }
}

/// The next live item of a subscription; never, for a socket without one.
async fn next_live(subscription: &mut Option<Subscription>) -> Result<Live, RecvError> {
    match subscription {
        Some(subscription) => subscription.recv().await,
        None => std::future::pending().await,
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
    use serde_json::json;

    fn event(org: OrgId, conversation: ConversationId) -> Event {
        Event {
            id: EventId::new(),
            org_id: Some(org),
            kind: kaltalk_core::event::MESSAGE_CREATED.into(),
            subject_id: None,
            conversation_id: Some(conversation),
            payload: sqlx::types::Json(json!({})),
            created_at: chrono::Utc::now(),
        }
    }

    fn event_id(live: Result<Live, RecvError>) -> Option<EventId> {
        match live {
            Ok(Live::Event(event)) => Some(event.id),
            _ => None,
        }
    }

    async fn open_topics(hub: &Hub) -> usize {
        let (reply, count) = oneshot::channel();
        assert!(hub.commands.send(Command::CountTopics(reply)).is_ok());
        count.await.expect("the router answers")
    }

    #[tokio::test]
    async fn a_widget_hears_its_conversation_and_a_dashboard_its_organization() {
        let hub = Hub::new(16, Duration::from_secs(20));
        let (org, other_org) = (OrgId::new(), OrgId::new());
        let (mine, theirs) = (ConversationId::new(), ConversationId::new());
        let mut widget = hub.subscribe(Topic::Conversation(mine)).await.expect("hub");
        let mut dashboard = hub.subscribe(Topic::Org(org)).await.expect("hub");

        let for_theirs = event(org, theirs);
        let elsewhere = event(other_org, ConversationId::new());
        let for_mine = event(org, mine);
        hub.publish_events(vec![for_theirs.clone(), elsewhere, for_mine.clone()]);
        hub.publish(Live::Typing {
            org,
            conversation: mine,
            by: Typist::Contact,
            typing: true,
        });

        assert_eq!(event_id(widget.recv().await), Some(for_mine.id));
        assert!(matches!(widget.recv().await, Ok(Live::Typing { .. })));
        assert_eq!(event_id(dashboard.recv().await), Some(for_theirs.id));
        assert_eq!(event_id(dashboard.recv().await), Some(for_mine.id));
        assert!(matches!(dashboard.recv().await, Ok(Live::Typing { .. })));
    }

    #[tokio::test]
    async fn a_topic_is_forgotten_when_its_last_socket_goes() {
        let hub = Hub::new(16, Duration::from_secs(20));
        let conversation = ConversationId::new();
        let first = hub.subscribe(Topic::Conversation(conversation)).await;
        let mut second = hub
            .subscribe(Topic::Conversation(conversation))
            .await
            .expect("hub");
        let dashboard = hub.subscribe(Topic::Org(OrgId::new())).await;
        assert_eq!(open_topics(&hub).await, 2);

        drop(first);
        assert_eq!(open_topics(&hub).await, 2, "one socket still listens");
        let kept = event(OrgId::new(), conversation);
        hub.publish_events(vec![kept.clone()]);
        assert_eq!(event_id(second.recv().await), Some(kept.id));

        drop(second);
        drop(dashboard);
        assert_eq!(open_topics(&hub).await, 0);
    }

    #[tokio::test]
    async fn a_widget_that_subscribes_mid_answer_first_hears_the_draft_so_far() {
        let hub = Hub::new(16, Duration::from_secs(20));
        let (org, conversation, draft) = (OrgId::new(), ConversationId::new(), Uuid::now_v7());
        let delta = |text: &str, end: bool| Live::BotDraft {
            org,
            conversation,
            draft,
            delta: text.to_owned(),
            end,
            replace: false,
        };
        let early = hub.subscribe(Topic::Conversation(conversation)).await;
        hub.publish(delta("Refunds ", false));
        hub.publish(delta("take ", false));

        let mut late = hub
            .subscribe(Topic::Conversation(conversation))
            .await
            .expect("hub");
        hub.publish(delta("5 days.", false));
        let heard = |live: Result<Live, RecvError>| match live {
            Ok(Live::BotDraft { delta, replace, .. }) => Some((delta, replace)),
            _ => None,
        };
        assert_eq!(
            heard(late.recv().await),
            Some(("Refunds take ".to_owned(), true))
        );
        assert_eq!(
            heard(late.recv().await),
            Some(("5 days.".to_owned(), false))
        );

        // Once the draft has ended, nobody is told about it any more.
        hub.publish(delta("", true));
        let after_end = hub.subscribe(Topic::Conversation(conversation)).await;
        assert!(after_end.is_some_and(|s| s.first.is_none()));
        drop(early);
    }

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
