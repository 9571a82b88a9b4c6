//! The knowledge base on the server: indexing sources into chunks (a job), and the
//! per-organization search index, rebuilt from the store whenever the organization's
//! knowledge version changes, so every instance answers alike.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use kaltalk_ai::chunk::{ChunkInput, chunk_markdown};
use kaltalk_ai::crawl::{CrawlOptions, crawl_site};
use kaltalk_ai::extract::{Limits, extract_file, extract_html};
use kaltalk_ai::fetch::{FetchPolicy, Fetcher};
use kaltalk_ai::keyword::{IndexedText, KeywordIndex, coverage};
use kaltalk_core::OrgId;
use kaltalk_store::Job;
use kaltalk_store::knowledge::{Chunk, NewChunk, Source};
use tokio::sync::Mutex;

use crate::state::AppState;

/// Word-pieces per chunk: MiniLM's window is 256, less room for its special tokens.
const CHUNK_TOKENS: usize = 240;

/// Until the embedding model's own tokenizer counts, word-pieces are estimated from words
/// (English averages about 1.3 word-pieces a word).
fn estimate_tokens(text: &str) -> usize {
    text.split_whitespace().count() * 4 / 3 + 1
}

/// Cuts a document's Markdown into chunks that follow its headings (kaltalk-ai's chunker).
pub fn chunk_document(title: &str, url: Option<&str>, markdown: &str) -> Vec<NewChunk> {
    let input = ChunkInput {
        title: Some(title.to_owned()),
        url: url.map(str::to_owned),
        markdown: markdown.to_owned(),
    };
    chunk_markdown(&input, CHUNK_TOKENS, &estimate_tokens)
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
fn page_chunks(source_title: &str, url: &str, html: &str) -> Result<Vec<NewChunk>, String> {
    let document = extract_html(html, Some(url)).map_err(|e| e.to_string())?;
    let title = document
        .title
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(source_title);
    Ok(chunk_document(title, Some(url), &document.markdown))
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
    if kind == "url" {
        let page = fetcher.fetch(&start).await.map_err(|e| e.to_string())?;
        if !page.is_success() {
            return Err(format!("the page answered HTTP {}", page.status));
        }
        let html = String::from_utf8_lossy(&page.body);
        return Ok((1, page_chunks(title, page.final_url.as_str(), &html)?));
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
        if let Ok(mut page_chunks) = page_chunks(title, page.url.as_str(), &page.html) {
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
    Ok((1, chunk_document(&source.title, None, &document.markdown)))
}

/// The `knowledge.index` job: a source becomes chunks. A source that cannot be read
/// fails alone, with its reason shown; the job itself succeeds so it is not retried.
pub async fn index_source(state: &AppState, job: &Job) -> anyhow::Result<()> {
    let payload = &job.payload.0;
    let field = |name: &str| {
        payload
            .get(name)
            .and_then(|v| v.as_str())
            .with_context(|| format!("payload has no {name}"))
    };
    let org: OrgId = field("org_id")?.parse().context("org_id")?;
    let id: uuid::Uuid = field("source_id")?.parse().context("source_id")?;
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
        Ok((pages, chunks)) if !chunks.is_empty() => {
            state
                .store
                .set_source_state(org, id, "indexing", None, now)
                .await?;
            state
                .store
                .replace_chunks(org, id, pages, &chunks, now)
                .await?;
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

/// One organization's search index, for one knowledge version.
pub struct OrgIndex {
    version: i64,
    pub chunks: Vec<Chunk>,
    keyword: KeywordIndex,
}

/// A retrieved chunk.
pub struct Hit<'a> {
    pub chunk: &'a Chunk,
    pub score: f32,
    /// Share of the question's terms the chunk contains (0 to 1).
    pub confidence: f32,
}

impl OrgIndex {
    pub fn search(&self, question: &str, limit: usize) -> anyhow::Result<Vec<Hit<'_>>> {
        let hits = self.keyword.search(question, limit)?;
        Ok(hits
            .into_iter()
            .filter_map(|(position, score)| self.chunks.get(position).map(|chunk| (chunk, score)))
            .map(|(chunk, score)| Hit {
                chunk,
                score,
                confidence: coverage(
                    question,
                    &format!("{} {} {}", chunk.title, chunk.heading_path, chunk.text),
                ),
            })
            .collect())
    }
}

/// The search indexes of the organizations this instance has answered for.
#[derive(Default)]
pub struct Indexes {
    by_org: Mutex<HashMap<OrgId, Arc<OrgIndex>>>,
}

impl Indexes {
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
        let index = tokio::task::spawn_blocking(move || -> anyhow::Result<OrgIndex> {
            let texts: Vec<IndexedText<'_>> = chunks
                .iter()
                .map(|c| IndexedText {
                    title: &c.title,
                    heading_path: &c.heading_path,
                    text: &c.text,
                })
                .collect();
            let keyword = KeywordIndex::build(&texts)?;
            Ok(OrgIndex {
                version,
                chunks,
                keyword,
            })
        })
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
