//! Contacts as the API manages them: create, search, update, delete (with their
//! conversations) and merge two into one. Each change writes its events in the same
//! transaction and returns them for the caller to publish.

mod contact;
mod visitors;

pub use contact::*;
pub use visitors::*;

use chrono::{DateTime, Utc};
use kaltalk_core::chat::VisitorDetails;
use kaltalk_core::event::{ContactCreated, ContactDeleted, ContactUpdated, ConversationUpdated};
use kaltalk_core::{ContactId, ConversationId, OrgId, UserId, ValidationError};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::types::Json;

use crate::events::{NewEvent, Written, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

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
            let event = append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactCreated {}), now)?;
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
            let event = append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactUpdated::default()), now)?;
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
            let event = append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactDeleted::default()), now)?;
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
            // What the team wrote about the source is about the merged customer.
            sqlx::query("UPDATE contact_notes SET contact_id = $3 WHERE org_id = $1 AND contact_id = $2")
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
                 attributes = $5, ai_opt_out = (ai_opt_out OR $6), first_seen_at = $7, updated_at = $8, phone = COALESCE(phone, $9) WHERE id = $1",
            )
            .bind(into)
            .bind(&from.name)
            .bind(&from.email)
            .bind(&from.external_id)
            .bind(Json(merged_attributes(&target.attributes.0, &from.attributes.0)))
            .bind(source_opted_out)
            .bind(target.first_seen_at.min(from.first_seen_at))
            .bind(now)
            .bind(&from.phone)
            .execute(&mut *tx)
            .await?;
            let mut events = Vec::new();
            for (conversation,) in moved {
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), conversation.as_uuid(), ConversationUpdated::contact(into))
                        .in_conversation(conversation),
                    now
                )?);
            }
            events.push(append_event!(tx, NewEvent::new(Some(org), source.as_uuid(), ContactDeleted { merged_into: Some(into) }), now)?);
            events.push(append_event!(tx, NewEvent::new(Some(org), into.as_uuid(), ContactUpdated { merged_from: Some(source), ..ContactUpdated::default() }), now)?);
            let merged = fetch_contact!(tx, org, into)?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(Written { value: merged, events })
        })
    }
}

/// What a custom attribute holds. Values are stored in `contacts.attributes` as JSON: a
/// string for text, dates (`YYYY-MM-DD`) and list choices, a number, or a boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeKind {
    Text,
    Number,
    Date,
    Boolean,
    List,
}

impl AttributeKind {
    pub const ALL: [AttributeKind; 5] = [
        AttributeKind::Text,
        AttributeKind::Number,
        AttributeKind::Date,
        AttributeKind::Boolean,
        AttributeKind::List,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttributeKind::Text => "text",
            AttributeKind::Number => "number",
            AttributeKind::Date => "date",
            AttributeKind::Boolean => "boolean",
            AttributeKind::List => "list",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AttributeKind::Text => "Text",
            AttributeKind::Number => "Number",
            AttributeKind::Date => "Date",
            AttributeKind::Boolean => "Yes / no",
            AttributeKind::List => "List",
        }
    }
}

impl std::fmt::Display for AttributeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AttributeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AttributeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown attribute kind {s:?}"))
    }
}

impl TryFrom<String> for AttributeKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// A custom attribute an admin defined for the organization's contacts.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct AttributeDefinition {
    pub id: uuid::Uuid,
    #[serde(skip)]
    pub org_id: OrgId,
    pub key: String,
    pub label: String,
    #[sqlx(try_from = "String")]
    pub kind: AttributeKind,
    /// A list's choices, in order.
    pub options: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

/// The longest text value an attribute keeps.
pub const MAX_ATTRIBUTE_TEXT_CHARS: usize = 500;

impl AttributeDefinition {
    /// The value to store for what a person typed (a form, a CSV cell): `None` for an
    /// empty input, which removes the attribute from the contact.
    pub fn parse_value(&self, input: &str) -> Result<Option<Value>, ValidationError> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(None);
        }
        let refuse = |message: String| ValidationError::new("attributes", message);
        let label = &self.label;
        let value = match self.kind {
            AttributeKind::Text => {
                if input.chars().count() > MAX_ATTRIBUTE_TEXT_CHARS {
                    return Err(refuse(format!(
                        "{label}: use at most {MAX_ATTRIBUTE_TEXT_CHARS} characters."
                    )));
                }
                if input
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t')
                {
                    return Err(refuse(format!("{label}: remove control characters.")));
                }
                Value::String(input.to_owned())
            }
            AttributeKind::Number => number_value(input)
                .ok_or_else(|| refuse(format!("{label}: enter a number, like 42 or 9.5.")))?,
            AttributeKind::Date => {
                let date = chrono::NaiveDate::parse_from_str(input, "%Y-%m-%d")
                    .map_err(|_| refuse(format!("{label}: enter a date as YYYY-MM-DD.")))?;
                Value::String(date.format("%Y-%m-%d").to_string())
            }
            AttributeKind::Boolean => match input.to_lowercase().as_str() {
                "true" | "yes" | "y" | "1" | "on" => Value::Bool(true),
                "false" | "no" | "n" | "0" | "off" => Value::Bool(false),
                _ => return Err(refuse(format!("{label}: answer yes or no."))),
            },
            AttributeKind::List => {
                let choice = self
                    .options
                    .0
                    .iter()
                    .find(|o| o.eq_ignore_ascii_case(input))
                    .ok_or_else(|| {
                        refuse(format!(
                            "{label}: choose one of {}.",
                            self.options.0.join(", ")
                        ))
                    })?;
                Value::String(choice.clone())
            }
        };
        Ok(Some(value))
    }

    /// A stored value as a person reads it (and as a form or a CSV cell holds it).
    pub fn show(&self, value: &Value) -> String {
        show_value(value)
    }
}

/// A stored attribute value as text: strings as they are, `yes`/`no` for booleans.
pub fn show_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        other => other.to_string(),
    }
}

/// `input` as a JSON number, integral numbers as integers (so `42` and `42.0` are stored
/// and matched alike).
fn number_value(input: &str) -> Option<Value> {
    let number: f64 = input.parse().ok().filter(|n: &f64| n.is_finite())?;
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        return Some(Value::from(number as i64));
    }
    serde_json::Number::from_f64(number).map(Value::Number)
}

/// A new attribute definition, already checked by [`NewAttributeDefinition::parse`].
#[derive(Debug, Clone)]
pub struct NewAttributeDefinition {
    pub key: String,
    pub label: String,
    pub kind: AttributeKind,
    pub options: Vec<String>,
}

/// A list's choices as typed: one per line or comma-separated, trimmed, duplicates
/// refused.
pub fn parse_options(input: &str) -> Result<Vec<String>, ValidationError> {
    let mut options: Vec<String> = Vec::new();
    for option in input
        .split(['\n', ','])
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        if option.chars().count() > 60 || option.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "options",
                "Each choice is at most 60 characters on one line.",
            ));
        }
        if options.iter().any(|o| o.eq_ignore_ascii_case(option)) {
            return Err(ValidationError::new(
                "options",
                format!("{option} is listed twice."),
            ));
        }
        options.push(option.to_owned());
    }
    if options.len() > 100 {
        return Err(ValidationError::new("options", "Use at most 100 choices."));
    }
    Ok(options)
}

impl NewAttributeDefinition {
    /// Checks what an admin typed: a key of lower-case letters, digits and underscores
    /// starting with a letter (it names the attribute in the API, CSV files and filters),
    /// a label, a kind, and for a list at least one choice.
    pub fn parse(
        key: &str,
        label: &str,
        kind: &str,
        options: &str,
    ) -> Result<Self, Vec<ValidationError>> {
        let mut errors = Vec::new();
        let key = key.trim().to_lowercase();
        let key_ok = (1..=40).contains(&key.chars().count())
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            errors.push(ValidationError::new(
                "key",
                "Use 1 to 40 lower-case letters, digits or underscores, starting with a letter, e.g. plan or signup_date.",
            ));
        }
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 60 || label.chars().any(char::is_control) {
            errors.push(ValidationError::new(
                "label",
                "Give it a label of 1 to 60 characters on one line, e.g. Plan.",
            ));
        }
        let kind = match kind.parse::<AttributeKind>() {
            Ok(kind) => Some(kind),
            Err(_) => {
                errors.push(ValidationError::new("kind", "Choose a type."));
                None
            }
        };
        let options = match parse_options(options) {
            Ok(options) => options,
            Err(error) => {
                errors.push(error);
                Vec::new()
            }
        };
        if kind == Some(AttributeKind::List)
            && options.is_empty()
            && errors.iter().all(|e| e.field != "options")
        {
            errors.push(ValidationError::new(
                "options",
                "A list needs its choices, one per line.",
            ));
        }
        match kind {
            Some(kind) if errors.is_empty() => Ok(Self {
                key,
                label: label.to_owned(),
                options: if kind == AttributeKind::List {
                    options
                } else {
                    Vec::new()
                },
                kind,
            }),
            _ => Err(errors),
        }
    }
}

/// "This contact's attribute `key` holds `value`", for the contact list and the inbox's
/// conversation list. `value` is compared with the stored JSON: as a string, and also as
/// the number or boolean it spells, so `plan=pro`, `seats=5` and `vip=true` all match
/// what the forms store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMatch {
    pub key: String,
    pub value: String,
}

impl AttributeMatch {
    /// The stored JSON text of the value as a string.
    pub fn as_text(&self) -> String {
        Value::String(self.value.clone()).to_string()
    }

    /// The stored JSON text of the value as a number or boolean, if it spells one.
    pub fn as_other(&self) -> Option<String> {
        let value = self.value.trim();
        match value.to_lowercase().as_str() {
            "true" | "yes" => return Some("true".to_owned()),
            "false" | "no" => return Some("false".to_owned()),
            _ => {}
        }
        number_value(value).map(|n| n.to_string())
    }
}

/// SQL that is true when the contact row `alias` matches an [`AttributeMatch`] bound at
/// `$first` (the key), `$first + 1` ([`AttributeMatch::as_text`]) and `$first + 2`
/// ([`AttributeMatch::as_other`]). `->` with a key that is not a JSON path reads that
/// key on both backends, and the value's JSON text is the same on both (serde_json
/// wrote it).
pub(crate) fn attribute_matches(alias: &str, first: usize) -> String {
    format!(
        "CAST({alias}.attributes -> ${first} AS TEXT) IN (${}, ${})",
        first + 1,
        first + 2
    )
}

/// One page of the Contacts section's list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ContactListQuery {
    /// Words, each matched as the start of a word of the name, email or phone (the
    /// full-text index: fast however many contacts there are).
    pub search: Option<String>,
    pub attribute: Option<AttributeMatch>,
    /// Only contacts with an email address.
    pub has_email: bool,
    /// Continue strictly after this contact (the previous page's last).
    pub after: Option<(DateTime<Utc>, ContactId)>,
    pub limit: i64,
}

/// A note the team keeps about a contact.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ContactNote {
    pub id: uuid::Uuid,
    pub contact_id: ContactId,
    pub author_id: Option<UserId>,
    /// The author's name, while they have an account.
    pub author_name: Option<String>,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// The longest contact note.
pub const MAX_NOTE_CHARS: usize = 5000;

/// A contact as a CSV import row sets it: found by email address (case-insensitive) and
/// updated, or created.
#[derive(Debug, Clone, Default)]
pub struct ImportRow {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Attribute values to set, already checked against their definitions.
    pub attributes: Map<String, Value>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub created: usize,
    pub updated: usize,
}

const NOTE_SELECT: &str = "SELECT n.id, n.contact_id, n.author_id, u.name AS author_name, n.text, n.created_at \
     FROM contact_notes n LEFT JOIN users u ON u.id = n.author_id";
const DEFINITION_COLUMNS: &str = "id, org_id, key, label, kind, options, created_at";

impl Store {
    /// One page of contacts for the Contacts section (see [`ContactListQuery`]).
    pub async fn contacts_page(
        &self,
        org: OrgId,
        query: &ContactListQuery,
    ) -> Result<Vec<Contact>, StoreError> {
        let terms = query
            .search
            .as_deref()
            .map(crate::labels::search_terms)
            .unwrap_or_default();
        // The dialects differ only in how the search words are matched.
        let (matches, pattern) = match self.db {
            crate::Db::Sqlite(_) => (
                "rowid IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH $2)",
                terms
                    .iter()
                    .map(|t| format!("\"{t}\"*"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            crate::Db::Postgres(_) => (
                "to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, '')) @@ to_tsquery('simple', $2)",
                terms
                    .iter()
                    .map(|t| format!("'{}':*", t.replace('\'', "")))
                    .collect::<Vec<_>>()
                    .join(" & "),
            ),
        };
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 \
             AND ($2 IS NULL OR {matches}) \
             AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
             AND ($6 IS NULL OR {}) \
             AND ($9 = FALSE OR email IS NOT NULL) \
             ORDER BY created_at DESC, id DESC LIMIT $5",
            attribute_matches("contacts", 6)
        );
        let (after_at, after_id) = match query.after {
            Some((at, id)) => (Some(at), Some(id)),
            None => (None, None),
        };
        let attribute = query.attribute.as_ref();
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind((!terms.is_empty()).then_some(pattern.as_str()))
            .bind(after_at)
            .bind(after_id)
            .bind(query.limit.clamp(1, 200))
            .bind(attribute.map(|a| a.key.as_str()))
            .bind(attribute.map(|a| a.as_text()))
            .bind(attribute.and_then(|a| a.as_other()))
            .bind(query.has_email)
            .fetch_all(pool)
            .await)?,
        )
    }

    /// Every contact of `org`, oldest first (the CSV export).
    pub async fn all_contacts(&self, org: OrgId) -> Result<Vec<Contact>, StoreError> {
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 ORDER BY created_at, id"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    /// The contact's conversations on every channel, latest activity first.
    pub async fn contact_conversations(
        &self,
        org: OrgId,
        contact: ContactId,
    ) -> Result<Vec<crate::conversations::ConversationSummary>, StoreError> {
        let sql = format!(
            "{} WHERE c.org_id = $1 AND c.contact_id = $2 ORDER BY c.last_message_at DESC, c.id DESC LIMIT 500",
            crate::conversations::SUMMARY_SELECT
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, crate::conversations::ConversationSummary>(sqlx::AssertSqlSafe(sql)).bind(org).bind(contact).fetch_all(pool).await)?,
        )
    }

    /// Sets the name, email and phone the team sees (`None` clears one); a real change is
    /// a `contact.updated` event.
    pub async fn update_contact_profile(
        &self,
        org: OrgId,
        id: ContactId,
        name: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Written<Contact>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let current = fetch_contact!(tx, org, id)?.ok_or(StoreError::NotFound)?;
            if (current.name.as_deref(), current.email.as_deref(), current.phone.as_deref()) == (name, email, phone) {
                return Ok(Written { value: current, events: Vec::new() });
            }
            sqlx::query("UPDATE contacts SET name = $3, email = $4, phone = $5, updated_at = $6 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .bind(name)
                .bind(email)
                .bind(phone)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let event = append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactUpdated::default()), now)?;
            let contact = fetch_contact!(tx, org, id)?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(Written { value: contact, events: vec![event] })
        })
    }

    /// Sets (`Some`) or removes (`None`) attribute values, leaving the contact's other
    /// attributes as they are. The read and the write are one transaction, so two agents
    /// editing different attributes at once both keep their change.
    pub async fn set_contact_attributes(
        &self,
        org: OrgId,
        id: ContactId,
        changes: &[(String, Option<Value>)],
        now: DateTime<Utc>,
    ) -> Result<Written<Contact>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let current = fetch_contact!(tx, org, id)?.ok_or(StoreError::NotFound)?;
            let mut attributes = current.attributes.0.as_object().cloned().unwrap_or_default();
            for (key, value) in changes {
                match value {
                    Some(value) => attributes.insert(key.clone(), value.clone()),
                    None => attributes.remove(key),
                };
            }
            let attributes = Value::Object(attributes);
            if attributes == current.attributes.0 {
                return Ok(Written { value: current, events: Vec::new() });
            }
            sqlx::query("UPDATE contacts SET attributes = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(id)
                .bind(Json(&attributes))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let event = append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactUpdated::default()), now)?;
            let contact = fetch_contact!(tx, org, id)?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(Written { value: contact, events: vec![event] })
        })
    }

    /// Creates the contacts of an import and updates those found by email address, in
    /// one transaction: an import happens whole or not at all.
    pub async fn import_contacts(
        &self,
        org: OrgId,
        rows: &[ImportRow],
        now: DateTime<Utc>,
    ) -> Result<Written<Imported>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut imported = Imported::default();
            let mut events = Vec::new();
            let by_email = format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND LOWER(email) = $2 ORDER BY created_at, id LIMIT 1"
            );
            for row in rows {
                let existing = match &row.email {
                    Some(email) => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(by_email.clone()))
                        .bind(org)
                        .bind(email.to_lowercase())
                        .fetch_optional(&mut *tx)
                        .await?,
                    None => None,
                };
                match existing {
                    Some(contact) => {
                        let mut attributes = contact.attributes.0.as_object().cloned().unwrap_or_default();
                        attributes.extend(row.attributes.clone());
                        sqlx::query(
                            "UPDATE contacts SET name = COALESCE($3, name), phone = COALESCE($4, phone), attributes = $5, updated_at = $6 \
                             WHERE org_id = $1 AND id = $2",
                        )
                        .bind(org)
                        .bind(contact.id)
                        .bind(&row.name)
                        .bind(&row.phone)
                        .bind(Json(Value::Object(attributes)))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        events.push(append_event!(tx, NewEvent::new(Some(org), contact.id.as_uuid(), ContactUpdated::default()), now)?);
                        imported.updated += 1;
                    }
                    None => {
                        let id = ContactId::new();
                        sqlx::query(
                            "INSERT INTO contacts (id, org_id, name, email, phone, details, attributes, first_seen_at, last_seen_at, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8, $8)",
                        )
                        .bind(id)
                        .bind(org)
                        .bind(&row.name)
                        .bind(&row.email)
                        .bind(&row.phone)
                        .bind(Json(VisitorDetails::default()))
                        .bind(Json(Value::Object(row.attributes.clone())))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        events.push(append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactCreated {}), now)?);
                        imported.created += 1;
                    }
                }
            }
            tx.commit().await?;
            Ok(Written { value: imported, events })
        })
    }

    /// Which of `emails` (lower-cased) already belong to a contact of `org`.
    pub async fn known_contact_emails(
        &self,
        org: OrgId,
        emails: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut known = std::collections::HashSet::new();
        // In chunks: one query per address would be thousands of round trips, one query
        // for all of them could pass the backends' parameter limits.
        for chunk in emails.chunks(500) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT DISTINCT LOWER(email) FROM contacts WHERE org_id = $1 AND LOWER(email) IN ({placeholders})"
            );
            let found: Vec<(String,)> = on_db!(self, pool => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org);
                for email in chunk {
                    query = query.bind(email.to_lowercase());
                }
                query.fetch_all(pool).await
            })?;
            known.extend(found.into_iter().map(|(e,)| e));
        }
        Ok(known)
    }

    pub async fn list_contact_notes(
        &self,
        org: OrgId,
        contact: ContactId,
    ) -> Result<Vec<ContactNote>, StoreError> {
        let sql = format!(
            "{NOTE_SELECT} WHERE n.org_id = $1 AND n.contact_id = $2 ORDER BY n.created_at DESC, n.id DESC"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, ContactNote>(sqlx::AssertSqlSafe(sql)).bind(org).bind(contact).fetch_all(pool).await)?,
        )
    }

    /// A note about a contact of `org` (not found: the contact is not `org`'s).
    pub async fn add_contact_note(
        &self,
        org: OrgId,
        contact: ContactId,
        author: UserId,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<ContactNote, StoreError> {
        let id = uuid::Uuid::now_v7();
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO contact_notes (id, org_id, contact_id, author_id, text, created_at) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM contacts WHERE org_id = $2 AND id = $3)",
            )
            .bind(id)
            .bind(org)
            .bind(contact)
            .bind(author)
            .bind(text)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let sql = format!("{NOTE_SELECT} WHERE n.id = $1");
            let note = sqlx::query_as::<_, ContactNote>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(note)
        })
    }

    pub async fn delete_contact_note(
        &self,
        org: OrgId,
        contact: ContactId,
        note: uuid::Uuid,
    ) -> Result<(), StoreError> {
        let deleted = on_db!(self, pool => sqlx::query("DELETE FROM contact_notes WHERE org_id = $1 AND contact_id = $2 AND id = $3")
            .bind(org)
            .bind(contact)
            .bind(note)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The organization's attribute definitions, in the order they were made.
    pub async fn list_attribute_definitions(
        &self,
        org: OrgId,
    ) -> Result<Vec<AttributeDefinition>, StoreError> {
        let sql = format!(
            "SELECT {DEFINITION_COLUMNS} FROM contact_attribute_definitions WHERE org_id = $1 ORDER BY created_at, id"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, AttributeDefinition>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn create_attribute_definition(
        &self,
        org: OrgId,
        definition: &NewAttributeDefinition,
        now: DateTime<Utc>,
    ) -> Result<AttributeDefinition, StoreError> {
        let id = uuid::Uuid::now_v7();
        let sql = format!(
            "INSERT INTO contact_attribute_definitions (id, org_id, key, label, kind, options, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {DEFINITION_COLUMNS}"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, AttributeDefinition>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(org)
            .bind(&definition.key)
            .bind(&definition.label)
            .bind(definition.kind.as_str())
            .bind(Json(&definition.options))
            .bind(now)
            .fetch_one(pool)
            .await)?,
        )
    }

    /// Renames a definition and replaces a list's choices. Its key and kind stay: values
    /// already stored were checked against them.
    pub async fn update_attribute_definition(
        &self,
        org: OrgId,
        id: uuid::Uuid,
        label: &str,
        options: &[String],
        now: DateTime<Utc>,
    ) -> Result<AttributeDefinition, StoreError> {
        let sql = format!(
            "UPDATE contact_attribute_definitions SET label = $3, options = $4, updated_at = $5 \
             WHERE org_id = $1 AND id = $2 RETURNING {DEFINITION_COLUMNS}"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, AttributeDefinition>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(id)
            .bind(label)
            .bind(Json(options))
            .bind(now)
            .fetch_one(pool)
            .await)?,
        )
    }

    /// Deletes a definition. The values contacts hold stay (the API still shows them);
    /// the dashboard stops showing and checking them.
    pub async fn delete_attribute_definition(
        &self,
        org: OrgId,
        id: uuid::Uuid,
    ) -> Result<(), StoreError> {
        let deleted = on_db!(self, pool => sqlx::query("DELETE FROM contact_attribute_definitions WHERE org_id = $1 AND id = $2")
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
