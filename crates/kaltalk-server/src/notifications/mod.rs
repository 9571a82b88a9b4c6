//! Notifications: the notifier that turns the event log into each member's notifications
//! (the rules are the store's, `kaltalk_store::notifications`), and the bell's page (the
//! list, mark read / all read, each a link to its conversation) with the unread count
//! that the dashboard refreshes live.

pub mod email;
pub mod native;
pub mod push;

use std::time::Duration as StdDuration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use kaltalk_core::NotificationId;
use kaltalk_core::chat::NotificationReason;
use kaltalk_core::hours::{self, ClockTime};
use kaltalk_store::notifications::{NotificationItem, Preference};
use kaltalk_store::push::NotificationSettings;
use serde_json::json;
use tokio::sync::watch;

use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoFields, NoticeQuery, see_other};
use crate::web::{IdPath, Layout, PageResult};

/// Events read per notifier pass.
const NOTIFY_BATCH: i64 = 500;
/// How many notifications the page lists.
const LIST_LIMIT: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(page))
        .route("/notifications/unread", get(unread))
        .route("/notifications/read-all", post(read_all))
        .route("/notifications/preferences", post(save_preferences))
        .route("/notifications/{id}/read", post(read))
        .route("/notifications/{id}/open", get(open))
        .route("/notifications/vapid-public-key", get(push::public_key))
        .route("/notifications/push-subscriptions", post(push::subscribe))
        .route(
            "/notifications/push-subscriptions/{id}/delete",
            post(push::unsubscribe),
        )
}

/// One notifier pass (more while a full batch suggests more is waiting): new events
/// become notifications, each published to its member's dashboards. The server runs it
/// every second; tests call it.
pub async fn notify_pending(state: &AppState) -> anyhow::Result<usize> {
    let mut made = 0;
    // Bounded, so one burst cannot keep this loop from yielding for long.
    for _ in 0..10 {
        let pass = state
            .store
            .notify_pending(state.now(), NOTIFY_BATCH)
            .await?;
        made += pass.value.notifications;
        let more = pass.value.batch_full;
        if pass.value.pushes > 0 {
            state.jobs_queued.notify_waiters(); // the pushes are due now
        }
        state.hub.publish_events(pass.events);
        if !more {
            break;
        }
    }
    if made > 0 {
        // Counts only: never who, never what the customer wrote.
        tracing::debug!(notifications = made, "members notified");
    }
    Ok(made)
}

/// Tells of customers waiting longer for a reply than their inbox allows (a
/// `conversation.waiting` event each, which the notifier turns into notifications). The
/// server runs it every half minute; tests call it.
pub async fn alert_waiting(state: &AppState) -> anyhow::Result<usize> {
    let told = state.store.alert_waiting(state.now()).await?;
    state.hub.publish_events(told.events);
    Ok(told.value)
}

/// Runs [`notify_pending`] every second, and as soon as this instance publishes events,
/// until `stop`.
pub async fn notify_forever(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut every_second = tokio::time::interval(StdDuration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every_second.tick() => {}
            () = state.hub.events_written() => {}
            _ = stop.changed() => return,
        }
        let started = std::time::Instant::now();
        if let Err(err) = notify_pending(&state).await {
            tracing::warn!(error = format!("{err:#}"), "notifying members failed");
        }
        // However busy the log (a chat at hundreds of messages a second wakes it on each),
        // at most ten passes a second: each holds the write lock for a moment.
        let rest = MIN_PASS_GAP.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(rest) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The shortest time between two notifier passes.
const MIN_PASS_GAP: StdDuration = StdDuration::from_millis(100);

#[derive(Template, WebTemplate)]
#[template(path = "app/notifications.html")]
struct NotificationsPage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    /// What the member chose to be told about, per channel.
    preferences: Vec<Preference>,
    settings: NotificationSettings,
    zones: Vec<&'static str>,
    items: Vec<NotificationItem>,
    unread: i64,
    now: DateTime<Utc>,
}

impl NotificationsPage {
    /// Who the conversation is with, as the inbox's list names them.
    fn who(&self, item: &NotificationItem) -> String {
        crate::conversations::contact_label(
            item.contact_name.as_deref(),
            item.contact_email.as_deref(),
            &item.contact_id.to_string(),
        )
    }

    fn when(&self, item: &NotificationItem) -> String {
        crate::conversations::short_time(&item.notification.created_at, &self.now)
    }

    fn quiet_from(&self) -> String {
        self.settings
            .quiet
            .map(|q| q.0.to_string())
            .unwrap_or_default()
    }

    fn quiet_until(&self) -> String {
        self.settings
            .quiet
            .map(|q| q.1.to_string())
            .unwrap_or_default()
    }
}

async fn page(
    State(state): State<AppState>,
    session: AgentSession,
    axum::extract::Query(query): axum::extract::Query<NoticeQuery>,
) -> PageResult {
    let (org, me) = (session.org_id(), session.user.id);
    Ok(NotificationsPage {
        layout: Layout::signed_in(&state, &session, "notifications").await?,
        notice: match query.notice.as_deref() {
            Some("preferences") => Some("Saved: you are told about what is ticked."),
            _ => None,
        },
        csrf: session.csrf_token.clone(),
        preferences: state.store.notification_preferences(org, me).await?,
        settings: state.store.notification_settings(org, me).await?,
        zones: hours::zone_names().collect(),
        items: state.store.list_notifications(org, me, LIST_LIMIT).await?,
        unread: state.store.unread_notifications(org, me).await?,
        now: state.now(),
    }
    .into_response())
}

/// The unread count, for the bell and the tab's title when a notification frame arrives.
async fn unread(State(state): State<AppState>, session: AgentSession) -> PageResult {
    let unread = state
        .store
        .unread_notifications(session.org_id(), session.user.id)
        .await?;
    Ok(Json(json!({ "unread": unread })).into_response())
}

async fn read(
    State(state): State<AppState>,
    IdPath(id): IdPath<NotificationId>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    let written = state
        .store
        .read_notification(session.org_id(), session.user.id, id, state.now())
        .await?;
    state.hub.publish_events(written.events);
    Ok(see_other("/notifications"))
}

async fn read_all(
    State(state): State<AppState>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    let written = state
        .store
        .read_all_notifications(session.org_id(), session.user.id, state.now())
        .await?;
    state.hub.publish_events(written.events);
    Ok(see_other("/notifications"))
}

/// Follows a notification: read now, and its conversation opens.
async fn open(
    State(state): State<AppState>,
    IdPath(id): IdPath<NotificationId>,
    session: AgentSession,
) -> PageResult {
    let written = state
        .store
        .read_notification(session.org_id(), session.user.id, id, state.now())
        .await?;
    state.hub.publish_events(written.events);
    let conversation = written.value.conversation_id;
    Ok(Redirect::to(&format!("/inbox?view=all&c={conversation}")).into_response())
}

/// The member's choices: per reason, the bell, push and email (each ticked box is on; the
/// form repeats `in_app`, `push` and `email`, so it is read as pairs); names and words in
/// pushes; a sound; quiet hours in their time zone.
async fn save_preferences(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<Vec<(String, String)>>,
) -> PageResult {
    let (org, me) = (session.org_id(), session.user.id);
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .unwrap_or_default()
    };
    let mut in_app = Vec::new();
    let mut push = Vec::new();
    let mut email = Vec::new();
    for (key, value) in &form {
        let list = match key.as_str() {
            "in_app" => &mut in_app,
            "push" => &mut push,
            "email" => &mut email,
            _ => continue,
        };
        let reason: NotificationReason = value
            .parse()
            .map_err(|_| AppError::invalid("preferences", "Choose among the kinds listed."))?;
        list.push(reason);
    }
    // A form without the zone (a script's, a test's) keeps the one saved.
    let time_zone = match field("time_zone") {
        "" => state.store.notification_settings(org, me).await?.time_zone,
        zone => {
            hours::parse_zone(zone).map_err(|e| AppError::invalid("time_zone", e.to_string()))?
        }
    };
    let quiet = match (field("quiet_from"), field("quiet_until")) {
        ("", "") => None,
        (from, until) if !from.is_empty() && !until.is_empty() => {
            let read = |text: &str| {
                ClockTime::parse(text).map_err(|e| AppError::invalid("quiet_hours", e.to_string()))
            };
            let (from, until) = (read(from)?, read(until)?);
            if from == until {
                return Err(AppError::invalid(
                    "quiet_hours",
                    "Quiet hours start and end at the same time: clear both to have none.",
                )
                .into());
            }
            Some((from, until))
        }
        _ => {
            return Err(AppError::invalid(
                "quiet_hours",
                "Give quiet hours both a start and an end (or clear both).",
            )
            .into());
        }
    };
    let preferences: Vec<Preference> = state
        .store
        .notification_preferences(org, me)
        .await?
        .into_iter()
        .map(|p| Preference {
            in_app: in_app.contains(&p.reason),
            push: push.contains(&p.reason),
            email: email.contains(&p.reason),
            ..p
        })
        .collect();
    state
        .store
        .save_notification_preferences(org, me, &preferences)
        .await?;
    let settings = NotificationSettings {
        time_zone,
        quiet,
        push_text: field("push_text") == "yes",
        sound: field("sound") == "yes",
    };
    state
        .store
        .save_notification_settings(org, me, &settings)
        .await?;
    Ok(see_other("/notifications?notice=preferences#preferences"))
}
