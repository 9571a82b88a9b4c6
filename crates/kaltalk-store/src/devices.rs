//! Native apps: the app's sign-in (a session of kind `app`, its bearer token stored hashed
//! like a cookie's) and the one device each app session registers for pushes through FCM
//! or APNs. A device keeps what the privacy policy lists and nothing more: its platform,
//! push token, OS version and app version. The notifier queues one `push.native` job per
//! notification and device; the server's job sends it.

use chrono::{DateTime, Utc};
use kaltalk_core::{DeviceId, NotificationId, OrgId, SessionId, UserId};

use crate::push::PushMessage;
use crate::{BeginWrite, NewSession, SessionRecord, Store, StoreError, on_db};

/// Which push service reaches a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Firebase Cloud Messaging (Android, HTTP v1 API).
    Fcm,
    /// Apple Push Notification service (iOS, token-based auth over HTTP/2).
    Apns,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Fcm => "fcm",
            Platform::Apns => "apns",
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = StoreError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "fcm" => Ok(Platform::Fcm),
            "apns" => Ok(Platform::Apns),
            other => Err(StoreError::Corrupt(format!("unknown platform {other:?}"))),
        }
    }
}

impl TryFrom<String> for Platform {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// A native app's device, registered by its app session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Device {
    pub id: DeviceId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub session_id: SessionId,
    #[sqlx(try_from = "String")]
    pub platform: Platform,
    pub push_token: String,
    pub os_version: String,
    pub app_version: String,
    pub created_at: DateTime<Utc>,
    pub last_pushed_at: Option<DateTime<Utc>>,
}

/// What an app registers.
pub struct NewDevice<'a> {
    pub platform: Platform,
    pub push_token: &'a str,
    pub os_version: &'a str,
    pub app_version: &'a str,
}

/// A signed-in app, with the device it registered (if it did).
#[derive(Debug, Clone)]
pub struct AppSession {
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub device: Option<Device>,
}

/// What one `push.native` job needs: the device, and the message.
#[derive(Debug, Clone)]
pub struct NativeDelivery {
    pub device: Device,
    pub message: PushMessage,
}

const DEVICE_COLUMNS: &str = "id, org_id, user_id, session_id, platform, push_token, os_version, app_version, created_at, last_pushed_at";

impl Store {
    /// Starts an app session (its token shown once to the app, stored hashed).
    pub async fn create_app_session(
        &self,
        session: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<SessionId, StoreError> {
        let id = SessionId::new();
        on_db!(self, pool => sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, org_id, csrf_token, created_at, expires_at, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'app')",
        )
        .bind(id)
        .bind(&session.token_hash)
        .bind(session.user_id)
        .bind(session.org_id)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(id)
    }

    /// The unexpired app session with this token hash (a browser's cookie is not one).
    pub async fn find_app_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, SessionRecord>(
            "SELECT id, user_id, org_id, csrf_token, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2 AND kind = 'app'",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    /// The person's signed-in apps, newest first, each with its device.
    pub async fn list_app_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<AppSession>, StoreError> {
        let rows: Vec<(SessionId, DateTime<Utc>, DateTime<Utc>)> = on_db!(self, pool => sqlx::query_as(
            "SELECT id, created_at, expires_at FROM sessions WHERE user_id = $1 AND kind = 'app' AND expires_at > $2 \
             ORDER BY created_at DESC, id",
        )
        .bind(user)
        .bind(now)
        .fetch_all(pool)
        .await)?;
        let sql =
            format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY created_at");
        let devices = on_db!(self, pool => sqlx::query_as::<_, Device>(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, created_at, expires_at)| AppSession {
                id,
                created_at,
                expires_at,
                device: devices.iter().find(|d| d.session_id == id).cloned(),
            })
            .collect())
    }

    /// Signs one of the person's apps out (its device goes with it); `NotFound` for
    /// anyone else's session, or a browser's.
    pub async fn revoke_app_session(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<(), StoreError> {
        let deleted = on_db!(self, pool => sqlx::query(
            "DELETE FROM sessions WHERE id = $1 AND user_id = $2 AND kind = 'app'",
        )
        .bind(session)
        .bind(user)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Registers the app session's device for the member: replaces the device this
    /// session registered before, and takes the push token from whoever had it (the same
    /// phone, signed in again, or as someone else).
    pub async fn register_device(
        &self,
        session: SessionId,
        org: OrgId,
        user: UserId,
        device: &NewDevice<'_>,
        now: DateTime<Utc>,
    ) -> Result<Device, StoreError> {
        let sql = format!(
            "INSERT INTO devices (id, org_id, user_id, session_id, platform, push_token, os_version, app_version, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {DEVICE_COLUMNS}"
        );
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM devices WHERE session_id = $1 OR push_token = $2")
                .bind(session)
                .bind(device.push_token)
                .execute(&mut *tx)
                .await?;
            let saved = sqlx::query_as::<_, Device>(sqlx::AssertSqlSafe(sql))
                .bind(DeviceId::new())
                .bind(org)
                .bind(user)
                .bind(session)
                .bind(device.platform.as_str())
                .bind(device.push_token)
                .bind(device.os_version)
                .bind(device.app_version)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(saved)
        })
    }

    /// The app session's device, if it registered one.
    pub async fn device_of_session(
        &self,
        session: SessionId,
    ) -> Result<Option<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE session_id = $1");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Device>(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .fetch_optional(pool)
            .await)?,
        )
    }

    /// Unregisters the app session's device (the app stays signed in, without pushes);
    /// `NotFound` when it had none.
    pub async fn delete_session_device(&self, session: SessionId) -> Result<(), StoreError> {
        let deleted = on_db!(self, pool => sqlx::query("DELETE FROM devices WHERE session_id = $1")
            .bind(session)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Forgets a device its push service says is gone (FCM `UNREGISTERED`, APNs 410).
    pub async fn forget_device(&self, id: DeviceId) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("DELETE FROM devices WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Notes that the push service took a push for this device.
    pub async fn record_device_push(
        &self,
        id: DeviceId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE devices SET last_pushed_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// What a `push.native` job sends; `NotFound` when the device or the notification is
    /// gone (nothing to send).
    pub async fn native_delivery(
        &self,
        notification: NotificationId,
        device: DeviceId,
    ) -> Result<NativeDelivery, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        let device = on_db!(self, pool => sqlx::query_as::<_, Device>(sqlx::AssertSqlSafe(sql))
            .bind(device)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)?;
        let message = self
            .push_message(notification, device.org_id, device.user_id)
            .await?;
        Ok(NativeDelivery { device, message })
    }
}
