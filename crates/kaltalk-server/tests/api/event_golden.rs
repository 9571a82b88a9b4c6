//! Golden files of what leaves the server about events: every webhook body a receiver
//! gets, every dashboard and widget socket frame, and every job payload, from one
//! scripted story that produces every event kind and every job kind. Volatile values
//! (ids, times, ports) become numbered placeholders, so the files are compared as text:
//! key order and value types count. The files were first written from the code before
//! events were typed; `KALTALK_BLESS=1` rewrites them (only for a deliberate change).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use chrono::Duration;
use kaltalk_core::chat::{ConversationStatus, InboxKind, WidgetSettings};
use kaltalk_core::{ContactId, ConversationId, EmailAddress, OrgName, PersonName, Role};
use kaltalk_mail::inbound::Address;
use kaltalk_mail::inbound::fixtures::{ClientStyle, reply_fixture};
use kaltalk_mail::smtp_in::testing::spawn_sink_server;
use kaltalk_server::config::Secret;
use kaltalk_server::webhooks::dispatch_pending;
use kaltalk_store::contacts::{ContactChange, ContactFields};
use kaltalk_store::inboxes::{InboxSettings, NewInbox};
use kaltalk_store::knowledge::SyncInterval;
use kaltalk_store::webhooks::WebhookId;
use kaltalk_store::{Delivery, JobState, NewEmail, NewInvitation, NewUser};
use regex::Regex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::ai::enable_ai;
use crate::api::create_key;
use crate::chat_helpers::{SITE, Socket, Visitor, create_inbox, session_cookie};
use crate::email_channel::{SUPPORT, ada, create_email_inbox, smtplib};
use crate::helpers::{Browser, TestApp, spawn_app_with};
use crate::webhooks::Receiver;

/// Replays a socket from the start of the event log.
const FROM_THE_START: &str = "00000000-0000-0000-0000-000000000000";

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";

/// Every event kind the story must produce (each reaches the dashboard socket).
const ORG_EVENT_KINDS: [&str; 33] = [
    "api_key.created",
    "api_key.revoked",
    "contact.created",
    "contact.deleted",
    "contact.updated",
    "conversation.created",
    "conversation.escalated",
    "conversation.mentioned",
    "conversation.seen",
    "conversation.updated",
    "conversation.waiting",
    "email.queued",
    "inbox.created",
    "inbox.deleted",
    "inbox.updated",
    "invitation.created",
    "invitation.revoked",
    "knowledge.source_updated",
    "member.added",
    "member.availability_changed",
    "member.capacity_changed",
    "member.removed",
    "member.role_changed",
    "message.created",
    "message.updated",
    "notification.created",
    "notification.read",
    "organization.created",
    "organization.ownership_transferred",
    "organization.updated",
    "team.created",
    "team.deleted",
    "team.updated",
];

const JOB_KINDS: [&str; 9] = [
    "ai.turn",
    "email.deliver",
    "email.reply",
    "knowledge.index",
    "knowledge.reembed",
    "notification.email",
    "push.deliver",
    "push.native",
    "webhook.deliver",
];

/// Replaces what changes from run to run with placeholders: the n-th distinct id becomes
/// `<id n>` (the same id the same placeholder throughout one file), every time `<time>`
/// (its zone suffix kept), every loopback port `<port>`, every attachment token `<token>`.
fn normalise(lines: &[String]) -> String {
    let uuid = Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        .expect("uuid pattern");
    let time = Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?").expect("time pattern");
    let port = Regex::new(r"127\.0\.0\.1:\d+").expect("port pattern");
    let token = Regex::new(r#"\?t=[^"&]+"#).expect("token pattern");
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut out = String::new();
    for line in lines {
        let line = uuid.replace_all(line, |c: &regex::Captures| {
            let next = ids.len() + 1;
            let n = *ids.entry(c[0].to_owned()).or_insert(next);
            format!("<id {n}>")
        });
        let line = time.replace_all(&line, "<time>");
        let line = port.replace_all(&line, "127.0.0.1:<port>");
        let line = token.replace_all(&line, "?t=<token>");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Compares `lines` (normalised) with the golden file `name`, or writes it when blessing.
fn golden(name: &str, lines: &[String]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let actual = normalise(lines);
    if std::env::var_os("KALTALK_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("folder")).expect("golden folder");
        std::fs::write(&path, &actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with KALTALK_BLESS=1", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n expected: {}\n   actual: {}",
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

async fn newest_subject(app: &TestApp, org: kaltalk_core::OrgId, kind: &str) -> uuid::Uuid {
    app.state
        .store
        .events_since(org, None, 10_000)
        .await
        .expect("events")
        .into_iter()
        .rev()
        .find(|e| e.kind == kind)
        .and_then(|e| e.subject_id)
        .unwrap_or_else(|| panic!("a {kind} event"))
}

async fn reply(owner: &Browser, conversation: impl std::fmt::Display, kind: &str, text: &str) {
    let response = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[("text", text), ("kind", kind)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "agent reply");
}

#[tokio::test]
async fn every_event_and_job_leaves_the_server_as_the_golden_files_say() {
    let relay = spawn_sink_server().await.1;
    let relay_url = relay.smtp_url();
    let app = spawn_app_with(|config| {
        config.webhooks.allow_loopback = true;
        config.smtp.url = Some(Secret::new(relay_url));
    })
    .await;
    let store = &app.state.store;
    let now = || app.clock_now();

    // An organization with a webhook endpoint that hears every kind.
    let owner = app
        .sign_up("Olivia Owner", "olivia@acme.test", "Acme")
        .await;
    let org = owner.org_id().await;
    let olivia = owner.user_id().await;
    let receiver = Receiver::start(&[], None).await;
    let key = create_key(&app, &owner, "Webhooks").await;
    let hook = app
        .api()
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({ "url": receiver.url, "events": [] }))
        .send()
        .await
        .expect("create webhook");
    assert_eq!(hook.status(), StatusCode::CREATED);
    let hook: Value = hook.json().await.expect("json");
    let hook: WebhookId = hook["id"].as_str().expect("id").parse().expect("id");

    // A visitor writes; the bot has no knowledge and hands over.
    enable_ai(&app, &owner, "0.3").await;
    let inbox = create_inbox(&app, &owner, "shop.example.com").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let said = visitor.say("Where is my order?").await;
    let conversation: ConversationId = said["conversation_id"]
        .as_str()
        .expect("conversation_id")
        .parse()
        .expect("id");
    app.run_jobs().await;

    // The team answers, notes, looks; the conversation goes through every change.
    app.clock.advance(Duration::minutes(1));
    reply(&owner, conversation, "text", "It ships today.").await;
    reply(&owner, conversation, "note", "Checked the warehouse.").await;
    app.clock.advance(Duration::minutes(1));
    visitor.say("Thanks!").await;
    let form = reqwest::multipart::Form::new()
        .text("client_id", "img-1")
        .part(
            "file",
            reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("receipt.png"),
        );
    let uploaded = app
        .api()
        .post(app.url(&format!(
            "/widget/v1/inboxes/{}/attachments",
            inbox.public_token
        )))
        .header("origin", SITE)
        .bearer_auth(visitor.token.clone().expect("visitor token"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status(), StatusCode::CREATED, "attachment");
    app.clock.advance(Duration::minutes(1));
    store
        .agent_saw(org, conversation, now())
        .await
        .expect("agent saw");
    reply(&owner, conversation, "text", "You're welcome.").await;
    app.clock.advance(Duration::minutes(1));
    store
        .contact_saw(conversation, now())
        .await
        .expect("contact saw");
    store
        .assign_conversation(org, conversation, None, None, now())
        .await
        .expect("unassign");
    store
        .assign_conversation(org, conversation, Some(olivia), None, now())
        .await
        .expect("assign");
    store
        .add_label(org, conversation, "billing", now())
        .await
        .expect("label");
    store
        .hand_back_to_bot(org, conversation, now())
        .await
        .expect("hand back");
    store
        .escalate(org, conversation, "the visitor asked for a person.", now())
        .await
        .expect("escalate");
    store
        .set_conversation_status(
            org,
            conversation,
            ConversationStatus::Snoozed,
            Some(now() + Duration::hours(1)),
            now(),
        )
        .await
        .expect("snooze");
    app.clock.advance(Duration::hours(2));
    store.wake_snoozed(now()).await.expect("wake");
    store
        .set_conversation_status(org, conversation, ConversationStatus::Resolved, None, now())
        .await
        .expect("resolve");
    visitor.say("One more thing").await; // reopens it
    app.run_jobs().await;

    // Teams, availability and capacity, a conversation's team.
    let team = store
        .create_team(org, "Billing", now())
        .await
        .expect("team")
        .value;
    store
        .add_team_member(org, team.id, olivia, now())
        .await
        .expect("team member");
    store
        .rename_team(org, team.id, "Billing and refunds", now())
        .await
        .expect("rename team");
    store
        .set_capacity(org, olivia, 5, now())
        .await
        .expect("capacity");
    store
        .set_availability(
            org,
            olivia,
            kaltalk_core::chat::Availability::Busy,
            false,
            now(),
        )
        .await
        .expect("busy");
    store
        .set_availability(
            org,
            olivia,
            kaltalk_core::chat::Availability::Online,
            false,
            now(),
        )
        .await
        .expect("online again");
    store
        .set_conversation_team(org, conversation, Some(team.id), now())
        .await
        .expect("conversation team");
    store
        .remove_team_member(org, team.id, olivia, now())
        .await
        .expect("leave team");
    store
        .delete_team(org, team.id, now())
        .await
        .expect("delete team");

    // Contacts made, changed, opted out and deleted by hand.
    let grace = store
        .create_contact(
            org,
            &ContactFields {
                name: Some("Grace".into()),
                email: Some("grace@customer.test".into()),
                ..ContactFields::default()
            },
            now(),
        )
        .await
        .expect("contact")
        .value;
    store
        .update_contact(
            org,
            grace.id,
            &ContactChange {
                name: Some(Some("Grace Hopper".into())),
                ..ContactChange::default()
            },
            now(),
        )
        .await
        .expect("update contact");
    store
        .set_ai_opt_out(org, grace.id, true, now())
        .await
        .expect("opt out");
    // Deleting a contact takes its events with it: Hedy is made only to be deleted.
    let hedy = store
        .create_contact(
            org,
            &ContactFields {
                name: Some("Hedy".into()),
                ..ContactFields::default()
            },
            now(),
        )
        .await
        .expect("contact")
        .value;
    store
        .delete_contact(org, hedy.id, now())
        .await
        .expect("delete contact");
    // A nameless contact that an email gives its name.
    store
        .create_contact(
            org,
            &ContactFields {
                email: Some("lin@customer.test".into()),
                ..ContactFields::default()
            },
            now(),
        )
        .await
        .expect("nameless contact");

    // An email arrives and is answered by email; its contact is merged into the visitor.
    assert_eq!(
        create_email_inbox(&owner, SUPPORT).await.status(),
        StatusCode::SEE_OTHER
    );
    let raw = reply_fixture(
        ClientStyle::Gmail,
        &ada(),
        SUPPORT,
        "Hi",
        "g1@customer.test",
        None,
        &[],
        "Hello?",
        "",
    );
    smtplib(
        app.smtp.expect("SMTP listener"),
        "ada@customer.test",
        &[SUPPORT],
        raw,
        None,
    )
    .await
    .expect("delivered");
    let lin = Address {
        name: Some("Lin Chen".into()),
        email: "lin@customer.test".into(),
    };
    let raw = reply_fixture(
        ClientStyle::Outlook,
        &lin,
        SUPPORT,
        "Invoice",
        "l1@customer.test",
        None,
        &[],
        "Where is my invoice?",
        "",
    );
    smtplib(
        app.smtp.expect("SMTP listener"),
        "lin@customer.test",
        &[SUPPORT],
        raw,
        None,
    )
    .await
    .expect("delivered");
    let emailed = newest_subject(&app, org, "conversation.created").await;
    reply(&owner, emailed, "text", "Hello Ada.").await;
    app.run_jobs().await;
    let ada_contact = newest_subject(&app, org, "contact.created").await;
    let visitor_contact = store
        .get_conversation(org, conversation)
        .await
        .expect("conversation")
        .contact_id;
    store
        .merge_contacts(
            org,
            ContactId::from_uuid(ada_contact),
            visitor_contact,
            now(),
        )
        .await
        .expect("merge");

    // Knowledge: a text source indexed, a web source failing and scheduled, re-embedding.
    let text = store
        .add_text_source(
            org,
            "Shipping",
            "Orders ship within two days of payment.",
            now(),
        )
        .await
        .expect("text source");
    let web = store
        .add_web_source(
            org,
            "url",
            "Docs",
            "http://10.0.0.1/docs",
            Some(SyncInterval::Daily),
            now(),
        )
        .await
        .expect("web source");
    app.run_jobs().await;
    store
        .set_sync_interval(org, web, Some(SyncInterval::Weekly), now())
        .await
        .expect("interval");
    app.clock.advance(Duration::days(8));
    store.queue_due_syncs(now()).await.expect("due syncs");
    store
        .set_source_state(
            org,
            web,
            "failed",
            Some("the page could not be read"),
            now(),
        )
        .await
        .expect("state");
    store
        .queue_reembedding("another-model", now())
        .await
        .expect("re-embed");
    app.run_jobs().await;
    store.delete_source(org, text, now()).await.expect("delete");

    // The organization and its people.
    store
        .rename_organization(
            org,
            &OrgName::parse("name", "Acme Ltd").expect("name"),
            now(),
        )
        .await
        .expect("rename");
    let bob = store
        .create_member_user(
            &NewUser {
                name: PersonName::parse("name", "Bob").expect("name"),
                email: EmailAddress::parse("email", "bob@acme.test").expect("email"),
                password_hash: "not-a-hash".into(),
                email_verified: true,
            },
            org,
            Role::Agent,
            now(),
        )
        .await
        .expect("member");
    store
        .change_role(org, bob, Role::Admin, now())
        .await
        .expect("role");
    store
        .transfer_ownership(org, olivia, bob, now())
        .await
        .expect("transfer");
    store
        .transfer_ownership(org, bob, olivia, now())
        .await
        .expect("transfer back");
    store.remove_member(org, bob, now()).await.expect("remove");
    let invitation = store
        .create_invitation(
            &NewInvitation {
                org_id: org,
                email: EmailAddress::parse("email", "carol@acme.test").expect("email"),
                role: Role::Agent,
                token_hash: "golden-invitation".into(),
                invited_by: olivia,
                expires_at: now() + Duration::days(7),
            },
            &NewEmail {
                org_id: Some(org),
                to: "carol@acme.test".into(),
                subject: "Join Acme".into(),
                text_body: "Join us.".into(),
                html_body: "<p>Join us.</p>".into(),
                kind: "invitation",
                delivery: Delivery::Smtp,
            },
            now(),
        )
        .await
        .expect("invitation");
    store
        .revoke_invitation(org, invitation, now())
        .await
        .expect("revoke invitation");
    let api_key = store.list_api_keys(org).await.expect("keys")[0].id;
    store
        .revoke_api_key(org, api_key, now())
        .await
        .expect("revoke key");

    // Inboxes changed, rotated, and one deleted.
    store
        .update_inbox(
            org,
            inbox.id,
            "Website",
            InboxSettings::Widget(&inbox.settings.0),
            now(),
        )
        .await
        .expect("update inbox");
    store
        .rotate_identity_secret(org, inbox.id, "golden-secret", now())
        .await
        .expect("rotate");
    let spare = store
        .create_inbox(
            &NewInbox {
                org_id: org,
                kind: InboxKind::Web,
                name: "Spare".into(),
                public_token: "golden-spare".into(),
                identity_secret: "golden-spare-secret".into(),
                settings: WidgetSettings::default(),
                email: None,
            },
            now(),
        )
        .await
        .expect("spare inbox");
    store
        .delete_inbox(org, spare.id, now())
        .await
        .expect("delete inbox");

    // Every webhook goes out, and a test ping.
    store
        .create_webhook_ping(org, hook, now())
        .await
        .expect("ping");
    dispatch_pending(&app.state).await.expect("dispatch");
    app.run_jobs().await;

    // A note mentions a teammate: the team hears it, the widget and webhooks do not; her
    // browser and her phone are pushed to (the jobs stay queued: the story sends nothing).
    let grace = store
        .create_member_user(
            &NewUser {
                name: PersonName::parse("name", "Grace Hopper").expect("name"),
                email: EmailAddress::parse("email", "grace@acme.test").expect("email"),
                password_hash: "not-a-hash".into(),
                email_verified: true,
            },
            org,
            Role::Agent,
            now(),
        )
        .await
        .expect("member");
    store
        .save_push_subscription(
            org,
            grace,
            "https://push.example.com/send/grace",
            "BPushKeyOfGracesBrowser",
            "GracesAuthSecret",
            now(),
        )
        .await
        .expect("push subscription");
    // And her phone's app, signed in and registered (its job is queued the same way).
    let app_session = store
        .create_app_session(
            &kaltalk_store::NewSession {
                token_hash: kaltalk_core::token::hash("kt_app_graces-phone"),
                user_id: grace,
                org_id: org,
                csrf_token: "unused".into(),
                expires_at: now() + Duration::days(30),
            },
            now(),
        )
        .await
        .expect("app session");
    store
        .register_device(
            app_session,
            org,
            grace,
            &kaltalk_store::devices::NewDevice {
                platform: kaltalk_store::devices::Platform::Fcm,
                push_token: "graces-phone-fcm-token",
                os_version: "14",
                app_version: "2.3.0",
            },
            now(),
        )
        .await
        .expect("device");
    reply(&owner, conversation, "note", "@Grace Hopper can you look?").await;

    // The members are told of what needs them (each hears only their own), and the owner
    // reads hers.
    kaltalk_server::notifications::notify_pending(&app.state)
        .await
        .expect("notify");
    store
        .read_all_notifications(org, olivia, now())
        .await
        .expect("read all");

    // A customer left waiting past the inbox's quarter of an hour: the team is told.
    app.clock.advance(Duration::minutes(16));
    let waiting = kaltalk_server::notifications::alert_waiting(&app.state)
        .await
        .expect("alert waiting");
    assert!(waiting > 0, "a customer waits");
    kaltalk_server::notifications::notify_pending(&app.state)
        .await
        .expect("notify of the wait");

    // Capture: the receiver's bodies byte for byte, the dashboard's replay of every event
    // of the organization, the widget's replay of its conversation (up to its hello).
    let webhooks: Vec<String> = receiver
        .received()
        .await
        .iter()
        .map(|r| String::from_utf8(r.body.to_vec()).expect("utf-8 body"))
        .collect();
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let events = store.events_since(org, None, 10_000).await.expect("events");
    let mut dashboard = Socket::agent(&app, &cookie, Some(FROM_THE_START)).await;
    let mut dashboard_frames = Vec::new();
    let olivia_hears = events
        .iter()
        .filter(|e| !e.kind.starts_with("notification.") || e.payload.0["user_id"] == json!(olivia))
        .count();
    for _ in 0..olivia_hears {
        dashboard_frames.push(dashboard.next_text().await);
    }
    let mut widget = visitor.socket(Some(FROM_THE_START)).await;
    let mut widget_frames = Vec::new();
    loop {
        let frame = widget.next_text().await;
        let hello = serde_json::from_str::<Value>(&frame).expect("json")["type"] == "presence";
        widget_frames.push(frame);
        if hello {
            break;
        }
    }
    let mut jobs = Vec::new();
    for state in [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
    ] {
        jobs.extend(store.list_jobs(state, 10_000).await.expect("jobs"));
    }
    jobs.sort_by_key(|j| j.id);
    let job_lines: Vec<String> = jobs
        .iter()
        .map(|j| format!("{} {}", j.kind, j.payload.0))
        .collect();

    // The story covers every kind, so the files cannot silently lose one.
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ORG_EVENT_KINDS.into_iter().collect(),
        "every organization event kind"
    );
    let job_kinds: BTreeSet<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(job_kinds, JOB_KINDS.into_iter().collect(), "every job kind");
    let hook_kinds: BTreeSet<String> = webhooks
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).expect("json")["type"].to_string())
        .collect();
    assert_eq!(
        hook_kinds.len(),
        8,
        "every webhook kind and the ping: {hook_kinds:?}"
    );
    let widget_kinds: BTreeSet<String> = widget_frames
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).expect("json")["type"].to_string())
        .collect();
    assert_eq!(
        widget_kinds.len(),
        4,
        "every widget frame kind: {widget_kinds:?}"
    );

    golden("webhook_bodies.txt", &webhooks);
    golden("dashboard_frames.txt", &dashboard_frames);
    golden("widget_frames.txt", &widget_frames);
    golden("job_payloads.txt", &job_lines);
}
