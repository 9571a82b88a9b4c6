//! The state every handler shares.

use std::net::SocketAddr;
use std::sync::Arc;

use kaltalk_core::Clock;
use kaltalk_mail::Mailer;
use kaltalk_store::{Delivery, Store};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::limits::LoginLimiter;
use crate::config::Config;
use crate::realtime::Hub;
use crate::visitors::GeoIp;
use crate::web::assets::Assets;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub mailer: Mailer,
    pub login_limiter: Arc<LoginLimiter>,
    /// The widget API's rate limits, and the bot's answers per visitor address.
    pub widget_limits: Arc<crate::widget::WidgetLimits>,
    pub metrics: Option<PrometheusHandle>,
    pub assets: Arc<Assets>,
    /// Per-organization knowledge search indexes, rebuilt on change.
    pub knowledge: Arc<crate::knowledge::Indexes>,
    /// The chat model the AI agent generates answers with, when `[ai] base_url` is set.
    pub chat: Option<Arc<kaltalk_ai::chat::ChatClient>>,
    /// Attachment bytes.
    pub blobs: crate::attachments::Blobs,
    /// The SSRF-guarded client webhook deliveries go out through, built once.
    /// Webhook deliveries go out through it (its switches: `[webhooks]`).
    pub webhook_client: Arc<crate::outbound::GuardedClient>,
    /// Pushes to browsers' push services (its switches: `[push]`), signed with `push_keys`.
    pub push_client: Arc<crate::outbound::GuardedClient>,
    pub push_keys: Arc<crate::notifications::push::Vapid>,
    /// Rung when jobs due now were queued outside a request (the notifier's pushes): idle
    /// workers look at once instead of at their next second.
    pub jobs_queued: Arc<tokio::sync::Notify>,
    /// Pushes to the operator's native apps (FCM, APNs), for the platforms configured.
    pub native_push: Arc<crate::notifications::native::NativePush>,
    /// Fan-out of committed events to connected sockets.
    pub hub: Hub,
    /// The country database, loaded once when `visitors.geoip_database` names one.
    pub geoip: Option<Arc<GeoIp>>,
    /// Base of every link we email, e.g. `https://support.example.com`.
    pub public_base: Arc<str>,
    /// Whether browsers reach us over https (cookies get `Secure`, responses HSTS).
    pub secure: bool,
    /// bcrypt cost: 12, as the privacy policy promises.
    pub bcrypt_cost: u32,
}

impl AppState {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub fn delivery(&self) -> Delivery {
        if self.mailer.delivers() {
            Delivery::Smtp
        } else {
            Delivery::KeepInOutbox
        }
    }

    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_base)
    }

    /// After an organization's rows are deleted: what it left outside the database, its
    /// files and its search index in memory.
    pub async fn forget_organization(&self, org: kaltalk_core::OrgId) {
        self.knowledge.forget(org).await;
        if let Err(error) = self.blobs.delete_organization(org).await {
            // The rows are gone; the files are orphans an operator can remove by hand.
            tracing::error!(%org, %error, "could not remove a deleted organization's files");
        }
    }

    pub(crate) fn public_base_for(config: &Config, bound: SocketAddr) -> Arc<str> {
        config.public_base(bound).into()
    }
}
