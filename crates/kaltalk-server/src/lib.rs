//! The KalTalk server: the dashboard, the JSON API and the operations endpoints on one
//! port, plus the background job workers, in one process.

pub mod admin;
pub mod api;
pub mod attachments;
pub mod auth;
pub mod availability;
pub mod bot;
pub mod config;
pub mod contacts;
pub mod conversations;
pub mod dashboard;
pub mod demo;
pub mod email;
pub mod error;
pub mod inboxes;
pub mod intake;
pub mod jobs;
pub mod knowledge;
pub mod notifications;
pub mod ops;
pub mod outbound;
pub mod problems;
pub mod rate_limit;
pub mod realtime;
pub mod state;
pub mod testing;
pub mod tls;
pub mod visitors;
pub mod web;
pub mod webhooks;
pub mod widget;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use kaltalk_core::{Clock, SystemClock};
use kaltalk_mail::Mailer;
use kaltalk_store::{JobLane, Store};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::limits::LoginLimiter;
pub use crate::config::Config;
pub use crate::state::AppState;

/// bcrypt cost 12: what the privacy policy promises.
pub const BCRYPT_COST: u32 = 12;
/// Form and JSON bodies; uploads get their own limits where they are accepted.
const BODY_LIMIT: usize = 1024 * 1024;

/// Opens the store named by `config` and applies its migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let bound = (config.statement_timeout_ms > 0)
        .then(|| std::time::Duration::from_millis(config.statement_timeout_ms));
    let store = Store::connect_with_bound(&config.database_url(), bound)
        .await
        .context("opening the database (check database_url / KALTALK_DATABASE_URL)")?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    Ok(store)
}

/// Reads the country database into memory (a GeoLite2-Country file is about 9 MB).
fn load_geoip(path: &std::path::Path) -> anyhow::Result<Arc<visitors::GeoIp>> {
    let geoip = visitors::GeoIp::open(path).with_context(|| {
        format!(
            "loading the country database {} (visitors.geoip_database / \
             KALTALK_VISITORS__GEOIP_DATABASE)",
            path.display()
        )
    })?;
    tracing::info!(path = %path.display(), database_type = geoip.database_type(), "country database loaded");
    Ok(Arc::new(geoip))
}

/// The process-wide Prometheus recorder (metrics macros write to a global one).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::warn!(error = %err, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

/// A server ready to serve on a bound listener.
pub struct Kaltalk {
    pub state: AppState,
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The SMTP listener for email inboxes, unless `smtp_listen` is empty.
    smtp: Option<TcpListener>,
}

impl Kaltalk {
    pub async fn new(
        listener: TcpListener,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let local_addr = listener.local_addr()?;
        let smtp = email::listener::bind(&config).await?;
        let geoip = config
            .visitors
            .geoip_database
            .as_deref()
            .map(load_geoip)
            .transpose()?;
        let store = open_store(&config).await?;
        let mailer = Mailer::new(
            config.smtp.url.as_ref().map(|s| s.expose()),
            &config.smtp.from,
        )
        .context("SMTP settings")?;
        let public_base = AppState::public_base_for(&config, local_addr);
        let secure = config.tls.is_some() || public_base.starts_with("https://");
        let blobs = attachments::Blobs::new(config.data_dir.join("blobs"));
        let hub = realtime::Hub::new(
            config.realtime.buffer,
            std::time::Duration::from_secs(config.realtime.ping_seconds.max(1)),
        );
        let chat = config
            .ai
            .base_url
            .as_ref()
            .map(|url| {
                kaltalk_ai::chat::ChatClient::new(
                    url.as_str(),
                    config.ai.api_key.as_ref().map(|k| k.expose().to_owned()),
                    config.ai.timeouts(),
                )
                .map(Arc::new)
            })
            .transpose()
            .context("the chat model client ([ai] settings)")?;
        let embeddings = knowledge::Embeddings::load(&config.embeddings, &config.data_dir).await?;
        if let Some(embedder) = embeddings.embedder() {
            // A changed model (or embeddings just switched on) re-embeds in the background;
            // until then each index uses only the vectors of the configured model.
            let queued = store
                .queue_reembedding(&embedder.model_id(), clock.now())
                .await?;
            if queued > 0 {
                tracing::info!(organizations = queued, model = %embedder.model_id(), "re-embedding queued");
            }
        }
        let webhook_client = outbound::GuardedClient::new(
            "Webhooks",
            config.webhooks.allow_loopback,
            config.webhooks.allow_private,
        )
        .map(Arc::new)
        .context("the webhook delivery client")?;
        let push_client = outbound::GuardedClient::new("Push", config.push.allow_loopback, false)
            .map(Arc::new)
            .context("the Web Push client")?;
        // Made by the first instance to start on this database, read by every other.
        let push_keys = notifications::push::Vapid::ensure(&store, clock.now())
            .await
            .map(Arc::new)
            .context("the Web Push (VAPID) keys")?;
        let native_push = notifications::native::NativePush::from_config(&config.push)
            .map(Arc::new)
            .context("the native apps' push credentials (push.fcm_*, push.apns_*)")?;
        let state = AppState {
            chat,
            store,
            login_limiter: Arc::new(LoginLimiter::new(
                config.login_limits.clone(),
                clock.clone(),
            )),
            widget_limits: Arc::new(widget::WidgetLimits::new(&config.widget, clock.clone())),
            config: Arc::new(config),
            clock,
            mailer,
            metrics: metrics_handle(),
            assets: Arc::new(web::assets::Assets::load()),
            hub,
            webhook_client,
            push_client,
            push_keys,
            jobs_queued: Arc::new(tokio::sync::Notify::new()),
            native_push,
            blobs,
            knowledge: Arc::new(knowledge::Indexes::new(embeddings)),
            geoip,
            public_base,
            secure,
            bcrypt_cost: BCRYPT_COST,
        };
        Ok(Self {
            state,
            listener,
            local_addr,
            smtp,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the SMTP listener takes mail, when it is on.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then stops taking connections, lets in-flight
    /// requests and jobs finish, and returns; after `shutdown_grace_seconds` it returns
    /// anyway, aborting the background tasks (a runaway request or job cannot keep a
    /// stopped server alive).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Kaltalk {
            state,
            listener,
            local_addr,
            smtp,
        } = self;
        // The grace period starts when shutdown is asked for and bounds all that follows:
        // the requests in flight, the workers' jobs, the database pool's close.
        let grace = std::time::Duration::from_secs(state.config.shutdown_grace_seconds);
        let (asked, asked_to_stop) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            let _ = asked.send(());
        };
        let deadline = async move {
            if asked_to_stop.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                // Serving ended by itself (an error): no deadline to keep.
                std::future::pending::<()>().await;
            }
        };
        let (stop_workers, workers_stop) = watch::channel(false);
        let smtp = match smtp {
            Some(listener) => {
                let mut stop = workers_stop.clone();
                let (_, task) = email::listener::spawn(state.clone(), listener, async move {
                    let _ = stop.changed().await;
                })?;
                Some(task)
            }
            None => None,
        };
        let imap = state
            .config
            .inbound_email
            .imap_poller
            .then(|| tokio::spawn(email::imap::poller(state.clone(), workers_stop.clone())));
        let lanes = [
            (JobLane::Conversations, state.config.jobs.workers),
            (JobLane::Knowledge, state.config.jobs.knowledge_workers),
        ];
        let workers: Vec<_> = lanes
            .into_iter()
            .flat_map(|(lane, count)| (0..count).map(move |n| (lane, n)))
            .map(|(lane, n)| {
                tokio::spawn(jobs::work(
                    state.clone(),
                    format!("{}-{lane:?}-{n}", uuid::Uuid::now_v7()),
                    lane,
                    workers_stop.clone(),
                ))
            })
            .collect();

        let housekeeping = tokio::spawn(housekeeping(state.clone(), workers_stop.clone()));
        // Like the workers, off when the caller runs jobs itself (tests dispatch by hand).
        let webhooks = (state.config.jobs.workers > 0).then(|| {
            tokio::spawn(webhooks::dispatch_forever(
                state.clone(),
                workers_stop.clone(),
            ))
        });
        let notifier = (state.config.jobs.workers > 0).then(|| {
            tokio::spawn(notifications::notify_forever(
                state.clone(),
                workers_stop.clone(),
            ))
        });
        // Started here, not awaited: the server answers (keyword-only) while it runs.
        let download = matches!(
            *state.knowledge.embeddings(),
            knowledge::Embeddings::Downloading(_)
        )
        .then(|| tokio::spawn(knowledge::download_model(state.clone())));
        let app = router(state.clone())
            .into_make_service_with_connect_info::<auth::session::ClientAddr>();
        tracing::info!(backend = ?state.store.backend(), address = %local_addr, "listening on {}", state.public_base);
        let tasks: Vec<_> = workers
            .into_iter()
            .chain([housekeeping])
            .chain(smtp)
            .chain(imap)
            .chain(webhooks)
            .chain(notifier)
            .collect();
        let aborts: Vec<_> = tasks
            .iter()
            .map(tokio::task::JoinHandle::abort_handle)
            .chain(download.as_ref().map(tokio::task::JoinHandle::abort_handle))
            .collect();
        let stopping = async move {
            let served = match &state.config.tls {
                Some(tls) => {
                    let config = tls::server_config(&tls.cert_path, &tls.key_path)?;
                    axum::serve(tls::TlsListener::new(listener, config)?, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
            };
            let _ = stop_workers.send(true);
            // An unfinished download is dropped; its staging directory is cleared on the
            // next start, which downloads again.
            if let Some(download) = download {
                download.abort();
            }
            for task in tasks {
                let _ = task.await;
            }
            state.store.close().await;
            tracing::info!("stopped");
            served.context("serving HTTP")
        };
        tokio::select! {
            result = stopping => result,
            () = deadline => {
                // The connections' own tasks end when the runtime does (the binary returns
                // from main next); the workers are stopped here.
                for task in aborts {
                    task.abort();
                }
                tracing::warn!(
                    grace_seconds = grace.as_secs(),
                    "requests or jobs still running after the shutdown grace period; stopping anyway"
                );
                Ok(())
            }
        }
    }
}

/// Reopens snoozed conversations when their time comes (checked every 30 s).
pub async fn wake_snoozed(state: &AppState) -> anyhow::Result<usize> {
    let woken = state.store.wake_snoozed(state.now()).await?;
    state.hub.publish_events(woken.events);
    Ok(woken.value)
}

/// Purges expired sessions, link tokens and old finished jobs hourly; every half minute
/// wakes snoozed conversations, queues due knowledge re-syncs, takes offline members
/// without a dashboard for too long and tells of customers waiting too long; until `stop`.
async fn housekeeping(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    let mut every_half_minute = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = every_hour.tick() => match state.store.purge_expired(state.now()).await {
                Ok(purged) => tracing::debug!(?purged, "housekeeping"),
                Err(err) => tracing::warn!(error = %err, "housekeeping failed"),
            },
            _ = every_half_minute.tick() => {
                if let Err(err) = wake_snoozed(&state).await {
                    tracing::warn!(error = format!("{err:#}"), "waking snoozed conversations failed");
                }
                if let Err(err) = knowledge::queue_due_syncs(&state).await {
                    tracing::warn!(error = format!("{err:#}"), "queueing knowledge re-syncs failed");
                }
                if let Err(err) = availability::sweep(&state).await {
                    tracing::warn!(error = format!("{err:#}"), "the offline sweep failed");
                }
                if let Err(err) = notifications::alert_waiting(&state).await {
                    tracing::warn!(error = format!("{err:#}"), "alerting of waiting conversations failed");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Starts KalTalk on `listener` with the system clock until `shutdown` resolves.
pub async fn launch(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Kaltalk::new(listener, config, Arc::new(SystemClock))
        .await?
        .serve(shutdown)
        .await
}

/// Every route, with the middleware every response passes through.
pub fn router(state: AppState) -> Router {
    // Routes that a signed-in browser uses carry ambient credentials (the cookie), so
    // they refuse cross-site requests. The widget's API uses bearer tokens and is meant to
    // be called from customers' sites.
    let same_site = Router::new()
        .merge(dashboard::router())
        .merge(conversations::router())
        .merge(contacts::router())
        .merge(notifications::router())
        .merge(api::router(&state))
        .layer(from_fn(auth::csrf::same_origin_only));
    Router::new()
        .merge(ops::router())
        .merge(web::assets::router())
        .merge(widget::router())
        .merge(same_site)
        .fallback(|| async { web::PageError::from(error::AppError::NotFound) })
        .layer(from_fn_with_state(
            state.clone(),
            web::headers::security_headers,
        ))
        .layer(from_fn(ops::observe))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
