//! The event log and the job queue hold typed payloads: what a producer wrote is read
//! back, from each backend's column, as the same payload and the same JSON.

use chrono::Duration;
use kaltalk_core::chat::{ConversationStatus, Handling};
use kaltalk_core::event::{ConversationUpdated, EventPayload, MessageCreated};
use kaltalk_core::job::{AiTurn, IndexSource, JobPayload, JobPayloadError};
use kaltalk_store::JobState;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};

use crate::helpers::{now, sign_up, test_stores, web_inbox};

#[tokio::test]
async fn every_stored_event_reads_back_typed_and_writes_the_same_json() {
    for (backend, store) in test_stores().await.stores {
        let (owner, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_events").await;
        let details = kaltalk_core::chat::VisitorDetails {
            ip: Some("192.0.2.7".into()),
            ..Default::default()
        };
        let t0 = now();
        let ai = kaltalk_core::chat::AiSettings {
            enabled: true,
            ..Default::default()
        };
        store
            .save_ai_settings(org.id, &ai, t0)
            .await
            .expect(backend);
        let written = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New {
                            token_hash: "vt_events",
                        },
                        details: &details,
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &kaltalk_core::MessageText::parse("text", "Hello").expect("text"),
                    attachments: &[],
                    client_id: Some("c1"),
                    wants_a_person: false,
                    email: None,
                },
                t0,
            )
            .await
            .expect(backend);
        let conversation = written.value.conversation.id;
        let later = t0 + Duration::minutes(1);
        store
            .set_conversation_status(
                org.id,
                conversation,
                ConversationStatus::Snoozed,
                Some(later),
                t0,
            )
            .await
            .expect(backend);
        store
            .assign_conversation(org.id, conversation, None, None, t0)
            .await
            .expect(backend);
        store
            .hand_back_to_bot(org.id, conversation, t0)
            .await
            .expect(backend);

        let events = store.events_since(org.id, None, 100).await.expect(backend);
        assert!(events.len() >= 8, "{backend}: {}", events.len());
        for event in &events {
            let typed = event.payload().expect(backend);
            assert_eq!(typed.kind(), event.kind, "{backend}");
            assert_eq!(
                typed.to_json(),
                event.payload.0,
                "{backend}: {}",
                event.kind
            );
        }
        let typed: Vec<EventPayload> = events.iter().filter_map(|e| e.payload().ok()).collect();
        let message = typed
            .iter()
            .find_map(|p| match p {
                EventPayload::MessageCreated(MessageCreated { message }) => Some(message),
                _ => None,
            })
            .expect("a message.created");
        assert_eq!(message.id, written.value.message.id, "{backend}");
        assert_eq!(message.text, "Hello", "{backend}");
        let changes: Vec<&ConversationUpdated> = typed
            .iter()
            .filter_map(|p| match p {
                EventPayload::ConversationUpdated(change) => Some(change),
                _ => None,
            })
            .collect();
        assert_eq!(
            changes,
            [
                &ConversationUpdated::status(ConversationStatus::Snoozed, Some(later)),
                &ConversationUpdated::assignee(None, None),
                &ConversationUpdated::handling(Handling::Bot),
            ],
            "{backend}"
        );
        assert!(
            typed.iter().any(
                |p| matches!(p, EventPayload::MemberAdded(m) if m.role == kaltalk_core::Role::Owner)
            ),
            "{backend}: the owner's membership"
        );
        let _ = owner;

        // The bot's turn was queued with its typed payload; read as another kind it is
        // an error, not a guess.
        let queued = store.list_jobs(JobState::Queued, 10).await.expect(backend);
        let job = queued
            .iter()
            .find(|j| j.kind == AiTurn::KIND)
            .expect("an ai.turn job");
        let turn: AiTurn = job.payload().expect(backend);
        assert_eq!(turn.conversation_id, conversation, "{backend}");
        assert_eq!(turn.message_id, written.value.message.id, "{backend}");
        assert_eq!(turn.address(), Some("192.0.2.7"), "{backend}");
        assert!(
            matches!(
                job.payload::<IndexSource>(),
                Err(JobPayloadError::WrongKind { .. })
            ),
            "{backend}"
        );
    }
}
