//! What the first-run checklist reads, and deleting an inbox with its conversations.

use kaltalk_core::MessageText;
use kaltalk_core::chat::VisitorDetails;
use kaltalk_store::StoreError;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};

use crate::helpers::{now, sign_up, test_stores, web_inbox};

async fn visit(
    store: &kaltalk_store::Store,
    inbox: &kaltalk_store::inboxes::Inbox,
    token: &str,
    page: &str,
) -> kaltalk_store::Written<kaltalk_store::intake::Stored> {
    store
        .take_in(
            CustomerMessage {
                inbox,
                from: Customer::Visitor {
                    session: SessionChoice::New { token_hash: token },
                    details: &VisitorDetails {
                        page_url: Some(page.into()),
                        ..Default::default()
                    },
                    fields: &ContactFields::default(),
                },
                thread: Thread::Latest,
                text: &MessageText::parse("text", "Hello").expect("text"),
                attachments: &[],
                client_id: None,
                wants_a_person: false,
                email: None,
            },
            now(),
        )
        .await
        .expect("visitor message")
}

#[tokio::test]
async fn setup_progress_counts_widget_sessions_off_our_origin_only() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let own = "https://chat.example.com";
        let empty = store
            .setup_progress(org.id, own, now())
            .await
            .expect(backend);
        assert_eq!(
            (empty.channels, empty.conversations, empty.teammates),
            (0, 0, 0),
            "{backend}"
        );
        assert!(!empty.playground_tried && !empty.ai_enabled);

        let inbox = web_inbox(&store, org.id, "wi_a").await;
        visit(
            &store,
            &inbox,
            "vt1",
            "https://chat.example.com/settings/inboxes/x/preview",
        )
        .await;
        let previewed = store
            .setup_progress(org.id, own, now())
            .await
            .expect(backend);
        assert_eq!(
            (
                previewed.web_channels,
                previewed.conversations,
                previewed.sessions_elsewhere
            ),
            (1, 1, 0),
            "{backend}"
        );

        // A look-alike host that starts with our address is someone else's site.
        visit(&store, &inbox, "vt2", "https://chat.example.com.evil.test/").await;
        visit(&store, &inbox, "vt3", "https://shop.example.com/pricing").await;
        store
            .mark_playground_tried(org.id, now())
            .await
            .expect(backend);
        let seen = store
            .setup_progress(org.id, own, now())
            .await
            .expect(backend);
        assert_eq!(seen.sessions_elsewhere, 2, "{backend}");
        assert!(seen.playground_tried, "{backend}");
    }
}

#[tokio::test]
async fn deleting_an_inbox_takes_its_conversations_and_their_events_and_keeps_contacts() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let (_, other) = sign_up(&store, "other@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_a").await;
        let kept = web_inbox(&store, org.id, "wi_b").await;
        let written = visit(&store, &inbox, "vt1", "https://shop.example.com/").await;
        let conversation = written.value.conversation.id;
        let contact = written.value.conversation.contact_id;
        visit(&store, &kept, "vt2", "https://shop.example.com/").await;

        assert!(
            matches!(
                store.delete_inbox(other.id, inbox.id, now()).await,
                Err(StoreError::NotFound)
            ),
            "{backend}: another organization's inbox is not found"
        );
        let deleted = store
            .delete_inbox(org.id, inbox.id, now())
            .await
            .expect(backend);
        assert_eq!(deleted.events.len(), 1);
        assert!(matches!(
            store.get_inbox(org.id, inbox.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.get_conversation(org.id, conversation).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store
                .last_conversation_event(conversation)
                .await
                .expect(backend),
            None,
            "{backend}: its events are gone"
        );
        assert!(
            store.get_contact(org.id, contact).await.is_ok(),
            "{backend}: the contact stays"
        );
        assert!(
            store
                .find_visitor_session("vt1", now())
                .await
                .expect(backend)
                .is_none()
        );
        assert!(
            store
                .find_visitor_session("vt2", now())
                .await
                .expect(backend)
                .is_some(),
            "{backend}: the other inbox is untouched"
        );
        assert!(matches!(
            store.delete_inbox(org.id, inbox.id, now()).await,
            Err(StoreError::NotFound)
        ));
    }
}
