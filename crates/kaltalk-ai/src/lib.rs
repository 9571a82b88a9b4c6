//! KalTalk's knowledge base and AI agent: turning documents and web pages into clean
//! text, cutting it into chunks that fit the embedding model, embedding and retrieving
//! them, and answering from them.

pub mod chat;
pub mod chunk;
pub mod crawl;
pub mod embed;
pub mod extract;
pub mod fetch;
pub mod hybrid;
pub mod keyword;
