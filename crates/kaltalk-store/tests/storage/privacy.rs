//! Deleting a contact (a customer's request to delete their data) leaves nothing of them
//! behind: not in the tables, the event log or the webhook deliveries, and on SQLite not
//! in the database file either.

use kaltalk_core::chat::{InboxKind, MessageKind, VisitorDetails, WidgetSettings};
use kaltalk_core::{ContactId, OrgId, UserId};
use kaltalk_store::Store;
use kaltalk_store::chat::{
    AgentWrite, ContactFields, Inbox, NewInbox, SessionChoice, VisitorWrite,
};
use kaltalk_store::webhooks::{EventKinds, NewWebhookEndpoint};

use crate::helpers::{now, sign_up, test_stores};

/// What only the deleted contact said or was.
const SECRETS: [&str; 4] = ["zanzibar", "Quokkaface", "quokka.test", "parcel-7781"];
/// What another contact said, which must stay.
const KEPT: &str = "brioche";

async fn inbox(store: &Store, org: OrgId) -> Inbox {
    let inbox = NewInbox {
        org_id: org,
        kind: InboxKind::Web,
        name: "Website".into(),
        public_token: "wi_privacy".into(),
        identity_secret: "secret".into(),
        settings: WidgetSettings::default(),
        email: None,
    };
    store.create_inbox(&inbox, now()).await.expect("inbox")
}

async fn visitor_says(
    store: &Store,
    inbox: &Inbox,
    token: &str,
    contact: ContactFields,
    text: &str,
) -> (ContactId, kaltalk_core::ConversationId) {
    let written = store
        .visitor_writes(
            VisitorWrite {
                inbox,
                session: SessionChoice::New { token_hash: token },
                details: &VisitorDetails::default(),
                contact: &contact,
                text,
                client_id: None,
                attachments: &[],
                bot_first: false,
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
        text,
        client_id: None,
        attachments: &[],
    };
    store
        .agent_writes(org, conversation, reply, now())
        .await
        .expect("agent reply");
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
        let hook = NewWebhookEndpoint {
            org_id: org.id,
            url: "https://hooks.example/kaltalk".into(),
            secret: "whsec_test".into(),
            events: EventKinds::default(),
        };
        let hook = store
            .create_webhook_endpoint(&hook, now())
            .await
            .expect(backend);
        let inbox = inbox(store, org.id).await;
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
    let (_, sqlite) = &stores.stores[0];
    sqlite.close().await;
    let file = stores.sqlite_file();
    let mut bytes = std::fs::read(&file).expect("the database file");
    if let Ok(wal) = std::fs::read(file.with_extension("db-wal")) {
        bytes.extend(wal);
    }
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
