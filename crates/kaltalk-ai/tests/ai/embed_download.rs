//! The model download against a fake Hugging Face on loopback: an HTTP error names the
//! file's address and leaves neither the model directory nor the staging one behind.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use kaltalk_ai::embed::{DownloadError, download_minilm};

use crate::embed_helpers::model_dir;

#[tokio::test]
async fn an_http_error_names_the_address_and_leaves_nothing_behind() {
    // Serves config.json, then says the tokenizer is gone (as a private or renamed
    // repository answers).
    let app = Router::new()
        .route(
            "/sentence-transformers/all-MiniLM-L6-v2/resolve/main/config.json",
            get(|| async { "{}" }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir().expect("tmp");
    let dest = data.path().join("models").join("all-MiniLM-L6-v2");
    let err = download_minilm(&base, &dest).await.expect_err("refused");
    // config.json ("{}") fails its hash before the tokenizer is asked for.
    match &err {
        DownloadError::Hash { file, .. } => assert_eq!(file, "config.json"),
        other => panic!("expected a hash mismatch, got {other}"),
    }

    // With the right config.json, the 404 on the tokenizer is the error.
    let config = std::fs::read(model_dir().join("config.json")).expect("config.json");
    let app = Router::new()
        .route(
            "/sentence-transformers/all-MiniLM-L6-v2/resolve/main/config.json",
            get(move || async move { config }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let err = download_minilm(&base, &dest).await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "{base}/sentence-transformers/all-MiniLM-L6-v2/resolve/main/tokenizer.json answered HTTP 404"
        )
    );
    let left: Vec<_> = std::fs::read_dir(data.path().join("models"))
        .expect("models dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
