//! Teams: named groups of an organization's members that conversations belong to (see
//! `crate::routing` for how conversations reach them), and a conversation's team.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::ConversationStatus;
use kaltalk_core::event::{ConversationUpdated, TeamCreated, TeamDeleted, TeamUpdated};
use kaltalk_core::{ConversationId, OrgId, TeamId, UserId};

use crate::events::{NewEvent, Written, append_event};
use crate::routing::{MEMBER_STATUS_SELECT, MemberStatus, drain_in_tx, lock_teams};
use crate::{BeginWrite, Store, StoreError, on_db};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Team {
    pub id: TeamId,
    pub org_id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A team with its members (and their availability), as the Teams page shows it.
#[derive(Debug, Clone)]
pub struct TeamDetails {
    pub team: Team,
    pub members: Vec<MemberStatus>,
}

const TEAM_COLUMNS: &str = "id, org_id, name, created_at";

impl Store {
    /// A new team (the caller validated the name); `Conflict::TeamNameTaken` when the
    /// organization has one by that name.
    pub async fn create_team(
        &self,
        org: OrgId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Written<Team>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id = TeamId::new();
            sqlx::query("INSERT INTO teams (id, org_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
                .bind(id)
                .bind(org)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let event = append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), TeamCreated { name: name.to_owned() }), now)?;
            let sql = format!("SELECT {TEAM_COLUMNS} FROM teams WHERE id = $1");
            let team = sqlx::query_as::<_, Team>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Written { value: team, events: vec![event] })
        })
    }

    /// The organization's teams, by name.
    pub async fn list_teams(&self, org: OrgId) -> Result<Vec<Team>, StoreError> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM teams WHERE org_id = $1 ORDER BY name, id");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Team>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn get_team(&self, org: OrgId, team: TeamId) -> Result<Team, StoreError> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM teams WHERE org_id = $1 AND id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Team>(sqlx::AssertSqlSafe(sql)).bind(org).bind(team).fetch_one(pool).await)?,
        )
    }

    /// A team's members with their availability, by name.
    pub async fn team_members(
        &self,
        org: OrgId,
        team: TeamId,
    ) -> Result<Vec<MemberStatus>, StoreError> {
        let sql = format!(
            "{MEMBER_STATUS_SELECT} JOIN team_members tm ON tm.org_id = m.org_id AND tm.user_id = m.user_id \
             WHERE m.org_id = $1 AND tm.team_id = $2 ORDER BY u.name, m.user_id"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, MemberStatus>(sqlx::AssertSqlSafe(sql)).bind(org).bind(team).fetch_all(pool).await)?,
        )
    }

    /// Every team with its members.
    pub async fn teams_with_members(&self, org: OrgId) -> Result<Vec<TeamDetails>, StoreError> {
        let mut details = Vec::new();
        for team in self.list_teams(org).await? {
            let members = self.team_members(org, team.id).await?;
            details.push(TeamDetails { team, members });
        }
        Ok(details)
    }

    pub async fn rename_team(
        &self,
        org: OrgId,
        team: TeamId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE teams SET name = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(team)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = append_event!(tx, NewEvent::new(Some(org), team.as_uuid(), TeamUpdated { name: Some(name.to_owned()), ..TeamUpdated::default() }), now)?;
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// Deletes a team: its conversations and inboxes keep no team (and inboxes stop
    /// auto-assigning); what waited in its queue stays unassigned.
    pub async fn delete_team(
        &self,
        org: OrgId,
        team: TeamId,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let locked = lock_teams!(tx, org, vec![team]);
            if locked.is_empty() {
                return Err(StoreError::NotFound);
            }
            let moved: Vec<(ConversationId,)> = sqlx::query_as(
                "UPDATE conversations SET team_id = NULL, queued_at = NULL, updated_at = $3 WHERE org_id = $1 AND team_id = $2 RETURNING id",
            )
            .bind(org)
            .bind(team)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("UPDATE inboxes SET team_id = NULL, auto_assign = $3 WHERE org_id = $1 AND team_id = $2")
                .bind(org)
                .bind(team)
                .bind(false)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM teams WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(team)
                .execute(&mut *tx)
                .await?;
            let mut events = vec![append_event!(tx, NewEvent::new(Some(org), team.as_uuid(), TeamDeleted {}), now)?];
            for (conversation,) in moved {
                events.push(append_event!(
                    tx,
                    NewEvent::new(Some(org), conversation.as_uuid(), ConversationUpdated::team(None)).in_conversation(conversation),
                    now
                )?);
            }
            tx.commit().await?;
            Ok(Written { value: (), events })
        })
    }

    /// Adds a member of the organization to a team (`NotFound` for a team or person not
    /// of the organization; nothing written when they are in it already). Their room
    /// hands out the team's queue.
    pub async fn add_team_member(
        &self,
        org: OrgId,
        team: TeamId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let locked = lock_teams!(tx, org, vec![team]);
            if locked.is_empty() {
                return Err(StoreError::NotFound);
            }
            let member: Option<(UserId,)> = sqlx::query_as("SELECT user_id FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
            member.ok_or(StoreError::NotFound)?;
            let added = sqlx::query(
                "INSERT INTO team_members (team_id, org_id, user_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(team)
            .bind(org)
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if added.rows_affected() == 0 {
                return Ok(Written { value: (), events: Vec::new() });
            }
            let mut events = vec![append_event!(tx, NewEvent::new(Some(org), team.as_uuid(), TeamUpdated { member_added: Some(user), ..TeamUpdated::default() }), now)?];
            events.extend(drain_in_tx!(tx, org, locked, now));
            tx.commit().await?;
            Ok(Written { value: (), events })
        })
    }

    /// Removes a person from a team (`NotFound` when they are not in it). Their
    /// conversations stay theirs.
    pub async fn remove_team_member(
        &self,
        org: OrgId,
        team: TeamId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let removed = sqlx::query("DELETE FROM team_members WHERE org_id = $1 AND team_id = $2 AND user_id = $3")
                .bind(org)
                .bind(team)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            if removed.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let event = append_event!(tx, NewEvent::new(Some(org), team.as_uuid(), TeamUpdated { member_removed: Some(user), ..TeamUpdated::default() }), now)?;
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// Puts a conversation in a team (or none), by hand. A conversation leaving a team
    /// leaves its queue.
    pub async fn set_conversation_team(
        &self,
        org: OrgId,
        conversation: ConversationId,
        team: Option<TeamId>,
        now: DateTime<Utc>,
    ) -> Result<Written<()>, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if let Some(team) = team {
                let found: Option<(TeamId,)> = sqlx::query_as("SELECT id FROM teams WHERE org_id = $1 AND id = $2")
                    .bind(org)
                    .bind(team)
                    .fetch_optional(&mut *tx)
                    .await?;
                found.ok_or(StoreError::NotFound)?;
            }
            let current: Option<(Option<TeamId>,)> = sqlx::query_as("SELECT team_id FROM conversations WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(conversation)
                .fetch_optional(&mut *tx)
                .await?;
            let (current,) = current.ok_or(StoreError::NotFound)?;
            if current == team {
                return Ok(Written { value: (), events: Vec::new() });
            }
            sqlx::query("UPDATE conversations SET team_id = $3, queued_at = NULL, updated_at = $4 WHERE org_id = $1 AND id = $2")
                .bind(org)
                .bind(conversation)
                .bind(team)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let event = append_event!(
                tx,
                NewEvent::new(Some(org), conversation.as_uuid(), ConversationUpdated::team(team)).in_conversation(conversation),
                now
            )?;
            tx.commit().await?;
            Ok(Written { value: (), events: vec![event] })
        })
    }

    /// How many conversations with `status` each team holds (teams with none left out).
    pub async fn team_counts(
        &self,
        org: OrgId,
        status: ConversationStatus,
    ) -> Result<Vec<(TeamId, i64)>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as(
            "SELECT team_id, COUNT(*) FROM conversations WHERE org_id = $1 AND status = $2 AND team_id IS NOT NULL \
             GROUP BY team_id ORDER BY team_id",
        )
        .bind(org)
        .bind(status.as_str())
        .fetch_all(pool)
        .await)?)
    }
}
