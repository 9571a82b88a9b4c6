//! The API's resources (conversations, messages, contacts, inboxes, knowledge sources):
//! every endpoint's 401 / 404 / 422, stable pagination, api inboxes, merges and
//! `Idempotency-Key`.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::create_key;
use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, TestApp, spawn_app};

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    call_with(app, method, path, key, body, None).await
}

async fn call_with(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .api()
        .request(method, app.url(&format!("/api/v1{path}")));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("idempotency-key", idempotency_key);
    }
    request.send().await.expect("request")
}

/// Calls and expects `status`; returns the JSON body (null when empty).
async fn expect(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let response = call(app, method.clone(), path, Some(key), body.as_ref()).await;
    let got = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "{method} {path}: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("json")
    }
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// Revokes the organization's key called `name` through the dashboard.
async fn revoke(app: &TestApp, owner: &Browser, name: &str) {
    let keys = app
        .state
        .store
        .list_api_keys(owner.org_id().await)
        .await
        .expect("keys");
    let key = keys.iter().find(|k| k.name == name).expect("the key");
    let response = owner
        .submit(
            "/settings/api-keys",
            &format!("/settings/api-keys/{}/revoke", key.id),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn create_api_inbox(app: &TestApp, key: &str) -> String {
    let inbox = expect(
        app,
        Method::POST,
        "/inboxes",
        key,
        Some(json!({ "kind": "api", "name": "Mobile app" })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(inbox["kind"], "api");
    id_of(&inbox)
}

/// Starts a conversation in an api inbox; returns the whole answer.
async fn start(app: &TestApp, key: &str, inbox: &str, contact: Value, text: &str) -> Value {
    expect(
        app,
        Method::POST,
        &format!("/inboxes/{inbox}/conversations"),
        key,
        Some(json!({ "contact": contact, "text": text })),
        StatusCode::CREATED,
    )
    .await
}

/// Walks every page of `path` (which has no query yet); returns the ids in order.
async fn walk(
    app: &TestApp,
    key: &str,
    path: &str,
    limit: usize,
    between: impl AsyncFn(),
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}?limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = expect(app, Method::GET, &url, key, None, StatusCode::OK).await;
        let data = page["data"].as_array().expect("data");
        assert!(
            data.len() <= limit,
            "{path}: a page holds at most limit items"
        );
        ids.extend(data.iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
        between().await;
    }
}

#[tokio::test]
async fn every_resource_endpoint_checks_the_key_the_organization_and_the_input() {
    let app = spawn_app().await;
    let acme = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let globex = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let acme_key = create_key(&app, &acme, "Acme").await;
    let globex_key = create_key(&app, &globex, "Globex").await;
    let revoked_key = create_key(&app, &globex, "Old").await;
    revoke(&app, &globex, "Old").await;

    // Globex's resources.
    let inbox = create_api_inbox(&app, &globex_key).await;
    let started = start(
        &app,
        &globex_key,
        &inbox,
        json!({ "email": "c@x.test" }),
        "Hi",
    )
    .await;
    let conversation = id_of(&started["conversation"]);
    let contact = id_of(&started["contact"]);
    let other_contact = id_of(
        &expect(
            &app,
            Method::POST,
            "/contacts",
            &globex_key,
            Some(json!({ "name": "Bo" })),
            StatusCode::CREATED,
        )
        .await,
    );
    let source = id_of(
        &expect(
            &app,
            Method::POST,
            "/knowledge/sources",
            &globex_key,
            Some(json!({ "kind": "text", "title": "Returns", "text": "30 days." })),
            StatusCode::CREATED,
        )
        .await,
    );

    let with_ids = |template: &str| {
        template
            .replace("{conversation}", &conversation)
            .replace("{contact}", &contact)
            .replace("{other}", &other_contact)
            .replace("{inbox}", &inbox)
            .replace("{source}", &source)
    };
    let by_id: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/conversations/{conversation}", None),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            Some(json!({ "status": "resolved" })),
        ),
        (Method::GET, "/conversations/{conversation}/messages", None),
        (
            Method::POST,
            "/conversations/{conversation}/messages",
            Some(json!({ "text": "Hello" })),
        ),
        (Method::GET, "/contacts/{contact}", None),
        (
            Method::PATCH,
            "/contacts/{contact}",
            Some(json!({ "name": "Cy" })),
        ),
        (
            Method::POST,
            "/contacts/{contact}/merge",
            Some(json!({ "into": "{other}" })),
        ),
        (Method::DELETE, "/contacts/{contact}", None),
        (
            Method::POST,
            "/inboxes/{inbox}/conversations",
            Some(json!({ "contact": { "name": "Z" }, "text": "Hi" })),
        ),
        (Method::GET, "/knowledge/sources/{source}", None),
        (Method::POST, "/knowledge/sources/{source}/resync", None),
        (Method::DELETE, "/knowledge/sources/{source}", None),
    ];
    let lists: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/conversations", None),
        (Method::GET, "/contacts", None),
        (Method::POST, "/contacts", Some(json!({ "name": "X" }))),
        (Method::GET, "/inboxes", None),
        (
            Method::POST,
            "/inboxes",
            Some(json!({ "kind": "api", "name": "X" })),
        ),
        (Method::GET, "/knowledge/sources", None),
        (Method::GET, "/team", None),
        (
            Method::POST,
            "/knowledge/sources",
            Some(json!({ "kind": "text", "title": "T", "text": "X" })),
        ),
    ];
    for (method, template, body) in by_id.iter().chain(lists.iter()) {
        let path = with_ids(template);
        let body = body
            .as_ref()
            .map(|b| serde_json::from_str::<Value>(&with_ids(&b.to_string())).expect("json"));
        for (key, why) in [
            (None, "without a key"),
            (Some(revoked_key.as_str()), "with a revoked key"),
        ] {
            let response = call(&app, method.clone(), &path, key, body.as_ref()).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {why}"
            );
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
    }
    for (method, template, body) in &by_id {
        let path = with_ids(template);
        let body = body
            .as_ref()
            .map(|b| serde_json::from_str::<Value>(&with_ids(&b.to_string())).expect("json"));
        let response = call(&app, method.clone(), &path, Some(&acme_key), body.as_ref()).await;
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "{method} {path} as Acme"
        );
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["code"], "not_found");
    }
    // Acme's lists show none of Globex's rows.
    for path in [
        "/conversations",
        "/contacts",
        "/inboxes",
        "/knowledge/sources",
    ] {
        let list = expect(&app, Method::GET, path, &acme_key, None, StatusCode::OK).await;
        assert_eq!(list["data"], json!([]), "{path} as Acme");
    }
    // Nothing of Globex changed.
    let still = expect(
        &app,
        Method::GET,
        &with_ids("/conversations/{conversation}"),
        &globex_key,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(still["status"], "open");

    // Invalid input: 422 naming the field.
    let far = (app.clock_now() + Duration::days(2)).to_rfc3339();
    let past = (app.clock_now() - Duration::days(2)).to_rfc3339();
    let invalid: Vec<(Method, &str, Value, &str)> = vec![
        (Method::GET, "/team?limit=0", Value::Null, "limit"),
        (Method::GET, "/contacts?limit=0", Value::Null, "limit"),
        (Method::GET, "/contacts?limit=101", Value::Null, "limit"),
        (
            Method::GET,
            "/contacts?cursor=nonsense",
            Value::Null,
            "cursor",
        ),
        (
            Method::GET,
            "/conversations?limit=abc",
            Value::Null,
            "limit",
        ),
        (
            Method::GET,
            "/conversations/{conversation}/messages?cursor=x_y",
            Value::Null,
            "cursor",
        ),
        (Method::GET, "/inboxes?limit=-1", Value::Null, "limit"),
        (
            Method::GET,
            "/knowledge/sources?cursor=1_zz",
            Value::Null,
            "cursor",
        ),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            json!({ "status": "closed" }),
            "status",
        ),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            json!({ "status": "snoozed" }),
            "snoozed_until",
        ),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            json!({ "status": "snoozed", "snoozed_until": past }),
            "snoozed_until",
        ),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            json!({ "status": "open", "snoozed_until": far }),
            "snoozed_until",
        ),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            json!({ "assignee_id": "not-a-user" }),
            "assignee_id",
        ),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            json!({ "assignee_id": uuid::Uuid::now_v7().to_string() }),
            "assignee_id",
        ),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            json!({ "labels": "vip" }),
            "labels",
        ),
        (
            Method::PATCH,
            "/conversations/{conversation}",
            json!({ "labels": ["has space!"] }),
            "labels",
        ),
        (
            Method::POST,
            "/conversations/{conversation}/messages",
            json!({ "text": "  " }),
            "text",
        ),
        (
            Method::POST,
            "/conversations/{conversation}/messages",
            json!({ "text": "x".repeat(10_001) }),
            "text",
        ),
        (
            Method::POST,
            "/conversations/{conversation}/messages",
            json!({ "text": "Hi", "kind": "shout" }),
            "kind",
        ),
        (
            Method::POST,
            "/contacts",
            json!({ "email": "not an email" }),
            "email",
        ),
        (Method::POST, "/contacts", json!({ "name": 42 }), "name"),
        (
            Method::POST,
            "/contacts",
            json!({ "attributes": [1] }),
            "attributes",
        ),
        (
            Method::PATCH,
            "/contacts/{contact}",
            json!({ "email": "@nope" }),
            "email",
        ),
        (Method::POST, "/contacts/{contact}/merge", json!({}), "into"),
        (
            Method::POST,
            "/contacts/{contact}/merge",
            json!({ "into": "{contact}" }),
            "into",
        ),
        (
            Method::POST,
            "/contacts/{contact}/merge",
            json!({ "into": uuid::Uuid::now_v7().to_string() }),
            "into",
        ),
        (
            Method::POST,
            "/inboxes",
            json!({ "kind": "web", "name": "Site" }),
            "kind",
        ),
        (
            Method::POST,
            "/inboxes",
            json!({ "kind": "api", "name": " " }),
            "name",
        ),
        (
            Method::POST,
            "/inboxes/{inbox}/conversations",
            json!({ "text": "Hi" }),
            "contact",
        ),
        (
            Method::POST,
            "/inboxes/{inbox}/conversations",
            json!({ "contact": {}, "text": "Hi" }),
            "contact",
        ),
        (
            Method::POST,
            "/inboxes/{inbox}/conversations",
            json!({ "contact": { "id": uuid::Uuid::now_v7().to_string() }, "text": "Hi" }),
            "contact.id",
        ),
        (
            Method::POST,
            "/inboxes/{inbox}/conversations",
            json!({ "contact": { "name": "A" }, "text": "" }),
            "text",
        ),
        (
            Method::POST,
            "/knowledge/sources",
            json!({ "kind": "pdf" }),
            "kind",
        ),
        (
            Method::POST,
            "/knowledge/sources",
            json!({ "kind": "text", "title": "", "text": "x" }),
            "title",
        ),
        (
            Method::POST,
            "/knowledge/sources",
            json!({ "kind": "text", "title": "T", "text": " " }),
            "text",
        ),
        (
            Method::POST,
            "/knowledge/sources",
            json!({ "kind": "url", "url": "ftp://example.com" }),
            "url",
        ),
        (
            Method::POST,
            "/knowledge/sources",
            json!({ "kind": "site", "url": "https://example.com", "sync_every": "hourly" }),
            "sync_every",
        ),
    ];
    for (method, template, body, field) in invalid {
        let path = with_ids(template);
        let body = (!body.is_null())
            .then(|| serde_json::from_str::<Value>(&with_ids(&body.to_string())).expect("json"));
        let problem = expect(
            &app,
            method.clone(),
            &path,
            &globex_key,
            body.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            problem["code"], "validation_failed",
            "{method} {path} {body:?}"
        );
        assert_eq!(
            problem["errors"][0]["field"], field,
            "{method} {path} {body:?}"
        );
    }
}

#[tokio::test]
async fn pagination_stays_stable_while_new_rows_arrive() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let inbox = create_api_inbox(&app, &key).await;
    let first = start(&app, &key, &inbox, json!({ "name": "C0" }), "m0").await;
    let conversation = id_of(&first["conversation"]);
    for i in 1..7 {
        // Some rows share a timestamp, some do not: both orders must hold.
        if i % 2 == 0 {
            app.clock.advance(Duration::seconds(1));
        }
        expect(
            &app,
            Method::POST,
            "/contacts",
            &key,
            Some(json!({ "name": format!("C{i}") })),
            StatusCode::CREATED,
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/knowledge/sources",
            &key,
            Some(json!({ "kind": "text", "title": format!("S{i}"), "text": "x" })),
            StatusCode::CREATED,
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/inboxes",
            &key,
            Some(json!({ "kind": "api", "name": format!("I{i}") })),
            StatusCode::CREATED,
        )
        .await;
        start(
            &app,
            &key,
            &inbox,
            json!({ "name": format!("V{i}") }),
            &format!("v{i}"),
        )
        .await;
        expect(
            &app,
            Method::POST,
            &format!("/conversations/{conversation}/messages"),
            &key,
            Some(json!({ "text": format!("m{i}"), "kind": "note" })),
            StatusCode::CREATED,
        )
        .await;
    }
    for path in [
        "/contacts",
        "/knowledge/sources",
        "/inboxes",
        "/conversations",
        &format!("/conversations/{conversation}/messages"),
    ] {
        let before = walk(&app, &key, path, 100, async || {}).await;
        assert!(before.len() >= 7, "{path}: {before:?}");
        // The last conversation listed, not read until the last page.
        let listed_last = walk(&app, &key, "/conversations", 100, async || {})
            .await
            .pop()
            .expect("a conversation");
        // New rows arrive after every page, and that conversation gets a message.
        let n = std::cell::Cell::new(0);
        let paged = walk(&app, &key, path, 3, async || {
            n.set(n.get() + 1);
            let i = n.get();
            expect(
                &app,
                Method::POST,
                &format!("/conversations/{listed_last}/messages"),
                &key,
                Some(json!({ "text": format!("late{i}"), "kind": "incoming" })),
                StatusCode::CREATED,
            )
            .await;
            expect(
                &app,
                Method::POST,
                "/contacts",
                &key,
                Some(json!({ "name": format!("new{i}") })),
                StatusCode::CREATED,
            )
            .await;
            expect(
                &app,
                Method::POST,
                "/knowledge/sources",
                &key,
                Some(json!({ "kind": "text", "title": format!("new{i}"), "text": "x" })),
                StatusCode::CREATED,
            )
            .await;
            expect(
                &app,
                Method::POST,
                "/inboxes",
                &key,
                Some(json!({ "kind": "api", "name": format!("new{i}") })),
                StatusCode::CREATED,
            )
            .await;
            start(
                &app,
                &key,
                &inbox,
                json!({ "name": format!("new{i}") }),
                "new",
            )
            .await;
            expect(
                &app,
                Method::POST,
                &format!("/conversations/{conversation}/messages"),
                &key,
                Some(json!({ "text": format!("new{i}"), "kind": "incoming" })),
                StatusCode::CREATED,
            )
            .await;
        })
        .await;
        if path.ends_with("/messages") {
            // Oldest first: what arrived meanwhile comes after what was there, once each.
            assert_eq!(paged[..before.len()], before[..], "{path}");
            let mut unique = paged.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), paged.len(), "{path}: no duplicates");
            assert!(
                paged.len() > before.len(),
                "{path}: new messages are reached"
            );
        } else {
            // Newest first: what arrived meanwhile sorts before the pages already read.
            assert_eq!(paged, before, "{path}: no duplicates, no gaps");
        }
    }
}

#[tokio::test]
async fn an_api_inbox_carries_the_customers_messages_and_the_teams_replies() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let inbox = create_api_inbox(&app, &key).await;

    let started = start(
        &app,
        &key,
        &inbox,
        json!({ "external_id": "u-42", "email": "Cy@Example.com", "name": "Cy" }),
        "Where is my order?",
    )
    .await;
    let conversation = id_of(&started["conversation"]);
    assert_eq!(started["contact"]["email"], "cy@example.com");
    assert_eq!(started["contact"]["external_id"], "u-42");
    assert_eq!(started["message"]["sender"], "contact");
    assert_eq!(started["conversation"]["inbox_id"], inbox.as_str());

    // An agent replies in the dashboard.
    let reply = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[("text", "It ships today."), ("kind", "text")],
        )
        .await;
    assert_eq!(reply.status(), StatusCode::SEE_OTHER);
    // The customer answers through the API; the key also writes a note, as the owner.
    expect(
        &app,
        Method::POST,
        &format!("/conversations/{conversation}/messages"),
        &key,
        Some(json!({ "text": "Thanks!", "kind": "incoming" })),
        StatusCode::CREATED,
    )
    .await;
    let note = expect(
        &app,
        Method::POST,
        &format!("/conversations/{conversation}/messages"),
        &key,
        Some(json!({ "text": "VIP", "kind": "note" })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(note["sender"], "agent");
    assert_eq!(note["sender_name"], "Ada");

    let messages = expect(
        &app,
        Method::GET,
        &format!("/conversations/{conversation}/messages"),
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    let said: Vec<(&str, &str, &str)> = messages["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            (
                m["sender"].as_str().unwrap_or(""),
                m["kind"].as_str().unwrap_or(""),
                m["text"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        said,
        vec![
            ("contact", "text", "Where is my order?"),
            ("agent", "text", "It ships today."),
            ("contact", "text", "Thanks!"),
            ("agent", "note", "VIP"),
        ]
    );

    // The dashboard shows the api inbox and its conversation like any other.
    let page = owner
        .get_html(&format!("/inbox?view=all&c={conversation}"))
        .await;
    assert!(page.contains("Where is my order?") && page.contains("Thanks!"));
    let settings = owner.get_html("/settings/inboxes").await;
    assert!(settings.contains("Mobile app"));
    // Its settings page explains the API instead of offering a widget, and renames it.
    let inbox_page = format!("/settings/inboxes/{inbox}");
    let page = owner.get_html(&inbox_page).await;
    assert!(page.contains("Connected through the API"), "{page}");
    assert!(!page.contains("Embed on your website"));
    let renamed = owner
        .submit(&inbox_page, &inbox_page, &[("name", "Mobile app (iOS)")])
        .await;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    assert!(
        owner
            .get_html("/settings/inboxes")
            .await
            .contains("Mobile app (iOS)")
    );

    // Found again by external id (or email): the same contact, a new conversation.
    let again = start(
        &app,
        &key,
        &inbox,
        json!({ "external_id": "u-42" }),
        "Another question",
    )
    .await;
    assert_eq!(again["contact"]["id"], started["contact"]["id"]);
    assert_ne!(again["conversation"]["id"], started["conversation"]["id"]);
    let by_email = start(
        &app,
        &key,
        &inbox,
        json!({ "email": "cy@example.com" }),
        "And one more",
    )
    .await;
    assert_eq!(by_email["contact"]["id"], started["contact"]["id"]);
    let by_id = start(
        &app,
        &key,
        &inbox,
        json!({ "id": started["contact"]["id"] }),
        "Last one",
    )
    .await;
    assert_eq!(by_id["contact"]["id"], started["contact"]["id"]);

    // A resolved conversation reopens when the customer writes.
    expect(
        &app,
        Method::PATCH,
        &format!("/conversations/{conversation}"),
        &key,
        Some(json!({ "status": "resolved" })),
        StatusCode::OK,
    )
    .await;
    expect(
        &app,
        Method::POST,
        &format!("/conversations/{conversation}/messages"),
        &key,
        Some(json!({ "text": "Hello again", "kind": "incoming" })),
        StatusCode::CREATED,
    )
    .await;
    let shown = expect(
        &app,
        Method::GET,
        &format!("/conversations/{conversation}"),
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["status"], "open");

    // The customer's messages are for api inboxes only: a widget conversation refuses them.
    create_inbox(&app, &owner, "shop.example.com").await;
    let web = app
        .state
        .store
        .list_inboxes(owner.org_id().await)
        .await
        .expect("inboxes")
        .into_iter()
        .find(|i| i.kind == kaltalk_core::chat::InboxKind::Web)
        .expect("the web inbox");
    let mut visitor = Visitor::new(&app, &web);
    let said = visitor.say("Hi from the site").await;
    let web_conversation = said["conversation_id"].as_str().expect("id").to_owned();
    let refused = expect(
        &app,
        Method::POST,
        &format!("/conversations/{web_conversation}/messages"),
        &key,
        Some(json!({ "text": "Fake", "kind": "incoming" })),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "kind");
    let refused = expect(
        &app,
        Method::POST,
        &format!("/inboxes/{}/conversations", web.id),
        &key,
        Some(json!({ "contact": { "name": "A" }, "text": "Hi" })),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "inbox");
}

#[tokio::test]
async fn a_conversation_is_updated_and_every_change_is_an_event() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let org = owner.org_id().await;
    let ada = owner.user_id().await;
    let inbox = create_api_inbox(&app, &key).await;
    let started = start(&app, &key, &inbox, json!({ "name": "Cy" }), "Hi").await;
    let conversation = id_of(&started["conversation"]);
    let path = format!("/conversations/{conversation}");
    let events_before = app
        .state
        .store
        .events_since(org, None, 1000)
        .await
        .expect("events")
        .len();

    let until = (app.clock_now() + Duration::hours(5)).to_rfc3339();
    let updated = expect(
        &app,
        Method::PATCH,
        &path,
        &key,
        Some(json!({ "status": "snoozed", "snoozed_until": until, "assignee_id": ada.to_string(), "labels": ["VIP", "billing", "vip"] })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["status"], "snoozed");
    assert!(updated["snoozed_until"].is_string());
    assert_eq!(updated["assignee_id"], ada.to_string());
    assert_eq!(updated["labels"], json!(["billing", "vip"]));
    let events = app
        .state
        .store
        .events_since(org, None, 1000)
        .await
        .expect("events");
    let new: Vec<&str> = events[events_before..]
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        new,
        vec!["conversation.updated"; 3],
        "status, assignee, labels"
    );

    // The full set replaces the labels; null unassigns.
    let updated = expect(
        &app,
        Method::PATCH,
        &path,
        &key,
        Some(json!({ "labels": ["urgent"], "assignee_id": null, "status": "open" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["labels"], json!(["urgent"]));
    assert!(updated["assignee_id"].is_null());
    assert!(updated["snoozed_until"].is_null());
    let shown = expect(&app, Method::GET, &path, &key, None, StatusCode::OK).await;
    assert_eq!(shown, updated);

    // An API reply is sent as the organization's owner and assigns the conversation.
    let reply = expect(
        &app,
        Method::POST,
        &format!("{path}/messages"),
        &key,
        Some(json!({ "text": "On it" })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (reply["sender"].as_str(), reply["kind"].as_str()),
        (Some("agent"), Some("text"))
    );
    let shown = expect(&app, Method::GET, &path, &key, None, StatusCode::OK).await;
    assert_eq!(shown["assignee_id"], ada.to_string());
}

#[tokio::test]
async fn contacts_are_created_searched_updated_merged_and_deleted() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_api_inbox(&app, &key).await;

    let cy = expect(
        &app,
        Method::POST,
        "/contacts",
        &key,
        Some(json!({ "name": "Cy Twombly", "attributes": { "plan": "pro" } })),
        StatusCode::CREATED,
    )
    .await;
    let dup = start(
        &app,
        &key,
        &inbox,
        json!({ "email": "cy@example.com", "external_id": "u-7", "name": "C." }),
        "From the app",
    )
    .await;
    let dup_id = id_of(&dup["contact"]);
    let cy_id = id_of(&cy);
    let in_cy = start(&app, &key, &inbox, json!({ "id": cy_id }), "From the web").await;
    expect(
        &app,
        Method::POST,
        "/contacts",
        &key,
        Some(json!({ "name": "100% Real_Person" })),
        StatusCode::CREATED,
    )
    .await;

    // Search: name or email, case-insensitive, wildcards literal.
    let search = |q: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            let found = expect(
                app,
                Method::GET,
                &format!("/contacts?q={q}"),
                key,
                None,
                StatusCode::OK,
            )
            .await;
            let mut names: Vec<String> = found["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_owned())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(search("twom").await, vec!["Cy Twombly"]);
    assert_eq!(search("EXAMPLE.COM").await, vec!["C."]);
    assert_eq!(search("%25").await, vec!["100% Real_Person"]);
    assert_eq!(search("l_p").await, vec!["100% Real_Person"]);

    // Update: given fields change, null clears, a taken external id is refused.
    let updated = expect(
        &app,
        Method::PATCH,
        &format!("/contacts/{cy_id}"),
        &key,
        Some(json!({ "email": "CY@twombly.art", "name": null })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["email"], "cy@twombly.art");
    assert!(updated["name"].is_null());
    assert_eq!(updated["attributes"], json!({ "plan": "pro" }));
    let taken = expect(
        &app,
        Method::PATCH,
        &format!("/contacts/{cy_id}"),
        &key,
        Some(json!({ "external_id": "u-7" })),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(taken["errors"][0]["field"], "external_id");

    // Merge the app's duplicate into Cy: conversations move, Cy keeps its own fields and
    // takes the duplicate's where it had none, the duplicate is gone.
    let events_before = app
        .state
        .store
        .events_since(org, None, 1000)
        .await
        .expect("events")
        .len();
    let merged = expect(
        &app,
        Method::POST,
        &format!("/contacts/{dup_id}/merge"),
        &key,
        Some(json!({ "into": cy_id })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(merged["id"], cy_id.as_str());
    assert_eq!(
        merged["email"], "cy@twombly.art",
        "the target keeps its email"
    );
    assert_eq!(
        merged["name"], "C.",
        "an empty field is filled from the source"
    );
    assert_eq!(merged["external_id"], "u-7");
    expect(
        &app,
        Method::GET,
        &format!("/contacts/{dup_id}"),
        &key,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    for conversation in [&dup["conversation"], &in_cy["conversation"]] {
        let shown = expect(
            &app,
            Method::GET,
            &format!("/conversations/{}", id_of(conversation)),
            &key,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(shown["contact_id"], cy_id.as_str());
    }
    let messages = expect(
        &app,
        Method::GET,
        &format!("/conversations/{}/messages", id_of(&dup["conversation"])),
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(messages["data"][0]["sender_name"], "C.");
    let events = app
        .state
        .store
        .events_since(org, None, 1000)
        .await
        .expect("events");
    let mut new: Vec<(String, Option<uuid::Uuid>)> = events[events_before..]
        .iter()
        .map(|e| (e.kind.clone(), e.subject_id))
        .collect();
    new.sort();
    let dup_uuid: uuid::Uuid = dup_id.parse().expect("uuid");
    let cy_uuid: uuid::Uuid = cy_id.parse().expect("uuid");
    assert!(
        new.contains(&("contact.deleted".into(), Some(dup_uuid))),
        "{new:?}"
    );
    assert!(
        new.contains(&("contact.updated".into(), Some(cy_uuid))),
        "{new:?}"
    );
    assert_eq!(
        new.iter()
            .filter(|(k, _)| k == "conversation.updated")
            .count(),
        1,
        "the moved conversation"
    );

    // Deleting a contact deletes its conversations.
    expect(
        &app,
        Method::DELETE,
        &format!("/contacts/{cy_id}"),
        &key,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect(
        &app,
        Method::GET,
        &format!("/contacts/{cy_id}"),
        &key,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    for conversation in [&dup["conversation"], &in_cy["conversation"]] {
        expect(
            &app,
            Method::GET,
            &format!("/conversations/{}", id_of(conversation)),
            &key,
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
}

#[tokio::test]
async fn knowledge_sources_are_added_listed_with_state_resynced_and_deleted() {
    let app = crate::helpers::spawn_app_with(|config| config.knowledge.max_file_bytes = 4096).await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let source = expect(
        &app,
        Method::POST,
        "/knowledge/sources",
        &key,
        Some(
            json!({ "kind": "text", "title": "Returns", "text": "Returns are free for 30 days." }),
        ),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(source["state"], "queued");
    let id = id_of(&source);
    app.run_jobs().await;
    let list = expect(
        &app,
        Method::GET,
        "/knowledge/sources",
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["state"], "ready");
    assert!(list["data"][0]["chunks"].as_i64().is_some_and(|c| c >= 1));
    let web = expect(
        &app,
        Method::POST,
        "/knowledge/sources",
        &key,
        Some(json!({ "kind": "site", "url": "https://docs.example.com/", "sync_every": "weekly" })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (
            web["kind"].as_str(),
            web["title"].as_str(),
            web["sync_every"].as_str()
        ),
        (Some("site"), Some("docs.example.com"), Some("weekly"))
    );

    let resynced = expect(
        &app,
        Method::POST,
        &format!("/knowledge/sources/{id}/resync"),
        &key,
        None,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(resynced["state"], "queued");
    expect(
        &app,
        Method::DELETE,
        &format!("/knowledge/sources/{id}"),
        &key,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect(
        &app,
        Method::GET,
        &format!("/knowledge/sources/{id}"),
        &key,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    // A file, as multipart: checked as the dashboard checks it, then indexed.
    let form = reqwest::multipart::Form::new()
        .text("title", "Shipping")
        .part(
            "file",
            file_part(
                b"# Shipping\n\nWe ship within two days.".to_vec(),
                "shipping.md",
            ),
        );
    let added = post_multipart(&app, "/knowledge/sources", &key, form, None).await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let added: Value = added.json().await.expect("json");
    assert_eq!(
        (
            added["kind"].as_str(),
            added["title"].as_str(),
            added["file_name"].as_str()
        ),
        (Some("file"), Some("Shipping"), Some("shipping.md"))
    );
    app.run_jobs().await;
    let shown = expect(
        &app,
        Method::GET,
        &format!("/knowledge/sources/{}", id_of(&added)),
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["state"], "ready");
    for (bytes, name) in [
        (png(), "photo.png"),
        (vec![b'a'; 5000], "big.txt"),
        (b"# Title".to_vec(), "sheet.xlsx"),
    ] {
        let form = reqwest::multipart::Form::new().part("file", file_part(bytes, name));
        let refused = post_multipart(&app, "/knowledge/sources", &key, form, None).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let problem: Value = refused.json().await.expect("json");
        assert_eq!(problem["errors"][0]["field"], "file", "{name}");
    }
    let list = expect(
        &app,
        Method::GET,
        "/knowledge/sources",
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        list["data"].as_array().map(Vec::len),
        Some(2),
        "the web source and the file; nothing refused was kept"
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let app = spawn_app().await;
    let acme = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &acme, "Acme").await;
    let globex = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let globex_key = create_key(&app, &globex, "Globex").await;
    let inbox = create_api_inbox(&app, &key).await;
    let path = format!("/inboxes/{inbox}/conversations");
    let body = json!({ "contact": { "external_id": "u-1" }, "text": "Hello" });

    let first = call_with(
        &app,
        Method::POST,
        &path,
        Some(&key),
        Some(&body),
        Some("k-1"),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let second = call_with(
        &app,
        Method::POST,
        &path,
        Some(&key),
        Some(&body),
        Some("k-1"),
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.headers()["content-type"], "application/json");
    let second: Value = second.json().await.expect("json");
    assert_eq!(second, first);
    let list = expect(
        &app,
        Method::GET,
        "/conversations",
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        list["data"].as_array().expect("data").len(),
        1,
        "one conversation"
    );

    // The same key with another body is refused, and writes nothing.
    let other = json!({ "contact": { "external_id": "u-1" }, "text": "Hello!" });
    let reused = call_with(
        &app,
        Method::POST,
        &path,
        Some(&key),
        Some(&other),
        Some("k-1"),
    )
    .await;
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = reused.json().await.expect("json");
    assert_eq!(problem["code"], "idempotency_key_reused");
    // Another organization's identical key is its own.
    let globex_inboxes = call_with(
        &app,
        Method::POST,
        "/inboxes",
        Some(&globex_key),
        Some(&json!({ "kind": "api", "name": "X" })),
        Some("k-1"),
    )
    .await;
    assert_eq!(globex_inboxes.status(), StatusCode::CREATED);
    assert!(
        globex_inboxes
            .headers()
            .get("idempotent-replayed")
            .is_none()
    );

    // Messages: one message for two sends with one key; a new key is a new message.
    let conversation = id_of(&first["conversation"]);
    let messages_path = format!("/conversations/{conversation}/messages");
    let reply = json!({ "text": "On it" });
    for _ in 0..2 {
        let sent = call_with(
            &app,
            Method::POST,
            &messages_path,
            Some(&key),
            Some(&reply),
            Some("reply-1"),
        )
        .await;
        assert_eq!(sent.status(), StatusCode::CREATED);
    }
    let sent = call_with(
        &app,
        Method::POST,
        &messages_path,
        Some(&key),
        Some(&reply),
        Some("reply-2"),
    )
    .await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let messages = expect(
        &app,
        Method::GET,
        &messages_path,
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    let texts: Vec<&str> = messages["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, vec!["Hello", "On it", "On it"]);

    // A client error is kept too: the retry gets the same 422.
    let bad = json!({ "text": "" });
    for replayed in [false, true] {
        let answer = call_with(
            &app,
            Method::POST,
            &messages_path,
            Some(&key),
            Some(&bad),
            Some("bad-1"),
        )
        .await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            answer.headers().get("idempotent-replayed").is_some(),
            replayed
        );
    }
    // A key needs a valid credential, and is checked itself.
    let anonymous = call_with(
        &app,
        Method::POST,
        &messages_path,
        None,
        Some(&reply),
        Some("reply-1"),
    )
    .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let too_long = "k".repeat(300);
    let refused = call_with(
        &app,
        Method::POST,
        &messages_path,
        Some(&key),
        Some(&reply),
        Some(&too_long),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // After 24 hours the key is free again.
    app.clock.advance(Duration::hours(25));
    let later = call_with(
        &app,
        Method::POST,
        &messages_path,
        Some(&key),
        Some(&reply),
        Some("reply-1"),
    )
    .await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(later.headers().get("idempotent-replayed").is_none());
}

/// The smallest PNG header the type check recognises, and some pixels' worth of bytes.
fn png() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend_from_slice(b"not really pixels");
    bytes
}

async fn post_multipart(
    app: &TestApp,
    path: &str,
    key: &str,
    form: reqwest::multipart::Form,
    idempotency_key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .api()
        .post(app.url(&format!("/api/v1{path}")))
        .bearer_auth(key)
        .multipart(form);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("idempotency-key", idempotency_key);
    }
    request.send().await.expect("request")
}

fn file_part(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned())
}

#[tokio::test]
async fn messages_carry_files_sent_as_multipart() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let inbox = create_api_inbox(&app, &key).await;
    let started = start(&app, &key, &inbox, json!({ "name": "Cy" }), "My screen").await;
    let path = format!(
        "/conversations/{}/messages",
        id_of(&started["conversation"])
    );

    // The customer sends a screenshot without text; the team answers with text and a file.
    let form = reqwest::multipart::Form::new()
        .text("kind", "incoming")
        .part("file", file_part(png(), "../screen shot.png"));
    let sent = post_multipart(&app, &path, &key, form, None).await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let sent: Value = sent.json().await.expect("json");
    assert_eq!(sent["sender"], "contact");
    assert_eq!(sent["attachments"][0]["filename"], "screen shot.png");
    assert_eq!(sent["attachments"][0]["content_type"], "image/png");
    let url = sent["attachments"][0]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let served = app.api().get(app.url(&url)).send().await.expect("file");
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.expect("bytes").to_vec(), png());

    let form = reqwest::multipart::Form::new()
        .text("text", "Here is the fix")
        .part("file", file_part(png(), "fix.png"))
        .part("file", file_part(b"%PDF-1.4 tiny".to_vec(), "steps.pdf"));
    let reply = post_multipart(&app, &path, &key, form, Some("files-1")).await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let reply: Value = reply.json().await.expect("json");
    assert_eq!(reply["sender"], "agent");
    assert_eq!(reply["attachments"].as_array().map(Vec::len), Some(2));
    let listed = expect(&app, Method::GET, &path, &key, None, StatusCode::OK).await;
    assert_eq!(
        listed["data"][2]["attachments"][1]["content_type"],
        "application/pdf"
    );

    // Refused: a file of another type, nothing at all, an unknown kind.
    let cases = [
        (
            reqwest::multipart::Form::new().part(
                "file",
                file_part(b"<svg onload=alert(1)>".to_vec(), "x.svg"),
            ),
            "file",
        ),
        (reqwest::multipart::Form::new().text("kind", "note"), "text"),
        (
            reqwest::multipart::Form::new()
                .text("text", "x")
                .text("kind", "shout"),
            "kind",
        ),
    ];
    for (form, field) in cases {
        let refused = post_multipart(&app, &path, &key, form, None).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}"
        );
        let problem: Value = refused.json().await.expect("json");
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let listed = expect(&app, Method::GET, &path, &key, None, StatusCode::OK).await;
    assert_eq!(
        listed["data"].as_array().map(Vec::len),
        Some(3),
        "nothing refused was written"
    );
}
