//! Deleting a contact (a customer's request) or a person's own account leaves nothing of
//! them behind: not in the tables, the event log or the webhook deliveries, and on SQLite
//! not in the database file either.

use kaltalk_core::chat::{MessageKind, VisitorDetails};
use kaltalk_core::{ContactId, MessageText, OrgId, UserId};
use kaltalk_store::Store;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::messages::AgentWrite;
use kaltalk_store::webhooks::{EventKinds, NewWebhookEndpoint};

use crate::helpers::{now, sign_up, test_stores, web_inbox};

/// What only the deleted contact said or was.
const SECRETS: [&str; 4] = ["zanzibar", "Quokkaface", "quokka.test", "parcel-7781"];
/// What another contact said, which must stay.
const KEPT: &str = "brioche";

/// A webhook endpoint that hears every event of `org`.
async fn hook_for_everything(
    store: &Store,
    org: OrgId,
) -> kaltalk_store::webhooks::WebhookEndpoint {
    let hook = NewWebhookEndpoint {
        org_id: org,
        url: "https://hooks.example/kaltalk".into(),
        secret: "whsec_test".into(),
        events: EventKinds::default(),
    };
    store
        .create_webhook_endpoint(&hook, now())
        .await
        .expect("endpoint")
}

/// A new visitor's first message, answered by a person.
async fn visitor_says(
    store: &Store,
    inbox: &Inbox,
    token: &str,
    contact: ContactFields,
    text: &str,
) -> (ContactId, kaltalk_core::ConversationId) {
    first_message(store, inbox, token, contact, text, false).await
}

/// A new visitor's first message, for the bot: its turn is a queued job naming the
/// organization.
async fn visitor_asks_the_bot(store: &Store, inbox: &Inbox, token: &str, text: &str) {
    first_message(store, inbox, token, ContactFields::default(), text, true).await;
}

async fn first_message(
    store: &Store,
    inbox: &Inbox,
    token: &str,
    contact: ContactFields,
    text: &str,
    bot_first: bool,
) -> (ContactId, kaltalk_core::ConversationId) {
    // The bot takes a new conversation's first turn when the organization's AI agent is on.
    let ai = kaltalk_core::chat::AiSettings {
        enabled: bot_first,
        ..Default::default()
    };
    store
        .save_ai_settings(inbox.org_id, &ai, now())
        .await
        .expect("AI settings");
    let written = store
        .take_in(
            CustomerMessage {
                inbox,
                from: Customer::Visitor {
                    session: SessionChoice::New { token_hash: token },
                    details: &VisitorDetails::default(),
                    fields: &contact,
                },
                thread: Thread::Latest,
                text: &MessageText::parse("text", text).expect("text"),
                attachments: &[],
                client_id: None,
                wants_a_person: false,
                email: None,
            },
            now(),
        )
        .await
        .expect("visitor writes");
    let conversation = written.value.conversation;
    (conversation.contact_id, conversation.id)
}

async fn agent_says(
    store: &Store,
    org: OrgId,
    agent: UserId,
    conversation: kaltalk_core::ConversationId,
    text: &str,
) {
    let reply = AgentWrite {
        agent,
        kind: MessageKind::Text,
        text: &MessageText::parse("text", text).expect("text"),
        client_id: None,
        attachments: &[],
        email: None,
        mentions: &[],
    };
    store
        .agent_writes(org, conversation, reply, now())
        .await
        .expect("agent reply");
}

/// Everything the SQLite database holds on disk, once its store is closed (the last
/// connection folds the write-ahead log back into the file).
async fn sqlite_bytes(stores: &crate::helpers::TestStores) -> Vec<u8> {
    let (_, sqlite) = &stores.stores[0];
    sqlite.close().await;
    let file = stores.sqlite_file();
    let mut bytes = std::fs::read(&file).expect("the database file");
    if let Ok(wal) = std::fs::read(file.with_extension("db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains_ignoring_case(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.to_ascii_lowercase().into_bytes();
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(&needle))
}

#[tokio::test]
async fn a_deleted_contact_leaves_nothing_behind() {
    let stores = test_stores().await;
    for (backend, store) in &stores.stores {
        let (agent, org) = sign_up(store, "owner@example.com").await;
        let hook = hook_for_everything(store, org.id).await;
        let inbox = web_inbox(store, org.id, "wi_privacy").await;
        let quentin = ContactFields {
            name: Some("Quentin Quokkaface".into()),
            email: Some("quentin@quokka.test".into()),
            ..ContactFields::default()
        };
        let (gone, conversation) = visitor_says(
            store,
            &inbox,
            "hash-quentin",
            quentin,
            "My zanzibar order parcel-7781 never came",
        )
        .await;
        agent_says(
            store,
            org.id,
            agent,
            conversation,
            "Sorry, the zanzibar parcel is late",
        )
        .await;
        let (_, other) = visitor_says(
            store,
            &inbox,
            "hash-other",
            ContactFields::default(),
            "A brioche, please",
        )
        .await;
        agent_says(store, org.id, agent, other, "One brioche coming").await;
        // Webhook deliveries now hold copies of all of it.
        let dispatched = store.dispatch_webhooks(now(), 100).await.expect(backend);
        assert!(
            dispatched.deliveries_created >= 8,
            "{backend}: {dispatched:?}"
        );

        store
            .delete_contact(org.id, gone, now())
            .await
            .expect(backend);
        // The dispatcher runs again after the deletion: nothing of the contact comes back.
        store.dispatch_webhooks(now(), 100).await.expect(backend);

        let events = store.events_since(org.id, None, 1000).await.expect(backend);
        let log = serde_json::to_string(&events.iter().map(|e| &e.payload.0).collect::<Vec<_>>())
            .expect("JSON");
        let deliveries = store
            .list_webhook_deliveries(org.id, hook.id, 100)
            .await
            .expect(backend);
        let bodies: String = deliveries.iter().map(|d| d.body.as_str()).collect();
        for secret in SECRETS {
            assert!(
                !contains_ignoring_case(log.as_bytes(), secret),
                "{backend}: {secret} in the event log"
            );
            assert!(
                !contains_ignoring_case(bodies.as_bytes(), secret),
                "{backend}: {secret} in a webhook delivery"
            );
        }
        assert!(
            log.contains(KEPT),
            "{backend}: the other contact's messages stay"
        );
        assert!(bodies.contains(KEPT), "{backend}: and their deliveries");
        assert!(
            events
                .iter()
                .any(|e| e.kind == "contact.deleted" && e.subject_id == Some(gone.as_uuid())),
            "{backend}: the deletion itself is an event"
        );
    }

    // SQLite: not in the file either (zeroed pages, FTS5 secure-delete), once the last
    // connection has folded the write-ahead log back into it.
    let bytes = sqlite_bytes(&stores).await;
    for secret in SECRETS {
        assert!(
            !contains_ignoring_case(&bytes, secret),
            "{secret} is still in the SQLite file"
        );
    }
    assert!(
        contains_ignoring_case(&bytes, KEPT),
        "the scan finds what was kept"
    );
}

async fn person(
    store: &Store,
    email: &str,
    name: &str,
    org: &str,
) -> (UserId, kaltalk_store::Organization) {
    let user = kaltalk_store::NewUser {
        name: kaltalk_core::PersonName::parse("name", name).expect("name"),
        ..crate::helpers::new_user(email)
    };
    let org = kaltalk_core::OrgName::parse("org", org).expect("org");
    store
        .sign_up(&user, &org, None, now())
        .await
        .expect("sign up")
}

async fn join(
    store: &Store,
    org: &kaltalk_store::Organization,
    inviter: UserId,
    user: UserId,
    email: &str,
) {
    let invitation = kaltalk_store::NewInvitation {
        org_id: org.id,
        email: kaltalk_core::EmailAddress::parse("email", email).expect("email"),
        role: kaltalk_core::Role::Agent,
        token_hash: format!("invite-{email}"),
        invited_by: inviter,
        expires_at: now() + chrono::Duration::days(1),
    };
    store
        .create_invitation(&invitation, &crate::helpers::kept_email(email), now())
        .await
        .expect("invitation");
    store
        .accept_invitation(
            &invitation.token_hash,
            kaltalk_store::Acceptor::Existing(user),
            now(),
        )
        .await
        .expect("accepted");
}

#[tokio::test]
async fn deleting_an_account_takes_its_lone_organizations_and_its_name_with_it() {
    use kaltalk_store::privacy::Leaving;
    use kaltalk_store::{Conflict, JobState, StoreError};

    let stores = test_stores().await;
    for (backend, store) in &stores.stores {
        // Ada alone in Acme; Bob owns Globex, where Ada is an agent.
        let (ada, acme) = person(store, "ada@example.com", "Ada Lovelace", "Acme").await;
        let (bob, globex) = person(store, "bob@example.com", "Bob Builder", "Globex").await;
        join(store, &globex, bob, ada, "ada@example.com").await;
        let hook = hook_for_everything(store, globex.id).await;

        // Acme's data, with a bot turn queued (a job naming the organization).
        let acme_inbox = web_inbox(store, acme.id, "wi_acme").await;
        visitor_asks_the_bot(
            store,
            &acme_inbox,
            "hash-acme",
            "acme-only marzipan question",
        )
        .await;
        // In Globex, Ada answers a visitor (and so is assigned).
        let globex_inbox = web_inbox(store, globex.id, "wi_globex").await;
        let (_, conversation) = visitor_says(
            store,
            &globex_inbox,
            "hash-globex",
            ContactFields::default(),
            "Is Globex open?",
        )
        .await;
        agent_says(store, globex.id, ada, conversation, "Yes, until six").await;
        store.dispatch_webhooks(now(), 100).await.expect(backend);

        let copy = store.account_data(ada).await.expect(backend);
        assert_eq!(copy.user.email, "ada@example.com");
        let orgs: Vec<_> = copy
            .organizations
            .iter()
            .map(|m| {
                (
                    m.organization.as_str(),
                    m.messages_written,
                    m.conversations_assigned,
                )
            })
            .collect();
        assert_eq!(orgs, [("Acme", 0, 0), ("Globex", 1, 1)], "{backend}");
        assert_eq!(copy.emails.len(), 1, "{backend}: the invitation email");

        let plan = |list: Vec<(kaltalk_core::OrgId, String, Leaving)>| {
            list.into_iter()
                .map(|(_, name, leaving)| (name, leaving))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            plan(store.account_deletion_plan(ada).await.expect(backend)),
            [
                ("Acme".to_owned(), Leaving::DeletesOrganization),
                ("Globex".to_owned(), Leaving::LeavesOrganization)
            ],
            "{backend}"
        );
        // Bob owns Globex, where Ada still is: he must hand it over first.
        let refused = store.delete_account(bob, now()).await;
        assert!(
            matches!(&refused, Err(StoreError::Conflict(Conflict::OwnsSharedOrganization(name))) if name == "Globex"),
            "{backend}: {refused:?}"
        );

        let deleted = store.delete_account(ada, now()).await.expect(backend);
        assert_eq!(deleted.deleted_organizations, [acme.id], "{backend}");
        assert_eq!(
            deleted.events.len(),
            1,
            "{backend}: member.removed in Globex"
        );

        // Acme is gone, with its event log and its queued jobs.
        assert!(
            matches!(
                store.get_organization(acme.id).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        assert!(
            store
                .events_since(acme.id, None, 100)
                .await
                .expect(backend)
                .is_empty(),
            "{backend}"
        );
        let acme_id = acme.id.to_string();
        for state in [JobState::Queued, JobState::Running, JobState::Dead] {
            let jobs = store.list_jobs(state, 1000).await.expect(backend);
            assert!(
                !jobs
                    .iter()
                    .any(|j| j.payload.0["org_id"] == acme_id.as_str()),
                "{backend}: a job of Acme is left"
            );
        }
        // Ada is gone; her reply in Globex stays, without her name, and unassigned.
        assert!(store.get_user(ada).await.is_err(), "{backend}");
        let messages = store
            .list_messages(globex.id, conversation, true)
            .await
            .expect(backend);
        let reply = messages
            .iter()
            .find(|m| m.text == "Yes, until six")
            .expect("the reply stays");
        assert_eq!(reply.sender_name, None, "{backend}");
        let kept = store
            .get_conversation(globex.id, conversation)
            .await
            .expect(backend);
        assert_eq!(kept.assignee_id, None, "{backend}");
        let events = store
            .events_since(globex.id, None, 1000)
            .await
            .expect(backend);
        let log = serde_json::to_string(&events.iter().map(|e| &e.payload.0).collect::<Vec<_>>())
            .expect("JSON");
        let bodies: String = store
            .list_webhook_deliveries(globex.id, hook.id, 100)
            .await
            .expect(backend)
            .iter()
            .map(|d| d.body.clone())
            .collect();
        assert!(
            log.contains("Yes, until six") && bodies.contains("Yes, until six"),
            "{backend}"
        );
        assert!(
            !log.contains("Ada Lovelace"),
            "{backend}: her name is still in the event log: {log}"
        );
        assert!(
            !bodies.contains("Ada Lovelace"),
            "{backend}: her name is still in a webhook delivery"
        );
        assert!(
            store.account_data(bob).await.is_ok(),
            "{backend}: Bob is untouched"
        );
    }

    // SQLite: Acme's words and Ada's name are out of the file too.
    let bytes = sqlite_bytes(&stores).await;
    for secret in ["marzipan", "Ada Lovelace", "ada@example.com"] {
        assert!(
            !contains_ignoring_case(&bytes, secret),
            "{secret} is still in the SQLite file"
        );
    }
    assert!(
        contains_ignoring_case(&bytes, "until six"),
        "the scan finds what was kept"
    );
}

#[tokio::test]
async fn deleting_an_organization_takes_its_event_log_and_jobs_and_nothing_else() {
    use kaltalk_store::{JobState, StoreError};

    for (backend, store) in test_stores().await.stores {
        let (_, acme) = person(&store, "ada@example.com", "Ada Lovelace", "Acme").await;
        let (_, globex) = person(&store, "bob@example.com", "Bob Builder", "Globex").await;
        for (org, token) in [(&acme, "wi_acme"), (&globex, "wi_globex")] {
            let inbox = web_inbox(&store, org.id, token).await;
            visitor_asks_the_bot(&store, &inbox, token, "Hello there").await;
        }

        store.delete_organization(acme.id).await.expect(backend);
        assert!(
            matches!(
                store.delete_organization(acme.id).await,
                Err(StoreError::NotFound)
            ),
            "{backend}: gone already"
        );

        assert!(store.get_organization(acme.id).await.is_err(), "{backend}");
        assert!(
            store
                .events_since(acme.id, None, 100)
                .await
                .expect(backend)
                .is_empty()
        );
        assert!(
            !store
                .events_since(globex.id, None, 100)
                .await
                .expect(backend)
                .is_empty()
        );
        let jobs = store.list_jobs(JobState::Queued, 100).await.expect(backend);
        let orgs: Vec<&str> = jobs
            .iter()
            .filter_map(|job| job.payload.0["org_id"].as_str())
            .collect();
        assert_eq!(
            orgs,
            [globex.id.to_string()],
            "{backend}: only Globex's bot turn is left"
        );
    }
}
