use chrono::Duration;
use kaltalk_core::MessageText;
use kaltalk_core::chat::{ConversationStatus, MessageKind, SenderKind, VisitorDetails};
use kaltalk_store::StoreError;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::conversations::{AssigneeFilter, ConversationFilter};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::messages::AgentWrite;

use crate::helpers::{now, sign_up, test_stores, web_inbox};

fn details(page: &str) -> VisitorDetails {
    VisitorDetails {
        page_url: Some(page.into()),
        timezone: Some("Europe/Paris".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_first_message_creates_session_contact_and_conversation_and_later_ones_reuse_them() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_a").await;
        let page = details("https://shop.test/pricing");
        let none = ContactFields::default();
        let t0 = now();
        let first = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "vt1" },
                        details: &page,
                        fields: &none,
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Hello").expect("text"),
                    attachments: &[],
                    client_id: Some("c1"),
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
        assert!(
            first.events[1..]
                .iter()
                .all(|e| e.conversation_id == Some(first.value.conversation.id))
        );
        assert_eq!(first.value.message.sender_kind, SenderKind::Contact);

        let session = store
            .find_visitor_session("vt1", t0)
            .await
            .expect(backend)
            .expect("session");
        assert_eq!(session.conversation_id, Some(first.value.conversation.id));
        let contact = store
            .get_contact(org.id, session.contact_id.expect("contact"))
            .await
            .expect(backend);
        assert_eq!(
            contact.details.0.page_url.as_deref(),
            Some("https://shop.test/pricing")
        );

        let second = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::Existing(&session),
                        details: &page,
                        fields: &none,
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Anyone?").expect("text"),
                    attachments: &[],
                    client_id: Some("c2"),
                    wants_a_person: false,
                    email: None,
                },
                t0,
            )
            .await
            .expect(backend);
        assert_eq!(second.value.conversation.id, first.value.conversation.id);
        assert_eq!(second.events.len(), 1);

        // A retry with the same client_id stores nothing new.
        let retry = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::Existing(&session),
                        details: &page,
                        fields: &none,
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Anyone?").expect("text"),
                    attachments: &[],
                    client_id: Some("c2"),
                    wants_a_person: false,
                    email: None,
                },
                t0,
            )
            .await
            .expect(backend);
        assert_eq!(retry.value.message.id, second.value.message.id, "{backend}");
        assert!(retry.events.is_empty());
        assert_eq!(
            store
                .list_messages(org.id, first.value.conversation.id, true)
                .await
                .expect(backend)
                .len(),
            2
        );
    }
}

#[tokio::test]
async fn a_visitor_session_expires_after_thirty_idle_days() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_b").await;
        let t0 = now();
        store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "vt" },
                        details: &details("/"),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
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
        assert!(
            store
                .find_visitor_session("vt", t0 + Duration::days(29))
                .await
                .expect(backend)
                .is_some()
        );
        let session = store
            .find_visitor_session("vt", t0 + Duration::days(29))
            .await
            .expect(backend)
            .expect("s");
        store
            .touch_visitor_session(session.id, &details("/again"), t0 + Duration::days(29))
            .await
            .expect(backend);
        assert!(
            store
                .find_visitor_session("vt", t0 + Duration::days(58))
                .await
                .expect(backend)
                .is_some(),
            "{backend}: activity extends it"
        );
        assert!(
            store
                .find_visitor_session("vt", t0 + Duration::days(59) + Duration::seconds(1))
                .await
                .expect(backend)
                .is_none(),
            "{backend}: 30 idle days"
        );
    }
}

#[tokio::test]
async fn a_resolved_conversation_reopens_when_the_customer_writes() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_c").await;
        let none = ContactFields::default();
        let first = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "vt" },
                        details: &details("/"),
                        fields: &none,
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Hi").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        let id = first.value.conversation.id;
        store
            .set_conversation_status(org.id, id, ConversationStatus::Resolved, None, now())
            .await
            .expect(backend);
        let session = store
            .find_visitor_session("vt", now())
            .await
            .expect(backend)
            .expect("s");
        let again = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::Existing(&session),
                        details: &details("/"),
                        fields: &none,
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "One more thing").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        assert_eq!(again.value.conversation.id, id, "{backend}");
        assert_eq!(again.value.conversation.status, ConversationStatus::Open);
        assert!(
            again
                .events
                .iter()
                .any(|e| e.kind == "conversation.updated" && e.payload.0["reopened"] == true)
        );
    }
}

#[tokio::test]
async fn an_identified_visitor_is_one_contact_across_browsers() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_d").await;
        let ada = ContactFields {
            external_id: Some("user-42".into()),
            name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
            attributes: None,
        };
        let laptop = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New {
                            token_hash: "laptop",
                        },
                        details: &details("/"),
                        fields: &ada,
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "From my laptop").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        let phone = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New {
                            token_hash: "phone",
                        },
                        details: &details("/m"),
                        fields: &ada,
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "From my phone").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        assert_eq!(
            phone.value.conversation.contact_id, laptop.value.conversation.contact_id,
            "{backend}"
        );
        assert_eq!(
            phone.value.conversation.id, laptop.value.conversation.id,
            "the open conversation continues"
        );
        assert!(!phone.events.iter().any(|e| e.kind == "contact.created"));
    }
}

#[tokio::test]
async fn agent_replies_notes_assignment_unread_and_filters() {
    for (backend, store) in test_stores().await.stores {
        let (agent, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_e").await;
        let write = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "vt" },
                        details: &details("/"),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Help").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        let id = write.value.conversation.id;
        let unread = |list: Vec<kaltalk_store::conversations::ConversationSummary>| {
            list.into_iter()
                .find(|c| c.conversation.id == id)
                .map(|c| c.unread)
        };
        let all = ConversationFilter {
            limit: 50,
            ..Default::default()
        };
        assert_eq!(
            unread(store.list_conversations(org.id, &all).await.expect(backend)),
            Some(1),
            "{backend}"
        );
        let unassigned = ConversationFilter {
            assignee: AssigneeFilter::Unassigned,
            limit: 50,
            ..Default::default()
        };
        assert_eq!(
            store
                .list_conversations(org.id, &unassigned)
                .await
                .expect(backend)
                .len(),
            1
        );

        let note = store
            .agent_writes(
                org.id,
                id,
                AgentWrite {
                    agent,
                    kind: MessageKind::Note,
                    text: &MessageText::parse("text", "VIP customer").expect("text"),
                    client_id: None,
                    attachments: &[],
                    email: None,
                    mentions: &[],
                },
                now(),
            )
            .await
            .expect(backend);
        assert_eq!(note.events.len(), 1, "a note does not assign");
        let reply = store
            .agent_writes(
                org.id,
                id,
                AgentWrite {
                    agent,
                    kind: MessageKind::Text,
                    text: &MessageText::parse("text", "Hi! How can I help?").expect("text"),
                    client_id: Some("a1"),
                    attachments: &[],
                    email: None,
                    mentions: &[],
                },
                now(),
            )
            .await
            .expect(backend);
        assert_eq!(reply.value.sender_name.as_deref(), Some("Ada Lovelace"));
        assert!(
            reply
                .events
                .iter()
                .any(|e| e.kind == "conversation.updated"),
            "{backend}: first reply assigns"
        );
        let mine = ConversationFilter {
            assignee: AssigneeFilter::User(agent),
            limit: 50,
            ..Default::default()
        };
        assert_eq!(
            store
                .list_conversations(org.id, &mine)
                .await
                .expect(backend)
                .len(),
            1
        );
        assert_eq!(
            store
                .list_conversations(org.id, &unassigned)
                .await
                .expect(backend)
                .len(),
            0
        );
        assert_eq!(
            unread(store.list_conversations(org.id, &all).await.expect(backend)),
            Some(0),
            "replying reads"
        );

        let public = store.list_messages(org.id, id, false).await.expect(backend);
        assert_eq!(
            public.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            ["Help", "Hi! How can I help?"],
            "{backend}: no notes"
        );
        assert_eq!(
            store
                .list_messages(org.id, id, true)
                .await
                .expect(backend)
                .len(),
            3
        );

        let resolved = ConversationFilter {
            status: Some(ConversationStatus::Resolved),
            limit: 50,
            ..Default::default()
        };
        assert!(
            store
                .list_conversations(org.id, &resolved)
                .await
                .expect(backend)
                .is_empty()
        );
        store
            .set_conversation_status(org.id, id, ConversationStatus::Resolved, None, now())
            .await
            .expect(backend);
        assert_eq!(
            store
                .list_conversations(org.id, &resolved)
                .await
                .expect(backend)
                .len(),
            1
        );

        let replay = store
            .conversation_events_since(id, None, 100)
            .await
            .expect(backend);
        assert!(replay.iter().all(|e| e.conversation_id == Some(id)));
        assert_eq!(
            replay
                .iter()
                .filter(|e| e.kind == "message.created")
                .count(),
            3
        );
    }
}

#[tokio::test]
async fn conversations_of_another_organization_are_not_found() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let (other_agent, other) = sign_up(&store, "other@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_f").await;
        let write = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "vt" },
                        details: &details("/"),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Hi").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        let id = write.value.conversation.id;
        assert!(
            matches!(
                store.get_conversation(other.id, id).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        assert!(matches!(
            store
                .agent_writes(
                    other.id,
                    id,
                    AgentWrite {
                        agent: other_agent,
                        kind: MessageKind::Text,
                        text: &MessageText::parse("text", "x").expect("text"),
                        client_id: None,
                        attachments: &[],
                        email: None,
                        mentions: &[],
                    },
                    now()
                )
                .await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store
                .set_conversation_status(other.id, id, ConversationStatus::Resolved, None, now())
                .await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store
                .assign_conversation(other.id, id, Some(other_agent), None, now())
                .await,
            Err(StoreError::NotFound)
        ));
        assert!(
            store
                .list_messages(other.id, id, true)
                .await
                .expect(backend)
                .is_empty()
        );
        assert!(matches!(
            store.get_inbox(other.id, inbox.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(
            store
                .list_conversations(
                    other.id,
                    &ConversationFilter {
                        limit: 10,
                        ..Default::default()
                    }
                )
                .await
                .expect(backend)
                .is_empty()
        );
    }
}

#[tokio::test]
async fn search_finds_message_words_and_contact_details_with_no_age_cap() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let (_, other) = sign_up(&store, "other@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_s").await;
        let other_inbox = web_inbox(&store, other.id, "wi_s2").await;
        let ada = ContactFields {
            email: Some("ada.lovelace@example.com".into()),
            name: Some("Ada Lovelace".into()),
            ..Default::default()
        };
        let long_ago = now() - Duration::days(3650);
        let old = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "a" },
                        details: &details("/"),
                        fields: &ada,
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "My invoice from last year is wrong")
                        .expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                long_ago,
            )
            .await
            .expect(backend);
        let recent = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "b" },
                        details: &details("/"),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Shipping to Zürich?").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        store
            .take_in(
                CustomerMessage {
                    inbox: &other_inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "c" },
                        details: &details("/"),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "invoice for globex").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        let ids = |found: Vec<kaltalk_store::conversations::ConversationSummary>| {
            found
                .into_iter()
                .map(|c| c.conversation.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(store
                .search_conversations(org.id, "invoice", 10)
                .await
                .expect(backend)),
            [old.value.conversation.id],
            "{backend}: ten years old, other org excluded"
        );
        assert_eq!(
            ids(store
                .search_conversations(org.id, "invo wrong", 10)
                .await
                .expect(backend)),
            [old.value.conversation.id],
            "{backend}: prefixes, all words"
        );
        assert_eq!(
            ids(store
                .search_conversations(org.id, "lovelace", 10)
                .await
                .expect(backend)),
            [old.value.conversation.id],
            "{backend}: contact name"
        );
        assert_eq!(
            ids(store
                .search_conversations(org.id, "zürich", 10)
                .await
                .expect(backend)),
            [recent.value.conversation.id],
            "{backend}: unicode"
        );
        assert!(
            store
                .search_conversations(org.id, "refund", 10)
                .await
                .expect(backend)
                .is_empty()
        );
        assert!(
            store
                .search_conversations(org.id, "\" OR 1=1 --", 10)
                .await
                .expect(backend)
                .is_empty(),
            "{backend}: input is never syntax"
        );
    }
}

#[tokio::test]
async fn labels_and_snoozes() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_l").await;
        let write = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: "a" },
                        details: &details("/"),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "Hi").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        let id = write.value.conversation.id;
        store
            .add_label(org.id, id, "billing", now())
            .await
            .expect(backend);
        let again = store
            .add_label(org.id, id, "billing", now())
            .await
            .expect(backend);
        assert_eq!(
            again.events[0].payload.0["labels"],
            serde_json::json!(["billing"]),
            "{backend}: no duplicate"
        );
        let by_label = ConversationFilter {
            label: Some("billing".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            store
                .list_conversations(org.id, &by_label)
                .await
                .expect(backend)
                .len(),
            1
        );
        store
            .remove_label(org.id, id, "billing", now())
            .await
            .expect(backend);
        assert!(
            store
                .list_conversations(org.id, &by_label)
                .await
                .expect(backend)
                .is_empty()
        );

        let t0 = now();
        store
            .set_conversation_status(
                org.id,
                id,
                ConversationStatus::Snoozed,
                Some(t0 + Duration::hours(2)),
                t0,
            )
            .await
            .expect(backend);
        assert_eq!(
            store
                .wake_snoozed(t0 + Duration::hours(1))
                .await
                .expect(backend)
                .value,
            0
        );
        let woken = store
            .wake_snoozed(t0 + Duration::hours(2))
            .await
            .expect(backend);
        assert_eq!(woken.value, 1, "{backend}");
        assert_eq!(woken.events[0].conversation_id, Some(id));
        assert_eq!(
            store
                .get_conversation(org.id, id)
                .await
                .expect(backend)
                .status,
            ConversationStatus::Open
        );
    }
}

#[tokio::test]
async fn a_first_message_that_asks_for_a_person_goes_to_the_team_in_the_same_transaction() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = web_inbox(&store, org.id, "wi_person").await;
        let ai = kaltalk_core::chat::AiSettings {
            enabled: true,
            ..Default::default()
        };
        store
            .save_ai_settings(org.id, &ai, now())
            .await
            .expect(backend);
        let written = store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New {
                            token_hash: "vt-person",
                        },
                        details: &details("https://shop.test/"),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", "I want a human").expect("text"),
                    attachments: &[],
                    client_id: None,
                    wants_a_person: true,
                    email: None,
                },
                now(),
            )
            .await
            .expect(backend);
        let conversation = &written.value.conversation;
        assert_eq!(
            conversation.handling,
            kaltalk_core::chat::Handling::WaitingHuman,
            "{backend}"
        );
        assert!(
            written
                .events
                .iter()
                .any(|e| e.kind == "conversation.escalated"),
            "{backend}"
        );
        // No bot turn was queued for a message the bot will not answer.
        let jobs = store
            .list_jobs(kaltalk_store::JobState::Queued, 100)
            .await
            .expect(backend);
        assert!(
            jobs.iter().all(|j| j.kind != "ai.turn"),
            "{backend}: {jobs:?}"
        );
        let messages = store
            .list_messages(org.id, conversation.id, true)
            .await
            .expect(backend);
        let notes: Vec<&str> = messages
            .iter()
            .filter(|m| m.kind == MessageKind::Note)
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(
            notes,
            ["Handed over to the team: the visitor pressed “Talk to a person”."],
            "{backend}"
        );
    }
}
