//! Conversation search and the conversation list over a filled history: the same
//! answers on both backends (who, in which order, with what last message and unread
//! count), every word matched as a prefix, names and emails too, and the list's filters
//! each keeping only what they name.

use chrono::{Duration, TimeZone, Utc};
use kaltalk_core::chat::ConversationStatus;
use kaltalk_store::Store;
use kaltalk_store::conversations::{AssigneeFilter, ConversationFilter, ConversationOrder};
use kaltalk_store::testing::{HistoryPlan, fill_history};

use crate::helpers::{member, sign_up, test_stores, web_inbox};

const SENTENCES: [&str; 8] = [
    "My invoice for March shows the wrong amount.",
    "The parcel never arrived at the warehouse.",
    "Could you refund the duplicate payment please?",
    "I cannot log in since the password reset.",
    "The invoice address must be our new office.",
    "Thank you, the replacement parcel arrived today.",
    "Where can I download the March statement?",
    "Please close my account and delete my data.",
];

/// What a backend answers, without its ids: each conversation by its customer's name
/// and email, its last message, unread count and (in a search) the message that matched.
type Answer = Vec<(
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
)>;

async fn filled(store: &Store) -> (kaltalk_core::OrgId, Vec<kaltalk_core::UserId>) {
    let (_owner, org) = sign_up(store, "owner@search.test").await;
    let grace = member(store, org.id, "Grace Hopper", "grace@search.test").await;
    let linus = member(store, org.id, "Linus", "linus@search.test").await;
    let mut agents = vec![grace, linus];
    agents.sort();
    let inbox = web_inbox(store, org.id, "wi_search").await;
    let team = store
        .create_team(org.id, "Support", chrono::Utc::now())
        .await
        .expect("team")
        .value
        .id;
    let sentences: Vec<String> = SENTENCES.iter().map(|s| (*s).to_owned()).collect();
    let plan = HistoryPlan {
        org: org.id,
        inbox: inbox.id,
        agents: &agents,
        teams: &[team],
        conversations: 60,
        messages_per_conversation: 4,
        sentences: &sentences,
        first_names: &["Ada", "Alan", "Grace", "Edsger"],
        last_names: &["Lovelace", "Turing", "Dijkstra"],
        until: Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap(),
        span: Duration::days(30),
    };
    let mut batches = 0;
    fill_history(store, &plan, 25, |_| batches += 1)
        .await
        .expect("fill");
    assert_eq!(batches, 3, "60 conversations in batches of 25");
    (org.id, agents)
}

fn answer(found: &[kaltalk_store::conversations::ConversationSummary]) -> Answer {
    found
        .iter()
        .map(|c| {
            (
                c.contact_name.clone(),
                c.contact_email.clone(),
                c.last_message.clone(),
                c.unread,
                c.matched_text.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn search_and_the_list_answer_alike_on_both_backends() {
    let mut answers: Vec<(&str, Vec<(String, Answer)>)> = Vec::new();
    for (backend, store) in test_stores().await.stores {
        let (org, agents) = filled(&store).await;
        let mut mine = Vec::new();
        for query in [
            "invoice",
            "INVO",
            "parcel arrived",
            "march statement",
            "lovelace",
            "ada.love",
            "refund nothing-matches-this",
        ] {
            let found = store
                .search_conversations(org, query, 25)
                .await
                .expect("search");
            assert!(found.len() <= 25, "{backend}: one page");
            // Newest activity first.
            assert!(
                found
                    .windows(2)
                    .all(|w| w[0].conversation.last_message_at >= w[1].conversation.last_message_at),
                "{backend} {query}: by last activity"
            );
            mine.push((query.to_owned(), answer(&found)));
        }
        let (invoice, refund_nothing) = (&mine[0].1, &mine[6].1);
        assert!(!invoice.is_empty(), "{backend}: invoices are found");
        assert_eq!(&mine[1].1, invoice, "{backend}: a prefix, in any case");
        assert!(
            refund_nothing.is_empty(),
            "{backend}: every word must match"
        );
        assert!(
            mine[4]
                .1
                .iter()
                .all(|c| c.0.as_deref().is_some_and(|n| n.ends_with("Lovelace"))),
            "{backend}: by name"
        );
        assert!(!mine[5].1.is_empty(), "{backend}: by email");
        // The words of one message: each result shows the message that holds them both.
        assert!(!mine[3].1.is_empty(), "{backend}");
        for (_, _, last, _, matched) in &mine[3].1 {
            assert!(last.is_some(), "{backend}: each has a last message");
            let matched = matched
                .as_deref()
                .expect("the message that matched")
                .to_lowercase();
            assert!(
                matched.contains("march") && matched.contains("statement"),
                "{backend}: {matched}"
            );
        }
        // Found by the name only: no message matched.
        assert!(
            mine[4].1.iter().all(|c| c.4.is_none()),
            "{backend}: a name is not in the messages"
        );

        // The list: each filter keeps what it names, newest activity first, and pages.
        let open = store
            .list_conversations(
                org,
                &ConversationFilter {
                    status: Some(ConversationStatus::Open),
                    limit: 200,
                    ..ConversationFilter::default()
                },
            )
            .await
            .expect("open");
        assert!(
            open.iter()
                .all(|c| c.conversation.status == ConversationStatus::Open)
        );
        let theirs = store
            .list_conversations(
                org,
                &ConversationFilter {
                    assignee: AssigneeFilter::User(agents[0]),
                    order: ConversationOrder::Created,
                    limit: 200,
                    ..ConversationFilter::default()
                },
            )
            .await
            .expect("assignee");
        assert!(
            !theirs.is_empty()
                && theirs
                    .iter()
                    .all(|c| c.conversation.assignee_id == Some(agents[0]))
        );
        let nobodys = store
            .list_conversations(
                org,
                &ConversationFilter {
                    assignee: AssigneeFilter::Unassigned,
                    limit: 200,
                    ..ConversationFilter::default()
                },
            )
            .await
            .expect("unassigned");
        assert!(
            !nobodys.is_empty() && nobodys.iter().all(|c| c.conversation.assignee_id.is_none())
        );
        let labelled = store
            .list_conversations(
                org,
                &ConversationFilter {
                    label: Some("billing".into()),
                    limit: 200,
                    ..ConversationFilter::default()
                },
            )
            .await
            .expect("label");
        assert!(
            !labelled.is_empty() && labelled.len() < 60,
            "{backend}: some are billing"
        );
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .list_conversations(
                    org,
                    &ConversationFilter {
                        before,
                        limit: 7,
                        ..ConversationFilter::default()
                    },
                )
                .await
                .expect("page");
            let Some(last) = page.last() else { break };
            before = Some((last.conversation.last_message_at, last.conversation.id));
            paged.extend(page);
        }
        assert_eq!(
            paged.len(),
            60,
            "{backend}: pages hold every conversation once"
        );
        mine.push(("open".into(), answer(&open)));
        mine.push(("assignee".into(), answer(&theirs)));
        mine.push(("unassigned".into(), answer(&nobodys)));
        mine.push(("label".into(), answer(&labelled)));
        mine.push(("all, paged".into(), answer(&paged)));
        answers.push((backend, mine));
    }
    if let [(_, sqlite), (_, postgres)] = answers.as_slice() {
        for ((query, a), (_, b)) in sqlite.iter().zip(postgres) {
            assert_eq!(a, b, "{query}: the same answer on SQLite and PostgreSQL");
        }
    }
}
