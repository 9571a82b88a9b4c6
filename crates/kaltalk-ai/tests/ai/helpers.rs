use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use kaltalk_ai::fetch::{FetchPolicy, Fetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use url::Url;

/// A fetcher as the tests use it: loopback allowed (the test servers live there),
/// everything else as in production.
pub fn loopback_fetcher() -> Fetcher {
    fetcher(FetchPolicy {
        allow_loopback: true,
        ..FetchPolicy::default()
    })
}

pub fn fetcher(policy: FetchPolicy) -> Fetcher {
    Fetcher::new(policy).expect("the HTTP client builds")
}

/// The small documentation site the crawl tests run against, on 127.0.0.1 port 0.
pub struct TestSite {
    pub base: Url,
    hits: Arc<Mutex<Vec<String>>>,
}

impl TestSite {
    pub async fn spawn() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let port = listener.local_addr().expect("local address").port();
        let base = Url::parse(&format!("http://127.0.0.1:{port}/")).expect("base url");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = SiteState {
            base: base.clone(),
            hits: hits.clone(),
        };
        let app = Router::new().fallback(serve).with_state(state);
        tokio::spawn(async move {
            // The listener is bound already: requests queue until this runs.
            let _ = axum::serve(listener, app).await;
        });
        Self { base, hits }
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("a test path")
    }

    /// Paths requested so far, in order.
    pub async fn hits(&self) -> Vec<String> {
        self.hits.lock().await.clone()
    }
}

#[derive(Clone)]
struct SiteState {
    base: Url,
    hits: Arc<Mutex<Vec<String>>>,
}

fn html(title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

async fn serve(State(site): State<SiteState>, headers: HeaderMap, uri: Uri) -> Response {
    site.hits.lock().await.push(uri.path().to_owned());
    let base = site.base.as_str().trim_end_matches('/');
    // The site's canonical address is 127.0.0.1: send `localhost` there, as sites send
    // http to https or example.com to www.example.com.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| h.starts_with("localhost:")) {
        return Redirect::permanent(&format!("{base}{}", uri.path())).into_response();
    }
    match uri.path() {
        "/robots.txt" => format!(
            "# test site\nUser-agent: *\nDisallow: /private/\n\nSitemap: {base}/sitemap_index.xml\n"
        )
        .into_response(),
        "/sitemap_index.xml" => xml(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{base}/sitemap-pages.xml</loc></sitemap>
</sitemapindex>"#
        )),
        "/sitemap-pages.xml" => xml(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{base}/</loc></url>
  <url><loc>{base}/orphan.html</loc></url>
  <url><loc>{base}/private/listed.html</loc></url>
</urlset>"#
        )),
        "/" => html(
            "Home",
            r##"<a href="#top">top</a>
            <a href="guide/">Guide</a>
            <a href="about.html#team">About</a>
            <a href="/private/secret.html">Secret</a>
            <a href="http://other.example/page">Elsewhere</a>
            <a href="missing.html">Broken</a>
            <a href="/metadata">Cloud</a>
            <a href="files/manual.pdf">Manual</a>
            <a href="mailto:help@example.com">Mail</a>"##,
        ),
        "/guide/" => html(
            "Guide",
            r#"<a href="../about.html">About</a> <a href="install.html">Install</a>
            <a href="/">Home</a> <a href="/logo">Logo</a>"#,
        ),
        "/guide/install.html" => html(
            "Install",
            r#"<a href="/guide/">Back</a> <a href="/old-faq">FAQ</a>"#,
        ),
        "/about.html" => html("About us", r#"<a href="/">Home</a>"#),
        "/orphan.html" => html("Only in the sitemap", "<p>nobody links here</p>"),
        "/faq.html" => html("FAQ", r#"<a href="/">Home</a>"#),
        "/old-faq" => Redirect::permanent("/faq.html").into_response(),
        "/private/secret.html" | "/private/listed.html" => html("Secret", "<p>keep out</p>"),
        "/logo" => (
            [(header::CONTENT_TYPE, "image/png")],
            vec![0x89u8, b'P', b'N', b'G'],
        )
            .into_response(),
        "/metadata" => {
            Redirect::temporary("http://169.254.169.254/latest/meta-data/").into_response()
        }
        "/big" => {
            let body = vec![b'x'; 2 * 1024 * 1024];
            ([(header::CONTENT_TYPE, "text/plain")], Body::from(body)).into_response()
        }
        "/to-file" => Redirect::temporary("file:///etc/passwd").into_response(),
        path => match path
            .strip_prefix("/hop/")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(n) => Redirect::temporary(&format!("/hop/{}", n + 1)).into_response(),
            None => (StatusCode::NOT_FOUND, "not found").into_response(),
        },
    }
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// A bare TCP server on 127.0.0.1 port 0 that reads a request and answers with `reply`
/// verbatim, then holds the connection open for `hold`: for what axum won't send
/// (chunked bodies without a length, replies that never come).
pub async fn raw_server(reply: Vec<u8>, hold: Duration) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let port = listener.local_addr().expect("local address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(&reply).await;
                tokio::time::sleep(hold).await;
            });
        }
    });
    Url::parse(&format!("http://127.0.0.1:{port}/")).expect("raw server url")
}
