//! Widget visitor sessions: the browser a visitor writes from, and how long its token lives.

use chrono::{DateTime, Duration, Utc};
use kaltalk_core::chat::VisitorDetails;
use kaltalk_core::{ContactId, ConversationId, InboxId, OrgId, VisitorSessionId};
use sqlx::types::Json;

use crate::{Store, StoreError, on_db};

/// A widget visitor token stops working after this long without activity (privacy
/// policy, section 7).
pub const VISITOR_IDLE_LIMIT: Duration = Duration::days(30);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VisitorSession {
    pub id: VisitorSessionId,
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub contact_id: Option<ContactId>,
    pub conversation_id: Option<ConversationId>,
    pub context: Json<VisitorDetails>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The verified user id of the session's contact: a session that belongs to one
    /// signed-in user is never handed to another.
    pub contact_external_id: Option<String>,
}

/// The session a visitor's message arrives on.
#[derive(Clone, Copy)]
pub enum SessionChoice<'a> {
    Existing(&'a VisitorSession),
    New { token_hash: &'a str },
}

/// A session with its contact's verified id, from `visitor_sessions s`.
const SESSION_SELECT: &str = "SELECT s.id, s.org_id, s.inbox_id, s.contact_id, s.conversation_id, s.context, \
     s.first_seen_at, s.last_seen_at, ct.external_id AS contact_external_id \
     FROM visitor_sessions s LEFT JOIN contacts ct ON ct.id = s.contact_id";

impl Store {
    /// The visitor session with this token, unless it has been idle for 30 days.
    pub async fn find_visitor_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<VisitorSession>, StoreError> {
        let sql = format!("{SESSION_SELECT} WHERE s.token_hash = $1 AND s.last_seen_at > $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, VisitorSession>(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now - VISITOR_IDLE_LIMIT)
            .fetch_optional(pool)
            .await)?,
        )
    }

    /// Records activity (and the page the visitor is on) on a session.
    pub async fn touch_visitor_session(
        &self,
        id: VisitorSessionId,
        details: &VisitorDetails,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE visitor_sessions SET context = $2, last_seen_at = $3 WHERE id = $1")
            .bind(id)
            .bind(Json(details))
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks the session active without changing its page context.
    pub async fn touch_visitor_session_seen(
        &self,
        id: VisitorSessionId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE visitor_sessions SET last_seen_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends a visitor session: its token stops working (another user signed in on the
    /// browser, or the widget logged out). The contact and conversations stay.
    pub async fn end_visitor_session(&self, id: VisitorSessionId) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("DELETE FROM visitor_sessions WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
