//! Signed outbound webhooks: the endpoints an organization registers, the deliveries the
//! dispatcher creates from the event log (one per endpoint and event, body fixed once),
//! and every attempt to deliver them. Sending is the server's job (`webhook.deliver`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use kaltalk_core::{EventId, OrgId};
use serde::Serialize;
use serde_json::{Value, json};

use kaltalk_core::event::{
    CONTACT_CREATED, CONTACT_DELETED, CONTACT_UPDATED, CONVERSATION_CREATED,
    CONVERSATION_ESCALATED, CONVERSATION_UPDATED, EventPayload, MESSAGE_CREATED,
};
use kaltalk_core::job::DeliverWebhook;

use crate::contacts::{CONTACT_COLUMNS, Contact};
use crate::conversations::{CONVERSATION_COLUMNS, Conversation};
use crate::jobs::{NewJob, insert_job};
use crate::messages::fetch_message;
use crate::outbox::{NewEmail, insert_email};
use crate::{BeginWrite, Store, StoreError, on_db};

/// The event kinds an endpoint can subscribe to.
pub const WEBHOOK_EVENT_KINDS: [&str; 7] = [
    CONVERSATION_CREATED,
    CONVERSATION_UPDATED,
    CONVERSATION_ESCALATED,
    MESSAGE_CREATED,
    CONTACT_CREATED,
    CONTACT_UPDATED,
    CONTACT_DELETED,
];
/// The kind of a test delivery sent from the dashboard or the API.
pub const PING: &str = "ping";
/// How long a delivery is retried, and how long an endpoint may fail before it is disabled.
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);

/// The webhook dispatcher's cursor (see `crate::dispatch`); a young event is dispatched
/// anyway and deduplicated by `(endpoint, event)`.
const CURSOR_NAME: &str = "webhooks";

pub use kaltalk_core::{WebhookAttemptId, WebhookDeliveryId, WebhookId};

/// The subscribed kinds; empty means every kind. Stored as `,kind,kind,` so that one SQL
/// `LIKE` can test membership on both backends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EventKinds(pub Vec<String>);

impl EventKinds {
    pub fn includes(&self, kind: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|k| k == kind)
    }

    fn to_column(&self) -> String {
        if self.0.is_empty() {
            String::new()
        } else {
            format!(",{},", self.0.join(","))
        }
    }
}

impl TryFrom<String> for EventKinds {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Ok(EventKinds(
            value
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookEndpoint {
    pub id: WebhookId,
    pub org_id: OrgId,
    pub url: String,
    pub secret: String,
    #[sqlx(try_from = "String")]
    pub events: EventKinds,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewWebhookEndpoint {
    pub org_id: OrgId,
    pub url: String,
    pub secret: String,
    pub events: EventKinds,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointChange {
    pub url: Option<String>,
    pub events: Option<EventKinds>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl WebhookDeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

impl TryFrom<String> for WebhookDeliveryState {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(format!(
                "webhook delivery state {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub org_id: OrgId,
    pub endpoint_id: WebhookId,
    pub event_id: Option<EventId>,
    pub event_kind: String,
    /// The exact bytes sent (and signed) on every attempt.
    pub body: String,
    #[sqlx(try_from = "String")]
    pub state: WebhookDeliveryState,
    pub attempts: i32,
    pub round: i32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The newest attempt's response status and latency, for lists.
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct WebhookAttempt {
    pub id: WebhookAttemptId,
    #[serde(skip)]
    pub delivery_id: WebhookDeliveryId,
    pub attempted_at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub latency_ms: i64,
    pub succeeded: bool,
    pub error: Option<String>,
}

/// What one attempt found, for [`Store::record_webhook_attempt`].
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub delivery_id: WebhookDeliveryId,
    /// The round the job belonged to; a replay since then makes the result stale.
    pub round: i32,
    pub attempted_at: DateTime<Utc>,
    pub response_status: Option<u16>,
    pub latency_ms: i64,
    /// `None` when the endpoint answered 2xx.
    pub error: Option<String>,
}

/// What happens after a failed attempt.
#[derive(Debug, Clone)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    GiveUp,
}

/// Told to the organization if this attempt makes the endpoint disabled.
#[derive(Debug, Clone)]
pub struct DisableNotice {
    pub reason: String,
    pub emails: Vec<NewEmail>,
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub state: WebhookDeliveryState,
    /// This attempt disabled the endpoint (its admins were emailed).
    pub disabled_endpoint: bool,
}

/// What one dispatcher pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub events_read: usize,
    pub deliveries_created: usize,
    /// The read filled the batch: more events may be waiting.
    pub batch_full: bool,
}

const ENDPOINT_COLUMNS: &str = "id, org_id, url, secret, events, enabled, disabled_reason, failing_since, created_at, updated_at";
const DELIVERY_SELECT: &str = "SELECT d.id, d.org_id, d.endpoint_id, d.event_id, d.event_kind, d.body, d.state, d.attempts, d.round, \
     d.first_attempt_at, d.last_attempt_at, d.next_attempt_at, d.created_at, \
     (SELECT a.response_status FROM webhook_attempts a WHERE a.delivery_id = d.id ORDER BY a.id DESC LIMIT 1) AS last_status, \
     (SELECT a.latency_ms FROM webhook_attempts a WHERE a.delivery_id = d.id ORDER BY a.id DESC LIMIT 1) AS last_latency_ms \
     FROM webhook_deliveries d";

/// The JSON body of a delivery: what the receiver parses and the signature covers.
pub fn webhook_body(
    delivery: WebhookDeliveryId,
    kind: &str,
    created_at: DateTime<Utc>,
    org: OrgId,
    data: Value,
) -> String {
    json!({
        "id": delivery,
        "type": kind,
        "created_at": created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "organization_id": org,
        "data": data,
    })
    .to_string()
}

/// The job that makes the next attempt of `delivery` in `round`.
fn deliver_job(delivery: WebhookDeliveryId, round: i32, run_at: DateTime<Utc>) -> NewJob {
    NewJob {
        run_at: Some(run_at),
        // Retries are scheduled by the handler itself (its own backoff over 24 hours);
        // a job's own retries only cover a crash mid-attempt.
        max_attempts: 3,
        ..NewJob::new(&DeliverWebhook {
            delivery_id: delivery,
            round,
        })
    }
}

impl Store {
    // ---- endpoints -----------------------------------------------------------------------

    pub async fn create_webhook_endpoint(
        &self,
        endpoint: &NewWebhookEndpoint,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpoint, StoreError> {
        let sql = format!(
            "INSERT INTO webhook_endpoints (id, org_id, url, secret, events, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6) RETURNING {ENDPOINT_COLUMNS}"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, WebhookEndpoint>(sqlx::AssertSqlSafe(sql))
            .bind(WebhookId::new())
            .bind(endpoint.org_id)
            .bind(&endpoint.url)
            .bind(&endpoint.secret)
            .bind(endpoint.events.to_column())
            .bind(now)
            .fetch_one(pool)
            .await)?,
        )
    }

    /// The organization's endpoints, oldest first.
    pub async fn list_webhook_endpoints(
        &self,
        org: OrgId,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 ORDER BY id"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, WebhookEndpoint>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .fetch_all(pool)
            .await)?,
        )
    }

    pub async fn get_webhook_endpoint(
        &self,
        org: OrgId,
        id: WebhookId,
    ) -> Result<WebhookEndpoint, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 AND id = $2"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, WebhookEndpoint>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(id)
            .fetch_one(pool)
            .await)?,
        )
    }

    /// Changes what `change` names. Enabling clears the reason it was disabled and its
    /// failure streak, so it gets a fresh 24 hours; disabling by hand records that.
    pub async fn update_webhook_endpoint(
        &self,
        org: OrgId,
        id: WebhookId,
        change: &WebhookEndpointChange,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpoint, StoreError> {
        let sql = format!(
            "UPDATE webhook_endpoints SET url = COALESCE($3, url), events = COALESCE($4, events), \
             enabled = COALESCE($5, enabled), \
             disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason WHEN $5 THEN NULL \
                 ELSE 'Disabled by a team member.' END, \
             failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END, \
             updated_at = $6 WHERE org_id = $1 AND id = $2 RETURNING {ENDPOINT_COLUMNS}"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, WebhookEndpoint>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(id)
            .bind(change.url.as_deref())
            .bind(change.events.as_ref().map(EventKinds::to_column))
            .bind(change.enabled)
            .bind(now)
            .fetch_one(pool)
            .await)?,
        )
    }

    /// Deletes the endpoint with its deliveries and attempts; queued jobs for them find
    /// nothing and end.
    pub async fn delete_webhook_endpoint(
        &self,
        org: OrgId,
        id: WebhookId,
    ) -> Result<(), StoreError> {
        let deleted = on_db!(self, pool => sqlx::query("DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    // ---- deliveries ----------------------------------------------------------------------

    /// An endpoint's deliveries, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        org: OrgId,
        endpoint: WebhookId,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        // The endpoint must be this organization's: another's is not found, not empty.
        self.get_webhook_endpoint(org, endpoint).await?;
        let sql = format!(
            "{DELIVERY_SELECT} WHERE d.org_id = $1 AND d.endpoint_id = $2 ORDER BY d.id DESC LIMIT $3"
        );
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, WebhookDelivery>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(endpoint)
            .bind(limit.clamp(1, 500))
            .fetch_all(pool)
            .await)?,
        )
    }

    pub async fn get_webhook_delivery(
        &self,
        org: OrgId,
        endpoint: WebhookId,
        id: WebhookDeliveryId,
    ) -> Result<WebhookDelivery, StoreError> {
        let sql =
            format!("{DELIVERY_SELECT} WHERE d.org_id = $1 AND d.endpoint_id = $2 AND d.id = $3");
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, WebhookDelivery>(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(endpoint)
            .bind(id)
            .fetch_one(pool)
            .await)?,
        )
    }

    /// For the delivery job, which acts for no organization in particular.
    pub async fn get_webhook_delivery_for_job(
        &self,
        id: WebhookDeliveryId,
    ) -> Result<(WebhookDelivery, WebhookEndpoint), StoreError> {
        let sql = format!("{DELIVERY_SELECT} WHERE d.id = $1");
        let delivery = on_db!(self, pool => sqlx::query_as::<_, WebhookDelivery>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(pool)
            .await)?;
        let endpoint = self
            .get_webhook_endpoint(delivery.org_id, delivery.endpoint_id)
            .await?;
        Ok((delivery, endpoint))
    }

    /// A delivery's attempts, oldest first.
    pub async fn list_webhook_attempts(
        &self,
        org: OrgId,
        delivery: WebhookDeliveryId,
    ) -> Result<Vec<WebhookAttempt>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, WebhookAttempt>(
            "SELECT a.id, a.delivery_id, a.attempted_at, a.response_status, a.latency_ms, a.succeeded, a.error \
             FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
             WHERE d.org_id = $1 AND a.delivery_id = $2 ORDER BY a.id",
        )
        .bind(org)
        .bind(delivery)
        .fetch_all(pool)
        .await)?)
    }

    /// A test delivery (`type: "ping"`) to one endpoint, sent even while it is disabled so
    /// that it can be checked before being enabled again.
    pub async fn create_webhook_ping(
        &self,
        org: OrgId,
        endpoint: WebhookId,
        now: DateTime<Utc>,
    ) -> Result<WebhookDelivery, StoreError> {
        self.get_webhook_endpoint(org, endpoint).await?;
        let id = WebhookDeliveryId::new();
        let body = webhook_body(id, PING, now, org, json!({ "webhook_id": endpoint }));
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_kind, body, state, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, NULL, $4, $5, 'pending', $6, $6, $6)",
            )
            .bind(id)
            .bind(org)
            .bind(endpoint)
            .bind(PING)
            .bind(&body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_job!(tx, deliver_job(id, 0, now), now)?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.get_webhook_delivery(org, endpoint, id).await
    }

    /// Sends the same delivery (same id, same body) again as a new attempt, whatever its
    /// state. Bumping the round makes any retry still queued from before stale.
    pub async fn replay_webhook_delivery(
        &self,
        org: OrgId,
        endpoint: WebhookId,
        id: WebhookDeliveryId,
        now: DateTime<Utc>,
    ) -> Result<WebhookDelivery, StoreError> {
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let round: Option<(i32,)> = sqlx::query_as(
                "UPDATE webhook_deliveries SET state = 'pending', round = round + 1, next_attempt_at = $4, updated_at = $4 \
                 WHERE org_id = $1 AND endpoint_id = $2 AND id = $3 RETURNING round",
            )
            .bind(org)
            .bind(endpoint)
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let (round,) = round.ok_or(StoreError::NotFound)?;
            insert_job!(tx, deliver_job(id, round, now), now)?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.get_webhook_delivery(org, endpoint, id).await
    }

    /// Ends a delivery without an attempt (its endpoint was disabled meanwhile).
    pub async fn abandon_webhook_delivery(
        &self,
        id: WebhookDeliveryId,
        round: i32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => sqlx::query(
            "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL, updated_at = $3 \
             WHERE id = $1 AND round = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(round)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records one attempt and what follows it, in one transaction: delivered; a retry job
    /// at the given time; or given up. A failure that extends the endpoint's failure streak
    /// to [`GIVE_UP_AFTER`] also disables the endpoint and queues `notice`'s emails.
    pub async fn record_webhook_attempt(
        &self,
        result: &AttemptResult,
        after_failure: AfterFailure,
        notice: &DisableNotice,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let succeeded = result.error.is_none();
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // The write comes first: on SQLite a transaction that reads before it writes
            // fails outright if another connection wrote in between.
            let (endpoint_id,): (WebhookId,) = sqlx::query_as(
                "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, attempted_at, response_status, latency_ms, succeeded, error) \
                 SELECT $1, d.id, d.endpoint_id, $3, $4, $5, $6, $7 FROM webhook_deliveries d WHERE d.id = $2 \
                 RETURNING endpoint_id",
            )
            .bind(WebhookAttemptId::new())
            .bind(result.delivery_id)
            .bind(result.attempted_at)
            .bind(result.response_status.map(i32::from))
            .bind(result.latency_ms)
            .bind(succeeded)
            .bind(result.error.as_deref())
            .fetch_one(&mut *tx)
            .await?;
            let (org,): (OrgId,) = sqlx::query_as("SELECT org_id FROM webhook_endpoints WHERE id = $1")
                .bind(endpoint_id)
                .fetch_one(&mut *tx)
                .await?;
            let (state, retry_at) = match (&result.error, &after_failure) {
                (None, _) => (WebhookDeliveryState::Delivered, None),
                (Some(_), AfterFailure::RetryAt(at)) => (WebhookDeliveryState::Pending, Some(*at)),
                (Some(_), AfterFailure::GiveUp) => (WebhookDeliveryState::Failed, None),
            };
            // Only the current round moves the delivery; a stale one is history only.
            let current = sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, \
                 first_attempt_at = COALESCE(first_attempt_at, $3), last_attempt_at = $3, \
                 state = $4, next_attempt_at = $5, updated_at = $6 WHERE id = $1 AND round = $2",
            )
            .bind(result.delivery_id)
            .bind(result.round)
            .bind(result.attempted_at)
            .bind(state.as_str())
            .bind(retry_at)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if current && let Some(at) = retry_at {
                insert_job!(tx, deliver_job(result.delivery_id, result.round, at), now)?;
            }
            let mut disabled_endpoint = false;
            if succeeded {
                sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
                    .bind(endpoint_id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                let (since,): (Option<DateTime<Utc>>,) = sqlx::query_as(
                    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1 RETURNING failing_since",
                )
                .bind(endpoint_id)
                .bind(result.attempted_at)
                .fetch_one(&mut *tx)
                .await?;
                if since.is_some_and(|since| result.attempted_at - since >= GIVE_UP_AFTER) {
                    disabled_endpoint = sqlx::query(
                        "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $2, updated_at = $3 \
                         WHERE id = $1 AND enabled = TRUE",
                    )
                    .bind(endpoint_id)
                    .bind(&notice.reason)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if disabled_endpoint {
                        for email in &notice.emails {
                            let email = NewEmail { org_id: Some(org), ..email.clone() };
                            insert_email!(tx, &email, now);
                        }
                    }
                }
            }
            tx.commit().await?;
            Ok(Recorded { state, disabled_endpoint })
        })
    }

    // ---- the dispatcher ------------------------------------------------------------------

    /// One dispatcher pass: reads up to `batch` webhook-worthy events after the saved
    /// cursor and, for each enabled endpoint of the event's organization that subscribes
    /// to its kind (and existed when it happened), creates a delivery with its body and a
    /// delivery job; in one transaction that also moves the cursor. Private notes are
    /// never sent. Running it again never creates a second delivery for the same pair.
    pub async fn dispatch_webhooks(
        &self,
        now: DateTime<Utc>,
        batch: i64,
    ) -> Result<Dispatched, StoreError> {
        let _turn = self.write_turn().await;
        on_db!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let cursor = crate::dispatch::claim_cursor!(tx, CURSOR_NAME);
            // Nothing to do without an enabled endpoint; with one, nothing older than the
            // oldest of them matters (they get only events from after they were added).
            let oldest: Option<(WebhookId,)> = sqlx::query_as("SELECT id FROM webhook_endpoints WHERE enabled = TRUE ORDER BY id LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
            let Some((oldest,)) = oldest else {
                tx.commit().await?;
                return Ok(Dispatched::default());
            };
            let after = cursor.max(crate::dispatch::v7_floor(oldest.as_uuid(), crate::dispatch::SETTLE));
            // Every event, not only webhook kinds: the cursor moves past the rest too, so
            // an idle pass reads nothing.
            let events = crate::dispatch::events_after!(tx, after, batch);
            let mut dispatched = Dispatched {
                events_read: events.len(),
                batch_full: events.len() as i64 >= batch,
                ..Dispatched::default()
            };
            let new_cursor = crate::dispatch::settled_prefix(&events);
            let mut endpoints_of: HashMap<OrgId, Vec<WebhookEndpoint>> = HashMap::new();
            for event in &events {
                let Some(org) = event.org_id else { continue };
                if !WEBHOOK_EVENT_KINDS.contains(&event.kind.as_str()) {
                    continue;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = endpoints_of.entry(org) {
                    let sql = format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 AND enabled = TRUE ORDER BY id"
                    );
                    let found = sqlx::query_as::<_, WebhookEndpoint>(sqlx::AssertSqlSafe(sql))
                        .bind(org)
                        .fetch_all(&mut *tx)
                        .await?;
                    slot.insert(found);
                }
                let endpoints: Vec<&WebhookEndpoint> = endpoints_of
                    .get(&org)
                    .into_iter()
                    .flatten()
                    .filter(|e| e.created_at <= event.created_at && e.events.includes(&event.kind))
                    .collect();
                if endpoints.is_empty() {
                    continue;
                }
                let Some(subject) = event.subject_id else { continue };
                let payload = match event.payload() {
                    Ok(payload) => payload,
                    Err(err) => {
                        tracing::warn!(event = %event.id, error = %err, "an event that cannot be read is not sent");
                        continue;
                    }
                };
                let data = match payload {
                    // The contact is gone: only its id (and whom it was merged into) is told,
                    // none of what it held.
                    EventPayload::ContactDeleted(deleted) => Some(json!({
                        "id": subject,
                        "merged_into": deleted.merged_into,
                    })),
                    EventPayload::ConversationCreated(_)
                    | EventPayload::ConversationUpdated(_)
                    | EventPayload::ConversationEscalated(_) => {
                        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.org_id = $1 AND c.id = $2");
                        sqlx::query_as::<_, Conversation>(sqlx::AssertSqlSafe(sql))
                            .bind(org)
                            .bind(subject)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|c| serde_json::to_value(&c))
                            .transpose()
                            .map_err(|e| StoreError::Corrupt(format!("conversation as JSON: {e}")))?
                    }
                    EventPayload::ContactCreated(_) | EventPayload::ContactUpdated(_) => {
                        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2");
                        sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql))
                            .bind(org)
                            .bind(subject)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|c| serde_json::to_value(&c))
                            .transpose()
                            .map_err(|e| StoreError::Corrupt(format!("contact as JSON: {e}")))?
                    }
                    EventPayload::MessageCreated(_) => {
                        match fetch_message!(tx, subject) {
                            // Private notes stay inside the team.
                            Ok(message) if message.kind == kaltalk_core::chat::MessageKind::Note => None,
                            Ok(message) => Some(message.to_json()),
                            Err(sqlx::Error::RowNotFound) => None,
                            Err(err) => return Err(err.into()),
                        }
                    }
                    _ => None,
                };
                // Deleted since (or a note): nothing to tell.
                let Some(data) = data else { continue };
                for endpoint in endpoints {
                    let id = WebhookDeliveryId::new();
                    let body = webhook_body(id, &event.kind, event.created_at, org, data.clone());
                    let inserted = sqlx::query(
                        "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_kind, body, state, next_attempt_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(endpoint.id)
                    .bind(event.id)
                    .bind(&event.kind)
                    .bind(&body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 1 {
                        insert_job!(tx, deliver_job(id, 0, now), now)?;
                        dispatched.deliveries_created += 1;
                    }
                }
            }
            if let Some(cursor) = new_cursor {
                crate::dispatch::advance_cursor!(tx, CURSOR_NAME, cursor);
            }
            // A batch that is all still settling is read again; it is not more work waiting.
            dispatched.batch_full &= new_cursor.is_some();
            tx.commit().await?;
            Ok(dispatched)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_round_trip_through_the_column() {
        let kinds = EventKinds(vec!["message.created".into(), "contact.created".into()]);
        assert_eq!(kinds.to_column(), ",message.created,contact.created,");
        assert_eq!(
            EventKinds::try_from(kinds.to_column()).ok(),
            Some(kinds.clone())
        );
        assert!(kinds.includes("contact.created") && !kinds.includes("contact.updated"));
        assert!(EventKinds::default().includes("contact.updated"));
        assert_eq!(EventKinds::default().to_column(), "");
    }
}
