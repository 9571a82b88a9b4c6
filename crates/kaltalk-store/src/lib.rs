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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};
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
        // A write runs to its end: the statement bound is for reads (see
        // `Store::connect_with_bound`). One round trip, as a plain BEGIN.
        self.begin_with("BEGIN; SET LOCAL statement_timeout = 0")
            .await
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
    /// The longest one read may run, in milliseconds (0: unbounded), read by every SQLite
    /// connection's progress handler and lifted while migrations run. Unused on
    /// PostgreSQL, whose connections carry the bound as their `statement_timeout`.
    bound_ms: Arc<AtomicU64>,
    /// Writers holding their turn now, on SQLite: while one does, no statement is
    /// stopped (a write runs to its end; see [`Store::connect_with_bound`]).
    writing: Arc<AtomicUsize>,
}

/// A writer's turn on SQLite (see [`Store::write_turn`]): while it is held, statements run
/// past the bound.
pub(crate) struct WriteTurn<'a> {
    _turn: MutexGuard<'a, ()>,
    writing: &'a AtomicUsize,
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        self.writing.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long one statement may run unless the operator says otherwise: far beyond any
/// query of a request path at a million messages, short enough that a runaway one cannot
/// hold a core (and everything queued behind it) for long.
pub const DEFAULT_STATEMENT_BOUND: Duration = Duration::from_secs(10);

/// On SQLite, a pause this long between two calls of a connection's progress handler
/// means a new statement began (the handler runs every few thousand steps of a running
/// statement, microseconds apart).
const SQLITE_STATEMENT_GAP: Duration = Duration::from_millis(50);

impl Store {
    /// Opens the database at `url` (`sqlite://path` or `postgres://…`), creating an SQLite
    /// file and its folder if missing, with the default statement bound. Does not migrate:
    /// call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_bound(url, Some(DEFAULT_STATEMENT_BOUND)).await
    }

    /// Like [`Store::connect`], each read (a page, a list, a search) stopped after
    /// `bound` (`None`: never): it then fails with [`StoreError::Timeout`] and leaves
    /// nothing running. Writes run to their end, short as they are, so that deleting a
    /// large organization finishes. On PostgreSQL the bound is the server's own
    /// `statement_timeout`, which a write transaction sets to 0 for itself; on SQLite a
    /// progress handler interrupts a statement that ran longer (measured from the
    /// handler's first call after a pause, see `SQLITE_STATEMENT_GAP`) unless a writer
    /// holds its turn ([`Store::write_turn`]: then a read overlapping it may run until
    /// that write is done).
    pub async fn connect_with_bound(
        url: &str,
        bound: Option<Duration>,
    ) -> Result<Self, StoreError> {
        let bound_ms = bound.map_or(0, |b| {
            u64::try_from(b.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?
                .options([("statement_timeout", bound_ms.to_string())]);
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            return Ok(Self {
                db: Db::Postgres(pool),
                writer: Arc::default(),
                bound_ms: Arc::new(AtomicU64::new(bound_ms)),
                writing: Arc::default(),
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
        let bound = Arc::new(AtomicU64::new(bound_ms));
        let writing = Arc::new(AtomicUsize::new(0));
        let (handler_bound, handler_writing) = (bound.clone(), writing.clone());
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists once per connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                let (bound, writing) = (handler_bound.clone(), handler_writing.clone());
                Box::pin(async move {
                    let mut handle = conn.lock_handle().await?;
                    let mut last = Instant::now();
                    let mut started = last;
                    handle.set_progress_handler(10_000, move || {
                        let now = Instant::now();
                        if now.duration_since(last) > SQLITE_STATEMENT_GAP {
                            started = now;
                        }
                        last = now;
                        let ms = bound.load(Ordering::Relaxed);
                        // false interrupts the statement (SQLITE_INTERRUPT).
                        ms == 0
                            || writing.load(Ordering::Relaxed) > 0
                            || now.duration_since(started) < Duration::from_millis(ms)
                    });
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            db: Db::Sqlite(pool),
            writer: Arc::default(),
            bound_ms: bound,
            writing,
        })
    }

    /// Applies the backend's pending migrations, unbounded: one may rewrite or index a
    /// table of millions of rows.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(pool) => {
                let bound = self.bound_ms.swap(0, Ordering::Relaxed);
                let migrated = sqlx::migrate!("./migrations/sqlite").run(pool).await;
                self.bound_ms.store(bound, Ordering::Relaxed);
                migrated?;
            }
            Db::Postgres(pool) => {
                // A connection of its own, without the pool's statement_timeout.
                let options = (*pool.connect_options())
                    .clone()
                    .options([("statement_timeout", "0")]);
                let mut conn = sqlx::PgConnection::connect_with(&options).await?;
                let migrated = sqlx::migrate!("./migrations/postgres").run(&mut conn).await;
                conn.close().await?;
                migrated?;
            }
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
    pub(crate) async fn write_turn(&self) -> Option<WriteTurn<'_>> {
        match self.db {
            Db::Sqlite(_) => {
                let turn = self.writer.lock().await;
                self.writing.fetch_add(1, Ordering::Relaxed);
                Some(WriteTurn {
                    _turn: turn,
                    writing: &self.writing,
                })
            }
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
