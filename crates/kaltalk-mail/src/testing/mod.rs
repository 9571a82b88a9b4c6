//! Test support shared with other crates' tests (feature `testing`): real servers started on
//! loopback, never mocks.

pub mod dovecot;
