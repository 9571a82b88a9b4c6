//! kaltalk-ai's integration tests, one binary.

mod embed_local;
mod embed_remote;
mod helpers;
