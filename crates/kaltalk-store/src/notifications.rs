//! Notifications: what tells a member about a conversation that needs them. The notifier
//! reads the event log (its own cursor, see `crate::dispatch`) and writes one row per
//! member, event and reason, each with a `notification.created` event that only that
//! member's dashboards hear. Who is told what is [`audience`]; nobody is told of what
//! they did themselves, nor of a conversation the bot is still answering.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{Handling, MessageKind, NotificationReason, SenderKind};
use kaltalk_core::event::{EventPayload, NotificationCreated, NotificationsRead};
use kaltalk_core::job::{DeliverNativePush, DeliverPush, NotifyByEmail};
use kaltalk_core::{
    ConversationId, DeviceId, EventId, NotificationId, OrgId, PushSubscriptionId, TeamId, UserId,
};

use crate::events::{Event, NewEvent, Written, append_event};
use crate::jobs::{NewJob, insert_job};
use crate::{BeginWrite, Store, StoreError, on_db};

/// The notifier's cursor in the event log (created at the newest event by the migration).
const CURSOR_NAME: &str = "notifications";
/// How recently a dashboard must have been seen (it pings) for the conversation it shows
/// to count as on the member's screen.
const ON_SCREEN_FOR: chrono::Duration = chrono::Duration::minutes(2);

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Notification {
    pub id: NotificationId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub event_id: EventId,
    #[sqlx(try_from = "String")]
    pub reason: NotificationReason,
    pub conversation_id: ConversationId,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A notification as the list shows it: with whom, through which inbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationItem {
    #[sqlx(flatten)]
    pub notification: Notification,
    pub contact_id: kaltalk_core::ContactId,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub inbox_name: String,
}

/// What one notifier pass did.
#[derive(Debug, Default)]
pub struct Notified {
    pub events_read: usize,
    pub notifications: usize,
    /// The read filled the batch: more events may be waiting.
    pub batch_full: bool,
    /// `push.deliver` and `push.native` jobs queued.
    pub pushes: usize,
    /// Emails started (each gathers its conversation's next notifications).
    pub emails: usize,
}

/// What the notifier reads of a member for one reason: the channels' choices, whether
/// the conversation is on their screen or they are online, their quiet hours.
#[derive(sqlx::FromRow)]
struct Wants {
    in_app: bool,
    push: bool,
    /// `None`: no stored choice (see [`default_email`]).
    email: Option<bool>,
    on_screen: bool,
    /// A dashboard of theirs was seen lately.
    online: bool,
    time_zone: Option<String>,
    quiet_from: Option<i32>,
    quiet_until: Option<i32>,
}

impl Wants {
    fn quiet_at(&self, now: DateTime<Utc>) -> bool {
        let Some(zone) = self.time_zone.clone() else {
            return false;
        };
        let row = (zone, self.quiet_from, self.quiet_until, false, false);
        crate::push::settings_from_row(Some(row))
            .quiet_hours()
            .is_some_and(|q| q.contains(now))
    }
}

/// How long after its first notification a member's email about a conversation goes out:
/// what follows meanwhile joins it, and what they read meanwhile is left out.
pub const EMAIL_GATHERS_FOR: chrono::Duration = chrono::Duration::minutes(3);

/// A member's choice for one reason: which channels tell them (see
/// [`Preference::default_for`] for the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preference {
    pub reason: NotificationReason,
    pub in_app: bool,
    pub push: bool,
    pub email: bool,
}

impl Preference {
    /// Without a stored choice: in the app and by push for every reason; by email (to a
    /// member who is not online) for what waits on them personally.
    pub fn default_for(reason: NotificationReason) -> Self {
        Self {
            reason,
            in_app: true,
            push: true,
            email: default_email(reason),
        }
    }
}

/// Whether a reason emails by default: what is the member's own to act on.
fn default_email(reason: NotificationReason) -> bool {
    matches!(
        reason,
        NotificationReason::Assigned
            | NotificationReason::HandedOver
            | NotificationReason::Mentioned
    )
}

/// Whom an event concerns, before the conversation is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// This member.
    Member(UserId),
    /// Whoever the conversation is assigned to (nobody when it is not).
    Assignee,
    /// The assignee, else the conversation's team, else the whole organization.
    AssigneeElseTeam,
    /// The conversation's team, else the whole organization (its assignee apart: they
    /// hear that it was assigned to them).
    Team,
}

/// Why an event notifies, whom, and who caused it (never told of it).
pub fn audience(payload: &EventPayload) -> Option<(NotificationReason, Audience, Option<UserId>)> {
    match payload {
        EventPayload::ConversationCreated(_) => {
            Some((NotificationReason::NewConversation, Audience::Team, None))
        }
        EventPayload::ConversationUpdated(change) => match change.assignee_id {
            Some(Some(user)) => Some((
                NotificationReason::Assigned,
                Audience::Member(user),
                change.assigned_by,
            )),
            _ => None,
        },
        EventPayload::ConversationEscalated(_) => Some((
            NotificationReason::HandedOver,
            Audience::AssigneeElseTeam,
            None,
        )),
        EventPayload::ConversationWaiting(_) => Some((
            NotificationReason::Waiting,
            Audience::AssigneeElseTeam,
            None,
        )),
        EventPayload::MessageCreated(created)
            if created.message.sender == SenderKind::Contact
                && created.message.kind == MessageKind::Text =>
        {
            Some((NotificationReason::NewMessage, Audience::Assignee, None))
        }
        EventPayload::ConversationMentioned(mention) => Some((
            NotificationReason::Mentioned,
            Audience::Member(mention.user_id),
            Some(mention.by),
        )),
        _ => None,
    }
}

/// The conversation as the notifier reads it: assignee, team, who answers.
type ConversationFacts = (Option<UserId>, Option<TeamId>, String);

/// The members `$audience` names, given the conversation's `$facts`, inside `$tx` (the
/// caller keeps only current members).
macro_rules! members_of {
    ($tx:expr, $org:expr, $audience:expr, $facts:expr) => {{
        let (org, audience): (OrgId, Audience) = ($org, $audience);
        let (assignee, team, _): &ConversationFacts = $facts;
        let wanted: Vec<UserId> = match (audience, assignee, team) {
            (Audience::Member(user), _, _) => vec![user],
            (Audience::Assignee, Some(user), _) | (Audience::AssigneeElseTeam, Some(user), _) => {
                vec![*user]
            }
            (Audience::Assignee, None, _) => Vec::new(),
            (Audience::AssigneeElseTeam | Audience::Team, _, Some(team)) => {
                let rows: Vec<(UserId,)> = sqlx::query_as(
                    "SELECT user_id FROM team_members WHERE org_id = $1 AND team_id = $2 ORDER BY user_id",
                )
                .bind(org)
                .bind(*team)
                .fetch_all(&mut *$tx)
                .await?;
                rows.into_iter().map(|(u,)| u).collect()
            }
            (Audience::AssigneeElseTeam | Audience::Team, _, None) => {
                let rows: Vec<(UserId,)> =
                    sqlx::query_as("SELECT user_id FROM memberships WHERE org_id = $1 ORDER BY user_id")
                        .bind(org)
                        .fetch_all(&mut *$tx)
                        .await?;
                rows.into_iter().map(|(u,)| u).collect()
            }
        };
        wanted
    }};
}

const NOTIFICATION_COLUMNS: &str =
    "n.id, n.org_id, n.user_id, n.event_id, n.reason, n.conversation_id, n.created_at, n.read_at";

impl Store {
    /// One notifier pass over the events after its cursor: each event that concerns
    /// someone becomes their notifications (at most once per member, event and reason).
    pub async fn notify_pending(
        &self,
        now: DateTime<Utc>,
        batch: i64,
    ) -> Result<Written<Notified>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let cursor = crate::dispatch::claim_cursor!(tx, CURSOR_NAME);
            let events = crate::dispatch::events_after!(tx, cursor, batch);
            let new_cursor = crate::dispatch::settled_prefix(&events);
            let mut notified = Notified {
                events_read: events.len(),
                batch_full: events.len() as i64 >= batch && new_cursor.is_some(),
                ..Notified::default()
            };
            let mut written = Vec::new();
            for event in &events {
                let (Some(org), Some(conversation)) = (event.org_id, conversation_of(event)) else { continue };
                let Ok(payload) = event.payload() else { continue };
                let Some((reason, audience, causer)) = audience(&payload) else { continue };
                let facts: Option<ConversationFacts> = sqlx::query_as(
                    "SELECT assignee_id, team_id, handling FROM conversations WHERE org_id = $1 AND id = $2",
                )
                .bind(org)
                .bind(conversation)
                .fetch_optional(&mut *tx)
                .await?;
                // Deleted since: nothing to tell.
                let Some(facts) = facts else { continue };
                // The bot answering keeps people out of it until it hands over: as decided
                // when the conversation opened (the event may be read again later, when it
                // is no longer so), and for a message as it is now.
                let bot_answers = match &payload {
                    EventPayload::ConversationCreated(created) => created.handling == Some(Handling::Bot),
                    _ => facts.2 == Handling::Bot.as_str(),
                };
                if bot_answers && matches!(reason, NotificationReason::NewConversation | NotificationReason::NewMessage) {
                    continue;
                }
                // The customer's first message opens the conversation: "new conversation"
                // says it already.
                if let EventPayload::MessageCreated(created) = &payload {
                    let (first,): (kaltalk_core::MessageId,) = sqlx::query_as(
                        "SELECT id FROM messages WHERE conversation_id = $1 ORDER BY created_at, id LIMIT 1",
                    )
                    .bind(conversation)
                    .fetch_one(&mut *tx)
                    .await?;
                    if first == created.message.id {
                        continue;
                    }
                }
                let mut people = members_of!(tx, org, audience, &facts);
                if reason == NotificationReason::NewConversation {
                    people.retain(|user| Some(*user) != facts.0);
                }
                people.retain(|user| Some(*user) != causer);
                for user in people {
                    // Only members (a mention or an assignee may have left since), and the
                    // channels they keep on for this reason; whether their connected
                    // dashboard shows this very conversation; their quiet hours.
                    let wants: Option<Wants> = sqlx::query_as(
                        "SELECT COALESCE(p.in_app, TRUE) AS in_app, COALESCE(p.push, TRUE) AS push, p.email, \
                           COALESCE(m.viewing_conversation_id = $4 AND m.last_seen_at > $5, FALSE) AS on_screen, \
                           COALESCE(m.last_seen_at > $5, FALSE) AS online, \
                           s.time_zone, s.quiet_from, s.quiet_until \
                         FROM memberships m \
                         LEFT JOIN notification_preferences p ON p.org_id = m.org_id AND p.user_id = m.user_id AND p.reason = $3 \
                         LEFT JOIN notification_settings s ON s.org_id = m.org_id AND s.user_id = m.user_id \
                         WHERE m.org_id = $1 AND m.user_id = $2",
                    )
                    .bind(org)
                    .bind(user)
                    .bind(reason.as_str())
                    .bind(conversation)
                    .bind(now - ON_SCREEN_FOR)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(wants) = wants else { continue };
                    let (in_bell, on_screen) = (wants.in_app, wants.on_screen);
                    let quiet = wants.quiet_at(now);
                    let push = wants.push && !on_screen && !quiet;
                    let email = wants.email.unwrap_or(default_email(reason)) && !wants.online && !quiet;
                    if !in_bell && !push && !email {
                        continue;
                    }
                    // On their screen: kept as read and never listed, so that reading the
                    // event again (it may not have settled) does not tell them later. Not
                    // for the bell: never listed nor counted, but unread for push and email.
                    let hidden = on_screen || !in_bell;
                    let id = NotificationId::new();
                    let inserted = sqlx::query(
                        "INSERT INTO notifications (id, org_id, user_id, event_id, reason, conversation_id, created_at, read_at, seen_on_screen, in_bell) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(user)
                    .bind(event.id)
                    .bind(reason.as_str())
                    .bind(conversation)
                    .bind(now)
                    .bind(on_screen.then_some(now))
                    .bind(on_screen)
                    .bind(in_bell)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        continue;
                    }
                    if !hidden {
                        notified.notifications += 1;
                        written.push(append_event!(
                            tx,
                            NewEvent::new(Some(org), id.as_uuid(), NotificationCreated { user_id: user, reason, conversation_id: conversation }),
                            now
                        )?);
                    }
                    if push {
                        // One job per browser, in this transaction: a push is never lost
                        // between the notice and its sending.
                        let browsers: Vec<(PushSubscriptionId,)> = sqlx::query_as(
                            "SELECT id FROM push_subscriptions WHERE org_id = $1 AND user_id = $2 ORDER BY id",
                        )
                        .bind(org)
                        .bind(user)
                        .fetch_all(&mut *tx)
                        .await?;
                        for (browser,) in browsers {
                            let job = NewJob::new(&DeliverPush { notification_id: id, subscription_id: browser, attempt: 1 });
                            insert_job!(tx, job, now)?;
                            notified.pushes += 1;
                        }
                        // And one per device the member's native apps registered.
                        let devices: Vec<(DeviceId,)> = sqlx::query_as(
                            "SELECT id FROM devices WHERE org_id = $1 AND user_id = $2 ORDER BY id",
                        )
                        .bind(org)
                        .bind(user)
                        .fetch_all(&mut *tx)
                        .await?;
                        for (device,) in devices {
                            let job = NewJob::new(&DeliverNativePush { notification_id: id, device_id: device, attempt: 1 });
                            insert_job!(tx, job, now)?;
                            notified.pushes += 1;
                        }
                    }
                    if email {
                        // One email per member and conversation gathers what follows until
                        // it is sent; only the first notification queues it.
                        let batch = uuid::Uuid::now_v7();
                        let due = now + EMAIL_GATHERS_FOR;
                        let gathering = sqlx::query(
                            "INSERT INTO notification_emails (id, org_id, user_id, conversation_id, created_at, due_at) \
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                        )
                        .bind(batch)
                        .bind(org)
                        .bind(user)
                        .bind(conversation)
                        .bind(now)
                        .bind(due)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if gathering == 1 {
                            let job = NewJob { run_at: Some(due), ..NewJob::new(&NotifyByEmail { batch_id: batch }) };
                            insert_job!(tx, job, now)?;
                            notified.emails += 1;
                        }
                    }
                }
            }
            if let Some(cursor) = new_cursor {
                crate::dispatch::advance_cursor!(tx, CURSOR_NAME, cursor);
            }
            tx.commit().await?;
            Ok(Written { value: notified, events: written })
        })
    }

    /// The conversation a member's dashboard shows now (`None`: none, or it closed). It
    /// counts while that dashboard keeps being seen (`dashboard_seen`).
    pub async fn set_viewing(
        &self,
        org: OrgId,
        user: UserId,
        conversation: Option<ConversationId>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            sqlx::query("UPDATE memberships SET viewing_conversation_id = $3 WHERE org_id = $1 AND user_id = $2")
                .bind(org)
                .bind(user)
                .bind(conversation)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// A member's newest notifications first, at most `limit`.
    pub async fn list_notifications(
        &self,
        org: OrgId,
        user: UserId,
        limit: i64,
    ) -> Result<Vec<NotificationItem>, StoreError> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS}, ct.id AS contact_id, ct.name AS contact_name, ct.email AS contact_email, i.name AS inbox_name \
             FROM notifications n JOIN conversations c ON c.id = n.conversation_id \
             JOIN contacts ct ON ct.id = c.contact_id JOIN inboxes i ON i.id = c.inbox_id \
             WHERE n.org_id = $1 AND n.user_id = $2 AND n.in_bell AND NOT n.seen_on_screen ORDER BY n.id DESC LIMIT $3"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, NotificationItem>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(user)
            .bind(limit)
            .fetch_all(pool)
            .await)?,
        )
    }

    /// How many of a member's notifications are unread.
    pub async fn unread_notifications(&self, org: OrgId, user: UserId) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_db!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM notifications WHERE org_id = $1 AND user_id = $2 AND read_at IS NULL AND in_bell",
        )
        .bind(org)
        .bind(user)
        .fetch_one(pool)
        .await)?;
        Ok(count)
    }

    /// Marks one of the member's notifications read (`NotFound` for anyone else's) and
    /// returns it.
    pub async fn read_notification(
        &self,
        org: OrgId,
        user: UserId,
        id: NotificationId,
        now: DateTime<Utc>,
    ) -> Result<Written<Notification>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.org_id = $1 AND n.user_id = $2 AND n.id = $3");
            let found = sqlx::query_as::<_, Notification>(sqlx::AssertSqlSafe(sql))
                .bind(org)
                .bind(user)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let mut events = Vec::new();
            if found.read_at.is_none() {
                sqlx::query("UPDATE notifications SET read_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), id.as_uuid(), NotificationsRead { user_id: user, notification_id: Some(id) }),
                    now
                )?);
            }
            tx.commit().await?;
            Ok(Written { value: Notification { read_at: found.read_at.or(Some(now)), ..found }, events })
        })
    }

    /// Marks every notification of the member read; evaluates to how many were unread.
    pub async fn read_all_notifications(
        &self,
        org: OrgId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Written<u64>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let read = sqlx::query("UPDATE notifications SET read_at = $3 WHERE org_id = $1 AND user_id = $2 AND read_at IS NULL")
                .bind(org)
                .bind(user)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let mut events = Vec::new();
            if read > 0 {
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), user.as_uuid(), NotificationsRead { user_id: user, notification_id: None }),
                    now
                )?);
            }
            tx.commit().await?;
            Ok(Written { value: read, events })
        })
    }

    /// A member's choice for every reason (everything on where they chose nothing).
    pub async fn notification_preferences(
        &self,
        org: OrgId,
        user: UserId,
    ) -> Result<Vec<Preference>, StoreError> {
        let rows: Vec<(String, bool, bool, bool)> = on_db!(self, pool => sqlx::query_as(
            "SELECT reason, in_app, push, email FROM notification_preferences WHERE org_id = $1 AND user_id = $2",
        )
        .bind(org)
        .bind(user)
        .fetch_all(pool)
        .await)?;
        Ok(NotificationReason::ALL
            .iter()
            .map(|reason| {
                rows.iter().find(|row| row.0 == reason.as_str()).map_or(
                    Preference::default_for(*reason),
                    |row| Preference {
                        reason: *reason,
                        in_app: row.1,
                        push: row.2,
                        email: row.3,
                    },
                )
            })
            .collect())
    }

    /// Replaces a member's choices (one per reason given).
    pub async fn save_notification_preferences(
        &self,
        org: OrgId,
        user: UserId,
        preferences: &[Preference],
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for preference in preferences {
                sqlx::query(
                    "INSERT INTO notification_preferences (org_id, user_id, reason, in_app, push, email) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (org_id, user_id, reason) DO UPDATE SET in_app = excluded.in_app, push = excluded.push, email = excluded.email",
                )
                .bind(org)
                .bind(user)
                .bind(preference.reason.as_str())
                .bind(preference.in_app)
                .bind(preference.push)
                .bind(preference.email)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// The conversation an event is about, for the events that can notify.
fn conversation_of(event: &Event) -> Option<ConversationId> {
    event.conversation_id.or_else(|| match event.payload() {
        Ok(EventPayload::ConversationMentioned(mention)) => Some(mention.conversation_id),
        _ => None,
    })
}

/// A batch as stored, with its member's and conversation's names: org, member,
/// conversation, created at, member's name and email, contact's name, inbox's name.
type BatchRow = (
    OrgId,
    UserId,
    ConversationId,
    DateTime<Utc>,
    String,
    String,
    Option<String>,
    String,
);

/// A member's email about one conversation, as its job reads it when due.
#[derive(Debug, Clone)]
pub struct NotificationEmail {
    pub batch_id: uuid::Uuid,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub member_name: String,
    pub member_email: String,
    pub conversation_id: ConversationId,
    pub contact_name: Option<String>,
    pub inbox_name: String,
    /// Whether the member wants the customer's name in what leaves KalTalk about them.
    pub show_names: bool,
    /// Their notifications about it still unread, oldest first (none: nothing to send).
    pub unread: Vec<Notification>,
}

impl Store {
    /// The email `batch` gathers, when it is still to be sent (`None`: sent already, or
    /// the member or the conversation is gone).
    pub async fn notification_email(
        &self,
        batch: uuid::Uuid,
    ) -> Result<Option<NotificationEmail>, StoreError> {
        on_db!(self, pool => {
            let found: Option<BatchRow> = sqlx::query_as(
                "SELECT b.org_id, b.user_id, b.conversation_id, b.created_at, u.name, u.email, ct.name, i.name \
                 FROM notification_emails b JOIN users u ON u.id = b.user_id \
                 JOIN conversations c ON c.id = b.conversation_id JOIN contacts ct ON ct.id = c.contact_id \
                 JOIN inboxes i ON i.id = c.inbox_id WHERE b.id = $1 AND b.sent_at IS NULL",
            )
            .bind(batch)
            .fetch_optional(pool)
            .await?;
            let Some((org_id, user_id, conversation_id, since, member_name, member_email, contact_name, inbox_name)) = found else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.org_id = $1 AND n.user_id = $2 \
                 AND n.conversation_id = $3 AND n.created_at >= $4 AND n.read_at IS NULL AND NOT n.seen_on_screen ORDER BY n.id"
            );
            let unread = sqlx::query_as::<_, Notification>(sqlx::AssertSqlSafe(sql))
                .bind(org_id)
                .bind(user_id)
                .bind(conversation_id)
                .bind(since)
                .fetch_all(pool)
                .await?;
            let settings: Option<crate::push::SettingsRow> = sqlx::query_as(crate::push::SETTINGS_SQL)
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(pool)
                .await?;
            Ok(Some(NotificationEmail {
                batch_id: batch,
                org_id,
                user_id,
                member_name,
                member_email,
                conversation_id,
                contact_name,
                inbox_name,
                show_names: crate::push::settings_from_row(settings).push_text,
                unread,
            }))
        })
    }

    /// Closes the batch: sends `email` (none when everything was read meanwhile) and marks
    /// it sent, so that the next notification starts a new one.
    pub async fn close_notification_email(
        &self,
        batch: uuid::Uuid,
        email: Option<&crate::NewEmail>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let closed = sqlx::query("UPDATE notification_emails SET sent_at = $2 WHERE id = $1 AND sent_at IS NULL")
                .bind(batch)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Closed already (a retry after a crash): never a second email.
            if closed == 1 && let Some(email) = email {
                crate::outbox::insert_email!(tx, email, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
