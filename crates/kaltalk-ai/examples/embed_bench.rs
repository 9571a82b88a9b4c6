//! Throughput of the local embedder on this machine: ~200-token passages (what the
//! knowledge base indexes) and short queries (what a visitor asks).
//!
//! `cargo run --release -p kaltalk-ai --example embed_bench [PASSAGES] [QUERIES]`, with
//! the model from `KALTALK_EMBEDDING_MODEL_DIR` or `models/all-MiniLM-L6-v2`.
#![allow(clippy::print_stdout, reason = "a command-line benchmark")]

use std::path::PathBuf;
use std::time::Instant;

use kaltalk_ai::embed::{MODEL_DIR_ENV, MiniLm};

const WORDS: &str = "customers can return any unused item within thirty days of delivery \
    for a full refund provided the original packaging is intact and the receipt or order \
    number is included refunds are issued to the original payment method once the \
    warehouse has inspected the parcel which usually takes three to five business days \
    shipping costs are not refundable unless the item arrived damaged or was not what \
    you ordered to start a return sign in to your account open the order and choose \
    return items then print the prepaid label our support team answers every message \
    within one business day and live chat is open from nine to six on weekdays";

const QUERIES: &[&str] = &[
    "How do I reset my password?",
    "where is my order",
    "Can I pay by bank transfer?",
    "refund for a damaged item",
    "Do you ship to Canada?",
    "change my delivery address",
    "cancel subscription",
    "Is live chat open on Sunday?",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let passages: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let queries: usize = args.next().map_or(Ok(400), |a| a.parse())?;
    let dir = std::env::var_os(MODEL_DIR_ENV).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"),
        PathBuf::from,
    );

    let started = Instant::now();
    let model = MiniLm::load(&dir)?;
    println!(
        "loaded {} in {:.2} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );

    let passage_texts: Vec<String> = (0..passages).map(|i| passage(&model, i, 200)).collect();
    let tokens: usize = passage_texts.iter().map(|p| model.count_tokens(p)).sum();
    let short: Vec<&str> = (0..queries).map(|i| QUERIES[i % QUERIES.len()]).collect();

    // Warm-up: first-touch allocations and gemm's thread pool.
    model.embed_blocking(&passage_texts[..passages.min(8)])?;

    let started = Instant::now();
    model.embed_blocking(&passage_texts)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "passages: {passages} of {:.0} word-pieces avg in {seconds:.2} s = {:.1} passages/s",
        tokens as f64 / passages as f64,
        passages as f64 / seconds,
    );

    let started = Instant::now();
    model.embed_blocking(&short)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "queries, batched: {queries} in {seconds:.2} s = {:.0} queries/s",
        queries as f64 / seconds
    );

    let started = Instant::now();
    for query in &short {
        model.embed_blocking(&[query])?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "queries, one at a time: {queries} in {seconds:.2} s = {:.0} queries/s ({:.1} ms each)",
        queries as f64 / seconds,
        seconds * 1000.0 / queries as f64,
    );
    Ok(())
}

/// A distinct passage of about `target` word-pieces: words of [`WORDS`] in an order
/// picked by a small LCG seeded with `seed`.
fn passage(model: &MiniLm, seed: usize, target: usize) -> String {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut state = seed as u64 * 2_654_435_761 + 1;
    let mut text = String::new();
    while model.count_tokens(&text) < target {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let word = words[(state >> 33) as usize % words.len()];
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
    }
    text
}
