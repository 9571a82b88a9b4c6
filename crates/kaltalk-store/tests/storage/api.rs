//! The public API's storage: Idempotency-Key claims, contact merges (widget sessions and
//! the AI opt-out follow), api inbox conversations, label sets.

use chrono::Duration;
use kaltalk_core::MessageText;
use kaltalk_core::chat::{InboxKind, VisitorDetails, WidgetSettings};
use kaltalk_store::StoreError;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::idempotency::{IdempotencyClaim, StoredResponse};
use kaltalk_store::inboxes::NewInbox;
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};

use crate::helpers::{now, sign_up, test_stores};

#[tokio::test]
async fn an_idempotency_key_is_claimed_once_replayed_and_freed_after_a_day() {
    for (backend, store) in test_stores().await.stores {
        let (_, acme) = sign_up(&store, "ada@acme.test").await;
        let (_, globex) = sign_up(&store, "hank@globex.test").await;
        let t0 = now();
        let claim = |org, request: &'static str, hash: &'static str, at| {
            let store = store.clone();
            async move {
                store
                    .claim_idempotency_key(org, "k-1", request, hash, at)
                    .await
                    .expect("claim")
            }
        };
        assert_eq!(
            claim(acme.id, "POST /contacts", "h1", t0).await,
            IdempotencyClaim::New,
            "{backend}"
        );
        assert_eq!(
            claim(acme.id, "POST /contacts", "h1", t0).await,
            IdempotencyClaim::InProgress,
            "{backend}"
        );
        // Keys are per organization and per request.
        assert_eq!(
            claim(globex.id, "POST /contacts", "h1", t0).await,
            IdempotencyClaim::New,
            "{backend}"
        );
        assert_eq!(
            claim(acme.id, "POST /inboxes", "h1", t0).await,
            IdempotencyClaim::New,
            "{backend}"
        );
        let answer = StoredResponse {
            status: 201,
            content_type: Some("application/json".into()),
            body: b"{\"id\":1}".to_vec(),
        };
        store
            .finish_idempotent_request(acme.id, "k-1", "POST /contacts", &answer)
            .await
            .expect("finish");
        assert_eq!(
            claim(acme.id, "POST /contacts", "h1", t0).await,
            IdempotencyClaim::Replay(answer.clone()),
            "{backend}"
        );
        assert_eq!(
            claim(acme.id, "POST /contacts", "h2", t0).await,
            IdempotencyClaim::BodyMismatch,
            "{backend}"
        );
        let later = t0 + Duration::hours(24) + Duration::seconds(1);
        assert_eq!(
            claim(acme.id, "POST /contacts", "h2", later).await,
            IdempotencyClaim::New,
            "{backend}"
        );
        // A released key (after a server error) runs again.
        store
            .release_idempotency_key(acme.id, "k-1", "POST /inboxes")
            .await
            .expect("release");
        assert_eq!(
            claim(acme.id, "POST /inboxes", "h1", t0).await,
            IdempotencyClaim::New,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_merged_widget_visitor_keeps_their_session_and_opt_out() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let t0 = now();
        let inbox = store
            .create_inbox(
                &NewInbox {
                    org_id: org.id,
                    kind: InboxKind::Web,
                    name: "Website".into(),
                    public_token: "wi_m".into(),
                    identity_secret: "secret".into(),
                    settings: WidgetSettings::default(),
                    email: None,
                },
                t0,
            )
            .await
            .expect("inbox");
        let visited = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "vt-m" },
                        details: &VisitorDetails::default(),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Hello").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                t0,
            )
            .await
            .expect(backend);
        let visitor = visited.value.conversation.contact_id;
        store
            .set_ai_opt_out(org.id, visitor, true, t0)
            .await
            .expect("opt out");
        let known = store
            .create_contact(
                org.id,
                &ContactFields {
                    name: Some("Cy".into()),
                    external_id: Some("u-1".into()),
                    ..ContactFields::default()
                },
                t0,
            )
            .await
            .expect("contact")
            .value;

        let merged = store
            .merge_contacts(org.id, visitor, known.id, t0)
            .await
            .expect(backend);
        assert_eq!(merged.value.name.as_deref(), Some("Cy"), "{backend}");
        let conversation = store
            .get_conversation(org.id, visited.value.conversation.id)
            .await
            .expect("conversation");
        assert_eq!(conversation.contact_id, known.id, "{backend}");
        let session = store
            .find_visitor_session("vt-m", t0)
            .await
            .expect("session")
            .expect("still there");
        assert_eq!(
            session.contact_id,
            Some(known.id),
            "{backend}: the widget follows"
        );
        assert!(
            store.ai_opt_out(org.id, known.id).await.expect("opt-out"),
            "{backend}: the opt-out holds"
        );
        assert!(
            matches!(
                store.get_contact(org.id, visitor).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn an_api_conversation_finds_its_contact_and_labels_are_replaced_as_a_set() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let t0 = now();
        let inbox = store
            .create_inbox(
                &NewInbox {
                    org_id: org.id,
                    kind: InboxKind::Api,
                    name: "App".into(),
                    public_token: "ai_x".into(),
                    identity_secret: "secret".into(),
                    settings: WidgetSettings::default(),
                    email: None,
                },
                t0,
            )
            .await
            .expect("inbox");
        let fields = ContactFields {
            email: Some("cy@example.com".into()),
            ..ContactFields::default()
        };
        let first = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Details(&fields),
                    thread: Thread::New,
                    text: &MessageText::parse("text", "Hi").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                t0,
            )
            .await
            .expect(backend);
        let kinds: Vec<&str> = first.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["contact.created", "conversation.created", "message.created"],
            "{backend}"
        );
        let upper = ContactFields {
            email: Some("CY@example.com".into()),
            ..ContactFields::default()
        };
        let second = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Details(&upper),
                    thread: Thread::New,
                    text: &MessageText::parse("text", "Again").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                t0,
            )
            .await
            .expect(backend);
        assert_eq!(second.value.contact.id, first.value.contact.id, "{backend}");
        let kinds: Vec<&str> = second.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["conversation.created", "message.created"],
            "{backend}"
        );

        let id = first.value.conversation.id;
        store
            .set_labels(org.id, id, &["a".into(), "b".into()], t0)
            .await
            .expect("labels");
        let written = store
            .set_labels(org.id, id, &["b".into(), "c".into()], t0)
            .await
            .expect("labels");
        assert_eq!(written.events.len(), 1, "{backend}");
        assert_eq!(
            store.labels_of(org.id, id).await.expect("labels"),
            ["b", "c"],
            "{backend}"
        );
    }
}
