//! Organizations and their members: roles, removal and ownership.

use super::*;

impl Store {
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
}
