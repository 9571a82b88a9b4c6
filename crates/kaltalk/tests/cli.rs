//! The `kaltalk` binary as an operator uses it: `config example`, `migrate`,
//! `admin create-user`, `admin create-api-key`, then `serve` and a request with the key.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kaltalk");

/// A command with a clean KALTALK_* environment and its own data dir.
fn kaltalk(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("KALTALK_") {
            command.env_remove(key);
        }
    }
    command
        .env("KALTALK_DATA_DIR", data_dir)
        .env("KALTALK_LOG_LEVEL", "warn")
        // `serve` on a fresh data dir would fetch the embedding model from Hugging
        // Face, which these tests cannot reach.
        .env("KALTALK_EMBEDDINGS__DOWNLOAD", "false")
        // Tests run side by side: the SMTP listener takes any free port.
        .env("KALTALK_SMTP_LISTEN", "127.0.0.1:0");
    command
}

fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn value_of(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in output:\n{text}"))
        .to_owned()
}

#[test]
fn config_example_prints_a_documented_file_with_the_defaults() {
    let dir = tempfile::tempdir().expect("tmp");
    let output = kaltalk(dir.path())
        .args(["config", "example"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("listen = \"127.0.0.1:3000\""), "{text}");
    assert!(text.contains("data_dir = \"./data\""));
    assert!(text.contains("KALTALK_DATABASE_URL"));
}

#[test]
fn unknown_configuration_keys_are_refused_with_their_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let output = kaltalk(dir.path())
        .env("KALTALK_LISTN", "127.0.0.1:1")
        .arg("migrate")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listn"), "{stderr}");
}

#[test]
fn create_user_refuses_a_short_password_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut command = kaltalk(dir.path());
    command.args([
        "admin",
        "create-user",
        "--email",
        "ada@example.com",
        "--name",
        "Ada",
        "--password-stdin",
        "--org",
        "Acme",
    ]);
    let output = run_with_stdin(command, "short\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 10 characters"));
}

/// A `kaltalk serve` child that is killed when the test ends, pass or fail: a failed
/// assertion unwinds through this drop instead of leaving an orphan server behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for the "listening on URL" log line of a starting server.
fn wait_for_url(child: &mut Child) -> String {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(url);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the server logs its address")
}

#[test]
fn an_operator_creates_a_user_and_a_key_then_calls_the_api() {
    let dir = tempfile::tempdir().expect("tmp");
    let migrated = kaltalk(dir.path())
        .arg("migrate")
        .output()
        .expect("migrate");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(
        dir.path().join("kaltalk.db").exists(),
        "SQLite file in the data dir"
    );

    let mut command = kaltalk(dir.path());
    command.args([
        "admin",
        "create-user",
        "--email",
        "ada@example.com",
        "--name",
        "Ada",
        "--password-stdin",
        "--org",
        "Acme",
    ]);
    let created = run_with_stdin(command, "correct horse battery\n");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let org_id = value_of(&stdout(&created), "org_id");
    value_of(&stdout(&created), "user_id");

    let mut member = kaltalk(dir.path());
    member.args([
        "admin",
        "create-user",
        "--email",
        "bob@example.com",
        "--name",
        "Bob",
        "--password-stdin",
        "--org-id",
        &org_id,
        "--role",
        "admin",
    ]);
    let joined = run_with_stdin(member, "another long password");
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    assert_eq!(value_of(&stdout(&joined), "org_id"), org_id);

    let inbox_output = kaltalk(dir.path())
        .args([
            "admin",
            "create-inbox",
            "--org-id",
            &org_id,
            "--kind",
            "web",
            "--name",
            "Website",
            "--domain",
            "shop.example.com",
        ])
        .output()
        .expect("inbox");
    assert!(
        inbox_output.status.success(),
        "{}",
        String::from_utf8_lossy(&inbox_output.stderr)
    );
    let inbox_text = stdout(&inbox_output);
    let embed_token = value_of(&inbox_text, "embed_token");
    value_of(&inbox_text, "inbox_id");
    let snippet = value_of(&inbox_text, "snippet");
    assert!(
        snippet.starts_with("<script src=\"http://127.0.0.1:3000/widget.js\""),
        "{snippet}"
    );
    assert!(
        snippet.contains(&format!("data-kaltalk-inbox=\"{embed_token}\"")),
        "{snippet}"
    );

    // An email inbox needs only its address; a second inbox cannot take it.
    let email_inbox = |address: &str| {
        kaltalk(dir.path())
            .args([
                "admin",
                "create-inbox",
                "--org-id",
                &org_id,
                "--kind",
                "email",
                "--address",
                address,
            ])
            .output()
            .expect("email inbox")
    };
    let email_output = email_inbox("Support@Shop.example.com");
    assert!(
        email_output.status.success(),
        "{}",
        String::from_utf8_lossy(&email_output.stderr)
    );
    let email_text = stdout(&email_output);
    value_of(&email_text, "inbox_id");
    assert_eq!(value_of(&email_text, "address"), "support@shop.example.com");
    let taken = email_inbox("support@shop.example.com");
    assert!(!taken.status.success());
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("already receives mail"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );

    let key_output = kaltalk(dir.path())
        .args([
            "admin",
            "create-api-key",
            "--org-id",
            &org_id,
            "--name",
            "ci",
        ])
        .output()
        .expect("key");
    assert!(
        key_output.status.success(),
        "{}",
        String::from_utf8_lossy(&key_output.stderr)
    );
    let key = stdout(&key_output).trim().to_owned();
    assert!(key.starts_with("kt_"), "{key}");

    let mut server = Server(
        kaltalk(dir.path())
            .env("KALTALK_LISTEN", "127.0.0.1:0")
            .env("KALTALK_LOG_LEVEL", "info")
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve"),
    );
    let url = wait_for_url(&mut server.0);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (me, team) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let me: serde_json::Value = client
            .get(format!("{url}/api/v1/me"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("me")
            .json()
            .await
            .expect("json");
        let team: serde_json::Value = client
            .get(format!("{url}/api/v1/team"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("team")
            .json()
            .await
            .expect("json");
        (me, team)
    });
    assert_eq!(me["organization"]["id"], org_id.as_str());
    assert_eq!(me["organization"]["name"], "Acme");
    assert_eq!(team["data"].as_array().map(Vec::len), Some(2));
    let config_status = runtime.block_on(async {
        reqwest::get(format!("{url}/widget/v1/inboxes/{embed_token}/config"))
            .await
            .expect("config")
            .status()
    });
    assert_eq!(
        config_status,
        reqwest::StatusCode::OK,
        "the new inbox's widget answers"
    );

    // SIGTERM: a graceful stop with a zero exit.
    let killed = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = server.0.wait().expect("wait");
    assert!(status.success(), "{status:?}");

    let bad_org = kaltalk(dir.path())
        .args([
            "admin",
            "create-api-key",
            "--org-id",
            "01900000-0000-7000-8000-000000000000",
            "--name",
            "x",
        ])
        .output()
        .expect("run");
    assert!(!bad_org.status.success());
    assert!(String::from_utf8_lossy(&bad_org.stderr).contains("no organization has this id"));
}

#[test]
fn admin_outbox_prints_the_personal_mail_owners_cannot_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut command = kaltalk(dir.path());
    command.args([
        "admin",
        "create-user",
        "--email",
        "ada@example.com",
        "--name",
        "Ada",
        "--password-stdin",
        "--org",
        "Acme",
    ]);
    let created = run_with_stdin(command, "correct horse battery\n");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let outbox = |args: &[&str]| {
        let output = kaltalk(dir.path())
            .args(["admin", "outbox"])
            .args(args)
            .output()
            .expect("outbox");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout(&output)
    };
    assert_eq!(outbox(&[]), "No personal emails.\n");

    let mut server = Server(
        kaltalk(dir.path())
            .env("KALTALK_LISTEN", "127.0.0.1:0")
            .env("KALTALK_LOG_LEVEL", "info")
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve"),
    );
    let url = wait_for_url(&mut server.0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/forgot-password"))
            .header("origin", &url)
            .form(&[("email", "ada@example.com")])
            .send()
            .await
            .expect("forgot")
            .status()
    });
    assert_eq!(status, reqwest::StatusCode::OK);

    let printed = outbox(&["--to", "Ada@Example.com"]);
    assert!(printed.contains("To: ada@example.com"), "{printed}");
    assert!(
        printed.contains("Subject: Reset your KalTalk password"),
        "{printed}"
    );
    assert!(printed.contains("/reset-password?token="), "{printed}");
    assert_eq!(
        outbox(&["--to", "bob@example.com"]),
        "No personal emails.\n"
    );
}

/// The test embedding model: `KALTALK_EMBEDDING_MODEL_DIR`, or where
/// scripts/fetch-model.sh puts it.
fn model_dir() -> std::path::PathBuf {
    match std::env::var_os("KALTALK_EMBEDDING_MODEL_DIR") {
        Some(dir) => dir.into(),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/all-MiniLM-L6-v2"),
    }
}

fn metric(report: &str, name: &str) -> f64 {
    report
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn eval_retrieval_scores_three_modes_and_embeds_the_corpus_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let corpus = dir.path().join("corpus.jsonl");
    std::fs::write(
        &corpus,
        [
            r#"{"id": "d1", "title": "Refunds", "text": "Refunds reach your card within 5 to 7 working days after the parcel arrives."}"#,
            r#"{"id": "d2", "title": "Delivery", "text": "Parcels travel with DHL and arrive in three working days anywhere in Europe."}"#,
            r#"{"id": "d3", "title": "Warranty", "text": "Every device is covered for two years against manufacturing defects."}"#,
            r#"{"id": "d4", "title": "Opening hours", "text": "Our shop in Lyon opens Monday to Saturday from nine to seven."}"#,
        ]
        .join("\n"),
    )
    .expect("corpus");
    let queries = dir.path().join("queries.jsonl");
    std::fs::write(
        &queries,
        [
            r#"{"id": "q1", "text": "how long until a refund reaches my card"}"#,
            r#"{"id": "q2", "text": "DHL delivery Europe"}"#,
            r#"{"id": "q3", "text": "When do I get my money back?"}"#,
        ]
        .join("\n"),
    )
    .expect("queries");
    let qrels = dir.path().join("qrels.tsv");
    std::fs::write(
        &qrels,
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td1\t1\n",
    )
    .expect("qrels");
    let index_dir = dir.path().join("index");
    let eval = |mode: &str, run: &std::path::Path| {
        let output = kaltalk(&dir.path().join("unused"))
            .env("KALTALK_EMBEDDING_MODEL_DIR", model_dir())
            .args(["eval", "retrieval", "--corpus"])
            .arg(&corpus)
            .arg("--queries")
            .arg(&queries)
            .arg("--qrels")
            .arg(&qrels)
            .args(["--mode", mode, "--data-dir"])
            .arg(&index_dir)
            .arg("--run-out")
            .arg(run)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{mode}: {stderr}");
        (stdout(&output), stderr)
    };

    let bm25_run = dir.path().join("bm25.jsonl");
    let (bm25, log) = eval("bm25", &bm25_run);
    assert!(log.contains("indexing 4 documents"), "{log}");
    assert_eq!(metric(&bm25, "queries"), 3.0);
    // q1 and q2 share words with their documents; q3 is a paraphrase BM25 cannot find.
    assert!((metric(&bm25, "MRR@10") - 2.0 / 3.0).abs() < 1e-3, "{bm25}");
    assert!(bm25.contains("latency    p50"), "{bm25}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&bm25_run)
        .expect("run file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["query_id"], "q1");
    assert_eq!(lines[0]["doc_ids"][0], "d1");

    let (hybrid, log) = eval("hybrid", &dir.path().join("hybrid.jsonl"));
    assert!(
        log.contains("reusing the index"),
        "no second ingestion: {log}"
    );
    assert!(!log.contains("indexing 4 documents"), "{log}");
    assert!(
        log.contains("with vectors of local:all-MiniLM-L6-v2"),
        "{log}"
    );
    assert!((metric(&hybrid, "MRR@10") - 1.0).abs() < 1e-9, "{hybrid}");
    assert!((metric(&hybrid, "nDCG@10") - 1.0).abs() < 1e-9, "{hybrid}");

    let (dense, log) = eval("dense", &dir.path().join("dense.jsonl"));
    assert!(log.contains("reusing the index"), "{log}");
    assert!(metric(&dense, "MRR@10") >= 0.8, "{dense}");
}

#[test]
fn eval_retrieval_explains_a_missing_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let output = kaltalk(dir.path())
        .args([
            "eval",
            "retrieval",
            "--corpus",
            "nope.jsonl",
            "--queries",
            "nope.jsonl",
            "--qrels",
            "nope.tsv",
            "--mode",
            "bm25",
        ])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nope.jsonl"), "{stderr}");
}
