//! The job queue: durable reactions (email delivery now; AI turns, webhooks, crawls later)
//! claimed with a lease, retried with exponential backoff, dead-lettered after
//! `max_attempts`. A worker that dies mid-job loses its lease and the job is claimed again.

use chrono::{DateTime, Duration, Utc};
use kaltalk_core::JobId;
use kaltalk_core::job::{JobPayload, JobPayloadError};
use serde_json::Value;
use sqlx::types::Json;

use crate::{BeginWrite, Db, Store, StoreError, on_db};

pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: Value,
    pub max_attempts: i32,
    /// Earliest time to run; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
}

impl NewJob {
    /// A job of `payload`'s kind, run now, with the default attempts.
    pub fn new<P: JobPayload>(payload: &P) -> Self {
        Self {
            kind: P::KIND,
            // A struct of plain fields always serialises.
            payload: serde_json::to_value(payload).unwrap_or(Value::Null),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

impl TryFrom<String> for JobState {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "queued" => Ok(JobState::Queued),
            "running" => Ok(JobState::Running),
            "done" => Ok(JobState::Done),
            "dead" => Ok(JobState::Dead),
            other => Err(StoreError::Corrupt(format!("job state {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: Json<Value>,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Job {
    /// The payload as `P`; an error when the job is of another kind or its payload does
    /// not fit (the worker fails the job with it rather than guessing).
    pub fn payload<P: JobPayload>(&self) -> Result<P, JobPayloadError> {
        kaltalk_core::job::read(&self.kind, &self.payload.0)
    }
}

const JOB_COLUMNS: &str =
    "id, kind, payload, state, attempts, max_attempts, run_at, locked_by, locked_until, last_error";

/// Inserts a `NewJob` in the open transaction `$tx`; evaluates to a `Result<JobId, _>`.
macro_rules! insert_job {
    ($tx:expr, $job:expr, $now:expr) => {{
        let job: $crate::jobs::NewJob = $job;
        let id = kaltalk_core::JobId::new();
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $6)",
        )
        .bind(id)
        .bind(job.kind)
        .bind(sqlx::types::Json(job.payload))
        .bind(job.max_attempts)
        .bind(job.run_at.unwrap_or($now))
        .bind($now)
        .execute(&mut *$tx)
        .await
        .map(|_| id)
    }};
}
pub(crate) use insert_job;

/// The wait before retry number `attempts + 1`: 5 s, 10 s, 20 s … capped at one hour.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let seconds = 5i64.saturating_mul(1i64 << exponent);
    Duration::seconds(seconds.min(3600))
}

/// Which jobs a worker takes. Knowledge jobs (indexing, re-embedding) can run for
/// minutes; keeping them in their own lane means they never hold up the conversation
/// jobs (the bot's turn, email) behind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobLane {
    Any,
    /// `knowledge.*` jobs only.
    Knowledge,
    /// Everything but `knowledge.*` jobs.
    Conversations,
}

impl JobLane {
    /// The `kind LIKE 'knowledge.%'` value the lane wants; `None` for any.
    fn knowledge(self) -> Option<bool> {
        match self {
            JobLane::Any => None,
            JobLane::Knowledge => Some(true),
            JobLane::Conversations => Some(false),
        }
    }
}

impl Store {
    pub async fn enqueue_job(&self, job: NewJob, now: DateTime<Utc>) -> Result<JobId, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id = insert_job!(tx, job, now)?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Claims the next due job of any kind for `worker` until `now + lease`. A job whose
    /// previous holder's lease ran out counts as due again; one that has used all its
    /// attempts that way is dead-lettered instead.
    pub async fn claim_job(
        &self,
        worker: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError> {
        self.claim_job_in(worker, lease, now, JobLane::Any).await
    }

    /// Like [`Store::claim_job`], only among the jobs of `lane`.
    pub async fn claim_job_in(
        &self,
        worker: &str,
        lease: Duration,
        now: DateTime<Utc>,
        lane: JobLane,
    ) -> Result<Option<Job>, StoreError> {
        // Job writes queue with the chat's (see `write_turn`): in SQLite's busy handler a
        // worker lost the lock for seconds to a steady stream of visitor messages.
        let _turn = self.write_turn().await;
        on_db!(self, pool => sqlx::query(
            "UPDATE jobs SET state = 'dead', locked_by = NULL, locked_until = NULL, updated_at = $1, \
             last_error = COALESCE(last_error, 'the worker stopped before finishing the last attempt') \
             WHERE state = 'running' AND locked_until <= $1 AND attempts >= max_attempts",
        )
        .bind(now)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;

        // SQLite's single writer makes the UPDATE … WHERE id = (SELECT …) atomic; PostgreSQL
        // needs the row lock, and SKIP LOCKED lets concurrent workers pass each other.
        let pick = "SELECT id FROM jobs \
             WHERE ((state = 'queued' AND run_at <= $3) \
                OR (state = 'running' AND locked_until <= $3 AND attempts < max_attempts)) \
               AND ($4 IS NULL OR (kind LIKE 'knowledge.%') = $4) \
             ORDER BY run_at, id LIMIT 1";
        let lock = match self.db {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, \
             locked_until = $2, updated_at = $3 \
             WHERE id = ({pick}{lock}) RETURNING {JOB_COLUMNS}"
        );
        let job = on_db!(self, pool => sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(now + lease)
            .bind(now)
            .bind(lane.knowledge())
            .fetch_optional(pool)
            .await)?;
        Ok(job)
    }

    /// Extends the lease `worker` holds on a running job, so a long job (indexing a big
    /// site) is not claimed again by another worker while it is still being done.
    /// Returns false when the worker no longer holds it.
    pub async fn renew_job_lease(
        &self,
        id: JobId,
        worker: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let renewed = on_db!(self, pool => sqlx::query(
            "UPDATE jobs SET locked_until = $3 WHERE id = $1 AND locked_by = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(until)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(renewed == 1)
    }

    /// Marks a job done, if `worker` still holds it. Returns whether it did.
    pub async fn complete_job(
        &self,
        id: JobId,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_db!(self, pool => sqlx::query(
            "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, updated_at = $3 \
             WHERE id = $1 AND locked_by = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(now)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Records a failed attempt: queued again after a backoff, or dead when attempts are
    /// used up. Returns the new state.
    pub async fn fail_job(
        &self,
        job: &Job,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<JobState, StoreError> {
        let (state, run_at) = if job.attempts >= job.max_attempts {
            (JobState::Dead, job.run_at)
        } else {
            (JobState::Queued, now + backoff(job.attempts))
        };
        let state_text = if state == JobState::Dead {
            "dead"
        } else {
            "queued"
        };
        let _turn = self.write_turn().await;
        on_db!(self, pool => sqlx::query(
            "UPDATE jobs SET state = $3, run_at = $4, last_error = $5, locked_by = NULL, \
             locked_until = NULL, updated_at = $6 \
             WHERE id = $1 AND locked_by = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(worker)
        .bind(state_text)
        .bind(run_at)
        .bind(error)
        .bind(now)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(state)
    }

    pub async fn get_job(&self, id: JobId) -> Result<Job, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let job = on_db!(self, pool => sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(pool)
            .await)?;
        Ok(job)
    }

    /// Jobs by state, newest first, for the dashboard and tests.
    pub async fn list_jobs(&self, state: JobState, limit: i64) -> Result<Vec<Job>, StoreError> {
        let state = match state {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        };
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY id DESC LIMIT $2");
        let jobs = on_db!(self, pool => sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::seconds(5));
        assert_eq!(backoff(2), Duration::seconds(10));
        assert_eq!(backoff(3), Duration::seconds(20));
        assert_eq!(backoff(30), Duration::hours(1));
    }
}
