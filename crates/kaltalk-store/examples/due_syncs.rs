//! What one tick of the knowledge re-sync scheduler costs the database: with many
//! scheduled web sources and none due (the usual tick, every 30 s), and with a full
//! batch due (the claim, job and event per source).
//!
//! `cargo run --release -p kaltalk-store --example due_syncs -- [SOURCES] [DATABASE_URL]`
//! (SQLite in a temporary folder unless a fresh, empty PostgreSQL database URL is given).

// The report on standard output is this tool's interface.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kaltalk_core::{Clock, EmailAddress, OrgName, PersonName, SystemClock};
use kaltalk_store::knowledge::SyncInterval;
use kaltalk_store::{NewUser, Store};

const TICKS: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let sources: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let url = args
        .next()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let t0 = SystemClock.now();
    let user = NewUser {
        name: PersonName::parse("name", "Ada Lovelace")?,
        email: EmailAddress::parse("email", "ada@bench.test")?,
        password_hash: "not used".into(),
        email_verified: true,
    };
    let (_, org) = store
        .sign_up(&user, &OrgName::parse("org", "Bench")?, None, t0)
        .await?;
    let started = Instant::now();
    for n in 0..sources {
        // Spread over a day, as sources added over time would be.
        let added = t0 + chrono::Duration::seconds((n * 86_400 / sources.max(1)) as i64);
        let id = store
            .add_web_source(
                org.id,
                "url",
                "Page",
                &format!("https://bench.test/{n}"),
                Some(SyncInterval::Daily),
                added,
            )
            .await?;
        store
            .set_source_state(org.id, id, "ready", None, added)
            .await?;
    }
    println!(
        "{sources} scheduled web sources added in {:.1} s ({:?})",
        started.elapsed().as_secs_f64(),
        store.backend()
    );

    // Before any is due: the tick finds nothing.
    let idle = time_ticks(&store, |_| t0 + chrono::Duration::hours(1)).await?;
    println!("tick, none due:        {}", summary(&idle.0));
    // A day later each tick finds the next batch due (up to 100 sources).
    let busy = time_ticks(&store, |_| t0 + chrono::Duration::hours(48)).await?;
    println!(
        "tick, a batch due:     {} ({} sources queued per tick on average)",
        summary(&busy.0),
        busy.1 / TICKS
    );
    Ok(())
}

async fn time_ticks(
    store: &Store,
    at: impl Fn(usize) -> DateTime<Utc>,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut times = Vec::with_capacity(TICKS);
    let mut queued = 0;
    for tick in 0..TICKS {
        let started = Instant::now();
        queued += store.queue_due_syncs(at(tick)).await?.len();
        times.push(started.elapsed());
    }
    Ok((times, queued))
}

fn summary(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.2} ms, p95 {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3
    )
}
