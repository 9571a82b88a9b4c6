//! No runaway work: a read past the store's bound is stopped on either backend, fails
//! as `Timeout` (the server answers 503), and leaves nothing running: the next statement
//! runs at once, and PostgreSQL has no trace of it. A write runs to its end.

use std::time::{Duration, Instant};

use kaltalk_store::testing::{fresh_postgres_database, run_a_long_write, run_a_runaway_statement};
use kaltalk_store::{Store, StoreError};
use sqlx::Connection;

const BOUND: Duration = Duration::from_millis(300);

async fn stopped_at_its_bound(backend: &str, store: &Store) {
    let started = Instant::now();
    let outcome = run_a_runaway_statement(store).await;
    let took = started.elapsed();
    assert!(
        matches!(outcome, Err(StoreError::Timeout)),
        "{backend}: {outcome:?}"
    );
    assert!(took >= BOUND, "{backend}: not before its bound ({took:?})");
    assert!(
        took < Duration::from_secs(5),
        "{backend}: stopped near its bound, not at the end ({took:?})"
    );
    // Nothing left holding a connection: an ordinary read answers.
    let org = kaltalk_core::OrgId::new();
    assert!(
        store
            .list_teams(org)
            .await
            .expect("an ordinary read")
            .is_empty(),
        "{backend}"
    );
    // And a second runaway is stopped the same way (the bound is per statement).
    assert!(
        matches!(
            run_a_runaway_statement(store).await,
            Err(StoreError::Timeout)
        ),
        "{backend}"
    );
    // A write runs to its end however long past the bound (deleting a large
    // organization must finish).
    let started = Instant::now();
    let counted = run_a_long_write(store, 3_000_000)
        .await
        .expect("a long write");
    assert_eq!(counted, 3_000_000, "{backend}");
    assert!(
        started.elapsed() > BOUND,
        "{backend}: the write took {:?}, not longer than the bound: count higher",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_statement_past_its_bound_is_stopped_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bound.db").display());
    let store = Store::connect_with_bound(&url, Some(BOUND))
        .await
        .expect("connect");
    // Migrations run unbounded, whatever the bound.
    store.migrate().await.expect("migrate");
    stopped_at_its_bound("sqlite", &store).await;

    let Ok(admin_url) = std::env::var("KALTALK_TEST_DATABASE_URL") else {
        return;
    };
    let url = fresh_postgres_database(&admin_url)
        .await
        .expect("fresh database");
    let store = Store::connect_with_bound(&url, Some(BOUND))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    stopped_at_its_bound("postgres", &store).await;
    // The server itself has no such statement still running.
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("admin");
    let running: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' \
         AND query LIKE 'WITH RECURSIVE n(i)%' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .expect("activity");
    assert_eq!(running.0, 0, "postgres: nothing of it runs on");
}
