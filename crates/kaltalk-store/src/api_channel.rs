//! Inboxes of kind `api`: an external system writes as the customer (starts
//! conversations, adds their messages); the team's and the bot's replies reach it through
//! webhooks.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{ConversationStatus, Handling, MessageKind, SenderKind, VisitorDetails};
use kaltalk_core::event::{ContactCreated, ConversationCreated};
use kaltalk_core::job::AiTurn;
use kaltalk_core::{ContactId, ConversationId, OrgId};
use serde_json::json;
use sqlx::types::Json;

use crate::chat::{
    CONTACT_COLUMNS, Contact, ContactFields, Conversation, Inbox, Message, MessageDraft,
    NewAttachment, Written, fetch_conversation, insert_message, reopen_conversation,
};
use crate::events::{NewEvent, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

/// Who a new conversation is with.
#[derive(Debug, Clone, Copy)]
pub enum ApiContact<'a> {
    /// A contact of the inbox's organization.
    Id(ContactId),
    /// Found by external id, else by email address; created when neither matches.
    Details(&'a ContactFields),
}

#[derive(Debug)]
pub struct ApiConversation {
    pub conversation: Conversation,
    pub contact: Contact,
    pub message: Message,
}

impl Store {
    /// Starts a conversation in an api inbox with the customer's first message, creating
    /// the contact if needed, all in one transaction. With `bot_first` (the organization's
    /// AI agent is on) the bot takes the first turn, unless the contact opted out of AI.
    pub async fn start_api_conversation(
        &self,
        inbox: &Inbox,
        contact: ApiContact<'_>,
        text: &str,
        bot_first: bool,
        now: DateTime<Utc>,
    ) -> Result<Written<ApiConversation>, StoreError> {
        let org = inbox.org_id;
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut events = Vec::new();
            let by_id = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2");
            let found = match contact {
                ApiContact::Id(id) => Some(
                    sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(by_id.clone()))
                        .bind(org)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound)?,
                ),
                ApiContact::Details(fields) => {
                    let by_external = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND external_id = $2");
                    let by_email = format!(
                        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND LOWER(email) = $2 ORDER BY created_at, id LIMIT 1"
                    );
                    let mut found = None;
                    if let Some(external_id) = &fields.external_id {
                        found = sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(by_external))
                            .bind(org)
                            .bind(external_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    }
                    if found.is_none() && let Some(email) = &fields.email {
                        found = sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(by_email))
                            .bind(org)
                            .bind(email.to_lowercase())
                            .fetch_optional(&mut *tx)
                            .await?;
                    }
                    found
                }
            };
            let contact = match (found, contact) {
                (Some(contact), _) => contact,
                (None, ApiContact::Id(_)) => return Err(StoreError::NotFound),
                (None, ApiContact::Details(fields)) => {
                    let id = ContactId::new();
                    sqlx::query(
                        "INSERT INTO contacts (id, org_id, external_id, name, email, details, attributes, first_seen_at, last_seen_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8, $8)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(&fields.external_id)
                    .bind(&fields.name)
                    .bind(&fields.email)
                    .bind(Json(VisitorDetails::default()))
                    .bind(Json(fields.attributes.clone().unwrap_or_else(|| json!({}))))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    events.push(append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactCreated {}), now)?);
                    sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(by_id))
                        .bind(org)
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?
                }
            };
            let (opted_out,): (bool,) = sqlx::query_as("SELECT ai_opt_out FROM contacts WHERE id = $1")
                .bind(contact.id)
                .fetch_one(&mut *tx)
                .await?;
            let handling = if bot_first && !opted_out { Handling::Bot } else { Handling::Human };
            let id = ConversationId::new();
            sqlx::query(
                "INSERT INTO conversations (id, org_id, inbox_id, contact_id, status, last_message_at, created_at, updated_at, handling) \
                 VALUES ($1, $2, $3, $4, 'open', $5, $5, $5, $6)",
            )
            .bind(id)
            .bind(org)
            .bind(inbox.id)
            .bind(contact.id)
            .bind(now)
            .bind(handling.as_str())
            .execute(&mut *tx)
            .await?;
            events.push(append_event!(
                tx,
                NewEvent::new(Some(org), id.as_uuid(), ConversationCreated { inbox_id: inbox.id, contact_id: contact.id })
                    .in_conversation(id),
                now
            )?);
            let draft = MessageDraft {
                sender_kind: SenderKind::Contact,
                sender_id: Some(contact.id.as_uuid()),
                kind: MessageKind::Text,
                text,
                client_id: None,
                attachments: &[],
                metadata: None,
            };
            let (message, event) = insert_message!(tx, org, id, draft, now);
            events.push(event);
            if handling == Handling::Bot {
                let job = crate::jobs::NewJob::new(&AiTurn { org_id: org, conversation_id: id, message_id: message.id, ip: None });
                crate::jobs::insert_job!(tx, job, now)?;
            }
            let conversation = fetch_conversation!(tx, org, id)?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(Written { value: ApiConversation { conversation, contact, message }, events })
        })
    }

    /// The customer's next message in a conversation (the caller checked that its inbox
    /// is of kind `api`). Reopens a resolved or snoozed conversation, as a widget message
    /// does, and gives the bot its turn while it handles the conversation.
    pub async fn api_customer_writes(
        &self,
        org: OrgId,
        conversation: ConversationId,
        text: &str,
        attachments: &[NewAttachment],
        now: DateTime<Utc>,
    ) -> Result<Written<Message>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let current = fetch_conversation!(tx, org, conversation)?.ok_or(StoreError::NotFound)?;
            let mut events = Vec::new();
            if matches!(current.status, ConversationStatus::Resolved | ConversationStatus::Snoozed) {
                events.push(reopen_conversation!(tx, org, conversation, now)?);
            }
            let draft = MessageDraft {
                sender_kind: SenderKind::Contact,
                sender_id: Some(current.contact_id.as_uuid()),
                kind: MessageKind::Text,
                text,
                client_id: None,
                attachments,
                metadata: None,
            };
            let (message, event) = insert_message!(tx, org, conversation, draft, now);
            events.push(event);
            if current.handling == Handling::Bot {
                let job = crate::jobs::NewJob::new(&AiTurn { org_id: org, conversation_id: conversation, message_id: message.id, ip: None });
                crate::jobs::insert_job!(tx, job, now)?;
            }
            tx.commit().await?;
            Ok(Written { value: message, events })
        })
    }
}
