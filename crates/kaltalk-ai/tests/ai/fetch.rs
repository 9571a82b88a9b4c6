use std::time::Duration;

use kaltalk_ai::fetch::{FetchError, FetchPolicy};

use crate::helpers::{TestSite, fetcher, loopback_fetcher, raw_server};

#[tokio::test]
async fn a_loopback_address_is_refused_unless_allowed() {
    let site = TestSite::spawn().await;
    let strict = fetcher(FetchPolicy::default());

    let error = strict
        .fetch(&site.url("/about.html"))
        .await
        .expect_err("loopback is refused by default");

    assert!(matches!(error, FetchError::Refused(_)));
    assert_eq!(
        error.to_string(),
        "refused: 127.0.0.1 is a loopback address"
    );
    assert!(site.hits().await.is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_after_dns() {
    let site = TestSite::spawn().await;
    let port = site.base.port().expect("a port");
    let by_name = url::Url::parse(&format!("http://localhost:{port}/about.html")).expect("url");

    let error = fetcher(FetchPolicy::default())
        .fetch(&by_name)
        .await
        .expect_err("localhost is loopback");
    let message = error.to_string();
    // Says it is refused, not what the name resolved to (an admin must not map the
    // internal network through our errors).
    assert_eq!(
        message, "refused: localhost does not resolve to a public internet address",
        "{message}"
    );
    assert!(!message.contains("127.0.0.1"), "{message}");
    assert!(site.hits().await.is_empty());

    let fetched = loopback_fetcher()
        .fetch(&by_name)
        .await
        .expect("allowed when loopback is");
    assert_eq!(fetched.status, 200);
}

#[tokio::test]
async fn a_fetch_reports_where_it_ended_and_what_it_got() {
    let site = TestSite::spawn().await;

    let fetched = loopback_fetcher()
        .fetch(&site.url("/old-faq"))
        .await
        .expect("fetched");

    assert_eq!(fetched.final_url, site.url("/faq.html"));
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(fetched.mime().as_deref(), Some("text/html"));
    assert!(fetched.is_html());
    let body = String::from_utf8(fetched.body).expect("utf-8");
    assert!(body.contains("<title>FAQ</title>"));
}

#[tokio::test]
async fn a_redirect_to_a_forbidden_address_is_refused() {
    let site = TestSite::spawn().await;

    let error = loopback_fetcher()
        .fetch(&site.url("/metadata"))
        .await
        .expect_err("link-local is refused even with loopback allowed");

    assert_eq!(
        error.to_string(),
        "refused: redirect to http://169.254.169.254/latest/meta-data/ \
         (169.254.169.254 is a link-local address)"
    );
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_refused() {
    let site = TestSite::spawn().await;

    let error = loopback_fetcher()
        .fetch(&site.url("/to-file"))
        .await
        .expect_err("file: is not fetched");

    assert_eq!(
        error.to_string(),
        "refused: redirect to file:///etc/passwd (file: only http and https are fetched)"
    );
}

#[tokio::test]
async fn redirects_stop_after_five_hops() {
    let site = TestSite::spawn().await;
    let fetcher = loopback_fetcher();

    let error = fetcher
        .fetch(&site.url("/hop/0"))
        .await
        .expect_err("an endless chain");

    assert!(matches!(error, FetchError::TooManyRedirects), "{error}");
    assert_eq!(error.to_string(), "more than 5 redirects");
    let hops = site.hits().await;
    assert_eq!(hops.len(), 6, "the first request and five hops: {hops:?}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_cut_with_an_error() {
    let site = TestSite::spawn().await;
    let fetcher = fetcher(FetchPolicy {
        allow_loopback: true,
        max_bytes: 1024 * 1024,
        ..FetchPolicy::default()
    });

    // Announced by Content-Length: refused before reading.
    let error = fetcher
        .fetch(&site.url("/big"))
        .await
        .expect_err("2 MB is over 1 MB");

    assert!(matches!(error, FetchError::TooLarge { .. }));
    assert_eq!(error.to_string(), "larger than 1 MB");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_while_streaming() {
    let chunk = format!("258\r\n{}\r\n", "y".repeat(600));
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}{chunk}0\r\n\r\n"
    );
    let url = raw_server(reply.into_bytes(), Duration::from_secs(5)).await;
    let fetcher = fetcher(FetchPolicy {
        allow_loopback: true,
        max_bytes: 1000,
        ..FetchPolicy::default()
    });

    let error = fetcher
        .fetch(&url)
        .await
        .expect_err("1800 bytes is over 1000");

    assert_eq!(error.to_string(), "larger than 1000 bytes");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let url = raw_server(Vec::new(), Duration::from_secs(10)).await;
    let fetcher = fetcher(FetchPolicy {
        allow_loopback: true,
        timeout: Duration::from_millis(300),
        ..FetchPolicy::default()
    });

    let error = fetcher.fetch(&url).await.expect_err("no answer");

    assert!(matches!(error, FetchError::TimedOut(_)));
    assert_eq!(error.to_string(), "timed out after 300 ms");
}
