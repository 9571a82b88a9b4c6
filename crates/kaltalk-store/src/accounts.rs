//! Users, organizations, memberships, sessions, single-use email tokens, invitations and
//! API keys.

use chrono::{DateTime, Utc};
use kaltalk_core::event::{
    ApiKeyCreated, ApiKeyRevoked, InvitationCreated, InvitationRevoked, MemberAdded, MemberRemoved,
    MemberRoleChanged, OrganizationCreated, OrganizationUpdated, OwnershipTransferred, UserField,
    UserSignedUp, UserUpdated,
};
use kaltalk_core::{
    ApiKeyId, EmailAddress, InvitationId, OrgId, OrgName, PersonName, Role, SessionId, UserId,
};

use crate::events::{NewEvent, append_event};
use crate::outbox::{NewEmail, insert_email};
use crate::{BeginWrite, Store, StoreError, on_db};

impl TryFrom<String> for RoleColumn {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value
            .parse::<Role>()
            .map(RoleColumn)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// A role as stored (TEXT), decoded through `TryFrom<String>`.
#[derive(Debug, Clone, Copy)]
pub struct RoleColumn(pub Role);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A member of an organization, with the person's details.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub user_id: UserId,
    pub org_id: OrgId,
    pub name: String,
    pub email: String,
    #[sqlx(try_from = "String")]
    role: RoleColumn,
    pub joined_at: DateTime<Utc>,
}

impl Member {
    pub fn role(&self) -> Role {
        self.role.0
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invitation {
    pub id: InvitationId,
    pub org_id: OrgId,
    pub org_name: String,
    pub email: String,
    #[sqlx(try_from = "String")]
    role: RoleColumn,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Invitation {
    pub fn role(&self) -> Role {
        self.role.0
    }

    /// Still usable at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none() && self.expires_at > now
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: String,
    /// The first characters of the key, shown so people can tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A live dashboard session and whose it is.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

pub struct NewUser {
    pub name: PersonName,
    pub email: EmailAddress,
    pub password_hash: String,
    /// Set when the address is already proven (the person followed a link sent to it).
    pub email_verified: bool,
}

/// A single-use link's token, as stored (hashed), and when it stops working.
#[derive(Clone, Copy)]
pub struct LinkToken<'a> {
    pub token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub struct NewSession {
    pub token_hash: String,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

pub struct NewInvitation {
    pub org_id: OrgId,
    pub email: EmailAddress,
    pub role: Role,
    pub token_hash: String,
    pub invited_by: UserId,
    pub expires_at: DateTime<Utc>,
}

pub struct NewApiKey {
    pub org_id: OrgId,
    pub name: String,
    pub prefix: String,
    pub token_hash: String,
    pub created_by: Option<UserId>,
}

/// Who accepts an invitation: someone who already has an account, or a new sign-up.
pub enum Acceptor<'a> {
    Existing(UserId),
    New(&'a NewUser),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
    /// Makes the address the token was sent to the user's sign-in address.
    ChangeEmail,
    /// Sent to the old address on a change: puts it back and cancels pending changes.
    UndoEmailChange,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
            TokenPurpose::ChangeEmail => "change_email",
            TokenPurpose::UndoEmailChange => "undo_email_change",
        }
    }
}

/// A requested change of sign-in address: the link for the new address, the notice with
/// an undo link for the old one.
pub struct EmailChange<'a> {
    pub user: UserId,
    pub from: &'a str,
    pub to: &'a EmailAddress,
    pub confirm: (LinkToken<'a>, &'a NewEmail),
    pub undo: (LinkToken<'a>, &'a NewEmail),
}

const USER_COLUMNS: &str = "id, name, email, password_hash, email_verified_at, created_at";
const MEMBER_SELECT: &str = "SELECT u.id AS user_id, m.org_id, u.name, u.email, m.role, \
     m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id";
const INVITATION_SELECT: &str = "SELECT i.id, i.org_id, o.name AS org_name, i.email, i.role, \
     i.created_at, i.expires_at, i.accepted_at, i.revoked_at \
     FROM invitations i JOIN organizations o ON o.id = i.org_id";
const API_KEY_COLUMNS: &str = "id, org_id, name, prefix, created_at, last_used_at, revoked_at";

/// Inserts a user in the open transaction; evaluates to the new `UserId`.
macro_rules! insert_user {
    ($tx:expr, $user:expr, $now:expr) => {{
        let user: &NewUser = $user;
        let id = UserId::new();
        sqlx::query(
            "INSERT INTO users (id, name, email, password_hash, email_verified_at, age_confirmed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
        )
        .bind(id)
        .bind(user.name.as_str())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(user.email_verified.then_some($now))
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        append_event!($tx, NewEvent::new(None, id.as_uuid(), UserSignedUp {}), $now)?;
        id
    }};
}

macro_rules! insert_membership {
    ($tx:expr, $org:expr, $user:expr, $role:expr, $now:expr) => {{
        let (org, user, role): (OrgId, UserId, Role) = ($org, $user, $role);
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(org)
        .bind(user)
        .bind(role.as_str())
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        append_event!(
            $tx,
            NewEvent::new(Some(org), user.as_uuid(), MemberAdded { role }),
            $now
        )?;
    }};
}

macro_rules! insert_organization {
    ($tx:expr, $name:expr, $owner:expr, $now:expr) => {{
        let id = OrgId::new();
        let name: &OrgName = $name;
        sqlx::query(
            "INSERT INTO organizations (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(id)
        .bind(name.as_str())
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        append_event!(
            $tx,
            NewEvent::new(
                Some(id),
                id.as_uuid(),
                OrganizationCreated {
                    name: name.as_str().to_owned()
                }
            ),
            $now
        )?;
        insert_membership!($tx, id, $owner, Role::Owner, $now);
        Organization {
            id,
            name: name.as_str().to_owned(),
            created_at: $now,
        }
    }};
}

impl Store {
    // ---- users -------------------------------------------------------------------------

    /// Signs a person up: the user, their organization and their owner membership, one
    /// transaction, with the verification email when one is due.
    pub async fn sign_up(
        &self,
        user: &NewUser,
        org_name: &OrgName,
        verification: Option<(LinkToken<'_>, &NewEmail)>,
        now: DateTime<Utc>,
    ) -> Result<(UserId, Organization), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let user_id = insert_user!(tx, user, now);
            let org = insert_organization!(tx, org_name, user_id, now);
            if let Some((token, email)) = verification {
                insert_user_token!(tx, user_id, TokenPurpose::VerifyEmail, user.email.as_str(), token.token_hash, token.expires_at, now);
                insert_email!(tx, email, now);
            }
            tx.commit().await?;
            Ok((user_id, org))
        })
    }

    /// Creates a user as a member of an existing organization (the admin CLI).
    pub async fn create_member_user(
        &self,
        user: &NewUser,
        org_id: OrgId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<UserId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let user_id = insert_user!(tx, user, now);
            let exists: Option<(OrgId,)> = sqlx::query_as("SELECT id FROM organizations WHERE id = $1")
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            insert_membership!(tx, org_id, user_id, role, now);
            tx.commit().await?;
            Ok(user_id)
        })
    }

    pub async fn get_user(&self, id: UserId) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(pool).await)?,
        )
    }

    pub async fn find_user_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql))
            .bind(email.as_str())
            .fetch_optional(pool)
            .await)?,
        )
    }

    pub async fn rename_user(
        &self,
        id: UserId,
        name: &PersonName,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE users SET name = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(name.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            append_event!(tx, NewEvent::new(None, id.as_uuid(), UserUpdated { field: UserField::Name }), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Asks to change a sign-in address. Nothing changes yet: the new address becomes the
    /// sign-in address only when the link sent to it is followed (`confirm_email_change`),
    /// so a hijacked session cannot move the account to an address nobody proved; the old
    /// address gets an undo link. `EmailTaken` when another account has the address.
    pub async fn request_email_change(
        &self,
        change: &EmailChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let taken: Option<(UserId,)> = sqlx::query_as("SELECT id FROM users WHERE email = $1")
                .bind(change.to.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict(crate::Conflict::EmailTaken));
            }
            let (token, message) = change.confirm;
            insert_user_token!(tx, change.user, TokenPurpose::ChangeEmail, change.to.as_str(), token.token_hash, token.expires_at, now);
            insert_email!(tx, message, now);
            let (token, message) = change.undo;
            insert_user_token!(tx, change.user, TokenPurpose::UndoEmailChange, change.from, token.token_hash, token.expires_at, now);
            insert_email!(tx, message, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Follows the link sent to a new address: it becomes the (verified) sign-in address,
    /// and other pending changes are void. `NotFound` for a used, expired or unknown link;
    /// `EmailTaken` when another account took the address meanwhile.
    pub async fn confirm_email_change(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (user_id, address) = consume_user_token!(tx, token_hash, TokenPurpose::ChangeEmail, now);
            set_verified_email!(tx, user_id, &address, now);
            append_event!(tx, NewEvent::new(None, user_id.as_uuid(), UserUpdated { field: UserField::Email }), now)?;
            tx.commit().await?;
            Ok(user_id)
        })
    }

    /// Follows the undo link sent to the old address: it is the sign-in address again
    /// (proved, since the link reached it), every pending change is void and every session
    /// ends, so whoever asked for the change is signed out. `NotFound` for a used, expired
    /// or unknown link.
    pub async fn undo_email_change(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (user_id, address) = consume_user_token!(tx, token_hash, TokenPurpose::UndoEmailChange, now);
            set_verified_email!(tx, user_id, &address, now);
            void_user_tokens!(tx, user_id, TokenPurpose::UndoEmailChange, now);
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            append_event!(tx, NewEvent::new(None, user_id.as_uuid(), UserUpdated { field: UserField::Email }), now)?;
            tx.commit().await?;
            Ok(user_id)
        })
    }

    /// Sets a new password hash and ends every session of the user.
    pub async fn change_password(
        &self,
        id: UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            append_event!(tx, NewEvent::new(None, id.as_uuid(), UserUpdated { field: UserField::Password }), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    // ---- single-use email tokens ---------------------------------------------------------

    /// Stores a verification or reset token with the email that carries it.
    pub async fn issue_user_token(
        &self,
        user_id: UserId,
        purpose: TokenPurpose,
        address: &str,
        token: LinkToken<'_>,
        email: &NewEmail,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            insert_user_token!(tx, user_id, purpose, address, token.token_hash, token.expires_at, now);
            insert_email!(tx, email, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Marks the user's address verified if the token is valid and was sent to the address
    /// the user still has. Returns the user.
    pub async fn verify_email(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (user_id, address) = consume_user_token!(tx, token_hash, TokenPurpose::VerifyEmail, now);
            let updated = sqlx::query("UPDATE users SET email_verified_at = $3 WHERE id = $1 AND email = $2")
                .bind(user_id)
                .bind(address)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            Ok(user_id)
        })
    }

    /// Uses a reset token: sets the password, ends every session, voids the user's other
    /// reset links. Proves the address too, since the link was delivered to it.
    pub async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (user_id, address) = consume_user_token!(tx, token_hash, TokenPurpose::ResetPassword, now);
            sqlx::query(
                "UPDATE users SET password_hash = $2, updated_at = $3, \
                 email_verified_at = COALESCE(email_verified_at, $3) WHERE id = $1 AND email = $4",
            )
            .bind(user_id)
            .bind(password_hash)
            .bind(now)
            .bind(address)
            .execute(&mut *tx)
            .await?;
            void_user_tokens!(tx, user_id, TokenPurpose::ResetPassword, now);
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            append_event!(tx, NewEvent::new(None, user_id.as_uuid(), UserUpdated { field: UserField::Password }), now)?;
            tx.commit().await?;
            Ok(user_id)
        })
    }

    /// Whether a reset token is still usable (to show the form or say it expired).
    pub async fn user_token_is_valid(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_db!(self, pool => sqlx::query_as(
            "SELECT token_hash FROM user_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(pool)
        .await)?;
        Ok(row.is_some())
    }

    // ---- organizations and members -------------------------------------------------------

    pub async fn create_organization(
        &self,
        owner: UserId,
        name: &OrgName,
        now: DateTime<Utc>,
    ) -> Result<Organization, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let org = insert_organization!(tx, name, owner, now);
            tx.commit().await?;
            Ok(org)
        })
    }

    pub async fn get_organization(&self, id: OrgId) -> Result<Organization, StoreError> {
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Organization>("SELECT id, name, created_at FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await)?,
        )
    }

    pub async fn rename_organization(
        &self,
        id: OrgId,
        name: &OrgName,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE organizations SET name = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(name.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            append_event!(tx, NewEvent::new(Some(id), id.as_uuid(), OrganizationUpdated { name: name.as_str().to_owned() }), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The organizations a user belongs to, oldest membership first.
    pub async fn memberships_of(&self, user: UserId) -> Result<Vec<Member>, StoreError> {
        let sql = format!("{MEMBER_SELECT} WHERE m.user_id = $1 ORDER BY m.created_at, m.org_id");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Member>(sqlx::AssertSqlSafe(sql)).bind(user).fetch_all(pool).await)?,
        )
    }

    /// Like `memberships_of`, with each organization's name.
    pub async fn organizations_of(
        &self,
        user: UserId,
    ) -> Result<Vec<(Organization, Role)>, StoreError> {
        let rows: Vec<(OrgId, String, DateTime<Utc>, String)> = on_db!(self, pool => sqlx::query_as(
            "SELECT o.id, o.name, o.created_at, m.role FROM memberships m \
             JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name, o.id",
        )
        .bind(user)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(id, name, created_at, role)| {
                let role = RoleColumn::try_from(role)?.0;
                Ok((
                    Organization {
                        id,
                        name,
                        created_at,
                    },
                    role,
                ))
            })
            .collect()
    }

    pub async fn list_members(&self, org: OrgId) -> Result<Vec<Member>, StoreError> {
        let sql = format!("{MEMBER_SELECT} WHERE m.org_id = $1 ORDER BY m.created_at, u.id");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Member>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn get_member(&self, org: OrgId, user: UserId) -> Result<Member, StoreError> {
        let sql = format!("{MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Member>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(user)
            .fetch_one(pool)
            .await)?,
        )
    }

    /// Changes an admin's or agent's role. The owner's role moves only by transfer.
    pub async fn change_role(
        &self,
        org: OrgId,
        user: UserId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2 AND role <> 'owner'")
                .bind(org)
                .bind(user)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), user.as_uuid(), MemberRoleChanged { role }), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes a member other than the owner.
    pub async fn remove_member(
        &self,
        org: OrgId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let deleted = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2 AND role <> 'owner'")
                .bind(org)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            if deleted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), user.as_uuid(), MemberRemoved::default()), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Makes `to` (already a member) the owner; the previous owner becomes an admin.
    pub async fn transfer_ownership(
        &self,
        org: OrgId,
        from: UserId,
        to: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let promoted = sqlx::query("UPDATE memberships SET role = 'owner' WHERE org_id = $1 AND user_id = $2 AND role <> 'owner'")
                .bind(org)
                .bind(to)
                .execute(&mut *tx)
                .await?;
            let demoted = sqlx::query("UPDATE memberships SET role = 'admin' WHERE org_id = $1 AND user_id = $2 AND role = 'owner'")
                .bind(org)
                .bind(from)
                .execute(&mut *tx)
                .await?;
            if promoted.rows_affected() != 1 || demoted.rows_affected() != 1 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), to.as_uuid(), OwnershipTransferred { from }), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    // ---- invitations ---------------------------------------------------------------------

    pub async fn create_invitation(
        &self,
        invitation: &NewInvitation,
        email: &NewEmail,
        now: DateTime<Utc>,
    ) -> Result<InvitationId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id = InvitationId::new();
            sqlx::query(
                "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(invitation.org_id)
            .bind(invitation.email.as_str())
            .bind(invitation.role.as_str())
            .bind(&invitation.token_hash)
            .bind(invitation.invited_by)
            .bind(now)
            .bind(invitation.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_email!(tx, email, now);
            append_event!(tx, NewEvent::new(Some(invitation.org_id), id.as_uuid(), InvitationCreated { role: invitation.role }), now)?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Invitations not yet accepted or revoked (expired ones included, marked by date).
    pub async fn pending_invitations(&self, org: OrgId) -> Result<Vec<Invitation>, StoreError> {
        let sql = format!(
            "{INVITATION_SELECT} WHERE i.org_id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL ORDER BY i.created_at DESC"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Invitation>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn find_invitation(&self, token_hash: &str) -> Result<Invitation, StoreError> {
        let sql = format!("{INVITATION_SELECT} WHERE i.token_hash = $1");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Invitation>(sqlx::AssertSqlSafe(sql)).bind(token_hash).fetch_one(pool).await)?,
        )
    }

    pub async fn revoke_invitation(
        &self,
        org: OrgId,
        id: InvitationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL")
                .bind(org)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), InvitationRevoked {}), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Uses an open invitation: marks it accepted and adds the member (creating the user
    /// first for a new sign-up), all or nothing. `NotFound` when the invitation is expired,
    /// used, revoked or unknown.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        acceptor: Acceptor<'_>,
        now: DateTime<Utc>,
    ) -> Result<(UserId, OrgId), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let accepted: Option<(OrgId, String)> = sqlx::query_as(
                "UPDATE invitations SET accepted_at = $2 \
                 WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
                 RETURNING org_id, role",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let (org_id, role) = accepted.ok_or(StoreError::NotFound)?;
            let role = RoleColumn::try_from(role)?.0;
            let user_id = match acceptor {
                Acceptor::Existing(id) => id,
                Acceptor::New(user) => insert_user!(tx, user, now),
            };
            insert_membership!(tx, org_id, user_id, role, now);
            tx.commit().await?;
            Ok((user_id, org_id))
        })
    }

    // ---- sessions ------------------------------------------------------------------------

    pub async fn create_session(
        &self,
        session: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<SessionId, StoreError> {
        let id = SessionId::new();
        on_db!(self, pool => sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, org_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(&session.token_hash)
        .bind(session.user_id)
        .bind(session.org_id)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(id)
    }

    /// The unexpired session with this token hash.
    pub async fn find_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, SessionRecord>(
            "SELECT id, user_id, org_id, csrf_token, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn switch_session_org(
        &self,
        session: SessionId,
        org: OrgId,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE sessions SET org_id = $2 WHERE id = $1")
            .bind(session)
            .bind(org)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn delete_session(&self, session: SessionId) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("DELETE FROM sessions WHERE id = $1").bind(session).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    // ---- API keys ------------------------------------------------------------------------

    pub async fn create_api_key(
        &self,
        key: &NewApiKey,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id = ApiKeyId::new();
            sqlx::query(
                "INSERT INTO api_keys (id, org_id, name, prefix, token_hash, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(key.org_id)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&key.token_hash)
            .bind(key.created_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            append_event!(tx, NewEvent::new(Some(key.org_id), id.as_uuid(), ApiKeyCreated { name: key.name.clone() }), now)?;
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id DESC"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, ApiKey>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await)?,
        )
    }

    pub async fn revoke_api_key(
        &self,
        org: OrgId,
        id: ApiKeyId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL")
                .bind(org)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, NewEvent::new(Some(org), id.as_uuid(), ApiKeyRevoked {}), now)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The live (unrevoked) key with this hash, noting its use at most once a minute.
    pub async fn authenticate_api_key(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKey>, StoreError> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL"
        );
        let key = on_db!(self, pool => sqlx::query_as::<_, ApiKey>(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?;
        if let Some(key) = &key {
            let stale = key
                .last_used_at
                .is_none_or(|t| now - t > chrono::Duration::minutes(1));
            if stale {
                on_db!(self, pool => sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(key.id)
                    .bind(now)
                    .execute(pool)
                    .await.map(|r| r.rows_affected()))?;
            }
        }
        Ok(key)
    }
}

macro_rules! insert_user_token {
    ($tx:expr, $user:expr, $purpose:expr, $address:expr, $token_hash:expr, $expires_at:expr, $now:expr) => {{
        let purpose: TokenPurpose = $purpose;
        sqlx::query(
            "INSERT INTO user_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($token_hash)
        .bind($user)
        .bind(purpose.as_str())
        .bind($address)
        .bind($now)
        .bind($expires_at)
        .execute(&mut *$tx)
        .await?;
    }};
}
use insert_user_token;

/// Marks every unused token of the user for `$purpose` used.
/// Makes `$address` the user's verified sign-in address (a link sent to it was followed)
/// and voids their other pending address changes.
macro_rules! set_verified_email {
    ($tx:expr, $user:expr, $address:expr, $now:expr) => {{
        sqlx::query(
            "UPDATE users SET email = $2, email_verified_at = $3, updated_at = $3 WHERE id = $1",
        )
        .bind($user)
        .bind($address)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        void_user_tokens!($tx, $user, TokenPurpose::ChangeEmail, $now);
    }};
}
use set_verified_email;

macro_rules! void_user_tokens {
    ($tx:expr, $user:expr, $purpose:expr, $now:expr) => {{
        let purpose: TokenPurpose = $purpose;
        sqlx::query(
            "UPDATE user_tokens SET used_at = $2 WHERE user_id = $1 AND purpose = $3 AND used_at IS NULL",
        )
        .bind($user)
        .bind($now)
        .bind(purpose.as_str())
        .execute(&mut *$tx)
        .await?;
    }};
}
use void_user_tokens;

/// Marks a token used if it is unused and unexpired; evaluates to `(UserId, address)` or
/// returns `NotFound` from the enclosing function.
macro_rules! consume_user_token {
    ($tx:expr, $token_hash:expr, $purpose:expr, $now:expr) => {{
        let purpose: TokenPurpose = $purpose;
        let row: Option<(UserId, String)> = sqlx::query_as(
            "UPDATE user_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING user_id, email",
        )
        .bind($token_hash)
        .bind(purpose.as_str())
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        row.ok_or(StoreError::NotFound)?
    }};
}
use consume_user_token;
