//! Business hours in the store: an inbox's schedule and out-of-office text (kept in the
//! inbox row), and the intake step that sends the out-of-office reply once per
//! conversation.

use chrono::{DateTime, Utc};
use kaltalk_core::hours::InboxHours;
use kaltalk_core::{InboxId, OrgId};
use sqlx::types::Json;

use crate::events::{NewEvent, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

/// `metadata.automatic` of the out-of-office reply: the dashboard labels it "Automatic
/// reply", and nothing takes it for the bot's or a person's answer.
pub const OUT_OF_OFFICE: &str = "out_of_office";

/// The intake's business-hours step, inside the open transaction `$tx`, after the
/// customer's message is written (and when the bot hands over): when the conversation's
/// inbox is outside its hours, people handle the conversation (not the bot) and no
/// out-of-office reply went out in it yet, writes the reply as an automatic bot message
/// (so on an email conversation it leaves by email, as `insert_message!` sends every
/// bot answer there) and marks the conversation. Evaluates to the events written: none
/// when nothing was sent. An empty out-of-office text sends nothing.
macro_rules! out_of_office_in_tx {
    ($tx:expr, $org:expr, $conversation:expr, $now:expr) => {{
        let (org, conversation, now): (
            kaltalk_core::OrgId,
            kaltalk_core::ConversationId,
            chrono::DateTime<chrono::Utc>,
        ) = ($org, $conversation, $now);
        let row: Option<(
            Option<sqlx::types::Json<kaltalk_core::hours::InboxHours>>,
            String,
            Option<chrono::DateTime<chrono::Utc>>,
        )> = sqlx::query_as(
            "SELECT i.business_hours, c.handling, c.out_of_office_sent_at FROM conversations c \
             JOIN inboxes i ON i.id = c.inbox_id WHERE c.org_id = $1 AND c.id = $2",
        )
        .bind(org)
        .bind(conversation)
        .fetch_optional(&mut *$tx)
        .await?;
        let reply = match row {
            Some((Some(hours), handling, None))
                if handling != kaltalk_core::chat::Handling::Bot.as_str() && !hours.0.is_open(now) =>
            {
                Some(hours.0.out_of_office_text(now)).filter(|text| !text.trim().is_empty())
            }
            _ => None,
        };
        let mut events: Vec<$crate::events::Event> = Vec::new();
        if let Some(text) = reply {
            // Claimed first: of two messages committing at once, one sends it.
            let claimed = sqlx::query(
                "UPDATE conversations SET out_of_office_sent_at = $3 WHERE org_id = $1 AND id = $2 \
                 AND out_of_office_sent_at IS NULL",
            )
            .bind(org)
            .bind(conversation)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
            if claimed.rows_affected() > 0 {
                let draft = $crate::messages::MessageDraft {
                    sender_kind: kaltalk_core::chat::SenderKind::Bot,
                    sender_id: None,
                    kind: kaltalk_core::chat::MessageKind::Text,
                    text: &text,
                    client_id: None,
                    attachments: &[],
                    metadata: Some(serde_json::json!({ "automatic": $crate::hours::OUT_OF_OFFICE })),
                };
                events.push($crate::messages::insert_message!($tx, org, conversation, draft, now).1);
            }
        }
        events
    }};
}
pub(crate) use out_of_office_in_tx;

impl Store {
    /// Replaces an inbox's business hours (validated by their type) and out-of-office
    /// text; an `inbox.updated` event is written.
    pub async fn save_business_hours(
        &self,
        org: OrgId,
        inbox: InboxId,
        hours: &InboxHours,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE inboxes SET business_hours = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(inbox)
                .bind(Json(hours))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), inbox.as_uuid(), kaltalk_core::event::InboxUpdated::default()), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// When the conversation got its out-of-office reply, if it did.
    pub async fn out_of_office_sent_at(
        &self,
        org: OrgId,
        conversation: kaltalk_core::ConversationId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let (sent,): (Option<DateTime<Utc>>,) = on_db!(self, pool => sqlx::query_as(
            "SELECT out_of_office_sent_at FROM conversations WHERE org_id = $1 AND id = $2",
        )
        .bind(org)
        .bind(conversation)
        .fetch_one(pool)
        .await)?;
        Ok(sent)
    }
}
