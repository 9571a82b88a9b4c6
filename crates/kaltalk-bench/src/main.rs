//! `kaltalk-bench`: load generators that start a real KalTalk server, drive it over HTTP
//! and WebSocket like its clients do, and print what they measured.

// The report on standard output is this tool's interface.
#![allow(clippy::print_stdout)]

mod ai_turn;
mod chat;
mod conversations;
mod knowledge;
mod push;
mod report;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "kaltalk-bench", version, about = "Load generators for KalTalk")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Live chat: visitors write through the widget API while their widget sockets and
    /// the agents' inbox sockets are open; prints delivery latency, throughput and the
    /// server's memory.
    Chat(chat::ChatArgs),
    /// The AI agent: the platform's own time per turn (retrieval, prompt, database
    /// writes, realtime), with a fake chat model on loopback that answers at once.
    AiTurn(ai_turn::AiTurnArgs),
    /// Knowledge-base retrieval latency (hybrid: BM25 + exact cosine + RRF) at given
    /// numbers of synthetic chunks, in process.
    Retrieval(knowledge::RetrievalArgs),
    /// Ingestion of a real site (crawl, extract, chunk, embed, swap), in process.
    Ingest(knowledge::IngestArgs),
    /// Web Push: from a handover to the push reaching the loopback push service (p50 /
    /// p95), and pushes per second in a burst.
    Push(push::PushArgs),
    /// Conversation data at scale: fills a realistic history (real sentences, a contact
    /// per conversation) and measures every list view, search shape and the inbox page
    /// over HTTP (p50 / p95 / max).
    Conversations(conversations::ConversationsArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Chat(args) => chat::run(args).await,
        Command::AiTurn(args) => ai_turn::run(args).await,
        Command::Retrieval(args) => knowledge::retrieval(args),
        Command::Ingest(args) => knowledge::ingest(args).await,
        Command::Push(args) => push::run(args).await,
        Command::Conversations(args) => conversations::run(args).await,
    }
}
