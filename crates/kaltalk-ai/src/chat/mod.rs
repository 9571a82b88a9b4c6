//! The chat model: any OpenAI-compatible `POST /v1/chat/completions` endpoint (OpenAI,
//! Ollama, vLLM, LiteLLM, llama.cpp's server, …), streamed, with one tool the model calls
//! to hand the conversation to a person.

pub mod prompt;
mod sse;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::embed::remote::{provider_message, server_root};
pub use sse::{SseError, SseParser};

/// The tool the model calls when the visitor asks for a person or the sources do not
/// answer the question.
pub const HAND_OVER_TOOL: &str = "hand_over_to_human";

/// How long the provider may take. The total bounds a turn, so the visitor is never left
/// waiting on a provider that streams forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the connection.
    pub connect: Duration,
    /// From sending the request to the first text or tool call.
    pub first_token: Duration,
    /// From sending the request to the end of the stream.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(20),
            total: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// One completion to generate.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub temperature: f32,
    pub messages: Vec<ChatMessage>,
}

impl ChatRequest {
    /// Characters of every message, for logs that must not hold the content.
    pub fn chars(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

/// What the model produced once the stream ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// `None` when the provider did not report usage.
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
}

impl Completion {
    /// The reason the model gave when it called [`HAND_OVER_TOOL`]. A call to any other
    /// tool also hands over: the model was given no other, so it has gone off script.
    pub fn hand_over(&self) -> Option<String> {
        let call = self.tool_calls.first()?;
        if call.name != HAND_OVER_TOOL {
            return Some(format!("the model called an unknown tool “{}”.", call.name));
        }
        #[derive(Deserialize)]
        struct Arguments {
            reason: String,
        }
        let reason = serde_json::from_str::<Arguments>(&call.arguments)
            .map(|a| a.reason.trim().to_owned())
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "the model gave no reason".to_owned());
        Some(cap(&reason, 300))
    }
}

fn cap(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("could not set up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("could not reach the chat model at {url}: {}", causes(source))]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the chat model at {url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the chat model at {url} sent no {stage} within {after:?}")]
    Timeout {
        url: String,
        stage: &'static str,
        after: Duration,
    },
    #[error("the chat model at {url} reported an error: {message}")]
    Provider { url: String, message: String },
    #[error("the chat model at {url} sent a stream we cannot read: {reason}")]
    BadStream { url: String, reason: String },
}

/// An error with its causes: reqwest's own message ("error sending request") says
/// nothing of what went wrong ("connection refused", "dns error") without them.
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A client of an OpenAI-compatible chat completions endpoint.
pub struct ChatClient {
    base_url: String,
    api_key: Option<String>,
    client: reqwest::Client,
    timeouts: Timeouts,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl ChatClient {
    /// `base_url` is the server's root, e.g. `https://api.openai.com` or
    /// `http://127.0.0.1:11434`; a trailing `/v1` is accepted too, as for embeddings.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        timeouts: Timeouts,
    ) -> Result<Self, ChatError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .build()
            .map_err(ChatError::Client)?;
        Ok(Self {
            base_url: server_root(base_url),
            api_key,
            client,
            timeouts,
        })
    }

    /// The server root, without `/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn endpoint(&self) -> String {
        format!("{}/v1/chat/completions", self.base_url)
    }

    /// Sends the request and waits for the response to start; read the text with
    /// [`ChatStream::next_text`].
    pub async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ChatError> {
        let url = self.endpoint();
        let started = Instant::now();
        let deadline = started + self.timeouts.total;
        let first_token = started + self.timeouts.first_token;
        let mut builder = self.client.post(&url).json(&request_body(request));
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let mut stream = ChatStream {
            url,
            response: None,
            parser: SseParser::default(),
            pending: VecDeque::new(),
            completion: Completion::default(),
            tool_calls: BTreeMap::new(),
            done: false,
            first_token: Some((first_token, self.timeouts.first_token)),
            deadline: (deadline, self.timeouts.total),
        };
        let (limit, stage, after) = stream.limit();
        let response = match tokio::time::timeout_at(limit, builder.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(source)) => {
                return Err(ChatError::Request {
                    url: stream.url,
                    source,
                });
            }
            Err(_) => {
                return Err(ChatError::Timeout {
                    url: stream.url,
                    stage,
                    after,
                });
            }
        };
        let status = response.status();
        if !status.is_success() {
            let body = tokio::time::timeout_at(limit, response.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(ChatError::Status {
                url: stream.url,
                status: status.as_u16(),
                message: provider_message(&body),
            });
        }
        stream.response = Some(response);
        Ok(stream)
    }
}

fn request_body(request: &ChatRequest) -> Value {
    json!({
        "model": request.model,
        "messages": request.messages,
        "temperature": request.temperature,
        "stream": true,
        "stream_options": { "include_usage": true },
        "tools": [{
            "type": "function",
            "function": {
                "name": HAND_OVER_TOOL,
                "description": "Hand the conversation to a person from the team. Call it when the visitor asks for a person, or when the sources do not answer the question.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "reason": { "type": "string", "description": "Why, in one short sentence for the team." }
                    },
                    "required": ["reason"]
                }
            }
        }],
        "tool_choice": "auto",
    })
}

/// A completion being streamed.
pub struct ChatStream {
    url: String,
    response: Option<reqwest::Response>,
    parser: SseParser,
    /// Text deltas parsed but not yet handed out.
    pending: VecDeque<String>,
    completion: Completion,
    /// Tool calls by their stream index: name and arguments arrive in fragments.
    tool_calls: BTreeMap<u64, ToolCall>,
    done: bool,
    /// Until the first text or tool call: when it must have come, and the timeout.
    first_token: Option<(Instant, Duration)>,
    deadline: (Instant, Duration),
}

impl ChatStream {
    /// The next piece of text, or `None` once the stream has ended.
    pub async fn next_text(&mut self) -> Result<Option<String>, ChatError> {
        loop {
            if let Some(text) = self.pending.pop_front() {
                return Ok(Some(text));
            }
            if self.done {
                return Ok(None);
            }
            let (limit, stage, after) = self.limit();
            let Some(response) = self.response.as_mut() else {
                return Ok(None);
            };
            let chunk = match tokio::time::timeout_at(limit, response.chunk()).await {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(source)) => {
                    return Err(ChatError::Request {
                        url: self.url.clone(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(ChatError::Timeout {
                        url: self.url.clone(),
                        stage,
                        after,
                    });
                }
            };
            let Some(bytes) = chunk else {
                // The connection closed without `[DONE]`. Some servers end that way after
                // a final chunk; without one, the answer may be cut off.
                self.done = true;
                if self.completion.finish_reason.is_none() {
                    return Err(self.bad("the stream ended before the answer did"));
                }
                continue;
            };
            let events = self
                .parser
                .push(&bytes)
                .map_err(|err| self.bad(&err.to_string()))?;
            for data in events {
                if self.done {
                    break; // nothing after [DONE] counts
                }
                self.apply(&data)?;
            }
        }
    }

    /// The whole completion; call after [`ChatStream::next_text`] returned `None`.
    pub fn finish(mut self) -> Completion {
        self.completion.tool_calls = std::mem::take(&mut self.tool_calls).into_values().collect();
        self.completion
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.completion.text
    }

    /// The deadline that applies now, which stage it bounds and its length.
    fn limit(&self) -> (Instant, &'static str, Duration) {
        match self.first_token {
            Some((first, after)) if first < self.deadline.0 => (first, "first token", after),
            _ => (self.deadline.0, "complete answer", self.deadline.1),
        }
    }

    fn bad(&self, reason: &str) -> ChatError {
        ChatError::BadStream {
            url: self.url.clone(),
            reason: reason.to_owned(),
        }
    }

    fn apply(&mut self, data: &str) -> Result<(), ChatError> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: StreamChunk = serde_json::from_str(data)
            .map_err(|err| self.bad(&format!("a chunk that is not a completion: {err}")))?;
        if let Some(error) = chunk.error {
            return Err(ChatError::Provider {
                url: self.url.clone(),
                message: provider_message(json!({ "error": error }).to_string().as_bytes()),
            });
        }
        if let Some(usage) = chunk.usage {
            self.completion.usage = Some(Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            });
        }
        // One answer is asked for (no `n`): only the first choice counts.
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return Ok(());
        };
        if let Some(reason) = choice.finish_reason {
            self.completion.finish_reason = Some(reason);
        }
        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
            self.first_token = None;
            self.completion.text.push_str(&text);
            self.pending.push_back(text);
        }
        for (position, call) in choice.delta.tool_calls.into_iter().enumerate() {
            self.first_token = None;
            let slot = self
                .tool_calls
                .entry(call.index.unwrap_or(position as u64))
                .or_default();
            if let Some(function) = call.function {
                if let Some(name) = function.name {
                    slot.name.push_str(&name);
                }
                if let Some(arguments) = function.arguments {
                    slot.arguments.push_str(&arguments);
                }
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<UsageBody>,
    /// Some servers report a failure inside the stream after a 200.
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    delta: DeltaBody,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct DeltaBody {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: Option<u64>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct UsageBody {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream fed straight from bytes, as [`ChatClient::stream`] would after the
    /// response headers.
    fn parse(parts: &[&str]) -> Result<(Vec<String>, Completion), ChatError> {
        let mut stream = ChatStream {
            url: "http://model.test/v1/chat/completions".into(),
            response: None,
            parser: SseParser::default(),
            pending: VecDeque::new(),
            completion: Completion::default(),
            tool_calls: BTreeMap::new(),
            done: false,
            first_token: None,
            deadline: (Instant::now(), Duration::ZERO),
        };
        let mut texts = Vec::new();
        for part in parts {
            for data in stream.parser.push(part.as_bytes()).expect("sse") {
                if !stream.done {
                    stream.apply(&data)?;
                }
            }
            texts.extend(stream.pending.drain(..));
        }
        Ok((texts, stream.finish()))
    }

    #[test]
    fn text_deltas_and_usage_are_read_from_chunks_split_anywhere() {
        let stream = concat!(
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Refunds take \"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"5–7 days [1].\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9,\"total_tokens\":129}}\n\n",
            "data: [DONE]\n\n",
        );
        for cut in (0..stream.len()).filter(|c| stream.is_char_boundary(*c)) {
            let (texts, completion) = parse(&[&stream[..cut], &stream[cut..]]).expect("parses");
            assert_eq!(texts.concat(), "Refunds take 5–7 days [1].");
            assert_eq!(completion.text, "Refunds take 5–7 days [1].");
            assert_eq!(completion.finish_reason.as_deref(), Some("stop"));
            assert_eq!(
                completion.usage,
                Some(Usage {
                    prompt_tokens: 120,
                    completion_tokens: 9
                })
            );
            assert!(completion.hand_over().is_none());
        }
    }

    #[test]
    fn tool_call_arguments_arrive_in_fragments() {
        let (texts, completion) = parse(&[
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"hand_over_to_human\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"rea\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"son\\\": \\\"wants a refund by phone\\\"}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n",
        ])
        .expect("parses");
        assert!(texts.is_empty());
        assert_eq!(completion.tool_calls.len(), 1);
        assert_eq!(
            completion.hand_over().as_deref(),
            Some("wants a refund by phone")
        );
    }

    #[test]
    fn unusable_tool_calls_still_hand_over() {
        let (_, garbled) = parse(&[
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"hand_over_to_human\",\"arguments\":\"{nope\"}}]}}]}\n\ndata: [DONE]\n\n",
        ])
        .expect("parses");
        assert_eq!(
            garbled.hand_over().as_deref(),
            Some("the model gave no reason")
        );
        let (_, other) = parse(&[
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"search_web\",\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n",
        ])
        .expect("parses");
        assert!(
            other
                .hand_over()
                .expect("hands over")
                .contains("search_web")
        );
    }

    #[test]
    fn an_error_inside_the_stream_and_garbage_are_errors() {
        let err = parse(&[
            "data: {\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}\n\n",
        ])
        .expect_err("error chunk");
        assert!(err.to_string().contains("model overloaded"), "{err}");
        let err = parse(&["data: <html>\n\n"]).expect_err("not json");
        assert!(matches!(err, ChatError::BadStream { .. }), "{err}");
    }

    #[test]
    fn nothing_after_done_counts() {
        let (texts, _) = parse(&[
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n",
        ])
        .expect("parses");
        assert_eq!(texts, ["a"]);
    }

    #[test]
    fn the_request_asks_for_a_stream_with_usage_and_offers_the_handover_tool() {
        let body = request_body(&ChatRequest {
            model: "m".into(),
            temperature: 0.2,
            messages: vec![ChatMessage::new(Role::User, "hi")],
        });
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["tools"][0]["function"]["name"], HAND_OVER_TOOL);
        assert_eq!(body["messages"][0]["role"], "user");
    }
}
