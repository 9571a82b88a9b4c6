//! The intake: where a customer's message arrives, whatever the channel. The widget, the
//! email channel and API inboxes each turn what they received into one [`CustomerMessage`]
//! and hand it to [`Store::take_in`], which resolves the contact, finds, reopens or opens
//! the conversation, decides once who handles it, and writes the message with its events
//! and jobs in one transaction. The channels keep only their own parsing and the lookups
//! that are theirs (a visitor's session, an email's thread ids), expressed as data here.
//!
//! Who handles a new conversation: the bot, when the organization's AI agent is on, the
//! inbox lets it answer, and the contact has not opted out of AI; otherwise people. While
//! the bot handles a conversation each customer message is a bot turn (an `ai.turn` job),
//! unless the customer asks for a person (in words, or with the widget's button), which
//! hands it over at once. The bot's turn re-checks only what can change after the message
//! was taken in (the AI agent switched off, the contact opting out) and its own limits.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{
    AiSettings, ConversationStatus, Handling, InboxKind, MessageKind, SenderKind, VisitorDetails,
};
use kaltalk_core::event::{ContactCreated, ContactUpdated, ConversationCreated};
use kaltalk_core::handover::{asks_for_a_person, reasons};
use kaltalk_core::job::AiTurn;
use kaltalk_core::{ContactId, ConversationId, MessageId, MessageText, VisitorSessionId, token};
use serde_json::{Value, json};
use sqlx::types::Json;

use crate::contacts::{CONTACT_COLUMNS, Contact, ContactFields, SessionChoice, contact_identity};
use crate::conversations::{
    CONVERSATION_COLUMNS, Conversation, fetch_conversation, reopen_conversation,
};
use crate::events::{NewEvent, Written, append_event};
use crate::inboxes::Inbox;
use crate::messages::{Message, MessageDraft, NewAttachment, fetch_message, insert_message};
use crate::{BeginWrite, Conflict, Store, StoreError, on_db};

/// A customer's message as a channel hands it over.
pub struct CustomerMessage<'a> {
    pub inbox: &'a Inbox,
    /// Who wrote it.
    pub from: Customer<'a>,
    /// Which conversation it belongs to.
    pub thread: Thread<'a>,
    pub text: &'a MessageText,
    /// Files already in blob storage; the caller removes them if the intake fails.
    pub attachments: &'a [NewAttachment],
    /// The sender's own id for this message (the widget's `client_id`): a repeated send
    /// returns the message already stored and writes nothing.
    pub client_id: Option<&'a str>,
    /// The customer pressed "Talk to a person" before writing (the widget): a
    /// conversation the bot handles goes to the team instead of becoming a bot turn, as it
    /// does when the message itself asks for a person.
    pub wants_a_person: bool,
    /// The email this message arrived as, recorded with it (the email channel).
    pub email: Option<ArrivedEmail<'a>>,
}

/// How the contact who wrote is found, by channel.
#[derive(Clone, Copy)]
pub enum Customer<'a> {
    /// A widget visitor: their session (new or existing), what their browser tells, and
    /// the identity the site verified. A verified external id finds the same contact in
    /// every browser; the visitor's details and identity fields are kept on the contact.
    Visitor {
        session: SessionChoice<'a>,
        details: &'a VisitorDetails,
        fields: &'a ContactFields,
    },
    /// A contact of the inbox's organization, by id.
    Contact(ContactId),
    /// Found by external id, else by email address; created when neither matches.
    Details(&'a ContactFields),
    /// An email sender: the contact with this address (lower-cased), else a new one; the
    /// name the email gives fills a nameless contact's.
    Email {
        address: &'a str,
        name: Option<&'a str>,
    },
}

/// How the conversation is found, by channel.
#[derive(Clone, Copy)]
pub enum Thread<'a> {
    /// The visitor session's conversation, else the contact's latest unresolved one in
    /// this inbox, else a new one.
    Latest,
    /// This conversation, which must be the contact's.
    Existing(ConversationId),
    /// Always a new conversation.
    New,
    /// An email's thread: a Message-ID of In-Reply-To / References that this inbox sent or
    /// received, on a conversation of the same contact; else the reply token of a
    /// `support+<token>@` address; else a new conversation with this subject.
    Email {
        thread_ids: &'a [String],
        reply_token: Option<&'a str>,
        subject: &'a str,
    },
}

/// The record of an arrived email, written with its message.
#[derive(Clone, Copy)]
pub struct ArrivedEmail<'a> {
    /// Its Message-ID: one already stored in this inbox makes the intake write nothing and
    /// answer [`Conflict::EmailAlreadyStored`].
    pub rfc_message_id: &'a str,
    pub from_address: &'a str,
    pub subject: &'a str,
    pub full_text: &'a str,
    pub html: Option<&'a str>,
    pub raw_key: Option<&'a str>,
    /// Stored as the message's `metadata.email` (subject, cc, notes for the agent …).
    pub details: &'a Value,
    /// `smtp` or `imap`.
    pub source: &'a str,
}

/// What the intake stored (or, for a repeated `client_id`, found stored already).
#[derive(Debug)]
pub struct Stored {
    /// The visitor's session, for widget messages.
    pub session_id: Option<VisitorSessionId>,
    pub contact: Contact,
    /// The conversation as it is after the message (reopened, handed over …).
    pub conversation: Conversation,
    pub message: Message,
    /// Whether this opened the conversation.
    pub opened: bool,
}

/// Who handles a conversation after a customer's message, decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The bot answers: an `ai.turn` job.
    BotTurn,
    /// The bot was handling it, and the customer asked for a person (the reason).
    HandOver(&'a str),
    /// People handle it.
    People,
}

impl<'a> Decision<'a> {
    /// How a conversation opened by a customer's message is handled: by the bot when it
    /// may answer here and the contact has not opted out of AI.
    pub fn opening(bot_answers: bool, contact_opted_out: bool) -> Handling {
        if bot_answers && !contact_opted_out {
            Handling::Bot
        } else {
            Handling::Human
        }
    }

    /// What a customer's message sets off in a conversation handled as `handling`.
    pub fn after_message(handling: Handling, asks_for_person: Option<&'a str>) -> Self {
        match (handling, asks_for_person) {
            (Handling::Bot, Some(reason)) => Self::HandOver(reason),
            (Handling::Bot, None) => Self::BotTurn,
            _ => Self::People,
        }
    }
}

/// Whether the bot may answer new conversations of this inbox: the organization's AI
/// agent is on, and for an email inbox its "AI replies" setting too.
pub fn bot_answers(inbox: &Inbox, ai: &AiSettings) -> bool {
    ai.enabled && (inbox.kind != InboxKind::Email || inbox.email().ai_replies)
}

/// A new conversation's email reply token: 24 lower-case letters and digits.
fn new_reply_token() -> String {
    token::generate("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(24)
        .collect::<String>()
        .to_lowercase()
}

impl Store {
    /// Takes in a customer's message (see the module documentation).
    pub async fn take_in(
        &self,
        message: CustomerMessage<'_>,
        now: DateTime<Utc>,
    ) -> Result<Written<Stored>, StoreError> {
        let inbox = message.inbox;
        let org = inbox.org_id;
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut events = Vec::new();

            if let Some(email) = &message.email {
                let known: Option<(kaltalk_core::EmailMessageId,)> =
                    sqlx::query_as("SELECT id FROM email_messages WHERE inbox_id = $1 AND rfc_message_id = $2")
                        .bind(inbox.id)
                        .bind(email.rfc_message_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if known.is_some() {
                    return Err(StoreError::Conflict(Conflict::EmailAlreadyStored));
                }
            }

            // ---- the visitor's session ----
            let mut session_links = None;
            let mut session_conversation = None;
            let mut contact_id = None;
            let session_id = match message.from {
                Customer::Visitor { session: SessionChoice::Existing(session), details, .. } => {
                    sqlx::query("UPDATE visitor_sessions SET context = $2, last_seen_at = $3 WHERE id = $1")
                        .bind(session.id)
                        .bind(Json(details))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    session_links = Some((session.contact_id, session.conversation_id));
                    contact_id = session.contact_id;
                    session_conversation = session.conversation_id;
                    Some(session.id)
                }
                Customer::Visitor { session: SessionChoice::New { token_hash }, details, .. } => {
                    let id = VisitorSessionId::new();
                    sqlx::query(
                        "INSERT INTO visitor_sessions (id, org_id, inbox_id, token_hash, context, first_seen_at, last_seen_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(inbox.id)
                    .bind(token_hash)
                    .bind(Json(details))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    session_links = Some((None, None));
                    Some(id)
                }
                _ => None,
            };

            // ---- the contact ----
            let by_id = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2");
            let known_contact: Option<ContactId> = match message.from {
                Customer::Visitor { fields, .. } => {
                    // An identified visitor is the same contact in every browser.
                    match &fields.external_id {
                        Some(external_id) => {
                            let known: Option<(ContactId,)> = sqlx::query_as("SELECT id FROM contacts WHERE org_id = $1 AND external_id = $2")
                                .bind(org)
                                .bind(external_id)
                                .fetch_optional(&mut *tx)
                                .await?;
                            match known {
                                Some((id,)) => {
                                    if contact_id != Some(id) {
                                        session_conversation = None;
                                    }
                                    Some(id)
                                }
                                None => contact_id,
                            }
                        }
                        None => contact_id,
                    }
                }
                Customer::Contact(id) => Some(id),
                Customer::Details(fields) => {
                    let mut found: Option<(ContactId,)> = None;
                    if let Some(external_id) = &fields.external_id {
                        found = sqlx::query_as("SELECT id FROM contacts WHERE org_id = $1 AND external_id = $2")
                            .bind(org)
                            .bind(external_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    }
                    if found.is_none() && let Some(email) = &fields.email {
                        found = sqlx::query_as(
                            "SELECT id FROM contacts WHERE org_id = $1 AND LOWER(email) = $2 ORDER BY created_at, id LIMIT 1",
                        )
                        .bind(org)
                        .bind(email.to_lowercase())
                        .fetch_optional(&mut *tx)
                        .await?;
                    }
                    found.map(|(id,)| id)
                }
                Customer::Email { address, .. } => {
                    let found: Option<(ContactId,)> = sqlx::query_as(
                        "SELECT id FROM contacts WHERE org_id = $1 AND lower(email) = $2 ORDER BY created_at, id LIMIT 1",
                    )
                    .bind(org)
                    .bind(address)
                    .fetch_optional(&mut *tx)
                    .await?;
                    found.map(|(id,)| id)
                }
            };
            let contact = match known_contact {
                Some(id) => {
                    match message.from {
                        Customer::Visitor { details, fields, .. } => {
                            let identifies = fields.external_id.is_some() || fields.name.is_some()
                                || fields.email.is_some() || fields.attributes.is_some();
                            let before = if identifies { Some(contact_identity!(tx, id)?) } else { None };
                            sqlx::query(
                                "UPDATE contacts SET details = $2, last_seen_at = $3, updated_at = $3, \
                                 external_id = COALESCE(external_id, $4), name = COALESCE($5, name), email = COALESCE($6, email), \
                                 attributes = COALESCE($7, attributes) WHERE id = $1",
                            )
                            .bind(id)
                            .bind(Json(details))
                            .bind(now)
                            .bind(&fields.external_id)
                            .bind(&fields.name)
                            .bind(&fields.email)
                            .bind(fields.attributes.as_ref().map(Json))
                            .execute(&mut *tx)
                            .await?;
                            if let Some(before) = before && contact_identity!(tx, id)? != before {
                                events.push(append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactUpdated::default()), now)?);
                            }
                        }
                        Customer::Email { name, .. } => {
                            let (had_name,): (Option<String>,) = sqlx::query_as("SELECT name FROM contacts WHERE id = $1")
                                .bind(id)
                                .fetch_one(&mut *tx)
                                .await?;
                            sqlx::query("UPDATE contacts SET name = COALESCE(name, $2), last_seen_at = $3, updated_at = $3 WHERE id = $1")
                                .bind(id)
                                .bind(name)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            // The email gave a nameless contact its name.
                            if had_name.is_none() && name.is_some() {
                                events.push(append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactUpdated { name: name.map(str::to_owned), ..ContactUpdated::default() }), now)?);
                            }
                        }
                        Customer::Contact(_) | Customer::Details(_) => {}
                    }
                    sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(by_id.clone()))
                        .bind(org)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound)?
                }
                None => {
                    let (external_id, name, email, details, attributes) = match message.from {
                        Customer::Visitor { details, fields, .. } => (
                            fields.external_id.as_deref(), fields.name.as_deref(), fields.email.as_deref(),
                            details.clone(), fields.attributes.clone(),
                        ),
                        Customer::Details(fields) => (
                            fields.external_id.as_deref(), fields.name.as_deref(), fields.email.as_deref(),
                            VisitorDetails::default(), fields.attributes.clone(),
                        ),
                        Customer::Email { address, name } => (None, name, Some(address), VisitorDetails::default(), None),
                        Customer::Contact(_) => return Err(StoreError::NotFound),
                    };
                    let id = ContactId::new();
                    sqlx::query(
                        "INSERT INTO contacts (id, org_id, external_id, name, email, details, attributes, first_seen_at, last_seen_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8, $8)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(external_id)
                    .bind(name)
                    .bind(email)
                    .bind(Json(details))
                    .bind(Json(attributes.unwrap_or_else(|| json!({}))))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    events.push(append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ContactCreated {}), now)?);
                    sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(by_id.clone()))
                        .bind(org)
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?
                }
            };

            // ---- the conversation ----
            let found: Option<Conversation> = match message.thread {
                Thread::New => None,
                Thread::Existing(id) => Some(
                    fetch_conversation!(tx, org, id)?
                        .filter(|c| c.contact_id == contact.id && c.inbox_id == inbox.id)
                        .ok_or(StoreError::NotFound)?,
                ),
                Thread::Latest => {
                    let of_session = match session_conversation {
                        Some(id) => fetch_conversation!(tx, org, id)?.filter(|c| c.contact_id == contact.id),
                        None => None,
                    };
                    match of_session {
                        Some(conversation) => Some(conversation),
                        None => {
                            let sql = format!(
                                "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.org_id = $1 AND c.inbox_id = $2 \
                                 AND c.contact_id = $3 AND c.status <> 'resolved' ORDER BY c.last_message_at DESC LIMIT 1"
                            );
                            sqlx::query_as::<_, Conversation>(sqlx::AssertSqlSafe(sql))
                                .bind(org)
                                .bind(inbox.id)
                                .bind(contact.id)
                                .fetch_optional(&mut *tx)
                                .await?
                        }
                    }
                }
                Thread::Email { thread_ids, reply_token, .. } => {
                    let mut id = crate::email::find_thread!(tx, inbox.id, thread_ids, Some(contact.id))?;
                    if id.is_none() && let Some(token) = reply_token {
                        let row: Option<(ConversationId,)> = sqlx::query_as(
                            "SELECT id FROM conversations WHERE org_id = $1 AND inbox_id = $2 AND reply_token = $3 AND contact_id = $4",
                        )
                        .bind(org)
                        .bind(inbox.id)
                        .bind(token)
                        .bind(contact.id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        id = row.map(|(id,)| id);
                    }
                    match id {
                        Some(id) => fetch_conversation!(tx, org, id)?,
                        None => None,
                    }
                }
            };
            let opened = found.is_none();
            let conversation = match found {
                Some(conversation) => {
                    if matches!(conversation.status, ConversationStatus::Resolved | ConversationStatus::Snoozed) {
                        events.push(reopen_conversation!(tx, org, conversation.id, now)?);
                    }
                    conversation.id
                }
                None => {
                    let (opted_out,): (bool,) = sqlx::query_as("SELECT ai_opt_out FROM contacts WHERE id = $1")
                        .bind(contact.id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let ai: Option<(Json<AiSettings>,)> = sqlx::query_as("SELECT settings FROM ai_settings WHERE org_id = $1")
                        .bind(org)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let ai = ai.map(|(settings,)| settings.0).unwrap_or_default();
                    let handling = Decision::opening(bot_answers(inbox, &ai), opted_out);
                    let (reply_token, subject) = match message.thread {
                        Thread::Email { subject, .. } => (Some(new_reply_token()), Some(subject)),
                        _ => (None, None),
                    };
                    let id = ConversationId::new();
                    sqlx::query(
                        "INSERT INTO conversations (id, org_id, inbox_id, contact_id, status, last_message_at, created_at, updated_at, handling, reply_token, subject) \
                         VALUES ($1, $2, $3, $4, 'open', $5, $5, $5, $6, $7, $8)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(inbox.id)
                    .bind(contact.id)
                    .bind(now)
                    .bind(handling.as_str())
                    .bind(reply_token)
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?;
                    events.push(append_event!(
                        tx,
                        NewEvent::new(Some(org), id.as_uuid(), ConversationCreated { inbox_id: inbox.id, contact_id: contact.id, handling: Some(handling) })
                            .in_conversation(id),
                        now
                    )?);
                    id
                }
            };
            // Most messages come from a session that already points here.
            if let Some(links) = session_links && links != (Some(contact.id), Some(conversation)) {
                sqlx::query("UPDATE visitor_sessions SET contact_id = $2, conversation_id = $3 WHERE id = $1")
                    .bind(session_id)
                    .bind(contact.id)
                    .bind(conversation)
                    .execute(&mut *tx)
                    .await?;
            }

            // ---- the message ----
            // A retried send (same client_id) returns the message already stored.
            let repeated: Option<(MessageId,)> = match message.client_id {
                Some(client_id) => sqlx::query_as("SELECT id FROM messages WHERE conversation_id = $1 AND client_id = $2")
                    .bind(conversation)
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await?,
                None => None,
            };
            if let Some((id,)) = repeated {
                let stored = fetch_message!(tx, id)?;
                let conversation = fetch_conversation!(tx, org, conversation)?.ok_or(StoreError::NotFound)?;
                tx.commit().await?;
                let value = Stored { session_id, contact, conversation, message: stored, opened };
                return Ok(Written { value, events });
            }
            let draft = MessageDraft {
                sender_kind: SenderKind::Contact,
                sender_id: Some(contact.id.as_uuid()),
                kind: MessageKind::Text,
                text: message.text.as_str(),
                client_id: message.client_id,
                attachments: message.attachments,
                metadata: message.email.as_ref().map(|email| json!({ "email": email.details })),
            };
            let (stored, event) = insert_message!(tx, org, conversation, draft, now);
            events.push(event);
            if let Some(email) = &message.email {
                crate::email::insert_email!(tx, org, inbox.id, Some(conversation), Some(stored.id), "in", email.rfc_message_id,
                    Some(email.from_address), email.subject, None::<&str>, email.source, email.full_text, email.html,
                    email.raw_key, None::<&str>, now)?;
            }
            // A visitor sees their own message as they send it.
            if session_id.is_some() {
                sqlx::query("UPDATE conversations SET contact_last_seen_at = $2 WHERE id = $1")
                    .bind(conversation)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }

            // ---- who handles it ----
            let current = fetch_conversation!(tx, org, conversation)?.ok_or(StoreError::NotFound)?;
            let asks_for_person = if message.wants_a_person {
                Some(reasons::VISITOR_PRESSED)
            } else if asks_for_a_person(message.text.as_str()) {
                Some(reasons::VISITOR_ASKED)
            } else {
                None
            };
            let conversation = match Decision::after_message(current.handling, asks_for_person) {
                Decision::HandOver(reason) => {
                    events.extend(crate::ai::hand_over_in_tx!(tx, org, conversation, reason, now));
                    fetch_conversation!(tx, org, conversation)?.ok_or(StoreError::NotFound)?
                }
                Decision::BotTurn => {
                    // A durable job, committed with the message. The visitor's address goes
                    // with it: the bot's answers per address are capped.
                    let ip = match message.from {
                        Customer::Visitor { details, .. } => Some(details.ip.clone()),
                        _ => None,
                    };
                    let turn = AiTurn { org_id: org, conversation_id: conversation, message_id: stored.id, ip };
                    crate::jobs::insert_job!(tx, crate::jobs::NewJob::new(&turn), now)?;
                    current
                }
                Decision::People => {
                    // Outside the inbox's business hours people answer later: the customer
                    // hears when, once per conversation.
                    events.extend(crate::hours::out_of_office_in_tx!(tx, org, conversation, now));
                    current
                }
            };
            // A new conversation joins its inbox's team (and its queue, while people
            // handle it); a handover was routed already, which this repeats harmlessly.
            let conversation = if opened {
                let routed = crate::routing::route_in_tx!(tx, org, conversation.id, now);
                if routed.is_empty() {
                    conversation
                } else {
                    events.extend(routed);
                    fetch_conversation!(tx, org, conversation.id)?.ok_or(StoreError::NotFound)?
                }
            } else {
                conversation
            };
            tx.commit().await?;
            let value = Stored { session_id, contact, conversation, message: stored, opened };
            Ok(Written { value, events })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bot_opens_only_where_it_may_answer_and_the_contact_allows_it() {
        assert_eq!(Decision::opening(true, false), Handling::Bot);
        assert_eq!(Decision::opening(true, true), Handling::Human);
        assert_eq!(Decision::opening(false, false), Handling::Human);
    }

    #[test]
    fn a_message_is_a_bot_turn_only_while_the_bot_handles_the_conversation() {
        assert_eq!(
            Decision::after_message(Handling::Bot, None),
            Decision::BotTurn
        );
        assert_eq!(
            Decision::after_message(Handling::Bot, Some("asked")),
            Decision::HandOver("asked")
        );
        for handling in [Handling::Human, Handling::WaitingHuman] {
            assert_eq!(Decision::after_message(handling, None), Decision::People);
            assert_eq!(
                Decision::after_message(handling, Some("asked")),
                Decision::People
            );
        }
    }
}
