//! What can go wrong while polling a mailbox, worded for the person who configured it.

use std::io;

/// Why one poll of an IMAP mailbox failed. Every variant's message names what to check.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error(
        "could not connect to the IMAP server {host}:{port}: {source}; check the host, the port and that the server is reachable from here"
    )]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("TLS with the IMAP server {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error(
        "the IMAP server refused the login for user {user}; check the user name and password ({server_said})"
    )]
    Login { user: String, server_said: String },
    #[error(
        "the IMAP server cannot open the mailbox {mailbox:?}: {reason}; check that the mailbox exists (usually \"INBOX\")"
    )]
    Mailbox { mailbox: String, reason: String },
    #[error("the IMAP server answered something unexpected while {step}: {detail}")]
    Protocol { step: &'static str, detail: String },
    #[error("the IMAP server did not answer within {seconds} s while {step}; try again later")]
    Timeout { step: &'static str, seconds: u64 },
}
