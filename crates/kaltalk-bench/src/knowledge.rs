//! Knowledge-base benchmarks, in process over the server's own code: retrieval latency
//! at a given number of chunks (synthetic), and ingestion of a real site.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use kaltalk_core::{Clock, SystemClock};
use kaltalk_server::jobs::{self, Ran};
use kaltalk_server::knowledge::{OrgIndex, SearchOptions};
use kaltalk_server::{Config, Kaltalk};
use kaltalk_store::knowledge::{Chunk, vector_to_bytes};
use rand::{Rng, SeedableRng};

use crate::report::Latency;

#[derive(clap::Args)]
pub struct RetrievalArgs {
    /// Chunk counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,50000")]
    chunks: Vec<usize>,
    /// Queries per size.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Vector length (384 for all-MiniLM-L6-v2).
    #[arg(long, default_value_t = 384)]
    dimensions: usize,
}

/// Retrieval over synthetic chunks: ~150 words each, drawn from a Zipf distribution
/// over a 30k-word vocabulary (as word frequencies in real text fall), and random unit
/// vectors. Queries are 6 words from the same distribution and a random vector, so this
/// measures the index (BM25 + exact cosine + fusion + confidence), not query embedding,
/// which `kaltalk eval retrieval` includes.
pub fn retrieval(args: RetrievalArgs) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let zipf = Zipf::new(30_000, 1.07);
    let word = |rng: &mut rand::rngs::StdRng| format!("w{}", zipf.sample(rng));
    let model = "bench:random".to_owned();
    println!(
        "chunks\tp50 ms\tp95 ms\tp99 ms\tbuild s\t(hybrid, {} queries)",
        args.queries
    );
    for &count in &args.chunks {
        let mut chunks = Vec::with_capacity(count);
        for n in 0..count {
            let text: Vec<String> = (0..150).map(|_| word(&mut rng)).collect();
            let vector = random_unit(&mut rng, args.dimensions);
            chunks.push(Chunk {
                id: uuid::Uuid::now_v7(),
                source_id: uuid::Uuid::from_u128((n / 20) as u128),
                ordinal: (n % 20) as i32,
                title: format!("{} {}", word(&mut rng), word(&mut rng)),
                heading_path: word(&mut rng),
                url: None,
                text: text.join(" "),
                embedding: Some(vector_to_bytes(&vector)),
                embedding_model: Some(model.clone()),
            });
        }
        let started = Instant::now();
        let index = OrgIndex::build_with_model(0, chunks, Some(model.clone()))?;
        let build = started.elapsed().as_secs_f64();
        let options = SearchOptions::hybrid(5);
        let mut micros = Vec::with_capacity(args.queries);
        for _ in 0..args.queries {
            let question: Vec<String> = (0..6).map(|_| word(&mut rng)).collect();
            let vector = random_unit(&mut rng, args.dimensions);
            let started = Instant::now();
            let hits = index.search_by_vector(&question.join(" "), Some(&vector), &options)?;
            micros.push(started.elapsed().as_micros() as u64);
            std::hint::black_box(hits);
        }
        let latency = Latency::from_micros(&mut micros).context("no queries")?;
        println!(
            "{count}\t{:.2}\t{:.2}\t{:.2}\t{build:.1}",
            latency.p50, latency.p95, latency.p99
        );
    }
    Ok(())
}

/// Word ranks with probability ∝ 1 / rank^s, by inverse CDF over a cumulative table.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(words: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=words)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(s);
                total
            })
            .collect();
        Self { cumulative }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random::<f64>() * total;
        self.cumulative.partition_point(|&c| c < x) + 1
    }
}

/// A uniformly random direction: normal coordinates (Box-Muller), normalised.
fn random_unit(rng: &mut impl Rng, dimensions: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dimensions)
        .map(|_| {
            let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = rng.random();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[derive(clap::Args)]
pub struct IngestArgs {
    /// The site's start URL (e.g. what ../shared/eval/serve_docs.sh prints).
    #[arg(long)]
    url: String,
    /// Pages read at most.
    #[arg(long, default_value_t = 2000)]
    max_pages: usize,
    /// A directory holding the embedding model; without it, keyword-only ingestion.
    #[arg(long)]
    model_dir: Option<std::path::PathBuf>,
}

/// Ingests a whole site as one site source through the server's job, with a throwaway
/// SQLite database: crawl, extract, chunk, embed, swap. Loopback is allowed (the docs
/// site is served locally).
pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.jobs.run_in_caller();
    config.smtp_listen = String::new(); // no mail here; the default port may be taken
    config.knowledge.allow_loopback = true;
    config.knowledge.max_pages = args.max_pages;
    config.embeddings.model_dir = args.model_dir;
    if config.embeddings.model_dir.is_none() {
        config.embeddings.provider = kaltalk_server::config::EmbeddingProvider::None;
    }
    // Never served: the state only needs an address for its links.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app = Kaltalk::new(listener, config, Arc::new(SystemClock)).await?;
    let state = app.state.clone();
    // Nobody signs in to the bench's organization; the password only has to exist.
    let password = uuid::Uuid::now_v7().simple().to_string();
    let (_, org) = kaltalk_server::admin::create_user(
        &state.store,
        "bench@example.com",
        "Bench",
        &password,
        kaltalk_server::admin::OrgChoice::New("Ingestion bench".into()),
        SystemClock.now(),
    )
    .await?;
    let source = state
        .store
        .add_web_source(org, "site", "Docs", &args.url, None, SystemClock.now())
        .await?;
    let started = Instant::now();
    loop {
        match jobs::run_one(&state, "bench").await? {
            Ran::Nothing => break,
            Ran::Done(_) => {}
            Ran::Failed { kind, state } => anyhow::bail!("{kind} failed ({state:?})"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let source = state.store.get_source(org, source).await?;
    if let Some(error) = &source.error {
        anyhow::bail!("the site failed: {error}");
    }
    println!(
        "{} pages, {} chunks in {seconds:.1} s: {:.1} pages/s, {:.1} chunks/s ({})",
        source.pages,
        source.chunks,
        source.pages as f64 / seconds,
        source.chunks as f64 / seconds,
        state.knowledge.embeddings().describe()
    );
    Ok(())
}
