//! The knowledge base: sources (text snippets, URLs, sites, files), their state, and the
//! chunks the AI agent retrieves from. A re-index swaps a source's chunks in one
//! transaction, so the knowledge base is never half empty, and bumps the organization's
//! knowledge version so every instance rebuilds its search index.

use chrono::{DateTime, Utc};
use kaltalk_core::OrgId;
use kaltalk_core::event::SourceUpdated;
use kaltalk_core::job::{IndexSource, Reembed};
use serde::Serialize;
use uuid::Uuid;

use crate::events::{NewEvent, append_event};
use crate::jobs::{NewJob, insert_job};
use crate::{BeginWrite, Store, StoreError, on_db};

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
    /// The uploaded file's name (file sources).
    pub file_name: Option<String>,
    /// Where the uploaded file's bytes are kept (file sources).
    #[serde(skip)]
    pub blob_key: Option<String>,
    /// How often a web source is re-synced on its own (none: only when asked).
    pub sync_interval_hours: Option<i32>,
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Chunks embedded so far while an indexing run embeds them; `None` otherwise.
    pub progress_done: Option<i32>,
    pub progress_total: Option<i32>,
}

impl Source {
    pub fn sync_interval(&self) -> Option<SyncInterval> {
        self.sync_interval_hours.and_then(SyncInterval::from_hours)
    }

    /// Whether the scheduler may re-sync it: only web sources change behind our back.
    pub fn can_be_scheduled(&self) -> bool {
        matches!(self.kind.as_str(), "url" | "site")
    }
}

/// How often a web source is re-read on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncInterval {
    Daily,
    Weekly,
}

impl SyncInterval {
    pub fn hours(self) -> i32 {
        match self {
            Self::Daily => 24,
            Self::Weekly => 24 * 7,
        }
    }

    pub fn from_hours(hours: i32) -> Option<Self> {
        match hours {
            24 => Some(Self::Daily),
            168 => Some(Self::Weekly),
            _ => None,
        }
    }

    /// From its name, `daily` or `weekly`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }

    fn after(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::hours(i64::from(self.hours()))
    }
}

/// An uploaded file to add as a source; its bytes are already in blob storage.
#[derive(Debug, Clone)]
pub struct NewFileSource<'a> {
    pub title: &'a str,
    pub file_name: &'a str,
    pub blob_key: &'a str,
}

/// A source's row as first written: the columns its kind uses.
#[derive(Default)]
struct NewSource<'a> {
    kind: &'a str,
    title: &'a str,
    body: Option<&'a str>,
    url: Option<&'a str>,
    file_name: Option<&'a str>,
    blob_key: Option<&'a str>,
    interval: Option<SyncInterval>,
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
    /// The vector as f32 little-endian bytes (see [`vector_from_bytes`]).
    pub embedding: Option<Vec<u8>>,
    /// The embedder's model id that made `embedding`.
    pub embedding_model: Option<String>,
}

const SOURCE_COLUMNS: &str = "id, org_id, kind, title, url, body, state, error, pages, chunks, last_synced_at, created_at, \
     file_name, blob_key, sync_interval_hours, next_sync_at, progress_done, progress_total";

/// A source the scheduler found due, before it is claimed.
#[derive(sqlx::FromRow)]
struct DueSource {
    id: Uuid,
    org_id: OrgId,
    next_sync_at: DateTime<Utc>,
    sync_interval_hours: i32,
}

/// How many due sources one scheduler tick queues at most; the rest wait for the next.
const DUE_BATCH: i64 = 100;

/// A vector as stored: f32 little-endian, 4 bytes a dimension (BLOB / bytea).
pub fn vector_to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The stored bytes back as a vector; `None` if their length is no whole number of f32s.
pub fn vector_from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// The columns a [`Chunk`] is read from.
const CHUNK_COLUMNS: &str =
    "id, source_id, ordinal, title, heading_path, url, text, embedding, embedding_model";

impl Store {
    /// Adds a text snippet (title + Markdown) and queues its indexing, one transaction.
    pub async fn add_text_source(
        &self,
        org: OrgId,
        title: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let source = NewSource {
            kind: "text",
            title,
            body: Some(body),
            ..NewSource::default()
        };
        self.add_source(org, &source, now).await
    }

    /// Adds a web page (`url`) or a whole site (`site`) and queues its indexing; with an
    /// interval, it is re-synced on its own from then on.
    pub async fn add_web_source(
        &self,
        org: OrgId,
        kind: &str,
        title: &str,
        url: &str,
        interval: Option<SyncInterval>,
        now: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let source = NewSource {
            kind,
            title,
            url: Some(url),
            interval,
            ..NewSource::default()
        };
        self.add_source(org, &source, now).await
    }

    /// Adds an uploaded file, whose bytes are already stored under `blob_key`, and queues
    /// its indexing.
    pub async fn add_file_source(
        &self,
        org: OrgId,
        file: &NewFileSource<'_>,
        now: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let source = NewSource {
            kind: "file",
            title: file.title,
            file_name: Some(file.file_name),
            blob_key: Some(file.blob_key),
            ..NewSource::default()
        };
        self.add_source(org, &source, now).await
    }

    /// Inserts a source and queues its indexing, with its event, in one transaction.
    async fn add_source(
        &self,
        org: OrgId,
        source: &NewSource<'_>,
        now: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        let interval = source.interval;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO knowledge_sources (id, org_id, kind, title, body, url, file_name, blob_key, \
                 state, sync_interval_hours, next_sync_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $11, $11)",
            )
            .bind(id)
            .bind(org)
            .bind(source.kind)
            .bind(source.title)
            .bind(source.body)
            .bind(source.url)
            .bind(source.file_name)
            .bind(source.blob_key)
            .bind(interval.map(SyncInterval::hours))
            .bind(interval.map(|i| i.after(now)))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_job!(tx, NewJob::new(&IndexSource { org_id: org, source_id: id }), now)?;
            append_event!(tx, NewEvent::new(Some(org), id, SourceUpdated::state("queued")), now)?;
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

    /// Queues a re-sync of an existing source. A scheduled source's next sync counts from
    /// now, since this one brings it up to date.
    pub async fn resync_source(
        &self,
        org: OrgId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let source = self.get_source(org, id).await?;
        let next = source.sync_interval().map(|i| i.after(now));
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE knowledge_sources SET state = 'queued', error = NULL, next_sync_at = $3, updated_at = $4 \
                 WHERE org_id = $1 AND id = $2",
            )
            .bind(org)
            .bind(id)
            .bind(next)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_job!(tx, NewJob::new(&IndexSource { org_id: org, source_id: id }), now)?;
            append_event!(tx, NewEvent::new(Some(org), id, SourceUpdated::state("queued")), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces a text source's title and body and queues its re-indexing (the existing
    /// indexing job swaps its chunks when done), one transaction. Other kinds are
    /// NotFound: their text comes from a page or a file, not from here.
    pub async fn update_text_source(
        &self,
        org: OrgId,
        id: Uuid,
        title: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE knowledge_sources SET title = $3, body = $4, state = 'queued', error = NULL, updated_at = $5 \
                 WHERE org_id = $1 AND id = $2 AND kind = 'text'",
            )
            .bind(org)
            .bind(id)
            .bind(title)
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_job!(tx, NewJob::new(&IndexSource { org_id: org, source_id: id }), now)?;
            append_event!(tx, NewEvent::new(Some(org), id, SourceUpdated::state("queued")), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Sets how often a web source re-syncs on its own (`None`: only when asked); the next
    /// sync counts from now.
    pub async fn set_sync_interval(
        &self,
        org: OrgId,
        id: Uuid,
        interval: Option<SyncInterval>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let next_sync_at = interval.map(|i| i.after(now));
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE knowledge_sources SET sync_interval_hours = $3, next_sync_at = $4, updated_at = $5 \
                 WHERE org_id = $1 AND id = $2 AND kind IN ('url', 'site')",
            )
            .bind(org)
            .bind(id)
            .bind(interval.map(SyncInterval::hours))
            .bind(next_sync_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), id, SourceUpdated { sync_every: Some(interval.map(|i| i.as_str().to_owned())), next_sync_at: Some(next_sync_at), ..SourceUpdated::default() }), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Queues every scheduled source whose time has come, once: each is claimed by moving
    /// its `next_sync_at` on from the value read, so another instance (or tick) that read
    /// the same value updates nothing and queues nothing. A source still being synced is
    /// left due and picked up once it is idle. Returns the sources queued.
    pub async fn queue_due_syncs(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(OrgId, Uuid)>, StoreError> {
        let due: Vec<DueSource> = on_db!(self, pool => sqlx::query_as(
            "SELECT id, org_id, next_sync_at, sync_interval_hours FROM knowledge_sources \
             WHERE next_sync_at <= $1 AND sync_interval_hours IS NOT NULL AND kind IN ('url', 'site') \
             AND state IN ('ready', 'failed') ORDER BY next_sync_at LIMIT $2",
        )
        .bind(now)
        .bind(DUE_BATCH)
        .fetch_all(pool)
        .await)?;
        let mut queued = Vec::new();
        for source in due {
            let next = now + chrono::Duration::hours(i64::from(source.sync_interval_hours));
            let (org, id) = (source.org_id, source.id);
            // One short transaction per source, its claim first: on SQLite a transaction
            // that read before writing could not wait for a concurrent writer.
            let claimed: bool = on_db!(self, pool => {
                let mut tx = pool.begin_write().await?;
                let claimed = sqlx::query(
                    "UPDATE knowledge_sources SET state = 'queued', error = NULL, next_sync_at = $3, updated_at = $4 \
                     WHERE id = $1 AND next_sync_at = $2",
                )
                .bind(id)
                .bind(source.next_sync_at)
                .bind(next)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() == 0 {
                    // Claimed elsewhere since it was read.
                    Ok::<bool, StoreError>(false)
                } else {
                    insert_job!(tx, NewJob::new(&IndexSource { org_id: org, source_id: id }), now)?;
                    append_event!(tx, NewEvent::new(Some(org), id, SourceUpdated { scheduled: Some(true), ..SourceUpdated::state("queued") }), now)?;
                    tx.commit().await?;
                    Ok(true)
                }
            })?;
            if claimed {
                queued.push((org, id));
            }
        }
        Ok(queued)
    }

    /// Deletes a source and its chunks (cascade) and bumps the knowledge version. Returns
    /// the key of its stored file, if it had one, for the caller to remove from blob
    /// storage once the row is gone.
    pub async fn delete_source(
        &self,
        org: OrgId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let deleted: Option<(Option<String>,)> = sqlx::query_as("DELETE FROM knowledge_sources WHERE org_id = $1 AND id = $2 RETURNING blob_key")
                .bind(org)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((blob_key,)) = deleted else {
                return Err(StoreError::NotFound);
            };
            sqlx::query("UPDATE organizations SET knowledge_version = knowledge_version + 1 WHERE id = $1")
                .bind(org)
                .execute(&mut *tx)
                .await?;
            append_event!(tx, NewEvent::new(Some(org), id, SourceUpdated::state("deleted")), now)?;
            tx.commit().await?;
            Ok(blob_key)
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
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE knowledge_sources SET state = $3, error = $4, progress_done = NULL, progress_total = NULL, updated_at = $5 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .bind(state)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            append_event!(tx, NewEvent::new(Some(org), id, SourceUpdated { error: Some(error.map(str::to_owned)), ..SourceUpdated::state(state) }), now)?;
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
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM knowledge_chunks WHERE org_id = $1 AND source_id = $2")
                .bind(org)
                .bind(source)
                .execute(&mut *tx)
                .await?;
            for (ordinal, chunk) in chunks.iter().enumerate() {
                let embedding: Option<Vec<u8>> = chunk.embedding.as_deref().map(vector_to_bytes);
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
                "UPDATE knowledge_sources SET state = 'ready', error = NULL, pages = $3, chunks = $4, last_synced_at = $5, updated_at = $5, \
                 progress_done = NULL, progress_total = NULL \
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
            append_event!(tx, NewEvent::new(Some(org), source, SourceUpdated { chunks: Some(chunks.len()), ..SourceUpdated::state("ready") }), now)?;
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

    /// A source's chunks in order, for its page in the dashboard.
    pub async fn source_chunks(&self, org: OrgId, source: Uuid) -> Result<Vec<Chunk>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Chunk>(
            sqlx::AssertSqlSafe(format!("SELECT {CHUNK_COLUMNS} FROM knowledge_chunks \
             WHERE org_id = $1 AND source_id = $2 ORDER BY ordinal")),
        )
        .bind(org)
        .bind(source)
        .fetch_all(pool)
        .await)?)
    }

    /// Every chunk of an organization, for building its search index.
    pub async fn org_chunks(&self, org: OrgId) -> Result<Vec<Chunk>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Chunk>(
            sqlx::AssertSqlSafe(format!("SELECT {CHUNK_COLUMNS} FROM knowledge_chunks \
             WHERE org_id = $1 ORDER BY source_id, ordinal")),
        )
        .bind(org)
        .fetch_all(pool)
        .await)?)
    }

    /// Records how far a source's embedding got. No event: it changes every few seconds
    /// and only the knowledge page shows it.
    pub async fn set_source_progress(
        &self,
        org: OrgId,
        id: Uuid,
        done: i32,
        total: i32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE knowledge_sources SET progress_done = $3, progress_total = $4, updated_at = $5 WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .bind(done)
            .bind(total)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Up to `limit` of the organization's chunks without a vector of `model`.
    pub async fn chunks_to_embed(
        &self,
        org: OrgId,
        model: &str,
        limit: i64,
    ) -> Result<Vec<Chunk>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Chunk>(
            sqlx::AssertSqlSafe(format!("SELECT {CHUNK_COLUMNS} FROM knowledge_chunks \
             WHERE org_id = $1 AND (embedding_model IS NULL OR embedding_model <> $2) ORDER BY source_id, ordinal LIMIT $3")),
        )
        .bind(org)
        .bind(model)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }

    /// Stores vectors of `model` for existing chunks, in one transaction. A chunk that
    /// was swapped out meanwhile is simply not found: its replacement gets its own.
    pub async fn set_chunk_embeddings(
        &self,
        org: OrgId,
        model: &str,
        vectors: &[(Uuid, Vec<f32>)],
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (id, vector) in vectors {
                sqlx::query("UPDATE knowledge_chunks SET embedding = $3, embedding_model = $4 WHERE org_id = $1 AND id = $2")
                    .bind(org)
                    .bind(id)
                    .bind(vector_to_bytes(vector))
                    .bind(model)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Makes every instance rebuild the organization's search index (new vectors).
    pub async fn bump_knowledge_version(&self, org: OrgId) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE organizations SET knowledge_version = knowledge_version + 1 WHERE id = $1")
            .bind(org)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Queues a re-embedding of every organization whose chunks lack vectors of `model`
    /// and returns how many were queued. Run at start, so a changed model re-embeds.
    pub async fn queue_reembedding(
        &self,
        model: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let orgs: Vec<(OrgId,)> = sqlx::query_as(
                "SELECT DISTINCT org_id FROM knowledge_chunks WHERE embedding_model IS NULL OR embedding_model <> $1",
            )
            .bind(model)
            .fetch_all(&mut *tx)
            .await?;
            for (org,) in &orgs {
                insert_job!(tx, NewJob::new(&Reembed { org_id: *org }), now)?;
            }
            tx.commit().await?;
            Ok(orgs.len())
        })
    }
}
