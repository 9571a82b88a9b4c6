//! Rights over data: a copy of what KalTalk holds about a person, deleting their account
//! (the privacy policy's "we will remove your personal data"), and deleting a whole
//! organization.

use chrono::{DateTime, Utc};
use kaltalk_core::event::MemberRemoved;
use kaltalk_core::{OrgId, Role, UserId};
use serde::Serialize;

use crate::accounts::RoleColumn;
use crate::events::{Event, NewEvent, append_event};
use crate::{BeginWrite, Conflict, Store, StoreError, on_db};

/// Each organization of `user` and what deleting the account does there, on `$conn`.
macro_rules! plan {
    ($conn:expr, $user:expr) => {{
        let rows: Result<Vec<(OrgId, String, String, i64)>, sqlx::Error> = sqlx::query_as(
            "SELECT o.id, o.name, m.role, (SELECT COUNT(*) FROM memberships other WHERE other.org_id = o.id) \
             FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name, o.id",
        )
        .bind($user)
        .fetch_all(&mut *$conn)
        .await;
        rows.map_err(StoreError::from).and_then(|rows| {
            rows.into_iter()
                .map(|(org, name, role, members)| {
                    let leaving = if members <= 1 {
                        Leaving::DeletesOrganization
                    } else if RoleColumn::try_from(role)?.0 == Role::Owner {
                        Leaving::MustTransferOwnership
                    } else {
                        Leaving::LeavesOrganization
                    };
                    Ok((org, name, leaving))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }};
}

/// Deletes organization `$org` and everything in it inside `$tx`; evaluates to
/// `Err(NotFound)` when there is no such organization.
macro_rules! delete_organization_rows {
    ($tx:expr, $org:expr) => {{
        let org: OrgId = $org;
        // The event log and the job queue name the organization without a foreign key;
        // every other table goes by cascade.
        sqlx::query("DELETE FROM events WHERE org_id = $1")
            .bind(org)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM jobs WHERE payload ->> 'org_id' = $1")
            .bind(org.to_string())
            .execute(&mut *$tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM organizations WHERE id = $1")
            .bind(org)
            .execute(&mut *$tx)
            .await?;
        if deleted.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }};
}

/// What a person gets when they ask for a copy of their data.
#[derive(Debug, Clone, Serialize)]
pub struct AccountData {
    pub user: AccountProfile,
    pub organizations: Vec<AccountMembership>,
    pub sessions: Vec<AccountSession>,
    pub emails: Vec<AccountEmail>,
    /// Browsers that get this person's pushes: where to (the browser's push service) and
    /// since when; the browser's keys are not theirs to read back.
    pub push_subscriptions: Vec<AccountPushSubscription>,
    /// Phones and tablets whose native app gets this person's pushes: what the privacy
    /// policy lists (platform, OS and app versions) and since when; the push token is
    /// the push service's address for the app, not theirs to read back.
    pub devices: Vec<AccountDevice>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AccountDevice {
    pub organization_id: OrgId,
    pub platform: String,
    pub os_version: String,
    pub app_version: String,
    pub created_at: DateTime<Utc>,
    pub last_pushed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AccountPushSubscription {
    pub organization_id: OrgId,
    pub endpoint: String,
    pub created_at: DateTime<Utc>,
    pub last_pushed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AccountProfile {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountMembership {
    pub organization_id: OrgId,
    pub organization: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    /// Replies and notes this person wrote there (they stay the organization's record).
    pub messages_written: i64,
    /// Conversations assigned to them there now.
    pub conversations_assigned: i64,
}

/// A signed-in browser (the token itself is never stored, so never shown).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AccountSession {
    pub organization_id: OrgId,
    /// `browser` (a dashboard sign-in) or `app` (a native app's).
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An email KalTalk sent (or kept) for this person: invitations, links, notices.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AccountEmail {
    pub subject: String,
    pub kind: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

/// What deleting an account did.
#[derive(Debug, Clone, Default)]
pub struct AccountDeleted {
    /// Organizations the person was the only member of, deleted with everything in them;
    /// their blob folders are the caller's to remove.
    pub deleted_organizations: Vec<OrgId>,
    /// `member.removed` in the organizations the person left.
    pub events: Vec<Event>,
}

/// How the person stands in one organization, for deleting their account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaving {
    /// Nobody else is in it: it is deleted with the account.
    DeletesOrganization,
    /// Others stay; the person leaves.
    LeavesOrganization,
    /// The person owns it and others are in it: ownership must pass to someone first.
    MustTransferOwnership,
}

impl Store {
    /// A copy of what KalTalk holds about `user` as a person: profile, memberships,
    /// sessions, emails sent to them. The conversations they answered belong to their
    /// organizations and are counted, not copied.
    pub async fn account_data(&self, user: UserId) -> Result<AccountData, StoreError> {
        on_db!(self, pool => {
            let profile = sqlx::query_as::<_, AccountProfile>(
                "SELECT id, name, email, email_verified_at, created_at FROM users WHERE id = $1",
            )
            .bind(user)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            let rows: Vec<(OrgId, String, String, DateTime<Utc>, i64, i64)> = sqlx::query_as(
                "SELECT o.id, o.name, m.role, m.created_at, \
                 (SELECT COUNT(*) FROM messages msg WHERE msg.org_id = o.id AND msg.sender_kind = 'agent' AND msg.sender_id = m.user_id), \
                 (SELECT COUNT(*) FROM conversations c WHERE c.org_id = o.id AND c.assignee_id = m.user_id) \
                 FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY m.created_at, o.id",
            )
            .bind(user)
            .fetch_all(pool)
            .await?;
            let organizations = rows
                .into_iter()
                .map(|(organization_id, organization, role, joined_at, messages_written, conversations_assigned)| {
                    Ok(AccountMembership {
                        organization_id,
                        organization,
                        role: RoleColumn::try_from(role)?.0,
                        joined_at,
                        messages_written,
                        conversations_assigned,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let sessions = sqlx::query_as::<_, AccountSession>(
                "SELECT org_id AS organization_id, kind, created_at, expires_at FROM sessions WHERE user_id = $1 ORDER BY created_at",
            )
            .bind(user)
            .fetch_all(pool)
            .await?;
            let emails = sqlx::query_as::<_, AccountEmail>(
                "SELECT subject, kind, state, created_at FROM outbound_emails WHERE LOWER(to_address) = LOWER($1) ORDER BY created_at",
            )
            .bind(&profile.email)
            .fetch_all(pool)
            .await?;
            let push_subscriptions = sqlx::query_as::<_, AccountPushSubscription>(
                "SELECT org_id AS organization_id, endpoint, created_at, last_pushed_at FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at",
            )
            .bind(user)
            .fetch_all(pool)
            .await?;
            let devices = sqlx::query_as::<_, AccountDevice>(
                "SELECT org_id AS organization_id, platform, os_version, app_version, created_at, last_pushed_at FROM devices WHERE user_id = $1 ORDER BY created_at",
            )
            .bind(user)
            .fetch_all(pool)
            .await?;
            Ok(AccountData { user: profile, organizations, sessions, emails, push_subscriptions, devices })
        })
    }

    /// Deletes an organization and everything in it: conversations, contacts, inboxes,
    /// knowledge, settings, memberships and sessions, its event log and queued jobs. Its
    /// files are the caller's to remove.
    pub async fn delete_organization(&self, org: OrgId) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            delete_organization_rows!(tx, org)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// What deleting `user`'s account would do in each of their organizations.
    pub async fn account_deletion_plan(
        &self,
        user: UserId,
    ) -> Result<Vec<(OrgId, String, Leaving)>, StoreError> {
        on_db!(self, pool => {
            let mut conn = pool.acquire().await?;
            plan!(conn, user)
        })
    }

    /// Deletes `user`'s account: organizations where nobody else is are deleted with
    /// everything in them; from the others the person is removed, their assignments
    /// cleared and their name taken out of the event log and webhook deliveries (the
    /// messages they wrote stay, as the organization's record, without a name). Emails
    /// sent to them, their sessions and links go too. Refused with
    /// [`Conflict::OwnsSharedOrganization`] while they own an organization others are in.
    pub async fn delete_account(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<AccountDeleted, StoreError> {
        let _turn = self.write_turn().await;
        let backend = self.backend();
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let plan = plan!(tx, user)?;
            if let Some((_, name, _)) = plan.iter().find(|(_, _, leaving)| *leaving == Leaving::MustTransferOwnership) {
                return Err(StoreError::Conflict(Conflict::OwnsSharedOrganization(name.clone())));
            }
            let (email,): (String,) = sqlx::query_as("SELECT email FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let mut deleted = AccountDeleted::default();
            for (org, _, leaving) in plan {
                if leaving == Leaving::DeletesOrganization {
                    delete_organization_rows!(tx, org)?;
                    deleted.deleted_organizations.push(org);
                } else {
                    deleted.events.push(append_event!(tx, NewEvent::new(Some(org), user.as_uuid(), MemberRemoved { account_deleted: Some(true) }), now)?);
                }
            }
            // The person's name rides in the payloads of the messages they wrote (and in
            // the webhook deliveries made of them); the messages themselves only point at
            // the user row, which goes.
            let theirs = format!(
                "SELECT e.id FROM events e WHERE e.kind = '{}' AND e.subject_id IN \
                 (SELECT m.id FROM messages m WHERE m.sender_kind = 'agent' AND m.sender_id = $1)",
                kaltalk_core::event::MESSAGE_CREATED
            );
            let (scrub_events, scrub_deliveries) = match backend {
                crate::Backend::Sqlite => (
                    format!("UPDATE events SET payload = json_set(payload, '$.message.sender_name', NULL) WHERE id IN ({theirs})"),
                    format!("UPDATE webhook_deliveries SET body = json_set(body, '$.data.sender_name', NULL) WHERE event_id IN ({theirs})"),
                ),
                crate::Backend::Postgres => (
                    format!("UPDATE events SET payload = jsonb_set(payload, '{{message,sender_name}}', 'null'::jsonb) WHERE id IN ({theirs})"),
                    format!(
                        "UPDATE webhook_deliveries SET body = jsonb_set(body::jsonb, '{{data,sender_name}}', 'null'::jsonb)::text \
                         WHERE event_id IN ({theirs})"
                    ),
                ),
            };
            for sql in [scrub_events, scrub_deliveries] {
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user).execute(&mut *tx).await?;
            }
            // Emails sent to them, and the invitations that name their address.
            for sql in [
                "DELETE FROM outbound_emails WHERE LOWER(to_address) = LOWER($1)",
                "DELETE FROM invitations WHERE LOWER(email) = LOWER($1)",
            ] {
                sqlx::query(sql).bind(&email).execute(&mut *tx).await?;
            }
            // Memberships, sessions and links go by cascade; assignments and the
            // "invited by" / "created by" marks become empty.
            sqlx::query("DELETE FROM users WHERE id = $1").bind(user).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(deleted)
        })
    }
}
