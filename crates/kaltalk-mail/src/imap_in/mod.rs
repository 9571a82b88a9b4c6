//! Polling an existing mailbox over IMAP for the email channel. No storage here: the caller
//! keeps the [`ImapCursor`] and passes it back, so a restart never imports a message twice.

mod connect;
mod error;
mod idle;
mod plan;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures_util::StreamExt;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

pub(crate) use connect::{ImapSession, open_session};
pub use error::ImapError;
pub use idle::{IdleOutcome, wait_for_new};
use plan::{Plan, plan_batch, uid_set};

/// How long one step (connect and log in, open the mailbox, one message arriving) may take
/// before the poll gives up; the caller polls again on its next interval.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Larger messages are skipped (with a warning), not fetched: one mailbox must not be able to
/// exhaust the server's memory. The cursor still moves past them.
pub const MAX_MESSAGE_BYTES: u32 = 50 * 1024 * 1024;

/// How the connection to the IMAP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapSecurity {
    /// TLS from the first byte, usually port 993.
    Tls,
    /// Plain text upgraded with STARTTLS before logging in, usually port 143.
    StartTls,
    /// No encryption: refused unless the server is on loopback (tests, a local relay).
    Plain,
}

/// Where a mailbox lives and how to log in to it.
#[derive(Clone)]
pub struct ImapAccount {
    /// The server's name: what TLS verifies, and what is resolved unless `connect_to`
    /// says where to connect.
    pub host: String,
    pub port: u16,
    /// The addresses to connect to, already resolved from `host` and checked by the
    /// caller; empty: resolve `host` here. Connecting to the checked addresses, not to
    /// the name again, leaves no window for a DNS answer that changes in between.
    pub connect_to: Vec<std::net::SocketAddr>,
    pub security: ImapSecurity,
    pub user: String,
    pub password: String,
    /// Usually "INBOX".
    pub mailbox: String,
}

impl fmt::Debug for ImapAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapAccount")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("connect_to", &self.connect_to)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .field("mailbox", &self.mailbox)
            .finish()
    }
}

/// Certificates trusted besides the platform's roots.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Extra trust anchors: a test's self-signed CA, or a private CA of the deployment.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

/// Where polling stopped. UIDs only mean something within one UIDVALIDITY: when the server
/// changes it, everything is fetched again and the caller dedupes by Message-ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapCursor {
    pub uid_validity: u32,
    pub last_uid: u32,
}

/// One message exactly as the server stores it (RFC 5322 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// The messages of one poll, oldest first, and the cursor to store once they are imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub messages: Vec<Fetched>,
    pub cursor: ImapCursor,
}

/// Fetches messages with UID > `cursor.last_uid` (all when `cursor` is None or the server's
/// UIDVALIDITY changed), oldest first, at most `max` per call. Messages are read with
/// `BODY.PEEK[]` in a read-only `EXAMINE`, so polling never marks them \Seen. Messages over
/// [`MAX_MESSAGE_BYTES`] are skipped with a warning but count towards `max` and move the
/// cursor. With `max == 0` nothing is fetched and the cursor stays where it was.
pub async fn fetch_new(
    account: &ImapAccount,
    tls: &TlsOptions,
    cursor: Option<ImapCursor>,
    max: usize,
) -> Result<Batch, ImapError> {
    fetch_new_within(account, tls, cursor, max, STEP_TIMEOUT, MAX_MESSAGE_BYTES).await
}

async fn fetch_new_within(
    account: &ImapAccount,
    tls: &TlsOptions,
    cursor: Option<ImapCursor>,
    max: usize,
    step_timeout: Duration,
    max_message_bytes: u32,
) -> Result<Batch, ImapError> {
    let mut session = within(
        step_timeout,
        "connecting and logging in",
        open_session(account, tls),
    )
    .await??;
    let fetched = fetch_in_session(
        &mut session,
        account,
        cursor,
        max,
        step_timeout,
        max_message_bytes,
    )
    .await;
    log_out(session, step_timeout).await;
    fetched
}

async fn fetch_in_session(
    session: &mut ImapSession,
    account: &ImapAccount,
    cursor: Option<ImapCursor>,
    max: usize,
    step_timeout: Duration,
    max_message_bytes: u32,
) -> Result<Batch, ImapError> {
    // EXAMINE opens the mailbox read-only: not even \Recent changes.
    let mailbox = within(
        step_timeout,
        "opening the mailbox",
        session.examine(&account.mailbox),
    )
    .await?
    .map_err(|err| mailbox_error(&account.mailbox, err))?;
    let uid_validity = mailbox.uid_validity.ok_or_else(|| ImapError::Protocol {
        step: "opening the mailbox",
        detail: "the server sent no UIDVALIDITY, so messages cannot be tracked across polls"
            .to_owned(),
    })?;
    let after = match cursor {
        Some(cursor) if cursor.uid_validity == uid_validity => cursor.last_uid,
        _ => 0,
    };
    let unchanged = Batch {
        messages: Vec::new(),
        cursor: ImapCursor {
            uid_validity,
            last_uid: after,
        },
    };
    if mailbox.exists == 0 || after == u32::MAX || max == 0 {
        return Ok(unchanged);
    }

    let sizes = list_sizes(session, after, step_timeout).await?;
    let Plan {
        fetch,
        oversized,
        last_uid,
    } = plan_batch(after, sizes, max, max_message_bytes);
    for (uid, size) in oversized {
        tracing::warn!(
            mailbox = %account.mailbox,
            user = %account.user,
            uid,
            size,
            limit = max_message_bytes,
            "skipping an email larger than the limit"
        );
    }
    let messages = fetch_bodies(session, &fetch, step_timeout).await?;
    Ok(Batch {
        messages,
        cursor: ImapCursor {
            uid_validity,
            last_uid,
        },
    })
}

/// UID and size of every message after `after`. `n:*` always includes the highest UID even
/// when it is below n, so the planner filters again.
async fn list_sizes(
    session: &mut ImapSession,
    after: u32,
    step_timeout: Duration,
) -> Result<Vec<(u32, u32)>, ImapError> {
    const STEP: &str = "listing new messages";
    let range = format!("{}:*", after + 1);
    let responses = within(
        step_timeout,
        STEP,
        session.uid_fetch(&range, "(UID RFC822.SIZE)"),
    )
    .await?
    .map_err(|err| protocol(STEP, err))?;
    let mut responses = pin!(responses);
    let mut sizes = Vec::new();
    while let Some(response) = within(step_timeout, STEP, responses.next()).await? {
        let fetch = response.map_err(|err| protocol(STEP, err))?;
        if let (Some(uid), Some(size)) = (fetch.uid, fetch.size) {
            sizes.push((uid, size));
        }
    }
    Ok(sizes)
}

/// The raw messages, ordered by UID. A UID the server no longer has (expunged since it was
/// listed) is simply missing from the result.
async fn fetch_bodies(
    session: &mut ImapSession,
    uids: &[u32],
    step_timeout: Duration,
) -> Result<Vec<Fetched>, ImapError> {
    const STEP: &str = "fetching messages";
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let responses = within(
        step_timeout,
        STEP,
        session.uid_fetch(uid_set(uids), "(UID BODY.PEEK[])"),
    )
    .await?
    .map_err(|err| protocol(STEP, err))?;
    let mut responses = pin!(responses);
    let mut by_uid = HashMap::with_capacity(uids.len());
    while let Some(response) = within(step_timeout, STEP, responses.next()).await? {
        let fetch = response.map_err(|err| protocol(STEP, err))?;
        // Unsolicited FETCH responses (a flag changed elsewhere) carry no body.
        if let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) {
            by_uid.insert(uid, body.to_vec());
        }
    }
    Ok(uids
        .iter()
        .filter_map(|uid| by_uid.remove(uid).map(|raw| Fetched { uid: *uid, raw }))
        .collect())
}

/// Says goodbye so the server does not log a dropped connection; failing to is harmless.
async fn log_out(mut session: ImapSession, step_timeout: Duration) {
    match tokio::time::timeout(step_timeout, session.logout()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(error = %err, "IMAP logout failed"),
        Err(_) => tracing::debug!("IMAP logout timed out"),
    }
}

/// A NO or BAD to EXAMINE is about the mailbox (missing, no access); anything else is the
/// connection's fault.
fn mailbox_error(mailbox: &str, err: async_imap::error::Error) -> ImapError {
    match err {
        async_imap::error::Error::No(reason) | async_imap::error::Error::Bad(reason) => {
            ImapError::Mailbox {
                mailbox: mailbox.to_owned(),
                reason,
            }
        }
        other => protocol("opening the mailbox", other),
    }
}

fn protocol(step: &'static str, err: async_imap::error::Error) -> ImapError {
    ImapError::Protocol {
        step,
        detail: err.to_string(),
    }
}

async fn within<T>(
    limit: Duration,
    step: &'static str,
    work: impl Future<Output = T>,
) -> Result<T, ImapError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| ImapError::Timeout {
            step,
            seconds: limit.as_secs(),
        })
}

#[cfg(test)]
mod tests;
