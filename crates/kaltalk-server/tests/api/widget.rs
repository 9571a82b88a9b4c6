//! The widget API and WebSocket, as the widget in a visitor's browser uses them.

use std::sync::Arc;

use chrono::Duration;
use kaltalk_core::chat::IdentityMode;
use kaltalk_core::{ManualClock, OrgId};
use kaltalk_server::testing::country_mmdb;
use kaltalk_server::{Config, Kaltalk};
use kaltalk_store::inboxes::{Inbox, InboxSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::chat_helpers::{
    SITE, Socket, Visitor, contact_details, create_inbox, page_context, session_cookie,
};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

#[tokio::test]
async fn config_answers_allowed_sites_only() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let mut visitor = Visitor::new(&app, &inbox);

    let ok = visitor
        .get(&format!("/widget/v1/inboxes/{}/config", inbox.public_token))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["access-control-allow-origin"], SITE);
    assert!(!ok.headers().contains_key("set-cookie"));
    let config: Value = ok.json().await.expect("json");
    // The company shown (the organization until a company name is set), not the inbox.
    assert_eq!(config["name"], "Acme");
    assert_eq!(config["identity"], "off");
    assert_eq!(config["agents_online"], false);

    visitor.origin = "https://evil.test".into();
    let refused = visitor
        .get(&format!("/widget/v1/inboxes/{}/config", inbox.public_token))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["code"], "domain_not_allowed");
    let message = visitor.send(json!({ "text": "hi" })).await;
    assert_eq!(
        message.status(),
        StatusCode::FORBIDDEN,
        "messages from other sites are refused too"
    );

    let unknown = visitor.get("/widget/v1/inboxes/wi_nope/config").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let preflight = app
        .api()
        .request(reqwest::Method::OPTIONS, app.url("/widget/v1/conversation"))
        .header("origin", SITE)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .expect("ascii")
            .contains("authorization")
    );
}

#[tokio::test]
async fn nothing_exists_until_the_visitor_writes_then_the_conversation_continues() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor
        .get(&format!("/widget/v1/inboxes/{}/config", inbox.public_token))
        .await;
    let filter = kaltalk_store::conversations::ConversationFilter {
        limit: 10,
        ..Default::default()
    };
    assert!(
        app.state
            .store
            .list_conversations(org, &filter)
            .await
            .expect("list")
            .is_empty(),
        "loading the widget creates nothing"
    );

    let first = visitor.say("Hello").await;
    let token = visitor.token.clone().expect("token");
    assert!(token.starts_with("vt_"));
    let second = visitor.say("Anyone there?").await;
    assert_eq!(second["visitor_token"], token.as_str(), "the same session");
    assert_eq!(second["conversation_id"], first["conversation_id"]);

    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["Hello", "Anyone there?"]);
    assert!(history["last_event_id"].is_string());

    // The contact carries what the server saw and what the widget reported.
    let conversations = app
        .state
        .store
        .list_conversations(org, &filter)
        .await
        .expect("list");
    assert_eq!(conversations.len(), 1);
    let contact = app
        .state
        .store
        .get_contact(org, conversations[0].conversation.contact_id)
        .await
        .expect("contact");
    let details = &contact.details.0;
    assert_eq!(details.browser.as_deref(), Some("Chrome"));
    assert_eq!(details.os.as_deref(), Some("Linux"));
    assert_eq!(details.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(details.page_title.as_deref(), Some("Pricing"));
    assert_eq!(details.ip.as_deref(), Some("127.0.0.1"));

    // A retried send with the same client_id is one message.
    let retry = visitor
        .send(json!({ "text": "Hello", "client_id": "c-Hello", "context": page_context() }))
        .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn an_idle_visitor_session_expires_after_thirty_days_and_a_new_one_starts() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Hello").await;
    let old_token = visitor.token.clone().expect("token");

    app.clock.advance(Duration::days(29));
    assert_eq!(
        visitor.get("/widget/v1/conversation").await.status(),
        StatusCode::OK,
        "still alive after 29 days"
    );
    // The GET above was not activity that moves the expiry (only writes and context do):
    app.clock.advance(Duration::days(1) + Duration::seconds(1));
    let expired = visitor.get("/widget/v1/conversation").await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let body: Value = expired.json().await.expect("json");
    assert_eq!(body["code"], "invalid_visitor_token");

    let fresh = visitor.say("I am back").await;
    assert_ne!(fresh["visitor_token"], old_token.as_str(), "a new session");
    assert_ne!(
        fresh["conversation_id"], first["conversation_id"],
        "an anonymous new session is a new conversation"
    );
}

#[tokio::test]
async fn context_updates_keep_a_session_alive() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("Hello").await;
    app.clock.advance(Duration::days(20));
    let moved = visitor
        .post(
            "/widget/v1/context",
            json!({ "page_url": "https://shop.example.com/cart", "page_title": "Cart" }),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::NO_CONTENT);
    app.clock.advance(Duration::days(20));
    assert_eq!(
        visitor.get("/widget/v1/conversation").await.status(),
        StatusCode::OK,
        "40 days old, 20 idle"
    );
}

#[tokio::test]
async fn identity_verification_refuses_wrong_hashes_and_anonymous_chats_when_required() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut settings = inbox.settings.0.clone();
    settings.identity = IdentityMode::Required;
    app.state
        .store
        .update_inbox(
            org,
            inbox.id,
            "Website",
            InboxSettings::Widget(&settings),
            app.clock_now(),
        )
        .await
        .expect("update");
    let mut visitor = Visitor::new(&app, &inbox);

    let anonymous = visitor.send(json!({ "text": "hi" })).await;
    assert_eq!(anonymous.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        anonymous.json::<Value>().await.expect("json")["code"],
        "identity_required"
    );

    let forged = json!({ "id": "user-42", "name": "Ada", "hash": kaltalk_server::widget::sign("wrong secret", "user-42") });
    let wrong = visitor
        .send(json!({ "text": "hi", "identity": forged }))
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        wrong.json::<Value>().await.expect("json")["code"],
        "identity_invalid"
    );

    let signed = json!({ "id": "user-42", "name": "Ada", "email": "ada@example.com", "hash": kaltalk_server::widget::sign(&inbox.identity_secret, "user-42") });
    let ok = visitor
        .send(json!({ "text": "hi", "identity": signed }))
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let body: Value = ok.json().await.expect("json");
    visitor.token = body["visitor_token"].as_str().map(str::to_owned);
    let filter = kaltalk_store::conversations::ConversationFilter {
        limit: 10,
        ..Default::default()
    };
    let conversation = app
        .state
        .store
        .list_conversations(org, &filter)
        .await
        .expect("list")
        .remove(0);
    let contact = app
        .state
        .store
        .get_contact(org, conversation.conversation.contact_id)
        .await
        .expect("contact");
    assert_eq!(contact.external_id.as_deref(), Some("user-42"));
    assert_eq!(contact.name.as_deref(), Some("Ada"));

    let identify = visitor
        .post(
            "/widget/v1/identify",
            json!({ "id": "user-42", "hash": "00ff" }),
        )
        .await;
    assert_eq!(identify.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn prechat_fields_are_required_when_configured() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut settings = inbox.settings.0.clone();
    settings.prechat_email = true;
    app.state
        .store
        .update_inbox(
            org,
            inbox.id,
            "Website",
            InboxSettings::Widget(&settings),
            app.clock_now(),
        )
        .await
        .expect("update");
    let visitor = Visitor::new(&app, &inbox);
    let missing = visitor.send(json!({ "text": "hi" })).await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "email");
    let bad = visitor
        .send(json!({ "text": "hi", "prechat": { "email": "nope" } }))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let ok = visitor
        .send(json!({ "text": "hi", "prechat": { "email": "ada@example.com", "name": "Ada" } }))
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let empty = visitor
        .send(json!({ "text": "   ", "prechat": { "email": "ada@example.com" } }))
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_visitor_hears_replies_live_never_notes_and_resumes_after_a_disconnect() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Hello").await;
    let conversation = first["conversation_id"].as_str().expect("id").to_owned();
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let last_event = history["last_event_id"].as_str().expect("event").to_owned();

    let mut socket = visitor.socket(Some(&last_event)).await;
    let reply = |text: &'static str, kind: &'static str| {
        let owner = owner.clone();
        let path = format!("/inbox/conversations/{conversation}/messages");
        async move {
            owner
                .submit("/inbox?view=all", &path, &[("text", text), ("kind", kind)])
                .await
        }
    };
    assert_eq!(
        reply("A private note", "note").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        reply("Hi! How can I help?", "text").await.status(),
        StatusCode::SEE_OTHER
    );
    // The resume overlap may first repeat the visitor's own message (the widget dedupes).
    let mut frame = socket.next_of("message.created").await;
    if frame["message"]["text"] == "Hello" {
        frame = socket.next_of("message.created").await;
    }
    assert_eq!(
        frame["message"]["text"], "Hi! How can I help?",
        "the note never reaches the visitor"
    );
    assert_eq!(frame["message"]["sender"], "agent");
    assert_eq!(frame["message"]["sender_name"], "Olivia");
    let seen_up_to = frame["event_id"].as_str().expect("event id").to_owned();
    socket.close().await;

    // While the widget is away, two replies and a resolve.
    reply("Are you still there?", "text").await;
    reply("Closing this for now.", "text").await;
    owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/status"),
            &[("status", "resolved")],
        )
        .await;

    let mut resumed = visitor.socket(Some(&seen_up_to)).await;
    let mut texts = Vec::new();
    let mut status = None;
    while status.is_none() {
        let frame = resumed.next().await;
        match frame["type"].as_str() {
            Some("message.created") => texts.push(
                frame["message"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            Some("conversation.updated") => status = frame["status"].as_str().map(str::to_owned),
            _ => {}
        }
    }
    // The overlap window may repeat the last event the widget saw; it dedupes by id.
    texts.retain(|t| t != "Hi! How can I help?" && t != "Hello");
    assert_eq!(texts, ["Are you still there?", "Closing this for now."]);
    assert_eq!(status.as_deref(), Some("resolved"));

    // The customer writes again: the conversation reopens, live on the socket.
    visitor.say("One more question").await;
    let reopened = resumed.next_of("conversation.updated").await;
    assert_eq!(reopened["status"], "open");
}

#[tokio::test]
async fn typing_and_seen_markers_travel_both_ways() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Hello").await;
    let conversation = first["conversation_id"].as_str().expect("id").to_owned();
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let mut agent = Socket::agent(&app, &cookie, None).await;
    let mut widget = visitor.socket(None).await;
    // Drain the widget's replay of its own message.
    widget.next_of("message.created").await;

    widget
        .send(json!({ "type": "typing", "typing": true }))
        .await;
    let typing = agent.next_of("typing").await;
    assert_eq!(typing["conversation_id"], conversation.as_str());
    assert_eq!(typing["typing"], true);

    agent
        .send(json!({ "type": "typing", "conversation_id": conversation, "typing": true }))
        .await;
    let typing = widget.next_of("typing").await;
    assert_eq!(typing["name"], "Olivia");

    // The agent opens the conversation: the widget learns its message was seen.
    let html = owner
        .get_html(&format!("/inbox?view=all&c={conversation}"))
        .await;
    assert!(html.contains("Hello"));
    let seen = widget.next_of("seen").await;
    assert_eq!(seen["message_id"], first["message"]["id"]);
}

#[tokio::test]
async fn agents_online_follows_dashboard_sockets() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let config_path = format!("/widget/v1/inboxes/{}/config", inbox.public_token);
    visitor.say("Hello?").await;
    let mut widget = visitor.socket(None).await;
    assert_eq!(widget.next_of("presence").await["agents_online"], false);
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let agent = Socket::agent(&app, &cookie, None).await;
    // Opening the dashboard brings the member (offline until then, not by choice) online:
    // the open widget hears it, and the config says so.
    assert_eq!(widget.next_of("presence").await["agents_online"], true);
    let online: Value = visitor.get(&config_path).await.json().await.expect("json");
    assert_eq!(online["agents_online"], true);
    agent.close().await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let app = spawn_app_with(|config| {
        config.visitors.trusted_proxies = vec!["127.0.0.1".parse().expect("cidr")];
        config.visitors.country_header = Some("cf-ipcountry".into());
    })
    .await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let response = app
        .api()
        .post(app.url(&format!(
            "/widget/v1/inboxes/{}/messages",
            inbox.public_token
        )))
        .header("origin", SITE)
        .header("x-forwarded-for", "203.0.113.9")
        .header("cf-ipcountry", "fr")
        .json(&json!({ "text": "Bonjour" }))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::CREATED);
    let filter = kaltalk_store::conversations::ConversationFilter {
        limit: 10,
        ..Default::default()
    };
    let conversation = app
        .state
        .store
        .list_conversations(org, &filter)
        .await
        .expect("list")
        .remove(0);
    let contact = app
        .state
        .store
        .get_contact(org, conversation.conversation.contact_id)
        .await
        .expect("contact");
    assert_eq!(contact.details.0.ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(contact.details.0.country.as_deref(), Some("FR"));
}

/// A new visitor's first message, sent with `headers`; the country its contact got.
async fn country_seen(
    app: &TestApp,
    inbox: &Inbox,
    org: OrgId,
    headers: &[(&'static str, &str)],
) -> Option<String> {
    let mut visitor = Visitor::new(app, inbox);
    visitor.headers = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let said = visitor.say("Bonjour").await;
    contact_details(app, org, &said).await.country
}

#[tokio::test]
async fn the_country_comes_from_the_database_unless_a_trusted_proxy_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("countries.mmdb");
    let fixture = country_mmdb(&[("192.0.2.0/24", "FR"), ("198.51.100.0/24", "DE")]);
    std::fs::write(&database, fixture.expect("fixture")).expect("write");
    let app = spawn_app_with(|config| {
        config.visitors.trusted_proxies = vec!["127.0.0.1".parse().expect("cidr")];
        config.visitors.country_header = Some("cf-ipcountry".into());
        config.visitors.geoip_database = Some(database.clone());
    })
    .await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;

    let from = |ip| [("x-forwarded-for", ip)];
    assert_eq!(
        country_seen(&app, &inbox, org, &from("192.0.2.10")).await,
        Some("FR".into())
    );
    assert_eq!(
        country_seen(&app, &inbox, org, &from("198.51.100.7")).await,
        Some("DE".into())
    );
    assert_eq!(
        country_seen(
            &app,
            &inbox,
            org,
            &[("x-forwarded-for", "192.0.2.10"), ("cf-ipcountry", "BE")]
        )
        .await,
        Some("BE".into()),
        "the trusted proxy's header wins"
    );
    assert_eq!(
        country_seen(&app, &inbox, org, &from("203.0.113.9")).await,
        None,
        "an address in no network has no country"
    );
    assert_eq!(
        country_seen(&app, &inbox, org, &[]).await,
        None,
        "nor has the loopback peer"
    );
}

#[tokio::test]
async fn a_missing_or_corrupt_country_database_stops_start_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let corrupt = dir.path().join("corrupt.mmdb");
    std::fs::write(&corrupt, b"not a MaxMind DB").expect("write");
    for path in [dir.path().join("missing.mmdb"), corrupt] {
        let mut config = Config::for_tests(dir.path());
        config.visitors.geoip_database = Some(path.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let started = Kaltalk::new(listener, config, Arc::new(ManualClock::starting_now())).await;
        let Err(err) = started else {
            panic!("{} should stop start-up", path.display());
        };
        let message = format!("{err:#}");
        assert!(
            message.contains(&path.display().to_string()),
            "names the file: {message}"
        );
    }
}

#[tokio::test]
async fn the_widget_scripts_are_served_without_cookies() {
    let app = spawn_app().await;
    for path in ["/widget.js", "/widget/chat.js"] {
        let response = app.api().get(app.url(path)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/javascript")
        );
        assert!(!response.headers().contains_key("set-cookie"));
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("document.cookie"),
            "{path} never touches cookies"
        );
    }
}

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";

fn upload_form(filename: &str, bytes: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("client_id", "img-1")
        .text("context", page_context().to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned()),
        )
}

#[tokio::test]
async fn a_visitor_sends_an_image_that_only_the_conversation_can_see() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let other = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Here is a screenshot").await;
    let upload_url = app.url(&format!(
        "/widget/v1/inboxes/{}/attachments",
        inbox.public_token
    ));
    let post = |form: reqwest::multipart::Form, token: Option<String>| {
        let mut request = app
            .api()
            .post(upload_url.clone())
            .header("origin", SITE)
            .multipart(form);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let sent = post(
        upload_form("../screen shot.png", PNG.to_vec()),
        visitor.token.clone(),
    )
    .await
    .expect("upload");
    assert_eq!(sent.status(), StatusCode::CREATED);
    let body: Value = sent.json().await.expect("json");
    assert_eq!(
        body["conversation_id"], first["conversation_id"],
        "into the same conversation"
    );
    let file = &body["message"]["attachments"][0];
    assert_eq!(file["filename"], "screen shot.png");
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["size"], PNG.len());
    let url = file["url"].as_str().expect("url").to_owned();

    let image = app.api().get(app.url(&url)).send().await.expect("image");
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.headers()["x-content-type-options"], "nosniff");
    assert!(
        image.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("inline")
    );
    assert_eq!(image.bytes().await.expect("bytes").as_ref(), PNG);
    let (path, _) = url.split_once("?t=").expect("token in url");
    assert_eq!(
        app.api()
            .get(app.url(path))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND,
        "no token, no file"
    );
    assert_eq!(
        app.api()
            .get(app.url(&format!("{path}?t=guess")))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );

    // The team sees it inline in the inbox; another organization does not.
    let id = file["id"].as_str().expect("id");
    let conversation = first["conversation_id"].as_str().expect("id");
    let page = owner
        .get_html(&format!("/inbox?view=all&c={conversation}"))
        .await;
    // An image alone is the last message: the list says so instead of an empty preview.
    assert!(
        page.contains("<use href=\"#i-clip\"/></svg> Attachment</span>"),
        "the list previews an image-only message as an attachment:\n{page}"
    );
    assert!(
        page.contains(&format!("src=\"/inbox/attachments/{id}\"")),
        "shown inline"
    );
    assert_eq!(
        owner
            .get(&format!("/inbox/attachments/{id}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        other
            .get(&format!("/inbox/attachments/{id}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Refused: script-carrying types, whatever the name says, and oversize files.
    let svg = post(
        upload_form(
            "logo.png",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec(),
        ),
        visitor.token.clone(),
    )
    .await
    .expect("upload");
    assert_eq!(svg.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        svg.json::<Value>().await.expect("json")["code"],
        "unsupported_file_type"
    );
    let mut big = PNG.to_vec();
    big.resize(kaltalk_server::attachments::MAX_BYTES + 1, 0);
    let too_big = post(upload_form("big.png", big), visitor.token.clone())
        .await
        .expect("upload");
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        too_big.json::<Value>().await.expect("json")["code"],
        "file_too_large"
    );

    // Nothing refused was kept; the accepted message and image are.
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2));
    let _ = &mut visitor;
}

#[tokio::test]
async fn the_team_sees_when_the_visitor_read_its_reply() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("Hello").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.clock.advance(chrono::Duration::seconds(5));
    owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{id}/messages"),
            &[("text", "Hi there"), ("kind", "text")],
        )
        .await;
    app.clock.advance(chrono::Duration::seconds(5));
    let before = owner
        .get_html(&format!("/inbox/conversations/{id}/messages"))
        .await;
    assert!(!before.contains("Seen by the visitor"));

    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let mut agent = Socket::agent(&app, &cookie, None).await;
    let mut widget = visitor.socket(None).await;
    widget.send(json!({ "type": "seen" })).await;
    let seen = agent.next_of("conversation.seen").await;
    assert_eq!(seen["payload"]["by"], "contact");
    let after = owner
        .get_html(&format!("/inbox/conversations/{id}/messages"))
        .await;
    assert!(after.contains("Seen by the visitor"), "{after}");
}

#[tokio::test]
async fn a_socket_that_falls_behind_catches_up_from_the_log_in_order() {
    // A broadcast buffer of 2: any burst leaves the socket behind.
    let app = spawn_app_with(|config| config.realtime.buffer = 2).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let agent = owner.user_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id: kaltalk_core::ConversationId = visitor.say("Hello").await["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let mut socket = visitor.socket(None).await;
    socket.next_of("message.created").await; // the replay of "Hello"

    // Fifty replies committed, then published in one burst.
    let mut events = Vec::new();
    for n in 0..50 {
        let text = format!("reply {n}");
        let write = kaltalk_store::messages::AgentWrite {
            agent,
            kind: kaltalk_core::chat::MessageKind::Text,
            text: &kaltalk_core::MessageText::parse("text", &text).expect("text"),
            client_id: None,
            attachments: &[],
            email: None,
            mentions: &[],
        };
        events.extend(
            app.state
                .store
                .agent_writes(org, id, write, app.clock_now())
                .await
                .expect("write")
                .events,
        );
    }
    app.state.hub.publish_events(events);

    let mut texts = Vec::new();
    while texts.len() < 50 {
        let frame = socket.next_of("message.created").await;
        let text = frame["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if text != "Hello" && !texts.contains(&text) {
            texts.push(text);
        }
    }
    let expected: Vec<String> = (0..50).map(|n| format!("reply {n}")).collect();
    assert_eq!(texts, expected, "every reply, in order, despite the lag");
}

#[tokio::test]
async fn the_server_pings_its_sockets() {
    let app = spawn_app_with(|config| config.realtime.ping_seconds = 1).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("Hello").await;
    let socket = visitor.socket(None).await;
    assert!(socket.next_ping().await, "a ping within a few seconds");
}

/// Sets the inbox's identity verification mode.
async fn set_identity_mode(app: &TestApp, org: OrgId, inbox: &Inbox, mode: IdentityMode) {
    let mut settings = inbox.settings.0.clone();
    settings.identity = mode;
    app.state
        .store
        .update_inbox(
            org,
            inbox.id,
            "Website",
            InboxSettings::Widget(&settings),
            app.clock_now(),
        )
        .await
        .expect("update");
}

fn signed(inbox: &Inbox, id: &str, name: &str) -> Value {
    json!({ "id": id, "name": name, "hash": kaltalk_server::widget::sign(&inbox.identity_secret, id) })
}

async fn contact_of(app: &TestApp, org: OrgId, said: &Value) -> kaltalk_store::contacts::Contact {
    let conversation = app
        .state
        .store
        .get_conversation(
            org,
            said["conversation_id"]
                .as_str()
                .expect("conversation_id")
                .parse()
                .expect("id"),
        )
        .await
        .expect("conversation");
    app.state
        .store
        .get_contact(org, conversation.contact_id)
        .await
        .expect("contact")
}

#[tokio::test]
async fn another_user_signing_in_on_the_same_browser_gets_a_new_session_and_contact() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    set_identity_mode(&app, org, &inbox, IdentityMode::Optional).await;
    let mut visitor = Visitor::new(&app, &inbox);
    let ada = signed(&inbox, "user-ada", "Ada");
    let said = visitor
        .send(json!({ "text": "I am Ada", "identity": ada.clone() }))
        .await;
    assert_eq!(said.status(), StatusCode::CREATED);
    let ada_said: Value = said.json().await.expect("json");
    visitor.token = ada_said["visitor_token"].as_str().map(str::to_owned);
    let ada_contact = contact_of(&app, org, &ada_said).await;
    assert_eq!(
        visitor.post("/widget/v1/identify", ada).await.status(),
        StatusCode::NO_CONTENT,
        "the same user again changes nothing"
    );

    // Ada logs out of the shop without the widget knowing; Bob logs in.
    let bob = signed(&inbox, "user-bob", "Bob");
    let switched = visitor.post("/widget/v1/identify", bob.clone()).await;
    assert_eq!(switched.status(), StatusCode::RESET_CONTENT);
    let still_ada = app
        .state
        .store
        .get_contact(org, ada_contact.id)
        .await
        .expect("contact");
    assert_eq!(still_ada.external_id.as_deref(), Some("user-ada"));
    assert_eq!(still_ada.name.as_deref(), Some("Ada"));
    let ended = visitor.get("/widget/v1/conversation").await;
    assert_eq!(
        ended.status(),
        StatusCode::UNAUTHORIZED,
        "Ada's session ended"
    );

    visitor.token = None;
    let bob_said = visitor
        .send(json!({ "text": "I am Bob", "identity": bob.clone() }))
        .await;
    assert_eq!(bob_said.status(), StatusCode::CREATED);
    let bob_said: Value = bob_said.json().await.expect("json");
    let bob_contact = contact_of(&app, org, &bob_said).await;
    assert_ne!(bob_contact.id, ada_contact.id, "a contact of his own");
    assert_eq!(bob_contact.external_id.as_deref(), Some("user-bob"));
    assert_ne!(bob_said["conversation_id"], ada_said["conversation_id"]);

    // A message signed for Bob on a session of Ada's (a widget that never called
    // identify) does not land in Ada's conversation either.
    let mut tab = Visitor::new(&app, &inbox);
    let again: Value = tab
        .send(json!({ "text": "Ada here", "identity": signed(&inbox, "user-ada", "Ada") }))
        .await
        .json()
        .await
        .expect("json");
    tab.token = again["visitor_token"].as_str().map(str::to_owned);
    let crossed = tab
        .send(json!({ "text": "Bob again", "identity": bob }))
        .await;
    assert_eq!(crossed.status(), StatusCode::CREATED);
    let crossed: Value = crossed.json().await.expect("json");
    assert_ne!(
        crossed["visitor_token"], again["visitor_token"],
        "a new session"
    );
    assert_eq!(
        crossed["conversation_id"], bob_said["conversation_id"],
        "Bob's own"
    );
    let ada_after = app
        .state
        .store
        .get_contact(org, ada_contact.id)
        .await
        .expect("contact");
    assert_eq!(ada_after.external_id.as_deref(), Some("user-ada"));
    assert_eq!(
        tab.get("/widget/v1/conversation").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_inbox_switched_to_required_identity_ends_anonymous_sessions_reads_too() {
    // A socket is admitted again at every ping: one a second here.
    let app = spawn_app_with(|config| config.realtime.ping_seconds = 1).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let anonymous = visitor.say("Hello").await;
    let open_socket = visitor.socket(None).await;
    set_identity_mode(&app, org, &inbox, IdentityMode::Required).await;

    // The socket that was open is closed at its next ping, with a code that says
    // "do not simply reconnect".
    assert_eq!(open_socket.closed_by_server().await, Some(4403));

    let read = visitor.get("/widget/v1/conversation").await;
    assert_eq!(read.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        read.json::<Value>().await.expect("json")["code"],
        "identity_required"
    );
    let context = visitor
        .post("/widget/v1/context", json!({ "page_title": "Cart" }))
        .await;
    assert_eq!(context.status(), StatusCode::FORBIDDEN);
    let mut socket = format!(
        "ws://{}/widget/v1/ws?token={}",
        app.addr,
        visitor.token.as_deref().expect("token")
    )
    .into_client_request()
    .expect("request");
    socket
        .headers_mut()
        .insert("origin", SITE.parse().expect("header"));
    assert!(
        tokio_tungstenite::connect_async(socket).await.is_err(),
        "no live stream either"
    );

    // Signed in, the visitor writes again: a new session, not the anonymous one.
    let signed_in = visitor
        .send(json!({ "text": "Me again", "identity": signed(&inbox, "user-42", "Ada") }))
        .await;
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    let signed_in: Value = signed_in.json().await.expect("json");
    assert_ne!(signed_in["visitor_token"], anonymous["visitor_token"]);
    assert_ne!(signed_in["conversation_id"], anonymous["conversation_id"]);
    let anonymous_contact = contact_of(&app, org, &anonymous).await;
    assert_eq!(anonymous_contact.external_id, None);
}

#[tokio::test]
async fn a_user_id_longer_than_the_stored_limit_is_refused() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    set_identity_mode(&app, org, &inbox, IdentityMode::Optional).await;
    let visitor = Visitor::new(&app, &inbox);
    let long = "u".repeat(201);
    let refused = visitor
        .send(json!({ "text": "hi", "identity": signed(&inbox, &long, "Ada") }))
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "identity.id");
}

#[tokio::test]
async fn new_sessions_per_address_and_messages_per_session_are_rate_limited() {
    let app = spawn_app_with(|config| {
        config.widget.sessions_per_ip_per_minute = 2;
        config.widget.messages_per_session_per_minute = 3;
    })
    .await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut first = Visitor::new(&app, &inbox);
    first.say("one").await;
    Visitor::new(&app, &inbox).say("two").await;
    let refused = Visitor::new(&app, &inbox)
        .send(json!({ "text": "three" }))
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "30");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        refused.json::<Value>().await.expect("json")["code"],
        "rate_limited"
    );
    app.clock.advance(Duration::seconds(30));
    Visitor::new(&app, &inbox).say("three, later").await;

    // A session's messages have their own allowance, not the address's.
    for n in 0..3 {
        first.say(&format!("more {n}")).await;
    }
    let too_fast = first.send(json!({ "text": "and more" })).await;
    assert_eq!(too_fast.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(too_fast.headers()["retry-after"], "20");
    app.clock.advance(Duration::seconds(20));
    first.say("after a pause").await;
}

#[tokio::test]
async fn state_changing_widget_requests_need_an_origin() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let no_origin = app
        .api()
        .post(app.url(&format!(
            "/widget/v1/inboxes/{}/messages",
            inbox.public_token
        )))
        .json(&json!({ "text": "from a script" }))
        .send()
        .await
        .expect("post");
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        no_origin.json::<Value>().await.expect("json")["code"],
        "origin_required"
    );
    let config = app
        .api()
        .get(app.url(&format!("/widget/v1/inboxes/{}/config", inbox.public_token)))
        .send()
        .await
        .expect("get");
    assert_eq!(config.status(), StatusCode::OK, "reads need none");
}

#[tokio::test]
async fn the_bot_answers_one_address_a_limited_number_of_times_an_hour() {
    let app = spawn_app_with(|config| config.widget.bot_turns_per_ip_per_hour = 1).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    crate::ai::enable_ai(&app, &owner, "0.3").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let limit_note = |messages: &[kaltalk_store::messages::Message]| {
        messages
            .iter()
            .any(|m| m.text.contains("hourly limit of answers to this visitor"))
    };
    let mut notes = Vec::new();
    for text in ["first", "second"] {
        let said = Visitor::new(&app, &inbox).say(text).await;
        app.run_jobs().await;
        let id = said["conversation_id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid");
        let conversation = app
            .state
            .store
            .get_conversation(org, id)
            .await
            .expect("conversation");
        assert_eq!(
            conversation.handling,
            kaltalk_core::chat::Handling::WaitingHuman
        );
        let messages = app
            .state
            .store
            .list_messages(org, id, true)
            .await
            .expect("messages");
        notes.push(limit_note(&messages));
    }
    assert_eq!(
        notes,
        vec![false, true],
        "the second turn from the address goes to the team"
    );
    app.clock.advance(Duration::hours(1));
    let said = Visitor::new(&app, &inbox).say("an hour later").await;
    app.run_jobs().await;
    let id = said["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let messages = app
        .state
        .store
        .list_messages(org, id, true)
        .await
        .expect("messages");
    assert!(!limit_note(&messages));
}

#[tokio::test]
async fn an_oversized_message_body_is_refused_in_the_widget_error_format() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let visitor = Visitor::new(&app, &inbox);
    let huge = visitor
        .send(json!({ "text": "x".repeat(2 * 1024 * 1024) }))
        .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.headers()["content-type"], "application/problem+json");
    assert_eq!(huge.headers()["access-control-allow-origin"], SITE);
    let body: Value = huge.json().await.expect("json");
    assert_eq!(body["status"], 413);
    assert_eq!(body["code"], "payload_too_large");
}
