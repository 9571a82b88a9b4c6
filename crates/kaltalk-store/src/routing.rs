//! Routing: which team a conversation belongs to, and auto-assignment within it. An inbox
//! may route its new conversations to a team and, with auto-assignment on, give each to
//! the next *online* member of that team in round robin, up to each member's capacity
//! (their open conversations). What nobody can take waits in the team's queue in arrival
//! order and is handed out, oldest first, as capacity frees: a conversation resolved,
//! snoozed or unassigned, an agent coming online, a capacity raised.
//!
//! Why a cursor per team, locked: two instances taking conversations in at once must not
//! both pick the same member or the same waiting conversation. Every step that hands
//! conversations out locks the team rows first (in id order; `FOR UPDATE` on PostgreSQL,
//! SQLite's single writer does it there), then the conversation rows, so two instances
//! wait for each other instead of deadlocking or assigning twice.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::Availability;
use kaltalk_core::event::{MemberAvailabilityChanged, MemberCapacityChanged};
use kaltalk_core::{InboxId, OrgId, TeamId, UserId};

use crate::events::{NewEvent, Written, append_event};
use crate::{BeginWrite, Store, StoreError, on_db};

/// How many open conversations auto-assignment gives a member when nobody set it.
pub const DEFAULT_CAPACITY: i32 = 20;
/// The most a capacity may be set to.
pub const MAX_CAPACITY: i32 = 1000;
/// Minutes without a dashboard connection before a member goes offline, by default.
pub const DEFAULT_OFFLINE_AFTER_MINUTES: i32 = 10;

/// An inbox's routing settings (columns of the inbox row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxRouting {
    /// New conversations belong to this team.
    pub team_id: Option<TeamId>,
    /// Round robin among the team's online members (needs a team).
    pub auto_assign: bool,
    /// An agent going offline hands their unreplied conversations back to the queue.
    pub hand_back_on_offline: bool,
    /// Minutes a customer may wait for a reply before the team is told (`None`: never;
    /// see `crate::waiting`).
    pub waiting_alert_minutes: Option<i32>,
}

/// A new inbox's: no team, nothing automatic, waits told of after a quarter of an hour.
impl Default for InboxRouting {
    fn default() -> Self {
        Self {
            team_id: None,
            auto_assign: false,
            hand_back_on_offline: false,
            waiting_alert_minutes: Some(crate::waiting::DEFAULT_WAITING_ALERT_MINUTES),
        }
    }
}

/// The row lock a routing step takes on what it reads, by backend: SQLite's writer lock
/// (every write transaction begins `IMMEDIATE`) already serialises them.
pub(crate) trait RowLock {
    const FOR_UPDATE: &'static str;
}

impl RowLock for sqlx::Sqlite {
    const FOR_UPDATE: &'static str = "";
}

impl RowLock for sqlx::Postgres {
    const FOR_UPDATE: &'static str = " FOR UPDATE";
}

pub(crate) fn for_update<DB: sqlx::Database + RowLock>(
    _: &sqlx::Transaction<'_, DB>,
) -> &'static str {
    DB::FOR_UPDATE
}

/// Who gets the next conversation: the first member after `cursor` (members sorted by
/// id, wrapping around) with room under their capacity. `members` are
/// `(user, capacity, open conversations)`.
pub fn next_member(members: &[(UserId, i32, i64)], cursor: Option<UserId>) -> Option<usize> {
    let start = match cursor {
        Some(cursor) => members.iter().position(|m| m.0 > cursor).unwrap_or(0),
        None => 0,
    };
    (0..members.len())
        .map(|step| (start + step) % members.len())
        .find(|&i| members[i].2 < i64::from(members[i].1))
}

/// The online members of a team with their capacity and open conversations, by id.
pub(crate) const TEAM_LOAD_SQL: &str = "SELECT m.user_id, m.capacity, \
     (SELECT COUNT(*) FROM conversations c WHERE c.org_id = m.org_id AND c.assignee_id = m.user_id \
        AND c.status IN ('open', 'pending')) AS load \
     FROM team_members tm JOIN memberships m ON m.org_id = tm.org_id AND m.user_id = tm.user_id \
     WHERE tm.org_id = $1 AND tm.team_id = $2 AND m.availability = 'online' ORDER BY m.user_id";

/// Locks the team rows `$teams` (sorted, deduplicated, in id order) inside `$tx`;
/// evaluates to the teams that exist, in that order. Taken before any conversation row.
macro_rules! lock_teams {
    ($tx:expr, $org:expr, $teams:expr) => {{
        let org: kaltalk_core::OrgId = $org;
        let mut wanted: Vec<kaltalk_core::TeamId> = $teams;
        wanted.sort();
        wanted.dedup();
        let sql = format!(
            "SELECT id FROM teams WHERE org_id = $1 AND id = $2{}",
            $crate::routing::for_update(&$tx)
        );
        let mut locked: Vec<kaltalk_core::TeamId> = Vec::new();
        for team in wanted {
            let row: Option<(kaltalk_core::TeamId,)> =
                sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(org)
                    .bind(team)
                    .fetch_optional(&mut *$tx)
                    .await?;
            locked.extend(row.map(|(id,)| id));
        }
        locked
    }};
}
pub(crate) use lock_teams;

/// The teams a member is in, by id.
macro_rules! teams_of_member {
    ($tx:expr, $org:expr, $user:expr) => {{
        let rows: Vec<(kaltalk_core::TeamId,)> = sqlx::query_as(
            "SELECT team_id FROM team_members WHERE org_id = $1 AND user_id = $2 ORDER BY team_id",
        )
        .bind($org)
        .bind($user)
        .fetch_all(&mut *$tx)
        .await?;
        rows.into_iter()
            .map(|(id,)| id)
            .collect::<Vec<kaltalk_core::TeamId>>()
    }};
}
pub(crate) use teams_of_member;

/// Hands out the waiting conversations of `$teams` (already locked with [`lock_teams!`])
/// to their online members with room, oldest first, round robin from each team's cursor.
/// Evaluates to the `conversation.updated` events written.
macro_rules! drain_in_tx {
    ($tx:expr, $org:expr, $teams:expr, $now:expr) => {{
        let (org, now): (kaltalk_core::OrgId, chrono::DateTime<chrono::Utc>) = ($org, $now);
        let teams: Vec<kaltalk_core::TeamId> = $teams;
        let oldest = format!(
            "SELECT id FROM conversations WHERE org_id = $1 AND team_id = $2 AND queued_at IS NOT NULL \
             AND status = 'open' AND assignee_id IS NULL AND handling <> 'bot' ORDER BY queued_at, id LIMIT 1{}",
            $crate::routing::for_update(&$tx)
        );
        let mut events: Vec<$crate::events::Event> = Vec::new();
        for team in teams {
            let (mut cursor,): (Option<kaltalk_core::UserId>,) =
                sqlx::query_as("SELECT last_assigned_id FROM teams WHERE org_id = $1 AND id = $2")
                    .bind(org)
                    .bind(team)
                    .fetch_one(&mut *$tx)
                    .await?;
            let mut members: Vec<(kaltalk_core::UserId, i32, i64)> = sqlx::query_as($crate::routing::TEAM_LOAD_SQL)
                .bind(org)
                .bind(team)
                .fetch_all(&mut *$tx)
                .await?;
            while let Some(index) = $crate::routing::next_member(&members, cursor) {
                let waiting: Option<(kaltalk_core::ConversationId,)> = sqlx::query_as(sqlx::AssertSqlSafe(oldest.clone()))
                    .bind(org)
                    .bind(team)
                    .fetch_optional(&mut *$tx)
                    .await?;
                let Some((conversation,)) = waiting else { break };
                let user = members[index].0;
                sqlx::query("UPDATE conversations SET assignee_id = $2, queued_at = NULL, updated_at = $3 WHERE id = $1")
                    .bind(conversation)
                    .bind(user)
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
                events.push($crate::events::append_event!(
                    $tx,
                    $crate::events::NewEvent::new(Some(org), conversation.as_uuid(), kaltalk_core::event::ConversationUpdated::auto_assigned(user))
                        .in_conversation(conversation),
                    now
                )?);
                members[index].2 += 1;
                cursor = Some(user);
                sqlx::query("UPDATE teams SET last_assigned_id = $2 WHERE id = $1")
                    .bind(team)
                    .bind(user)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        events
    }};
}
pub(crate) use drain_in_tx;

/// The routing step of the intake (a conversation opened, or handed over by the bot),
/// inside the open transaction `$tx`: the conversation gets its inbox's team if it has
/// none; with auto-assignment on and people (not the bot) handling it unassigned, it joins
/// the team's queue and the queue is handed out. Evaluates to the events written.
macro_rules! route_in_tx {
    ($tx:expr, $org:expr, $conversation:expr, $now:expr) => {{
        let (org, conversation, now): (kaltalk_core::OrgId, kaltalk_core::ConversationId, chrono::DateTime<chrono::Utc>) =
            ($org, $conversation, $now);
        let row: Option<(Option<kaltalk_core::TeamId>, Option<kaltalk_core::TeamId>, bool, Option<kaltalk_core::UserId>, String, String)> =
            sqlx::query_as(
                "SELECT i.team_id, c.team_id, i.auto_assign, c.assignee_id, c.handling, c.status FROM conversations c \
                 JOIN inboxes i ON i.id = c.inbox_id WHERE c.org_id = $1 AND c.id = $2",
            )
            .bind(org)
            .bind(conversation)
            .fetch_optional(&mut *$tx)
            .await?;
        let mut events: Vec<$crate::events::Event> = Vec::new();
        if let Some((inbox_team, current_team, auto_assign, assignee, handling, status)) = row {
            let team = current_team.or(inbox_team);
            if current_team.is_none() && let Some(team) = inbox_team {
                sqlx::query("UPDATE conversations SET team_id = $2, updated_at = $3 WHERE id = $1")
                    .bind(conversation)
                    .bind(team)
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
                events.push($crate::events::append_event!(
                    $tx,
                    $crate::events::NewEvent::new(Some(org), conversation.as_uuid(), kaltalk_core::event::ConversationUpdated::team(Some(team)))
                        .in_conversation(conversation),
                    now
                )?);
            }
            if let Some(team) = team
                && auto_assign
                && assignee.is_none()
                && handling != kaltalk_core::chat::Handling::Bot.as_str()
                && status == kaltalk_core::chat::ConversationStatus::Open.as_str()
            {
                let locked = $crate::routing::lock_teams!($tx, org, vec![team]);
                sqlx::query("UPDATE conversations SET queued_at = COALESCE(queued_at, $2) WHERE id = $1")
                    .bind(conversation)
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
                events.extend($crate::routing::drain_in_tx!($tx, org, locked, now));
            }
        }
        events
    }};
}
pub(crate) use route_in_tx;

/// Locks the teams whose queue a change to `$conversation` may let move (its team and
/// its assignee's teams), before the change touches the conversation row; evaluates to
/// them, for [`drain_in_tx!`] once the change is written.
macro_rules! lock_for_change {
    ($tx:expr, $org:expr, $conversation:expr) => {{
        let (org, conversation): (kaltalk_core::OrgId, kaltalk_core::ConversationId) =
            ($org, $conversation);
        let row: Option<(Option<kaltalk_core::TeamId>, Option<kaltalk_core::UserId>)> =
            sqlx::query_as(
                "SELECT team_id, assignee_id FROM conversations WHERE org_id = $1 AND id = $2",
            )
            .bind(org)
            .bind(conversation)
            .fetch_optional(&mut *$tx)
            .await?;
        let mut teams: Vec<kaltalk_core::TeamId> = Vec::new();
        if let Some((team, assignee)) = row {
            teams.extend(team);
            if let Some(user) = assignee {
                teams.extend($crate::routing::teams_of_member!($tx, org, user));
            }
        }
        $crate::routing::lock_teams!($tx, org, teams)
    }};
}
pub(crate) use lock_for_change;

/// A member as routing sees them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberStatus {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub availability: Availability,
    pub capacity: i32,
    /// Their open (and pending) conversations.
    pub open_conversations: i64,
    pub last_seen_at: Option<DateTime<Utc>>,
}

pub(crate) const MEMBER_STATUS_SELECT: &str = "SELECT m.user_id, u.name, u.email, m.availability, m.capacity, \
     (SELECT COUNT(*) FROM conversations c WHERE c.org_id = m.org_id AND c.assignee_id = m.user_id \
        AND c.status IN ('open', 'pending')) AS open_conversations, m.last_seen_at \
     FROM memberships m JOIN users u ON u.id = m.user_id";

/// A member the sweep may take offline: org, user, last seen, joined, the org's minutes.
type SweepCandidate = (OrgId, UserId, Option<DateTime<Utc>>, DateTime<Utc>, i32);

/// Who is online in an organization, for the widget's "team available".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    /// Some member is online.
    pub anyone: bool,
    /// The teams with an online member.
    pub teams: Vec<TeamId>,
}

impl Presence {
    /// Whether an inbox routing to `team` (or to nobody) has someone online.
    pub fn available(&self, team: Option<TeamId>) -> bool {
        match team {
            Some(team) => self.teams.contains(&team),
            None => self.anyone,
        }
    }
}

impl Store {
    /// Replaces an inbox's routing. A team must be the organization's (else
    /// `NotFound`); auto-assignment without a team is turned off. An `inbox.updated`
    /// event is written.
    pub async fn set_inbox_routing(
        &self,
        org: OrgId,
        inbox: InboxId,
        routing: InboxRouting,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let routing = InboxRouting {
            auto_assign: routing.auto_assign && routing.team_id.is_some(),
            ..routing
        };
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if let Some(team) = routing.team_id {
                let found: Option<(TeamId,)> = sqlx::query_as("SELECT id FROM teams WHERE org_id = $1 AND id = $2")
                    .bind(org)
                    .bind(team)
                    .fetch_optional(&mut *tx)
                    .await?;
                found.ok_or(StoreError::NotFound)?;
            }
            let updated = sqlx::query(
                "UPDATE inboxes SET team_id = $3, auto_assign = $4, hand_back_on_offline = $5, waiting_alert_minutes = $6, updated_at = $7 \
                 WHERE org_id = $1 AND id = $2",
            )
            .bind(org)
            .bind(inbox)
            .bind(routing.team_id)
            .bind(routing.auto_assign)
            .bind(routing.hand_back_on_offline)
            .bind(routing.waiting_alert_minutes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = append_event!(tx, NewEvent::new(Some(org), inbox.as_uuid(), kaltalk_core::event::InboxUpdated::default()), now)?;
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// Every member of the organization with availability, capacity and load, by name.
    pub async fn member_statuses(&self, org: OrgId) -> Result<Vec<MemberStatus>, StoreError> {
        let sql = format!("{MEMBER_STATUS_SELECT} WHERE m.org_id = $1 ORDER BY u.name, m.user_id");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, MemberStatus>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn member_status(
        &self,
        org: OrgId,
        user: UserId,
    ) -> Result<MemberStatus, StoreError> {
        let sql = format!("{MEMBER_STATUS_SELECT} WHERE m.org_id = $1 AND m.user_id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, MemberStatus>(sqlx::AssertSqlSafe(sql)).bind(org).bind(user).fetch_one(pool).await)?,
        )
    }

    /// Sets a member online, busy or offline. `automatic`: the server does it (the
    /// offline sweep, a dashboard connecting again), not the member. Going online hands
    /// the member's teams' queues out; going offline hands their unreplied conversations
    /// (no agent reply yet) back to the queue in inboxes that say so. Writes nothing when
    /// the member already is so; `value` says whether it changed.
    pub async fn set_availability(
        &self,
        org: OrgId,
        user: UserId,
        availability: Availability,
        automatic: bool,
        now: DateTime<Utc>,
    ) -> Result<Written<bool>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let current: Option<(String, bool)> = sqlx::query_as(
                "SELECT availability, availability_automatic FROM memberships WHERE org_id = $1 AND user_id = $2",
            )
            .bind(org)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
            let (was, was_automatic) = current.ok_or(StoreError::NotFound)?;
            if was == availability.as_str() {
                if was_automatic != automatic && !automatic {
                    // Chosen now by the member: a dashboard connecting no longer changes it.
                    sqlx::query("UPDATE memberships SET availability_automatic = $3 WHERE org_id = $1 AND user_id = $2")
                        .bind(org)
                        .bind(user)
                        .bind(false)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
                return Ok(Written { value: false, events: Vec::new() });
            }
            // What goes back to the queue, and every team whose queue may move: locked
            // before any conversation row.
            let handed_back: Vec<(kaltalk_core::ConversationId, kaltalk_core::TeamId, bool)> = if availability == Availability::Offline {
                sqlx::query_as(
                    "SELECT c.id, c.team_id, i.auto_assign FROM conversations c JOIN inboxes i ON i.id = c.inbox_id \
                     WHERE c.org_id = $1 AND c.assignee_id = $2 AND c.status = 'open' AND c.team_id IS NOT NULL \
                     AND i.hand_back_on_offline \
                     AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.sender_kind = 'agent' AND m.kind = 'text') \
                     ORDER BY c.created_at, c.id",
                )
                .bind(org)
                .bind(user)
                .fetch_all(&mut *tx)
                .await?
            } else {
                Vec::new()
            };
            let mut teams = teams_of_member!(tx, org, user);
            teams.extend(handed_back.iter().map(|(_, team, _)| *team));
            let locked = lock_teams!(tx, org, teams);
            sqlx::query(
                "UPDATE memberships SET availability = $3, availability_automatic = $4 WHERE org_id = $1 AND user_id = $2",
            )
            .bind(org)
            .bind(user)
            .bind(availability.as_str())
            .bind(automatic)
            .execute(&mut *tx)
            .await?;
            let mut events = vec![append_event!(
                tx,
                NewEvent::new(Some(org), user.as_uuid(), MemberAvailabilityChanged { availability, automatic: automatic.then_some(true) }),
                now
            )?];
            for (conversation, _, auto_assign) in &handed_back {
                // Back in the queue in its arrival place: the oldest waits least.
                sqlx::query(
                    "UPDATE conversations SET assignee_id = NULL, queued_at = CASE WHEN $2 THEN created_at ELSE NULL END, updated_at = $3 WHERE id = $1",
                )
                .bind(conversation)
                .bind(*auto_assign)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), conversation.as_uuid(), kaltalk_core::event::ConversationUpdated::assignee(None, None))
                        .in_conversation(*conversation),
                    now
                )?);
            }
            events.extend(drain_in_tx!(tx, org, locked, now));
            tx.commit().await?;
            Ok(Written { value: true, events })
        })
    }

    /// Sets how many open conversations auto-assignment gives a member at most (the
    /// caller checks the range); a raise hands waiting conversations out.
    pub async fn set_capacity(
        &self,
        org: OrgId,
        user: UserId,
        capacity: i32,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let teams = teams_of_member!(tx, org, user);
            let locked = lock_teams!(tx, org, teams);
            let updated = sqlx::query("UPDATE memberships SET capacity = $3 WHERE org_id = $1 AND user_id = $2")
                .bind(org)
                .bind(user)
                .bind(capacity)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let mut events = vec![append_event!(tx, NewEvent::new(Some(org), user.as_uuid(), MemberCapacityChanged { capacity }), now)?];
            events.extend(drain_in_tx!(tx, org, locked, now));
            tx.commit().await?;
            Ok(Written { value: (), events })
        })
    }

    /// A dashboard of the member is connected at `now` (it opened, or is still open): the
    /// offline sweep counts from here. `connecting`: it just opened, which brings back
    /// online a member the server had taken offline (never one who chose offline).
    pub async fn dashboard_seen(
        &self,
        org: OrgId,
        user: UserId,
        connecting: bool,
        now: DateTime<Utc>,
    ) -> Result<Written<bool>, StoreError> {
        let row: Option<(String, bool)> = on_db!(self, pool => {
            sqlx::query_as(
                "UPDATE memberships SET last_seen_at = $3 WHERE org_id = $1 AND user_id = $2 RETURNING availability, availability_automatic",
            )
            .bind(org)
            .bind(user)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        match row {
            Some((availability, true))
                if connecting && availability == Availability::Offline.as_str() =>
            {
                self.set_availability(org, user, Availability::Online, true, now)
                    .await
            }
            Some(_) => Ok(Written {
                value: false,
                events: Vec::new(),
            }),
            None => Err(StoreError::NotFound),
        }
    }

    /// Takes offline every member (of every organization) without a dashboard connection
    /// for the organization's `offline_after_minutes`; evaluates to who went offline.
    pub async fn sweep_offline(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Written<Vec<(OrgId, UserId)>>, StoreError> {
        let candidates: Vec<SweepCandidate> = on_db!(self, pool => {
            sqlx::query_as(
                "SELECT m.org_id, m.user_id, m.last_seen_at, m.created_at, o.offline_after_minutes FROM memberships m \
                 JOIN organizations o ON o.id = m.org_id WHERE m.availability <> 'offline' ORDER BY m.org_id, m.user_id",
            )
            .fetch_all(pool)
            .await
        })?;
        let mut gone = Vec::new();
        let mut events = Vec::new();
        for (org, user, last_seen, joined, minutes) in candidates {
            let since = last_seen.unwrap_or(joined);
            if since + chrono::Duration::minutes(i64::from(minutes)) > now {
                continue;
            }
            let written = self
                .set_availability(org, user, Availability::Offline, true, now)
                .await?;
            if written.value {
                gone.push((org, user));
            }
            events.extend(written.events);
        }
        Ok(Written {
            value: gone,
            events,
        })
    }

    /// Minutes without a dashboard connection before a member goes offline.
    pub async fn offline_after_minutes(&self, org: OrgId) -> Result<i32, StoreError> {
        let (minutes,): (i32,) = on_db!(self, pool => sqlx::query_as("SELECT offline_after_minutes FROM organizations WHERE id = $1")
            .bind(org)
            .fetch_one(pool)
            .await)?;
        Ok(minutes)
    }

    /// Sets [`Store::offline_after_minutes`] (the caller checks the range).
    pub async fn set_offline_after_minutes(
        &self,
        org: OrgId,
        minutes: i32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let updated = on_db!(self, pool => sqlx::query("UPDATE organizations SET offline_after_minutes = $2, updated_at = $3 WHERE id = $1")
            .bind(org)
            .bind(minutes)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Who is online in the organization (see [`Presence`]).
    pub async fn presence(&self, org: OrgId) -> Result<Presence, StoreError> {
        let (online,): (i64,) = on_db!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND availability = 'online'",
        )
        .bind(org)
        .fetch_one(pool)
        .await)?;
        let teams: Vec<(TeamId,)> = on_db!(self, pool => sqlx::query_as(
            "SELECT DISTINCT tm.team_id FROM team_members tm JOIN memberships m ON m.org_id = tm.org_id AND m.user_id = tm.user_id \
             WHERE tm.org_id = $1 AND m.availability = 'online' ORDER BY tm.team_id",
        )
        .bind(org)
        .fetch_all(pool)
        .await)?;
        Ok(Presence {
            anyone: online > 0,
            teams: teams.into_iter().map(|(id,)| id).collect(),
        })
    }

    /// The conversations waiting in a team's queue, in the order they will be handed out.
    pub async fn team_queue(
        &self,
        org: OrgId,
        team: TeamId,
    ) -> Result<Vec<kaltalk_core::ConversationId>, StoreError> {
        let rows: Vec<(kaltalk_core::ConversationId,)> = on_db!(self, pool => sqlx::query_as(
            "SELECT id FROM conversations WHERE org_id = $1 AND team_id = $2 AND queued_at IS NOT NULL \
             AND status = 'open' AND assignee_id IS NULL AND handling <> 'bot' ORDER BY queued_at, id",
        )
        .bind(org)
        .bind(team)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> UserId {
        UserId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn the_next_member_follows_the_cursor_and_skips_the_full() {
        let members = [(user(1), 2, 0), (user(2), 2, 2), (user(3), 2, 1)];
        assert_eq!(next_member(&members, None), Some(0));
        assert_eq!(next_member(&members, Some(user(1))), Some(2), "2 is full");
        assert_eq!(
            next_member(&members, Some(user(3))),
            Some(0),
            "wraps around"
        );
        // A cursor on someone who left the team: the next id after it.
        assert_eq!(next_member(&members, Some(user(2))), Some(2));
        let full = [(user(1), 1, 1), (user(2), 0, 0)];
        assert_eq!(next_member(&full, None), None);
        assert_eq!(next_member(&[], None), None);
    }
}
