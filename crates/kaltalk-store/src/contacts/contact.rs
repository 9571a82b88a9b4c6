//! A contact as a conversation knows it, and the identity a verified widget visitor brings.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::VisitorDetails;
use kaltalk_core::event::ContactUpdated;
use kaltalk_core::{ContactId, OrgId};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use crate::contacts::VisitorSession;
use crate::events::{NewEvent, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Contact {
    pub id: ContactId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// As the team typed it (the Contacts section); no channel sets it yet.
    pub phone: Option<String>,
    pub details: Json<VisitorDetails>,
    pub attributes: Json<Value>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Who the visitor says they are, after the server checked it (identity verification).
#[derive(Debug, Clone, Default)]
pub struct ContactFields {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub attributes: Option<Value>,
}

pub(crate) const CONTACT_COLUMNS: &str = "id, org_id, external_id, name, email, phone, details, attributes, first_seen_at, last_seen_at, created_at";

/// A contact's identity fields inside a transaction, to tell whether a write changed them
/// (a `contact.updated` event is written only for a real change).
macro_rules! contact_identity {
    ($tx:expr, $id:expr) => {
        sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>, Json<Value>)>(
            "SELECT external_id, name, email, attributes FROM contacts WHERE id = $1",
        )
        .bind($id)
        .fetch_one(&mut *$tx)
        .await
        .map(|(external_id, name, email, attributes)| (external_id, name, email, attributes.0))
    };
}

pub(crate) use contact_identity;

impl Store {
    /// Applies verified identity fields to the session's contact; a real change is a
    /// `contact.updated` event. A contact's verified id, once set, is never replaced (the
    /// widget starts a new session for another user).
    pub async fn identify_contact(
        &self,
        session: &VisitorSession,
        fields: &ContactFields,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(contact) = session.contact_id else {
            return Ok(()); // no contact yet: the fields are applied with the first message
        };
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let before = contact_identity!(tx, contact)?;
            sqlx::query(
                "UPDATE contacts SET name = COALESCE($3, name), email = COALESCE($4, email), \
                 attributes = COALESCE($5, attributes), updated_at = $6, \
                 external_id = CASE WHEN external_id IS NOT NULL OR EXISTS (SELECT 1 FROM contacts o WHERE o.org_id = contacts.org_id \
                     AND o.external_id = $2 AND o.id <> contacts.id) THEN external_id ELSE $2 END \
                 WHERE id = $1",
            )
            .bind(contact)
            .bind(&fields.external_id)
            .bind(&fields.name)
            .bind(&fields.email)
            .bind(fields.attributes.as_ref().map(Json))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if contact_identity!(tx, contact)? != before {
                append_event!(tx, NewEvent::new(Some(session.org_id), contact.as_uuid(), ContactUpdated::default()), now)?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn get_contact(&self, org: OrgId, id: ContactId) -> Result<Contact, StoreError> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_one(pool).await)?,
        )
    }
}
