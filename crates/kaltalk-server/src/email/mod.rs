//! The email channel: mail for an email inbox (from the SMTP listener or an IMAP
//! mailbox) becomes a conversation message, and the team's replies leave through the SMTP
//! relay with the headers that keep the customer's mail client threading them.
//!
//! - [`receive`] parses a raw message, keeps its original and files in blob storage, and
//!   hands a customer's mail to the intake (threaded by [`Thread::Email`]) and records an
//!   automatic reply or bounce as a note; a Message-ID already stored is skipped.
//! - [`listener`] is the SMTP listener's storage side: recipients are email inboxes'
//!   addresses, and a message is committed before the client hears 250.
//! - [`imap`] polls inboxes' IMAP mailboxes.
//! - [`reply`] is the job that sends a reply.

pub mod imap;
pub mod listener;
pub mod reply;

use anyhow::Context;
use kaltalk_core::{AttachmentId, MessageText, token};
use kaltalk_mail::inbound::{self, InboundEmail, Noise, ParseLimits};
use kaltalk_store::email::{EmailNoise, NoiseEmail, Received, address_tag};
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::intake::{ArrivedEmail, Customer, CustomerMessage, Thread};
use kaltalk_store::messages::NewAttachment;
use kaltalk_store::{Conflict, StoreError};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// The most characters of a received email's text a conversation message shows; the full
/// original stays viewable.
const MAX_MESSAGE_CHARS: usize = 20_000;
/// The most characters of the original text kept for viewing and search.
const MAX_ORIGINAL_CHARS: usize = 1_000_000;

/// Where a message came from, and the recipient address it was sent to (its `+tag` is a
/// conversation's reply token).
pub struct Arrival<'a> {
    pub source: &'a str,
    pub recipient: Option<&'a str>,
}

/// Parses and stores one received email for `inbox`, then tells connected dashboards.
pub async fn receive(
    state: &AppState,
    inbox: &Inbox,
    raw: Vec<u8>,
    arrival: Arrival<'_>,
) -> anyhow::Result<Received> {
    let limits = ParseLimits {
        max_attachment_bytes: state.config.inbound_email.max_attachment_bytes,
    };
    // Parsing a large message is CPU work: keep it off the async workers.
    let (parsed, raw) = tokio::task::spawn_blocking(move || (inbound::parse(&raw, &limits), raw))
        .await
        .context("parsing an email")?;
    let org = inbox.org_id;
    let rfc_message_id = parsed
        .message_id
        .clone()
        .filter(|id| !id.is_empty() && id.len() <= 500)
        .unwrap_or_else(|| stand_in_message_id(&raw));

    // The original and the files go to blob storage first; if storing the row fails they
    // are removed again.
    let mut written_blobs = Vec::new();
    let raw_key = format!("{org}/email/{}.eml", uuid::Uuid::now_v7());
    state
        .blobs
        .put(&raw_key, &raw)
        .await
        .context("keeping the original email")?;
    written_blobs.push(raw_key.clone());
    let attachments = match keep_attachments(state, org, &parsed, &mut written_blobs).await {
        Ok(attachments) => attachments,
        Err(err) => {
            remove_blobs(state, &written_blobs).await;
            return Err(err);
        }
    };

    let reply_token = reply_token(inbox, &parsed, arrival.recipient);
    let thread_ids: Vec<String> = parsed
        .in_reply_to
        .iter()
        .chain(parsed.references.iter().rev())
        .cloned()
        .collect();
    let from = parsed.from.as_ref().or(parsed.reply_to.as_ref());
    let from_address = from.map(|a| a.email.clone()).unwrap_or_default();
    // Mail from the inbox's own address is a loop (a forward back to us, an echo of our
    // reply): it may be recorded, never answered.
    let from_self = inbox.email_address.as_deref()
        == Some(kaltalk_store::email::base_address(&from_address).as_str());
    let noise = match &parsed.noise {
        Some(Noise::AutoReply) => Some(EmailNoise::AutoReply),
        Some(Noise::Bounce { .. }) => Some(EmailNoise::Bounce),
        None if from_self => Some(EmailNoise::AutoReply),
        None => None,
    };
    // A bounce names the message that bounced inside its report.
    let thread_ids = match &parsed.noise {
        Some(Noise::Bounce {
            original_message_id: Some(original),
        }) => std::iter::once(original.clone())
            .chain(thread_ids)
            .collect(),
        _ => thread_ids,
    };
    let mut notes = parsed.notes.clone();
    if from_address.is_empty() && noise.is_none() {
        notes.push("The email has no readable sender address; replies cannot reach it.".into());
    }
    let visible = shorten(&parsed.visible_text, MAX_MESSAGE_CHARS, &mut notes);
    let full_text = truncate_chars(&parsed.text, MAX_ORIGINAL_CHARS);
    let details = json!({
        "subject": parsed.subject,
        "from": from.map(|a| a.email.as_str()),
        "from_name": from.and_then(|a| a.name.as_deref()),
        "to": parsed.to.iter().map(|a| a.email.as_str()).collect::<Vec<_>>(),
        "cc": parsed.cc.iter().map(|a| a.email.as_str()).collect::<Vec<_>>(),
        "trimmed": parsed.trimmed,
        "notes": notes,
        "source": arrival.source,
    });
    let stored = match noise {
        Some(noise) => {
            let email = NoiseEmail {
                inbox,
                rfc_message_id: &rfc_message_id,
                thread_ids: &thread_ids,
                from_address: &from_address,
                subject: &parsed.subject,
                full_text,
                html: parsed.html.as_deref(),
                raw_key: Some(&raw_key),
                noise,
                source: arrival.source,
            };
            state
                .store
                .record_email_noise(email, state.now())
                .await
                .map(|written| {
                    state.hub.publish_events(written.events);
                    written.value
                })
        }
        None => {
            let address = from_address.trim().to_lowercase();
            let text = MessageText::received(&visible);
            let message = CustomerMessage {
                inbox,
                from: Customer::Email {
                    address: &address,
                    name: from.and_then(|a| a.name.as_deref()),
                },
                thread: Thread::Email {
                    thread_ids: &thread_ids,
                    reply_token: reply_token.as_deref(),
                    subject: &parsed.subject,
                },
                text: &text,
                attachments: &attachments,
                client_id: None,
                wants_a_person: false,
                email: Some(ArrivedEmail {
                    rfc_message_id: &rfc_message_id,
                    from_address: &address,
                    subject: &parsed.subject,
                    full_text,
                    html: parsed.html.as_deref(),
                    raw_key: Some(&raw_key),
                    details: &details,
                    source: arrival.source,
                }),
            };
            match crate::intake::take_in(state, message).await {
                Ok(stored) => Ok(Received::Message {
                    conversation: stored.conversation,
                    message: stored.message,
                }),
                Err(StoreError::Conflict(Conflict::EmailAlreadyStored)) => Ok(Received::Duplicate),
                Err(err) => Err(err),
            }
        }
    };
    let received = match stored {
        Ok(received) => received,
        Err(err) => {
            remove_blobs(state, &written_blobs).await;
            return Err(err).context("storing an email");
        }
    };
    if matches!(received, Received::Duplicate) {
        // Already stored from an earlier delivery: these copies are not referenced.
        remove_blobs(state, &written_blobs).await;
    }
    tracing::info!(inbox = %inbox.id, source = arrival.source, outcome = outcome_name(&received), "email received");
    Ok(received)
}

fn outcome_name(received: &Received) -> &'static str {
    match received {
        Received::Duplicate => "duplicate",
        Received::Message { .. } => "message",
        Received::Noise { .. } => "noise",
    }
}

/// A Message-ID for mail that has none, derived from its bytes so a re-delivery of the
/// same message is still recognised.
fn stand_in_message_id(raw: &[u8]) -> String {
    format!(
        "{}@no-message-id.kaltalk.invalid",
        &hex::encode(Sha256::digest(raw))[..32]
    )
}

/// The reply token: the `+tag` of the address the mail was delivered to, else of the
/// inbox's address among To and Cc.
fn reply_token(inbox: &Inbox, parsed: &InboundEmail, recipient: Option<&str>) -> Option<String> {
    if let Some(tag) = recipient.and_then(address_tag) {
        return Some(tag);
    }
    let own = inbox.email_address.as_deref()?;
    parsed
        .to
        .iter()
        .chain(parsed.cc.iter())
        .filter(|a| kaltalk_store::email::base_address(&a.email) == own)
        .find_map(|a| address_tag(&a.email))
}

/// Stores the email's files. Images a browser shows safely keep their type (recognised by
/// content); anything else is served as a download.
async fn keep_attachments(
    state: &AppState,
    org: kaltalk_core::OrgId,
    parsed: &InboundEmail,
    written: &mut Vec<String>,
) -> anyhow::Result<Vec<NewAttachment>> {
    let mut kept = Vec::new();
    for file in &parsed.attachments {
        let id = AttachmentId::new();
        let storage_key = format!("{org}/{id}");
        state
            .blobs
            .put(&storage_key, &file.bytes)
            .await
            .context("keeping an email attachment")?;
        written.push(storage_key.clone());
        let content_type =
            crate::attachments::sniff(&file.bytes).unwrap_or("application/octet-stream");
        kept.push(NewAttachment {
            id,
            filename: crate::attachments::clean_filename(&file.filename),
            content_type: content_type.to_owned(),
            size: file.bytes.len() as i64,
            storage_key,
            access_token: token::generate(""),
        });
    }
    Ok(kept)
}

async fn remove_blobs(state: &AppState, keys: &[String]) {
    for key in keys {
        state.blobs.delete(key).await;
    }
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// The text a message shows, cut (with a note) when it is very long.
fn shorten(text: &str, max: usize, notes: &mut Vec<String>) -> String {
    let cut = truncate_chars(text, max);
    if cut.len() < text.len() {
        notes.push(format!(
            "The email is long: the conversation shows its first {max} characters; the original has all of it."
        ));
    }
    cut.to_owned()
}
