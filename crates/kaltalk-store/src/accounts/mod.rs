//! Accounts: users, organizations, memberships, sessions, single-use email tokens,
//! invitations and API keys. The types and the macros the parts share are here; each
//! part's writes are in its own file (the macros are in scope for them by order).

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

/// Marks every unused token of the user for `$purpose` used.
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

// The parts come after the macros, so the macros are in their scope.
mod api_keys;
mod email_tokens;
mod invitations;
mod organizations;
mod sessions;
mod users;
