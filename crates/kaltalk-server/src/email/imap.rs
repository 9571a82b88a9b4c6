//! IMAP polling: every email inbox that names a mailbox is read on its interval. Where
//! polling stopped (UIDVALIDITY and the last UID) is saved after each message is stored,
//! and each Message-ID is stored once per inbox, so a restart, a crash between storing
//! and saving, or a server that renumbered its mailbox never imports a message twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kaltalk_core::InboxId;
use kaltalk_core::chat::{ImapSecurity, ImapSettings};
use kaltalk_mail::imap_in::{self, ImapAccount, ImapCursor, TlsOptions};
use kaltalk_store::email::ImapCursorRow;
use kaltalk_store::inboxes::Inbox;
use tokio::sync::watch;

use crate::email::{Arrival, receive};
use crate::state::AppState;

/// Messages read from one mailbox per poll; the rest wait for the next poll.
const BATCH: usize = 50;

/// Polls every email inbox with an IMAP mailbox once, whether due or not; returns how
/// many messages were read. Tests call this instead of waiting for the poller.
pub async fn poll_all_once(state: &AppState, tls: &TlsOptions) -> anyhow::Result<usize> {
    let mut read = 0;
    for inbox in state.store.email_inboxes().await? {
        if let Some(settings) = inbox.email().imap {
            read += poll_inbox(state, &inbox, &settings, tls).await?;
        }
    }
    Ok(read)
}

/// Reads what is new in one inbox's mailbox. A failure is saved on the inbox (its settings
/// page shows it) and returned.
pub async fn poll_inbox(
    state: &AppState,
    inbox: &Inbox,
    settings: &ImapSettings,
    tls: &TlsOptions,
) -> anyhow::Result<usize> {
    let outcome = poll(state, inbox, settings, tls).await;
    if let Err(err) = &outcome {
        let message = format!("{err:#}");
        if let Err(save) = state
            .store
            .save_imap_poll(inbox.id, None, Some(&message), state.now())
            .await
        {
            tracing::warn!(error = %save, "could not record an IMAP error");
        }
    }
    outcome
}

async fn poll(
    state: &AppState,
    inbox: &Inbox,
    settings: &ImapSettings,
    tls: &TlsOptions,
) -> anyhow::Result<usize> {
    let connect_to = checked_addresses(state, &settings.host, settings.port).await?;
    let account = ImapAccount {
        host: settings.host.clone(),
        port: settings.port,
        connect_to,
        security: match settings.security {
            ImapSecurity::Tls => imap_in::ImapSecurity::Tls,
            ImapSecurity::StartTls => imap_in::ImapSecurity::StartTls,
            ImapSecurity::Plain => imap_in::ImapSecurity::Plain,
        },
        user: settings.user.clone(),
        password: settings.password.clone(),
        mailbox: settings.mailbox.clone(),
    };
    let mut cursor = state.store.imap_cursor(inbox.id).await?.and_then(|row| {
        Some(ImapCursor {
            uid_validity: u32::try_from(row.uid_validity).ok()?,
            last_uid: u32::try_from(row.last_uid).ok()?,
        })
    });
    let mut read = 0;
    loop {
        let batch = imap_in::fetch_new(&account, tls, cursor, BATCH)
            .await
            .with_context(|| format!("polling {} on {}", settings.user, settings.host))?;
        let count = batch.messages.len();
        for fetched in batch.messages {
            receive(
                state,
                inbox,
                fetched.raw,
                Arrival {
                    source: "imap",
                    recipient: None,
                },
            )
            .await?;
            let at = ImapCursorRow {
                uid_validity: i64::from(batch.cursor.uid_validity),
                last_uid: i64::from(fetched.uid),
            };
            state
                .store
                .save_imap_poll(inbox.id, Some(at), None, state.now())
                .await?;
            read += 1;
        }
        // Also when nothing was new: the cursor records a fresh UIDVALIDITY and clears an
        // earlier error.
        let at = ImapCursorRow {
            uid_validity: i64::from(batch.cursor.uid_validity),
            last_uid: i64::from(batch.cursor.last_uid),
        };
        state
            .store
            .save_imap_poll(inbox.id, Some(at), None, state.now())
            .await?;
        cursor = Some(batch.cursor);
        if count < BATCH {
            return Ok(read);
        }
    }
}

/// Resolves the IMAP host once and refuses loopback and private addresses unless
/// `inbound_email.imap_allow_private`: inbox settings must not become a way to probe the
/// internal network. The poll connects to exactly these addresses. The refusal names the
/// host, never the address it resolved to (an admin must not learn the internal network's
/// names from it); the operator's log has the address.
async fn checked_addresses(
    state: &AppState,
    host: &str,
    port: u16,
) -> anyhow::Result<Vec<std::net::SocketAddr>> {
    let allow = state.config.inbound_email.imap_allow_private;
    let policy = kaltalk_ai::fetch::FetchPolicy {
        allow_loopback: allow,
        allow_private: allow,
        ..Default::default()
    };
    let addresses: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("the IMAP host {host} could not be resolved"))?
        .collect();
    for address in &addresses {
        if let Some(why) = kaltalk_ai::fetch::is_forbidden(address.ip(), &policy) {
            tracing::info!(%host, ip = %address.ip(), why, "IMAP host refused");
            bail!(
                "the IMAP host {host} is not a public internet address; set inbound_email.imap_allow_private to allow private and loopback hosts"
            );
        }
    }
    Ok(addresses)
}

/// Polls each inbox on its own interval until `stop` turns true.
pub async fn poller(state: AppState, mut stop: watch::Receiver<bool>) {
    let tls = TlsOptions::default();
    let mut last_polled: HashMap<InboxId, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let inboxes = match state.store.email_inboxes().await {
            Ok(inboxes) => inboxes,
            Err(err) => {
                tracing::warn!(error = %err, "listing email inboxes for IMAP polling failed");
                continue;
            }
        };
        for inbox in inboxes {
            let Some(settings) = inbox.email().imap else {
                continue;
            };
            let every = Duration::from_secs(u64::from(settings.poll_seconds.max(10)));
            if last_polled
                .get(&inbox.id)
                .is_some_and(|at| at.elapsed() < every)
            {
                continue;
            }
            last_polled.insert(inbox.id, Instant::now());
            match poll_inbox(&state, &inbox, &settings, &tls).await {
                Ok(0) => {}
                Ok(read) => tracing::info!(inbox = %inbox.id, read, "IMAP mailbox polled"),
                Err(err) => {
                    tracing::warn!(inbox = %inbox.id, error = format!("{err:#}"), "IMAP polling failed")
                }
            }
        }
    }
}
