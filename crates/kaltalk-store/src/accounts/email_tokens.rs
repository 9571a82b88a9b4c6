//! Single-use email tokens: verifying an address and resetting a password.

use super::*;

impl Store {
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
}
