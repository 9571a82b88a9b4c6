//! Inboxes (channels): a web widget, an email address or an API source, with their settings.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{EmailSettings, InboxKind, WidgetSettings};
use kaltalk_core::event::{InboxCreated, InboxUpdated};
use kaltalk_core::hours::InboxHours;
use kaltalk_core::{InboxId, OrgId};
use sqlx::types::Json;

use crate::events::{NewEvent, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

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
    /// The team its new conversations go to, and how (see `crate::routing`).
    #[sqlx(flatten)]
    pub routing: crate::routing::InboxRouting,
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

pub(crate) const INBOX_COLUMNS: &str = "id, org_id, kind, name, public_token, identity_secret, settings, created_at, email_address, email_settings, business_hours, team_id, auto_assign, hand_back_on_offline, waiting_alert_minutes";

impl Store {
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
}
