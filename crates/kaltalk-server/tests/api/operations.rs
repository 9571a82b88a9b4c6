use reqwest::StatusCode;
use tokio::io::AsyncWriteExt as _;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let client = app.api();
    let health = client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    let ready = client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.text().await.expect("body"), "ready");
    let metrics = client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(metrics.contains("kaltalk_http_requests_total"), "{metrics}");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.state.store.close().await;
    let ready = app
        .api()
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/signup", "/login", "/api/v1/me", "/no-such-page"] {
        let response = app.api().get(app.url(path)).send().await.expect("get");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(
            headers["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        assert!(
            !headers.contains_key("strict-transport-security"),
            "no HSTS over plain http"
        );
    }
    let missing = app
        .api()
        .get(app.url("/no-such-page"))
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.expect("body").contains("Not found"));
}

#[tokio::test]
async fn assets_are_served_with_a_content_hash_and_long_cache() {
    let app = spawn_app().await;
    let html = app.browser().get_html("/login").await;
    let start = html.find("/assets/").expect("asset link");
    let end = html[start..].find('"').expect("end") + start;
    let url = &html[start..end];
    assert!(url.ends_with("/app.css"), "{url}");
    let response = app.api().get(app.url(url)).send().await.expect("css");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/css");
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("immutable")
    );
}

#[tokio::test]
async fn graceful_shutdown_returns_cleanly() {
    let app = spawn_app().await;
    assert_eq!(
        app.api()
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    let addr = app.addr;
    app.stop().await.expect("clean stop");
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_err(),
        "no longer listening"
    );
}

fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("cert");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    (cert_path, key_path, cert.cert.pem().into_bytes())
}

#[tokio::test]
async fn tls_serves_https_with_hsts_and_secure_cookies() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cert_path, key_path, pem) = self_signed(dir.path());
    let app = spawn_app_with(|config| {
        config.tls = Some(kaltalk_server::config::TlsConfig {
            cert_path,
            key_path,
        });
    })
    .await;
    assert!(app.base.starts_with("https://"));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .expect("ascii")
            .contains("max-age=")
    );

    let signup = client
        .post(app.url("/signup"))
        .form(&[
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", crate::helpers::PASSWORD),
            ("org_name", "Acme"),
            ("age_confirmed", "yes"),
        ])
        .send()
        .await
        .expect("signup");
    let cookie = signup.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");

    // Plain HTTP to the TLS port gets no page.
    let plain = reqwest::get(format!("http://{}/healthz", app.addr)).await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != StatusCode::OK));
}

#[tokio::test]
async fn an_https_public_url_marks_cookies_secure() {
    let app = spawn_app_with(|config| {
        config.public_url = Some("https://support.example.com".parse().expect("url"))
    })
    .await;
    let response = app
        .api()
        .post(app.url("/signup"))
        .form(&[
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", crate::helpers::PASSWORD),
            ("org_name", "Acme"),
            ("age_confirmed", "yes"),
        ])
        .send()
        .await
        .expect("signup");
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Secure")
    );
    assert_eq!(
        app.state.link("/x"),
        "https://support.example.com/x",
        "emailed links use the public URL"
    );
}

#[tokio::test]
async fn shutdown_ends_within_its_grace_period_with_a_request_still_running() {
    let app = spawn_app_with(|config| config.shutdown_grace_seconds = 1).await;
    // A request that never finishes: its body is announced and never sent, so the handler
    // waits for it as long as the connection stays open.
    let mut stuck = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    stuck
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nemail=",
        )
        .await
        .expect("write the start of a request");
    // The server has the request once it answers another on a second connection after it.
    assert_eq!(
        app.api()
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );

    // Without a deadline the stop waits for the stuck request forever; this bound is many
    // times the grace period, only so that a regression fails instead of hanging.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), app.stop()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "the server stops after its grace period: {stopped:?}"
    );
    drop(stuck);
}
