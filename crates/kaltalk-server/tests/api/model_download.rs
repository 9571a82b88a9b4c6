//! The local embedding model fetched from Hugging Face on first use, against a fake Hub
//! (a real HTTP server on loopback speaking `/{repo}/resolve/{revision}/{file}`, with
//! the weights behind a 302 to a "CDN" as the real Hub does). Serves the genuine files
//! from the repo's models/all-MiniLM-L6-v2 (scripts/fetch-model.sh).

use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kaltalk_mail::testing::ClosedPort;
use kaltalk_server::jobs::Ran;
use kaltalk_server::knowledge::Embeddings;
use tokio::sync::watch;

use crate::helpers::{TestApp, spawn_app_with};

const MODEL: &str = "local:all-MiniLM-L6-v2";

fn model_dir() -> PathBuf {
    match std::env::var_os("KALTALK_EMBEDDING_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"),
    }
}

#[derive(Clone)]
struct Hub {
    config: Bytes,
    tokenizer: Bytes,
    weights: Bytes,
    /// The weights are held back until this turns true, so a test can act while the
    /// download is under way.
    release: watch::Receiver<bool>,
}

async fn resolve(Path(file): Path<String>, State(hub): State<Hub>) -> Response {
    match file.as_str() {
        "config.json" => hub.config.into_response(),
        "tokenizer.json" => hub.tokenizer.into_response(),
        // Like huggingface.co for LFS files: a redirect to the CDN.
        "model.safetensors" => (
            StatusCode::FOUND,
            [(header::LOCATION, "/cdn/all-MiniLM-L6-v2/model.safetensors")],
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn cdn(State(mut hub): State<Hub>) -> Response {
    let _ = hub.release.wait_for(|released| *released).await;
    hub.weights.into_response()
}

/// Starts the fake Hub; returns its base URL and the switch that releases the weights.
async fn fake_hub(corrupt_weights: bool) -> (String, watch::Sender<bool>) {
    let dir = model_dir();
    let read = |name: &str| {
        Bytes::from(std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            panic!("{name} in {} (scripts/fetch-model.sh): {e}", dir.display())
        }))
    };
    let mut weights = read("model.safetensors").to_vec();
    if corrupt_weights {
        let middle = weights.len() / 2;
        weights[middle] ^= 0x01;
    }
    let (release, released) = watch::channel(false);
    let hub = Hub {
        config: read("config.json"),
        tokenizer: read("tokenizer.json"),
        weights: Bytes::from(weights),
        release: released,
    };
    let app = Router::new()
        .route(
            "/sentence-transformers/all-MiniLM-L6-v2/resolve/main/{file}",
            get(resolve),
        )
        .route("/cdn/all-MiniLM-L6-v2/model.safetensors", get(cdn))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), release)
}

async fn spawn_downloading(hub: &str) -> TestApp {
    let hub = hub.to_owned();
    spawn_app_with(|config| {
        config.embeddings.download = true;
        config.embeddings.download_url = hub;
    })
    .await
}

/// Polls until the server's embeddings leave `Downloading` (the download runs in the
/// background), failing after a generous timeout.
async fn settled(app: &TestApp) -> std::sync::Arc<Embeddings> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let embeddings = app.state.knowledge.embeddings();
        if !matches!(*embeddings, Embeddings::Downloading(_)) {
            return embeddings;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the model download did not finish within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn model_download_in_the_background_then_the_knowledge_base_is_re_embedded() {
    let (hub, release) = fake_hub(false).await;
    let app = spawn_downloading(&hub).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;

    // The server answers while the weights are still held back.
    let html = owner.get_html("/settings/knowledge").await;
    assert!(
        html.contains("keyword-only for now") && html.contains("is downloading from"),
        "{html}"
    );
    let response = owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge",
            &[
                ("title", "Returns"),
                (
                    "body",
                    "# Refunds\n\nRefunds reach your card within 5 to 7 working days.",
                ),
            ],
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let chunks = app.state.store.org_chunks(org).await.expect("chunks");
    assert!(
        chunks.iter().all(|c| c.embedding.is_none()),
        "indexed keyword-only while downloading"
    );
    assert!(app.state.knowledge.embedder().is_none());

    release.send(true).expect("release the weights");
    let embeddings = settled(&app).await;
    let embedder = embeddings
        .embedder()
        .expect("the downloaded model is in use");
    assert_eq!(embedder.model_id(), MODEL);
    let installed = app.state.config.data_dir.join("models/all-MiniLM-L6-v2");
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(installed.join(file).is_file(), "{file} installed");
    }

    // The download task switches to the new model, then queues the re-embedding: wait
    // for the job (on a loaded machine it can trail the switch by a moment).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !app
        .state
        .store
        .list_jobs(kaltalk_store::JobState::Queued, 100)
        .await
        .expect("jobs")
        .iter()
        .any(|job| job.kind == "knowledge.reembed")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no re-embedding was queued after the download"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.reembed".into())]
    );
    let chunks = app.state.store.org_chunks(org).await.expect("chunks");
    assert!(!chunks.is_empty());
    for chunk in &chunks {
        assert!(chunk.embedding.is_some(), "re-embedded");
        assert_eq!(chunk.embedding_model.as_deref(), Some(MODEL));
    }
    let index = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");
    assert_eq!(index.model(), Some(MODEL));
    let html = owner.get_html("/settings/knowledge").await;
    assert!(
        html.contains("embeddings by local:all-MiniLM-L6-v2"),
        "{html}"
    );
}

#[tokio::test]
async fn model_download_with_a_wrong_hash_is_refused_and_retrieval_stays_keyword_only() {
    let (hub, release) = fake_hub(true).await;
    release.send(true).expect("release the weights");
    let app = spawn_downloading(&hub).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;

    let embeddings = settled(&app).await;
    assert!(
        matches!(*embeddings, Embeddings::DownloadFailed { .. }),
        "refused: {}",
        embeddings.describe()
    );
    assert!(app.state.knowledge.embedder().is_none());
    let html = owner.get_html("/settings/knowledge").await;
    let detail = folded_detail(&html);
    assert!(
        detail.contains("model.safetensors")
            && detail.contains("is not the published all-MiniLM-L6-v2"),
        "the folded detail gives the reason: {html}"
    );
    // Nothing half-downloaded is left where the server would look for the model.
    let models = app.state.config.data_dir.join("models");
    let left: Vec<_> = std::fs::read_dir(&models)
        .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", models.display());
}

#[tokio::test]
async fn model_download_while_offline_leaves_the_server_keyword_only_saying_why() {
    // A port that refuses connections, as on a machine without internet access.
    let closed = ClosedPort::new();
    let app = spawn_downloading(&format!("http://{}", closed.addr())).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;

    let embeddings = settled(&app).await;
    assert!(matches!(*embeddings, Embeddings::DownloadFailed { .. }));
    let html = owner.get_html("/settings/knowledge").await;
    let detail = folded_detail(&html);
    assert!(
        detail.contains("Downloading the embedding model")
            && detail.contains("could not download")
            && detail.contains("config.json"),
        "the folded detail gives the reason: {html}"
    );
    assert!(
        detail.contains("KALTALK_EMBEDDING_MODEL_DIR"),
        "and how to fix it: {html}"
    );
    assert!(
        !app.state
            .config
            .data_dir
            .join("models/all-MiniLM-L6-v2")
            .exists(),
        "no model directory without a model"
    );
}

/// The knowledge page after a failed download says it plainly, once, and keeps the
/// network error inside a folded `<details>` (it once dumped the raw error on the page).
/// Returns the folded text.
fn folded_detail(html: &str) -> String {
    assert!(
        html.contains("The search model could not be downloaded, so knowledge search uses keywords only until it is")
            && html.contains("tries the download again the next time the server starts"),
        "a plain sentence says what happened and what happens next: {html}"
    );
    let start = html
        .find("<details class=\"hint spaced\" id=\"retrieval-detail\">")
        .unwrap_or_else(|| panic!("the detail is folded away: {html}"));
    let end = start + html[start..].find("</details>").expect("closed");
    let (before, rest) = html.split_at(start);
    let after = &rest[end - start..];
    for outside in [before, after] {
        assert!(
            !outside.contains("could not download")
                && !outside.contains("Downloading the embedding model"),
            "the technical error appears only inside <details>: {html}"
        );
    }
    assert_eq!(
        html.matches("Downloading the embedding model").count(),
        1,
        "said once: {html}"
    );
    html[start..end].to_owned()
}
