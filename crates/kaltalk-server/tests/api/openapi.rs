//! The OpenAPI document against the routes that exist, the reference page, the rate
//! limits per API key, and errors that axum answers by itself in the problem format.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::api::create_key;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn spec(app: &TestApp) -> Value {
    let response = app
        .api()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("GET openapi.json");
    assert_eq!(response.status(), StatusCode::OK, "served without a key");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("json")
}

/// `(method, path)` of every operation in the document.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in METHODS {
            if !item[method].is_null() {
                ops.push((method.to_owned(), path.clone(), item[method].clone()));
            }
        }
    }
    ops
}

/// A concrete URL path for a templated one: every `{param}` becomes a fresh id.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(&rest[..start]);
        out.push_str(&uuid::Uuid::now_v7().to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn is_public(operation: &Value) -> bool {
    operation["security"].as_array().is_some_and(|s| {
        s.iter()
            .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
    })
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_wants_a_key() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    assert_eq!(spec["openapi"], "3.1.0");
    let ops = operations(&spec);
    assert!(
        ops.len() >= 12,
        "the API's operations are documented: {ops:?}"
    );

    for (method, path, operation) in &ops {
        assert!(path.starts_with("/api/v1/"), "{path}");
        let url = app.url(&concrete(path));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let response = app
            .api()
            .request(method.clone(), &url)
            .send()
            .await
            .expect("request");
        if is_public(operation) && operation["requestBody"].is_object() {
            // A public operation that needs a body (the app's sign-in) refuses none, as a
            // problem, and never as a route that is not there.
            let status = response.status();
            assert!(
                status.is_client_error()
                    && status != StatusCode::NOT_FOUND
                    && status != StatusCode::METHOD_NOT_ALLOWED
                    && status != StatusCode::UNAUTHORIZED,
                "{method} {path} is routed and asks for its body: {status}"
            );
            continue;
        }
        let expected = if is_public(operation) {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(
            response.status(),
            expected,
            "{method} {path} is routed (not 404/405) and refuses a missing key"
        );
    }

    // No method beyond the documented ones answers on a documented path.
    let documented: BTreeSet<(String, String)> =
        ops.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p, _)| p).collect();
    for path in paths {
        for method in METHODS {
            if documented.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = app
                .api()
                .request(verb, app.url(&concrete(path)))
                .send()
                .await
                .expect("request");
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is not documented, so it must not be routed"
            );
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
    }
}

/// Routes are added only as `routes!(handler)` of an `OpenApiRouter`, which needs the
/// handler's `#[utoipa::path]`; and each annotated handler is in the served document. So
/// a route cannot exist without its documentation, nor documentation without a route.
#[tokio::test]
async fn api_routes_exist_only_with_their_documentation() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut annotated = 0;
    for entry in std::fs::read_dir(&dir).expect("src/api") {
        let path = entry.expect("entry").path();
        let source = std::fs::read_to_string(&path).expect("source");
        for forbidden in [
            ".route(",
            ".route_service(",
            ".nest_service(",
            "axum::routing",
        ] {
            assert!(
                !source.contains(forbidden),
                "{} uses `{forbidden}`: add API routes with `.routes(routes!(handler))` so \
                 they are documented",
                path.display()
            );
        }
        annotated += source.matches("#[utoipa::path(").count();
    }
    let served = operations(&spec).len();
    // A handler may document several methods only by being listed once per method.
    assert_eq!(
        annotated, served,
        "every #[utoipa::path] handler is routed and documented exactly once"
    );
}

#[tokio::test]
async fn the_document_describes_errors_and_the_bearer_scheme() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let scheme = &spec["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let problem = &spec["components"]["schemas"]["Problem"];
    assert!(problem["properties"]["code"].is_object(), "{problem}");
    let me = &spec["paths"]["/api/v1/me"]["get"];
    // Every operation needs the key unless it says otherwise.
    assert_eq!(spec["security"][0]["bearer"], serde_json::json!([]));
    assert!(me["security"].is_null(), "{me}");
    let unauthorized = &me["responses"]["401"]["content"]["application/problem+json"];
    assert_eq!(
        unauthorized["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(me["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert_eq!(
        spec["paths"]["/api/v1/conversations"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/ConversationPage"
    );
}

#[tokio::test]
async fn the_document_describes_the_resources_idempotency_and_uploads() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let paths = &spec["paths"];
    for (method, path) in [
        ("get", "/api/v1/contacts"),
        ("post", "/api/v1/contacts/{id}/merge"),
        ("patch", "/api/v1/conversations/{id}"),
        ("post", "/api/v1/inboxes/{id}/conversations"),
        ("post", "/api/v1/knowledge/sources/{id}/resync"),
        ("delete", "/api/v1/knowledge/sources/{id}"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }

    // Every authenticated POST, and only those, take an Idempotency-Key, whose refusals
    // are documented (the app's sign-in is public: its answer, a token, is never kept).
    for (method, path, operation) in operations(&spec) {
        let takes_key = operation["parameters"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
        });
        assert_eq!(
            takes_key,
            method == "post" && !is_public(&operation),
            "{method} {path}"
        );
    }
    let code = spec["components"]["schemas"]["Problem"]["properties"]["code"]["description"]
        .as_str()
        .expect("code is described");
    assert!(code.contains("idempotency_key_reused"), "{code}");
    assert!(code.contains("idempotency_key_in_use"), "{code}");

    // Messages and knowledge files are sent as JSON or as multipart with files.
    for path in [
        "/api/v1/conversations/{id}/messages",
        "/api/v1/knowledge/sources",
    ] {
        let content = &paths[path]["post"]["requestBody"]["content"];
        assert!(content["application/json"].is_object(), "{path}: {content}");
        assert!(
            content["multipart/form-data"].is_object(),
            "{path}: {content}"
        );
    }

    // Lists take the shared pagination parameters and answer with `next_cursor`.
    for path in [
        "/api/v1/contacts",
        "/api/v1/inboxes",
        "/api/v1/knowledge/sources",
        "/api/v1/team",
    ] {
        let names: Vec<&str> = paths[path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"limit") && names.contains(&"cursor"),
            "{path}: {names:?}"
        );
    }
    assert!(spec["components"]["schemas"]["ContactPage"]["properties"]["next_cursor"].is_object());
}

#[tokio::test]
async fn the_reference_page_renders_the_document() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let keys = owner.get_html("/settings/api-keys").await;
    assert!(keys.contains("href=\"/settings/api/reference\""));
    let html = owner.get_html("/settings/api/reference").await;
    let spec = spec(&app).await;
    for (method, path, _) in operations(&spec) {
        let heading = format!("<code>{} {}</code>", method.to_uppercase(), path);
        assert!(html.contains(&heading), "{heading} is on the page");
    }
    assert!(html.contains("id=\"schema-ConversationPage\""));
    assert!(html.contains("<code>next_cursor</code>"));
    assert!(
        html.contains("<code>limit</code>"),
        "query parameters are listed"
    );
    assert!(
        !html.contains("<script src=\"http"),
        "no third-party script"
    );

    let anonymous = app.browser().get("/settings/api/reference").await;
    assert_ne!(anonymous.status(), StatusCode::OK, "for signed-in people");
}

#[tokio::test]
async fn the_reference_page_renders_markdown_and_has_a_curl_example_for_every_operation() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let html = owner.get_html("/settings/api/reference").await;
    std::fs::write(
        std::env::temp_dir().join("kaltalk-api-reference.html"),
        &html,
    )
    .ok();
    // The descriptions' Markdown is HTML, not backticks shown as they are.
    assert!(
        html.contains("<code>Authorization: Bearer kt_…</code>"),
        "inline code in the document's description: {html}"
    );
    assert!(!html.contains('`'), "no Markdown backtick left on the page");
    let spec = spec(&app).await;
    let operations = operations(&spec);
    for (method, path, operation) in &operations {
        let method = method.to_uppercase();
        let url: String = path
            .split('/')
            .map(
                |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => format!("${}", name.to_uppercase()),
                    None => part.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        let command = format!("curl -X {method} &#34;{}{url}&#34;", app.state.public_base);
        assert!(html.contains(&command), "{command} is on the page");
        if operation["requestBody"]["content"]["application/json"].is_object() {
            let section = section_of(&html, &method, path);
            assert!(
                section.contains("-d &#39;{") && section.contains("Request body (JSON)"),
                "{method} {path} shows its JSON body: {section}"
            );
        }
    }
    assert_eq!(html.matches("curl -X ").count(), operations.len());
    // Responses have example JSON derived from their schemas.
    let me = section_of(&html, "GET", "/api/v1/me");
    assert!(me.contains("Response <code>200</code> (JSON)"), "{me}");
}

/// The part of the reference page about one operation.
fn section_of<'a>(html: &'a str, method: &str, path: &str) -> &'a str {
    let heading = format!("<h3><code>{method} {path}</code></h3>");
    let start = html.find(&heading).unwrap_or_else(|| panic!("{heading}"));
    let end = start + html[start..].find("</section>").expect("section end");
    &html[start..end]
}

async fn get_me(app: &TestApp, key: &str) -> reqwest::Response {
    app.api()
        .get(app.url("/api/v1/me"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET /me")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers()[name].to_str().expect("ascii").to_owned()
}

#[tokio::test]
async fn each_api_key_has_its_own_rate_limit_with_headers() {
    let app = spawn_app_with(|c| c.api.rate_limit_per_minute = 3).await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let key = create_key(&app, &owner, "CRM").await;
    let other = create_key(&app, &owner, "Shop").await;

    for remaining in ["2", "1", "0"] {
        let response = get_me(&app, &key).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit"), "3");
        assert_eq!(header(&response, "ratelimit-remaining"), remaining);
        let reset: u64 = header(&response, "ratelimit-reset").parse().expect("secs");
        assert!((1..=60).contains(&reset), "{reset}");
    }

    let refused = get_me(&app, &key).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    // One request every 20 s at 3 per minute.
    assert_eq!(header(&refused, "retry-after"), "20");
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["status"], 429);

    // Another key of the same organization has its own allowance.
    let response = get_me(&app, &other).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "ratelimit-remaining"), "2");

    // The signed-in dashboard is not limited by the keys' allowance, nor told about it.
    let session = owner.get("/api/v1/me").await;
    assert_eq!(session.status(), StatusCode::OK);
    assert!(session.headers().get("ratelimit-limit").is_none());

    // After Retry-After, one more request is allowed.
    app.clock.advance(chrono::Duration::seconds(19));
    assert_eq!(
        get_me(&app, &key).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    app.clock.advance(chrono::Duration::seconds(1));
    let again = get_me(&app, &key).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(header(&again, "ratelimit-remaining"), "0");

    // A wrong key is refused as before, not counted against anyone.
    let wrong = get_me(&app, "kt_wrong").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("ratelimit-limit").is_none());
}

#[tokio::test]
async fn errors_axum_answers_itself_are_problem_documents() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let key = create_key(&app, &owner, "CRM").await;

    // Query fields are read as text and judged by the handler (a 422 naming the field),
    // so only a query string serde cannot map at all reaches axum's own rejection.
    let bad_query = app
        .api()
        .get(app.url("/api/v1/conversations?status=open&status=pending"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(bad_query.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_query.headers()["content-type"],
        "application/problem+json"
    );
    assert!(bad_query.headers().get("ratelimit-limit").is_some());
    let body: Value = bad_query.json().await.expect("json");
    assert_eq!(body["code"], "bad_request");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("status")),
        "{body}"
    );

    let wrong_method = app
        .api()
        .put(app.url("/api/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("put");
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.headers().get("allow").is_some());
    let body: Value = wrong_method.json().await.expect("json");
    assert_eq!(body["code"], "method_not_allowed");
}

/// The rate limit counts a request before an `Idempotency-Key` may replay a stored answer,
/// so retrying with a key is no way around a key's allowance.
#[tokio::test]
async fn an_idempotent_replay_counts_against_the_rate_limit() {
    let app = spawn_app_with(|c| c.api.rate_limit_per_minute = 2).await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let key = create_key(&app, &owner, "CRM").await;
    let create = || {
        app.api()
            .post(app.url("/api/v1/contacts"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "contact-1")
            .json(&serde_json::json!({ "name": "Grace" }))
            .send()
    };

    let first = create().await.expect("post");
    assert_eq!(first.status(), StatusCode::CREATED);
    let replayed = create().await.expect("post");
    assert_eq!(replayed.status(), StatusCode::CREATED);
    assert_eq!(header(&replayed, "idempotent-replayed"), "true");
    assert_eq!(header(&replayed, "ratelimit-remaining"), "0");

    let refused = create().await.expect("post");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().get("idempotent-replayed").is_none());
}
