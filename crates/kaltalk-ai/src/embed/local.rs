//! The local embedder: an all-MiniLM-L6-v2-class BERT sentence model run by candle on
//! the CPU, with mean pooling and L2 normalisation as sentence-transformers does it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};
use tokio::sync::Mutex;

use super::EmbedError;

/// The model's real sequence limit, special tokens included. The shipped
/// `tokenizer.json` says 128, but sentence-transformers runs the model at 256.
pub const MAX_SEQUENCE_TOKENS: usize = 256;

/// `[CLS]` and `[SEP]`, which every sequence carries besides its text's word-pieces.
const SPECIAL_TOKENS: usize = 2;

/// Texts per forward pass. Larger batches gain nothing on a few cores and make glibc
/// malloc churn through big attention buffers.
const MICRO_BATCH: usize = 8;

/// A micro-batch is cut short before a text less than half as long as its first (they
/// come longest first), so short texts are not padded to a long one's length.
const PADDING_RATIO: usize = 2;

/// A BERT sentence-embedding model loaded from a directory holding `config.json`,
/// `tokenizer.json` and `model.safetensors`. Cheap to clone (shared).
#[derive(Clone)]
pub struct MiniLm {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    model: BertModel,
    /// Truncates at `max_tokens`; `forward` pads each micro-batch to its longest text.
    tokenizer: Tokenizer,
    /// The same vocabulary without truncation, for counting word-pieces.
    counter: Tokenizer,
    pad_id: u32,
    pad_type_id: u32,
    /// Sequence limit, `[CLS]` and `[SEP]` included.
    max_tokens: usize,
    dimensions: usize,
    /// One forward pass at a time: they use every core anyway, and taking turns per
    /// micro-batch lets a short query slip in between the batches of a long import.
    /// Held by the blocking task itself, so a cancelled caller cannot free it early.
    turn: Arc<Mutex<()>>,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("name", &self.inner.name)
            .field("dimensions", &self.inner.dimensions)
            .finish_non_exhaustive()
    }
}

impl MiniLm {
    /// Loads the model from `dir`; its name (for [`MiniLm::name`]) is the directory's.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let dir = dir.as_ref();
        let config_path = required_file(dir, "config.json")?;
        let tokenizer_path = required_file(dir, "tokenizer.json")?;
        let weights_path = required_file(dir, "model.safetensors")?;

        let config_text = read(&config_path)?;
        let config: Config =
            serde_json::from_slice(&config_text).map_err(|source| EmbedError::Config {
                path: config_path.clone(),
                source,
            })?;

        let mut counter =
            Tokenizer::from_file(&tokenizer_path).map_err(|source| EmbedError::Tokenizer {
                path: tokenizer_path.clone(),
                source,
            })?;
        // The file pads everything to a fixed 128 and cuts there too: both are replaced.
        let (pad_id, pad_type_id) = counter
            .get_padding()
            .map_or((0, 0), |p| (p.pad_id, p.pad_type_id));
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(|source| EmbedError::Tokenizer {
                path: tokenizer_path.clone(),
                source,
            })?;
        let max_tokens = MAX_SEQUENCE_TOKENS.min(config.max_position_embeddings);
        let mut tokenizer = counter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                ..TruncationParams::default()
            }))
            .map_err(|source| EmbedError::Tokenizer {
                path: tokenizer_path.clone(),
                source,
            })?;

        let weights = read(&weights_path)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu).map_err(
            |source| EmbedError::Weights {
                path: weights_path.clone(),
                source,
            },
        )?;
        let model = BertModel::load(vb, &config).map_err(|source| EmbedError::Weights {
            path: weights_path,
            source,
        })?;

        // Canonical, so that `.` or a symlink still gives the model's own name.
        let name = std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_owned())
            .file_name()
            .map_or_else(|| "bert".to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(Self {
            inner: Arc::new(Inner {
                name,
                model,
                tokenizer,
                counter,
                pad_id,
                pad_type_id,
                max_tokens,
                dimensions: config.hidden_size,
                turn: Arc::new(Mutex::new(())),
            }),
        })
    }

    /// The model's name: its directory's name, e.g. `all-MiniLM-L6-v2`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Length of the vectors (384 for all-MiniLM-L6-v2).
    pub fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    /// How many word-pieces of a text the model reads at most: longer text is cut.
    pub fn max_input_tokens(&self) -> usize {
        self.inner.max_tokens.saturating_sub(SPECIAL_TOKENS)
    }

    /// The number of word-pieces in `text` (without `[CLS]`/`[SEP]`), untruncated: a
    /// chunk fits the model whole when this is at most [`MiniLm::max_input_tokens`].
    pub fn count_tokens(&self, text: &str) -> usize {
        match self.inner.counter.encode_fast(text, false) {
            Ok(encoding) => encoding.len(),
            Err(err) => {
                // A valid WordPiece vocabulary never fails; should it, over-estimate
                // (a word-piece is at least one byte) so a chunk is never too long.
                tracing::warn!(error = %err, "word-piece count failed; using the byte length");
                text.len()
            }
        }
    }

    /// Embeds `texts` in micro-batches on the blocking pool; one vector per text, in
    /// order, each L2-normalised.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let this = self.clone();
        let mut encodings = tokio::task::spawn_blocking(move || this.tokenize(&texts)).await??;
        let mut vectors = vec![Vec::new(); encodings.len()];
        for batch in micro_batches(&encodings) {
            let inputs: Vec<Encoding> = batch
                .iter()
                .map(|&i| std::mem::take(&mut encodings[i]))
                .collect();
            let turn = Arc::clone(&self.inner.turn).lock_owned().await;
            let this = self.clone();
            let embedded = tokio::task::spawn_blocking(move || {
                let _turn = turn;
                this.forward(&inputs)
            })
            .await??;
            for (&i, vector) in batch.iter().zip(embedded) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// The synchronous version of [`MiniLm::embed`], for callers already off the async
    /// runtime (benchmarks, batch tools).
    pub fn embed_blocking<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut encodings = self.tokenize(texts)?;
        let mut vectors = vec![Vec::new(); encodings.len()];
        for batch in micro_batches(&encodings) {
            let inputs: Vec<Encoding> = batch
                .iter()
                .map(|&i| std::mem::take(&mut encodings[i]))
                .collect();
            for (&i, vector) in batch.iter().zip(self.forward(&inputs)?) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// Word-pieces with `[CLS]`/`[SEP]`, cut at [`MAX_SEQUENCE_TOKENS`], unpadded.
    fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Encoding>, EmbedError> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        self.inner
            .tokenizer
            .encode_batch_fast(texts, true)
            .map_err(EmbedError::Tokenize)
    }

    /// One forward pass over a micro-batch: pad to its longest text, run BERT, mean-pool
    /// over the real tokens, L2-normalise.
    fn forward(&self, encodings: &[Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let rows = encodings.len();
        let cols = encodings.iter().map(Encoding::len).max().unwrap_or(0);
        if rows == 0 || cols == 0 {
            return Ok(vec![Vec::new(); rows]);
        }
        let mut ids = Vec::with_capacity(rows * cols);
        let mut type_ids = Vec::with_capacity(rows * cols);
        let mut mask = Vec::with_capacity(rows * cols);
        for encoding in encodings {
            let padding = cols - encoding.len();
            ids.extend_from_slice(encoding.get_ids());
            ids.extend(std::iter::repeat_n(self.inner.pad_id, padding));
            type_ids.extend_from_slice(encoding.get_type_ids());
            type_ids.extend(std::iter::repeat_n(self.inner.pad_type_id, padding));
            mask.extend(std::iter::repeat_n(1u32, encoding.len()));
            mask.extend(std::iter::repeat_n(0u32, padding));
        }
        let device = &self.inner.model.device;
        let ids = Tensor::from_vec(ids, (rows, cols), device)?;
        let type_ids = Tensor::from_vec(type_ids, (rows, cols), device)?;
        let mask = Tensor::from_vec(mask, (rows, cols), device)?;

        let hidden = self.inner.model.forward(&ids, &type_ids, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

/// Groups text indexes into micro-batches, longest first, so each pads little: at most
/// [`MICRO_BATCH`] texts, none shorter than 1/[`PADDING_RATIO`] of the batch's longest.
fn micro_batches(encodings: &[Encoding]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut longest = 0;
    for i in order {
        let len = encodings[i].len();
        match batches.last_mut() {
            Some(batch) if batch.len() < MICRO_BATCH && len * PADDING_RATIO >= longest => {
                batch.push(i);
            }
            _ => {
                longest = len;
                batches.push(vec![i]);
            }
        }
    }
    batches
}

fn required_file(dir: &Path, name: &str) -> Result<PathBuf, EmbedError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::MissingFile { path })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EmbedError> {
    std::fs::read(path).map_err(|source| EmbedError::Io {
        path: path.to_owned(),
        source,
    })
}
