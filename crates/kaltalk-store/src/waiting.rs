//! Waiting for a reply: an inbox may tell its team when a customer has waited longer than
//! its `waiting_alert_minutes` for an answer. A wait begins with the customer's first
//! unanswered message (or the bot's handover: the customer now waits for a person) and
//! ends with a person's reply, the bot's reply while the bot answers, or the conversation
//! leaving "open". The conversation row keeps when the wait began and when it is due to
//! be told; [`Store::alert_waiting`] writes one `conversation.waiting` event per wait,
//! which the notifier turns into notifications for the assignee, else the team.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::Handling;
use kaltalk_core::event::ConversationWaiting;
use kaltalk_core::{ConversationId, OrgId};

use crate::events::{NewEvent, Written, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

/// The default of a new inbox (the migration's column default).
pub const DEFAULT_WAITING_ALERT_MINUTES: i32 = 15;
/// The longest wait an inbox may set: a week.
pub const MAX_WAITING_ALERT_MINUTES: i32 = 7 * 24 * 60;
/// How many due waits one sweep tells of at most.
const SWEEP_BATCH: i64 = 200;

/// Starts the customer's wait for a reply in `$tx` unless one is running: the wait's
/// start is now, and its alert is due after the inbox's minutes (never, when it has none).
macro_rules! start_wait {
    ($tx:expr, $conversation:expr, $now:expr) => {{
        let (conversation, now): (kaltalk_core::ConversationId, chrono::DateTime<chrono::Utc>) =
            ($conversation, $now);
        let not_waiting: Option<(Option<i32>,)> = sqlx::query_as(
            "SELECT i.waiting_alert_minutes FROM conversations c JOIN inboxes i ON i.id = c.inbox_id \
             WHERE c.id = $1 AND c.waiting_since IS NULL",
        )
        .bind(conversation)
        .fetch_optional(&mut *$tx)
        .await?;
        if let Some((minutes,)) = not_waiting {
            let due = minutes.map(|m| now + chrono::Duration::minutes(i64::from(m)));
            sqlx::query("UPDATE conversations SET waiting_since = $2, waiting_due_at = $3 WHERE id = $1")
                .bind(conversation)
                .bind(now)
                .bind(due)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use start_wait;

/// Ends the customer's wait in `$tx`: `$by_bot` only while the bot answers the
/// conversation (its handover message leaves the customer waiting for a person).
macro_rules! end_wait {
    ($tx:expr, $conversation:expr, $by_bot:expr) => {{
        let (conversation, by_bot): (kaltalk_core::ConversationId, bool) = ($conversation, $by_bot);
        sqlx::query(
            "UPDATE conversations SET waiting_since = NULL, waiting_due_at = NULL \
             WHERE id = $1 AND waiting_since IS NOT NULL AND (NOT $2 OR handling = 'bot')",
        )
        .bind(conversation)
        .bind(by_bot)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use end_wait;

/// A wait whose alert is due, with what decides whether to tell of it.
#[derive(sqlx::FromRow)]
struct DueWait {
    conversation: ConversationId,
    org: OrgId,
    since: DateTime<Utc>,
    handling: String,
    status: String,
    /// The inbox's limit now (`None`: turned off since the wait began).
    minutes: Option<i32>,
}

impl Store {
    /// Tells of every wait that became due by `now` (a `conversation.waiting` event each,
    /// once per wait). A conversation the bot still answers is not told of: the bot
    /// replies or hands over, and the handover starts a wait of its own.
    pub async fn alert_waiting(&self, now: DateTime<Utc>) -> Result<Written<usize>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let due: Vec<DueWait> = sqlx::query_as(
                "SELECT c.id AS conversation, c.org_id AS org, c.waiting_since AS since, c.handling, c.status, \
                 i.waiting_alert_minutes AS minutes \
                 FROM conversations c JOIN inboxes i ON i.id = c.inbox_id \
                 WHERE c.waiting_due_at IS NOT NULL AND c.waiting_due_at <= $1 \
                 ORDER BY c.waiting_due_at, c.id LIMIT $2",
            )
            .bind(now)
            .bind(SWEEP_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let mut events = Vec::new();
            for DueWait { conversation, org, since, handling, status, minutes } in due {
                // The bot answers it: the wait is the bot's, and is over (its handover
                // starts the customer's wait for a person afresh).
                let bots = handling == Handling::Bot.as_str();
                sqlx::query(
                    "UPDATE conversations SET waiting_due_at = NULL, \
                     waiting_since = CASE WHEN $2 THEN NULL ELSE waiting_since END WHERE id = $1",
                )
                .bind(conversation)
                .bind(bots)
                .execute(&mut *tx)
                .await?;
                // The inbox turned alerts off since the wait began: nothing to tell.
                let Some(minutes) = minutes else { continue };
                if bots || status != "open" {
                    continue;
                }
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), conversation.as_uuid(), ConversationWaiting { since, minutes })
                        .in_conversation(conversation),
                    now
                )?);
            }
            tx.commit().await?;
            Ok(Written { value: events.len(), events })
        })
    }
}
