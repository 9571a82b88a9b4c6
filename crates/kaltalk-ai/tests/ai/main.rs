//! Integration tests: real HTTP servers on loopback port 0, fetched and crawled through
//! the guarded client.

mod helpers;

mod crawl;
mod fetch;
