//! Signed outbound webhooks: the dispatcher that turns the event log into deliveries, the
//! `webhook.deliver` job that makes each attempt (signed, SSRF-guarded, retried with
//! backoff for 24 hours), and the validation the API and the dashboard share.

use kaltalk_core::job::DeliverWebhook;
use std::time::{Duration as StdDuration, Instant};

use askama::Template;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use kaltalk_core::{Role, ValidationError, token};
use kaltalk_store::webhooks::{
    AfterFailure, AttemptResult, DisableNotice, EventKinds, GIVE_UP_AFTER, PING,
    WEBHOOK_EVENT_KINDS, WebhookDelivery, WebhookDeliveryState, WebhookEndpoint,
};
use kaltalk_store::{NewEmail, StoreError};
use sha2::Sha256;
use tokio::sync::watch;

use crate::state::AppState;

/// Events read per dispatcher pass.
const DISPATCH_BATCH: i64 = 200;
/// Every endpoint's secret starts with this, so people and secret scanners recognise one.
pub const SECRET_PREFIX: &str = "whsec_";
/// The first retry waits this long; each next one twice as long…
const FIRST_RETRY: Duration = Duration::seconds(30);
/// …up to this.
const LONGEST_RETRY: Duration = Duration::hours(2);
const MAX_URL_CHARS: usize = 2000;

/// One dispatcher pass (more while a full batch suggests more is waiting): new events
/// become deliveries and delivery jobs. The server runs it every second; tests call it.
pub async fn dispatch_pending(state: &AppState) -> anyhow::Result<usize> {
    let mut created = 0;
    // Bounded, so one burst cannot keep this loop from yielding for long.
    for _ in 0..10 {
        let pass = state
            .store
            .dispatch_webhooks(state.now(), DISPATCH_BATCH)
            .await?;
        created += pass.deliveries_created;
        if !pass.batch_full {
            break;
        }
    }
    Ok(created)
}

/// Runs [`dispatch_pending`] every second until `stop`.
pub async fn dispatch_forever(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut every_second = tokio::time::interval(StdDuration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every_second.tick() => {
                if let Err(err) = dispatch_pending(&state).await {
                    tracing::warn!(error = format!("{err:#}"), "webhook dispatch failed");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// `KalTalk-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature_header(secret: &str, t: i64, body: &str) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after failed attempt number `attempt` (1-based): 30 s, 1 min, 2 min, … 2 h.
pub fn retry_delay(attempt: i32) -> Duration {
    let doublings = attempt.saturating_sub(1).clamp(0, 16) as u32;
    let delay = FIRST_RETRY * (1i32 << doublings);
    delay.min(LONGEST_RETRY)
}

/// What follows a failed attempt made at `now`: a ping is tried once; an event is retried
/// until 24 hours after its first attempt (the last retry lands on that mark).
fn after_failure(delivery: &WebhookDelivery, now: DateTime<Utc>) -> AfterFailure {
    if delivery.event_kind == PING {
        return AfterFailure::GiveUp;
    }
    let first = delivery.first_attempt_at.unwrap_or(now);
    let deadline = first + GIVE_UP_AFTER;
    if now >= deadline {
        return AfterFailure::GiveUp;
    }
    AfterFailure::RetryAt((now + retry_delay(delivery.attempts + 1)).min(deadline))
}

/// A new endpoint secret.
pub fn new_secret() -> String {
    token::generate(SECRET_PREFIX)
}

/// Checks a webhook URL: absolute http(s) with a host, no credentials in it. Where it
/// points is checked at each attempt (names can change what they resolve to).
pub fn parse_url(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    let raw = raw.trim();
    let invalid = |message: &str| ValidationError::new(field, message);
    if raw.is_empty() {
        return Err(invalid(
            "Enter the URL KalTalk should POST events to, e.g. https://example.com/kaltalk.",
        ));
    }
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(invalid("The URL is too long (2000 characters at most)."));
    }
    let url = url::Url::parse(raw).map_err(|_| {
        invalid("Not a valid URL: write it in full, e.g. https://example.com/hook.")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            "Only http:// and https:// URLs can receive webhooks.",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("The URL needs a host name."));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "Leave credentials out of the URL: every delivery is signed with the secret instead.",
        ));
    }
    Ok(url.to_string())
}

/// Checks subscribed event kinds: each must be one of [`WEBHOOK_EVENT_KINDS`]; none
/// means every kind.
pub fn parse_events(field: &'static str, kinds: &[String]) -> Result<EventKinds, ValidationError> {
    let mut chosen: Vec<String> = Vec::new();
    for kind in kinds.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
        if !WEBHOOK_EVENT_KINDS.contains(&kind) {
            return Err(ValidationError::new(
                field,
                format!(
                    "Unknown event {kind:?}: choose from {}.",
                    WEBHOOK_EVENT_KINDS.join(", ")
                ),
            ));
        }
        if !chosen.iter().any(|c| c == kind) {
            chosen.push(kind.to_owned());
        }
    }
    // In the order of the list, so the same choice always reads the same.
    chosen.sort_by_key(|k| WEBHOOK_EVENT_KINDS.iter().position(|known| known == k));
    Ok(EventKinds(chosen))
}

/// The `webhook.deliver` job: one attempt at one delivery.
pub async fn deliver(state: &AppState, job: DeliverWebhook) -> anyhow::Result<()> {
    let DeliverWebhook {
        delivery_id: id,
        round,
    } = job;
    let (delivery, endpoint) = match state.store.get_webhook_delivery_for_job(id).await {
        Ok(found) => found,
        // The endpoint was deleted, and its deliveries with it.
        Err(StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    if delivery.round != round || delivery.state != WebhookDeliveryState::Pending {
        return Ok(()); // replayed since, or already settled
    }
    if !endpoint.enabled && delivery.event_kind != PING {
        state
            .store
            .abandon_webhook_delivery(delivery.id, round, state.now())
            .await?;
        return Ok(());
    }

    let now = state.now();
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("kaltalk-delivery", delivery.id.to_string()),
        (
            "kaltalk-signature",
            signature_header(&endpoint.secret, now.timestamp(), &delivery.body),
        ),
    ];
    let started = Instant::now();
    let outcome = state
        .webhook_client
        .post(
            &endpoint.url,
            &headers,
            delivery.body.clone().into_bytes(),
            now,
        )
        .await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (response_status, error) = match outcome {
        Ok(answer) if (200..300).contains(&answer.status) => (Some(answer.status), None),
        Ok(crate::outbound::Answer { status, .. }) => (
            Some(status),
            Some(format!(
                "the endpoint answered HTTP {status}; 2xx counts as delivered"
            )),
        ),
        Err(err) => (None, Some(err.to_string())),
    };
    let failed = error.is_some();
    let result = AttemptResult {
        delivery_id: delivery.id,
        round,
        attempted_at: now,
        response_status,
        latency_ms,
        error,
    };
    // The store disables the endpoint when this failure makes 24 hours of them; the
    // notice is prepared whenever that is possible.
    let notice = if failed && endpoint.failing_since.is_some() {
        disable_notice(state, &endpoint).await?
    } else {
        DisableNotice {
            reason: String::new(),
            emails: Vec::new(),
        }
    };
    let recorded = state
        .store
        .record_webhook_attempt(&result, after_failure(&delivery, now), &notice, now)
        .await?;
    if recorded.disabled_endpoint {
        tracing::warn!(endpoint = %endpoint.id, url = %endpoint.url, "webhook endpoint disabled after 24 hours of failures");
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "email/webhook_disabled.txt")]
struct DisabledText<'a> {
    name: &'a str,
    url: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/webhook_disabled.html")]
struct DisabledHtml<'a> {
    name: &'a str,
    url: &'a str,
    link: &'a str,
}

/// The reason shown on the endpoint and the email to each owner and admin.
async fn disable_notice(
    state: &AppState,
    endpoint: &WebhookEndpoint,
) -> anyhow::Result<DisableNotice> {
    let link = state.link(&format!("/settings/webhooks/{}", endpoint.id));
    let mut emails = Vec::new();
    for member in state.store.list_members(endpoint.org_id).await? {
        if !matches!(member.role(), Role::Owner | Role::Admin) {
            continue;
        }
        let fields = (member.name.as_str(), endpoint.url.as_str(), link.as_str());
        let text = DisabledText {
            name: fields.0,
            url: fields.1,
            link: fields.2,
        }
        .render()?;
        let html = DisabledHtml {
            name: fields.0,
            url: fields.1,
            link: fields.2,
        }
        .render()?;
        emails.push(NewEmail {
            org_id: Some(endpoint.org_id),
            to: member.email.clone(),
            subject: "A KalTalk webhook endpoint was disabled".to_owned(),
            text_body: text,
            html_body: html,
            kind: "webhook_disabled",
            delivery: state.delivery(),
        });
    }
    Ok(DisableNotice {
        reason: "Every delivery failed for 24 hours. Fix the receiving server, send a test ping, then enable it again.".to_owned(),
        emails,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_thirty_seconds_up_to_two_hours() {
        assert_eq!(retry_delay(1), Duration::seconds(30));
        assert_eq!(retry_delay(2), Duration::seconds(60));
        assert_eq!(retry_delay(3), Duration::seconds(120));
        assert_eq!(retry_delay(8), Duration::seconds(3840));
        assert_eq!(retry_delay(9), Duration::hours(2));
        assert_eq!(retry_delay(40), Duration::hours(2));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // Computed independently with Python's hmac module.
        assert_eq!(
            signature_header("whsec_x", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=b3438763ab46d9634b9844c8722818eaf523f803db1327484c6067462a5fd6d1"
        );
    }

    #[test]
    fn urls_and_events_are_validated_with_the_field_named() {
        assert!(parse_url("url", "https://example.com/hook").is_ok());
        for bad in [
            "",
            "example.com/hook",
            "ftp://example.com/",
            "https://u:p@example.com/",
        ] {
            let err = parse_url("url", bad).expect_err(bad);
            assert_eq!(err.field, "url");
        }
        let events = parse_events(
            "events",
            &["message.created".into(), "contact.created".into()],
        )
        .expect("known kinds");
        assert_eq!(events.0, ["message.created", "contact.created"]);
        let err = parse_events("events", &["message.deleted".into()]).expect_err("unknown");
        assert_eq!(err.field, "events");
    }
}
