//! Conversations: finding, listing and counting them, their status, assignee and who has
//! seen what. Every change writes its event in the same transaction and returns it.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{ConversationStatus, Handling};
use kaltalk_core::event::{ConversationSeen, ConversationUpdated, Seer};
use kaltalk_core::{ContactId, ConversationId, InboxId, MessageId, OrgId, TeamId, UserId};
use serde::Serialize;

use crate::events::{NewEvent, Written, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

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
    /// The team it belongs to.
    pub team_id: Option<TeamId>,
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
    /// In a search's answer: the newest of its messages that matched (none when only the
    /// customer's name or email did).
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_text: Option<String>,
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
    /// Only conversations of this team.
    pub team: Option<TeamId>,
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

pub(crate) const CONVERSATION_COLUMNS: &str = "c.id, c.org_id, c.inbox_id, c.contact_id, c.status, c.snoozed_until, c.assignee_id, \
     c.last_message_at, c.agent_last_seen_at, c.contact_last_seen_at, c.created_at, c.handling, c.bot_turns, c.subject, c.team_id";

/// A conversation with what its list entry shows (contact, last message, unread count).
pub(crate) const SUMMARY_SELECT: &str = "SELECT c.id, c.org_id, c.inbox_id, c.contact_id, c.status, c.snoozed_until, c.assignee_id, \
     c.last_message_at, c.agent_last_seen_at, c.contact_last_seen_at, c.created_at, c.handling, c.bot_turns, c.subject, c.team_id, \
     ct.name AS contact_name, ct.email AS contact_email, \
     c.last_message_text AS last_message, c.unread_count AS unread \
     FROM conversations c JOIN contacts ct ON ct.id = c.contact_id";

macro_rules! fetch_conversation {
    ($tx:expr, $org:expr, $id:expr) => {{
        let sql = format!(
            "SELECT {} FROM conversations c WHERE c.org_id = $1 AND c.id = $2",
            $crate::conversations::CONVERSATION_COLUMNS
        );
        sqlx::query_as::<_, $crate::conversations::Conversation>(sqlx::AssertSqlSafe(sql))
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

impl Store {
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

    /// Conversations, newest first by `filter.order`.
    pub async fn list_conversations(
        &self,
        org: OrgId,
        filter: &ConversationFilter,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        // Placeholders are fixed, every one bound; a filter that is off says only that its
        // parameter is NULL (true, and no `OR` that would keep the planner from the index
        // of the filters that are on).
        let at = match filter.order {
            ConversationOrder::LastActivity => "c.last_message_at",
            ConversationOrder::Created => "c.created_at",
        };
        let mut sql = format!("{SUMMARY_SELECT} WHERE c.org_id = $1");
        sql.push_str(match filter.status {
            Some(_) => " AND c.status = $2",
            None => " AND $2 IS NULL",
        });
        sql.push_str(match filter.inbox {
            Some(_) => " AND c.inbox_id = $3",
            None => " AND $3 IS NULL",
        });
        sql.push_str(match filter.assignee {
            AssigneeFilter::Anyone => " AND $4 IS NULL",
            AssigneeFilter::Unassigned => " AND $4 IS NULL AND c.assignee_id IS NULL",
            AssigneeFilter::User(_) => " AND c.assignee_id = $4",
        });
        match filter.before {
            Some(_) => sql.push_str(&format!(" AND ({at}, c.id) < ($5, $6)")),
            None => sql.push_str(" AND $5 IS NULL AND $6 IS NULL"),
        }
        sql.push_str(match filter.label {
            Some(_) => " AND EXISTS (SELECT 1 FROM conversation_labels l WHERE l.conversation_id = c.id AND l.label = $8)",
            None => " AND $8 IS NULL",
        });
        match filter.attribute {
            Some(_) => sql.push_str(&format!(
                " AND {}",
                crate::contacts::attribute_matches("ct", 9)
            )),
            None => sql.push_str(" AND $9 IS NULL AND $10 IS NULL AND $11 IS NULL"),
        }
        sql.push_str(match filter.team {
            Some(_) => " AND c.team_id = $12",
            None => " AND $12 IS NULL",
        });
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
            .bind(filter.team)
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

    /// Sets the status; `snoozed_until` only with `Snoozed`. Anything but open ends the
    /// customer's wait for a reply (see `crate::waiting`).
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
            let teams = crate::routing::lock_for_change!(tx, org, id);
            let updated = sqlx::query("UPDATE conversations SET status = $3, snoozed_until = $4, updated_at = $5, \
                 waiting_since = CASE WHEN $3 = 'open' THEN waiting_since END, \
                 waiting_due_at = CASE WHEN $3 = 'open' THEN waiting_due_at END \
                 WHERE org_id = $1 AND id = $2")
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
            // Resolved or snoozed: its assignee has room for the next waiting one.
            let mut events = vec![event];
            events.extend(crate::routing::drain_in_tx!(tx, org, teams, now));
            tx.commit().await?;
            Ok(Written { value: (), events })
        })
    }

    /// Assigns to a member of the organization (checked by the caller), or unassigns.
    pub async fn assign_conversation(
        &self,
        org: OrgId,
        id: ConversationId,
        assignee: Option<UserId>,
        by: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let teams = crate::routing::lock_for_change!(tx, org, id);
            // Assigned by hand, it leaves the queue.
            let updated = sqlx::query("UPDATE conversations SET assignee_id = $3, queued_at = NULL, updated_at = $4 WHERE org_id = $1 AND id = $2")
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
                NewEvent::new(Some(org), id.as_uuid(), ConversationUpdated::assignee(assignee, by)).in_conversation(id),
                now
            )?;
            // The previous assignee has room for the next waiting one.
            let mut events = vec![event];
            events.extend(crate::routing::drain_in_tx!(tx, org, teams, now));
            tx.commit().await?;
            Ok(Written { value: (), events })
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
            sqlx::query("UPDATE conversations SET agent_last_seen_at = $3, unread_count = 0 WHERE org_id = $1 AND id = $2")
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
