//! API keys: created, listed, revoked and checked on every API request.

use super::*;

impl Store {
    pub async fn create_api_key(
        &self,
        key: &NewApiKey,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id = ApiKeyId::new();
            sqlx::query(
                "INSERT INTO api_keys (id, org_id, name, prefix, token_hash, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(key.org_id)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&key.token_hash)
            .bind(key.created_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            append_event!(tx, NewEvent::new(Some(key.org_id), id.as_uuid(), ApiKeyCreated { name: key.name.clone() }), now)?;
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id DESC"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, ApiKey>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn revoke_api_key(
        &self,
        org: OrgId,
        id: ApiKeyId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL")
                .bind(org)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ApiKeyRevoked {}), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The live (unrevoked) key with this hash, noting its use at most once a minute.
    pub async fn authenticate_api_key(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKey>, StoreError> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL"
        );
        let key = on_db!(self, pool => sqlx::query_as::<_, ApiKey>(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?;
        if let Some(key) = &key {
            let stale = key
                .last_used_at
                .is_none_or(|t| now - t > chrono::Duration::minutes(1));
            if stale {
                on_db!(self, pool => sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(key.id)
                    .bind(now)
                    .execute(pool)
                    .await.map(|r| r.rows_affected()))?;
            }
        }
        Ok(key)
    }
}
