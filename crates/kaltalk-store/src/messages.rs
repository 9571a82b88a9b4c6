//! Messages and their files: the one insert every writer uses, an agent's reply or note,
//! and reading a conversation's messages back.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{Handling, MessageKind, SenderKind};
use kaltalk_core::event::{
    AttachmentPayload, ConversationMentioned, ConversationUpdated, MessagePayload,
};
use kaltalk_core::{AttachmentId, ConversationId, MessageId, MessageText, OrgId, UserId};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::types::Json;

use crate::conversations::fetch_conversation;
use crate::events::{NewEvent, Written, append_event};
use crate::mentions::resolve_mentions;
use crate::{BeginWrite, Store, StoreError, on_db};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Message {
    pub id: MessageId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub conversation_id: ConversationId,
    #[sqlx(try_from = "String")]
    #[serde(rename = "sender")]
    pub sender_kind: SenderKind,
    #[serde(skip)]
    pub sender_id: Option<uuid::Uuid>,
    pub sender_name: Option<String>,
    #[sqlx(try_from = "String")]
    pub kind: MessageKind,
    pub text: String,
    pub client_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Extra facts (a bot answer's citations), or null.
    pub metadata: Option<Json<Value>>,
    #[sqlx(skip)]
    #[serde(skip)]
    pub attachments: Vec<Attachment>,
}

/// A file on a message. Its bytes are in blob storage under `storage_key`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attachment {
    pub id: AttachmentId,
    pub org_id: OrgId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub storage_key: String,
    pub access_token: String,
    pub created_at: DateTime<Utc>,
}

impl Attachment {
    /// The widget's URL for the file: the token makes it unguessable, so an `<img>` on the
    /// customer's page can load it without a header.
    pub fn widget_url(&self) -> String {
        format!("/widget/v1/attachments/{}?t={}", self.id, self.access_token)
    }

    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

/// A file to attach, already stored under `storage_key`.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub id: AttachmentId,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub storage_key: String,
    pub access_token: String,
}

impl Message {
    /// A field of the message's email facts (`metadata.email`): `delivery` and `error` of
    /// a reply, `subject` of a received email.
    pub fn email_fact(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.0.get("email")?.get(key)?.as_str()
    }

    /// How an emailed reply's delivery reads in the inbox.
    pub fn email_delivery_label(&self) -> &'static str {
        match self.email_fact("delivery") {
            Some("sent") => "emailed",
            Some("failed") => "not sent",
            Some("outbox") => "kept in the outbox: no relay configured",
            _ => "sending…",
        }
    }

    /// The CC and BCC an agent chose for this emailed reply (none when not chosen).
    pub fn email_recipients(&self) -> EmailRecipients {
        self.metadata
            .as_ref()
            .and_then(|m| m.0.get("email_recipients"))
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default()
    }

    /// Whether the server wrote it by itself (the out-of-office reply), not the bot or a
    /// person answering.
    pub fn is_automatic(&self) -> bool {
        self.metadata
            .as_ref()
            .is_some_and(|m| m.0.get("automatic").is_some())
    }

    /// Whether the message came or left by email.
    pub fn is_email(&self) -> bool {
        self.metadata
            .as_ref()
            .is_some_and(|m| m.0.get("email").is_some())
    }

    /// The message as the widget, the inbox, the API and webhooks show it (the
    /// `message.created` payload).
    pub fn to_payload(&self) -> MessagePayload {
        MessagePayload {
            id: self.id,
            conversation_id: self.conversation_id,
            sender: self.sender_kind,
            sender_name: self.sender_name.clone(),
            kind: self.kind,
            text: self.text.clone(),
            client_id: self.client_id.clone(),
            created_at: self.created_at,
            metadata: self.metadata.as_ref().map(|m| m.0.clone()),
            attachments: self
                .attachments
                .iter()
                .map(|a| AttachmentPayload {
                    id: a.id,
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: a.size,
                    url: a.widget_url(),
                })
                .collect(),
        }
    }

    /// [`Message::to_payload`] as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.to_payload()).unwrap_or(Value::Null)
    }
}

/// A team member's message.
#[derive(Debug, Clone, Copy)]
pub struct AgentWrite<'a> {
    pub agent: UserId,
    pub kind: MessageKind,
    pub text: &'a MessageText,
    pub client_id: Option<&'a str>,
    pub attachments: &'a [NewAttachment],
    /// Who else an emailed reply goes to (email conversations only).
    pub email: Option<&'a EmailRecipients>,
    /// A note's teammates as picked from the composer's `@` list. Only a hint: who is
    /// mentioned is read from the text against the current members (see `mentions`).
    pub mentions: &'a [UserId],
}

/// The CC and BCC addresses an agent chose for an emailed reply, validated by the caller.
/// Kept with the message (`metadata.email_recipients`, apart from the delivery state in
/// `metadata.email`, which each send attempt rewrites), so a retry sends to the same people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EmailRecipients {
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
}

impl EmailRecipients {
    pub fn is_empty(&self) -> bool {
        self.cc.is_empty() && self.bcc.is_empty()
    }
}

pub(crate) const ATTACHMENT_COLUMNS: &str = "id, org_id, conversation_id, message_id, filename, content_type, size, storage_key, access_token, created_at";

pub(crate) const MESSAGE_SELECT: &str = "SELECT m.id, m.org_id, m.conversation_id, m.sender_kind, m.sender_id, \
     COALESCE(u.name, ct.name) AS sender_name, m.kind, m.text, m.client_id, m.created_at, m.metadata \
     FROM messages m \
     LEFT JOIN users u ON m.sender_kind = 'agent' AND u.id = m.sender_id \
     LEFT JOIN contacts ct ON m.sender_kind = 'contact' AND ct.id = m.sender_id";

/// Loads one message (with its sender's name and files) inside a transaction.
macro_rules! fetch_message {
    ($tx:expr, $id:expr) => {{
        let sql = format!("{} WHERE m.id = $1", $crate::messages::MESSAGE_SELECT);
        let message = sqlx::query_as::<_, $crate::messages::Message>(sqlx::AssertSqlSafe(sql))
            .bind($id)
            .fetch_one(&mut *$tx)
            .await;
        match message {
            Ok(mut message) => {
                let sql = format!(
                    "SELECT {} FROM attachments WHERE message_id = $1 ORDER BY id",
                    $crate::messages::ATTACHMENT_COLUMNS
                );
                sqlx::query_as::<_, $crate::messages::Attachment>(sqlx::AssertSqlSafe(sql))
                    .bind(message.id)
                    .fetch_all(&mut *$tx)
                    .await
                    .map(|attachments| {
                        message.attachments = attachments;
                        message
                    })
            }
            Err(err) => Err(err),
        }
    }};
}

/// A message about to be written.
pub(crate) struct MessageDraft<'a> {
    pub(crate) sender_kind: SenderKind,
    pub(crate) sender_id: Option<uuid::Uuid>,
    pub(crate) kind: MessageKind,
    pub(crate) text: &'a str,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) attachments: &'a [NewAttachment],
    pub(crate) metadata: Option<Value>,
}

pub(crate) use fetch_message;

/// Inserts a message (with its attachments) and its `message.created` event, bumps the
/// conversation; evaluates to `(Message, Event)`.
macro_rules! insert_message {
    ($tx:expr, $org:expr, $conversation:expr, $draft:expr, $now:expr) => {{
        let draft: $crate::messages::MessageDraft<'_> = $draft;
        let id = kaltalk_core::MessageId::new();
        sqlx::query(
            "INSERT INTO messages (id, org_id, conversation_id, sender_kind, sender_id, kind, text, client_id, created_at, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind($org)
        .bind($conversation)
        .bind(draft.sender_kind.as_str())
        .bind(draft.sender_id)
        .bind(draft.kind.as_str())
        .bind(draft.text)
        .bind(draft.client_id)
        .bind($now)
        .bind(draft.metadata.as_ref().map(sqlx::types::Json))
        .execute(&mut *$tx)
        .await?;
        // A person's or the bot's answer on an email conversation also leaves by email.
        if draft.kind == kaltalk_core::chat::MessageKind::Text
            && matches!(draft.sender_kind, kaltalk_core::chat::SenderKind::Agent | kaltalk_core::chat::SenderKind::Bot)
        {
            if let Some(metadata) = $crate::email::queue_email_reply!($tx, $org, $conversation, id, draft.metadata, $now) {
                sqlx::query("UPDATE messages SET metadata = $2 WHERE id = $1")
                    .bind(id)
                    .bind(sqlx::types::Json(metadata))
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        for attachment in draft.attachments {
            sqlx::query(
                "INSERT INTO attachments (id, org_id, conversation_id, message_id, filename, content_type, size, storage_key, access_token, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(attachment.id)
            .bind($org)
            .bind($conversation)
            .bind(id)
            .bind(&attachment.filename)
            .bind(&attachment.content_type)
            .bind(attachment.size)
            .bind(&attachment.storage_key)
            .bind(&attachment.access_token)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
        // What the customer sees starts their wait for a reply, or answers it.
        if draft.kind == kaltalk_core::chat::MessageKind::Text {
            match draft.sender_kind {
                kaltalk_core::chat::SenderKind::Contact => $crate::waiting::start_wait!($tx, $conversation, $now),
                kaltalk_core::chat::SenderKind::Agent => $crate::waiting::end_wait!($tx, $conversation, false),
                kaltalk_core::chat::SenderKind::Bot => $crate::waiting::end_wait!($tx, $conversation, true),
                kaltalk_core::chat::SenderKind::System => {}
            }
        }
        // The list shows the last message and counts what no agent has seen yet.
        if draft.kind != kaltalk_core::chat::MessageKind::Note {
            sqlx::query(
                "UPDATE conversations SET last_message_at = $2, updated_at = $2, last_message_text = $3, \
                 unread_count = unread_count + CASE WHEN $4 THEN 1 ELSE 0 END WHERE id = $1",
            )
            .bind($conversation)
            .bind($now)
            .bind(draft.text)
            .bind(draft.sender_kind == kaltalk_core::chat::SenderKind::Contact)
            .execute(&mut *$tx)
            .await?;
        }
        // Read back for the sender's name and the stored timestamps; the files are the
        // ones just written, so they are read only when there are some.
        let message = if draft.attachments.is_empty() {
            let sql = format!("{} WHERE m.id = $1", $crate::messages::MESSAGE_SELECT);
            sqlx::query_as::<_, $crate::messages::Message>(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(&mut *$tx)
                .await?
        } else {
            $crate::messages::fetch_message!($tx, id)?
        };
        let event = $crate::events::append_event!(
            $tx,
            $crate::events::NewEvent::new(Some($org), id.as_uuid(), kaltalk_core::event::MessageCreated { message: message.to_payload() })
                .in_conversation($conversation),
            $now
        )?;
        (message, event)
    }};
}

pub(crate) use insert_message;

impl Store {
    /// An agent's reply (`Text`) or private note (`Note`). A reply to an unassigned
    /// conversation assigns it to the agent, as a team moving from Chatwoot expects.
    /// A note's `@Name` mentions of members are kept as `metadata.mentions` (user ids),
    /// with a `conversation.mentioned` event for each person but the writer.
    pub async fn agent_writes(
        &self,
        org: OrgId,
        conversation: ConversationId,
        write: AgentWrite<'_>,
        now: DateTime<Utc>,
    ) -> Result<Written<Message>, StoreError> {
        let AgentWrite {
            agent,
            kind,
            text,
            client_id,
            attachments,
            email,
            mentions: picked,
        } = write;
        let email_metadata = email
            .filter(|r| kind == MessageKind::Text && !r.is_empty())
            .map(|r| json!({ "email_recipients": r }));
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let current = fetch_conversation!(tx, org, conversation)?.ok_or(StoreError::NotFound)?;
            if let Some(client_id) = client_id {
                let repeated: Option<(MessageId,)> = sqlx::query_as("SELECT id FROM messages WHERE conversation_id = $1 AND client_id = $2")
                    .bind(conversation)
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((id,)) = repeated {
                    let message = fetch_message!(tx, id)?;
                    return Ok(Written { value: message, events: Vec::new() });
                }
            }
            let mut events = Vec::new();
            // A reply goes to the customer: only a note mentions teammates.
            let mentioned = if kind == MessageKind::Note {
                resolve_mentions!(tx, org, text.as_str(), picked)
            } else {
                Vec::new()
            };
            let metadata = if mentioned.is_empty() {
                email_metadata.clone()
            } else {
                Some(json!({ "mentions": mentioned }))
            };
            let draft = MessageDraft { sender_kind: SenderKind::Agent, sender_id: Some(agent.as_uuid()), kind, text: text.as_str(), client_id, attachments, metadata };
            let (message, event) = insert_message!(tx, org, conversation, draft, now);
            events.push(event);
            // The writer knows what they wrote: nobody tells them.
            for user_id in mentioned.into_iter().filter(|u| *u != agent) {
                let mention = ConversationMentioned { conversation_id: conversation, message_id: message.id, user_id, by: agent };
                events.push(append_event!(tx, NewEvent::new(Some(org), conversation.as_uuid(), mention), now)?);
            }
            // Once a person replies, the bot is silent here until an agent hands it back.
            if kind == MessageKind::Text && current.handling != Handling::Human {
                sqlx::query("UPDATE conversations SET handling = 'human', updated_at = $2 WHERE id = $1")
                    .bind(conversation)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), conversation.as_uuid(), ConversationUpdated::handling(Handling::Human))
                        .in_conversation(conversation),
                    now
                )?);
            }
            sqlx::query("UPDATE conversations SET agent_last_seen_at = $2, unread_count = 0 WHERE id = $1")
                .bind(conversation)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if kind == MessageKind::Text && current.assignee_id.is_none() {
                sqlx::query("UPDATE conversations SET assignee_id = $2, queued_at = NULL, updated_at = $3 WHERE id = $1")
                    .bind(conversation)
                    .bind(agent)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), conversation.as_uuid(), ConversationUpdated::assignee(Some(agent), Some(agent)))
                        .in_conversation(conversation),
                    now
                )?);
            }
            tx.commit().await?;
            Ok(Written { value: message, events })
        })
    }

    /// A conversation's messages, oldest first; notes only for the team.
    pub async fn list_messages(
        &self,
        org: OrgId,
        conversation: ConversationId,
        include_notes: bool,
    ) -> Result<Vec<Message>, StoreError> {
        let notes = if include_notes {
            ""
        } else {
            " AND m.kind <> 'note'"
        };
        let sql = format!(
            "{MESSAGE_SELECT} WHERE m.org_id = $1 AND m.conversation_id = $2{notes} ORDER BY m.id"
        );
        let mut messages = on_db!(self, pool => sqlx::query_as::<_, Message>(sqlx::AssertSqlSafe(sql)).bind(org).bind(conversation).fetch_all(pool).await)?;
        let sql = format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE org_id = $1 AND conversation_id = $2 ORDER BY id"
        );
        let attachments = on_db!(self, pool => sqlx::query_as::<_, Attachment>(sqlx::AssertSqlSafe(sql)).bind(org).bind(conversation).fetch_all(pool).await)?;
        for attachment in attachments {
            if let Some(message) = messages.iter_mut().find(|m| m.id == attachment.message_id) {
                message.attachments.push(attachment);
            }
        }
        Ok(messages)
    }

    /// An attachment, for a team member of its organization.
    pub async fn get_attachment(
        &self,
        org: OrgId,
        id: AttachmentId,
    ) -> Result<Attachment, StoreError> {
        let sql =
            format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE org_id = $1 AND id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Attachment>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_one(pool).await)?,
        )
    }

    /// An attachment, for whoever holds its widget URL (id and access token).
    pub async fn get_attachment_by_token(
        &self,
        id: AttachmentId,
        access_token: &str,
    ) -> Result<Attachment, StoreError> {
        let sql = format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = $1 AND access_token = $2"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Attachment>(sqlx::AssertSqlSafe(sql)).bind(id).bind(access_token).fetch_one(pool).await)?,
        )
    }
}
