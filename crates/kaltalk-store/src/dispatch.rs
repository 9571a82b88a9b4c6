//! A reader's place in the event log, for the readers that turn events into work of
//! their own (webhook deliveries, notifications). Each keeps its cursor in the
//! `webhook_dispatch_cursor` table under its name, claimed for the length of a pass so
//! readers in several processes take turns, and moved only past events old enough that
//! no transaction still open can commit one numbered before them: younger ones are read
//! again by the next pass, so what a reader makes of an event must be deduplicated (a
//! unique key and `ON CONFLICT DO NOTHING`).

use uuid::Uuid;

use crate::events::Event;
use kaltalk_core::EventId;

/// Events this young (by their UUIDv7 time) may still have older-numbered neighbours in
/// transactions that have not committed yet, so a cursor stays behind them.
pub(crate) const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Claims the cursor `$name` inside the write transaction `$tx` and evaluates to the last
/// event id it handled. A write first: on SQLite it takes the write lock now (a
/// transaction that reads first fails if another connection writes meanwhile); on
/// PostgreSQL the row lock makes readers in several processes take turns.
macro_rules! claim_cursor {
    ($tx:expr, $name:expr) => {{
        let name: &str = $name;
        sqlx::query(
            "INSERT INTO webhook_dispatch_cursor (name, last_event_id) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_event_id = webhook_dispatch_cursor.last_event_id",
        )
        .bind(name)
        .bind(uuid::Uuid::nil())
        .execute(&mut *$tx)
        .await?;
        let sql = format!(
            "SELECT last_event_id FROM webhook_dispatch_cursor WHERE name = $1{}",
            $crate::routing::for_update(&$tx)
        );
        let (cursor,): (uuid::Uuid,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_one(&mut *$tx)
            .await?;
        cursor
    }};
}
pub(crate) use claim_cursor;

/// The events after `$after`, oldest first, at most `$batch` of them.
macro_rules! events_after {
    ($tx:expr, $after:expr, $batch:expr) => {{
        let (after, batch): (uuid::Uuid, i64) = ($after, $batch);
        sqlx::query_as::<_, $crate::events::Event>(
            "SELECT id, org_id, kind, subject_id, conversation_id, payload, created_at FROM events \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(batch)
        .fetch_all(&mut *$tx)
        .await?
    }};
}
pub(crate) use events_after;

/// Moves the cursor `$name` to the event id `$to`.
macro_rules! advance_cursor {
    ($tx:expr, $name:expr, $to:expr) => {{
        let (name, to): (&str, kaltalk_core::EventId) = ($name, $to);
        sqlx::query(
            "INSERT INTO webhook_dispatch_cursor (name, last_event_id) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_event_id = excluded.last_event_id",
        )
        .bind(name)
        .bind(to)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use advance_cursor;

/// Where a cursor may move after a pass over `events`: the last of those before the
/// first that has not settled (none when the first has not).
pub(crate) fn settled_prefix(events: &[Event]) -> Option<EventId> {
    events
        .iter()
        .take_while(|event| settled(event.id))
        .last()
        .map(|event| event.id)
}

/// Whether the event's UUIDv7 time is far enough in the past that no transaction still
/// open can commit an event numbered before it.
pub(crate) fn settled(id: EventId) -> bool {
    let Some((secs, nanos)) = id.as_uuid().get_timestamp().map(|t| t.to_unix()) else {
        return true;
    };
    let made = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
    std::time::SystemTime::now()
        .duration_since(made)
        .is_ok_and(|age| age >= SETTLE)
}

/// The smallest UUIDv7 of `back` before `id`'s time: where a scan for events made since
/// then can start.
pub(crate) fn v7_floor(id: Uuid, back: std::time::Duration) -> Uuid {
    let Some((secs, nanos)) = id.get_timestamp().map(|t| t.to_unix()) else {
        return Uuid::nil();
    };
    let millis =
        (u128::from(secs) * 1000 + u128::from(nanos) / 1_000_000).saturating_sub(back.as_millis());
    let millis = u64::try_from(millis).unwrap_or(0);
    let mut bytes = [0u8; 16];
    // A UUIDv7 starts with its 48-bit millisecond timestamp, big-endian.
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    // Version 7 and the RFC variant with every random bit zero: still the smallest
    // UUIDv7 of that millisecond.
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v7_floor_sorts_before_every_id_made_since() {
        let id = Uuid::now_v7();
        let floor = v7_floor(id, SETTLE);
        assert!(floor < id);
        assert!(floor > Uuid::nil());
        let (secs, _) = floor
            .get_timestamp()
            .map(|t| t.to_unix())
            .unwrap_or_default();
        let (id_secs, _) = id.get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert!((id_secs - secs).abs_diff(10) <= 1, "{id_secs} vs {secs}");
        assert_eq!(v7_floor(Uuid::nil(), SETTLE), Uuid::nil());
    }

    #[test]
    fn fresh_events_are_not_settled() {
        assert!(!settled(EventId::new()));
        assert!(settled(EventId::from_uuid(Uuid::nil())));
    }
}
