//! Outbound email: kept in the outbox by default, delivered over real SMTP when a relay is
//! configured.

use kaltalk_server::config::Secret;
use kaltalk_server::jobs::Ran;
use kaltalk_store::{EmailState, JobState};
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::helpers::{spawn_app, spawn_app_with};

/// A minimal SMTP server (RFC 5321 without extensions) on port 0 that hands every
/// message it accepts to the test. `fail_first` answers the first DATA with a 451.
async fn smtp_sink(fail_first: bool) -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut failures_left = usize::from(fail_first);
        while let Ok((stream, _)) = listener.accept().await {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 sink ESMTP\r\n").await.ok();
            let mut rcpt = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                let upper = line.to_ascii_uppercase();
                if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    write.write_all(b"250 sink\r\n").await.ok();
                } else if upper.starts_with("RCPT TO:") {
                    rcpt = line[8..].trim().trim_matches(['<', '>']).to_owned();
                    write.write_all(b"250 OK\r\n").await.ok();
                } else if upper.starts_with("DATA") {
                    write.write_all(b"354 go ahead\r\n").await.ok();
                    let mut data = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        data.push_str(&line);
                        data.push('\n');
                    }
                    if failures_left > 0 {
                        failures_left -= 1;
                        write.write_all(b"451 try again later\r\n").await.ok();
                    } else {
                        write.write_all(b"250 queued\r\n").await.ok();
                        let _ = tx.send((rcpt.clone(), data));
                    }
                } else if upper.starts_with("QUIT") {
                    write.write_all(b"221 bye\r\n").await.ok();
                    break;
                } else {
                    write.write_all(b"250 OK\r\n").await.ok();
                }
            }
        }
    });
    (format!("smtp://{addr}"), rx)
}

#[tokio::test]
async fn without_smtp_emails_stay_in_the_outbox_that_owners_read() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    crate::teams::invite(&app, &owner, "bob@example.com", "agent").await;
    assert!(app.run_jobs().await.is_empty(), "nothing to deliver");
    let list = owner.get_html("/settings/outbox").await;
    assert!(list.contains("invited you to Acme"), "{list}");
    assert!(list.contains("No SMTP relay is configured"));
    let email = app
        .last_email_to(owner.org_id().await, "bob@example.com")
        .await;
    assert_eq!(email.state, EmailState::Kept);
    let detail = owner
        .get_html(&format!("/settings/outbox/{}", email.id))
        .await;
    assert!(detail.contains("/invitations/"));

    // Her own confirmation link is personal mail: kept, but not in the organization's
    // outbox.
    assert!(!list.contains("Confirm your email address"), "{list}");
    let personal = app.last_personal_email_to("ada@example.com").await;
    assert_eq!(personal.state, EmailState::Kept);
    assert!(personal.text_body.contains("/verify-email?token="));
}

#[tokio::test]
async fn with_smtp_the_worker_delivers_multipart_mail_and_forgets_the_body() {
    let (url, mut inbox) = smtp_sink(false).await;
    let app = spawn_app_with(|config| {
        config.smtp.url = Some(Secret::new(url));
        config.smtp.from = "Acme Support <support@acme.test>".into();
    })
    .await;
    app.sign_up("Ada", "ada@example.com", "Acme").await;
    let queued = app.last_personal_email_to("ada@example.com").await;
    assert_eq!(queued.state, EmailState::Queued);

    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("email.deliver".into())]
    );
    let (rcpt, data) = inbox.recv().await.expect("a delivered message");
    assert_eq!(rcpt, "ada@example.com");
    assert!(
        data.contains("Subject: Confirm your email address"),
        "{data}"
    );
    assert!(
        data.contains("multipart/alternative"),
        "text and HTML parts"
    );
    assert!(
        data.lines().any(|l| l.starts_with("From:")
            && l.contains("Acme Support")
            && l.contains("<support@acme.test>")),
        "{data}"
    );
    assert!(data.contains("verify-email?token="));

    let sent = app
        .state
        .store
        .get_email_for_delivery(queued.id)
        .await
        .expect("email");
    assert_eq!(sent.state, EmailState::Sent);
    assert!(
        sent.text_body.is_empty() && sent.html_body.is_empty(),
        "the link does not stay readable in the database"
    );
}

#[tokio::test]
async fn a_refused_delivery_is_retried_after_a_backoff() {
    let (url, mut inbox) = smtp_sink(true).await;
    let app = spawn_app_with(|config| config.smtp.url = Some(Secret::new(url))).await;
    app.sign_up("Ada", "ada@example.com", "Acme").await;

    let first = app.run_jobs().await;
    assert_eq!(
        first,
        vec![Ran::Failed {
            kind: "email.deliver".into(),
            state: JobState::Queued
        }]
    );
    assert!(
        app.run_jobs().await.is_empty(),
        "not due before the backoff"
    );
    app.clock.advance(chrono::Duration::seconds(5));
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("email.deliver".into())]
    );
    assert_eq!(inbox.recv().await.expect("delivered").0, "ada@example.com");
    let email = app.last_personal_email_to("ada@example.com").await;
    assert_eq!(email.state, EmailState::Sent);
}

#[tokio::test]
async fn agents_and_admins_cannot_read_the_outbox() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let admin = crate::teams::join(&app, &owner, "admin@example.com", "admin").await;
    let response = admin.get("/settings/outbox").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
