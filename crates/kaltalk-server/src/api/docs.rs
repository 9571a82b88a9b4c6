//! Schemas of API bodies that handlers build as JSON from the store's types. They only
//! describe; the schemathesis run (`scripts/schemathesis.sh`) checks real responses
//! against them, so a change of shape that forgets them fails the test command.
#![allow(dead_code)] // Never constructed: read by `utoipa` only.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// A conversation as lists show it.
#[derive(ToSchema)]
pub struct Conversation {
    id: Uuid,
    inbox_id: Uuid,
    contact_id: Uuid,
    #[schema(pattern = "^(open|pending|resolved|snoozed)$")]
    status: String,
    snoozed_until: Option<DateTime<Utc>>,
    assignee_id: Option<Uuid>,
    last_message_at: DateTime<Utc>,
    agent_last_seen_at: Option<DateTime<Utc>>,
    contact_last_seen_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    /// Who answers now: `bot`, `waiting_human` or `human`.
    #[schema(pattern = "^(bot|waiting_human|human)$")]
    handling: String,
    bot_turns: i32,
    /// An email conversation's subject.
    subject: Option<String>,
    /// The team it belongs to.
    team_id: Option<Uuid>,
    contact_name: Option<String>,
    contact_email: Option<String>,
    last_message: Option<String>,
    /// Customer messages since an agent last looked.
    unread: i64,
    /// Only in a search's answer (`q`): the newest of its messages that matched; absent
    /// when only the contact's name or email did.
    matched_text: Option<String>,
}

/// A page of conversations, newest first.
#[derive(ToSchema)]
pub struct ConversationPage {
    data: Vec<Conversation>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A file on a message.
#[derive(ToSchema)]
pub struct Attachment {
    id: Uuid,
    filename: String,
    content_type: String,
    size: i64,
    /// Where the file is downloaded from.
    url: String,
}

/// One message of a conversation (private notes included).
#[derive(ToSchema)]
pub struct Message {
    id: Uuid,
    conversation_id: Uuid,
    /// `contact`, `agent`, `bot` or `system`.
    #[schema(pattern = "^(contact|agent|bot|system)$")]
    sender: String,
    sender_name: Option<String>,
    /// `text`, `note` (private) or `event`.
    #[schema(pattern = "^(text|note|event)$")]
    kind: String,
    text: String,
    client_id: Option<String>,
    created_at: DateTime<Utc>,
    /// Extra facts (a bot answer's citations).
    metadata: Option<Value>,
    attachments: Vec<Attachment>,
}

/// A page of a conversation's messages, oldest first.
#[derive(ToSchema)]
pub struct MessageList {
    data: Vec<Message>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A webhook endpoint. `secret` is included when it is created or read alone.
#[derive(ToSchema)]
pub struct Webhook {
    id: Uuid,
    url: String,
    /// The events sent; empty means every event.
    events: Vec<String>,
    enabled: bool,
    /// Why KalTalk turned it off (e.g. failing for 24 hours).
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Signs each delivery: `KalTalk-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")`.
    #[schema(nullable = false)]
    secret: Option<String>,
}

#[derive(ToSchema)]
pub struct WebhookList {
    data: Vec<Webhook>,
    /// Null on the last page.
    next_cursor: Option<String>,
}

/// An event a webhook endpoint can subscribe to.
#[derive(Serialize, ToSchema)]
pub enum EventName {
    #[serde(rename = "conversation.created")]
    ConversationCreated,
    #[serde(rename = "conversation.updated")]
    ConversationUpdated,
    #[serde(rename = "conversation.escalated")]
    ConversationEscalated,
    #[serde(rename = "message.created")]
    MessageCreated,
    #[serde(rename = "contact.created")]
    ContactCreated,
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "contact.deleted")]
    ContactDeleted,
}

/// What `webhooks::parse_url` accepts: an http(s) URL with a host name or IPv4 address,
/// any port, path, query and fragment, and no credentials. It leaves out only what no
/// generator should produce (IPv6 literals, labels with `--`, which IDNA reads as
/// punycode), so every URL it matches is one the server takes; a test checks both ways.
/// (The schemas below repeat it: utoipa takes only a literal there; a test compares.)
pub const WEBHOOK_URL_PATTERN: &str = "^[Hh][Tt][Tt][Pp][Ss]?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|([A-Za-z0-9](-?[A-Za-z0-9]){0,62}\\.)*[A-Za-z](-?[A-Za-z0-9]){0,62})(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0))?(/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*(\\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?(#[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$";

/// A new webhook endpoint. Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where KalTalk POSTs events, e.g. `https://example.com/kaltalk`.
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|([A-Za-z0-9](-?[A-Za-z0-9]){0,62}\\.)*[A-Za-z](-?[A-Za-z0-9]){0,62})(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0))?(/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*(\\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?(#[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$",
        max_length = 2000
    )]
    url: String,
    /// Event names; omitted, null or empty: every event.
    events: Option<Vec<EventName>>,
}

/// Fields to change; omitted (or null) ones stay. Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|([A-Za-z0-9](-?[A-Za-z0-9]){0,62}\\.)*[A-Za-z](-?[A-Za-z0-9]){0,62})(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0))?(/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*(\\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?(#[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$",
        max_length = 2000
    )]
    url: Option<String>,
    events: Option<Vec<EventName>>,
    enabled: Option<bool>,
}

/// One event sent to one endpoint, with its retries.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    /// Also sent as `KalTalk-Delivery`; the same across retries and replays.
    id: Uuid,
    webhook_id: Uuid,
    event_id: Option<Uuid>,
    /// The event name, e.g. `conversation.created`, or `ping`.
    #[serde(rename = "type")]
    kind: String,
    state: String,
    attempts: i32,
    last_status: Option<i32>,
    last_latency_ms: Option<i64>,
    created_at: DateTime<Utc>,
    first_attempt_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
pub struct DeliveryList {
    data: Vec<Delivery>,
    /// Null on the last page.
    next_cursor: Option<String>,
}

/// A delivery with the exact body sent and every attempt.
#[derive(Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    delivery: Delivery,
    request_body: String,
    attempt_log: Vec<Attempt>,
}

/// One try at delivering.
#[derive(Serialize, ToSchema)]
pub struct Attempt {
    id: Uuid,
    attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; null when it could not be reached.
    response_status: Option<i32>,
    latency_ms: i64,
    succeeded: bool,
    error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::WEBHOOK_URL_PATTERN;

    #[test]
    fn the_webhook_url_pattern_is_what_the_server_accepts() {
        let doc = serde_json::to_value(crate::api::openapi()).expect("document");
        for schema in ["NewWebhook", "WebhookChange"] {
            assert_eq!(
                doc["components"]["schemas"][schema]["properties"]["url"]["pattern"],
                WEBHOOK_URL_PATTERN,
                "{schema}"
            );
        }
        let pattern = regex::Regex::new(WEBHOOK_URL_PATTERN).expect("a valid pattern");
        for accepted in [
            "https://example.com/kaltalk",
            "http://hooks.example.com:8443/in/kaltalk?token=abc&v=2",
            "https://a-very-long-subdomain-name-that-has-more-than-thirty-chars.example.com/",
            "https://x.y.z.example.co.uk:65535/a/b/c#events",
            "http://192.168.1.20:3000/hook",
            "HTTPS://EXAMPLE.COM/Hook",
        ] {
            assert!(
                crate::webhooks::parse_url("url", accepted).is_ok(),
                "the server takes {accepted}"
            );
            assert!(pattern.is_match(accepted), "the document takes {accepted}");
        }
        for refused in [
            "ftp://example.com/",
            "https://user:secret@example.com/",
            "https://example.com:99999/",
            "example.com/hook",
        ] {
            assert!(
                crate::webhooks::parse_url("url", refused).is_err(),
                "{refused}"
            );
            assert!(!pattern.is_match(refused), "{refused}");
        }
    }
}
