//! The OpenAI-compatible embedder against a fake provider on a real socket.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, extract::State};
use kaltalk_ai::embed::{EmbedError, Embedder, OpenAiEmbeddings};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// What the fake provider does with a request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers as OpenAI does, `data` in reverse order (`index` says where each goes);
    /// each vector is `[input length, input position, 1]`.
    Answer,
    /// 401 with OpenAI's error body.
    BadKey,
    /// 500 with a plain-text body.
    Broken,
    /// Never answers.
    Hang,
}

/// The requests the fake provider got: the `Authorization` header and the JSON body.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

#[derive(Clone)]
struct Fake {
    behaviour: Behaviour,
    requests: Received,
}

struct FakeProvider {
    base_url: String,
    requests: Received,
}

async fn spawn_provider(behaviour: Behaviour) -> FakeProvider {
    let fake = Fake {
        behaviour,
        requests: Arc::default(),
    };
    let requests = Arc::clone(&fake.requests);
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding port 0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeProvider {
        base_url: format!("http://{addr}"),
        requests,
    }
}

async fn embeddings(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    fake.requests.lock().await.push((auth, body.clone()));
    match fake.behaviour {
        Behaviour::Answer => {
            let inputs = body["input"].as_array().cloned().unwrap_or_default();
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .rev()
                .map(|(i, text)| {
                    let len = text.as_str().map_or(-1.0, |t| t.chars().count() as f64);
                    json!({"object": "embedding", "index": i, "embedding": [len, i as f64, 1.0]})
                })
                .collect();
            Json(json!({
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }))
            .into_response()
        }
        Behaviour::BadKey => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {
                "message": "Incorrect API key provided: sk-wrong.",
                "type": "invalid_request_error",
                "param": null,
                "code": "invalid_api_key",
            }})),
        )
            .into_response(),
        Behaviour::Broken => {
            (StatusCode::INTERNAL_SERVER_ERROR, "upstream model crashed").into_response()
        }
        Behaviour::Hang => std::future::pending().await,
    }
}

#[tokio::test]
async fn sends_the_openai_request_and_reads_vectors_by_index() {
    let provider = spawn_provider(Behaviour::Answer).await;
    let client = OpenAiEmbeddings::new(
        &format!("{}/", provider.base_url),
        Some("sk-test".to_owned()),
        "text-embedding-test",
    )
    .expect("client");
    let embedder = Embedder::Remote(client);
    assert_eq!(embedder.dimensions(), 0, "unknown before the first answer");

    let vectors = embedder
        .embed(vec![
            "hello".to_owned(),
            "".to_owned(),
            "bonjour à tous".to_owned(),
        ])
        .await
        .expect("embedding");

    assert_eq!(
        vectors,
        vec![
            vec![5.0, 0.0, 1.0],
            vec![0.0, 1.0, 1.0],
            vec![14.0, 2.0, 1.0]
        ]
    );
    assert_eq!(embedder.dimensions(), 3);
    assert_eq!(
        embedder.model_id(),
        format!("openai:{}#text-embedding-test", provider.base_url)
    );
    let requests = provider.requests.lock().await;
    assert_eq!(requests.len(), 1);
    let (auth, body) = &requests[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
    assert_eq!(
        body,
        &json!({"model": "text-embedding-test", "input": ["hello", "", "bonjour à tous"]})
    );
}

#[tokio::test]
async fn many_texts_go_in_several_requests_in_order() {
    let provider = spawn_provider(Behaviour::Answer).await;
    // A base URL ending in /v1, as OpenAI SDKs write it, works too; no key, no header.
    let client =
        OpenAiEmbeddings::new(&format!("{}/v1", provider.base_url), None, "m").expect("client");
    let texts: Vec<String> = (0..150).map(|i| "x".repeat(i)).collect();

    let vectors = client.embed(texts).await.expect("embedding");

    let lengths: Vec<f32> = vectors.iter().map(|v| v[0]).collect();
    assert_eq!(lengths, (0..150).map(|i| i as f32).collect::<Vec<_>>());
    let requests = provider.requests.lock().await;
    let sizes: Vec<usize> = requests
        .iter()
        .map(|(_, body)| body["input"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![64, 64, 22]);
    assert!(requests.iter().all(|(auth, _)| auth.is_none()));
}

#[tokio::test]
async fn a_401_carries_the_status_and_the_providers_message() {
    let provider = spawn_provider(Behaviour::BadKey).await;
    let client = OpenAiEmbeddings::new(&provider.base_url, Some("sk-wrong".to_owned()), "m")
        .expect("client");

    let err = client.embed(vec!["hi".to_owned()]).await.expect_err("401");

    match &err {
        EmbedError::Status {
            status, message, ..
        } => {
            assert_eq!(*status, 401);
            assert_eq!(message, "Incorrect API key provided: sk-wrong.");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert!(err.to_string().contains("HTTP 401"), "{err}");
}

#[tokio::test]
async fn a_500_with_a_plain_body_quotes_it() {
    let provider = spawn_provider(Behaviour::Broken).await;
    let client = OpenAiEmbeddings::new(&provider.base_url, None, "m").expect("client");

    let err = client.embed(vec!["hi".to_owned()]).await.expect_err("500");

    assert!(
        matches!(&err, EmbedError::Status { status: 500, message, .. } if message == "upstream model crashed"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_silent_provider_times_out() {
    let provider = spawn_provider(Behaviour::Hang).await;
    let client =
        OpenAiEmbeddings::with_timeout(&provider.base_url, None, "m", Duration::from_millis(200))
            .expect("client");

    let err = client
        .embed(vec!["hi".to_owned()])
        .await
        .expect_err("timeout");

    match &err {
        EmbedError::Request { source, .. } => assert!(source.is_timeout(), "{source:?}"),
        other => panic!("expected a request error, got {other:?}"),
    }
}

#[tokio::test]
async fn vectors_of_the_wrong_length_are_refused() {
    let provider = spawn_provider(Behaviour::Answer).await;
    let client = OpenAiEmbeddings::new(&provider.base_url, None, "m")
        .expect("client")
        .with_dimensions(1536);

    let err = client
        .embed(vec!["hi".to_owned()])
        .await
        .expect_err("3 ≠ 1536");

    assert!(
        matches!(
            err,
            EmbedError::Dimensions {
                expected: 1536,
                got: 3
            }
        ),
        "{err:?}"
    );
}
