//! kaltalk-ai's integration tests: one binary, a module per area (fetch and crawl run
//! real HTTP servers on loopback port 0).

mod fixtures;
mod helpers;

mod chunking;
mod crawl;
mod extract_files;
mod extract_html;
mod fetch;
