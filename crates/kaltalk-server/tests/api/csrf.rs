use reqwest::StatusCode;

use crate::helpers::{csrf_token, spawn_app};

#[tokio::test]
async fn a_session_form_without_the_csrf_token_is_refused() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let response = browser
        .post_form("/settings/profile/name", &[("name", "Mallory")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("reload the page")
    );
    let wrong = browser
        .post_form(
            "/settings/profile/name",
            &[("csrf_token", "guess"), ("name", "Mallory")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        browser.me().await["actor"]["name"],
        "Ada",
        "nothing changed"
    );
}

#[tokio::test]
async fn another_origin_is_refused_even_with_the_token() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let token = csrf_token(&browser.get_html("/settings/profile").await);
    let response = browser
        .client
        .post(app.url("/settings/profile/name"))
        .header("origin", "https://evil.example")
        .form(&[("csrf_token", token.as_str()), ("name", "Mallory")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let cross_site = browser
        .client
        .post(app.url("/settings/profile/name"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf_token", token.as_str()), ("name", "Mallory")])
        .send()
        .await
        .expect("post");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    // A cross-site sign-up or login is refused too (login CSRF).
    let login = app
        .api()
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[("email", "ada@example.com"), ("password", "x")])
        .send()
        .await
        .expect("post");
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.me().await["actor"]["name"], "Ada");
}

#[tokio::test]
async fn htmx_requests_may_send_the_token_as_a_header() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let token = csrf_token(&browser.get_html("/settings/profile").await);
    let response = browser
        .client
        .post(app.url("/settings/profile/name"))
        .header("origin", &app.base)
        .header("x-csrf-token", token)
        .header("hx-request", "true")
        .form(&[("name", "Ada King")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.me().await["actor"]["name"], "Ada King");
}

/// The dashboard's routes take the session cookie whatever else a request carries, so an
/// `Authorization` header must not switch the origin check off.
#[tokio::test]
async fn an_authorization_header_does_not_skip_the_origin_check() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let token = csrf_token(&browser.get_html("/settings/profile").await);
    let response = browser
        .client
        .post(app.url("/settings/profile/name"))
        .header("origin", "https://evil.example")
        .header("authorization", "Bearer anything")
        .form(&[("csrf_token", token.as_str()), ("name", "Mallory")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let cross_site = browser
        .client
        .post(app.url("/settings/profile/name"))
        .header("sec-fetch-site", "cross-site")
        .header("authorization", "Basic YTpi")
        .form(&[("csrf_token", token.as_str()), ("name", "Mallory")])
        .send()
        .await
        .expect("post");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        browser.me().await["actor"]["name"],
        "Ada",
        "nothing changed"
    );

    // An API client (no browser, so no Origin) is not affected.
    let key = crate::api::create_key(&app, &browser, "CRM sync").await;
    let created = app
        .api()
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "name": "Grace" }))
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), StatusCode::CREATED);
}

/// Markup that slipped into a page inherits nothing: the token is in a meta tag that the
/// dashboard's own script reads, not in an `hx-headers` attribute on `<body>`.
#[tokio::test]
async fn the_csrf_token_is_in_a_meta_tag_not_an_inherited_attribute() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let html = browser.get_html("/inbox").await;
    let token = csrf_token(&html);
    assert!(
        html.contains(&format!(r#"<meta name="csrf-token" content="{token}">"#)),
        "{html}"
    );
    assert!(!html.contains("hx-headers"), "{html}");
    assert!(
        html.contains(r#""allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true"#),
        "htmx runs no script from markup and calls only our origin"
    );
}
