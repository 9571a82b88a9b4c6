//! The knowledge base: sources (text snippets, URLs, sites, files), their state, and the
//! chunks the AI agent retrieves from. A re-index swaps a source's chunks in one
//! transaction, so the knowledge base is never half empty, and bumps the organization's
//! knowledge version so every instance rebuilds its search index.

use chrono::{DateTime, Utc};
use kaltalk_core::OrgId;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::events::{NewEvent, append_event};
use crate::jobs::{NewJob, insert_job};
use crate::{Store, StoreError, on_db};

/// The job that (re)builds a source's chunks.
pub const INDEX_SOURCE_JOB: &str = "knowledge.index";
pub const SOURCE_UPDATED: &str = "knowledge.source_updated";

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Source {
    pub id: Uuid,
    #[serde(skip)]
    pub org_id: OrgId,
    pub kind: String,
    pub title: String,
    pub url: Option<String>,
    #[serde(skip)]
    pub body: Option<String>,
    pub state: String,
    pub error: Option<String>,
    pub pages: i32,
    pub chunks: i32,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A chunk ready to store.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub title: String,
    pub heading_path: String,
    pub url: Option<String>,
    pub text: String,
    pub embedding: Option<Vec<f32>>,
    pub embedding_model: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Chunk {
    pub id: Uuid,
    pub source_id: Uuid,
    pub ordinal: i32,
    pub title: String,
    pub heading_path: String,
    pub url: Option<String>,
    pub text: String,
    pub embedding: Option<Vec<u8>>,
}

const SOURCE_COLUMNS: &str =
    "id, org_id, kind, title, url, body, state, error, pages, chunks, last_synced_at, created_at";

impl Store {
    /// Adds a text snippet (title + Markdown) and queues its indexing, one transaction.
    pub async fn add_text_source(
        &self,
        org: OrgId,
        title: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO knowledge_sources (id, org_id, kind, title, body, state, created_at, updated_at) \
                 VALUES ($1, $2, 'text', $3, $4, 'queued', $5, $5)",
            )
            .bind(id)
            .bind(org)
            .bind(title)
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_job!(tx, NewJob::new(INDEX_SOURCE_JOB, json!({ "org_id": org, "source_id": id })), now)?;
            append_event!(tx, NewEvent::new(Some(org), SOURCE_UPDATED, id, json!({ "state": "queued" })), now)?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Adds a web page (`url`) or a whole site (`site`) and queues its indexing.
    pub async fn add_web_source(
        &self,
        org: OrgId,
        kind: &str,
        title: &str,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO knowledge_sources (id, org_id, kind, title, url, state, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, $6)",
            )
            .bind(id)
            .bind(org)
            .bind(kind)
            .bind(title)
            .bind(url)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_job!(tx, NewJob::new(INDEX_SOURCE_JOB, json!({ "org_id": org, "source_id": id })), now)?;
            append_event!(tx, NewEvent::new(Some(org), SOURCE_UPDATED, id, json!({ "state": "queued" })), now)?;
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn list_sources(&self, org: OrgId) -> Result<Vec<Source>, StoreError> {
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM knowledge_sources WHERE org_id = $1 ORDER BY created_at DESC, id DESC"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Source>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn get_source(&self, org: OrgId, id: Uuid) -> Result<Source, StoreError> {
        let sql =
            format!("SELECT {SOURCE_COLUMNS} FROM knowledge_sources WHERE org_id = $1 AND id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Source>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_one(pool).await)?,
        )
    }

    /// Queues a re-sync of an existing source.
    pub async fn resync_source(
        &self,
        org: OrgId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query("UPDATE knowledge_sources SET state = 'queued', error = NULL, updated_at = $3 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_job!(tx, NewJob::new(INDEX_SOURCE_JOB, json!({ "org_id": org, "source_id": id })), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a source and its chunks (cascade) and bumps the knowledge version.
    pub async fn delete_source(
        &self,
        org: OrgId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM knowledge_sources WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if deleted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("UPDATE organizations SET knowledge_version = knowledge_version + 1 WHERE id = $1")
                .bind(org)
                .execute(&mut *tx)
                .await?;
            append_event!(tx, NewEvent::new(Some(org), SOURCE_UPDATED, id, json!({ "state": "deleted" })), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn set_source_state(
        &self,
        org: OrgId,
        id: Uuid,
        state: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE knowledge_sources SET state = $3, error = $4, updated_at = $5 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .bind(state)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            append_event!(tx, NewEvent::new(Some(org), SOURCE_UPDATED, id, json!({ "state": state, "error": error })), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces a source's chunks with `chunks` in one transaction, marks it ready, and
    /// bumps the organization's knowledge version.
    pub async fn replace_chunks(
        &self,
        org: OrgId,
        source: Uuid,
        pages: i32,
        chunks: &[NewChunk],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM knowledge_chunks WHERE org_id = $1 AND source_id = $2")
                .bind(org)
                .bind(source)
                .execute(&mut *tx)
                .await?;
            for (ordinal, chunk) in chunks.iter().enumerate() {
                let embedding: Option<Vec<u8>> = chunk.embedding.as_ref().map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect());
                sqlx::query(
                    "INSERT INTO knowledge_chunks (id, org_id, source_id, ordinal, title, heading_path, url, text, embedding, embedding_model, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(Uuid::now_v7())
                .bind(org)
                .bind(source)
                .bind(ordinal as i32)
                .bind(&chunk.title)
                .bind(&chunk.heading_path)
                .bind(&chunk.url)
                .bind(&chunk.text)
                .bind(embedding)
                .bind(&chunk.embedding_model)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE knowledge_sources SET state = 'ready', error = NULL, pages = $3, chunks = $4, last_synced_at = $5, updated_at = $5 \
                 WHERE org_id = $1 AND id = $2",
            )
            .bind(org)
            .bind(source)
            .bind(pages)
            .bind(chunks.len() as i32)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE organizations SET knowledge_version = knowledge_version + 1 WHERE id = $1")
                .bind(org)
                .execute(&mut *tx)
                .await?;
            append_event!(tx, NewEvent::new(Some(org), SOURCE_UPDATED, source, json!({ "state": "ready", "chunks": chunks.len() })), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The version of the organization's knowledge; it changes with every swap.
    pub async fn knowledge_version(&self, org: OrgId) -> Result<i64, StoreError> {
        let (version,): (i64,) = on_db!(self, pool => sqlx::query_as("SELECT knowledge_version FROM organizations WHERE id = $1")
            .bind(org)
            .fetch_one(pool)
            .await)?;
        Ok(version)
    }

    /// Every chunk of an organization, for building its search index.
    pub async fn org_chunks(&self, org: OrgId) -> Result<Vec<Chunk>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Chunk>(
            "SELECT id, source_id, ordinal, title, heading_path, url, text, embedding FROM knowledge_chunks \
             WHERE org_id = $1 ORDER BY source_id, ordinal",
        )
        .bind(org)
        .fetch_all(pool)
        .await)?)
    }
}
