//! kaltalk-ai's integration tests: one binary, a module per area (fetch and crawl run
//! real HTTP servers on loopback port 0; embeddings run the real MiniLM model).

mod embed_helpers;
mod fixtures;
mod helpers;

mod chunking;
mod crawl;
mod embed_download;
mod embed_local;
mod embed_remote;
mod extract_files;
mod extract_html;
mod fetch;
