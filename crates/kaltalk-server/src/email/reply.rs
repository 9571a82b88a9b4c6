//! Sends an agent's or the bot's reply on an email conversation: "Agent Name at Org"
//! from the inbox's address, a fresh Message-ID, In-Reply-To the customer's latest email,
//! References to the thread, Reply-To carrying the conversation's reply token, text and
//! HTML (both from the light formatting), the CC and BCC the agent chose, and the
//! message's files. A failed send is retried by the job queue; each attempt
//! is shown on the message until it is sent or given up.

use anyhow::anyhow;
use kaltalk_core::EmailMessageId;
use kaltalk_core::chat::SenderKind;
use kaltalk_core::job::SendEmailReply;
use kaltalk_mail::MailerError;
use kaltalk_mail::outbound::{
    OutgoingAttachment, ReplyEmail, reply_html, reply_subject, reply_text,
};
use kaltalk_store::email::{DeliveryOutcome, ReplyToSend};
use kaltalk_store::{Delivery, Job, NewEmail};

use crate::state::AppState;

fn email_message_id(job: &Job) -> anyhow::Result<EmailMessageId> {
    Ok(job.payload::<SendEmailReply>()?.email_message_id)
}

/// Runs one `email.reply` job.
pub async fn send(state: &AppState, job: &Job) -> anyhow::Result<()> {
    let id = email_message_id(job)?;
    let reply = state.store.reply_to_send(id).await?;
    // A retry after a crash between sending (or keeping) and recording: done already.
    if matches!(reply.email.delivery.as_deref(), Some("sent" | "outbox")) {
        return Ok(());
    }
    let recorded = match compose(state, &reply).await {
        Ok(email) => match state.mailer.send_reply(&email).await {
            Ok(()) => DeliveryOutcome::Sent,
            // Without a relay the reply waits in the outbox like every other email (the
            // README's promise); no retry could send it, so none is made.
            Err(MailerError::NoRelay) => {
                DeliveryOutcome::KeptInOutbox(outbox_copy(reply.inbox.org_id, &email))
            }
            Err(err) => failed(job, err),
        },
        Err(err) => failed(job, err),
    };
    let written = state
        .store
        .record_reply_delivery(id, &recorded, state.now())
        .await?;
    state.hub.publish_events(written.events);
    match recorded {
        DeliveryOutcome::Sent | DeliveryOutcome::GaveUp(_) | DeliveryOutcome::KeptInOutbox(_) => {
            Ok(())
        }
        DeliveryOutcome::Retrying(error) => Err(anyhow!("the reply was not sent: {error}")),
    }
}

/// A failed attempt: retried by the job queue until its last try.
fn failed(job: &Job, err: MailerError) -> DeliveryOutcome {
    if job.attempts >= job.max_attempts {
        DeliveryOutcome::GaveUp(err.to_string())
    } else {
        DeliveryOutcome::Retrying(err.to_string())
    }
}

/// The reply as the organization's outbox keeps it (its owners read it there). Files are
/// not copied: they stay on the message in the conversation.
fn outbox_copy(org: kaltalk_core::OrgId, email: &ReplyEmail) -> NewEmail {
    NewEmail {
        org_id: Some(org),
        to: email.to.join(", "),
        subject: email.subject.clone(),
        text_body: email.text.clone(),
        html_body: email.html.clone(),
        kind: "reply",
        delivery: Delivery::KeepInOutbox,
    }
}

/// The job died before it could record its last attempt (the store failed every time):
/// the message says the reply was not sent.
pub async fn gave_up(state: &AppState, job: &Job) {
    let Ok(id) = email_message_id(job) else {
        return;
    };
    let outcome = DeliveryOutcome::GaveUp(
        job.last_error
            .clone()
            .unwrap_or_else(|| "the reply could not be sent".into()),
    );
    match state
        .store
        .record_reply_delivery(id, &outcome, state.now())
        .await
    {
        Ok(written) => state.hub.publish_events(written.events),
        Err(err) => tracing::error!(error = %err, "could not mark an email reply failed"),
    }
}

async fn compose(state: &AppState, reply: &ReplyToSend) -> Result<ReplyEmail, MailerError> {
    let address = reply
        .inbox
        .email_address
        .clone()
        .ok_or_else(|| MailerError::Address("the inbox has no email address".into()))?;
    let to = reply
        .contact_email
        .clone()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| MailerError::Address("the customer has no email address".into()))?;
    let sender = match reply.message.sender_kind {
        SenderKind::Bot => state
            .store
            .ai_settings(reply.inbox.org_id)
            .await
            .map(|s| s.bot_name)
            .unwrap_or_else(|_| "Assistant".into()),
        _ => reply
            .message
            .sender_name
            .clone()
            .unwrap_or_else(|| "Support".into()),
    };
    let reply_to = reply.reply_token.as_deref().and_then(|token| {
        let (local, domain) = address.split_once('@')?;
        Some(format!("{local}+{token}@{domain}"))
    });
    let mut attachments = Vec::new();
    for file in &reply.message.attachments {
        let bytes = state
            .blobs
            .get(&file.storage_key)
            .await
            .map_err(|e| MailerError::Attachment(format!("{}: {e}", file.filename)))?;
        attachments.push(OutgoingAttachment {
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            bytes,
        });
    }
    let recipients = reply.message.email_recipients();
    Ok(ReplyEmail {
        from_name: format!("{sender} at {}", reply.org_name),
        from_address: address,
        reply_to,
        to: vec![to],
        cc: recipients.cc,
        bcc: recipients.bcc,
        subject: reply_subject(&reply.conversation_subject),
        message_id: reply.email.rfc_message_id.clone(),
        in_reply_to: reply.in_reply_to.clone(),
        references: reply.thread.clone(),
        text: reply_text(&reply.message.text),
        html: reply_html(&reply.message.text),
        attachments,
    })
}
