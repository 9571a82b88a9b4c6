use std::net::SocketAddr;
use std::sync::Arc;

use kaltalk_core::ManualClock;
use kaltalk_server::config::Secret;
use kaltalk_server::jobs::{self, Ran};
use kaltalk_server::{AppState, Config, Kaltalk};
use kaltalk_store::OutboundEmail;
use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The SMTP listener, unless the test turned it off.
    pub smtp: Option<SocketAddr>,
    pub base: String,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server whose configuration `tweak` may change first.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    // Only loopback is reachable here: a test that wants the model downloaded points
    // `download_url` at a local fake and switches the download back on.
    let mut config = Config::for_tests(dir.path());
    config.jobs.run_in_caller(); // tests run jobs one at a time with `run_jobs`
    if let Ok(admin_url) = std::env::var("KALTALK_TEST_DATABASE_URL") {
        config.database_url = Some(Secret::new(
            kaltalk_store::testing::fresh_postgres_database(&admin_url)
                .await
                .expect("a fresh PostgreSQL database"),
        ));
    }
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let clock = Arc::new(ManualClock::starting_now());
    let server = Kaltalk::new(listener, config, clock.clone())
        .await
        .expect("server starts");
    let addr = server.local_addr();
    let smtp = server.smtp_addr();
    let state = server.state.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    let scheme = if state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    TestApp {
        addr,
        smtp,
        base: format!("{scheme}://{addr}"),
        state,
        clock,
        shutdown: Some(tx),
        server: Some(handle),
        _dir: dir,
    }
}

impl TestApp {
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use kaltalk_core::Clock;
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser-like client with its own cookie jar that does not follow redirects.
    pub fn browser(&self) -> Browser {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .expect("client");
        Browser {
            client,
            base: self.base.clone(),
        }
    }

    /// A browser connecting from another loopback address (all of 127.0.0.0/8 reaches the
    /// server on Linux), for what depends on the client's IP.
    pub fn browser_from(&self, ip: std::net::IpAddr) -> Browser {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .local_address(ip)
            .build()
            .expect("client");
        Browser {
            client,
            base: self.base.clone(),
        }
    }

    /// A client with no cookies, for the API.
    pub fn api(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client")
    }

    /// Signs up a new owner of a new organization.
    pub async fn sign_up(&self, name: &str, email: &str, org: &str) -> Browser {
        let browser = self.browser();
        let response = browser
            .post_form(
                "/signup",
                &[
                    ("name", name),
                    ("email", email),
                    ("password", PASSWORD),
                    ("org_name", org),
                    ("age_confirmed", "yes"),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-up should redirect: {}",
            response.text().await.unwrap_or_default()
        );
        browser
    }

    /// Runs due jobs until none is left; returns what ran.
    pub async fn run_jobs(&self) -> Vec<Ran> {
        let mut ran = Vec::new();
        loop {
            match jobs::run_one(&self.state, "test-worker")
                .await
                .expect("job run")
            {
                Ran::Nothing => return ran,
                other => ran.push(other),
            }
        }
    }

    /// The newest email to `to` in the org's outbox.
    pub async fn last_email_to(&self, org: kaltalk_core::OrgId, to: &str) -> OutboundEmail {
        self.state
            .store
            .list_emails(org, 100)
            .await
            .expect("outbox")
            .into_iter()
            .find(|e| e.to_address == to)
            .unwrap_or_else(|| panic!("no email to {to}"))
    }

    /// The newest personal email (about the person's own account) to `to`: the outbox
    /// only the operator reads.
    pub async fn last_personal_email_to(&self, to: &str) -> OutboundEmail {
        self.state
            .store
            .list_personal_emails(Some(to), 1)
            .await
            .expect("personal outbox")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no personal email to {to}"))
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A browser session: cookie jar, no redirects followed.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.expect("body")
    }

    /// Posts a form as a same-origin page would (with an `Origin` header).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// Posts a dashboard form with the CSRF token read from `page`.
    pub async fn submit(&self, page: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let html = self.get_html(page).await;
        let token = csrf_token(&html);
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    /// `/api/v1/me` as this browser's session.
    pub async fn me(&self) -> serde_json::Value {
        let response = self.get("/api/v1/me").await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn org_id(&self) -> kaltalk_core::OrgId {
        self.me().await["organization"]["id"]
            .as_str()
            .expect("org id")
            .parse()
            .expect("uuid")
    }

    pub async fn user_id(&self) -> kaltalk_core::UserId {
        self.me().await["actor"]["id"]
            .as_str()
            .expect("user id")
            .parse()
            .expect("uuid")
    }
}

pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF token in page:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').expect("end of token") + start;
    html[start..end].to_owned()
}

/// The first link in `text` that contains `path`.
pub fn link_in(text: &str, path: &str) -> String {
    text.split_whitespace()
        .find(|word| word.starts_with("http") && word.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in:\n{text}"))
        .to_owned()
}

/// The path and query of an absolute URL.
pub fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    after_scheme
        .find('/')
        .map(|i| after_scheme[i..].to_owned())
        .unwrap_or_else(|| "/".into())
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
