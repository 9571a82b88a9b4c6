//! A stand-in for a hosted chat model: a real HTTP server on 127.0.0.1:0 speaking the
//! OpenAI chat completions wire format (`POST /v1/chat/completions`, server-sent events),
//! so the production client talks to it unchanged. It records every request it receives,
//! which is how tests check what would leave the machine.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// How the fake answers the next requests.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A `200` event stream: each `data` payload in turn, `pause` before each, then
    /// `data: [DONE]`.
    Stream { data: Vec<String>, pause: Duration },
    /// An error status with this body.
    Status { status: u16, body: String },
    /// Response headers, then nothing, ever: a provider that hangs.
    Stall,
}

impl Reply {
    /// An answer streamed in `parts`, then a usage chunk.
    pub fn answer(parts: &[&str], usage: (u64, u64), pause: Duration) -> Self {
        let mut data = vec![chunk(json!({ "role": "assistant", "content": "" }), None)];
        data.extend(
            parts
                .iter()
                .map(|part| chunk(json!({ "content": part }), None)),
        );
        data.push(chunk(json!({}), Some("stop")));
        data.push(usage_chunk(usage));
        Self::Stream { data, pause }
    }

    /// A call of the handover tool, its arguments split in two fragments as models do.
    pub fn hand_over(reason: &str, usage: (u64, u64)) -> Self {
        let arguments = json!({ "reason": reason }).to_string();
        let (first, second) = arguments.split_at(arguments.len() / 2);
        let data = vec![
            chunk(
                json!({ "role": "assistant", "tool_calls": [{ "index": 0, "id": "call_1", "type": "function",
                    "function": { "name": "hand_over_to_human", "arguments": "" } }] }),
                None,
            ),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": first } }] }),
                None,
            ),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": second } }] }),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(usage),
        ];
        Self::Stream {
            data,
            pause: Duration::ZERO,
        }
    }
}

fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
    })
    .to_string()
}

fn usage_chunk((prompt, completion): (u64, u64)) -> String {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
        "choices": [],
        "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion },
    })
    .to_string()
}

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Clone)]
struct Shared {
    reply: Arc<Mutex<Reply>>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// The running fake; stops when dropped.
pub struct FakeChatModel {
    /// What `[ai] base_url` should be set to.
    pub base_url: String,
    shared: Shared,
    task: JoinHandle<()>,
}

impl FakeChatModel {
    pub async fn start(reply: Reply) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shared = Shared {
            reply: Arc::new(Mutex::new(reply)),
            received: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url,
            shared,
            task,
        })
    }

    pub async fn set_reply(&self, reply: Reply) {
        *self.shared.reply.lock().await = reply;
    }

    /// Every request so far, oldest first.
    pub async fn received(&self) -> Vec<Received> {
        self.shared.received.lock().await.clone()
    }
}

impl Drop for FakeChatModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn completions(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": { "message": format!("invalid JSON: {err}") } })),
            )
                .into_response();
        }
    };
    shared.received.lock().await.push(Received {
        body,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let reply = shared.reply.lock().await.clone();
    let body = match reply {
        Reply::Status { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
        Reply::Stall => {
            Body::from_stream(futures_util::stream::pending::<Result<String, Infallible>>())
        }
        Reply::Stream { data, pause } => {
            let events = data.into_iter().chain(["[DONE]".to_owned()]);
            Body::from_stream(futures_util::stream::unfold(
                events,
                move |mut events| async move {
                    let next = events.next()?;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    Some((Ok::<_, Infallible>(format!("data: {next}\n\n")), events))
                },
            ))
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
