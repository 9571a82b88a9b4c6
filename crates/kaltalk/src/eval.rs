//! `kaltalk eval retrieval`: measures the knowledge base's retrieval on a public test
//! collection (BEIR layout: corpus.jsonl, queries.jsonl, qrels.tsv) through the real
//! store, indexing pipeline and search index, with the metrics of trec_eval.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kaltalk_core::{Clock, OrgId, SystemClock};
use kaltalk_server::jobs::{self, Ran};
use kaltalk_server::knowledge::{Mode, SearchOptions};
use kaltalk_server::{AppState, Config, Kaltalk};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Chunks retrieved per query before they are grouped into documents: enough for the
/// 20 documents recall@20 needs even when several chunks share a document.
const CHUNKS_PER_QUERY: usize = 100;

/// What the evaluation remembers in its data directory, so a rerun on the same corpus
/// reuses the organization (and its vectors) instead of ingesting again.
const STATE_FILE: &str = "eval-retrieval.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalMode {
    Bm25,
    Dense,
    Hybrid,
}

impl EvalMode {
    fn mode(self) -> Mode {
        match self {
            EvalMode::Bm25 => Mode::Keyword,
            EvalMode::Dense => Mode::Dense,
            EvalMode::Hybrid => Mode::Hybrid,
        }
    }
}

pub struct RetrievalArgs {
    pub corpus: PathBuf,
    pub queries: PathBuf,
    pub qrels: PathBuf,
    pub mode: EvalMode,
    pub run_out: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Document {
    #[serde(alias = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct Query {
    #[serde(alias = "_id")]
    id: String,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct Remembered {
    corpus_sha256: String,
    org_id: OrgId,
    /// Source id → document id.
    documents: HashMap<Uuid, String>,
}

#[derive(Serialize)]
struct RunLine<'a> {
    query_id: &'a str,
    doc_ids: Vec<&'a str>,
}

/// Scores of one run, averaged over the judged queries.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Scores {
    pub recall_5: f64,
    pub recall_20: f64,
    pub mrr_10: f64,
    pub ndcg_10: f64,
    pub queries: usize,
}

fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).with_context(|| {
            format!("{}:{}: not the expected JSON line", path.display(), n + 1)
        })?);
    }
    Ok(out)
}

/// `query-id <TAB> doc-id <TAB> score`, an optional header first; score > 0 is relevant.
pub fn read_qrels(text: &str) -> anyhow::Result<HashMap<String, HashMap<String, f64>>> {
    let mut qrels: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (query, doc, score) = match parts.as_slice() {
            [] => continue,
            [q, d, s] | [q, _, d, s] => (*q, *d, *s),
            _ => bail!("qrels line {}: expected 3 or 4 columns", n + 1),
        };
        let Ok(score) = score.parse::<f64>() else {
            if n == 0 {
                continue; // the header
            }
            bail!("qrels line {}: score {score:?} is not a number", n + 1);
        };
        let entry = qrels.entry(query.to_owned()).or_default();
        let best = entry.get(doc).copied().unwrap_or(score).max(score);
        entry.insert(doc.to_owned(), best);
    }
    Ok(qrels)
}

/// recall@5, recall@20, MRR@10 and nDCG@10 as trec_eval computes them (linear gains),
/// averaged over every judged query with a relevant document; a judged query missing
/// from `run` scores 0. Matches ../shared/eval/score.py.
pub fn score(
    run: &HashMap<String, Vec<String>>,
    qrels: &HashMap<String, HashMap<String, f64>>,
) -> Scores {
    let mut scores = Scores::default();
    for (query, judged) in qrels {
        let relevant = judged.values().filter(|s| **s > 0.0).count();
        if relevant == 0 {
            continue;
        }
        scores.queries += 1;
        let empty = Vec::new();
        let ranked = run.get(query).unwrap_or(&empty);
        let gain = |doc: &String| judged.get(doc).copied().filter(|s| *s > 0.0);
        let recall = |k: usize| {
            ranked.iter().take(k).filter(|d| gain(d).is_some()).count() as f64 / relevant as f64
        };
        scores.recall_5 += recall(5);
        scores.recall_20 += recall(20);
        if let Some(rank) = ranked.iter().take(10).position(|d| gain(d).is_some()) {
            scores.mrr_10 += 1.0 / (rank + 1) as f64;
        }
        let dcg: f64 = ranked
            .iter()
            .take(10)
            .enumerate()
            .filter_map(|(i, d)| gain(d).map(|g| g / (i as f64 + 2.0).log2()))
            .sum();
        let mut ideal: Vec<f64> = judged.values().copied().filter(|s| *s > 0.0).collect();
        ideal.sort_by(|a, b| b.total_cmp(a));
        let idcg: f64 = ideal
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, g)| g / (i as f64 + 2.0).log2())
            .sum();
        if idcg > 0.0 {
            scores.ndcg_10 += dcg / idcg;
        }
    }
    if scores.queries > 0 {
        let n = scores.queries as f64;
        scores.recall_5 /= n;
        scores.recall_20 /= n;
        scores.mrr_10 /= n;
        scores.ndcg_10 /= n;
    }
    scores
}

/// The `p`-th percentile (0–100) by nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn corpus_fingerprint(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The server's state over a SQLite database in `data_dir`, without serving: the same
/// store, jobs and search index the server runs. The loopback listener is never served;
/// `Kaltalk::new` only reads its address.
async fn open_state(config: &Config, data_dir: &Path) -> anyhow::Result<AppState> {
    let mut config = config.clone();
    config.data_dir = data_dir.to_owned();
    config.database_url = None; // never the operator's database
    config.jobs.run_in_caller();
    config.smtp_listen = String::new(); // no mail here; the default port may be taken
    // A download is a serving server's background task; an evaluation on a scratch
    // directory would only drop 90 MB there. It uses a configured model directory.
    config.embeddings.download = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app = Kaltalk::new(listener, config, Arc::new(SystemClock)).await?;
    Ok(app.state.clone())
}

/// Runs queued jobs until none is left; `false` if any failed.
async fn drain_jobs(state: &AppState, total: usize) -> anyhow::Result<bool> {
    let mut done: usize = 0;
    let mut ok = true;
    let started = Instant::now();
    loop {
        match jobs::run_one(state, "eval").await? {
            Ran::Nothing => return Ok(ok),
            Ran::Done(_) => done += 1,
            Ran::Failed { kind, state } => {
                ok = false;
                eprintln!("a {kind} job failed ({state:?})");
                continue;
            }
        }
        if done.is_multiple_of(250) {
            eprintln!(
                "indexed {done}/{total} documents ({:.1} documents/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Ingests the corpus into a fresh organization, or finds the one a previous run made.
async fn prepare(
    state: &AppState,
    data_dir: &Path,
    corpus_path: &Path,
) -> anyhow::Result<(OrgId, HashMap<Uuid, String>)> {
    let fingerprint = corpus_fingerprint(corpus_path)?;
    let state_path = data_dir.join(STATE_FILE);
    if let Ok(text) = std::fs::read_to_string(&state_path) {
        let remembered: Remembered = serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged; delete it", state_path.display()))?;
        if remembered.corpus_sha256 == fingerprint {
            // The model may have changed since: the server queued a re-embedding at
            // start, which runs here; otherwise nothing is embedded again.
            let pending = drain_jobs(state, remembered.documents.len()).await?;
            eprintln!(
                "reusing the index in {} ({} documents)",
                data_dir.display(),
                remembered.documents.len()
            );
            if !pending {
                bail!("re-embedding failed; see the messages above");
            }
            return Ok((remembered.org_id, remembered.documents));
        }
        bail!(
            "{} holds another corpus's index; give another --data-dir",
            data_dir.display()
        );
    }

    let documents: Vec<Document> = read_lines(corpus_path)?;
    if documents.is_empty() {
        bail!("{} holds no documents", corpus_path.display());
    }
    let now = SystemClock.now();
    // Nobody signs in to the evaluation's organization; the password only has to exist.
    let password = Uuid::now_v7().simple().to_string();
    let (_, org) = kaltalk_server::admin::create_user(
        &state.store,
        "evaluation@example.com",
        "Evaluation",
        &password,
        kaltalk_server::admin::OrgChoice::New("Retrieval evaluation".into()),
        now,
    )
    .await?;
    let mut by_source = HashMap::with_capacity(documents.len());
    for doc in &documents {
        let title = if doc.title.trim().is_empty() {
            doc.id.as_str()
        } else {
            doc.title.as_str()
        };
        let source = state
            .store
            .add_text_source(org, title, &doc.text, SystemClock.now())
            .await?;
        by_source.insert(source, doc.id.clone());
    }
    eprintln!(
        "indexing {} documents ({})",
        documents.len(),
        state.knowledge.embeddings().describe()
    );
    let started = Instant::now();
    let all_ok = drain_jobs(state, documents.len()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let chunks: i64 = state
        .store
        .list_sources(org)
        .await?
        .iter()
        .map(|s| i64::from(s.chunks))
        .sum();
    eprintln!(
        "indexed {} documents, {chunks} chunks in {seconds:.0} s ({:.1} chunks/s)",
        documents.len(),
        chunks as f64 / seconds
    );
    if !all_ok {
        bail!("some documents failed to index; see the messages above");
    }
    let remembered = Remembered {
        corpus_sha256: fingerprint,
        org_id: org,
        documents: by_source,
    };
    std::fs::write(&state_path, serde_json::to_vec(&remembered)?)
        .with_context(|| format!("writing {}", state_path.display()))?;
    Ok((remembered.org_id, remembered.documents))
}

#[allow(clippy::print_stdout)] // the report is the command's output
pub async fn retrieval(config: &Config, args: RetrievalArgs) -> anyhow::Result<Scores> {
    let queries: Vec<Query> = read_lines(&args.queries)?;
    let qrels_text = std::fs::read_to_string(&args.qrels)
        .with_context(|| format!("reading {}", args.qrels.display()))?;
    let qrels = read_qrels(&qrels_text)?;

    let scratch;
    let data_dir = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            scratch = tempfile::tempdir()?;
            scratch.path().to_owned()
        }
    };
    let state = open_state(config, &data_dir).await?;
    if args.mode != EvalMode::Bm25 && state.knowledge.embedder().is_none() {
        bail!(
            "--mode {:?} needs an embedding model: {}",
            args.mode,
            state.knowledge.embeddings().describe()
        );
    }
    let (org, documents) = prepare(&state, &data_dir, &args.corpus).await?;
    let index = state.knowledge.get(&state, org).await?;
    eprintln!(
        "{} chunks, {} with vectors of {}",
        index.chunks.len(),
        index.embedded_chunks(),
        index.model().unwrap_or("no model")
    );

    let options = SearchOptions {
        limit: CHUNKS_PER_QUERY,
        mode: args.mode.mode(),
        sources: None,
    };
    let mut run: HashMap<String, Vec<String>> = HashMap::with_capacity(queries.len());
    let mut latencies = Vec::with_capacity(queries.len());
    let mut order = Vec::with_capacity(queries.len());
    for query in &queries {
        let started = Instant::now();
        let hits = index.search_with(&query.text, &options).await?;
        latencies.push(started.elapsed());
        // A document ranks by its best chunk.
        let mut seen = HashSet::new();
        let ranked: Vec<String> = hits
            .iter()
            .filter_map(|hit| documents.get(&hit.chunk.source_id))
            .filter(|doc| seen.insert(doc.as_str()))
            .cloned()
            .collect();
        run.insert(query.id.clone(), ranked);
        order.push(query.id.as_str());
    }
    latencies.sort();

    if let Some(path) = &args.run_out {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for id in &order {
            let line = RunLine {
                query_id: id,
                doc_ids: run[*id].iter().map(String::as_str).collect(),
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }

    let scores = score(&run, &qrels);
    println!("mode       {:?}", args.mode);
    println!("queries    {} judged", scores.queries);
    println!("recall@5   {:.4}", scores.recall_5);
    println!("recall@20  {:.4}", scores.recall_20);
    println!("MRR@10     {:.4}", scores.mrr_10);
    println!("nDCG@10    {:.4}", scores.ndcg_10);
    println!(
        "latency    p50 {:.1} ms, p95 {:.1} ms (query embedding included)",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 95.0).as_secs_f64() * 1e3
    );
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(q, docs)| (q.to_string(), docs.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn metrics_follow_trec_eval() {
        let qrels =
            read_qrels("query-id\tcorpus-id\tscore\nq1\ta\t1\nq1\tb\t1\nq2\tc\t2\nq3\td\t0\n")
                .expect("qrels");
        // q1: relevant at ranks 2 and 7; q2: absent from the run; q3 has nothing relevant.
        let scores = score(
            &run(&[("q1", &["x", "a", "y", "z", "w", "v", "b"]), ("q3", &["d"])]),
            &qrels,
        );
        assert_eq!(scores.queries, 2);
        assert!((scores.recall_5 - 0.25).abs() < 1e-12);
        assert!((scores.recall_20 - 0.5).abs() < 1e-12);
        assert!((scores.mrr_10 - 0.25).abs() < 1e-12);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 8f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((scores.ndcg_10 - dcg / idcg / 2.0).abs() < 1e-12);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let sorted: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(10));
        assert_eq!(percentile(&sorted, 95.0), Duration::from_millis(19));
        assert_eq!(percentile(&[], 95.0), Duration::ZERO);
    }
}
