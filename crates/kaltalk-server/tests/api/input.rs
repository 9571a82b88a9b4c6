//! Input every edge reads the same way: text with a NUL character is refused naming the
//! field (PostgreSQL cannot store one), labels are capped, API bodies must be JSON, and
//! every API list pages alike.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::create_key;
use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{TestApp, spawn_app};

/// Calls the API with `key`; returns the status and the JSON body (null when empty).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .api()
        .request(method, app.url(&format!("/api/v1{path}")))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// Asserts a 422 problem document naming `field`.
#[track_caller]
fn assert_refused(answer: &(StatusCode, Value), field: &str, what: &str) {
    let (status, problem) = answer;
    assert_eq!(
        *status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {problem}"
    );
    assert_eq!(problem["code"], "validation_failed", "{what}: {problem}");
    assert_eq!(problem["errors"][0]["field"], field, "{what}: {problem}");
}

/// An api inbox with one conversation; returns (inbox id, conversation id).
async fn api_conversation(app: &TestApp, key: &str) -> (String, String) {
    let (status, inbox) = call(
        app,
        Method::POST,
        "/inboxes",
        key,
        Some(json!({ "kind": "api", "name": "App" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let inbox = inbox["id"].as_str().expect("id").to_owned();
    let (status, started) = call(
        app,
        Method::POST,
        &format!("/inboxes/{inbox}/conversations"),
        key,
        Some(json!({ "contact": { "name": "Cy" }, "text": "Hi" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let conversation = started["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (inbox, conversation)
}

#[tokio::test]
async fn api_text_with_a_nul_is_a_422_naming_the_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Integration").await;
    let (inbox, conversation) = api_conversation(&app, &key).await;

    for (body, field) in [
        (json!({ "name": "Ada\u{0}" }), "name"),
        (json!({ "email": "ada\u{0}@example.com" }), "email"),
        (json!({ "external_id": "u-\u{0}1" }), "external_id"),
        (
            json!({ "attributes": { "plan": "p\u{0}ro" } }),
            "attributes",
        ),
        (
            json!({ "attributes": { "p\u{0}lan": "pro" } }),
            "attributes",
        ),
        (
            json!({ "attributes": { "deep": [{ "x": "\u{0}" }] } }),
            "attributes",
        ),
    ] {
        let answer = call(&app, Method::POST, "/contacts", &key, Some(body.clone())).await;
        assert_refused(&answer, field, &format!("POST /contacts {body}"));
    }
    let (_, contacts) = call(&app, Method::GET, "/contacts", &key, None).await;
    assert_eq!(
        contacts["data"].as_array().map(Vec::len),
        Some(1),
        "only Cy"
    );
    let cy = contacts["data"][0]["id"].as_str().expect("id").to_owned();
    let answer = call(
        &app,
        Method::PATCH,
        &format!("/contacts/{cy}"),
        &key,
        Some(json!({ "name": "C\u{0}y" })),
    )
    .await;
    assert_refused(&answer, "name", "PATCH /contacts");

    let answer = call(
        &app,
        Method::POST,
        &format!("/conversations/{conversation}/messages"),
        &key,
        Some(json!({ "text": "Hello\u{0}" })),
    )
    .await;
    assert_refused(&answer, "text", "a message");
    let answer = call(
        &app,
        Method::POST,
        &format!("/inboxes/{inbox}/conversations"),
        &key,
        Some(json!({ "contact": { "name": "Dee" }, "text": "Hi\u{0}" })),
    )
    .await;
    assert_refused(&answer, "text", "a new conversation");
    let answer = call(
        &app,
        Method::POST,
        "/knowledge/sources",
        &key,
        Some(json!({ "kind": "text", "title": "FAQ\u{0}", "text": "Answers" })),
    )
    .await;
    assert_refused(&answer, "title", "a knowledge source");
    let (_, messages) = call(
        &app,
        Method::GET,
        &format!("/conversations/{conversation}/messages"),
        &key,
        None,
    )
    .await;
    assert_eq!(
        messages["data"].as_array().map(Vec::len),
        Some(1),
        "only Hi"
    );

    for path in ["/contacts?q=a%00b", "/conversations?q=a%00b"] {
        let answer = call(&app, Method::GET, path, &key, None).await;
        assert_refused(&answer, "q", path);
    }
}

#[tokio::test]
async fn widget_text_with_a_nul_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let visitor = Visitor::new(&app, &inbox);

    for (body, field) in [
        (json!({ "text": "Hello\u{0}" }), "text"),
        (
            json!({ "text": "Hello", "identity": { "name": "Ada\u{0}" } }),
            "identity",
        ),
        (
            json!({ "text": "Hello", "identity": { "attributes": { "plan": "\u{0}" } } }),
            "identity",
        ),
    ] {
        let response = visitor.send(body.clone()).await;
        let status = response.status();
        let problem: Value = response.json().await.expect("a problem");
        assert_refused(&(status, problem), field, &format!("widget {body}"));
    }
    let org = owner.org_id().await;
    let conversations = app
        .state
        .store
        .list_conversations(org, &Default::default())
        .await
        .expect("conversations");
    assert!(conversations.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn dashboard_forms_refuse_a_nul_with_a_clear_message() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let conversation = visitor.say("Where is my order?").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let reply = owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[("text", "On its way\u{0}")],
        )
        .await;
    assert!(reply.status().is_client_error(), "{}", reply.status());
    assert!(reply.text().await.expect("page").contains("U+0000"));
    let canned = owner
        .submit(
            "/settings/canned-responses",
            "/settings/canned-responses",
            &[("shortcut", "ship"), ("text", "Ships\u{0} today")],
        )
        .await;
    assert!(canned.status().is_client_error(), "{}", canned.status());

    let org = owner.org_id().await;
    let said = app
        .state
        .store
        .list_messages(org, conversation.parse().expect("id"), true)
        .await
        .expect("messages");
    assert_eq!(said.len(), 1, "no reply stored");
    assert!(
        app.state
            .store
            .list_canned_responses(org)
            .await
            .expect("canned")
            .is_empty()
    );
}

#[tokio::test]
async fn a_conversation_has_at_most_20_labels_from_the_api_and_the_dashboard() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Integration").await;
    let (_, conversation) = api_conversation(&app, &key).await;
    let path = format!("/conversations/{conversation}");
    let labels = |n: usize| (0..n).map(|i| format!("label-{i}")).collect::<Vec<_>>();

    let answer = call(
        &app,
        Method::PATCH,
        &path,
        &key,
        Some(json!({ "labels": labels(21) })),
    )
    .await;
    assert_refused(&answer, "labels", "21 labels");
    let answer = call(
        &app,
        Method::PATCH,
        &path,
        &key,
        Some(json!({ "labels": ["x".repeat(41)] })),
    )
    .await;
    assert_refused(&answer, "labels", "a 41-character label");
    let (status, updated) = call(
        &app,
        Method::PATCH,
        &path,
        &key,
        Some(json!({ "labels": labels(20) })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["labels"].as_array().map(Vec::len), Some(20));

    // The dashboard adds one at a time: the 21st is refused with a message saying why.
    let refused = owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{conversation}/labels"),
            &[("label", "one-more")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.expect("page");
    assert!(page.contains("at most 20 labels"), "{page}");
    let org = owner.org_id().await;
    let kept = app
        .state
        .store
        .labels_of(org, conversation.parse().expect("id"))
        .await
        .expect("labels");
    assert_eq!(kept.len(), 20);

    // The caps are in the OpenAPI document.
    let (_, doc) = call(&app, Method::GET, "/openapi.json", &key, None).await;
    assert_eq!(
        doc["components"]["schemas"]["ConversationChange"]["properties"]["labels"]["maxItems"],
        20
    );
}

#[tokio::test]
async fn api_bodies_that_are_not_json_are_a_415_problem() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Integration").await;
    let (_, conversation) = api_conversation(&app, &key).await;

    for (method, path) in [
        (Method::POST, "/contacts".to_owned()),
        (Method::PATCH, format!("/conversations/{conversation}")),
        (
            Method::POST,
            format!("/conversations/{conversation}/messages"),
        ),
        (Method::POST, "/webhooks".to_owned()),
        (Method::POST, "/knowledge/sources".to_owned()),
        (Method::POST, "/inboxes".to_owned()),
    ] {
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let mut request = app
                .api()
                .request(method.clone(), app.url(&format!("/api/v1{path}")))
                .bearer_auth(&key)
                .body(r#"{"name": "Ada", "text": "Hi"}"#);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.expect("request");
            let what = format!("{method} {path} as {content_type:?}");
            assert_eq!(
                response.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{what}"
            );
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{what}"
            );
            let problem: Value = response.json().await.expect("json");
            assert_eq!(problem["code"], "unsupported_media_type", "{what}");
        }
    }
    // With its type, the same body is read.
    let (status, _) = call(
        &app,
        Method::POST,
        "/contacts",
        &key,
        Some(json!({ "name": "Ada" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn every_api_list_reads_limit_and_cursor_the_same_way() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Integration").await;
    let (_, conversation) = api_conversation(&app, &key).await;
    for n in 0..2 {
        let (status, hook) = call(
            &app,
            Method::POST,
            "/webhooks",
            &key,
            Some(json!({ "url": format!("https://hooks{n}.example.com/kaltalk") })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{hook}");
    }
    let (_, hooks) = call(&app, Method::GET, "/webhooks?limit=1", &key, None).await;
    assert_eq!(hooks["data"].as_array().map(Vec::len), Some(1), "{hooks}");
    let next = hooks["next_cursor"].as_str().expect("a next page");
    let (_, rest) = call(
        &app,
        Method::GET,
        &format!("/webhooks?limit=1&cursor={next}"),
        &key,
        None,
    )
    .await;
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(1));
    assert_ne!(rest["data"][0]["id"], hooks["data"][0]["id"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let hook = hooks["data"][0]["id"].as_str().expect("id");

    let lists = [
        "/team".to_owned(),
        "/conversations".to_owned(),
        "/contacts".to_owned(),
        "/inboxes".to_owned(),
        "/knowledge/sources".to_owned(),
        "/webhooks".to_owned(),
        format!("/webhooks/{hook}/deliveries"),
        format!("/conversations/{conversation}/messages"),
    ];
    for list in &lists {
        let (status, page) = call(&app, Method::GET, &format!("{list}?limit=1"), &key, None).await;
        assert_eq!(status, StatusCode::OK, "{list}: {page}");
        assert!(page.get("next_cursor").is_some(), "{list} pages: {page}");
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=ten", "limit"),
            ("cursor=nonsense", "cursor"),
        ] {
            let path = format!("{list}?{query}");
            let answer = call(&app, Method::GET, &path, &key, None).await;
            assert_refused(&answer, field, &path);
            assert_eq!(
                answer.1["errors"][0]["message"],
                if field == "limit" {
                    "A number from 1 to 100."
                } else {
                    "Not a cursor from a previous page."
                },
                "{path}"
            );
        }
    }
}

#[test]
fn the_widget_protocol_names_the_attachment_url_parameter_the_server_uses() {
    let doc = include_str!("../../../../docs/widget-protocol.md");
    let attachment = kaltalk_store::messages::Attachment {
        id: kaltalk_core::AttachmentId::new(),
        org_id: kaltalk_core::OrgId::new(),
        conversation_id: kaltalk_core::ConversationId::new(),
        message_id: kaltalk_core::MessageId::new(),
        filename: "a.png".into(),
        content_type: "image/png".into(),
        size: 1,
        storage_key: "k".into(),
        access_token: "secret".into(),
        created_at: chrono::Utc::now(),
    };
    let url = attachment.widget_url();
    let (_, query) = url.split_once('?').expect("a query");
    let (param, _) = query.split_once('=').expect("a parameter");
    assert!(
        doc.contains(&format!("/widget/v1/attachments/…?{param}=…")),
        "docs/widget-protocol.md shows the URL with ?{param}="
    );
}
