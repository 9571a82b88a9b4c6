//! Teams and auto-assignment: round robin among a team's online members within their
//! capacities, the waiting queue in arrival order, availability (busy and offline members
//! skipped, coming online takes the queue, offline hands back unreplied conversations),
//! the offline sweep, and the bot's handover going through the same rule.

use chrono::{DateTime, Duration, Utc};
use kaltalk_core::chat::{
    AiSettings, Availability, ConversationStatus, InboxKind, MessageKind, VisitorDetails,
    WidgetSettings,
};
use kaltalk_core::{Clock, ConversationId, ManualClock, MessageText, OrgId, Role, TeamId, UserId};
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::inboxes::{Inbox, NewInbox};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::messages::AgentWrite;
use kaltalk_store::routing::InboxRouting;
use kaltalk_store::{Conflict, Store, StoreError};

use crate::helpers::{new_user, sign_up, test_stores, web_inbox};

async fn member(store: &Store, org: OrgId, email: &str, at: DateTime<Utc>) -> UserId {
    store
        .create_member_user(&new_user(email), org, Role::Agent, at)
        .await
        .expect("member")
}

async fn api_inbox(store: &Store, org: OrgId) -> Inbox {
    let inbox = NewInbox {
        org_id: org,
        kind: InboxKind::Api,
        name: "Backend".into(),
        public_token: format!("api_{}", uuid::Uuid::now_v7()),
        identity_secret: "secret".into(),
        settings: WidgetSettings::default(),
        email: None,
    };
    store.create_inbox(&inbox, Utc::now()).await.expect("inbox")
}

/// A team of `members` that `inbox` routes to with auto-assignment on; every member online
/// with the given capacity.
async fn routed_team(
    store: &Store,
    org: OrgId,
    inbox: &Inbox,
    members: &[(UserId, i32)],
    hand_back: bool,
    at: DateTime<Utc>,
) -> (TeamId, Inbox) {
    let team = store
        .create_team(org, "Support", at)
        .await
        .expect("team")
        .value;
    for (user, capacity) in members {
        store
            .add_team_member(org, team.id, *user, at)
            .await
            .expect("add");
        store
            .set_capacity(org, *user, *capacity, at)
            .await
            .expect("capacity");
        store
            .set_availability(org, *user, Availability::Online, false, at)
            .await
            .expect("online");
    }
    let routing = InboxRouting {
        team_id: Some(team.id),
        auto_assign: true,
        hand_back_on_offline: hand_back,
        waiting_alert_minutes: Some(kaltalk_store::waiting::DEFAULT_WAITING_ALERT_MINUTES),
    };
    store
        .set_inbox_routing(org, inbox.id, routing, at)
        .await
        .expect("routing");
    let inbox = store.get_inbox(org, inbox.id).await.expect("inbox");
    (team.id, inbox)
}

/// A new conversation through the intake; returns it with its assignee.
async fn arrives(
    store: &Store,
    inbox: &Inbox,
    at: DateTime<Utc>,
) -> (ConversationId, Option<UserId>) {
    let stored = store
        .take_in(
            CustomerMessage {
                inbox,
                from: Customer::Details(&ContactFields::default()),
                thread: Thread::New,
                text: &MessageText::parse("text", "Where is my order?").expect("text"),
                attachments: &[],
                client_id: None,
                wants_a_person: false,
                email: None,
            },
            at,
        )
        .await
        .expect("taken in")
        .value;
    (stored.conversation.id, stored.conversation.assignee_id)
}

async fn assignee(store: &Store, org: OrgId, id: ConversationId) -> Option<UserId> {
    store
        .get_conversation(org, id)
        .await
        .expect("conversation")
        .assignee_id
}

/// How `arrivals` new conversations are shared fairly among members with these
/// capacities (nobody holding any): equally, except that nobody gets more than their
/// capacity, the rest shared among the others (water filling).
fn fair_shares(arrivals: f64, capacities: &[f64]) -> Vec<f64> {
    let mut shares = vec![0.0; capacities.len()];
    let mut open: Vec<usize> = (0..capacities.len()).collect();
    let mut left = arrivals;
    while !open.is_empty() && left > 0.0 {
        let each = left / open.len() as f64;
        let capped: Vec<usize> = open
            .iter()
            .copied()
            .filter(|&i| capacities[i] <= each)
            .collect();
        if capped.is_empty() {
            for &i in &open {
                shares[i] += each;
            }
            break;
        }
        for &i in &capped {
            shares[i] = capacities[i];
            left -= capacities[i];
        }
        open.retain(|i| !capped.contains(i));
    }
    shares
}

#[tokio::test]
async fn round_robin_is_fair_within_capacities_over_a_thousand_conversations() {
    let stores = test_stores().await;
    for (backend, store) in &stores.stores {
        let clock = ManualClock::starting_now();
        let (owner, org) = sign_up(store, "olivia@acme.test").await;
        let ben = member(store, org.id, "ben@acme.test", clock.now()).await;
        let cleo = member(store, org.id, "cleo@acme.test", clock.now()).await;
        let capacities = [10, 20, 30];
        let members = [
            (owner, capacities[0]),
            (ben, capacities[1]),
            (cleo, capacities[2]),
        ];
        let inbox = api_inbox(store, org.id).await;
        let (_, inbox) = routed_team(store, org.id, &inbox, &members, false, clock.now()).await;

        // Batches of 36 arrive; between batches the team resolves everything it holds.
        // 36 is more than an equal share (12) for the member with room for 10.
        const TOTAL: usize = 1000;
        const BATCH: usize = 36;
        let mut got = [0usize; 3];
        let mut fair = [0.0f64; 3];
        let mut open: Vec<ConversationId> = Vec::new();
        for start in (0..TOTAL).step_by(BATCH) {
            let size = BATCH.min(TOTAL - start);
            let shares = fair_shares(size as f64, &capacities.map(f64::from));
            for (i, share) in shares.iter().enumerate() {
                fair[i] += share;
            }
            for _ in 0..size {
                clock.advance(Duration::seconds(1));
                let (id, to) = arrives(store, &inbox, clock.now()).await;
                let to = to.unwrap_or_else(|| panic!("{backend}: nobody got conversation {id}"));
                let who = members
                    .iter()
                    .position(|m| m.0 == to)
                    .expect("a team member");
                got[who] += 1;
                open.push(id);
                let status = store.member_status(org.id, to).await.expect("status");
                assert!(
                    status.open_conversations <= i64::from(status.capacity),
                    "{backend}: {} holds {} with room for {}",
                    status.email,
                    status.open_conversations,
                    status.capacity
                );
            }
            for id in open.drain(..) {
                store
                    .set_conversation_status(
                        org.id,
                        id,
                        ConversationStatus::Resolved,
                        None,
                        clock.now(),
                    )
                    .await
                    .expect("resolve");
            }
        }
        assert_eq!(got.iter().sum::<usize>(), TOTAL, "{backend}");
        for i in 0..3 {
            assert!(
                (got[i] as f64 - fair[i]).abs() <= 1.0,
                "{backend}: member {i} got {} of a fair {:.2} ({got:?})",
                got[i],
                fair[i]
            );
        }
    }
}

#[tokio::test]
async fn waiting_conversations_are_assigned_in_arrival_order_as_capacity_frees() {
    let stores = test_stores().await;
    for (backend, store) in &stores.stores {
        let clock = ManualClock::starting_now();
        let (ada, org) = sign_up(store, "ada@acme.test").await;
        let ben = member(store, org.id, "ben@acme.test", clock.now()).await;
        let inbox = api_inbox(store, org.id).await;
        let (team, inbox) = routed_team(
            store,
            org.id,
            &inbox,
            &[(ada, 1), (ben, 1)],
            false,
            clock.now(),
        )
        .await;

        let mut ids = Vec::new();
        for _ in 0..5 {
            clock.advance(Duration::seconds(1));
            ids.push(arrives(store, &inbox, clock.now()).await);
        }
        let first: Vec<_> = ids.iter().map(|(_, to)| *to).collect();
        assert_eq!(first, [Some(ada), Some(ben), None, None, None], "{backend}");
        let waiting: Vec<_> = ids[2..].iter().map(|(id, _)| *id).collect();
        assert_eq!(
            store.team_queue(org.id, team).await.expect("queue"),
            waiting,
            "{backend}"
        );

        // Ada resolves hers: the oldest waiting one is hers.
        let written = store
            .set_conversation_status(
                org.id,
                ids[0].0,
                ConversationStatus::Resolved,
                None,
                clock.now(),
            )
            .await
            .expect("resolve");
        assert_eq!(
            assignee(store, org.id, ids[2].0).await,
            Some(ada),
            "{backend}"
        );
        assert!(
            written
                .events
                .iter()
                .any(|e| e.payload["auto_assigned"] == true),
            "{backend}: {:?}",
            written.events
        );
        // Ben snoozes his: the next one.
        store
            .set_conversation_status(
                org.id,
                ids[1].0,
                ConversationStatus::Snoozed,
                Some(clock.now() + Duration::hours(1)),
                clock.now(),
            )
            .await
            .expect("snooze");
        assert_eq!(
            assignee(store, org.id, ids[3].0).await,
            Some(ben),
            "{backend}"
        );
        // Ada unassigns hers by hand: it does not come back to her, the last waiting does.
        store
            .assign_conversation(org.id, ids[2].0, None, None, clock.now())
            .await
            .expect("unassign");
        assert_eq!(
            assignee(store, org.id, ids[4].0).await,
            Some(ada),
            "{backend}"
        );
        assert_eq!(assignee(store, org.id, ids[2].0).await, None, "{backend}");
        assert!(
            store
                .team_queue(org.id, team)
                .await
                .expect("queue")
                .is_empty(),
            "{backend}"
        );

        // Full again: a new one waits until Ben's capacity is raised.
        clock.advance(Duration::seconds(1));
        let (late, to) = arrives(store, &inbox, clock.now()).await;
        assert_eq!(to, None, "{backend}");
        store
            .set_capacity(org.id, ben, 2, clock.now())
            .await
            .expect("raise");
        assert_eq!(assignee(store, org.id, late).await, Some(ben), "{backend}");
    }
}

#[tokio::test]
async fn busy_and_offline_members_are_skipped_and_coming_online_takes_the_queue() {
    let stores = test_stores().await;
    for (backend, store) in &stores.stores {
        let clock = ManualClock::starting_now();
        let (ada, org) = sign_up(store, "ada@acme.test").await;
        let ben = member(store, org.id, "ben@acme.test", clock.now()).await;
        let cleo = member(store, org.id, "cleo@acme.test", clock.now()).await;
        let inbox = api_inbox(store, org.id).await;
        let (team, inbox) = routed_team(
            store,
            org.id,
            &inbox,
            &[(ada, 20), (ben, 20), (cleo, 20)],
            false,
            clock.now(),
        )
        .await;
        let set = |user, availability| {
            let now = clock.now();
            async move {
                store
                    .set_availability(org.id, user, availability, false, now)
                    .await
                    .expect("availability")
            }
        };
        set(ada, Availability::Busy).await;
        set(cleo, Availability::Offline).await;
        for _ in 0..3 {
            clock.advance(Duration::seconds(1));
            assert_eq!(
                arrives(store, &inbox, clock.now()).await.1,
                Some(ben),
                "{backend}"
            );
        }
        // Ada back: the two online members alternate.
        set(ada, Availability::Online).await;
        let mut next = Vec::new();
        for _ in 0..4 {
            clock.advance(Duration::seconds(1));
            next.push(arrives(store, &inbox, clock.now()).await.1);
        }
        let alternating = next.windows(2).all(|pair| pair[0] != pair[1]);
        assert!(
            alternating && next.iter().all(|to| *to == Some(ada) || *to == Some(ben)),
            "{backend}: {next:?}"
        );

        // Nobody online (Ben going offline keeps his: the inbox does not hand back yet):
        // they wait; Cleo coming online takes them, oldest first.
        set(ada, Availability::Busy).await;
        set(ben, Availability::Offline).await;
        let mut waiting = Vec::new();
        for _ in 0..3 {
            clock.advance(Duration::seconds(1));
            let (id, to) = arrives(store, &inbox, clock.now()).await;
            assert_eq!(to, None, "{backend}");
            waiting.push(id);
        }
        assert_eq!(
            store.team_queue(org.id, team).await.expect("queue"),
            waiting,
            "{backend}"
        );
        let online = set(cleo, Availability::Online).await;
        let order: Vec<_> = online
            .events
            .iter()
            .filter(|e| e.payload["auto_assigned"] == true)
            .filter_map(|e| e.conversation_id)
            .collect();
        assert_eq!(order, waiting, "{backend}: handed out oldest first");
        for id in &waiting {
            assert_eq!(assignee(store, org.id, *id).await, Some(cleo), "{backend}");
        }

        // Cleo answers one; going offline hands the other two back, and Ada, online
        // again, takes them. The one Cleo answered stays hers.
        store
            .agent_writes(
                org.id,
                waiting[0],
                AgentWrite {
                    agent: cleo,
                    kind: MessageKind::Text,
                    text: &MessageText::parse("text", "On it").expect("text"),
                    client_id: None,
                    attachments: &[],
                    email: None,
                    mentions: &[],
                },
                clock.now(),
            )
            .await
            .expect("reply");
        let hand_back = InboxRouting {
            hand_back_on_offline: true,
            ..inbox.routing
        };
        store
            .set_inbox_routing(org.id, inbox.id, hand_back, clock.now())
            .await
            .expect("routing");
        set(ada, Availability::Online).await;
        set(cleo, Availability::Offline).await;
        assert_eq!(
            assignee(store, org.id, waiting[0]).await,
            Some(cleo),
            "{backend}"
        );
        assert_eq!(
            assignee(store, org.id, waiting[1]).await,
            Some(ada),
            "{backend}"
        );
        assert_eq!(
            assignee(store, org.id, waiting[2]).await,
            Some(ada),
            "{backend}"
        );

        // Without "hand back on offline" nothing moves.
        let keep = InboxRouting {
            hand_back_on_offline: false,
            ..inbox.routing
        };
        store
            .set_inbox_routing(org.id, inbox.id, keep, clock.now())
            .await
            .expect("routing");
        set(ada, Availability::Offline).await;
        assert_eq!(
            assignee(store, org.id, waiting[1]).await,
            Some(ada),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_offline_sweep_follows_the_dashboard_and_the_organization_setting() {
    let stores = test_stores().await;
    for (backend, store) in &stores.stores {
        let clock = ManualClock::starting_now();
        let (ada, org) = sign_up(store, "ada@acme.test").await;
        let ben = member(store, org.id, "ben@acme.test", clock.now()).await;
        let cleo = member(store, org.id, "cleo@acme.test", clock.now()).await;
        assert_eq!(
            store.offline_after_minutes(org.id).await.expect("minutes"),
            10
        );
        store
            .set_offline_after_minutes(org.id, 5, clock.now())
            .await
            .expect("minutes");
        let availability = |user| async move {
            store
                .member_status(org.id, user)
                .await
                .expect("status")
                .availability
        };

        // Never chosen: offline until a dashboard connects, which brings them online.
        assert_eq!(availability(ada).await, Availability::Offline, "{backend}");
        let connected = store
            .dashboard_seen(org.id, ada, true, clock.now())
            .await
            .expect("seen");
        assert!(connected.value, "{backend}");
        assert_eq!(availability(ada).await, Availability::Online, "{backend}");
        store
            .dashboard_seen(org.id, ben, true, clock.now())
            .await
            .expect("seen");
        // Cleo chose offline: a dashboard connecting leaves her so.
        store
            .set_availability(org.id, cleo, Availability::Offline, false, clock.now())
            .await
            .expect("offline");
        store
            .dashboard_seen(org.id, cleo, true, clock.now())
            .await
            .expect("seen");
        assert_eq!(availability(cleo).await, Availability::Offline, "{backend}");

        clock.advance(Duration::minutes(3));
        store
            .dashboard_seen(org.id, ada, false, clock.now())
            .await
            .expect("still there");
        clock.advance(Duration::minutes(1));
        assert!(
            store
                .sweep_offline(clock.now())
                .await
                .expect("sweep")
                .value
                .is_empty(),
            "{backend}"
        );
        clock.advance(Duration::minutes(1));
        // Ben's dashboard was last seen 5 minutes ago; Ada's 2.
        let swept = store.sweep_offline(clock.now()).await.expect("sweep");
        assert_eq!(swept.value, [(org.id, ben)], "{backend}");
        assert_eq!(swept.events[0].payload["automatic"], true, "{backend}");
        assert_eq!(availability(ben).await, Availability::Offline, "{backend}");
        assert_eq!(availability(ada).await, Availability::Online, "{backend}");
        clock.advance(Duration::minutes(3));
        assert_eq!(
            store.sweep_offline(clock.now()).await.expect("sweep").value,
            [(org.id, ada)],
            "{backend}"
        );

        // Ben's dashboard again: online again, as the server took him offline.
        store
            .dashboard_seen(org.id, ben, true, clock.now())
            .await
            .expect("seen");
        assert_eq!(availability(ben).await, Availability::Online, "{backend}");
    }
}

#[tokio::test]
async fn a_bot_handover_is_routed_and_auto_assigned() {
    let stores = test_stores().await;
    for (backend, store) in &stores.stores {
        let now = Utc::now();
        let (ada, org) = sign_up(store, "ada@acme.test").await;
        let ai = AiSettings {
            enabled: true,
            ..Default::default()
        };
        store
            .save_ai_settings(org.id, &ai, now)
            .await
            .expect("AI on");
        let inbox = web_inbox(store, org.id, "wi_routing").await;
        let (team, inbox) = routed_team(store, org.id, &inbox, &[(ada, 5)], false, now).await;
        let say = |text: &'static str, wants_a_person: bool| {
            let inbox = inbox.clone();
            async move {
                let session = store
                    .find_visitor_session("hash-1", now)
                    .await
                    .expect("session");
                let choice = match &session {
                    Some(session) => SessionChoice::Existing(session),
                    None => SessionChoice::New {
                        token_hash: "hash-1",
                    },
                };
                store
                    .take_in(
                        CustomerMessage {
                            inbox: &inbox,
                            from: Customer::Visitor {
                                session: choice,
                                details: &VisitorDetails::default(),
                                fields: &ContactFields::default(),
                            },
                            thread: Thread::Latest,
                            text: &MessageText::parse("text", text).expect("text"),
                            attachments: &[],
                            client_id: Some(text),
                            wants_a_person,
                            email: None,
                        },
                        now,
                    )
                    .await
                    .expect("visitor writes")
                    .value
                    .conversation
            }
        };
        // The bot answers first: in the team, assigned to nobody.
        let first = say("Do you ship to Norway?", false).await;
        assert_eq!(first.team_id, Some(team), "{backend}");
        assert_eq!(first.assignee_id, None, "{backend}: the bot handles it");
        assert!(
            store
                .team_queue(org.id, team)
                .await
                .expect("queue")
                .is_empty(),
            "{backend}"
        );
        // Handed over: the same rule as a new conversation.
        let handed = say("Let me talk to someone", true).await;
        assert_eq!(handed.assignee_id, Some(ada), "{backend}");
    }
}

#[tokio::test]
async fn teams_stay_in_their_organization_and_leave_nothing_dangling() {
    let stores = test_stores().await;
    for (backend, store) in &stores.stores {
        let now = Utc::now();
        let (ada, org) = sign_up(store, "ada@acme.test").await;
        let (zed, other) = sign_up(store, "zed@other.test").await;
        let team = store
            .create_team(org.id, "Billing", now)
            .await
            .expect("team")
            .value;
        assert!(
            matches!(
                store.create_team(org.id, "Billing", now).await,
                Err(StoreError::Conflict(Conflict::TeamNameTaken))
            ),
            "{backend}"
        );
        // Another organization's person or team: not found, nothing written.
        assert!(
            matches!(
                store.add_team_member(org.id, team.id, zed, now).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        assert!(
            matches!(
                store.add_team_member(other.id, team.id, zed, now).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        assert!(
            matches!(
                store.rename_team(other.id, team.id, "Mine", now).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        assert!(
            matches!(
                store.delete_team(other.id, team.id, now).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        assert!(
            store
                .team_members(org.id, team.id)
                .await
                .expect("members")
                .is_empty(),
            "{backend}"
        );

        store
            .add_team_member(org.id, team.id, ada, now)
            .await
            .expect("add");
        let inbox = api_inbox(store, org.id).await;
        let other_inbox = api_inbox(store, other.id).await;
        let routing = InboxRouting {
            team_id: Some(team.id),
            auto_assign: true,
            hand_back_on_offline: false,
            waiting_alert_minutes: Some(kaltalk_store::waiting::DEFAULT_WAITING_ALERT_MINUTES),
        };
        assert!(
            matches!(
                store
                    .set_inbox_routing(other.id, other_inbox.id, routing, now)
                    .await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        store
            .set_inbox_routing(org.id, inbox.id, routing, now)
            .await
            .expect("routing");
        let inbox = store.get_inbox(org.id, inbox.id).await.expect("inbox");
        let (conversation, _) = arrives(store, &inbox, now).await;
        assert_eq!(
            store
                .get_conversation(org.id, conversation)
                .await
                .expect("c")
                .team_id,
            Some(team.id)
        );
        let other_conversation = arrives(store, &other_inbox, now).await.0;
        assert!(
            matches!(
                store
                    .set_conversation_team(other.id, other_conversation, Some(team.id), now)
                    .await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        let counts = store
            .team_counts(org.id, ConversationStatus::Open)
            .await
            .expect("counts");
        assert_eq!(counts, [(team.id, 1)], "{backend}");

        store
            .delete_team(org.id, team.id, now)
            .await
            .expect("delete");
        assert_eq!(
            store
                .get_conversation(org.id, conversation)
                .await
                .expect("c")
                .team_id,
            None,
            "{backend}"
        );
        let inbox = store.get_inbox(org.id, inbox.id).await.expect("inbox");
        assert_eq!(inbox.routing, InboxRouting::default(), "{backend}");
        assert!(
            store.list_teams(org.id).await.expect("teams").is_empty(),
            "{backend}"
        );
    }
}
