//! Web Push: the instance's VAPID key pair, the browsers members subscribed, and each
//! member's notification settings (quiet hours, message text in pushes). The notifier
//! (`crate::notifications`) queues one `push.deliver` job per notification and browser;
//! the server's job sends it.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kaltalk_core::chat::NotificationReason;
use kaltalk_core::hours::{ClockTime, QuietHours};
use kaltalk_core::{ConversationId, NotificationId, OrgId, PushSubscriptionId, UserId};

use crate::{BeginWrite, Store, StoreError, on_db};

/// The VAPID key pair every instance on this database signs pushes with.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushKeys {
    /// PKCS#8 DER, base64url.
    pub private_key: String,
    /// An uncompressed P-256 point, base64url (the browsers' `applicationServerKey`).
    pub public_key: String,
}

/// A browser's subscription, as `PushSubscription.toJSON()` gave it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushSubscription {
    pub id: PushSubscriptionId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub created_at: DateTime<Utc>,
    pub last_pushed_at: Option<DateTime<Utc>>,
}

/// How a member wants to be told, beyond the per-reason choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationSettings {
    pub time_zone: Tz,
    /// Both or neither.
    pub quiet: Option<(ClockTime, ClockTime)>,
    /// Pushes carry the customer's words (and name); off, they say only "New message
    /// from a customer". Off by default: pushes cross Google's and Apple's servers.
    pub push_text: bool,
    /// A short sound in the dashboard when a notification arrives (off by default).
    pub sound: bool,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            time_zone: Tz::UTC,
            quiet: None,
            push_text: false,
            sound: false,
        }
    }
}

impl NotificationSettings {
    pub fn quiet_hours(&self) -> Option<QuietHours> {
        self.quiet.map(|(from, until)| QuietHours {
            zone: self.time_zone,
            from,
            until,
        })
    }

    /// Reads the stored row; a zone or time no longer valid reads as none.
    fn from_row(row: SettingsRow) -> Self {
        let (zone, from, until, push_text, sound) = row;
        let clock = |m: Option<i32>| {
            let m = u16::try_from(m?).ok()?;
            ClockTime::new(m / 60, m % 60)
        };
        Self {
            time_zone: zone.parse().unwrap_or(Tz::UTC),
            quiet: clock(from).zip(clock(until)),
            push_text,
            sound,
        }
    }
}

/// What a push says of one notification, whichever way it goes (a browser or a native
/// app): what for, about which conversation, and what it may say.
#[derive(Debug, Clone)]
pub struct PushMessage {
    pub notification_id: NotificationId,
    pub reason: NotificationReason,
    pub conversation_id: ConversationId,
    /// Read (or opened) since: no need to ring a phone about it.
    pub already_read: bool,
    pub push_text: bool,
    pub contact_name: Option<String>,
    /// The customer's newest message in the conversation.
    pub last_customer_text: Option<String>,
}

/// What one `push.deliver` job needs: where to, and the message.
#[derive(Debug, Clone)]
pub struct PushDelivery {
    pub subscription: PushSubscription,
    pub message: PushMessage,
}

/// A `notification_settings` row: zone, quiet from, quiet until, message text in pushes,
/// sound.
pub(crate) type SettingsRow = (String, Option<i32>, Option<i32>, bool, bool);
/// What a push says of its notification: reason, conversation, read at, contact name.
type NotificationFacts = (
    String,
    ConversationId,
    Option<DateTime<Utc>>,
    Option<String>,
);

const SUBSCRIPTION_COLUMNS: &str =
    "id, org_id, user_id, endpoint, p256dh, auth, created_at, last_pushed_at";

/// The settings query's columns, for `members`' rows (`s` joined on them).
pub(crate) const SETTINGS_SQL: &str = "SELECT time_zone, quiet_from, quiet_until, push_text, sound FROM notification_settings WHERE org_id = $1 AND user_id = $2";

impl Store {
    /// The instance's VAPID keys: the stored pair, or `candidate` stored now when there is
    /// none yet (the first instance to start wins; every other one reads its pair).
    pub async fn ensure_push_keys(
        &self,
        candidate: &PushKeys,
        now: DateTime<Utc>,
    ) -> Result<PushKeys, StoreError> {
        on_db!(self, pool => {
            sqlx::query("INSERT INTO push_keys (id, private_key, public_key, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING")
                .bind(&candidate.private_key)
                .bind(&candidate.public_key)
                .bind(now)
                .execute(pool)
                .await?;
            Ok(sqlx::query_as::<_, PushKeys>("SELECT private_key, public_key FROM push_keys WHERE id = 1")
                .fetch_one(pool)
                .await?)
        })
    }

    /// Registers a browser's subscription for the member (the same endpoint again updates
    /// its keys, and moves it to whoever is signed in there now).
    pub async fn save_push_subscription(
        &self,
        org: OrgId,
        user: UserId,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        now: DateTime<Utc>,
    ) -> Result<PushSubscription, StoreError> {
        let sql = format!(
            "INSERT INTO push_subscriptions (id, org_id, user_id, endpoint, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (endpoint) DO UPDATE SET org_id = excluded.org_id, user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth \
             RETURNING {SUBSCRIPTION_COLUMNS}"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, PushSubscription>(sqlx::AssertSqlSafe(sql))
            .bind(PushSubscriptionId::new())
            .bind(org)
            .bind(user)
            .bind(endpoint)
            .bind(p256dh)
            .bind(auth)
            .bind(now)
            .fetch_one(pool)
            .await)?,
        )
    }

    /// The member's subscribed browsers, newest first.
    pub async fn list_push_subscriptions(
        &self,
        org: OrgId,
        user: UserId,
    ) -> Result<Vec<PushSubscription>, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE org_id = $1 AND user_id = $2 ORDER BY created_at DESC, id"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, PushSubscription>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(user)
            .fetch_all(pool)
            .await)?,
        )
    }

    /// Removes one of the member's subscriptions (`NotFound` for anyone else's).
    pub async fn delete_push_subscription(
        &self,
        org: OrgId,
        user: UserId,
        id: PushSubscriptionId,
    ) -> Result<(), StoreError> {
        let deleted = on_db!(self, pool => sqlx::query(
            "DELETE FROM push_subscriptions WHERE org_id = $1 AND user_id = $2 AND id = $3",
        )
        .bind(org)
        .bind(user)
        .bind(id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Forgets a subscription the push service says is gone (404 or 410).
    pub async fn forget_push_subscription(&self, id: PushSubscriptionId) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Notes that the push service took a push for this subscription.
    pub async fn record_push(
        &self,
        id: PushSubscriptionId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE push_subscriptions SET last_pushed_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// What a `push.deliver` job sends; `NotFound` when the subscription or the
    /// notification is gone (nothing to send).
    pub async fn push_delivery(
        &self,
        notification: NotificationId,
        subscription: PushSubscriptionId,
    ) -> Result<PushDelivery, StoreError> {
        let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE id = $1");
        let subscription =
            on_db!(self, pool => sqlx::query_as::<_, PushSubscription>(sqlx::AssertSqlSafe(sql))
            .bind(subscription)
            .fetch_optional(pool)
            .await)?
            .ok_or(StoreError::NotFound)?;
        let message = self
            .push_message(notification, subscription.org_id, subscription.user_id)
            .await?;
        Ok(PushDelivery {
            subscription,
            message,
        })
    }

    /// What a push about `notification` says to its member; `NotFound` when it is gone,
    /// or is not theirs.
    pub(crate) async fn push_message(
        &self,
        notification: NotificationId,
        org: OrgId,
        user: UserId,
    ) -> Result<PushMessage, StoreError> {
        on_db!(self, pool => {
            let found: Option<NotificationFacts> = sqlx::query_as(
                "SELECT n.reason, n.conversation_id, n.read_at, ct.name FROM notifications n \
                 JOIN conversations c ON c.id = n.conversation_id JOIN contacts ct ON ct.id = c.contact_id \
                 WHERE n.id = $1 AND n.org_id = $2 AND n.user_id = $3",
            )
            .bind(notification)
            .bind(org)
            .bind(user)
            .fetch_optional(pool)
            .await?;
            let (reason, conversation_id, read_at, contact_name) = found.ok_or(StoreError::NotFound)?;
            let reason: NotificationReason = reason.parse().map_err(|_| StoreError::NotFound)?;
            let settings: Option<SettingsRow> = sqlx::query_as(SETTINGS_SQL)
                .bind(org)
                .bind(user)
                .fetch_optional(pool)
                .await?;
            let push_text = settings.map(NotificationSettings::from_row).unwrap_or_default().push_text;
            let last_customer_text: Option<(String,)> = sqlx::query_as(
                "SELECT text FROM messages WHERE conversation_id = $1 AND sender_kind = 'contact' AND kind = 'text' \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(conversation_id)
            .fetch_optional(pool)
            .await?;
            Ok(PushMessage {
                notification_id: notification,
                reason,
                conversation_id,
                already_read: read_at.is_some(),
                push_text,
                contact_name,
                last_customer_text: last_customer_text.map(|(t,)| t),
            })
        })
    }

    /// A member's settings (the defaults where they chose nothing).
    pub async fn notification_settings(
        &self,
        org: OrgId,
        user: UserId,
    ) -> Result<NotificationSettings, StoreError> {
        let row: Option<SettingsRow> = on_db!(self, pool => sqlx::query_as(SETTINGS_SQL)
            .bind(org)
            .bind(user)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(NotificationSettings::from_row).unwrap_or_default())
    }

    pub async fn save_notification_settings(
        &self,
        org: OrgId,
        user: UserId,
        settings: &NotificationSettings,
    ) -> Result<(), StoreError> {
        let minutes = |c: Option<ClockTime>| c.map(|c| i32::from(c.minutes()));
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO notification_settings (org_id, user_id, time_zone, quiet_from, quiet_until, push_text, sound) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (org_id, user_id) DO UPDATE SET time_zone = excluded.time_zone, quiet_from = excluded.quiet_from, \
                 quiet_until = excluded.quiet_until, push_text = excluded.push_text, sound = excluded.sound",
            )
            .bind(org)
            .bind(user)
            .bind(settings.time_zone.name())
            .bind(minutes(settings.quiet.map(|q| q.0)))
            .bind(minutes(settings.quiet.map(|q| q.1)))
            .bind(settings.push_text)
            .bind(settings.sound)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

/// Reads a settings row selected with [`SETTINGS_SQL`]'s columns.
pub(crate) fn settings_from_row(row: Option<SettingsRow>) -> NotificationSettings {
    row.map(NotificationSettings::from_row).unwrap_or_default()
}
