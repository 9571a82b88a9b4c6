//! `Idempotency-Key` on the API's POSTs: the first answer per (organization, key,
//! request) is kept for 24 hours and replayed to a retry with the same body.

use chrono::{DateTime, Duration, Utc};
use kaltalk_core::OrgId;

use crate::{BeginWrite, Store, StoreError, on_db};

/// How long a key's answer is replayed; after that the key may be used again.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// A stored answer, replayed as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What a request with a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: run the request, then [`Store::finish_idempotent_request`].
    New,
    /// Seen with the same body: answer with this.
    Replay(StoredResponse),
    /// Seen with another body.
    BodyMismatch,
    /// The first request with this key has not answered yet.
    InProgress,
}

type StoredRow = (String, Option<i32>, Option<String>, Option<Vec<u8>>);

impl Store {
    /// Claims `key` for `request` (method and path) with a body hashing to `body_hash`.
    /// The claim is an insert, so of two concurrent requests with one key only one runs.
    pub async fn claim_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
        request: &str,
        body_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // An expired key is free again.
            sqlx::query("DELETE FROM idempotency_keys WHERE org_id = $1 AND idempotency_key = $2 AND request = $3 AND created_at <= $4")
                .bind(org)
                .bind(key)
                .bind(request)
                .bind(now - IDEMPOTENCY_WINDOW)
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (org_id, idempotency_key, request, body_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, idempotency_key, request) DO NOTHING",
            )
            .bind(org)
            .bind(key)
            .bind(request)
            .bind(body_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let claim = if inserted.rows_affected() == 1 {
                IdempotencyClaim::New
            } else {
                let (stored_hash, status, content_type, body): StoredRow = sqlx::query_as(
                    "SELECT body_hash, status, content_type, response_body FROM idempotency_keys \
                     WHERE org_id = $1 AND idempotency_key = $2 AND request = $3",
                )
                .bind(org)
                .bind(key)
                .bind(request)
                .fetch_one(&mut *tx)
                .await?;
                match status {
                    _ if stored_hash != body_hash => IdempotencyClaim::BodyMismatch,
                    None => IdempotencyClaim::InProgress,
                    Some(status) => IdempotencyClaim::Replay(StoredResponse {
                        status: u16::try_from(status).map_err(|_| StoreError::Corrupt(format!("idempotency status {status}")))?,
                        content_type,
                        body: body.unwrap_or_default(),
                    }),
                }
            };
            tx.commit().await?;
            Ok(claim)
        })
    }

    /// Keeps the answer to the request that claimed `key`.
    pub async fn finish_idempotent_request(
        &self,
        org: OrgId,
        key: &str,
        request: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query(
            "UPDATE idempotency_keys SET status = $4, content_type = $5, response_body = $6 \
             WHERE org_id = $1 AND idempotency_key = $2 AND request = $3",
        )
        .bind(org)
        .bind(key)
        .bind(request)
        .bind(i32::from(response.status))
        .bind(response.content_type.as_deref())
        .bind(&response.body)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Frees `key` after a request that must not be replayed (a server error), so the
    /// client's retry runs again.
    pub async fn release_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
        request: &str,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query(
            "DELETE FROM idempotency_keys WHERE org_id = $1 AND idempotency_key = $2 AND request = $3",
        )
        .bind(org)
        .bind(key)
        .bind(request)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
