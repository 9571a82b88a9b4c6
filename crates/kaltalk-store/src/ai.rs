//! The AI agent's side of a conversation: its settings, the handoff state machine
//! (`bot` → `waiting_human` → `human`), its own messages, and usage counts.

use chrono::{DateTime, Datelike, Utc};
use kaltalk_core::chat::{AiSettings, Handling, MessageKind, SenderKind};
use kaltalk_core::event::{ContactUpdated, ConversationUpdated};
use kaltalk_core::{ContactId, ConversationId, MessageId, OrgId};
use serde_json::Value;
use sqlx::types::Json;

use crate::events::{NewEvent, Written, append_event};
use crate::messages::{Message, MessageDraft, fetch_message, insert_message};
use crate::{BeginWrite, Store, StoreError, on_db};

/// What the bot says, once, when it hands over.
pub const HANDOFF_MESSAGE: &str =
    "I'm passing you to a person from the team. They will answer here.";

/// Counts for the usage page, per organization and calendar month.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Usage {
    pub answers: i64,
    pub handoffs: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

pub(crate) fn month(now: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", now.year(), now.month())
}

macro_rules! add_usage {
    ($tx:expr, $org:expr, $now:expr, $answers:expr, $handoffs:expr, $prompt:expr, $completion:expr) => {
        sqlx::query(
            "INSERT INTO ai_usage (org_id, month, answers, handoffs, prompt_tokens, completion_tokens) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (org_id, month) DO UPDATE SET answers = ai_usage.answers + excluded.answers, \
             handoffs = ai_usage.handoffs + excluded.handoffs, prompt_tokens = ai_usage.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = ai_usage.completion_tokens + excluded.completion_tokens",
        )
        .bind($org)
        .bind($crate::ai::month($now))
        .bind($answers as i64)
        .bind($handoffs as i64)
        .bind($prompt as i64)
        .bind($completion as i64)
        .execute(&mut *$tx)
        .await
    };
}
pub(crate) use add_usage;

/// Hands `$conversation` from the bot to the team inside the open transaction `$tx`: the
/// bot says so once, the reason becomes a private note, the conversation goes unassigned
/// and open, and a `conversation.escalated` event is written. Evaluates to the events
/// written: none unless the bot was handling it, so a repeated trigger repeats nothing.
/// Shared by [`Store::escalate`] and a visitor's first message that asks for a person.
/// Outside the inbox's business hours the out-of-office reply follows (once).
macro_rules! hand_over_in_tx {
    ($tx:expr, $org:expr, $conversation:expr, $reason:expr, $now:expr) => {{
        let (org, conversation, reason, now): (kaltalk_core::OrgId, kaltalk_core::ConversationId, &str, chrono::DateTime<chrono::Utc>) =
            ($org, $conversation, $reason, $now);
        let moved = sqlx::query(
            "UPDATE conversations SET handling = 'waiting_human', assignee_id = NULL, status = 'open', snoozed_until = NULL, updated_at = $3 \
             WHERE org_id = $1 AND id = $2 AND handling = 'bot'",
        )
        .bind(org)
        .bind(conversation)
        .bind(now)
        .execute(&mut *$tx)
        .await?;
        let mut events: Vec<$crate::events::Event> = Vec::new();
        if moved.rows_affected() > 0 {
            let say = $crate::messages::MessageDraft {
                sender_kind: kaltalk_core::chat::SenderKind::Bot,
                sender_id: None,
                kind: kaltalk_core::chat::MessageKind::Text,
                text: $crate::ai::HANDOFF_MESSAGE,
                client_id: None,
                attachments: &[],
                metadata: None,
            };
            events.push($crate::messages::insert_message!($tx, org, conversation, say, now).1);
            // The customer now waits for a person (since their own message, if unanswered).
            $crate::waiting::start_wait!($tx, conversation, now);
            let note_text = format!("Handed over to the team: {reason}");
            let note = $crate::messages::MessageDraft {
                sender_kind: kaltalk_core::chat::SenderKind::System,
                sender_id: None,
                kind: kaltalk_core::chat::MessageKind::Note,
                text: &note_text,
                client_id: None,
                attachments: &[],
                metadata: None,
            };
            events.push($crate::messages::insert_message!($tx, org, conversation, note, now).1);
            events.push($crate::events::append_event!(
                $tx,
                $crate::events::NewEvent::new(
                    Some(org),
                    conversation.as_uuid(),
                    kaltalk_core::event::ConversationEscalated {
                        reason: reason.to_owned(),
                        handling: kaltalk_core::chat::Handling::WaitingHuman,
                    },
                )
                .in_conversation(conversation),
                now
            )?);
            $crate::ai::add_usage!($tx, org, now, 0, 1, 0, 0)?;
            // Handed over outside business hours: the customer hears when the team is back.
            events.extend($crate::hours::out_of_office_in_tx!($tx, org, conversation, now));
            // To the inbox's team, and auto-assigned as a new conversation would be.
            events.extend($crate::routing::route_in_tx!($tx, org, conversation, now));
        }
        events
    }};
}
pub(crate) use hand_over_in_tx;

impl Store {
    pub async fn ai_settings(&self, org: OrgId) -> Result<AiSettings, StoreError> {
        let row: Option<(Json<AiSettings>,)> = on_db!(self, pool => sqlx::query_as("SELECT settings FROM ai_settings WHERE org_id = $1")
            .bind(org)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(settings,)| settings.0).unwrap_or_default())
    }

    pub async fn save_ai_settings(
        &self,
        org: OrgId,
        settings: &AiSettings,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query(
            "INSERT INTO ai_settings (org_id, settings, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(org)
        .bind(Json(settings))
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks a contact "don't process with AI" (or lifts it); their open conversations
    /// leave the bot at once.
    pub async fn set_ai_opt_out(
        &self,
        org: OrgId,
        contact: ContactId,
        opt_out: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE contacts SET ai_opt_out = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(contact)
                .bind(opt_out)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), contact.as_uuid(), ContactUpdated { ai_opt_out: Some(opt_out), ..ContactUpdated::default() }), now)?;
            if opt_out {
                sqlx::query("UPDATE conversations SET handling = 'human' WHERE org_id = $1 AND contact_id = $2 AND handling <> 'human'")
                    .bind(org)
                    .bind(contact)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn ai_opt_out(&self, org: OrgId, contact: ContactId) -> Result<bool, StoreError> {
        let (opt_out,): (bool,) = on_db!(self, pool => sqlx::query_as("SELECT ai_opt_out FROM contacts WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(contact)
            .fetch_one(pool)
            .await)?;
        Ok(opt_out)
    }

    /// Hands a bot conversation to the team: the bot says so once, the reason becomes a
    /// private note, the conversation goes unassigned and open, and a
    /// `conversation.escalated` event is written. Does nothing (returns `false`) unless the
    /// bot is handling it, so a repeated trigger never repeats the message.
    pub async fn escalate(
        &self,
        org: OrgId,
        conversation: ConversationId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Written<bool>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let events = hand_over_in_tx!(tx, org, conversation, reason, now);
            if events.is_empty() {
                let exists: Option<(ConversationId,)> = sqlx::query_as("SELECT id FROM conversations WHERE org_id = $1 AND id = $2")
                    .bind(org)
                    .bind(conversation)
                    .fetch_optional(&mut *tx)
                    .await?;
                exists.ok_or(StoreError::NotFound)?;
                return Ok(Written { value: false, events });
            }
            tx.commit().await?;
            Ok(Written { value: true, events })
        })
    }

    /// An agent gives the conversation back to the bot.
    pub async fn hand_back_to_bot(
        &self,
        org: OrgId,
        conversation: ConversationId,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE conversations SET handling = 'bot', bot_turns = 0, updated_at = $3 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(conversation)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = append_event!(
                tx,
                NewEvent::new(Some(org), conversation.as_uuid(), ConversationUpdated::handling(Handling::Bot)).in_conversation(conversation),
                now
            )?;
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// The bot's answer, with its citations. `None` when the bot no longer handles the
    /// conversation (a person took over while it was thinking): it stays silent.
    pub async fn bot_writes(
        &self,
        org: OrgId,
        conversation: ConversationId,
        text: &str,
        metadata: Value,
        tokens: (u64, u64),
        now: DateTime<Utc>,
    ) -> Result<Option<Written<Message>>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let counted = sqlx::query("UPDATE conversations SET bot_turns = bot_turns + 1 WHERE org_id = $1 AND id = $2 AND handling = 'bot'")
                .bind(org)
                .bind(conversation)
                .execute(&mut *tx)
                .await?;
            if counted.rows_affected() == 0 {
                return Ok(None);
            }
            let draft = MessageDraft { sender_kind: SenderKind::Bot, sender_id: None, kind: MessageKind::Text, text, client_id: None, attachments: &[], metadata: Some(metadata) };
            let (message, event) = insert_message!(tx, org, conversation, draft, now);
            add_usage!(tx, org, now, 1, 0, tokens.0, tokens.1)?;
            tx.commit().await?;
            Ok(Some(Written { value: message, events: vec![event] }))
        })
    }

    pub async fn ai_usage(&self, org: OrgId, now: DateTime<Utc>) -> Result<Usage, StoreError> {
        let row: Option<Usage> = on_db!(self, pool => sqlx::query_as::<_, Usage>(
            "SELECT answers, handoffs, prompt_tokens, completion_tokens FROM ai_usage WHERE org_id = $1 AND month = $2",
        )
        .bind(org)
        .bind(month(now))
        .fetch_optional(pool)
        .await)?;
        Ok(row.unwrap_or_default())
    }

    /// A message by id within an organization (the AI turn reads the question it answers).
    pub async fn get_message(&self, org: OrgId, id: MessageId) -> Result<Message, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let message = fetch_message!(tx, id)?;
            tx.commit().await?;
            if message.org_id != org {
                return Err(StoreError::NotFound);
            }
            Ok(message)
        })
    }
}
