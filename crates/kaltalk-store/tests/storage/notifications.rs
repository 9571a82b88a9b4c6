//! Notifications from the event log: each reason reaches the right members only, never
//! the member who caused it; the bot answering keeps people out of it until it hands
//! over; a member's choice turns a reason off; each is made once however often the
//! notifier passes; they are read one by one or all at once, by their member only.

use kaltalk_core::chat::{AiSettings, MessageKind, NotificationReason, VisitorDetails};
use kaltalk_core::event::EventPayload;
use kaltalk_core::{ConversationId, MessageText, OrgId, UserId};
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::messages::AgentWrite;
use kaltalk_store::notifications::Preference;
use kaltalk_store::routing::InboxRouting;
use kaltalk_store::{Store, StoreError};

use crate::helpers::{member, now, sign_up, test_stores, web_inbox};

/// The visitor `token` writes `text` (a new conversation the first time).
async fn visitor_writes(store: &Store, inbox: &Inbox, token: &str, text: &str) -> ConversationId {
    let known = store
        .find_visitor_session(token, now())
        .await
        .expect("session");
    let session = match &known {
        Some(session) => SessionChoice::Existing(session),
        None => SessionChoice::New { token_hash: token },
    };
    store
        .take_in(
            CustomerMessage {
                inbox,
                from: Customer::Visitor {
                    session,
                    details: &VisitorDetails::default(),
                    fields: &ContactFields::default(),
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
        .expect("visitor writes")
        .value
        .conversation
        .id
}

async fn note(store: &Store, org: OrgId, conversation: ConversationId, agent: UserId, text: &str) {
    agent_writes(store, org, conversation, agent, MessageKind::Note, text).await;
}

/// `agent` writes `text` in `conversation`: a reply (`Text`) or a note.
async fn agent_writes(
    store: &Store,
    org: OrgId,
    conversation: ConversationId,
    agent: UserId,
    kind: MessageKind,
    text: &str,
) {
    store
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
                mentions: &[],
            },
            now(),
        )
        .await
        .expect("agent writes");
}

/// One notifier pass: who was told what, in the order told.
async fn notify(store: &Store) -> Vec<(UserId, NotificationReason, ConversationId)> {
    let written = store.notify_pending(now(), 1000).await.expect("notify");
    assert_eq!(written.value.notifications, written.events.len());
    written
        .events
        .iter()
        .map(|event| match event.payload() {
            Ok(EventPayload::NotificationCreated(n)) => (n.user_id, n.reason, n.conversation_id),
            other => panic!("not a notification.created: {other:?}"),
        })
        .collect()
}

fn sorted(mut told: Vec<UserId>) -> Vec<UserId> {
    told.sort();
    told
}

#[tokio::test]
async fn each_reason_reaches_the_right_members_and_never_its_causer() {
    for (backend, store) in test_stores().await.stores {
        let (olivia, acme) = sign_up(&store, "olivia@acme.test").await;
        let grace = member(&store, acme.id, "Grace Hopper", "grace@acme.test").await;
        let linus = member(&store, acme.id, "Linus", "linus@acme.test").await;
        let (hank, globex) = sign_up(&store, "hank@globex.test").await;
        let inbox = web_inbox(&store, acme.id, "wi_acme").await;
        let theirs = web_inbox(&store, globex.id, "wi_globex").await;
        // What was in the log before counts too: nothing is lost between passes.
        let id = visitor_writes(&store, &inbox, "visitor-1", "Hello?").await;
        visitor_writes(&store, &theirs, "visitor-2", "Hi Globex").await;

        // A new conversation with no team: everyone of its organization, once each.
        let told = notify(&store).await;
        let acme_told: Vec<UserId> = told.iter().filter(|t| t.2 == id).map(|t| t.0).collect();
        assert_eq!(
            sorted(acme_told),
            sorted(vec![olivia, grace, linus]),
            "{backend}"
        );
        assert!(
            told.iter()
                .all(|t| t.1 == NotificationReason::NewConversation),
            "{backend}: {told:?}"
        );
        assert!(
            told.iter().any(|t| t.0 == hank),
            "{backend}: Globex's owner hears of Globex's"
        );
        assert!(notify(&store).await.is_empty(), "{backend}: made once");

        // Olivia assigns it to Grace: Grace is told, Olivia is not.
        store
            .assign_conversation(acme.id, id, Some(grace), Some(olivia), now())
            .await
            .expect("assign");
        assert_eq!(
            notify(&store).await,
            vec![(grace, NotificationReason::Assigned, id)],
            "{backend}"
        );
        // Linus takes it himself: nobody is told.
        store
            .assign_conversation(acme.id, id, Some(linus), Some(linus), now())
            .await
            .expect("take");
        assert!(
            notify(&store).await.is_empty(),
            "{backend}: taking is not news to the taker"
        );
        store
            .assign_conversation(acme.id, id, Some(grace), None, now())
            .await
            .expect("back to Grace");
        notify(&store).await;

        // The customer writes again: only the assignee.
        visitor_writes(&store, &inbox, "visitor-1", "Any news?").await;
        assert_eq!(
            notify(&store).await,
            vec![(grace, NotificationReason::NewMessage, id)],
            "{backend}"
        );

        // A note mentions Linus (and Olivia, who writes it): Linus only.
        note(
            &store,
            acme.id,
            id,
            olivia,
            "@Linus can you look? cc @Ada Lovelace",
        )
        .await;
        assert_eq!(
            notify(&store).await,
            vec![(linus, NotificationReason::Mentioned, id)],
            "{backend}"
        );

        // The bot answers a new conversation: nobody is bothered, until it hands over.
        let ai = AiSettings {
            enabled: true,
            ..AiSettings::default()
        };
        store
            .save_ai_settings(acme.id, &ai, now())
            .await
            .expect("AI on");
        let bot = visitor_writes(&store, &inbox, "visitor-3", "Where is my parcel?").await;
        assert!(
            notify(&store).await.is_empty(),
            "{backend}: the bot is answering"
        );
        visitor_writes(&store, &inbox, "visitor-3", "Hello?").await;
        assert!(
            notify(&store).await.is_empty(),
            "{backend}: still the bot's"
        );
        store
            .escalate(acme.id, bot, "the visitor asked for a person.", now())
            .await
            .expect("hand over");
        let told = notify(&store).await;
        assert_eq!(
            sorted(told.iter().map(|t| t.0).collect()),
            sorted(vec![olivia, grace, linus]),
            "{backend}: handed over with nobody assigned and no team: everyone"
        );
        assert!(
            told.iter()
                .all(|t| t.1 == NotificationReason::HandedOver && t.2 == bot),
            "{backend}: {told:?}"
        );
        store
            .save_ai_settings(acme.id, &AiSettings::default(), now())
            .await
            .expect("AI off");

        // An inbox routed to a team: its new conversations tell the team only.
        let team = store
            .create_team(acme.id, "Billing", now())
            .await
            .expect("team")
            .value
            .id;
        store
            .add_team_member(acme.id, team, linus, now())
            .await
            .expect("add");
        let routing = InboxRouting {
            team_id: Some(team),
            auto_assign: false,
            hand_back_on_offline: false,
            waiting_alert_minutes: Some(kaltalk_store::waiting::DEFAULT_WAITING_ALERT_MINUTES),
        };
        store
            .set_inbox_routing(acme.id, inbox.id, routing, now())
            .await
            .expect("routing");
        let billing = visitor_writes(&store, &inbox, "visitor-4", "Invoice?").await;
        assert_eq!(
            notify(&store).await,
            vec![(linus, NotificationReason::NewConversation, billing)],
            "{backend}"
        );

        // Linus turns off in-app notices of new conversations: he is not told any more.
        let off = Preference {
            in_app: false,
            ..Preference::default_for(NotificationReason::NewConversation)
        };
        store
            .save_notification_preferences(acme.id, linus, &[off])
            .await
            .expect("save");
        let saved = store
            .notification_preferences(acme.id, linus)
            .await
            .expect("read");
        assert_eq!(saved.len(), NotificationReason::ALL.len());
        assert!(
            saved.contains(&off)
                && saved.contains(&Preference::default_for(NotificationReason::Mentioned))
        );
        visitor_writes(&store, &inbox, "visitor-5", "Refund?").await;
        assert!(
            notify(&store).await.is_empty(),
            "{backend}: Linus turned it off"
        );
    }
}

#[tokio::test]
async fn a_member_reads_their_own_notifications_one_by_one_or_all_at_once() {
    for (backend, store) in test_stores().await.stores {
        let (olivia, acme) = sign_up(&store, "olivia@acme.test").await;
        let grace = member(&store, acme.id, "Grace Hopper", "grace@acme.test").await;
        let inbox = web_inbox(&store, acme.id, "wi_acme").await;
        for n in 0..3 {
            visitor_writes(&store, &inbox, &format!("visitor-{n}"), "Hello?").await;
        }
        notify(&store).await;
        assert_eq!(
            store
                .unread_notifications(acme.id, grace)
                .await
                .expect("count"),
            3,
            "{backend}"
        );
        let list = store
            .list_notifications(acme.id, grace, 50)
            .await
            .expect("list");
        assert_eq!(list.len(), 3);
        assert!(
            list.windows(2)
                .all(|w| w[0].notification.id > w[1].notification.id),
            "{backend}: newest first"
        );
        assert_eq!(list[0].inbox_name, inbox.name);

        // Olivia cannot read Grace's: it does not exist for her.
        let first = list[0].notification.id;
        assert!(matches!(
            store.read_notification(acme.id, olivia, first, now()).await,
            Err(StoreError::NotFound)
        ));
        let read = store
            .read_notification(acme.id, grace, first, now())
            .await
            .expect("read");
        assert!(read.value.read_at.is_some());
        assert_eq!(read.events.len(), 1);
        let again = store
            .read_notification(acme.id, grace, first, now())
            .await
            .expect("again");
        assert!(
            again.events.is_empty(),
            "{backend}: already read, nothing new to tell"
        );
        assert_eq!(
            store
                .unread_notifications(acme.id, grace)
                .await
                .expect("count"),
            2
        );
        assert_eq!(
            store
                .unread_notifications(acme.id, olivia)
                .await
                .expect("count"),
            3,
            "{backend}: Olivia's own are hers"
        );

        let all = store
            .read_all_notifications(acme.id, grace, now())
            .await
            .expect("all");
        assert_eq!(all.value, 2);
        assert_eq!(
            store
                .unread_notifications(acme.id, grace)
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            store
                .read_all_notifications(acme.id, grace, now())
                .await
                .expect("none")
                .value,
            0
        );

        // Leaving the organization takes them.
        store
            .remove_member(acme.id, grace, now())
            .await
            .expect("remove");
        assert!(
            store
                .list_notifications(acme.id, grace, 50)
                .await
                .expect("list")
                .is_empty(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn nobody_is_told_of_the_conversation_on_their_screen() {
    for (backend, store) in test_stores().await.stores {
        let (olivia, acme) = sign_up(&store, "olivia@acme.test").await;
        let grace = member(&store, acme.id, "Grace Hopper", "grace@acme.test").await;
        let inbox = web_inbox(&store, acme.id, "wi_acme").await;
        let id = visitor_writes(&store, &inbox, "visitor-1", "Hello?").await;
        store
            .assign_conversation(acme.id, id, Some(grace), Some(olivia), now())
            .await
            .expect("assign");
        notify(&store).await;

        // Grace has it open, her dashboard connected: the customer's next message is on
        // her screen already.
        store
            .set_viewing(acme.id, grace, Some(id))
            .await
            .expect("viewing");
        store
            .dashboard_seen(acme.id, grace, false, now())
            .await
            .expect("seen");
        visitor_writes(&store, &inbox, "visitor-1", "Are you there?").await;
        assert!(notify(&store).await.is_empty(), "{backend}: on her screen");

        // A dashboard not seen for minutes does not count, nor one showing another.
        store
            .dashboard_seen(acme.id, grace, false, now() - chrono::Duration::minutes(5))
            .await
            .expect("seen long ago");
        visitor_writes(&store, &inbox, "visitor-1", "Hello??").await;
        assert_eq!(
            notify(&store).await,
            vec![(grace, NotificationReason::NewMessage, id)],
            "{backend}: stale"
        );
        store
            .dashboard_seen(acme.id, grace, false, now())
            .await
            .expect("seen");
        store
            .set_viewing(acme.id, grace, None)
            .await
            .expect("closed");
        visitor_writes(&store, &inbox, "visitor-1", "Anyone?").await;
        assert_eq!(
            notify(&store).await,
            vec![(grace, NotificationReason::NewMessage, id)],
            "{backend}: closed"
        );
    }
}

/// One waiting sweep as if at `at`: the conversations told of, with the inbox's minutes.
async fn waits_told(
    store: &Store,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<(ConversationId, i32)> {
    let written = store.alert_waiting(at).await.expect("alert waiting");
    assert_eq!(written.value, written.events.len());
    written
        .events
        .iter()
        .map(|event| match event.payload() {
            Ok(EventPayload::ConversationWaiting(w)) => (
                event.conversation_id.expect("in its conversation"),
                w.minutes,
            ),
            other => panic!("not a conversation.waiting: {other:?}"),
        })
        .collect()
}

async fn agent_replies(store: &Store, org: OrgId, conversation: ConversationId, agent: UserId) {
    agent_writes(store, org, conversation, agent, MessageKind::Text, "On it.").await;
}

#[tokio::test]
async fn a_customer_waiting_too_long_tells_the_assignee_else_the_team_once_per_wait() {
    let minutes = |m: i64| now() + chrono::Duration::minutes(m);
    for (backend, store) in test_stores().await.stores {
        let (olivia, acme) = sign_up(&store, "olivia@acme.test").await;
        let grace = member(&store, acme.id, "Grace Hopper", "grace@acme.test").await;
        let inbox = web_inbox(&store, acme.id, "wi_acme").await;
        assert_eq!(
            inbox.routing.waiting_alert_minutes,
            Some(kaltalk_store::waiting::DEFAULT_WAITING_ALERT_MINUTES),
            "{backend}: on by default"
        );
        let id = visitor_writes(&store, &inbox, "visitor-1", "Hello?").await;
        notify(&store).await;

        // Not yet at 14 minutes; at 16 once, to everyone (nobody assigned, no team).
        assert!(
            waits_told(&store, minutes(14)).await.is_empty(),
            "{backend}"
        );
        assert_eq!(
            waits_told(&store, minutes(16)).await,
            vec![(id, 15)],
            "{backend}"
        );
        let told = notify(&store).await;
        assert_eq!(
            sorted(told.iter().map(|t| t.0).collect()),
            sorted(vec![olivia, grace]),
            "{backend}"
        );
        assert!(
            told.iter()
                .all(|t| t.1 == NotificationReason::Waiting && t.2 == id),
            "{backend}: {told:?}"
        );
        // Once per wait: later sweeps, and the customer writing again, tell nobody more.
        assert!(
            waits_told(&store, minutes(60)).await.is_empty(),
            "{backend}"
        );
        visitor_writes(&store, &inbox, "visitor-1", "Anyone there?").await;
        assert!(
            waits_told(&store, minutes(120)).await.is_empty(),
            "{backend}: still the same wait"
        );

        // Grace answers: the wait is over. The customer's next message starts a new one,
        // which only Grace, the assignee now, hears of.
        agent_replies(&store, acme.id, id, grace).await;
        assert!(
            waits_told(&store, minutes(120)).await.is_empty(),
            "{backend}"
        );
        visitor_writes(&store, &inbox, "visitor-1", "Thanks, one more thing").await;
        notify(&store).await;
        assert_eq!(
            waits_told(&store, minutes(16)).await,
            vec![(id, 15)],
            "{backend}"
        );
        assert_eq!(
            notify(&store).await,
            vec![(grace, NotificationReason::Waiting, id)],
            "{backend}"
        );

        // Resolved, it waits no more.
        agent_replies(&store, acme.id, id, grace).await;
        visitor_writes(&store, &inbox, "visitor-1", "Bye").await;
        store
            .set_conversation_status(
                acme.id,
                id,
                kaltalk_core::chat::ConversationStatus::Resolved,
                None,
                now(),
            )
            .await
            .expect("resolve");
        assert!(
            waits_told(&store, minutes(30)).await.is_empty(),
            "{backend}: resolved"
        );

        // The bot answering: its own wait is not told of; its handover starts the wait for
        // a person (the bot's handover message does not end it).
        let ai = AiSettings {
            enabled: true,
            ..AiSettings::default()
        };
        store
            .save_ai_settings(acme.id, &ai, now())
            .await
            .expect("AI on");
        let bots = visitor_writes(&store, &inbox, "visitor-2", "Where is my parcel?").await;
        assert!(
            waits_told(&store, minutes(16)).await.is_empty(),
            "{backend}: the bot's to answer"
        );
        store
            .escalate(acme.id, bots, "the visitor asked for a person.", now())
            .await
            .expect("hand over");
        notify(&store).await;
        assert_eq!(
            waits_told(&store, minutes(16)).await,
            vec![(bots, 15)],
            "{backend}"
        );
        store
            .save_ai_settings(acme.id, &AiSettings::default(), now())
            .await
            .expect("AI off");

        // An inbox set to 5 minutes tells at 5; one set to never, never.
        let five = InboxRouting {
            waiting_alert_minutes: Some(5),
            ..inbox.routing
        };
        store
            .set_inbox_routing(acme.id, inbox.id, five, now())
            .await
            .expect("five minutes");
        let quick = visitor_writes(&store, &inbox, "visitor-3", "Quick one").await;
        assert_eq!(
            waits_told(&store, minutes(6)).await,
            vec![(quick, 5)],
            "{backend}"
        );
        let never = InboxRouting {
            waiting_alert_minutes: None,
            ..inbox.routing
        };
        store
            .set_inbox_routing(acme.id, inbox.id, never, now())
            .await
            .expect("never");
        visitor_writes(&store, &inbox, "visitor-4", "Slow one").await;
        assert!(
            waits_told(&store, minutes(7 * 24 * 60)).await.is_empty(),
            "{backend}: this inbox never tells"
        );
    }
}
