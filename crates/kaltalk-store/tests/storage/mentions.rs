//! @mentions in private notes: the store reads them from the note's text against the
//! organization's current members, keeps them on the note and writes one
//! `conversation.mentioned` event per person, in the note's transaction.

use kaltalk_core::chat::{MessageKind, VisitorDetails};
use kaltalk_core::event::{ConversationMentioned, EventPayload};
use kaltalk_core::{ConversationId, MessageText, OrgId, UserId};
use kaltalk_store::Store;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::messages::{AgentWrite, Message};
use serde_json::json;

use crate::helpers::{member, now, sign_up, test_stores, web_inbox};

async fn conversation(store: &Store, org: OrgId, token: &str) -> ConversationId {
    let inbox = web_inbox(store, org, token).await;
    store
        .take_in(
            CustomerMessage {
                inbox: &inbox,
                from: Customer::Visitor {
                    session: SessionChoice::New { token_hash: token },
                    details: &VisitorDetails::default(),
                    fields: &ContactFields::default(),
                },
                thread: Thread::Latest,
                text: &MessageText::parse("text", "Hello?").expect("text"),
                attachments: &[],
                client_id: None,
                wants_a_person: false,
                email: None,
            },
            now(),
        )
        .await
        .expect("visitor writes")
        .value
        .conversation
        .id
}

struct Wrote {
    message: Message,
    /// The `conversation.mentioned` events the write returned, as stored.
    mentioned: Vec<ConversationMentioned>,
}

async fn write(
    store: &Store,
    org: OrgId,
    conversation: ConversationId,
    agent: UserId,
    kind: MessageKind,
    text: &str,
    picked: &[UserId],
) -> Wrote {
    let written = store
        .agent_writes(
            org,
            conversation,
            AgentWrite {
                agent,
                kind,
                text: &MessageText::parse("text", text).expect("text"),
                client_id: None,
                attachments: &[],
                email: None,
                mentions: picked,
            },
            now(),
        )
        .await
        .expect("agent writes");
    let mentioned = written
        .events
        .iter()
        .filter_map(|e| match e.payload() {
            Ok(EventPayload::ConversationMentioned(m)) => Some(m),
            _ => None,
        })
        .collect();
    Wrote {
        message: written.value,
        mentioned,
    }
}

fn mentions_of(message: &Message) -> Option<serde_json::Value> {
    message
        .metadata
        .as_ref()
        .and_then(|m| m.0.get("mentions").cloned())
}

/// The `conversation.mentioned` events of the organization's log.
async fn logged(store: &Store, org: OrgId) -> Vec<ConversationMentioned> {
    store
        .events_since(org, None, 10_000)
        .await
        .expect("events")
        .iter()
        .filter_map(|e| match e.payload() {
            Ok(EventPayload::ConversationMentioned(m)) => Some(m),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_note_mentions_the_members_it_names_with_one_event_each() {
    for (backend, store) in test_stores().await.stores {
        let (olivia, acme) = sign_up(&store, "olivia@acme.test").await;
        let grace = member(&store, acme.id, "Grace Hopper", "grace@acme.test").await;
        let linus = member(&store, acme.id, "Linus", "linus@acme.test").await;
        let (_, other) = sign_up(&store, "owner@other.test").await;
        let mallory = member(&store, other.id, "Mallory", "mallory@other.test").await;
        store
            .remove_member(acme.id, linus, now())
            .await
            .expect("remove");
        let id = conversation(&store, acme.id, "visitor-1").await;

        // Grace by name (in another case); Linus, gone, and Mallory, of another
        // organization, are named and even sent as picked; nobody is called Nobody.
        let text = "@grace hopper can you check? @Linus too, and @Mallory. \
                    Mail grace@acme.test, @Nobody, @Grace Hopper again.";
        let note = write(
            &store,
            acme.id,
            id,
            olivia,
            MessageKind::Note,
            text,
            &[linus, mallory],
        )
        .await;
        assert_eq!(
            note.message.text, text,
            "{backend}: the text stays as written"
        );
        assert_eq!(
            mentions_of(&note.message),
            Some(json!([grace])),
            "{backend}: only the current member is mentioned"
        );
        let expected = vec![ConversationMentioned {
            conversation_id: id,
            message_id: note.message.id,
            user_id: grace,
            by: olivia,
        }];
        assert_eq!(note.mentioned, expected, "{backend}: one event for Grace");
        assert_eq!(
            logged(&store, acme.id).await,
            expected,
            "{backend}: and it is in the log"
        );
        assert_eq!(
            logged(&store, other.id).await,
            [],
            "{backend}: nothing for the other organization"
        );
        let listed = store
            .list_messages(acme.id, id, true)
            .await
            .expect("messages");
        let stored = listed
            .iter()
            .find(|m| m.id == note.message.id)
            .expect("the note");
        assert_eq!(
            mentions_of(stored),
            Some(json!([grace])),
            "{backend}: stored"
        );

        // The same words as a reply to the customer mention nobody.
        let reply = write(
            &store,
            acme.id,
            id,
            olivia,
            MessageKind::Text,
            "@Grace Hopper will call you.",
            &[grace],
        )
        .await;
        assert_eq!(mentions_of(&reply.message), None, "{backend}: a reply");
        assert_eq!(reply.mentioned, [], "{backend}: no event for a reply");
        assert_eq!(logged(&store, acme.id).await.len(), 1, "{backend}");
    }
}

#[tokio::test]
async fn the_writer_is_not_told_and_a_shared_name_means_whom_they_picked() {
    for (backend, store) in test_stores().await.stores {
        // The helper names the owner Ada Lovelace.
        let (ada, acme) = sign_up(&store, "ada@acme.test").await;
        let sam = member(&store, acme.id, "Sam", "sam@acme.test").await;
        let other_sam = member(&store, acme.id, "Sam", "sam.b@acme.test").await;
        let id = conversation(&store, acme.id, "visitor-2").await;

        let note = write(
            &store,
            acme.id,
            id,
            ada,
            MessageKind::Note,
            "Note to self, @Ada Lovelace: ask @Sam.",
            &[other_sam],
        )
        .await;
        assert_eq!(
            mentions_of(&note.message),
            Some(json!([ada, other_sam])),
            "{backend}: both are mentioned in the text"
        );
        let told: Vec<UserId> = note.mentioned.iter().map(|m| m.user_id).collect();
        assert_eq!(told, [other_sam], "{backend}: the writer hears nothing");

        // Nobody picked: every Sam is meant.
        let note = write(&store, acme.id, id, ada, MessageKind::Note, "@sam?", &[]).await;
        let told: Vec<UserId> = note.mentioned.iter().map(|m| m.user_id).collect();
        assert_eq!(told, [sam, other_sam], "{backend}");

        // A note without a name has no mentions at all.
        let note = write(
            &store,
            acme.id,
            id,
            ada,
            MessageKind::Note,
            "Plain.",
            &[sam],
        )
        .await;
        assert_eq!(note.message.metadata, None, "{backend}");
        assert_eq!(note.mentioned, [], "{backend}");
    }
}
