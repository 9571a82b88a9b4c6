//! Outbound email. Every email is first a row here, written in the same transaction as the
//! action that caused it (an invitation, a reset request). With SMTP configured a job
//! delivers it and then clears its body; without, it stays as the local outbox: an
//! organization's mail for its owners in the dashboard, a person's own account mail
//! (verification, reset, address change) for the operator alone (`kaltalk admin outbox`).

use chrono::{DateTime, Utc};
use kaltalk_core::{EmailId, OrgId};

use crate::{BeginWrite, Store, StoreError, on_db};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queue a delivery job (SMTP is configured).
    Smtp,
    /// Keep it in the local outbox only.
    KeepInOutbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailState {
    Kept,
    Queued,
    Sent,
    Failed,
}

impl EmailState {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailState::Kept => "kept",
            EmailState::Queued => "queued",
            EmailState::Sent => "sent",
            EmailState::Failed => "failed",
        }
    }
}

impl TryFrom<String> for EmailState {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "kept" => Ok(EmailState::Kept),
            "queued" => Ok(EmailState::Queued),
            "sent" => Ok(EmailState::Sent),
            "failed" => Ok(EmailState::Failed),
            other => Err(StoreError::Corrupt(format!("email state {other:?}"))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewEmail {
    /// The organization whose owners may read it in the outbox; `None` for a personal
    /// email (to a person about their own account), which no organization may read: a
    /// reset link in an owner's outbox would hand them the account.
    pub org_id: Option<OrgId>,
    pub to: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// What it is (`invitation`, `password_reset`, …), for the outbox list.
    pub kind: &'static str,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboundEmail {
    pub id: EmailId,
    pub org_id: Option<OrgId>,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub state: EmailState,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Inserts `$email` (a `NewEmail`) in the open transaction `$tx`, with its delivery job
/// when it goes out by SMTP. Evaluates to the new `EmailId`.
macro_rules! insert_email {
    ($tx:expr, $email:expr, $now:expr) => {{
        let email: &$crate::outbox::NewEmail = $email;
        let id = kaltalk_core::EmailId::new();
        let state = match email.delivery {
            $crate::outbox::Delivery::Smtp => $crate::outbox::EmailState::Queued,
            $crate::outbox::Delivery::KeepInOutbox => $crate::outbox::EmailState::Kept,
        };
        sqlx::query(
            "INSERT INTO outbound_emails \
             (id, org_id, to_address, subject, text_body, html_body, kind, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(email.org_id)
        .bind(&email.to)
        .bind(&email.subject)
        .bind(&email.text_body)
        .bind(&email.html_body)
        .bind(email.kind)
        .bind(state.as_str())
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        if email.delivery == $crate::outbox::Delivery::Smtp {
            let job = $crate::jobs::NewJob::new(&kaltalk_core::job::DeliverEmail { email_id: id });
            $crate::jobs::insert_job!($tx, job, $now)?;
        }
        $crate::events::append_event!(
            $tx,
            $crate::events::NewEvent::new(
                email.org_id,
                id.as_uuid(),
                kaltalk_core::event::EmailQueued {
                    kind: email.kind.to_owned()
                },
            ),
            $now
        )?;
        id
    }};
}
pub(crate) use insert_email;

const EMAIL_COLUMNS: &str =
    "id, org_id, to_address, subject, text_body, html_body, kind, state, created_at, sent_at";

impl Store {
    /// Stores an email on its own (for emails not tied to another change).
    pub async fn queue_email(
        &self,
        email: &NewEmail,
        now: DateTime<Utc>,
    ) -> Result<EmailId, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id = insert_email!(tx, email, now);
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The organization's outbox, newest first.
    pub async fn list_emails(
        &self,
        org_id: OrgId,
        limit: i64,
    ) -> Result<Vec<OutboundEmail>, StoreError> {
        let sql = format!(
            "SELECT {EMAIL_COLUMNS} FROM outbound_emails WHERE org_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let emails = on_db!(self, pool => sqlx::query_as::<_, OutboundEmail>(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(emails)
    }

    /// Personal emails (no organization's), newest first, for the operator; only those to
    /// `to` when given.
    pub async fn list_personal_emails(
        &self,
        to: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboundEmail>, StoreError> {
        let sql = format!(
            "SELECT {EMAIL_COLUMNS} FROM outbound_emails \
             WHERE org_id IS NULL AND ($1 IS NULL OR LOWER(to_address) = LOWER($1)) \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let emails = on_db!(self, pool => sqlx::query_as::<_, OutboundEmail>(sqlx::AssertSqlSafe(sql))
            .bind(to)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(emails)
    }

    pub async fn get_email(&self, org_id: OrgId, id: EmailId) -> Result<OutboundEmail, StoreError> {
        let sql =
            format!("SELECT {EMAIL_COLUMNS} FROM outbound_emails WHERE org_id = $1 AND id = $2");
        let email = on_db!(self, pool => sqlx::query_as::<_, OutboundEmail>(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(id)
            .fetch_one(pool)
            .await)?;
        Ok(email)
    }

    /// For the delivery job, which acts for no organization in particular.
    pub async fn get_email_for_delivery(&self, id: EmailId) -> Result<OutboundEmail, StoreError> {
        let sql = format!("SELECT {EMAIL_COLUMNS} FROM outbound_emails WHERE id = $1");
        let email = on_db!(self, pool => sqlx::query_as::<_, OutboundEmail>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(pool)
            .await)?;
        Ok(email)
    }

    /// Marks an email delivered and drops its bodies: once the relay has it, the links in
    /// it should not also sit readable in our database.
    pub async fn mark_email_sent(&self, id: EmailId, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query(
            "UPDATE outbound_emails SET state = 'sent', sent_at = $2, text_body = '', html_body = '' \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn mark_email_failed(&self, id: EmailId) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("UPDATE outbound_emails SET state = 'failed' WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
