//! Deleting what has outlived its use: expired sessions and email-link tokens, API
//! idempotency keys past their 24 hours, and finished jobs once they are a week old
//! (failed, dead-lettered jobs stay for people to look at).

use chrono::{DateTime, Duration, Utc};

use crate::{Store, StoreError, on_db};

/// How long a finished job is kept for inspection.
pub const DONE_JOB_RETENTION: Duration = Duration::days(7);

/// What one purge deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub tokens: u64,
    pub jobs: u64,
    pub idempotency_keys: u64,
}

impl Store {
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<Purged, StoreError> {
        let sessions = on_db!(self, pool => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        let tokens = on_db!(self, pool => sqlx::query("DELETE FROM user_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        let jobs = on_db!(self, pool => sqlx::query("DELETE FROM jobs WHERE state = 'done' AND updated_at <= $1")
            .bind(now - DONE_JOB_RETENTION)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        let idempotency_keys = on_db!(self, pool => sqlx::query("DELETE FROM idempotency_keys WHERE created_at <= $1")
            .bind(now - crate::idempotency::IDEMPOTENCY_WINDOW)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(Purged {
            sessions,
            tokens,
            jobs,
            idempotency_keys,
        })
    }
}
