use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

/// Creates an API key through the dashboard and returns the secret shown once.
pub async fn create_key(app: &TestApp, owner: &crate::helpers::Browser, name: &str) -> String {
    let response = owner
        .submit(
            "/settings/api-keys",
            "/settings/api-keys",
            &[("name", name)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("body");
    let marker = "<p class=\"secret\" id=\"new-key\">";
    let start = html.find(marker).expect("the new key is shown") + marker.len();
    let end = html[start..].find('<').expect("end") + start;
    let key = html[start..end].to_owned();
    assert!(key.starts_with("kt_"), "{key}");
    let _ = app;
    key
}

async fn get(app: &TestApp, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app.api().get(app.url(path));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn an_api_key_identifies_its_organization_until_revoked() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let key = create_key(&app, &owner, "CRM sync").await;

    // Shown once: the list shows only its prefix.
    let list = owner.get_html("/settings/api-keys").await;
    assert!(!list.contains(&key) && list.contains("CRM sync") && list.contains(&key[..9]));

    let me = get(&app, "/api/v1/me", Some(&key)).await;
    assert_eq!(me.status(), StatusCode::OK);
    let body: Value = me.json().await.expect("json");
    assert_eq!(body["actor"]["kind"], "api_key");
    assert_eq!(body["actor"]["name"], "CRM sync");
    assert_eq!(body["organization"]["name"], "Acme");

    let team: Value = get(&app, "/api/v1/team", Some(&key))
        .await
        .json()
        .await
        .expect("json");
    let members = team["data"].as_array().expect("list");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["email"], "ada@example.com");
    assert_eq!(members[0]["role"], "owner");

    let keys = app
        .state
        .store
        .list_api_keys(owner.org_id().await)
        .await
        .expect("keys");
    let revoke = owner
        .submit(
            "/settings/api-keys",
            &format!("/settings/api-keys/{}/revoke", keys[0].id),
            &[],
        )
        .await;
    assert_eq!(revoke.status(), StatusCode::SEE_OTHER);
    let after = get(&app, "/api/v1/me", Some(&key)).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_errors_are_problem_documents_with_stable_codes() {
    let app = spawn_app().await;
    for (key, why) in [
        (None, "missing"),
        (Some("kt_not-a-real-key"), "unknown"),
        (Some(""), "empty"),
    ] {
        let response = get(&app, "/api/v1/me", key).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["code"], "unauthorized");
        assert_eq!(body["status"], 401);
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let malformed = app
        .api()
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .expect("get");
    assert_eq!(
        malformed.status(),
        StatusCode::UNAUTHORIZED,
        "a malformed credential is refused, not ignored"
    );
    let unknown: Value = app
        .api()
        .get(app.url("/api/v1/nope"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(unknown["code"], "not_found");
}

#[tokio::test]
async fn agents_cannot_manage_api_keys() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let agent = crate::teams::join(&app, &owner, "agent@example.com", "agent").await;
    assert_eq!(
        agent.get("/settings/api-keys").await.status(),
        StatusCode::FORBIDDEN
    );
    let html = agent.get_html("/settings/team").await;
    let token = crate::helpers::csrf_token(&html);
    let create = agent
        .post_form(
            "/settings/api-keys",
            &[("csrf_token", &token), ("name", "sneaky")],
        )
        .await;
    assert_eq!(create.status(), StatusCode::FORBIDDEN);
    assert!(
        app.state
            .store
            .list_api_keys(owner.org_id().await)
            .await
            .expect("keys")
            .is_empty()
    );
}
