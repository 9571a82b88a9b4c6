//! The loopback Web Push service (`tests/peers/push_service.py`), started per test in the
//! venv `scripts/push-venv.sh` makes: it plays the browser (its own P-256 key and auth
//! secret per subscription), checks our VAPID JWT and headers, and decrypts our payloads
//! with `http_ece`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};

/// The venv's python, made once per test run (the test command makes it first anyway).
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        // <target>/debug/deps/api-…: the venv lives beside the build.
        let exe = std::env::current_exe().expect("test binary path");
        let target = exe.ancestors().nth(3).expect("target dir").to_owned();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let made = Command::new("bash")
            .arg(root.join("scripts/push-venv.sh"))
            .env("CARGO_TARGET_DIR", &target)
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs scripts/push-venv.sh");
        assert!(
            made.status.success(),
            "scripts/push-venv.sh could not make the push service's venv (it needs PyPI once)"
        );
        PathBuf::from(String::from_utf8(made.stdout).expect("utf-8").trim())
    })
}

pub(crate) struct PushService {
    child: Child,
    /// `http://127.0.0.1:PORT`: the origin every endpoint is on (the JWT's `aud`).
    pub(crate) url: String,
    http: reqwest::Client,
}

impl PushService {
    pub(crate) fn start() -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/push_service.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the push service starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the push service says where it listens");
        let hello: Value = serde_json::from_str(&line).expect("a JSON line");
        Self {
            child,
            url: hello["url"].as_str().expect("url").to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// A new browser subscription, as `PushSubscription.toJSON()` gives it.
    pub(crate) async fn subscription(&self) -> Value {
        self.http
            .post(format!("{}/subscriptions", self.url))
            .send()
            .await
            .expect("subscribe")
            .json()
            .await
            .expect("json")
    }

    /// The answers to the next pushes, in order (`{"status": 429, "retry_after": "120"}`).
    pub(crate) async fn answer_next(&self, answers: Value) {
        let done = self
            .http
            .post(format!("{}/script", self.url))
            .json(&json!({ "answers": answers }))
            .send()
            .await
            .expect("script");
        assert!(done.status().is_success());
    }

    /// Every push received so far, each with its checks' `problems`.
    pub(crate) async fn received(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/received", self.url))
            .send()
            .await
            .expect("received")
            .json()
            .await
            .expect("json")
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
