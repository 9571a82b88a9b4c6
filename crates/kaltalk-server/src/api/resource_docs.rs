//! Schemas of the contacts, inboxes, knowledge sources and single-conversation bodies,
//! which handlers read and write as JSON field by field. Like `docs`, they only describe;
//! `scripts/schemathesis.sh` checks real answers against them. Request bodies carry
//! `deny_unknown_fields` only so the document says `additionalProperties: false`: the
//! handlers refuse unknown fields (a typo is a 400, not silently ignored).
#![allow(dead_code)] // Never constructed: read by `utoipa` only.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::docs::Message;

/// One conversation with its labels.
#[derive(ToSchema)]
pub struct ConversationDetail {
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
    labels: Vec<String>,
}

/// Fields to change; omitted ones stay. Each change is its own event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationChange {
    /// `open`, `pending`, `resolved`, or `snoozed` with `snoozed_until`.
    #[schema(pattern = "^(open|pending|resolved|snoozed)$")]
    status: Option<String>,
    /// Until when a snoozed conversation sleeps (RFC 3339, in the future); only with
    /// `"status": "snoozed"`.
    snoozed_until: Option<DateTime<Utc>>,
    /// A member's user id; null unassigns.
    assignee_id: Option<Uuid>,
    /// One of the organization's teams (`GET /teams`); null for no team.
    team_id: Option<Uuid>,
    /// The full list of labels (an empty list removes them all), at most 20; each 1 to 40
    /// letters, digits, dashes or underscores.
    #[schema(nullable = false, max_items = 20)]
    labels: Option<Vec<String>>,
}

/// A reply or note by the team, or the customer's message on an api inbox.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    #[schema(min_length = 1, max_length = 10000)]
    text: String,
    /// `reply` (default; sent to the customer), `note` (the team only) or `incoming` (the
    /// customer's message, api inboxes only).
    #[schema(pattern = "^(reply|note|incoming)$")]
    kind: Option<String>,
}

/// A message with files: `text` may be empty when a file is attached.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageWithFiles {
    #[schema(nullable = false, max_length = 10000)]
    text: Option<String>,
    /// As in the JSON form.
    #[schema(nullable = false, pattern = "^(reply|note|incoming)$")]
    kind: Option<String>,
    /// Up to 5 images (PNG, JPEG, GIF, WebP) or PDFs of at most 10 MB each, each as a
    /// part named `file`.
    #[schema(value_type = Option<Vec<String>>, nullable = false, content_media_type = "application/octet-stream", max_items = 5)]
    file: Option<Vec<Vec<u8>>>,
}

/// What KalTalk learned about a contact's browser and page.
#[derive(ToSchema)]
pub struct ContactDetails {
    browser: Option<String>,
    browser_version: Option<String>,
    os: Option<String>,
    os_version: Option<String>,
    /// `desktop`, `mobile`, `tablet` or `bot`.
    device_type: Option<String>,
    ip: Option<String>,
    /// ISO 3166-1 alpha-2.
    country: Option<String>,
    timezone: Option<String>,
    language: Option<String>,
    page_url: Option<String>,
    page_title: Option<String>,
    referrer: Option<String>,
}

/// A customer.
#[derive(ToSchema)]
pub struct Contact {
    id: Uuid,
    name: Option<String>,
    email: Option<String>,
    /// Your system's id for this customer; unique in the organization.
    external_id: Option<String>,
    /// Your own fields, e.g. `{"plan": "pro"}`.
    #[schema(value_type = Object)]
    attributes: Value,
    details: ContactDetails,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

/// A page of contacts, newest first.
#[derive(ToSchema)]
pub struct ContactPage {
    data: Vec<Contact>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A contact's fields. On create, omitted, null or blank means none; on update, omitted
/// fields stay and null or blank clears one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactFields {
    #[schema(max_length = 200)]
    name: Option<String>,
    /// An email address (checked by the server; blank means none).
    email: Option<String>,
    /// Unique in the organization: another contact with it is a 422 (merge them instead).
    #[schema(max_length = 200)]
    external_id: Option<String>,
    /// An object of your own fields, at most 16 KB of JSON (null clears them on update).
    #[schema(value_type = Option<Object>)]
    attributes: Option<Value>,
}

/// Which contact to merge this one into.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactMerge {
    /// Another contact's id; it keeps its fields and takes this one's where it has none.
    into: Uuid,
}

/// An inbox: `web` (the widget), `email` or `api`.
#[derive(ToSchema)]
pub struct Inbox {
    id: Uuid,
    #[schema(pattern = "^(web|email|api)$")]
    kind: String,
    name: String,
    /// An email inbox's support address.
    email_address: Option<String>,
    created_at: DateTime<Utc>,
}

/// A page of inboxes, newest first.
#[derive(ToSchema)]
pub struct InboxPage {
    data: Vec<Inbox>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A new inbox. Only `api` inboxes are created over the API; web and email inboxes are
/// set up in the dashboard.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInbox {
    #[schema(pattern = "^api$")]
    kind: String,
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

/// Who starts the conversation: `id` of a known contact, or details found by
/// `external_id`, then `email`, and created when neither matches.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationContact {
    id: Option<Uuid>,
    #[schema(max_length = 200)]
    external_id: Option<String>,
    /// An email address (checked by the server; blank means none).
    email: Option<String>,
    #[schema(max_length = 200)]
    name: Option<String>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<Value>,
}

/// The customer's first message in an api inbox.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    contact: ConversationContact,
    #[schema(min_length = 1, max_length = 10000)]
    text: String,
}

/// The conversation started, its contact and its first message.
#[derive(ToSchema)]
pub struct StartedConversation {
    conversation: ConversationDetail,
    contact: Contact,
    message: Message,
}

/// A knowledge source and how far its indexing is.
#[derive(ToSchema)]
pub struct KnowledgeSource {
    id: Uuid,
    #[schema(pattern = "^(text|url|site|file)$")]
    kind: String,
    title: String,
    /// A web source's address.
    url: Option<String>,
    /// A file source's name.
    file_name: Option<String>,
    /// `queued`, `indexing`, `ready` or `failed` (with `error`).
    #[schema(pattern = "^(queued|indexing|ready|failed)$")]
    state: String,
    error: Option<String>,
    pages: i32,
    chunks: i32,
    last_synced_at: Option<DateTime<Utc>>,
    /// `daily` or `weekly` for a web source re-synced on its own.
    #[schema(pattern = "^(daily|weekly)$")]
    sync_every: Option<String>,
    next_sync_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// A page of knowledge sources, newest first.
#[derive(ToSchema)]
pub struct KnowledgeSourcePage {
    data: Vec<KnowledgeSource>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A text source, or a web page (`url`) or whole site (`site`) to fetch.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum NewKnowledgeSource {
    Text(NewTextSource),
    Web(NewWebSource),
}

/// Text written for the assistant.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTextSource {
    #[schema(pattern = "^text$")]
    kind: String,
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// Markdown, at most 200 KB.
    #[schema(min_length = 1, max_length = 200000)]
    text: String,
}

/// A web page, or a site crawled from that page.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebSource {
    #[schema(pattern = "^(url|site)$")]
    kind: String,
    /// An http(s) address.
    #[schema(pattern = "^https?://")]
    url: String,
    /// Defaults to the address's host.
    #[schema(max_length = 200)]
    title: Option<String>,
    /// `none` (default), `daily` or `weekly`.
    #[schema(pattern = "^(none|daily|weekly)$")]
    sync_every: Option<String>,
}

/// A file (PDF, DOCX, Markdown, HTML or text) up to the server's size limit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFileSource {
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// Defaults to the file's name.
    #[schema(nullable = false)]
    title: Option<String>,
    #[schema(nullable = false, pattern = "^file$")]
    kind: Option<String>,
}
