//! KalTalk's storage: one `Store` over SQLite (the embedded default) or PostgreSQL, the
//! same SQL on both, migrations per backend, and the event log and job queue that every
//! background reaction reads.
//!
//! Why an enum of native pools instead of a trait with two implementations: nearly every
//! query is the same text on both backends, so a trait would mean writing each method
//! twice. `on_db!` type-checks one body against each pool; the few dialect differences
//! (the job claim) are explicit branches inside this crate and nowhere else.

mod accounts;
pub mod ai;
pub mod contacts;
pub mod conversations;
pub mod devices;
mod dispatch;
pub mod email;
mod error;
mod events;
pub mod hours;
mod housekeeping;
pub mod idempotency;
pub mod inboxes;
pub mod intake;
mod jobs;
pub mod knowledge;
pub mod labels;
mod mentions;
pub mod messages;
pub mod notifications;
mod outbox;
pub mod privacy;
pub mod push;
pub mod routing;
pub mod setup;
pub mod teams;
pub mod testing;
pub mod waiting;
pub mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{Mutex, MutexGuard};

pub use accounts::{
    Acceptor, ApiKey, EmailChange, Invitation, LinkToken, Member, NewApiKey, NewInvitation,
    NewSession, NewUser, Organization, SessionRecord, TokenPurpose, User,
};
pub use error::{Conflict, StoreError};
pub use events::{Event, NewEvent, Written};
pub use housekeeping::Purged;
pub use jobs::{Job, JobLane, JobState, NewJob, backoff};
pub use outbox::{Delivery, EmailState, NewEmail, OutboundEmail};

/// Runs `$body` with `$pool` bound to whichever native pool this store has. The body is
/// compiled once per backend, so the same SQL is type-checked against both drivers.
macro_rules! on_db {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// Opens a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock
/// is taken at the start, waiting out the busy timeout if another writer holds it. A
/// deferred transaction that reads before it writes would instead fail at once with
/// SQLITE_BUSY_SNAPSHOT whenever another writer (a job worker, the webhook dispatcher)
/// committed in between: the busy timeout cannot help there.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// Whose turn it is to write, on SQLite (see [`Store::write_turn`]).
    writer: Arc<Mutex<()>>,
}

impl Store {
    /// Opens the database at `url` (`sqlite://path` or `postgres://…`), creating an SQLite
    /// file and its folder if missing. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            return Ok(Self {
                db: Db::Postgres(pool),
                writer: Arc::default(),
            });
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::InvalidUrl(
                "the database URL must start with sqlite:// or postgres://".into(),
            ));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk (the WAL fsynced) before it returns. With NORMAL a
            // power cut can lose the last commits, and the SMTP listener answers 250 (and
            // the widget acknowledges) only after the commit: what we said we took must
            // survive the machine, not only the process.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows are overwritten with zeros, not left in free pages: deleting a
            // contact or an organization removes their words from the file itself.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let folder = Path::new(options.get_filename()).parent();
        if let Some(parent) = folder.filter(|p| !in_memory && !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(StoreError::Io)?;
        }
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists once per connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self {
            db: Db::Sqlite(pool),
            writer: Arc::default(),
        })
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Waits for this process's turn to write, on SQLite; `None` (no wait) on PostgreSQL.
    ///
    /// SQLite lets one transaction write at a time, and a connection that finds the lock
    /// taken sleeps in its busy handler for 1, 2, 5, 10… ms instead of being woken when
    /// the lock is free: under a steady stream of visitor messages the lock stood idle
    /// while writers slept. Queueing the hot write paths here (the chat's writes, the job
    /// queue's, the webhook dispatcher's) hands the lock over at once, in arrival order.
    /// SQLite's own locking stays the authority; writers that do not queue (settings,
    /// accounts, knowledge indexing) still wait in the busy handler.
    pub(crate) async fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match self.db {
            Db::Sqlite(_) => Some(self.writer.lock().await),
            Db::Postgres(_) => None,
        }
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README promises that an email answered 250 is never lost, through a power cut
    /// too: every SQLite connection syncs the write-ahead log at each commit.
    #[tokio::test]
    async fn sqlite_commits_reach_the_disk_before_they_return() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("durable.db").display());
        let store = Store::connect(&url).await.expect("connect");
        let Db::Sqlite(pool) = &store.db else {
            panic!("an SQLite store");
        };
        let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .expect("pragma");
        assert_eq!(synchronous, 2, "PRAGMA synchronous = FULL");
    }
}
