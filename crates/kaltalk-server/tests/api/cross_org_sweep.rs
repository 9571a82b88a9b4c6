//! The cross-organization sweep, over every route there is: each operation of the API
//! document and each dashboard route that takes an id is called by Acme with Globex's
//! ids, and must answer exactly as it does for an id that exists nowhere (so nothing
//! tells Acme the resource exists), never succeed, and change nothing at Globex. Routes
//! are found, not listed: the API from `/api/v1/openapi.json`, the dashboard from the
//! `.route("…")` calls in the dashboard's and the inbox's source, so a new route cannot
//! skip the sweep; one whose id the sweep cannot fill fails it, naming the route.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::create_key;
use crate::helpers::{Browser, TestApp, spawn_app};
use crate::teams::{invite, join};

/// Routes with an id that is not an organization's resource: nothing to sweep.
const NOT_ORGANIZATION_SCOPED: &[(&str, &str)] = &[(
    "/invitations/{token}",
    "an emailed invitation's secret token, not an id",
)];

/// One id per kind of resource, named by the path segment before it (`/contacts/{id}`).
struct Ids(BTreeMap<&'static str, String>);

impl Ids {
    /// `template` with each `{param}` replaced by the id of the segment before it, or
    /// by `nowhere` when that is given; panics naming the route when a segment is unknown.
    fn fill(&self, template: &str, nowhere: Option<&str>) -> String {
        let mut filled = Vec::new();
        let mut previous = "";
        for segment in template.split('/') {
            if segment.starts_with('{') && segment.ends_with('}') {
                let id = self.0.get(previous).unwrap_or_else(|| {
                    panic!(
                        "the cross-organization sweep cannot fill {segment} of {template}: \
                         give it a Globex {previous} in cross_org_sweep.rs"
                    )
                });
                filled.push(nowhere.unwrap_or(id).to_owned());
            } else {
                filled.push(segment.to_owned());
            }
            previous = segment;
        }
        filled.join("/")
    }
}

/// What an answer says, for comparing two answers: the status and the problem's code.
async fn outcome(response: reqwest::Response) -> (StatusCode, Option<String>) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let code = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| body["code"].as_str().map(str::to_owned));
    (status, code)
}

async fn api(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app
        .api()
        .request(method, app.url(&format!("/api/v1{path}")))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

async fn created(app: &TestApp, path: &str, key: &str, body: Value) -> Value {
    let response = api(app, Method::POST, path, key, Some(&body)).await;
    let status = response.status();
    let text = response.text().await.expect("body");
    assert!(status.is_success(), "POST {path}: {status} {text}");
    serde_json::from_str(&text).expect("json")
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// Globex with one of everything, and Acme's owner and key.
async fn two_organizations(app: &TestApp) -> (Browser, String, Ids, String) {
    let acme = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let globex = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let globex_org = globex.org_id().await;
    let acme_key = create_key(app, &acme, "Acme").await;
    let key = create_key(app, &globex, "Globex").await;
    let agent = join(app, &globex, "agent@globex.test", "agent").await;
    invite(app, &globex, "pending@globex.test", "agent").await;
    let store = &app.state.store;
    let invitation = store
        .pending_invitations(globex_org)
        .await
        .expect("invitations")[0]
        .id;
    let api_key = store.list_api_keys(globex_org).await.expect("keys")[0].id;
    let email = store.list_emails(globex_org, 1).await.expect("emails")[0].id;
    store
        .create_canned_response(globex_org, "thanks", "Thank you!", app.clock_now())
        .await
        .expect("canned");
    let canned = store
        .list_canned_responses(globex_org)
        .await
        .expect("canned")[0]
        .id;

    let inbox = id(&created(
        app,
        "/inboxes",
        &key,
        json!({ "kind": "api", "name": "App" }),
    )
    .await);
    let started = created(
        app,
        &format!("/inboxes/{inbox}/conversations"),
        &key,
        json!({ "contact": { "email": "c@globex-customer.test" }, "text": "Hi" }),
    )
    .await;
    let conversation = id(&started["conversation"]);
    let contact = id(&started["contact"]);
    let with_file = reqwest::multipart::Form::new().text("text", "A file").part(
        "file",
        reqwest::multipart::Part::bytes(b"%PDF-1.4 tiny".to_vec()).file_name("steps.pdf"),
    );
    let message: Value = app
        .api()
        .post(app.url(&format!("/api/v1/conversations/{conversation}/messages")))
        .bearer_auth(&key)
        .multipart(with_file)
        .send()
        .await
        .expect("message")
        .json()
        .await
        .expect("json");
    let attachment = message["attachments"][0]["id"]
        .as_str()
        .expect("an attachment")
        .to_owned();
    let source = id(&created(
        app,
        "/knowledge/sources",
        &key,
        json!({ "kind": "text", "title": "Returns", "text": "30 days." }),
    )
    .await);
    let webhook = id(&created(
        app,
        "/webhooks",
        &key,
        json!({ "url": "https://hooks.globex.test/kaltalk" }),
    )
    .await);
    created(app, &format!("/webhooks/{webhook}/ping"), &key, json!({})).await;
    let deliveries: Value = api(
        app,
        Method::GET,
        &format!("/webhooks/{webhook}/deliveries"),
        &key,
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    let delivery = id(&deliveries["data"][0]);

    let contact_id: kaltalk_core::ContactId = contact.parse().expect("a contact id");
    let note = store
        .add_contact_note(
            globex_org,
            contact_id,
            agent.user_id().await,
            "VIP",
            app.clock_now(),
        )
        .await
        .expect("a note")
        .id;
    let definition = store
        .create_attribute_definition(
            globex_org,
            &kaltalk_store::contacts::NewAttributeDefinition::parse("plan", "Plan", "text", "")
                .expect("a definition"),
            app.clock_now(),
        )
        .await
        .expect("a definition")
        .id;
    let team = store
        .create_team(globex_org, "Billing", app.clock_now())
        .await
        .expect("a team")
        .value
        .id;
    // Globex's agent is told of its conversation (the owner answered it, so took it).
    kaltalk_server::notifications::notify_pending(&app.state)
        .await
        .expect("notify");
    let notification = store
        .list_notifications(globex_org, agent.user_id().await, 10)
        .await
        .expect("notifications")
        .first()
        .expect("a notification for Globex's agent")
        .notification
        .id;
    // Globex's agent gets pushes in a browser and in the app on her phone.
    let agent_id = agent.user_id().await;
    let subscription = store
        .save_push_subscription(
            globex_org,
            agent_id,
            "https://push.example.com/send/globex-agent",
            "BGlobexAgentsBrowserKey",
            "GlobexAuthSecret",
            app.clock_now(),
        )
        .await
        .expect("a push subscription")
        .id;
    let app_session = store
        .create_app_session(
            &kaltalk_store::NewSession {
                token_hash: kaltalk_core::token::hash("kt_app_globex-agents-phone"),
                user_id: agent_id,
                org_id: globex_org,
                csrf_token: "unused".into(),
                expires_at: app.clock_now() + chrono::Duration::days(30),
            },
            app.clock_now(),
        )
        .await
        .expect("an app session");
    let ids = Ids(BTreeMap::from([
        ("api-keys", api_key.to_string()),
        ("apps", app_session.to_string()),
        ("push-subscriptions", subscription.to_string()),
        ("contact-attributes", definition.to_string()),
        ("notes", note.to_string()),
        ("notifications", notification.to_string()),
        ("attachments", attachment),
        ("canned-responses", canned.to_string()),
        ("contacts", contact),
        ("conversations", conversation),
        ("deliveries", delivery),
        ("inboxes", inbox),
        ("invitations", invitation.to_string()),
        ("knowledge", source.clone()),
        ("members", agent.user_id().await.to_string()),
        ("messages", id(&message)),
        ("outbox", email.to_string()),
        ("sources", source),
        ("teams", team.to_string()),
        ("webhooks", webhook),
    ]));
    (acme, acme_key, ids, key)
}

/// A body the operation's schema accepts in shape (its required properties, each the
/// simplest value of its type), so the request reaches the lookup of the id.
fn minimal(schema: &Value, document: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return minimal(&document["components"]["schemas"][name], document);
    }
    for choice in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema[choice].as_array().and_then(|all| all.first()) {
            return minimal(first, document);
        }
    }
    if let Some(first) = schema["enum"].as_array().and_then(|all| all.first()) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .cloned()
            .unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str() {
        Some("object") => {
            let mut object = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().expect("a property name");
                object.insert(
                    name.to_owned(),
                    minimal(&schema["properties"][name], document),
                );
            }
            Value::Object(object)
        }
        Some("array") => json!([]),
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(false),
        Some("string") => match schema["format"].as_str() {
            Some("uuid") => json!(uuid::Uuid::now_v7().to_string()),
            Some("uri") => json!("https://example.com/"),
            Some("email") => json!("someone@example.com"),
            _ => json!("x"),
        },
        _ => json!({}),
    }
}

#[tokio::test]
async fn every_api_operation_answers_another_organizations_ids_as_ids_that_do_not_exist() {
    let app = spawn_app().await;
    let (_, acme_key, ids, globex_key) = two_organizations(&app).await;
    let document: Value = api(&app, Method::GET, "/openapi.json", &acme_key, None)
        .await
        .json()
        .await
        .expect("the API document");
    let nowhere = uuid::Uuid::now_v7().to_string();

    let mut swept = 0;
    for (template, operations) in document["paths"].as_object().expect("paths") {
        if !template.contains('{') {
            continue;
        }
        for (method, operation) in operations.as_object().expect("operations") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue; // `parameters` and the like, not an operation
            };
            let body = operation["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|schema| minimal(&Value::Object(schema.clone()), &document));
            let theirs = outcome(
                api(
                    &app,
                    method.clone(),
                    &ids.fill(template, None),
                    &acme_key,
                    body.as_ref(),
                )
                .await,
            )
            .await;
            let missing = outcome(
                api(
                    &app,
                    method.clone(),
                    &ids.fill(template, Some(&nowhere)),
                    &acme_key,
                    body.as_ref(),
                )
                .await,
            )
            .await;
            assert!(
                !theirs.0.is_success() && theirs.0 != StatusCode::FORBIDDEN,
                "{method} {template} with Globex's ids: {theirs:?}"
            );
            assert_eq!(
                theirs, missing,
                "{method} {template}: Globex's ids answer like ids that exist nowhere"
            );
            swept += 1;
        }
    }
    assert!(
        swept >= 15,
        "the sweep found the document's operations ({swept})"
    );

    // Nothing changed at Globex: its resources are all still there.
    for path in [
        ids.fill("/conversations/{id}", None),
        ids.fill("/contacts/{id}", None),
        ids.fill("/webhooks/{id}", None),
        ids.fill("/sources/{id}", None),
    ] {
        let path = path.replace("/sources/", "/knowledge/sources/");
        let response = api(&app, Method::GET, &path, &globex_key, None).await;
        assert_eq!(response.status(), StatusCode::OK, "Globex still has {path}");
    }
}

/// Every `.route("…")` path with a parameter in the screens' source: the dashboard, the
/// conversations, the contacts and the notifications.
fn dashboard_routes() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut routes = Vec::new();
    for folder in ["dashboard", "conversations", "contacts", "notifications"] {
        let mut files = vec![src.join(folder)];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(
                    std::fs::read_dir(&path)
                        .expect("a source folder")
                        .map(|e| e.expect("entry").path()),
                );
                continue;
            }
            let code = std::fs::read_to_string(&path).expect("a source file");
            for (_, rest) in code
                .match_indices(".route(")
                .map(|(at, _)| ((), &code[at + 7..]))
            {
                let rest = rest.trim_start();
                let Some(literal) = rest.strip_prefix('"') else {
                    panic!(
                        "{}: a route whose path is not a string literal; the sweep reads literals",
                        path.display()
                    );
                };
                let route = &literal[..literal.find('"').expect("a closing quote")];
                if route.contains('{') {
                    routes.push(route.to_owned());
                }
            }
        }
    }
    routes.sort();
    routes.dedup();
    routes
}

#[tokio::test]
async fn every_dashboard_route_answers_another_organizations_ids_as_ids_that_do_not_exist() {
    let app = spawn_app().await;
    let (acme, _, ids, globex_key) = two_organizations(&app).await;
    let nowhere = uuid::Uuid::now_v7().to_string();
    let routes = dashboard_routes();
    assert!(
        routes.len() >= 25,
        "the sweep found the dashboard's routes: {routes:?}"
    );

    for template in &routes {
        if NOT_ORGANIZATION_SCOPED
            .iter()
            .any(|(route, _)| route == template)
        {
            continue;
        }
        let (theirs, missing) = (ids.fill(template, None), ids.fill(template, Some(&nowhere)));
        let get = |path: String| {
            let acme = acme.clone();
            async move { acme.get(&path).await.status() }
        };
        let post = |path: String| {
            let acme = acme.clone();
            async move { acme.submit("/settings/profile", &path, &[]).await.status() }
        };
        for (method, their_status, missing_status) in [
            ("GET", get(theirs.clone()).await, get(missing.clone()).await),
            (
                "POST",
                post(theirs.clone()).await,
                post(missing.clone()).await,
            ),
        ] {
            // 404, 405 (no such method there), or a refusal of the empty form that an
            // id existing nowhere gets too: never a page, a redirect or a "forbidden".
            assert!(
                their_status.is_client_error() && their_status != StatusCode::FORBIDDEN,
                "{method} {template} with Globex's ids: {their_status}"
            );
            assert_eq!(their_status, missing_status, "{method} {template}");
        }
    }

    let conversation = ids.fill("/conversations/{id}", None);
    let response = api(&app, Method::GET, &conversation, &globex_key, None).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "Globex's conversation is untouched"
    );
    // Its agent's browser and app still get her pushes.
    let store = &app.state.store;
    let email = kaltalk_core::EmailAddress::parse("email", "agent@globex.test").expect("email");
    let user = store
        .find_user_by_email(&email)
        .await
        .expect("find")
        .expect("Globex's agent");
    let agent = &store.memberships_of(user.id).await.expect("memberships")[0];
    assert_eq!(
        store
            .list_push_subscriptions(agent.org_id, agent.user_id)
            .await
            .expect("subscriptions")
            .len(),
        1
    );
    assert_eq!(
        store
            .list_app_sessions(agent.user_id, app.clock_now())
            .await
            .expect("apps")
            .len(),
        1
    );
}
