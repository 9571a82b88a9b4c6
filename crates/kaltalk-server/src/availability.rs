//! Agents' availability on the server side: the dashboard socket keeps a member's
//! last-seen time (and brings back online a member the server took offline), the
//! housekeeping loop's sweep takes offline who has had no dashboard for the
//! organization's minutes, and every change tells open widgets whether the team is there.

use std::sync::Arc;

use kaltalk_core::event::EventPayload;
use kaltalk_core::{OrgId, UserId};
use kaltalk_store::Event;

use crate::realtime::Live;
use crate::state::AppState;

/// Publishes committed events, then, for each organization whose online members they may
/// have changed (availability, team members, a team deleted), its presence.
pub async fn publish(state: &AppState, events: Vec<Event>) {
    let mut orgs: Vec<OrgId> = events
        .iter()
        .filter(|event| {
            matches!(
                event.payload(),
                Ok(EventPayload::MemberAvailabilityChanged(_)
                    | EventPayload::TeamUpdated(_)
                    | EventPayload::TeamDeleted(_))
            )
        })
        .filter_map(|event| event.org_id)
        .collect();
    orgs.sort();
    orgs.dedup();
    state.hub.publish_events(events);
    for org in orgs {
        publish_presence(state, org).await;
    }
}

/// Tells the organization's open widgets who is online now.
pub async fn publish_presence(state: &AppState, org: OrgId) {
    match state.store.presence(org).await {
        Ok(presence) => state.hub.publish(Live::Presence {
            org,
            presence: Arc::new(presence),
        }),
        Err(err) => tracing::warn!(error = %err, %org, "reading who is online failed"),
    }
}

/// A member's dashboard socket opened (`connecting`) or closed: their last-seen time,
/// and online again if the server had taken them offline.
pub async fn dashboard_seen(state: &AppState, org: OrgId, user: UserId, connecting: bool) {
    match state
        .store
        .dashboard_seen(org, user, connecting, state.now())
        .await
    {
        Ok(written) => publish(state, written.events).await,
        Err(err) => {
            tracing::warn!(error = %err, %org, %user, "recording a dashboard connection failed")
        }
    }
}

/// The offline sweep: everyone whose dashboard was last seen (opened, pinged, closed)
/// longer ago than their organization's minutes goes offline (handing back what the
/// inbox says to). Returns how many went offline.
pub async fn sweep(state: &AppState) -> anyhow::Result<usize> {
    let swept = state.store.sweep_offline(state.now()).await?;
    publish(state, swept.events).await;
    Ok(swept.value.len())
}
