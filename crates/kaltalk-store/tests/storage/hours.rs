//! Business hours in the store: kept with the inbox, and the out-of-office reply the
//! intake sends once per conversation, never while the bot handles it.

use chrono::{DateTime, Utc};
use kaltalk_core::MessageText;
use kaltalk_core::chat::{Handling, SenderKind, VisitorDetails};
use kaltalk_core::hours::{BusinessHours, DEFAULT_OUT_OF_OFFICE, InboxHours, Week};
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::intake::{Customer, CustomerMessage, Stored, Thread};
use kaltalk_store::{Store, StoreError, Written};

use crate::helpers::{sign_up, test_stores, web_inbox};

/// Friday 9 January 2026, 20:00 in Berlin: closed.
fn friday_evening() -> DateTime<Utc> {
    "2026-01-09T19:00:00Z".parse().expect("time")
}

/// Monday 12 January 2026, 10:00 in Berlin: open.
fn monday_morning() -> DateTime<Utc> {
    "2026-01-12T09:00:00Z".parse().expect("time")
}

fn berlin_office_hours() -> InboxHours {
    InboxHours {
        enabled: true,
        hours: BusinessHours::new("Europe/Berlin", Week::office_hours(), Vec::new())
            .expect("valid"),
        out_of_office: DEFAULT_OUT_OF_OFFICE.into(),
    }
}

async fn visitor_says(
    store: &Store,
    inbox: &Inbox,
    token_hash: &str,
    text: &str,
    bot_first: bool,
    at: DateTime<Utc>,
) -> Written<Stored> {
    // The bot takes a new conversation's first turn when the organization's AI agent is on.
    let ai = kaltalk_core::chat::AiSettings {
        enabled: bot_first,
        ..Default::default()
    };
    store
        .save_ai_settings(inbox.org_id, &ai, at)
        .await
        .expect("AI settings");
    let session = store
        .find_visitor_session(token_hash, at)
        .await
        .expect("session");
    let choice = match &session {
        Some(session) => SessionChoice::Existing(session),
        None => SessionChoice::New { token_hash },
    };
    store
        .take_in(
            CustomerMessage {
                inbox,
                from: Customer::Visitor {
                    session: choice,
                    details: &VisitorDetails::default(),
                    fields: &ContactFields::default(),
                },
                thread: Thread::Latest,
                text: &MessageText::parse("text", text).expect("text"),
                attachments: &[],
                client_id: Some(text),
                wants_a_person: false,
                email: None,
            },
            at,
        )
        .await
        .expect("visitor writes")
}

fn message_count(written: &Written<Stored>) -> usize {
    written
        .events
        .iter()
        .filter(|e| e.kind == "message.created")
        .count()
}

#[tokio::test]
async fn outside_hours_a_conversation_gets_the_out_of_office_reply_once() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_hours").await;
        assert!(inbox.hours().is_none(), "{backend}: off by default");
        store
            .save_business_hours(org.id, inbox.id, &berlin_office_hours(), friday_evening())
            .await
            .expect(backend);
        let inbox = store.get_inbox(org.id, inbox.id).await.expect(backend);
        assert_eq!(inbox.hours(), Some(&berlin_office_hours()), "{backend}");

        let first = visitor_says(&store, &inbox, "vt1", "Hello?", false, friday_evening()).await;
        assert_eq!(
            message_count(&first),
            2,
            "{backend}: the message and the reply"
        );
        let conversation = first.value.conversation.id;
        let messages = store
            .list_messages(org.id, conversation, true)
            .await
            .expect(backend);
        assert_eq!(messages.len(), 2, "{backend}");
        let reply = &messages[1];
        assert_eq!(reply.sender_kind, SenderKind::Bot, "{backend}");
        assert!(reply.is_automatic(), "{backend}");
        assert_eq!(
            reply.text,
            "Thanks for your message. We're away right now and will reply when we're back on Monday at 09:00 (Europe/Berlin time).",
            "{backend}"
        );
        assert_eq!(
            store
                .out_of_office_sent_at(org.id, conversation)
                .await
                .expect(backend),
            Some(friday_evening()),
            "{backend}"
        );

        // A second message, later still outside hours: no second reply.
        let later = friday_evening() + chrono::Duration::hours(2);
        let second = visitor_says(&store, &inbox, "vt1", "Still there?", false, later).await;
        assert_eq!(message_count(&second), 1, "{backend}");
        assert_eq!(second.value.conversation.id, conversation, "{backend}");

        // Inside hours, another visitor's conversation gets none.
        let open = visitor_says(&store, &inbox, "vt2", "Morning!", false, monday_morning()).await;
        assert_eq!(message_count(&open), 1, "{backend}");
        assert_eq!(
            store
                .out_of_office_sent_at(org.id, open.value.conversation.id)
                .await
                .expect(backend),
            None,
            "{backend}"
        );

        // Hours switched off: always open.
        let off = InboxHours {
            enabled: false,
            ..berlin_office_hours()
        };
        store
            .save_business_hours(org.id, inbox.id, &off, friday_evening())
            .await
            .expect(backend);
        let inbox = store.get_inbox(org.id, inbox.id).await.expect(backend);
        let third = visitor_says(&store, &inbox, "vt3", "Hi", false, friday_evening()).await;
        assert_eq!(message_count(&third), 1, "{backend}");
    }
}

#[tokio::test]
async fn while_the_bot_answers_no_reply_goes_out_until_it_hands_over() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_bot").await;
        store
            .save_business_hours(org.id, inbox.id, &berlin_office_hours(), friday_evening())
            .await
            .expect(backend);
        let inbox = store.get_inbox(org.id, inbox.id).await.expect(backend);
        let first = visitor_says(&store, &inbox, "vt1", "Refunds?", true, friday_evening()).await;
        assert_eq!(
            first.value.conversation.handling,
            Handling::Bot,
            "{backend}"
        );
        assert_eq!(
            message_count(&first),
            1,
            "{backend}: the bot's turn, no reply"
        );
        let conversation = first.value.conversation.id;

        let handed = store
            .escalate(org.id, conversation, "the visitor asked", friday_evening())
            .await
            .expect(backend);
        assert!(handed.value, "{backend}");
        let texts: Vec<(SenderKind, bool)> = store
            .list_messages(org.id, conversation, false)
            .await
            .expect(backend)
            .iter()
            .map(|m| (m.sender_kind, m.is_automatic()))
            .collect();
        assert_eq!(
            texts,
            [
                (SenderKind::Contact, false),
                (SenderKind::Bot, false), // "I'm passing you to a person…"
                (SenderKind::Bot, true),  // the out-of-office reply
            ],
            "{backend}"
        );
        // The customer writing again while waiting for a person: nothing more.
        let again = visitor_says(&store, &inbox, "vt1", "Hello?", true, friday_evening()).await;
        assert_eq!(message_count(&again), 1, "{backend}");
    }
}

#[tokio::test]
async fn another_organizations_inbox_hours_cannot_be_set() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let (_, other) = sign_up(&store, "other@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_mine").await;
        let refused = store
            .save_business_hours(other.id, inbox.id, &berlin_office_hours(), friday_evening())
            .await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{backend}");
        let inbox = store.get_inbox(org.id, inbox.id).await.expect(backend);
        assert!(inbox.hours().is_none(), "{backend}");
    }
}
