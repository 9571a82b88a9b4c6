//! Live chat: inboxes, contacts, widget visitor sessions, conversations and messages.
//! Every change writes its event in the same transaction and returns the events, for the
//! caller to publish to connected sockets once committed.

use chrono::{DateTime, Duration, Utc};
use kaltalk_core::chat::{
    ConversationStatus, EmailSettings, Handling, InboxKind, MessageKind, SenderKind,
    VisitorDetails, WidgetSettings,
};
use kaltalk_core::hours::InboxHours;
use kaltalk_core::{
    AttachmentId, ContactId, ConversationId, InboxId, MessageId, MessageText, OrgId, UserId,
    VisitorSessionId,
};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::types::Json;

use kaltalk_core::event::{
    AttachmentPayload, ContactUpdated, ConversationMentioned, ConversationSeen,
    ConversationUpdated, InboxCreated, InboxUpdated, MessagePayload, Seer,
};

use crate::events::{Event, NewEvent, append_event};
use crate::mentions::resolve_mentions;
use crate::{BeginWrite, Store, StoreError, on_db};

/// A widget visitor token stops working after this long without activity (privacy
/// policy, section 7).
pub const VISITOR_IDLE_LIMIT: Duration = Duration::days(30);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Inbox {
    pub id: InboxId,
    pub org_id: OrgId,
    #[sqlx(try_from = "String")]
    pub kind: InboxKind,
    pub name: String,
    pub public_token: String,
    pub identity_secret: String,
    pub settings: Json<WidgetSettings>,
    pub created_at: DateTime<Utc>,
    /// An email inbox's support address, lower-cased.
    pub email_address: Option<String>,
    pub email_settings: Option<Json<EmailSettings>>,
    /// Its business hours and out-of-office reply; `None`: never set, always open.
    pub business_hours: Option<Json<InboxHours>>,
}

impl Inbox {
    /// An email inbox's settings (defaults for other kinds).
    pub fn email(&self) -> EmailSettings {
        self.email_settings
            .as_ref()
            .map(|s| s.0.clone())
            .unwrap_or_default()
    }

    /// Its business hours, when set (they may be switched off: see [`InboxHours::enabled`]).
    pub fn hours(&self) -> Option<&InboxHours> {
        self.business_hours.as_ref().map(|h| &h.0)
    }
}

/// The settings an inbox update replaces, by kind.
#[derive(Debug, Clone, Copy)]
pub enum InboxSettings<'a> {
    Widget(&'a WidgetSettings),
    Email(&'a EmailSettings),
}

pub struct NewInbox {
    pub org_id: OrgId,
    pub kind: InboxKind,
    pub name: String,
    pub public_token: String,
    pub identity_secret: String,
    pub settings: WidgetSettings,
    /// For an email inbox: its address and settings.
    pub email: Option<(String, EmailSettings)>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Contact {
    pub id: ContactId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// As the team typed it (the Contacts section); no channel sets it yet.
    pub phone: Option<String>,
    pub details: Json<VisitorDetails>,
    pub attributes: Json<Value>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VisitorSession {
    pub id: VisitorSessionId,
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub contact_id: Option<ContactId>,
    pub conversation_id: Option<ConversationId>,
    pub context: Json<VisitorDetails>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The verified user id of the session's contact: a session that belongs to one
    /// signed-in user is never handed to another.
    pub contact_external_id: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub contact_id: ContactId,
    #[sqlx(try_from = "String")]
    pub status: ConversationStatus,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub assignee_id: Option<UserId>,
    pub last_message_at: DateTime<Utc>,
    pub agent_last_seen_at: Option<DateTime<Utc>>,
    pub contact_last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    pub handling: Handling,
    pub bot_turns: i32,
    /// An email conversation's subject (the first email's).
    pub subject: Option<String>,
}

/// The number of conversations in each inbox view.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct ViewCounts {
    pub mine: i64,
    pub unassigned: i64,
    pub all_conversations: i64,
}

/// A conversation as a list shows it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ConversationSummary {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub conversation: Conversation,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub last_message: Option<String>,
    /// Customer messages since an agent last looked.
    pub unread: i64,
}

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

/// Who the visitor says they are, after the server checked it (identity verification).
#[derive(Debug, Clone, Default)]
pub struct ContactFields {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub attributes: Option<Value>,
}

/// The session a visitor's message arrives on.
#[derive(Clone, Copy)]
pub enum SessionChoice<'a> {
    Existing(&'a VisitorSession),
    New { token_hash: &'a str },
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

/// What a change wrote, and the events to publish.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    pub events: Vec<Event>,
}

/// Filters for the conversation list.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub status: Option<ConversationStatus>,
    pub inbox: Option<InboxId>,
    pub assignee: AssigneeFilter,
    /// Only conversations with this label.
    pub label: Option<String>,
    /// Only conversations whose contact has this custom attribute value.
    pub attribute: Option<crate::contacts::AttributeMatch>,
    /// Only conversations that sort after this one (the next page), by `order`'s time.
    pub before: Option<(DateTime<Utc>, ConversationId)>,
    pub limit: i64,
    pub order: ConversationOrder,
}

/// How the conversation list is sorted, newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConversationOrder {
    /// By the last message: what the inbox shows.
    #[default]
    LastActivity,
    /// By creation: a conversation never moves, so paging through is stable even while
    /// customers write (the API's order).
    Created,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Unassigned,
    User(UserId),
}

pub(crate) const INBOX_COLUMNS: &str = "id, org_id, kind, name, public_token, identity_secret, settings, created_at, email_address, email_settings, business_hours";
pub(crate) const CONTACT_COLUMNS: &str = "id, org_id, external_id, name, email, phone, details, attributes, first_seen_at, last_seen_at, created_at";
/// A session with its contact's verified id, from `visitor_sessions s`.
const SESSION_SELECT: &str = "SELECT s.id, s.org_id, s.inbox_id, s.contact_id, s.conversation_id, s.context, \
     s.first_seen_at, s.last_seen_at, ct.external_id AS contact_external_id \
     FROM visitor_sessions s LEFT JOIN contacts ct ON ct.id = s.contact_id";
pub(crate) const CONVERSATION_COLUMNS: &str = "c.id, c.org_id, c.inbox_id, c.contact_id, c.status, c.snoozed_until, c.assignee_id, \
     c.last_message_at, c.agent_last_seen_at, c.contact_last_seen_at, c.created_at, c.handling, c.bot_turns, c.subject";
/// A conversation with what its list entry shows (contact, last message, unread count).
pub(crate) const SUMMARY_SELECT: &str = "SELECT c.id, c.org_id, c.inbox_id, c.contact_id, c.status, c.snoozed_until, c.assignee_id, \
     c.last_message_at, c.agent_last_seen_at, c.contact_last_seen_at, c.created_at, c.handling, c.bot_turns, c.subject, \
     ct.name AS contact_name, ct.email AS contact_email, \
     (SELECT m.text FROM messages m WHERE m.conversation_id = c.id AND m.kind <> 'note' ORDER BY m.id DESC LIMIT 1) AS last_message, \
     (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.sender_kind = 'contact' \
        AND (c.agent_last_seen_at IS NULL OR m.created_at > c.agent_last_seen_at)) AS unread \
     FROM conversations c JOIN contacts ct ON ct.id = c.contact_id";
pub(crate) const ATTACHMENT_COLUMNS: &str = "id, org_id, conversation_id, message_id, filename, content_type, size, storage_key, access_token, created_at";
pub(crate) const MESSAGE_SELECT: &str = "SELECT m.id, m.org_id, m.conversation_id, m.sender_kind, m.sender_id, \
     COALESCE(u.name, ct.name) AS sender_name, m.kind, m.text, m.client_id, m.created_at, m.metadata \
     FROM messages m \
     LEFT JOIN users u ON m.sender_kind = 'agent' AND u.id = m.sender_id \
     LEFT JOIN contacts ct ON m.sender_kind = 'contact' AND ct.id = m.sender_id";

/// A contact's identity fields inside a transaction, to tell whether a write changed them
/// (a `contact.updated` event is written only for a real change).
macro_rules! contact_identity {
    ($tx:expr, $id:expr) => {
        sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>, Json<Value>)>(
            "SELECT external_id, name, email, attributes FROM contacts WHERE id = $1",
        )
        .bind($id)
        .fetch_one(&mut *$tx)
        .await
        .map(|(external_id, name, email, attributes)| (external_id, name, email, attributes.0))
    };
}
pub(crate) use contact_identity;

/// Loads one message (with its sender's name and files) inside a transaction.
macro_rules! fetch_message {
    ($tx:expr, $id:expr) => {{
        let sql = format!("{} WHERE m.id = $1", $crate::chat::MESSAGE_SELECT);
        let message = sqlx::query_as::<_, $crate::chat::Message>(sqlx::AssertSqlSafe(sql))
            .bind($id)
            .fetch_one(&mut *$tx)
            .await;
        match message {
            Ok(mut message) => {
                let sql = format!(
                    "SELECT {} FROM attachments WHERE message_id = $1 ORDER BY id",
                    $crate::chat::ATTACHMENT_COLUMNS
                );
                sqlx::query_as::<_, $crate::chat::Attachment>(sqlx::AssertSqlSafe(sql))
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

macro_rules! fetch_conversation {
    ($tx:expr, $org:expr, $id:expr) => {{
        let sql = format!(
            "SELECT {} FROM conversations c WHERE c.org_id = $1 AND c.id = $2",
            $crate::chat::CONVERSATION_COLUMNS
        );
        sqlx::query_as::<_, $crate::chat::Conversation>(sqlx::AssertSqlSafe(sql))
            .bind($org)
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await
    }};
}
pub(crate) use fetch_conversation;

/// Reopens a resolved or snoozed conversation because the customer wrote; evaluates to
/// the `conversation.updated` event.
macro_rules! reopen_conversation {
    ($tx:expr, $org:expr, $conversation:expr, $now:expr) => {{
        let conversation: kaltalk_core::ConversationId = $conversation;
        match sqlx::query("UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = $2 WHERE id = $1")
            .bind(conversation)
            .bind($now)
            .execute(&mut *$tx)
            .await
        {
            Ok(_) => $crate::events::append_event!(
                $tx,
                $crate::events::NewEvent::new(Some($org), conversation.as_uuid(), kaltalk_core::event::ConversationUpdated::reopened())
                    .in_conversation(conversation),
                $now
            ),
            Err(err) => Err(err),
        }
    }};
}
pub(crate) use reopen_conversation;

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

/// Inserts a message (with its attachments) and its `message.created` event, bumps the
/// conversation; evaluates to `(Message, Event)`.
pub(crate) use fetch_message;

macro_rules! insert_message {
    ($tx:expr, $org:expr, $conversation:expr, $draft:expr, $now:expr) => {{
        let draft: $crate::chat::MessageDraft<'_> = $draft;
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
        if draft.kind != kaltalk_core::chat::MessageKind::Note {
            sqlx::query("UPDATE conversations SET last_message_at = $2, updated_at = $2 WHERE id = $1")
                .bind($conversation)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
        }
        // Read back for the sender's name and the stored timestamps; the files are the
        // ones just written, so they are read only when there are some.
        let message = if draft.attachments.is_empty() {
            let sql = format!("{} WHERE m.id = $1", $crate::chat::MESSAGE_SELECT);
            sqlx::query_as::<_, $crate::chat::Message>(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(&mut *$tx)
                .await?
        } else {
            $crate::chat::fetch_message!($tx, id)?
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
    // ---- inboxes ---------------------------------------------------------------------------

    pub async fn create_inbox(
        &self,
        inbox: &NewInbox,
        now: DateTime<Utc>,
    ) -> Result<Inbox, StoreError> {
        let id = InboxId::new();
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO inboxes (id, org_id, kind, name, public_token, identity_secret, settings, created_at, updated_at, email_address, email_settings) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
            )
            .bind(id)
            .bind(inbox.org_id)
            .bind(inbox.kind.as_str())
            .bind(&inbox.name)
            .bind(&inbox.public_token)
            .bind(&inbox.identity_secret)
            .bind(Json(&inbox.settings))
            .bind(now)
            .bind(inbox.email.as_ref().map(|(address, _)| address.to_lowercase()))
            .bind(inbox.email.as_ref().map(|(_, settings)| Json(settings)))
            .execute(&mut *tx)
            .await?;
            append_event!(tx, NewEvent::new(Some(inbox.org_id), id.as_uuid(), InboxCreated { kind: inbox.kind }), now)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        self.get_inbox(inbox.org_id, id).await
    }

    pub async fn list_inboxes(&self, org: OrgId) -> Result<Vec<Inbox>, StoreError> {
        let sql =
            format!("SELECT {INBOX_COLUMNS} FROM inboxes WHERE org_id = $1 ORDER BY name, id");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Inbox>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn get_inbox(&self, org: OrgId, id: InboxId) -> Result<Inbox, StoreError> {
        let sql = format!("SELECT {INBOX_COLUMNS} FROM inboxes WHERE org_id = $1 AND id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Inbox>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_one(pool).await)?,
        )
    }

    /// The web inbox behind a widget embed token.
    pub async fn find_inbox_by_token(
        &self,
        public_token: &str,
    ) -> Result<Option<Inbox>, StoreError> {
        let sql = format!("SELECT {INBOX_COLUMNS} FROM inboxes WHERE public_token = $1");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Inbox>(sqlx::AssertSqlSafe(sql)).bind(public_token).fetch_optional(pool).await)?,
        )
    }

    /// Renames an inbox and replaces its settings (a web inbox's widget, an email
    /// inbox's mailbox and AI switch); settings of the other kind are refused as NotFound.
    pub async fn update_inbox(
        &self,
        org: OrgId,
        id: InboxId,
        name: &str,
        settings: InboxSettings<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (sql, kind, value) = match settings {
            InboxSettings::Widget(widget) => (
                "UPDATE inboxes SET name = $3, settings = $4, updated_at = $5 WHERE org_id = $1 AND id = $2 AND kind <> $6",
                InboxKind::Email,
                serde_json::to_value(widget),
            ),
            InboxSettings::Email(email) => (
                "UPDATE inboxes SET name = $3, email_settings = $4, updated_at = $5 WHERE org_id = $1 AND id = $2 AND kind = $6",
                InboxKind::Email,
                serde_json::to_value(email),
            ),
        };
        let value = value.map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(sql)
                .bind(org)
                .bind(id)
                .bind(name)
                .bind(Json(&value))
                .bind(now)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), InboxUpdated::default()), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    // ---- visitors ----------------------------------------------------------------------------

    /// The visitor session with this token, unless it has been idle for 30 days.
    pub async fn find_visitor_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<VisitorSession>, StoreError> {
        let sql = format!("{SESSION_SELECT} WHERE s.token_hash = $1 AND s.last_seen_at > $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, VisitorSession>(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now - VISITOR_IDLE_LIMIT)
            .fetch_optional(pool)
            .await)?,
        )
    }

    /// Records activity (and the page the visitor is on) on a session.
    pub async fn touch_visitor_session(
        &self,
        id: VisitorSessionId,
        details: &VisitorDetails,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE visitor_sessions SET context = $2, last_seen_at = $3 WHERE id = $1")
            .bind(id)
            .bind(Json(details))
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks the session active without changing its page context.
    pub async fn touch_visitor_session_seen(
        &self,
        id: VisitorSessionId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE visitor_sessions SET last_seen_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends a visitor session: its token stops working (another user signed in on the
    /// browser, or the widget logged out). The contact and conversations stay.
    pub async fn end_visitor_session(&self, id: VisitorSessionId) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("DELETE FROM visitor_sessions WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The newest event of a conversation, where a widget's live stream starts.
    pub async fn last_conversation_event(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<kaltalk_core::EventId>, StoreError> {
        let row: Option<(kaltalk_core::EventId,)> = on_db!(self, pool => sqlx::query_as(
            "SELECT id FROM events WHERE conversation_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(conversation)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(id,)| id))
    }

    /// Applies verified identity fields to the session's contact; a real change is a
    /// `contact.updated` event. A contact's verified id, once set, is never replaced (the
    /// widget starts a new session for another user).
    pub async fn identify_contact(
        &self,
        session: &VisitorSession,
        fields: &ContactFields,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(contact) = session.contact_id else {
            return Ok(()); // no contact yet: the fields are applied with the first message
        };
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let before = contact_identity!(tx, contact)?;
            sqlx::query(
                "UPDATE contacts SET name = COALESCE($3, name), email = COALESCE($4, email), \
                 attributes = COALESCE($5, attributes), updated_at = $6, \
                 external_id = CASE WHEN external_id IS NOT NULL OR EXISTS (SELECT 1 FROM contacts o WHERE o.org_id = contacts.org_id \
                     AND o.external_id = $2 AND o.id <> contacts.id) THEN external_id ELSE $2 END \
                 WHERE id = $1",
            )
            .bind(contact)
            .bind(&fields.external_id)
            .bind(&fields.name)
            .bind(&fields.email)
            .bind(fields.attributes.as_ref().map(Json))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if contact_identity!(tx, contact)? != before {
                append_event!(tx, NewEvent::new(Some(session.org_id), contact.as_uuid(), ContactUpdated::default()), now)?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    // ---- the team's side ---------------------------------------------------------------------

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
            sqlx::query("UPDATE conversations SET agent_last_seen_at = $2 WHERE id = $1")
                .bind(conversation)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if kind == MessageKind::Text && current.assignee_id.is_none() {
                sqlx::query("UPDATE conversations SET assignee_id = $2, updated_at = $3 WHERE id = $1")
                    .bind(conversation)
                    .bind(agent)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), conversation.as_uuid(), ConversationUpdated::assignee(Some(agent)))
                        .in_conversation(conversation),
                    now
                )?);
            }
            tx.commit().await?;
            Ok(Written { value: message, events })
        })
    }

    pub async fn get_conversation(
        &self,
        org: OrgId,
        id: ConversationId,
    ) -> Result<Conversation, StoreError> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.org_id = $1 AND c.id = $2"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Conversation>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_one(pool).await)?,
        )
    }

    pub async fn get_contact(&self, org: OrgId, id: ContactId) -> Result<Contact, StoreError> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_one(pool).await)?,
        )
    }

    /// Conversations, newest first by `filter.order`.
    pub async fn list_conversations(
        &self,
        org: OrgId,
        filter: &ConversationFilter,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let mut sql = format!("{SUMMARY_SELECT} WHERE c.org_id = $1");
        // Placeholders are fixed; a filter that is off binds NULL and matches everything.
        sql.push_str(" AND ($2 IS NULL OR c.status = $2) AND ($3 IS NULL OR c.inbox_id = $3)");
        sql.push_str(match filter.assignee {
            AssigneeFilter::Anyone => " AND ($4 IS NULL OR $4 IS NULL)",
            AssigneeFilter::Unassigned => " AND ($4 IS NULL AND c.assignee_id IS NULL)",
            AssigneeFilter::User(_) => " AND c.assignee_id = $4",
        });
        let at = match filter.order {
            ConversationOrder::LastActivity => "c.last_message_at",
            ConversationOrder::Created => "c.created_at",
        };
        sql.push_str(&format!(
            " AND ($5 IS NULL OR {at} < $5 OR ({at} = $5 AND c.id < $6))"
        ));
        sql.push_str(" AND ($8 IS NULL OR EXISTS (SELECT 1 FROM conversation_labels l WHERE l.conversation_id = c.id AND l.label = $8))");
        sql.push_str(&format!(
            " AND ($9 IS NULL OR {})",
            crate::contacts::attribute_matches("ct", 9)
        ));
        sql.push_str(&format!(" ORDER BY {at} DESC, c.id DESC LIMIT $7"));
        let assignee = match filter.assignee {
            AssigneeFilter::User(id) => Some(id),
            _ => None,
        };
        let (before_at, before_id) = match filter.before {
            Some((at, id)) => (Some(at), Some(id)),
            None => (None, None),
        };
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, ConversationSummary>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.inbox)
            .bind(assignee)
            .bind(before_at)
            .bind(before_id)
            .bind(filter.limit.clamp(1, 200))
            .bind(filter.label.as_deref())
            .bind(filter.attribute.as_ref().map(|a| a.key.as_str()))
            .bind(filter.attribute.as_ref().map(|a| a.as_text()))
            .bind(filter.attribute.as_ref().and_then(|a| a.as_other()))
            .fetch_all(pool)
            .await)?,
        )
    }

    /// How many conversations of `org` with `status` each inbox view holds: assigned to
    /// `me`, unassigned, and all (the counts beside Mine / Unassigned / All).
    pub async fn view_counts(
        &self,
        org: OrgId,
        me: UserId,
        status: ConversationStatus,
    ) -> Result<ViewCounts, StoreError> {
        let counts: ViewCounts = on_db!(self, pool => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN assignee_id = $2 THEN 1 ELSE 0 END), 0) AS mine, \
                    COALESCE(SUM(CASE WHEN assignee_id IS NULL THEN 1 ELSE 0 END), 0) AS unassigned, \
                    COUNT(*) AS all_conversations \
             FROM conversations WHERE org_id = $1 AND status = $3",
        )
        .bind(org)
        .bind(me)
        .bind(status.as_str())
        .fetch_one(pool)
        .await)?;
        Ok(counts)
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

    /// Sets the status; `snoozed_until` only with `Snoozed`.
    pub async fn set_conversation_status(
        &self,
        org: OrgId,
        id: ConversationId,
        status: ConversationStatus,
        snoozed_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let snoozed_until = snoozed_until.filter(|_| status == ConversationStatus::Snoozed);
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE conversations SET status = $3, snoozed_until = $4, updated_at = $5 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .bind(status.as_str())
                .bind(snoozed_until)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = append_event!(
                tx,
                NewEvent::new(Some(org), id.as_uuid(), ConversationUpdated::status(status, snoozed_until))
                    .in_conversation(id),
                now
            )?;
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// Assigns to a member of the organization (checked by the caller), or unassigns.
    pub async fn assign_conversation(
        &self,
        org: OrgId,
        id: ConversationId,
        assignee: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE conversations SET assignee_id = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .bind(assignee)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = append_event!(
                tx,
                NewEvent::new(Some(org), id.as_uuid(), ConversationUpdated::assignee(assignee)).in_conversation(id),
                now
            )?;
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// An agent opened the conversation: its customer messages count as read, and the
    /// widget learns which of its messages were seen.
    pub async fn agent_saw(
        &self,
        org: OrgId,
        id: ConversationId,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let last: Option<(MessageId,)> = sqlx::query_as(
                "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                 WHERE c.org_id = $1 AND c.id = $2 AND m.sender_kind = 'contact' \
                 AND (c.agent_last_seen_at IS NULL OR m.created_at > c.agent_last_seen_at) ORDER BY m.id DESC LIMIT 1",
            )
            .bind(org)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((message_id,)) = last else {
                return Ok(Written { value: (), events: Vec::new() }); // nothing new to mark
            };
            sqlx::query("UPDATE conversations SET agent_last_seen_at = $3 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let event = append_event!(
                tx,
                NewEvent::new(Some(org), id.as_uuid(), ConversationSeen { by: Seer::Agent, message_id: Some(message_id) }).in_conversation(id),
                now
            )?;
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// The visitor read up to now (the widget was open).
    /// The visitor read up to now (the widget was open). When that covers a team reply
    /// they had not seen yet, the team hears of it (`conversation.seen` by the contact).
    pub async fn contact_saw(
        &self,
        id: ConversationId,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let newest: Option<(MessageId, OrgId)> = sqlx::query_as(
                "SELECT m.id, c.org_id FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                 WHERE c.id = $1 AND m.sender_kind IN ('agent', 'bot') AND m.kind = 'text' \
                 AND (c.contact_last_seen_at IS NULL OR m.created_at > c.contact_last_seen_at) ORDER BY m.id DESC LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query("UPDATE conversations SET contact_last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let mut events = Vec::new();
            if let Some((message_id, org)) = newest {
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), id.as_uuid(), ConversationSeen { by: Seer::Contact, message_id: Some(message_id) }).in_conversation(id),
                    now
                )?);
            }
            tx.commit().await?;
            Ok(Written { value: (), events })
        })
    }
}
