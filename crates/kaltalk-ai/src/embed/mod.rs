//! Text embeddings for retrieval: a local all-MiniLM-L6-v2-class model run on the CPU,
//! or any OpenAI-compatible `/v1/embeddings` endpoint. The index stores
//! [`Embedder::model_id`] with its vectors, since vectors of different models never mix.

mod download;
mod local;
pub(crate) mod remote;

use std::path::PathBuf;

pub use download::{DownloadError, MINILM_FILES, MINILM_REPO, download_minilm};
pub use local::{MAX_SEQUENCE_TOKENS, MiniLm};
pub use remote::OpenAiEmbeddings;

/// The environment variable naming the local model's directory.
pub const MODEL_DIR_ENV: &str = "KALTALK_EMBEDDING_MODEL_DIR";

/// Where embeddings come from. An enum rather than a trait object: `embed` is async.
#[derive(Debug)]
pub enum Embedder {
    Local(MiniLm),
    Remote(OpenAiEmbeddings),
}

impl Embedder {
    /// One L2-normalised (local) or provider-made (remote) vector per text, in order.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Embedder::Local(model) => model.embed(texts).await,
            Embedder::Remote(client) => client.embed(texts).await,
        }
    }

    /// Names the model that made the vectors: `local:all-MiniLM-L6-v2`,
    /// `openai:https://api.openai.com#text-embedding-3-small`.
    pub fn model_id(&self) -> String {
        match self {
            Embedder::Local(model) => format!("local:{}", model.name()),
            Embedder::Remote(client) => format!("openai:{}#{}", client.base_url(), client.model()),
        }
    }

    /// The vectors' length. A remote endpoint's is learned from its first answer unless
    /// configured: until then this is 0.
    pub fn dimensions(&self) -> usize {
        match self {
            Embedder::Local(model) => model.dimensions(),
            Embedder::Remote(client) => client.dimensions().unwrap_or(0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "embedding model file {path} not found: run scripts/fetch-model.sh, or set \
         {MODEL_DIR_ENV} to a directory holding config.json, tokenizer.json and \
         model.safetensors"
    )]
    MissingFile { path: PathBuf },
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid JSON in {path}")]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("loading the tokenizer {path}")]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },
    #[error("loading the model weights {path}")]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("tokenizing")]
    Tokenize(#[source] tokenizers::Error),
    #[error("running the embedding model")]
    Model(#[from] candle_core::Error),
    #[error("the embedding task stopped")]
    Task(#[from] tokio::task::JoinError),
    #[error("setting up the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("calling the embeddings endpoint {url}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the embeddings endpoint {url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the embeddings endpoint {url} gave an unexpected answer: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("expected embeddings of {expected} dimensions, got {got}")]
    Dimensions { expected: usize, got: usize },
}
