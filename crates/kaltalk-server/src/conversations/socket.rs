//! The dashboard's WebSocket: every event of the agent's organization, and visitors'
//! typing; the agent's typing goes back to the visitor.

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use kaltalk_core::{ConversationId, EventId, OrgId};
use kaltalk_store::Event;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::AgentOrApp;
use crate::error::AppError;
use crate::realtime::{Feed, Live, REPLAY_BATCH, Topic, Typist, pump};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SocketQuery {
    after: Option<String>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    // The dashboard's cookie, or a native app's `Authorization: Bearer` token.
    AgentOrApp(session): AgentOrApp,
    axum::extract::Query(query): axum::extract::Query<SocketQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    // The cookie rides along on any site's WebSocket: only our own pages may open one.
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(|o| o.split_once("://"))
        .map(|(_, h)| h);
    if origin_host.is_some() && origin_host != host {
        return Err(AppError::CsrfRejected);
    }
    let after = query
        .after
        .as_deref()
        .and_then(|a| a.parse::<EventId>().ok());
    let org = session.org_id();
    let user = session.user.id;
    let feed = AgentFeed {
        state: state.clone(),
        org,
        user,
        name: session.user.name.clone(),
    };
    Ok(ws
        .max_message_size(16 * 1024)
        .read_buffer_size(crate::realtime::READ_BUFFER)
        .on_upgrade(move |socket| async move {
            pump(socket, &state.hub, feed, after).await;
            // Last seen now, first: the offline sweep counts from the moment it closed.
            crate::availability::dashboard_seen(&state, org, user, false).await;
            // Whatever it showed is no longer on the member's screen.
            if let Err(err) = state.store.set_viewing(org, user, None).await {
                tracing::warn!(error = %err, "forgetting the conversation on screen failed");
            }
        })
        .into_response())
}

struct AgentFeed {
    state: AppState,
    org: OrgId,
    user: kaltalk_core::UserId,
    name: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Typing {
        conversation_id: ConversationId,
        typing: bool,
    },
    /// The conversation the dashboard shows now (none: the list alone); nobody is
    /// notified of what is on their screen.
    Viewing {
        conversation_id: Option<ConversationId>,
    },
}

/// Whether an event of the organization is for this member's dashboard: all are, but a
/// member's notifications, which only that member hears.
fn for_this_member(event: &Event, user: kaltalk_core::UserId) -> bool {
    use kaltalk_core::event::{NOTIFICATION_CREATED, NOTIFICATIONS_READ};
    if event.kind != NOTIFICATION_CREATED && event.kind != NOTIFICATIONS_READ {
        return true;
    }
    event.payload.0.get("user_id").and_then(Value::as_str) == Some(user.to_string().as_str())
}

/// An event as the dashboard hears it: its kind and its whole payload.
fn agent_frame(event: &Event) -> Option<Value> {
    let payload = match event.payload() {
        Ok(payload) => payload,
        Err(err) => {
            tracing::warn!(event = %event.id, error = %err, "an event that cannot be read is not sent");
            return None;
        }
    };
    Some(json!({
        "type": payload.kind(),
        "event_id": event.id,
        "conversation_id": event.conversation_id,
        "payload": payload.to_json(),
    }))
}

impl Feed for AgentFeed {
    fn topic(&self) -> Option<Topic> {
        Some(Topic::Org(self.org))
    }

    /// Once subscribed (so nothing sent meanwhile is missed, this member's own change of
    /// availability included): the dashboard connected, which brings back online a
    /// member the server had taken offline.
    async fn hello(&self) -> Option<Value> {
        crate::availability::dashboard_seen(&self.state, self.org, self.user, true).await;
        None
    }

    /// Asked at every ping: the dashboard is still there, which the offline sweep reads.
    async fn still_admitted(&self) -> bool {
        crate::availability::dashboard_seen(&self.state, self.org, self.user, false).await;
        true
    }

    async fn replay(&self, after: Option<EventId>) -> anyhow::Result<Vec<Event>> {
        // A dashboard that never connected starts live; one that reconnects catches up.
        match after {
            Some(after) => Ok(self
                .state
                .store
                .events_since(self.org, Some(after), REPLAY_BATCH)
                .await?),
            None => Ok(Vec::new()),
        }
    }

    fn render(&self, live: &Live) -> Option<Value> {
        match live {
            Live::Event(event)
                if event.org_id == Some(self.org) && for_this_member(event, self.user) =>
            {
                agent_frame(event)
            }
            Live::Typing {
                org,
                conversation,
                by: Typist::Contact,
                typing,
            } if *org == self.org => {
                Some(json!({ "type": "typing", "conversation_id": conversation, "typing": typing }))
            }
            _ => None,
        }
    }

    async fn on_client(&mut self, frame: &str) {
        if let Ok(ClientFrame::Viewing { conversation_id }) = serde_json::from_str(frame) {
            // Another organization's id is simply nothing on screen.
            let shown = match conversation_id {
                Some(id) => self
                    .state
                    .store
                    .get_conversation(self.org, id)
                    .await
                    .ok()
                    .map(|c| c.id),
                None => None,
            };
            if let Err(err) = self
                .state
                .store
                .set_viewing(self.org, self.user, shown)
                .await
            {
                tracing::warn!(error = %err, "recording the conversation on screen failed");
            }
            return;
        }
        if let Ok(ClientFrame::Typing {
            conversation_id,
            typing,
        }) = serde_json::from_str(frame)
        {
            // Only for a conversation of this organization.
            if self
                .state
                .store
                .get_conversation(self.org, conversation_id)
                .await
                .is_ok()
            {
                self.state.hub.publish(Live::Typing {
                    org: self.org,
                    conversation: conversation_id,
                    by: Typist::Agent {
                        name: self.name.clone(),
                    },
                    typing,
                });
            }
        }
    }
}
