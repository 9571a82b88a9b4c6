//! The widget's WebSocket: the visitor's conversation, live, resumable from the last event
//! the widget saw; typing and seen markers back.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kaltalk_core::chat::MessageKind;
use kaltalk_core::event::{
    CONVERSATION_UPDATED, ConversationSeen, ConversationUpdated, EventPayload, MESSAGE_CREATED,
    MessageCreated, Seer,
};
use kaltalk_core::hours::InboxHours;
use kaltalk_core::{ConversationId, EventId, OrgId};
use kaltalk_store::Event;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{WidgetError, check_origin, visitor_by_token};
use crate::realtime::{Feed, Live, REPLAY_BATCH, Topic, Typist, pump};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SocketQuery {
    token: String,
    after: Option<String>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<SocketQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, WidgetError> {
    let visitor = visitor_by_token(&state, &query.token)
        .await?
        .ok_or(WidgetError::InvalidVisitorToken)?;
    // Browsers send Origin on WebSocket handshakes; CORS does not apply, so check here.
    check_origin(&state, &visitor.inbox, &headers)?;
    let after = query
        .after
        .as_deref()
        .and_then(|a| a.parse::<EventId>().ok());
    let feed = WidgetFeed {
        token: query.token.clone(),
        state: state.clone(),
        org: visitor.session.org_id,
        session: visitor.session.id,
        conversation: visitor.session.conversation_id,
        hours: visitor.inbox.hours().cloned(),
        team: visitor.inbox.routing.team_id,
    };
    Ok(ws
        .max_message_size(16 * 1024)
        .read_buffer_size(crate::realtime::READ_BUFFER)
        .on_upgrade(move |socket| async move {
            pump(socket, &state.hub, feed, after).await;
        }))
}

struct WidgetFeed {
    /// The visitor token the socket was opened with, checked again at every ping.
    token: String,
    state: AppState,
    org: OrgId,
    session: kaltalk_core::VisitorSessionId,
    /// Fixed for the socket's life: a visitor with no conversation yet reconnects after
    /// writing (the widget opens the socket after its first message).
    conversation: Option<ConversationId>,
    /// The inbox's business hours as the socket opened: the presence frame follows them.
    hours: Option<InboxHours>,
    /// The team the inbox routes to as the socket opened: "online" means one of its
    /// members is (anyone of the organization when none).
    team: Option<kaltalk_core::TeamId>,
}

/// How an event looks to the visitor, if they may see it at all (notes never).
fn widget_frame(event: &Event) -> Option<Value> {
    let payload = match event.payload() {
        Ok(payload) => payload,
        Err(err) => {
            tracing::warn!(event = %event.id, error = %err, "an event that cannot be read is not sent");
            return None;
        }
    };
    match payload {
        EventPayload::MessageCreated(MessageCreated { message })
            if message.kind != MessageKind::Note =>
        {
            Some(json!({ "type": MESSAGE_CREATED, "event_id": event.id, "message": message }))
        }
        EventPayload::ConversationUpdated(ConversationUpdated {
            status: Some(status),
            ..
        }) => Some(json!({ "type": CONVERSATION_UPDATED, "event_id": event.id, "status": status })),
        EventPayload::ConversationSeen(ConversationSeen {
            by: Seer::Agent,
            message_id,
        }) => Some(json!({ "type": "seen", "event_id": event.id, "message_id": message_id })),
        _ => None,
    }
}

impl WidgetFeed {
    /// "Online", "Away" or when the team is back, in the widget's header: the schedule
    /// ANDed with whether the team is there.
    fn presence_frame(&self, team_available: bool) -> Value {
        let mut frame = super::presence(self.hours.as_ref(), team_available, self.state.now());
        frame["type"] = json!("presence");
        frame
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Typing { typing: bool },
    Seen {},
}

impl Feed for WidgetFeed {
    fn topic(&self) -> Option<Topic> {
        self.conversation.map(Topic::Conversation)
    }

    async fn replay(&self, after: Option<EventId>) -> anyhow::Result<Vec<Event>> {
        match self.conversation {
            Some(conversation) => Ok(self
                .state
                .store
                .conversation_events_since(conversation, after, REPLAY_BATCH)
                .await?),
            None => Ok(Vec::new()),
        }
    }

    fn side_topic(&self) -> Option<Topic> {
        Some(Topic::Presence(self.org))
    }

    /// Whether the team is online now: what the widget showed may be stale by the time
    /// the socket (re)opens.
    async fn hello(&self) -> Option<Value> {
        let online = match self.state.store.presence(self.org).await {
            Ok(presence) => presence.available(self.team),
            Err(err) => {
                tracing::warn!(error = %err, "reading who is online failed");
                false
            }
        };
        Some(self.presence_frame(online))
    }

    fn render(&self, live: &Live) -> Option<Value> {
        if let Live::Presence { org, presence } = live {
            return (*org == self.org).then(|| self.presence_frame(presence.available(self.team)));
        }
        let conversation = self.conversation?;
        match live {
            Live::Event(event) if event.conversation_id == Some(conversation) => {
                widget_frame(event)
            }
            Live::Typing {
                conversation: c,
                by: Typist::Agent { name },
                typing,
                ..
            } if *c == conversation => {
                Some(json!({ "type": "typing", "typing": typing, "name": name }))
            }
            Live::BotDraft {
                conversation: c,
                draft,
                delta,
                end,
                replace,
                ..
            } if *c == conversation => Some(
                json!({ "type": "bot.delta", "draft_id": draft, "delta": delta, "end": end, "replace": replace }),
            ),
            _ => None,
        }
    }

    /// The session must still be there (not ended by another user signing in) and its
    /// inbox must still admit it (an inbox switched to "required" ends anonymous sockets
    /// too, within one ping). A database error keeps the socket: it is not a refusal.
    async fn still_admitted(&self) -> bool {
        !matches!(
            visitor_by_token(&self.state, &self.token).await,
            Ok(None) | Err(WidgetError::IdentityRequired)
        )
    }

    async fn on_client(&mut self, frame: &str) {
        let Some(conversation) = self.conversation else {
            return;
        };
        match serde_json::from_str::<ClientFrame>(frame) {
            Ok(ClientFrame::Typing { typing }) => {
                self.state.hub.publish(Live::Typing {
                    org: self.org,
                    conversation,
                    by: Typist::Contact,
                    typing,
                });
            }
            Ok(ClientFrame::Seen {}) => {
                let now = self.state.now();
                match self.state.store.contact_saw(conversation, now).await {
                    Ok(seen) => self.state.hub.publish_events(seen.events),
                    Err(err) => tracing::warn!(error = %err, "could not record seen"),
                }
                let _ = self
                    .state
                    .store
                    .touch_visitor_session_seen(self.session, now)
                    .await;
            }
            Err(_) => {} // unknown frames are ignored: newer widgets may send more
        }
    }
}
