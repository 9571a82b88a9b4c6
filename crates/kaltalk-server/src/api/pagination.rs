//! Cursor pagination shared by every API list: `limit` (1–100, default 25) and an opaque
//! `cursor`; each answer has `next_cursor` (null on the last page). Lists are ordered by
//! (creation time, id) and a page continues strictly after its cursor, so rows created
//! while a client pages through appear neither twice nor in place of others.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::AppError;

pub const DEFAULT_LIMIT: i64 = 25;
pub const MAX_LIMIT: i64 = 100;

/// The `limit` and `cursor` query parameters, as given: `limit` is parsed by [`PageQuery::page`]
/// so that a wrong one is a 422 naming it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 25).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page; omitted or empty: the first page.
    #[param(pattern = "^(-?[0-9]+_[0-9a-f]{32})?$")]
    pub cursor: Option<String>,
}

/// The page a list request asks for: the one extractor every API list reads `limit` and
/// `cursor` with, so each refuses a bad one the same way (a 422 naming it). Other query
/// parameters are left to the list's own `Query`; document both in its `params`.
pub struct Pagination(pub Page);

impl<S: Send + Sync> FromRequestParts<S> for Pagination {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query: PageQuery = serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map_err(|e| {
                AppError::BadRequest(format!("The query string could not be read: {e}."))
            })?;
        query.page().map(Pagination)
    }
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    /// The last item of the previous page.
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, AppError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| AppError::invalid("limit", "A number from 1 to 100."))?,
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(decode(raw).ok_or_else(|| {
                AppError::invalid("cursor", "Not a cursor from a previous page.")
            })?),
        };
        Ok(Page { limit, after })
    }
}

/// The cursor of an item: its creation time to the nanosecond (so the next page's
/// comparison matches the stored value exactly) and its id.
pub fn encode(at: DateTime<Utc>, id: Uuid) -> String {
    let nanos = at
        .timestamp_nanos_opt()
        .unwrap_or_else(|| at.timestamp_micros().saturating_mul(1000));
    format!("{nanos}_{}", id.simple())
}

fn decode(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (nanos, id) = cursor.split_once('_')?;
    Some((
        DateTime::from_timestamp_nanos(nanos.parse().ok()?),
        Uuid::parse_str(id).ok()?,
    ))
}

/// The next cursor for a page fetched with one extra row: drops that row, and points
/// after the last kept one when there was more.
pub fn finish<T>(
    mut items: Vec<T>,
    page: Page,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(|item| {
        let (at, id) = key(item);
        encode(at, id)
    });
    (items, next)
}

/// One page of a short list already in memory, newest first by (time, id).
pub fn newest_first<T>(
    mut items: Vec<T>,
    page: Page,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> (Vec<T>, Option<String>) {
    items.sort_by_key(|item| std::cmp::Reverse(key(item)));
    if let Some(after) = page.after {
        items.retain(|item| key(item) < after);
    }
    items.truncate(usize::try_from(page.limit + 1).unwrap_or(usize::MAX));
    finish(items, page, key)
}

/// One page of a list in memory, oldest first by (time, id) (a conversation's messages).
pub fn oldest_first<T>(
    mut items: Vec<T>,
    page: Page,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> (Vec<T>, Option<String>) {
    items.sort_by_key(|item| key(item));
    if let Some(after) = page.after {
        items.retain(|item| key(item) > after);
    }
    items.truncate(usize::try_from(page.limit + 1).unwrap_or(usize::MAX));
    finish(items, page, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_to_the_nanosecond() {
        let at = DateTime::from_timestamp_nanos(1_790_000_000_123_456_789);
        let id = Uuid::now_v7();
        assert_eq!(decode(&encode(at, id)), Some((at, id)));
        assert_eq!(decode("garbage"), None);
    }

    #[test]
    fn pages_continue_strictly_after_the_cursor() {
        let at = DateTime::from_timestamp_nanos(0);
        let items: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let first = Page {
            limit: 2,
            after: None,
        };
        let (page1, next) = newest_first(items.clone(), first, |id| (at, *id));
        assert_eq!(page1, vec![items[4], items[3]]);
        let after = decode(&next.expect("more")).expect("valid");
        let (page2, _) = newest_first(
            items.clone(),
            Page {
                limit: 2,
                after: Some(after),
            },
            |id| (at, *id),
        );
        assert_eq!(page2, vec![items[2], items[1]]);
    }
}
