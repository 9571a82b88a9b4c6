//! Contacts as the API manages them: create, search, update, delete (with their
//! conversations) and merge two into one. Each change writes its events in the same
//! transaction and returns them for the caller to publish.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::VisitorDetails;
use kaltalk_core::{ContactId, ConversationId, OrgId};
use serde_json::{Map, Value, json};
use sqlx::types::Json;

use crate::chat::{
    CONTACT_COLUMNS, CONTACT_CREATED, CONTACT_UPDATED, CONVERSATION_UPDATED, Contact,
    ContactFields, Written,
};
use crate::events::{NewEvent, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

/// A contact was deleted, on its own or merged into another.
pub const CONTACT_DELETED: &str = "contact.deleted";

/// A change to a contact: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ContactChange {
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub external_id: Option<Option<String>>,
    /// Replaces the attributes object.
    pub attributes: Option<Value>,
}

/// One page of contacts, newest first.
#[derive(Debug, Clone, Default)]
pub struct ContactQuery<'a> {
    /// Words matched (case-insensitively, anywhere) in the name or the email address.
    pub search: Option<&'a str>,
    /// Continue strictly after this contact (the previous page's last).
    pub after: Option<(DateTime<Utc>, ContactId)>,
    pub limit: i64,
}

/// `text` as a LIKE pattern matching it anywhere, its wildcards escaped with `!`.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The target's attributes with the source's keys the target lacks.
fn merged_attributes(target: &Value, source: &Value) -> Value {
    let mut merged: Map<String, Value> = target.as_object().cloned().unwrap_or_default();
    if let Some(source) = source.as_object() {
        for (key, value) in source {
            merged.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Value::Object(merged)
}

macro_rules! fetch_contact {
    ($tx:expr, $org:expr, $id:expr) => {{
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2");
        sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql))
            .bind($org)
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await
    }};
}

impl Store {
    /// A new contact (no widget session behind it).
    pub async fn create_contact(
        &self,
        org: OrgId,
        fields: &ContactFields,
        now: DateTime<Utc>,
    ) -> Result<Written<Contact>, StoreError> {
        let id = ContactId::new();
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO contacts (id, org_id, external_id, name, email, details, attributes, first_seen_at, last_seen_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8, $8)",
            )
            .bind(id)
            .bind(org)
            .bind(&fields.external_id)
            .bind(&fields.name)
            .bind(&fields.email)
            .bind(Json(VisitorDetails::default()))
            .bind(Json(fields.attributes.clone().unwrap_or_else(|| json!({}))))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let event = append_event!(tx, NewEvent::new(Some(org), CONTACT_CREATED, id.as_uuid(), json!({})), now)?;
            let contact = fetch_contact!(tx, org, id)?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(Written { value: contact, events: vec![event] })
        })
    }

    /// Contacts, newest first, optionally only those whose name or email contains the
    /// search text.
    pub async fn list_contacts(
        &self,
        org: OrgId,
        query: &ContactQuery<'_>,
    ) -> Result<Vec<Contact>, StoreError> {
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 \
             AND ($2 IS NULL OR LOWER(COALESCE(name, '')) LIKE $2 ESCAPE '!' OR LOWER(COALESCE(email, '')) LIKE $2 ESCAPE '!') \
             AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let pattern = query
            .search
            .filter(|s| !s.trim().is_empty())
            .map(contains_pattern);
        let (after_at, after_id) = match query.after {
            Some((at, id)) => (Some(at), Some(id)),
            None => (None, None),
        };
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(pattern.as_deref())
            .bind(after_at)
            .bind(after_id)
            .bind(query.limit.clamp(1, 200))
            .fetch_all(pool)
            .await)?,
        )
    }

    /// Finds a contact of `org` by external id, else by email address (case-insensitive).
    pub async fn find_contact(
        &self,
        org: OrgId,
        external_id: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<Contact>, StoreError> {
        if let Some(external_id) = external_id {
            let sql = format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND external_id = $2"
            );
            let found = on_db!(self, pool => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql)).bind(org).bind(external_id).fetch_optional(pool).await)?;
            if found.is_some() {
                return Ok(found);
            }
        }
        let Some(email) = email else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND LOWER(email) = $2 ORDER BY created_at, id LIMIT 1"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql)).bind(org).bind(email.to_lowercase()).fetch_optional(pool).await)?,
        )
    }

    /// Applies `change`; a real change is a `contact.updated` event.
    pub async fn update_contact(
        &self,
        org: OrgId,
        id: ContactId,
        change: &ContactChange,
        now: DateTime<Utc>,
    ) -> Result<Written<Contact>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let current = fetch_contact!(tx, org, id)?.ok_or(StoreError::NotFound)?;
            let name = change.name.clone().unwrap_or(current.name.clone());
            let email = change.email.clone().unwrap_or(current.email.clone());
            let external_id = change.external_id.clone().unwrap_or(current.external_id.clone());
            let attributes = change.attributes.clone().unwrap_or(current.attributes.0.clone());
            let changed = (&name, &email, &external_id, &attributes)
                != (&current.name, &current.email, &current.external_id, &current.attributes.0);
            if !changed {
                return Ok(Written { value: current, events: Vec::new() });
            }
            sqlx::query(
                "UPDATE contacts SET name = $3, email = $4, external_id = $5, attributes = $6, updated_at = $7 \
                 WHERE org_id = $1 AND id = $2",
            )
            .bind(org)
            .bind(id)
            .bind(&name)
            .bind(&email)
            .bind(&external_id)
            .bind(Json(&attributes))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let event = append_event!(tx, NewEvent::new(Some(org), CONTACT_UPDATED, id.as_uuid(), json!({})), now)?;
            let contact = fetch_contact!(tx, org, id)?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(Written { value: contact, events: vec![event] })
        })
    }

    /// Deletes a contact and, by cascade, its conversations, messages and widget
    /// sessions; with them what the event log and the webhook deliveries kept of them
    /// (message texts and contact details ride in event payloads and delivery bodies),
    /// and the auto-replies and bounces that came from their address. Returns the blob
    /// keys of the deleted attachments and email originals, for the caller to remove
    /// from blob storage once the rows are gone.
    pub async fn delete_contact(
        &self,
        org: OrgId,
        id: ContactId,
        now: DateTime<Utc>,
    ) -> Result<Written<Vec<String>>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // The files of the contact's messages and the originals of their emails.
            let blobs: Vec<(String,)> = sqlx::query_as(
                "SELECT a.storage_key FROM attachments a JOIN conversations c ON c.id = a.conversation_id \
                 WHERE c.org_id = $1 AND c.contact_id = $2 \
                 UNION ALL SELECT em.raw_key FROM email_messages em JOIN conversations c ON c.id = em.conversation_id \
                 WHERE c.org_id = $1 AND c.contact_id = $2 AND em.raw_key IS NOT NULL",
            )
            .bind(org)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            // The contact's events: about the contact itself, or in one of its conversations.
            let about_contact = "SELECT id FROM events WHERE org_id = $1 AND (subject_id = $2 \
                 OR conversation_id IN (SELECT id FROM conversations WHERE org_id = $1 AND contact_id = $2))";
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM webhook_deliveries WHERE org_id = $1 AND event_id IN ({about_contact})"
            )))
            .bind(org)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM events WHERE id IN ({about_contact})")))
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            // Auto-replies and bounces belong to no conversation; they came from the
            // contact's address.
            let noise_originals: Vec<(Option<String>,)> = sqlx::query_as(
                "DELETE FROM email_messages WHERE org_id = $1 AND conversation_id IS NULL \
                 AND LOWER(from_address) = (SELECT LOWER(email) FROM contacts WHERE org_id = $1 AND id = $2) \
                 RETURNING raw_key",
            )
            .bind(org)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            let deleted = sqlx::query("DELETE FROM contacts WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if deleted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = append_event!(tx, NewEvent::new(Some(org), CONTACT_DELETED, id.as_uuid(), json!({})), now)?;
            tx.commit().await?;
            let keys = blobs.into_iter().map(|(key,)| key).chain(noise_originals.into_iter().filter_map(|(key,)| key));
            Ok(Written { value: keys.collect(), events: vec![event] })
        })
    }

    /// Merges `source` into `into`: its conversations, widget sessions and messages move
    /// to `into`, which keeps its own fields and takes the source's where it has none;
    /// then `source` is deleted. An AI opt-out of either one holds for the merged contact.
    pub async fn merge_contacts(
        &self,
        org: OrgId,
        source: ContactId,
        into: ContactId,
        now: DateTime<Utc>,
    ) -> Result<Written<Contact>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let from = fetch_contact!(tx, org, source)?.ok_or(StoreError::NotFound)?;
            let target = fetch_contact!(tx, org, into)?.ok_or(StoreError::NotFound)?;
            let (source_opted_out,): (bool,) = sqlx::query_as("SELECT ai_opt_out FROM contacts WHERE id = $1")
                .bind(source)
                .fetch_one(&mut *tx)
                .await?;
            let moved: Vec<(ConversationId,)> = sqlx::query_as(
                "UPDATE conversations SET contact_id = $3, updated_at = $4 WHERE org_id = $1 AND contact_id = $2 RETURNING id",
            )
            .bind(org)
            .bind(source)
            .bind(into)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("UPDATE visitor_sessions SET contact_id = $2 WHERE contact_id = $1")
                .bind(source)
                .bind(into)
                .execute(&mut *tx)
                .await?;
            // The customer's messages keep showing the customer's (merged) name.
            sqlx::query("UPDATE messages SET sender_id = $3 WHERE org_id = $1 AND sender_kind = 'contact' AND sender_id = $2")
                .bind(org)
                .bind(source)
                .bind(into)
                .execute(&mut *tx)
                .await?;
            // Deleted before the target takes its external id, which is unique.
            sqlx::query("DELETE FROM contacts WHERE id = $1")
                .bind(source)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE contacts SET name = COALESCE(name, $2), email = COALESCE(email, $3), external_id = COALESCE(external_id, $4), \
                 attributes = $5, ai_opt_out = (ai_opt_out OR $6), first_seen_at = $7, updated_at = $8 WHERE id = $1",
            )
            .bind(into)
            .bind(&from.name)
            .bind(&from.email)
            .bind(&from.external_id)
            .bind(Json(merged_attributes(&target.attributes.0, &from.attributes.0)))
            .bind(source_opted_out)
            .bind(target.first_seen_at.min(from.first_seen_at))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let mut events = Vec::new();
            for (conversation,) in moved {
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), CONVERSATION_UPDATED, conversation.as_uuid(), json!({ "contact_id": into }))
                        .in_conversation(conversation),
                    now
                )?);
            }
            events.push(append_event!(tx, NewEvent::new(Some(org), CONTACT_DELETED, source.as_uuid(), json!({ "merged_into": into })), now)?);
            events.push(append_event!(tx, NewEvent::new(Some(org), CONTACT_UPDATED, into.as_uuid(), json!({ "merged_from": source })), now)?);
            let merged = fetch_contact!(tx, org, into)?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(Written { value: merged, events })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_a_literal_pattern() {
        assert_eq!(contains_pattern(" Ada_100%! "), "%ada!_100!%!!%");
    }

    #[test]
    fn the_target_keeps_its_attributes_and_gains_the_missing_ones() {
        let merged = merged_attributes(
            &json!({"plan": "pro"}),
            &json!({"plan": "free", "city": "Oslo"}),
        );
        assert_eq!(merged, json!({"plan": "pro", "city": "Oslo"}));
    }
}
