//! Signed outbound webhooks against a real receiver on 127.0.0.1: deliveries from the
//! event log, retries under one delivery id, signatures checked by Python's `hmac`, a day
//! of failures disabling the endpoint, the SSRF guard, and every API endpoint's errors.

use std::collections::VecDeque;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use chrono::Duration;
use kaltalk_server::webhooks::dispatch_pending;
use kaltalk_store::webhooks::{WebhookDeliveryState, WebhookId};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::api::create_key;
use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{TestApp, spawn_app_with};

/// What the receiver got: the headers and the raw body, byte for byte.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Default)]
struct Script {
    /// Statuses to answer with, in order; 200 once they run out (or `always`).
    answers: VecDeque<u16>,
    always: Option<u16>,
    received: Vec<Received>,
}

/// A webhook receiver on port 0 that answers as scripted and records every request.
pub(crate) struct Receiver {
    pub(crate) url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub(crate) async fn start(answers: &[u16], always: Option<u16>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.iter().copied().collect(),
            always,
            received: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/hook"),
            script,
        }
    }

    pub(crate) async fn received(&self) -> Vec<Received> {
        self.script.lock().await.received.clone()
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    let mut script = script.lock().await;
    script.received.push(Received { headers, body });
    let status = script
        .always
        .or_else(|| script.answers.pop_front())
        .unwrap_or(200);
    AxumStatus::from_u16(status).unwrap_or(AxumStatus::OK)
}

/// Verifies a `KalTalk-Signature` with Python's own `hmac`, independently of our code:
/// true only when the header's v1 is HMAC-SHA256(secret, "<t>.<body>") of these bytes.
fn python_verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    let script = r#"
import hashlib, hmac, sys
secret, header = sys.argv[1], sys.argv[2]
body = sys.stdin.buffer.read()
parts = dict(p.split("=", 1) for p in header.split(","))
expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(expected, parts["v1"]) else 1)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, secret, header])
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("write the body");
    child.wait().expect("python3 exits").success()
}

async fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.api().request(method, app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

async fn create_hook(app: &TestApp, key: &str, url: &str, events: &[&str]) -> Value {
    let response = api(
        app,
        reqwest::Method::POST,
        "/api/v1/webhooks",
        Some(key),
        Some(json!({ "url": url, "events": events })),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED, "create webhook");
    response.json().await.expect("json")
}

fn hook_id(hook: &Value) -> WebhookId {
    hook["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("a webhook id")
}

#[tokio::test]
async fn a_visitor_message_is_delivered_signed_and_a_500_is_retried_under_the_same_id() {
    let app = spawn_app_with(|config| config.webhooks.allow_loopback = true).await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let org = owner.org_id().await;
    let key = create_key(&app, &owner, "Webhooks").await;
    let receiver = Receiver::start(&[500], None).await;
    let hook = create_hook(
        &app,
        &key,
        &receiver.url,
        &["conversation.created", "message.created"],
    )
    .await;
    let secret = hook["secret"]
        .as_str()
        .expect("secret on create")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    let inbox = create_inbox(&app, &owner, "shop.example.com").await;

    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("Where is my order?").await;
    assert_eq!(dispatch_pending(&app.state).await.expect("dispatch"), 2);
    app.run_jobs().await;

    let deliveries = app
        .state
        .store
        .list_webhook_deliveries(org, hook_id(&hook), 10)
        .await
        .expect("deliveries");
    let mut kinds: Vec<&str> = deliveries.iter().map(|d| d.event_kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["conversation.created", "message.created"]);
    let retried = deliveries
        .iter()
        .find(|d| d.state == WebhookDeliveryState::Pending)
        .expect("the delivery that got a 500 waits for its retry");
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.last_status, Some(500));

    // Past the first backoff (30 s) the retry goes out, and gets a 200.
    app.clock.advance(Duration::seconds(31));
    app.run_jobs().await;
    let after = app
        .state
        .store
        .get_webhook_delivery(org, hook_id(&hook), retried.id)
        .await
        .expect("delivery");
    assert_eq!(after.state, WebhookDeliveryState::Delivered);
    assert_eq!(after.attempts, 2);
    let attempts = app
        .state
        .store
        .list_webhook_attempts(org, retried.id)
        .await
        .expect("attempts");
    let statuses: Vec<Option<i32>> = attempts.iter().map(|a| a.response_status).collect();
    assert_eq!(statuses, [Some(500), Some(200)]);
    assert!(
        attempts[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("500"))
    );
    assert!(attempts[1].succeeded && attempts[1].error.is_none());

    // The receiver saw three requests; the retried one twice under one delivery id, with
    // the same body, each time signed (Python agrees) with that attempt's time.
    let received = receiver.received().await;
    assert_eq!(received.len(), 3);
    let same_id: Vec<&Received> = received
        .iter()
        .filter(|r| r.header("kaltalk-delivery") == retried.id.to_string())
        .collect();
    assert_eq!(same_id.len(), 2, "one logical delivery, two attempts");
    assert_eq!(same_id[0].body, same_id[1].body);
    assert_ne!(
        same_id[0].header("kaltalk-signature"),
        same_id[1].header("kaltalk-signature"),
        "each attempt is signed with its own time"
    );
    for request in &received {
        assert_eq!(request.header("content-type"), "application/json");
        assert!(
            request
                .header("user-agent")
                .starts_with("KalTalk-Webhooks/")
        );
        let signature = request.header("kaltalk-signature");
        assert!(
            python_verifies(&secret, &signature, &request.body),
            "signature {signature} should verify"
        );
        // A tampered body or a wrong secret does not verify: the check can fail.
        let mut tampered = request.body.to_vec();
        tampered.push(b' ');
        assert!(!python_verifies(&secret, &signature, &tampered));
        assert!(!python_verifies("whsec_wrong", &signature, &request.body));
        let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
        assert_eq!(body["id"], request.header("kaltalk-delivery"));
        assert_eq!(body["organization_id"], org.to_string());
        assert!(body["created_at"].is_string());
    }
    let message = received
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("json"))
        .find(|b| b["type"] == "message.created")
        .expect("message.created sent");
    assert_eq!(message["data"]["text"], "Where is my order?");
    assert_eq!(message["data"]["sender"], "contact");
}

#[tokio::test]
async fn a_day_of_failures_fails_the_delivery_disables_the_endpoint_and_emails_the_owner() {
    let app = spawn_app_with(|config| config.webhooks.allow_loopback = true).await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let org = owner.org_id().await;
    let key = create_key(&app, &owner, "Webhooks").await;
    let receiver = Receiver::start(&[], Some(503)).await;
    let hook = create_hook(&app, &key, &receiver.url, &["message.created"]).await;
    let inbox = create_inbox(&app, &owner, "shop.example.com").await;
    Visitor::new(&app, &inbox).say("Hello?").await;
    assert_eq!(dispatch_pending(&app.state).await.expect("dispatch"), 1);

    let started = app.clock_now();
    let mut rounds = 0;
    let delivery = loop {
        app.run_jobs().await;
        let delivery = app
            .state
            .store
            .list_webhook_deliveries(org, hook_id(&hook), 10)
            .await
            .expect("deliveries")
            .remove(0);
        if delivery.state != WebhookDeliveryState::Pending {
            break delivery;
        }
        rounds += 1;
        assert!(rounds < 40, "still retrying after {rounds} rounds");
        app.clock.advance(Duration::hours(1));
    };
    assert_eq!(delivery.state, WebhookDeliveryState::Failed);
    let attempts = app
        .state
        .store
        .list_webhook_attempts(org, delivery.id)
        .await
        .expect("attempts");
    assert_eq!(attempts.len() as i32, delivery.attempts);
    assert!(attempts.len() > 10, "retried through the day");
    assert!(attempts.iter().all(|a| a.response_status == Some(503)));
    let (first, last) = (
        attempts[0].attempted_at,
        attempts[attempts.len() - 1].attempted_at,
    );
    assert_eq!(first, started);
    assert_eq!(
        last - first,
        Duration::hours(24),
        "retried for exactly 24 hours"
    );
    assert_eq!(receiver.received().await.len(), attempts.len());

    let endpoint = app
        .state
        .store
        .get_webhook_endpoint(org, hook_id(&hook))
        .await
        .expect("endpoint");
    assert!(!endpoint.enabled);
    assert!(
        endpoint
            .disabled_reason
            .as_deref()
            .is_some_and(|r| r.contains("24 hours"))
    );
    let email = app.last_email_to(org, "ada@example.com").await;
    assert_eq!(email.kind, "webhook_disabled");
    assert!(email.text_body.contains(&receiver.url));
    assert!(
        email
            .text_body
            .contains(&format!("/settings/webhooks/{}", endpoint.id))
    );

    // Disabled, it gets no new deliveries; enabled again, it does.
    Visitor::new(&app, &inbox).say("Anyone?").await;
    assert_eq!(dispatch_pending(&app.state).await.expect("dispatch"), 0);
    let enable = api(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/webhooks/{}", endpoint.id),
        Some(&key),
        Some(json!({ "enabled": true })),
    )
    .await;
    assert_eq!(enable.status(), StatusCode::OK);
    let enabled: Value = enable.json().await.expect("json");
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_reason"], Value::Null);
}

#[tokio::test]
async fn without_allow_loopback_a_loopback_url_is_refused_and_the_attempt_says_why() {
    // The crawler's switch is open: webhooks have their own (`webhooks.allow_loopback`).
    let app = spawn_app_with(|config| config.knowledge.allow_loopback = true).await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let org = owner.org_id().await;
    let key = create_key(&app, &owner, "Webhooks").await;
    let receiver = Receiver::start(&[], None).await;
    let hook = create_hook(&app, &key, &receiver.url, &[]).await;

    let ping = api(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/webhooks/{}/ping", hook["id"].as_str().expect("id")),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(ping.status(), StatusCode::ACCEPTED);
    let ping: Value = ping.json().await.expect("json");
    assert_eq!(ping["type"], "ping");
    app.run_jobs().await;

    let id = ping["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("delivery id");
    let delivery = app
        .state
        .store
        .get_webhook_delivery(org, hook_id(&hook), id)
        .await
        .expect("delivery");
    assert_eq!(delivery.state, WebhookDeliveryState::Failed);
    let attempts = app
        .state
        .store
        .list_webhook_attempts(org, id)
        .await
        .expect("attempts");
    assert_eq!(attempts.len(), 1);
    let error = attempts[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("refused") && error.contains("loopback"),
        "{error}"
    );
    assert_eq!(attempts[0].response_status, None);
    assert!(receiver.received().await.is_empty(), "nothing reached it");
}

#[tokio::test]
async fn every_webhook_endpoint_checks_the_key_the_organization_and_the_input() {
    let app = spawn_app_with(|config| config.webhooks.allow_loopback = true).await;
    let acme = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let globex = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let acme_key = create_key(&app, &acme, "Acme").await;
    let globex_key = create_key(&app, &globex, "Globex").await;
    let receiver = Receiver::start(&[500], None).await;
    let hook = create_hook(&app, &globex_key, &receiver.url, &[]).await;
    let id = hook["id"].as_str().expect("id").to_owned();

    // A delivery to replay: a ping that fails once (500).
    let ping: Value = api(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/webhooks/{id}/ping"),
        Some(&globex_key),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    let delivery_id = ping["id"].as_str().expect("delivery id").to_owned();
    app.run_jobs().await;

    use reqwest::Method as M;
    let endpoints: Vec<(M, String, Option<Value>)> = vec![
        (M::GET, "/api/v1/webhooks/{id}".into(), None),
        (
            M::PATCH,
            "/api/v1/webhooks/{id}".into(),
            Some(json!({ "enabled": false })),
        ),
        (M::DELETE, "/api/v1/webhooks/{id}".into(), None),
        (M::POST, "/api/v1/webhooks/{id}/ping".into(), None),
        (M::GET, "/api/v1/webhooks/{id}/deliveries".into(), None),
        (
            M::GET,
            "/api/v1/webhooks/{id}/deliveries/{delivery}".into(),
            None,
        ),
        (
            M::POST,
            "/api/v1/webhooks/{id}/deliveries/{delivery}/replay".into(),
            None,
        ),
    ];
    for (method, template, body) in &endpoints {
        let path = template
            .replace("{id}", &id)
            .replace("{delivery}", &delivery_id);
        let missing = api(&app, method.clone(), &path, None, body.clone()).await;
        assert_eq!(
            missing.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a key"
        );
        assert_eq!(
            missing.headers()["content-type"],
            "application/problem+json"
        );
        let bad_key = api(
            &app,
            method.clone(),
            &path,
            Some("kt_not_a_key"),
            body.clone(),
        )
        .await;
        assert_eq!(
            bad_key.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} bad key"
        );
        let other_org = api(&app, method.clone(), &path, Some(&acme_key), body.clone()).await;
        assert_eq!(
            other_org.status(),
            StatusCode::NOT_FOUND,
            "{method} {path} as Acme"
        );
        let problem: Value = other_org.json().await.expect("problem");
        assert_eq!(problem["code"], "not_found");
    }
    for (method, path) in [(M::GET, "/api/v1/webhooks"), (M::POST, "/api/v1/webhooks")] {
        let missing = api(&app, method.clone(), path, None, Some(json!({}))).await;
        assert_eq!(
            missing.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    // Acme's list does not show Globex's endpoint; Globex's own does, without the secret.
    let acme_list: Value = api(&app, M::GET, "/api/v1/webhooks", Some(&acme_key), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(acme_list["data"], json!([]));
    let globex_list: Value = api(&app, M::GET, "/api/v1/webhooks", Some(&globex_key), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(globex_list["data"][0]["id"], id);
    assert!(globex_list["data"][0].get("secret").is_none());
    let shown: Value = api(
        &app,
        M::GET,
        &format!("/api/v1/webhooks/{id}"),
        Some(&globex_key),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(shown["secret"], hook["secret"]);

    // Invalid input: 422 naming the field.
    let invalid: Vec<(M, String, Value, &str)> = vec![
        (
            M::POST,
            "/api/v1/webhooks".into(),
            json!({ "events": [] }),
            "url",
        ),
        (
            M::POST,
            "/api/v1/webhooks".into(),
            json!({ "url": "not a url" }),
            "url",
        ),
        (
            M::POST,
            "/api/v1/webhooks".into(),
            json!({ "url": "ftp://example.com/x" }),
            "url",
        ),
        (
            M::POST,
            "/api/v1/webhooks".into(),
            json!({ "url": 42 }),
            "url",
        ),
        (
            M::POST,
            "/api/v1/webhooks".into(),
            json!({ "url": "https://example.com/hook", "events": ["message.deleted"] }),
            "events",
        ),
        (
            M::POST,
            "/api/v1/webhooks".into(),
            json!({ "url": "https://example.com/hook", "events": "message.created" }),
            "events",
        ),
        (
            M::PATCH,
            format!("/api/v1/webhooks/{id}"),
            json!({ "url": "" }),
            "url",
        ),
        (
            M::PATCH,
            format!("/api/v1/webhooks/{id}"),
            json!({ "events": ["nope"] }),
            "events",
        ),
        (
            M::PATCH,
            format!("/api/v1/webhooks/{id}"),
            json!({ "enabled": "yes" }),
            "enabled",
        ),
    ];
    for (method, path, body, field) in invalid {
        let response = api(
            &app,
            method.clone(),
            &path,
            Some(&globex_key),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path} {body}"
        );
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["code"], "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }

    // Replay: a new attempt under the same delivery id.
    let replay = api(
        &app,
        M::POST,
        &format!("/api/v1/webhooks/{id}/deliveries/{delivery_id}/replay"),
        Some(&globex_key),
        None,
    )
    .await;
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    app.run_jobs().await;
    let detail: Value = api(
        &app,
        M::GET,
        &format!("/api/v1/webhooks/{id}/deliveries/{delivery_id}"),
        Some(&globex_key),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(detail["id"], delivery_id);
    assert_eq!(detail["state"], "delivered");
    assert_eq!(detail["attempts"], 2);
    let statuses: Vec<&Value> = detail["attempt_log"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["response_status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(200)]);
    let received = receiver.received().await;
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|r| r.header("kaltalk-delivery") == delivery_id)
    );
    assert_eq!(received[0].body, received[1].body);
    assert_eq!(
        detail["request_body"],
        String::from_utf8_lossy(&received[0].body).as_ref()
    );
    let list: Value = api(
        &app,
        M::GET,
        &format!("/api/v1/webhooks/{id}/deliveries"),
        Some(&globex_key),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));

    // Delete: gone, for good.
    let deleted = api(
        &app,
        M::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        Some(&globex_key),
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = api(
        &app,
        M::GET,
        &format!("/api/v1/webhooks/{id}"),
        Some(&globex_key),
        None,
    )
    .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_dashboard_adds_pings_replays_disables_and_deletes_endpoints_for_admins_only() {
    let app = spawn_app_with(|config| config.webhooks.allow_loopback = true).await;
    let owner = app.sign_up("Ada", "ada@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let agent = crate::teams::join(&app, &owner, "agent@acme.test", "agent").await;
    let receiver = Receiver::start(&[500], None).await;

    // The nav links the page for admins; agents are refused.
    assert!(
        owner
            .get_html("/")
            .await
            .contains("href=\"/settings/webhooks\"")
    );
    assert_eq!(
        agent.get("/settings/webhooks").await.status(),
        StatusCode::FORBIDDEN
    );

    // A bad URL is a 422 naming the field, the form kept.
    let invalid = owner
        .submit(
            "/settings/webhooks",
            "/settings/webhooks",
            &[("url", "not a url"), ("message.created", "yes")],
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = invalid.text().await.expect("html");
    assert!(html.contains("id=\"url-error\""), "{html}");
    assert!(html.contains("name=\"message.created\" value=\"yes\" checked"));

    let added = owner
        .submit(
            "/settings/webhooks",
            "/settings/webhooks",
            &[("url", &receiver.url), ("message.created", "yes")],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let page = crate::helpers::location(&added);
    let endpoint = app
        .state
        .store
        .list_webhook_endpoints(org)
        .await
        .expect("endpoints")
        .remove(0);
    assert_eq!(endpoint.events.0, ["message.created"]);
    assert!(page.starts_with(&format!("/settings/webhooks/{}", endpoint.id)));
    let html = owner.get_html(&page).await;
    assert!(html.contains(&endpoint.secret), "the secret is shown");

    // Test ping: fails once (500), then a replay delivers it under the same id.
    let path = format!("/settings/webhooks/{}", endpoint.id);
    let pinged = owner.submit(&path, &format!("{path}/ping"), &[]).await;
    assert_eq!(pinged.status(), StatusCode::SEE_OTHER);
    app.run_jobs().await;
    let ping = app
        .state
        .store
        .list_webhook_deliveries(org, endpoint.id, 10)
        .await
        .expect("deliveries")
        .remove(0);
    assert_eq!(ping.event_kind, "ping");
    assert_eq!(ping.state, WebhookDeliveryState::Failed);
    let html = owner.get_html(&path).await;
    assert!(html.contains("ping") && html.contains("500"), "{html}");
    let detail_path = format!("{path}/deliveries/{}", ping.id);
    let replayed = owner
        .submit(&detail_path, &format!("{detail_path}/replay"), &[])
        .await;
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    app.run_jobs().await;
    let detail = owner.get_html(&detail_path).await;
    assert!(detail.contains("delivered"), "{detail}");
    assert!(detail.contains(&ping.id.to_string()));
    // The exact body, HTML-escaped.
    let unescaped = detail.replace("&#34;", "\"").replace("&quot;", "\"");
    assert!(unescaped.contains(&ping.body), "{detail}");
    let attempts = app
        .state
        .store
        .list_webhook_attempts(org, ping.id)
        .await
        .expect("attempts");
    assert_eq!(attempts.len(), 2);
    let replayed = app
        .state
        .store
        .get_webhook_delivery(org, endpoint.id, ping.id)
        .await
        .expect("delivery");
    assert_eq!(replayed.state, WebhookDeliveryState::Delivered);

    // Another organization's owner finds none of it.
    let globex = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    assert_eq!(globex.get(&path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        globex.get(&detail_path).await.status(),
        StatusCode::NOT_FOUND
    );
    let csrf_page = "/settings/webhooks";
    for action in ["ping", "disable", "enable", "delete"] {
        let response = globex
            .submit(csrf_page, &format!("{path}/{action}"), &[])
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{action}");
    }
    let replay = globex
        .submit(csrf_page, &format!("{detail_path}/replay"), &[])
        .await;
    assert_eq!(replay.status(), StatusCode::NOT_FOUND);

    // Disable, enable, delete.
    owner.submit(&path, &format!("{path}/disable"), &[]).await;
    let disabled = app
        .state
        .store
        .get_webhook_endpoint(org, endpoint.id)
        .await
        .expect("endpoint");
    assert!(!disabled.enabled);
    assert!(owner.get_html(&path).await.contains("Disabled."));
    owner.submit(&path, &format!("{path}/enable"), &[]).await;
    assert!(
        app.state
            .store
            .get_webhook_endpoint(org, endpoint.id)
            .await
            .expect("endpoint")
            .enabled
    );
    let deleted = owner.submit(&path, &format!("{path}/delete"), &[]).await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(owner.get(&path).await.status(), StatusCode::NOT_FOUND);
}
