use chrono::Duration;
use kaltalk_core::chat::{
    ConversationStatus, EmailSettings, InboxKind, MessageKind, SenderKind, WidgetSettings,
};
use kaltalk_core::job::JobPayload;
use kaltalk_core::{ConversationId, MessageText, OrgId, UserId};
use kaltalk_store::conversations::ConversationFilter;
use kaltalk_store::email::{DeliveryOutcome, EmailNoise, ImapCursorRow, NoiseEmail, Received};
use kaltalk_store::inboxes::{Inbox, NewInbox};
use kaltalk_store::intake::{ArrivedEmail, Customer, CustomerMessage, Thread};
use kaltalk_store::messages::{AgentWrite, EmailRecipients};
use kaltalk_store::{Conflict, Delivery, EmailState, JobState, NewEmail, Store, StoreError};
use serde_json::json;

use crate::helpers::{now, sign_up, test_stores};

async fn email_inbox(store: &Store, org: OrgId, address: &str) -> Result<Inbox, StoreError> {
    let inbox = NewInbox {
        org_id: org,
        kind: InboxKind::Email,
        name: "Support".into(),
        public_token: format!("em_{address}"),
        identity_secret: "secret".into(),
        settings: WidgetSettings::default(),
        email: Some((address.into(), EmailSettings::default())),
    };
    store.create_inbox(&inbox, now()).await
}

/// A received email with the fields the threading looks at.
struct Mail<'a> {
    id: &'a str,
    from: &'a str,
    thread: Vec<String>,
    token: Option<&'a str>,
    noise: Option<EmailNoise>,
}

impl<'a> Mail<'a> {
    fn new(id: &'a str, from: &'a str) -> Self {
        Self {
            id,
            from,
            thread: Vec::new(),
            token: None,
            noise: None,
        }
    }

    fn replying_to(mut self, ids: &[&str]) -> Self {
        self.thread = ids.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

/// Stores a received email as the email channel does: noise is recorded as a note, a
/// customer's mail goes through the intake.
async fn receive(store: &Store, inbox: &Inbox, mail: Mail<'_>) -> Received {
    let full_text = "Hello, the vase is broken.\n\n> quoted history";
    let subject = "Order 1234 arrived broken";
    if let Some(noise) = mail.noise {
        let email = NoiseEmail {
            inbox,
            rfc_message_id: mail.id,
            thread_ids: &mail.thread,
            from_address: mail.from,
            subject,
            full_text,
            html: None,
            raw_key: Some("org/email/raw.eml"),
            noise,
            source: "smtp",
        };
        return store
            .record_email_noise(email, now())
            .await
            .expect("noise")
            .value;
    }
    let details = json!({ "subject": subject });
    let address = mail.from.trim().to_lowercase();
    let text = MessageText::received("Hello, the vase is broken.");
    let message = CustomerMessage {
        inbox,
        from: Customer::Email {
            address: &address,
            name: Some("Ada Lovelace"),
        },
        thread: Thread::Email {
            thread_ids: &mail.thread,
            reply_token: mail.token,
            subject,
        },
        text: &text,
        attachments: &[],
        client_id: None,
        wants_a_person: false,
        email: Some(ArrivedEmail {
            rfc_message_id: mail.id,
            from_address: &address,
            subject,
            full_text,
            html: None,
            raw_key: Some("org/email/raw.eml"),
            details: &details,
            source: "smtp",
        }),
    };
    match store.take_in(message, now()).await {
        Ok(written) => Received::Message {
            conversation: written.value.conversation,
            message: written.value.message,
        },
        Err(StoreError::Conflict(Conflict::EmailAlreadyStored)) => Received::Duplicate,
        Err(err) => panic!("receive: {err}"),
    }
}

fn conversation_of(received: &Received) -> ConversationId {
    match received {
        Received::Message { conversation, .. } => conversation.id,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn agent_reply(store: &Store, org: OrgId, agent: UserId, conversation: ConversationId) {
    store
        .agent_writes(
            org,
            conversation,
            AgentWrite {
                agent,
                kind: MessageKind::Text,
                text: &MessageText::parse("text", "Sorry! A new vase is on its way.")
                    .expect("text"),
                client_id: None,
                attachments: &[],
                email: None,
                mentions: &[],
            },
            now(),
        )
        .await
        .expect("reply");
}

#[tokio::test]
async fn replies_join_their_thread_only_from_the_same_contact_and_duplicates_are_skipped() {
    for (backend, store) in test_stores().await.stores {
        let (agent, org) = sign_up(&store, "owner@example.com").await;
        let inbox = email_inbox(&store, org.id, "Support@Acme.test")
            .await
            .expect(backend);
        assert_eq!(inbox.email_address.as_deref(), Some("support@acme.test"));

        let first = receive(
            &store,
            &inbox,
            Mail::new("m1@mail.test", "Ada@Example.test"),
        )
        .await;
        let conversation = conversation_of(&first);
        let stored = store
            .get_conversation(org.id, conversation)
            .await
            .expect(backend);
        assert_eq!(stored.subject.as_deref(), Some("Order 1234 arrived broken"));

        // The same Message-ID again (an SMTP retry, an IMAP re-poll) writes nothing.
        let again = receive(
            &store,
            &inbox,
            Mail::new("m1@mail.test", "ada@example.test"),
        )
        .await;
        assert!(matches!(again, Received::Duplicate), "{backend}: {again:?}");

        // An agent's reply is queued for the relay with the message.
        agent_reply(&store, org.id, agent, conversation).await;
        let emails = store
            .conversation_emails(org.id, conversation)
            .await
            .expect(backend);
        assert_eq!(emails.len(), 2, "{backend}");
        let out = &emails[1];
        assert_eq!(out.direction, "out");
        assert_eq!(out.delivery.as_deref(), Some("pending"));
        assert!(
            out.rfc_message_id.ends_with("@acme.test"),
            "{}",
            out.rfc_message_id
        );
        let jobs = store.list_jobs(JobState::Queued, 100).await.expect(backend);
        assert!(
            jobs.iter()
                .any(|j| j.kind == kaltalk_core::job::SendEmailReply::KIND),
            "{backend}: a reply job is queued"
        );
        let reply = store.reply_to_send(out.id).await.expect(backend);
        assert_eq!(reply.in_reply_to.as_deref(), Some("m1@mail.test"));
        assert_eq!(reply.thread, vec!["m1@mail.test".to_owned()]);
        assert_eq!(reply.contact_email.as_deref(), Some("ada@example.test"));
        assert_eq!(reply.message.email_fact("delivery"), Some("pending"));
        let token = reply.reply_token.clone().expect("reply token");

        // The customer's answer to our reply joins the conversation.
        let answer = receive(
            &store,
            &inbox,
            Mail::new("m2@mail.test", "ada@example.test")
                .replying_to(&[&out.rfc_message_id, "m1@mail.test"]),
        )
        .await;
        assert_eq!(conversation_of(&answer), conversation, "{backend}");

        // Someone else replying to the same thread (a forwarded newsletter) does not.
        let stranger = receive(
            &store,
            &inbox,
            Mail::new("m3@mail.test", "bob@example.test").replying_to(&[&out.rfc_message_id]),
        )
        .await;
        assert_ne!(conversation_of(&stranger), conversation, "{backend}");

        // Without threading headers the reply token routes it, for the same contact only.
        let mut by_token = Mail::new("m4@mail.test", "ada@example.test");
        by_token.token = Some(&token);
        assert_eq!(
            conversation_of(&receive(&store, &inbox, by_token).await),
            conversation
        );
        let mut stolen_token = Mail::new("m5@mail.test", "eve@example.test");
        stolen_token.token = Some(&token);
        assert_ne!(
            conversation_of(&receive(&store, &inbox, stolen_token).await),
            conversation
        );

        // A resolved conversation reopens when the customer writes again.
        store
            .set_conversation_status(
                org.id,
                conversation,
                ConversationStatus::Resolved,
                None,
                now(),
            )
            .await
            .expect(backend);
        let reopened = receive(
            &store,
            &inbox,
            Mail::new("m6@mail.test", "ada@example.test").replying_to(&["m2@mail.test"]),
        )
        .await;
        let Received::Message {
            conversation: c, ..
        } = reopened
        else {
            panic!("{backend}: expected a message");
        };
        assert_eq!((c.id, c.status), (conversation, ConversationStatus::Open));
    }
}

#[tokio::test]
async fn auto_replies_and_bounces_open_nothing_and_are_noted_where_they_refer() {
    for (backend, store) in test_stores().await.stores {
        let (agent, org) = sign_up(&store, "owner@example.com").await;
        let inbox = email_inbox(&store, org.id, "help@acme.test")
            .await
            .expect(backend);
        let conversation = conversation_of(
            &receive(
                &store,
                &inbox,
                Mail::new("c1@mail.test", "ada@example.test"),
            )
            .await,
        );
        agent_reply(&store, org.id, agent, conversation).await;
        let ours = store
            .conversation_emails(org.id, conversation)
            .await
            .expect(backend)
            .pop()
            .expect("our reply");

        let mut ooo =
            Mail::new("ooo@mail.test", "ada@example.test").replying_to(&[&ours.rfc_message_id]);
        ooo.noise = Some(EmailNoise::AutoReply);
        let noted = receive(&store, &inbox, ooo).await;
        assert!(
            matches!(noted, Received::Noise { conversation: Some(c) } if c == conversation),
            "{backend}: {noted:?}"
        );
        let mut bounce = Mail::new("dsn@mail.test", "mailer-daemon@mail.test")
            .replying_to(&[&ours.rfc_message_id]);
        bounce.noise = Some(EmailNoise::Bounce);
        receive(&store, &inbox, bounce).await;
        let messages = store
            .list_messages(org.id, conversation, true)
            .await
            .expect(backend);
        let notes: Vec<&str> = messages
            .iter()
            .filter(|m| m.kind == MessageKind::Note && m.sender_kind == SenderKind::System)
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(notes.len(), 2, "{backend}: {notes:?}");
        assert!(notes[0].starts_with("Automatic reply from ada@example.test"));
        assert!(notes[1].starts_with("A delivery failure report"));

        // Noise that refers to nothing is recorded, and opens no conversation.
        let mut stray = Mail::new("ooo2@mail.test", "carol@example.test");
        stray.noise = Some(EmailNoise::AutoReply);
        let recorded = receive(&store, &inbox, stray).await;
        assert!(
            matches!(recorded, Received::Noise { conversation: None }),
            "{backend}"
        );
        let unthreaded = store
            .unthreaded_emails(org.id, inbox.id)
            .await
            .expect(backend);
        assert_eq!(unthreaded.len(), 1);
        assert_eq!(unthreaded[0].noise.as_deref(), Some("auto_reply"));
        let conversations = store
            .list_conversations(
                org.id,
                &ConversationFilter {
                    limit: 50,
                    ..Default::default()
                },
            )
            .await
            .expect(backend);
        assert_eq!(
            conversations.len(),
            1,
            "{backend}: noise opened a conversation"
        );
    }
}

#[tokio::test]
async fn a_reply_kept_for_want_of_a_relay_is_in_the_outbox_and_marked_on_the_message() {
    for (backend, store) in test_stores().await.stores {
        let (agent, org) = sign_up(&store, "owner@example.com").await;
        let inbox = email_inbox(&store, org.id, "desk@acme.test")
            .await
            .expect(backend);
        let conversation = conversation_of(
            &receive(
                &store,
                &inbox,
                Mail::new("k1@mail.test", "ada@example.test"),
            )
            .await,
        );
        agent_reply(&store, org.id, agent, conversation).await;
        let out = store
            .conversation_emails(org.id, conversation)
            .await
            .expect(backend)
            .pop()
            .expect("reply");
        let email = NewEmail {
            org_id: Some(org.id),
            to: "ada@example.test".into(),
            subject: "Re: Hello".into(),
            text_body: "On its way.".into(),
            html_body: "<p>On its way.</p>".into(),
            kind: "reply",
            delivery: Delivery::KeepInOutbox,
        };
        let kept = store
            .record_reply_delivery(out.id, &DeliveryOutcome::KeptInOutbox(email), now())
            .await
            .expect(backend);
        assert_eq!(
            kept.value.email_fact("delivery"),
            Some("outbox"),
            "{backend}"
        );
        assert_eq!(kept.value.email_fact("error"), None, "{backend}");
        assert_eq!(
            kept.value.email_delivery_label(),
            "kept in the outbox: no relay configured"
        );
        let outbox = store.list_emails(org.id, 10).await.expect(backend);
        let reply = outbox
            .iter()
            .find(|e| e.kind == "reply")
            .unwrap_or_else(|| panic!("{backend}: in the outbox: {outbox:?}"));
        assert_eq!(reply.state, EmailState::Kept, "{backend}");
        assert_eq!(reply.to_address, "ada@example.test");
        assert_eq!(reply.text_body, "On its way.");
    }
}

#[tokio::test]
async fn delivery_outcomes_show_on_the_message_and_addresses_are_unique() {
    for (backend, store) in test_stores().await.stores {
        let (agent, org) = sign_up(&store, "owner@example.com").await;
        let inbox = email_inbox(&store, org.id, "desk@acme.test")
            .await
            .expect(backend);
        let conversation = conversation_of(
            &receive(
                &store,
                &inbox,
                Mail::new("d1@mail.test", "ada@example.test"),
            )
            .await,
        );
        agent_reply(&store, org.id, agent, conversation).await;
        let out = store
            .conversation_emails(org.id, conversation)
            .await
            .expect(backend)
            .pop()
            .expect("reply");
        let retrying = store
            .record_reply_delivery(
                out.id,
                &DeliveryOutcome::Retrying("451 try later".into()),
                now(),
            )
            .await
            .expect(backend);
        assert_eq!(retrying.value.email_fact("delivery"), Some("pending"));
        assert_eq!(retrying.value.email_fact("error"), Some("451 try later"));
        assert_eq!(retrying.events[0].kind, "message.updated");
        let sent = store
            .record_reply_delivery(out.id, &DeliveryOutcome::Sent, now() + Duration::seconds(5))
            .await
            .expect(backend);
        assert_eq!(sent.value.email_fact("delivery"), Some("sent"));
        assert_eq!(sent.value.email_fact("error"), None);

        // Mail for support+anything@ reaches the inbox; an address has one inbox.
        let found = store
            .find_email_inbox("<Desk+t0ken@ACME.test>")
            .await
            .expect(backend)
            .expect("found by a tagged address");
        assert_eq!(found.id, inbox.id);
        assert!(
            store
                .find_email_inbox("nobody@acme.test")
                .await
                .expect(backend)
                .is_none()
        );
        let (_, other_org) = sign_up(&store, "other@example.com").await;
        let taken = email_inbox(&store, other_org.id, "DESK@acme.test").await;
        assert!(
            matches!(
                taken,
                Err(StoreError::Conflict(Conflict::InboxAddressTaken))
            ),
            "{backend}: {taken:?}"
        );
        // Another organization cannot read this one's emails.
        let reply = store.reply_to_send(out.id).await.expect(backend);
        let foreign = store.message_email(other_org.id, reply.message.id).await;
        assert!(matches!(foreign, Err(StoreError::NotFound)), "{backend}");

        // Where IMAP polling stopped survives, and errors are kept beside it.
        assert_eq!(store.imap_cursor(inbox.id).await.expect(backend), None);
        let at = ImapCursorRow {
            uid_validity: 7,
            last_uid: 42,
        };
        store
            .save_imap_poll(inbox.id, Some(at), None, now())
            .await
            .expect(backend);
        store
            .save_imap_poll(inbox.id, None, Some("login refused"), now())
            .await
            .expect(backend);
        assert_eq!(store.imap_cursor(inbox.id).await.expect(backend), Some(at));
        assert_eq!(
            store.imap_error(inbox.id).await.expect(backend).as_deref(),
            Some("login refused")
        );
    }
}

#[tokio::test]
async fn deleting_a_contact_hands_back_the_originals_of_their_emails_for_removal() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let inbox = email_inbox(&store, org.id, "help@acme.test")
            .await
            .expect(backend);
        let received = receive(
            &store,
            &inbox,
            Mail::new("x1@mail.test", "ada@example.test"),
        )
        .await;
        let Received::Message { conversation, .. } = received else {
            panic!("{backend}: expected a message");
        };
        // An out-of-office from the same address that threads to nothing, and one from
        // somebody else.
        for (id, from) in [
            ("ooo-ada@mail.test", "ADA@example.test"),
            ("ooo-bob@mail.test", "bob@example.test"),
        ] {
            let mut stray = Mail::new(id, from);
            stray.noise = Some(EmailNoise::AutoReply);
            receive(&store, &inbox, stray).await;
        }
        let deleted = store
            .delete_contact(org.id, conversation.contact_id, now())
            .await
            .expect(backend);
        assert_eq!(
            deleted.value,
            vec![
                "org/email/raw.eml".to_owned(),
                "org/email/raw.eml".to_owned()
            ],
            "{backend}: the message's original and the auto-reply's"
        );
        let unthreaded = store
            .unthreaded_emails(org.id, inbox.id)
            .await
            .expect(backend);
        let senders: Vec<_> = unthreaded
            .iter()
            .map(|e| e.from_address.as_deref())
            .collect();
        assert_eq!(
            senders,
            [Some("bob@example.test")],
            "{backend}: only the other sender's is kept"
        );
        assert!(
            store
                .conversation_emails(org.id, conversation.id)
                .await
                .expect(backend)
                .is_empty(),
            "{backend}: the email rows went with the contact"
        );
    }
}

#[tokio::test]
async fn the_cc_and_bcc_chosen_for_a_reply_stay_with_it_through_every_send_attempt() {
    for (backend, store) in test_stores().await.stores {
        let (agent, org) = sign_up(&store, "owner@example.com").await;
        let inbox = email_inbox(&store, org.id, "support@acme.test")
            .await
            .expect(backend);
        let received = receive(
            &store,
            &inbox,
            Mail::new("r1@mail.test", "ada@example.test"),
        )
        .await;
        let conversation = conversation_of(&received);
        let recipients = EmailRecipients {
            cc: vec!["bob@example.test".into()],
            bcc: vec!["audit@acme.test".into()],
        };
        let reply = store
            .agent_writes(
                org.id,
                conversation,
                AgentWrite {
                    agent,
                    kind: MessageKind::Text,
                    text: &MessageText::parse("text", "Copying Bob.").expect("text"),
                    client_id: None,
                    attachments: &[],
                    email: Some(&recipients),
                    mentions: &[],
                },
                now(),
            )
            .await
            .expect(backend)
            .value;
        assert_eq!(reply.email_recipients(), recipients, "{backend}");
        assert_eq!(reply.email_fact("delivery"), Some("pending"), "{backend}");

        let out = store
            .conversation_emails(org.id, conversation)
            .await
            .expect(backend)
            .into_iter()
            .find(|e| e.direction == "out")
            .expect("the reply's email");
        // A failed attempt rewrites the delivery state, not the recipients.
        store
            .record_reply_delivery(out.id, &DeliveryOutcome::Retrying("451".into()), now())
            .await
            .expect(backend);
        let to_send = store.reply_to_send(out.id).await.expect(backend);
        assert_eq!(to_send.message.email_recipients(), recipients, "{backend}");
        assert_eq!(to_send.message.email_fact("delivery"), Some("pending"));

        // A private note has no recipients, whatever is passed.
        let note = store
            .agent_writes(
                org.id,
                conversation,
                AgentWrite {
                    agent,
                    kind: MessageKind::Note,
                    text: &MessageText::parse("text", "Internal.").expect("text"),
                    client_id: None,
                    attachments: &[],
                    email: Some(&recipients),
                    mentions: &[],
                },
                now(),
            )
            .await
            .expect(backend)
            .value;
        assert!(note.email_recipients().is_empty(), "{backend}");
        assert!(!note.is_email(), "{backend}");
    }
}
