//! Dashboard sign-in sessions.

use super::*;

impl Store {
    pub async fn create_session(
        &self,
        session: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<SessionId, StoreError> {
        let id = SessionId::new();
        on_db!(self, pool => sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, org_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(&session.token_hash)
        .bind(session.user_id)
        .bind(session.org_id)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(id)
    }

    /// The unexpired browser session with this token hash (an app's bearer token is not
    /// a cookie: `find_app_session` reads those).
    pub async fn find_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, SessionRecord>(
            "SELECT id, user_id, org_id, csrf_token, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2 AND kind = 'browser'",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn switch_session_org(
        &self,
        session: SessionId,
        org: OrgId,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE sessions SET org_id = $2 WHERE id = $1")
            .bind(session)
            .bind(org)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn delete_session(&self, session: SessionId) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("DELETE FROM sessions WHERE id = $1").bind(session).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
