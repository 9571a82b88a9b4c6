//! The remote embedder: any OpenAI-compatible `POST /v1/embeddings` endpoint (OpenAI,
//! Ollama, vLLM, LiteLLM, llama.cpp's server, …).

use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::EmbedError;

/// Inputs per request: well under the providers' limits (OpenAI takes 2,048) while
/// keeping each request small enough to finish inside the timeout.
const REQUEST_BATCH: usize = 64;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many characters of a provider's error message to quote.
const MAX_QUOTED_ERROR: usize = 300;

/// A client of an OpenAI-compatible embeddings endpoint.
pub struct OpenAiEmbeddings {
    base_url: String,
    api_key: Option<String>,
    model: String,
    client: reqwest::Client,
    /// Configured, or learned from the first answer; every answer must then match it.
    dimensions: OnceLock<usize>,
}

impl std::fmt::Debug for OpenAiEmbeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbeddings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("dimensions", &self.dimensions.get())
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbeddings {
    /// `base_url` is the server's root, e.g. `https://api.openai.com` or
    /// `http://127.0.0.1:11434`; a trailing `/v1` is accepted too.
    pub fn new(base_url: &str, api_key: Option<String>, model: &str) -> Result<Self, EmbedError> {
        Self::with_timeout(base_url, api_key, model, DEFAULT_TIMEOUT)
    }

    /// Like [`OpenAiEmbeddings::new`], with a timeout for each request.
    pub fn with_timeout(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<Self, EmbedError> {
        let base = server_root(base_url);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(EmbedError::Client)?;
        Ok(Self {
            base_url: base,
            api_key,
            model: model.to_owned(),
            client,
            dimensions: OnceLock::new(),
        })
    }

    /// Declares the vector length up front instead of learning it from the first answer.
    pub fn with_dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = OnceLock::from(dimensions);
        self
    }

    /// The server root, without `/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The model name sent with each request.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The vector length, or `None` before it is configured or first seen.
    pub fn dimensions(&self) -> Option<usize> {
        self.dimensions.get().copied()
    }

    fn endpoint(&self) -> String {
        format!("{}/v1/embeddings", self.base_url)
    }

    /// Embeds `texts`, in requests of at most [`REQUEST_BATCH`] inputs.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(REQUEST_BATCH) {
            vectors.extend(self.request(batch).await?);
        }
        Ok(vectors)
    }

    async fn request(&self, input: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let url = self.endpoint();
        let mut request = self.client.post(&url).json(&EmbeddingsRequest {
            model: &self.model,
            input,
        });
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|source| EmbedError::Request {
            url: url.clone(),
            source,
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|source| EmbedError::Request {
                url: url.clone(),
                source,
            })?;
        if !status.is_success() {
            return Err(EmbedError::Status {
                url,
                status: status.as_u16(),
                message: provider_message(&body),
            });
        }
        let answer: EmbeddingsResponse =
            serde_json::from_slice(&body).map_err(|err| EmbedError::BadResponse {
                url: url.clone(),
                reason: format!("not an embeddings list: {err}"),
            })?;
        self.in_input_order(&url, input.len(), answer)
    }

    /// Places each `data[i].embedding` at its `index`, checking that every input got
    /// exactly one vector of the expected length.
    fn in_input_order(
        &self,
        url: &str,
        inputs: usize,
        answer: EmbeddingsResponse,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let bad = |reason: String| EmbedError::BadResponse {
            url: url.to_owned(),
            reason,
        };
        if answer.data.len() != inputs {
            return Err(bad(format!(
                "{} embeddings for {inputs} inputs",
                answer.data.len()
            )));
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs];
        for item in answer.data {
            let expected = *self.dimensions.get_or_init(|| item.embedding.len());
            if item.embedding.len() != expected {
                return Err(EmbedError::Dimensions {
                    expected,
                    got: item.embedding.len(),
                });
            }
            match vectors.get_mut(item.index) {
                Some(slot @ None) => *slot = Some(item.embedding),
                Some(Some(_)) => return Err(bad(format!("index {} given twice", item.index))),
                None => return Err(bad(format!("index {} out of range", item.index))),
            }
        }
        // All slots are filled: as many items as inputs, none twice, none out of range.
        Ok(vectors.into_iter().flatten().collect())
    }
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

/// A provider's root URL as configured, with or without a trailing `/` or `/v1`, as the
/// root that `/v1/...` paths are appended to: every OpenAI-compatible client here takes
/// the same `base_url`.
pub(crate) fn server_root(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base).to_owned()
}

/// The provider's own words from an error body: OpenAI's `{"error": {"message"}}`, the
/// `{"error": "…"}` some compatible servers send, or the start of the raw text.
pub(crate) fn provider_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ErrorField {
        Object { message: String },
        Text(String),
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorField,
    }
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error: ErrorField::Object { message } | ErrorField::Text(message),
        }) => message,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let message = message.trim();
    match message.char_indices().nth(MAX_QUOTED_ERROR) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}
