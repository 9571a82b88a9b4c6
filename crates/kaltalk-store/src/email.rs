//! The email channel's storage: an email becomes a conversation message in one
//! transaction with the record that threads it (its Message-ID), and an agent's or the
//! bot's reply on an email conversation is queued for the relay with the message itself.
//!
//! Threading, in order: a Message-ID in In-Reply-To / References that we sent or received
//! in this inbox, on a conversation of the same contact; else the conversation's reply
//! token (`support+<token>@…`), same contact; else a new conversation. "Same contact"
//! keeps a newsletter reply from someone else out of a customer's thread.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{MessageKind, SenderKind};
use kaltalk_core::event::MessageUpdated;
use kaltalk_core::{ContactId, ConversationId, EmailMessageId, InboxId, MessageId, OrgId};
use serde_json::{Value, json};
use sqlx::types::Json;

use crate::conversations::Conversation;
use crate::events::{NewEvent, Written, append_event};
use crate::inboxes::Inbox;
use crate::messages::{Message, MessageDraft, fetch_message, insert_message};
use crate::{BeginWrite, Store, StoreError, on_db};

/// Mail that must open nothing: recorded on the conversation it refers to, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailNoise {
    AutoReply,
    Bounce,
}

impl EmailNoise {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailNoise::AutoReply => "auto_reply",
            EmailNoise::Bounce => "bounce",
        }
    }
}

/// An automatic reply or a delivery failure report, parsed: it opens nothing, and is
/// recorded as a private note on the conversation it refers to.
pub struct NoiseEmail<'a> {
    pub inbox: &'a Inbox,
    /// Its Message-ID, without angle brackets (a stand-in derived from the content when
    /// the sender gave none, so a re-delivery is still recognised).
    pub rfc_message_id: &'a str,
    /// In-Reply-To first, then References newest first.
    pub thread_ids: &'a [String],
    pub from_address: &'a str,
    pub subject: &'a str,
    pub full_text: &'a str,
    pub html: Option<&'a str>,
    pub raw_key: Option<&'a str>,
    pub noise: EmailNoise,
    /// `smtp` or `imap`.
    pub source: &'a str,
}

/// What became of a received email.
// Returned once per email and never kept in a collection: boxing would only add a copy.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Received {
    /// Already stored (the same Message-ID in this inbox): nothing written.
    Duplicate,
    /// A customer message on a conversation (new or existing).
    Message {
        conversation: Conversation,
        message: Message,
    },
    /// An auto-reply or bounce: a private note on the conversation it refers to, or only
    /// the record when it refers to none.
    Noise {
        conversation: Option<ConversationId>,
    },
}

/// One email of a conversation, as the "view original" page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailRecord {
    pub id: EmailMessageId,
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub conversation_id: Option<ConversationId>,
    pub message_id: Option<MessageId>,
    pub direction: String,
    pub rfc_message_id: String,
    pub from_address: Option<String>,
    pub subject: String,
    pub noise: Option<String>,
    pub source: String,
    pub full_text: String,
    pub html: Option<String>,
    pub raw_key: Option<String>,
    pub delivery: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

const EMAIL_COLUMNS: &str = "id, org_id, inbox_id, conversation_id, message_id, direction, rfc_message_id, from_address, \
     subject, noise, source, full_text, html, raw_key, delivery, attempts, last_error, created_at";

/// Everything the relay job needs to send one reply.
#[derive(Debug, Clone)]
pub struct ReplyToSend {
    pub email: EmailRecord,
    pub inbox: Inbox,
    pub org_name: String,
    pub message: Message,
    pub contact_email: Option<String>,
    pub conversation_subject: String,
    pub reply_token: Option<String>,
    /// Message-IDs of the conversation's earlier emails, oldest first.
    pub thread: Vec<String>,
    /// The customer's latest email, which this one answers.
    pub in_reply_to: Option<String>,
}

/// How one delivery attempt of a reply ended.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Sent,
    /// Failed; the job will try again.
    Retrying(String),
    /// Failed for the last time.
    GaveUp(String),
    /// No SMTP relay is configured: the reply is kept in the organization's outbox (this
    /// email), as every email is until a relay is set up, and is not retried.
    KeptInOutbox(crate::outbox::NewEmail),
}

/// Where IMAP polling of an inbox stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ImapCursorRow {
    pub uid_validity: i64,
    pub last_uid: i64,
}

/// Attempts to send a reply: with the queue's backoff (5 s doubling, capped at an hour)
/// twelve attempts span about three and a half hours of relay trouble.
pub const REPLY_ATTEMPTS: i32 = 12;

/// The most References ids an outbound reply carries: the first (the thread's root) and
/// the newest, as RFC 5322 suggests for long threads.
const MAX_REFERENCES: usize = 20;
/// The most thread ids of one received email that are matched (a References header can
/// be long; the newest ids are the ones that matter).
pub(crate) const MAX_THREAD_IDS: usize = 50;

/// The conversation one of `ids` belongs to, in this inbox, optionally only the contact's.
macro_rules! find_thread {
    ($tx:expr, $inbox:expr, $ids:expr, $contact:expr) => {{
        let ids: &[String] = $ids;
        let contact: Option<ContactId> = $contact;
        let ids = &ids[..ids.len().min($crate::email::MAX_THREAD_IDS)];
        if ids.is_empty() {
            Ok(None)
        } else {
            let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "SELECT em.conversation_id FROM email_messages em JOIN conversations c ON c.id = em.conversation_id \
                 WHERE em.inbox_id = $1 AND ($2 IS NULL OR c.contact_id = $2) AND em.rfc_message_id IN ({}) \
                 ORDER BY em.created_at DESC LIMIT 1",
                placeholders.join(", ")
            );
            let mut query = sqlx::query_as::<_, (ConversationId,)>(sqlx::AssertSqlSafe(sql))
                .bind($inbox)
                .bind(contact);
            for id in ids {
                query = query.bind(id);
            }
            query.fetch_optional(&mut *$tx).await.map(|row| row.map(|(id,)| id))
        }
    }};
}

/// Records an email row.
macro_rules! insert_email {
    ($tx:expr, $org:expr, $inbox:expr, $conversation:expr, $message:expr, $direction:expr, $rfc:expr, $from:expr, $subject:expr,
     $noise:expr, $source:expr, $full_text:expr, $html:expr, $raw_key:expr, $delivery:expr, $now:expr) => {{
        let id = kaltalk_core::EmailMessageId::new();
        sqlx::query(
            "INSERT INTO email_messages (id, org_id, inbox_id, conversation_id, message_id, direction, rfc_message_id, from_address, \
             subject, noise, source, full_text, html, raw_key, delivery, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(id)
        .bind($org)
        .bind($inbox)
        .bind($conversation)
        .bind($message)
        .bind($direction)
        .bind($rfc)
        .bind($from)
        .bind($subject)
        .bind($noise)
        .bind($source)
        .bind($full_text)
        .bind($html)
        .bind($raw_key)
        .bind($delivery)
        .bind($now)
        .execute(&mut *$tx)
        .await
        .map(|_| id)
    }};
}

/// Called by `insert_message!` for an agent's or the bot's text: on an email
/// conversation, queues the reply for the relay in the same transaction, and returns the
/// message metadata with its delivery state (`None`: not an email conversation).
macro_rules! queue_email_reply {
    ($tx:expr, $org:expr, $conversation:expr, $message:expr, $metadata:expr, $now:expr) => {{
        let target: Option<(kaltalk_core::InboxId, String, Option<String>)> = sqlx::query_as(
            "SELECT i.id, i.email_address, c.subject FROM conversations c JOIN inboxes i ON i.id = c.inbox_id \
             WHERE c.id = $1 AND i.kind = 'email' AND i.email_address IS NOT NULL",
        )
        .bind($conversation)
        .fetch_optional(&mut *$tx)
        .await?;
        match target {
            Some((inbox, address, subject)) => {
                let domain = address.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_else(|| "kaltalk.invalid".to_owned());
                let rfc = format!("{}@{}", uuid::Uuid::now_v7().simple(), domain);
                let email = $crate::email::insert_email!(
                    $tx, $org, inbox, Some($conversation), Some($message), "out", &rfc, Some(&address),
                    subject.unwrap_or_default(), None::<&str>, "relay", "", None::<&str>, None::<&str>, Some("pending"), $now
                )?;
                let mut job = $crate::jobs::NewJob::new(&kaltalk_core::job::SendEmailReply { email_message_id: email });
                job.max_attempts = $crate::email::REPLY_ATTEMPTS;
                $crate::jobs::insert_job!($tx, job, $now)?;
                let mut metadata: serde_json::Value = $metadata.unwrap_or_else(|| serde_json::json!({}));
                metadata["email"] = serde_json::json!({ "delivery": "pending", "email_message_id": email });
                Some(metadata)
            }
            None => None,
        }
    }};
}
pub(crate) use {find_thread, insert_email, queue_email_reply};

fn note_for_noise(noise: EmailNoise, from: &str, subject: &str) -> String {
    match noise {
        EmailNoise::AutoReply => format!("Automatic reply from {from}: {subject}"),
        EmailNoise::Bounce => {
            format!("A delivery failure report arrived from {from}: {subject}")
        }
    }
}

impl Store {
    /// The email inbox that receives mail for `address` (a `+tag` is ignored).
    pub async fn find_email_inbox(&self, address: &str) -> Result<Option<Inbox>, StoreError> {
        let address = base_address(address);
        let sql = format!(
            "SELECT {} FROM inboxes WHERE email_address = $1 AND kind = 'email'",
            crate::inboxes::INBOX_COLUMNS
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Inbox>(sqlx::AssertSqlSafe(sql)).bind(address).fetch_optional(pool).await)?,
        )
    }

    /// Every email inbox, for the IMAP poller.
    pub async fn email_inboxes(&self) -> Result<Vec<Inbox>, StoreError> {
        let sql = format!(
            "SELECT {} FROM inboxes WHERE kind = 'email' ORDER BY id",
            crate::inboxes::INBOX_COLUMNS
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Inbox>(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)?,
        )
    }

    /// Records an automatic reply or bounce: a private note on the conversation it refers
    /// to, whoever sends it (a bounce comes from the mail system, not the customer), and
    /// the email's record. A Message-ID already stored in this inbox writes nothing.
    /// Customer mail goes through the intake ([`Store::take_in`]).
    pub async fn record_email_noise(
        &self,
        email: NoiseEmail<'_>,
        now: DateTime<Utc>,
    ) -> Result<Written<Received>, StoreError> {
        let inbox = email.inbox;
        let org = inbox.org_id;
        let from = email.from_address.trim().to_lowercase();
        let noise = email.noise;
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut events = Vec::new();
            let known: Option<(EmailMessageId,)> = sqlx::query_as("SELECT id FROM email_messages WHERE inbox_id = $1 AND rfc_message_id = $2")
                .bind(inbox.id)
                .bind(email.rfc_message_id)
                .fetch_optional(&mut *tx)
                .await?;
            if known.is_some() {
                return Ok(Written { value: Received::Duplicate, events });
            }
            let conversation = find_thread!(tx, inbox.id, email.thread_ids, None)?;
            let mut message = None;
            if let Some(conversation) = conversation {
                let text = note_for_noise(noise, &from, email.subject);
                let draft = MessageDraft {
                    sender_kind: SenderKind::System,
                    sender_id: None,
                    kind: MessageKind::Note,
                    text: &text,
                    client_id: None,
                    attachments: &[],
                    metadata: Some(json!({ "email": { "noise": noise.as_str() } })),
                };
                let (note, event) = insert_message!(tx, org, conversation, draft, now);
                events.push(event);
                message = Some(note.id);
            }
            insert_email!(tx, org, inbox.id, conversation, message, "in", email.rfc_message_id, Some(&from), email.subject,
                Some(noise.as_str()), email.source, email.full_text, email.html, email.raw_key, None::<&str>, now)?;
            tx.commit().await?;
            Ok(Written { value: Received::Noise { conversation }, events })
        })
    }

    /// The emails of a conversation, oldest first.
    pub async fn conversation_emails(
        &self,
        org: OrgId,
        conversation: ConversationId,
    ) -> Result<Vec<EmailRecord>, StoreError> {
        let sql = format!(
            "SELECT {EMAIL_COLUMNS} FROM email_messages WHERE org_id = $1 AND conversation_id = $2 ORDER BY created_at, id"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, EmailRecord>(sqlx::AssertSqlSafe(sql)).bind(org).bind(conversation).fetch_all(pool).await)?,
        )
    }

    /// The email behind a message (the original a customer sent, or our reply).
    pub async fn message_email(
        &self,
        org: OrgId,
        message: MessageId,
    ) -> Result<EmailRecord, StoreError> {
        let sql = format!(
            "SELECT {EMAIL_COLUMNS} FROM email_messages WHERE org_id = $1 AND message_id = $2 ORDER BY created_at LIMIT 1"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, EmailRecord>(sqlx::AssertSqlSafe(sql)).bind(org).bind(message).fetch_one(pool).await)?,
        )
    }

    /// Emails of an inbox that opened nothing (noise with no conversation), newest first.
    pub async fn unthreaded_emails(
        &self,
        org: OrgId,
        inbox: InboxId,
    ) -> Result<Vec<EmailRecord>, StoreError> {
        let sql = format!(
            "SELECT {EMAIL_COLUMNS} FROM email_messages WHERE org_id = $1 AND inbox_id = $2 AND conversation_id IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT 200"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, EmailRecord>(sqlx::AssertSqlSafe(sql)).bind(org).bind(inbox).fetch_all(pool).await)?,
        )
    }

    /// What the relay job needs to send a queued reply.
    pub async fn reply_to_send(&self, id: EmailMessageId) -> Result<ReplyToSend, StoreError> {
        let sql = format!("SELECT {EMAIL_COLUMNS} FROM email_messages WHERE id = $1");
        let email = on_db!(self, pool => sqlx::query_as::<_, EmailRecord>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(pool).await)?;
        let (Some(conversation_id), Some(message_id)) = (email.conversation_id, email.message_id)
        else {
            return Err(StoreError::Corrupt(format!(
                "reply email {id} has no message"
            )));
        };
        let inbox = self.get_inbox(email.org_id, email.inbox_id).await?;
        let message = self.get_message(email.org_id, message_id).await?;
        let row: (String, Option<String>, Option<String>, Option<String>) = on_db!(self, pool => sqlx::query_as(
            "SELECT o.name, ct.email, c.subject, c.reply_token FROM conversations c \
             JOIN organizations o ON o.id = c.org_id JOIN contacts ct ON ct.id = c.contact_id WHERE c.id = $1",
        )
        .bind(conversation_id)
        .fetch_one(pool)
        .await)?;
        let earlier: Vec<(String, String)> = on_db!(self, pool => sqlx::query_as(
            "SELECT rfc_message_id, direction FROM email_messages WHERE conversation_id = $1 AND id <> $2 \
             AND created_at <= $3 AND noise IS NULL ORDER BY created_at, id",
        )
        .bind(conversation_id)
        .bind(id)
        .bind(email.created_at)
        .fetch_all(pool)
        .await)?;
        let in_reply_to = earlier
            .iter()
            .rev()
            .find(|(_, direction)| direction == "in")
            .map(|(rfc, _)| rfc.clone());
        let mut thread: Vec<String> = earlier.into_iter().map(|(rfc, _)| rfc).collect();
        if thread.len() > MAX_REFERENCES {
            let newest = thread.split_off(thread.len() - (MAX_REFERENCES - 1));
            thread.truncate(1);
            thread.extend(newest);
        }
        Ok(ReplyToSend {
            email,
            inbox,
            org_name: row.0,
            message,
            contact_email: row.1,
            conversation_subject: row.2.unwrap_or_default(),
            reply_token: row.3,
            thread,
            in_reply_to,
        })
    }

    /// Records how a delivery attempt went, on the email row and on the message (so the
    /// inbox shows "sending", "sent", "failed" or kept in the outbox); returns the updated
    /// message.
    pub async fn record_reply_delivery(
        &self,
        id: EmailMessageId,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<Written<Message>, StoreError> {
        let (delivery, error) = match outcome {
            DeliveryOutcome::Sent => ("sent", None),
            DeliveryOutcome::Retrying(error) => ("pending", Some(error.as_str())),
            DeliveryOutcome::GaveUp(error) => ("failed", Some(error.as_str())),
            DeliveryOutcome::KeptInOutbox(_) => ("outbox", None),
        };
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Kept and marked in one transaction: the message never says "kept" for an
            // email the outbox does not hold.
            if let DeliveryOutcome::KeptInOutbox(email) = outcome {
                crate::outbox::insert_email!(tx, email, now);
            }
            let row: Option<(OrgId, Option<ConversationId>, Option<MessageId>, i32)> = sqlx::query_as(
                "UPDATE email_messages SET delivery = $2, last_error = $3, attempts = attempts + 1 WHERE id = $1 AND direction = 'out' \
                 RETURNING org_id, conversation_id, message_id, attempts",
            )
            .bind(id)
            .bind(delivery)
            .bind(error)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((org, Some(conversation), Some(message_id), attempts)) = row else {
                return Err(StoreError::NotFound);
            };
            let (metadata,): (Option<Json<Value>>,) = sqlx::query_as("SELECT metadata FROM messages WHERE id = $1")
                .bind(message_id)
                .fetch_one(&mut *tx)
                .await?;
            let mut metadata = metadata.map(|m| m.0).unwrap_or_else(|| json!({}));
            metadata["email"] = json!({ "delivery": delivery, "email_message_id": id, "error": error, "attempts": attempts });
            sqlx::query("UPDATE messages SET metadata = $2 WHERE id = $1")
                .bind(message_id)
                .bind(Json(&metadata))
                .execute(&mut *tx)
                .await?;
            let message = fetch_message!(tx, message_id)?;
            let event = append_event!(
                tx,
                NewEvent::new(Some(org), message_id.as_uuid(), MessageUpdated { message: message.to_payload() })
                    .in_conversation(conversation),
                now
            )?;
            tx.commit().await?;
            Ok(Written { value: message, events: vec![event] })
        })
    }

    /// Where IMAP polling of an inbox stopped, if it ever ran.
    pub async fn imap_cursor(&self, inbox: InboxId) -> Result<Option<ImapCursorRow>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, ImapCursorRow>(
            "SELECT uid_validity, last_uid FROM imap_cursors WHERE inbox_id = $1 AND uid_validity <> 0",
        )
        .bind(inbox)
        .fetch_optional(pool)
        .await)?)
    }

    /// Saves where polling stopped, or the error that stopped it (the cursor stays).
    pub async fn save_imap_poll(
        &self,
        inbox: InboxId,
        cursor: Option<ImapCursorRow>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            match cursor {
                Some(cursor) => sqlx::query(
                    "INSERT INTO imap_cursors (inbox_id, uid_validity, last_uid, last_error, polled_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (inbox_id) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
                     last_error = excluded.last_error, polled_at = excluded.polled_at",
                )
                .bind(inbox)
                .bind(cursor.uid_validity)
                .bind(cursor.last_uid)
                .bind(error)
                .bind(now)
                .execute(pool)
                .await?,
                // No cursor yet (the first poll failed): a row that holds only the error,
                // its UIDVALIDITY 0 (never a server's: RFC 3501 makes it non-zero).
                None => sqlx::query(
                    "INSERT INTO imap_cursors (inbox_id, uid_validity, last_uid, last_error, polled_at) VALUES ($1, 0, 0, $2, $3) \
                     ON CONFLICT (inbox_id) DO UPDATE SET last_error = excluded.last_error, polled_at = excluded.polled_at",
                )
                    .bind(inbox)
                    .bind(error)
                    .bind(now)
                    .execute(pool)
                    .await?,
            };
            Ok(())
        })
    }

    /// The last polling error of an inbox, for its settings page.
    pub async fn imap_error(&self, inbox: InboxId) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = on_db!(self, pool => sqlx::query_as("SELECT last_error FROM imap_cursors WHERE inbox_id = $1")
            .bind(inbox)
            .fetch_optional(pool)
            .await)?;
        Ok(row.and_then(|(error,)| error))
    }
}

/// `support+tag@example.com` → `support@example.com`, lower-cased.
pub fn base_address(address: &str) -> String {
    let address = address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase();
    match address.split_once('@') {
        Some((local, domain)) => {
            let local = local.split_once('+').map_or(local, |(base, _)| base);
            format!("{local}@{domain}")
        }
        None => address,
    }
}

/// The `+tag` of a recipient address, when it has one.
pub fn address_tag(address: &str) -> Option<String> {
    let (local, _) = address.trim().trim_start_matches('<').split_once('@')?;
    let (_, tag) = local.split_once('+')?;
    (!tag.is_empty()).then(|| tag.to_lowercase())
}
