//! The knowledge base on the server: indexing sources into chunks and vectors (a job),
//! and the per-organization hybrid search index (BM25 + exact cosine, fused by
//! reciprocal rank), rebuilt from the store whenever the organization's knowledge
//! version changes, so every instance answers alike.

pub mod sources;

use kaltalk_core::job::{IndexSource, Reembed};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use kaltalk_ai::chunk::{ChunkInput, chunk_markdown};
use kaltalk_ai::crawl::{CrawlOptions, crawl_site};
use kaltalk_ai::embed::{Embedder, MiniLm, OpenAiEmbeddings, download_minilm};
use kaltalk_ai::extract::{Limits, extract_file, extract_html};
use kaltalk_ai::fetch::{FetchPolicy, Fetcher};
use kaltalk_ai::hybrid::{DenseIndex, RRF_K, reciprocal_rank_fusion};
use kaltalk_ai::keyword::{IndexedText, KeywordIndex, coverage};
use kaltalk_core::OrgId;
use kaltalk_store::knowledge::{Chunk, NewChunk, Source, vector_from_bytes};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::config::{EmbeddingProvider, EmbeddingsConfig};
use crate::state::AppState;

/// Word-pieces per chunk when no local tokenizer counts them (keyword-only, or a remote
/// model whose tokenizer we do not have): MiniLM's 256 less room for special tokens and
/// the title line.
const ESTIMATED_CHUNK_TOKENS: usize = 200;

/// Word-pieces kept free in each chunk for the heading path embedded with it (the
/// title's own are counted per document).
const HEADING_ALLOWANCE: usize = 24;

/// Chunks embedded per step of an indexing run: each step records progress, and the
/// model's turn lock lets a visitor's query in between micro-batches.
const EMBED_STEP: usize = 32;

/// Candidates each retriever contributes to the fusion. Deep enough that a chunk ranked
/// well by one retriever and modestly by the other still gets both votes.
const FUSION_DEPTH: usize = 100;

/// Without the model's tokenizer, word-pieces are estimated from words (English
/// averages about 1.3 word-pieces a word).
fn estimate_tokens(text: &str) -> usize {
    text.split_whitespace().count() * 4 / 3 + 1
}

/// Where the organization's vectors come from, or why there are none.
pub enum Embeddings {
    Ready(Arc<Embedder>),
    /// Keyword-only while the local model is fetched from this address in the
    /// background ([`download_model`]); then `Ready`, or `Off` saying why not.
    Downloading(String),
    /// Keyword-only; the reason is shown on the knowledge page.
    Off(String),
    /// Keyword-only because the background download failed (no network, a proxy, a
    /// refused file). The page says so in plain words and folds `error` away.
    DownloadFailed {
        /// Where it was fetched from, the error chain, and how to install it by hand.
        error: String,
    },
}

impl Embeddings {
    /// Loads the configured embedder. A missing *default* model directory is no error
    /// (the server runs keyword-only and says so); a configured one that is missing is.
    pub async fn load(config: &EmbeddingsConfig, data_dir: &Path) -> anyhow::Result<Self> {
        match config.provider {
            EmbeddingProvider::None => Ok(Self::Off(
                "Embeddings are switched off (embeddings.provider = \"none\"): the agent finds passages by their words only, so a question worded differently from the text may miss it.".into(),
            )),
            EmbeddingProvider::Openai => {
                let (Some(base_url), Some(model)) = (&config.base_url, &config.model) else {
                    anyhow::bail!("embeddings.provider = \"openai\" needs base_url and model");
                };
                let key = config.api_key.as_ref().map(|k| k.expose().to_owned());
                let mut client = OpenAiEmbeddings::new(base_url, key, model)
                    .context("setting up the embeddings endpoint")?;
                if let Some(dimensions) = config.dimensions {
                    client = client.with_dimensions(dimensions);
                }
                Ok(Self::Ready(Arc::new(Embedder::Remote(client))))
            }
            EmbeddingProvider::Local => {
                let (dir, configured) = config.local_model_dir(data_dir);
                if !configured && !dir.join("model.safetensors").is_file() {
                    if config.download {
                        // Fetched after start (`download_model`), so a slow link never
                        // delays the server; keyword-only meanwhile.
                        return Ok(Self::Downloading(config.download_url.clone()));
                    }
                    tracing::warn!(dir = %dir.display(), "no embedding model: retrieval is keyword-only");
                    return Ok(Self::Off(format!(
                        "No embedding model is installed and downloading it is switched off (embeddings.download = false), so the agent finds passages by their words only. Put all-MiniLM-L6-v2 in {} (scripts/fetch-model.sh), set KALTALK_EMBEDDING_MODEL_DIR, or allow the download, then restart.",
                        dir.display()
                    )));
                }
                let model = tokio::task::spawn_blocking(move || MiniLm::load(dir))
                    .await
                    .context("model loading task")?
                    .context("loading the local embedding model")?;
                Ok(Self::Ready(Arc::new(Embedder::Local(model))))
            }
        }
    }

    pub fn embedder(&self) -> Option<&Arc<Embedder>> {
        match self {
            Self::Ready(embedder) => Some(embedder),
            Self::Downloading(_) | Self::Off(_) | Self::DownloadFailed { .. } => None,
        }
    }

    /// One sentence for the knowledge page about how retrieval works here.
    pub fn describe(&self) -> String {
        match self {
            Self::Ready(embedder) => format!(
                "Search combines keywords with meaning (embeddings by {}), so a question worded differently from the text still finds it.",
                embedder.model_id()
            ),
            Self::Downloading(url) => format!(
                "Retrieval is keyword-only for now: the embedding model (all-MiniLM-L6-v2) is downloading from {url}. Once it is in place search also matches meaning, and the knowledge base is re-embedded in the background."
            ),
            Self::Off(reason) => format!("Retrieval is keyword-only. {reason}"),
            // The server only retries the download when it starts (`download_model` runs
            // once per start), so that is what the page promises.
            Self::DownloadFailed { .. } => "The search model could not be downloaded, so knowledge search uses keywords only until it is: a question worded differently from the text may miss it. KalTalk tries the download again the next time the server starts.".to_owned(),
        }
    }

    /// The technical detail behind [`Self::describe`], for whoever runs the server; the
    /// page shows it folded away.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::DownloadFailed { error } => Some(error),
            _ => None,
        }
    }
}

/// The background task started with a server whose embeddings are
/// [`Embeddings::Downloading`]: fetches the model into the default directory (hashes
/// checked), loads it, switches retrieval to it and queues re-embedding of the chunks
/// indexed meanwhile. A failure leaves the server keyword-only, saying why.
pub async fn download_model(state: AppState) {
    let config = &state.config.embeddings;
    let (dir, _) = config.local_model_dir(&state.config.data_dir);
    tracing::info!(from = %config.download_url, dir = %dir.display(), "downloading the embedding model");
    let loaded = async {
        download_minilm(&config.download_url, &dir).await?;
        let model = tokio::task::spawn_blocking(move || MiniLm::load(dir))
            .await
            .context("model loading task")?
            .context("loading the downloaded embedding model")?;
        anyhow::Ok(Arc::new(Embedder::Local(model)))
    }
    .await;
    let embedder = match loaded {
        Ok(embedder) => embedder,
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "the embedding model could not be downloaded: retrieval is keyword-only");
            let (dir, _) = config.local_model_dir(&state.config.data_dir);
            state
                .knowledge
                .set_embeddings(Embeddings::DownloadFailed {
                    error: format!(
                        "Downloading the embedding model from {} failed: {err:#}. To install it by hand, put all-MiniLM-L6-v2 in {} (scripts/fetch-model.sh) or set KALTALK_EMBEDDING_MODEL_DIR, then restart.",
                        config.download_url,
                        dir.display()
                    ),
                })
                .await;
            return;
        }
    };
    let model = embedder.model_id();
    // Switched first: a source indexed from now on embeds as it goes, and the queue
    // below catches the ones indexed keyword-only before.
    state
        .knowledge
        .set_embeddings(Embeddings::Ready(embedder))
        .await;
    match state.store.queue_reembedding(&model, state.now()).await {
        Ok(queued) => {
            tracing::info!(organizations = queued, %model, "embedding model downloaded; re-embedding queued");
        }
        Err(err) => {
            tracing::warn!(error = %err, "queueing re-embedding after the model download failed; it is queued again at the next start");
        }
    }
}

/// What the embedding model reads of a chunk: where it sits, then its text. The title
/// line carries meaning the passage often leaves implicit ("Refunds" under "Returns").
pub fn passage_text(title: &str, heading_path: &str, text: &str) -> String {
    if heading_path.is_empty() {
        format!("{title}\n{text}")
    } else {
        format!("{title} › {heading_path}\n{text}")
    }
}

/// Cuts a document's Markdown into chunks that follow its headings (kaltalk-ai's
/// chunker). With a local model its own tokenizer counts the word-pieces, so a chunk
/// plus its title line fits the model's window (256 with `[CLS]`/`[SEP]` for MiniLM).
pub fn chunk_document(
    embedder: Option<&Embedder>,
    title: &str,
    url: Option<&str>,
    markdown: &str,
) -> Vec<NewChunk> {
    let input = ChunkInput {
        title: Some(title.to_owned()),
        url: url.map(str::to_owned),
        markdown: markdown.to_owned(),
    };
    let estimate: &dyn Fn(&str) -> usize = &estimate_tokens;
    let (budget, chunks) = match embedder {
        Some(Embedder::Local(model)) => {
            let count = |text: &str| model.count_tokens(text);
            let budget = model
                .max_input_tokens()
                .saturating_sub(model.count_tokens(title) + HEADING_ALLOWANCE)
                .max(64);
            (budget, chunk_markdown(&input, budget, &count))
        }
        _ => (
            ESTIMATED_CHUNK_TOKENS,
            chunk_markdown(&input, ESTIMATED_CHUNK_TOKENS, estimate),
        ),
    };
    tracing::trace!(budget, chunks = chunks.len(), "chunked");
    chunks
        .into_iter()
        .map(|chunk| NewChunk {
            title: chunk.title.unwrap_or_else(|| title.to_owned()),
            heading_path: chunk.heading_path.join(" › "),
            url: chunk.url,
            text: chunk.text,
            embedding: None,
            embedding_model: None,
        })
        .collect()
}

fn fetcher(state: &AppState) -> anyhow::Result<Fetcher> {
    let knowledge = &state.config.knowledge;
    let policy = FetchPolicy {
        allow_loopback: knowledge.allow_loopback,
        allow_private: knowledge.allow_private,
        ..FetchPolicy::default()
    };
    Ok(Fetcher::new(policy)?)
}

/// A fetched page as chunks (its own title wins over the source's).
fn page_chunks(
    embedder: Option<&Embedder>,
    source_title: &str,
    url: &str,
    html: &str,
) -> Result<Vec<NewChunk>, String> {
    let document = extract_html(html, Some(url)).map_err(|e| e.to_string())?;
    let title = document
        .title
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(source_title);
    Ok(chunk_document(
        embedder,
        title,
        Some(url),
        &document.markdown,
    ))
}

/// What a web source reads: one page, or a site crawled within its caps.
async fn web_chunks(
    state: &AppState,
    kind: &str,
    title: &str,
    url: &str,
) -> Result<(i32, Vec<NewChunk>), String> {
    let start = url::Url::parse(url).map_err(|_| format!("{url} is not a web address"))?;
    let fetcher = fetcher(state).map_err(|e| format!("{e:#}"))?;
    let embedder = state.knowledge.embedder();
    let embedder = embedder.as_deref();
    if kind == "url" {
        let page = fetcher.fetch(&start).await.map_err(|e| e.to_string())?;
        if !page.is_success() {
            return Err(format!("the page answered HTTP {}", page.status));
        }
        let html = String::from_utf8_lossy(&page.body);
        return Ok((
            1,
            page_chunks(embedder, title, page.final_url.as_str(), &html)?,
        ));
    }
    let mut options = CrawlOptions::new(start);
    options.max_pages = state.config.knowledge.max_pages;
    let mut pages = Vec::new();
    let report = crawl_site(&fetcher, options, |page| pages.push(page)).await;
    if pages.is_empty() {
        let why = report
            .skipped
            .first()
            .map(|s| format!("{}: {}", s.url, s.reason))
            .unwrap_or_else(|| "no page was reachable".into());
        return Err(format!("Nothing could be read from the site ({why})."));
    }
    let mut chunks = Vec::new();
    for page in &pages {
        // A page that cannot be read is skipped; the others still count.
        if let Ok(mut page_chunks) = page_chunks(embedder, title, page.url.as_str(), &page.html) {
            chunks.append(&mut page_chunks);
        }
    }
    Ok((pages.len() as i32, chunks))
}

/// The extraction limits for uploaded files, with the configured size cap.
fn file_limits(state: &AppState) -> Limits {
    Limits {
        max_file_bytes: state.config.knowledge.max_file_bytes,
        ..Limits::default()
    }
}

/// An uploaded file, read again from its stored bytes (so a re-sync re-extracts it).
async fn file_chunks(state: &AppState, source: &Source) -> Result<(i32, Vec<NewChunk>), String> {
    let (Some(key), Some(name)) = (source.blob_key.as_deref(), source.file_name.as_deref()) else {
        return Err("The uploaded file is missing; upload it again.".into());
    };
    let bytes = state.blobs.get(key).await.map_err(|e| {
        tracing::warn!(error = %e, key, "reading a knowledge file");
        if e.kind() == std::io::ErrorKind::NotFound {
            "The stored copy of the file is missing; upload it again.".to_owned()
        } else {
            format!("The stored copy of the file could not be read ({e}); try again, or upload it again.")
        }
    })?;
    let document = extract_file(bytes, name, &file_limits(state))
        .await
        .map_err(|e| e.to_string())?;
    let embedder = state.knowledge.embedder();
    Ok((
        1,
        chunk_document(embedder.as_deref(), &source.title, None, &document.markdown),
    ))
}

/// The `knowledge.index` job: a source becomes chunks. A source that cannot be read
/// fails alone, with its reason shown; the job itself succeeds so it is not retried.
pub async fn index_source(state: &AppState, job: IndexSource) -> anyhow::Result<()> {
    let IndexSource {
        org_id: org,
        source_id: id,
    } = job;
    let source = match state.store.get_source(org, id).await {
        Ok(source) => source,
        Err(kaltalk_store::StoreError::NotFound) => return Ok(()), // deleted meanwhile
        Err(err) => return Err(err.into()),
    };
    let first_state = if matches!(source.kind.as_str(), "text" | "file") {
        "indexing"
    } else {
        "fetching"
    };
    state
        .store
        .set_source_state(org, id, first_state, None, state.now())
        .await?;
    let read = match (source.kind.as_str(), source.url.as_deref()) {
        ("text", _) => Ok((
            1,
            chunk_document(
                state.knowledge.embedder().as_deref(),
                &source.title,
                None,
                source.body.as_deref().unwrap_or_default(),
            ),
        )),
        ("url" | "site", Some(url)) => web_chunks(state, &source.kind, &source.title, url).await,
        ("file", _) => file_chunks(state, &source).await,
        (other, _) => Err(format!("{other} sources are not supported yet")),
    };
    let now = state.now();
    match read {
        Ok((pages, mut chunks)) if !chunks.is_empty() => {
            state
                .store
                .set_source_state(org, id, "indexing", None, now)
                .await?;
            if let Err(err) = embed_chunks(state, org, id, &mut chunks).await {
                // Embedding is a provider's or the CPU's trouble, not the source's: the
                // job is retried, and the source's previous chunks serve meanwhile.
                state
                    .store
                    .set_source_state(
                        org,
                        id,
                        "failed",
                        Some(&format!("Embedding the text failed ({err:#}); it will be retried. The previous version of this source stays searchable.")),
                        state.now(),
                    )
                    .await?;
                return Err(err);
            }
            state
                .store
                .replace_chunks(org, id, pages, &chunks, state.now())
                .await?;
            // Read keyword-only while the model was still downloading, but stored after
            // its re-embedding was queued: queue again, or these would wait for a restart.
            if chunks.iter().any(|c| c.embedding.is_none())
                && let Some(embedder) = state.knowledge.embedder()
            {
                state
                    .store
                    .queue_reembedding(&embedder.model_id(), state.now())
                    .await?;
            }
        }
        // The source fails alone, saying why; its previous chunks stay until it succeeds.
        Ok(_) => {
            state
                .store
                .set_source_state(
                    org,
                    id,
                    "failed",
                    Some("The source has no text to learn from."),
                    now,
                )
                .await?
        }
        Err(reason) => {
            state
                .store
                .set_source_state(org, id, "failed", Some(&reason), now)
                .await?
        }
    }
    Ok(())
}

/// Queues the web sources whose scheduled re-sync is due (run by the housekeeping timer;
/// the store claims each once, however many instances tick). Returns how many.
pub async fn queue_due_syncs(state: &AppState) -> anyhow::Result<usize> {
    let queued = state.store.queue_due_syncs(state.now()).await?;
    if !queued.is_empty() {
        tracing::info!(
            sources = queued.len(),
            "scheduled knowledge re-syncs queued"
        );
    }
    Ok(queued.len())
}

/// Embeds chunks in steps of [`EMBED_STEP`], recording progress on the source
/// ("indexing 120/480 chunks"). Keyword-only servers leave the chunks without vectors.
async fn embed_chunks(
    state: &AppState,
    org: OrgId,
    source: Uuid,
    chunks: &mut [NewChunk],
) -> anyhow::Result<()> {
    let Some(embedder) = state.knowledge.embedder() else {
        return Ok(());
    };
    let model = embedder.model_id();
    let total = chunks.len() as i32;
    let mut done = 0;
    state
        .store
        .set_source_progress(org, source, 0, total, state.now())
        .await?;
    for step in chunks.chunks_mut(EMBED_STEP) {
        let texts = step
            .iter()
            .map(|c| passage_text(&c.title, &c.heading_path, &c.text))
            .collect();
        let vectors = embedder.embed(texts).await?;
        for (chunk, vector) in step.iter_mut().zip(vectors) {
            chunk.embedding = Some(vector);
            chunk.embedding_model = Some(model.clone());
        }
        done += step.len() as i32;
        state
            .store
            .set_source_progress(org, source, done, total, state.now())
            .await?;
    }
    Ok(())
}

/// The `knowledge.reembed` job: gives the organization's chunks vectors of the
/// configured model (queued at start when the model changed). Until it finishes the
/// index keeps using only vectors of the configured model, never a mix.
pub async fn reembed(state: &AppState, job: Reembed) -> anyhow::Result<()> {
    let org = job.org_id;
    let Some(embedder) = state.knowledge.embedder() else {
        return Ok(()); // embeddings were switched off since
    };
    let model = embedder.model_id();
    let mut embedded = 0;
    loop {
        let chunks = state
            .store
            .chunks_to_embed(org, &model, EMBED_STEP as i64)
            .await?;
        if chunks.is_empty() {
            break;
        }
        let texts = chunks
            .iter()
            .map(|c| passage_text(&c.title, &c.heading_path, &c.text))
            .collect();
        let vectors = embedder.embed(texts).await?;
        if vectors.len() != chunks.len() {
            // Otherwise the chunks left without a vector would be fetched forever.
            anyhow::bail!(
                "the embedder returned {} vectors for {} chunks",
                vectors.len(),
                chunks.len()
            );
        }
        let updates: Vec<(Uuid, Vec<f32>)> = chunks.iter().map(|c| c.id).zip(vectors).collect();
        state
            .store
            .set_chunk_embeddings(org, &model, &updates)
            .await?;
        embedded += updates.len();
    }
    if embedded > 0 {
        state.store.bump_knowledge_version(org).await?;
    }
    tracing::info!(%org, embedded, model = %model, "re-embedded the knowledge base");
    Ok(())
}

/// Which retrievers a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// BM25 alone.
    Keyword,
    /// Cosine over the embeddings alone.
    Dense,
    /// Both, fused by reciprocal rank; keyword-only when the index has no vectors.
    Hybrid,
}

/// A search: the best `limit` chunks, optionally only from some sources.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub limit: usize,
    pub mode: Mode,
    /// Only chunks of these sources; `None` searches them all.
    pub sources: Option<Vec<Uuid>>,
}

impl SearchOptions {
    pub fn hybrid(limit: usize) -> Self {
        Self {
            limit,
            mode: Mode::Hybrid,
            sources: None,
        }
    }
}

/// One organization's search index, for one knowledge version.
pub struct OrgIndex {
    version: i64,
    pub chunks: Vec<Chunk>,
    keyword: KeywordIndex,
    /// The vectors of the configured model, when there is one.
    dense: Option<DenseIndex>,
    embedder: Option<Arc<Embedder>>,
    /// The model that made the vectors in `dense`.
    model: Option<String>,
}

/// A retrieved chunk.
pub struct Hit<'a> {
    pub chunk: &'a Chunk,
    /// The rank score: BM25 (keyword), cosine (dense) or the RRF sum (hybrid). Only
    /// comparable within one search.
    pub score: f32,
    /// How surely the chunk is about the question, 0 to 1, comparable across questions:
    /// the larger of the share of the question's terms the chunk contains and its
    /// calibrated cosine ([`calibrated_cosine`]). The hand-over threshold applies to it.
    pub confidence: f32,
}

/// Maps MiniLM's cosine onto the 0-to-1 confidence scale that keyword coverage uses.
/// On this model a question and an unrelated passage score about 0.0 to 0.25, and a
/// passage that answers it about 0.5 to 0.8; so 0.25 maps to 0 and 0.75 to 1, and the
/// default threshold of 0.5 sits at a cosine of 0.5. Other models spread differently;
/// the threshold is per-org for that reason.
pub fn calibrated_cosine(cosine: f32) -> f32 {
    ((cosine - 0.25) / 0.5).clamp(0.0, 1.0)
}

impl OrgIndex {
    /// The model whose vectors the index holds (`None`: keyword-only).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Chunks that carry a vector of the index's model.
    pub fn embedded_chunks(&self) -> usize {
        self.dense.as_ref().map_or(0, DenseIndex::len)
    }

    /// The best `limit` chunks for `question`, by hybrid retrieval over every source.
    pub async fn search(&self, question: &str, limit: usize) -> anyhow::Result<Vec<Hit<'_>>> {
        self.search_with(question, &SearchOptions::hybrid(limit))
            .await
    }

    /// Embeds the question (when the mode needs it) and searches.
    pub async fn search_with(
        &self,
        question: &str,
        options: &SearchOptions,
    ) -> anyhow::Result<Vec<Hit<'_>>> {
        let query_vector = match (&self.embedder, &self.dense, options.mode) {
            (_, _, Mode::Keyword) => None,
            (Some(embedder), Some(_), _) => embedder
                .embed(vec![question.to_owned()])
                .await
                .context("embedding the question")?
                .pop(),
            (_, _, Mode::Dense) => {
                anyhow::bail!("dense retrieval needs an embedding model and embedded chunks")
            }
            (_, _, Mode::Hybrid) => None,
        };
        self.search_by_vector(question, query_vector.as_deref(), options)
    }

    /// Searches with a question already embedded (or none: keyword-only). Synchronous
    /// and CPU-bound: a few milliseconds at tens of thousands of chunks.
    pub fn search_by_vector(
        &self,
        question: &str,
        query_vector: Option<&[f32]>,
        options: &SearchOptions,
    ) -> anyhow::Result<Vec<Hit<'_>>> {
        let allowed: Option<Arc<[bool]>> = options.sources.as_ref().map(|sources| {
            self.chunks
                .iter()
                .map(|c| sources.contains(&c.source_id))
                .collect()
        });
        let depth = options.limit.max(FUSION_DEPTH);
        let dense_hits = match (&self.dense, query_vector, options.mode) {
            (Some(dense), Some(vector), Mode::Dense | Mode::Hybrid) => {
                dense.search(vector, depth, allowed.as_deref())
            }
            _ => Vec::new(),
        };
        let ranked: Vec<(usize, f32)> = match options.mode {
            Mode::Dense => dense_hits,
            Mode::Keyword => self
                .keyword
                .search_filtered(question, options.limit, allowed)?,
            Mode::Hybrid if dense_hits.is_empty() => {
                self.keyword
                    .search_filtered(question, options.limit, allowed)?
            }
            Mode::Hybrid => {
                let keyword: Vec<usize> = self
                    .keyword
                    .search_filtered(question, depth, allowed)?
                    .into_iter()
                    .map(|(position, _)| position)
                    .collect();
                let dense: Vec<usize> = dense_hits.iter().map(|(position, _)| *position).collect();
                reciprocal_rank_fusion(&[&keyword, &dense], RRF_K)
            }
        };
        Ok(ranked
            .into_iter()
            .take(options.limit)
            .filter_map(|(position, score)| {
                let chunk = self.chunks.get(position)?;
                let cosine = match (&self.dense, query_vector) {
                    (Some(dense), Some(vector)) => dense.similarity(position, vector),
                    _ => None,
                };
                let words = coverage(
                    question,
                    &format!("{} {} {}", chunk.title, chunk.heading_path, chunk.text),
                );
                Some(Hit {
                    chunk,
                    score,
                    confidence: words.max(cosine.map_or(0.0, calibrated_cosine)),
                })
            })
            .collect())
    }

    /// Builds the index of `chunks`, with the vectors of `embedder`'s model only.
    pub fn build(
        version: i64,
        chunks: Vec<Chunk>,
        embedder: Option<Arc<Embedder>>,
    ) -> anyhow::Result<Self> {
        let model = embedder.as_ref().map(|e| e.model_id());
        let mut index = Self::build_with_model(version, chunks, model)?;
        index.embedder = embedder;
        Ok(index)
    }

    /// Builds the index of `chunks` with the vectors of `model` only, and no embedder:
    /// searches then bring their own query vector ([`OrgIndex::search_by_vector`]).
    pub fn build_with_model(
        version: i64,
        chunks: Vec<Chunk>,
        model: Option<String>,
    ) -> anyhow::Result<Self> {
        let texts: Vec<IndexedText<'_>> = chunks
            .iter()
            .map(|c| IndexedText {
                title: &c.title,
                heading_path: &c.heading_path,
                text: &c.text,
            })
            .collect();
        let keyword = KeywordIndex::build(&texts)?;
        let mut dense: Option<DenseIndex> = None;
        for (position, chunk) in chunks.iter().enumerate() {
            // Vectors of another model live in another space: skipped until re-embedded.
            if chunk.embedding_model.is_none() || chunk.embedding_model != model {
                continue;
            }
            let Some(vector) = chunk.embedding.as_deref().and_then(vector_from_bytes) else {
                continue;
            };
            let index = dense.get_or_insert_with(|| DenseIndex::new(vector.len()));
            if !index.push(position, vector) {
                tracing::warn!(chunk = %chunk.id, "vector of the wrong length skipped");
            }
        }
        Ok(OrgIndex {
            version,
            chunks,
            keyword,
            model: dense.as_ref().and(model),
            dense,
            embedder: None,
        })
    }
}

/// The search indexes of the organizations this instance has answered for, and the
/// embedder that indexing and searching share.
pub struct Indexes {
    by_org: Mutex<HashMap<OrgId, Arc<OrgIndex>>>,
    /// Swapped once when a model downloaded in the background is ready (or failed).
    /// A watch channel's sender as the cell: reading (`borrow`) and swapping
    /// (`send_replace`) are synchronous and never block the runtime, and no receiver is
    /// needed.
    embeddings: tokio::sync::watch::Sender<Arc<Embeddings>>,
}

impl Indexes {
    pub fn new(embeddings: Embeddings) -> Self {
        Self {
            by_org: Mutex::default(),
            embeddings: tokio::sync::watch::Sender::new(Arc::new(embeddings)),
        }
    }

    /// Where vectors come from right now.
    pub fn embeddings(&self) -> Arc<Embeddings> {
        self.embeddings.borrow().clone()
    }

    /// The embedder right now; `None` while retrieval is keyword-only.
    pub fn embedder(&self) -> Option<Arc<Embedder>> {
        self.embeddings().embedder().cloned()
    }

    /// Switches retrieval to `embeddings` and drops the cached indexes, which were
    /// built for the previous embedder (an index embeds its queries with it).
    pub async fn set_embeddings(&self, embeddings: Embeddings) {
        self.embeddings.send_replace(Arc::new(embeddings));
        self.by_org.lock().await.clear();
    }

    /// Drops a deleted organization's index.
    pub async fn forget(&self, org: OrgId) {
        self.by_org.lock().await.remove(&org);
    }

    /// The organization's index, rebuilt first if its knowledge changed.
    pub async fn get(&self, state: &AppState, org: OrgId) -> anyhow::Result<Arc<OrgIndex>> {
        let version = state.store.knowledge_version(org).await?;
        if let Some(index) = self
            .by_org
            .lock()
            .await
            .get(&org)
            .filter(|i| i.version == version)
        {
            return Ok(index.clone());
        }
        let chunks = state.store.org_chunks(org).await?;
        let embedder = self.embedder();
        let index = tokio::task::spawn_blocking(move || OrgIndex::build(version, chunks, embedder))
            .await
            .context("index build task")??;
        let index = Arc::new(index);
        self.by_org.lock().await.insert(org, index.clone());
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_become_chunks_with_their_heading_paths() {
        let chunks = chunk_document(
            None,
            "Help",
            Some("https://acme.test/help"),
            "# Returns\n\nFree within 30 days.\n\n## Refunds\n\nTake 5 to 7 days.\n",
        );
        let paths: Vec<&str> = chunks.iter().map(|c| c.heading_path.as_str()).collect();
        assert_eq!(paths, ["Returns", "Returns › Refunds"]);
        assert_eq!(chunks[1].text, "Take 5 to 7 days.");
        assert_eq!(chunks[0].url.as_deref(), Some("https://acme.test/help"));
    }
}
