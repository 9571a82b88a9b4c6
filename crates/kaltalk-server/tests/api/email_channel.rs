//! The email channel end to end: mail delivered by a real SMTP client (Python's smtplib)
//! to the listener, a real IMAP server (Dovecot) polled, replies received by a local SMTP
//! sink with their threading headers checked, and a ten-message thread in the styles of
//! Gmail, Outlook and Apple Mail that stays one conversation.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use kaltalk_core::chat::{Handling, MessageKind};
use kaltalk_core::{ConversationId, OrgId};
use kaltalk_mail::inbound::Address;
use kaltalk_mail::inbound::fixtures::{ClientStyle, reply_fixture};
use kaltalk_store::conversations::{ConversationFilter, ConversationSummary};
use kaltalk_store::messages::Message;
use reqwest::StatusCode;

use kaltalk_mail::smtp_in::testing::{SinkServer, spawn_sink_server};

use crate::helpers::{Browser, TestApp, spawn_app, spawn_app_with};

pub(crate) const SUPPORT: &str = "support@acme.test";

/// Python's smtplib, as a customer's mail server: sends `raw` from `from` to `rcpts`.
/// Returns `Ok(())` when every recipient was accepted, else the refusal it printed.
const SMTPLIB: &str = r#"
import smtplib, ssl, sys
host, port, sender, rcpts, tls, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(","), sys.argv[5] == "tls", sys.argv[6]
raw = sys.stdin.buffer.read()
try:
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.ehlo("mx.customer.test")
        if tls:
            if not client.has_extn("starttls"):
                print("no STARTTLS offered"); sys.exit(3)
            context = ssl.create_default_context(cafile=cafile)
            context.check_hostname = False
            client.starttls(context=context)
            client.ehlo("mx.customer.test")
        client.sendmail(sender, rcpts, raw)
    print("ok")
except smtplib.SMTPRecipientsRefused as refused:
    code, message = list(refused.recipients.values())[0]
    print(f"refused {code} {message.decode()}"); sys.exit(2)
except smtplib.SMTPException as error:
    print(f"error {error}"); sys.exit(2)
"#;

pub(crate) async fn smtplib(
    addr: SocketAddr,
    from: &str,
    rcpts: &[&str],
    raw: Vec<u8>,
    tls_ca: Option<&Path>,
) -> Result<(), String> {
    let args = vec![
        "-c".to_owned(),
        SMTPLIB.to_owned(),
        addr.ip().to_string(),
        addr.port().to_string(),
        from.to_owned(),
        rcpts.join(","),
        if tls_ca.is_some() { "tls" } else { "plain" }.to_owned(),
        tls_ca.map(|p| p.display().to_string()).unwrap_or_default(),
    ];
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("python3")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&raw)
            .expect("write the message");
        let output = child.wait_with_output().expect("smtplib");
        let printed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() && printed == "ok" {
            Ok(())
        } else {
            Err(format!(
                "{printed} {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    })
    .await
    .expect("smtplib task")
}

pub(crate) async fn create_email_inbox(owner: &Browser, address: &str) -> reqwest::Response {
    owner
        .submit(
            "/settings/inboxes",
            "/settings/inboxes/email",
            &[("address", address), ("email_name", "")],
        )
        .await
}

/// Olivia's organization with its support inbox on `app`; also where its SMTP listener is.
async fn with_support_inbox(app: TestApp) -> (TestApp, Browser, OrgId, SocketAddr) {
    let smtp = app.smtp.expect("SMTP listener on");
    let owner = app
        .sign_up("Olivia Owner", "olivia@acme.test", "Acme")
        .await;
    let org = owner.org_id().await;
    assert_eq!(
        create_email_inbox(&owner, SUPPORT).await.status(),
        StatusCode::SEE_OTHER
    );
    (app, owner, org, smtp)
}

async fn conversations(app: &TestApp, org: OrgId) -> Vec<ConversationSummary> {
    app.state
        .store
        .list_conversations(
            org,
            &ConversationFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("conversations")
}

async fn messages(app: &TestApp, org: OrgId, conversation: ConversationId) -> Vec<Message> {
    app.state
        .store
        .list_messages(org, conversation, true)
        .await
        .expect("messages")
}

async fn first_message(app: &TestApp, org: OrgId, conversation: ConversationId) -> Message {
    messages(app, org, conversation)
        .await
        .into_iter()
        .next()
        .expect("a message")
}

async fn handling_of(app: &TestApp, org: OrgId, email: &str) -> Handling {
    conversations(app, org)
        .await
        .into_iter()
        .find(|c| c.contact_email.as_deref() == Some(email))
        .expect("conversation")
        .conversation
        .handling
}

pub(crate) fn ada() -> Address {
    Address {
        name: Some("Ada Lovelace".into()),
        email: "ada@customer.test".into(),
    }
}

#[tokio::test]
async fn an_email_with_nul_bytes_is_accepted_and_stored_without_them() {
    let app = spawn_app().await;
    let (app, _owner, org, smtp) = with_support_inbox(app).await;

    // A NUL in a header and in the body: PostgreSQL cannot store U+0000, which used to
    // answer 451 forever (and the sender bounced the mail in the end).
    let raw = b"From: \"Ada\0 Lovelace\" <ada@customer.test>\r\nTo: support@acme.test\r\n\
Subject: Order\0 1234\r\nMessage-ID: <nul@mail.customer.test>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nMy order\0 has not arrived.\r\n"
        .to_vec();
    smtplib(smtp, "ada@customer.test", &[SUPPORT], raw, None)
        .await
        .expect("delivered: 250");

    let list = conversations(&app, org).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].conversation.subject.as_deref(), Some("Order 1234"));
    let said = first_message(&app, org, list[0].conversation.id).await;
    assert_eq!(said.text.trim(), "My order has not arrived.");
    assert_eq!(said.sender_name.as_deref(), Some("Ada Lovelace"));
}

#[tokio::test]
async fn the_listener_commits_a_message_before_it_answers_and_refuses_unknown_recipients() {
    let app = spawn_app().await;
    let (app, owner, org, smtp) = with_support_inbox(app).await;

    let raw = reply_fixture(
        ClientStyle::Gmail,
        &ada(),
        SUPPORT,
        "Where is order 1234?",
        "first@mail.customer.test",
        None,
        &[],
        "Hello, my order has not arrived yet.",
        "",
    );
    smtplib(smtp, "ada@customer.test", &[SUPPORT], raw, None)
        .await
        .expect("delivered");
    // smtplib returned after our 250: the message is already in the database.
    let list = conversations(&app, org).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].contact_email.as_deref(), Some("ada@customer.test"));
    assert_eq!(
        list[0].conversation.subject.as_deref(),
        Some("Where is order 1234?")
    );
    let said = messages(&app, org, list[0].conversation.id).await;
    assert_eq!(said[0].text.trim(), "Hello, my order has not arrived yet.");
    assert_eq!(said[0].sender_name.as_deref(), Some("Ada Lovelace"));

    let refused = smtplib(
        smtp,
        "ada@customer.test",
        &["nobody@acme.test"],
        b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
        None,
    )
    .await
    .expect_err("unknown recipient");
    assert!(refused.starts_with("refused 550"), "{refused}");
    assert_eq!(conversations(&app, org).await.len(), 1, "nothing stored");

    // The conversation shows in the inbox with its subject, and the original is viewable.
    let html = owner
        .get_html(&format!("/inbox?view=all&c={}", list[0].conversation.id))
        .await;
    assert!(html.contains("Where is order 1234?"), "{html}");
    let original = owner
        .get_html(&format!("/inbox/messages/{}/original", said[0].id))
        .await;
    assert!(original.contains("first@mail.customer.test"));
    let eml = owner
        .get(&format!("/inbox/messages/{}/original.eml", said[0].id))
        .await;
    assert_eq!(eml.status(), StatusCode::OK);
    assert!(
        eml.text()
            .await
            .expect("eml")
            .contains("Message-ID: <first@mail.customer.test>")
    );

    // Another organization sees none of it.
    let stranger = app.sign_up("Sam Stranger", "sam@other.test", "Other").await;
    for path in [
        format!("/inbox/messages/{}/original", said[0].id),
        format!("/inbox/messages/{}/original.eml", said[0].id),
        format!("/settings/inboxes/{}", list[0].conversation.inbox_id),
    ] {
        assert_eq!(
            stranger.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

/// The headers of a message as the sink received it, unfolded, by lower-case name.
fn headers(raw: &str) -> std::collections::HashMap<String, String> {
    let mut headers = std::collections::HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in raw.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.as_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = current.take() {
            headers.insert(name, value);
        }
        if let Some((name, value)) = line.split_once(':') {
            current = Some((name.trim().to_lowercase(), value.trim().to_owned()));
        }
    }
    if let Some((name, value)) = current {
        headers.insert(name, value);
    }
    headers
}

fn bracketed(id: &str) -> String {
    format!("<{id}>")
}

/// The local SMTP sink standing in for the relay, and the config that sends through it.
async fn relay() -> SinkServer {
    spawn_sink_server().await.1
}

/// What reached the relay for `to`, oldest first, as (recipient, raw text).
async fn relayed_to(relay: &SinkServer, to: &str) -> Vec<String> {
    relay
        .messages()
        .await
        .into_iter()
        .filter(|m| m.envelope.rcpt_to.iter().any(|r| r == to))
        .map(|m| String::from_utf8_lossy(&m.raw).into_owned())
        .collect()
}

/// Replies with `text` from the dashboard, runs the jobs, and returns what reached the
/// relay for the customer.
async fn reply_and_relay(
    app: &TestApp,
    owner: &Browser,
    conversation: ConversationId,
    text: &str,
    relay: &SinkServer,
) -> String {
    let before = relayed_to(relay, "ada@customer.test").await.len();
    let response = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[("text", text), ("kind", "text")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.run_jobs().await;
    let mut sent = relayed_to(relay, "ada@customer.test").await;
    assert_eq!(sent.len(), before + 1, "the reply reached the relay");
    sent.pop().expect("reply")
}

#[tokio::test]
async fn a_ten_message_thread_in_three_mail_clients_stays_one_conversation_and_noise_opens_nothing()
{
    let relay = relay().await;
    let relay_url = relay.smtp_url();
    let app = spawn_app_with(|config| {
        config.smtp.url = Some(kaltalk_server::config::Secret::new(relay_url));
    })
    .await;
    let (app, owner, org, smtp) = with_support_inbox(app).await;

    let styles = [
        ClientStyle::Gmail,
        ClientStyle::Outlook,
        ClientStyle::Apple,
        ClientStyle::Gmail,
        ClientStyle::Outlook,
    ];
    let mut chain: Vec<String> = Vec::new();
    let mut ours: Option<String> = None;
    let mut last_answer = String::new();
    let mut conversation = None;
    for (round, style) in styles.into_iter().enumerate() {
        let id = format!("c{round}@mail.customer.test");
        // Outlook keeps In-Reply-To but may carry only the newest id in References.
        let references: Vec<String> = match style {
            ClientStyle::Outlook => ours.iter().cloned().collect(),
            _ => chain.clone(),
        };
        let body = format!("Question number {} about the broken vase.", round + 1);
        let raw = reply_fixture(
            style,
            &ada(),
            SUPPORT,
            if round == 0 {
                "Broken vase"
            } else {
                "RE: Broken vase"
            },
            &id,
            ours.as_deref(),
            &references,
            &body,
            &last_answer,
        );
        smtplib(smtp, "ada@customer.test", &[SUPPORT], raw, None)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let list = conversations(&app, org).await;
        assert_eq!(
            list.len(),
            1,
            "round {round} ({style:?}) opened a new conversation"
        );
        let id_of_conversation = list[0].conversation.id;
        conversation = Some(id_of_conversation);
        let said = messages(&app, org, id_of_conversation).await;
        let latest = said
            .iter()
            .rev()
            .find(|m| m.sender_kind.as_str() == "contact")
            .expect("customer message");
        assert_eq!(
            latest.text.trim(),
            body,
            "round {round} ({style:?}): quoted history trimmed"
        );
        chain.push(id.clone());

        last_answer = format!("Answer number {}: a new vase is on its way.", round + 1);
        let raw_reply =
            reply_and_relay(&app, &owner, id_of_conversation, &last_answer, &relay).await;
        let h = headers(&raw_reply);
        assert_eq!(h.get("in-reply-to"), Some(&bracketed(&id)), "{raw_reply}");
        let references = h.get("references").expect("References");
        for earlier in &chain {
            assert!(
                references.contains(&bracketed(earlier)),
                "{references} lacks {earlier}"
            );
        }
        assert!(h["from"].contains("Olivia Owner at Acme"), "{}", h["from"]);
        assert!(h["from"].contains(SUPPORT));
        assert!(h["reply-to"].contains("support+"), "{}", h["reply-to"]);
        assert_eq!(h["subject"], "Re: Broken vase");
        let ours_id = h["message-id"].trim_matches(['<', '>']).to_owned();
        assert!(!chain.contains(&ours_id));
        chain.push(ours_id.clone());
        ours = Some(ours_id);
    }
    let conversation = conversation.expect("a conversation");
    let texts: Vec<Message> = messages(&app, org, conversation)
        .await
        .into_iter()
        .filter(|m| m.kind == MessageKind::Text)
        .collect();
    assert_eq!(texts.len(), 10, "five questions and five answers");
    assert!(
        texts
            .iter()
            .filter(|m| m.sender_kind.as_str() == "agent")
            .all(|m| m.email_fact("delivery") == Some("sent")),
        "every answer shows as emailed"
    );
    let ours = ours.expect("our last reply");

    // A newsletter reply from someone else, to the same thread, is its own conversation.
    let bob = Address {
        name: Some("Bob".into()),
        email: "bob@elsewhere.test".into(),
    };
    let raw = reply_fixture(
        ClientStyle::Gmail,
        &bob,
        SUPPORT,
        "Re: Broken vase",
        "bob1@elsewhere.test",
        Some(&ours),
        std::slice::from_ref(&ours),
        "Unsubscribe me please.",
        "",
    );
    smtplib(smtp, "bob@elsewhere.test", &[SUPPORT], raw, None)
        .await
        .expect("delivered");
    assert_eq!(conversations(&app, org).await.len(), 2);

    // An out-of-office answer and a bounce open nothing; they are noted on the thread.
    let auto_reply = format!(
        "From: Ada Lovelace <ada@customer.test>\r\nTo: {SUPPORT}\r\nSubject: Automatic reply: Broken vase\r\n\
         Message-ID: <ooo1@mail.customer.test>\r\nIn-Reply-To: <{ours}>\r\nAuto-Submitted: auto-replied\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nI am out of the office until Monday.\r\n"
    );
    smtplib(
        smtp,
        "ada@customer.test",
        &[SUPPORT],
        auto_reply.into_bytes(),
        None,
    )
    .await
    .expect("delivered");
    let bounce = format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\nTo: {SUPPORT}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.customer.test>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n\
         --b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n\
         Final-Recipient: rfc822; ada@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{ours}>\r\nSubject: Re: Broken vase\r\n\r\n\
         --b1--\r\n"
    );
    smtplib(smtp, "", &[SUPPORT], bounce.into_bytes(), None)
        .await
        .expect("delivered");
    assert_eq!(
        conversations(&app, org).await.len(),
        2,
        "noise opened a conversation"
    );
    let notes: Vec<String> = messages(&app, org, conversation)
        .await
        .into_iter()
        .filter(|m| m.kind == MessageKind::Note)
        .map(|m| m.text)
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("Automatic reply"), "{notes:?}");
    assert!(
        notes[1].starts_with("A delivery failure report"),
        "{notes:?}"
    );
    assert!(app.run_jobs().await.is_empty(), "noise triggers nothing");
}

#[tokio::test]
async fn malformed_mime_an_unknown_charset_and_an_oversized_attachment_each_give_a_message_and_a_note()
 {
    let app = spawn_app_with(|config| {
        config.inbound_email.max_attachment_bytes = 2048;
    })
    .await;
    let (app, owner, org, smtp) = with_support_inbox(app).await;

    let malformed = "From: ada@customer.test\r\nTo: support@acme.test\r\nSubject: broken\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"never-closed\"\r\n\r\n\
        --never-closed\r\nContent-Type: text/plain\r\n\r\nThe body survives the broken MIME.\r\n";
    let unknown_charset = "From: Bea <bea@customer.test>\r\nTo: support@acme.test\r\nSubject: charset\r\n\
        Message-ID: <charset@customer.test>\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=\"x-unknown-42\"\r\n\r\nPlain words in an unknown charset.\r\n";
    let big = "A".repeat(6000);
    let oversized = format!(
        "From: Cy <cy@customer.test>\r\nTo: support@acme.test\r\nSubject: big file\r\n\
         Message-ID: <big@customer.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
         --m\r\nContent-Type: text/plain\r\n\r\nHere is the log.\r\n\
         --m\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"server.log\"\r\n\r\n{big}\r\n--m--\r\n"
    );
    for (from, raw) in [
        ("ada@customer.test", malformed.to_owned()),
        ("bea@customer.test", unknown_charset.to_owned()),
        ("cy@customer.test", oversized),
    ] {
        smtplib(smtp, from, &[SUPPORT], raw.into_bytes(), None)
            .await
            .unwrap_or_else(|e| panic!("{from}: {e}"));
    }
    let list = conversations(&app, org).await;
    assert_eq!(list.len(), 3);
    let by_sender = |email: &str| {
        list.iter()
            .find(|c| c.contact_email.as_deref() == Some(email))
            .unwrap_or_else(|| panic!("no conversation from {email}"))
            .conversation
            .id
    };
    let notes_of = |message: &Message| -> Vec<String> {
        message
            .metadata
            .as_ref()
            .and_then(|m| m.0["email"]["notes"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect()
    };
    let broken = first_message(&app, org, by_sender("ada@customer.test")).await;
    assert!(broken.text.contains("The body survives"), "{}", broken.text);
    let odd = first_message(&app, org, by_sender("bea@customer.test")).await;
    assert!(odd.text.contains("Plain words"), "{}", odd.text);
    assert!(
        notes_of(&odd).iter().any(|n| n.contains("x-unknown-42")),
        "{:?}",
        notes_of(&odd)
    );
    let big = first_message(&app, org, by_sender("cy@customer.test")).await;
    assert!(big.text.contains("Here is the log."));
    assert!(big.attachments.is_empty(), "the oversized file is not kept");
    assert!(
        notes_of(&big).iter().any(|n| n.contains("server.log")),
        "{:?}",
        notes_of(&big)
    );
    // The note shows with the original.
    let page = owner
        .get_html(&format!("/inbox/messages/{}/original", big.id))
        .await;
    assert!(page.contains("server.log"));
}

#[tokio::test]
async fn a_failed_send_is_shown_on_the_message_and_retried_until_it_goes() {
    let relay = relay().await;
    let relay_url = relay.smtp_url();
    let app = spawn_app_with(|config| {
        config.smtp.url = Some(kaltalk_server::config::Secret::new(relay_url));
    })
    .await;
    let (app, owner, org, smtp) = with_support_inbox(app).await;
    let raw = reply_fixture(
        ClientStyle::Gmail,
        &ada(),
        SUPPORT,
        "Hi",
        "r1@customer.test",
        None,
        &[],
        "Hello?",
        "",
    );
    smtplib(smtp, "ada@customer.test", &[SUPPORT], raw, None)
        .await
        .expect("delivered");
    let conversation = conversations(&app, org).await[0].conversation.id;
    app.run_jobs().await; // the sign-up's email
    relay.sink.set_fail_deliveries(true); // the relay now answers 451
    let response = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[("text", "Hello Ada!"), ("kind", "text")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.run_jobs().await;
    assert!(relayed_to(&relay, "ada@customer.test").await.is_empty());
    let answer = |list: Vec<Message>| {
        list.into_iter()
            .find(|m| m.text == "Hello Ada!")
            .expect("answer")
    };
    let pending = answer(messages(&app, org, conversation).await);
    assert_eq!(pending.email_fact("delivery"), Some("pending"));
    assert!(
        pending
            .email_fact("error")
            .is_some_and(|e| e.contains("451")),
        "{:?}",
        pending.metadata
    );
    let shown = owner
        .get_html(&format!("/inbox/conversations/{conversation}/messages"))
        .await;
    assert!(shown.contains("sending…"), "{shown}");

    relay.sink.set_fail_deliveries(false);
    app.clock.advance(chrono::Duration::seconds(10));
    app.run_jobs().await;
    assert_eq!(
        relayed_to(&relay, "ada@customer.test").await.len(),
        1,
        "sent on retry"
    );
    let sent = answer(messages(&app, org, conversation).await);
    assert_eq!(sent.email_fact("delivery"), Some("sent"));
}

#[tokio::test]
async fn without_a_relay_a_reply_is_kept_in_the_outbox_and_the_message_says_so() {
    // No `smtp.url`: a laptop install. The README promises every email waits in the
    // outbox; a reply to a customer once failed as "not sent" instead.
    let app = spawn_app().await;
    assert!(!app.state.mailer.delivers());
    let (app, owner, org, smtp) = with_support_inbox(app).await;
    let raw = reply_fixture(
        ClientStyle::Gmail,
        &ada(),
        SUPPORT,
        "Where is my order?",
        "o1@customer.test",
        None,
        &[],
        "It has not arrived.",
        "",
    );
    smtplib(smtp, "ada@customer.test", &[SUPPORT], raw, None)
        .await
        .expect("delivered");
    let conversation = conversations(&app, org).await[0].conversation.id;
    let response = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[("text", "It ships <today>."), ("kind", "text")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.run_jobs().await;

    let reply = messages(&app, org, conversation)
        .await
        .into_iter()
        .find(|m| m.text == "It ships <today>.")
        .expect("the reply");
    assert_eq!(
        reply.email_fact("delivery"),
        Some("outbox"),
        "{:?}",
        reply.metadata
    );
    assert_eq!(reply.email_fact("error"), None, "not an error");
    let shown = owner
        .get_html(&format!("/inbox/conversations/{conversation}/messages"))
        .await;
    assert!(
        shown.contains("kept in the outbox: no relay configured"),
        "{shown}"
    );
    assert!(!shown.contains("not sent"), "{shown}");

    // The organization's outbox holds it, to the customer, with its text.
    let kept = || async {
        app.state
            .store
            .list_emails(org, 50)
            .await
            .expect("outbox")
            .into_iter()
            .filter(|e| e.kind == "reply")
            .collect::<Vec<_>>()
    };
    let outbox = kept().await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(outbox[0].to_address, "ada@customer.test");
    assert_eq!(outbox[0].subject, "Re: Where is my order?");
    assert!(outbox[0].text_body.contains("It ships <today>."));
    assert!(outbox[0].html_body.contains("It ships &lt;today&gt;."));
    let page = owner.get_html("/settings/outbox").await;
    assert!(page.contains("Re: Where is my order?"), "{page}");

    // Kept, not failed: nothing is retried and the outbox is not filled twice.
    app.clock.advance(chrono::Duration::hours(1));
    app.run_jobs().await;
    assert_eq!(kept().await.len(), 1);
}

#[tokio::test]
async fn email_inboxes_are_created_and_validated_in_the_dashboard_with_ai_off_until_switched_on() {
    let app = spawn_app().await;
    let smtp = app.smtp.expect("SMTP listener on");
    let owner = app
        .sign_up("Olivia Owner", "olivia@acme.test", "Acme")
        .await;
    let org = owner.org_id().await;
    for (address, error) in [
        ("not an address", "Enter an email address"),
        ("support+x@acme.test", "without a +tag"),
    ] {
        let response = create_email_inbox(&owner, address).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{address}"
        );
        assert!(
            response.text().await.expect("page").contains(error),
            "{address}"
        );
    }
    let created = create_email_inbox(&owner, "Support@Acme.test").await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let settings_path = crate::helpers::location(&created);
    let inbox_id = settings_path
        .trim_start_matches("/settings/inboxes/")
        .split('?')
        .next()
        .expect("id")
        .to_owned();
    let settings_path = format!("/settings/inboxes/{inbox_id}");
    let page = owner.get_html(&settings_path).await;
    assert!(page.contains("support@acme.test"), "{page}");
    let again = create_email_inbox(&owner, "support@acme.test").await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again
            .text()
            .await
            .expect("page")
            .contains("already receives mail")
    );

    // With the organization's AI agent on, email still starts with a person …
    crate::ai::enable_ai(&app, &owner, "0.1").await;
    let send = |id: &'static str, from: &'static str| async move {
        let someone = Address {
            name: None,
            email: from.into(),
        };
        let raw = reply_fixture(
            ClientStyle::Gmail,
            &someone,
            SUPPORT,
            "Hi",
            id,
            None,
            &[],
            "Question?",
            "",
        );
        smtplib(smtp, from, &[SUPPORT], raw, None)
            .await
            .expect("delivered");
    };
    send("ai1@customer.test", "one@customer.test").await;
    assert_eq!(
        handling_of(&app, org, "one@customer.test").await,
        Handling::Human
    );
    // … until the inbox allows it; invalid IMAP settings are refused with the field named.
    let refused = owner
        .submit(
            &settings_path,
            &settings_path,
            &[
                ("name", "Support"),
                ("ai_replies", "yes"),
                ("imap_host", "imap.acme.test"),
                ("imap_security", "tls"),
                ("imap_port", "99999"),
                ("imap_user", ""),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text().await.expect("page");
    assert!(text.contains("Enter a port from 1 to 65535"), "{text}");
    assert!(text.contains("user name"));
    let saved = owner
        .submit(
            &settings_path,
            &settings_path,
            &[("name", "Support"), ("ai_replies", "yes")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    send("ai2@customer.test", "two@customer.test").await;
    assert_eq!(
        handling_of(&app, org, "two@customer.test").await,
        Handling::Bot
    );
    // The bot's turn (it has no knowledge here, so it hands over) answers by email too:
    // its message is queued for the relay, and without one it is kept in the outbox.
    app.run_jobs().await;
    let conversation = conversations(&app, org)
        .await
        .into_iter()
        .find(|c| c.contact_email.as_deref() == Some("two@customer.test"))
        .expect("conversation")
        .conversation
        .id;
    let bot = messages(&app, org, conversation)
        .await
        .into_iter()
        .find(|m| m.sender_kind.as_str() == "bot" && m.kind == MessageKind::Text)
        .expect("the bot answered");
    assert_eq!(
        bot.email_fact("delivery"),
        Some("outbox"),
        "{:?}",
        bot.metadata
    );
}

#[tokio::test]
async fn with_a_certificate_the_listener_offers_starttls_and_takes_mail_over_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("cert");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let (cert_for_app, key_for_app) = (cert_path.clone(), key_path.clone());
    let app = spawn_app_with(move |config| {
        config.inbound_email.tls_cert_path = Some(cert_for_app);
        config.inbound_email.tls_key_path = Some(key_for_app);
        config.inbound_email.require_tls = true;
    })
    .await;
    let (app, _owner, org, smtp) = with_support_inbox(app).await;
    let raw = reply_fixture(
        ClientStyle::Apple,
        &ada(),
        SUPPORT,
        "Secure hello",
        "tls1@customer.test",
        None,
        &[],
        "Sent over TLS.",
        "",
    );

    // require_tls: a client that skips STARTTLS is refused.
    let plain = smtplib(smtp, "ada@customer.test", &[SUPPORT], raw.clone(), None).await;
    assert!(
        plain.is_err_and(|e| e.contains("530")),
        "mail without STARTTLS is refused"
    );
    smtplib(smtp, "ada@customer.test", &[SUPPORT], raw, Some(&cert_path))
        .await
        .expect("delivered over STARTTLS");
    let list = conversations(&app, org).await;
    assert_eq!(list.len(), 1);
    let said = first_message(&app, org, list[0].conversation.id).await;
    assert_eq!(said.text.trim(), "Sent over TLS.");
}

#[tokio::test]
async fn an_imap_mailbox_is_polled_and_a_restart_imports_nothing_twice() {
    use kaltalk_mail::testing::dovecot::Dovecot;

    let dovecot = Dovecot::start().await;
    let data = tempfile::tempdir().expect("data dir");
    let data_dir = data.path().to_path_buf();
    let app = spawn_app_with({
        let data_dir = data_dir.clone();
        move |config| config.data_dir = data_dir
    })
    .await;
    let database_url = app.state.config.database_url.clone();
    let owner = app
        .sign_up("Olivia Owner", "olivia@acme.test", "Acme")
        .await;
    let org = owner.org_id().await;
    let created = create_email_inbox(&owner, SUPPORT).await;
    let settings = crate::helpers::location(&created);
    let settings = settings.split('?').next().expect("path").to_owned();
    let port = dovecot.imap_port().to_string();
    let saved = owner
        .submit(
            &settings,
            &settings,
            &[
                ("name", "Support"),
                ("imap_host", dovecot.host()),
                ("imap_port", &port),
                ("imap_security", "starttls"),
                ("imap_user", dovecot.user()),
                ("imap_password", dovecot.password()),
                ("imap_mailbox", "INBOX"),
                ("imap_poll_seconds", "30"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = owner.get_html(&settings).await;
    assert!(
        !page.contains(dovecot.password()),
        "the password never goes back to the page"
    );
    assert!(page.contains("A password is saved"));

    let mail = |n: u32| {
        reply_fixture(
            ClientStyle::Gmail,
            &ada(),
            SUPPORT,
            &format!("Question {n}"),
            &format!("imap{n}@customer.test"),
            None,
            &[],
            &format!("Body of question {n}."),
            "",
        )
    };
    for n in 1..=3 {
        dovecot.append(&mail(n)).await;
    }
    let tls = dovecot.tls_options();
    let read = kaltalk_server::email::imap::poll_all_once(&app.state, &tls)
        .await
        .expect("poll");
    assert_eq!(read, 3);
    // Three new emails (no threading headers) are three conversations, as in any help desk.
    let subjects = |list: Vec<ConversationSummary>| {
        let mut subjects: Vec<String> = list
            .into_iter()
            .filter_map(|c| c.conversation.subject)
            .collect();
        subjects.sort();
        subjects
    };
    assert_eq!(
        subjects(conversations(&app, org).await),
        ["Question 1", "Question 2", "Question 3"]
    );
    assert_eq!(
        kaltalk_server::email::imap::poll_all_once(&app.state, &tls)
            .await
            .expect("poll"),
        0
    );
    app.stop().await.expect("stopped");

    // A new process on the same data: the cursor and the Message-IDs survived.
    let app = spawn_app_with(move |config| {
        config.data_dir = data_dir;
        config.database_url = database_url;
    })
    .await;
    assert_eq!(
        kaltalk_server::email::imap::poll_all_once(&app.state, &tls)
            .await
            .expect("poll"),
        0,
        "nothing imported twice after a restart"
    );
    dovecot.append(&mail(4)).await;
    assert_eq!(
        kaltalk_server::email::imap::poll_all_once(&app.state, &tls)
            .await
            .expect("poll"),
        1
    );
    assert_eq!(
        subjects(conversations(&app, org).await),
        ["Question 1", "Question 2", "Question 3", "Question 4"]
    );

    // A wrong password is recorded on the inbox and shown on its page.
    let inbox = app
        .state
        .store
        .email_inboxes()
        .await
        .expect("inboxes")
        .remove(0);
    let mut settings_now = inbox.email();
    if let Some(imap) = settings_now.imap.as_mut() {
        imap.password = "wrong".into();
    }
    app.state
        .store
        .update_inbox(
            org,
            inbox.id,
            "Support",
            kaltalk_store::inboxes::InboxSettings::Email(&settings_now),
            app.clock_now(),
        )
        .await
        .expect("update");
    let failed = kaltalk_server::email::imap::poll_all_once(&app.state, &tls).await;
    assert!(failed.is_err());
    let owner = app.browser();
    let login = owner
        .post_form(
            "/login",
            &[
                ("email", "olivia@acme.test"),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let page = owner
        .get_html(&format!("/settings/inboxes/{}", inbox.id))
        .await;
    assert!(page.contains("Last poll failed"), "{page}");
}

#[tokio::test]
async fn an_imap_host_on_the_internal_network_is_refused_without_saying_what_it_resolves_to() {
    let app = spawn_app_with(|config| config.inbound_email.imap_allow_private = false).await;
    let owner = app
        .sign_up("Olivia Owner", "olivia@acme.test", "Acme")
        .await;
    let created = create_email_inbox(&owner, SUPPORT).await;
    let settings = crate::helpers::location(&created);
    let settings = settings.split('?').next().expect("path").to_owned();
    let saved = owner
        .submit(
            &settings,
            &settings,
            &[
                ("name", "Support"),
                ("imap_host", "localhost"),
                ("imap_port", "143"),
                ("imap_security", "starttls"),
                ("imap_user", "someone"),
                ("imap_password", "secret"),
                ("imap_mailbox", "INBOX"),
                ("imap_poll_seconds", "30"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);

    let tls = kaltalk_mail::imap_in::TlsOptions::default();
    let failed = kaltalk_server::email::imap::poll_all_once(&app.state, &tls).await;

    assert!(failed.is_err(), "a loopback IMAP host is refused");
    let page = owner.get_html(&settings).await;
    let shown = page
        .lines()
        .find(|line| line.contains("id=\"imap-error\""))
        .unwrap_or_else(|| panic!("the first failed poll is shown: {page}"));
    assert!(
        shown.contains("the IMAP host localhost is not a public internet address"),
        "{shown}"
    );
    assert!(!shown.contains("127.0.0.1"), "no resolved address: {shown}");
}
