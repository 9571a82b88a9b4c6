//! IMAP polling against a real Dovecot on loopback (installed by `scripts/dovecot-setup.sh`
//! on first use).

use std::time::Duration;

use kaltalk_mail::imap_in::{
    Batch, IdleOutcome, ImapAccount, ImapCursor, ImapError, ImapSecurity, TlsOptions, fetch_new,
    wait_for_new,
};
use kaltalk_mail::testing::ClosedPort;
use kaltalk_mail::testing::dovecot::Dovecot;

/// A CRLF message (what IMAP stores and returns) with an 8-bit body, so "byte-exact" means
/// something.
fn message(n: u32) -> Vec<u8> {
    format!(
        "From: Visitor {n} <visitor{n}@example.com>\r\n\
         To: support@example.com\r\n\
         Subject: Question number {n}\r\n\
         Message-ID: <question-{n}@example.com>\r\n\
         Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         Grüße, this is question {n}.\r\n\
         \r\n\
         -- \r\n\
         Visitor {n}\r\n"
    )
    .into_bytes()
}

fn raws(batch: &Batch) -> Vec<Vec<u8>> {
    batch.messages.iter().map(|m| m.raw.clone()).collect()
}

async fn fetch(
    account: &ImapAccount,
    tls: &TlsOptions,
    cursor: Option<ImapCursor>,
    max: usize,
) -> Batch {
    fetch_new(account, tls, cursor, max)
        .await
        .unwrap_or_else(|err| panic!("fetch_new({account:?}): {err}"))
}

#[tokio::test]
async fn new_messages_arrive_once_oldest_first_and_byte_exact() {
    let dovecot = Dovecot::start().await;
    let account = dovecot.account(ImapSecurity::Plain);
    let tls = dovecot.tls_options();
    for n in 1..=3 {
        dovecot.append(&message(n)).await;
    }

    let first = fetch(&account, &tls, None, 10).await;
    assert_eq!(raws(&first), vec![message(1), message(2), message(3)]);
    let uids: Vec<u32> = first.messages.iter().map(|m| m.uid).collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "{uids:?}");
    assert_eq!(first.cursor.last_uid, uids[2]);

    let again = fetch(&account, &tls, Some(first.cursor), 10).await;
    assert!(again.messages.is_empty(), "{again:?}");
    assert_eq!(again.cursor, first.cursor);

    dovecot.append(&message(4)).await;
    dovecot.append(&message(5)).await;
    let later = fetch(&account, &tls, Some(again.cursor), 10).await;
    assert_eq!(raws(&later), vec![message(4), message(5)]);
    assert_eq!(later.cursor.uid_validity, first.cursor.uid_validity);
    assert!(later.cursor.last_uid > first.cursor.last_uid);
}

#[tokio::test]
async fn max_is_honoured_across_calls() {
    let dovecot = Dovecot::start().await;
    let account = dovecot.account(ImapSecurity::Plain);
    let tls = dovecot.tls_options();
    for n in 1..=5 {
        dovecot.append(&message(n)).await;
    }

    let mut cursor = None;
    let mut sizes = Vec::new();
    let mut received = Vec::new();
    for _ in 0..4 {
        let batch = fetch(&account, &tls, cursor, 2).await;
        sizes.push(batch.messages.len());
        received.extend(raws(&batch));
        cursor = Some(batch.cursor);
    }

    assert_eq!(sizes, vec![2, 2, 1, 0]);
    assert_eq!(received, (1..=5).map(message).collect::<Vec<_>>());
}

#[tokio::test]
async fn implicit_tls_trusts_the_given_ca() {
    let dovecot = Dovecot::start().await;
    dovecot.append(&message(1)).await;

    let batch = fetch(
        &dovecot.account(ImapSecurity::Tls),
        &dovecot.tls_options(),
        None,
        10,
    )
    .await;

    assert_eq!(raws(&batch), vec![message(1)]);
}

#[tokio::test]
async fn starttls_trusts_the_given_ca() {
    let dovecot = Dovecot::start().await;
    dovecot.append(&message(1)).await;

    let batch = fetch(
        &dovecot.account(ImapSecurity::StartTls),
        &dovecot.tls_options(),
        None,
        10,
    )
    .await;

    assert_eq!(raws(&batch), vec![message(1)]);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_on_both_tls_kinds() {
    let dovecot = Dovecot::start().await;

    for security in [ImapSecurity::Tls, ImapSecurity::StartTls] {
        let result = fetch_new(&dovecot.account(security), &TlsOptions::default(), None, 10).await;
        assert!(
            matches!(result, Err(ImapError::Tls { .. })),
            "{security:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_login_error_naming_the_user() {
    let dovecot = Dovecot::start().await;
    let account = ImapAccount {
        password: "not-the-password".to_owned(),
        ..dovecot.account(ImapSecurity::Plain)
    };

    let result = fetch_new(&account, &dovecot.tls_options(), None, 10).await;

    let Err(err @ ImapError::Login { .. }) = result else {
        panic!("expected a login error, got {result:?}");
    };
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "the IMAP server refused the login for user {}",
            dovecot.user()
        )),
        "{message}"
    );
    assert!(!message.contains("not-the-password"), "{message}");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    // Held for the whole test, so nothing else can start listening there meanwhile.
    let closed = ClosedPort::new();
    let closed_port = closed.addr().port();
    let account = ImapAccount {
        host: "127.0.0.1".to_owned(),
        port: closed_port,
        connect_to: Vec::new(),
        security: ImapSecurity::Tls,
        user: "someone".to_owned(),
        password: "secret".to_owned(),
        mailbox: "INBOX".to_owned(),
    };

    let result = fetch_new(&account, &TlsOptions::default(), None, 10).await;

    let Err(err @ ImapError::Connect { .. }) = result else {
        panic!("expected a connect error, got {result:?}");
    };
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{closed_port}")),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_mailbox_is_a_mailbox_error() {
    let dovecot = Dovecot::start().await;
    let account = ImapAccount {
        mailbox: "No Such Folder".to_owned(),
        ..dovecot.account(ImapSecurity::Plain)
    };

    let result = fetch_new(&account, &dovecot.tls_options(), None, 10).await;

    assert!(
        matches!(&result, Err(ImapError::Mailbox { mailbox, .. }) if mailbox == "No Such Folder"),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_new_uidvalidity_fetches_everything_again() {
    let dovecot = Dovecot::start().await;
    let tls = dovecot.tls_options();
    let support = ImapAccount {
        mailbox: "Support".to_owned(),
        ..dovecot.account(ImapSecurity::Plain)
    };
    dovecot.create_mailbox("Support").await;
    dovecot.append_to("Support", &message(1)).await;
    dovecot.append_to("Support", &message(2)).await;
    let before = fetch(&support, &tls, None, 10).await;
    assert_eq!(before.messages.len(), 2);

    // Recreated, the mailbox restarts its UIDs under a new UIDVALIDITY.
    dovecot.delete_mailbox("Support").await;
    dovecot.create_mailbox("Support").await;
    dovecot.append_to("Support", &message(3)).await;
    let after = fetch(&support, &tls, Some(before.cursor), 10).await;

    assert_ne!(after.cursor.uid_validity, before.cursor.uid_validity);
    assert_eq!(raws(&after), vec![message(3)]);
    assert!(
        after.messages[0].uid <= before.cursor.last_uid,
        "the test needs a UID the old cursor would have skipped: {after:?} after {before:?}"
    );
}

#[tokio::test]
async fn a_cursor_from_another_mailbox_fetches_from_the_start() {
    let dovecot = Dovecot::start().await;
    let tls = dovecot.tls_options();
    let inbox = dovecot.account(ImapSecurity::Plain);
    for n in 1..=2 {
        dovecot.append(&message(n)).await;
    }
    let inbox_cursor = fetch(&inbox, &tls, None, 10).await.cursor;
    dovecot.create_mailbox("Archive").await;
    dovecot.append_to("Archive", &message(9)).await;

    let archive = ImapAccount {
        mailbox: "Archive".to_owned(),
        ..inbox
    };
    let batch = fetch(&archive, &tls, Some(inbox_cursor), 10).await;

    assert_ne!(batch.cursor.uid_validity, inbox_cursor.uid_validity);
    assert_eq!(raws(&batch), vec![message(9)]);
}

#[tokio::test]
async fn polling_does_not_mark_messages_seen() {
    let dovecot = Dovecot::start().await;
    dovecot.append(&message(1)).await;

    let batch = fetch(
        &dovecot.account(ImapSecurity::Plain),
        &dovecot.tls_options(),
        None,
        10,
    )
    .await;
    let uid = batch.messages[0].uid;

    let flags = dovecot.flags("INBOX", uid).await;
    assert!(!flags.iter().any(|flag| flag.contains("Seen")), "{flags:?}");
}

#[tokio::test]
async fn waiting_returns_at_once_when_mail_is_already_there() {
    let dovecot = Dovecot::start().await;
    let account = dovecot.account(ImapSecurity::StartTls);
    let tls = dovecot.tls_options();
    dovecot.append(&message(1)).await;

    // Were the waiting mail missed, this would end in TimedOut after two minutes.
    let outcome = wait_for_new(&account, &tls, None, Duration::from_secs(120))
        .await
        .expect("wait_for_new");

    assert_eq!(outcome, IdleOutcome::Changed);
}

#[tokio::test]
async fn waiting_past_everything_times_out_even_after_deletions() {
    let dovecot = Dovecot::start().await;
    let account = ImapAccount {
        mailbox: "Support".to_owned(),
        ..dovecot.account(ImapSecurity::Plain)
    };
    let tls = dovecot.tls_options();
    dovecot.create_mailbox("Support").await;
    for n in 1..=3 {
        dovecot.append_to("Support", &message(n)).await;
    }
    let first_only = fetch(&account, &tls, None, 1).await.cursor;
    // The two messages after the cursor go away; UIDNEXT stays ahead of the cursor.
    dovecot
        .expunge_all_after("Support", first_only.last_uid)
        .await;
    let cursor = fetch(&account, &tls, Some(first_only), 10).await.cursor;

    let outcome = wait_for_new(&account, &tls, Some(cursor), Duration::from_millis(300))
        .await
        .expect("wait_for_new");

    assert_eq!(outcome, IdleOutcome::TimedOut);
}

#[tokio::test]
async fn the_connection_goes_to_the_checked_addresses_not_to_a_new_lookup() {
    let dovecot = Dovecot::start().await;
    // A name that resolves nowhere (RFC 2606): a second lookup would fail. The caller
    // resolved and checked the host once and hands over where to connect.
    let account = ImapAccount {
        host: "imap.example.invalid".to_owned(),
        connect_to: vec![std::net::SocketAddr::from((
            [127, 0, 0, 1],
            dovecot.imap_port(),
        ))],
        ..dovecot.account(ImapSecurity::Plain)
    };

    let batch = fetch_new(&account, &dovecot.tls_options(), None, 10)
        .await
        .expect("connected to the pinned address");

    assert!(batch.messages.is_empty());
}
