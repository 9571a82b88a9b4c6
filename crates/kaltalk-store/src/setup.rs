//! What the first-run checklist reads (how far an organization has set itself up), and
//! the channel changes of the widget setup: rotating an inbox's identity secret and
//! deleting an inbox with its conversations.

use chrono::{DateTime, Utc};
use kaltalk_core::event::{InboxDeleted, InboxUpdated, SecretChange};
use kaltalk_core::{InboxId, OrgId, UserId};

use crate::events::{NewEvent, Written, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

/// How far an organization is with its setup, each step read from the rows it leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupProgress {
    pub channels: i64,
    pub web_channels: i64,
    /// Widget sessions opened on a page that is not on our own origin: the snippet is
    /// on a real site.
    pub sessions_elsewhere: i64,
    pub knowledge_sources: i64,
    pub playground_tried: bool,
    pub ai_enabled: bool,
    /// Members besides the first, plus invitations still open.
    pub teammates: i64,
    /// Conversations a customer (or a test visitor) started, in any channel.
    pub conversations: i64,
}

/// An agent's own queue, for their home page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentWork {
    /// Open or pending conversations assigned to them.
    pub mine: i64,
    /// Open or pending conversations nobody is assigned to.
    pub unassigned: i64,
}

impl Store {
    /// The setup checklist's facts. `own_origin` is our public address
    /// (`https://chat.example.com`): widget sessions from pages there are the dashboard's
    /// preview, not a customer's site.
    pub async fn setup_progress(
        &self,
        org: OrgId,
        own_origin: &str,
        now: DateTime<Utc>,
    ) -> Result<SetupProgress, StoreError> {
        // The page a session was opened on rides in its context (what the widget reports).
        let page_url = match self.backend() {
            crate::Backend::Sqlite => "json_extract(s.context, '$.page_url')",
            crate::Backend::Postgres => "(s.context ->> 'page_url')",
        };
        let own_prefix = format!("{}/", own_origin.trim_end_matches('/'));
        let sql = format!(
            "SELECT \
             (SELECT COUNT(*) FROM inboxes WHERE org_id = $1), \
             (SELECT COUNT(*) FROM inboxes WHERE org_id = $1 AND kind = 'web'), \
             (SELECT COUNT(*) FROM visitor_sessions s WHERE s.org_id = $1 AND {page_url} IS NOT NULL \
                AND substr({page_url}, 1, length($2)) <> $2), \
             (SELECT COUNT(*) FROM knowledge_sources WHERE org_id = $1), \
             (SELECT playground_tried_at FROM organizations WHERE id = $1) IS NOT NULL, \
             (SELECT COUNT(*) FROM memberships WHERE org_id = $1) - 1 \
               + (SELECT COUNT(*) FROM invitations WHERE org_id = $1 AND accepted_at IS NULL \
                  AND revoked_at IS NULL AND expires_at > $3), \
             (SELECT COUNT(*) FROM conversations WHERE org_id = $1)"
        );
        let row: (i64, i64, i64, i64, bool, i64, i64) = on_db!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(&own_prefix)
            .bind(now)
            .fetch_one(pool)
            .await)?;
        let ai_enabled = self.ai_settings(org).await?.enabled;
        Ok(SetupProgress {
            channels: row.0,
            web_channels: row.1,
            sessions_elsewhere: row.2,
            knowledge_sources: row.3,
            playground_tried: row.4,
            ai_enabled,
            teammates: row.5,
            conversations: row.6,
        })
    }

    /// Notes that someone asked the AI playground a question (kept: the first time).
    pub async fn mark_playground_tried(
        &self,
        org: OrgId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query(
            "UPDATE organizations SET playground_tried_at = $2 WHERE id = $1 AND playground_tried_at IS NULL",
        )
        .bind(org)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// `user`'s open work in `org`.
    pub async fn agent_work(&self, org: OrgId, user: UserId) -> Result<AgentWork, StoreError> {
        let (mine, unassigned): (i64, i64) = on_db!(self, pool => sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM conversations WHERE org_id = $1 AND assignee_id = $2 AND status IN ('open', 'pending')), \
             (SELECT COUNT(*) FROM conversations WHERE org_id = $1 AND assignee_id IS NULL AND status IN ('open', 'pending'))",
        )
        .bind(org)
        .bind(user)
        .fetch_one(pool)
        .await)?;
        Ok(AgentWork { mine, unassigned })
    }

    /// Gives an inbox a new identity secret: signatures made with the old one stop
    /// verifying at once.
    pub async fn rotate_identity_secret(
        &self,
        org: OrgId,
        id: InboxId,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE inboxes SET identity_secret = $3, updated_at = $4 WHERE org_id = $1 AND id = $2",
            )
            .bind(org)
            .bind(id)
            .bind(secret)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), InboxUpdated { identity_secret: Some(SecretChange::Rotated) }), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes an inbox and, as Chatwoot does, its conversations with their messages,
    /// widget sessions and email records (cascade), and what the event log and webhook
    /// deliveries kept of those conversations. Contacts stay: they may write through
    /// another channel. Returns the blob keys of the deleted attachments and email
    /// originals, for the caller to remove once the rows are gone.
    pub async fn delete_inbox(
        &self,
        org: OrgId,
        id: InboxId,
        now: DateTime<Utc>,
    ) -> Result<Written<Vec<String>>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let blobs: Vec<(String,)> = sqlx::query_as(
                "SELECT a.storage_key FROM attachments a JOIN conversations c ON c.id = a.conversation_id \
                 WHERE c.org_id = $1 AND c.inbox_id = $2 \
                 UNION ALL SELECT em.raw_key FROM email_messages em \
                 WHERE em.org_id = $1 AND em.inbox_id = $2 AND em.raw_key IS NOT NULL",
            )
            .bind(org)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            let in_inbox = "SELECT id FROM events WHERE org_id = $1 AND conversation_id IN \
                 (SELECT id FROM conversations WHERE org_id = $1 AND inbox_id = $2)";
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM webhook_deliveries WHERE org_id = $1 AND event_id IN ({in_inbox})"
            )))
            .bind(org)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM events WHERE id IN ({in_inbox})")))
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM inboxes WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if deleted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), InboxDeleted {}), now)?;
            tx.commit().await?;
            Ok(Written { value: blobs.into_iter().map(|(key,)| key).collect(), events: vec![event] })
        })
    }
}
