//! Labels on conversations, canned responses, conversation search, and waking snoozed
//! conversations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kaltalk_core::chat::ConversationStatus;
use kaltalk_core::event::ConversationUpdated;
use kaltalk_core::{ConversationId, OrgId, ValidationError};
use serde::Serialize;

use crate::conversations::ConversationSummary;
use crate::events::{NewEvent, Written, append_event};
use crate::{BeginWrite, Conflict, Db, Store, StoreError, on_db};

/// How many of the newest matching messages a search reads, widening while they hold
/// fewer conversations than the page asks for (each read starts again from the newest:
/// no cursor, at most the last window's worth).
const SEARCH_WINDOWS: [i64; 3] = [500, 4_000, 20_000];

/// The most labels one conversation can have: each is shown on every inbox row, so a
/// conversation with thousands made every inbox page megabytes long.
pub const MAX_LABELS: usize = 20;
/// The longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 40;

/// A label as stored: lower case, words joined by dashes, at most [`MAX_LABEL_CHARS`].
/// The dashboard's label form and the API's label filter and list both go through it.
pub fn normalize_label(input: &str) -> Result<String, ValidationError> {
    let label = input
        .trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    let valid = !label.is_empty()
        && label.chars().count() <= MAX_LABEL_CHARS
        && label
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(label)
    } else {
        Err(ValidationError::new(
            "label",
            format!("Use 1 to {MAX_LABEL_CHARS} letters, digits, dashes or underscores."),
        ))
    }
}

/// A saved reply, typed as `/shortcut`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct CannedResponse {
    pub id: uuid::Uuid,
    #[serde(skip)]
    pub org_id: OrgId,
    pub shortcut: String,
    pub text: String,
}

/// Turns what someone typed into FTS5 / tsquery terms: words only (no operators, so
/// input can never be query syntax), each matching as a prefix.
pub fn search_terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.' && c != '-' && c != '_')
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|t| !t.is_empty())
        .take(8)
        .collect()
}

macro_rules! labels_event {
    ($tx:expr, $org:expr, $conversation:expr, $now:expr) => {{
        let labels: Vec<(String,)> = sqlx::query_as(
            "SELECT label FROM conversation_labels WHERE conversation_id = $1 ORDER BY label",
        )
        .bind($conversation)
        .fetch_all(&mut *$tx)
        .await?;
        let labels: Vec<String> = labels.into_iter().map(|(l,)| l).collect();
        append_event!(
            $tx,
            NewEvent::new(
                Some($org),
                $conversation.as_uuid(),
                ConversationUpdated::labels(labels)
            )
            .in_conversation($conversation),
            $now
        )?
    }};
}

impl Store {
    pub async fn add_label(
        &self,
        org: OrgId,
        conversation: ConversationId,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let found: Option<(ConversationId,)> = sqlx::query_as("SELECT id FROM conversations WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(conversation)
                .fetch_optional(&mut *tx)
                .await?;
            found.ok_or(StoreError::NotFound)?;
            sqlx::query(
                "INSERT INTO conversation_labels (conversation_id, org_id, label, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (conversation_id, label) DO NOTHING",
            )
            .bind(conversation)
            .bind(org)
            .bind(label)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // Counted after the insert, in the same write transaction, so two agents
            // adding the last allowed label at once cannot both pass.
            let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM conversation_labels WHERE conversation_id = $1")
                .bind(conversation)
                .fetch_one(&mut *tx)
                .await?;
            if usize::try_from(count).unwrap_or(usize::MAX) > MAX_LABELS {
                return Err(StoreError::Conflict(Conflict::TooManyLabels));
            }
            let event = labels_event!(tx, org, conversation, now);
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    pub async fn remove_label(
        &self,
        org: OrgId,
        conversation: ConversationId,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let removed = sqlx::query("DELETE FROM conversation_labels WHERE org_id = $1 AND conversation_id = $2 AND label = $3")
                .bind(org)
                .bind(conversation)
                .bind(label)
                .execute(&mut *tx)
                .await?;
            if removed.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = labels_event!(tx, org, conversation, now);
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// Replaces a conversation's labels with `labels` (already normalized, at most
    /// [`MAX_LABELS`]), in one transaction with one `conversation.updated` event.
    pub async fn set_labels(
        &self,
        org: OrgId,
        conversation: ConversationId,
        labels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        if labels.len() > MAX_LABELS {
            return Err(StoreError::Conflict(Conflict::TooManyLabels));
        }
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let found: Option<(ConversationId,)> = sqlx::query_as("SELECT id FROM conversations WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(conversation)
                .fetch_optional(&mut *tx)
                .await?;
            found.ok_or(StoreError::NotFound)?;
            sqlx::query("DELETE FROM conversation_labels WHERE conversation_id = $1")
                .bind(conversation)
                .execute(&mut *tx)
                .await?;
            for label in labels {
                sqlx::query(
                    "INSERT INTO conversation_labels (conversation_id, org_id, label, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (conversation_id, label) DO NOTHING",
                )
                .bind(conversation)
                .bind(org)
                .bind(label)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let event = labels_event!(tx, org, conversation, now);
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    pub async fn labels_of(
        &self,
        org: OrgId,
        conversation: ConversationId,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_db!(self, pool => sqlx::query_as(
            "SELECT label FROM conversation_labels WHERE org_id = $1 AND conversation_id = $2 ORDER BY label",
        )
        .bind(org)
        .bind(conversation)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(l,)| l).collect())
    }

    /// The labels of several conversations of `org` at once (a page of the list).
    pub async fn labels_of_conversations(
        &self,
        org: OrgId,
        conversations: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Vec<String>>, StoreError> {
        let mut labels: HashMap<ConversationId, Vec<String>> = HashMap::new();
        // A list page is at most 200 conversations; one query per such chunk.
        for chunk in conversations.chunks(200) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT conversation_id, label FROM conversation_labels WHERE org_id = $1 \
                 AND conversation_id IN ({}) ORDER BY label",
                placeholders.join(", ")
            );
            let rows: Vec<(ConversationId, String)> = on_db!(self, pool => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(org);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(pool).await
            })?;
            for (id, label) in rows {
                labels.entry(id).or_default().push(label);
            }
        }
        Ok(labels)
    }

    /// How many conversations of `org` with `status` carry each label (the counts beside
    /// the label views).
    pub async fn label_counts(
        &self,
        org: OrgId,
        status: ConversationStatus,
    ) -> Result<HashMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = on_db!(self, pool => sqlx::query_as(
            // From the conversations with the status (conversations_status_idx) to their
            // labels, not from every label of the organization.
            "SELECT l.label, COUNT(*) FROM conversations c \
             JOIN conversation_labels l ON l.conversation_id = c.id \
             WHERE c.org_id = $1 AND c.status = $2 GROUP BY l.label",
        )
        .bind(org)
        .bind(status.as_str())
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().collect())
    }

    /// Every label the organization uses, for suggestions and the label views.
    pub async fn organization_labels(&self, org: OrgId) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_db!(self, pool => sqlx::query_as(
            "SELECT DISTINCT label FROM conversation_labels WHERE org_id = $1 ORDER BY label",
        )
        .bind(org)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(l,)| l).collect())
    }

    // ---- canned responses ----------------------------------------------------------------

    pub async fn list_canned_responses(
        &self,
        org: OrgId,
    ) -> Result<Vec<CannedResponse>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, CannedResponse>(
            "SELECT id, org_id, shortcut, text FROM canned_responses WHERE org_id = $1 ORDER BY shortcut",
        )
        .bind(org)
        .fetch_all(pool)
        .await)?)
    }

    pub async fn create_canned_response(
        &self,
        org: OrgId,
        shortcut: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query(
            "INSERT INTO canned_responses (id, org_id, shortcut, text, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(org)
        .bind(shortcut)
        .bind(text)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn delete_canned_response(
        &self,
        org: OrgId,
        id: uuid::Uuid,
    ) -> Result<(), StoreError> {
        let deleted = on_db!(self, pool => sqlx::query("DELETE FROM canned_responses WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Edits a canned response in place: its shortcut and text.
    pub async fn update_canned_response(
        &self,
        org: OrgId,
        id: uuid::Uuid,
        shortcut: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let updated = on_db!(self, pool => sqlx::query(
            "UPDATE canned_responses SET shortcut = $3, text = $4, updated_at = $5 WHERE org_id = $1 AND id = $2",
        )
        .bind(org)
        .bind(id)
        .bind(shortcut)
        .bind(text)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn find_canned_response(
        &self,
        org: OrgId,
        shortcut: &str,
    ) -> Result<Option<CannedResponse>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, CannedResponse>(
            "SELECT id, org_id, shortcut, text FROM canned_responses WHERE org_id = $1 AND shortcut = $2",
        )
        .bind(org)
        .bind(shortcut)
        .fetch_optional(pool)
        .await)?)
    }

    // ---- search -------------------------------------------------------------------------

    /// Conversations whose messages (notes included) or contact name or email match every
    /// word of `query` (as prefixes), newest activity first, each with its newest matching
    /// message as `matched_text`.
    ///
    /// It starts from the matches, never from the conversations: the newest matching
    /// messages are read from the full-text index (newest first, in the
    /// [`SEARCH_WINDOWS`]) until they hold `limit` conversations; the contacts whose name
    /// or email match give theirs; only those candidates are then read and ordered. What
    /// it costs grows with the page asked for, not with the history. A conversation whose
    /// only match is older than the widest window is not found by that word.
    pub async fn search_conversations(
        &self,
        org: OrgId,
        query: &str,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let terms = search_terms(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let limit = limit.clamp(1, 200);
        // The dialects differ only in how a document is matched.
        let (newest_matches, matching_contacts, pattern) = match self.db {
            Db::Sqlite(_) => (
                // CROSS JOIN: the full-text index drives, the messages are looked up.
                "SELECT m.conversation_id, m.text FROM messages_fts CROSS JOIN messages m ON m.rowid = messages_fts.rowid \
                 WHERE messages_fts MATCH $2 AND m.org_id = $1 ORDER BY messages_fts.rowid DESC LIMIT $3",
                "SELECT c.id FROM contacts_fts CROSS JOIN contacts ct ON ct.rowid = contacts_fts.rowid \
                 JOIN conversations c ON c.contact_id = ct.id WHERE contacts_fts MATCH $2 AND ct.org_id = $1 \
                 ORDER BY contacts_fts.rowid DESC LIMIT $3",
                terms
                    .iter()
                    .map(|t| format!("\"{t}\"*"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Db::Postgres(_) => (
                "SELECT m.conversation_id, m.text FROM messages m WHERE m.org_id = $1 \
                 AND m.search_words @@ to_tsquery('simple', $2) ORDER BY m.id DESC LIMIT $3",
                // MATERIALIZED: the matching contacts come from the GIN index; with the
                // LIMIT pushed down, the planner would walk every contact newest first.
                "WITH hits AS MATERIALIZED (SELECT ct.id, ct.created_at FROM contacts ct WHERE ct.org_id = $1 \
                 AND ct.search_words @@ to_tsquery('simple', $2)) \
                 SELECT c.id FROM hits JOIN conversations c ON c.contact_id = hits.id \
                 ORDER BY hits.created_at DESC, hits.id DESC LIMIT $3",
                terms
                    .iter()
                    .map(|t| format!("'{}':*", t.replace('\'', "")))
                    .collect::<Vec<_>>()
                    .join(" & "),
            ),
        };
        let mut candidates: Vec<ConversationId> = Vec::new();
        // Each candidate's newest matching message: the passage its result shows.
        let mut matched: HashMap<ConversationId, String> = HashMap::new();
        for window in SEARCH_WINDOWS {
            let newest: Vec<(ConversationId, String)> = on_db!(self, pool => sqlx::query_as(newest_matches)
                .bind(org)
                .bind(&pattern)
                .bind(window)
                .fetch_all(pool)
                .await)?;
            let all_read = (newest.len() as i64) < window;
            candidates.clear();
            matched.clear();
            for (conversation, text) in newest {
                if (candidates.len() as i64) < limit && !matched.contains_key(&conversation) {
                    candidates.push(conversation);
                    matched.insert(conversation, text);
                }
            }
            if all_read || candidates.len() as i64 >= limit {
                break;
            }
        }
        let by_contact: Vec<(ConversationId,)> = on_db!(self, pool => sqlx::query_as(matching_contacts)
            .bind(org)
            .bind(&pattern)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        candidates.extend(
            by_contact
                .into_iter()
                .map(|(c,)| c)
                // A conversation matched by a message is there already.
                .filter(|c| !matched.contains_key(c)),
        );
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..candidates.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        let sql = format!(
            "{} WHERE c.org_id = $1 AND c.id IN ({}) ORDER BY c.last_message_at DESC, c.id DESC LIMIT $2",
            crate::conversations::SUMMARY_SELECT,
            placeholders.join(", ")
        );
        let mut found = on_db!(self, pool => {
            let mut query = sqlx::query_as::<_, ConversationSummary>(sqlx::AssertSqlSafe(sql))
                .bind(org)
                .bind(limit);
            for id in &candidates {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await
        })?;
        for summary in &mut found {
            summary.matched_text = matched.remove(&summary.conversation.id);
        }
        Ok(found)
    }

    // ---- snoozes --------------------------------------------------------------------------

    /// Reopens snoozed conversations whose time has come.
    pub async fn wake_snoozed(&self, now: DateTime<Utc>) -> Result<Written<usize>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let woken: Vec<(ConversationId, OrgId)> = sqlx::query_as(
                "UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = $1 \
                 WHERE status = 'snoozed' AND snoozed_until <= $1 RETURNING id, org_id",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let mut events = Vec::new();
            for (id, org) in &woken {
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(*org), id.as_uuid(), ConversationUpdated::woke()).in_conversation(*id),
                    now
                )?);
            }
            tx.commit().await?;
            Ok(Written { value: woken.len(), events })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_are_words_without_syntax() {
        assert_eq!(search_terms("Order #1234"), ["order", "1234"]);
        assert_eq!(search_terms("ada@example.com"), ["ada@example.com"]);
        assert_eq!(search_terms("\"; DROP TABLE x; --"), ["drop", "table", "x"]);
        assert!(search_terms("  *:& ").is_empty());
    }
}
