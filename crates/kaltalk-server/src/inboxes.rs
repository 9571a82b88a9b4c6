//! Channels as the product knows them: creating a web, email or API inbox, what a web
//! inbox's allowed websites and an email inbox's support address may be, and the snippet
//! a website pastes. The dashboard, the API and the `kaltalk admin` commands share them.

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{EmailSettings, InboxKind, WidgetSettings};
use kaltalk_core::{EmailAddress, OrgId, ValidationError, token};
use kaltalk_store::inboxes::{Inbox, NewInbox};
use kaltalk_store::{Store, StoreError};

/// A support address: a valid email address, without a `+tag` (the tag carries reply
/// tokens), lower-cased.
pub fn parse_support_address(input: &str) -> Result<String, ValidationError> {
    let address = EmailAddress::parse("address", input)?.as_str().to_owned();
    if address
        .split('@')
        .next()
        .is_some_and(|local| local.contains('+'))
    {
        return Err(ValidationError::new(
            "address",
            "Use the address without a +tag (support@example.com): replies use support+…@ to find their conversation.",
        ));
    }
    Ok(address)
}

/// Creates an email inbox for `address`, AI replies off, no IMAP mailbox.
pub async fn create_email_inbox(
    store: &Store,
    org: OrgId,
    name: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Inbox, StoreError> {
    let inbox = NewInbox {
        org_id: org,
        kind: InboxKind::Email,
        name: name.to_owned(),
        public_token: token::generate("em_"),
        identity_secret: token::generate(""),
        settings: WidgetSettings::default(),
        email: Some((address.to_owned(), EmailSettings::default())),
    };
    store.create_inbox(&inbox, now).await
}

/// Creates an inbox of kind `api`: an external system writes as the customer over the
/// API. Its public token is never used by a widget; it only keeps the column's meaning.
pub async fn create_api_inbox(
    store: &Store,
    org: OrgId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Inbox, StoreError> {
    let inbox = NewInbox {
        org_id: org,
        kind: InboxKind::Api,
        name: name.to_owned(),
        public_token: token::generate("ai_"),
        identity_secret: token::generate(""),
        settings: WidgetSettings::default(),
        email: None,
    };
    store.create_inbox(&inbox, now).await
}

/// The one `<script>` line a website pastes to show the widget.
pub fn embed_snippet(public_base: &str, inbox_token: &str) -> String {
    format!(
        r#"<script src="{public_base}/widget.js" data-kaltalk-inbox="{inbox_token}" async></script>"#
    )
}

/// Creates a web inbox with default widget settings and the given allowed domains.
pub async fn create_web_inbox(
    store: &Store,
    org: OrgId,
    name: &str,
    domains: Vec<String>,
    now: DateTime<Utc>,
) -> Result<Inbox, StoreError> {
    let inbox = NewInbox {
        org_id: org,
        kind: InboxKind::Web,
        name: name.to_owned(),
        public_token: token::generate("wi_"),
        identity_secret: token::generate(""),
        settings: WidgetSettings {
            allowed_domains: domains,
            ..WidgetSettings::default()
        },
        email: None,
    };
    store.create_inbox(&inbox, now).await
}

/// Parses allowed websites (one per line or comma-separated; `https://` and paths are
/// cut). A port stays (`localhost:8080`): the widget then works on that port only.
pub fn parse_domains(input: &str) -> Result<Vec<String>, ValidationError> {
    let mut domains = Vec::new();
    for raw in input
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let authority = raw
            .split("://")
            .last()
            .unwrap_or(raw)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
            .trim_start_matches("*.")
            .to_ascii_lowercase();
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority.as_str(), None),
        };
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        let port = match port {
            None => Ok(None),
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .map(Some)
                .ok_or(()),
        };
        let entry = match (valid_host, port) {
            (true, Ok(Some(port))) => format!("{host}:{port}"),
            (true, Ok(None)) => host.to_owned(),
            (true, Err(())) => {
                return Err(ValidationError::new(
                    "allowed_domains",
                    format!("{raw:?} has a port that is not a number from 1 to 65535."),
                ));
            }
            (false, _) => {
                return Err(ValidationError::new(
                    "allowed_domains",
                    format!("{raw:?} is not a domain like example.com."),
                ));
            }
        };
        if !domains.contains(&entry) {
            domains.push(entry);
        }
    }
    Ok(domains)
}
