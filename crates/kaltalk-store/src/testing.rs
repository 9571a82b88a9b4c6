//! Test support shared by every crate's database tests.

use chrono::{DateTime, Utc};
use kaltalk_core::{ContactId, ConversationId, InboxId, OrgId, TeamId, UserId};
use sqlx::Connection;

use crate::{BeginWrite, Store, StoreError, on_db};

/// Creates a throwaway database on the server `admin_url` points at and returns its URL,
/// so each test gets an empty database of its own.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, sqlx::Error> {
    let name = format!("kaltalk_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// A support history to fill an organization with, for benchmarks: conversations spread
/// evenly over `span` ending at `until`, each with its own contact and
/// `messages_per_conversation` messages, the customer and an agent in turn, made of
/// `sentences`. The same plan makes the same data on either backend (only the ids differ).
pub struct HistoryPlan<'a> {
    pub org: OrgId,
    pub inbox: InboxId,
    /// Conversations are assigned to these in turn (one in five to nobody).
    pub agents: &'a [UserId],
    /// Half the conversations belong to one of these, in turn.
    pub teams: &'a [TeamId],
    pub conversations: usize,
    pub messages_per_conversation: usize,
    /// Real text, cut into sentences: each message is one to three of them.
    pub sentences: &'a [String],
    /// Customers are named first name + last name from these.
    pub first_names: &'a [&'a str],
    pub last_names: &'a [&'a str],
    pub until: DateTime<Utc>,
    pub span: chrono::Duration,
}

/// Labels the history puts on one conversation in five.
pub const HISTORY_LABELS: [&str; 5] = ["billing", "refund", "bug", "feature-request", "vip"];

/// A deterministic stand-in for randomness: a well-mixed hash of `n` (SplitMix64).
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills the history in transactions of `batch` conversations, through the same writes
/// the product makes for each message (so the search index, the conversation's last
/// activity and its wait are what they would be); `progress` hears the conversations
/// written so far after each batch.
pub async fn fill_history(
    store: &Store,
    plan: &HistoryPlan<'_>,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<(), StoreError> {
    use kaltalk_core::chat::{ConversationStatus, MessageKind, SenderKind};

    assert!(
        !plan.sentences.is_empty() && !plan.first_names.is_empty() && !plan.last_names.is_empty(),
        "a history needs sentences and names"
    );
    let total = plan.conversations.max(1) as i64;
    let step = plan.span / i32::try_from(total).unwrap_or(i32::MAX);
    let start = plan.until - plan.span;
    let mut done = 0;
    while done < plan.conversations {
        let upto = (done + batch.max(1)).min(plan.conversations);
        on_db!(store, pool => {
            let mut tx = pool.begin_write().await?;
            for i in done..upto {
                let seed = mix(i as u64);
                let created = start + step * i32::try_from(i).unwrap_or(i32::MAX);
                let first = plan.first_names[(seed % plan.first_names.len() as u64) as usize];
                let last = plan.last_names[((seed >> 16) % plan.last_names.len() as u64) as usize];
                let contact = ContactId::new();
                sqlx::query(
                    "INSERT INTO contacts (id, org_id, name, email, details, attributes, first_seen_at, last_seen_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, '{}', '{}', $5, $5, $5, $5)",
                )
                .bind(contact)
                .bind(plan.org)
                .bind(format!("{first} {last}"))
                .bind(format!("{}.{}{i}@example.com", first.to_lowercase(), last.to_lowercase()))
                .bind(created)
                .execute(&mut *tx)
                .await?;
                // Mostly resolved, as a real history is; the rest open, pending or snoozed.
                let status = match (seed >> 24) % 20 {
                    0..=13 => ConversationStatus::Resolved,
                    14..=16 => ConversationStatus::Open,
                    17..=18 => ConversationStatus::Pending,
                    _ => ConversationStatus::Snoozed,
                };
                let assignee = match ((seed >> 32) % 5, plan.agents.len()) {
                    (_, 0) | (0, _) => None,
                    (_, n) => Some(plan.agents[i % n]),
                };
                let team = match ((seed >> 36) % 2, plan.teams.len()) {
                    (_, 0) | (0, _) => None,
                    (_, n) => Some(plan.teams[i % n]),
                };
                let conversation = ConversationId::new();
                sqlx::query(
                    "INSERT INTO conversations (id, org_id, inbox_id, contact_id, status, snoozed_until, assignee_id, team_id, \
                     last_message_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9)",
                )
                .bind(conversation)
                .bind(plan.org)
                .bind(plan.inbox)
                .bind(contact)
                .bind(status.as_str())
                .bind((status == ConversationStatus::Snoozed).then(|| plan.until + chrono::Duration::days(7)))
                .bind(assignee)
                .bind(team)
                .bind(created)
                .execute(&mut *tx)
                .await?;
                if (seed >> 40).is_multiple_of(5) {
                    sqlx::query("INSERT INTO conversation_labels (conversation_id, org_id, label, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(conversation)
                        .bind(plan.org)
                        .bind(HISTORY_LABELS[(i / 5) % HISTORY_LABELS.len()])
                        .bind(created)
                        .execute(&mut *tx)
                        .await?;
                }
                for j in 0..plan.messages_per_conversation {
                    let pick = mix(seed ^ (j as u64 + 1));
                    let count = 1 + (pick % 3) as usize;
                    let text: Vec<&str> = (0..count)
                        .map(|k| plan.sentences[(mix(pick + k as u64) % plan.sentences.len() as u64) as usize].as_str())
                        .collect();
                    let text = text.join(" ");
                    let (sender_kind, sender_id) = match (j % 2, assignee.or(plan.agents.first().copied())) {
                        (1, Some(agent)) => (SenderKind::Agent, Some(agent.as_uuid())),
                        _ => (SenderKind::Contact, Some(contact.as_uuid())),
                    };
                    let draft = crate::messages::MessageDraft {
                        sender_kind,
                        sender_id,
                        kind: MessageKind::Text,
                        text: &text,
                        client_id: None,
                        attachments: &[],
                        metadata: None,
                    };
                    let at = created + chrono::Duration::minutes(3 * j as i64);
                    crate::messages::insert_message!(tx, plan.org, conversation, draft, at);
                }
                // What the agents have seen: all but the newest conversations' last words.
                sqlx::query("UPDATE conversations SET agent_last_seen_at = last_message_at, unread_count = 0 WHERE id = $1 AND $2")
                    .bind(conversation)
                    .bind(status != ConversationStatus::Open)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        done = upto;
        progress(done);
    }
    // A history is the past, not news: the notifier starts after it, as it does after an
    // upgrade (its migration), instead of working through every message of it.
    on_db!(store, pool => sqlx::query(
        "UPDATE webhook_dispatch_cursor SET last_event_id = (SELECT id FROM events ORDER BY id DESC LIMIT 1) \
         WHERE name = 'notifications' AND EXISTS (SELECT 1 FROM events)",
    )
    .execute(pool)
    .await
    .map(|_| ()))?;
    // PostgreSQL plans from its statistics and answers counts from the index alone only
    // where its visibility map says so: autovacuum keeps both up as a history grows day
    // by day; a history written at once (every conversation updated ten times) has
    // neither yet.
    if let crate::Db::Postgres(pool) = &store.db {
        sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    }
    Ok(())
}

/// A statement that would run for hours (counting to ten billion), for the tests of the
/// statement bound; evaluates to the count it never reaches.
pub async fn run_a_runaway_statement(store: &Store) -> Result<i64, StoreError> {
    let (count,): (i64,) = on_db!(store, pool => sqlx::query_as(
        "WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < 10000000000) \
         SELECT COUNT(*) FROM n",
    )
    .fetch_one(pool)
    .await)?;
    Ok(count)
}

/// Counts to `n` inside a write transaction holding the writer's turn, as a long write
/// (a large deletion) would run: for the tests that writes are not stopped at the bound.
pub async fn run_a_long_write(store: &Store, n: i64) -> Result<i64, StoreError> {
    let _turn = store.write_turn().await;
    on_db!(store, pool => {
        let mut tx = pool.begin_write().await?;
        let (count,): (i64,) = sqlx::query_as(
            "WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             SELECT COUNT(*) FROM n",
        )
        .bind(n)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(count)
    })
}
