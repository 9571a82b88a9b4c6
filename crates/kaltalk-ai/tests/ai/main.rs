//! kaltalk-ai's integration tests: one binary, a module per area.

mod chunking;
mod extract_files;
mod extract_html;
mod fixtures;
