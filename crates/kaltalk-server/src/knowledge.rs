//! The knowledge base on the server: indexing sources into chunks (a job), and the
//! per-organization search index, rebuilt from the store whenever the organization's
//! knowledge version changes, so every instance answers alike.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use kaltalk_ai::keyword::{IndexedText, KeywordIndex, coverage};
use kaltalk_core::OrgId;
use kaltalk_store::Job;
use kaltalk_store::knowledge::{Chunk, NewChunk};
use tokio::sync::Mutex;

use crate::state::AppState;

/// Words per chunk: about 256 MiniLM word-pieces, the embedding model's window.
const CHUNK_WORDS: usize = 180;

/// Cuts Markdown into chunks that follow its headings and stay under `CHUNK_WORDS`.
pub fn chunk_markdown(title: &str, url: Option<&str>, markdown: &str) -> Vec<NewChunk> {
    let mut chunks = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut paragraph_words: Vec<String> = Vec::new();
    let mut buffer: Vec<String> = Vec::new();
    let flush =
        |buffer: &mut Vec<String>, headings: &[(usize, String)], chunks: &mut Vec<NewChunk>| {
            let text = buffer.join("\n\n").trim().to_owned();
            if !text.is_empty() {
                chunks.push(NewChunk {
                    title: title.to_owned(),
                    heading_path: headings
                        .iter()
                        .map(|(_, h)| h.as_str())
                        .collect::<Vec<_>>()
                        .join(" › "),
                    url: url.map(str::to_owned),
                    text,
                    embedding: None,
                    embedding_model: None,
                });
            }
            buffer.clear();
        };
    let words_in = |buffer: &[String]| {
        buffer
            .iter()
            .map(|p| p.split_whitespace().count())
            .sum::<usize>()
    };
    for line in markdown.lines().chain(std::iter::once("")) {
        let trimmed = line.trim();
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && trimmed[level..].starts_with(' ') {
            if !paragraph_words.is_empty() {
                buffer.push(paragraph_words.join(" "));
                paragraph_words.clear();
            }
            flush(&mut buffer, &headings, &mut chunks);
            headings.retain(|(l, _)| *l < level);
            headings.push((level, trimmed[level..].trim().to_owned()));
        } else if trimmed.is_empty() {
            if !paragraph_words.is_empty() {
                let paragraph = paragraph_words.join(" ");
                paragraph_words.clear();
                if words_in(&buffer) + paragraph.split_whitespace().count() > CHUNK_WORDS {
                    flush(&mut buffer, &headings, &mut chunks);
                }
                // A paragraph longer than a chunk is cut at word boundaries.
                let words: Vec<&str> = paragraph.split_whitespace().collect();
                for piece in words.chunks(CHUNK_WORDS) {
                    buffer.push(piece.join(" "));
                    if piece.len() == CHUNK_WORDS {
                        flush(&mut buffer, &headings, &mut chunks);
                    }
                }
            }
        } else {
            paragraph_words.push(trimmed.to_owned());
        }
    }
    flush(&mut buffer, &headings, &mut chunks);
    chunks
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
    state
        .store
        .set_source_state(org, id, "indexing", None, state.now())
        .await?;
    let chunks = match source.kind.as_str() {
        "text" => chunk_markdown(
            &source.title,
            source.url.as_deref(),
            source.body.as_deref().unwrap_or_default(),
        ),
        other => {
            let reason = format!("{other} sources are not supported yet");
            state
                .store
                .set_source_state(org, id, "failed", Some(&reason), state.now())
                .await?;
            return Ok(());
        }
    };
    if chunks.is_empty() {
        state
            .store
            .set_source_state(
                org,
                id,
                "failed",
                Some("The source has no text to learn from."),
                state.now(),
            )
            .await?;
        return Ok(());
    }
    state
        .store
        .replace_chunks(org, id, 1, &chunks, state.now())
        .await?;
    Ok(())
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
    fn chunks_follow_headings_and_stay_small() {
        let long = "word ".repeat(400);
        let markdown = format!(
            "Intro line.\n\n# Returns\n\nFree within 30 days.\n\n## Refunds\n\nTake 5 to 7 days.\n\n# Shipping\n\n{long}\n"
        );
        let chunks = chunk_markdown("Help", Some("https://acme.test/help"), &markdown);
        let paths: Vec<&str> = chunks.iter().map(|c| c.heading_path.as_str()).collect();
        assert_eq!(&paths[..3], ["", "Returns", "Returns › Refunds"]);
        assert!(paths[3..].iter().all(|p| *p == "Shipping"));
        assert!(
            chunks
                .iter()
                .all(|c| c.text.split_whitespace().count() <= CHUNK_WORDS)
        );
        assert_eq!(chunks[2].text, "Take 5 to 7 days.");
        assert_eq!(chunks[0].url.as_deref(), Some("https://acme.test/help"));
    }
}
