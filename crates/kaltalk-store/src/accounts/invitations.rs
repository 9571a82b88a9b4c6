//! Invitations into an organization, and accepting one.

use super::*;

impl Store {
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
}
