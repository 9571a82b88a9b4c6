//! Waiting for new mail with IMAP IDLE, so the caller can fetch as soon as mail arrives
//! instead of on its next polling interval.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;

use super::{
    ImapAccount, ImapCursor, ImapError, STEP_TIMEOUT, TlsOptions, list_sizes, log_out,
    mailbox_error, open_session, within,
};

/// How a [`wait_for_new`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleOutcome {
    /// Messages after the cursor are there, or the mailbox changed while waiting: call
    /// [`super::fetch_new`]. A change may be something else (a deletion, a flag), in which
    /// case that fetch simply finds nothing.
    Changed,
    /// Nothing happened within the wait.
    TimedOut,
}

/// Returns as soon as the mailbox holds messages after `cursor` (at once if it already
/// does), or when `max_wait` has passed. Uses IMAP IDLE, so it needs a server that offers it
/// (most do); keep `max_wait` under 29 minutes, after which servers may drop an idle client.
pub async fn wait_for_new(
    account: &ImapAccount,
    tls: &TlsOptions,
    cursor: Option<ImapCursor>,
    max_wait: Duration,
) -> Result<IdleOutcome, ImapError> {
    wait_for_new_within(account, tls, cursor, max_wait, STEP_TIMEOUT, || {}).await
}

/// `on_idle` runs once the server has accepted IDLE: the point from which a new message is
/// reported by the server rather than found by the first check (tests wait for it).
pub(super) async fn wait_for_new_within(
    account: &ImapAccount,
    tls: &TlsOptions,
    cursor: Option<ImapCursor>,
    max_wait: Duration,
    step_timeout: Duration,
    on_idle: impl FnOnce(),
) -> Result<IdleOutcome, ImapError> {
    const STEP: &str = "waiting for new mail (IDLE)";
    let mut session = within(
        step_timeout,
        "connecting and logging in",
        open_session(account, tls),
    )
    .await??;
    let capabilities = within(step_timeout, STEP, session.capabilities())
        .await?
        .map_err(|err| ImapError::Protocol {
            step: STEP,
            detail: err.to_string(),
        })?;
    if !capabilities.has_str("IDLE") {
        log_out(session, step_timeout).await;
        return Err(ImapError::Protocol {
            step: STEP,
            detail: "the server does not offer IDLE; poll with fetch_new on an interval instead"
                .to_owned(),
        });
    }
    let mailbox = within(step_timeout, STEP, session.examine(&account.mailbox))
        .await?
        .map_err(|err| mailbox_error(&account.mailbox, err))?;
    let after = match (cursor, mailbox.uid_validity) {
        (Some(cursor), Some(validity)) if cursor.uid_validity == validity => cursor.last_uid,
        _ => 0,
    };
    // An exact check rather than UIDNEXT: after deleted messages UIDNEXT stays ahead of the
    // cursor forever, and the caller would be woken in a loop.
    if mailbox.exists > 0 && after < u32::MAX {
        let listed = list_sizes(&mut session, after, step_timeout).await?;
        if listed.iter().any(|(uid, _)| *uid > after) {
            log_out(session, step_timeout).await;
            return Ok(IdleOutcome::Changed);
        }
    }

    let mut idle = session.idle();
    within(step_timeout, STEP, idle.init())
        .await?
        .map_err(|err| ImapError::Protocol {
            step: STEP,
            detail: err.to_string(),
        })?;
    on_idle();
    let outcome = {
        let (response, _interrupt) = idle.wait_with_timeout(max_wait);
        // The library's timeout restarts on every keepalive the server sends; this one
        // bounds the whole wait.
        match tokio::time::timeout(max_wait, response).await {
            Ok(Ok(IdleResponse::NewData(_))) => Ok(IdleOutcome::Changed),
            Ok(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) | Err(_) => {
                Ok(IdleOutcome::TimedOut)
            }
            Ok(Err(err)) => Err(ImapError::Protocol {
                step: STEP,
                detail: err.to_string(),
            }),
        }
    };
    if outcome.is_ok() {
        match within(step_timeout, STEP, idle.done()).await {
            Ok(Ok(session)) => log_out(session, step_timeout).await,
            Ok(Err(err)) => tracing::debug!(error = %err, "ending IMAP IDLE failed"),
            Err(_) => tracing::debug!("ending IMAP IDLE timed out"),
        }
    }
    outcome
}
