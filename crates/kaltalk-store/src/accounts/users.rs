//! Users: signing up, names, sign-in addresses and passwords.

use super::*;

impl Store {
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
}
