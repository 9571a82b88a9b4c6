//! Behaviour that needs no real IMAP server; the Dovecot tests are in `tests/imap_in.rs`.

use std::time::Duration;

use tokio::net::TcpListener;

use super::*;

fn account_at(port: u16) -> ImapAccount {
    ImapAccount {
        host: "127.0.0.1".to_owned(),
        port,
        connect_to: Vec::new(),
        security: ImapSecurity::Plain,
        user: "someone".to_owned(),
        password: "hunter2".to_owned(),
        mailbox: "INBOX".to_owned(),
    }
}

#[tokio::test]
async fn a_server_that_never_greets_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    // Accepts and then says nothing, holding the connection open.
    let silent = tokio::spawn(async move {
        let (_connection, _) = listener.accept().await.expect("accept");
        std::future::pending::<()>().await;
    });

    let result = fetch_new_within(
        &account_at(port),
        &TlsOptions::default(),
        None,
        10,
        Duration::from_millis(300),
        MAX_MESSAGE_BYTES,
    )
    .await;

    silent.abort();
    assert!(
        matches!(
            result,
            Err(ImapError::Timeout {
                step: "connecting and logging in",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn the_password_stays_out_of_debug_output() {
    let shown = format!("{:?}", account_at(993));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("someone"), "{shown}");
}

#[test]
fn security_reads_from_config_in_lower_case() {
    let security: ImapSecurity =
        serde_json::from_str("\"starttls\"").expect("parse a security name");
    assert_eq!(security, ImapSecurity::StartTls);
}

#[tokio::test]
async fn idle_wakes_up_when_a_message_arrives() {
    let dovecot = crate::testing::dovecot::Dovecot::start().await;
    let account = dovecot.account(ImapSecurity::Plain);
    let tls = dovecot.tls_options();
    let (idling_tx, idling) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        idle::wait_for_new_within(
            &account,
            &tls,
            None,
            Duration::from_secs(120),
            STEP_TIMEOUT,
            move || {
                let _ = idling_tx.send(());
            },
        )
        .await
    });
    idling
        .await
        .expect("the waiter reaches IDLE on an empty mailbox");

    dovecot.append(b"Subject: hello\r\n\r\nhi\r\n").await;

    let outcome = waiter.await.expect("the waiter task");
    assert_eq!(outcome.expect("wait_for_new"), IdleOutcome::Changed);
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_skipped_and_passed() {
    let dovecot = crate::testing::dovecot::Dovecot::start().await;
    let small = b"Subject: small\r\n\r\nshort\r\n".to_vec();
    let large = format!("Subject: large\r\n\r\n{}\r\n", "x".repeat(2000)).into_bytes();
    let after = b"Subject: after\r\n\r\nshort too\r\n".to_vec();
    for raw in [&small, &large, &after] {
        dovecot.append(raw).await;
    }
    let account = dovecot.account(ImapSecurity::Plain);
    let tls = dovecot.tls_options();

    let batch = fetch_new_within(&account, &tls, None, 10, STEP_TIMEOUT, 1000)
        .await
        .expect("fetch_new");

    let raws: Vec<&[u8]> = batch.messages.iter().map(|m| m.raw.as_slice()).collect();
    assert_eq!(raws, vec![small.as_slice(), after.as_slice()]);
    let again = fetch_new_within(&account, &tls, Some(batch.cursor), 10, STEP_TIMEOUT, 1000)
        .await
        .expect("fetch_new");
    assert!(again.messages.is_empty(), "{again:?}");
}
