//! The event log: a row for every state change others must hear about, written in the
//! same transaction as the change (transactional outbox), so no reaction is ever missed.

use chrono::{DateTime, Utc};
use kaltalk_core::event::{EventPayload, EventPayloadError};
use kaltalk_core::{ConversationId, EventId, OrgId};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Store, StoreError, on_db};

/// An event to append: its kind is its payload's.
pub struct NewEvent {
    pub org_id: Option<OrgId>,
    pub subject_id: Option<Uuid>,
    pub conversation_id: Option<ConversationId>,
    pub payload: EventPayload,
}

impl NewEvent {
    /// An event about `subject` of `org` (none for a person's own account), e.g.
    /// `NewEvent::new(Some(org), contact.as_uuid(), ContactCreated {})`.
    pub fn new(
        org_id: Option<OrgId>,
        subject_id: impl Into<Option<Uuid>>,
        payload: impl Into<EventPayload>,
    ) -> Self {
        Self {
            org_id,
            subject_id: subject_id.into(),
            conversation_id: None,
            payload: payload.into(),
        }
    }

    /// Marks the event as being about a conversation, so that conversation's widget
    /// receives it.
    pub fn in_conversation(mut self, conversation: ConversationId) -> Self {
        self.conversation_id = Some(conversation);
        self
    }
}

/// A stored event. `kind` and `payload` are the stored columns; read them typed with
/// [`Event::payload`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: EventId,
    pub org_id: Option<OrgId>,
    pub kind: String,
    pub subject_id: Option<Uuid>,
    pub conversation_id: Option<ConversationId>,
    pub payload: Json<Value>,
    pub created_at: DateTime<Utc>,
}

impl Event {
    /// The payload as its kind's type. An error names a kind this build does not know
    /// or a payload that does not fit it: readers skip such an event and log it.
    pub fn payload(&self) -> Result<EventPayload, EventPayloadError> {
        EventPayload::from_parts(&self.kind, self.payload.0.clone())
    }
}

/// Appends `$event` inside the open transaction `$tx`; evaluates to a `Result` with the
/// stored `Event`, for the caller to publish once the transaction commits.
macro_rules! append_event {
    ($tx:expr, $event:expr, $now:expr) => {{
        let event: $crate::events::NewEvent = $event;
        let stored = $crate::events::Event {
            id: kaltalk_core::EventId::new(),
            org_id: event.org_id,
            kind: event.payload.kind().to_owned(),
            subject_id: event.subject_id,
            conversation_id: event.conversation_id,
            payload: sqlx::types::Json(event.payload.to_json()),
            created_at: $now,
        };
        sqlx::query(
            "INSERT INTO events (id, org_id, kind, subject_id, conversation_id, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(stored.id)
        .bind(stored.org_id)
        .bind(&stored.kind)
        .bind(stored.subject_id)
        .bind(stored.conversation_id)
        .bind(&stored.payload)
        .bind($now)
        .execute(&mut *$tx)
        .await
        .map(|_| stored)
    }};
}
pub(crate) use append_event;

impl Store {
    /// Events of an organization after `after` (exclusive), oldest first. Ids are UUIDv7,
    /// so id order is commit order closely enough for a reader resuming where it stopped.
    pub async fn events_since(
        &self,
        org_id: OrgId,
        after: Option<EventId>,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let after = after.map(|id| id.as_uuid()).unwrap_or(Uuid::nil());
        let events = on_db!(self, pool => sqlx::query_as::<_, Event>(
            "SELECT id, org_id, kind, subject_id, conversation_id, payload, created_at FROM events \
             WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(org_id)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(events)
    }

    /// Events of one conversation after `after` (exclusive), oldest first.
    pub async fn conversation_events_since(
        &self,
        conversation: ConversationId,
        after: Option<EventId>,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let after = after.map(|id| id.as_uuid()).unwrap_or(Uuid::nil());
        let events = on_db!(self, pool => sqlx::query_as::<_, Event>(
            "SELECT id, org_id, kind, subject_id, conversation_id, payload, created_at FROM events \
             WHERE conversation_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(conversation)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(events)
    }

    /// What happened to one conversation of `org` (its `conversation.updated` events:
    /// status, assignee, who handles it), oldest first, at most `limit`: the compact lines
    /// of the conversation's timeline.
    pub async fn conversation_history(
        &self,
        org: OrgId,
        conversation: ConversationId,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let events = on_db!(self, pool => sqlx::query_as::<_, Event>(
            "SELECT id, org_id, kind, subject_id, conversation_id, payload, created_at FROM events \
             WHERE conversation_id = $1 AND org_id = $2 AND kind = $3 ORDER BY id LIMIT $4",
        )
        .bind(conversation)
        .bind(org)
        .bind(kaltalk_core::event::CONVERSATION_UPDATED)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(events)
    }
}

/// What a change wrote, and the events to publish.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    pub events: Vec<Event>,
}
